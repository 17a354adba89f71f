//! The node configuration of a rootless (u7s) Kubernetes node: `/etc/podsec/u7s/node.toml`.
//!
//! It replaces upstream's env file (`/etc/podsec/u7s/config/env` and its copy in
//! `~u7s-admin/.config/usernetes/env`), which was built from unquoted command-line values and
//! `source`d by shell scripts, one of them run by root from the copy u7s-admin owns (upstream
//! defects 2 and 3). This file is:
//! - typed TOML, parsed strictly: an unknown key, a missing key or a bad value is an error
//!   naming the key; nothing is ever evaluated;
//! - validated as a whole ([`NodeConfig::validate`]): CIDRs that overlap (Service, pod and
//!   slirp4netns networks, upstream defect 16), ports that collide, a version below 1.26;
//! - written by root only (`podsec-u7s-kubeadm init/join`), atomically, root-owned, mode 0644
//!   (it holds no secrets: join tokens and certificate keys never land here), in a root-owned
//!   directory; [`NodeConfig::load`] refuses a file or directory on the way that is not
//!   root-owned or is writable by others, so u7s-admin cannot change what root and the runtime
//!   read;
//! - read by root (the kubeadm wrapper, u7s.service) and by u7s-admin's runtime outside the user
//!   namespace (inside it root's files appear owned by the overflow uid, so the runtime loads it
//!   before entering and hands the values on as arguments).
//!
//! ```toml
//! role = "init-master"                 # init-master | control-plane | worker
//! kubernetes-version = "v1.33.13"
//! uid = 990                            # u7s-admin's uid
//! registry = "registry.local"
//! platform = "c10f"                    # absent for the native registry.k8s.io images
//! pause-image = "registry.local/c10f/pause:3.10"
//! external-ip = "192.0.2.10"           # the host's address, also put on tap0 in the namespace
//! advertise-address = "192.0.2.10"
//! bind-port = 6443
//! control-plane-endpoint = "192.0.2.10:6443"   # optional
//! service-cidr = "10.96.0.0/12"
//! pod-cidr = "10.244.0.0/16"
//! cni-plugin = "flannel"               # flannel | calico
//! slirp-cidr = "10.0.2.0/24"           # optional; this is the default
//! extra-ports = ["0.0.0.0:31000:31000/tcp"]    # optional: NodePorts published at every start
//! ```

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use podsec_common::host::files::{self, FileError, Owner};
use podsec_common::i18n::Message;
use podsec_common::image_ref::ImageRef;
use podsec_common::msg;
use serde::{Deserialize, Serialize};

use crate::u7s::ports::{self, PortSpec};

mod cidr;
#[cfg(test)]
pub(crate) mod tests;
mod trusted;
mod version;

pub use cidr::{CidrError, DEFAULT_SLIRP_CIDR, Ipv4Cidr, host_networks};
use trusted::create_trusted_dirs;
pub(crate) use trusted::{TrustedReadError, check_trusted_ancestors, read_root_trusted};
pub use version::{KubeVersion, VersionError};

/// Where the node configuration lives.
pub const NODE_CONFIG_PATH: &str = "/etc/podsec/u7s/node.toml";
/// The oldest Kubernetes minor podsec deploys (as upstream).
pub const MINIMUM_VERSION: KubeVersion = KubeVersion {
    major: 1,
    minor: 26,
    patch: 0,
};
/// Largest file accepted (a real one is well under 1 KiB).
const MAX_SIZE: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum NodeConfigError {
    #[error("cannot read the node configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("refusing the node configuration {path}: {reason}")]
    Untrusted { path: PathBuf, reason: Message },
    #[error("node configuration {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid node configuration: {key}: {message}")]
    Invalid { key: &'static str, message: Message },
    #[error("cannot write the node configuration: {0}")]
    Write(#[from] FileError),
}

fn invalid(key: &'static str, message: Message) -> NodeConfigError {
    NodeConfigError::Invalid { key, message }
}

/// What this node is in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The first control-plane node (`kubeadm init`).
    InitMaster,
    /// A further control-plane node (`kubeadm join --control-plane`).
    ControlPlane,
    /// A worker (`kubeadm join`).
    Worker,
}

impl Role {
    pub fn is_control_plane(self) -> bool {
        matches!(self, Role::InitMaster | Role::ControlPlane)
    }
}

/// The pod network add-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CniPlugin {
    Flannel,
    Calico,
}

impl CniPlugin {
    /// The pod CIDR kubeadm and the add-on's manifests default to.
    pub fn default_pod_cidr(self) -> Ipv4Cidr {
        match self {
            CniPlugin::Flannel => Ipv4Cidr::new(Ipv4Addr::new(10, 244, 0, 0), 16),
            CniPlugin::Calico => Ipv4Cidr::new(Ipv4Addr::new(192, 168, 0, 0), 16),
        }
        .expect("valid constant")
    }
}

