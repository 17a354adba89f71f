//! The kubeadm configuration of a rootless node, built from typed structs (upstream spliced
//! values into yq programs, §10.1/3) in the API version the chosen Kubernetes expects:
//! `kubeadm.k8s.io/v1beta3` up to 1.30, `v1beta4` from 1.31 (where extraArgs became lists of
//! name/value pairs and the timeouts moved into a `timeouts` block).
//!
//! - init: InitConfiguration, ClusterConfiguration (etcd data in /var/lib/podsec/u7s/etcd, the
//!   rootless extraArgs), KubeletConfiguration, KubeProxyConfiguration (conntrack 0: kube-proxy
//!   cannot write the conntrack sysctls from a user namespace);
//! - join (worker or control plane): JoinConfiguration only. kubeadm join takes the cluster's
//!   ClusterConfiguration and component configurations from the cluster's ConfigMaps and ignores
//!   such documents in the join file.

use std::net::Ipv4Addr;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

use super::network::Ipv4Net;
use super::versions::{KubeVersion, KubeadmApi};

mod documents;
#[cfg(test)]
pub mod tests;

pub use documents::render;

/// Where etcd keeps its data on a rootless control-plane node (owned by u7s-admin).
pub const ETCD_DATA_DIR: &str = "/var/lib/podsec/u7s/etcd";
/// How long kubeadm waits for the control plane and for discovery, as upstream configured it.
pub const CONTROL_PLANE_TIMEOUT: &str = "4m0s";
pub const DISCOVERY_TIMEOUT: &str = "5m0s";
const BOOTSTRAP_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// What the node becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `kubeadm init`: the first control-plane node.
    Init,
    /// `kubeadm join` of a worker.
    Worker,
    /// `kubeadm join --control-plane`.
    ControlPlane,
}

impl Role {
    pub fn is_control_plane(&self) -> bool {
        matches!(self, Role::Init | Role::ControlPlane)
    }
}

/// How a joining node finds and trusts the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    Token {
        endpoint: String,
        token: String,
        ca_cert_hashes: Vec<String>,
        unsafe_skip_ca_verification: bool,
    },
    File {
        kubeconfig: String,
    },
}

/// Everything the configuration is made of; the plan fills it from flags, environment and host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInput {
    pub role: Role,
    pub version: KubeVersion,
    pub node_name: String,
    pub advertise_address: Ipv4Addr,
    pub bind_port: u16,
    pub skip_phases: Vec<String>,
    pub patches: Option<String>,
    pub init: Option<InitInput>,
    pub join: Option<JoinInput>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitInput {
    /// `registry.local/c10f`, `registry.k8s.io`: every image's registry and path.
    pub image_repository: String,
    pub control_plane_endpoint: String,
    pub pod_subnet: Ipv4Net,
    pub service_subnet: Ipv4Net,
    pub dns_domain: String,
    pub cert_extra_sans: Vec<String>,
    pub feature_gates: Vec<(String, bool)>,
    pub token: Option<String>,
    pub token_ttl: Option<String>,
    pub certificate_key: Option<String>,
    /// A substitute etcd tag (U7S_SETAVAILABLEIMAGES, same minor), else kubeadm's own.
    pub etcd_image_tag: Option<String>,
    /// A substitute CoreDNS tag (U7S_SETAVAILABLEIMAGES, same minor), else kubeadm's own.
    pub dns_image_tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinInput {
    pub discovery: Discovery,
    pub tls_bootstrap_token: Option<String>,
    pub certificate_key: Option<String>,
}

/// `extraArgs`: a map in v1beta3, a list of `{name, value}` in v1beta4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraArgs {
    api: KubeadmApi,
    args: Vec<(String, String)>,
}

impl ExtraArgs {
    pub(super) fn new(api: KubeadmApi, args: &[(&str, String)]) -> ExtraArgs {
        ExtraArgs {
            api,
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
}

impl Serialize for ExtraArgs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Arg<'a> {
            name: &'a str,
            value: &'a str,
        }
        match self.api {
            KubeadmApi::V1beta3 => {
                let mut map = serializer.serialize_map(Some(self.args.len()))?;
                for (k, v) in &self.args {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            KubeadmApi::V1beta4 => {
                let mut seq = serializer.serialize_seq(Some(self.args.len()))?;
                for (name, value) in &self.args {
                    seq.serialize_element(&Arg { name, value })?;
                }
                seq.end()
            }
        }
    }
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum ConfigError {
    #[error("the {role:?} configuration needs its {what} settings")]
    Missing { role: Role, what: &'static str },
    #[error("cannot render the kubeadm configuration: {0}")]
    Yaml(podsec_common::i18n::Message),
}
