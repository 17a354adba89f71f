//! Reading what a user controls, as root, without being led out of it.
//!
//! A [`Tree`] is a directory opened once (a home directory, from the account database); every
//! path below it is resolved component by component with `openat`/`O_NOFOLLOW`. Symbolic links
//! inside the tree are followed only while they stay inside it (relative ones, or absolute ones
//! that point below the tree's own path), `..` never climbs above the tree's root, and what is
//! read must be a regular file (a FIFO cannot block the reader, a device cannot be read) no larger
//! than the caller's limit. So a user's `ln -s /etc/shadow ~/.config/containers/policy.json`
//! gives an error, not the shadow file.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

use super::files::{FileError, immutable_flag};

/// How many symbolic links one resolution may pass (Linux's own limit).
const MAX_LINKS: usize = 40;

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);
const FILE_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_NOCTTY)
    .union(OFlag::O_CLOEXEC);

/// What an entry is, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Directory,
    File,
    Symlink,
    Other,
}

/// `lstat` of an entry plus its immutable attribute (`chattr +i`; false where the file system
/// has no attributes, and for symlinks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    pub immutable: bool,
}

impl Entry {
    fn from_stat(stat: &FileStat, immutable: bool) -> Entry {
        let format = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
        let kind = match format {
            SFlag::S_IFDIR => Kind::Directory,
            SFlag::S_IFREG => Kind::File,
            SFlag::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        };
        Entry {
            kind,
            uid: stat.st_uid,
            gid: stat.st_gid,
            mode: stat.st_mode & 0o7777,
            immutable,
        }
    }
}

/// A directory of a tree: its root, or one opened below it.
enum Parent<'a> {
    Root(&'a OwnedFd),
    Below(OwnedFd),
}

impl AsFd for Parent<'_> {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Parent::Root(fd) => fd.as_fd(),
            Parent::Below(fd) => fd.as_fd(),
        }
    }
}

/// A directory tree read without leaving it.
#[derive(Debug)]
pub struct Tree {
    fd: OwnedFd,
    path: PathBuf,
}

fn io(path: &Path, errno: Errno) -> FileError {
    FileError::Io {
        path: path.to_path_buf(),
        source: errno.into(),
    }
}

