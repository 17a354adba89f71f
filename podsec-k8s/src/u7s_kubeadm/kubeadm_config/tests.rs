//! Golden files of the generated configurations (tests/golden/kubeadm/<minor>-<role>.yaml,
//! written by `PODSEC_UPDATE_GOLDEN=1 cargo test`) for 1.26, 1.30 and the newest minor, and
//! the checks that matter whatever the golden files say. The real kubeadm of the newest
//! minor validates its files in `make test`, kubeadm 1.30 in `make test-k8s-matrix`; the
//! 1.26 files are regression-only (no kubeadm 1.26 can be built: docs/testing.md).

use super::*;
use crate::u7s_kubeadm::flags::CRI_SOCKET;
use crate::u7s_kubeadm::versions::NEWEST_MINOR;

pub const TOKEN: &str = "abcdef.0123456789abcdef";
pub const HASH: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// The inputs of the golden files (also used by the validation against the real kubeadm).
pub fn sample(role: Role, version: KubeVersion) -> NodeInput {
    let net = |s: &str| Ipv4Net::parse_cluster(s).unwrap();
    NodeInput {
        role,
        version,
        node_name: "node1".into(),
        advertise_address: Ipv4Addr::new(192, 0, 2, 20),
        bind_port: 6443,
        skip_phases: Vec::new(),
        patches: None,
        init: (role == Role::Init).then(|| InitInput {
            image_repository: "registry.local/c10f".into(),
            control_plane_endpoint: "192.0.2.20:6443".into(),
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
        }),
        join: (role != Role::Init).then(|| JoinInput {
            discovery: Discovery::Token {
                endpoint: "192.0.2.10:6443".into(),
                token: TOKEN.into(),
                ca_cert_hashes: vec![HASH.into()],
                unsafe_skip_ca_verification: false,
            },
            tls_bootstrap_token: None,
            certificate_key: (role == Role::ControlPlane).then(|| KEY.into()),
        }),
    }
}

pub fn golden_versions() -> [KubeVersion; 3] {
    let v = |minor, patch| KubeVersion {
        major: 1,
        minor,
        patch,
    };
    [v(26, 15), v(30, 14), v(NEWEST_MINOR, 13)]
}

pub fn golden_name(role: Role, version: KubeVersion) -> String {
    let role = match role {
        Role::Init => "init",
        Role::Worker => "join-worker",
        Role::ControlPlane => "join-control-plane",
    };
    format!("1.{}-{role}.yaml", version.minor)
}

fn golden_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/kubeadm")
}

fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("PODSEC_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (PODSEC_UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(actual, expected, "{name} differs from its golden file");
}

#[test]
fn golden_configurations() {
    for version in golden_versions() {
        for role in [Role::Init, Role::Worker, Role::ControlPlane] {
            let text = render(&sample(role, version)).unwrap();
            check_golden(&golden_name(role, version), &text);
        }
    }
}

fn documents(text: &str) -> Vec<serde_json::Value> {
    podsec_common::yaml::documents(text).unwrap()
}

#[test]
fn api_version_follows_the_kubernetes_minor() {
    for (version, api, list_args) in [
        (golden_versions()[0], "kubeadm.k8s.io/v1beta3", false),
        (golden_versions()[1], "kubeadm.k8s.io/v1beta3", false),
        (golden_versions()[2], "kubeadm.k8s.io/v1beta4", true),
    ] {
        let docs = documents(&render(&sample(Role::Init, version)).unwrap());
        assert_eq!(docs[0]["apiVersion"].as_str(), Some(api));
        assert_eq!(docs[1]["apiVersion"].as_str(), Some(api));
        let args = &docs[1]["controllerManager"]["extraArgs"];
        assert_eq!(args.is_array(), list_args, "{version}: {args:?}");
        if list_args {
            assert_eq!(args[1]["name"].as_str(), Some("cluster-cidr"));
            assert_eq!(args[1]["value"].as_str(), Some("10.244.0.0/16"));
            assert_eq!(
                docs[0]["timeouts"]["controlPlaneComponentHealthCheck"].as_str(),
                Some("4m0s")
            );
            assert!(docs[1]["apiServer"]["timeoutForControlPlane"].is_null());
        } else {
            assert_eq!(args["cluster-cidr"].as_str(), Some("10.244.0.0/16"));
            assert_eq!(
                docs[1]["apiServer"]["timeoutForControlPlane"].as_str(),
                Some("4m0s")
            );
        }
    }
}

