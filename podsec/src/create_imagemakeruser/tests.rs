//! create-imagemakeruser: argument forms and policy rules, then whole runs on a machine in
//! memory whose gpg is a stand-in that answers as gpg does (the real gpg runs in the sandbox
//! tests): accounts, keys, the store's permissions, the published policy, and refusals that
//! change nothing.

use std::cell::Cell;
use std::rc::Rc;

use podsec_common::host::fake::{Effect, FakeHost, Node};

use super::*;

const SERVER: &str = "192.0.2.10";
const FINGERPRINT: &str = "0123456789ABCDEF0123456789ABCDEF01234567";
const PUBLIC: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nstand-in\n";

/// The signature server after create-policy and create-services, with a gpg stand-in that
/// generates one key (counted in `generated`).
fn server(generated: Rc<Cell<u32>>) -> FakeHost {
    FakeHost::new()
        .with_local_address(SERVER.parse().unwrap())
        .with_file(
            "/etc/hosts",
            format!("{SERVER} registry.local sigstore.local trivy.local\n").as_bytes(),
        )
        .with_dir("/etc/containers", 0o755, (0, 0))
        .with_file(
            "/etc/containers/policy.json",
            Policy::reject_all().to_json().as_bytes(),
        )
        .with_dir("/var/sigstore/keys", 0o755, (0, 0))
        .with_dir("/var/sigstore/sigstore", 0o1755, (0, 0))
        .with_dir("/home", 0o755, (0, 0))
        .with_group(GROUP_PODMAN, 900)
        .with_group(GROUP_PODMAN_DEV, 901)
        .with_programs(move |program, args, _| {
            assert_eq!(program, "gpg");
            if args.contains(&"--list-secret-keys") {
                match generated.get() {
                    0 => Err("gpg: error reading key: No secret key".into()),
                    _ => Ok(format!(
                        "sec:u:3072:1:AAAA:1:::u:::scESC:\nfpr:::::::::{FINGERPRINT}:\n"
                    )),
                }
            } else if args.contains(&"--quick-gen-key") {
                generated.set(generated.get() + 1);
                Ok(String::new())
            } else if args.contains(&"--export") {
                Ok(PUBLIC.into())
            } else {
                Err(format!("unexpected gpg {args:?}"))
            }
        })
}

fn batch(users: &[&str], emails: &[&str]) -> Args {
    Args {
        users: users.iter().map(|u| u.to_string()).collect(),
        batch: true,
        email: emails.iter().map(|e| e.to_string()).collect(),
        passphrase_file: None,
        password_stdin: false,
    }
}

fn text(host: &FakeHost, path: &str) -> String {
    String::from_utf8(host.file(path).unwrap_or_else(|| panic!("{path} missing"))).unwrap()
}

