//! `kubeadm init phase ...` run through the wrapper without `--config`. Left alone, kubeadm
//! guesses this node's API address from the namespace's default route (slirp's 10.0.2.100,
//! which no certificate names, so every API call fails until its timeout) and asks dl.k8s.io
//! for a version (which an offline node waits for). Upstream's documented
//! `kubeadm init phase upload-certs --upload-certs` hit both. The wrapper gives kubeadm the
//! node's own configuration: the first control plane's saved init configuration, or, on a
//! control plane that joined, the address, port, version and endpoint of its node.toml.

use std::path::{Path, PathBuf};

use crate::node_config::NodeConfig;

use super::flags::CRI_SOCKET;
use super::plan::KUBEADM_CONFIG_DIR;

/// What to add to a native command's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhaseConfig {
    /// Not an `init phase` command, or `--config` given, or not a control plane: as given.
    Unchanged,
    /// `--config` of an existing file (the init configuration).
    Existing(PathBuf),
    /// `--config` of this text, written beside the init configuration first.
    Rendered(String),
}

/// Where a rendered phase configuration is written (root's directory, read inside the namespace).
pub fn rendered_path() -> PathBuf {
    Path::new(KUBEADM_CONFIG_DIR).join("phase.yaml")
}

/// The configuration `kubeadm init` through the wrapper saved (plan's `<command>.yaml`).
pub fn init_config_path() -> PathBuf {
    Path::new(KUBEADM_CONFIG_DIR).join("init.yaml")
}

/// Whether `args` (after the wrapper's own name) is `init phase ...` without `--config`.
fn wants_config(args: &[String]) -> bool {
    let mut words = args.iter().map(String::as_str);
    words.next() == Some("init")
        && words.next() == Some("phase")
        && !args
            .iter()
            .any(|a| a == "--config" || a.starts_with("--config="))
}

/// The configuration to give `args`; `init_config`: the saved init configuration, if any.
pub fn phase_config(
    args: &[String],
    node: Option<&NodeConfig>,
    init_config: Option<&Path>,
) -> PhaseConfig {
    let Some(node) = node.filter(|n| n.role.is_control_plane()) else {
        return PhaseConfig::Unchanged;
    };
    if !wants_config(args) {
        return PhaseConfig::Unchanged;
    }
    if let Some(path) = init_config {
        return PhaseConfig::Existing(path.to_path_buf());
    }
    match render(node) {
        Some(text) => PhaseConfig::Rendered(text),
        None => PhaseConfig::Unchanged,
    }
}

/// The smallest InitConfiguration + ClusterConfiguration that pins what kubeadm would guess.
fn render(node: &NodeConfig) -> Option<String> {
    let version = node.kubernetes_version;
    let api = version.minor_line().kubeadm_api().api_version();
    let endpoint = node
        .control_plane_endpoint
        .clone()
        .unwrap_or_else(|| format!("{}:{}", node.advertise_address, node.bind_port));
    let init = serde_json::json!({
        "apiVersion": api,
        "kind": "InitConfiguration",
        "localAPIEndpoint": {
            "advertiseAddress": node.advertise_address.to_string(),
            "bindPort": node.bind_port,
        },
        "nodeRegistration": { "criSocket": CRI_SOCKET },
    });
    let cluster = serde_json::json!({
        "apiVersion": api,
        "kind": "ClusterConfiguration",
        "kubernetesVersion": version.without_v(),
        "controlPlaneEndpoint": endpoint,
        "imageRepository": node.image_repository(),
    });
    let init = podsec_common::yaml::to_string(&init).ok()?;
    let cluster = podsec_common::yaml::to_string(&cluster).ok()?;
    Some(format!("{init}---\n{cluster}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_config::Role;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    fn node(role: Role) -> NodeConfig {
        let mut node = crate::node_config::tests::example();
        node.role = role;
        node.control_plane_endpoint = Some("192.0.2.100:8443".into());
        node
    }

    #[test]
    fn init_phase_without_config_gets_the_init_configuration() {
        let init = Path::new("/etc/podsec/u7s/kubeadm/init.yaml");
        assert_eq!(init_config_path(), init);
        let upload = args(&["init", "phase", "upload-certs", "--upload-certs"]);
        assert_eq!(
            phase_config(&upload, Some(&node(Role::InitMaster)), Some(init)),
            PhaseConfig::Existing(init.to_path_buf())
        );
        // Given --config, another subcommand, a worker, no node: as given.
        for (words, role) in [
            (
                vec!["init", "phase", "upload-certs", "--config", "x.yaml"],
                Role::InitMaster,
            ),
            (
                vec!["init", "phase", "upload-certs", "--config=x.yaml"],
                Role::InitMaster,
            ),
            (vec!["token", "create"], Role::InitMaster),
            (vec!["init", "--node-name", "phase"], Role::InitMaster),
            (vec!["init", "phase", "upload-certs"], Role::Worker),
        ] {
            assert_eq!(
                phase_config(&args(&words), Some(&node(role)), Some(init)),
                PhaseConfig::Unchanged,
                "{words:?}"
            );
        }
        assert_eq!(
            phase_config(&upload, None, Some(init)),
            PhaseConfig::Unchanged
        );
    }

    #[test]
    fn a_joined_control_plane_gets_its_address_version_and_endpoint() {
        let node = node(Role::ControlPlane);
        let upload = args(&["init", "phase", "upload-certs", "--upload-certs"]);
        let PhaseConfig::Rendered(text) = phase_config(&upload, Some(&node), None) else {
            panic!("not rendered");
        };
        let docs: Vec<serde_json::Value> = podsec_common::yaml::documents(&text).unwrap();
        assert_eq!(docs[0]["kind"].as_str(), Some("InitConfiguration"));
        assert_eq!(
            docs[0]["localAPIEndpoint"]["advertiseAddress"].as_str(),
            Some(node.advertise_address.to_string().as_str())
        );
        assert_eq!(
            docs[0]["localAPIEndpoint"]["bindPort"].as_u64(),
            Some(u64::from(node.bind_port))
        );
        assert_eq!(docs[1]["kind"].as_str(), Some("ClusterConfiguration"));
        assert_eq!(
            docs[1]["kubernetesVersion"].as_str(),
            Some(node.kubernetes_version.without_v().as_str())
        );
        assert_eq!(
            docs[1]["controlPlaneEndpoint"].as_str(),
            Some("192.0.2.100:8443")
        );
    }
}
