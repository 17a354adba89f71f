//! The upgrade's decisions and its order of steps, over a recording fake of the node.

use std::cell::RefCell;

use podsec_common::i18n::Message;

use super::decide::{self, NodeStatus, TargetError};
use super::host::UpgradeHost;
use super::journal::{Journal, Mode, Step};
use super::run::{Upgrade, UpgradeError};
use crate::node_config::tests::example_with;
use crate::node_config::{KubeVersion, NodeConfig, Role};
use crate::u7s_kubeadm::packages::Installed;
use crate::u7s_kubeadm::versions::Minor;

fn v(text: &str) -> KubeVersion {
    text.parse().unwrap()
}

/// As `kubeadm version -o short` and packages print it (with or without the `v`).
fn wv(text: &str) -> KubeVersion {
    KubeVersion::parse(text).unwrap()
}

#[test]
fn one_minor_at_a_time_never_back() {
    assert_eq!(decide::check_target(v("v1.32.13"), v("v1.33.13")), Ok(()));
    assert_eq!(decide::check_target(v("v1.32.1"), v("v1.32.13")), Ok(()));
    assert_eq!(
        decide::check_target(v("v1.32.13"), v("v1.34.0")),
        Err(TargetError::SkipsMinor {
            current: v("v1.32.13"),
            target: v("v1.34.0"),
            major: 1,
            next: 33
        })
    );
    let skip = decide::check_target(v("v1.32.13"), v("v1.34.0")).unwrap_err();
    assert!(
        skip.to_string().contains("upgrade to v1.33 first"),
        "{skip}"
    );
    for older in ["v1.32.13", "v1.32.2", "v1.31.9"] {
        assert!(matches!(
            decide::check_target(v("v1.32.13"), v(older)),
            Err(TargetError::NotNewer { .. })
        ));
    }
    assert!(matches!(
        decide::check_target(v("v1.32.13"), v("v2.0.0")),
        Err(TargetError::OtherMajor { .. })
    ));
}

#[test]
fn facts_are_read_from_what_kubeadm_and_kubectl_print() {
    let cluster =
        "apiServer: {}\nkubernetesVersion: v1.32.13\nnetworking:\n  podSubnet: 10.244.0.0/16\n";
    assert_eq!(decide::cluster_version(cluster), Some(v("v1.32.13")));
    assert_eq!(decide::cluster_version("networking: {}\n"), None);
    let list = "registry.local/c10f/kube-apiserver:v1.33.13\nregistry.local/c10f/coredns:v1.12.0\nregistry.local/c10f/pause:3.10\nregistry.local/c10f/etcd:3.5.24-0\n";
    assert_eq!(
        decide::pause_image(list).as_deref(),
        Some("registry.local/c10f/pause:3.10")
    );
    assert_eq!(
        decide::pause_image("registry.k8s.io/kube-proxy:v1.33.13\n"),
        None
    );
    let nodes = NodeStatus::list_from_json(&nodes_json("v1.32.13", true)).unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].name, "node1");
    assert_eq!(nodes[0].kubelet_version, Some(v("v1.32.13")));
    assert!(nodes[0].ready && !nodes[0].unschedulable);
    assert_eq!(nodes[0].internal_ips, ["192.0.2.10"]);
    assert!(nodes[1].ready && nodes[1].unschedulable);
    assert_eq!(nodes[1].internal_ips, ["192.0.2.11"]);
    // flannel: only a newer manifest of podsec's is an update.
    assert_eq!(
        decide::flannel_update("registry.local/c10f/flannel:v0.26.7"),
        None
    );
    let update = decide::flannel_update("registry.local/c10f/flannel:v0.25.1").unwrap();
    assert_eq!(update.flannel_tag, "v0.26.7");
    assert_eq!(decide::flannel_update("flannel"), None);
}

#[test]
fn control_planes_get_their_audit_back_workers_do_not() {
    use Step::*;
    assert_eq!(
        decide::steps(Mode::Apply, Role::InitMaster, false),
        [
            Packages,
            Images,
            ControlPlane,
            Audit,
            Drain,
            Kubelet,
            Ready,
            Uncordon
        ]
    );
    assert_eq!(
        decide::steps(Mode::Node, Role::Worker, false),
        [
            Packages,
            Images,
            ControlPlane,
            Drain,
            Kubelet,
            Ready,
            Uncordon
        ]
    );
    assert_eq!(
        decide::steps(Mode::Apply, Role::InitMaster, true).last(),
        Some(&PodNetwork)
    );
    // Only the first control plane applies cluster-wide manifests.
    assert!(!decide::steps(Mode::Node, Role::ControlPlane, true).contains(&PodNetwork));
}

