//! The values each flag accepts and refuses.

use super::*;

// --- global flags
#[test]
fn flag_help() {
    assert_eq!(
        parse(&args(&["-h"])).unwrap(),
        Invocation::Usage { help: true }
    );
    assert_eq!(
        parse(&args(&["init", "--help"])).unwrap(),
        Invocation::SubcommandHelp { command: "init" }
    );
    assert_eq!(
        parse(&args(&["join", "-h"])).unwrap(),
        Invocation::SubcommandHelp { command: "join" }
    );
    // help of other subcommands is kubeadm's own
    native(&["token", "create", "-h"]);
}

#[test]
fn flag_v() {
    for form in [&["-v", "5"][..], &["-v5"], &["--v=5"], &["--v", "5"]] {
        let mut a = form.to_vec();
        a.push("init");
        let Invocation::Init(f) = parse(&args(&a)).unwrap() else {
            panic!()
        };
        assert_eq!(f.common.verbosity, Some(5));
        assert!(f.native_args().contains(&"--v=5".to_string()));
    }
    assert_eq!(init(&["-v", "3"]).unwrap().common.verbosity, Some(3));
    assert!(init(&["-v", "x"]).is_err());
    native(&["-v", "5", "token", "list"]);
}

// --- init and join
#[test]
fn flag_apiserver_advertise_address() {
    let f = init(&["--apiserver-advertise-address", "192.0.2.20"]).unwrap();
    assert_eq!(
        f.common.advertise_address,
        Some(Ipv4Addr::new(192, 0, 2, 20))
    );
    let f = join(&[
        "--apiserver-advertise-address=192.0.2.21",
        "--control-plane",
    ])
    .unwrap();
    assert_eq!(
        f.common.advertise_address,
        Some(Ipv4Addr::new(192, 0, 2, 21))
    );
    rejected(
        init(&["--apiserver-advertise-address", "fd00::1"]),
        "apiserver-advertise-address",
    );
    rejected(
        init(&["--apiserver-advertise-address", "0.0.0.0"]),
        "apiserver-advertise-address",
    );
}

#[test]
fn flag_apiserver_bind_port() {
    assert_eq!(
        init(&["--apiserver-bind-port", "7443"])
            .unwrap()
            .common
            .bind_port,
        Some(7443)
    );
    assert_eq!(
        join(&["--apiserver-bind-port=8443"])
            .unwrap()
            .common
            .bind_port,
        Some(8443)
    );
    rejected(init(&["--apiserver-bind-port", "0"]), "apiserver-bind-port");
    rejected(
        init(&["--apiserver-bind-port", "65536"]),
        "apiserver-bind-port",
    );
}

#[test]
fn flag_certificate_key() {
    assert_eq!(
        init(&["--certificate-key", KEY])
            .unwrap()
            .common
            .certificate_key
            .as_deref(),
        Some(KEY)
    );
    assert!(join(&["--control-plane", "--certificate-key", KEY]).is_ok());
    // A worker has no use for it: an error, not a silent drop.
    assert_eq!(
        join(&["--certificate-key", KEY]).unwrap_err(),
        FlagError::NeedsControlPlane {
            flag: "certificate-key"
        }
    );
    let text = rejected(init(&["--certificate-key", "abc"]), "certificate-key");
    assert!(
        !text.contains("abc"),
        "secrets stay out of messages: {text}"
    );
}

#[test]
fn flag_dry_run() {
    assert!(init(&["--dry-run"]).unwrap().common.dry_run);
    assert!(join(&["--dry-run"]).unwrap().common.dry_run);
    assert!(!init(&["--dry-run=false"]).unwrap().common.dry_run);
    // never given to the native kubeadm: podsec does not run it in a dry run
    assert!(
        !init(&["--dry-run"])
            .unwrap()
            .native_args()
            .iter()
            .any(|a| a.contains("dry-run"))
    );
    assert!(matches!(
        init(&["--dry-run=maybe"]),
        Err(FlagError::BoolValue { .. })
    ));
}

