//! Container storage as podman keeps it, read by root without trusting the users who own it.
//!
//! Where each account's store is: the `graphroot` of storage.conf(5) (root: the system file;
//! rootless: `~/.config/containers/storage.conf`, else the system file's `rootless_storage_path`,
//! else `~/.local/share/containers/storage`; u7s-admin's CRI-O store as well). What a store holds:
//! `<driver>-containers/containers.json` and `<driver>-images/images.json` of the overlay and vfs
//! drivers, and where each container's writable layer is (`overlay/<layer>/diff`,
//! `vfs/dir/<layer>`).
//!
//! Everything below a user's home or graphroot is the user's to change, so it is opened without
//! following symlinks (`openat` with `O_NOFOLLOW`, one component at a time), files are read only
//! when they are regular and not too large, and layer names must be plain names.

use podsec_common::i18n::Message;
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::{Mode, fstat};
use podsec_common::msg;
use serde::Deserialize;

/// The system storage.conf files, in podman's order of preference.
pub const SYSTEM_STORAGE_CONF: [&str; 2] = [
    "/etc/containers/storage.conf",
    "/usr/share/containers/storage.conf",
];
pub const ROOT_GRAPHROOT: &str = "/var/lib/containers/storage";
/// Relative to a rootless user's home.
pub const ROOTLESS_GRAPHROOT: &str = ".local/share/containers/storage";
/// The account that runs rootless Kubernetes, and its CRI-O store (relative to its home).
pub const U7S_ADMIN: &str = "u7s-admin";
pub const U7S_GRAPHROOT: &str = ".local/share/usernetes/containers/storage";
/// Metadata files larger than this are refused (podman's are kilobytes per container).
const METADATA_LIMIT: u64 = 64 << 20;

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum StorageError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: Errno },
    #[error("{path}: refusing to follow a symbolic link")]
    Symlink { path: PathBuf },
    #[error("{path}: not a regular file")]
    NotRegular { path: PathBuf },
    #[error("{path}: larger than {METADATA_LIMIT} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: belongs to uid {found}, not to {user} (uid {uid})")]
    Owner {
        path: PathBuf,
        user: String,
        uid: u32,
        found: u32,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: Message },
}

impl StorageError {
    /// The path does not exist (yet): a store not created, a container gone.
    pub fn is_missing(&self) -> bool {
        matches!(self, StorageError::Io { source, .. } if *source == Errno::ENOENT)
    }
}

/// The two storage drivers podman uses here: overlay (root; rootless on native overlay) and vfs
/// (rootless where the home directory is itself on overlayfs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Driver {
    Overlay,
    Vfs,
}

impl Driver {
    pub const ALL: [Driver; 2] = [Driver::Overlay, Driver::Vfs];

    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Vfs => "vfs",
        }
    }

    /// `overlay-containers`, `vfs-containers`: where containers.json is.
    pub fn containers_dir(self) -> String {
        format!("{}-containers", self.name())
    }

    pub fn images_dir(self) -> String {
        format!("{}-images", self.name())
    }

    /// The writable layer of a container, relative to the graphroot: what the container sees as
    /// `/` and changes.
    pub fn layer_dir(self, layer: &str) -> PathBuf {
        match self {
            Driver::Overlay => Path::new("overlay").join(layer).join("diff"),
            Driver::Vfs => Path::new("vfs").join("dir").join(layer),
        }
    }
}

/// What storage.conf says, as far as finding a store goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageConf {
    pub driver: Option<String>,
    pub graphroot: Option<String>,
    pub rootless_storage_path: Option<String>,
}

