//! The real node on the production launch path (issue 18): a machine with systemd as PID 1
//! (systemd-nspawn, `podsec_tests::systemd`), where `kubeadm init` through the wrapper lingers
//! u7s-admin, starts rootlesskit.service and kubelet.service in u7s-admin's user manager and
//! enables u7s.service. The real kubelet, CRI-O and control plane run there; a signed workload
//! runs and an unsigned image is refused; `systemctl stop u7s` leaves nothing, `systemctl
//! start u7s` brings the node and its pods back, a killed kubelet is restarted by its unit.
//! The same node in the sandbox without systemd is tests/tests/u7s_node.rs.

use std::time::Duration;

use podsec_tests::node::{NODE_NAME, RealNode, UNSIGNED_POD, panic_on};

const USER: &str = "u7s-admin";

/// A signed workload.
const WORKLOAD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: registry.local/c10f/busybox:1.35
    command: ["/bin/sh", "-c", "echo podsec web ready && exec sleep 36000"]
"#;

/// `systemctl --user -M u7s-admin@ ARGS` from root, stdout trimmed.
fn user_manager(node: &RealNode, args: &str) -> String {
    let out = node.root(&format!("systemctl --user -M {USER}@ {args}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `systemctl stop u7s`: the user manager and every process of u7s-admin are gone.
fn stop_u7s(node: &RealNode) {
    let machine = node.machine().expect("a systemd machine");
    machine.systemctl_ok(&["stop", "u7s.service"]);
    machine.wait_state(
        &format!("user@{}.service", node.uid),
        "inactive",
        Duration::from_secs(60),
    );
    node.assert_nothing_left();
}

/// The kubelet process of kubelet.service: the child of the unit's main process (nsenter).
fn kubelet_pid(node: &RealNode) -> String {
    let main = user_manager(node, "show -p MainPID --value kubelet.service");
    let out = node.root(&format!("pgrep -x -P {main} kubelet"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn web_ready(node: &RealNode) -> anyhow::Result<()> {
    node.wait_for("the web pod running", Duration::from_secs(300), || {
        let pods = node.pods().ok()?;
        pods.iter()
            .any(|p| p.name == "web" && p.ready())
            .then_some(())
    })
}

#[test]
fn under_systemd_the_node_runs_from_u7s_service_and_comes_back_after_a_restart() {
    let node = panic_on(RealNode::prepare_systemd());
    let machine = node.machine().expect("a systemd machine");

    let (status, log) = node.init("");
    assert_eq!(status, 0, "kubeadm init:\n{log}\n{}", node.diagnose());
    assert!(
        log.contains("Your Kubernetes control-plane has initialized successfully!"),
        "{log}"
    );
    // The production path, not the direct one: units of u7s-admin's lingering manager, and
    // u7s.service enabled for the next boot.
    assert_eq!(
        machine
            .sh_ok(&format!("loginctl show-user {USER} -p Linger --value"))
            .trim(),
        "yes"
    );
    assert_eq!(
        user_manager(&node, "is-active rootlesskit.service kubelet.service"),
        "active\nactive"
    );
    assert_eq!(machine.property("u7s.service", "UnitFileState"), "enabled");
    assert_eq!(machine.state("u7s.service"), "active");
    // The kubelet runs in the unit (its main process is the nsenter that entered the
    // namespace), u7s-admin's on the host.
    let kubelet = kubelet_pid(&node);
    assert_eq!(
        machine.sh_ok(&format!("stat -c %U /proc/{kubelet}")).trim(),
        USER
    );
    panic_on(node.wait_cluster_ready(Duration::from_secs(600)));

    // A signed workload runs; an unsigned image is refused under the node's policy.
    node.kubectl_ok(&format!(
        "taint nodes {NODE_NAME} node-role.kubernetes.io/control-plane:NoSchedule-"
    ));
    node.push_unsigned();
    node.kubectl_apply(WORKLOAD);
    node.kubectl_apply(UNSIGNED_POD);
    panic_on(web_ready(&node));
    assert!(node.kubectl_ok("logs web").contains("podsec web ready"));
    panic_on(node.wait_unsigned_refused());

    // Restart=always: a killed kubelet comes back by itself, as a new process.
    machine.sh_ok(&format!("kill -9 {kubelet}"));
    let back = panic_on(node.wait_for(
        "the kubelet restarted by its unit",
        Duration::from_secs(60),
        || {
            let pid = kubelet_pid(&node);
            (!pid.is_empty() && pid != kubelet).then_some(pid)
        },
    ));
    assert_ne!(back, kubelet);

    // `systemctl stop u7s`: the user manager and everything of u7s-admin is gone.
    stop_u7s(&node);

    // `systemctl start u7s` (what the next boot does): the node, its system pods and the
    // workload come back.
    machine.systemctl_ok(&["start", "u7s.service"]);
    panic_on(node.wait_cluster_ready(Duration::from_secs(600)));
    panic_on(web_ready(&node));
    assert_eq!(
        node.kubectl_ok("get pod unsigned -o jsonpath={.status.phase}")
            .trim(),
        "Pending"
    );

    stop_u7s(&node);
    assert_eq!(machine.failed_units(), Vec::<String>::new());
}
