//! The podsec trust chain end to end with the real consumers of our files: docker-registry and
//! nginx serve, skopeo and podman read our policy.json, registries.d and signatures.

use std::path::{Path, PathBuf};

use podsec_tests::fixtures::{busybox_image, path_with_commands};
use podsec_tests::sandbox::{Options, Sandbox};

const SERVER_IP: &str = "192.0.2.10";
const MAKER: &str = "imagemaker";
const EMAIL: &str = "imagemaker@registry.local";

struct Server {
    sandbox: Sandbox,
    path: String,
}

impl Server {
    /// create-policy, create-services, create-imagemakeruser on a fresh sandbox.
    fn start() -> Server {
        let sandbox = Sandbox::start(&Options {
            name: None,
            addresses: vec![format!("{SERVER_IP}/32")],
        })
        .unwrap();
        Server::set_up(sandbox, SERVER_IP)
    }

    fn set_up(sandbox: Sandbox, address: &str) -> Server {
        let server = Server {
            sandbox,
            path: path_with_commands(),
        };
        server.root_ok(&format!("podsec-create-policy {address}"));
        server.root_ok("podsec-create-services");
        server.root_ok(&format!(
            "podsec-create-imagemakeruser --batch --email {EMAIL} {MAKER}@registry.local/demo"
        ));
        server
    }

    fn root(&self, script: &str) -> std::process::Output {
        self.sandbox
            .command("sh")
            .args(["-c", script])
            .env("PATH", &self.path)
            .output()
    }

    fn root_ok(&self, script: &str) -> String {
        succeeded(script, self.root(script))
    }

    fn maker(&self, script: &str) -> std::process::Output {
        self.as_user(MAKER, script)
    }

    fn maker_ok(&self, script: &str) -> String {
        succeeded(script, self.maker(script))
    }

    fn as_user(&self, user: &str, script: &str) -> std::process::Output {
        self.sandbox
            .command("sh")
            .args(["-c", script])
            .env("PATH", &self.path)
            .user(user)
            .output()
    }

    /// The manifest digest's hex of image `reference` in the layout `archive` left in the share.
    fn manifest_hex(&self, archive: &str, reference: &str) -> String {
        let index = self
            .sandbox
            .share()
            .join(format!("{archive}.layout/amd64/index.json"));
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(index).unwrap()).unwrap();
        let manifest = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
            .expect("image in the layout");
        manifest["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap()
            .to_string()
    }

    /// An upstream-format archive: `amd64/` OCI layout with `demo/<name>:<tag>` images, tar.xz.
    fn archive(&self, file: &str, refs: &[&str]) -> PathBuf {
        busybox_image(&self.sandbox, "bb");
        let layout = self.sandbox.share().join(format!("{file}.layout"));
        let mut script = format!("set -e; rm -rf {0}; mkdir -p {0}; ", layout.display());
        for reference in refs {
            script.push_str(&format!(
                "skopeo --policy {policy} copy -q containers-storage:localhost/bb oci:{layout}/amd64:{reference}; ",
                policy = self.accept_anything().display(),
                layout = layout.display()
            ));
        }
        let archive = self.sandbox.share().join(file);
        script.push_str(&format!(
            "tar -C {} -cJf {1} amd64; chmod 0644 {1}",
            layout.display(),
            archive.display()
        ));
        self.root_ok(&script);
        archive
    }