impl StorageConf {
    /// Parses the `[storage]` table of a storage.conf.
    pub fn parse(text: &str) -> Result<StorageConf, Message> {
        let doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            Message::verbatim(e.to_string().lines().next().unwrap_or_default())
        })?;
        let get = |key: &str| {
            doc.get("storage")
                .and_then(|s| s.get(key))
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Ok(StorageConf {
            driver: get("driver"),
            graphroot: get("graphroot"),
            rootless_storage_path: get("rootless_storage_path"),
        })
    }

    /// The first system storage.conf that exists (missing: the defaults).
    pub fn system() -> Result<StorageConf, StorageError> {
        for path in SYSTEM_STORAGE_CONF {
            let path = Path::new(path);
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    return StorageConf::parse(&text).map_err(|message| StorageError::Format {
                        path: path.to_path_buf(),
                        message,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(StorageError::Io {
                        path: path.to_path_buf(),
                        source: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                    });
                }
            }
        }
        Ok(StorageConf::default())
    }
}

/// `$HOME`, `$UID` and `$USER` in a rootless path, as containers/storage expands them.
pub fn expand_user_path(path: &str, account: &Owner) -> String {
    path.replace("$HOME", &account.home.to_string_lossy())
        .replace("${HOME}", &account.home.to_string_lossy())
        .replace("$UID", &account.uid.to_string())
        .replace("${UID}", &account.uid.to_string())
        .replace("$USER", &account.name)
        .replace("${USER}", &account.name)
}

/// Whose a store is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// One store: an owner and a graphroot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Store {
    pub owner: Owner,
    pub graphroot: PathBuf,
    /// A user's store (everything below the graphroot is the user's); false for root's.
    pub rootless: bool,
}

impl Store {
    /// root's store: the system `graphroot`, or /var/lib/containers/storage.
    pub fn root(system: &StorageConf) -> Store {
        Store {
            owner: Owner {
                name: "root".into(),
                uid: 0,
                gid: 0,
                home: PathBuf::from("/root"),
            },
            graphroot: PathBuf::from(system.graphroot.as_deref().unwrap_or(ROOT_GRAPHROOT)),
            rootless: false,
        }
    }

    /// The stores of a rootless account: its configured (or default) graphroot, and for
    /// u7s-admin also the CRI-O store of rootless Kubernetes.
    pub fn rootless(owner: &Owner, system: &StorageConf, user: Option<&StorageConf>) -> Vec<Store> {
        let configured = user
            .and_then(|c| c.graphroot.clone())
            .or_else(|| system.rootless_storage_path.clone());
        let graphroot = match configured {
            Some(path) => {
                let path = PathBuf::from(expand_user_path(&path, owner));
                if path.is_absolute() {
                    path
                } else {
                    owner.home.join(path)
                }
            }
            None => owner.home.join(ROOTLESS_GRAPHROOT),
        };
        let mut stores = vec![Store {
            owner: owner.clone(),
            graphroot,
            rootless: true,
        }];
        if owner.name == U7S_ADMIN {
            stores.push(Store {
                owner: owner.clone(),
                graphroot: owner.home.join(U7S_GRAPHROOT),
                rootless: true,
            });
        }
        stores
    }

    /// Whether podman itself uses this store by default (not u7s-admin's CRI-O store, which
    /// podman reaches only with `--root`).
    pub fn podman_default(&self) -> bool {
        !self.graphroot.ends_with(U7S_GRAPHROOT)
    }

    /// Opens the graphroot. root's is root's configuration and may be reached through
    /// symlinks; a user's is opened from the home directory without following any symlink
    /// below it, or (configured outside the home) must belong to the user.
    pub fn open(&self) -> Result<Beneath, StorageError> {
        if !self.rootless {
            return Beneath::open(&self.graphroot);
        }
        if let Ok(relative) = self.graphroot.strip_prefix(&self.owner.home) {
            let home = Beneath::open(&self.owner.home)?;
            home.check_owner(&self.owner)?;
            return home.open_dir(relative);
        }
        let dir = Beneath::open(&self.graphroot)?;
        dir.check_owner(&self.owner)?;
        Ok(dir)
    }

