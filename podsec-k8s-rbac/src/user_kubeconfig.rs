//! `~user/.kube/config`: written through `SafeDir` (no symlink is ever followed, the file is
//! replaced atomically, 0600 owned by the user) and read back without following symlinks.

use podsec_common::i18n::Message;
use podsec_common::msg;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;
use podsec_common::host::files::{Owner, SafeDir};
use podsec_common::host::users::Account;
use serde::Serialize;

use crate::api::ClusterInfo;
use crate::error::Error;

/// The context name upstream's kubeconfigs use (scripts may `kubectl config use-context default`).
pub const CONTEXT: &str = "default";

#[derive(Serialize)]
struct Config<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    clusters: [Named<'a, ClusterEntry<'a>>; 1],
    users: [Named<'a, UserEntry>; 1],
    contexts: [Named<'a, ContextEntry<'a>>; 1],
    #[serde(rename = "current-context")]
    current_context: &'a str,
}

#[derive(Serialize)]
struct Named<'a, T> {
    name: &'a str,
    #[serde(flatten)]
    value: T,
}

#[derive(Serialize)]
struct ClusterEntry<'a> {
    cluster: ClusterFields<'a>,
}

#[derive(Serialize)]
struct ClusterFields<'a> {
    #[serde(rename = "certificate-authority-data")]
    ca: &'a str,
    server: &'a str,
}

#[derive(Serialize)]
struct UserEntry {
    user: UserFields,
}

#[derive(Serialize)]
struct UserFields {
    #[serde(rename = "client-certificate-data")]
    cert: String,
    #[serde(rename = "client-key-data")]
    key: String,
}

#[derive(Serialize)]
struct ContextEntry<'a> {
    context: ContextFields<'a>,
}

#[derive(Serialize)]
struct ContextFields<'a> {
    cluster: &'a str,
    user: &'a str,
}

/// The kubeconfig text of `user`: the cluster (its CA and server) and the embedded credentials.
pub fn render(
    cluster: &ClusterInfo,
    user: &str,
    cert_pem: &[u8],
    key_pem: &str,
) -> Result<Vec<u8>, Error> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let config = Config {
        api_version: "v1",
        kind: "Config",
        clusters: [Named {
            name: &cluster.name,
            value: ClusterEntry {
                cluster: ClusterFields {
                    ca: &cluster.ca_data,
                    server: &cluster.server,
                },
            },
        }],
        users: [Named {
            name: user,
            value: UserEntry {
                user: UserFields {
                    cert: b64.encode(cert_pem),
                    key: b64.encode(key_pem.as_bytes()),
                },
            },
        }],
        contexts: [Named {
            name: CONTEXT,
            value: ContextEntry {
                context: ContextFields {
                    cluster: &cluster.name,
                    user,
                },
            },
        }],
        current_context: CONTEXT,
    };
    podsec_common::yaml::to_string(&config)
        .map(String::into_bytes)
        .map_err(|e| Error::Failed(msg!("cannot write the kubeconfig of '{user}': {e}")))
}

/// Opens (creating) `~user/.kube`, private to the user (0700, owned by them), refusing symlinks.
pub fn open_kube_dir(account: &Account) -> Result<SafeDir, Error> {
    let owner = Owner::new(account.uid, account.gid);
    let home = SafeDir::open(&account.home)?;
    let dir = home.create_dir_all(Path::new(".kube"), 0o700, owner)?;
    dir.set_mode_owner(0o700, owner)?;
    Ok(dir)
}

/// Writes `~user/.kube/config` (0600, owned by the user) atomically.
pub fn write(dir: &SafeDir, account: &Account, contents: &[u8]) -> Result<(), Error> {
    dir.write_file(
        "config",
        contents,
        0o600,
        Owner::new(account.uid, account.gid),
    )?;
    Ok(())
}

/// Accounts whose ~/.kube/config is usually an administrator's kubeconfig: replaced only on
/// request (`--force`), and then kept as a backup.
pub const ADMIN_ACCOUNTS: [&str; 2] = ["root", "u7s-admin"];

/// Whether `~user/.kube/config` may be replaced: always for ordinary users; for root and
/// u7s-admin only with `force` when one exists.
pub fn check_replace(dir: &SafeDir, account: &Account, force: bool) -> Result<(), Error> {
    if ADMIN_ACCOUNTS.contains(&account.name.as_str()) && dir.has_entry("config") && !force {
        return Err(Error::Failed(msg!(
            "{}/config exists and may be an administrator's kubeconfig: add --force to replace it (it is kept as config.podsec-backup.<time>)",
            dir.path().display()
        )));
    }
    Ok(())
}

