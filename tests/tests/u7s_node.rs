//! A real rootless node (issue 11), installed offline: registry.local holds only what
//! `podsec-k8s-save-oci` archived from a mirror of the ALT registry (its kubeadm images, flannel
//! and its CNI plugin, U7S_ARCHIMAGES), loaded and signed by an image maker. `kubeadm init`
//! through the wrapper with nothing skipped and no preflight error ignored; the real kubelet and CRI-O in u7s-admin's namespace pull every
//! system image, signed by an image maker, from registry.local under the node's policy.json;
//! the cluster comes up, a signed workload runs, is reachable by name and by NodePort, an
//! unsigned image and one signed by an unknown key are refused; every container process belongs to u7s-admin's ids; reset, a
//! second init, and stop leave nothing behind. See tests/src/node.rs for where the parts come
//! from.

use std::time::Duration;

use podsec_tests::node::{
    FOREIGN_POD, NODE_IP, NODE_NAME, PLATFORM, Pod, RealNode, UNSIGNED_POD, WEB_SERVICE, panic_on,
};
use podsec_tests::u7s::text;

/// The workload: a signed busybox serving a page, a Service by name and a NodePort.
const WORKLOAD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: web
    image: registry.local/c10f/busybox:1.35
    command: ["/bin/sh", "-c", "mkdir -p /www && echo signed-and-served > /www/index.html && echo podsec web ready && exec httpd -f -p 8080 -h /www"]
    ports: [{containerPort: 8080}]
"#;