#[test]
fn flag_ignore_preflight_errors() {
    let f = init(&[
        "--ignore-preflight-errors",
        "Swap,NumCPU",
        "--ignore-preflight-errors=Mem",
    ])
    .unwrap();
    assert_eq!(f.common.ignore_preflight_errors, ["Swap", "NumCPU", "Mem"]);
    assert!(
        f.native_args()
            .contains(&"--ignore-preflight-errors=Swap,NumCPU,Mem".to_string())
    );
    rejected(
        init(&["--ignore-preflight-errors", "a;b"]),
        "ignore-preflight-errors",
    );
}

#[test]
fn flag_node_name() {
    assert_eq!(
        init(&["--node-name", "node-1"])
            .unwrap()
            .common
            .node_name
            .as_deref(),
        Some("node-1")
    );
    assert_eq!(
        join(&["--node-name=w1.example"])
            .unwrap()
            .common
            .node_name
            .as_deref(),
        Some("w1.example")
    );
    rejected(init(&["--node-name", "Node 1"]), "node-name");
}

#[test]
fn flag_patches() {
    assert_eq!(
        init(&["--patches", "/etc/kubeadm-patches"])
            .unwrap()
            .common
            .patches
            .as_deref(),
        Some("/etc/kubeadm-patches")
    );
    rejected(init(&["--patches", "patches"]), "patches");
}

#[test]
fn flag_skip_phases() {
    let f = init(&["--skip-phases", "addon/kube-proxy,preflight"]).unwrap();
    assert_eq!(f.common.skip_phases, ["addon/kube-proxy", "preflight"]);
    assert_eq!(
        join(&["--skip-phases=preflight"])
            .unwrap()
            .common
            .skip_phases,
        ["preflight"]
    );
    rejected(init(&["--skip-phases", "x y"]), "skip-phases");
}

#[test]
fn flag_token() {
    assert_eq!(
        init(&["--token", TOKEN]).unwrap().common.token.as_deref(),
        Some(TOKEN)
    );
    assert_eq!(join(&[]).unwrap().common.token.as_deref(), Some(TOKEN));
    rejected(init(&["--token", "short.x"]), "token");
}

// --- init only
#[test]
fn flag_apiserver_cert_extra_sans() {
    let f = init(&[
        "--apiserver-cert-extra-sans",
        "10.0.0.5,api.example.org,*.example.org",
    ])
    .unwrap();
    assert_eq!(
        f.cert_extra_sans,
        ["10.0.0.5", "api.example.org", "*.example.org"]
    );
    rejected(
        init(&["--apiserver-cert-extra-sans", "bad name"]),
        "apiserver-cert-extra-sans",
    );
    assert_eq!(
        join(&["--apiserver-cert-extra-sans", "x"]).unwrap_err(),
        FlagError::WrongCommand {
            command: "join",
            flag: "apiserver-cert-extra-sans",
            belongs: "init"
        }
    );
}

#[test]
fn flag_control_plane_endpoint() {
    assert_eq!(
        init(&["--control-plane-endpoint", "192.0.2.100:8443"])
            .unwrap()
            .control_plane_endpoint
            .as_deref(),
        Some("192.0.2.100:8443")
    );
    assert!(init(&["--control-plane-endpoint", "api.example.org"]).is_ok());
    rejected(
        init(&["--control-plane-endpoint", "a b:1"]),
        "control-plane-endpoint",
    );
}

#[test]
fn flag_feature_gates() {
    let f = init(&[
        "--feature-gates",
        "PublicKeysECDSA=true,RootlessControlPlane=false",
    ])
    .unwrap();
    assert_eq!(
        f.feature_gates,
        [
            ("PublicKeysECDSA".to_string(), true),
            ("RootlessControlPlane".to_string(), false)
        ]
    );
    rejected(init(&["--feature-gates", "X=maybe"]), "feature-gates");
}

#[test]
fn flag_image_repository() {
    assert_eq!(
        init(&["--image-repository", "registry.local/c10f/"])
            .unwrap()
            .image_repository
            .as_deref(),
        Some("registry.local/c10f")
    );
    rejected(
        init(&["--image-repository", "Registry Local"]),
        "image-repository",
    );
}