/// Serde through the text forms, so the TOML says `"10.96.0.0/12"` and `"v1.33.13"`.
macro_rules! serde_as_string {
    ($type:ty) => {
        impl Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_string!(KubeVersion);
serde_as_string!(Ipv4Cidr);
serde_as_string!(PortSpec);

/// The node configuration (see the module documentation for the file format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeConfig {
    pub role: Role,
    pub kubernetes_version: KubeVersion,
    /// u7s-admin's uid: the runtime refuses to run as anybody else.
    pub uid: u32,
    /// Registry host of the cluster images (`registry.local`, `registry.altlinux.org`,
    /// `registry.k8s.io`, `host:port`).
    pub registry: String,
    /// Path prefix of the images in the registry (`c10f`, `p11`); absent for registry.k8s.io.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The pause (sandbox) image, a full reference; CRI-O's `pause_image`.
    pub pause_image: String,
    /// This host's address; put on tap0 inside the namespace so the node owns it there too.
    pub external_ip: Ipv4Addr,
    /// The address the API server (and etcd) advertise.
    pub advertise_address: Ipv4Addr,
    /// The API server's port, published from the namespace on control-plane nodes.
    pub bind_port: u16,
    /// `host:port` of the cluster's control plane (a load balancer, or the first master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_endpoint: Option<String>,
    pub service_cidr: Ipv4Cidr,
    pub pod_cidr: Ipv4Cidr,
    pub cni_plugin: CniPlugin,
    /// The network slirp4netns gives the namespace (tap0, gateway .2, DNS .3, guest .100).
    #[serde(default = "default_slirp_cidr")]
    pub slirp_cidr: Ipv4Cidr,
    /// Ports published at every start besides the role's (e.g. NodePorts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_ports: Vec<PortSpec>,
}

fn default_slirp_cidr() -> Ipv4Cidr {
    DEFAULT_SLIRP_CIDR
}

impl NodeConfig {
    /// Parses and validates TOML text (no file checks); `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<NodeConfig, NodeConfigError> {
        let config: NodeConfig = toml::from_str(text).map_err(|e| NodeConfigError::Parse {
            path: origin.to_path_buf(),
            message: one_line(&e.to_string()),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The TOML text of a valid configuration.
    pub fn to_toml(&self) -> Result<String, NodeConfigError> {
        self.validate()?;
        let body = toml::to_string(self)
            .map_err(|e| invalid("(file)", Message::verbatim(e.to_string())))?;
        Ok(format!(
            "# podsec u7s node configuration, written by podsec-u7s-kubeadm; root-owned.\n{body}"
        ))
    }

    /// Reads [`NODE_CONFIG_PATH`].
    pub fn load_default() -> Result<NodeConfig, NodeConfigError> {
        NodeConfig::load(Path::new(NODE_CONFIG_PATH))
    }

    /// Reads, checks and validates the file at `path`: it must be a regular file (a symlink is
    /// refused), owned by root, not writable by group or others, in directories that are
    /// root-owned and not writable by others (or sticky).
    pub fn load(path: &Path) -> Result<NodeConfig, NodeConfigError> {
        let read = |source| NodeConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let untrusted = |reason: Message| NodeConfigError::Untrusted {
            path: path.to_path_buf(),
            reason,
        };
        let data = read_root_trusted(path, MAX_SIZE).map_err(|e| match e {
            TrustedReadError::Untrusted(reason) => untrusted(reason),
            TrustedReadError::Io(source) => read(source),
        })?;
        let text = String::from_utf8(data).map_err(|_| {
            read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ))
        })?;
        NodeConfig::from_toml(&text, path)
    }

    /// Validates and replaces the file at `path` atomically: root-owned, mode 0644. Missing
    /// parent directories are created root-owned, mode 0755; existing ones must be trusted.
    pub fn save(&self, path: &Path) -> Result<(), NodeConfigError> {
        let text = self.to_toml()?;
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or_else(|| invalid("(path)", msg!("{} has no directory", path.display())))?;
        create_trusted_dirs(parent)?;
        check_trusted_ancestors(path).map_err(|reason| NodeConfigError::Untrusted {
            path: path.to_path_buf(),
            reason,
        })?;
        files::write_atomic(path, text.as_bytes(), 0o644, Owner::new(0, 0))?;
        Ok(())
    }

    /// Checks the configuration as a whole; the error names the offending key.
    pub fn validate(&self) -> Result<(), NodeConfigError> {
        if self.kubernetes_version < MINIMUM_VERSION {
            return Err(invalid(
                "kubernetes-version",
                msg!(
                    "{} is older than the oldest supported v{}.{}",
                    self.kubernetes_version,
                    MINIMUM_VERSION.major,
                    MINIMUM_VERSION.minor
                ),
            ));
        }
        if self.uid == 0 {
            return Err(invalid(
                "uid",
                msg!("the cluster must not run as root (uid 0)"),
            ));
        }
        if !valid_registry_host(&self.registry) {
            return Err(invalid(
                "registry",
                msg!(
                    "'{}' is not a registry host name (host or host:port, no scheme or path)",
                    self.registry
                ),
            ));
        }
        if let Some(platform) = &self.platform
            && !valid_platform(platform)
        {
            return Err(invalid(
                "platform",
                msg!(
                    "'{platform}' is not a platform name (lower-case letters, digits, '.', '_', '-')"
                ),
            ));
        }
        let pause = ImageRef::parse(&self.pause_image)
            .map_err(|e| invalid("pause-image", Message::of(&e)))?;
        if pause.tag.is_none() && pause.digest.is_none() {
            return Err(invalid(
                "pause-image",
                msg!("'{}' needs a tag or digest", self.pause_image),
            ));
        }
        for (key, address) in [
            ("external-ip", self.external_ip),
            ("advertise-address", self.advertise_address),
        ] {
            if address.is_unspecified()
                || address.is_loopback()
                || address.is_multicast()
                || address.is_broadcast()
            {
                return Err(invalid(key, msg!("{address} is not a usable node address")));
            }
        }
        if self.bind_port == 0 {
            return Err(invalid("bind-port", Message::verbatim("port 0")));
        }
        if let Some(endpoint) = &self.control_plane_endpoint {
            check_endpoint(endpoint).map_err(|m| invalid("control-plane-endpoint", m))?;
        }
        let networks = [
            ("service-cidr", self.service_cidr),
            ("pod-cidr", self.pod_cidr),
            ("slirp-cidr", self.slirp_cidr),
        ];
        for (i, (key, net)) in networks.iter().enumerate() {
            for (other_key, other) in &networks[i + 1..] {
                if net.overlaps(other) {
                    return Err(invalid(key, msg!("{net} overlaps {other_key} {other}")));
                }
            }
        }
        if self.service_cidr.prefix() > 28 {
            return Err(invalid(
                "service-cidr",
                msg!("{} is too small", self.service_cidr),
            ));
        }
        if self.pod_cidr.prefix() > 24 {
            return Err(invalid(
                "pod-cidr",
                msg!("{} is too small (at least a /24)", self.pod_cidr),
            ));
        }
        // slirp4netns puts the gateway on .2, DNS on .3 and the namespace on .100.
        if self.slirp_cidr.prefix() > 25 {
            return Err(invalid(
                "slirp-cidr",
                msg!(
                    "{} is too small for slirp4netns (at least a /25)",
                    self.slirp_cidr
                ),
            ));
        }
        for (key, address) in [
            ("external-ip", self.external_ip),
            ("advertise-address", self.advertise_address),
        ] {
            for (net_key, net) in &networks {
                if net.contains(address) {
                    return Err(invalid(key, msg!("{address} lies in {net_key} {net}")));
                }
            }
        }
        let role_ports = ports::role_ports(self.role, self.cni_plugin, self.bind_port);
        if let Some(clash) = ports::first_duplicate(&role_ports) {
            return Err(invalid(
                "bind-port",
                msg!(
                    "{} collides with another port the node publishes ({clash})",
                    self.bind_port
                ),
            ));
        }
        for extra in &self.extra_ports {
            if role_ports
                .iter()
                .chain(self.extra_ports.iter())
                .filter(|p| p.same_parent(extra))
                .count()
                > 1
            {
                return Err(invalid("extra-ports", msg!("{extra} is published twice")));
            }
        }
        Ok(())
    }

    /// `registry/platform`, the kubeadm imageRepository (`registry.local/c10f`).
    pub fn image_repository(&self) -> String {
        match &self.platform {
            Some(platform) => format!("{}/{platform}", self.registry),
            None => self.registry.clone(),
        }
    }

    /// Every port published from the namespace: the role's, then the extra ones.
    pub fn published_ports(&self) -> Vec<PortSpec> {
        let mut all = ports::role_ports(self.role, self.cni_plugin, self.bind_port);
        all.extend(self.extra_ports.iter().cloned());
        all
    }

    /// The slirp4netns address of the namespace on tap0 (`.100`).
    pub fn slirp_guest_address(&self) -> Ipv4Addr {
        self.slirp_cidr
            .host(100)
            .expect("validated: at least a /25")
    }

    /// Errors when one of the node's networks overlaps a network of this host: the host network
    /// would become unreachable from the namespace (slirp) or from pods (Service, pod CIDR).
    pub fn check_host_networks(
        &self,
        host_networks: &[(String, Ipv4Cidr)],
    ) -> Result<(), NodeConfigError> {
        for (key, net) in [
            ("service-cidr", self.service_cidr),
            ("pod-cidr", self.pod_cidr),
            ("slirp-cidr", self.slirp_cidr),
        ] {
            if let Some((device, host)) = host_networks.iter().find(|(_, h)| h.overlaps(&net)) {
                return Err(invalid(
                    key,
                    msg!("{net} overlaps the network {host} of interface {device}"),
                ));
            }
        }
        Ok(())
    }
}

fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^' || c == ' ')
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn valid_registry_host(text: &str) -> bool {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    host_ok && port_ok
}

fn valid_platform(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

fn check_endpoint(text: &str) -> Result<(), Message> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| msg!("'{text}' is not host:port"))?;
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(msg!("'{text}' has no valid port"));
    }
    if host.parse::<Ipv4Addr>().is_err() && !valid_registry_host(host) {
        return Err(msg!("'{text}' has no valid host"));
    }
    Ok(())
}
