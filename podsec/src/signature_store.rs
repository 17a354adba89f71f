//! Who may write where in the signature store of the server (`/var/sigstore/sigstore`).
//!
//! containers/image reads a signature at `<store>/<repository path>@sha256=<hex>/signature-N`:
//! the registry host is not part of the path, and there is one store for every maker. So that
//! no image maker can replace or pre-create another's signatures:
//! - the top directory is root's, `root:root 1755`; only the maker of a whole registry (scope
//!   `registry.local`, upstream's default) may create entries in it, through one POSIX ACL entry
//!   derived from the policy; the sticky bit keeps it from removing or renaming what others own;
//! - the maker of `registry.local/<path>` gets `<store>/<path>` created by root and owned by it
//!   (podsec-create-imagemakeruser);
//! - podsec-load-sign-oci writes a signature only into a directory of its caller's, below
//!   directories of the caller's or root's, and creates its directories 0755 (never with the
//!   caller's umask).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
#[cfg(test)]
use podsec_common::host::RealHost;
use podsec_common::host::files::{FileError, Owner};
use podsec_common::host::users::{self, AccountError};
use podsec_common::host::{Host, HostDir};
use podsec_common::policy::{Policy, Requirement};

use podsec_common::tr;

use crate::layout::{GROUP_PODMAN_DEV, KEYS_DIR, SIGNATURES_DIR};
use podsec_common::host::posix_acl;

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum StoreError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(
        "{path}: the file system has no POSIX ACLs, which podsec needs to let the image maker of a whole registry ({user}) alone create entries at the top of the signature store; give it a scope with a path (<registry>/<path>) or mount the file system with ACLs"
    )]
    NoAcl { path: String, user: String },
    #[error("{path}: cannot set its ACL: {source}")]
    Acl {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} belongs to {owner}, not to you: a signature is never written into another user's directory (root can remove it if it should not be there)"
    )]
    Foreign { path: PathBuf, owner: String },
    #[error(
        "cannot create {path}: it is outside your signature directories (each image maker writes only below the directory of its own scope, see podsec-create-imagemakeruser)"
    )]
    NotWritable { path: PathBuf },
}

/// The makers whose scope is a whole registry (`registry.local`): `(scope, user)` for every
/// `signedBy` rule that names a maker's key `/var/sigstore/keys/<user>.pgp`.
pub fn whole_registry_makers(policy: &Policy) -> Vec<(String, String)> {
    let mut makers = Vec::new();
    let Some(scopes) = policy.transports.get("docker") else {
        return makers;
    };
    for (scope, requirements) in scopes {
        if scope.is_empty() || scope.contains('/') {
            continue;
        }
        for requirement in requirements {
            let Requirement::SignedBy(signed) = requirement else {
                continue;
            };
            let user = signed
                .key_path
                .as_deref()
                .and_then(|p| p.strip_prefix(KEYS_DIR))
                .and_then(|p| p.strip_prefix('/'))
                .and_then(|p| p.strip_suffix(".pgp"));
            if let Some(user) = user.filter(|u| users::valid_account_name(u)) {
                makers.push((scope.clone(), user.to_string()));
            }
        }
    }
    makers
}

/// Puts the top of the signature store in the state the policy implies: `root:root 1755`, plus
/// an ACL entry `user:<maker>:rwx` for each existing account that makes images for a whole
/// registry. `Err(NoAcl)` when such a maker exists and the file system has no ACLs; the
/// directory is root's then and nobody else writes at the top.
pub fn secure_top(host: &impl Host, policy: &Policy) -> Result<(), StoreError> {
    let mut writers = BTreeSet::new();
    let mut first = None;
    for (_, user) in whole_registry_makers(policy) {
        if let Some(account) = host.find_user(&user)? {
            writers.insert(account.uid);
            first.get_or_insert(user);
        }
    }
    let top = host.open_dir(Path::new(SIGNATURES_DIR))?;
    let root = Owner::new(0, 0);
    if writers.is_empty() {
        top.set_mode_owner(0o1755, root)?;
        return remove_acl(&top);
    }
    // With an ACL the group bits are its mask: rwx, so that the named entry takes effect.
    top.set_mode_owner(0o1775, root)?;
    match top.set_acl(&acl_xattr(&writers)) {
        Ok(()) => Ok(()),
        Err(Errno::EOPNOTSUPP) => {
            top.set_mode_owner(0o1755, root)?;
            Err(StoreError::NoAcl {
                path: SIGNATURES_DIR.into(),
                user: first.unwrap_or_default(),
            })
        }
        Err(e) => Err(StoreError::Acl {
            path: SIGNATURES_DIR.into(),
            source: e.into(),
        }),
    }
}

/// [`secure_top`], except where the file system has no ACLs for an existing maker of a whole
/// registry (a server set up before): the top then stays writable by group podman_dev, as
/// upstream made it, with a warning on stderr (`command: warning: ...`).
pub fn secure(host: &impl Host, command: &str, policy: &Policy) -> Result<(), StoreError> {
    match secure_top(host, policy) {
        Err(StoreError::NoAcl { path, user }) => {
            eprintln!(
                "{command}: {}",
                tr!(
                    "warning: {path} has no POSIX ACLs to give the image maker of a whole registry ({user}) alone the top of the signature store: it stays writable by group {group}, so any image maker can create entries there",
                    path = path,
                    user = user,
                    group = GROUP_PODMAN_DEV
                )
            );
            let group = host.group_gid(GROUP_PODMAN_DEV)?.unwrap_or(0);
            host.open_dir(Path::new(SIGNATURES_DIR))?
                .set_mode_owner(0o1775, Owner::new(0, group))?;
            Ok(())
        }
        other => other,
    }
}

