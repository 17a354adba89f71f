//! The registry's data where upstream podsec 1.1.x kept it: root podman's volume `registry`
//! (`/var/lib/containers/storage/volumes/registry/_data`). create-services moves it into its
//! own storage with one rename(2) of the storage driver's top directory `docker`: the registry
//! sees all of it or none of it, nothing is copied, and a second run finds nothing to move.
//! Where the two are on different mounts (a rename is impossible, and a copy is not made), the
//! registry keeps serving the old place: its account gets the tree and a search-only ACL entry
//! on the directories above it. Only read here (but for an empty probe directory) until
//! [`migrate`] or [`serve_in_place`] is called, so a refusal changes nothing.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use podsec_common::host::files::{FileError, Owner, SafeDir};

use podsec_common::host::posix_acl;

/// Upstream's registry root directory.
pub const UPSTREAM_STORAGE: &str = "/var/lib/containers/storage/volumes/registry/_data";
/// The top directory of distribution's filesystem driver below its root directory.
pub const DRIVER_DIR: &str = "docker";
/// Where the repositories are below the root directory.
const REPOSITORIES: &str = "docker/registry/v2/repositories";

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum MigrationError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(
        "both {old} and {new} hold registry data; keep one of them (move the other away) and run again; nothing was changed"
    )]
    BothHoldData { old: String, new: String },
    #[error(
        "cannot move {old} to {new}: they are on different mounts; nothing was moved, and the registry is stopped: run podsec-create-services again, it then serves the data where it is"
    )]
    CrossDevice { old: String, new: String },
    #[error("{path}: cannot let the registry's account search it: {detail}")]
    Search { path: String, detail: String },
}

/// What a run will do with upstream's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// No data at the old place.
    Nothing,
    /// Move `<old>/docker` to `<new>/docker`; `repositories` for the note, `skeleton`: the new
    /// place has an empty directory tree of the registry (no file) that goes first.
    Move {
        old: PathBuf,
        new: PathBuf,
        repositories: Vec<String>,
        skeleton: bool,
    },
    /// `<old>` is on another mount than `<new>`: the registry serves `<old>` where it is.
    InPlace {
        old: PathBuf,
        repositories: Vec<String>,
    },
}

