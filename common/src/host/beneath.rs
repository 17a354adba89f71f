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
use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::stat::{Mode, SFlag, fstat};
use rustix::fs::{AtFlags, ResolveFlags, StatxAttributes, StatxFlags, statx};

use super::files::FileError;

/// How many symbolic links one resolution may pass (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Directories are held as `O_PATH` descriptors: enough to resolve names beneath them and to
/// `statx` them, and much cheaper than a real open (overlayfs opens the layers' directories for
/// one): check-policy opens a few for each of thousands of homes.
const DIR_FLAGS: OFlag = OFlag::O_PATH
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);
/// The root of a tree: its path is trusted and followed (see [`Tree::open`]).
const ROOT_FLAGS: OFlag = OFlag::O_PATH
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC);
/// A directory opened to read its entries.
const LIST_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
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

impl Kind {
    /// The kind of `st_mode`/`stx_mode`.
    fn of_mode(mode: u32) -> Kind {
        match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => Kind::Directory,
            SFlag::S_IFREG => Kind::File,
            SFlag::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        }
    }
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
    /// From `statx`, which also carries the immutable attribute (false where the file system
    /// does not report it).
    fn from_statx(stat: &rustix::fs::Statx) -> Entry {
        let immutable = stat
            .stx_attributes_mask
            .contains(StatxAttributes::IMMUTABLE)
            && stat.stx_attributes.contains(StatxAttributes::IMMUTABLE);
        Entry {
            kind: Kind::of_mode(u32::from(stat.stx_mode)),
            uid: stat.stx_uid,
            gid: stat.stx_gid,
            mode: u32::from(stat.stx_mode) & 0o7777,
            immutable,
        }
    }
}

/// A file read by [`Tree::read_file`].
#[derive(Debug)]
pub struct ReadFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    /// The file's entry when it was opened by its own name, no link followed (its `lstat`).
    pub entry: Option<Entry>,
}

impl ReadFile {
    /// The contents as UTF-8 text.
    pub fn text(self) -> Result<String, FileError> {
        String::from_utf8(self.bytes).map_err(|_| FileError::Io {
            path: self.path,
            source: std::io::Error::other("not UTF-8 text"),
        })
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
    /// Reached from the tree it is a subtree of without passing any symbolic link, so that its
    /// own entry is the entry of that path (false for a tree opened by path).
    direct: bool,
}

fn io(path: &Path, errno: Errno) -> FileError {
    FileError::Io {
        path: path.to_path_buf(),
        source: errno.into(),
    }
}

/// `lstat` of `name` in `parent` with the immutable attribute, in one `statx` (no open: the
/// attribute comes with it); `None` when missing.
fn entry_at(parent: &impl AsFd, name: &OsStr) -> Result<Option<Entry>, Errno> {
    match statx(
        parent,
        name,
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT,
        StatxFlags::BASIC_STATS,
    ) {
        Ok(stat) => Ok(Some(Entry::from_statx(&stat))),
        Err(e) if e == rustix::io::Errno::NOENT => Ok(None),
        Err(e) => Err(Errno::from_raw(e.raw_os_error())),
    }
}

impl Tree {
    /// Opens `path` as the root of a tree; `None` when it does not exist. The path itself is
    /// trusted (it comes from the account database or a root-owned configuration) and followed.
    pub fn open(path: &Path) -> Result<Option<Tree>, FileError> {
        Tree::root(nix::fcntl::open(path, ROOT_FLAGS, Mode::empty()), path)
    }

    /// Like [`Tree::open`], with the directory holding `path` already open as `parent` (opened
    /// by its path, as [`Tree::open`] would have walked it): the directory of thousands of homes
    /// is looked up once, not once per home. The last component is followed, as there.
    pub fn open_in(parent: &Tree, path: &Path) -> Result<Option<Tree>, FileError> {
        match path.file_name() {
            Some(name) => Tree::root(openat(&parent.fd, name, ROOT_FLAGS, Mode::empty()), path),
            None => Tree::open(path),
        }
    }

