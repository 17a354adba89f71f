//! The plan of `kubeadm init` / `kubeadm join`: computed completely from the flags, the `U7S_*`
//! variables, the host's facts, the registry and the package index before anything changes
//! (bad input fails here, with nothing touched), printed by `--dry-run`, applied step by step in
//! an order where an interruption leaves a host that the next run handles.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use podsec_common::i18n::Message;
use podsec_common::{msg, tr};

use super::audit;
use super::calico;
use super::flags::{CommonFlags, InitFlags, JoinFlags, is_dns_subdomain};
use super::flannel;
use super::host_prep::{self, HostFacts};
use super::kubeadm_config::{self, Discovery, InitInput, JoinInput, NodeInput, Role};
use super::network::{self, Ipv4Net, NetworkError};
use super::packages::{self, PackageError, PackageIndex};
use super::registry::host_of;
use super::resolve::{self, Chosen, FlannelChoice, Image, ImageRole, ResolveError, Tags, U7sEnv};
use super::runtime::{PlannedFile, Runtime, U7S_ADMIN, U7S_HOME};
use super::versions::{KubeVersion, VersionRequest};
use crate::node_config::{self, CniPlugin, Ipv4Cidr, NODE_CONFIG_PATH, NodeConfig};
use crate::u7s::ports::PortSpec;

mod build;
mod host_steps;
mod render;
mod step;
#[cfg(test)]
pub mod tests;

pub use build::{init, join};
pub use step::Step;

pub const DEFAULT_BIND_PORT: u16 = 6443;
pub const DEFAULT_POD_CIDR: &str = "10.244.0.0/16";
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
pub const KUBEADM_CONFIG_DIR: &str = "/etc/podsec/u7s/kubeadm";
pub const FLANNEL_MANIFEST: &str = "/etc/podsec/u7s/kube-flannel.yml";
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum PlanError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Config(#[from] kubeadm_config::ConfigError),
    #[error(transparent)]
    Flannel(#[from] flannel::FlannelError),
    #[error(transparent)]
    Calico(#[from] calico::CalicoError),
    #[error("the host name '{0}' is not a valid Kubernetes node name; give --node-name")]
    NodeName(String),
    #[error("leftovers of an earlier deployment: {list}; run again with --reset to remove them")]
    Leftovers { list: Message },
    #[error(
        "leftovers of an earlier deployment: {list}; run again with --reset to remove them (the running u7s runtime is stopped first)"
    )]
    LeftoversRunning { list: Message },
    #[error("{0}")]
    Kubeadm(Message),
    #[error(transparent)]
    NodeConfig(#[from] node_config::NodeConfigError),
}

/// The images kubeadm pulls for a version, as the native kubeadm lists them.
pub trait KubeadmImages {
    /// `None` when no kubeadm of that minor is installed yet (the list comes after packages).
    fn list(&self, version: KubeVersion, prefix: &str) -> Result<Option<Vec<String>>, PlanError>;
}

/// `kubeadm config images list` of the installed kubeadm (it only reads).
pub struct NativeKubeadm {
    pub installed: Option<KubeVersion>,
}

impl KubeadmImages for NativeKubeadm {
    fn list(&self, version: KubeVersion, prefix: &str) -> Result<Option<Vec<String>>, PlanError> {
        if self.installed.map(|v| v.minor_line()) != Some(version.minor_line()) {
            return Ok(None);
        }
        let output = std::process::Command::new(packages::KUBEADM)
            .args([
                "config",
                "images",
                "list",
                "--kubernetes-version",
                &version.to_string(),
                "--image-repository",
                prefix,
            ])
            .output()
            .map_err(|e| PlanError::Kubeadm(msg!("cannot run {}: {e}", packages::KUBEADM)))?;
        if !output.status.success() {
            return Err(PlanError::Kubeadm(msg!(
                "kubeadm config images list for {version}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(Some(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        ))
    }
}

/// Everything a plan is computed from.
pub struct Context<'a> {
    pub env: &'a U7sEnv,
    pub facts: &'a HostFacts,
    pub tags: &'a dyn Tags,
    pub packages: &'a dyn PackageIndex,
    pub runtime: &'a dyn Runtime,
    pub kubeadm_images: &'a dyn KubeadmImages,
}

/// Owner of a directory or file, by name (resolved when applied: u7s-admin may not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub user: String,
    pub group: String,
}

impl Owner {
    pub fn root() -> Owner {
        Owner {
            user: "root".into(),
            group: "root".into(),
        }
    }
    pub fn u7s() -> Owner {
        Owner {
            user: U7S_ADMIN.into(),
            group: U7S_ADMIN.into(),
        }
    }
    pub fn root_u7s_group() -> Owner {
        Owner {
            user: "root".into(),
            group: U7S_ADMIN.into(),
        }
    }
}

/// A complete plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub command: &'static str,
    /// `(what, value and where it came from)`.
    pub summary: Vec<(String, String)>,
    pub notes: Vec<String>,
    pub steps: Vec<Step>,
    pub images: Vec<Image>,
    /// Why the image list is not final yet, if it is not.
    pub images_pending: Option<String>,
    pub processes: Vec<String>,
    pub ports: Vec<PortSpec>,
    pub prepare_only: bool,
}

fn chosen_text<T: std::fmt::Display>(c: &Chosen<T>) -> String {
    format!("{} ({})", c.value, c.origin)
}
