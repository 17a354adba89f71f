//! `make demo-cluster`: a one-node rootless cluster deployed the way the README tells an
//! administrator (trust chain, signed system images, `kubeadm init` through the wrapper) in a
//! throwaway sandbox; a pod runs; prints what an administrator would look at; tears down.
//! `--keep` leaves the sandbox running and prints how to enter it; `--systemd` runs the node on a
//! machine with systemd as PID 1 (u7s.service, u7s-admin's user manager) instead of the sandbox.
//! `--nodes N [--control-planes M]`: N nodes on a network of sandboxes behind an haproxy load
//! balancer, the first M of them control planes (default 1), the others workers.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use podsec_tests::cluster::{Cluster, LB_IP, LB_PORT, node_name};
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

/// The number after `--name` (or `--name=N`), if given.
fn number(name: &str) -> Result<Option<usize>> {
    let args: Vec<String> = std::env::args().collect();
    let value = args.iter().enumerate().find_map(|(i, a)| {
        if a == name {
            Some(args.get(i + 1).cloned().unwrap_or_default())
        } else {
            a.strip_prefix(&format!("{name}=")).map(str::to_string)
        }
    });
    value
        .map(|v| {
            v.parse::<usize>()
                .with_context(|| format!("{name}: not a number: '{v}'"))
        })
        .transpose()
}

fn main() -> Result<()> {
    let keep = std::env::args().any(|a| a == "--keep");
    let systemd = std::env::args().any(|a| a == "--systemd");
    if keep && systemd {
        bail!("--keep works with the sandbox only (the systemd machine dies with this program)");
    }
    let nodes = number("--nodes")?.unwrap_or(1);
    let control_planes = number("--control-planes")?.unwrap_or(1);
    if nodes == 0 || control_planes == 0 || control_planes > nodes {
        bail!(
            "--nodes {nodes} --control-planes {control_planes}: need 1 <= control planes <= nodes"
        );
    }
    if nodes > 1 || control_planes > 1 {
        if systemd {
            bail!("--systemd runs one node; --nodes needs the sandbox network");
        }
        return multi_node(nodes, control_planes, keep);
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

/// One signed busybox pod pinned to `node`.
fn pod_on(node: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: hello-{node}
spec:
  nodeName: {node}
  tolerations: [{{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}}]
  containers:
  - name: hello
    image: registry.local/c10f/busybox:1.35
    command: ["/bin/sh", "-c", "echo hello from {node}; exec sleep 3600"]
"#
    )
}

fn multi_node(count: usize, control_planes: usize, keep: bool) -> Result<()> {
    step(&format!(
        "{count} hosts on one bridge, haproxy at {LB_IP}:{LB_PORT}; the first node is the registry, signature server and first control plane"
    ));
    let cluster = Cluster::prepare(count, control_planes)?;
    let result = multi_node_demo(&cluster, control_planes);
    if keep {
        println!("\nkept (stop each with podsec-sandbox stop STATE):");
        println!("  load balancer: {}", cluster.lb.state().display());
        for (index, node) in cluster.nodes.iter().enumerate() {
            if let Some(sandbox) = node.sandbox() {
                println!("  {}: {}", node_name(index), sandbox.state().display());
            }
        }
        std::mem::forget(cluster);
        return result;
    }
    result?;
    step("u7s-start-stop stop on every node; the sandboxes are removed");
    for node in cluster.nodes.iter().rev() {
        node.root_ok("u7s-start-stop stop");
        node.assert_nothing_left();
    }
    Ok(())
}

fn multi_node_demo(cluster: &Cluster, control_planes: usize) -> Result<()> {
    let first = cluster.first();
    step(&format!(
        "kubeadm init --control-plane-endpoint {LB_IP}:{LB_PORT} on {NODE_NAME}"
    ));
    let (status, log) = cluster.init();
    print!("{log}");
    if status != 0 {
        bail!("kubeadm init failed ({status})\n{}", first.diagnose());
    }
    first.wait_cluster_ready(Duration::from_secs(600))?;
    for index in 1..cluster.nodes.len() {
        let name = node_name(index);
        let control_plane = index < control_planes;
        step(&format!(
            "{name}: kubeadm join {LB_IP}:{LB_PORT}{}",
            if control_plane {
                " --control-plane --certificate-key ..."
            } else {
                ""
            }
        ));
        let (status, log) = cluster.join(index, control_plane, "")?;
        print!("{log}");
        if status != 0 {
            bail!(
                "kubeadm join of {name} failed ({status})\n{}",
                cluster.nodes[index].diagnose()
            );
        }
        first.wait_node_ready(&name, Duration::from_secs(600))?;
    }
    step("a pod from a signed image on every node");
    for index in 0..cluster.nodes.len() {
        first.kubectl_apply(&pod_on(&node_name(index)));
    }
    first.wait_for("every hello pod running", Duration::from_secs(600), || {
        let pods = first.pods().ok()?;
        (0..cluster.nodes.len())
            .all(|i| {
                let name = format!("hello-{}", node_name(i));
                pods.iter().any(|p| p.name == name && p.ready())
            })
            .then_some(())
    })?;
    step("kubectl get nodes,pods -A -o wide");
    print!("{}", first.kubectl_ok("get nodes,pods -A -o wide"));
    step("haproxy's view of the API servers");
    for (server, state) in cluster.lb_servers() {
        println!("{server:<8} {state}");
    }
    Ok(())
}
