//! Upgrade from upstream podsec-k8s 1.1.x: its shell env file becomes the typed node
//! configuration ([`crate::node_config`]).
//!
//! Upstream's wrapper rebuilt `/etc/podsec/u7s/config/env` at every `kubeadm init/join` (a
//! `PATH=` line, then `NAME=value` lines, a few values single-quoted) and copied it to
//! `~u7s-admin/.config/usernetes/env`, which its scripts `source`d. Here the file is only read,
//! line by line, as `NAME=value` text: nothing in it is ever evaluated. Root's copy is the
//! source; the service account's copy is compared with it and never trusted. Secrets of a join
//! (token, CA hash, certificate key) are not carried over: the node configuration holds none.
//!
//! Run by the package's `%post` on upgrade as `podsec-k8s --import-upstream-env`; it does
//! nothing when the node configuration exists already or no env file is there.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::net::Ipv4Addr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, Failure};
use podsec_common::host::users;
use podsec_common::i18n::Message;
use podsec_common::{msg, tr};

use crate::node_config::{
    CniPlugin, DEFAULT_SLIRP_CIDR, Ipv4Cidr, KubeVersion, NODE_CONFIG_PATH, NodeConfig,
    NodeConfigError, Role,
};

pub const NAME: &str = "podsec-k8s --import-upstream-env";
/// Root's copy of upstream's env file.
pub const UPSTREAM_ENV: &str = "/etc/podsec/u7s/config/env";
/// The service account's copy upstream's scripts sourced.
pub const UPSTREAM_USER_ENV: &str = "/var/lib/u7s-admin/.config/usernetes/env";
const SERVICE_ACCOUNT: &str = "u7s-admin";
const MAX_SIZE: u64 = 64 * 1024;

/// The keys that are deliberately not carried over, with why.
const DROPPED: &[(&str, &str)] = &[
    ("U7S_TOKEN", "join secret"),
    ("U7S_CACERTHASH", "join secret"),
    ("U7S_CERIFICATEKEY", "join secret"),
    ("U7S_KUBEADMFLAGS", "recomputed at each kubeadm run"),
    (
        "U7S_ROOTLESSKIT_FLAGS",
        "slirp4netns gets its own network (slirp-cidr)",
    ),
    (
        "U7S_SLIRP4IP",
        "slirp4netns gets its own network (slirp-cidr)",
    ),
    (
        "U7S_IMAGES",
        "the image set comes from kubeadm of the version",
    ),
];

