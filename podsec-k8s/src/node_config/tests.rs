//! node.toml parsed, validated, written and read back, with the example every test of the crate starts from (EXAMPLE, example_with).

use super::*;
use std::os::unix::fs::MetadataExt;

pub(crate) const EXAMPLE: &str = r#"
role = "init-master"
kubernetes-version = "v1.33.13"
uid = 990
registry = "registry.local"
platform = "c10f"
pause-image = "registry.local/c10f/pause:3.10"
external-ip = "192.0.2.10"
advertise-address = "192.0.2.10"
bind-port = 6443
service-cidr = "10.96.0.0/12"
pod-cidr = "10.244.0.0/16"
cni-plugin = "flannel"
"#;

pub(crate) fn example() -> NodeConfig {
    NodeConfig::from_toml(EXAMPLE, Path::new("test")).unwrap()
}

/// [`EXAMPLE`] with some keys set to other TOML values (added when it has no such key), for
/// the other modules' tests.
pub(crate) fn example_with(changes: &[(&str, &str)]) -> NodeConfig {
    let mut text = EXAMPLE.to_string();
    for (key, value) in changes {
        let line = format!("{key} = {value}\n");
        match text.lines().find(|l| l.starts_with(&format!("{key} = "))) {
            Some(old) => text = text.replace(&format!("{old}\n"), &line),
            None => text.push_str(&line),
        }
    }
    NodeConfig::from_toml(&text, Path::new("test")).unwrap()
}

fn with(replace: &str, by: &str) -> Result<NodeConfig, NodeConfigError> {
    assert!(EXAMPLE.contains(replace), "{replace}");
    NodeConfig::from_toml(&EXAMPLE.replace(replace, by), Path::new("test"))
}