#[test]
fn a_rootless_node_runs_signed_pods_refuses_unsigned_ones_and_leaves_nothing_behind() {
    // The offline install: registry.local holds only what podsec-k8s-save-oci archived.
    let node = panic_on(RealNode::prepare_offline());

    // kubeadm init as the README tells it: no --skip-phases, no --ignore-preflight-errors.
    let (status, log) = node.init("");
    assert_eq!(status, 0, "kubeadm init:\n{log}\n{}", node.diagnose());
    assert!(!log.contains("[ERROR"), "{log}");
    for line in [
        "[wait-control-plane]",
        "[mark-control-plane]",
        "[kubelet-finalize]",
        "Your Kubernetes control-plane has initialized successfully!",
    ] {
        assert!(log.contains(line), "{line} missing:\n{log}");
    }
    panic_on(node.wait_cluster_ready(Duration::from_secs(600)));

    // Every system pod runs the signed image of registry.local/<platform> it was given.
    let pods = panic_on(node.pods());
    for prefix in podsec_tests::node::SYSTEM_PODS {
        let matching: Vec<&Pod> = pods.iter().filter(|p| p.name.starts_with(prefix)).collect();
        assert!(!matching.is_empty(), "no pod {prefix}*: {pods:?}");
        for pod in matching {
            assert!(pod.ready(), "{pod:?}");
            for image in &pod.images {
                assert!(
                    image.starts_with(&format!("registry.local/{PLATFORM}/")),
                    "{pod:?}"
                );
            }
        }
    }

    // A workload from a signed image, on the one node (the control plane's taint removed as
    // the upstream documentation tells).
    node.kubectl_ok(&format!(
        "taint nodes {NODE_NAME} node-role.kubernetes.io/control-plane:NoSchedule-"
    ));
    node.kubectl_apply(&format!("{WORKLOAD}---\n{WEB_SERVICE}"));
    panic_on(
        node.wait_for("the web pod running", Duration::from_secs(180), || {
            let pods = node.pods().ok()?;
            pods.iter()
                .any(|p| p.name == "web" && p.ready())
                .then_some(())
        }),
    );
    let logs = node.kubectl_ok("logs web");
    assert!(logs.contains("podsec web ready"), "{logs}");
    assert_eq!(node.kubectl_ok("exec web -- id -u").trim(), "0");
    // The Service's name through CoreDNS, and its ClusterIP through kube-proxy.
    let cluster_ip = node.kubectl_ok("get service web -o jsonpath={.spec.clusterIP}");
    let lookup = node.kubectl_ok("exec web -- nslookup web.default.svc.cluster.local");
    assert!(lookup.contains(cluster_ip.trim()), "{lookup}");
    let page = node.kubectl_ok("exec web -- wget -q -O - http://web.default.svc.cluster.local/");
    assert_eq!(page.trim(), "signed-and-served");
    // The NodePort, published with rootlessctl as the documentation tells, answers on the host.
    node.root_ok("nsenter_u7s rootlessctl add-ports 0.0.0.0:31080:31080/tcp");
    let page = node.root_ok(&format!(
        "for i in $(seq 30); do curl -fsS http://{NODE_IP}:31080/ && exit 0; sleep 1; done; exit 1"
    ));
    assert_eq!(page.trim(), "signed-and-served");

    // An image that nobody signed is refused by CRI-O under the node's policy, and never runs.
    node.push_unsigned();
    node.kubectl_apply(UNSIGNED_POD);
    panic_on(node.wait_unsigned_refused());
    let unsigned = node.kubectl_ok("get pod unsigned -o jsonpath={.status.phase}");
    assert_eq!(unsigned.trim(), "Pending");
    // A valid signature by a key the policy does not name is refused too.
    node.push_foreign_signed();
    node.kubectl_apply(FOREIGN_POD);
    let refusal = panic_on(node.wait_for(
        "the image signed by an unknown key refused",
        Duration::from_secs(120),
        || {
            let text = node.event_messages("foreign");
            text.contains("SignatureValidationFailed").then_some(text)
        },
    ));
    assert!(!refusal.contains("no signature exists"), "{refusal}");
    let foreign = node.kubectl_ok("get pod foreign -o jsonpath={.status.phase}");
    assert_eq!(foreign.trim(), "Pending");

    // Nothing of the node runs as root on the host: the runtime is u7s-admin's, the
    // containers' processes are u7s-admin's (root inside) or its subordinate ids.
    node.assert_run_by_u7s_admin(&[
        "crio",
        "kubelet",
        "etcd",
        "kube-apiserver",
        "kube-controller",
        "kube-scheduler",
        "kube-proxy",
        "coredns",
        "flanneld",
        "pause",
        "httpd",
        "conmon",
    ]);

    // The API server audits as podsec set it up, and u7s-admin cannot change that unseen: it
    // owns /etc/kubernetes, so it can rename the root-owned audit directory away and make its
    // own with a policy that records nothing. check-kubeapi sees it at once (the host's
    // directory is not root's; the running API server's view is no longer the host's
    // directory) and fails its run; put back, the check is clean again.
    let audit_ok = |what: &str| {
        let out = node.root("podsec-inotify-check-kubeapi --once");
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{what}: {said}");
        assert!(
            !said.contains("audit is not as podsec set it up"),
            "{what}: {said}"
        );
    };
    audit_ok("as installed");
    assert_eq!(
        node.root_ok("stat -c '%U:%G %a' /etc/kubernetes/audit /etc/kubernetes/audit/policy.yaml; test -s /etc/kubernetes/audit/audit.log && echo logging"),
        "root:u7s-admin 1770\nroot:root 644\nlogging\n"
    );
    let out = node.as_user(
        "u7s-admin",
        "set -e; cd /etc/kubernetes; mv audit audit.moved; mkdir audit; \
         printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n' > audit/policy.yaml",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = node.root("podsec-inotify-check-kubeapi --once");
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{said}");
    for finding in [
        "/etc/kubernetes/audit is not root's protected directory",
        "/etc/kubernetes/audit/policy.yaml is not a file only root may change",
        "does not see the host's /etc/kubernetes/audit at /etc/kubernetes/audit",
    ] {
        assert!(said.contains(finding), "{finding}: {said}");
    }
    let out = node.as_user(
        "u7s-admin",
        "set -e; cd /etc/kubernetes; rm -r audit; mv audit.moved audit",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    audit_ok("put back");

    // Again and away: reset through the wrapper, stop u7s, a second init on the same host.
    let (status, log) = node.run_long(
        "reset",
        "kubeadm reset --force && u7s-start-stop stop",
        Duration::from_secs(300),
    );
    assert_eq!(status, 0, "{log}");
    node.assert_nothing_left();
    let (status, log) = node.init("--reset");
    assert_eq!(
        status,
        0,
        "second kubeadm init:\n{log}\n{}",
        node.diagnose()
    );
    panic_on(node.wait_cluster_ready(Duration::from_secs(600)));
    node.root_ok("u7s-start-stop stop");
    node.assert_nothing_left();
}
