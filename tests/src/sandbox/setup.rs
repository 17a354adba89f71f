//! What the sandbox's init (pid 1 of the new namespaces) sets up before it reports ready:
//! private mounts over the host, a private /dev, loopback networking.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, makedev, mknod, umask};

/// Host directories that get an overlay: the sandbox sees the host's files and writes into its
/// own upper layer. Anything else (/work, /tmp, the project checkout) is shared as it is.
pub const OVERLAID: &[&str] = &[
    "/etc", "/var", "/home", "/root", "/run", "/usr", "/opt", "/srv", "/mnt",
];

/// Character devices of the private /dev: name, major, minor, mode.
const DEVICES: &[(&str, u64, u64, u32)] = &[
    ("null", 1, 3, 0o666),
    ("zero", 1, 5, 0o666),
    ("full", 1, 7, 0o666),
    ("random", 1, 8, 0o666),
    ("urandom", 1, 9, 0o666),
    ("tty", 5, 0, 0o666),
    ("fuse", 10, 229, 0o666),
    // slirp4netns of unprivileged users needs a usable tun device: a private node, so the host's
    // /dev/net/tun keeps its mode.
    ("net/tun", 10, 200, 0o666),
];

/// The machine adapter for podman on these hosts (see the README): crun fails on hybrid cgroups
/// and the default ulimits exceed the hard limits, so containers use runc with modest limits.
pub const CONTAINERS_CONF: &str = "\
# Written by podsec-sandbox for this test machine (not by podsec).
[containers]
default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]

[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
";

pub struct Layout {
    pub state: PathBuf,
}

impl Layout {
    pub fn layer(&self, dir: &str) -> PathBuf {
        self.state
            .join("layers")
            .join(dir.trim_start_matches('/').replace('/', "_"))
    }
    pub fn containers_storage(&self) -> PathBuf {
        self.state.join("containers")
    }
    pub fn tmp(&self) -> PathBuf {
        self.state.join("tmp")
    }
    pub fn share(&self) -> PathBuf {
        self.state.join("share")
    }
    pub fn logs(&self) -> PathBuf {
        self.state.join("log")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.state.join("init.pid")
    }
    pub fn cgroups_record(&self) -> PathBuf {
        self.state.join("cgroups")
    }

    /// The host-side directories, created before the namespaces exist.
    pub fn create(&self) -> Result<()> {
        for dir in OVERLAID {
            fs::create_dir_all(self.layer(dir).join("upper"))?;
            fs::create_dir_all(self.layer(dir).join("work"))?;
        }
        for dir in [self.containers_storage(), self.share(), self.logs()] {
            fs::create_dir_all(dir)?;
        }
        fs::create_dir_all(self.tmp())?;
        fs::set_permissions(self.tmp(), fs::Permissions::from_mode(0o1777))?;
        fs::set_permissions(&self.state, fs::Permissions::from_mode(0o755))?;
        Ok(())
    }
}

/// The state directory must not lie below an overlaid directory (overlayfs refuses layers
/// nested in each other).
pub fn check_base(base: &Path) -> Result<()> {
    for dir in OVERLAID {
        if base.starts_with(dir) {
            bail!(
                "sandbox base {} lies below {dir}, which the sandbox overlays",
                base.display()
            );
        }
    }
    Ok(())
}

fn mount_or(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(source, target, fstype, flags, data)
        .with_context(|| format!("mount {fstype:?} on {target}"))
}

/// Runs in pid 1 of the new namespaces.
pub fn inside(layout: &Layout, hostname: &str, addresses: &[String]) -> Result<()> {
    umask(Mode::from_bits_truncate(0o022));
    // Nothing we mount may propagate back to the host.
    mount_or(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)?;
    let id = layout
        .state
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    super::cgroups::enter_private(&id, &layout.cgroups_record())?;
    for dir in OVERLAID {
        let path = Path::new(dir);
        if !path.is_dir() || path.is_symlink() {
            continue;
        }
        let layer = layout.layer(dir);
        let options = format!(
            "lowerdir={dir},upperdir={},workdir={}",
            layer.join("upper").display(),
            layer.join("work").display()
        );
        mount_or(
            Some("overlay"),
            dir,
            Some("overlay"),
            MsFlags::empty(),
            Some(&options),
        )?;
    }
    // podman's overlay driver cannot use an overlayfs as its upper layer: root's storage is a
    // plain directory of the state.
    fs::create_dir_all("/var/lib/containers")?;
    let storage = layout.containers_storage();
    mount_or(
        Some(storage.to_str().unwrap()),
        "/var/lib/containers",
        None,
        MsFlags::MS_BIND,
        None,
    )?;

    mount_or(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )?;
    private_dev()?;

    nix::unistd::sethostname(hostname).context("sethostname")?;
    run("ip", &["link", "set", "lo", "up"])?;
    for address in addresses {
        run("ip", &["addr", "add", address, "dev", "lo"])?;
    }

    // Shared again, but as new peer groups of this namespace only: rootless podman and the
    // kubelet's rshared mounts expect it, and nothing reaches the host.
    mount_or(None, "/", None, MsFlags::MS_REC | MsFlags::MS_SHARED, None)?;

    fs::create_dir_all("/etc/containers/containers.conf.d")?;
    fs::write(
        "/etc/containers/containers.conf.d/50-podsec-sandbox.conf",
        CONTAINERS_CONF,
    )?;
    fs::write(
        "/run/podsec-sandbox",
        format!("{}\n", layout.state.display()),
    )?;
    Ok(())
}

fn private_dev() -> Result<()> {
    mount_or(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor, mode) in DEVICES {
        let path = Path::new("/dev").join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(*mode),
            makedev(*major, *minor),
        )
        .with_context(|| format!("mknod {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode))?;
    }
    fs::create_dir_all("/dev/pts")?;
    mount_or(
        Some("devpts"),
        "/dev/pts",
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    std::os::unix::fs::symlink("pts/ptmx", "/dev/ptmx")?;
    fs::create_dir_all("/dev/shm")?;
    mount_or(
        Some("shm"),
        "/dev/shm",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777,size=1g"),
    )?;
    fs::create_dir_all("/dev/mqueue")?;
    mount_or(
        Some("mqueue"),
        "/dev/mqueue",
        Some("mqueue"),
        MsFlags::empty(),
        None,
    )?;
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, link)?;
    }
    Ok(())
}

pub fn run(program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
