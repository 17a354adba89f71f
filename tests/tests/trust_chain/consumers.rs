//! The chain's consumers: a second node that fetches keys and policy, and podman users who run
//! signed images only.

use super::*;

#[test]
fn a_second_node_fetches_keys_and_policy_and_enforces_them() {
    let server_box = Sandbox::start(&Options::default()).unwrap();
    let client_box = Sandbox::start(&Options::default()).unwrap();
    Sandbox::link(&server_box, &client_box, "192.0.2.1/24", "192.0.2.2/24").unwrap();
    let server = Server::set_up(server_box, "192.0.2.1");
    let archive = server.archive("app.tar.xz", &["demo/app:1"]);
    let out = server.maker(&format!(
        "podsec-load-sign-oci {} amd64 {EMAIL} registry.local/demo",
        archive.display()
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    server.push_unsigned("registry.local/demo/unsigned:1");
    let client = Server {
        sandbox: client_box,
        path: path_with_commands(),
    };

    // Pinning: a wrong policy digest is refused and nothing changes.
    let before = client.root_ok(
        "readlink /etc/containers/policy.json || cat /etc/containers/policy.json; cat /etc/hosts",
    );
    let out = client.root(&format!(
        "podsec-create-policy --expect-policy-sha256 {} 192.0.2.1",
        "0".repeat(64)
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("expected 0000"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(client.root_ok("readlink /etc/containers/policy.json || cat /etc/containers/policy.json; cat /etc/hosts"), before);

    let published = server.root_ok("sha256sum /var/sigstore/keys/policy.json | cut -d' ' -f1");
    let fingerprint = server.root_ok(&format!("gpg --show-keys --with-colons /var/sigstore/keys/{MAKER}.pgp | awk -F: '/^fpr/{{print $10; exit}}'"));
    // The server says how to pin what it publishes; the client runs exactly that.
    let pin_command = format!(
        "podsec-create-policy --expect-policy-sha256 {} --expect-key-fingerprint {} 192.0.2.1",
        published.trim(),
        fingerprint.trim()
    );
    let said = server.root_ok("podsec-create-policy 192.0.2.1");
    assert!(
        said.lines()
            .any(|line| line.ends_with(&format!("with: {pin_command}"))),
        "{said}"
    );
    let out = client.root(&pin_command);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("SHA-256 {}", published.trim())),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !text(&out.stderr).contains("WARNING"),
        "{}",
        text(&out.stderr)
    );
    // Unpinned, it still works, and says loudly what it took and how to pin it.
    let out = client.root("podsec-create-policy 192.0.2.1");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("WARNING: the keys and policy came over plain HTTP")
            && text(&out.stderr).trim_end().ends_with(&pin_command),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        client.root_ok("cat /etc/containers/policy.json"),
        server.root_ok("cat /var/sigstore/keys/policy.json"),
        "the client does not enforce the published policy"
    );
    assert_eq!(
        client.root_ok(&format!(
            "stat -c '%U %a' /var/sigstore/keys /var/sigstore/keys/{MAKER}.pgp"
        )),
        "root 755\nroot 644\n"
    );
    client.pull("registry.local/demo/app:1").unwrap();
    client.root_ok("podman pull -q registry.local/demo/app:1");
    let err = client.pull("registry.local/demo/unsigned:1").unwrap_err();
    assert!(err.contains("A signature was required"), "{err}");

    // The server goes away: a new run fails and the policy in force stays (no dangling link).
    server.root_ok("kill $(cat /run/podsec/nginx.pid)");
    let in_force = client.root_ok("cat /etc/containers/policy.json");
    let out = client.root("podsec-create-policy 192.0.2.1");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot download"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(client.root_ok("cat /etc/containers/policy.json"), in_force);
}

#[test]
fn podman_users_run_signed_images_only_and_cannot_change_their_configuration() {
    let server = Server::start();
    let archive = server.archive("app.tar.xz", &["demo/app:1"]);
    let out = server.maker(&format!(
        "podsec-load-sign-oci {} amd64 {EMAIL} registry.local/demo",
        archive.display()
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    server.push_unsigned("registry.local/demo/unsigned:1");
    server.root_ok("podsec-create-podmanusers --batch alice");
    server.root_ok("podsec-create-podmanusers --batch alice"); // idempotent
    assert_eq!(server.root_ok("id -gn alice; stat -c '%U %a' ~alice/.config/containers ~alice/.config/containers/storage.conf"), "podman\nroot 755\nroot 644\n");
    let as_alice = |script: &str| {
        server
            .sandbox
            .command("sh")
            .args(["-c", script])
            .user("alice")
            .output()
    };

    let run = as_alice("podman run --rm registry.local/demo/app:1 id -u");
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(text(&run.stdout).trim(), "0");
    let unsigned = as_alice("podman pull -q registry.local/demo/unsigned:1");
    assert!(!unsigned.status.success());
    assert!(
        text(&unsigned.stderr).contains("A signature was required"),
        "{}",
        text(&unsigned.stderr)
    );

    // The user cannot put a policy of their own in place, nor move the directory away.
    let write = as_alice(
        "echo '{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}' > ~/.config/containers/policy.json",
    );
    assert!(!write.status.success());
    let rename = as_alice("mv ~/.config/containers ~/.config/moved && mkdir ~/.config/containers");
    assert!(
        !rename.status.success(),
        "the locked directory could be moved away"
    );
    // Bad names change nothing.
    let out = server.root("podsec-create-podmanusers --batch bob 'Bad;Name'");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("invalid account name 'Bad;Name'"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !server.root_ok("getent passwd bob || true").contains("bob"),
        "bob was created before the bad name was seen"
    );
}
