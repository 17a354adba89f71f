//! The images of a container store as the plugins need them, read directly: no podman, no
//! login shell of the user whose storage it is. (Where stores are and what storage.conf says is
//! [`crate::storage`]'s; this adds each image's manifest digests and stored manifests, read
//! through [`Tree`].)
//!
//! - Where: root reads `/etc/containers/storage.conf` (else `/usr/share/containers/storage.conf`),
//!   `graphroot` defaulting to `/var/lib/containers/storage`. A rootless user reads
//!   `~/.config/containers/storage.conf` when it exists, else the system file; the storage is
//!   that file's `graphroot`, else the system file's `rootless_storage_path`, else
//!   `~/.local/share/containers/storage` (`$HOME`, `$USER`, `$UID` expanded as podman does).
//! - Which driver: the configured `driver`; without one, every driver directory present
//!   (`overlay-images`, `vfs-images`, ...).
//! - What: `<driver>-images/images.json` (id, names, manifest digests) and each image's manifest
//!   (`<driver>-images/<id>/=<base64 of "manifest-<digest>">`), so a signature can be checked
//!   against the manifest that is really stored.

use std::path::{Path, PathBuf};

use base64::Engine;
use podsec_common::host::beneath::{Entry, Tree};
use podsec_common::host::files::FileError;
use podsec_common::host::users::Account;
use serde::Deserialize;

use crate::storage::{self, StorageConf};

/// Limits for what is read from storage a user controls.
const MAX_CONFIG: u64 = 1 << 20;
const MAX_IMAGES_JSON: u64 = 64 << 20;
const MAX_MANIFEST: u64 = 4 << 20;

/// The drivers whose image stores are looked at when none is configured.
pub const DRIVERS: [&str; 4] = ["overlay", "vfs", "btrfs", "zfs"];

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum ImageStoreError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{path}: not valid TOML: {detail}")]
    Config {
        path: PathBuf,
        detail: podsec_common::i18n::Message,
    },
    #[error("{path}: not a containers/storage image list: {detail}")]
    Images { path: PathBuf, detail: String },
}

/// The system storage.conf: `/etc/containers/storage.conf`, else the vendor default.
#[derive(Debug, Clone, Default)]
pub struct SystemStorage {
    pub path: Option<PathBuf>,
    pub conf: StorageConf,
}

impl SystemStorage {
    pub fn load(candidates: &[PathBuf]) -> Result<SystemStorage, ImageStoreError> {
        for path in candidates {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    return Ok(SystemStorage {
                        path: Some(path.clone()),
                        conf: parse_conf(&text, path)?,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(FileError::Io {
                        path: path.clone(),
                        source,
                    }
                    .into());
                }
            }
        }
        Ok(SystemStorage::default())
    }
}

/// Where one account's images are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub graphroot: PathBuf,
    /// The configured driver; `None` = every driver directory present.
    pub driver: Option<String>,
    /// The storage.conf that decided (None: built-in defaults).
    pub config: Option<PathBuf>,
}

thread_local! {
    /// The last storage.conf text this thread parsed, and what it says: podsec-create-podmanusers
    /// writes the same file into every home, so thousands of homes need one parse, not one each.
    static LAST_CONF: std::cell::RefCell<Option<(String, StorageConf)>> =
        const { std::cell::RefCell::new(None) };
}

fn parse_conf(text: &str, path: &Path) -> Result<StorageConf, ImageStoreError> {
    let known = LAST_CONF.with_borrow(|last| {
        last.as_ref()
            .filter(|(seen, _)| seen == text)
            .map(|(_, conf)| conf.clone())
    });
    if let Some(conf) = known {
        return Ok(conf);
    }
    let conf = StorageConf::parse(text).map_err(|detail| ImageStoreError::Config {
        path: path.to_path_buf(),
        detail,
    })?;
    LAST_CONF.set(Some((text.to_string(), conf.clone())));
    Ok(conf)
}

