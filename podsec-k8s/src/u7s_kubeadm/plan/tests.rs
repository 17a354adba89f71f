//! Plans built from fakes of the host, the registry and the package index.

use super::*;
use crate::u7s_kubeadm::flags::{Invocation, parse};
use crate::u7s_kubeadm::network::HostAddress;
use crate::u7s_kubeadm::packages::{Installed, NoPackages};
use crate::u7s_kubeadm::resolve::tests::FakeTags;
use crate::u7s_kubeadm::runtime::InstalledRuntime;
use podsec_common::profile::OsRelease;

pub struct Images;
impl KubeadmImages for Images {
    fn list(&self, v: KubeVersion, prefix: &str) -> Result<Option<Vec<String>>, PlanError> {
        Ok(Some(
            [
                format!("kube-apiserver:{v}"),
                format!("kube-controller-manager:{v}"),
                format!("kube-scheduler:{v}"),
                format!("kube-proxy:{v}"),
                "coredns:v1.12.0".into(),
                "pause:3.10".into(),
                "etcd:3.5.21-0".into(),
            ]
            .iter()
            .map(|i| format!("{prefix}/{i}"))
            .collect(),
        ))
    }
}

pub fn facts() -> HostFacts {
    HostFacts {
        os: OsRelease::parse("ID=altlinux\nALT_BRANCH_ID=c10f2\n"),
        hosts_binds_registry_local: true,
        machine: "x86_64".into(),
        hostname: "Node1".into(),
        installed: Installed {
            kubeadm: KubeVersion::parse("v1.33.13").ok(),
            kubelet: KubeVersion::parse("v1.33.13").ok(),
            crio: KubeVersion::parse("1.33.2").ok(),
        },
        addresses: vec![HostAddress {
            interface: "eth0".into(),
            address: Ipv4Addr::new(192, 0, 2, 20),
            network: Ipv4Net::containing(Ipv4Addr::new(192, 0, 2, 20), 24),
        }],
        route_table: "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
                      eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n"
            .into(),
        ..HostFacts::default()
    }
}

pub fn tags() -> FakeTags {
    FakeTags::new(&[
        (
            "registry.local/c10f/kube-apiserver",
            &["v1.33.13", "v1.33.1", "v1.30.14"],
        ),
        ("registry.local/c10f/kube-controller-manager", &["v1.33.13"]),
        ("registry.local/c10f/kube-scheduler", &["v1.33.13"]),
        ("registry.local/c10f/kube-proxy", &["v1.33.13"]),
        ("registry.local/c10f/coredns", &["v1.12.0"]),
        ("registry.local/c10f/pause", &["3.10"]),
        ("registry.local/c10f/etcd", &["3.5.16-0", "3.5.21-0"]),
        ("registry.local/c10f/flannel", &["v0.26.7"]),
        (
            "registry.local/c10f/flannel-cni-plugin",
            &["v1.7.1-flannel1"],
        ),
    ])
}

pub fn plan_for(
    argv: &[&str],
    env: &[(&str, &str)],
    facts: &HostFacts,
    tags: &FakeTags,
) -> Result<Plan, PlanError> {
    let env = U7sEnv::from_pairs(env.iter().copied()).unwrap();
    let runtime = InstalledRuntime { uid: Some(990) };
    let ctx = Context {
        env: &env,
        facts,
        tags,
        packages: &NoPackages,
        runtime: &runtime,
        kubeadm_images: &Images,
    };
    let args: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
    match parse(&args).unwrap() {
        Invocation::Init(f) => init(&f, &ctx),
        Invocation::Join(f) => join(&f, &ctx),
        other => panic!("{other:?}"),
    }
}

fn files(plan: &Plan) -> Vec<&PlannedFile> {
    plan.steps
        .iter()
        .filter_map(|s| match s {
            Step::File { file } => Some(file),
            _ => None,
        })
        .collect()
}

fn config(plan: &Plan) -> &str {
    &files(plan)
        .into_iter()
        .find(|f| f.path.starts_with(KUBEADM_CONFIG_DIR))
        .unwrap()
        .contents
}

