//! The journal of an upgrade in progress: root's `/var/lib/podsec/u7s/upgrade.toml`, written
//! atomically before kubeadm changes the control plane and after every step from then on,
//! removed when the upgrade is done. A re-run after a failure or
//! a kill reads it, skips the steps it names and goes on; a different target is refused until
//! the upgrade it names is finished.

use std::path::{Path, PathBuf};

use podsec_common::host::files::{self, Owner};
use podsec_common::i18n::Message;
use podsec_common::msg;
use serde::{Deserialize, Serialize};

use crate::node_config::{KubeVersion, TrustedReadError, read_root_trusted};

pub const JOURNAL_PATH: &str = "/var/lib/podsec/u7s/upgrade.toml";
const MAX_SIZE: u64 = 64 * 1024;

/// A step of an upgrade, in the order they run; its name is what the journal records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// kubeadm and the kubelet of the target minor installed (apt-get on ALT).
    Packages,
    /// The target's images pulled through CRI-O, so under the node's signature policy.
    Images,
    /// `kubeadm upgrade apply` (the first control plane) or `kubeadm upgrade node`.
    ControlPlane,
    /// podsec's audit settings put back into the kube-apiserver manifest kubeadm rewrote.
    Audit,
    /// The node cordoned and drained.
    Drain,
    /// node.toml's version and pause image, and the kubelet restarted on the new binary.
    Kubelet,
    /// The node Ready with the kubelet of the target version.
    Ready,
    /// The node schedulable again (when it was before the upgrade).
    Uncordon,
    /// flannel's newer manifest shipped with podsec applied (the first control plane).
    PodNetwork,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Packages => "packages",
            Step::Images => "images",
            Step::ControlPlane => "control-plane",
            Step::Audit => "audit",
            Step::Drain => "drain",
            Step::Kubelet => "kubelet",
            Step::Ready => "ready",
            Step::Uncordon => "uncordon",
            Step::PodNetwork => "pod-network",
        }
    }
}

/// Which subcommand started the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `apply`: the first control plane, `kubeadm upgrade apply`.
    Apply,
    /// `node`: every other node, `kubeadm upgrade node`.
    Node,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Journal {
    pub mode: Mode,
    pub from: KubeVersion,
    pub target: KubeVersion,
    /// The node's name in the cluster.
    pub node: String,
    /// Whether the node took pods before the drain: only then is it uncordoned.
    pub was_schedulable: bool,
    #[serde(default)]
    pub done: Vec<Step>,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum JournalError {
    #[error("the upgrade journal {path}: {reason}")]
    Bad { path: PathBuf, reason: Message },
    #[error(transparent)]
    Write(#[from] files::FileError),
}

impl Journal {
    pub fn is_done(&self, step: Step) -> bool {
        self.done.contains(&step)
    }

    /// The steps done, for messages: `packages, images`.
    pub fn done_names(&self) -> String {
        self.done
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("a journal serialises");
        format!(
            "# podsec-k8s-upgrade: an upgrade in progress; run the same command again to finish it.\n{body}"
        )
    }

    pub fn from_toml(text: &str, origin: &Path) -> Result<Journal, JournalError> {
        toml::from_str(text).map_err(|e| JournalError::Bad {
            path: origin.to_path_buf(),
            reason: Message::verbatim(e.to_string().lines().next().unwrap_or_default()),
        })
    }

    /// The journal at `path`, if there is one (root's own file only).
    pub fn load(path: &Path) -> Result<Option<Journal>, JournalError> {
        let bad = |reason: Message| JournalError::Bad {
            path: path.to_path_buf(),
            reason,
        };
        match read_root_trusted(path, MAX_SIZE) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| bad(msg!("not UTF-8")))?;
                Journal::from_toml(&text, path).map(Some)
            }
            Err(TrustedReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(TrustedReadError::Io(e)) => Err(bad(Message::of(&e))),
            Err(TrustedReadError::Untrusted(reason)) => Err(bad(reason)),
        }
    }

    /// Replaces the journal atomically: root's, mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), JournalError> {
        files::write_atomic(path, self.to_toml().as_bytes(), 0o600, Owner::new(0, 0))?;
        Ok(())
    }

    pub fn remove(path: &Path) -> Result<(), JournalError> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(JournalError::Bad {
                path: path.to_path_buf(),
                reason: Message::of(&e),
            }),
        }
    }
}
