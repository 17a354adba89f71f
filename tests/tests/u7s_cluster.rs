//! A real rootless cluster of two nodes behind a load balancer (issue 16). The first node is
//! initialised as in tests/tests/u7s_node.rs with `--control-plane-endpoint` the haproxy of a
//! third host; the second node, on a host of its own, joins through the wrapper with the command
//! `kubeadm token create --print-join-command` prints; both rootless.
//!
//! As a worker: it pulls its images from registry.local under its own policy (a client of the
//! first node's keys), a signed pod runs there, pods on the two nodes reach each other over
//! flannel's VXLAN (8472/udp published on both hosts), a Service's ClusterIP reaches pods on
//! both nodes, the worker resolves names through CoreDNS on the first; it is drained, reset
//! through the wrapper and leaves nothing behind.
//!
//! Then it joins again as a second control plane (`--control-plane --certificate-key`, the key
//! from `kubeadm init phase upload-certs --upload-certs`): etcd has two members, both API
//! servers serve through the load balancer; with the first control plane stopped, the load
//! balancer still answers through the second.

use std::collections::BTreeSet;
use std::time::Duration;

use podsec_tests::cluster::{Cluster, endpoint, node_ip, node_name};
use podsec_tests::node::{NODE_IP, NODE_NAME, PLATFORM, RealNode, panic_on};

const WORKER_NAME: &str = "node2";

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

/// The second node joins (as a control plane or a worker); `extra`: more flags of the wrapper.
fn join(cluster: &Cluster, control_plane: bool, extra: &str) {
    let name = node_name(1);
    let (status, log) = panic_on(cluster.join(1, control_plane, extra));
    assert_eq!(
        status,
        0,
        "kubeadm join:\n{log}\n{name}:\n{}\nfirst:\n{}",
        cluster.nodes[1].diagnose(),
        cluster.first().diagnose()
    );
    assert!(!log.contains("[ERROR"), "{log}");
    assert!(log.contains("This node has joined the cluster"), "{log}");
    panic_on(
        cluster
            .first()
            .wait_node_ready(&name, Duration::from_secs(600)),
    );
    panic_on(pods_ready_on(
        cluster.first(),
        &name,
        &["kube-proxy-", "kube-flannel-ds-"],
    ));
}

#[test]
fn a_worker_and_a_control_plane_join_behind_haproxy() {
    let cluster = panic_on(Cluster::prepare(2, 2));
    let first = cluster.first();
    let worker = &cluster.nodes[1];
    assert_eq!(node_name(1), WORKER_NAME);

    let (status, log) = cluster.init();
    assert_eq!(status, 0, "kubeadm init:\n{log}\n{}", first.diagnose());
    panic_on(first.wait_cluster_ready(Duration::from_secs(600)));
    // Every kubeconfig names the load balancer, as upstream's docs say.
    let server = first.root_ok("kubectl --kubeconfig /root/.kube/config config view -o jsonpath='{.clusters[0].cluster.server}'");
    assert_eq!(server.trim(), format!("https://{}", endpoint()));
    join(&cluster, false, "");

    // The worker's node processes are u7s-admin's (or its subordinate ids'), none root's.
    worker.assert_run_by_u7s_admin(&["crio", "kubelet", "kube-proxy", "flanneld", "pause"]);

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
    let (status, log) = worker.run_long(
        "reset",
        "kubeadm reset --force && u7s-start-stop stop",
        Duration::from_secs(300),
    );
    assert_eq!(status, 0, "{log}");
    worker.assert_nothing_left();
    first.kubectl_ok(&format!("delete node {WORKER_NAME}"));

    // And it joins again, now as a second control plane: reset leaves the kubelet's directory,
    // which the wrapper removes only when told (`--reset`, as its refusal says).
    join(&cluster, true, "--reset");
    second_control_plane(&cluster);
    worker.root_ok("u7s-start-stop stop");
    worker.assert_nothing_left();
}