#[test]
fn init_plan_on_a_fresh_host() {
    let plan = plan_for(&["init"], &[], &facts(), &tags()).unwrap();
    let text = plan.render(true);
    for expected in [
        "Kubernetes              v1.33.13 (the minor of the installed kubeadm v1.33.13, newest v1.33 patch in the registry)",
        "create system group u7s-admin",
        "create system user u7s-admin",
        "usermod --add-subuids 131072-196607 --add-subgids 131072-196607 u7s-admin",
        "file /etc/kubernetes/audit/policy.yaml (root:root 0644)",
        "directory /etc/kubernetes/audit (root:u7s-admin 1770)",
        "file /etc/podsec/u7s/kubeadm/init.yaml (root:u7s-admin 0640)",
        "run inside the namespace: /usr/bin/kubeadm init --config /etc/podsec/u7s/kubeadm/init.yaml --upload-certs",
        "      | kind: ClusterConfiguration",
        "registry.local/c10f/etcd:3.5.21-0",
        "0.0.0.0:6443:6443/tcp",
        "192.0.2.20 (address of eth0 on the default route)",
        "node name               node1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // no wiping of /etc/cni, no chown of package binaries (§10.1/4, /7)
    assert!(
        !text.contains("rm -rf") && !text.contains("/usr/libexec/cni"),
        "{text}"
    );
    assert!(text.contains("file /etc/cni/net.d/10-flannel.conflist (root:root 0644)"));
}

#[test]
fn bind_port_is_honoured_everywhere() {
    // §10.2/11: ignored for init, 6443 fixed in the published ports, `ip:` endpoint
    let plan = plan_for(
        &["init", "--apiserver-bind-port", "7443"],
        &[],
        &facts(),
        &tags(),
    )
    .unwrap();
    let cfg = config(&plan);
    assert!(cfg.contains("bindPort: 7443"), "{cfg}");
    assert!(
        cfg.contains("controlPlaneEndpoint: 192.0.2.20:7443"),
        "{cfg}"
    );
    let ports: Vec<String> = plan.ports.iter().map(|p| p.to_string()).collect();
    assert!(
        ports.contains(&"0.0.0.0:7443:7443/tcp".into())
            && !ports.contains(&"0.0.0.0:6443:6443/tcp".into())
    );
    assert_eq!(node_config(&plan).bind_port, 7443);
    assert!(plan.render(true).contains("      | bind-port = 7443"));
}

#[test]
fn service_and_pod_networks_are_honoured_and_checked() {
    let plan = plan_for(
        &[
            "init",
            "--service-cidr",
            "10.112.0.0/12",
            "--pod-network-cidr",
            "10.200.0.0/16",
        ],
        &[],
        &facts(),
        &tags(),
    )
    .unwrap();
    let cfg = config(&plan);
    assert!(
        cfg.contains("serviceSubnet: 10.112.0.0/12") && cfg.contains("podSubnet: 10.200.0.0/16")
    );
    let manifest = files(&plan)
        .into_iter()
        .find(|f| f.path == Path::new(FLANNEL_MANIFEST))
        .unwrap();
    assert!(
        manifest.contents.contains("10.200.0.0/16"),
        "flannel follows the pod network"
    );
    // the pod network is checked against host networks too (§10.2/16)
    let err = plan_for(
        &["init", "--pod-network-cidr", "192.0.0.0/16"],
        &[],
        &facts(),
        &tags(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("pod network 192.0.0.0/16 overlaps"),
        "{err}"
    );
    let err = plan_for(
        &["init", "--service-cidr", "192.0.2.0/28"],
        &[],
        &facts(),
        &tags(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("service network"), "{err}");
}

#[test]
fn leftovers_need_reset() {
    let mut f = facts();
    f.leftovers = vec![PathBuf::from("/var/lib/podsec/u7s/etcd/member")];
    let err = plan_for(&["init"], &[], &f, &tags()).unwrap_err();
    assert!(
        err.to_string()
            .contains("/var/lib/podsec/u7s/etcd/member; run again with --reset"),
        "{err}"
    );
    let plan = plan_for(&["init", "--reset"], &[], &f, &tags()).unwrap();
    assert!(plan.steps.iter().any(|s| matches!(
        s,
        Step::RemoveLeftovers {
            confirmed: true,
            ..
        }
    )));
    // a dry run shows the step and what it needs instead of failing
    let plan = plan_for(&["init", "--dry-run"], &[], &f, &tags()).unwrap();
    assert!(plan.render(true).contains("needs --reset"));
}

#[test]
fn substitutes_go_into_the_configuration_not_under_false_tags() {
    let mut t = tags();
    t.0.insert("registry.local/c10f/etcd".into(), vec!["3.5.16-0".into()]);
    let err = plan_for(&["init"], &[], &facts(), &t).unwrap_err();
    assert!(
        err.to_string()
            .contains("etcd: the registry has no tag 3.5.21-0"),
        "{err}"
    );
    let plan = plan_for(
        &["init"],
        &[("U7S_SETAVAILABLEIMAGES", "yes")],
        &facts(),
        &t,
    )
    .unwrap();
    assert!(config(&plan).contains("imageTag: 3.5.16-0"));
    let etcd = plan
        .images
        .iter()
        .find(|i| i.role == ImageRole::Etcd)
        .unwrap();
    assert_eq!(etcd.wanted, "registry.local/c10f/etcd:3.5.16-0");
    assert!(
        plan.notes
            .iter()
            .any(|n| n.starts_with("WARNING: U7S_SETAVAILABLEIMAGES=yes"))
    );
}

#[test]
fn kernel_modules_and_sysctls_are_kept_for_every_boot() {
    // Issue 13 item 3: a rebooted node has them before u7s.service, not only after a
    // one-shot modprobe at deployment; on init and join alike.
    let hash = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let mut loaded = facts();
    loaded.loaded_modules = host_prep::MODULES.iter().map(|m| m.to_string()).collect();
    loaded.ip_forward = true;
    // The packaged file is there: nothing to write, however the modules are loaded now.
    let mut packaged = facts();
    packaged.modules_persisted = true;
    let plan = plan_for(&["init"], &[], &packaged, &tags()).unwrap();
    assert!(
        !files(&plan)
            .iter()
            .any(|f| f.path.starts_with("/etc/modules-load.d"))
    );
    for (argv, facts) in [
        (vec!["init"], facts()),
        (vec!["init"], loaded),
        (
            vec![
                "join",
                "192.0.2.10:6443",
                "--token",
                "abcdef.0123456789abcdef",
                "--discovery-token-ca-cert-hash",
                hash,
            ],
            facts(),
        ),
    ] {
        let plan = plan_for(&argv, &[], &facts, &tags()).unwrap();
        let files = files(&plan);
        let modules = files
            .iter()
            .find(|f| f.path == Path::new("/etc/modules-load.d/podsec-u7s.conf"))
            .unwrap_or_else(|| panic!("no modules-load.d file for {argv:?}"));
        assert_eq!((modules.mode, modules.user.as_str()), (0o644, "root"));
        let listed: Vec<&str> = modules
            .contents
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert_eq!(listed, host_prep::MODULES);
        for needed in [
            "br_netfilter",
            "overlay",
            "vxlan",
            "ip_tables",
            "iptable_nat",
        ] {
            assert!(listed.contains(&needed), "{needed}");
        }
        let sysctl = files
            .iter()
            .find(|f| f.path == Path::new("/etc/sysctl.d/90-podsec-u7s.conf"))
            .unwrap();
        assert!(sysctl.contents.contains("\nnet.ipv4.ip_forward = 1\n"));
    }
}

#[test]
fn join_plans() {
    let hash = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let worker = plan_for(
        &[
            "join",
            "192.0.2.10:6443",
            "--token",
            "abcdef.0123456789abcdef",
            "--discovery-token-ca-cert-hash",
            hash,
        ],
        &[],
        &facts(),
        &tags(),
    )
    .unwrap();
    let text = worker.render(true);
    assert!(
        !text.contains("audit") && !text.contains("kube-flannel.yml"),
        "{text}"
    );
    assert!(
        !worker
            .images
            .iter()
            .any(|i| i.pull.contains("kube-apiserver"))
    );
    assert!(worker.images.iter().any(|i| i.pull.contains("kube-proxy")));
    assert!(!worker.ports.iter().any(|p| p.parent_port == 6443));
    let cp = plan_for(
        &[
            "join",
            "192.0.2.10:6443",
            "--token",
            "abcdef.0123456789abcdef",
            "--discovery-token-ca-cert-hash",
            hash,
            "--control-plane",
            "--certificate-key",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        ],
        &[],
        &facts(),
        &tags(),
    )
    .unwrap();
    let text = cp.render(true);
    assert!(
        text.contains("PatchAudit") || text.contains("add the audit flags"),
        "{text}"
    );
    assert!(
        text.contains("/usr/bin/kubeadm join --config /etc/podsec/u7s/kubeadm/join.yaml"),
        "{text}"
    );
    assert!(config(&cp).contains("certificateKey: 0011"));
}

fn node_config(plan: &Plan) -> NodeConfig {
    plan.steps
        .iter()
        .find_map(|s| match s {
            Step::NodeConfig { config } => Some(config.clone()),
            _ => None,
        })
        .unwrap()
}

#[test]
fn the_runtime_gets_its_typed_node_configuration() {
    let plan = plan_for(&["init"], &[], &facts(), &tags()).unwrap();
    let node = node_config(&plan);
    assert_eq!(node.role, node_config::Role::InitMaster);
    assert_eq!(node.image_repository(), "registry.local/c10f");
    assert_eq!(node.pause_image, "registry.local/c10f/pause:3.10");
    assert_eq!(node.external_ip.to_string(), "192.0.2.20");
    assert_eq!(
        node.control_plane_endpoint.as_deref(),
        Some("192.0.2.20:6443")
    );
    assert!(
        plan.render(true)
            .contains("uid = 0  # u7s-admin's uid, filled in when the account exists")
    );
    // an existing configuration's extra ports (NodePorts an admin published) are kept
    let mut f = facts();
    f.extra_ports = vec!["0.0.0.0:31000:31000/tcp".parse().unwrap()];
    let plan = plan_for(&["init"], &[], &f, &tags()).unwrap();
    assert!(plan.ports.iter().any(|p| p.parent_port == 31000));
    // slirp4netns's network is checked against the host too
    let mut f = facts();
    f.addresses.push(HostAddress {
        interface: "eth1".into(),
        address: Ipv4Addr::new(10, 0, 2, 15),
        network: Ipv4Net::containing(Ipv4Addr::new(10, 0, 2, 15), 24),
    });
    let err = plan_for(&["init"], &[], &f, &tags()).unwrap_err();
    assert!(err.to_string().contains("slirp-cidr"), "{err}");
}

#[test]
fn prepare_only_stops_before_the_node_starts() {
    let plan = plan_for(&["init", "--prepare-only"], &[], &facts(), &tags()).unwrap();
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| matches!(s, Step::StartRuntime | Step::RunKubeadm { .. }))
    );
    assert!(plan.steps.iter().any(|s| matches!(s, Step::File { .. })));
}

/// calico from the administrator's manifest: its images checked in the registry and pulled,
/// its copy applied after init, its pod network and ports; no flannel anywhere.
#[test]
fn calico_from_the_administrators_manifest() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::Uid::effective().is_root() {
        return; // the manifest must be root's: only a root test run can write one
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("calico.yaml");
    std::fs::write(&path, calico::tests::SAMPLE).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let shown = path.display().to_string();
    let env = [
        ("U7S_CNI_PLUGIN", "calico"),
        ("U7S_CALICO_MANIFEST", shown.as_str()),
    ];
    let mut calico_tags = tags();
    for repository in ["cni", "node", "kube-controllers"] {
        calico_tags.0.insert(
            format!("registry.local/calico/{repository}"),
            vec!["v3.29.1".into()],
        );
    }
    let plan = plan_for(&["init"], &env, &facts(), &calico_tags).unwrap();
    let pulled: Vec<&str> = plan.images.iter().map(|i| i.pull.as_str()).collect();
    for image in [
        "registry.local/calico/cni:v3.29.1",
        "registry.local/calico/node:v3.29.1",
        "registry.local/calico/kube-controllers:v3.29.1",
    ] {
        assert!(pulled.contains(&image), "{pulled:?}");
    }
    assert!(!pulled.iter().any(|i| i.contains("flannel")), "{pulled:?}");
    let copy = files(&plan)
        .into_iter()
        .find(|f| f.path == Path::new(calico::MANIFEST_COPY))
        .expect("the validated copy");
    assert_eq!(copy.contents, calico::tests::SAMPLE);
    assert_eq!((copy.mode, copy.user.as_str()), (0o644, "root"));
    let applied = plan.steps.iter().find_map(|s| match s {
        Step::ApplyCalico { argv } => Some(argv.join(" ")),
        _ => None,
    });
    assert_eq!(
        applied.as_deref(),
        Some(
            "kubectl --kubeconfig /root/.kube/config apply --server-side -f /etc/podsec/u7s/calico.yaml"
        )
    );
    let text = plan.render(true);
    assert!(
        !text.contains("flannel") && !text.contains("kube-flannel.yml"),
        "{text}"
    );
    assert!(text.contains("apply calico: kubectl"), "{text}");
    assert!(
        text.contains(&format!(
            "calico                  the manifest of U7S_CALICO_MANIFEST={shown} (3 images)"
        )),
        "{text}"
    );
    // calico's pod network (192.168.0.0/16 unless the manifest names a pool) and ports
    assert!(config(&plan).contains("podSubnet: 192.168.0.0/16"));
    let node = node_config(&plan);
    assert_eq!(node.cni_plugin, CniPlugin::Calico);
    assert_eq!(node.pod_cidr.to_string(), "192.168.0.0/16");
    let ports: Vec<String> = plan.ports.iter().map(|p| p.to_string()).collect();
    for port in [
        "0.0.0.0:5473:5473/tcp",
        "0.0.0.0:4789:4789/udp",
        "0.0.0.0:51820:51820/udp",
    ] {
        assert!(ports.contains(&port.to_string()), "{ports:?}");
    }
    // --pod-network-cidr must agree with the manifest's pool
    let pooled = calico::tests::SAMPLE.replace(
        "            # - name: CALICO_IPV4POOL_CIDR\n            #   value: \"192.168.0.0/16\"",
        "            - name: CALICO_IPV4POOL_CIDR\n              value: \"10.210.0.0/16\"",
    );
    std::fs::write(&path, &pooled).unwrap();
    let plan = plan_for(&["init"], &env, &facts(), &calico_tags).unwrap();
    assert!(config(&plan).contains("podSubnet: 10.210.0.0/16"));
    let err = plan_for(
        &["init", "--pod-network-cidr", "10.200.0.0/16"],
        &env,
        &facts(),
        &calico_tags,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains(
            "CALICO_IPV4POOL_CIDR 10.210.0.0/16 differs from the pod network 10.200.0.0/16"
        ),
        "{err}"
    );
    // a worker pulls calico's images and publishes its ports; only init applies it
    let worker = plan_for(
        &[
            "join",
            "192.0.2.10:6443",
            "--token",
            "abcdef.0123456789abcdef",
            "--discovery-token-ca-cert-hash",
            "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ],
        &env,
        &facts(),
        &calico_tags,
    )
    .unwrap();
    assert!(
        worker
            .images
            .iter()
            .any(|i| i.pull == "registry.local/calico/node:v3.29.1")
    );
    assert!(
        !worker
            .steps
            .iter()
            .any(|s| matches!(s, Step::ApplyCalico { .. } | Step::ApplyFlannel { .. }))
    );
    assert_eq!(node_config(&worker).cni_plugin, CniPlugin::Calico);
    assert!(
        worker
            .ports
            .iter()
            .any(|p| p.to_string() == "0.0.0.0:4789:4789/udp")
    );
    // an image the registry lacks: refused, naming the file and the image
    calico_tags
        .0
        .remove("registry.local/calico/kube-controllers");
    let err = plan_for(&["init"], &env, &facts(), &calico_tags)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "U7S_CALICO_MANIFEST={shown}: image registry.local/calico/kube-controllers: the registry has no tag v3.29.1"
        )),
        "{err}"
    );
    // the file gone: refused, naming it
    std::fs::remove_file(&path).unwrap();
    let err = plan_for(&["init"], &env, &facts(), &calico_tags)
        .unwrap_err()
        .to_string();
    assert_eq!(err, format!("U7S_CALICO_MANIFEST={shown}: no such file"));
}