/// podman's expansion of `$HOME`, `$USER`, `$UID` in storage paths.
pub fn expand(text: &str, account: &Account) -> String {
    storage::expand_user_path(
        text,
        &storage::Owner {
            name: account.name.clone(),
            uid: account.uid,
            gid: account.gid,
            home: account.home.clone(),
        },
    )
}

/// Root's storage.
pub fn root_location(system: &SystemStorage) -> Location {
    Location {
        graphroot: PathBuf::from(
            system
                .conf
                .graphroot
                .clone()
                .unwrap_or_else(|| storage::ROOT_GRAPHROOT.into()),
        ),
        driver: system.conf.driver.clone(),
        config: system.path.clone(),
    }
}

/// A rootless user's storage, from their own storage.conf (`user_conf`, read from their
/// configuration directory) or the system one.
pub fn user_location(
    account: &Account,
    user_conf: Option<(PathBuf, StorageConf)>,
    system: &SystemStorage,
) -> Location {
    let default = account.home.join(".local/share/containers/storage");
    let absolute = |text: String| {
        let path = PathBuf::from(expand(&text, account));
        if path.is_absolute() {
            path
        } else {
            account.home.join(path)
        }
    };
    match user_conf {
        Some((path, conf)) => Location {
            graphroot: conf
                .graphroot
                .or(conf.rootless_storage_path)
                .or_else(|| system.conf.rootless_storage_path.clone())
                .map(absolute)
                .unwrap_or(default),
            driver: conf.driver.or_else(|| system.conf.driver.clone()),
            config: Some(path),
        },
        None => Location {
            graphroot: system
                .conf
                .rootless_storage_path
                .clone()
                .map(absolute)
                .unwrap_or(default),
            driver: system.conf.driver.clone(),
            config: system.path.clone(),
        },
    }
}

/// One entry of `images.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StoredImage {
    pub id: String,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub digests: Vec<String>,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default, rename = "big-data-names")]
    pub big_data_names: Vec<String>,
    /// Which driver's store it is in (set after reading).
    #[serde(skip)]
    pub driver: String,
}

impl StoredImage {
    /// The manifest digests to look signatures up for: `digest`, `digests`, and the digest of
    /// every stored `manifest-<digest>` (older containers/storage writes no `digests`; a pull of
    /// an image whose configuration is already there only adds its manifest), each once.
    pub fn manifest_digests(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        let stored = self
            .big_data_names
            .iter()
            .filter_map(|key| key.strip_prefix("manifest-"))
            .map(str::to_string)
            .collect::<Vec<_>>();
        for digest in self.digest.iter().chain(&self.digests).chain(&stored) {
            if !all.contains(digest) {
                all.push(digest.clone());
            }
        }
        all
    }

    /// An image id as containers/storage makes them (64 hex digits): it becomes a path
    /// component, so nothing else is accepted.
    pub fn valid_id(&self) -> bool {
        self.id.len() == 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    }
}

/// containers/storage's file name for a big-data key: the key itself when it is made of
/// `[0-9a-z.]`, else `=` and its base64.
pub fn big_data_file_name(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b == b'.' || b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        key.to_string()
    } else {
        format!("={}", base64::engine::general_purpose::STANDARD.encode(key))
    }
}

/// An open graphroot.
#[derive(Debug)]
pub struct ImageStore {
    tree: Tree,
    drivers: Vec<String>,
}

impl ImageStore {
    /// Opens a location: `within` is the account's home when the graphroot lies below it (then
    /// nothing below leads out of the home), else the graphroot is opened on its own.
    /// `None` when there is no storage.
    pub fn open(
        location: &Location,
        home: Option<&Tree>,
    ) -> Result<Option<ImageStore>, ImageStoreError> {
        let tree = match home.and_then(|h| {
            location
                .graphroot
                .strip_prefix(h.path())
                .ok()
                .map(|rel| (h, rel))
        }) {
            Some((home, relative)) if !relative.as_os_str().is_empty() => home.subtree(relative)?,
            _ => Tree::open(&location.graphroot)?,
        };
        let Some(tree) = tree else {
            return Ok(None);
        };
        let drivers = match &location.driver {
            Some(driver) => vec![driver.clone()],
            None => DRIVERS.iter().map(|d| d.to_string()).collect(),
        };
        Ok(Some(ImageStore { tree, drivers }))
    }

