//! What an upgrade may do, decided from facts alone (no host access): which target versions are
//! allowed, which steps a node runs, what the kubeadm-config and `kubectl get node` outputs say.

use podsec_common::i18n::Message;
use podsec_common::msg;

use super::journal::{Mode, Step};
use crate::node_config::{KubeVersion, Role};
use crate::u7s_kubeadm::flannel::{MANIFESTS, Manifest};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, podsec_common::i18n::Localize)]
pub enum TargetError {
    #[error("{target} is not newer than this node's {current}: nothing to upgrade")]
    NotNewer {
        current: KubeVersion,
        target: KubeVersion,
    },
    #[error(
        "{target} skips a minor: this node runs {current}; upgrade to v{major}.{next} first (one minor at a time, as kubeadm requires)"
    )]
    SkipsMinor {
        current: KubeVersion,
        target: KubeVersion,
        major: u32,
        next: u32,
    },
    #[error("{target} is another major version than this node's {current}")]
    OtherMajor {
        current: KubeVersion,
        target: KubeVersion,
    },
}

/// A target is newer than `current`, of the same major, at most one minor ahead.
pub fn check_target(current: KubeVersion, target: KubeVersion) -> Result<(), TargetError> {
    if target.major != current.major {
        return Err(TargetError::OtherMajor { current, target });
    }
    if target <= current {
        return Err(TargetError::NotNewer { current, target });
    }
    if target.minor > current.minor + 1 {
        return Err(TargetError::SkipsMinor {
            current,
            target,
            major: current.major,
            next: current.minor + 1,
        });
    }
    Ok(())
}

/// The steps of an upgrade of a node of `role` by `mode`, in order.
pub fn steps(mode: Mode, role: Role, pod_network_update: bool) -> Vec<Step> {
    let mut steps = vec![Step::Packages, Step::Images, Step::ControlPlane];
    if role.is_control_plane() {
        steps.push(Step::Audit);
    }
    steps.extend([Step::Drain, Step::Kubelet, Step::Ready, Step::Uncordon]);
    if mode == Mode::Apply && pod_network_update {
        steps.push(Step::PodNetwork);
    }
    steps
}

/// `kubernetesVersion` of the ClusterConfiguration text kubeadm keeps in kubeadm-config.
pub fn cluster_version(cluster_configuration: &str) -> Option<KubeVersion> {
    cluster_configuration.lines().find_map(|line| {
        let value = line.strip_prefix("kubernetesVersion:")?;
        value.trim().trim_matches(['"', '\'']).parse().ok()
    })
}

/// The pause image of `kubeadm config images list`'s output.
pub fn pause_image(images_list: &str) -> Option<String> {
    images_list
        .lines()
        .map(str::trim)
        .find(|line| {
            line.rsplit_once('/')
                .map_or(*line, |(_, name)| name)
                .starts_with("pause:")
        })
        .map(str::to_string)
}

/// What the upgrade needs of a Node object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub name: String,
    pub kubelet_version: Option<KubeVersion>,
    pub ready: bool,
    pub unschedulable: bool,
    pub internal_ips: Vec<String>,
}

impl NodeStatus {
    pub fn from_json(item: &serde_json::Value) -> NodeStatus {
        let status = &item["status"];
        NodeStatus {
            name: item["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            kubelet_version: status["nodeInfo"]["kubeletVersion"]
                .as_str()
                .and_then(|v| v.parse().ok()),
            ready: status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True"),
            unschedulable: item["spec"]["unschedulable"].as_bool() == Some(true),
            internal_ips: status["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["type"] == "InternalIP")
                .filter_map(|a| a["address"].as_str().map(str::to_string))
                .collect(),
        }
    }

    /// Every Node of a `kubectl get nodes -o json` list.
    pub fn list_from_json(text: &str) -> Result<Vec<NodeStatus>, Message> {
        let list: serde_json::Value =
            serde_json::from_str(text).map_err(|e| msg!("kubectl get nodes: {e}"))?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(NodeStatus::from_json)
            .collect())
    }
}

/// The newer flannel manifest podsec ships than the one running (`image` is the running
/// flannel container's image), if any.
pub fn flannel_update(image: &str) -> Option<&'static Manifest> {
    let tag = image.rsplit_once(':')?.1;
    let numbers: Vec<u64> = tag
        .trim_start_matches('v')
        .split(['.', '-'])
        .take(2)
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let running = (*numbers.first()?, *numbers.get(1)?);
    MANIFESTS.iter().rev().find(|m| m.minor > running)
}