fn nodes_json(kubelet: &str, ready: bool) -> String {
    format!(
        r#"{{"items": [
  {{"metadata": {{"name": "node1"}}, "spec": {{}},
    "status": {{"nodeInfo": {{"kubeletVersion": "{kubelet}"}},
      "conditions": [{{"type": "Ready", "status": "{}"}}],
      "addresses": [{{"type": "InternalIP", "address": "192.0.2.10"}}, {{"type": "Hostname", "address": "node1"}}]}}}},
  {{"metadata": {{"name": "node2"}}, "spec": {{"unschedulable": true}},
    "status": {{"nodeInfo": {{"kubeletVersion": "{kubelet}"}},
      "conditions": [{{"type": "Ready", "status": "True"}}],
      "addresses": [{{"type": "InternalIP", "address": "192.0.2.11"}}]}}}}
]}}"#,
        if ready { "True" } else { "False" }
    )
}

/// A node at v1.32.13 whose packages of v1.33 are installed: it answers kubectl and kubeadm as a
/// cluster would and records every effect.
struct FakeNode {
    cluster: RefCell<String>,
    kubelet: RefCell<String>,
    installed: Installed,
    fail_on: Option<&'static str>,
    calls: RefCell<Vec<String>>,
    journal: RefCell<Option<Journal>>,
    saved_config: RefCell<Option<NodeConfig>>,
}

impl FakeNode {
    fn new() -> FakeNode {
        FakeNode {
            cluster: RefCell::new("v1.32.13".into()),
            kubelet: RefCell::new("v1.32.13".into()),
            installed: Installed {
                kubeadm: Some(wv("v1.33.13")),
                kubelet: Some(wv("v1.33.13")),
                crio: Some(wv("1.33.2")),
            },
            fail_on: None,
            calls: RefCell::new(Vec::new()),
            journal: RefCell::new(None),
            saved_config: RefCell::new(None),
        }
    }

    fn record(&self, call: String) {
        self.calls.borrow_mut().push(call);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }

    /// The index of the first call containing `text`.
    fn position(&self, text: &str) -> usize {
        self.calls()
            .iter()
            .position(|c| c.contains(text))
            .unwrap_or_else(|| panic!("no call with {text}: {:#?}", self.calls()))
    }

    fn changes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| {
                !c.starts_with("output ") || c.contains(" cordon ") || c.contains(" drain ")
            })
            .collect()
    }
}

impl UpgradeHost for FakeNode {
    fn installed(&self) -> Installed {
        self.installed.clone()
    }

    fn install_packages(&self, minor: Minor) -> Result<(), Message> {
        self.record(format!("install {minor}"));
        Err(Message::verbatim("no packages here"))
    }

    fn output(&self, argv: &[String]) -> Result<String, Message> {
        let line = argv.join(" ");
        self.record(format!("output {line}"));
        if self.fail_on.is_some_and(|f| line.contains(f)) {
            return Err(Message::verbatim(format!("{line} failed")));
        }
        Ok(if line.contains("kubeadm-config") {
            format!("kubernetesVersion: {}\n", self.cluster.borrow())
        } else if line.contains("get nodes") {
            nodes_json(&self.kubelet.borrow(), true)
        } else if let Some(name) = line.split(" get node ").nth(1) {
            let name = name.split(' ').next().unwrap();
            let list: serde_json::Value =
                serde_json::from_str(&nodes_json(&self.kubelet.borrow(), true)).unwrap();
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["metadata"]["name"] == name)
                .map(|n| n.to_string())
                .unwrap_or_default()
        } else if line.contains("images list") {
            "registry.local/c10f/kube-apiserver:v1.33.13\nregistry.local/c10f/pause:3.10\n".into()
        } else if line.contains("/readyz") {
            "ok".into()
        } else if line.contains("daemonset") {
            "registry.local/c10f/flannel:v0.26.7".into()
        } else {
            String::new()
        })
    }

    fn run(&self, argv: &[String]) -> Result<(), Message> {
        let line = argv.join(" ");
        self.record(format!("run {line}"));
        if self.fail_on.is_some_and(|f| line.contains(f)) {
            return Err(Message::verbatim(format!("{line} failed")));
        }
        if line.contains("upgrade apply") {
            *self.cluster.borrow_mut() = argv[3].clone();
        }
        Ok(())
    }

    fn patch_audit(&self) -> Result<(), Message> {
        self.record("patch-audit".into());
        Ok(())
    }

    fn save_node_config(&self, config: &NodeConfig) -> Result<(), Message> {
        self.record(format!(
            "node.toml {} {}",
            config.kubernetes_version, config.pause_image
        ));
        *self.saved_config.borrow_mut() = Some(config.clone());
        Ok(())
    }

    fn restart(&self, whole: bool) -> Result<(), Message> {
        self.record(format!("restart whole={whole}"));
        let version = self
            .saved_config
            .borrow()
            .as_ref()
            .unwrap()
            .kubernetes_version;
        *self.kubelet.borrow_mut() = version.to_string();
        Ok(())
    }

    fn apply_manifest(&self, kubeconfig: &str, _manifest: &str) -> Result<(), Message> {
        self.record(format!("apply-manifest {kubeconfig}"));
        Ok(())
    }

    fn save_journal(&self, journal: &Journal) -> Result<(), Message> {
        self.record(format!("journal {}", journal.done_names()));
        *self.journal.borrow_mut() = Some(journal.clone());
        Ok(())
    }

    fn remove_journal(&self) -> Result<(), Message> {
        self.record("journal removed".into());
        *self.journal.borrow_mut() = None;
        Ok(())
    }

    fn say(&self, _line: &Message) {}

    fn pause(&self, _seconds: u64) {}
}