    pub fn path(&self) -> &Path {
        self.tree.path()
    }

    /// Every image of every driver store present.
    pub fn images(&self) -> Result<Vec<StoredImage>, ImageStoreError> {
        let mut all = Vec::new();
        for driver in &self.drivers {
            if !valid_driver(driver) {
                continue;
            }
            let relative = PathBuf::from(format!("{driver}-images/images.json"));
            let Some(bytes) = self.tree.read(&relative, MAX_IMAGES_JSON)? else {
                continue;
            };
            let mut images: Vec<StoredImage> =
                serde_json::from_slice(&bytes).map_err(|e| ImageStoreError::Images {
                    path: self.tree.path().join(&relative),
                    detail: e.to_string(),
                })?;
            for image in &mut images {
                image.driver = driver.clone();
            }
            all.extend(images);
        }
        Ok(all)
    }

    /// The stored manifest with this digest (`manifest-<digest>`, or the image's primary
    /// `manifest` when it has no per-digest copy); `None` when not stored.
    pub fn manifest(
        &self,
        image: &StoredImage,
        digest: &str,
    ) -> Result<Option<Vec<u8>>, ImageStoreError> {
        if !image.valid_id() || !valid_driver(&image.driver) {
            return Ok(None);
        }
        let keyed = format!("manifest-{digest}");
        let key = if image.big_data_names.contains(&keyed) {
            keyed
        } else if image.digest.as_deref() == Some(digest)
            && image.big_data_names.iter().any(|k| k == "manifest")
        {
            "manifest".to_string()
        } else {
            return Ok(None);
        };
        let relative = PathBuf::from(format!(
            "{}-images/{}/{}",
            image.driver,
            image.id,
            big_data_file_name(&key)
        ));
        Ok(self.tree.read(&relative, MAX_MANIFEST)?)
    }
}

