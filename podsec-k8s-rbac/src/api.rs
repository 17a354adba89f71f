//! The administrator's cluster: the kubeconfig (KUBECONFIG, ~/.kube/config, then
//! /etc/kubernetes/admin.conf), a client for it, and a small runtime to drive the async client.

use podsec_common::i18n::Message;
use podsec_common::msg;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::error::Error;

pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

/// Runs `future` on a single-threaded runtime (the commands make a handful of sequential calls).
pub fn block_on<F: Future>(future: F) -> Result<F::Output, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(msg!("cannot start the async runtime: {e}")))?;
    Ok(runtime.block_on(future))
}

/// The administrator's kubeconfig and where it came from (for messages).
pub struct AdminConfig {
    pub kubeconfig: Kubeconfig,
    pub source: String,
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            podsec_common::host::users::find_user_by_uid(nix::unistd::geteuid().as_raw())
                .ok()
                .flatten()
                .map(|a| a.home)
        })
}

impl AdminConfig {
    /// KUBECONFIG (a colon-separated list, merged as kubectl does), else ~/.kube/config, else
    /// /etc/kubernetes/admin.conf.
    pub fn load() -> Result<AdminConfig, Error> {
        if let Some(value) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
            let source = format!("KUBECONFIG={}", value.to_string_lossy());
            let kubeconfig = merge_files(&value, &source)?
                .ok_or_else(|| Error::Kubeconfig(msg!("{source}: no kubeconfig")))?;
            return Ok(AdminConfig { kubeconfig, source });
        }
        let mut candidates = Vec::new();
        if let Some(home) = home_dir() {
            candidates.push(home.join(".kube/config"));
        }
        candidates.push(PathBuf::from(ADMIN_CONF));
        for path in &candidates {
            if path.exists() {
                let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                    Error::Kubeconfig(Message::verbatim(format!(
                        "{}: {}",
                        path.display(),
                        chain(&e)
                    )))
                })?;
                return Ok(AdminConfig {
                    kubeconfig,
                    source: path.display().to_string(),
                });
            }
        }
        Err(Error::Kubeconfig(msg!(
            "no kubeconfig: set KUBECONFIG or provide {} (tried {})",
            candidates[0].display(),
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// The cluster of the current context: its name, server and CA (base64 PEM, as kubeconfigs
    /// carry it).
    pub fn current_cluster(&self) -> Result<ClusterInfo, Error> {
        let kc = &self.kubeconfig;
        let context_name = kc
            .current_context
            .as_deref()
            .ok_or_else(|| Error::Kubeconfig(msg!("{}: no current-context", self.source)))?;
        let context = kc
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .and_then(|c| c.context.as_ref())
            .ok_or_else(|| {
                Error::Kubeconfig(msg!(
                    "{}: current context '{context_name}' is not defined",
                    self.source
                ))
            })?;
        let cluster_name = context.cluster.clone();
        let cluster = kc
            .clusters
            .iter()
            .find(|c| c.name == cluster_name)
            .and_then(|c| c.cluster.as_ref())
            .ok_or_else(|| {
                Error::Kubeconfig(msg!(
                    "{}: cluster '{cluster_name}' of context '{context_name}' is not defined",
                    self.source
                ))
            })?;
        let server = cluster
            .server
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::Kubeconfig(msg!(
                    "{}: cluster '{cluster_name}' has no server",
                    self.source
                ))
            })?;
        let ca_data = match (
            &cluster.certificate_authority_data,
            &cluster.certificate_authority,
        ) {
            (Some(data), _) if !data.is_empty() => data.clone(),
            (_, Some(path)) if !path.is_empty() => {
                use base64::Engine;
                let pem = std::fs::read(path).map_err(|e| {
                    Error::Kubeconfig(msg!("{}: certificate-authority {path}: {e}", self.source))
                })?;
                base64::engine::general_purpose::STANDARD.encode(pem)
            }
            _ => {
                return Err(Error::Kubeconfig(msg!(
                    "{}: cluster '{cluster_name}' has no certificate authority to hand on",
                    self.source
                )));
            }
        };
        Ok(ClusterInfo {
            name: cluster_name,
            server,
            ca_data,
        })
    }

    /// A client for the current context, with bounded timeouts (a dead server fails fast).
    pub async fn client(&self) -> Result<Client, Error> {
        client_for(
            self.kubeconfig.clone(),
            &Message::verbatim(self.source.clone()),
        )
        .await
    }
}

