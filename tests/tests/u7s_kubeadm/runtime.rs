//! init through the real u7s runtime, with kubeadm inside the namespace.

use super::*;

/// `kubeadm init` as an administrator runs it, through the real u7s runtime (rootlesskit,
/// slirp4netns, nsenter as u7s-admin) and the real kubeadm inside the namespace, with the
/// recording stand-ins of CRI-O and the kubelet. kubeadm's preflight runs in full, nothing
/// ignored: the namespace's checks (root, ip_forward, ports, directories, versions...) and, over
/// the CRI, the runtime's status and every image kubeadm needs, which the CRI-O stand-in finds
/// in the store the wrapper pulled into. The kubelet would start the static pods; here the test
/// starts etcd and kube-apiserver inside the namespace from the manifests kubeadm wrote, and the
/// phases that need a running kubelet are skipped. Everything of the wrapper after kubeadm then
/// runs for real: the audit patch, the admin.conf copies, flannel applied over the published API
/// port.
#[test]
fn init_through_the_real_runtime_and_kubeadm_inside_the_namespace() {
    const REGISTRY_IP: &str = "192.0.2.30";
    for name in ["kubeadm", "kubectl", "kube-apiserver", "etcd"] {
        if let Err(e) = k8s::binary(name) {
            panic!("{e:#}");
        }
    }
    let sandbox = Sandbox::start(&Options {
        name: None,
        addresses: vec![format!("{ADDRESS}/32"), format!("{REGISTRY_IP}/32")],
    })
    .expect("sandbox (needs root)");
    let node = Node {
        sandbox,
        path: podsec_tests::u7s::ADMIN_PATH.to_string(),
    };
    let share = node.sandbox.share();
    let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-commands");
    let standins = podsec_tests::u7s::standins();
    let bin = |name: &str| {
        std::fs::canonicalize(k8s::binary(name).unwrap())
            .unwrap()
            .display()
            .to_string()
    };
    std::fs::write(
        share.join("registry.yml"),
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {REGISTRY_IP}:80\n",
            share.join("registry-data").display()
        ),
    )
    .unwrap();
    // The package as make install lays it out; the real kubeadm, kubectl, etcd and
    // kube-apiserver where u7s-admin can run them; CRI-O and the kubelet as recording
    // stand-ins; the account (so the test can give CRI-O's store a plain file system: overlay
    // storage cannot sit on the sandbox's overlayfs); registry.local on another address.
    node.root_ok(&format!(
        r#"set -e
{install} {build} "" /usr >/dev/null
install -m 0755 {standins}/crio /usr/bin/crio
install -m 0755 {standins}/kubelet /usr/bin/kubelet
install -m 0755 {kubeadm} /usr/bin/kubeadm
install -m 0755 {kubectl} /usr/local/bin/kubectl
install -m 0755 {apiserver} /usr/local/bin/kube-apiserver
install -m 0755 {etcd} /usr/local/bin/etcd
rm -f /etc/os-release
printf '%s\n' 'ID=altlinux' 'ALT_BRANCH_ID="c10f2"' 'CPE_NAME="cpe:/o:alt:spserver:10.2"' > /etc/os-release
echo '{REGISTRY_IP} registry.local' >> /etc/hosts
mkdir -p /etc/containers
printf '[[registry]]\nlocation = "registry.local"\ninsecure = true\n' > /etc/containers/registries.conf
useradd -r -m -d /var/lib/u7s-admin -s /bin/sh u7s-admin
store=/var/lib/u7s-admin/.local/share/usernetes/containers/storage
mkdir -p $store {share}/store
chown u7s-admin: {share}/store
mount --bind {share}/store $store
chown -R u7s-admin: /var/lib/u7s-admin/.local"#,
        build = podsec_tests::sandbox::target_dir().display(),
        install = install.display(),
        standins = standins.display(),
        share = share.display(),
        kubeadm = bin("kubeadm"),
        kubectl = bin("kubectl"),
        apiserver = bin("kube-apiserver"),
        etcd = bin("etcd"),
    ));
    node.sandbox
        .spawn_daemon(
            "registry",
            &[
                "docker-registry",
                "serve",
                share.join("registry.yml").to_str().unwrap(),
            ],
        )
        .unwrap();
    node.root_ok(
        "for i in $(seq 100); do curl -sf -o /dev/null http://registry.local/v2/ && exit 0; sleep 0.1; done; exit 1",
    );
    node.push_tags(&standard_tags("c10f"));

    let rc = share.join("init.rc");
    // No --ignore-preflight-errors: every check passes here. Warnings only: SystemVerification
    // (the test machine's cgroup v1) and Hostname (node1 resolves nowhere).
    let script = format!(
        "export PATH={path}; kubeadm init --apiserver-advertise-address {ADDRESS} --node-name node1 \
         --skip-phases=wait-control-plane,upload-config/kubelet,mark-control-plane,kubelet-finalize \
         </dev/null; echo $? > {rc}",
        path = podsec_tests::u7s::ADMIN_PATH,
        rc = rc.display()
    );
    node.sandbox
        .spawn_daemon("init", &["sh", "-c", &script])
        .unwrap();
    let wait = |what: &str, seconds: u32, check: &dyn Fn() -> bool| {
        for _ in 0..seconds * 4 {
            if check() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        panic!(
            "{what} within {seconds} s; the run so far:\n{}",
            node.sandbox.daemon_log("init")
        );
    };
    // The kubelet's part: once kubeadm has written the static pods, run etcd and the API server
    // inside the namespace with the manifests' command lines.
    wait("kubeadm wrote the static pods", 240, &|| {
        node.root("test -s /etc/kubernetes/manifests/kube-apiserver.yaml && test -s /etc/kubernetes/manifests/etcd.yaml")
            .status
            .success()
    });
    for (label, manifest, binary) in [
        ("etcd", "etcd", "/usr/local/bin/etcd"),
        (
            "kube-apiserver",
            "kube-apiserver",
            "/usr/local/bin/kube-apiserver",
        ),
    ] {
        let mut command = manifest_command(&node, manifest);
        command[0] = binary.to_string();
        let mut argv = vec![format!("{}/nsenter_u7s", podsec_tests::u7s::U7S_BIN)];
        argv.extend(command);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        node.sandbox.spawn_daemon(label, &argv).unwrap();
    }
    wait("the wrapper finished", 300, &|| rc.exists());
    let log = node.sandbox.daemon_log("init");
    assert_eq!(
        std::fs::read_to_string(&rc).unwrap().trim(),
        "0",
        "kubeadm init failed:\n{log}\n--- kube-apiserver:\n{}",
        node.sandbox
            .daemon_log("kube-apiserver")
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // kubeadm ran inside the namespace with our configuration, its output kept; its preflight
    // ran to the end without an error, the CRI answering.
    for line in [
        "[preflight] Running pre-flight checks",
        "[preflight] Pulling images required for setting up a Kubernetes cluster",
        "[certs] Generating \"ca\" certificate and key",
    ] {
        assert!(log.contains(line), "{line}: {log}");
    }
    assert!(!log.contains("[ERROR"), "{log}");
    assert!(
        !log.contains("Couldn't create the interface used for talking to the container runtime"),
        "{log}"
    );
    // Preflight's CRI check asked the runtime's status, and its image check found every image
    // kubeadm needs in CRI-O's store, pulled there by the wrapper: it asked for no pull.
    let calls: Vec<serde_json::Value> = node
        .root_ok("cat /var/lib/u7s-admin/standin/cri-calls.jsonl")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(calls.iter().any(|c| c["method"] == "Status"), "{calls:?}");
    assert!(
        calls.iter().all(|c| c["method"] != "PullImage"),
        "{calls:?}"
    );
    for image in [
        "registry.local/c10f/kube-apiserver:v1.33.13",
        "registry.local/c10f/kube-controller-manager:v1.33.13",
        "registry.local/c10f/kube-scheduler:v1.33.13",
        "registry.local/c10f/kube-proxy:v1.33.13",
        "registry.local/c10f/coredns:v1.12.0",
        "registry.local/c10f/pause:3.10",
        "registry.local/c10f/etcd:3.5.24-0",
    ] {
        assert!(
            calls
                .iter()
                .any(|c| c["method"] == "ImageStatus" && c["image"] == image && c["found"] == true),
            "{image}: {calls:?}"
        );
    }
    assert!(
        log.contains("[upload-config] Storing the configuration"),
        "{log}"
    );
    assert!(log.contains("enable and start u7s.service"), "{log}");

    // The runtime got the node configuration the wrapper wrote: CRI-O's pause image, the
    // namespace as u7s-admin.
    let crio: serde_json::Value =
        serde_json::from_str(&node.root_ok("cat /var/lib/u7s-admin/standin/crio.json")).unwrap();
    assert_eq!(
        crio["config"]["crio"]["image"]["pause_image"],
        "registry.local/c10f/pause:3.10"
    );
    // Every image pulled into CRI-O's store through the namespace (skopeo, the node's policy).
    let images = node.root_ok(&format!(
        "cat {}/store/overlay-images/images.json",
        share.display()
    ));
    for image in [
        "registry.local/c10f/kube-apiserver:v1.33.13",
        "registry.local/c10f/etcd:3.5.24-0",
        "registry.local/c10f/pause:3.10",
        "registry.local/c10f/flannel:v0.26.7",
        "registry.local/c10f/flannel-cni-plugin:v1.7.1-flannel1",
    ] {
        assert!(images.contains(image), "{image} not in the store: {images}");
    }
    // The cluster got our configuration.
    let kubectl =
        |args: &str| node.root_ok(&format!("kubectl --kubeconfig /root/.kube/config {args}"));
    let cluster_config = kubectl(
        "-n kube-system get configmap kubeadm-config -o 'jsonpath={.data.ClusterConfiguration}'",
    );
    assert!(
        cluster_config.contains("dataDir: /var/lib/podsec/u7s/etcd"),
        "{cluster_config}"
    );
    let proxy =
        kubectl("-n kube-system get configmap kube-proxy -o 'jsonpath={.data.config\\.conf}'");
    assert!(proxy.contains("maxPerCore: 0"), "{proxy}");
    // flannel applied by the wrapper over the published API port.
    assert_eq!(
        kubectl("-n kube-flannel get daemonset kube-flannel-ds -o 'jsonpath={.spec.template.spec.containers[0].image}'").trim(),
        "registry.local/c10f/flannel:v0.26.7"
    );
    // The audit patch went onto the manifest kubeadm wrote; admin.conf copies owned right.
    let manifest = node.root_ok("cat /etc/kubernetes/manifests/kube-apiserver.yaml");
    assert!(
        manifest.contains("--audit-policy-file=/etc/kubernetes/audit/policy.yaml"),
        "{manifest}"
    );
    assert_eq!(
        node.stat("/etc/kubernetes/manifests/kube-apiserver.yaml"),
        "u7s-admin:u7s-admin 600"
    );
    assert_eq!(node.stat("/root/.kube/config"), "root:root 600");
    assert_eq!(
        node.stat("/var/lib/u7s-admin/.kube/config"),
        "u7s-admin:u7s-admin 600"
    );
    // Other subcommands go to the native kubeadm inside the namespace, arguments as given.
    let tokens = node.root_ok("kubeadm token list -o jsonpath='{.token}'");
    assert!(!tokens.trim().is_empty(), "no bootstrap token listed");
    node.root_ok("u7s-start-stop stop");
}
