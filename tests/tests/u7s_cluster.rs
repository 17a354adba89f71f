//! A real rootless cluster of two nodes (issue 16): the first node is initialised as in
//! tests/tests/u7s_node.rs, a worker on a host of its own (a sandbox joined by a veth pair)
//! joins through the wrapper with the command `kubeadm token create --print-join-command`
//! prints; both rootless. The worker pulls its images from registry.local under its own policy
//! (a client of the first node's keys), a signed pod runs there, pods on the two nodes reach
//! each other over flannel's VXLAN (8472/udp published on both hosts), a Service's ClusterIP
//! reaches pods on both nodes, the worker resolves names through CoreDNS on the first; the
//! worker is drained, reset through the wrapper, leaves nothing behind and joins again.

use std::collections::BTreeSet;
use std::time::Duration;

use podsec_tests::cluster::{Cluster, WORKER_NAME};
use podsec_tests::node::{NODE_NAME, PLATFORM, RealNode};

/// One signed busybox web server pinned to each node, and a Service over both.
fn workload() -> String {
    let pod = |node: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: web-{node}
  labels: {{app: web}}
spec:
  nodeName: {node}
  containers:
  - name: web
    image: registry.local/c10f/busybox:1.35
    command: ["/bin/sh", "-c", "mkdir -p /www && echo {node} > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{{containerPort: 8080}}]
---
"#
        )
    };
    format!(
        "{}{}apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {{app: web}}\n  ports: [{{port: 80, targetPort: 8080}}]\n",
        pod(NODE_NAME),
        pod(WORKER_NAME)
    )
}

fn panic_on<T>(result: anyhow::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e:#}"))
}

/// Waits until every pod whose name starts with one of `prefixes` and runs on `node` is ready.
fn pods_ready_on(first: &RealNode, node: &str, prefixes: &[&str]) -> anyhow::Result<()> {
    first.wait_for(
        &format!("{prefixes:?} ready on {node}"),
        Duration::from_secs(600),
        || {
            let out = first.kubectl(&format!(
                "get pods -A --field-selector spec.nodeName={node} -o jsonpath='{{range .items[*]}}{{.metadata.name}} {{.status.containerStatuses[*].ready}}{{\"\\n\"}}{{end}}'"
            ));
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            prefixes
                .iter()
                .all(|prefix| {
                    text.lines().any(|l| {
                        l.starts_with(prefix) && l.contains("true") && !l.contains("false")
                    })
                })
                .then_some(())
        },
    )
}

/// `extra`: flags of the wrapper beside the printed join command.
fn join(cluster: &Cluster, extra: &str) {
    let command = format!("{} {extra}", cluster.join_command());
    assert!(
        command.contains("--discovery-token-ca-cert-hash sha256:"),
        "{command}"
    );
    let (status, log) = cluster.worker.join(command.trim(), WORKER_NAME);
    assert_eq!(
        status,
        0,
        "kubeadm join:\n{log}\nworker:\n{}\nfirst:\n{}",
        cluster.worker.diagnose(),
        cluster.first.diagnose()
    );
    assert!(!log.contains("[ERROR"), "{log}");
    assert!(log.contains("This node has joined the cluster"), "{log}");
    panic_on(
        cluster
            .first
            .wait_node_ready(WORKER_NAME, Duration::from_secs(600)),
    );
    panic_on(pods_ready_on(
        &cluster.first,
        WORKER_NAME,
        &["kube-proxy-", "kube-flannel-ds-"],
    ));
}

