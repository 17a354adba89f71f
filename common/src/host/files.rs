//! File writes that never leave half a file and never follow a symlink somebody else planted.
//!
//! - [`write_atomic`]: for root-owned paths (policy.json, registries.d, keys): a temporary file
//!   in the same directory (unpredictable name, `O_EXCL`), written, given its mode and owner,
//!   fsynced, renamed over the target, directory fsynced. A crash leaves the old file or the new.
//! - [`SafeDir`]: for directories a user controls (`~user/.config/containers`): every component
//!   is opened relative to its parent with `O_NOFOLLOW`, files are created and renamed with the
//!   `*at` calls, so a planted symlink makes the write fail instead of redirecting it.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fchmod, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, unlinkat};

use super::failpoint::step;

#[derive(Debug, thiserror::Error, crate::i18n::Localize)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: refusing to follow a symbolic link or non-directory")]
    NotFollowing { path: PathBuf },
    #[error("{path}: '{name}' is not a single file name")]
    BadName { path: PathBuf, name: String },
    #[error("{path} already exists")]
    Exists { path: PathBuf },
    #[error("{path}: {reason}")]
    Untrusted {
        path: PathBuf,
        reason: crate::i18n::Message,
    },
}

fn io_error(path: &Path, source: impl Into<std::io::Error>) -> FileError {
    FileError::Io {
        path: path.to_path_buf(),
        source: source.into(),
    }
}

/// Who owns a written file or directory; `None` keeps the writer's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Owner {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Owner {
    pub fn new(uid: u32, gid: u32) -> Owner {
        Owner {
            uid: Some(uid),
            gid: Some(gid),
        }
    }

    fn apply(&self, fd: impl AsFd) -> nix::Result<()> {
        if self.uid.is_none() && self.gid.is_none() {
            return Ok(());
        }
        fchown(fd, self.uid.map(Uid::from_raw), self.gid.map(Gid::from_raw))
    }
}

/// Replaces `path` atomically with `contents`, mode `mode`, owned by `owner`.
/// The parent directory must exist and is trusted (root-owned, not user-writable).
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Owner,
) -> Result<(), FileError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| FileError::BadName {
        path: path.to_path_buf(),
        name: String::new(),
    })?;
    let prefix = format!(".{}.", name.to_string_lossy());
    if let Ok(fd) = nix::fcntl::open(dir, DIR_FLAGS, Mode::empty()) {
        sweep_stale_temps(&fd, &prefix);
    }
    let mut temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io_error(path, e))?;
    let _writing = hold(temp.as_file());
    temp.write_all(contents).map_err(|e| io_error(path, e))?;
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_error(path, e))?;
    owner.apply(temp.as_file()).map_err(|e| io_error(path, e))?;
    temp.as_file().sync_all().map_err(|e| io_error(path, e))?;
    step("temp-written", path);
    temp.persist(path).map_err(|e| io_error(path, e.error))?;
    sync_dir(dir)?;
    step("replaced", path);
    Ok(())
}

/// Marks a temporary file as being written: an exclusive lock on its open file description
/// until the returned guard is dropped (after the rename). A writer killed before its rename
/// loses the lock with its process, and the next writer of the same name removes the file
/// ([`sweep_stale_temps`]).
fn hold(file: &File) -> Option<nix::fcntl::Flock<File>> {
    let clone = file.try_clone().ok()?;
    nix::fcntl::Flock::lock(clone, nix::fcntl::FlockArg::LockExclusive).ok()
}