    /// A permissive policy for test-side copies that are not under test.
    fn accept_anything(&self) -> PathBuf {
        let path = self.sandbox.share().join("accept-anything.json");
        std::fs::write(&path, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
        path
    }

    /// Pushes the test image unsigned (test plumbing with a permissive policy).
    fn push_unsigned(&self, destination: &str) {
        self.root_ok(&format!(
            "skopeo --policy {} copy -q --remove-signatures --dest-tls-verify=false containers-storage:localhost/bb docker://{destination}",
            self.accept_anything().display()
        ));
    }

    /// `skopeo copy docker://<image> dir:` with the system policy: Ok or the error text.
    fn pull(&self, image: &str) -> Result<(), String> {
        let out = self.root(&format!("skopeo copy -q docker://{image} dir:$(mktemp -d)"));
        if out.status.success() {
            Ok(())
        } else {
            Err(text(&out.stderr))
        }
    }
}

/// The script's stdout; the test fails with both outputs unless it exited 0.
fn succeeded(script: &str, out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{script}\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn signature_files(server: &Server, repository: &str) -> Vec<String> {
    server
        .root_ok(&format!(
            "find /var/sigstore/sigstore/{repository}@sha256=* -name 'signature-*' | sort"
        ))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn signed_images_pass_and_unsigned_tampered_or_foreign_ones_are_rejected() {
    let server = Server::start();
    let archive = server.archive("app.tar.xz", &["demo/app:1", "demo/tool:2"]);
    let out = server.maker(&format!(
        "podsec-load-sign-oci {} amd64 {EMAIL} registry.local/demo",
        archive.display()
    ));
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("2 of 2 images pushed and signed"),
        "{}",
        text(&out.stdout)
    );

    // The real consumers accept the signed images with the system policy.
    server.pull("registry.local/demo/app:1").unwrap();
    server.pull("registry.local/demo/tool:2").unwrap();
    server.root_ok("podman pull -q registry.local/demo/app:1");

    // An image pushed without a signature into the same scope is rejected.
    server.push_unsigned("registry.local/demo/unsigned:1");
    let err = server.pull("registry.local/demo/unsigned:1").unwrap_err();
    assert!(
        err.contains("A signature was required, but no signature exists"),
        "{err}"
    );
    assert!(
        server
            .root("podman pull -q registry.local/demo/unsigned:1")
            .status
            .code()
            != Some(0)
    );

    // A signature with flipped bytes is rejected.
    let signature = signature_files(&server, "demo/app")
        .pop()
        .expect("signature of app");
    let saved = server.root_ok(&format!("base64 -w0 {signature}"));
    server.root_ok(&format!(
        "python3 -c \"import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=0xff; open(p,'wb').write(b)\" {signature}"
    ));
    assert!(
        server.pull("registry.local/demo/app:1").is_err(),
        "tampered signature accepted"
    );
    server.root_ok(&format!("echo {saved} | base64 -d > {signature}"));
    server.pull("registry.local/demo/app:1").unwrap();

    // A valid signature by a key the policy does not trust is rejected.
    server.root_ok(&format!(
        "set -e; export GNUPGHOME=$(mktemp -d); \
         gpg --batch --passphrase '' --quick-gen-key 'Intruder <intruder@example.com>' ed25519 sign never 2>/dev/null; \
         m=$(mktemp -d); skopeo copy -q --src-tls-verify=false --policy {} docker://registry.local/demo/app:1 dir:$m; \
         skopeo standalone-sign $m/manifest.json registry.local/demo/app:1 intruder@example.com -o {signature}",
        server.accept_anything().display()
    ));
    let err = server.pull("registry.local/demo/app:1").unwrap_err();
    assert!(
        err.contains("signature") || err.contains("Signature"),
        "{err}"
    );
}

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

#[test]
fn bad_archives_push_nothing_and_leave_no_temporary_directory() {
    let server = Server::start();
    let good = server.archive("good.tar.xz", &["demo/app:1"]);
    let share = server.sandbox.share();
    let make = |name: &str, script: &str| -> PathBuf {
        let path = share.join(name);
        server.root_ok(&format!(
            "set -e; cd $(mktemp -d); {script}; chmod 0644 {}",
            path.display()
        ));
        path
    };
    let cases: Vec<(PathBuf, i32, &str)> = vec![
        (
            make(
                "plain.tar",
                &format!(
                    "cp {} x.tar.xz; xz -dc x.tar.xz > {}",
                    good.display(),
                    share.join("plain.tar").display()
                ),
            ),
            6,
            "unfolding",
        ),
        (
            make(
                "traversal.tar.xz",
                &format!(
                    "mkdir -p a/amd64; echo x > a/evil; tar -C a -cf t.tar amd64 --transform 's,^amd64,amd64/../../evil,' ; tar -C a -rf t.tar evil --transform 's,^,../,'; xz -c t.tar > {}",
                    share.join("traversal.tar.xz").display()
                ),
            ),
            6,
            "not allowed",
        ),
        (
            make(
                "symlink.tar.xz",
                &format!(
                    "mkdir amd64; ln -s /etc/shadow amd64/index.json; tar -cJf {} amd64",
                    share.join("symlink.tar.xz").display()
                ),
            ),
            6,
            "not allowed",
        ),
        (
            make(
                "noindex.tar.xz",
                &format!(
                    "mkdir -p amd64/blobs; echo '{{}}' > amd64/oci-layout; tar -cJf {} amd64",
                    share.join("noindex.tar.xz").display()
                ),
            ),
            8,
            "index.json",
        ),
        (good.clone(), 7, "arm64"),
        (
            make(
                "truncated.tar.xz",
                &format!(
                    "set -e; mkdir x; tar -C x -xJf {}; f=$(ls -S x/amd64/blobs/sha256/* | head -1); truncate -s 100 $f; tar -C x -cJf {} amd64",
                    good.display(),
                    share.join("truncated.tar.xz").display()
                ),
            ),
            1,
            "damaged",
        ),
    ];
    let before = server.root_ok("find /var/lib/podsec/registry /var/sigstore/sigstore | sort");
    for (archive, code, message) in cases {
        let arch = if message == "arm64" { "arm64" } else { "amd64" };
        let out = server.maker(&format!(
            "export TMPDIR=$(mktemp -d); podsec-load-sign-oci {} {arch} {EMAIL} registry.local/demo; rc=$?; ls -A $TMPDIR; exit $rc",
            archive.display()
        ));
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}: {}",
            archive.display(),
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(message),
            "{}: {}",
            archive.display(),
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).trim().is_empty(),
            "{}: temporary files left: {}",
            archive.display(),
            text(&out.stdout)
        );
    }
    assert_eq!(
        server.root_ok("find /var/lib/podsec/registry /var/sigstore/sigstore | sort"),
        before,
        "something was pushed"
    );
    // Unknown architecture, not an image maker.
    let out = server.maker(&format!(
        "podsec-load-sign-oci {} sparc {EMAIL} registry.local/demo",
        good.display()
    ));
    assert_eq!(out.status.code(), Some(3));
    server.root_ok("useradd -m outsider");
    let out = server
        .sandbox
        .command("podsec-load-sign-oci")
        .args([
            good.to_str().unwrap(),
            "amd64",
            EMAIL,
            "registry.local/demo",
        ])
        .env("PATH", &server.path)
        .user("outsider")
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not a member of group podman_dev"),
        "{}",
        text(&out.stderr)
    );
    let _ = Path::new("unused");
}

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