/// The files of a KUBECONFIG list merged as kubectl merges them: in order, the first to set a
/// value wins, files that do not exist are skipped (kube's `Kubeconfig::from_env` fails on them);
/// None when none exists.
fn merge_files(list: &std::ffi::OsStr, source: &str) -> Result<Option<Kubeconfig>, Error> {
    let mut merged: Option<Kubeconfig> = None;
    for path in std::env::split_paths(list).filter(|p| !p.as_os_str().is_empty()) {
        if matches!(std::fs::metadata(&path), Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
            continue;
        }
        let one = Kubeconfig::read_from(&path).map_err(|e| {
            Error::Kubeconfig(Message::verbatim(format!(
                "{}: {}",
                path.display(),
                chain(&e)
            )))
        })?;
        merged = Some(match merged {
            None => one,
            Some(earlier) => earlier.merge(one).map_err(|e| {
                Error::Kubeconfig(Message::verbatim(format!("{source}: {}", chain(&e))))
            })?,
        });
    }
    Ok(merged)
}

/// A client for `kubeconfig`; `source` names it in messages (a path, or a phrase of ours).
pub async fn client_for(kubeconfig: Kubeconfig, source: &Message) -> Result<Client, Error> {
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Kubeconfig(msg!("{source}: {}", chain(&e), source = *source)))?;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(60));
    config.write_timeout = Some(Duration::from_secs(60));
    Client::try_from(config).map_err(|e| {
        Error::Kubeconfig(msg!(
            "{source}: {}",
            crate::error::describe(&e),
            source = *source
        ))
    })
}

/// The cluster a kubeconfig's current context points at.
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    pub name: String,
    pub server: String,
    /// base64 of the PEM bundle
    pub ca_data: String,
}

fn chain(err: &dyn std::error::Error) -> String {
    podsec_common::cli::error_chain(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path, name: &str, cluster: &str, current: Option<&str>) -> String {
        let text = serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": cluster, "cluster": {
                "server": format!("https://{cluster}:6443"), "certificate-authority-data": "Q0E="}}],
            "users": [{"name": "admin", "user": {"token": "t"}}],
            "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": "admin"}}],
            "current-context": current,
        });
        let path = dir.join(name);
        std::fs::write(&path, text.to_string()).unwrap();
        path.display().to_string()
    }

    #[test]
    fn a_kubeconfig_list_is_merged_as_kubectl_merges_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.conf").display().to_string();
        // the first file to set current-context wins; clusters come from every file
        let a = config(dir.path(), "a.conf", "one", None);
        let b = config(dir.path(), "b.conf", "two", Some("two"));
        let c = config(dir.path(), "c.conf", "three", Some("three"));
        let list = format!("{missing}:{a}::{b}:{c}");
        let merged = merge_files(list.as_ref(), "test").unwrap().unwrap();
        let admin = AdminConfig {
            kubeconfig: merged,
            source: "test".into(),
        };
        let cluster = admin.current_cluster().unwrap();
        assert_eq!(cluster.name, "two");
        assert_eq!(cluster.server, "https://two:6443");
        assert_eq!(admin.kubeconfig.clusters.len(), 3);
        // nothing there at all
        assert!(merge_files(missing.as_ref(), "test").unwrap().is_none());
        // an unreadable file is an error, not skipped
        std::fs::write(dir.path().join("bad.conf"), "clusters: [").unwrap();
        let bad = dir.path().join("bad.conf").display().to_string();
        let list = format!("{bad}:{b}");
        assert!(merge_files(list.as_ref(), "test").is_err());
    }
}