impl Tree {
    /// Opens `path` as the root of a tree; `None` when it does not exist. The path itself is
    /// trusted (it comes from the account database or a root-owned configuration) and followed.
    pub fn open(path: &Path) -> Result<Option<Tree>, FileError> {
        match nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Some(Tree {
                fd,
                path: path.to_path_buf(),
            })),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(io(path, e)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The subdirectory `relative` as a tree of its own (still confined to this one's path
    /// for absolute links); `None` when missing.
    pub fn subtree(&self, relative: &Path) -> Result<Option<Tree>, FileError> {
        let full = self.path.join(relative);
        let Some(fd) = self.open_chain(relative, DIR_FLAGS, &full, 0)? else {
            return Ok(None);
        };
        Ok(Some(Tree {
            fd,
            path: self.path.join(relative),
        }))
    }

    /// The contents of the regular file `relative`, at most `limit` bytes; `None` when missing.
    pub fn read(&self, relative: &Path, limit: u64) -> Result<Option<Vec<u8>>, FileError> {
        let full = self.path.join(relative);
        let Some(fd) = self.open_chain(relative, FILE_FLAGS, &full, 0)? else {
            return Ok(None);
        };
        let stat = fstat(&fd).map_err(|e| io(&full, e))?;
        if Entry::from_stat(&stat, false).kind != Kind::File {
            return Err(FileError::Io {
                path: full,
                source: std::io::Error::other("not a regular file"),
            });
        }
        if stat.st_size as u64 > limit {
            return Err(too_large(&full, limit));
        }
        let mut bytes = Vec::with_capacity(stat.st_size as usize);
        std::fs::File::from(fd)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| FileError::Io {
                path: full.clone(),
                source,
            })?;
        if bytes.len() as u64 > limit {
            return Err(too_large(&full, limit));
        }
        Ok(Some(bytes))
    }

    /// The device and inode of `relative` (a file or directory, reached as [`Tree::read`]
    /// reaches it): whether two views name the same object, e.g. through a bind mount.
    /// `None` when missing.
    pub fn identity(&self, relative: &Path) -> Result<Option<(u64, u64)>, FileError> {
        let full = self.path.join(relative);
        let Some(fd) = self.open_chain(relative, FILE_FLAGS, &full, 0)? else {
            return Ok(None);
        };
        let stat = fstat(&fd).map_err(|e| io(&full, e))?;
        Ok(Some((stat.st_dev, stat.st_ino)))
    }

    /// Like [`Tree::read`], as UTF-8 text.
    pub fn read_string(&self, relative: &Path, limit: u64) -> Result<Option<String>, FileError> {
        match self.read(relative, limit)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| FileError::Io {
                    path: self.path.join(relative),
                    source: std::io::Error::other("not UTF-8 text"),
                }),
        }
    }

    /// `lstat` of `relative` (its last component is not followed; links before it are, inside
    /// the tree) with the immutable attribute; `None` when missing.
    pub fn entry(&self, relative: &Path) -> Result<Option<Entry>, FileError> {
        let full = self.path.join(relative);
        if relative.as_os_str().is_empty() {
            return self.stat_fd(&self.fd, &full).map(Some);
        }
        let Some((parent, name)) = self.resolve_parent(relative)? else {
            return Ok(None);
        };
        let stat = match fstatat(&parent, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(io(&full, e)),
        };
        let entry = Entry::from_stat(&stat, false);
        let flags = match entry.kind {
            Kind::Directory => DIR_FLAGS,
            Kind::File => FILE_FLAGS,
            Kind::Symlink | Kind::Other => return Ok(Some(entry)),
        };
        match openat(&parent, name.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => self.stat_fd(&fd, &full).map(Some),
            // Replaced by a link between the two calls: report what is there now.
            Err(Errno::ELOOP | Errno::ENOTDIR) => Ok(Some(Entry {
                kind: Kind::Symlink,
                ..entry
            })),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(io(&full, e)),
        }
    }

    /// The entry of each successive component of `relative`, following no link at all: the
    /// list ends after the first component that is missing (`None`), a link, or not a
    /// directory. One pass, for checks of a whole path such as "can this user replace it".
    /// The immutable attribute is read for directories only (a file's is `false` here: ask
    /// [`Tree::entry`] when it matters; that saves three calls per path).
    pub fn walk(&self, relative: &Path) -> Result<Vec<Option<Entry>>, FileError> {
        let mut entries = Vec::new();
        let mut parent = Parent::Root(&self.fd);
        let mut full = self.path.clone();
        for component in relative.components() {
            let Component::Normal(name) = component else {
                return Err(FileError::BadName {
                    path: self.path.clone(),
                    name: relative.to_string_lossy().into_owned(),
                });
            };
            full.push(name);
            let stat = match fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                Err(Errno::ENOENT) => {
                    entries.push(None);
                    break;
                }
                Err(e) => return Err(io(&full, e)),
            };
            let entry = Entry::from_stat(&stat, false);
            if entry.kind != Kind::Directory {
                entries.push(Some(entry));
                break;
            }
            let fd = match openat(&parent, name, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                // Replaced by a link between the two calls.
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    entries.push(Some(Entry {
                        kind: Kind::Symlink,
                        ..entry
                    }));
                    break;
                }
                Err(e) => return Err(io(&full, e)),
            };
            let immutable = immutable_flag(fd.as_fd()).map_err(|e| io(&full, e))?;
            entries.push(Some(Entry {
                immutable: immutable.unwrap_or(false),
                ..entry
            }));
            parent = Parent::Below(fd);
        }
        Ok(entries)
    }

    fn stat_fd(&self, fd: &OwnedFd, full: &Path) -> Result<Entry, FileError> {
        let stat = fstat(fd).map_err(|e| io(full, e))?;
        let immutable = immutable_flag(fd.as_fd()).map_err(|e| io(full, e))?;
        Ok(Entry::from_stat(&stat, immutable.unwrap_or(false)))
    }

    /// The names in this directory (without `.` and `..`), sorted.
    pub fn list(&self) -> Result<Vec<OsString>, FileError> {
        let fd = openat(&self.fd, ".", DIR_FLAGS, Mode::empty()).map_err(|e| io(&self.path, e))?;
        let mut dir = nix::dir::Dir::from_fd(fd).map_err(|e| io(&self.path, e))?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| io(&self.path, e))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Resolves every component of `relative` but the last to a directory inside the tree.
    /// `None` when one of them is missing.
    fn resolve_parent(&self, relative: &Path) -> Result<Option<(Parent<'_>, OsString)>, FileError> {
        let full = self.path.join(relative);
        let mut pending: Vec<OsString> = Vec::new();
        push_components(&mut pending, relative, &full)?;
        // `pending` holds the components in reverse order: the next one to resolve is last.
        if pending.is_empty() {
            return Err(FileError::BadName {
                path: self.path.clone(),
                name: relative.to_string_lossy().into_owned(),
            });
        }
        // The directories opened below the root (no descriptor is duplicated: this runs for
        // every file of every user).
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut links = 0;
        while let Some(name) = pending.pop() {
            if name == ".." {
                stack.pop();
                continue;
            }
            if pending.is_empty() {
                let parent = match stack.pop() {
                    Some(fd) => Parent::Below(fd),
                    None => Parent::Root(&self.fd),
                };
                return Ok(Some((parent, name)));
            }
            let current = stack.last().unwrap_or(&self.fd);
            match openat(current, name.as_os_str(), DIR_FLAGS, Mode::empty()) {
                Ok(fd) => stack.push(fd),
                Err(Errno::ENOENT) => return Ok(None),
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    let target = match readlinkat(current, name.as_os_str()) {
                        Ok(target) => target,
                        // Not a link: a file where a directory was expected.
                        Err(Errno::EINVAL) => return Ok(None),
                        Err(e) => return Err(io(&full, e)),
                    };
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io(&full, Errno::ELOOP));
                    }
                    self.splice_link(&mut pending, &mut stack, Path::new(&target), &full)?;
                }
                Err(e) => return Err(io(&full, e)),
            }
        }
        Ok(None)
    }

    /// Opens `relative` with `flags`, following a link in its last component while it stays
    /// inside the tree.
    fn open_chain(
        &self,
        relative: &Path,
        flags: OFlag,
        full: &Path,
        links: usize,
    ) -> Result<Option<OwnedFd>, FileError> {
        if links > MAX_LINKS {
            return Err(io(full, Errno::ELOOP));
        }
        let Some((parent, name)) = self.resolve_parent(relative)? else {
            return Ok(None);
        };
        match openat(&parent, name.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::ENOENT) => Ok(None),
            // O_NOFOLLOW gives ELOOP for a link, or ENOTDIR together with O_DIRECTORY.
            Err(errno @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                let target = match readlinkat(&parent, name.as_os_str()) {
                    Ok(target) => target,
                    Err(Errno::EINVAL) => return Err(io(full, errno)),
                    Err(e) => return Err(io(full, e)),
                };
                let target = Path::new(&target);
                let base = relative.parent().unwrap_or(Path::new(""));
                let next = if target.is_absolute() {
                    self.inside(target, full)?.to_path_buf()
                } else {
                    base.join(target)
                };
                self.open_chain(&next, flags, full, links + 1)
            }
            Err(e) => Err(io(full, e)),
        }
    }

    /// An absolute link target as a path relative to the tree, or an error when it leaves it.
    fn inside<'a>(&self, target: &'a Path, full: &Path) -> Result<&'a Path, FileError> {
        target.strip_prefix(&self.path).map_err(|_| FileError::Io {
            path: full.to_path_buf(),
            source: std::io::Error::other(format!(
                "refusing to follow a symbolic link to {} (outside {})",
                target.display(),
                self.path.display()
            )),
        })
    }

    /// Replaces a link met while resolving by its target's components.
    fn splice_link(
        &self,
        pending: &mut Vec<OsString>,
        stack: &mut Vec<OwnedFd>,
        target: &Path,
        full: &Path,
    ) -> Result<(), FileError> {
        if target.is_absolute() {
            let inside = self.inside(target, full)?;
            stack.clear();
            push_components(pending, inside, full)
        } else {
            push_components(pending, target, full)
        }
    }
}

