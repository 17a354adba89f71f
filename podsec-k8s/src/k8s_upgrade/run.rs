//! An upgrade of one node, step by step over [`UpgradeHost`]: every step checked, recorded in
//! the journal when done, skipped when a re-run finds it recorded. First the target is checked
//! (one minor at a time); the packages and the images come before any change to the cluster, so
//! a failure there leaves no upgrade in progress; the journal is written before kubeadm changes
//! the control plane. Nothing is cordoned until the new control plane runs: kubeadm's upgrade
//! health check schedules a Job on it.

use podsec_common::i18n::Message;
use podsec_common::msg;

use super::decide::{self, NodeStatus, TargetError};
use super::host::UpgradeHost;
use super::journal::{Journal, Mode, Step};
use crate::node_config::{CniPlugin, KubeVersion, NodeConfig};
use crate::u7s_kubeadm::flannel::{self, Manifest};
use crate::u7s_kubeadm::network::Ipv4Net;
use crate::u7s_kubeadm::packages::KUBEADM;

/// CRI-O's socket as the namespace sees it (crate::u7s::rootlesskit links it there).
const CRI_SOCKET: &str = "unix:///run/crio/crio.sock";
const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";
/// How long the node may take to come back Ready on the new kubelet, in pauses of 2 s.
const READY_ATTEMPTS: u32 = 150;
/// How long the API server may take to come back after the audit patch restarted it.
const API_ATTEMPTS: u32 = 90;

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum UpgradeError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(
        "an upgrade to {target} by `podsec-k8s-upgrade {mode}` is in progress ({path}): run that command again to finish it"
    )]
    InProgress {
        target: KubeVersion,
        mode: &'static str,
        path: &'static str,
    },
    #[error(
        "`podsec-k8s-upgrade apply` runs on a control-plane node; this node is a worker: run `podsec-k8s-upgrade node` on it once a control plane is upgraded"
    )]
    NotControlPlane,
    #[error(
        "the control plane runs {cluster} and this node {node}: upgrade the first control plane first (`podsec-k8s-upgrade apply VERSION`)"
    )]
    ControlPlaneBehind {
        cluster: KubeVersion,
        node: KubeVersion,
    },
    #[error(
        "the control plane runs {cluster} already: upgrade this node with `podsec-k8s-upgrade node`"
    )]
    UseNode { cluster: KubeVersion },
    #[error("this node ({address}) is not among the cluster's nodes")]
    NodeNotFound { address: String },
    #[error("the cluster's kubeadm-config names no kubernetesVersion")]
    NoClusterVersion,
    #[error("step {step}: {detail}")]
    Step { step: &'static str, detail: Message },
}

/// One node's upgrade.
pub struct Upgrade<'a> {
    pub host: &'a dyn UpgradeHost,
    pub config: NodeConfig,
    /// The journal of an upgrade in progress, as found.
    pub journal: Option<Journal>,
}

