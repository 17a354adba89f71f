//! create-policy on a machine in memory: the server's and a client's changes, the ALT-only
//! steps, re-runs, and that bad input or a failed download changes nothing.

use std::cell::Cell;

use podsec_common::host::fake::{Effect, FakeHost, Node};
use podsec_common::profile::ALT;

use super::*;

const SERVER: &str = "192.0.2.10";

fn args(ip: &[&str]) -> Args {
    Args {
        ip: ip.iter().map(|a| a.to_string()).collect(),
        expect_policy_sha256: None,
        expect_key_fingerprints: Vec::new(),
    }
}

/// A node as a distribution leaves it: /etc/hosts, /etc/containers, /etc/sysctl.d, /var.
fn node() -> FakeHost {
    FakeHost::new()
        .with_dir("/etc/containers", 0o755, (0, 0))
        .with_dir("/etc/sysctl.d", 0o755, (0, 0))
        .with_dir("/var", 0o755, (0, 0))
        .with_file("/etc/hosts", b"127.0.0.1 localhost\n")
}

fn server() -> FakeHost {
    node().with_local_address(SERVER.parse().unwrap())
}

fn no_download(_: IpAddr, _: &Pins) -> Result<TrustBundle, FetchError> {
    panic!("the server downloads nothing")
}

fn text(host: &FakeHost, path: &str) -> String {
    String::from_utf8(host.file(path).unwrap_or_else(|| panic!("{path} missing"))).unwrap()
}

fn dir_mode(host: &FakeHost, path: &str) -> u32 {
    match host.node(path) {
        Some(Node::Dir { mode, owner, .. }) => {
            assert_eq!(owner, (0, 0), "{path} is root's");
            mode
        }
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn the_server_gets_reject_all_and_the_signature_store() {
    let host = server();
    configure(&host, &args(&[SERVER]), no_download).unwrap();

    let hosts = text(&host, "/etc/hosts");
    assert!(hosts.starts_with("127.0.0.1 localhost\n"), "{hosts}");
    for name in ["registry.local", "sigstore.local", "trivy.local"] {
        assert_eq!(hosts::address_of(&hosts, name).as_deref(), Some(SERVER));
    }
    assert_eq!(dir_mode(&host, "/var/sigstore"), 0o755);
    assert_eq!(dir_mode(&host, "/var/sigstore/keys"), 0o755);
    assert_eq!(dir_mode(&host, "/var/sigstore/sigstore"), 0o1755);
    assert!(text(&host, "/var/sigstore/index.html").contains("SigStore works!"));
    let policy = Policy::from_json(&text(&host, "/etc/containers/policy.json")).unwrap();
    assert_eq!(policy, Policy::reject_all());
    let registries_d = text(&host, "/etc/containers/registries.d/default.yaml");
    assert!(
        registries_d.contains("lookaside: http://sigstore.local:81/sigstore/"),
        "{registries_d}"
    );
    let conf = text(&host, "/etc/containers/registries.conf");
    assert!(conf.contains("registry.local"), "{conf}");
    let effects = host.effects();
    assert_eq!(
        &effects[..2],
        [
            Effect::AddGroup {
                name: GROUP_PODMAN.into(),
                system: true
            },
            Effect::AddGroup {
                name: GROUP_PODMAN_DEV.into(),
                system: true
            }
        ]
    );
    // Debian: no control(8), no userns knob.
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Run { .. } | Effect::Sysctl { .. })),
        "{effects:?}"
    );
}

#[test]
fn a_rerun_on_the_server_changes_no_file() {
    let host = server();
    configure(&host, &args(&[SERVER]), no_download).unwrap();
    let before = host.effects().len();
    let tree = host.tree();
    configure(&host, &args(&[SERVER]), no_download).unwrap();
    let again = &host.effects()[before..];
    assert!(
        !again.iter().any(|e| matches!(
            e,
            Effect::Install { .. } | Effect::MakeDir { .. } | Effect::AddGroup { .. }
        )),
        "{again:?}"
    );
    assert_eq!(host.tree(), tree);
}

#[test]
fn the_server_keeps_a_policy_that_already_rejects_by_default() {
    let mut makers = Policy::reject_all();
    *makers.docker_scope_mut("registry.local") = vec![Requirement::insecure_accept_anything()];
    let kept = makers.to_json();
    let host = server().with_file("/etc/containers/policy.json", kept.as_bytes());
    configure(&host, &args(&[SERVER]), no_download).unwrap();
    assert_eq!(text(&host, "/etc/containers/policy.json"), kept);
}

