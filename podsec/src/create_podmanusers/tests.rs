//! create-podmanusers on a machine in memory: what it changes, in which order, and that bad
//! input changes nothing.

use std::path::Path;

use podsec_common::host::fake::{Effect, FakeHost, Node};

use super::*;

fn args(users: &[&str]) -> Args {
    Args {
        users: users.iter().map(|u| u.to_string()).collect(),
        batch: true,
        password_stdin: false,
    }
}

fn create_on(host: &FakeHost, args: &Args, stdin: &str) -> Result<ExitCode, Error> {
    create(host, args, stdin.as_bytes())
}

fn dir(host: &FakeHost, path: &str) -> (u32, (u32, u32), bool) {
    match host.node(path) {
        Some(Node::Dir {
            mode,
            owner,
            immutable,
            ..
        }) => (mode, owner, immutable),
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn a_new_user_gets_a_root_owned_immutable_configuration() {
    let host = FakeHost::new().with_dir("/home", 0o755, (0, 0));
    create_on(&host, &args(&["alice"]), "").unwrap();

    let alice = host.account("alice").expect("account made");
    assert_eq!(host.groups_of("alice"), ["podman"]);
    let ids = (alice.uid, alice.gid);
    assert_eq!(dir(&host, "/home/alice/.config"), (0o755, ids, false));
    assert_eq!(
        dir(&host, "/home/alice/.config/containers"),
        (0o755, (0, 0), true)
    );
    let conf = host
        .file("/home/alice/.config/containers/storage.conf")
        .unwrap();
    assert_eq!(String::from_utf8(conf).unwrap(), storage_conf("overlay"));
    // The attribute comes last: everything inside was written before it was set.
    let effects = host.effects();
    assert_eq!(
        effects.first(),
        Some(&Effect::AddGroup {
            name: "podman".into(),
            system: true
        })
    );
    assert_eq!(
        effects.last(),
        Some(&Effect::SetImmutable {
            path: "/home/alice/.config/containers".into(),
            immutable: true
        })
    );
    assert!(host.password("alice").is_none(), "--batch sets no password");
}

#[test]
fn a_rerun_lifts_the_attribute_rewrites_and_sets_it_again() {
    let host = FakeHost::new().with_dir("/home", 0o755, (0, 0));
    create_on(&host, &args(&["alice"]), "").unwrap();
    let before = host.effects().len();
    let conf = Path::new("/home/alice/.config/containers/storage.conf");
    let first = host.node(conf);

    create_on(&host, &args(&["alice"]), "").unwrap();
    let again: Vec<Effect> = host.effects()[before..].to_vec();
    assert!(
        !again
            .iter()
            .any(|e| matches!(e, Effect::AddUser { .. } | Effect::MakeDir { .. })),
        "{again:?}"
    );
    assert_eq!(
        again.first(),
        Some(&Effect::AddToGroups {
            name: "alice".into(),
            groups: vec!["podman".into()]
        })
    );
    assert_eq!(
        again.last(),
        Some(&Effect::SetImmutable {
            path: "/home/alice/.config/containers".into(),
            immutable: true
        })
    );
    assert_eq!(host.node(conf), first);
}

#[test]
fn a_users_own_configuration_is_set_aside_not_kept_in_force() {
    let host = FakeHost::new()
        .with_user("bob", 1500)
        .with_dir("/home/bob/.config/containers", 0o755, (1500, 1500))
        .with_file("/home/bob/.config/containers/policy.json", b"{}")
        .with_file("/home/bob/.config/containers/storage.conf", b"mine");
    create_on(&host, &args(&["bob"]), "").unwrap();

    assert_eq!(host.groups_of("bob"), ["bob", "podman"]);
    assert_eq!(
        host.children("/home/bob/.config/containers"),
        ["storage.conf"]
    );
    let saved: Vec<String> = host
        .children("/home/bob/.config")
        .into_iter()
        .filter(|n| n.starts_with("containers.podsec-saved."))
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let saved = format!("/home/bob/.config/{}", saved[0]);
    assert_eq!(host.file(format!("{saved}/policy.json")).unwrap(), b"{}");
    // Root's while it filled, then the user's.
    assert_eq!(dir(&host, &saved), (0o700, (1500, 1500), false));
    assert_eq!(
        dir(&host, "/home/bob/.config/containers"),
        (0o755, (0, 0), true)
    );
    assert_eq!(
        host.file("/home/bob/.config/containers/storage.conf")
            .unwrap(),
        storage_conf("overlay").as_bytes()
    );
}

#[test]
fn homes_on_overlayfs_get_vfs_and_no_attributes_is_not_fatal() {
    let host = FakeHost::new()
        .with_dir("/home", 0o755, (0, 0))
        .on_overlayfs()
        .without_attributes();
    create_on(&host, &args(&["carol"]), "").unwrap();
    assert_eq!(
        host.file("/home/carol/.config/containers/storage.conf")
            .unwrap(),
        storage_conf("vfs").as_bytes()
    );
    assert_eq!(
        dir(&host, "/home/carol/.config/containers"),
        (0o755, (0, 0), false)
    );
}

#[test]
fn the_password_from_stdin_goes_to_every_account() {
    let host = FakeHost::new().with_dir("/home", 0o755, (0, 0));
    let mut args = args(&["dave", "erin"]);
    args.password_stdin = true;
    create_on(&host, &args, "s3cret\nignored\n").unwrap();
    assert_eq!(host.password("dave").as_deref(), Some("s3cret"));
    assert_eq!(host.password("erin").as_deref(), Some("s3cret"));
}

#[test]
fn interactive_runs_ask_passwd_and_its_failure_is_an_error() {
    let host = FakeHost::new()
        .with_dir("/home", 0o755, (0, 0))
        .with_programs(|program, _, _| match program {
            "passwd" => Err("Authentication token manipulation error".into()),
            _ => Ok(String::new()),
        });
    let mut args = args(&["frank"]);
    args.batch = false;
    let err = create_on(&host, &args, "").unwrap_err();
    assert!(
        matches!(err, Error::Password { ref user, .. } if user == "frank"),
        "{err}"
    );
    assert!(host.effects().contains(&Effect::Run {
        program: "passwd".into(),
        args: vec!["--".into(), "frank".into()]
    }));
}

#[test]
fn bad_input_changes_nothing() {
    let cases: [(&[&str], bool, &str); 4] = [
        (&["alice", "Bad Name"], false, ""),
        (&["alice", "alice"], false, ""),
        (&["alice"], true, "\n"),
        (&["alice"], true, "with:colon\n"),
    ];
    for (users, password_stdin, stdin) in cases {
        let host = FakeHost::new().with_dir("/home", 0o755, (0, 0));
        let mut args = args(users);
        args.password_stdin = password_stdin;
        let err = create_on(&host, &args, stdin).unwrap_err();
        assert_eq!(host.effects(), [], "{users:?} {stdin:?}: {err}");
        assert!(host.account("alice").is_none());
    }
}

#[test]
fn a_failed_write_leaves_the_configuration_directory_root_owned() {
    let host = FakeHost::new().with_dir("/home", 0o755, (0, 0));
    host.fail_at("/home/alice/.config/containers/storage.conf");
    let err = create_on(&host, &args(&["alice"]), "").unwrap_err();
    assert!(err.to_string().contains("storage.conf"), "{err}");
    assert_eq!(
        dir(&host, "/home/alice/.config/containers"),
        (0o755, (0, 0), false)
    );
}
