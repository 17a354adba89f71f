//! The administrator's cluster: the kubeconfig (KUBECONFIG, ~/.kube/config, then
//! /etc/kubernetes/admin.conf), a client for it, and a small runtime to drive the async client.

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
            let kubeconfig = Kubeconfig::from_env()
                .map_err(|e| Error::Kubeconfig(format!("{source}: {}", chain(&e))))?
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
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|e| Error::Kubeconfig(format!("{}: {}", path.display(), chain(&e))))?;
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
        client_for(self.kubeconfig.clone(), &self.source).await
    }
}

pub async fn client_for(kubeconfig: Kubeconfig, source: &str) -> Result<Client, Error> {
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Kubeconfig(format!("{source}: {}", chain(&e))))?;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(60));
    config.write_timeout = Some(Duration::from_secs(60));
    Client::try_from(config)
        .map_err(|e| Error::Kubeconfig(format!("{source}: {}", crate::error::describe(&e))))
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