    /// The deepest existing directory on the way to the graphroot (never above the home of a
    /// rootless owner), and the path from there on: where a store that is not there yet will appear.
    pub fn nearest_existing(&self) -> Option<(Beneath, PathBuf)> {
        let top: &Path = if !self.rootless || !self.graphroot.starts_with(&self.owner.home) {
            Path::new("/")
        } else {
            &self.owner.home
        };
        let mut candidate = self.graphroot.clone();
        loop {
            let opened = if top == Path::new("/") {
                Beneath::open(&candidate)
            } else {
                Beneath::open(top).and_then(|home| {
                    home.open_dir(candidate.strip_prefix(top).unwrap_or(Path::new("")))
                })
            };
            if let Ok(dir) = opened {
                let rest = self
                    .graphroot
                    .strip_prefix(&candidate)
                    .unwrap_or(Path::new(""))
                    .to_path_buf();
                return Some((dir, rest));
            }
            if candidate == top || !candidate.pop() {
                return None;
            }
        }
    }
}

/// Every account that may have a rootless store: not root, with a home directory that exists
/// and belongs to it (system accounts sharing `/`, `/nonexistent` or `/usr/sbin` are not).
pub fn rootless_accounts() -> Vec<Owner> {
    let mut owners: Vec<Owner> = podsec_common::host::users::all_accounts()
        .into_iter()
        .filter(|account| account.uid != 0 && !account.home.as_os_str().is_empty())
        .map(|account| Owner {
            name: account.name,
            uid: account.uid,
            gid: account.gid,
            home: account.home,
        })
        .collect();
    owners.retain(|owner| {
        owner.home.is_absolute()
            && owner.home != Path::new("/")
            && Beneath::open(&owner.home)
                .and_then(|d| d.check_owner(owner))
                .is_ok()
    });
    owners.sort();
    owners.dedup_by(|a, b| a.uid == b.uid && a.home == b.home);
    owners
}

/// A user's own storage.conf (`~/.config/containers/storage.conf`), read without following
/// symlinks; `None` when there is none.
pub fn user_storage_conf(owner: &Owner) -> Result<Option<StorageConf>, StorageError> {
    let home = Beneath::open(&owner.home)?;
    let path = Path::new(".config/containers/storage.conf");
    match home.read_file(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            StorageConf::parse(&text)
                .map(Some)
                .map_err(|message| StorageError::Format {
                    path: owner.home.join(path),
                    message,
                })
        }
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every store on this machine: root's, and each rootless account's (duplicates, such as
/// u7s-admin's two paths to one store, once). Accounts whose configuration cannot be read are
/// returned as errors next to the stores.
pub fn all_stores() -> (Vec<Store>, Vec<StorageError>) {
    let mut errors = Vec::new();
    let system = StorageConf::system().unwrap_or_else(|e| {
        errors.push(e);
        StorageConf::default()
    });
    let mut stores = vec![Store::root(&system)];
    for owner in rootless_accounts() {
        let user = user_storage_conf(&owner).unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        stores.extend(Store::rootless(&owner, &system, user.as_ref()));
    }
    (stores, errors)
}

/// A container as containers.json records it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub image: String,
    pub layer: String,
}

impl ContainerRecord {
    /// The name podman shows (the first), else the ID.
    pub fn display_name(&self) -> &str {
        self.names.first().map(String::as_str).unwrap_or(&self.id)
    }
}

/// An image as images.json records it. Untagged images have no names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageRecord {
    pub id: String,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub digest: Option<String>,
}

/// A name used as one path component below a store: storage IDs are hex, but the file is the
/// user's, so anything that could leave the directory is refused.
pub fn plain_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn parse_records<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    path: &Path,
) -> Result<Vec<T>, StorageError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    serde_json::from_slice(bytes).map_err(|e| StorageError::Format {
        path: path.to_path_buf(),
        message: Message::verbatim(e.to_string()),
    })
}

