#!/usr/bin/env python3
"""clone-podman-users.py TEMPLATE FIRST LAST: podman users uFIRST..uLAST (u%05d) laid out exactly
like TEMPLATE, an account podsec-create-podmanusers made: its /etc/passwd, /etc/shadow,
/etc/subuid and /etc/subgid lines with the next free uid and subordinate range, and a copy of
its home (every entry's type, mode, owner mapped from the template's uid to the new user's, groups as they are, and the
immutable attribute). For benchmarks of the checks that read accounts (bench-check-policy):
useradd rewrites the account files once per user, so ten thousand real ones take half an hour;
these take seconds. Run as root inside a sandbox: it writes the sandbox's /etc and /home."""
import fcntl
import os
import stat
import struct
import sys

FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_IMMUTABLE_FL = 0x10


def lines(path):
    with open(path) as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def flags(fd):
    try:
        return struct.unpack("l", fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("l", 0)))[0]
    except OSError:
        return 0


def copy_tree(src, dst, uid_map):
    """Copies src to dst (which must not exist); the immutable attribute is set last, bottom up."""
    immutable = []
    for root, dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        target = dst if rel == "." else os.path.join(dst, rel)
        st = os.lstat(root)
        os.mkdir(target)
        os.chown(target, uid_map.get(st.st_uid, st.st_uid), st.st_gid)
        os.chmod(target, stat.S_IMODE(st.st_mode))
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        if flags(fd) & FS_IMMUTABLE_FL:
            immutable.append(target)
        os.close(fd)
        for name in files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            out = os.path.join(target, name)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(path), out)
            else:
                with open(path, "rb") as f:
                    data = f.read()
                fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.write(fd, data)
                os.close(fd)
                os.chmod(out, stat.S_IMODE(st.st_mode))
            os.chown(out, uid_map.get(st.st_uid, st.st_uid), st.st_gid, follow_symlinks=False)
    for path in reversed(immutable):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("l", flags(fd) | FS_IMMUTABLE_FL))
        os.close(fd)


def main():
    template, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    passwd = lines("/etc/passwd")
    entry = next(l.split(":") for l in passwd if l.split(":")[0] == template)
    t_uid, t_gid, t_home = int(entry[2]), int(entry[3]), entry[5]
    shadow_entry = next(l.split(":") for l in lines("/etc/shadow") if l.startswith(template + ":"))
    uid = max(int(l.split(":")[2]) for l in passwd if int(l.split(":")[2]) < 60000)
    sub = {}
    for f in ("/etc/subuid", "/etc/subgid"):
        ranges = [l.split(":") for l in lines(f)]
        sub[f] = max(int(r[1]) + int(r[2]) for r in ranges)
    new_passwd, new_shadow, new_sub = [], [], {f: [] for f in sub}
    for n in range(first, last + 1):
        name = "u%05d" % n
        uid += 1
        home = os.path.join(os.path.dirname(t_home), name)
        new_passwd.append(":".join([name, "x", str(uid), str(t_gid), entry[4], home, entry[6]]))
        new_shadow.append(":".join([name] + shadow_entry[1:]))
        for f in sub:
            new_sub[f].append("%s:%d:65536" % (name, sub[f]))
            sub[f] += 65536
        copy_tree(t_home, home, {t_uid: uid})
    for path, added in [("/etc/passwd", new_passwd), ("/etc/shadow", new_shadow)] + list(new_sub.items()):
        with open(path, "a") as f:
            f.write("".join(l + "\n" for l in added))


main()