fn node_at_1_32() -> NodeConfig {
    example_with(&[("kubernetes-version", "\"v1.32.13\"")])
}

fn upgrade<'a>(host: &'a FakeNode, config: NodeConfig) -> Upgrade<'a> {
    let journal = host.journal.borrow().clone();
    Upgrade {
        host,
        config,
        journal,
    }
}

#[test]
fn apply_upgrades_the_control_plane_before_it_drains_and_restarts_the_kubelet() {
    let host = FakeNode::new();
    upgrade(&host, node_at_1_32())
        .run(Mode::Apply, Some(v("v1.33.13")))
        .unwrap();
    let order = [
        "run /usr/bin/kubeadm config images pull --kubernetes-version v1.33.13 --image-repository registry.local/c10f --cri-socket unix:///run/crio/crio.sock",
        "journal ",
        "run /usr/bin/kubeadm upgrade apply v1.33.13 --yes",
        "patch-audit",
        "/readyz",
        "cordon node1",
        "drain node1 --ignore-daemonsets",
        "node.toml v1.33.13 registry.local/c10f/pause:3.10",
        "restart whole=false",
        "get node node1",
        "uncordon node1",
        "journal removed",
    ];
    let positions: Vec<usize> = order.iter().map(|c| host.position(c)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "{positions:?}: {:#?}",
        host.calls()
    );
    // Every kubectl of a control plane uses the admin's kubeconfig inside the namespace.
    for call in host.calls().iter().filter(|c| c.contains("kubectl")) {
        assert!(
            call.starts_with("output kubectl --kubeconfig /etc/kubernetes/admin.conf "),
            "{call}"
        );
    }
    assert!(host.journal.borrow().is_none());
    // flannel v0.26.7 runs, the newest podsec ships: not re-applied.
    assert!(!host.calls().iter().any(|c| c.starts_with("apply-manifest")));
}

#[test]
fn a_refused_target_or_a_missing_package_changes_nothing() {
    for (target, expected) in [
        ("v1.34.0", "skips a minor"),
        ("v1.32.13", "not newer"),
        ("v1.31.0", "not newer"),
    ] {
        let host = FakeNode::new();
        let error = upgrade(&host, node_at_1_32())
            .run(Mode::Apply, Some(v(target)))
            .unwrap_err();
        assert!(error.to_string().contains(expected), "{target}: {error}");
        assert!(host.changes().is_empty(), "{target}: {:#?}", host.calls());
    }
    // kubeadm of 1.33 installed but an older patch than asked: no install possible here.
    let mut host = FakeNode::new();
    host.installed.kubeadm = Some(wv("v1.33.1"));
    let error = upgrade(&host, node_at_1_32())
        .run(Mode::Apply, Some(v("v1.33.13")))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("step packages: no packages here"),
        "{error}"
    );
    assert_eq!(host.changes(), ["install v1.33"]);
    assert!(host.journal.borrow().is_none(), "no upgrade in progress");
    // An image that is not in the registry, or not signed: refused before any change.
    let mut host = FakeNode::new();
    host.fail_on = Some("images pull");
    let error = upgrade(&host, node_at_1_32())
        .run(Mode::Apply, Some(v("v1.33.13")))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("must be in registry.local/c10f, signed"),
        "{error}"
    );
    assert!(host.journal.borrow().is_none());
    assert!(!host.calls().iter().any(|c| c.contains("upgrade apply")));
}

