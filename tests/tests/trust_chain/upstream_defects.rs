//! Upstream's defects of the trust chain, each checked to stay fixed.

use super::*;

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