#[test]
fn flag_kubernetes_version() {
    assert_eq!(
        init(&["--kubernetes-version", "v1.30.4"])
            .unwrap()
            .kubernetes_version,
        Some(VersionRequest::parse("v1.30.4").unwrap())
    );
    assert!(init(&["--kubernetes-version", "1.33"]).is_ok());
    rejected(
        init(&["--kubernetes-version", "stable-1"]),
        "kubernetes-version",
    );
    let text = rejected(
        init(&["--kubernetes-version", "v1.25.9"]),
        "kubernetes-version",
    );
    assert!(text.contains("not supported"), "{text}");
}

#[test]
fn flag_pod_network_cidr() {
    assert_eq!(
        init(&["--pod-network-cidr", "10.200.0.0/16"])
            .unwrap()
            .pod_network_cidr
            .unwrap()
            .to_string(),
        "10.200.0.0/16"
    );
    rejected(
        init(&["--pod-network-cidr", "10.200.1.0/16"]),
        "pod-network-cidr",
    );
}

#[test]
fn flag_service_cidr() {
    // Upstream read FLAG_pod_service_cidr and silently ignored this flag (§10.2 defect 11).
    assert_eq!(
        init(&["--service-cidr", "10.112.0.0/12"])
            .unwrap()
            .service_cidr
            .unwrap()
            .to_string(),
        "10.112.0.0/12"
    );
    rejected(init(&["--service-cidr", "10.112.0.0"]), "service-cidr");
}

#[test]
fn flag_service_dns_domain() {
    assert_eq!(
        init(&["--service-dns-domain", "corp.internal"])
            .unwrap()
            .service_dns_domain
            .as_deref(),
        Some("corp.internal")
    );
    rejected(
        init(&["--service-dns-domain", "_bad"]),
        "service-dns-domain",
    );
}

#[test]
fn flag_token_ttl() {
    assert_eq!(
        init(&["--token-ttl", "1h30m"])
            .unwrap()
            .token_ttl
            .as_deref(),
        Some("1h30m")
    );
    assert!(init(&["--token-ttl", "0"]).is_ok());
    rejected(init(&["--token-ttl", "1 day"]), "token-ttl");
}

// --- join only
#[test]
fn flag_control_plane() {
    assert!(join(&["--control-plane"]).unwrap().control_plane);
    assert!(!join(&[]).unwrap().control_plane);
    assert!(matches!(
        init(&["--control-plane"]),
        Err(FlagError::WrongCommand { .. })
    ));
}

#[test]
fn flag_discovery_file() {
    let f = match parse(&args(&[
        "join",
        "--discovery-file",
        "/root/cluster-info.yaml",
    ]))
    .unwrap()
    {
        Invocation::Join(f) => f,
        other => panic!("{other:?}"),
    };
    assert_eq!(f.discovery_file.as_deref(), Some("/root/cluster-info.yaml"));
    assert_eq!(
        join(&["--discovery-file", "/x"]).unwrap_err(),
        FlagError::FileAndEndpoint
    );
    rejected(
        parse(&args(&["join", "--discovery-file", "relative.yaml"])),
        "discovery-file",
    );
}

#[test]
fn flag_discovery_token() {
    // discovery and TLS bootstrap tokens instead of --token
    let f = match parse(&args(&base("join", "token"))).unwrap() {
        Invocation::Join(f) => f,
        other => panic!("{other:?}"),
    };
    assert_eq!(f.discovery_token.as_deref(), Some(TOKEN));
    assert_eq!(
        parse(&args(&[
            "join",
            "192.0.2.10:6443",
            "--discovery-token-ca-cert-hash",
            HASH
        ]))
        .unwrap_err(),
        FlagError::NoToken
    );
}

#[test]
fn flag_discovery_token_ca_cert_hash() {
    assert_eq!(join(&[]).unwrap().ca_cert_hashes, [HASH]);
    assert_eq!(
        parse(&args(&["join", "192.0.2.10:6443", "--token", TOKEN])).unwrap_err(),
        FlagError::NoCaHash
    );
    rejected(
        join(&["--discovery-token-ca-cert-hash", "md5:00"]),
        "discovery-token-ca-cert-hash",
    );
}