#[derive(Parser, Debug)]
#[command(
    name = "podsec-k8s --import-upstream-env",
    about = "Convert the env file of upstream podsec-k8s 1.1.x into the node configuration"
)]
pub struct Args {
    /// The upstream env file (root's copy)
    #[arg(long, default_value = UPSTREAM_ENV)]
    pub env: PathBuf,
    /// The node configuration to write (only when it does not exist)
    #[arg(long, default_value = NODE_CONFIG_PATH)]
    pub output: PathBuf,
    /// Print the configuration instead of writing it
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: refusing it: {reason}")]
    Untrusted { path: PathBuf, reason: Message },
    #[error("{path} line {line}: not a NAME=value line: {text}")]
    Line {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{path}: {key} is missing or empty")]
    Missing { path: PathBuf, key: &'static str },
    #[error("{path}: {key}={value}: {reason}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        value: String,
        reason: Message,
    },
    #[error("the account {SERVICE_ACCOUNT} does not exist: {0}")]
    Account(#[from] users::AccountError),
    #[error(transparent)]
    Config(#[from] NodeConfigError),
}

impl Failure for ImportError {}

/// The `NAME=value` pairs of an env file, in order; the last assignment of a name wins, as in
/// the shell that used to source it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFile {
    pub values: BTreeMap<String, String>,
}

impl EnvFile {
    pub fn parse(text: &str, path: &Path) -> Result<EnvFile, ImportError> {
        let mut values = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || ImportError::Line {
                path: path.to_path_buf(),
                line: index + 1,
                text: line.chars().take(80).collect(),
            };
            let (name, value) = line.split_once('=').ok_or_else(bad)?;
            let name_ok = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name_ok {
                return Err(bad());
            }
            values.insert(name.to_string(), unquote(value).ok_or_else(bad)?);
        }
        Ok(EnvFile { values })
    }

    /// A non-empty value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// A value as upstream wrote it: bare, or in single or double quotes (no escapes were used).
fn unquote(value: &str) -> Option<String> {
    for quote in ['\'', '"'] {
        if let Some(inner) = value.strip_prefix(quote) {
            let inner = inner.strip_suffix(quote)?;
            return (!inner.contains(quote)).then(|| inner.to_string());
        }
    }
    (!value.contains(['\'', '"'])).then(|| value.to_string())
}

/// The node configuration of an upstream env file; `uid` is u7s-admin's. Returns it with the
/// keys that were present but not carried over.
pub fn convert(
    env: &EnvFile,
    uid: u32,
    path: &Path,
) -> Result<(NodeConfig, Vec<&'static str>), ImportError> {
    let missing = |key| ImportError::Missing {
        path: path.to_path_buf(),
        key,
    };
    let invalid = |key, value: &str, reason: Message| ImportError::Invalid {
        path: path.to_path_buf(),
        key,
        value: value.to_string(),
        reason,
    };
    let role = match env.get("U7S_CONTROLPLANE") {
        Some("initMaster") => Role::InitMaster,
        Some("master") => Role::ControlPlane,
        None => Role::Worker,
        Some(other) => {
            return Err(invalid(
                "U7S_CONTROLPLANE",
                other,
                msg!("expected initMaster, master or empty"),
            ));
        }
    };
    let version_text = env
        .get("U7S_KUBEVERSION")
        .ok_or_else(|| missing("U7S_KUBEVERSION"))?;
    let kubernetes_version: KubeVersion =
        version_text
            .parse()
            .map_err(|e: crate::node_config::VersionError| {
                invalid("U7S_KUBEVERSION", version_text, Message::of(&e))
            })?;
    let registry = env
        .get("U7S_REGISTRY")
        .ok_or_else(|| missing("U7S_REGISTRY"))?
        .trim_end_matches('/')
        .to_string();
    // U7S_REGISTRY_PLATFORM is the registry plus "/<platform>" (none for registry.k8s.io).
    let platform = match env.get("U7S_REGISTRY_PLATFORM") {
        Some(with_platform) => match with_platform.trim_end_matches('/').strip_prefix(&registry) {
            Some("") => None,
            Some(rest) => match rest.strip_prefix('/') {
                Some(platform) if !platform.is_empty() => Some(platform.to_string()),
                _ => {
                    return Err(invalid(
                        "U7S_REGISTRY_PLATFORM",
                        with_platform,
                        msg!("does not continue U7S_REGISTRY={registry} with /<platform>"),
                    ));
                }
            },
            None => {
                return Err(invalid(
                    "U7S_REGISTRY_PLATFORM",
                    with_platform,
                    msg!("does not start with U7S_REGISTRY={registry}"),
                ));
            }
        },
        None => None,
    };
    let pause = env
        .get("U7S_PAUSE_IMAGE")
        .ok_or_else(|| missing("U7S_PAUSE_IMAGE"))?;
    // Upstream kept the pause image relative to the registry (`c10f/pause:3.9`).
    let first = pause.split('/').next().unwrap_or_default();
    let pause_image = if pause.contains('/') && (first.contains('.') || first.contains(':')) {
        pause.to_string()
    } else {
        format!("{registry}/{pause}")
    };
    let address = |key: &'static str| -> Result<Option<Ipv4Addr>, ImportError> {
        env.get(key)
            .map(|v| {
                v.parse::<Ipv4Addr>()
                    .map_err(|e| invalid(key, v, Message::verbatim(e.to_string())))
            })
            .transpose()
    };
    let external_ip = address("U7S_EXTIP")?.ok_or_else(|| missing("U7S_EXTIP"))?;
    let advertise_address = address("U7S_APISERVER_ADVERTISE_ADDRESS")?.unwrap_or(external_ip);
    let bind_port = match env.get("U7S_APISERVER_BIND_PORT") {
        Some(port) => port.parse::<u16>().map_err(|e| {
            invalid(
                "U7S_APISERVER_BIND_PORT",
                port,
                Message::verbatim(e.to_string()),
            )
        })?,
        None => 6443,
    };
    let cidr = |key: &'static str| -> Result<Ipv4Cidr, ImportError> {
        let value = env.get(key).ok_or_else(|| missing(key))?;
        value
            .parse()
            .map_err(|e: crate::node_config::CidrError| invalid(key, value, Message::of(&e)))
    };
    let cni_plugin = match env.get("U7S_CNI_PLUGIN").unwrap_or("flannel") {
        "flannel" => CniPlugin::Flannel,
        "calico" => CniPlugin::Calico,
        other => {
            return Err(invalid(
                "U7S_CNI_PLUGIN",
                other,
                msg!("expected flannel or calico"),
            ));
        }
    };
    let config = NodeConfig {
        role,
        kubernetes_version,
        uid,
        registry,
        platform,
        pause_image,
        external_ip,
        advertise_address,
        bind_port,
        control_plane_endpoint: env
            .get("U7S_APISERVERENDPOINT")
            .or(env.get("U7S_CONTROLPLANEENDPOINT"))
            .map(str::to_string),
        service_cidr: cidr("U7S_SERVICECIDR")?,
        pod_cidr: cidr("U7S_PODNETWORKCIDR")?,
        cni_plugin,
        slirp_cidr: DEFAULT_SLIRP_CIDR,
        extra_ports: Vec::new(),
    };
    config.validate()?;
    let dropped = DROPPED
        .iter()
        .filter(|(key, _)| env.get(key).is_some())
        .map(|(key, _)| *key)
        .collect();
    Ok((config, dropped))
}