    /// The tree of an open of its root `path`.
    fn root(opened: Result<OwnedFd, Errno>, path: &Path) -> Result<Option<Tree>, FileError> {
        match opened {
            Ok(fd) => Ok(Some(Tree {
                fd,
                path: path.to_path_buf(),
                direct: false,
            })),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(io(path, e)),
        }
    }

    /// The subdirectory `relative` of the tree `path` would open, reached from `parent`, the
    /// directory holding `path`, in one call, through no symbolic link at all (not even `path`
    /// itself): a tree [`Tree::is_direct`] from `path`, without opening `path`. `None` when that
    /// fails for any reason (a link on the way, something missing, no `openat2`): the caller
    /// opens `path` and takes [`Tree::subtree`], which decides and words it.
    pub fn subtree_in(parent: &Tree, path: &Path, relative: &Path) -> Option<Tree> {
        let name = path.file_name()?;
        let fd = parent
            .open_beneath(
                &Path::new(name).join(relative),
                DIR_FLAGS,
                ResolveFlags::NO_SYMLINKS,
            )
            .ok()?;
        Some(Tree {
            fd,
            path: path.join(relative),
            direct: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The subdirectory `relative` as a tree of its own (still confined to this one's path
    /// for absolute links); `None` when missing.
    pub fn subtree(&self, relative: &Path) -> Result<Option<Tree>, FileError> {
        let full = self.path.join(relative);
        // The usual case first: no link on the way, one call (and a subtree whose own entry
        // stands for the path, see [`Tree::is_direct`]).
        let (fd, direct) = match self.open_beneath(relative, DIR_FLAGS, ResolveFlags::NO_SYMLINKS) {
            Ok(fd) => (fd, true),
            Err(Errno::ENOENT) => return Ok(None),
            Err(_) => match self.open_chain(relative, DIR_FLAGS, &full, 0)? {
                Some(fd) => (fd, false),
                None => return Ok(None),
            },
        };
        Ok(Some(Tree {
            fd,
            path: full,
            direct,
        }))
    }

    /// Whether this subtree was reached from its parent tree through no symbolic link: then
    /// [`Tree::own_entry`] is the entry of that path, and a check of the path needs no walk.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// The entry of the directory holding this tree's own (`..`), not following it. For a
    /// tree [`Tree::is_direct`] from its parent tree, that is the parent path's entry.
    pub fn parent_entry(&self) -> Result<Option<Entry>, FileError> {
        entry_at(&self.fd, OsStr::new("..")).map_err(|e| io(&self.path.join(".."), e))
    }

    /// The entry of this tree's own directory, with its immutable attribute.
    pub fn own_entry(&self) -> Result<Entry, FileError> {
        self.stat_fd(&self.fd, &self.path)
    }

    /// The contents of the regular file `relative`, at most `limit` bytes; `None` when missing.
    pub fn read(&self, relative: &Path, limit: u64) -> Result<Option<Vec<u8>>, FileError> {
        Ok(self.read_file(relative, limit)?.map(|file| file.bytes))
    }

    /// Like [`Tree::read`], with the file's entry when `relative` is one name that is not a
    /// link: then the entry read from the open file stands for the name's `lstat`, and a check
    /// of the name needs no lookup of its own (check-policy: storage.conf of thousands of homes).
    pub fn read_file(&self, relative: &Path, limit: u64) -> Result<Option<ReadFile>, FileError> {
        let full = self.path.join(relative);
        let mut single = relative.components();
        let direct = match (single.next(), single.next()) {
            (Some(Component::Normal(name)), None) => {
                match openat(&self.fd, name, FILE_FLAGS, Mode::empty()) {
                    Ok(fd) => Some(fd),
                    Err(Errno::ENOENT) => return Ok(None),
                    // A link (ELOOP) or something else: the general path decides and words it.
                    Err(_) => None,
                }
            }
            _ => None,
        };
        let by_name = direct.is_some();
        let fd = match direct {
            Some(fd) => fd,
            None => match self.open_chain(relative, FILE_FLAGS, &full, 0)? {
                Some(fd) => fd,
                None => return Ok(None),
            },
        };
        let stat = statx(&fd, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS)
            .map_err(|e| io(&full, Errno::from_raw(e.raw_os_error())))?;
        let entry = Entry::from_statx(&stat);
        if entry.kind != Kind::File {
            return Err(FileError::Io {
                path: full,
                source: std::io::Error::other("not a regular file"),
            });
        }
        if stat.stx_size > limit {
            return Err(too_large(&full, limit));
        }
        let error = |source| FileError::Io {
            path: full.clone(),
            source,
        };
        let mut file = std::fs::File::from(fd).take(limit + 1);
        // One byte more than statx's size: a regular file's read returns less than asked only
        // at its end, so a file read whole in one call needs no second read to see the end
        // (thousands of homes, one storage.conf each). A file that grew is read on.
        let first = stat.stx_size.min(limit) as usize + 1;
        let mut bytes = vec![0; first];
        let read = loop {
            match file.read(&mut bytes) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other.map_err(error)?,
            }
        };
        bytes.truncate(read);
        if read == first {
            file.read_to_end(&mut bytes).map_err(error)?;
        }
        if bytes.len() as u64 > limit {
            return Err(too_large(&full, limit));
        }
        Ok(Some(ReadFile {
            path: full,
            bytes,
            entry: by_name.then_some(entry),
        }))
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
        self.read_file(relative, limit)?
            .map(ReadFile::text)
            .transpose()
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
        entry_at(&parent, &name).map_err(|e| io(&full, e))
    }

    /// The entry of each successive component of `relative`, following no link at all: the
    /// list ends after the first component that is missing (`None`), a link, or not a
    /// directory. One pass, for checks of a whole path such as "can this user replace it".
    /// Only `statx`, one per component from the tree's root, nothing opened (three calls for
    /// check-policy's path instead of seven): a directory swapped for a link between two calls
    /// is followed by the next call's lookup, which reads metadata and cannot block, so the
    /// answer is what was there at each call, as with any check of a path others may change.
    pub fn walk(&self, relative: &Path) -> Result<Vec<Option<Entry>>, FileError> {
        let mut entries = Vec::new();
        let mut prefix = PathBuf::new();
        for component in relative.components() {
            let Component::Normal(name) = component else {
                return Err(FileError::BadName {
                    path: self.path.clone(),
                    name: relative.to_string_lossy().into_owned(),
                });
            };
            prefix.push(name);
            let entry = entry_at(&self.fd, prefix.as_os_str())
                .map_err(|e| io(&self.path.join(&prefix), e))?;
            entries.push(entry);
            if entry.is_none_or(|entry| entry.kind != Kind::Directory) {
                break;
            }
        }
        Ok(entries)
    }

    fn stat_fd(&self, fd: &OwnedFd, full: &Path) -> Result<Entry, FileError> {
        statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS)
            .map(|stat| Entry::from_statx(&stat))
            .map_err(|e| io(full, Errno::from_raw(e.raw_os_error())))
    }

    /// The names in this directory (without `.` and `..`), sorted.
    pub fn list(&self) -> Result<Vec<OsString>, FileError> {
        let fd = openat(&self.fd, ".", LIST_FLAGS, Mode::empty()).map_err(|e| io(&self.path, e))?;
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

    /// The kernel's confined lookup (`openat2` with `RESOLVE_BENEATH` and `resolve`): a path
    /// of several components in one call instead of one per component, following at most the
    /// relative links that stay beneath the tree, as the walk in [`Tree::resolve_parent`] does.
    /// What it refuses (an absolute link, `..` above the root, a kernel without `openat2`) is
    /// left to that walk, which decides and words the error; a missing entry is missing for both.
    fn open_beneath(
        &self,
        relative: &Path,
        flags: OFlag,
        resolve: ResolveFlags,
    ) -> Result<OwnedFd, Errno> {
        let flags =
            rustix::fs::OFlags::from_bits_retain((flags & !OFlag::O_NOFOLLOW).bits() as u32);
        rustix::fs::openat2(
            &self.fd,
            relative,
            flags,
            rustix::fs::Mode::empty(),
            ResolveFlags::BENEATH | resolve,
        )
        .map_err(|e| Errno::from_raw(e.raw_os_error()))
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
        if links == 0 && relative.components().nth(1).is_some() {
            match self.open_beneath(relative, flags, ResolveFlags::NO_MAGICLINKS) {
                Ok(fd) => return Ok(Some(fd)),
                Err(Errno::ENOENT) => return Ok(None),
                Err(_) => {}
            }
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
        source: std::io::Error::other(crate::msg!("larger than {limit} bytes")),
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

    #[test]
    fn a_file_read_by_its_own_name_comes_with_its_entry() {
        let (dir, tree) = tree();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/f"), "x").unwrap();
        std::fs::set_permissions(
            dir.path().join("d/f"),
            std::os::unix::fs::PermissionsExt::from_mode(0o640),
        )
        .unwrap();
        symlink("d/f", dir.path().join("l")).unwrap();
        let sub = tree.subtree(Path::new("d")).unwrap().unwrap();
        let file = sub.read_file(Path::new("f"), 10).unwrap().unwrap();
        assert_eq!(file.bytes, b"x");
        // the same as the name's lstat
        assert_eq!(file.entry, sub.entry(Path::new("f")).unwrap());
        assert_eq!(file.entry.unwrap().mode, 0o640);
        // through a link, or a path of several names: the bytes only (the lstat of the name
        // is the link's, or was not looked at)
        let linked = tree.read_file(Path::new("l"), 10).unwrap().unwrap();
        assert_eq!((linked.bytes.as_slice(), linked.entry), (&b"x"[..], None));
        let nested = tree.read_file(Path::new("d/f"), 10).unwrap().unwrap();
        assert_eq!(nested.entry, None);
        assert!(sub.read_file(Path::new("missing"), 10).unwrap().is_none());
    }

    #[test]
    fn a_tree_opens_in_its_parent_as_by_its_path() {
        let parent = tempfile::tempdir().unwrap();
        std::fs::create_dir(parent.path().join("alice")).unwrap();
        std::fs::write(parent.path().join("alice/f"), "a").unwrap();
        symlink("alice", parent.path().join("link")).unwrap();
        let holder = Tree::open(parent.path()).unwrap().unwrap();
        for name in ["alice", "link"] {
            let path = parent.path().join(name);
            let tree = Tree::open_in(&holder, &path).unwrap().unwrap();
            assert_eq!(tree.path(), path);
            assert_eq!(tree.read(Path::new("f"), 10).unwrap().unwrap(), b"a");
        }
        assert!(
            Tree::open_in(&holder, &parent.path().join("bob"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_subtree_opens_from_the_parent_of_its_tree_through_no_link() {
        let parent = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(parent.path().join("alice/.config/containers")).unwrap();
        std::fs::create_dir_all(parent.path().join("bob/.config/real")).unwrap();
        symlink("real", parent.path().join("bob/.config/containers")).unwrap();
        symlink("alice", parent.path().join("carol")).unwrap();
        let holder = Tree::open(parent.path()).unwrap().unwrap();
        let relative = Path::new(".config/containers");
        let alice = parent.path().join("alice");
        let dir = Tree::subtree_in(&holder, &alice, relative).unwrap();
        assert!(dir.is_direct());
        assert_eq!(dir.path(), alice.join(relative));
        // the same directory as the home's own subtree, and its parent is ~/.config
        let home = Tree::open(&alice).unwrap().unwrap();
        assert_eq!(
            dir.own_entry().unwrap(),
            home.entry(relative).unwrap().unwrap()
        );
        assert_eq!(
            dir.parent_entry().unwrap(),
            home.entry(Path::new(".config")).unwrap()
        );
        // a link anywhere on the way, the home itself included, or nothing there: not this way
        for name in ["bob", "carol", "dave"] {
            let path = parent.path().join(name);
            assert!(
                Tree::subtree_in(&holder, &path, relative).is_none(),
                "{name}"
            );
        }
    }
}
