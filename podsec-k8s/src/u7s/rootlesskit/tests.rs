//! The argv, the seeding of CNI files and the readiness check, without namespaces.

use super::parent::*;
use super::*;

fn config() -> NodeConfig {
    crate::node_config::tests::example_with(&[
        ("advertise-address", r#""192.0.2.11""#),
        ("bind-port", "16443"),
        ("extra-ports", r#"["0.0.0.0:31000:31000/tcp"]"#),
    ])
}

fn words(argv: &[OsString]) -> Vec<String> {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn the_command_line_has_every_upstream_flag_and_the_fixes() {
    let config = config();
    let paths = U7sPaths::new(990, "/var/lib/u7s-admin");
    let child = child_argv(&config, &paths, Path::new("/usr/bin/podsec-k8s"));
    let argv = words(&rootlesskit_argv(
        &config,
        &paths,
        &HostFacts::default(),
        &child,
    ));
    let expected_head = [
        "/usr/bin/rootlesskit",
        "--state-dir=/run/user/990/usernetes/rootlesskit",
        "--net=slirp4netns",
        "--mtu=65520",
        // Not the Service CIDR (upstream defect 16).
        "--cidr=10.0.2.0/24",
        "--disable-host-loopback",
        "--slirp4netns-sandbox=true",
        "--slirp4netns-seccomp=true",
        "--port-driver=builtin",
        "--copy-up=/etc",
        "--copy-up=/run",
        "--copy-up=/var/lib",
        "--copy-up=/opt",
        "--copy-up=/usr/libexec",
        "--cgroupns",
        "--pidns",
        "--ipcns",
        "--utsns",
        "--propagation=rslave",
        "--publish=0.0.0.0:2379:2379/tcp",
        "--publish=0.0.0.0:2380:2380/tcp",
        // The configured bind port (upstream defect 11).
        "--publish=0.0.0.0:16443:16443/tcp",
        "--publish=0.0.0.0:10250:10250/tcp",
        "--publish=0.0.0.0:10256:10256/tcp",
        "--publish=0.0.0.0:8472:8472/udp",
        "--publish=0.0.0.0:6053:53/udp",
        "--publish=0.0.0.0:31000:31000/tcp",
    ];
    assert_eq!(&argv[..expected_head.len()], expected_head);
    assert_eq!(
        &argv[expected_head.len()..],
        [
            "/usr/bin/podsec-k8s",
            "u7s-rootlesskit",
            "--child",
            "--uid",
            "990",
            "--home",
            "/var/lib/u7s-admin",
            "--address",
            "192.0.2.10",
            "--address",
            "192.0.2.11",
            "--",
            "/usr/bin/crio",
            "--config",
            "/var/lib/u7s-admin/.config/usernetes/crio/crio.conf"
        ]
    );
    let facts = HostFacts {
        present: vec!["/var/lib/crio".into()],
        cgroup2: true,
    };
    let argv = words(&rootlesskit_argv(&config, &paths, &facts, &child));
    assert!(argv.contains(&"--copy-up=/var/lib/crio".to_string()));
    assert!(argv.contains(&"--evacuate-cgroup2=rootlesskit_evac".to_string()));
}

#[test]
fn the_child_arguments_parse_back() {
    let config = config();
    let paths = U7sPaths::new(990, "/var/lib/u7s-admin");
    let mut argv = child_argv(&config, &paths, Path::new("/usr/bin/podsec-k8s"));
    argv.remove(0);
    let args = Args::try_parse_from(argv).unwrap();
    assert!(args.child);
    assert_eq!(args.uid, Some(990));
    assert_eq!(args.addresses.len(), 2);
    assert_eq!(args.command[0], "/usr/bin/crio");
}

#[test]
fn seeding_copies_package_files_and_keeps_what_pods_wrote() {
    let source = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("bridge"), b"plugin v1").unwrap();
    std::fs::write(target.path().join("flannel"), b"written by a pod").unwrap();
    seed(source.path(), target.path(), 0o755).unwrap();
    assert_eq!(
        std::fs::read(target.path().join("bridge")).unwrap(),
        b"plugin v1"
    );
    assert_eq!(
        std::fs::read(target.path().join("flannel")).unwrap(),
        b"written by a pod"
    );
    // A changed package file replaces the copy; the source is never written.
    std::fs::write(source.path().join("bridge"), b"plugin v2!").unwrap();
    seed(source.path(), target.path(), 0o755).unwrap();
    assert_eq!(
        std::fs::read(target.path().join("bridge")).unwrap(),
        b"plugin v2!"
    );
    seed(Path::new("/nonexistent/podsec"), target.path(), 0o755).unwrap();
}

#[test]
fn only_the_nodes_own_network_configuration_reaches_the_namespace() {
    let source = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    for name in ["10-flannel.conflist", "87-podman-bridge.conflist"] {
        std::fs::write(source.path().join(name), name).unwrap();
    }
    // Copied there by an older release, and a lock file of the CNI library.
    std::fs::write(target.path().join("87-podman-bridge.conflist"), "old").unwrap();
    std::fs::write(target.path().join("99-loopback.conf"), "old").unwrap();
    std::fs::write(target.path().join("cni.lock"), "").unwrap();
    seed_cni_configs(source.path(), target.path(), CniPlugin::Flannel).unwrap();
    let names = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(target.path()), ["10-flannel.conflist", "cni.lock"]);
    // calico: nothing of the host's is seeded (flannel's of an earlier deployment neither),
    // what calico's install-cni wrote inside stays
    let target = tempfile::tempdir().unwrap();
    std::fs::write(target.path().join("10-calico.conflist"), "calico").unwrap();
    std::fs::write(target.path().join("calico-kubeconfig"), "calico").unwrap();
    std::fs::write(target.path().join("99-loopback.conf"), "old").unwrap();
    seed_cni_configs(source.path(), target.path(), CniPlugin::Calico).unwrap();
    assert_eq!(
        names(target.path()),
        ["10-calico.conflist", "calico-kubeconfig"]
    );
}