/// Reads a file without following a symlink, within a size limit; also returns its owner.
fn read_no_follow(path: &Path) -> Result<(String, u32), ImportError> {
    let read = |source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(read)?;
    let meta = file.metadata().map_err(read)?;
    if !meta.file_type().is_file() || meta.len() > MAX_SIZE {
        return Err(ImportError::Untrusted {
            path: path.to_path_buf(),
            reason: msg!("not a regular file of at most {MAX_SIZE} bytes"),
        });
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read)?;
    Ok((text, meta.uid()))
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(args: Args) -> Result<ExitCode, ImportError> {
    cli::require_root().map_err(|e| ImportError::Untrusted {
        path: args.output.clone(),
        reason: Message::of(&e),
    })?;
    if std::fs::symlink_metadata(&args.output).is_ok() {
        println!(
            "{NAME}: {}",
            tr!(
                "{path} exists; nothing to import",
                path = args.output.display()
            )
        );
        return Ok(ExitCode::SUCCESS);
    }
    if std::fs::symlink_metadata(&args.env).is_err() {
        println!(
            "{NAME}: {}",
            tr!("no {path}; nothing to import", path = args.env.display())
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (text, owner) = read_no_follow(&args.env)?;
    if owner != 0 {
        println!(
            "{NAME}: {}",
            tr!(
                "note: {path} is owned by uid {owner}, not root; its values are checked as any input",
                path = args.env.display(),
                owner = owner
            )
        );
    }
    let env = EnvFile::parse(&text, &args.env)?;
    let account = users::user(SERVICE_ACCOUNT)?;
    let (config, dropped) = convert(&env, account.uid, &args.env)?;
    // The service account's copy is never a source; a difference is worth knowing.
    if let Ok((copy, _)) = read_no_follow(Path::new(UPSTREAM_USER_ENV))
        && EnvFile::parse(&copy, Path::new(UPSTREAM_USER_ENV))
            .ok()
            .as_ref()
            != Some(&env)
    {
        println!(
            "{NAME}: {}",
            tr!(
                "note: {copy} differs from {path}; only the latter was used",
                copy = UPSTREAM_USER_ENV,
                path = args.env.display()
            )
        );
    }
    if args.dry_run {
        print!("{}", config.to_toml()?);
        return Ok(ExitCode::SUCCESS);
    }
    config.save(&args.output)?;
    println!(
        "{NAME}: {}",
        tr!(
            "{path} converted into {output} ({role}, Kubernetes {version}, registry {registry})",
            path = args.env.display(),
            output = args.output.display(),
            role = format!("{:?}", config.role),
            version = config.kubernetes_version,
            registry = config.registry
        )
    );
    if !dropped.is_empty() {
        println!(
            "{NAME}: {}",
            tr!(
                "not carried over: {keys} (join secrets and values recomputed at each start)",
                keys = dropped.join(", ")
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An env file as upstream's wrapper wrote it for `kubeadm init` on a c10f node.
    pub const UPSTREAM_INIT_ENV: &str =
        "PATH=/usr/libexec/podsec/u7s/bin:/sbin/:/usr/sbin/:/bin:/usr/bin/
U7S_KUBEVERSION=v1.26.14
U7S_KUBEADMFLAGS='--apiserver-advertise-address 192.0.2.10 -v 0'
U7S_PLATFORM=k8s-c10f2
U7S_ALTREGISTRY=
U7S_REGISTRY=registry.local
U7S_FLANNEL_REGISTRY=registry.local
U7S_FLANNEL_TAG=v0.25.1
U7S_REGISTRY_PLATFORM=registry.local/c10f
U7S_IMAGES=' c10f/kube-apiserver:v1.26.14 c10f/pause:3.9'
U7S_PAUSE_IMAGE='c10f/pause:3.9'
U7S_UID=990
U7S_EXTIP=192.0.2.10
U7S_APISERVER_ADVERTISE_ADDRESS=192.0.2.10
U7S_APISERVER_BIND_PORT=6443
U7S_EXTDEV=eth0
U7S_CONTROLPLANE=initMaster
U7S_APISERVERENDPOINT=192.0.2.10:6443
U7S_TOKEN=
U7S_CACERTHASH=
U7S_CERIFICATEKEY=
U7S_SERVICECIDR=10.96.0.0/12
U7S_SERVICECIDRIP=10.96.0.0
U7S_SERVICEMASK=12
U7S_PODNETWORKCIDR=10.244.0.0/16
U7S_PODNETWORKCIDRIP=10.244.0.0
U7S_PODNETWORKMASK=16
U7S_CNI_PLUGIN=flannel
U7S_ROOTLESSKIT_FLAGS=--cidr=10.96.0.0/12
U7S_KUBERNETESCLUSTERIP=10.96.0.1
U7S_KUBERNETESCLUSTERDNS=10.96.0.10
U7S_SLIRP4IP=10.96.0.100
U7S_CONTROLPLANEENDPOINT=
U7S_SKIP_PHASES=
_CONTAINERS_ROOTLESS_UID=990
_CONTAINERS_USERNS_CONFIGURED=1
";

    #[test]
    fn an_upstream_init_env_becomes_the_node_configuration() {
        let path = Path::new("/etc/podsec/u7s/config/env");
        let env = EnvFile::parse(UPSTREAM_INIT_ENV, path).unwrap();
        let (config, dropped) = convert(&env, 990, path).unwrap();
        assert_eq!(config.role, Role::InitMaster);
        assert_eq!(config.kubernetes_version.to_string(), "v1.26.14");
        assert_eq!(config.registry, "registry.local");
        assert_eq!(config.platform.as_deref(), Some("c10f"));
        assert_eq!(config.pause_image, "registry.local/c10f/pause:3.9");
        assert_eq!(config.external_ip, Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(config.bind_port, 6443);
        assert_eq!(
            config.control_plane_endpoint.as_deref(),
            Some("192.0.2.10:6443")
        );
        assert_eq!(config.service_cidr.to_string(), "10.96.0.0/12");
        assert_eq!(config.pod_cidr.to_string(), "10.244.0.0/16");
        // Upstream gave slirp4netns the Service network (defect 16); ours has its own.
        assert_eq!(config.slirp_cidr, DEFAULT_SLIRP_CIDR);
        assert_eq!(
            dropped,
            vec![
                "U7S_KUBEADMFLAGS",
                "U7S_ROOTLESSKIT_FLAGS",
                "U7S_SLIRP4IP",
                "U7S_IMAGES"
            ]
        );
        // What it writes reads back through the strict parser.
        let text = config.to_toml().unwrap();
        assert_eq!(
            NodeConfig::from_toml(&text, Path::new("x")).unwrap(),
            config
        );
    }

    #[test]
    fn a_worker_and_the_native_registry() {
        let text = UPSTREAM_INIT_ENV
            .replace("U7S_CONTROLPLANE=initMaster", "U7S_CONTROLPLANE=")
            .replace(
                "U7S_REGISTRY=registry.local",
                "U7S_REGISTRY=registry.k8s.io",
            )
            .replace(
                "U7S_REGISTRY_PLATFORM=registry.local/c10f",
                "U7S_REGISTRY_PLATFORM=registry.k8s.io",
            )
            .replace(
                "U7S_PAUSE_IMAGE='c10f/pause:3.9'",
                "U7S_PAUSE_IMAGE='pause:3.9'",
            );
        let path = Path::new("env");
        let (config, _) = convert(&EnvFile::parse(&text, path).unwrap(), 990, path).unwrap();
        assert_eq!(config.role, Role::Worker);
        assert_eq!(config.platform, None);
        assert_eq!(config.pause_image, "registry.k8s.io/pause:3.9");
    }

    #[test]
    fn nothing_in_the_file_is_evaluated_and_bad_values_are_named() {
        let path = Path::new("env");
        for bad in [
            "U7S_EXTIP=$(touch /tmp/x)\n",
            "export U7S_EXTIP=1.2.3.4\n",
            "U7S_EXTIP='1.2.3.4\n",
            "echo hi\n",
        ] {
            let text = format!("{UPSTREAM_INIT_ENV}{bad}");
            let result = EnvFile::parse(&text, path).and_then(|env| convert(&env, 990, path));
            assert!(result.is_err(), "{bad:?} accepted");
        }
        let text = UPSTREAM_INIT_ENV.replace(
            "U7S_SERVICECIDR=10.96.0.0/12",
            "U7S_SERVICECIDR=10.244.0.0/16",
        );
        let err = convert(&EnvFile::parse(&text, path).unwrap(), 990, path).unwrap_err();
        assert!(err.to_string().contains("overlaps"), "{err}");
        let text = UPSTREAM_INIT_ENV.replace("U7S_KUBEVERSION=v1.26.14", "U7S_KUBEVERSION=1.26");
        let err = convert(&EnvFile::parse(&text, path).unwrap(), 990, path).unwrap_err();
        assert!(err.to_string().contains("U7S_KUBEVERSION=1.26"), "{err}");
    }
}
