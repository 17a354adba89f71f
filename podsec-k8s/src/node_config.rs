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

use std::fmt;
use std::io::Read;
use std::net::Ipv4Addr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use podsec_common::host::files::{self, FileError, Owner};
use podsec_common::image_ref::ImageRef;
use podsec_common::msg;
use serde::{Deserialize, Serialize};

use crate::u7s::ports::{self, PortSpec};

/// Where the node configuration lives.
pub const NODE_CONFIG_PATH: &str = "/etc/podsec/u7s/node.toml";
/// The oldest Kubernetes minor podsec deploys (as upstream).
pub const MINIMUM_VERSION: KubeVersion = KubeVersion {
    major: 1,
    minor: 26,
    patch: 0,
};
/// rootlesskit's default slirp4netns network; outside the default Service and pod CIDRs.
pub const DEFAULT_SLIRP_CIDR: Ipv4Cidr = Ipv4Cidr {
    address: Ipv4Addr::new(10, 0, 2, 0),
    prefix: 24,
};
/// Largest file accepted (a real one is well under 1 KiB).
const MAX_SIZE: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    #[error("cannot read the node configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("refusing the node configuration {path}: {reason}")]
    Untrusted { path: PathBuf, reason: String },
    #[error("node configuration {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid node configuration: {key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("cannot write the node configuration: {0}")]
    Write(#[from] FileError),
}