/// The ACL of the store's top (entries sorted by tag then id): owner rwx, each writer rwx,
/// group r-x, mask rwx, others r-x.
fn acl_xattr(writers: &BTreeSet<u32>) -> Vec<u8> {
    use posix_acl::{GROUP_OBJ, MASK, NO_ID, OTHER, USER, USER_OBJ};
    let mut entries = vec![(USER_OBJ, 7, NO_ID)];
    entries.extend(writers.iter().map(|uid| (USER, 7, *uid)));
    entries.extend([(GROUP_OBJ, 5, NO_ID), (MASK, 7, NO_ID), (OTHER, 5, NO_ID)]);
    posix_acl::encode(&entries)
}

fn remove_acl(dir: &impl HostDir) -> Result<(), StoreError> {
    match dir.remove_acl() {
        Ok(_) | Err(Errno::ENODATA | Errno::EOPNOTSUPP) => Ok(()),
        Err(e) => Err(StoreError::Acl {
            path: SIGNATURES_DIR.into(),
            source: e.into(),
        }),
    }
}

/// The directory `relative` (`<repository path>@sha256=<hex>`) of the store `root`, for the
/// user `uid`: every component is opened without following a link, those between the root
/// and the last must be the user's or root's, the last the user's. Missing components are
/// created (mode 0755, the user's) when `create`; otherwise the first missing one must be
/// creatable and the answer is `Ok(None)`.
pub fn signature_dir<H: Host>(
    host: &H,
    root: &Path,
    relative: &str,
    uid: u32,
    create: bool,
) -> Result<Option<H::Dir>, StoreError> {
    if create {
        host.create_dirs(root)?;
    }
    // The store itself is configuration (registries.d), resolved as the user wrote it.
    let root = match host.canonicalize(root) {
        Ok(root) => root,
        Err(_) if !create => return Ok(None),
        Err(source) => {
            return Err(FileError::Io {
                path: root.into(),
                source,
            }
            .into());
        }
    };
    let mut current = host.open_dir(&root)?;
    let components: Vec<&str> = relative.split('/').collect();
    for (index, name) in components.iter().enumerate() {
        let last = index + 1 == components.len();
        let next = match current.open_child(name)? {
            Some(dir) => dir,
            None if !create => {
                return if current.writable() {
                    Ok(None)
                } else {
                    Err(StoreError::NotWritable {
                        path: current.path().join(name),
                    })
                };
            }
            None => {
                if !current.writable() {
                    return Err(StoreError::NotWritable {
                        path: current.path().join(name),
                    });
                }
                current.create_dir_all(Path::new(name), 0o755, Owner::default())?
            }
        };
        let owner = next.owner()?;
        if owner != uid && (last || owner != 0) {
            return Err(StoreError::Foreign {
                path: next.path().to_path_buf(),
                owner: host
                    .find_user_by_uid(owner)
                    .ok()
                    .flatten()
                    .map(|a| a.name)
                    .unwrap_or_else(|| owner.to_string()),
            });
        }
        current = next;
    }
    Ok(Some(current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_registry_makers_are_read_from_the_rules() {
        let policy = Policy::from_json(
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{
                "registry.local":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/var/sigstore/keys/imagemaker.pgp"}],
                "registry.local/demo":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/var/sigstore/keys/demo.pgp"}],
                "harbor.example:5443":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/etc/pki/other.pgp"}],
                "":[{"type":"insecureAcceptAnything"}]}}}"#,
        )
        .unwrap();
        assert_eq!(
            whole_registry_makers(&policy),
            vec![("registry.local".to_string(), "imagemaker".to_string())]
        );
    }

    #[test]
    fn the_acl_has_the_kernels_layout() {
        // What setfacl -m u:1000:rwx writes on a 0775 directory.
        let hex = "0200000001000700ffffffff02000700e803000004000500ffffffff10000700ffffffff20000500ffffffff";
        let bytes = acl_xattr(&BTreeSet::from([1000]));
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(text, hex);
    }

    #[test]
    fn signature_directories_are_created_only_below_the_callers_own() {
        let store = tempfile::tempdir().unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        let relative = "demo/app@sha256=ab";
        assert!(
            signature_dir(&RealHost, store.path(), relative, uid, false)
                .unwrap()
                .is_none()
        );
        let dir = signature_dir(&RealHost, store.path(), relative, uid, true)
            .unwrap()
            .unwrap();
        assert_eq!(dir.stat().unwrap().st_mode & 0o7777, 0o755);
        assert!(
            signature_dir(&RealHost, store.path(), relative, uid, false)
                .unwrap()
                .is_some()
        );
        // Another user's directory on the way: refused, whatever its mode.
        let err = signature_dir(&RealHost, store.path(), relative, uid + 1, true).unwrap_err();
        assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
        // A link on the way is not followed.
        std::os::unix::fs::symlink("/etc", store.path().join("etc")).unwrap();
        assert!(signature_dir(&RealHost, store.path(), "etc/x@sha256=ab", uid, true).is_err());
    }
}