/// Removes the temporaries `<prefix>….tmp` in `dir` that no live writer holds: what a writer
/// killed between creating its temporary and renaming it left (fault injection found them,
/// tests/tests/fault_injection.rs). A temporary another writer is filling right now is locked
/// and stays. Best effort: a temporary that cannot be examined is left alone.
pub fn sweep_stale_temps(dir: &impl AsFd, prefix: &str) {
    let Ok(fd) = openat(dir, ".", DIR_FLAGS, Mode::empty()) else {
        return;
    };
    let Ok(mut listing) = nix::dir::Dir::from_fd(fd) else {
        return;
    };
    let names: Vec<std::ffi::CString> = listing
        .iter()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_owned())
        .filter(|name| {
            let bytes = name.to_bytes();
            bytes.starts_with(prefix.as_bytes())
                && bytes.ends_with(b".tmp")
                && bytes.len() > prefix.len() + 4
        })
        .collect();
    for name in names {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let Ok(fd) = openat(dir, name.as_c_str(), flags, Mode::empty()) else {
            continue;
        };
        if let Ok(_lock) =
            nix::fcntl::Flock::lock(File::from(fd), nix::fcntl::FlockArg::LockExclusiveNonblock)
        {
            // A file, or an empty directory of [`SafeDir::make_dir`] (a full one stays).
            if unlinkat(dir, name.as_c_str(), UnlinkatFlags::NoRemoveDir).is_err() {
                let _ = unlinkat(dir, name.as_c_str(), UnlinkatFlags::RemoveDir);
            }
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), FileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

/// Reads the regular file `path` without blocking on whatever else may be there: opened with
/// `O_NONBLOCK` and `O_NOFOLLOW` (a FIFO or device does not hold the reader, a link in the last
/// component is refused), its type checked on the descriptor, at most `limit` bytes read.
/// `Ok(None)` when it does not exist.
pub fn read_regular(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, FileError> {
    use std::io::Read;
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let fd = match nix::fcntl::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) => {
            return Err(FileError::NotFollowing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(io_error(path, e)),
    };
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(io_error(path, std::io::Error::other("not a regular file")));
    }
    let mut data = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| io_error(path, e))?;
    if data.len() as u64 > limit {
        return Err(io_error(
            path,
            std::io::Error::other(crate::msg!("larger than {limit} bytes")),
        ));
    }
    Ok(Some(data))
}

/// A directory opened without following symlinks; files below it are created through it.
#[derive(Debug)]
pub struct SafeDir {
    fd: OwnedFd,
    path: PathBuf,
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

impl SafeDir {
    /// Opens an absolute path component by component from `/`, refusing any symlink on the way.
    pub fn open(path: &Path) -> Result<SafeDir, FileError> {
        let root = nix::fcntl::open("/", DIR_FLAGS, Mode::empty())
            .map_err(|e| io_error(Path::new("/"), e))?;
        let mut dir = SafeDir {
            fd: root,
            path: PathBuf::from("/"),
        };
        for component in path.components() {
            match component {
                Component::RootDir => {}
                Component::Normal(name) => dir = dir.open_child(name)?,
                _ => {
                    return Err(FileError::BadName {
                        path: path.to_path_buf(),
                        name: component.as_os_str().to_string_lossy().into_owned(),
                    });
                }
            }
        }
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a directory whose path the caller trusts (root's own, e.g. a temporary directory it
    /// just made): links on the way are followed, a link in the last component is refused.
    pub fn open_trusted(path: &Path) -> Result<SafeDir, FileError> {
        match nix::fcntl::open(path, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(SafeDir {
                fd,
                path: path.to_path_buf(),
            }),
            Err(Errno::ELOOP | Errno::ENOTDIR) => Err(FileError::NotFollowing {
                path: path.to_path_buf(),
            }),
            Err(e) => Err(io_error(path, e)),
        }
    }

    /// Creates the directory `path`, which must not exist, as root's own output (the archive
    /// directory of podsec-save-oci): every directory above it must belong to root and be
    /// writable by nobody else, or be sticky (as /tmp), so no other user can rename it away,
    /// replace it, or put a link on the way to it; it is made with `mode` through its parent's
    /// descriptor. Whatever is at `path` already (a directory, a planted link) is refused.
    pub fn create_exclusive(path: &Path, mode: u32) -> Result<SafeDir, FileError> {
        let path = std::path::absolute(path).map_err(|e| io_error(path, e))?;
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(FileError::BadName {
                path: path.clone(),
                name: path.to_string_lossy().into_owned(),
            });
        };
        // The parent's real path, then every component of it opened without following links
        // and checked: a link on the way is resolved here, never later by a path.
        let parent = std::fs::canonicalize(parent).map_err(|e| io_error(parent, e))?;
        let mut dir = SafeDir::open(Path::new("/"))?;
        dir.check_trusted()?;
        for component in parent.components().skip(1) {
            dir = dir.open_child(component.as_os_str())?;
            dir.check_trusted()?;
        }
        let name = dir.check_name(name)?;
        let target = dir.path.join(name);
        match mkdirat(&dir.fd, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => return Err(FileError::Exists { path: target }),
            Err(e) => return Err(io_error(&target, e)),
        }
        step("mkdir", &target);
        let created = dir.open_child(name)?;
        created.set_mode_owner(mode, Owner::default())?;
        Ok(created)
    }

    /// Root's, and writable by no one else unless sticky.
    fn check_trusted(&self) -> Result<(), FileError> {
        let stat = self.stat()?;
        let reason = if stat.st_uid != 0 {
            crate::msg!("owned by uid {uid}, not root", uid = stat.st_uid)
        } else if stat.st_mode & 0o022 != 0 && stat.st_mode & 0o1000 == 0 {
            crate::msg!(
                "writable by others (mode {mode}) and not sticky",
                mode = format!("{:o}", stat.st_mode & 0o7777)
            )
        } else {
            return Ok(());
        };
        Err(FileError::Untrusted {
            path: self.path.clone(),
            reason,
        })
    }

    /// Creates the directory `name` here, which must not exist yet, with exactly `mode` and
    /// `owner`, set through its descriptor.
    pub fn create_dir_new(
        &self,
        name: &str,
        mode: u32,
        owner: Owner,
    ) -> Result<SafeDir, FileError> {
        let name = self.check_name(OsStr::new(name))?;
        mkdirat(&self.fd, name, Mode::from_bits_truncate(mode))
            .map_err(|e| io_error(&self.path.join(name), e))?;
        step("mkdir", &self.path.join(name));
        let child = self.open_child(name)?;
        child.set_mode_owner(mode, owner)?;
        Ok(child)
    }

    pub(crate) fn check_name<'a>(&self, name: &'a OsStr) -> Result<&'a OsStr, FileError> {
        let bytes = name.as_bytes();
        if bytes.is_empty()
            || bytes == b"."
            || bytes == b".."
            || bytes.contains(&b'/')
            || bytes.contains(&0)
        {
            return Err(FileError::BadName {
                path: self.path.clone(),
                name: name.to_string_lossy().into_owned(),
            });
        }
        Ok(name)
    }

