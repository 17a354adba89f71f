//! The host prepared, then the real kubeadm's file-only phases run with our configuration, and the
//! real etcd and kube-apiserver started from the manifests it wrote, with our audit patch.

use super::*;

#[test]
fn host_preparation_then_real_kubeadm_phases_and_an_audited_api_server() {
    let node = Node::start(&["c10f"]);
    // What must survive: a foreign CNI configuration and root-owned plugin binaries.
    node.root_ok(
        "mkdir -p /etc/cni/net.d /usr/libexec/cni && echo '{}' > /etc/cni/net.d/87-podman.conflist && \
         echo plugin > /usr/libexec/cni/bridge && chmod 0755 /usr/libexec/cni/bridge && \
         touch /usr/share/containers/containers.conf",
    );
    let containers_conf = node.root_ok("sha256sum /usr/share/containers/containers.conf");
    let args = [
        "init",
        "--prepare-only",
        "--apiserver-advertise-address",
        ADDRESS,
        "--node-name",
        "node1",
        "--service-cidr",
        "10.112.0.0/12",
        "--pod-network-cidr",
        "10.200.0.0/16",
        "--apiserver-cert-extra-sans",
        "api.example.org",
        "--token",
        TOKEN,
        "--token-ttl",
        "2h",
    ];
    node.kubeadm_ok(&args, &[]);

    // The account, with a subordinate range from usermod (§10.2 defect 21), not alice's.
    let ids = node.root_ok(
        "id u7s-admin; grep '^u7s-admin:' /etc/subuid /etc/subgid; grep '^alice:' /etc/subuid",
    );
    assert!(
        ids.contains("/etc/subuid:u7s-admin:") && ids.contains("/etc/subgid:u7s-admin:"),
        "{ids}"
    );
    let alice_start: u64 = ids
        .lines()
        .last()
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let u7s_start: u64 = ids
        .lines()
        .find(|l| l.starts_with("/etc/subuid:u7s-admin"))
        .unwrap()
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert!(u7s_start >= alice_start + 65536, "{ids}");
    // Owners and modes: root owns what root reads; u7s-admin only its data (§10.1 defects 1, 5).
    for (path, expected) in [
        ("/etc/podsec/u7s", "root:root 755"),
        ("/etc/podsec/u7s/kubeadm/init.yaml", "root:u7s-admin 640"),
        ("/etc/podsec/u7s/kube-flannel.yml", "root:root 644"),
        ("/etc/kubernetes", "u7s-admin:u7s-admin 755"),
        ("/etc/kubernetes/audit", "root:u7s-admin 1770"),
        ("/etc/kubernetes/audit/policy.yaml", "root:root 644"),
        ("/var/lib/podsec/u7s/etcd", "u7s-admin:u7s-admin 700"),
        ("/etc/cni/net.d/10-flannel.conflist", "root:root 644"),
        // §10.1 defect 4: package binaries keep their owner
        ("/usr/libexec/cni/bridge", "root:root 755"),
        ("/etc/sysctl.d/90-podsec-u7s.conf", "root:root 644"),
        // issue 13 item 3: the modules again at every boot, not only a one-shot modprobe (this
        // sandbox has no packaged /usr/lib/modules-load.d file: host preparation writes /etc's)
        ("/etc/modules-load.d/podsec-u7s.conf", "root:root 644"),
        // the runtime's typed node configuration, loaded back by the runtime's own reader
        ("/etc/podsec/u7s/node.toml", "root:root 644"),
    ] {
        assert_eq!(node.stat(path), expected, "{path}");
    }
    let node_toml = node.root_ok("cat /etc/podsec/u7s/node.toml");
    let config = podsec_k8s::node_config::NodeConfig::from_toml(&node_toml, Path::new("node.toml"))
        .unwrap_or_else(|e| panic!("{e}: {node_toml}"));
    let uid: u32 = node.root_ok("id -u u7s-admin").trim().parse().unwrap();
    assert_eq!(config.uid, uid);
    assert_eq!(config.service_cidr.to_string(), "10.112.0.0/12");
    assert_eq!(config.pod_cidr.to_string(), "10.200.0.0/16");
    assert_eq!(config.pause_image, "registry.local/c10f/pause:3.10");
    // §10.1 defect 7: /etc/cni is not wiped, the vendor containers.conf not edited
    assert_eq!(
        node.root_ok("cat /etc/cni/net.d/87-podman.conflist").trim(),
        "{}"
    );
    assert_eq!(
        node.root_ok("sha256sum /usr/share/containers/containers.conf"),
        containers_conf
    );
    assert_eq!(
        node.root_ok("cat /proc/sys/net/ipv4/ip_forward").trim(),
        "1"
    );
    assert_eq!(
        node.root_ok("cat /etc/modules-load.d/podsec-u7s.conf"),
        podsec_k8s::u7s_kubeadm::host_prep::modules_load_conf()
    );
    // A reboot, simulated: a fresh sandbox (its own network namespace, ip_forward 0) with this
    // /etc's files; the real systemd-sysctl of boot applies them. (systemd-modules-load is not
    // run: modules are the host kernel's, and this kernel has none.)
    let rebooted = Sandbox::start(&Options::default()).expect("sandbox");
    for file in [
        "/etc/sysctl.d/90-podsec-u7s.conf",
        "/etc/modules-load.d/podsec-u7s.conf",
    ] {
        let copy = rebooted.share().join("copy");
        std::fs::write(&copy, node.root_ok(&format!("cat {file}"))).unwrap();
        rebooted.sh_ok(&format!(
            "mkdir -p $(dirname {file}) && cp {} {file}",
            copy.display()
        ));
    }
    assert_eq!(
        rebooted
            .sh_ok("cat /proc/sys/net/ipv4/ip_forward; /lib/systemd/systemd-sysctl /etc/sysctl.d/90-podsec-u7s.conf && cat /proc/sys/net/ipv4/ip_forward"),
        "0\n1\n"
    );
    rebooted.sh_ok("grep -qx br_netfilter /etc/modules-load.d/podsec-u7s.conf");
    drop(rebooted);
    // §10.1 defect 5: u7s-admin can write its log there but not replace the policy
    let out = node.as_u7s(
        "touch /etc/kubernetes/audit/probe.log && rm /etc/kubernetes/audit/probe.log && \
         ! mv /etc/kubernetes/audit/policy.yaml /etc/kubernetes/audit/old 2>/dev/null && \
         ! sh -c 'echo weak > /etc/kubernetes/audit/policy.yaml' 2>/dev/null && echo guarded",
    );
    assert!(stdout(&out).contains("guarded"), "{}", text(&out));

    // Re-running changes nothing (idempotent).
    let before = node.changes();
    node.kubeadm_ok(&args, &[]);
    assert!(
        before == node.changes(),
        "a second --prepare-only changed files"
    );

    // The real kubeadm accepts our configuration.
    let config = "/etc/podsec/u7s/kubeadm/init.yaml";
    let kubeadm = k8s::binary("kubeadm").unwrap().display().to_string();
    node.root_ok(&format!("{kubeadm} config validate --config {config}"));
    // The file-only init phases, run as u7s-admin (root of the namespace in production): our
    // directory owners are what lets kubeadm write.
    let out = node.as_u7s(&format!(
        "set -e; for phase in 'certs all' 'kubeconfig all' 'control-plane all' 'etcd local'; do \
         {kubeadm} init phase $phase --config {config}; done"
    ));
    assert!(out.status.success(), "kubeadm phases: {}", text(&out));
    let etcd_command = manifest_command(&node, "etcd");
    assert!(
        etcd_command.contains(&"--data-dir=/var/lib/podsec/u7s/etcd".to_string()),
        "{etcd_command:?}"
    );
    assert!(etcd_command.contains(&"--listen-peer-urls=https://0.0.0.0:2380".to_string()));
    assert!(
        !etcd_command.iter().any(|a| a.contains("enable-v2")),
        "§10.2 defect 23"
    );

    // The audit patch on the manifest kubeadm wrote (acceptance 3), then idempotent.
    let original = node.root_ok("cat /etc/kubernetes/manifests/kube-apiserver.yaml");
    assert!(
        !original.contains("audit"),
        "kubeadm wrote no audit settings itself"
    );
    let patched = audit::patch_manifest(&original).unwrap().expect("patched");
    assert_eq!(audit::patch_manifest(&patched).unwrap(), None);
    std::fs::write(node.sandbox.share().join("kube-apiserver.yaml"), &patched).unwrap();
    node.root_ok(&format!(
        "install -o u7s-admin -g u7s-admin -m 0600 {} /etc/kubernetes/manifests/kube-apiserver.yaml",
        node.sandbox.share().join("kube-apiserver.yaml").display()
    ));
    let apiserver_command = manifest_command(&node, "kube-apiserver");
    for flag in [
        "--audit-policy-file=/etc/kubernetes/audit/policy.yaml",
        "--audit-log-path=/etc/kubernetes/audit/audit.log",
        "--advertise-address=192.0.2.20",
        "--service-cluster-ip-range=10.112.0.0/12",
        "--etcd-servers=https://127.0.0.1:2379",
    ] {
        assert!(
            apiserver_command.contains(&flag.to_string()),
            "{flag}: {apiserver_command:?}"
        );
    }

    // etcd and kube-apiserver with exactly those command lines, as u7s-admin (acceptance 6).
    let start = |label: &str, mut command: Vec<String>, binary: &str| {
        command[0] = k8s::binary(binary).unwrap().display().to_string();
        let mut argv = vec![
            "setpriv".to_string(),
            "--reuid=u7s-admin".into(),
            "--regid=u7s-admin".into(),
            "--init-groups".into(),
            "--".into(),
        ];
        argv.extend(command);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        node.sandbox.spawn_daemon(label, &argv).unwrap();
    };
    start("etcd", etcd_command, "etcd");
    start("kube-apiserver", apiserver_command, "kube-apiserver");
    let kubectl = k8s::binary("kubectl").unwrap().display().to_string();
    let ready = node.root(&format!(
        "for i in $(seq 240); do {kubectl} --kubeconfig /etc/kubernetes/super-admin.conf get --raw /readyz >/dev/null 2>&1 && exit 0; sleep 0.5; done; exit 1"
    ));
    assert!(
        ready.status.success(),
        "kube-apiserver not ready:\n{}\n{}",
        node.sandbox
            .daemon_log("etcd")
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .join("\n"),
        node.sandbox
            .daemon_log("kube-apiserver")
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // It serves requests (the super-admin is in system:masters, the group upstream's policy
    // never audited), and our rendered flannel manifest is a valid set of API objects.
    node.root_ok(&format!(
        "{kubectl} --kubeconfig /etc/kubernetes/super-admin.conf create namespace podsec-audit-probe && \
         {kubectl} --kubeconfig /etc/kubernetes/super-admin.conf get namespace podsec-audit-probe && \
         {kubectl} --kubeconfig /etc/kubernetes/super-admin.conf apply -f /etc/podsec/u7s/kube-flannel.yml"
    ));
    let flannel = node.root_ok(&format!(
        "{kubectl} --kubeconfig /etc/kubernetes/super-admin.conf -n kube-flannel get daemonset kube-flannel-ds -o jsonpath='{{.spec.template.spec.containers[0].image}} {{.spec.template.spec.initContainers[*].name}}'"
    ));
    assert_eq!(
        flannel.trim(),
        "registry.local/c10f/flannel:v0.26.7 install-cni-plugin"
    );
    // calico's apply as the plan runs it (server-side) takes a manifest shaped as Tigera's: its
    // CRD, ConfigMap, DaemonSet and Deployment are valid API objects for the real API server.
    node.root_ok(&format!(
        "cat > /etc/podsec/calico-apply.yaml <<'EOF'\n{}EOF\n\
         {kubectl} --kubeconfig /etc/kubernetes/super-admin.conf apply --server-side -f /etc/podsec/calico-apply.yaml",
        calico_manifest("registry.local/calico", "v3.29.1")
    ));
    let calico = node.root_ok(&format!(
        "{kubectl} --kubeconfig /etc/kubernetes/super-admin.conf -n kube-system get daemonset calico-node -o jsonpath='{{.spec.template.spec.containers[0].image}}'"
    ));
    assert_eq!(calico.trim(), "registry.local/calico/node:v3.29.1");
    let log = node.root_ok(
        "for i in $(seq 40); do grep -q podsec-audit-probe /etc/kubernetes/audit/audit.log 2>/dev/null && break; sleep 0.25; done; cat /etc/kubernetes/audit/audit.log",
    );
    let event: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["requestURI"] == "/api/v1/namespaces/podsec-audit-probe" && e["verb"] == "get")
        .unwrap_or_else(|| panic!("no audit event for the namespace:\n{log}"));
    assert!(
        event["user"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "system:masters"),
        "{event}"
    );
    assert_eq!(event["level"], "Metadata");
    assert_eq!(
        node.stat("/etc/kubernetes/audit/audit.log")
            .split(' ')
            .next(),
        Some("u7s-admin:u7s-admin")
    );

    // Leftovers are detected and only removed when asked (§10.2 defect 21).
    let err = node.kubeadm_fails(&args, &[]);
    assert!(
        err.contains("leftovers of an earlier deployment: /etc/kubernetes/admin.conf"),
        "{err}"
    );
    assert!(
        err.contains("/var/lib/podsec/u7s/etcd/member") && err.contains("--reset"),
        "{err}"
    );
    assert!(
        node.root("test -e /etc/kubernetes/admin.conf")
            .status
            .success()
    );
}