#[test]
fn automation_signs_with_a_key_file_through_sequoia() {
    let server = Server::start();
    let archive = server.archive("app.tar.xz", &["demo/app:1"]);
    // The maker exports its (unprotected) secret key for a CI job.
    let out = server.maker("umask 077; gpg --batch --pinentry-mode loopback --passphrase '' --export-secret-keys --armor imagemaker@registry.local > ~/signing.key");
    assert!(out.status.success(), "{}", text(&out.stderr));
    server.maker_ok(&format!(
        "podsec-load-sign-oci --sign-key ~/signing.key {} amd64 {EMAIL} registry.local/demo",
        archive.display()
    ));
    server.pull("registry.local/demo/app:1").unwrap();
    // A key file that is not a secret key: refused before anything is pushed.
    let out = server.maker(&format!(
        "gpg --armor --export imagemaker@registry.local > ~/public.key; podsec-load-sign-oci --sign-key ~/public.key {} amd64 {EMAIL} registry.local/demo",
        archive.display()
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no valid secret signing key"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn save_oci_archives_load_and_sign_and_push_failures_are_reported() {
    let server = Server::start();
    busybox_image(&server.sandbox, "bb");
    let dir = server.sandbox.share().join("saved");
    // Every architecture is validated before anything is written.
    let out = server.root(&format!(
        "podsec-save-oci {} amd64,sparc containers-storage: localhost/bb:latest",
        dir.display()
    ));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(!dir.exists());
    // The image as demo/saved:1 (U7S_ALTREGISTRY names where it comes from), so that it lands
    // in the maker's scope registry.local/demo.
    server.root_ok(&format!(
        "podman tag localhost/bb localhost/demo/saved:1 && U7S_ALTREGISTRY=localhost podsec-save-oci {0} amd64 containers-storage: demo/saved:1 && chmod -R a+rX {0}",
        dir.display()
    ));
    let archive = dir.join("amd64.tar.xz");
    assert!(
        archive.is_file() && !dir.join("amd64").exists(),
        "archive layout not as upstream"
    );
    let out = server.maker(&format!(
        "podsec-load-sign-oci {} amd64 {EMAIL} registry.local/demo",
        archive.display()
    ));
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("registry.local/demo/saved:1"),
        "{}",
        text(&out.stdout)
    );
    server.pull("registry.local/demo/saved:1").unwrap();

    // The registry stops: every image fails, the exit status says so, no signature is stored.
    let again = server.archive("again.tar.xz", &["demo/again:1"]);
    server.root_ok("kill $(cat /run/podsec/registry.pid); sleep 0.2");
    let out = server.maker(&format!(
        "podsec-load-sign-oci {} amd64 {EMAIL} registry.local/demo",
        again.display()
    ));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("FAILED"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("1 of 1 images failed"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        server
            .root_ok("ls /var/sigstore/sigstore/demo")
            .lines()
            .all(|l| !l.starts_with("again@")),
        "signature stored for a failed push"
    );
}

#[test]
fn upstream_defects_stay_fixed() {
    let server = Server::start();
    // §9.11: the typo that created /dev/nul.
    assert!(
        server
            .root_ok("ls /dev/nul 2>/dev/null || echo absent")
            .contains("absent")
    );
    // §9.21: group membership is exact: podman_dev2 is not podman_dev.
    server.root_ok("groupadd podman_dev2 && useradd -m -G podman_dev2 lookalike");
    let archive = server.archive("app.tar.xz", &["demo/app:1"]);
    let out = server
        .sandbox
        .command("podsec-load-sign-oci")
        .args([
            archive.to_str().unwrap(),
            "amd64",
            EMAIL,
            "registry.local/demo",
        ])
        .env("PATH", &server.path)
        .user("lookalike")
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not a member of group podman_dev"),
        "{}",
        text(&out.stderr)
    );
    // §9.21: only org.opencontainers.image.ref.name values are image names.
    let layout = server.sandbox.share().join("annotated");
    server.root_ok(&format!(
        "set -e; mkdir -p {0}; tar -C {0} -xJf {1}; \
         python3 - {0}/amd64/index.json <<'PY'\nimport json, sys\np = sys.argv[1]\nindex = json.load(open(p))\nm = index['manifests'][0]\nm['annotations']['org.opencontainers.image.created'] = '2025-01-01T00:00:00Z'\nextra = dict(m)\nextra['annotations'] = {{'org.opencontainers.image.title': 'demo/not-a-name:1'}}\nindex['manifests'].append(extra)\njson.dump(index, open(p, 'w'))\nPY\n\
         tar -C {0} -cJf {0}.tar.xz amd64; chmod 0644 {0}.tar.xz",
        layout.display(),
        archive.display()
    ));
    let out = server.maker(&format!(
        "podsec-load-sign-oci {}.tar.xz amd64 {EMAIL} registry.local/demo",
        layout.display()
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1 of 1 images pushed and signed"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !text(&out.stdout).contains("not-a-name"),
        "{}",
        text(&out.stdout)
    );
    // §9.10: the server checks really check: create-services refuses on a node that is not
    // the signature server.
    let client = Sandbox::start(&Options::default()).unwrap();
    let out = client
        .command("podsec-create-services")
        .env("PATH", &server.path)
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not the registry and signature server"),
        "{}",
        text(&out.stderr)
    );
    // §9.4: trust anchors are not writable by the groups of container users.
    assert_eq!(
        server.root_ok("stat -c '%U:%G %a' /var/sigstore /var/sigstore/keys /var/sigstore/keys/imagemaker.pgp /var/sigstore/keys/policy.json"),
        "root:root 755\nroot:root 755\nroot:root 644\nroot:root 644\n"
    );
    // ... and one maker cannot remove another's signature directory in the shared store.
    let said = server.root_ok("podsec-create-imagemakeruser --batch --email other@registry.local other@registry.local/other");
    // It says how clients pin the new policy and both keys, at the address they fetch from.
    let digest = server.root_ok("sha256sum /var/sigstore/keys/policy.json | cut -d' ' -f1");
    let pin = said
        .lines()
        .find_map(|line| line.strip_prefix("Clients pin this server's policy and keys with: "))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        pin.starts_with(&format!(
            "podsec-create-policy --expect-policy-sha256 {} ",
            digest.trim()
        )) && pin.ends_with(&format!(" {SERVER_IP}")),
        "{pin}"
    );
    for maker in ["imagemaker", "other"] {
        let fingerprint = server.root_ok(&format!("gpg --show-keys --with-colons /var/sigstore/keys/{maker}.pgp | awk -F: '/^fpr/{{print $10; exit}}'"));
        assert!(
            pin.contains(&format!("--expect-key-fingerprint {}", fingerprint.trim())),
            "{maker}: {pin}"
        );
    }
    let out = server
        .sandbox
        .command("sh")
        .args(["-c", "rm -rf /var/sigstore/sigstore/demo"])
        .user("other")
        .output();
    assert!(!out.status.success());
    assert!(server.root_ok("ls /var/sigstore/sigstore").contains("demo"));
}

