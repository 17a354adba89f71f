//! Versions, images and their substitutions resolved against real registries: registry.local,
//! an administrator's calico manifest, and a TLS registry with token authentication and pages.

use super::*;

#[test]
fn versions_registries_and_substitutions_against_the_real_registry() {
    let node = Node::start(&["c10f", "sub", "nopause"]);
    let adv = ["--apiserver-advertise-address", ADDRESS, "--dry-run"];
    let init = |env: &[(&str, &str)]| {
        let mut args = vec!["init"];
        args.extend(adv);
        node.kubeadm_ok(&args, env)
    };
    let init_fails = |env: &[(&str, &str)]| {
        let mut args = vec!["init"];
        args.extend(adv);
        node.kubeadm_fails(&args, env)
    };

    // v1.26.11 > v1.26.9 > v1.26.3 by number (§10.2 defect 13); another minor needs packages,
    // which the (stand-in) ALT repository has: the plan installs them, the images follow.
    let plan = init(&[("U7S_KUBEVERSION", "v1.26")]);
    assert!(
        plan.contains("v1.26.11 (U7S_KUBEVERSION, newest v1.26 patch in the registry)"),
        "{plan}"
    );
    assert!(plan.contains("install packages kubernetes1.26-kubeadm kubernetes1.26-kubelet kubernetes1.26-crio cri-tools1.26"), "{plan}");
    assert!(
        plan.contains("$ apt-get install -y kubernetes1.26-kubeadm"),
        "{plan}"
    );
    assert!(
        plan.contains("are listed by kubeadm v1.26 once its package is installed"),
        "{plan}"
    );
    // an exact patch the registry lacks: the error lists what it has, in order
    let err = init_fails(&[("U7S_KUBEVERSION", "v1.26.10")]);
    assert!(err.contains("(it has v1.26.3, v1.26.9, v1.26.11)"), "{err}");
    // flannel: v0.27.0 has no shipped manifest, v0.9.1 is older than v0.26.7
    assert!(
        plan.contains("flannel v0.26.7 (newest in the registry with a shipped manifest)"),
        "{plan}"
    );
    // U7S_FLANNELCNIPLUGIN_TAG is honoured (§10.2 defect 15)
    let plan = init(&[
        ("U7S_FLANNEL_TAG", "v0.25.1"),
        ("U7S_FLANNELCNIPLUGIN_TAG", "v1.5.1-flannel2"),
    ]);
    assert!(
        plan.contains("registry.local/c10f/flannel-cni-plugin:v1.5.1-flannel2"),
        "{plan}"
    );

    // Registry precedence (§10.2 defect 12). /etc/hosts: registry.local (above). A non-empty
    // U7S_REGISTRY is honoured although /etc/hosts binds registry.local; TLS is verified by
    // default, so plain HTTP to it is refused until registries.conf marks it insecure.
    let err = init_fails(&[("U7S_REGISTRY", "127.0.0.1")]);
    assert!(
        err.contains("https://127.0.0.1/v2/c10f/kube-apiserver/tags/list"),
        "{err}"
    );
    node.root_ok(
        "mkdir -p /etc/containers && printf '[[registry]]\\nlocation = \"127.0.0.1\"\\ninsecure = true\\n' > /etc/containers/registries.conf",
    );
    let plan = init(&[("U7S_REGISTRY", "127.0.0.1")]);
    assert!(
        plan.contains("127.0.0.1/c10f (U7S_REGISTRY; platform c10f from /etc/os-release)"),
        "{plan}"
    );
    // the flag wins over the variable
    let mut args = vec!["init", "--image-repository", "registry.local/c10f"];
    args.extend(adv);
    let plan = node.kubeadm_ok(&args, &[("U7S_REGISTRY", "bogus.invalid")]);
    assert!(
        plan.contains("registry.local/c10f (--image-repository)"),
        "{plan}"
    );
    // U7S_PLATFORM over os-release, k8s-c10fN mapped to c10f
    let plan = init(&[("U7S_PLATFORM", "k8s-c10f1")]);
    assert!(
        plan.contains("U7S_PLATFORM=k8s-c10f1: images live under /c10f now"),
        "{plan}"
    );

    // U7S_SETAVAILABLEIMAGES (§10.2 defect 14): platform "sub" has etcd 3.5.16-0 and 3.6.1-0
    // but not kubeadm's 3.5.24-0.
    let err = init_fails(&[("U7S_PLATFORM", "sub")]);
    assert!(
        err.contains("etcd: the registry has no tag 3.5.24-0 (it has 3.5.16-0)"),
        "{err}"
    );
    let plan = init(&[("U7S_PLATFORM", "sub"), ("U7S_SETAVAILABLEIMAGES", "yes")]);
    assert!(
        plan.contains("WARNING: U7S_SETAVAILABLEIMAGES=yes: registry.local/sub/etcd:3.5.24-0 is not in the registry; using registry.local/sub/etcd:3.5.16-0 in its place"),
        "{plan}"
    );
    assert!(
        plan.contains("      |     imageTag: 3.5.16-0"),
        "kubeadm asks for the substitute itself:\n{plan}"
    );
    assert!(!plan.contains("3.6.1-0"), "never another minor:\n{plan}");
    // pause 3.9 is no stand-in for 3.10 (another minor), even when substitutions are allowed
    let err = init_fails(&[
        ("U7S_PLATFORM", "nopause"),
        ("U7S_SETAVAILABLEIMAGES", "yes"),
    ]);
    assert!(
        err.contains("pause: the registry has no tag of the same minor as 3.10"),
        "{err}"
    );
}