/// Two control planes: two etcd members, both API servers up behind haproxy and serving; the
/// first stopped, the second still answers through the load balancer.
fn second_control_plane(cluster: &Cluster) {
    let first = cluster.first();
    let second = &cluster.nodes[1];
    let name = node_name(1);
    panic_on(pods_ready_on(
        first,
        &name,
        &[
            "etcd-",
            "kube-apiserver-",
            "kube-controller-manager-",
            "kube-scheduler-",
        ],
    ));
    let roles = first.kubectl_ok(&format!(
        "get node {name} -o jsonpath='{{.metadata.labels}}'"
    ));
    assert!(
        roles.contains("node-role.kubernetes.io/control-plane"),
        "{roles}"
    );
    // etcd: two started members (named), the second at its node's address; asked over etcd's
    // own HTTP gateway with the kube-apiserver's client certificate (the image has no etcdctl).
    let members = first.root_ok(&format!(
        "curl -sS --max-time 20 -X POST -d '{{}}' --cacert /etc/kubernetes/pki/etcd/ca.crt \
         --cert /etc/kubernetes/pki/apiserver-etcd-client.crt \
         --key /etc/kubernetes/pki/apiserver-etcd-client.key https://{NODE_IP}:2379/v3/cluster/member/list"
    ));
    let members: serde_json::Value = serde_json::from_str(&members).expect("member list JSON");
    let started: BTreeSet<String> = members["members"]
        .as_array()
        .unwrap_or_else(|| panic!("{members}"))
        .iter()
        .filter_map(|m| m["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        started,
        BTreeSet::from([NODE_NAME.to_string(), name.clone()]),
        "{members}"
    );
    assert!(
        members
            .to_string()
            .contains(&format!("https://{}:2380", node_ip(1))),
        "{members}"
    );
    // The second control plane has the admin kubeconfig, naming the load balancer too.
    let server = second.root_ok("kubectl --kubeconfig /root/.kube/config config view -o jsonpath='{.clusters[0].cluster.server}'");
    assert_eq!(server.trim(), format!("https://{}", endpoint()));
    // haproxy sees both API servers up, and each answers on its own address.
    panic_on(first.wait_for(
        "both API servers UP in haproxy",
        Duration::from_secs(120),
        || {
            let servers = cluster.lb_servers();
            (servers.len() == 2 && servers.iter().all(|(_, state)| state == "UP")).then_some(())
        },
    ));
    // Through the load balancer, round robin: new connections reach both API servers.
    let before = cluster.lb_sessions();
    for _ in 0..6 {
        first.root_ok("kubectl --kubeconfig /root/.kube/config get --raw /version");
    }
    let after = cluster.lb_sessions();
    assert_eq!(before.len(), 2, "{before:?}");
    for ((server, was), (_, now)) in before.iter().zip(&after) {
        assert!(
            now > was,
            "{server} served nothing through haproxy: {before:?} {after:?}"
        );
    }
    for index in 0..2 {
        let version = cluster.lb.sh_ok(&format!(
            "curl -sk --max-time 10 https://{}:6443/version",
            node_ip(index)
        ));
        assert!(version.contains("gitVersion"), "{version}");
    }

    // The first control plane stopped: haproxy takes it out and sends every request to the
    // second. Two etcd members without one have no quorum (on purpose here; a third control
    // plane keeps it, and with it writes), so what still answers through the load balancer is
    // what the API server serves without etcd: its version and the API discovery.
    first.root_ok("u7s-start-stop stop");
    first.assert_nothing_left();
    panic_on(first.wait_for(
        "haproxy: node1 DOWN, node2 UP",
        Duration::from_secs(60),
        || {
            let servers = cluster.lb_servers();
            (servers
                == vec![
                    ("node1".to_string(), "DOWN".to_string()),
                    (name.clone(), "UP".to_string()),
                ])
            .then_some(())
        },
    ));
    let kubectl = "kubectl --kubeconfig /root/.kube/config --request-timeout 20s";
    let version = second.root_ok(&format!("{kubectl} version -o json"));
    assert!(version.contains("\"serverVersion\""), "{version}");
    // (--raw: kubectl's discovery cache would answer api-resources without the server.)
    let resources = second.root_ok(&format!("{kubectl} get --raw /api/v1"));
    assert!(resources.contains("\"name\":\"pods\""), "{resources}");
    let write = second.root(&format!("{kubectl} create namespace after-quorum"));
    assert!(
        !write.status.success(),
        "a write without etcd quorum succeeded"
    );
}
