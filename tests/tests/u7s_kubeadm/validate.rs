//! Every configuration the wrapper generates, validated by the real kubeadm.

use super::*;

#[test]
fn every_generated_configuration_passes_kubeadm_config_validate() {
    let kubeadm = k8s::binary("kubeadm").unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../podsec-k8s/tests/golden/kubeadm");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&golden)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("1.33-")
        })
        .collect();
    assert_eq!(files.len(), 3, "the golden files of the newest minor");
    let discovery = dir.path().join("discovery.conf");
    std::fs::write(
        &discovery,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n    server: https://192.0.2.10:6443\n    certificate-authority-data: QUJD\ncontexts: []\nusers: []\n",
    )
    .unwrap();
    for (name, text) in configurations(&discovery) {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    for file in files {
        let out = std::process::Command::new(&kubeadm)
            .args(["config", "validate", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", file.display(), text(&out));
        // image lists are what the plan checks in the registry: the config's overrides apply
        if file.to_string_lossy().contains("init-every-flag") {
            let out = std::process::Command::new(&kubeadm)
                .args(["config", "images", "list", "--config"])
                .arg(&file)
                .output()
                .unwrap();
            let images = stdout(&out);
            assert!(
                images.contains("registry.local/c10f/etcd:3.5.16-0"),
                "{images}"
            );
            assert!(
                images.contains("registry.local/c10f/coredns:v1.11.3"),
                "{images}"
            );
        }
    }
}

/// Configurations in every shape the wrapper makes, for v1.33 (the pinned kubeadm's minor).
fn configurations(discovery_file: &Path) -> Vec<(String, String)> {
    let version = KubeVersion::parse("v1.33.13").unwrap();
    let net = |s: &str| Ipv4Net::parse_cluster(s).unwrap();
    let init = |f: &dyn Fn(&mut InitInput, &mut NodeInput)| {
        let mut input = InitInput {
            image_repository: "registry.local/c10f".into(),
            control_plane_endpoint: format!("{ADDRESS}:6443"),
            pod_subnet: net("10.244.0.0/16"),
            service_subnet: net("10.96.0.0/12"),
            dns_domain: "cluster.local".into(),
            cert_extra_sans: Vec::new(),
            feature_gates: Vec::new(),
            token: None,
            token_ttl: None,
            certificate_key: None,
            etcd_image_tag: None,
            dns_image_tag: None,
        };
        let mut node = NodeInput {
            role: Role::Init,
            version,
            node_name: "node1".into(),
            advertise_address: ADDRESS.parse().unwrap(),
            bind_port: 6443,
            skip_phases: Vec::new(),
            patches: None,
            init: None,
            join: None,
        };
        f(&mut input, &mut node);
        node.init = Some(input);
        kubeadm_config::render(&node).unwrap()
    };
    let join = |role: Role, discovery: Discovery, key: Option<&str>| {
        kubeadm_config::render(&NodeInput {
            role,
            version,
            node_name: "node2".into(),
            advertise_address: "192.0.2.21".parse().unwrap(),
            bind_port: 7443,
            skip_phases: vec!["preflight".into()],
            patches: Some("/etc/podsec/patches".into()),
            init: None,
            join: Some(JoinInput {
                discovery,
                tls_bootstrap_token: Some(TOKEN.into()),
                certificate_key: key.map(String::from),
            }),
        })
        .unwrap()
    };
    let token = || Discovery::Token {
        endpoint: "192.0.2.10:6443".into(),
        token: TOKEN.into(),
        ca_cert_hashes: vec![HASH.into()],
        unsafe_skip_ca_verification: false,
    };
    vec![
        ("init-defaults".into(), init(&|_, _| {})),
        (
            "init-every-flag".into(),
            init(&|i, n| {
                i.token = Some(TOKEN.into());
                i.token_ttl = Some("2h".into());
                i.certificate_key = Some(KEY.into());
                i.cert_extra_sans = vec!["api.example.org".into(), "10.0.0.5".into()];
                i.feature_gates = vec![("PublicKeysECDSA".into(), true)];
                i.dns_domain = "corp.internal".into();
                i.service_subnet = net("10.112.0.0/12");
                i.pod_subnet = net("10.200.0.0/16");
                i.control_plane_endpoint = "api.example.org:8443".into();
                i.etcd_image_tag = Some("3.5.16-0".into());
                i.dns_image_tag = Some("v1.11.3".into());
                n.bind_port = 7443;
                n.skip_phases = vec!["addon/kube-proxy".into()];
                n.patches = Some("/etc/podsec/patches".into());
            }),
        ),
        (
            "init-ttl-only".into(),
            init(&|i, _| i.token_ttl = Some("0".into())),
        ),
        ("join-worker".into(), join(Role::Worker, token(), None)),
        (
            "join-control-plane".into(),
            join(Role::ControlPlane, token(), Some(KEY)),
        ),
        (
            "join-unsafe-skip".into(),
            join(
                Role::Worker,
                Discovery::Token {
                    endpoint: "192.0.2.10:6443".into(),
                    token: TOKEN.into(),
                    ca_cert_hashes: vec![],
                    unsafe_skip_ca_verification: true,
                },
                None,
            ),
        ),
        (
            "join-file".into(),
            join(
                Role::Worker,
                Discovery::File {
                    kubeconfig: discovery_file.display().to_string(),
                },
                None,
            ),
        ),
    ]
}
