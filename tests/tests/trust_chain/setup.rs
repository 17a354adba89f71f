//! Setting the chain up: re-runs change nothing, bad input changes nothing, links planted by a
//! maker redirect nothing, and create-imagemakeruser's options do what they say.

use super::*;

#[test]
fn rerunning_the_setup_changes_nothing_and_bad_input_changes_nothing() {
    let server = Server::start();
    let snapshot = "sha256sum /etc/hosts /etc/containers/policy.json /etc/containers/registries.conf /etc/containers/registries.d/default.yaml /var/sigstore/keys/*; ls /etc/containers | wc -l";
    let before = server.root_ok(snapshot);
    server.root_ok(&format!("podsec-create-policy {SERVER_IP}"));
    server.root_ok("podsec-create-services");
    server.root_ok(&format!(
        "podsec-create-imagemakeruser --batch --email {EMAIL} {MAKER}@registry.local/demo"
    ));
    assert_eq!(
        server.root_ok(snapshot),
        before,
        "a re-run changed the host"
    );

    // Invalid addresses and conflicting bindings: clear error, nothing changed.
    for (argument, code) in [
        ("1.2.3", 2),
        ("'1.2.3.4 5'", 2),
        ("999.1.1.1", 2),
        ("127.0.0.1", 1),
        ("198.51.100.7", 1),
        ("192.0.2.10 192.0.2.11", 1),
    ] {
        let out = server.root(&format!("podsec-create-policy {argument}"));
        assert_eq!(
            out.status.code(),
            Some(code),
            "{argument}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stderr).lines().count(),
            1,
            "{argument}: not one line: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).contains("panicked"));
    }
    let conflict = server.root("podsec-create-policy 198.51.100.7");
    assert!(
        text(&conflict.stderr).contains("already bound to 192.0.2.10"),
        "{}",
        text(&conflict.stderr)
    );
    // Another maker cannot take over the scope of the first.
    let out = server.root(
        "podsec-create-imagemakeruser --batch --email x@registry.local intruder@registry.local/demo",
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already trusts"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !server
            .root_ok("getent passwd intruder || true")
            .contains("intruder"),
        "user created despite the refusal"
    );
    assert_eq!(
        server.root_ok(snapshot),
        before,
        "bad input changed the host"
    );
}

#[test]
fn a_symlink_planted_in_a_makers_config_does_not_redirect_roots_write() {
    let server = Server::start();
    // The maker replaces its policy.json by a link to a root-owned file, then root re-runs.
    server.root_ok("echo precious > /etc/podsec-victim");
    let out = server.maker("rm -f ~/.config/containers/policy.json && ln -s /etc/podsec-victim ~/.config/containers/policy.json");
    assert!(out.status.success());
    server.root_ok(&format!(
        "podsec-create-imagemakeruser --batch --email {EMAIL} {MAKER}@registry.local/demo"
    ));
    assert_eq!(server.root_ok("cat /etc/podsec-victim"), "precious\n");
    let kind = server.root_ok(&format!(
        "stat -c %F ~{MAKER}/.config/containers/policy.json"
    ));
    assert_eq!(kind.trim(), "regular file");
    // A link in place of the directory itself makes the command fail rather than follow it.
    server.maker("rm -rf ~/.config/containers && ln -s /etc ~/.config/containers");
    let out = server.root(&format!(
        "podsec-create-imagemakeruser --batch --email {EMAIL} {MAKER}@registry.local/demo"
    ));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("refusing to follow"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        server
            .root_ok("ls /etc/policy.json 2>/dev/null || echo absent")
            .contains("absent")
    );
}

/// create-imagemakeruser's options: `--batch` needs `--email` (checked before any change),
/// `--passphrase-file` protects the signing key, `--password-stdin` sets the password (the
/// account stays locked without it), and a new maker leaves the other users' own
/// `~/.config/containers/policy.json` alone.
#[test]
fn create_imagemakeruser_options_do_what_they_say() {
    let server = Server::start();
    server.root_ok(
        "useradd -m bob && install -d -o bob ~bob/.config/containers && \
         echo '{\"default\":[{\"type\":\"reject\"}]}' > ~bob/.config/containers/policy.json && \
         chown bob ~bob/.config/containers/policy.json",
    );
    let others =
        "sha256sum ~imagemaker/.config/containers/policy.json ~bob/.config/containers/policy.json";
    let others_before = server.root_ok(others);
    let snapshot = "getent passwd; getent group; sha256sum /etc/containers/policy.json /var/sigstore/keys/*; \
                    ls -l --time-style=+ /etc/containers /var/sigstore/sigstore; ls /home";
    let before = server.root_ok(snapshot);

    // --batch without --email, bad input on stdin or in the passphrase file: a clear message,
    // nothing changed.
    let share = server.sandbox.share();
    std::fs::write(share.join("empty-passphrase"), "\n").unwrap();
    std::fs::write(share.join("passphrase"), "s3cret phrase\n").unwrap();
    for (script, message) in [
        (
            "podsec-create-imagemakeruser --batch nomail@registry.local/nomail".to_string(),
            "--batch needs one --email per image maker (1 given, 0 e-mails)".to_string(),
        ),
        (
            "echo | podsec-create-imagemakeruser --batch --password-stdin --email x@registry.local x@registry.local/x".to_string(),
            "--password-stdin: the password (the first line of standard input) is empty".to_string(),
        ),
        (
            "echo 'a:b' | podsec-create-imagemakeruser --batch --password-stdin --email x@registry.local x@registry.local/x".to_string(),
            "is empty or contains ':'".to_string(),
        ),
        (
            format!(
                "podsec-create-imagemakeruser --batch --passphrase-file {} --email x@registry.local x@registry.local/x",
                share.join("empty-passphrase").display()
            ),
            "the passphrase (its first line) is empty".to_string(),
        ),
    ] {
        let out = server.root(&script);
        assert_eq!(out.status.code(), Some(1), "{script}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(&message),
            "{script}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr).lines().count(), 1, "{}", text(&out.stderr));
        assert_eq!(server.root_ok(snapshot), before, "{script} changed the host");
    }

    // --passphrase-file: the key is protected. Without the passphrase gpg cannot sign; with it
    // (loopback pinentry) it can, and then podsec-load-sign-oci signs through the agent, as
    // after a pinentry prompt.
    server.root_ok(&format!(
        "podsec-create-imagemakeruser --batch --passphrase-file {} --email guarded@registry.local guarded@registry.local/guarded",
        share.join("passphrase").display()
    ));
    let sign = |passphrase: &str| {
        server.as_user(
            "guarded",
            &format!(
                "echo payload | gpg --batch --pinentry-mode loopback --passphrase '{passphrase}' \
                 --local-user guarded@registry.local --sign -o /dev/null"
            ),
        )
    };
    server.as_user("guarded", "gpgconf --kill gpg-agent");
    assert!(!sign("").status.success(), "signed without the passphrase");
    assert!(
        !sign("wrong").status.success(),
        "signed with a wrong passphrase"
    );
    let out = sign("s3cret phrase");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let archive = server.archive("guarded.tar.xz", &["guarded/app:1"]);
    let out = server.as_user(
        "guarded",
        &format!(
            "podsec-load-sign-oci {} amd64 guarded@registry.local registry.local/guarded",
            archive.display()
        ),
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    server.pull("registry.local/guarded/app:1").unwrap();
    // The --batch key without --passphrase-file has no passphrase: any is accepted.
    let out = server.maker(&format!(
        "echo payload | gpg --batch --pinentry-mode loopback --passphrase wrong --local-user {EMAIL} --sign -o /dev/null"
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));

    // --password-stdin sets the password; without it the account is locked.
    server.root_ok(
        "echo 'Pa55-word' | podsec-create-imagemakeruser --batch --password-stdin --email pw@registry.local pw@registry.local/pw",
    );
    let status = |user: &str| {
        server
            .root_ok(&format!("passwd -S {user}"))
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(status("pw"), "P");
    server.root_ok(
        "python3 -W ignore -c 'import crypt, spwd; h = spwd.getspnam(\"pw\").sp_pwdp; assert crypt.crypt(\"Pa55-word\", h) == h, h'",
    );
    for user in ["guarded", MAKER] {
        assert_eq!(status(user), "L", "{user}");
        assert!(
            server
                .root_ok(&format!("getent shadow {user} | cut -d: -f2"))
                .starts_with('!'),
            "{user}"
        );
    }

    // Two more makers later, the other users' own policy.json files are byte-identical.
    assert_eq!(server.root_ok(others), others_before);
    assert!(
        server
            .root_ok("cat ~pw/.config/containers/policy.json")
            .contains("/var/sigstore/keys/guarded.pgp")
    );
}