#[test]
fn on_alt_podman_users_alone_map_ids_and_user_namespaces_are_enabled() {
    let host = server()
        .with_profile(&ALT)
        .with_dir("/usr/sbin", 0o755, (0, 0))
        .with_file("/usr/sbin/control", b"")
        .with_sysctl("kernel.unprivileged_userns_clone", "0");
    configure(&host, &args(&[SERVER]), no_download).unwrap();
    let effects = host.effects();
    for tool in ["newgidmap", "newuidmap"] {
        assert!(
            effects.contains(&Effect::Run {
                program: "/usr/sbin/control".into(),
                args: vec![tool.into(), "podmanonly".into()]
            }),
            "{tool}: {effects:?}"
        );
    }
    assert_eq!(
        text(&host, SYSCTL_DROP_IN).lines().last(),
        Some("kernel.unprivileged_userns_clone=1")
    );
    // The drop-in first, so that a reboot keeps what the running kernel got.
    let drop_in = effects
        .iter()
        .position(
            |e| matches!(e, Effect::WriteFile { path, .. } if path == Path::new(SYSCTL_DROP_IN)),
        )
        .expect("drop-in written");
    let live = effects
        .iter()
        .position(|e| matches!(e, Effect::Sysctl { .. }))
        .expect("knob set");
    assert!(drop_in < live);
    assert_eq!(
        host.sysctl("kernel.unprivileged_userns_clone").as_deref(),
        Some("1")
    );
}

#[test]
fn a_failed_sysctl_drop_in_is_an_error_naming_it() {
    let host = server()
        .with_profile(&ALT)
        .with_sysctl("kernel.unprivileged_userns_clone", "0");
    host.fail_at(SYSCTL_DROP_IN);
    let err = configure(&host, &args(&[SERVER]), no_download).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "cannot enable kernel.unprivileged_userns_clone: /etc/sysctl.d/99-podman.conf: "
        ),
        "{err}"
    );
    assert_eq!(err.exit_code(), 1);
    assert_eq!(
        host.sysctl("kernel.unprivileged_userns_clone").as_deref(),
        Some("0"),
        "the running kernel is not changed without the drop-in"
    );
}

#[test]
fn a_client_installs_the_downloaded_keys_and_policy() {
    let host = node();
    let asked = Cell::new(None);
    let policy = Policy::reject_all().to_json();
    let bundle = TrustBundle {
        keys: [("alice.pgp".to_string(), b"key".to_vec())].into(),
        policy_text: policy.clone(),
        pins: fetch::TrustPins {
            policy_sha256: "00".into(),
            key_fingerprints: vec!["AA".into()],
        },
    };
    configure(&host, &args(&[SERVER]), |address, _| {
        asked.set(Some(address));
        Ok(bundle)
    })
    .unwrap();
    assert_eq!(asked.get(), Some(SERVER.parse().unwrap()));
    assert_eq!(host.file("/var/sigstore/keys/alice.pgp").unwrap(), b"key");
    assert_eq!(text(&host, "/etc/containers/policy.json"), policy);
    assert!(
        host.node("/var/sigstore/sigstore").is_none(),
        "a client has no signature store"
    );
}

#[test]
fn bad_input_or_a_failed_download_changes_nothing() {
    let failing =
        |_: IpAddr, _: &Pins| -> Result<TrustBundle, FetchError> { Err(FetchError::NoPolicy) };
    for ip in [&["999.1.1.1"][..], &["127.0.0.1"], &[SERVER, SERVER]] {
        let host = server();
        assert!(configure(&host, &args(ip), failing).is_err(), "{ip:?}");
        assert_eq!(host.effects(), [], "{ip:?}");
    }
    // A client whose download fails.
    let host = node();
    let err = configure(&host, &args(&[SERVER]), failing).unwrap_err();
    assert!(matches!(err, Error::Fetch(FetchError::NoPolicy)), "{err}");
    assert_eq!(host.effects(), []);
    // A conflicting binding in /etc/hosts.
    let host = server().with_file("/etc/hosts", b"198.51.100.1 registry.local\n");
    let err = configure(&host, &args(&[SERVER]), no_download).unwrap_err();
    assert!(matches!(err, Error::Hosts(_)), "{err}");
    assert_eq!(host.effects(), []);
}

#[test]
fn addresses_are_validated_strictly() {
    for bad in [
        "a.b.c.d",
        "999.1.1.1",
        "1..2.3",
        "1.2.3.4 5",
        "1.2.3",
        "",
        "localhost",
    ] {
        assert!(
            matches!(parse_address(bad), Err(Error::InvalidAddress(_))),
            "{bad}"
        );
    }
    for unusable in ["127.0.0.1", "127.1.2.3", "0.0.0.0", "::1", "224.0.0.1"] {
        assert!(
            matches!(parse_address(unusable), Err(Error::NotUsable(_))),
            "{unusable}"
        );
    }
    assert!(parse_address("192.0.2.10").is_ok());
    assert_eq!(Error::InvalidAddress("x".into()).exit_code(), 2);
}
