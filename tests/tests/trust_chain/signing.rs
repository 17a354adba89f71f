//! Images signed through the chain and checked by skopeo and podman: good ones pass; unsigned,
//! tampered, foreign, badly archived or mismatched ones are refused before anything is pushed.

use super::*;

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