#[test]
fn pushes_can_require_credentials_while_pulls_stay_anonymous() {
    let server = Server::start();
    let archive = server.archive("app.tar.xz", &["demo/app:1"]);
    let htpasswd = server.sandbox.share().join("push.htpasswd");
    server.root_ok(&format!(
        "echo \"imagemaker:$(openssl passwd -apr1 s3cret)\" > {}",
        htpasswd.display()
    ));
    server.root_ok(&format!(
        "podsec-create-services --push-htpasswd {}",
        htpasswd.display()
    ));
    server.root_ok("podsec-create-services"); // the requirement stays on a later run
    // Anonymous pushes are refused now, by skopeo and by load-sign-oci alike.
    let anonymous = server.root(&format!(
        "skopeo --policy {} copy -q --remove-signatures --dest-tls-verify=false containers-storage:localhost/bb docker://registry.local/demo/anon:1",
        server.accept_anything().display()
    ));
    assert!(!anonymous.status.success(), "anonymous push accepted");
    let load = format!(
        "podsec-load-sign-oci {} amd64 {EMAIL} registry.local/demo",
        archive.display()
    );
    let out = server.maker(&load);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("FAILED"),
        "{}",
        text(&out.stdout)
    );
    // After `podman login` the same command pushes with the maker's credentials.
    server.maker_ok(&format!(
        "podman login -u imagemaker -p s3cret --tls-verify=false registry.local && {load}"
    ));
    server.pull("registry.local/demo/app:1").unwrap();
    // A malformed password file is refused and the previous one stays.
    let out = server
        .root("echo 'no colon here' > /tmp/bad && podsec-create-services --push-htpasswd /tmp/bad");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("expected user:hash lines"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        server
            .root_ok("cat /etc/podsec/registry/push.htpasswd")
            .starts_with("imagemaker:$apr1$")
    );
    assert_eq!(
        server.root_ok("stat -c '%U:%G %a' /etc/podsec/registry/push.htpasswd"),
        "root:www-data 640\n"
    );
}