    fn open_child(&self, name: &OsStr) -> Result<SafeDir, FileError> {
        let name = self.check_name(name)?;
        let path = self.path.join(name);
        match openat(&self.fd, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(SafeDir { fd, path }),
            Err(Errno::ELOOP | Errno::ENOTDIR) => Err(FileError::NotFollowing { path }),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    /// Makes the directory `name` here with exactly `mode` and `owner` in one step as others see
    /// it: made under a temporary name, given its mode and owner, then renamed into place (never
    /// over anything; when another process made `name` meanwhile, that one is taken). A run
    /// killed in between leaves only an empty temporary, which the next one removes; before,
    /// a kill between mkdir and chown left a root-owned ~/.config that no re-run fixed (fault
    /// injection found it).
    fn make_dir(&self, name: &OsStr, mode: u32, owner: Owner) -> Result<SafeDir, FileError> {
        let target = self.path.join(name);
        sweep_stale_temps(&self.fd, &format!(".{}.", name.to_string_lossy()));
        let mut made = None;
        for _ in 0..16 {
            let temp_name = format!(".{}.{:016x}.tmp", name.to_string_lossy(), random_u64());
            match mkdirat(
                &self.fd,
                temp_name.as_str(),
                Mode::from_bits_truncate(0o700),
            ) {
                Ok(()) => {
                    made = Some(temp_name);
                    break;
                }
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(io_error(&target, e)),
            }
        }
        let temp_name = made.ok_or_else(|| io_error(&target, Errno::EEXIST))?;
        let result = (|| -> Result<(), FileError> {
            let temp = self.open_child(OsStr::new(&temp_name))?;
            let making = File::from(temp.fd.try_clone().map_err(|e| io_error(&target, e))?);
            let _making = hold(&making);
            fchmod(&temp.fd, Mode::from_bits_truncate(mode)).map_err(|e| io_error(&target, e))?;
            owner.apply(&temp.fd).map_err(|e| io_error(&target, e))?;
            step("dir-prepared", &target);
            match nix::fcntl::renameat2(
                &self.fd,
                temp_name.as_str(),
                &self.fd,
                name,
                nix::fcntl::RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => {
                    File::from(self.fd.try_clone().map_err(|e| io_error(&self.path, e))?)
                        .sync_all()
                        .map_err(|e| io_error(&self.path, e))?;
                    step("mkdir", &target);
                    Ok(())
                }
                Err(Errno::EEXIST) => {
                    let _ = unlinkat(&self.fd, temp_name.as_str(), UnlinkatFlags::RemoveDir);
                    Ok(())
                }
                Err(e) => Err(io_error(&target, e)),
            }
        })();
        if result.is_err() {
            let _ = unlinkat(&self.fd, temp_name.as_str(), UnlinkatFlags::RemoveDir);
        }
        result?;
        self.open_child(name)
    }

    /// Opens (creating as needed, with `mode` and `owner`) the relative directory `relative`.
    pub fn create_dir_all(
        &self,
        relative: &Path,
        mode: u32,
        owner: Owner,
    ) -> Result<SafeDir, FileError> {
        let mut current = SafeDir {
            fd: self.fd.try_clone().map_err(|e| io_error(&self.path, e))?,
            path: self.path.clone(),
        };
        for component in relative.components() {
            let Component::Normal(name) = component else {
                return Err(FileError::BadName {
                    path: self.path.clone(),
                    name: relative.to_string_lossy().into_owned(),
                });
            };
            let name = current.check_name(name)?;
            let child = match current.open_child(name) {
                Err(FileError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    current.make_dir(name, mode, owner)?
                }
                other => other?,
            };
            current = child;
        }
        Ok(current)
    }

    /// Atomically replaces the file `name` in this directory. A symlink at `name` is replaced,
    /// never followed.
    pub fn write_file(
        &self,
        name: &str,
        contents: &[u8],
        mode: u32,
        owner: Owner,
    ) -> Result<(), FileError> {
        let name = self.check_name(OsStr::new(name))?;
        let target = self.path.join(name);
        sweep_stale_temps(&self.fd, &format!(".{}.", name.to_string_lossy()));
        let (temp_name, fd) = self.create_temp(name)?;
        let mut file = File::from(fd);
        let _writing = hold(&file);
        let result = (|| -> Result<(), FileError> {
            file.write_all(contents).map_err(|e| io_error(&target, e))?;
            fchmod(&file, Mode::from_bits_truncate(mode)).map_err(|e| io_error(&target, e))?;
            owner.apply(&file).map_err(|e| io_error(&target, e))?;
            file.sync_all().map_err(|e| io_error(&target, e))?;
            step("temp-written", &target);
            renameat(&self.fd, temp_name.as_str(), &self.fd, name)
                .map_err(|e| io_error(&target, e))?;
            File::from(self.fd.try_clone().map_err(|e| io_error(&self.path, e))?)
                .sync_all()
                .map_err(|e| io_error(&self.path, e))?;
            step("replaced", &target);
            Ok(())
        })();
        if result.is_err() {
            let _ = unlinkat(&self.fd, temp_name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        result
    }

    fn create_temp(&self, name: &OsStr) -> Result<(String, OwnedFd), FileError> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        for _ in 0..16 {
            let temp_name = format!(".{}.{:016x}.tmp", name.to_string_lossy(), random_u64());
            match openat(
                &self.fd,
                temp_name.as_str(),
                flags,
                Mode::from_bits_truncate(0o600),
            ) {
                Ok(fd) => return Ok((temp_name, fd)),
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(io_error(&self.path.join(name), e)),
            }
        }
        Err(io_error(&self.path.join(name), Errno::EEXIST))
    }

    /// Sets the mode and owner of this directory itself (through its descriptor).
    pub fn set_mode_owner(&self, mode: u32, owner: Owner) -> Result<(), FileError> {
        fchmod(&self.fd, Mode::from_bits_truncate(mode)).map_err(|e| io_error(&self.path, e))?;
        owner.apply(&self.fd).map_err(|e| io_error(&self.path, e))?;
        step("mode-owner", &self.path);
        Ok(())
    }

    /// Sets or clears the immutable attribute (`chattr +i`) of this directory through its
    /// descriptor. `Ok(false)` when the file system has no such attribute.
    pub fn set_immutable(&self, immutable: bool) -> Result<bool, FileError> {
        use std::os::fd::AsRawFd;
        let Some(flags) = inode_flags(self.fd.as_fd()).map_err(|e| io_error(&self.path, e))? else {
            return Ok(false);
        };
        let wanted = if immutable {
            flags | FS_IMMUTABLE_FL
        } else {
            flags & !FS_IMMUTABLE_FL
        };
        if wanted != flags {
            // SAFETY: FS_IOC_SETFLAGS reads one long through a valid pointer.
            match unsafe { set_flags(self.fd.as_raw_fd(), &wanted) } {
                Ok(_) => {}
                Err(Errno::ENOTTY | Errno::EOPNOTSUPP | Errno::EINVAL) => return Ok(false),
                Err(e) => return Err(io_error(&self.path, e)),
            }
        }
        Ok(true)
    }

    /// Reads the regular file `name` of this directory without following a symlink (a planted
    /// link to a secret must not make root read it); at most `limit` bytes.
    pub fn read_file(&self, name: &str, limit: u64) -> Result<Vec<u8>, FileError> {
        use std::io::Read;
        let name = self.check_name(OsStr::new(name))?;
        let path = self.path.join(name);
        let fd = match openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ELOOP) => return Err(FileError::NotFollowing { path }),
            Err(e) => return Err(io_error(&path, e)),
        };
        let file = File::from(fd);
        let meta = file.metadata().map_err(|e| io_error(&path, e))?;
        if !meta.is_file() {
            return Err(FileError::NotFollowing { path });
        }
        let mut data = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| io_error(&path, e))?;
        if data.len() as u64 > limit {
            return Err(io_error(
                &path,
                std::io::Error::other(crate::msg!("larger than {limit} bytes")),
            ));
        }
        Ok(data)
    }

