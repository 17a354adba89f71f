//! Files and directories root acts on: owned by root, writable by nobody else, on the whole way.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use podsec_common::host::files::FileError;
use podsec_common::i18n::Message;
use podsec_common::msg;

use super::NodeConfigError;

/// Why [`read_root_trusted`] refused a file.
#[derive(Debug)]
pub(crate) enum TrustedReadError {
    /// Not a file root may act on, and why.
    Untrusted(Message),
    Io(std::io::Error),
}

/// The bytes of the file at `path`, read as root reads a file it acts on: a regular file (a
/// symlink refused, a FIFO or device refused on the descriptor, never opened blocking), owned
/// by root, not writable by group or others, at most `max` bytes, in trusted directories
/// ([`check_trusted_ancestors`]). node.toml and the calico manifest are read so.
pub(crate) fn read_root_trusted(path: &Path, max: u64) -> Result<Vec<u8>, TrustedReadError> {
    use TrustedReadError::{Io, Untrusted};
    check_trusted_ancestors(path).map_err(Untrusted)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(
            nix::libc::O_NOFOLLOW
                | nix::libc::O_CLOEXEC
                | nix::libc::O_NONBLOCK
                | nix::libc::O_NOCTTY,
        )
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::ELOOP) {
                Untrusted(msg!("it is a symbolic link"))
            } else {
                Io(e)
            }
        })?;
    let meta = file.metadata().map_err(Io)?;
    if !meta.file_type().is_file() {
        return Err(Untrusted(msg!("not a regular file")));
    }
    if meta.uid() != 0 {
        return Err(Untrusted(msg!("owned by uid {}, not by root", meta.uid())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Untrusted(msg!(
            "mode {:04o} lets others write it",
            meta.mode() & 0o7777
        )));
    }
    let mut data = Vec::new();
    file.take(max + 1).read_to_end(&mut data).map_err(Io)?;
    if data.len() as u64 > max {
        let reason = msg!("larger than {MAX_SIZE} bytes", MAX_SIZE = max);
        return Err(Untrusted(reason));
    }
    Ok(data)
}

/// Every existing directory from `/` down to `path`'s parent: root-owned, a directory (not a
/// symlink), and not writable by group or others unless sticky.
pub(crate) fn check_trusted_ancestors(path: &Path) -> Result<(), Message> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Message::of(&e))?
            .join(path)
    };
    let mut current = PathBuf::from("/");
    let parent = absolute.parent().unwrap_or(Path::new("/"));
    let mut components = vec![current.clone()];
    for component in parent.components().skip(1) {
        current.push(component);
        components.push(current.clone());
    }
    for dir in components {
        let meta = match std::fs::symlink_metadata(&dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(crate::path_message(&dir, &e)),
        };
        if meta.file_type().is_symlink() {
            // Distribution symlinks (/var/run -> /run) are root's; a user's would be refused below.
            let target = std::fs::metadata(&dir).map_err(|e| crate::path_message(&dir, &e))?;
            if meta.uid() != 0 || !target.is_dir() {
                return Err(msg!(
                    "{} is a symbolic link not owned by root",
                    dir.display()
                ));
            }
            continue;
        }
        if !meta.is_dir() {
            return Err(msg!("{} is not a directory", dir.display()));
        }
        if meta.uid() != 0 {
            return Err(msg!(
                "directory {} is owned by uid {}, not by root",
                dir.display(),
                meta.uid()
            ));
        }
        let sticky = meta.mode() & 0o1000 != 0;
        if meta.mode() & 0o022 != 0 && !sticky {
            return Err(msg!(
                "directory {} (mode {:04o}) is writable by others",
                dir.display(),
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

pub(super) fn create_trusted_dirs(dir: &Path) -> Result<(), NodeConfigError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_trusted_dirs(parent)?;
    }
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(NodeConfigError::Write(FileError::Io {
                path: dir.to_path_buf(),
                source,
            }));
        }
    }
    // The umask may have taken bits; the owner is whoever runs this (root, checked on load).
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).map_err(
        |source| {
            NodeConfigError::Write(FileError::Io {
                path: dir.to_path_buf(),
                source,
            })
        },
    )
}