impl Upgrade<'_> {
    fn kubeconfig(&self) -> &'static str {
        if self.config.role.is_control_plane() {
            ADMIN_CONF
        } else {
            KUBELET_CONF
        }
    }

    fn kubectl(&self, args: &[&str]) -> Result<String, Message> {
        let mut argv: Vec<String> = vec!["kubectl".into(), "--kubeconfig".into()];
        argv.push(self.kubeconfig().into());
        argv.extend(args.iter().map(|a| a.to_string()));
        self.host.output(&argv)
    }

    /// The version of the control plane: kubeadm-config's ClusterConfiguration.
    pub fn cluster_version(&self) -> Result<KubeVersion, UpgradeError> {
        let text = self
            .kubectl(&[
                "-n",
                "kube-system",
                "get",
                "configmap",
                "kubeadm-config",
                "-o",
                "jsonpath={.data.ClusterConfiguration}",
            ])
            .map_err(|detail| UpgradeError::Step {
                step: "cluster",
                detail,
            })?;
        decide::cluster_version(&text).ok_or(UpgradeError::NoClusterVersion)
    }

    pub fn nodes(&self) -> Result<Vec<NodeStatus>, Message> {
        NodeStatus::list_from_json(&self.kubectl(&["get", "nodes", "-o", "json"])?)
    }

    /// This node in the cluster: the one with its address.
    pub fn this_node(&self) -> Result<NodeStatus, UpgradeError> {
        let address = self.config.external_ip.to_string();
        let advertised = self.config.advertise_address.to_string();
        self.nodes()
            .map_err(|detail| UpgradeError::Step {
                step: "cluster",
                detail,
            })?
            .into_iter()
            .find(|n| {
                n.internal_ips
                    .iter()
                    .any(|ip| *ip == address || *ip == advertised)
            })
            .ok_or(UpgradeError::NodeNotFound { address })
    }

    /// The running flannel's image, when flannel is the pod network and runs.
    fn flannel_image(&self) -> Option<String> {
        if self.config.cni_plugin != CniPlugin::Flannel {
            return None;
        }
        self.kubectl(&[
            "-n",
            "kube-flannel",
            "get",
            "daemonset",
            "kube-flannel-ds",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .ok()
        .filter(|image| !image.trim().is_empty())
    }

    /// `apply TARGET` (the first control plane) or `node` (`target` None: the control
    /// plane's version).
    pub fn run(&mut self, mode: Mode, target: Option<KubeVersion>) -> Result<(), UpgradeError> {
        let mut journal = match self.journal.take() {
            Some(journal) if journal.mode == mode && target.is_none_or(|t| t == journal.target) => {
                self.host.say(&msg!(
                    "resuming the upgrade to {} (done: {})",
                    journal.target,
                    journal.done_names()
                ));
                journal
            }
            Some(journal) => {
                return Err(UpgradeError::InProgress {
                    target: journal.target,
                    mode: mode_name(journal.mode),
                    path: super::journal::JOURNAL_PATH,
                });
            }
            None => self.start(mode, target)?,
        };
        let update = if mode == Mode::Apply {
            self.flannel_image()
                .and_then(|image| decide::flannel_update(&image))
        } else {
            None
        };
        for step in decide::steps(mode, self.config.role, update.is_some()) {
            if journal.is_done(step) {
                continue;
            }
            if step == Step::ControlPlane {
                // The first change to the cluster: from here on an upgrade is in progress, and
                // only this target may finish it.
                self.save(&journal, "journal")?;
            }
            self.host.say(&msg!("{}: ...", step.name()));
            self.step(step, &journal, update)
                .map_err(|detail| UpgradeError::Step {
                    step: step.name(),
                    detail,
                })?;
            journal.done.push(step);
            if journal.is_done(Step::ControlPlane) {
                self.save(&journal, step.name())?;
            }
        }
        self.host
            .remove_journal()
            .map_err(|detail| UpgradeError::Step {
                step: "journal",
                detail,
            })?;
        self.host.say(&msg!(
            "node {} upgraded from {} to {}",
            journal.node,
            journal.from,
            journal.target
        ));
        Ok(())
    }

    /// Checks everything an upgrade needs before its first change, and writes its journal.
    fn start(&self, mode: Mode, target: Option<KubeVersion>) -> Result<Journal, UpgradeError> {
        let current = self.config.kubernetes_version;
        let target = match (mode, target) {
            (Mode::Apply, Some(target)) => {
                if !self.config.role.is_control_plane() {
                    return Err(UpgradeError::NotControlPlane);
                }
                decide::check_target(current, target)?;
                let cluster = self.cluster_version()?;
                if cluster >= target {
                    return Err(UpgradeError::UseNode { cluster });
                }
                target
            }
            (_, _) => {
                let cluster = self.cluster_version()?;
                if cluster == current {
                    return Err(TargetError::NotNewer {
                        current,
                        target: cluster,
                    }
                    .into());
                }
                if cluster < current {
                    return Err(UpgradeError::ControlPlaneBehind {
                        cluster,
                        node: current,
                    });
                }
                decide::check_target(current, cluster)?;
                cluster
            }
        };
        let node = self.this_node()?;
        Ok(Journal {
            mode,
            from: current,
            target,
            node: node.name,
            was_schedulable: !node.unschedulable,
            done: Vec::new(),
        })
    }

    fn save(&self, journal: &Journal, step: &'static str) -> Result<(), UpgradeError> {
        self.host
            .save_journal(journal)
            .map_err(|detail| UpgradeError::Step { step, detail })
    }

    fn step(
        &self,
        step: Step,
        journal: &Journal,
        update: Option<&'static Manifest>,
    ) -> Result<(), Message> {
        let target = journal.target;
        let node = journal.node.as_str();
        match step {
            Step::Packages => self.packages(target),
            Step::Images => {
                let repository = self.config.image_repository();
                let version = target.to_string();
                self.host
                    .run(&argv(&[
                        KUBEADM,
                        "config",
                        "images",
                        "pull",
                        "--kubernetes-version",
                        &version,
                        "--image-repository",
                        &repository,
                        "--cri-socket",
                        CRI_SOCKET,
                    ]))
                    .map_err(|e| {
                        msg!("{e} (the images of {target} must be in {repository}, signed by an image maker the node's policy trusts)")
                    })
            }
            Step::ControlPlane => match journal.mode {
                Mode::Apply => self.host.run(&argv(&[
                    KUBEADM,
                    "upgrade",
                    "apply",
                    &target.to_string(),
                    "--yes",
                ])),
                Mode::Node => self.host.run(&argv(&[KUBEADM, "upgrade", "node"])),
            },
            Step::Audit => {
                self.host.patch_audit()?;
                self.wait_api()
            }
            Step::Drain => {
                if !self.config.role.is_control_plane() {
                    self.host.say(&msg!(
                        "a worker has no credentials to drain itself: drain {node} from a control plane (kubectl drain {node} --ignore-daemonsets) before, uncordon it after"
                    ));
                    return Ok(());
                }
                self.kubectl(&["cordon", node])?;
                self.kubectl(&[
                    "drain",
                    node,
                    "--ignore-daemonsets",
                    "--delete-emptydir-data",
                    "--timeout=600s",
                ])
                .map(|_| ())
            }
            Step::Kubelet => {
                let version = target.to_string();
                let list = self.host.output(&argv(&[
                    KUBEADM,
                    "config",
                    "images",
                    "list",
                    "--kubernetes-version",
                    &version,
                    "--image-repository",
                    &self.config.image_repository(),
                ]))?;
                let pause = decide::pause_image(&list)
                    .ok_or_else(|| msg!("kubeadm config images list names no pause image"))?;
                let whole = pause != self.config.pause_image;
                let mut config = self.config.clone();
                config.kubernetes_version = target;
                config.pause_image = pause;
                self.host.save_node_config(&config)?;
                self.host.restart(whole)
            }
            Step::Ready => self.wait_ready(node, target),
            Step::Uncordon => {
                if !journal.was_schedulable || !self.config.role.is_control_plane() {
                    return Ok(());
                }
                self.kubectl(&["uncordon", node]).map(|_| ())
            }
            Step::PodNetwork => match update {
                Some(manifest) => self.apply_flannel(manifest),
                None => Ok(()),
            },
        }
    }

    fn packages(&self, target: KubeVersion) -> Result<(), Message> {
        let wanted = target;
        let minor = wanted.minor_line();
        let fits = |installed: &crate::u7s_kubeadm::packages::Installed| {
            let kubeadm_fits = installed
                .kubeadm
                .is_some_and(|v| v.minor_line() == minor && v >= wanted);
            let kubelet_fits = installed.kubelet.is_some_and(|v| v.minor_line() == minor);
            kubeadm_fits && kubelet_fits
        };
        let installed = self.host.installed();
        if fits(&installed) {
            return Ok(());
        }
        self.host.install_packages(minor)?;
        let installed = self.host.installed();
        if fits(&installed) {
            Ok(())
        } else {
            let shown = |v: Option<KubeVersion>| {
                v.map_or_else(|| msg!("none"), |v| Message::verbatim(v.to_string()))
            };
            Err(msg!(
                "kubeadm {} and kubelet {} are installed; {target} needs kubeadm {target} or a newer patch and a kubelet of {}",
                shown(installed.kubeadm),
                shown(installed.kubelet),
                minor
            ))
        }
    }

    fn wait_api(&self) -> Result<(), Message> {
        let mut last = Message::verbatim("");
        for _ in 0..API_ATTEMPTS {
            match self.kubectl(&["get", "--raw", "/readyz"]) {
                Ok(text) if text.trim() == "ok" => return Ok(()),
                Ok(text) => last = Message::verbatim(text),
                Err(e) => last = e,
            }
            self.host.pause(2);
        }
        Err(msg!(
            "the API server is not ready {} s after its manifest changed: {last}",
            API_ATTEMPTS * 2
        ))
    }

    fn wait_ready(&self, node: &str, target: KubeVersion) -> Result<(), Message> {
        let mut last = Message::verbatim("");
        for _ in 0..READY_ATTEMPTS {
            match self.kubectl(&["get", "node", node, "-o", "json"]) {
                Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(json) => {
                        let status = NodeStatus::from_json(&json);
                        if status.ready && status.kubelet_version == Some(target) {
                            return Ok(());
                        }
                        last = msg!(
                            "ready {}, kubelet {}",
                            status.ready,
                            status
                                .kubelet_version
                                .map_or_else(|| "?".to_string(), |v| v.to_string())
                        );
                    }
                    Err(e) => last = Message::verbatim(e.to_string()),
                },
                Err(e) => last = e,
            }
            self.host.pause(2);
        }
        Err(msg!(
            "{node} is not Ready with the kubelet {target} after {} s ({last})",
            READY_ATTEMPTS * 2
        ))
    }

    fn apply_flannel(&self, manifest: &Manifest) -> Result<(), Message> {
        let repository = self.config.image_repository();
        let pod_network = Ipv4Net::parse_cluster(&self.config.pod_cidr.to_string())
            .map_err(|e| Message::of(&e))?;
        let text = flannel::render(
            manifest,
            &format!("{repository}/flannel:{}", manifest.flannel_tag),
            &format!(
                "{repository}/flannel-cni-plugin:{}",
                manifest.cni_plugin_tag
            ),
            pod_network,
        )
        .map_err(|e| Message::of(&e))?;
        self.host.apply_manifest(self.kubeconfig(), &text)
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Apply => "apply",
        Mode::Node => "node",
    }
}