#[test]
fn a_rerun_after_a_failure_goes_on_where_it_stopped() {
    let mut host = FakeNode::new();
    host.fail_on = Some("drain");
    let error = upgrade(&host, node_at_1_32())
        .run(Mode::Apply, Some(v("v1.33.13")))
        .unwrap_err();
    assert!(
        matches!(error, UpgradeError::Step { step: "drain", .. }),
        "{error}"
    );
    let journal = host
        .journal
        .borrow()
        .clone()
        .expect("an upgrade in progress");
    assert_eq!(
        journal.done,
        [
            Step::Packages,
            Step::Images,
            Step::ControlPlane,
            Step::Audit
        ]
    );
    assert!(journal.was_schedulable);

    // Another target is refused while this one is in progress.
    let error = upgrade(&host, node_at_1_32())
        .run(Mode::Apply, Some(v("v1.33.2")))
        .unwrap_err();
    assert!(error.to_string().contains("is in progress"), "{error}");

    host.fail_on = None;
    host.calls.borrow_mut().clear();
    upgrade(&host, node_at_1_32())
        .run(Mode::Apply, Some(v("v1.33.13")))
        .unwrap();
    let calls = host.calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.contains("upgrade apply") || c.contains("images pull")),
        "{calls:#?}"
    );
    assert!(host.position("drain node1") < host.position("restart"));
    assert!(host.position("uncordon node1") < host.position("journal removed"));
}

#[test]
fn a_node_follows_the_control_plane_and_a_cordoned_node_stays_cordoned() {
    let host = FakeNode::new();
    *host.cluster.borrow_mut() = "v1.33.13".into();
    let worker = example_with(&[
        ("kubernetes-version", "\"v1.32.13\""),
        ("role", "\"worker\""),
        ("external-ip", "\"192.0.2.11\""),
        ("advertise-address", "\"192.0.2.11\""),
    ]);
    // `apply` belongs to a control plane, and to the first one.
    let error = upgrade(&host, worker.clone())
        .run(Mode::Apply, Some(v("v1.33.13")))
        .unwrap_err();
    assert!(matches!(error, UpgradeError::NotControlPlane), "{error}");
    let error = upgrade(&host, node_at_1_32())
        .run(Mode::Apply, Some(v("v1.33.13")))
        .unwrap_err();
    assert!(matches!(error, UpgradeError::UseNode { .. }), "{error}");

    // The worker is node2 (by its address), which its administrator had cordoned.
    host.calls.borrow_mut().clear();
    upgrade(&host, worker).run(Mode::Node, None).unwrap();
    let calls = host.calls();
    assert!(
        calls
            .iter()
            .any(|c| c == "run /usr/bin/kubeadm upgrade node"),
        "{calls:#?}"
    );
    assert!(host.position("upgrade node") < host.position("restart"));
    assert!(host.position("restart") < host.position("get node node2"));
    for refused in [
        " cordon ",
        " drain ",
        " uncordon ",
        "patch-audit",
        "upgrade apply",
    ] {
        assert!(
            !calls.iter().any(|c| c.contains(refused)),
            "{refused}: {calls:#?}"
        );
    }
    for call in calls.iter().filter(|c| c.contains("kubectl")) {
        assert!(
            call.contains("--kubeconfig /etc/kubernetes/kubelet.conf"),
            "{call}"
        );
    }
    assert!(host.journal.borrow().is_none());
}

#[test]
fn the_journal_round_trips_and_names_its_steps() {
    let journal = Journal {
        mode: Mode::Apply,
        from: v("v1.32.13"),
        target: v("v1.33.13"),
        node: "node1".into(),
        was_schedulable: true,
        done: vec![Step::Packages, Step::ControlPlane],
    };
    let text = journal.to_toml();
    assert!(
        text.contains("done = [\"packages\", \"control-plane\"]"),
        "{text}"
    );
    assert!(text.contains("target = \"v1.33.13\""), "{text}");
    assert_eq!(
        Journal::from_toml(&text, std::path::Path::new("j")).unwrap(),
        journal
    );
    let error =
        Journal::from_toml("mode = \"apply\"\nbogus = 1\n", std::path::Path::new("j")).unwrap_err();
    assert!(
        error.to_string().starts_with("the upgrade journal j:"),
        "{error}"
    );
}