/// The containers of one driver of a store (a missing file: none). Records whose layer is not
/// a plain name are dropped.
pub fn read_containers(
    graphroot: &Beneath,
    driver: Driver,
) -> Result<Vec<ContainerRecord>, StorageError> {
    let relative = Path::new(&driver.containers_dir()).join("containers.json");
    let bytes = match graphroot.read_file(&relative) {
        Ok(bytes) => bytes,
        Err(e) if e.is_missing() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut records: Vec<ContainerRecord> =
        parse_records(&bytes, &graphroot.path().join(&relative))?;
    records.retain(|r| plain_component(&r.layer) && plain_component(&r.id));
    Ok(records)
}

/// The images of one driver of a store (a missing file: none).
pub fn read_images(graphroot: &Beneath, driver: Driver) -> Result<Vec<ImageRecord>, StorageError> {
    let relative = Path::new(&driver.images_dir()).join("images.json");
    let bytes = match graphroot.read_file(&relative) {
        Ok(bytes) => bytes,
        Err(e) if e.is_missing() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut records: Vec<ImageRecord> = parse_records(&bytes, &graphroot.path().join(&relative))?;
    records.retain(|r| plain_component(&r.id));
    Ok(records)
}

/// An open directory; what is below it is opened relative to it without following symlinks.
#[derive(Debug)]
pub struct Beneath {
    fd: OwnedFd,
    path: PathBuf,
}

const TRUSTED_DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC);
const DIR_FLAGS: OFlag = TRUSTED_DIR_FLAGS.union(OFlag::O_NOFOLLOW);

impl Beneath {
    /// Opens a trusted absolute path (root's configuration, a home directory from the account
    /// database): symlinks on the way are followed.
    pub fn open(path: &Path) -> Result<Beneath, StorageError> {
        match open(path, TRUSTED_DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(Beneath {
                fd,
                path: path.to_path_buf(),
            }),
            Err(e) => Err(open_error(path, e)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `/proc/self/fd/N`: this very directory, for calls that take a path (inotify_add_watch
    /// resolves it to the open directory, whatever happens to the path meanwhile).
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    pub fn owner_uid(&self) -> Result<u32, StorageError> {
        fstat(self.fd.as_fd())
            .map(|st| st.st_uid)
            .map_err(|source| StorageError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Device and inode: the identity of the directory.
    pub fn identity(&self) -> Result<(u64, u64), StorageError> {
        fstat(self.fd.as_fd())
            .map(|st| (st.st_dev, st.st_ino))
            .map_err(|source| StorageError::Io {
                path: self.path.clone(),
                source,
            })
    }

    fn check_owner(&self, owner: &Owner) -> Result<(), StorageError> {
        let found = self.owner_uid()?;
        if found == owner.uid {
            Ok(())
        } else {
            Err(StorageError::Owner {
                path: self.path.clone(),
                user: owner.name.clone(),
                uid: owner.uid,
                found,
            })
        }
    }

    /// Opens one entry that must be a directory, not a symlink.
    pub fn open_child(&self, name: &OsStr) -> Result<Beneath, StorageError> {
        let path = self.path.join(name);
        if name.is_empty() || name == "." || name == ".." || name.as_bytes().contains(&b'/') {
            return Err(StorageError::Format {
                path,
                message: msg!("not a plain name"),
            });
        }
        match openat(self.fd.as_fd(), name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(Beneath { fd, path }),
            Err(e) => Err(open_error(&path, e)),
        }
    }

    /// Opens a relative directory path component by component.
    pub fn open_dir(&self, relative: &Path) -> Result<Beneath, StorageError> {
        let mut dir = Beneath {
            fd: self.fd.try_clone().map_err(|e| StorageError::Io {
                path: self.path.clone(),
                source: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            })?,
            path: self.path.clone(),
        };
        for component in relative.components() {
            match component {
                Component::Normal(name) => dir = dir.open_child(name)?,
                Component::CurDir => {}
                _ => {
                    return Err(StorageError::Format {
                        path: self.path.join(relative),
                        message: msg!("not a relative path of plain names"),
                    });
                }
            }
        }
        Ok(dir)
    }

    /// Reads a regular file below this directory (non-blocking open: a FIFO planted in its
    /// place cannot hang the reader), at most [`METADATA_LIMIT`] bytes.
    pub fn read_file(&self, relative: &Path) -> Result<Vec<u8>, StorageError> {
        let path = self.path.join(relative);
        let (parent, name) = match (relative.parent(), relative.file_name()) {
            (Some(parent), Some(name)) => (self.open_dir(parent)?, name),
            _ => {
                return Err(StorageError::Format {
                    path,
                    message: msg!("not a file name"),
                });
            }
        };
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = openat(parent.fd.as_fd(), name, flags, Mode::empty())
            .map_err(|e| open_error(&path, e))?;
        let st = fstat(fd.as_fd()).map_err(|source| StorageError::Io {
            path: path.clone(),
            source,
        })?;
        if st.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG {
            return Err(StorageError::NotRegular { path });
        }
        if st.st_size as u64 > METADATA_LIMIT {
            return Err(StorageError::TooLarge { path });
        }
        let mut bytes = Vec::with_capacity(st.st_size as usize);
        std::fs::File::from(fd)
            .take(METADATA_LIMIT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| StorageError::Io {
                path: path.clone(),
                source: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            })?;
        if bytes.len() as u64 > METADATA_LIMIT {
            return Err(StorageError::TooLarge { path });
        }
        Ok(bytes)
    }

    /// Every entry, with whether it is a directory (symlinks are not).
    pub fn entries(&self) -> Result<Vec<(std::ffi::OsString, bool)>, StorageError> {
        let io = |e: std::io::Error| StorageError::Io {
            path: self.path.clone(),
            source: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        };
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(self.proc_path()).map_err(io)? {
            let entry = entry.map_err(io)?;
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            entries.push((entry.file_name(), is_dir));
        }
        entries.sort();
        Ok(entries)
    }
}

fn open_error(path: &Path, e: Errno) -> StorageError {
    match e {
        Errno::ELOOP => StorageError::Symlink {
            path: path.to_path_buf(),
        },
        // O_DIRECTORY on a symlink (O_NOFOLLOW) or a file
        Errno::ENOTDIR if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) => {
            StorageError::Symlink {
                path: path.to_path_buf(),
            }
        }
        _ => StorageError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice(home: &Path) -> Owner {
        Owner {
            name: "alice".into(),
            uid: nix::unistd::getuid().as_raw(),
            gid: 0,
            home: home.to_path_buf(),
        }
    }

    #[test]
    fn storage_conf_keys_and_rootless_graphroots() {
        let system = StorageConf::parse(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"/srv/containers\"\n\
             rootless_storage_path = \"$HOME/.store-$USER-$UID\"\n[storage.options]\nmount_program = \"x\"\n",
        )
        .unwrap();
        assert_eq!(system.driver.as_deref(), Some("overlay"));
        assert_eq!(Store::root(&system).graphroot, Path::new("/srv/containers"));
        assert_eq!(
            Store::root(&StorageConf::default()).graphroot,
            Path::new(ROOT_GRAPHROOT)
        );
        let owner = Owner {
            name: "alice".into(),
            uid: 1001,
            gid: 1001,
            home: "/home/alice".into(),
        };
        let stores = Store::rootless(&owner, &system, None);
        assert_eq!(stores.len(), 1);
        assert_eq!(
            stores[0].graphroot,
            Path::new("/home/alice/.store-alice-1001")
        );
        let user = StorageConf::parse("[storage]\ngraphroot = \"/var/tmp/alice\"\n").unwrap();
        assert_eq!(
            Store::rootless(&owner, &system, Some(&user))[0].graphroot,
            Path::new("/var/tmp/alice")
        );
        let plain = Store::rootless(&owner, &StorageConf::default(), None);
        assert_eq!(
            plain[0].graphroot,
            Path::new("/home/alice/.local/share/containers/storage")
        );
        let u7s = Owner {
            name: U7S_ADMIN.into(),
            home: "/var/lib/u7s-admin".into(),
            ..owner
        };
        let stores = Store::rootless(&u7s, &StorageConf::default(), None);
        assert_eq!(
            stores[1].graphroot,
            Path::new("/var/lib/u7s-admin/.local/share/usernetes/containers/storage")
        );
        assert!(StorageConf::parse("[storage\n").is_err());
    }

    #[test]
    fn metadata_of_both_drivers_and_hostile_records() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("overlay-containers")).unwrap();
        std::fs::create_dir_all(root.join("vfs-images")).unwrap();
        std::fs::write(
            root.join("overlay-containers/containers.json"),
            r#"[{"id":"aa11","names":["web"],"image":"b2","layer":"c3","metadata":"{}","created":"2026-01-01T00:00:00Z"},
               {"id":"dd44","layer":"../../../etc"}]"#,
        )
        .unwrap();
        std::fs::write(
            root.join("vfs-images/images.json"),
            r#"[{"id":"e5","names":["localhost/x:1"],"digest":"sha256:ff"},{"id":"f6"}]"#,
        )
        .unwrap();
        let graphroot = Beneath::open(root).unwrap();
        let containers = read_containers(&graphroot, Driver::Overlay).unwrap();
        assert_eq!(
            containers.len(),
            1,
            "the record leaving the store is dropped"
        );
        assert_eq!(containers[0].display_name(), "web");
        assert_eq!(
            Driver::Overlay.layer_dir(&containers[0].layer),
            Path::new("overlay/c3/diff")
        );
        assert_eq!(Driver::Vfs.layer_dir("c3"), Path::new("vfs/dir/c3"));
        assert!(read_containers(&graphroot, Driver::Vfs).unwrap().is_empty());
        let images = read_images(&graphroot, Driver::Vfs).unwrap();
        assert_eq!(images.len(), 2);
        assert!(images[1].names.is_empty(), "untagged image kept");
        std::fs::write(root.join("overlay-containers/containers.json"), "[{").unwrap();
        assert!(matches!(
            read_containers(&graphroot, Driver::Overlay),
            Err(StorageError::Format { .. })
        ));
    }

    #[test]
    fn symlinks_fifos_and_foreign_owners_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".local/share")).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(elsewhere.join("overlay-containers")).unwrap();
        std::fs::write(elsewhere.join("overlay-containers/containers.json"), "[]").unwrap();
        std::os::unix::fs::symlink(&elsewhere, home.join(".local/share/containers")).unwrap();
        let owner = alice(&home);
        let store = &Store::rootless(&owner, &StorageConf::default(), None)[0];
        assert!(
            matches!(store.open(), Err(StorageError::Symlink { .. })),
            "{:?}",
            store.open()
        );
        // where it would appear: below .local/share, the deepest real directory
        let (nearest, rest) = store.nearest_existing().unwrap();
        assert_eq!(nearest.path(), home.join(".local/share"));
        assert_eq!(rest, Path::new("containers/storage"));

        let fifo = home.join("fifo.json");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let opened = Beneath::open(&home).unwrap();
        assert!(matches!(
            opened.read_file(Path::new("fifo.json")),
            Err(StorageError::NotRegular { .. })
        ));
        std::os::unix::fs::symlink("/etc/passwd", home.join("link.json")).unwrap();
        assert!(matches!(
            opened.read_file(Path::new("link.json")),
            Err(StorageError::Symlink { .. }) | Err(StorageError::Io { .. })
        ));
        let stranger = Owner {
            uid: owner.uid + 1,
            ..owner.clone()
        };
        let foreign = Store {
            owner: stranger,
            graphroot: elsewhere.clone(),
            rootless: true,
        };
        assert!(matches!(foreign.open(), Err(StorageError::Owner { .. })));
        assert!(plain_component("0a1b") && !plain_component("..") && !plain_component("a/b"));
    }
}