fn valid_driver(driver: &str) -> bool {
    !driver.is_empty()
        && driver
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads a user's own storage.conf from their configuration directory, with its entry when it
/// was opened by its own name (see [`Tree::read_file`]).
pub fn read_user_conf(
    config_dir: &Tree,
) -> Result<Option<(PathBuf, StorageConf, Option<Entry>)>, ImageStoreError> {
    let relative = Path::new("storage.conf");
    let Some(file) = config_dir.read_file(relative, MAX_CONFIG)? else {
        return Ok(None);
    };
    let path = file.path.clone();
    let entry = file.entry;
    let conf = parse_conf(&file.text()?, &path)?;
    Ok(Some((path, conf, entry)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Account {
        Account {
            name: "alice".into(),
            uid: 1001,
            gid: 1001,
            home: "/home/alice".into(),
            shell: "/bin/sh".into(),
        }
    }

    #[test]
    fn storage_conf_keys_are_read_from_the_storage_table() {
        let conf = parse_conf(
            "# podsec\n[storage]\ndriver = \"vfs\"\nrootless_storage_path = \"$HOME/s\"\n[storage.options]\nx = 1\n",
            Path::new("/x"),
        )
        .unwrap();
        assert_eq!(conf.driver.as_deref(), Some("vfs"));
        assert_eq!(conf.rootless_storage_path.as_deref(), Some("$HOME/s"));
        assert_eq!(conf.graphroot, None);
        let err = parse_conf("[storage\n", Path::new("/etc/containers/storage.conf")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/etc/containers/storage.conf: not valid TOML"),
            "{err}"
        );
    }

    #[test]
    fn locations_follow_podmans_precedence() {
        let system = SystemStorage {
            path: Some("/etc/containers/storage.conf".into()),
            conf: StorageConf {
                driver: Some("overlay".into()),
                graphroot: Some("/srv/containers".into()),
                rootless_storage_path: Some("/var/tmp/$USER/${UID}".into()),
            },
        };
        assert_eq!(
            root_location(&system).graphroot,
            Path::new("/srv/containers")
        );
        let none = user_location(&alice(), None, &system);
        assert_eq!(none.graphroot, Path::new("/var/tmp/alice/1001"));
        assert_eq!(none.driver.as_deref(), Some("overlay"));
        let own = StorageConf {
            driver: Some("vfs".into()),
            ..StorageConf::default()
        };
        let mine = user_location(
            &alice(),
            Some(("/home/alice/.config/containers/storage.conf".into(), own)),
            &SystemStorage::default(),
        );
        assert_eq!(
            mine.graphroot,
            Path::new("/home/alice/.local/share/containers/storage")
        );
        assert_eq!(mine.driver.as_deref(), Some("vfs"));
        let graph = StorageConf {
            graphroot: Some("$HOME/g".into()),
            ..StorageConf::default()
        };
        let mine = user_location(&alice(), Some(("/c".into(), graph)), &system);
        assert_eq!(mine.graphroot, Path::new("/home/alice/g"));
        assert_eq!(mine.driver.as_deref(), Some("overlay"));
        assert_eq!(
            root_location(&SystemStorage::default()).graphroot,
            Path::new("/var/lib/containers/storage")
        );
    }

    #[test]
    fn big_data_names_are_encoded_like_containers_storage() {
        assert_eq!(big_data_file_name("manifest"), "manifest");
        assert_eq!(
            big_data_file_name("manifest-sha256:ab"),
            format!(
                "={}",
                base64::engine::general_purpose::STANDARD.encode("manifest-sha256:ab")
            )
        );
    }

    #[test]
    fn images_and_manifests_are_read_and_ids_validated() {
        let dir = tempfile::tempdir().unwrap();
        let id = "a".repeat(64);
        let digest = format!("sha256:{}", "b".repeat(64));
        let images = dir.path().join("vfs-images");
        std::fs::create_dir_all(images.join(&id)).unwrap();
        std::fs::write(
            images.join("images.json"),
            serde_json::json!([
                {"id": id, "digest": digest, "digests": [digest], "names": ["registry.local/demo/app:1"],
                 "big-data-names": [format!("manifest-{digest}"), "manifest"], "layer": "x", "created": "2024-01-01T00:00:00Z"},
                {"id": "../../../etc", "names": [], "big-data-names": ["manifest"]}
            ])
            .to_string(),
        )
        .unwrap();
        std::fs::write(
            images
                .join(&id)
                .join(big_data_file_name(&format!("manifest-{digest}"))),
            "{\"m\":1}",
        )
        .unwrap();
        let location = Location {
            graphroot: dir.path().to_path_buf(),
            driver: None,
            config: None,
        };
        let store = ImageStore::open(&location, None).unwrap().unwrap();
        let found = store.images().unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].driver, "vfs");
        assert_eq!(found[0].manifest_digests(), std::slice::from_ref(&digest));
        assert_eq!(
            store.manifest(&found[0], &digest).unwrap().unwrap(),
            b"{\"m\":1}"
        );
        assert!(!found[1].valid_id());
        // a digest known only from its stored manifest (a second pull of the same image)
        let mut again = found[0].clone();
        again.digests.clear();
        let other = format!("sha256:{}", "c".repeat(64));
        again.big_data_names.push(format!("manifest-{other}"));
        assert_eq!(again.manifest_digests(), [digest.clone(), other]);
        assert!(store.manifest(&found[1], &digest).unwrap().is_none());
        // a configured driver limits the search
        let overlay = Location {
            driver: Some("overlay".into()),
            ..location
        };
        assert!(
            ImageStore::open(&overlay, None)
                .unwrap()
                .unwrap()
                .images()
                .unwrap()
                .is_empty()
        );
    }
}