/// Registries other than registry.local are reached over TLS, verified against containers'
/// certs.d, never over plain HTTP: the real docker-registry with TLS and htpasswd takes the
/// maker's `podman login` credentials, and a bearer-token registry (the token-server stand-in
/// in front of the real registry) gets a token of push scope. The pushed image is the one the
/// signature names: skopeo verifies it through a policy for that registry.
#[test]
fn pushes_to_other_registries_use_verified_tls_and_their_authentication() {
    let server = Server::start();
    let archive = server.archive("tls.tar.xz", &["demo/app:1"]);
    let pki = server.sandbox.share().join("tls");
    std::fs::create_dir_all(&pki).unwrap();
    podsec_tests::k8s::make_ca(&pki, "ca", "podsec-test-registry-ca").unwrap();
    podsec_tests::k8s::make_cert(
        &pki,
        "ca",
        "server",
        "/CN=tls.registry.test",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:tls.registry.test,DNS:token.registry.test\n",
    )
    .unwrap();
    let p = |name: &str| pki.join(name).display().to_string();
    // distribution's htpasswd wants bcrypt.
    server.root_ok(&format!(
        "python3 -W ignore -c 'import crypt; print(\"imagemaker:\" + crypt.crypt(\"s3cret\", crypt.mksalt(crypt.METHOD_BLOWFISH)))' > {}",
        p("htpasswd")
    ));
    std::fs::write(
        pki.join("registry.yml"),
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/tls-registry\n\
             http:\n  addr: 127.0.0.1:5443\n  tls:\n    certificate: {}\n    key: {}\n\
             auth:\n  htpasswd:\n    realm: tls-test\n    path: {}\n",
            p("server.crt"),
            p("server.key"),
            p("htpasswd")
        ),
    )
    .unwrap();
    server.root_ok("echo '127.0.0.1 tls.registry.test token.registry.test' >> /etc/hosts");
    server
        .sandbox
        .spawn_daemon(
            "tls-registry",
            &["docker-registry", "serve", &p("registry.yml")],
        )
        .unwrap();
    server.root_ok(&format!(
        "for i in $(seq 100); do [ \"$(curl -s -o /dev/null -w '%{{http_code}}' --cacert {} https://tls.registry.test:5443/v2/)\" = 401 ] && exit 0; sleep 0.1; done; exit 1",
        p("ca.crt")
    ));
    let load = |target: &str| {
        format!(
            "podsec-load-sign-oci {} amd64 {EMAIL} {target}",
            archive.display()
        )
    };
    let catalog = || {
        server.root_ok(&format!(
            "curl -s --cacert {} -u imagemaker:s3cret https://tls.registry.test:5443/v2/_catalog",
            p("ca.crt")
        ))
    };

    // The registry's CA is not trusted yet: TLS is verified, nothing is pushed, and the
    // summary says where the CA goes.
    let out = server.maker(&load("tls.registry.test:5443/demo"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("/etc/containers/certs.d/tls.registry.test:5443/ca.crt"),
        "{}",
        text(&out.stdout)
    );
    assert!(!catalog().contains("demo/app"), "{}", catalog());

    // Trusted now, but the registry wants a login.
    server.root_ok(&format!(
        "install -D -m 0644 {} /etc/containers/certs.d/tls.registry.test:5443/ca.crt",
        p("ca.crt")
    ));
    let out = server.maker(&load("tls.registry.test:5443/demo"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("podman login"),
        "{}",
        text(&out.stdout)
    );
    assert!(!catalog().contains("demo/app"), "{}", catalog());

    // After `podman login` (which reads the same certs.d) the push goes through with the
    // maker's credentials.
    server.maker_ok(&format!(
        "podman login -u imagemaker -p s3cret tls.registry.test:5443 && {}",
        load("tls.registry.test:5443/demo")
    ));
    assert!(catalog().contains("demo/app"), "{}", catalog());

    // skopeo, with a policy that trusts the maker's key for that registry and the lookaside
    // store for it, accepts the pushed image: what was pushed is what was signed.
    let policy = server.sandbox.share().join("tls-policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"reject"}],"transports":{"docker":{"tls.registry.test:5443/demo":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/var/sigstore/keys/imagemaker.pgp"}],"token.registry.test:5444/demo":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/var/sigstore/keys/imagemaker.pgp"}]}}}"#,
    )
    .unwrap();
    let registries_d = server.sandbox.share().join("tls-registries.d");
    std::fs::create_dir_all(&registries_d).unwrap();
    std::fs::write(
        registries_d.join("tls.yaml"),
        "docker:\n  tls.registry.test:5443:\n    lookaside: http://sigstore.local:81/sigstore/\n  token.registry.test:5444:\n    lookaside: http://sigstore.local:81/sigstore/\n",
    )
    .unwrap();
    let verify = |image: &str, creds: &str| {
        server.root(&format!(
            "skopeo --policy {} --registries.d {} copy -q {creds} docker://{image} dir:$(mktemp -d)",
            policy.display(),
            registries_d.display()
        ))
    };
    let out = verify(
        "tls.registry.test:5443/demo/app:1",
        "--src-creds imagemaker:s3cret",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A bearer-token registry: the token is fetched for pull and push of the repository and
    // every write carries it.
    let log = server.sandbox.share().join("token-registry.log");
    let stand_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("standins/token-registry.py");
    server
        .sandbox
        .spawn_daemon(
            "token-registry",
            &[
                "python3",
                stand_in.to_str().unwrap(),
                "--listen",
                "127.0.0.1:5444",
                "--cert",
                &p("server.crt"),
                "--key",
                &p("server.key"),
                "--upstream",
                "http://127.0.0.1:5000",
                "--public",
                "https://token.registry.test:5444",
                "--realm",
                "https://token.registry.test:5444/token",
                "--service",
                "token.registry.test",
                "--log",
                log.to_str().unwrap(),
            ],
        )
        .unwrap();
    server.root_ok(&format!(
        "install -D -m 0644 {0} /etc/containers/certs.d/token.registry.test:5444/ca.crt; for i in $(seq 100); do curl -s -o /dev/null --cacert {0} https://token.registry.test:5444/v2/ && exit 0; sleep 0.1; done; exit 1",
        p("ca.crt")
    ));
    server.maker_ok(&load("token.registry.test:5444/demo"));
    let requests: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        requests
            .iter()
            .any(|r| r["path"] == "/token" && r["scope"] == "repository:demo/app:pull,push"),
        "{requests:?}"
    );
    let writes: Vec<&serde_json::Value> = requests
        .iter()
        .filter(|r| r["method"] == "PUT" || r["method"] == "POST")
        .collect();
    assert!(
        writes.iter().any(|r| r["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/v2/demo/app/manifests/"))),
        "{writes:?}"
    );
    assert!(
        writes
            .iter()
            .all(|r| r["granted"] == "repository:demo/app:pull,push"),
        "{writes:?}"
    );
    let out = verify("token.registry.test:5444/demo/app:1", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The signature store gives each image maker only its own place: the top directory is root's,
/// a maker of `registry.local/<path>` writes only below its root-created directory, the maker of
/// the whole registry (upstream's default scope) alone creates entries at the top (an ACL entry,
/// sticky). Nobody can create anything in another maker's directory, pre-create its
/// `<repo>@sha256=...` directories or remove them; load-sign-oci never writes into a directory
/// that is not the caller's and says so before pushing anything.
#[test]
fn one_image_maker_can_neither_pre_create_nor_replace_anothers_signatures() {
    let server = Server::start(); // imagemaker@registry.local/demo
    server.root_ok(
        "podsec-create-imagemakeruser --batch --email whole@registry.local whole@registry.local",
    );
    server.root_ok(
        "podsec-create-imagemakeruser --batch --email other@registry.local other@registry.local/other",
    );
    assert_eq!(
        server.root_ok("cd /var/sigstore/sigstore && stat -c '%n %U:%G %A' . demo other"),
        ". root:root drwxrwxr-t\ndemo imagemaker:podman_dev drwxr-xr-x\nother other:podman_dev drwxr-xr-x\n"
    );
    let archive = server.archive("app.tar.xz", &["demo/app:1", "demo/tool:2"]);
    let app = server.manifest_hex("app.tar.xz", "demo/app:1");
    let tool = server.manifest_hex("app.tar.xz", "demo/tool:2");
    let store = "/var/sigstore/sigstore";

    // Another scoped maker and the whole-registry maker: nothing inside demo/, no
    // pre-created signature directory of imagemaker's, nothing removed or renamed.
    for (user, script) in [
        ("other", format!("mkdir {store}/demo/x")),
        ("other", format!("touch {store}/demo/x")),
        ("other", format!("mkdir {store}/demo/app@sha256={app}")),
        ("other", format!("mkdir {store}/app@sha256={app}")),
        ("other", format!("mkdir {store}/planted")),
        ("other", format!("rm -rf {store}/demo")),
        ("whole", format!("mkdir {store}/demo/app@sha256={app}")),
        ("whole", format!("mv {store}/demo {store}/demo.old")),
        ("whole", format!("rm -rf {store}/other")),
        ("imagemaker", format!("mkdir {store}/other/x")),
        ("imagemaker", format!("mkdir {store}/web@sha256={app}")),
    ] {
        let out = server.as_user(user, &script);
        assert!(!out.status.success(), "{user} could: {script}");
    }
    assert_eq!(
        server.root_ok(&format!("find {store} -mindepth 1 | sort")),
        format!("{store}/demo\n{store}/other\n"),
        "something was created or removed"
    );

    // A directory planted in imagemaker's place (as the group-writable store of earlier
    // versions allowed): the load fails before anything is pushed, naming it, and writes
    // nothing into it.
    server.root_ok(&format!(
        "mkdir -m 0777 {store}/demo/tool@sha256={tool} && chown other {store}/demo/tool@sha256={tool}"
    ));
    let snapshot = format!("find /var/lib/podsec/registry {store} | sort");
    let before = server.root_ok(&snapshot);
    let load = format!(
        "podsec-load-sign-oci {} amd64 {EMAIL} registry.local/demo",
        archive.display()
    );
    let out = server.maker(&load);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains(&format!(
            "{store}/demo/tool@sha256={tool} belongs to other, not to you"
        )),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(server.root_ok(&snapshot), before, "something was pushed");

    // Root removes it: the load goes through, into directories of imagemaker's own, 0755
    // whatever the umask.
    server.root_ok(&format!("rmdir {store}/demo/tool@sha256={tool}"));
    let out = server.maker(&format!("umask 077; {load}"));
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        server.root_ok(&format!(
            "cd {store}/demo && stat -c '%U %a' app@sha256={app} tool@sha256={tool} app@sha256={app}/signature-1"
        )),
        "imagemaker 755\nimagemaker 755\nimagemaker 644\n"
    );
    server.pull("registry.local/demo/app:1").unwrap();
    server.pull("registry.local/demo/tool:2").unwrap();

    // The whole-registry maker signs registry.local/apps/... at the top of the store; the
    // demo maker cannot sign there and is told so before anything is pushed.
    let apps = server.archive("apps.tar.xz", &["apps/web:1"]);
    let web = server.manifest_hex("apps.tar.xz", "apps/web:1");
    let load_apps = format!(
        "podsec-load-sign-oci {} amd64 {{email}} registry.local/apps",
        apps.display()
    );
    let before = server.root_ok(&snapshot);
    let out = server.maker(&load_apps.replace("{email}", EMAIL));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains(&format!(
            "cannot create {store}/apps: it is outside your signature directories"
        )),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(server.root_ok(&snapshot), before, "something was pushed");
    let out = server.as_user(
        "whole",
        &load_apps.replace("{email}", "whole@registry.local"),
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        server.root_ok(&format!(
            "stat -c '%U %a' {store}/apps {store}/apps/web@sha256={web}"
        )),
        "whole 755\nwhole 755\n"
    );
    server.pull("registry.local/apps/web:1").unwrap();

    // create-policy again keeps that arrangement (it is derived from the policy).
    server.root_ok(&format!("podsec-create-policy {SERVER_IP}"));
    assert!(
        server
            .as_user(
                "whole",
                &format!("mkdir {store}/more && rmdir {store}/more")
            )
            .status
            .success()
    );
    assert!(
        !server
            .as_user("other", &format!("mkdir {store}/more"))
            .status
            .success()
    );

    // A second maker of a whole registry would share the top: refused, nothing changed.
    let policy = server.root_ok("sha256sum /etc/containers/policy.json");
    let out = server.root(
        "podsec-create-imagemakeruser --batch --email harbor@harbor.example harbor@harbor.example",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(
            "harbor@harbor.example would sign for a whole registry, as whole@registry.local does"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !server
            .root_ok("getent passwd harbor || true")
            .contains("harbor")
    );
    assert_eq!(
        server.root_ok("sha256sum /etc/containers/policy.json"),
        policy
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

/// load-sign-oci asks nothing: without a target it loads into registry.local/<platform of this
/// host> (U7S_PLATFORM, else /etc/os-release); an archive of another platform is refused
/// without `--yes` (exit 1, nothing pushed, the message says what to do) and loaded under its
/// own platform with it.
#[test]
fn a_platform_mismatch_is_refused_without_yes_and_loaded_with_it() {
    let server = Server::start();
    let archive = server.archive("platform.tar.xz", &["demo/app:1"]);
    let snapshot = "find /var/lib/podsec/registry /var/sigstore/sigstore | sort";
    let before = server.root_ok(snapshot);
    let load = |environment: &str, yes: &str| {
        server.maker(&format!(
            "{environment} podsec-load-sign-oci {yes} {} amd64 {EMAIL} </dev/null",
            archive.display()
        ))
    };
    for (environment, message) in [
        (
            "U7S_PLATFORM=c10f",
            "the archive's platform demo does not match this host's c10f; run with --yes to load it anyway",
        ),
        // Debian has no ALT platform in os-release.
        (
            "unset U7S_PLATFORM;",
            "the platform is unknown: set U7S_PLATFORM or give <registry>/<path>",
        ),
    ] {
        let out = load(environment, "");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{environment}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(message),
            "{environment}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).is_empty(),
            "{environment}: {}",
            text(&out.stdout)
        );
        assert_eq!(server.root_ok(snapshot), before, "{environment}: pushed");
    }
    let out = load("U7S_PLATFORM=c10f", "--yes");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("registry.local/demo/app:1")
            && text(&out.stdout).contains("1 of 1 images pushed and signed"),
        "{}",
        text(&out.stdout)
    );
    server.pull("registry.local/demo/app:1").unwrap();
    // The host's own platform needs no --yes.
    let out = load("U7S_PLATFORM=demo", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
}