#[test]
fn a_worker_joins_runs_signed_pods_reaches_the_other_node_and_leaves_cleanly() {
    let cluster = panic_on(Cluster::prepare());
    let first = &cluster.first;

    let (status, log) = first.init("");
    assert_eq!(status, 0, "kubeadm init:\n{log}\n{}", first.diagnose());
    panic_on(first.wait_cluster_ready(Duration::from_secs(600)));
    join(&cluster, "");

    // The worker's node processes are u7s-admin's (or its subordinate ids'), none root's.
    cluster
        .worker
        .assert_run_by_u7s_admin(&["crio", "kubelet", "kube-proxy", "flanneld", "pause"]);

    // A signed pod on each node (the control plane's taint removed as the docs tell).
    first.kubectl_ok(&format!(
        "taint nodes {NODE_NAME} node-role.kubernetes.io/control-plane:NoSchedule-"
    ));
    first.kubectl_apply(&workload());
    for node in [NODE_NAME, WORKER_NAME] {
        panic_on(pods_ready_on(first, node, &["web-"]));
    }
    let worker_image = first.kubectl_ok(&format!(
        "get pod web-{WORKER_NAME} -o jsonpath={{.status.containerStatuses[0].imageID}}"
    ));
    assert!(
        worker_image.contains(&format!("registry.local/{PLATFORM}/busybox")),
        "{worker_image}"
    );

    // Pod to pod across the nodes, both ways, over flannel's VXLAN.
    let ip = |pod: &str| {
        first
            .kubectl_ok(&format!("get pod {pod} -o jsonpath={{.status.podIP}}"))
            .trim()
            .to_string()
    };
    let (ip_first, ip_worker) = (
        ip(&format!("web-{NODE_NAME}")),
        ip(&format!("web-{WORKER_NAME}")),
    );
    assert_ne!(ip_first, ip_worker);

    // flanneld on each node adds the other's route when it sees the other's lease: bounded.
    let fetch = |from: &str, url: &str| {
        // Bounded by timeout(1): this busybox's `wget -T` crashes (SIGSEGV) on every call.
        let out = first.root(&format!(
            "timeout 30 kubectl --kubeconfig /root/.kube/config exec {from} -- wget -q -O - {url}"
        ));
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let reaches = |from: &str, url: &str, expected: &str| {
        let result = first.wait_for(
            &format!("{from} fetching {url}"),
            Duration::from_secs(90),
            || fetch(from, url).filter(|page| page == expected),
        );
        panic_on(result);
    };
    reaches(
        &format!("web-{NODE_NAME}"),
        &format!("http://{ip_worker}:8080/"),
        WORKER_NAME,
    );
    reaches(
        &format!("web-{WORKER_NAME}"),
        &format!("http://{ip_first}:8080/"),
        NODE_NAME,
    );
    // The Service's ClusterIP reaches the pods of both nodes, from the worker, by the name
    // CoreDNS (on the first node) gives.
    let mut answered = BTreeSet::new();
    for _ in 0..30 {
        if let Some(page) = fetch(
            &format!("web-{WORKER_NAME}"),
            "http://web.default.svc.cluster.local/",
        ) {
            answered.insert(page);
        }
        if answered.len() == 2 {
            break;
        }
    }
    assert_eq!(
        answered,
        BTreeSet::from([NODE_NAME.to_string(), WORKER_NAME.to_string()])
    );

    // Drain and leave: the worker's pods go, reset through the wrapper leaves nothing.
    first.kubectl_ok(&format!(
        "drain {WORKER_NAME} --ignore-daemonsets --delete-emptydir-data --force --timeout=120s"
    ));
    let gone = first.kubectl(&format!("get pod web-{WORKER_NAME}"));
    assert!(
        !gone.status.success(),
        "web-{WORKER_NAME} survived the drain"
    );
    let (status, log) = cluster.worker.run_long(
        "reset",
        "kubeadm reset --force && u7s-start-stop stop",
        Duration::from_secs(300),
    );
    assert_eq!(status, 0, "{log}");
    cluster.worker.assert_nothing_left();
    first.kubectl_ok(&format!("delete node {WORKER_NAME}"));

    // And it joins again: reset leaves the kubelet's directory, which the wrapper removes only
    // when told (`--reset`, as its refusal says and as the second init of u7s_node does).
    join(&cluster, "--reset");
    cluster.worker.root_ok("u7s-start-stop stop");
    cluster.worker.assert_nothing_left();
    first.root_ok("u7s-start-stop stop");
    first.assert_nothing_left();
}
