//! podsec-k8s-upgrade on a real node (issue 13): a rootless one-node cluster deployed at
//! Kubernetes v1.32.13 (real kubeadm, kubelet, CRI-O and control plane of that version, its
//! images signed into registry.local) runs a signed workload; the node is moved to v1.33.13 the
//! way an administrator would: `plan`, the packages of the next minor, the images of the next
//! minor loaded and signed, `apply`. On the way: a skipped minor, a missing package and missing
//! images are refused with nothing changed; the upgrade is killed once kubeadm has upgraded the
//! control plane and finished by running the same command again. Afterwards every component runs
//! v1.33.13 from registry.local, audit is as podsec set it up, and the workload serves again.

use std::time::Duration;

use podsec_tests::k8s;
use podsec_tests::node::{
    EMAIL, MAKER, NODE_IP, NODE_NAME, PLATFORM, RealNode, WEB_SERVICE, panic_on,
};
use podsec_tests::u7s::{ADMIN_PATH, text};

const FROM: &str = "v1.32.13";
const TO: &str = "v1.33.13";
const JOURNAL: &str = "/var/lib/podsec/u7s/upgrade.toml";

/// A Deployment (it comes back after the drain) serving a page through a NodePort Service.
const WORKLOAD: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.local/c10f/busybox:1.35
        command: ["/bin/sh", "-c", "mkdir -p /www && echo still-served > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{containerPort: 8080}]
"#;

fn page(node: &RealNode) -> String {
    node.root_ok(&format!(
        "for i in $(seq 120); do curl -fsS http://{NODE_IP}:31080/ && exit 0; sleep 1; done; exit 1"
    ))
}

/// The output and exit status of podsec-k8s-upgrade ARGS.
fn upgrade(node: &RealNode, args: &str) -> (i32, String) {
    let out = node.root(&format!("podsec-k8s-upgrade {args}"));
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

fn control_plane_images(node: &RealNode) -> String {
    node.kubectl_ok("-n kube-system get pods -o jsonpath='{.items[*].spec.containers[0].image}'")
}

#[test]
fn a_node_moves_to_the_next_minor_with_its_workload_and_resumes_after_a_kill() {
    let node = panic_on(RealNode::prepare_at(FROM));
    let (status, log) = node.init("");
    assert_eq!(
        status,
        0,
        "kubeadm init {FROM}:\n{log}\n{}",
        node.diagnose()
    );
    panic_on(node.wait_cluster_ready(Duration::from_secs(600)));
    assert!(
        control_plane_images(&node)
            .contains(&format!("registry.local/{PLATFORM}/kube-apiserver:{FROM}"))
    );

    node.kubectl_ok(&format!(
        "taint nodes {NODE_NAME} node-role.kubernetes.io/control-plane:NoSchedule-"
    ));
    node.kubectl_apply(&format!("{WORKLOAD}---\n{WEB_SERVICE}"));
    node.root_ok("nsenter_u7s rootlessctl add-ports 0.0.0.0:31080:31080/tcp");
    assert_eq!(page(&node).trim(), "still-served");
    let cluster_ip = node.kubectl_ok("get service web -o jsonpath={.spec.clusterIP}");

    // plan: where the node is, and that the next minor's packages are missing.
    let (status, plan) = upgrade(&node, "plan");
    assert_eq!(status, 0, "{plan}");
    for line in [
        format!("Kubernetes {FROM} (node.toml)"),
        format!("Control plane: {FROM} (kubeadm-config)"),
        format!("{NODE_NAME}  {FROM}  Ready"),
        "Next: install kubeadm and the kubelet of v1.33".to_string(),
    ] {
        assert!(plan.contains(&line), "{line}: {plan}");
    }

    // Refused, nothing changed: a bad version, a skipped minor, the packages of 1.33 missing.
    let (status, said) = upgrade(&node, "apply 1.33");
    assert_eq!(status, 2, "{said}");
    assert!(said.contains("invalid Kubernetes version '1.33'"), "{said}");
    let (status, said) = upgrade(&node, "apply v1.34.0");
    assert_eq!(status, 1, "{said}");
    assert!(
        said.contains("skips a minor") && said.contains("upgrade to v1.33 first"),
        "{said}"
    );
    let (status, said) = upgrade(&node, &format!("apply {TO}"));
    assert_eq!(status, 1, "{said}");
    assert!(
        said.contains("step packages:")
            && said.contains("install kubeadm and the kubelet of Kubernetes v1.33"),
        "{said}"
    );
    node.root_ok(&format!("test ! -e {JOURNAL}"));

    // The administrator installs kubeadm, the kubelet and kubectl of 1.33 (a running kubelet's
    // binary is replaced by a rename, as a package manager does).
    for name in ["kubeadm", "kubelet", "kubectl"] {
        let path = std::fs::canonicalize(panic_on(k8s::binary_of(TO, name))).unwrap();
        node.root_ok(&format!(
            "install -m 0755 {} /usr/bin/.{name}.new && mv -f /usr/bin/.{name}.new /usr/bin/{name}",
            path.display()
        ));
    }
    // The images of 1.33 are not in registry.local yet: refused before any change.
    let (status, said) = upgrade(&node, &format!("apply {TO}"));
    assert_eq!(status, 1, "{said}");
    assert!(
        said.contains("step images:") && said.contains("signed by an image maker"),
        "{said}"
    );
    node.root_ok(&format!("test ! -e {JOURNAL}"));
    assert!(!control_plane_images(&node).contains(TO));

    // The image maker loads and signs the images of 1.33.
    let archive = panic_on(podsec_tests::node::images_archive_of(TO));
    let share = node.host.share();
    std::fs::copy(&archive, share.join("amd64-next.tar.xz")).unwrap();
    node.root_ok(&format!("chmod 0644 {}/amd64-next.tar.xz", share.display()));
    let out = node.as_user(
        MAKER,
        &format!(
            "podsec-load-sign-oci {}/amd64-next.tar.xz amd64 {EMAIL} registry.local/{PLATFORM}",
            share.display()
        ),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // apply, killed once kubeadm has upgraded the control plane (the journal records it).
    let (pid, rc, log) = (
        share.join("upgrade.pid"),
        share.join("upgrade.rc"),
        share.join("upgrade.log"),
    );
    let script = format!(
        "export PATH={ADMIN_PATH}; podsec-k8s-upgrade apply {TO} </dev/null >{log} 2>&1 & echo $! > {pid}; wait $!; echo $? > {rc}",
        log = log.display(),
        pid = pid.display(),
        rc = rc.display()
    );
    panic_on(
        node.sandbox()
            .unwrap()
            .spawn_daemon("upgrade", &["sh", "-c", &script]),
    );
    let journal = panic_on(node.wait_for(
        "the journal recording the upgraded control plane",
        Duration::from_secs(900),
        || {
            let journal = text(&node.root(&format!("cat {JOURNAL} 2>/dev/null")).stdout);
            journal.contains("\"control-plane\"").then_some(journal)
        },
    ));
    assert!(journal.contains(&format!("target = \"{TO}\"")), "{journal}");
    node.root_ok(&format!("kill -9 $(cat {})", pid.display()));
    panic_on(node.wait_for(
        "the killed upgrade's status",
        Duration::from_secs(60),
        || {
            std::fs::read_to_string(&rc)
                .ok()
                .filter(|s| !s.trim().is_empty())
        },
    ));
    let status = std::fs::read_to_string(&rc).unwrap();
    assert_eq!(
        status.trim(),
        "137",
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // An upgrade in progress: plan says so, another target is refused.
    let (status, plan) = upgrade(&node, "plan");
    assert_eq!(status, 0, "{plan}");
    assert!(
        plan.contains(&format!("In progress: the upgrade to {TO}")),
        "{plan}"
    );
    let (status, said) = upgrade(&node, "apply v1.33.14");
    assert_eq!(status, 1, "{said}");
    assert!(said.contains("is in progress"), "{said}");

    // The same command again finishes it.
    let (status, said) = node.run_long(
        "upgrade-again",
        &format!("podsec-k8s-upgrade apply {TO}"),
        Duration::from_secs(1200),
    );
    assert_eq!(status, 0, "{said}\n{}", node.diagnose());
    assert!(
        said.contains(&format!("resuming the upgrade to {TO}")),
        "{said}"
    );
    assert!(
        !said.contains("upgrade/version"),
        "kubeadm upgrade apply ran twice: {said}"
    );
    assert!(
        said.contains(&format!("upgraded from {FROM} to {TO}")),
        "{said}"
    );
    node.root_ok(&format!("test ! -e {JOURNAL}"));

    // Everything runs 1.33 from registry.local, the node takes pods again, the workload serves.
    panic_on(node.wait_cluster_ready(Duration::from_secs(600)));
    let kubelet = node.kubectl_ok(&format!(
        "get node {NODE_NAME} -o jsonpath={{.status.nodeInfo.kubeletVersion}}/{{.spec.unschedulable}}"
    ));
    assert_eq!(kubelet.trim(), format!("{TO}/"));
    let images = control_plane_images(&node);
    for component in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
    ] {
        assert!(
            images.contains(&format!("registry.local/{PLATFORM}/{component}:{TO}")),
            "{component}: {images}"
        );
    }
    assert!(
        images.contains(&format!("registry.local/{PLATFORM}/coredns:v1.12.0")),
        "{images}"
    );
    assert!(!images.contains(FROM), "{images}");
    assert!(
        node.root_ok("cat /etc/podsec/u7s/node.toml")
            .contains(&format!("kubernetes-version = \"{TO}\"")),
    );
    panic_on(node.wait_for(
        "the web deployment available again",
        Duration::from_secs(300),
        || {
            let ready = node.kubectl("get deployment web -o jsonpath={.status.availableReplicas}");
            (text(&ready.stdout).trim() == "1").then_some(())
        },
    ));
    assert_eq!(page(&node).trim(), "still-served");
    assert_eq!(
        node.kubectl_ok("get service web -o jsonpath={.spec.clusterIP}"),
        cluster_ip
    );
    // kubeadm rewrote the API server's manifest: podsec's audit is back in it.
    let out = node.root("podsec-inotify-check-kubeapi --once");
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        node.root_ok("cat /etc/kubernetes/manifests/kube-apiserver.yaml")
            .contains("--audit-policy-file=/etc/kubernetes/audit/policy.yaml")
    );
    // Done: the same version again is nothing to do.
    let (status, said) = upgrade(&node, &format!("apply {TO}"));
    assert_eq!(status, 1, "{said}");
    assert!(said.contains("not newer"), "{said}");

    node.root_ok("u7s-start-stop stop");
    node.assert_nothing_left();
}