/// Whether a directory tree holds anything but directories (links count as content).
fn has_content(dir: &SafeDir) -> Result<bool, FileError> {
    for name in dir.list()? {
        let Some(text) = name.to_str() else {
            return Ok(true);
        };
        match dir.open_dir(text) {
            Ok(Some(child)) => {
                if has_content(&child)? {
                    return Ok(true);
                }
            }
            Ok(None) => {}
            Err(FileError::NotFollowing { .. }) => return Ok(true),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Opens `root/relative` without following links; `None` when some part is missing.
fn open_below(root: &Path, relative: &str) -> Result<Option<SafeDir>, FileError> {
    if std::fs::symlink_metadata(root).is_err() {
        return Ok(None);
    }
    let mut dir = SafeDir::open(root)?;
    for part in relative.split('/') {
        match dir.open_dir(part)? {
            Some(child) => dir = child,
            None => return Ok(None),
        }
    }
    Ok(Some(dir))
}

/// The repository names (`demo/app`) below a `repositories` directory: the directories that
/// hold `_manifests`.
fn repositories(dir: &SafeDir, prefix: &str, depth: usize, into: &mut Vec<String>) {
    if depth > 16 {
        return;
    }
    let Ok(names) = dir.list() else { return };
    for name in names {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('_') {
            continue;
        }
        if let Ok(Some(child)) = dir.open_dir(name) {
            let path = format!("{prefix}{name}");
            if child.has_entry("_manifests") {
                into.push(path.clone());
            }
            repositories(&child, &format!("{path}/"), depth + 1, into);
        }
    }
}

/// Decides, reading only, what to do with the data at `old` for the registry at `new`.
pub fn plan(old: &Path, new: &Path) -> Result<Plan, MigrationError> {
    let Some(old_data) = open_below(old, DRIVER_DIR)? else {
        return Ok(Plan::Nothing);
    };
    if !has_content(&old_data)? {
        return Ok(Plan::Nothing);
    }
    let skeleton = match open_below(new, DRIVER_DIR)? {
        None => false,
        Some(new_data) if !has_content(&new_data)? => true,
        Some(_) => {
            return Err(MigrationError::BothHoldData {
                old: old.join(DRIVER_DIR).display().to_string(),
                new: new.join(DRIVER_DIR).display().to_string(),
            });
        }
    };
    let mut names = Vec::new();
    if let Some(dir) = open_below(old, REPOSITORIES)? {
        repositories(&dir, "", 0, &mut names);
    }
    if !same_mount(old, new)? {
        return Ok(Plan::InPlace {
            old: old.to_path_buf(),
            repositories: names,
        });
    }
    Ok(Plan::Move {
        old: old.to_path_buf(),
        new: new.to_path_buf(),
        repositories: names,
        skeleton,
    })
}

/// Whether a directory can be renamed from `old` into `new` (or its nearest existing
/// ancestor): tried with an empty probe directory, removed again.
fn same_mount(old: &Path, new: &Path) -> Result<bool, FileError> {
    let mut target = new;
    while std::fs::symlink_metadata(target).is_err() {
        match target.parent() {
            Some(parent) => target = parent,
            None => return Ok(false),
        }
    }
    let (from, to) = (SafeDir::open(old)?, SafeDir::open(target)?);
    let name = format!(".podsec-rename-probe.{}", std::process::id());
    from.create_dir_new(&name, 0o700, Owner::new(0, 0))?;
    match from.move_entry(OsStr::new(&name), &to) {
        Ok(()) => {
            to.remove_empty_dir(OsStr::new(&name))?;
            Ok(true)
        }
        Err(FileError::Io { source, .. }) if source.raw_os_error() == Some(nix::libc::EXDEV) => {
            from.remove_empty_dir(OsStr::new(&name))?;
            Ok(false)
        }
        Err(e) => {
            let _ = from.remove_empty_dir(OsStr::new(&name));
            Err(e)
        }
    }
}

/// Gives a tree to `owner`, never following a link.
fn chown_tree(dir: &SafeDir, owner: Owner) -> Result<(), FileError> {
    for name in dir.list()? {
        let Some(text) = name.to_str() else {
            return Err(FileError::BadName {
                path: dir.path().to_path_buf(),
                name: name.to_string_lossy().into_owned(),
            });
        };
        dir.chown_entry(text, owner)?;
        match dir.open_dir(text) {
            Ok(Some(child)) => chown_tree(&child, owner)?,
            Ok(None) | Err(FileError::NotFollowing { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes a tree of empty directories (fails on anything else: nothing but rmdir).
fn remove_empty_tree(parent: &SafeDir, name: &str) -> Result<(), FileError> {
    if let Some(dir) = parent.open_dir(name)? {
        for child in dir.list()? {
            if let Some(child) = child.to_str() {
                remove_empty_tree(&dir, child)?;
            }
        }
    }
    parent.remove_empty_dir(OsStr::new(name))
}

/// Carries out a [`Plan::Move`]: the tree is given to the registry's account first (a repeated
/// run does it again), then moved with one rename that never replaces anything.
pub fn migrate(plan: &Plan, owner: Option<Owner>) -> Result<(), MigrationError> {
    let Plan::Move {
        old, new, skeleton, ..
    } = plan
    else {
        return Ok(());
    };
    let old_dir = SafeDir::open(old)?;
    let new_dir = SafeDir::open(new)?;
    if let Some(owner) = owner {
        let data = old_dir.open_dir(DRIVER_DIR)?.ok_or_else(|| FileError::Io {
            path: old.join(DRIVER_DIR),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        old_dir.chown_entry(DRIVER_DIR, owner)?;
        chown_tree(&data, owner)?;
    }
    if *skeleton {
        remove_empty_tree(&new_dir, DRIVER_DIR)?;
    }
    match old_dir.move_entry(OsStr::new(DRIVER_DIR), &new_dir) {
        Ok(()) => Ok(()),
        Err(FileError::Io { source, .. }) if source.raw_os_error() == Some(nix::libc::EXDEV) => {
            Err(MigrationError::CrossDevice {
                old: old.join(DRIVER_DIR).display().to_string(),
                new: new.join(DRIVER_DIR).display().to_string(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The ACL of a directory of `mode` with one more entry: `uid` may search (x). Entries sorted
/// by tag.
fn search_acl(mode: u32, uid: u32) -> Vec<u8> {
    use posix_acl::{GROUP_OBJ, MASK, NO_ID, OTHER, USER, USER_OBJ};
    let group = ((mode >> 3) & 7) as u16;
    posix_acl::encode(&[
        (USER_OBJ, ((mode >> 6) & 7) as u16, NO_ID),
        (USER, 1, uid),
        (GROUP_OBJ, group, NO_ID),
        (MASK, group | 1, NO_ID),
        (OTHER, (mode & 7) as u16, NO_ID),
    ])
}

/// Whether an ACL value has the entry `user:<uid>` with search permission.
fn acl_lets_search(acl: &[u8], uid: u32) -> bool {
    posix_acl::decode(acl)
        .into_iter()
        .any(|(tag, perm, id)| tag == posix_acl::USER && id == uid && perm & 1 != 0)
}

/// Lets `uid` reach `path`: every directory from `/var/lib` down that others may not search
/// gets an ACL entry `user:<uid>:--x` (one that already has an ACL is refused, never
/// rewritten).
fn grant_search(path: &Path, uid: u32) -> Result<(), MigrationError> {
    use std::os::fd::AsFd;
    let mut dirs: Vec<&Path> = path
        .ancestors()
        .take_while(|p| p.starts_with("/var/lib") && *p != Path::new("/var/lib"))
        .collect();
    dirs.reverse();
    for dir in dirs {
        let handle = SafeDir::open(dir)?;
        let stat = handle.stat()?;
        if stat.st_mode & 0o001 != 0 || stat.st_uid == uid {
            continue;
        }
        let fd = handle.as_fd();
        let search = |detail: String| MigrationError::Search {
            path: dir.display().to_string(),
            detail,
        };
        // A directory without an ACL, or on a file system without ACLs (set then says why),
        // gets one; an ACL of its own is never rewritten.
        if posix_acl::size(fd).is_ok() {
            if posix_acl::get(fd).is_ok_and(|acl| acl_lets_search(&acl, uid)) {
                continue;
            }
            return Err(search(
                "it has an ACL of its own; add user:<registry>:x yourself".into(),
            ));
        }
        posix_acl::set(fd, &search_acl(stat.st_mode, uid)).map_err(|e| search(e.desc().into()))?;
    }
    Ok(())
}

/// Carries out a [`Plan::InPlace`]: the registry's account gets the data (when it is not its
/// already) and may search the directories above it.
pub fn serve_in_place(plan: &Plan, owner: Option<Owner>) -> Result<(), MigrationError> {
    let (Plan::InPlace { old, .. }, Some(owner)) = (plan, owner) else {
        return Ok(());
    };
    let old_dir = SafeDir::open(old)?;
    if let Some(data) = old_dir.open_dir(DRIVER_DIR)? {
        let uid = owner.uid.unwrap_or(0);
        if data.stat()?.st_uid != uid {
            // The top last: a run killed half-way does it all again.
            chown_tree(&data, owner)?;
            old_dir.chown_entry(DRIVER_DIR, owner)?;
        }
        grant_search(old, uid)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path, files: &[&str]) {
        for file in files {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
    }

    #[test]
    fn data_moves_once_with_one_rename_and_is_listed() {
        let temp = tempfile::tempdir().unwrap();
        let (old, new) = (temp.path().join("old"), temp.path().join("new"));
        std::fs::create_dir_all(&new).unwrap();
        tree(
            &old,
            &[
                "docker/registry/v2/repositories/demo/app/_manifests/tags/1/current/link",
                "docker/registry/v2/repositories/c10f/pause/_layers/sha256/a/link",
                "docker/registry/v2/repositories/c10f/pause/_manifests/revisions/x/link",
                "docker/registry/v2/blobs/sha256/aa/aaaa/data",
            ],
        );
        let plan = plan(&old, &new).unwrap();
        let Plan::Move {
            repositories,
            skeleton,
            ..
        } = &plan
        else {
            panic!("{plan:?}")
        };
        assert_eq!(repositories, &["c10f/pause", "demo/app"]);
        assert!(!skeleton);
        migrate(&plan, None).unwrap();
        assert!(
            new.join("docker/registry/v2/blobs/sha256/aa/aaaa/data")
                .is_file()
        );
        assert!(!old.join("docker").exists() && old.is_dir());
        // A second run finds nothing to move.
        assert_eq!(super::plan(&old, &new).unwrap(), Plan::Nothing);
    }

    #[test]
    fn an_empty_skeleton_gives_way_but_data_on_both_sides_is_refused_unchanged() {
        let temp = tempfile::tempdir().unwrap();
        let (old, new) = (temp.path().join("old"), temp.path().join("new"));
        tree(&old, &["docker/registry/v2/blobs/sha256/aa/aaaa/data"]);
        std::fs::create_dir_all(new.join("docker/registry/v2/repositories")).unwrap();
        let plan = plan(&old, &new).unwrap();
        assert!(
            matches!(plan, Plan::Move { skeleton: true, .. }),
            "{plan:?}"
        );
        migrate(&plan, None).unwrap();
        assert!(
            new.join("docker/registry/v2/blobs/sha256/aa/aaaa/data")
                .is_file()
        );

        tree(&old, &["docker/registry/v2/blobs/sha256/bb/bbbb/data"]);
        let err = super::plan(&old, &new).unwrap_err();
        assert!(matches!(err, MigrationError::BothHoldData { .. }), "{err}");
        assert!(
            old.join("docker/registry/v2/blobs/sha256/bb/bbbb/data")
                .is_file()
        );
        // A symbolic link is content, never followed.
        let (old2, new2) = (temp.path().join("old2"), temp.path().join("new2"));
        std::fs::create_dir_all(new2.join("docker")).unwrap();
        std::os::unix::fs::symlink("/etc", new2.join("docker/x")).unwrap();
        tree(&old2, &["docker/registry/v2/blobs/sha256/cc/cccc/data"]);
        assert!(matches!(
            super::plan(&old2, &new2),
            Err(MigrationError::BothHoldData { .. })
        ));
    }

    #[test]
    fn the_search_acl_keeps_the_mode_and_adds_one_user() {
        // What `setfacl -m u:105:x` writes on a 0700 directory.
        let acl = search_acl(0o700, 105);
        let words: Vec<u32> = acl
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(acl.len(), 4 + 5 * 8);
        assert_eq!(words[0], 2);
        // user_obj rwx, user:105 --x, group_obj ---, mask --x, other ---.
        assert_eq!(&acl[4..8], &[1, 0, 7, 0]);
        assert_eq!(&acl[12..16], &[2, 0, 1, 0]);
        assert_eq!(words[4], 105);
        assert_eq!(&acl[20..24], &[4, 0, 0, 0]);
        assert_eq!(&acl[28..32], &[0x10, 0, 1, 0]);
        assert_eq!(&acl[36..40], &[0x20, 0, 0, 0]);
        assert!(acl_lets_search(&acl, 105));
        assert!(!acl_lets_search(&acl, 106));
    }

    #[test]
    fn no_data_or_only_empty_directories_is_nothing_to_do() {
        let temp = tempfile::tempdir().unwrap();
        let (old, new) = (temp.path().join("old"), temp.path().join("new"));
        assert_eq!(plan(&old, &new).unwrap(), Plan::Nothing);
        std::fs::create_dir_all(old.join("docker/registry/v2")).unwrap();
        assert_eq!(plan(&old, &new).unwrap(), Plan::Nothing);
    }
}
