//! podsec-k8s-upgrade: a rootless cluster to the next Kubernetes minor, kubeadm-style, inside the
//! u7s namespace. Upstream's podsec-k8s-upgrade scripts were never packaged; they ignored every
//! preflight error, wiped the pods with a script in /tmp and could skip minors (spec §9).
//!
//! `plan` tells where the node and the cluster are and what comes next; `apply VERSION` upgrades
//! the first control plane (`kubeadm upgrade apply`); `node` upgrades every other node to the
//! control plane's version (`kubeadm upgrade node`). One minor at a time; the images are pulled
//! through CRI-O, so under the node's signature policy, before anything changes; a failure or a
//! kill is resumed by running the same command again (journal.rs).

mod decide;
mod host;
mod journal;
mod run;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use podsec_common::cli::{self, Failure, NotRoot};
use podsec_common::i18n::{Localize, Message};
use podsec_common::msg;
use podsec_common::profile::{Distribution, OsRelease, Profile};

use crate::node_config::{KubeVersion, NodeConfig, NodeConfigError, Role, VersionError};
use crate::u7s_kubeadm::packages::{AltApt, PackageIndex};
use host::RealHost;
use journal::{JOURNAL_PATH, Journal, JournalError, Mode};
use run::{Upgrade, UpgradeError};

pub const NAME: &str = "podsec-k8s-upgrade";

/// Upgrade this rootless Kubernetes node to the next minor: `plan`, then `apply VERSION` on the
/// first control plane, then `node` on every other node. Run the same command again after a
/// failure or an interruption: it goes on where it stopped.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Steps of apply and node: packages (kubeadm and the kubelet of the target minor; apt-get on ALT),\n\
images (pulled through CRI-O under the node's signature policy), control-plane (kubeadm upgrade\n\
apply or node), audit (control planes), drain, kubelet (node.toml's version and pause image, the\n\
kubelet restarted), ready, uncordon, pod-network (a newer flannel manifest of podsec, apply only).\n\
The journal of an upgrade in progress: /var/lib/podsec/u7s/upgrade.toml.\n\
Must be run as root."
)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Subcommand, Debug)]
pub enum Action {
    /// Show this node's and the cluster's versions and the next step
    Plan,
    /// Upgrade the first control plane to VERSION (vMAJOR.MINOR.PATCH, the next minor at most)
    Apply {
        /// The target version, e.g. v1.33.13
        version: String,
    },
    /// Upgrade this node (another control plane or a worker) to the control plane's version
    Node,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error(transparent)]
    NotRoot(#[from] NotRoot),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error(transparent)]
    Config(#[from] NodeConfigError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Upgrade(#[from] UpgradeError),
    #[error("the u7s namespace is not running: start u7s.service (or u7s-start-stop start) first")]
    NotRunning,
}

impl Failure for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Error::Version(_) => 2,
            _ => 1,
        }
    }
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

fn on_alt() -> bool {
    Profile::for_os(&OsRelease::load(Path::new("/"))).distribution == Distribution::Alt
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    // A bad version is refused before anything is looked at.
    let target = match &args.action {
        Action::Apply { version } => Some(version.parse::<KubeVersion>()?),
        _ => None,
    };
    cli::require_root()?;
    let config = NodeConfig::load_default()?;
    let journal = Journal::load(Path::new(JOURNAL_PATH))?;
    let host = RealHost::new(on_alt());
    if !host.namespace_running() {
        return Err(Error::NotRunning);
    }
    let mut upgrade = Upgrade {
        host: &host,
        config,
        journal,
    };
    match args.action {
        Action::Plan => {
            print!("{}", plan(&upgrade));
        }
        Action::Apply { .. } => upgrade.run(Mode::Apply, target)?,
        Action::Node => upgrade.run(Mode::Node, None)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// What `plan` prints: the node, the cluster, what is installed, and the command to run next.
fn plan(upgrade: &Upgrade) -> String {
    let config = &upgrade.config;
    let mut out = String::new();
    let current = config.kubernetes_version;
    let role = match config.role {
        Role::InitMaster => "init-master",
        Role::ControlPlane => "control-plane",
        Role::Worker => "worker",
    };
    out.push_str(&msg!("This node: {role}, Kubernetes {current} (node.toml)\n").localized());
    let cluster = upgrade.cluster_version();
    match &cluster {
        Ok(version) => {
            out.push_str(&msg!("Control plane: {version} (kubeadm-config)\n").localized())
        }
        Err(e) => out.push_str(&msg!("Control plane: unknown ({e})\n").localized()),
    }
    if let Ok(nodes) = upgrade.nodes() {
        for node in nodes {
            out.push_str(&format!(
                "  {}  {}  {}{}\n",
                node.name,
                node.kubelet_version
                    .map_or_else(|| "?".to_string(), |v| v.to_string()),
                if node.ready { "Ready" } else { "NotReady" },
                if node.unschedulable {
                    ", SchedulingDisabled"
                } else {
                    ""
                }
            ));
        }
    }
    let installed = upgrade.host.installed();
    let shown = |v: Option<KubeVersion>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    out.push_str(
        &msg!(
            "Installed: kubeadm {}, kubelet {}, cri-o {}\n",
            shown(installed.kubeadm),
            shown(installed.kubelet),
            shown(installed.crio)
        )
        .localized(),
    );
    if let Some(journal) = &upgrade.journal {
        out.push_str(
            &msg!(
                "In progress: the upgrade to {} (done: {}); finish it: podsec-k8s-upgrade {}\n",
                journal.target,
                journal.done_names(),
                match journal.mode {
                    Mode::Apply => format!("apply {}", journal.target),
                    Mode::Node => "node".to_string(),
                }
            )
            .localized(),
        );
        return out;
    }
    out.push_str(&next_step(upgrade, cluster.ok(), &installed).localized());
    out
}

fn next_step(
    upgrade: &Upgrade,
    cluster: Option<KubeVersion>,
    installed: &crate::u7s_kubeadm::packages::Installed,
) -> Message {
    let config = &upgrade.config;
    let current = config.kubernetes_version;
    if let Some(cluster) = cluster.filter(|c| *c > current) {
        return msg!("Next: podsec-k8s-upgrade node (to the control plane's {cluster})\n");
    }
    if !config.role.is_control_plane() {
        return msg!("Next: nothing until a control plane is upgraded\n");
    }
    let next = current.minor + 1;
    let installed_next = installed
        .kubeadm
        .filter(|v| v.major == current.major && v.minor == next);
    if let Some(version) = installed_next {
        return msg!("Next: podsec-k8s-upgrade apply {version}\n");
    }
    let packaged = if on_alt() {
        AltApt
            .minors()
            .into_iter()
            .find(|(m, _)| m.major == current.major && m.minor == next)
            .map(|(_, version)| version)
    } else {
        None
    };
    match packaged {
        Some(version) => msg!("Next: podsec-k8s-upgrade apply v{version}\n"),
        None => msg!(
            "Next: install kubeadm and the kubelet of v{}.{next}, then podsec-k8s-upgrade apply v{}.{next}.PATCH\n",
            current.major,
            current.major
        ),
    }
}