fn invalid(key: &'static str, message: impl Into<String>) -> NodeConfigError {
    NodeConfigError::Invalid {
        key,
        message: message.into(),
    }
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

/// A Kubernetes release `vMAJOR.MINOR.PATCH`, ordered numerically (v1.26.9 < v1.26.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid Kubernetes version '{0}': expected vMAJOR.MINOR.PATCH, e.g. v1.33.13")]
pub struct VersionError(pub String);

impl FromStr for KubeVersion {
    type Err = VersionError;
    fn from_str(text: &str) -> Result<KubeVersion, VersionError> {
        let bad = || VersionError(text.to_string());
        let rest = text.strip_prefix('v').ok_or_else(bad)?;
        let numbers: Vec<u32> = rest
            .split('.')
            .map(|part| {
                let digits = !part.is_empty()
                    && part.len() <= 9
                    && part.chars().all(|c| c.is_ascii_digit())
                    && (part == "0" || !part.starts_with('0'));
                if digits {
                    part.parse().map_err(|_| bad())
                } else {
                    Err(bad())
                }
            })
            .collect::<Result<_, _>>()?;
        match numbers[..] {
            [major, minor, patch] => Ok(KubeVersion {
                major,
                minor,
                patch,
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl KubeVersion {
    /// `1.33.13`, as ClusterConfiguration's kubernetesVersion and package versions spell it.
    pub fn without_v(&self) -> String {
        format!("{}.{}.{}", self.major, self.minor, self.patch)
    }

    /// Same major and minor.
    pub fn same_minor(&self, other: &KubeVersion) -> bool {
        self.major == other.major && self.minor == other.minor
    }
}

/// An IPv4 network `a.b.c.d/len` with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    address: Ipv4Addr,
    prefix: u8,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CidrError {
    #[error("invalid network '{0}': expected an IPv4 network a.b.c.d/len")]
    Syntax(String),
    #[error("invalid network '{text}': host bits are set (the network is {network})")]
    HostBits { text: String, network: String },
}

impl Ipv4Cidr {
    /// The network, or `None` when `address` has host bits set or `prefix` > 32.
    pub fn new(address: Ipv4Addr, prefix: u8) -> Option<Ipv4Cidr> {
        let cidr = Ipv4Cidr { address, prefix };
        (prefix <= 32 && cidr.network_bits() == u32::from(address)).then_some(cidr)
    }

    /// The network containing `address` at `prefix` (host bits cleared).
    pub fn containing(address: Ipv4Addr, prefix: u8) -> Ipv4Cidr {
        let prefix = prefix.min(32);
        let cidr = Ipv4Cidr { address, prefix };
        Ipv4Cidr {
            address: Ipv4Addr::from(cidr.network_bits()),
            prefix,
        }
    }

    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    fn network_bits(&self) -> u32 {
        u32::from(self.address) & self.mask()
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask() == self.network_bits()
    }

    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other.address) || other.contains(self.address)
    }

    /// The `n`-th address of the network (`.1` is `host(1)`), if it fits.
    pub fn host(&self, n: u32) -> Option<Ipv4Addr> {
        let size = if self.prefix == 0 {
            u64::from(u32::MAX) + 1
        } else {
            1u64 << (32 - u32::from(self.prefix))
        };
        (u64::from(n) < size).then(|| Ipv4Addr::from(self.network_bits() + n))
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;
    fn from_str(text: &str) -> Result<Ipv4Cidr, CidrError> {
        let syntax = || CidrError::Syntax(text.to_string());
        let (address, prefix) = text.split_once('/').ok_or_else(syntax)?;
        let address: Ipv4Addr = address.parse().map_err(|_| syntax())?;
        let prefix_ok =
            !prefix.is_empty() && prefix.len() <= 2 && prefix.bytes().all(|b| b.is_ascii_digit());
        let prefix: u8 = if prefix_ok {
            prefix.parse().map_err(|_| syntax())?
        } else {
            return Err(syntax());
        };
        if prefix > 32 {
            return Err(syntax());
        }
        Ipv4Cidr::new(address, prefix).ok_or_else(|| CidrError::HostBits {
            text: text.to_string(),
            network: Ipv4Cidr::containing(address, prefix).to_string(),
        })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
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
        let body = toml::to_string(self).map_err(|e| invalid("(file)", e.to_string()))?;
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
        let untrusted = |reason: String| NodeConfigError::Untrusted {
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
            .map_err(|e| invalid("pause-image", e.to_string()))?;
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
            return Err(invalid("bind-port", "port 0"));
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

/// The IPv4 networks of this host's interfaces, loopback excluded.
pub fn host_networks() -> std::io::Result<Vec<(String, Ipv4Cidr)>> {
    let mut networks = Vec::new();
    for interface in nix::ifaddrs::getifaddrs()? {
        let (Some(address), Some(mask)) = (interface.address, interface.netmask) else {
            continue;
        };
        let (Some(address), Some(mask)) = (address.as_sockaddr_in(), mask.as_sockaddr_in()) else {
            continue;
        };
        if address.ip().is_loopback() {
            continue;
        }
        let prefix = u32::from(mask.ip()).count_ones() as u8;
        networks.push((
            interface.interface_name,
            Ipv4Cidr::containing(address.ip(), prefix),
        ));
    }
    Ok(networks)
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

fn check_endpoint(text: &str) -> Result<(), String> {
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

/// Why [`read_root_trusted`] refused a file.
#[derive(Debug)]
pub(crate) enum TrustedReadError {
    /// Not a file root may act on; the reason is a msgid.
    Untrusted(String),
    Io(std::io::Error),
}

/// The bytes of the file at `path`, read as root reads a file it acts on: a regular file (a
/// symlink refused, a FIFO or device refused on the descriptor, never opened blocking), owned
/// by root, not writable by group or others, at most `max` bytes, in trusted directories
/// ([`check_trusted_ancestors`]). node.toml and the calico manifest are read so.
pub(crate) fn read_root_trusted(path: &Path, max: u64) -> Result<Vec<u8>, TrustedReadError> {
    use TrustedReadError::{Io, Untrusted};
    check_trusted_ancestors(path).map_err(Untrusted)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(
            nix::libc::O_NOFOLLOW
                | nix::libc::O_CLOEXEC
                | nix::libc::O_NONBLOCK
                | nix::libc::O_NOCTTY,
        )
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::ELOOP) {
                Untrusted(msg!("it is a symbolic link"))
            } else {
                Io(e)
            }
        })?;
    let meta = file.metadata().map_err(Io)?;
    if !meta.file_type().is_file() {
        return Err(Untrusted(msg!("not a regular file")));
    }
    if meta.uid() != 0 {
        return Err(Untrusted(msg!("owned by uid {}, not by root", meta.uid())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Untrusted(msg!(
            "mode {:04o} lets others write it",
            meta.mode() & 0o7777
        )));
    }
    let mut data = Vec::new();
    file.take(max + 1).read_to_end(&mut data).map_err(Io)?;
    if data.len() as u64 > max {
        return Err(Untrusted(msg!(
            "larger than {MAX_SIZE} bytes",
            MAX_SIZE = max
        )));
    }
    Ok(data)
}

/// Every existing directory from `/` down to `path`'s parent: root-owned, a directory (not a
/// symlink), and not writable by group or others unless sticky.
pub(crate) fn check_trusted_ancestors(path: &Path) -> Result<(), String> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| e.to_string())?
            .join(path)
    };
    let mut current = PathBuf::from("/");
    let parent = absolute.parent().unwrap_or(Path::new("/"));
    let mut components = vec![current.clone()];
    for component in parent.components().skip(1) {
        current.push(component);
        components.push(current.clone());
    }
    for dir in components {
        let meta = match std::fs::symlink_metadata(&dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        };
        if meta.file_type().is_symlink() {
            // Distribution symlinks (/var/run -> /run) are root's; a user's would be refused below.
            let target = std::fs::metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            if meta.uid() != 0 || !target.is_dir() {
                return Err(msg!(
                    "{} is a symbolic link not owned by root",
                    dir.display()
                ));
            }
            continue;
        }
        if !meta.is_dir() {
            return Err(msg!("{} is not a directory", dir.display()));
        }
        if meta.uid() != 0 {
            return Err(msg!(
                "directory {} is owned by uid {}, not by root",
                dir.display(),
                meta.uid()
            ));
        }
        let sticky = meta.mode() & 0o1000 != 0;
        if meta.mode() & 0o022 != 0 && !sticky {
            return Err(msg!(
                "directory {} (mode {:04o}) is writable by others",
                dir.display(),
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

fn create_trusted_dirs(dir: &Path) -> Result<(), NodeConfigError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_trusted_dirs(parent)?;
    }
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(NodeConfigError::Write(FileError::Io {
                path: dir.to_path_buf(),
                source,
            }));
        }
    }
    // The umask may have taken bits; the owner is whoever runs this (root, checked on load).
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).map_err(
        |source| {
            NodeConfigError::Write(FileError::Io {
                path: dir.to_path_buf(),
                source,
            })
        },
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = r#"
role = "init-master"
kubernetes-version = "v1.33.13"
uid = 990
registry = "registry.local"
platform = "c10f"
pause-image = "registry.local/c10f/pause:3.10"
external-ip = "192.0.2.10"
advertise-address = "192.0.2.10"
bind-port = 6443
service-cidr = "10.96.0.0/12"
pod-cidr = "10.244.0.0/16"
cni-plugin = "flannel"
"#;

    pub(crate) fn example() -> NodeConfig {
        NodeConfig::from_toml(EXAMPLE, Path::new("test")).unwrap()
    }

    /// [`EXAMPLE`] with some keys set to other TOML values (added when it has no such key), for
    /// the other modules' tests.
    pub(crate) fn example_with(changes: &[(&str, &str)]) -> NodeConfig {
        let mut text = EXAMPLE.to_string();
        for (key, value) in changes {
            let line = format!("{key} = {value}\n");
            match text.lines().find(|l| l.starts_with(&format!("{key} = "))) {
                Some(old) => text = text.replace(&format!("{old}\n"), &line),
                None => text.push_str(&line),
            }
        }
        NodeConfig::from_toml(&text, Path::new("test")).unwrap()
    }

    fn with(replace: &str, by: &str) -> Result<NodeConfig, NodeConfigError> {
        assert!(EXAMPLE.contains(replace), "{replace}");
        NodeConfig::from_toml(&EXAMPLE.replace(replace, by), Path::new("test"))
    }

    fn invalid_key(result: Result<NodeConfig, NodeConfigError>) -> &'static str {
        match result {
            Err(NodeConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid key, got {other:?}"),
        }
    }

    #[test]
    fn the_example_parses_with_defaults_and_round_trips() {
        let config = example();
        assert_eq!(config.role, Role::InitMaster);
        assert_eq!(config.slirp_cidr, DEFAULT_SLIRP_CIDR);
        assert_eq!(config.image_repository(), "registry.local/c10f");
        assert_eq!(config.slirp_guest_address(), Ipv4Addr::new(10, 0, 2, 100));
        let text = config.to_toml().unwrap();
        assert_eq!(
            NodeConfig::from_toml(&text, Path::new("again")).unwrap(),
            config
        );
    }

    #[test]
    fn unknown_and_missing_keys_are_refused() {
        let unknown = format!("{EXAMPLE}U7S_EXTRA = \"$(reboot)\"\n");
        let err = NodeConfig::from_toml(&unknown, Path::new("n.toml")).unwrap_err();
        assert!(
            matches!(&err, NodeConfigError::Parse { message, .. } if message.contains("U7S_EXTRA")),
            "{err}"
        );
        let missing = EXAMPLE.replace("bind-port = 6443\n", "");
        let err = NodeConfig::from_toml(&missing, Path::new("n.toml")).unwrap_err();
        assert!(err.to_string().contains("bind-port"), "{err}");
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn values_are_typed_not_shell_words() {
        // What upstream's env file would have executed is a parse error here.
        let err = with(
            "\"192.0.2.10\"\nadvertise",
            "\"192.0.2.10; reboot\"\nadvertise",
        )
        .unwrap_err()
        .to_string();
        eprintln!("{err}");
        assert!(err.contains("external-ip") && !err.contains('\n'), "{err}");
        assert!(with("\"v1.33.13\"", "\"1.33.13\"").is_err());
        assert!(with("\"10.96.0.0/12\"", "\"10.96.0.1/12\"").is_err());
        assert!(with("\"init-master\"", "\"master\"").is_err());
        assert!(with("6443", "70000").is_err());
        assert_eq!(
            invalid_key(with("\"registry.local\"", "\"http://registry.local\"")),
            "registry"
        );
        assert_eq!(invalid_key(with("\"c10f\"", "\"c10f/../x\"")), "platform");
        assert_eq!(invalid_key(with("pause:3.10", "pause:")), "pause-image");
        assert_eq!(invalid_key(with("uid = 990", "uid = 0")), "uid");
    }

    #[test]
    fn versions_order_numerically() {
        let v = |s: &str| s.parse::<KubeVersion>().unwrap();
        assert!(v("v1.26.9") < v("v1.26.11"));
        assert!(v("v1.9.0") < v("v1.26.0"));
        assert_eq!(v("v1.33.13").to_string(), "v1.33.13");
        assert_eq!(v("v1.33.13").without_v(), "1.33.13");
        for bad in [
            "1.33.13",
            "v1.33",
            "v1.33.013",
            "v1.33.x",
            "v1.33.13-rc.1",
            "",
        ] {
            assert!(bad.parse::<KubeVersion>().is_err(), "{bad}");
        }
        assert_eq!(
            invalid_key(with("v1.33.13", "v1.25.16")),
            "kubernetes-version"
        );
    }

    #[test]
    fn networks_must_not_overlap() {
        // Upstream gave slirp4netns the Service CIDR itself (defect 16).
        let slirp_is_service = format!("{EXAMPLE}slirp-cidr = \"10.96.0.0/12\"\n");
        let err = NodeConfig::from_toml(&slirp_is_service, Path::new("t")).unwrap_err();
        assert!(err.to_string().contains("overlaps"), "{err}");
        assert_eq!(
            invalid_key(with("\"10.244.0.0/16\"", "\"10.96.0.0/16\"")),
            "service-cidr"
        );
        assert_eq!(
            invalid_key(with(
                "external-ip = \"192.0.2.10\"",
                "external-ip = \"10.0.2.100\""
            )),
            "external-ip"
        );
        let config = example();
        let lan = vec![("eth0".to_string(), "10.0.0.0/8".parse().unwrap())];
        assert!(config.check_host_networks(&lan).is_err());
        let other = vec![("eth0".to_string(), "192.0.2.0/24".parse().unwrap())];
        config.check_host_networks(&other).unwrap();
    }

    #[test]
    fn cidr_arithmetic() {
        let net: Ipv4Cidr = "10.96.0.0/12".parse().unwrap();
        assert!(net.contains(Ipv4Addr::new(10, 111, 255, 255)));
        assert!(!net.contains(Ipv4Addr::new(10, 112, 0, 0)));
        assert_eq!(net.host(10), Some(Ipv4Addr::new(10, 96, 0, 10)));
        assert!(
            matches!("10.96.0.1/12".parse::<Ipv4Cidr>(), Err(CidrError::HostBits { network, .. }) if network == "10.96.0.0/12")
        );
        assert!("10.96.0.0/33".parse::<Ipv4Cidr>().is_err());
        assert!(
            "0.0.0.0/0"
                .parse::<Ipv4Cidr>()
                .unwrap()
                .contains(Ipv4Addr::new(1, 2, 3, 4))
        );
    }

    #[test]
    fn the_bind_port_must_not_collide() {
        assert_eq!(
            invalid_key(with("bind-port = 6443", "bind-port = 10250")),
            "bind-port"
        );
        let twice = format!(
            "{EXAMPLE}extra-ports = [\"0.0.0.0:31000:31000/tcp\", \"0.0.0.0:31000:31001/tcp\"]\n"
        );
        assert_eq!(
            invalid_key(NodeConfig::from_toml(&twice, Path::new("t"))),
            "extra-ports"
        );
    }

    #[test]
    fn load_refuses_untrusted_files_and_save_writes_root_owned_0644() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u7s/node.toml");
        let config = example();
        config.save(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o644);
        assert_eq!(meta.uid(), 0);
        assert_eq!(NodeConfig::load(&path).unwrap(), config);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(
            NodeConfig::load(&path),
            Err(NodeConfigError::Untrusted { .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
        let err = NodeConfig::load(&path).unwrap_err();
        assert!(err.to_string().contains("uid 4242"), "{err}");
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();

        let link = dir.path().join("u7s/link.toml");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(
            NodeConfig::load(&link),
            Err(NodeConfigError::Untrusted { .. })
        ));

        // A directory the service account could write: refused although the file is root's.
        std::os::unix::fs::chown(dir.path().join("u7s"), Some(4242), None).unwrap();
        let err = NodeConfig::load(&path).unwrap_err();
        assert!(err.to_string().contains("owned by uid 4242"), "{err}");
        assert!(config.save(&path).is_err());
    }
}