    /// Whether an entry exists (without following it).
    pub fn has_entry(&self, name: &str) -> bool {
        let Ok(name) = self.check_name(OsStr::new(name)) else {
            return false;
        };
        nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
    }

    /// Opens the directory `name` of this directory without following a symlink; `Ok(None)`
    /// when there is no entry of that name.
    pub fn open_dir(&self, name: &str) -> Result<Option<SafeDir>, FileError> {
        match self.open_child(OsStr::new(name)) {
            Ok(dir) => Ok(Some(dir)),
            Err(FileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Owner, group and mode of this directory itself.
    pub fn stat(&self) -> Result<nix::sys::stat::FileStat, FileError> {
        nix::sys::stat::fstat(&self.fd).map_err(|e| io_error(&self.path, e))
    }

    /// Whether the calling process (its effective ids, ACLs included) may create entries here.
    pub fn writable(&self) -> bool {
        nix::unistd::faccessat(
            &self.fd,
            ".",
            nix::unistd::AccessFlags::W_OK,
            AtFlags::AT_EACCESS,
        )
        .is_ok()
    }

    /// Creates a new file with `contents` and `mode` under the first of `names` that has no entry
    /// yet, and returns that name (`Ok(None)`: all were taken). The file is written under a
    /// temporary name and linked into place, so it appears complete and never replaces anything.
    pub fn create_new_file(
        &self,
        names: impl IntoIterator<Item = String>,
        contents: &[u8],
        mode: u32,
    ) -> Result<Option<String>, FileError> {
        sweep_stale_temps(&self.fd, ".new.");
        let (temp_name, fd) = self.create_temp(OsStr::new("new"))?;
        let mut file = File::from(fd);
        let _writing = hold(&file);
        let result = (|| -> Result<Option<String>, FileError> {
            let temp_path = self.path.join(&temp_name);
            file.write_all(contents)
                .map_err(|e| io_error(&temp_path, e))?;
            fchmod(&file, Mode::from_bits_truncate(mode)).map_err(|e| io_error(&temp_path, e))?;
            file.sync_all().map_err(|e| io_error(&temp_path, e))?;
            for name in names {
                let name = self.check_name(OsStr::new(&name))?;
                match nix::unistd::linkat(
                    &self.fd,
                    temp_name.as_str(),
                    &self.fd,
                    name,
                    AtFlags::empty(),
                ) {
                    Ok(()) => {
                        step("linked", &self.path.join(name));
                        return Ok(Some(name.to_string_lossy().into_owned()));
                    }
                    Err(Errno::EEXIST) => continue,
                    Err(e) => return Err(io_error(&self.path.join(name), e)),
                }
            }
            Ok(None)
        })();
        let _ = unlinkat(&self.fd, temp_name.as_str(), UnlinkatFlags::NoRemoveDir);
        if matches!(result, Ok(Some(_))) {
            File::from(self.fd.try_clone().map_err(|e| io_error(&self.path, e))?)
                .sync_all()
                .map_err(|e| io_error(&self.path, e))?;
        }
        result
    }

    /// The names in this directory (without `.` and `..`), sorted.
    pub fn list(&self) -> Result<Vec<std::ffi::OsString>, FileError> {
        let fd =
            openat(&self.fd, ".", DIR_FLAGS, Mode::empty()).map_err(|e| io_error(&self.path, e))?;
        let mut dir = nix::dir::Dir::from_fd(fd).map_err(|e| io_error(&self.path, e))?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| io_error(&self.path, e))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Moves the entry `name` (whatever it is, links included, never followed) into `to`
    /// under the same name, which must be free there.
    pub fn move_entry(&self, name: &OsStr, to: &SafeDir) -> Result<(), FileError> {
        let name = self.check_name(name)?;
        nix::fcntl::renameat2(
            &self.fd,
            name,
            &to.fd,
            name,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(|e| io_error(&self.path.join(name), e))?;
        step("moved", &to.path.join(name));
        Ok(())
    }

    /// Removes the empty directory `name` (rmdir: never a file, never through a link).
    pub fn remove_empty_dir(&self, name: &OsStr) -> Result<(), FileError> {
        let name = self.check_name(name)?;
        unlinkat(&self.fd, name, UnlinkatFlags::RemoveDir)
            .map_err(|e| io_error(&self.path.join(name), e))
    }

    /// Changes the owner of an entry without following it if it is a symlink.
    pub fn chown_entry(&self, name: &str, owner: Owner) -> Result<(), FileError> {
        let name = self.check_name(OsStr::new(name))?;
        fchownat(
            &self.fd,
            name,
            owner.uid.map(Uid::from_raw),
            owner.gid.map(Gid::from_raw),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io_error(&self.path.join(name), e))?;
        step("chown", &self.path.join(name));
        Ok(())
    }
}

impl AsFd for SafeDir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

const FS_IMMUTABLE_FL: nix::libc::c_long = 0x10;
nix::ioctl_read!(get_flags, b'f', 1, nix::libc::c_long);
nix::ioctl_write_ptr!(set_flags, b'f', 2, nix::libc::c_long);

/// The inode flags (`lsattr`) of an open file or directory; `None` where the file system has
/// none.
fn inode_flags(fd: std::os::fd::BorrowedFd<'_>) -> nix::Result<Option<nix::libc::c_long>> {
    use std::os::fd::AsRawFd;
    let mut flags: nix::libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one long through a valid pointer.
    match unsafe { get_flags(fd.as_raw_fd(), &mut flags) } {
        Ok(_) => Ok(Some(flags)),
        Err(Errno::ENOTTY | Errno::EOPNOTSUPP | Errno::EINVAL) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Unpredictable enough for temporary names (they are created with `O_EXCL` anyway).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.json");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new", 0o644, Owner::default()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode_of(&path), 0o644);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary file left behind");
    }

    /// A temporary that a killed writer left is removed by the next write of the same name; one
    /// a live writer holds (locked) stays.
    #[test]
    fn stale_temporaries_of_killed_writers_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(dir.path().join(".hosts.dead01.tmp"), "half").unwrap();
        let busy = dir.path().join(".hosts.busy01.tmp");
        std::fs::write(&busy, "being written").unwrap();
        let held = hold(&File::open(&busy).unwrap()).unwrap();
        std::fs::write(dir.path().join(".other.dead02.tmp"), "not ours").unwrap();
        write_atomic(&path, b"new", 0o644, Owner::default()).unwrap();
        assert!(!dir.path().join(".hosts.dead01.tmp").exists());
        assert!(busy.exists() && dir.path().join(".other.dead02.tmp").exists());
        drop(held);
        let safe = SafeDir::open(dir.path()).unwrap();
        safe.write_file("hosts", b"newer", 0o644, Owner::default())
            .unwrap();
        assert!(!busy.exists());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "newer");
    }

    /// Directories appear with their mode and owner already set (made under a temporary name,
    /// renamed into place); the empty temporary of a killed run is removed, a full one stays.
    #[test]
    fn new_directories_appear_complete_and_killed_runs_temporaries_are_swept() {
        assert!(nix::unistd::geteuid().is_root(), "needs root (owners)");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("..config.dead.tmp")).unwrap();
        std::fs::create_dir_all(dir.path().join("..config.full.tmp/x")).unwrap();
        let safe = SafeDir::open(dir.path()).unwrap();
        let made = safe
            .create_dir_all(
                Path::new(".config/containers"),
                0o750,
                Owner::new(65534, 65534),
            )
            .unwrap();
        for path in [dir.path().join(".config"), made.path().to_path_buf()] {
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!(meta.permissions().mode() & 0o7777, 0o750);
            assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534);
        }
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["..config.full.tmp", ".config"]);
    }

    #[test]
    fn safe_dir_refuses_symlinked_components() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        symlink(&victim, home.join(".config")).unwrap();
        let safe = SafeDir::open(&home).unwrap();
        let err = safe
            .create_dir_all(Path::new(".config/containers"), 0o700, Owner::default())
            .unwrap_err();
        assert!(matches!(err, FileError::NotFollowing { .. }), "{err}");
        assert!(
            std::fs::read_dir(&victim).unwrap().next().is_none(),
            "wrote through the link"
        );
        // a link anywhere in the opened path is refused too
        assert!(matches!(
            SafeDir::open(&home.join(".config")),
            Err(FileError::NotFollowing { .. })
        ));
    }

    #[test]
    fn safe_write_replaces_a_planted_symlink_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "precious").unwrap();
        let user_dir = dir.path().join("u");
        std::fs::create_dir(&user_dir).unwrap();
        symlink(&target, user_dir.join("policy.json")).unwrap();
        let safe = SafeDir::open(&user_dir).unwrap();
        safe.write_file("policy.json", b"{}", 0o644, Owner::default())
            .unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        let written = user_dir.join("policy.json");
        assert!(
            !std::fs::symlink_metadata(&written)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&written).unwrap(), "{}");
        assert_eq!(mode_of(&written), 0o644);
    }

    #[test]
    fn safe_read_refuses_symlinks_and_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "s3cret").unwrap();
        std::fs::write(dir.path().join("plain"), "hello").unwrap();
        symlink(dir.path().join("secret"), dir.path().join("link")).unwrap();
        let safe = SafeDir::open(dir.path()).unwrap();
        assert_eq!(safe.read_file("plain", 100).unwrap(), b"hello");
        assert!(matches!(
            safe.read_file("link", 100),
            Err(FileError::NotFollowing { .. })
        ));
        assert!(safe.read_file("plain", 3).is_err());
        assert!(safe.has_entry("link") && !safe.has_entry("missing"));
    }

    #[test]
    fn regular_reads_refuse_fifos_devices_and_links_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        // Without O_NONBLOCK this open would wait for a writer forever.
        let err = read_regular(&fifo, 10).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = read_regular(Path::new("/dev/zero"), 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
        std::fs::write(dir.path().join("f"), "12345").unwrap();
        symlink(dir.path().join("f"), dir.path().join("l")).unwrap();
        assert!(matches!(
            read_regular(&dir.path().join("l"), 10),
            Err(FileError::NotFollowing { .. })
        ));
        assert_eq!(
            read_regular(&dir.path().join("f"), 10).unwrap().unwrap(),
            b"12345"
        );
        assert!(read_regular(&dir.path().join("f"), 4).is_err());
        assert!(read_regular(&dir.path().join("none"), 4).unwrap().is_none());
    }

    #[test]
    fn new_directories_are_exclusive_and_trusted_opens_refuse_a_last_link() {
        let dir = tempfile::tempdir().unwrap();
        let safe = SafeDir::open_trusted(dir.path()).unwrap();
        let made = safe.create_dir_new("w", 0o700, Owner::default()).unwrap();
        assert_eq!(mode_of(made.path()), 0o700);
        assert!(safe.create_dir_new("w", 0o700, Owner::default()).is_err());
        symlink(dir.path().join("w"), dir.path().join("l")).unwrap();
        assert!(safe.create_dir_new("l", 0o700, Owner::default()).is_err());
        assert!(matches!(
            SafeDir::open_trusted(&dir.path().join("l")),
            Err(FileError::NotFollowing { .. })
        ));
    }

    #[test]
    fn exclusive_output_directories_refuse_what_exists_and_untrusted_parents() {
        assert!(nix::unistd::geteuid().is_root(), "needs root (owners)");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let made = SafeDir::create_exclusive(&out, 0o755).unwrap();
        assert_eq!(made.path(), out);
        assert_eq!(mode_of(&out), 0o755);
        assert!(matches!(
            SafeDir::create_exclusive(&out, 0o755),
            Err(FileError::Exists { .. })
        ));
        // a link planted where the directory will be is not followed
        let victim = dir.path().join("victim");
        symlink(&victim, dir.path().join("planted")).unwrap();
        assert!(matches!(
            SafeDir::create_exclusive(&dir.path().join("planted"), 0o755),
            Err(FileError::Exists { .. })
        ));
        assert!(!victim.exists());
        // a parent another user owns, or may write without the sticky bit
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        nix::unistd::chown(&theirs, Some(Uid::from_raw(65534)), None).unwrap();
        let err = SafeDir::create_exclusive(&theirs.join("out"), 0o755).unwrap_err();
        assert!(
            err.to_string().contains("owned by uid 65534, not root"),
            "{err}"
        );
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = SafeDir::create_exclusive(&open.join("out"), 0o755).unwrap_err();
        assert!(err.to_string().contains("writable by others"), "{err}");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        SafeDir::create_exclusive(&open.join("out"), 0o755).unwrap();
        // a link on the way is resolved first, and what it leads to is checked
        symlink(&theirs, dir.path().join("via")).unwrap();
        assert!(matches!(
            SafeDir::create_exclusive(&dir.path().join("via/out"), 0o755),
            Err(FileError::Untrusted { .. })
        ));
        assert!(!theirs.join("out").exists() && !open.join("x").exists());
    }

    #[test]
    fn safe_dir_creates_nested_directories_with_exact_modes() {
        let dir = tempfile::tempdir().unwrap();
        let safe = SafeDir::open(dir.path()).unwrap();
        let nested = safe
            .create_dir_all(Path::new("a/b/c"), 0o750, Owner::default())
            .unwrap();
        assert_eq!(nested.path(), dir.path().join("a/b/c"));
        assert_eq!(mode_of(&dir.path().join("a/b")), 0o750);
        assert!(matches!(
            safe.write_file("../x", b"", 0o600, Owner::default()),
            Err(FileError::BadName { .. })
        ));
    }

    #[test]
    fn new_files_take_the_first_free_name_and_never_replace_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("signature-1"), "theirs").unwrap();
        symlink("/etc/passwd", dir.path().join("signature-2")).unwrap();
        let safe = SafeDir::open(dir.path()).unwrap();
        let names = || (1..).map(|i| format!("signature-{i}"));
        let name = safe.create_new_file(names(), b"ours", 0o644).unwrap();
        assert_eq!(name.as_deref(), Some("signature-3"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("signature-1")).unwrap(),
            "theirs"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("signature-3")).unwrap(),
            "ours"
        );
        assert_eq!(mode_of(&dir.path().join("signature-3")), 0o644);
        let taken = safe
            .create_new_file(["signature-1".to_string()], b"x", 0o644)
            .unwrap();
        assert_eq!(taken, None);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            3,
            "temporary file left behind"
        );
        assert!(safe.open_dir("missing").unwrap().is_none());
        assert!(matches!(
            safe.open_dir("signature-2"),
            Err(FileError::NotFollowing { .. })
        ));
        assert!(safe.writable());
    }
}