/// Copies `config` to a new `config.podsec-backup.<time>[.n]` (0600, the user's) and returns
/// its name; `None` when there is no config.
pub fn backup(dir: &SafeDir, account: &Account) -> Result<Option<String>, Error> {
    if !dir.has_entry("config") {
        return Ok(None);
    }
    let text = dir.read_file("config", MAX_KUBECONFIG)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let names = (0..100).map(move |n| match n {
        0 => format!("config.podsec-backup.{stamp}"),
        n => format!("config.podsec-backup.{stamp}.{n}"),
    });
    let name = dir.create_new_file(names, &text, 0o600)?.ok_or_else(|| {
        Error::Failed(msg!(
            "no free backup name for {}/config",
            dir.path().display()
        ))
    })?;
    dir.chown_entry(&name, Owner::new(account.uid, account.gid))?;
    Ok(Some(name))
}

const MAX_KUBECONFIG: u64 = 4 << 20;

/// Reads a file below an absolute path without following any symlink on the way (a user's
/// planted link must not make root read something else); regular files only, bounded size.
pub fn read_no_follow(path: &Path) -> std::io::Result<Vec<u8>> {
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut fd: OwnedFd = nix::fcntl::open("/", dir_flags, Mode::empty())?;
    let components: Vec<_> = path.components().collect();
    let last = components.len().saturating_sub(1);
    for (i, component) in components.iter().enumerate() {
        match component {
            Component::RootDir => {}
            Component::Normal(name) => {
                let flags = if i == last {
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC
                } else {
                    dir_flags
                };
                fd = openat(&fd, *name, flags, Mode::empty())?;
            }
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a plain absolute path",
                ));
            }
        }
    }
    let file = std::fs::File::from(fd);
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut data = Vec::new();
    file.take(MAX_KUBECONFIG).read_to_end(&mut data)?;
    Ok(data)
}

/// The PEM client certificate of the current context's user in a kubeconfig's text; the reason
/// it has none otherwise.
pub fn client_certificate(text: &[u8]) -> Result<Vec<u8>, Message> {
    use base64::Engine;
    let text = std::str::from_utf8(text).map_err(|_| msg!("not UTF-8 text"))?;
    let kc = kube::config::Kubeconfig::from_yaml(text).map_err(|_| msg!("not a kubeconfig"))?;
    let context = kc
        .current_context
        .as_deref()
        .and_then(|name| kc.contexts.iter().find(|c| c.name == name))
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| msg!("no current context"))?;
    let user = context
        .user
        .as_deref()
        .ok_or_else(|| msg!("the current context has no user"))?;
    let data = kc
        .auth_infos
        .iter()
        .find(|a| a.name == user)
        .and_then(|a| a.auth_info.as_ref())
        .and_then(|a| a.client_certificate_data.as_deref())
        .ok_or_else(|| msg!("no embedded client certificate"))?;
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| msg!("the client certificate is not base64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_kubeconfig_reads_back_with_kube() {
        let cluster = ClusterInfo {
            name: "kubernetes".into(),
            server: "https://127.0.0.1:6443".into(),
            ca_data: "Q0E=".into(),
        };
        let text = render(&cluster, "alice", b"CERT", "KEY").unwrap();
        let kc = kube::config::Kubeconfig::from_yaml(std::str::from_utf8(&text).unwrap()).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some(CONTEXT));
        assert_eq!(kc.clusters[0].name, "kubernetes");
        let c = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(c.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(c.certificate_authority_data.as_deref(), Some("Q0E="));
        assert_eq!(client_certificate(&text).unwrap(), b"CERT");
    }

    #[test]
    fn an_admin_kubeconfig_is_replaced_only_with_force_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let kube = SafeDir::open(dir.path()).unwrap();
        let account = |name: &str| Account {
            name: name.into(),
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            home: dir.path().to_path_buf(),
            shell: "/bin/sh".into(),
        };
        // nothing there yet: no question asked
        check_replace(&kube, &account("root"), false).unwrap();
        std::fs::write(dir.path().join("config"), "admin credentials").unwrap();
        for admin in ADMIN_ACCOUNTS {
            let err = check_replace(&kube, &account(admin), false).unwrap_err();
            assert!(err.to_string().contains("add --force"), "{err}");
            check_replace(&kube, &account(admin), true).unwrap();
        }
        check_replace(&kube, &account("alice"), false).unwrap();
        let name = backup(&kube, &account("root")).unwrap().unwrap();
        assert!(name.starts_with("config.podsec-backup."), "{name}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(&name)).unwrap(),
            "admin credentials"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(&name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // a second backup in the same second gets its own name
        let second = backup(&kube, &account("root")).unwrap().unwrap();
        assert_ne!(second, name);
    }

    #[test]
    fn reading_refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        assert_eq!(read_no_follow(&dir.path().join("real")).unwrap(), b"x");
        assert!(read_no_follow(&dir.path().join("link")).is_err());
        std::os::unix::fs::symlink(dir.path(), dir.path().join("dirlink")).unwrap();
        assert!(read_no_follow(&dir.path().join("dirlink/real")).is_err());
    }
}