/// Calico from the administrator's manifest (issue 13, item 6), against the real registry:
/// refused without a manifest, with an image of another registry or a tag the registry lacks,
/// with a manifest that is a link; accepted when every image is there, and the plan pulls them,
/// writes the validated copy, applies it after init, and publishes calico's ports.
#[test]
fn calico_from_the_administrators_manifest_against_the_real_registry() {
    let node = Node::start(&["c10f"]);
    node.push_tags(&[
        "calico/cni:v3.29.1".to_string(),
        "calico/node:v3.29.1".to_string(),
        "calico/kube-controllers:v3.29.1".to_string(),
    ]);
    for (name, text) in [
        (
            "calico.yaml",
            calico_manifest("registry.local/calico", "v3.29.1"),
        ),
        (
            "upstream.yaml",
            calico_manifest("docker.io/calico", "v3.29.1"),
        ),
        (
            "missing-tag.yaml",
            calico_manifest("registry.local/calico", "v3.30.0"),
        ),
    ] {
        node.root_ok(&format!(
            "mkdir -p /etc/podsec && cat > /etc/podsec/{name} <<'EOF'\n{text}EOF\nchmod 0644 /etc/podsec/{name}"
        ));
    }
    node.root_ok("ln -sf /etc/podsec/calico.yaml /etc/podsec/link.yaml");
    let before = node.changes();
    let init = |manifest: Option<&str>| {
        let mut env = vec![("U7S_CNI_PLUGIN", "calico")];
        if let Some(m) = manifest {
            env.push(("U7S_CALICO_MANIFEST", m));
        }
        node.kubeadm(
            &[
                "init",
                "--apiserver-advertise-address",
                ADDRESS,
                "--dry-run",
            ],
            &env,
        )
    };
    let fails = |manifest: Option<&str>| {
        let out = init(manifest);
        assert!(!out.status.success(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        err
    };
    let err = fails(None);
    assert!(
        err.contains("U7S_CNI_PLUGIN='calico': calico needs its manifest: set U7S_CALICO_MANIFEST"),
        "{err}"
    );
    let err = fails(Some("/etc/podsec/upstream.yaml"));
    assert!(
        err.contains("U7S_CALICO_MANIFEST=/etc/podsec/upstream.yaml: image docker.io/calico/cni:v3.29.1 is not in the node's registry registry.local"),
        "{err}"
    );
    let err = fails(Some("/etc/podsec/missing-tag.yaml"));
    assert!(
        err.contains("U7S_CALICO_MANIFEST=/etc/podsec/missing-tag.yaml: image registry.local/calico/node: the registry has no tag v3.30.0 (it has none of that kind)"),
        "{err}"
    );
    let err = fails(Some("/etc/podsec/link.yaml"));
    assert!(
        err.contains("U7S_CALICO_MANIFEST=/etc/podsec/link.yaml: refused: it is a symbolic link"),
        "{err}"
    );
    let err = fails(Some("/etc/podsec/none.yaml"));
    assert!(
        err.contains("U7S_CALICO_MANIFEST=/etc/podsec/none.yaml: no such file"),
        "{err}"
    );

    let out = init(Some("/etc/podsec/calico.yaml"));
    assert!(out.status.success(), "{}", text(&out));
    let plan = stdout(&out);
    for expected in [
        "calico                  the manifest of U7S_CALICO_MANIFEST=/etc/podsec/calico.yaml (3 images)",
        "pod network             192.168.0.0/16",
        "      |   podSubnet: 192.168.0.0/16",
        "file /etc/podsec/u7s/calico.yaml (root:root 0644)",
        "      |           image: registry.local/calico/node:v3.29.1",
        "docker://registry.local/calico/node:v3.29.1",
        "docker://registry.local/calico/cni:v3.29.1",
        "docker://registry.local/calico/kube-controllers:v3.29.1",
        "apply calico: kubectl --kubeconfig /root/.kube/config apply --server-side -f /etc/podsec/u7s/calico.yaml (bounded retries)",
        "      | cni-plugin = \"calico\"",
        "kube-proxy and calico-node (DaemonSets)",
        "0.0.0.0:5473:5473/tcp",
        "0.0.0.0:4789:4789/udp",
        "0.0.0.0:51820:51820/udp",
    ] {
        assert!(plan.contains(expected), "plan lacks {expected:?}:\n{plan}");
    }
    assert!(!plan.contains("flannel"), "no flannel with calico:\n{plan}");
    // VXLAN always and the node's address: nothing to warn about for several rootless nodes
    assert!(!plan.contains("WARNING"), "{plan}");
    assert!(
        before == node.changes(),
        "a dry run or a refusal changed the sandbox"
    );
}

#[test]
fn tls_registry_with_token_auth_and_pagination() {
    let node = Node::start(&["c10f"]);
    let share = node.sandbox.share();
    let pki = share.join("tls");
    std::fs::create_dir_all(&pki).unwrap();
    k8s::make_ca(&pki, "ca", "podsec-test-registry-ca").unwrap();
    k8s::make_cert(
        &pki,
        "ca",
        "server",
        "/CN=tls.registry.test",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:tls.registry.test\n",
    )
    .unwrap();
    let log = share.join("token-registry.log");
    let stand_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("standins/token-registry.py");
    let p = |name: &str| pki.join(name).display().to_string();
    node.root_ok("echo '127.0.0.1 tls.registry.test' >> /etc/hosts");
    node.sandbox
        .spawn_daemon(
            "token-registry",
            &[
                "python3",
                stand_in.to_str().unwrap(),
                "--listen",
                "127.0.0.1:5443",
                "--cert",
                &p("server.crt"),
                "--key",
                &p("server.key"),
                "--upstream",
                "http://127.0.0.1:80",
                "--realm",
                "https://tls.registry.test:5443/token",
                "--service",
                "tls.registry.test",
                "--page",
                "3",
                "--log",
                log.to_str().unwrap(),
            ],
        )
        .unwrap();
    node.root_ok(&format!(
        "for i in $(seq 100); do curl -s -o /dev/null --cacert {} https://tls.registry.test:5443/v2/ && exit 0; sleep 0.1; done; exit 1",
        p("ca.crt")
    ));
    let env = [("U7S_REGISTRY", "tls.registry.test:5443")];
    let args = [
        "init",
        "--dry-run",
        "--apiserver-advertise-address",
        ADDRESS,
    ];

    // Without the registry's CA the certificate is not trusted: TLS is verified (§10.1 defect 6).
    let err = node.kubeadm_fails(&args, &env);
    assert!(
        err.contains("/etc/containers/certs.d/tls.registry.test:5443/ca.crt"),
        "{err}"
    );

    // With it (containers' certs.d, as CRI-O and skopeo read it) the bearer token is fetched and
    // every page followed: v1.33.13 sorts last of seven kube-apiserver tags, on the third page.
    node.root_ok(&format!(
        "install -D -m 0644 {} /etc/containers/certs.d/tls.registry.test:5443/ca.crt",
        p("ca.crt")
    ));
    let _ = std::fs::remove_file(&log);
    let plan = node.kubeadm_ok(&args, &env);
    assert!(
        plan.contains("v1.33.13 (the minor of the installed kubeadm v1.33.13, newest v1.33 patch"),
        "{plan}"
    );
    assert!(
        plan.contains("tls.registry.test:5443/c10f/etcd:3.5.24-0"),
        "{plan}"
    );
    let requests: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let apiserver: Vec<&serde_json::Value> = requests
        .iter()
        .filter(|r| r["path"] == "/v2/c10f/kube-apiserver/tags/list")
        .collect();
    assert!(
        apiserver.first().is_some_and(|r| r["auth"] == ""),
        "first try anonymous: {apiserver:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r["path"] == "/token" && r["scope"] == "repository:c10f/kube-apiserver:pull"),
        "{requests:?}"
    );
    let paged: Vec<&&serde_json::Value> =
        apiserver.iter().filter(|r| r["auth"] == "Bearer").collect();
    assert_eq!(paged.len(), 3, "7 tags in pages of 3: {apiserver:?}");
    assert!(
        paged[2]["query"].as_str().unwrap().contains("last="),
        "{paged:?}"
    );
}