/// Pushes the components of `path` onto `pending` so that the first is popped first. `.` is
/// dropped; an absolute path or a prefix is refused (callers make them relative).
fn push_components(pending: &mut Vec<OsString>, path: &Path, full: &Path) -> Result<(), FileError> {
    let mut parts: Vec<OsString> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => parts.push(name.to_os_string()),
            Component::ParentDir => parts.push("..".into()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(FileError::BadName {
                    path: full.to_path_buf(),
                    name: path.to_string_lossy().into_owned(),
                });
            }
        }
    }
    pending.extend(parts.into_iter().rev());
    Ok(())
}

fn too_large(path: &Path, limit: u64) -> FileError {
    FileError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("larger than {limit} bytes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, Tree) {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::open(dir.path()).unwrap().unwrap();
        (dir, tree)
    }

    #[test]
    fn reads_files_and_reports_missing_ones() {
        let (dir, tree) = tree();
        std::fs::create_dir_all(dir.path().join(".config/containers")).unwrap();
        std::fs::write(dir.path().join(".config/containers/policy.json"), "{}").unwrap();
        assert_eq!(
            tree.read(Path::new(".config/containers/policy.json"), 10)
                .unwrap()
                .unwrap(),
            b"{}"
        );
        assert!(tree.read(Path::new(".config/x"), 10).unwrap().is_none());
        assert!(tree.read(Path::new("nope/x/y"), 10).unwrap().is_none());
        assert!(
            tree.read(Path::new(".config/containers/policy.json"), 1)
                .unwrap_err()
                .to_string()
                .contains("larger than 1 bytes")
        );
        // a directory is not a file
        assert!(tree.read(Path::new(".config"), 10).is_err());
    }

    #[test]
    fn links_inside_the_tree_are_followed_links_out_are_refused() {
        let (dir, tree) = tree();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "shadow").unwrap();
        std::fs::create_dir_all(dir.path().join("real/storage")).unwrap();
        std::fs::write(dir.path().join("real/storage/images.json"), "[]").unwrap();
        // relative, absolute-inside, and out-of-tree links
        symlink("real", dir.path().join("rel")).unwrap();
        symlink(dir.path().join("real"), dir.path().join("abs")).unwrap();
        symlink(outside.path(), dir.path().join("out")).unwrap();
        symlink("../../..", dir.path().join("real/up")).unwrap();
        symlink(outside.path().join("secret"), dir.path().join("file-out")).unwrap();
        symlink("real/storage/images.json", dir.path().join("file-in")).unwrap();
        for good in [
            "rel/storage/images.json",
            "abs/storage/images.json",
            "file-in",
        ] {
            assert_eq!(
                tree.read(Path::new(good), 100).unwrap().unwrap(),
                b"[]",
                "{good}"
            );
        }
        for bad in ["out/secret", "file-out"] {
            let err = tree.read(Path::new(bad), 100).unwrap_err().to_string();
            assert!(err.contains("refusing to follow"), "{bad}: {err}");
        }
        // `..` stops at the tree's root: real/up -> ../../.. is the root itself
        assert_eq!(
            tree.read(Path::new("real/up/real/storage/images.json"), 100)
                .unwrap()
                .unwrap(),
            b"[]"
        );
        assert!(
            tree.read(Path::new("../secret"), 100).unwrap().is_none(),
            "climbed out"
        );
        let sub = tree.subtree(Path::new("abs/storage")).unwrap().unwrap();
        assert_eq!(sub.list().unwrap(), [OsString::from("images.json")]);
        // directories too: a link in the last component is followed inside, refused outside
        assert!(tree.subtree(Path::new("rel")).unwrap().is_some());
        let err = tree.subtree(Path::new("out")).unwrap_err().to_string();
        assert!(err.contains("refusing to follow"), "{err}");
        let err = tree.subtree(Path::new("file-in")).unwrap_err().to_string();
        assert!(err.contains("Not a directory"), "{err}");
    }

    #[test]
    fn a_fifo_does_not_block_and_is_refused() {
        let (dir, tree) = tree();
        nix::unistd::mkfifo(&dir.path().join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        let err = tree.read(Path::new("fifo"), 100).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn entries_are_not_followed() {
        let (dir, tree) = tree();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        symlink("/etc", dir.path().join("l")).unwrap();
        std::fs::write(dir.path().join("f"), "x").unwrap();
        let d = tree.entry(Path::new("d")).unwrap().unwrap();
        assert_eq!(d.kind, Kind::Directory);
        assert_eq!(d.uid, nix::unistd::geteuid().as_raw());
        assert_eq!(
            tree.entry(Path::new("l")).unwrap().unwrap().kind,
            Kind::Symlink
        );
        assert_eq!(
            tree.entry(Path::new("f")).unwrap().unwrap().kind,
            Kind::File
        );
        assert!(tree.entry(Path::new("missing")).unwrap().is_none());
        assert!(!tree.entry(Path::new("")).unwrap().unwrap().immutable);
        // a walk stops at the first link, file or missing component
        let kinds = |path: &str| -> Vec<Option<Kind>> {
            tree.walk(Path::new(path))
                .unwrap()
                .iter()
                .map(|e| e.map(|e| e.kind))
                .collect()
        };
        assert_eq!(kinds("d"), [Some(Kind::Directory)]);
        assert_eq!(kinds("l/passwd"), [Some(Kind::Symlink)]);
        assert_eq!(kinds("f/x"), [Some(Kind::File)]);
        assert_eq!(kinds("d/missing/x"), [Some(Kind::Directory), None]);
    }
}