fn dir(host: &FakeHost, path: &str) -> (u32, (u32, u32)) {
    match host.node(path) {
        Some(Node::Dir { mode, owner, .. }) => (mode, owner),
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn a_maker_of_the_whole_registry_gets_a_key_a_rule_and_the_top_of_the_store() {
    let generated = Rc::new(Cell::new(0));
    let host = server(generated.clone());
    create(
        &host,
        &batch(&["imagemaker"], &["im@example.org"]),
        &b""[..],
    )
    .unwrap();

    let maker = host.account("imagemaker").expect("account made");
    assert_eq!(
        host.groups_of("imagemaker"),
        [GROUP_PODMAN, GROUP_PODMAN_DEV]
    );
    assert_eq!(generated.get(), 1);
    assert!(
        host.effects().contains(&Effect::RunAs {
            user: "imagemaker".into(),
            program: "gpg".into(),
            args: [
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase-fd",
                "0",
                "--quick-gen-key",
                "imagemaker <im@example.org>",
                "rsa3072",
                "sign",
                "never"
            ]
            .map(String::from)
            .to_vec()
        })
    );
    assert_eq!(text(&host, "/var/sigstore/keys/imagemaker.pgp"), PUBLIC);
    let policy = Policy::from_json(&text(&host, "/etc/containers/policy.json")).unwrap();
    assert_eq!(
        policy
            .docker_requirements(
                &podsec_common::image_ref::ImageRef::parse("registry.local/x").unwrap()
            )
            .1,
        [Requirement::SignedBy(SignedBy::gpg_key_path(
            "/var/sigstore/keys/imagemaker.pgp"
        ))]
    );
    // What clients download is the system policy itself.
    assert_eq!(
        text(&host, "/var/sigstore/keys/policy.json"),
        text(&host, "/etc/containers/policy.json")
    );
    // The top of the store: root's, with an ACL entry for the maker.
    assert_eq!(dir(&host, "/var/sigstore/sigstore"), (0o1775, (0, 0)));
    assert!(host.effects().contains(&Effect::SetAcl {
        path: "/var/sigstore/sigstore".into()
    }));
    // The maker's own configuration: default accept, the local store as staging.
    let ids = (maker.uid, maker.gid);
    let own = format!("{}/.config/containers", maker.home.display());
    assert_eq!(dir(&host, &own), (0o755, ids));
    let own_policy = Policy::from_json(&text(&host, &format!("{own}/policy.json"))).unwrap();
    assert_eq!(
        own_policy.default,
        [Requirement::insecure_accept_anything()]
    );
    assert!(
        text(&host, &format!("{own}/registries.d/default.yaml"))
            .contains("lookaside-staging: file:///var/sigstore/sigstore/")
    );
}

#[test]
fn a_maker_of_a_path_gets_its_own_directory_and_no_acl() {
    let host = server(Rc::new(Cell::new(0)));
    create(
        &host,
        &batch(&["a@registry.local/c10f"], &["a@example.org"]),
        &b""[..],
    )
    .unwrap();
    let maker = host.account("a").unwrap();
    assert_eq!(
        dir(&host, "/var/sigstore/sigstore/c10f"),
        (0o755, (maker.uid, 901))
    );
    assert_eq!(dir(&host, "/var/sigstore/sigstore"), (0o1755, (0, 0)));
    assert!(
        !host
            .effects()
            .iter()
            .any(|e| matches!(e, Effect::SetAcl { .. })),
    );
}

#[test]
fn a_rerun_reuses_the_account_and_the_key() {
    let generated = Rc::new(Cell::new(0));
    let host = server(generated.clone());
    let args = batch(&["imagemaker"], &["im@example.org"]);
    create(&host, &args, &b""[..]).unwrap();
    let tree = host.tree();
    let before = host.effects().len();
    create(&host, &args, &b""[..]).unwrap();
    assert_eq!(generated.get(), 1, "no second key");
    assert_eq!(host.tree(), tree);
    assert!(
        !host.effects()[before..]
            .iter()
            .any(|e| matches!(e, Effect::AddUser { .. } | Effect::Install { .. })),
    );
}

#[test]
fn a_failed_key_generation_leaves_the_policy_untouched() {
    let host = server(Rc::new(Cell::new(0))).with_programs(|_, args, _| {
        if args.contains(&"--quick-gen-key") {
            Err("gpg: agent_genkey failed: No pinentry".into())
        } else {
            Err("gpg: error reading key: No secret key".into())
        }
    });
    let before = text(&host, "/etc/containers/policy.json");
    let err = create(
        &host,
        &batch(&["imagemaker"], &["im@example.org"]),
        &b""[..],
    )
    .unwrap_err();
    assert!(err.to_string().contains("No pinentry"), "{err}");
    assert_eq!(text(&host, "/etc/containers/policy.json"), before);
    assert!(host.file("/var/sigstore/keys/imagemaker.pgp").is_none());
}

#[test]
fn refusals_change_nothing() {
    let fresh = || server(Rc::new(Cell::new(0)));
    let mut empty_passphrase = batch(&["imagemaker"], &["im@example.org"]);
    empty_passphrase.passphrase_file = Some("/root/passphrase".into());
    let cases: Vec<(&str, FakeHost, Args)> = vec![
        (
            "a scope directory of another account",
            fresh().with_dir("/var/sigstore/sigstore/c10f", 0o755, (4242, 4242)),
            batch(&["a@registry.local/c10f"], &["a@example.org"]),
        ),
        (
            "a whole registry without ACLs",
            fresh().without_acls(),
            batch(&["imagemaker"], &["im@example.org"]),
        ),
        (
            "registry.local bound to another host",
            fresh().with_file("/etc/hosts", b"198.51.100.1 registry.local\n"),
            batch(&["imagemaker"], &["im@example.org"]),
        ),
        (
            "--batch without an e-mail",
            fresh(),
            batch(&["imagemaker"], &[]),
        ),
        (
            "a scope that trusts another key",
            fresh().with_file(
                "/etc/containers/policy.json",
                add_rules(
                    Policy::reject_all(),
                    &parse_makers(&["other".into()]).unwrap(),
                )
                .unwrap()
                .to_json()
                .as_bytes(),
            ),
            batch(&["imagemaker"], &["im@example.org"]),
        ),
        (
            "an empty passphrase",
            fresh()
                .with_dir("/root", 0o700, (0, 0))
                .with_file("/root/passphrase", b"\n"),
            empty_passphrase,
        ),
    ];
    for (case, host, args) in cases {
        let tree = host.tree();
        assert!(create(&host, &args, &b""[..]).is_err(), "{case}");
        assert_eq!(host.effects(), [], "{case}");
        assert_eq!(host.tree(), tree, "{case}");
    }
}

#[test]
fn argument_forms_of_upstream() {
    assert_eq!(parse_makers(&[]).unwrap()[0].scope, "registry.local");
    assert_eq!(parse_makers(&["im".into()]).unwrap()[0].user, "im");
    let two = parse_makers(&["a@registry.local/c10f".into(), "b@registry.local".into()]).unwrap();
    assert_eq!(two[0].namespace.as_deref(), Some("c10f"));
    assert!(matches!(
        parse_makers(&["a".into(), "b@registry.local".into()]),
        Err(Error::Format(_))
    ));
    assert!(matches!(
        parse_makers(&["a@registry.local".into(), "b@registry.local".into()]),
        Err(Error::DuplicateScope(_))
    ));
    assert!(
        parse_makers(&[
            "a\"; rm -rf /@registry.local".into(),
            "b@registry.local".into()
        ])
        .is_err()
    );
    assert!(matches!(
        parse_makers(&["a@registry.local/\"x\"".into(), "b@r.local".into()]),
        Err(Error::Scope(..))
    ));
}

#[test]
fn another_makers_scope_is_never_replaced() {
    let makers =
        parse_makers(&["a@registry.local/c10f".into(), "b@registry.local".into()]).unwrap();
    let policy = add_rules(Policy::reject_all(), &makers).unwrap();
    // Same run again: idempotent.
    assert_eq!(add_rules(policy.clone(), &makers).unwrap(), policy);
    let intruder =
        parse_makers(&["c@registry.local/c10f".into(), "d@registry.local/x".into()]).unwrap();
    assert!(matches!(
        add_rules(policy, &intruder),
        Err(Error::ScopeTaken { .. })
    ));
}
