//! `make demo-cluster`: a one-node rootless cluster deployed the way the README tells an
//! administrator (trust chain, signed system images, `kubeadm init` through the wrapper) in a
//! throwaway sandbox; a pod runs; prints what an administrator would look at; tears down.
//! `--keep` leaves the sandbox running and prints how to enter it; `--systemd` runs the node on a
//! machine with systemd as PID 1 (u7s.service, u7s-admin's user manager) instead of the sandbox.

use std::time::Duration;

use anyhow::{Result, bail};
use podsec_tests::node::{NODE_NAME, RealNode, UNSIGNED_POD};

const POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: hello
spec:
  containers:
  - name: hello
    image: registry.local/c10f/busybox:1.35
    command: ["/bin/sh", "-c", "echo hello from a signed image; exec sleep 3600"]
"#;

fn step(text: &str) {
    println!("\n==> {text}");
}

fn main() -> Result<()> {
    let keep = std::env::args().any(|a| a == "--keep");
    let systemd = std::env::args().any(|a| a == "--systemd");
    if keep && systemd {
        bail!("--keep works with the sandbox only (the systemd machine dies with this program)");
    }
    let node = if systemd {
        step(
            "a machine with systemd as PID 1, podsec packages, trust chain, signed system images in registry.local",
        );
        RealNode::prepare_systemd()?
    } else {
        step("sandbox, podsec packages, trust chain, signed system images in registry.local");
        RealNode::prepare()?
    };
    let result = demo(&node);
    if let (true, Some(sandbox)) = (keep, node.sandbox()) {
        println!(
            "\nkept: podsec-sandbox exec {} -- sh   (stop: podsec-sandbox stop {})",
            sandbox.state().display(),
            sandbox.state().display()
        );
        std::mem::forget(node);
        return result;
    }
    result?;
    if systemd {
        step("systemctl stop u7s.service; the machine is powered off");
        node.root_ok("systemctl stop u7s.service");
    } else {
        step("u7s-start-stop stop; the sandbox is removed");
        node.root_ok("u7s-start-stop stop");
    }
    node.assert_nothing_left();
    Ok(())
}

fn demo(node: &RealNode) -> Result<()> {
    step("kubeadm init (/usr/libexec/podsec/u7s/bin/kubeadm)");
    let (status, log) = node.init("");
    print!("{log}");
    if status != 0 {
        bail!("kubeadm init failed ({status})\n{}", node.diagnose());
    }
    node.wait_cluster_ready(Duration::from_secs(600))?;
    step("a pod from a signed image, and one from an image nobody signed");
    node.kubectl_ok(&format!(
        "taint nodes {NODE_NAME} node-role.kubernetes.io/control-plane:NoSchedule-"
    ));
    node.push_unsigned();
    node.kubectl_apply(POD);
    node.kubectl_apply(UNSIGNED_POD);
    node.wait_for("the hello pod running", Duration::from_secs(180), || {
        let pods = node.pods().ok()?;
        pods.iter()
            .any(|p| p.name == "hello" && p.ready())
            .then_some(())
    })?;
    node.wait_for("the unsigned pod refused", Duration::from_secs(120), || {
        node.event_messages("unsigned")
            .contains("signature")
            .then_some(())
    })?;
    step("kubectl get nodes,pods -A -o wide");
    print!("{}", node.kubectl_ok("get nodes,pods -A -o wide"));
    step("kubectl logs hello");
    print!("{}", node.kubectl_ok("logs hello"));
    step("the unsigned image's pod: kubectl describe pod unsigned (events)");
    let describe = node.kubectl_ok("describe pod unsigned");
    let events = describe
        .split_once("Events:")
        .map(|(_, e)| e)
        .unwrap_or(&describe);
    print!("{events}");
    step("host owners of the node's processes (ps -eo user,comm)");
    for (user, command) in node.process_owners() {
        if [
            "rootlesskit",
            "crio",
            "kubelet",
            "etcd",
            "kube-apiserver",
            "conmon",
            "pause",
            "sleep",
            "coredns",
            "flanneld",
        ]
        .contains(&command.as_str())
        {
            println!("{user:<12} {command}");
        }
    }
    Ok(())
}