#[test]
fn rootless_settings_in_every_version() {
    for version in golden_versions() {
        let text = render(&sample(Role::Init, version)).unwrap();
        let docs = documents(&text);
        assert_eq!(
            docs[1]["etcd"]["local"]["dataDir"].as_str(),
            Some(ETCD_DATA_DIR)
        );
        assert_eq!(docs[3]["conntrack"]["maxPerCore"].as_u64(), Some(0));
        assert_eq!(
            docs[0]["nodeRegistration"]["criSocket"].as_str(),
            Some(CRI_SOCKET)
        );
        assert!(docs[0]["nodeRegistration"]["taints"].is_null());
        // §10.2 defect 23: no etcd v2 API flag, whatever the version.
        assert!(!text.contains("enable-v2"), "{text}");
        // The ClusterConfiguration is every control plane's: no node's own API address.
        let api_server = podsec_common::yaml::to_string(&docs[1]["apiServer"]).unwrap();
        assert!(!api_server.contains("advertise-address"), "{api_server}");
    }
}

#[test]
fn honoured_flags_reach_the_configuration() {
    let version = golden_versions()[2];
    let mut input = sample(Role::Init, version);
    input.bind_port = 7443;
    input.skip_phases = vec!["addon/kube-proxy".into()];
    input.patches = Some("/etc/podsec/patches".into());
    let init = input.init.as_mut().unwrap();
    init.service_subnet = Ipv4Net::parse_cluster("10.112.0.0/12").unwrap();
    init.token = Some(TOKEN.into());
    init.token_ttl = Some("2h".into());
    init.certificate_key = Some(KEY.into());
    init.cert_extra_sans = vec!["api.example.org".into()];
    init.feature_gates = vec![("PublicKeysECDSA".into(), true)];
    init.dns_domain = "corp.internal".into();
    init.etcd_image_tag = Some("3.5.16-0".into());
    let docs = documents(&render(&input).unwrap());
    assert_eq!(docs[0]["localAPIEndpoint"]["bindPort"].as_u64(), Some(7443));
    assert_eq!(docs[0]["bootstrapTokens"][0]["token"].as_str(), Some(TOKEN));
    assert_eq!(docs[0]["bootstrapTokens"][0]["ttl"].as_str(), Some("2h"));
    assert_eq!(docs[0]["certificateKey"].as_str(), Some(KEY));
    assert_eq!(docs[0]["skipPhases"][0].as_str(), Some("addon/kube-proxy"));
    assert_eq!(
        docs[0]["patches"]["directory"].as_str(),
        Some("/etc/podsec/patches")
    );
    assert_eq!(
        docs[1]["networking"]["serviceSubnet"].as_str(),
        Some("10.112.0.0/12")
    );
    assert_eq!(
        docs[1]["networking"]["dnsDomain"].as_str(),
        Some("corp.internal")
    );
    assert_eq!(
        docs[1]["apiServer"]["certSANs"][1].as_str(),
        Some("api.example.org")
    );
    assert_eq!(
        docs[1]["featureGates"]["PublicKeysECDSA"].as_bool(),
        Some(true)
    );
    assert_eq!(
        docs[1]["etcd"]["local"]["imageTag"].as_str(),
        Some("3.5.16-0")
    );
    assert_eq!(
        docs[1]["controllerManager"]["extraArgs"][2]["value"].as_str(),
        Some("10.112.0.0/12")
    );
}

#[test]
fn joins_carry_discovery_and_control_plane() {
    let version = golden_versions()[1];
    let docs = documents(&render(&sample(Role::ControlPlane, version)).unwrap());
    assert_eq!(docs.len(), 1, "join files hold the JoinConfiguration only");
    let discovery = &docs[0]["discovery"]["bootstrapToken"];
    assert_eq!(
        discovery["apiServerEndpoint"].as_str(),
        Some("192.0.2.10:6443")
    );
    assert_eq!(discovery["caCertHashes"][0].as_str(), Some(HASH));
    assert_eq!(
        docs[0]["controlPlane"]["certificateKey"].as_str(),
        Some(KEY)
    );
    assert_eq!(docs[0]["discovery"]["timeout"].as_str(), Some("5m0s"));
    let worker = documents(&render(&sample(Role::Worker, version)).unwrap());
    assert!(worker[0]["controlPlane"].is_null());
    let mut file = sample(Role::Worker, golden_versions()[2]);
    file.join.as_mut().unwrap().discovery = Discovery::File {
        kubeconfig: "/root/discovery.conf".into(),
    };
    let docs = documents(&render(&file).unwrap());
    assert_eq!(
        docs[0]["discovery"]["file"]["kubeConfigPath"].as_str(),
        Some("/root/discovery.conf")
    );
    assert_eq!(docs[0]["timeouts"]["discovery"].as_str(), Some("5m0s"));
    let mut unsafe_skip = sample(Role::Worker, golden_versions()[2]);
    unsafe_skip.join.as_mut().unwrap().discovery = Discovery::Token {
        endpoint: "192.0.2.10:6443".into(),
        token: TOKEN.into(),
        ca_cert_hashes: vec![],
        unsafe_skip_ca_verification: true,
    };
    let docs = documents(&render(&unsafe_skip).unwrap());
    assert_eq!(
        docs[0]["discovery"]["bootstrapToken"]["unsafeSkipCAVerification"].as_bool(),
        Some(true)
    );
}