fn invalid_key(result: Result<NodeConfig, NodeConfigError>) -> &'static str {
    match result {
        Err(NodeConfigError::Invalid { key, .. }) => key,
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

#[test]
fn the_example_parses_with_defaults_and_round_trips() {
    let config = example();
    assert_eq!(config.role, Role::InitMaster);
    assert_eq!(config.slirp_cidr, DEFAULT_SLIRP_CIDR);
    assert_eq!(config.image_repository(), "registry.local/c10f");
    assert_eq!(config.slirp_guest_address(), Ipv4Addr::new(10, 0, 2, 100));
    let text = config.to_toml().unwrap();
    assert_eq!(
        NodeConfig::from_toml(&text, Path::new("again")).unwrap(),
        config
    );
}

#[test]
fn unknown_and_missing_keys_are_refused() {
    let unknown = format!("{EXAMPLE}U7S_EXTRA = \"$(reboot)\"\n");
    let err = NodeConfig::from_toml(&unknown, Path::new("n.toml")).unwrap_err();
    assert!(
        matches!(&err, NodeConfigError::Parse { message, .. } if message.contains("U7S_EXTRA")),
        "{err}"
    );
    let missing = EXAMPLE.replace("bind-port = 6443\n", "");
    let err = NodeConfig::from_toml(&missing, Path::new("n.toml")).unwrap_err();
    assert!(err.to_string().contains("bind-port"), "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn values_are_typed_not_shell_words() {
    // What upstream's env file would have executed is a parse error here.
    let err = with(
        "\"192.0.2.10\"\nadvertise",
        "\"192.0.2.10; reboot\"\nadvertise",
    )
    .unwrap_err()
    .to_string();
    eprintln!("{err}");
    assert!(err.contains("external-ip") && !err.contains('\n'), "{err}");
    assert!(with("\"v1.33.13\"", "\"1.33.13\"").is_err());
    assert!(with("\"10.96.0.0/12\"", "\"10.96.0.1/12\"").is_err());
    assert!(with("\"init-master\"", "\"master\"").is_err());
    assert!(with("6443", "70000").is_err());
    assert_eq!(
        invalid_key(with("\"registry.local\"", "\"http://registry.local\"")),
        "registry"
    );
    assert_eq!(invalid_key(with("\"c10f\"", "\"c10f/../x\"")), "platform");
    assert_eq!(invalid_key(with("pause:3.10", "pause:")), "pause-image");
    assert_eq!(invalid_key(with("uid = 990", "uid = 0")), "uid");
}

#[test]
fn versions_order_numerically() {
    let v = |s: &str| s.parse::<KubeVersion>().unwrap();
    assert!(v("v1.26.9") < v("v1.26.11"));
    assert!(v("v1.9.0") < v("v1.26.0"));
    assert_eq!(v("v1.33.13").to_string(), "v1.33.13");
    assert_eq!(v("v1.33.13").without_v(), "1.33.13");
    for bad in [
        "1.33.13",
        "v1.33",
        "v1.33.013",
        "v1.33.x",
        "v1.33.13-rc.1",
        "",
    ] {
        assert!(bad.parse::<KubeVersion>().is_err(), "{bad}");
    }
    assert_eq!(
        invalid_key(with("v1.33.13", "v1.25.16")),
        "kubernetes-version"
    );
}

#[test]
fn networks_must_not_overlap() {
    // Upstream gave slirp4netns the Service CIDR itself (defect 16).
    let slirp_is_service = format!("{EXAMPLE}slirp-cidr = \"10.96.0.0/12\"\n");
    let err = NodeConfig::from_toml(&slirp_is_service, Path::new("t")).unwrap_err();
    assert!(err.to_string().contains("overlaps"), "{err}");
    assert_eq!(
        invalid_key(with("\"10.244.0.0/16\"", "\"10.96.0.0/16\"")),
        "service-cidr"
    );
    assert_eq!(
        invalid_key(with(
            "external-ip = \"192.0.2.10\"",
            "external-ip = \"10.0.2.100\""
        )),
        "external-ip"
    );
    let config = example();
    let lan = vec![("eth0".to_string(), "10.0.0.0/8".parse().unwrap())];
    assert!(config.check_host_networks(&lan).is_err());
    let other = vec![("eth0".to_string(), "192.0.2.0/24".parse().unwrap())];
    config.check_host_networks(&other).unwrap();
}

#[test]
fn cidr_arithmetic() {
    let net: Ipv4Cidr = "10.96.0.0/12".parse().unwrap();
    assert!(net.contains(Ipv4Addr::new(10, 111, 255, 255)));
    assert!(!net.contains(Ipv4Addr::new(10, 112, 0, 0)));
    assert_eq!(net.host(10), Some(Ipv4Addr::new(10, 96, 0, 10)));
    assert!(
        matches!("10.96.0.1/12".parse::<Ipv4Cidr>(), Err(CidrError::HostBits { network, .. }) if network == "10.96.0.0/12")
    );
    assert!("10.96.0.0/33".parse::<Ipv4Cidr>().is_err());
    assert!(
        "0.0.0.0/0"
            .parse::<Ipv4Cidr>()
            .unwrap()
            .contains(Ipv4Addr::new(1, 2, 3, 4))
    );
}

#[test]
fn the_bind_port_must_not_collide() {
    assert_eq!(
        invalid_key(with("bind-port = 6443", "bind-port = 10250")),
        "bind-port"
    );
    let twice = format!(
        "{EXAMPLE}extra-ports = [\"0.0.0.0:31000:31000/tcp\", \"0.0.0.0:31000:31001/tcp\"]\n"
    );
    assert_eq!(
        invalid_key(NodeConfig::from_toml(&twice, Path::new("t"))),
        "extra-ports"
    );
}

#[test]
fn load_refuses_untrusted_files_and_save_writes_root_owned_0644() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u7s/node.toml");
    let config = example();
    config.save(&path).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o644);
    assert_eq!(meta.uid(), 0);
    assert_eq!(NodeConfig::load(&path).unwrap(), config);

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(matches!(
        NodeConfig::load(&path),
        Err(NodeConfigError::Untrusted { .. })
    ));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

    std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
    let err = NodeConfig::load(&path).unwrap_err();
    assert!(err.to_string().contains("uid 4242"), "{err}");
    std::os::unix::fs::chown(&path, Some(0), None).unwrap();

    let link = dir.path().join("u7s/link.toml");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(matches!(
        NodeConfig::load(&link),
        Err(NodeConfigError::Untrusted { .. })
    ));

    // A directory the service account could write: refused although the file is root's.
    std::os::unix::fs::chown(dir.path().join("u7s"), Some(4242), None).unwrap();
    let err = NodeConfig::load(&path).unwrap_err();
    assert!(err.to_string().contains("owned by uid 4242"), "{err}");
    assert!(config.save(&path).is_err());
}
