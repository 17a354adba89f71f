//! Upgrade from upstream podsec 1.1.x (issue 7, acceptance 5). A sandbox gets the stand-in of
//! upstream's packages (tests/fixtures/upstream-podsec-1.1.20.spec: upstream's layout, owners,
//! modes and scriptlets) and the state upstream's tools leave: the policy.json history, an image
//! maker with keys, the u7s env file in root's and u7s-admin's copies, a kubeapi record owned by
//! u7s-admin, and a file u7s-admin put among the u7s programs. Then `rpm -U` with our packages:
//! the history and keys are untouched and still used by our commands, the env file is
//! converted into the typed node configuration, code and configuration belong to root.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use podsec_k8s::node_config::{NodeConfig, Role};
use podsec_tests::rpm::{PACKAGES, built, project_root};
use podsec_tests::sandbox::{Options, Sandbox};

/// Builds the upstream stand-in (noarch, seconds) into `dir`; returns its package files.
fn upstream_packages(dir: &Path) -> Vec<std::path::PathBuf> {
    let root = project_root();
    let out = Command::new("rpmbuild")
        .arg("--load")
        .arg(root.join("rpm/debian-test-build.macros"))
        .arg("--nodeps")
        .arg("--define")
        .arg(format!("_topdir {}", dir.display()))
        .arg("-bb")
        .arg(root.join("tests/fixtures/upstream-podsec-1.1.20.spec"))
        .output()
        .expect("rpmbuild");
    assert!(
        out.status.success(),
        "rpmbuild of the upstream stand-in: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let noarch = dir.join("RPMS/noarch");
    let mut files: Vec<_> = std::fs::read_dir(&noarch)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), PACKAGES.len(), "{files:?}");
    files
}

/// The env file upstream's wrapper wrote at `kubeadm init` on a c10f control plane.
const UPSTREAM_ENV: &str = "PATH=/usr/libexec/podsec/u7s/bin:/sbin/:/usr/sbin/:/bin:/usr/bin/
U7S_KUBEVERSION=v1.26.14
U7S_KUBEADMFLAGS='--apiserver-advertise-address 192.0.2.10 -v 0'
U7S_PLATFORM=k8s-c10f2
U7S_REGISTRY=registry.local
U7S_REGISTRY_PLATFORM=registry.local/c10f
U7S_IMAGES=' c10f/kube-apiserver:v1.26.14 c10f/pause:3.9'
U7S_PAUSE_IMAGE='c10f/pause:3.9'
U7S_UID=990
U7S_EXTIP=192.0.2.10
U7S_APISERVER_ADVERTISE_ADDRESS=192.0.2.10
U7S_APISERVER_BIND_PORT=6443
U7S_EXTDEV=eth0
U7S_CONTROLPLANE=initMaster
U7S_APISERVERENDPOINT=192.0.2.10:6443
U7S_TOKEN=
U7S_CACERTHASH=
U7S_CERIFICATEKEY=
U7S_SERVICECIDR=10.96.0.0/12
U7S_PODNETWORKCIDR=10.244.0.0/16
U7S_CNI_PLUGIN=flannel
U7S_ROOTLESSKIT_FLAGS=--cidr=10.96.0.0/12
U7S_SLIRP4IP=10.96.0.100
_CONTAINERS_ROOTLESS_UID=990
_CONTAINERS_USERNS_CONFIGURED=1
";

const POLICY: &str = r#"{
  "default": [{"type": "reject"}],
  "transports": {
    "docker": {
      "registry.local": [
        {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/var/sigstore/keys/imagemaker.pgp"}
      ]
    }
  }
}
"#;

/// What upstream's tools leave on a signature server that is also a control plane.
fn upstream_state(sandbox: &Sandbox) {
    let share = sandbox.share();
    std::fs::write(share.join("policy.json"), POLICY).unwrap();
    std::fs::write(share.join("env"), UPSTREAM_ENV).unwrap();
    sandbox.sh_ok(&format!(
        r#"set -e
        share={share}
        mkdir -p /etc/containers/registries.d /var/sigstore/keys /var/sigstore/sigstore
        echo '192.0.2.10 registry.local sigstore.local trivy.local' >> /etc/hosts
        cp $share/policy.json /etc/containers/policy_2024-01-01_10:00:00
        echo '{{"default": [{{"type": "insecureAcceptAnything"}}]}}' > /etc/containers/policy_2023-12-31_09:00:00
        ln -sfn policy_2024-01-01_10:00:00 /etc/containers/policy.json
        printf 'default-docker:\n  lookaside: http://sigstore.local:81/sigstore/\n' \
            > /etc/containers/registries.d/default_2024-01-01_10:00:00
        ln -sfn default_2024-01-01_10:00:00 /etc/containers/registries.d/default.yaml
        cp $share/policy.json /var/sigstore/keys/policy.json
        useradd -m -g podman -G podman_dev imagemaker
        install -d -o imagemaker -m 0700 ~imagemaker/.gnupg
        echo 'the image maker secret keyring' > ~imagemaker/.gnupg/pubring.kbx
        echo 'stand-in public key of imagemaker' > /var/sigstore/keys/imagemaker.pgp
        chown -R imagemaker: ~imagemaker/.gnupg
        install -m 0644 $share/env /etc/podsec/u7s/config/env
        install -d -o u7s-admin -g u7s-admin /var/lib/u7s-admin/.config/usernetes
        install -m 0600 -o u7s-admin $share/env /var/lib/u7s-admin/.config/usernetes/env
        echo '#!/bin/sh' > /usr/libexec/podsec/u7s/bin/planted.sh
        chown u7s-admin: /usr/libexec/podsec/u7s/bin/planted.sh
        chmod 0700 /usr/libexec/podsec/u7s/bin/planted.sh
        echo '["2024-01-01T00:00:00Z","10.0.0.1","an old refused request"]' \
            > /var/lib/podsec/u7s/log/kubeapi/forbidden.log
        chown -R u7s-admin: /var/lib/podsec/u7s/log
        "#,
        share = share.display()
    ));
}

/// sha256 of every file that must survive the upgrade unchanged, and the history links.
fn kept(sandbox: &Sandbox) -> String {
    sandbox.sh_ok(
        "cd / && sha256sum etc/containers/policy_* etc/containers/registries.d/default_* \
         var/sigstore/keys/* home/imagemaker/.gnupg/* \
         && readlink etc/containers/policy.json etc/containers/registries.d/default.yaml",
    )
}

fn files_of(built_rpms: &BTreeMap<String, std::path::PathBuf>, sandbox: &Sandbox) -> Vec<String> {
    built_rpms
        .iter()
        .map(|(name, path)| {
            let copy = sandbox.share().join(format!("ours-{name}.rpm"));
            std::fs::copy(path, &copy).unwrap();
            copy.display().to_string()
        })
        .collect()
}

#[test]
fn a_host_with_upstream_podsec_keeps_working_after_the_upgrade() {
    let upstream_dir = tempfile::tempdir().unwrap();
    let upstream = upstream_packages(upstream_dir.path());
    let ours = &built().rpms;
    // The signature server's address, bound as upstream's create-policy bound it.
    let sandbox = Sandbox::start(&Options {
        name: None,
        addresses: vec!["192.0.2.10/32".into()],
    })
    .expect("sandbox");
    let upstream: Vec<String> = upstream
        .iter()
        .map(|p| {
            let copy = sandbox.share().join(p.file_name().unwrap());
            std::fs::copy(p, &copy).unwrap();
            copy.display().to_string()
        })
        .collect();
    sandbox.sh_ok(&format!("rpm -i --nodeps {} 2>&1", upstream.join(" ")));
    // Upstream's layout as its spec had it: code owned by the service account.
    assert_eq!(
        sandbox
            .sh_ok("stat -c '%U %a' /usr/libexec/podsec/u7s/bin/u7sinit.sh /usr/bin/podsec-u7s-functions")
            .lines()
            .collect::<Vec<_>>(),
        ["u7s-admin 700", "u7s-admin 755"]
    );
    upstream_state(&sandbox);
    let before = kept(&sandbox);

    let upgrade = sandbox.sh_ok(&format!(
        "rpm -U --nodeps {} 2>&1",
        files_of(ours, &sandbox).join(" ")
    ));
    let versions =
        sandbox.sh_ok("rpm -qa --qf '%{NAME} %{VERSION}-%{RELEASE}\\n' 'podsec*' | sort");
    let expected: Vec<String> = {
        let mut v: Vec<String> = PACKAGES
            .iter()
            .map(|p| format!("{p} {}-alt1", env!("CARGO_PKG_VERSION")))
            .collect();
        v.sort();
        v
    };
    assert_eq!(versions.lines().collect::<Vec<_>>(), expected, "{upgrade}");

    // The policy history, the published policy and the image maker's keys are untouched.
    assert_eq!(kept(&sandbox), before, "{upgrade}");

    // The env file became the node configuration: root's, 0644, strict TOML with the values.
    assert!(
        upgrade.contains("converted into /etc/podsec/u7s/node.toml"),
        "{upgrade}"
    );
    assert!(
        upgrade.contains("not carried over: U7S_KUBEADMFLAGS"),
        "{upgrade}"
    );
    assert_eq!(
        sandbox
            .sh_ok("stat -c '%U %G %a' /etc/podsec/u7s/node.toml")
            .trim(),
        "root root 644"
    );
    let text = sandbox.sh_ok("cat /etc/podsec/u7s/node.toml");
    let config = NodeConfig::from_toml(&text, Path::new("node.toml")).expect("valid node.toml");
    let uid: u32 = sandbox.sh_ok("id -u u7s-admin").trim().parse().unwrap();
    assert_eq!(config.role, Role::InitMaster);
    assert_eq!(config.uid, uid);
    assert_eq!(config.kubernetes_version.to_string(), "v1.26.14");
    assert_eq!(config.registry, "registry.local");
    assert_eq!(config.platform.as_deref(), Some("c10f"));
    assert_eq!(config.pause_image, "registry.local/c10f/pause:3.9");
    assert_eq!(config.external_ip.to_string(), "192.0.2.10");
    assert_eq!(config.service_cidr.to_string(), "10.96.0.0/12");
    assert!(
        !text.contains("TOKEN") && !text.contains("--cidr"),
        "{text}"
    );
    // Converting again changes nothing.
    let again = sandbox.sh_ok("podsec-k8s --import-upstream-env");
    assert!(again.contains("exists; nothing to import"), "{again}");

    // Code and configuration are root's; what u7s-admin left among the programs is moved away.
    let foreign = sandbox.sh_ok(
        "find /usr/libexec/podsec /usr/bin /etc/podsec -xdev \\( -user u7s-admin -o -group u7s-admin \
         -o \\( -perm /022 -path '*podsec*' \\) \\) ! -type l -print",
    );
    assert!(
        foreign.is_empty(),
        "still the service account's or writable: {foreign}"
    );
    assert!(
        upgrade.contains("/usr/libexec/podsec/u7s/bin/planted.sh"),
        "{upgrade}"
    );
    sandbox.sh_ok("test ! -e /usr/libexec/podsec/u7s/bin/planted.sh");
    sandbox.sh_ok("test -f /var/lib/podsec/upgrade-quarantine/planted.sh");
    assert_eq!(
        sandbox
            .sh_ok("stat -c '%U %a' /var/lib/podsec/upgrade-quarantine")
            .trim(),
        "root 700"
    );
    // Upstream's shell helpers are gone; the kubeadm link is ours.
    sandbox.sh_ok(
        "test ! -e /usr/bin/podsec-u7s-functions && test ! -e /usr/bin/podsec-functions \
         && test ! -e /usr/libexec/podsec/u7s/bin/u7sinit.sh",
    );
    assert_eq!(
        sandbox
            .sh_ok("readlink /usr/libexec/podsec/u7s/bin/kubeadm")
            .trim(),
        "/usr/bin/podsec-u7s-kubeadm"
    );
    // The account now has subordinate ids (upstream created none).
    sandbox.sh_ok("grep -q '^u7s-admin:' /etc/subuid && grep -q '^u7s-admin:' /etc/subgid");
    // Data stays the account's.
    assert_eq!(
        sandbox
            .sh_ok("stat -c %U /var/lib/u7s-admin/.config/usernetes/env")
            .trim(),
        "u7s-admin"
    );

    // The kubeapi watcher works on the upgraded record directory (now root's) and keeps it.
    assert_eq!(
        sandbox
            .sh_ok("stat -c '%U %a' /var/lib/podsec/u7s/log/kubeapi")
            .trim(),
        "root 700"
    );
    let event = serde_json::json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": "00000001-aaaa", "stage": "ResponseComplete",
        "requestURI": "/api/v1/secrets", "verb": "list",
        "user": {"username": "mallory", "groups": ["system:authenticated"]},
        "sourceIPs": ["192.0.2.99"],
        "responseStatus": {"metadata": {}, "status": "Failure", "code": 403,
            "message": "secrets is forbidden: User \"mallory\" cannot list resource \"secrets\""},
        "requestReceivedTimestamp": "2025-01-01T00:00:00.000000Z",
        "stageTimestamp": "2025-01-01T00:00:00.000000Z",
    });
    std::fs::write(sandbox.share().join("audit.log"), format!("{event}\n")).unwrap();
    sandbox.sh_ok(&format!(
        "mkdir -p /etc/kubernetes/audit && cp {}/audit.log /etc/kubernetes/audit/audit.log \
         && podsec-inotify-check-kubeapi --once",
        sandbox.share().display()
    ));
    let record = sandbox.sh_ok("cat /var/lib/podsec/u7s/log/kubeapi/forbidden.log");
    assert!(
        record.contains("an old refused request") && record.contains("mallory"),
        "{record}"
    );

    // Our commands work on upstream's trust chain: a second image maker joins, the first one's
    // rule and key stay, the history grows by one version.
    sandbox.sh_ok(
        "podsec-create-imagemakeruser --batch --email second@registry.local \
         second@registry.local/second 2>&1",
    );
    let policy = sandbox.sh_ok("cat /etc/containers/policy.json");
    assert!(
        policy.contains("/var/sigstore/keys/imagemaker.pgp")
            && policy.contains("/var/sigstore/keys/second.pgp"),
        "{policy}"
    );
    // The signature store becomes root's: upstream's imagemaker, whose scope is the whole
    // registry, keeps the top (an ACL entry), the second maker writes only in its own directory.
    assert_eq!(
        sandbox.sh_ok("stat -c '%U:%G %A' /var/sigstore/sigstore /var/sigstore/sigstore/second"),
        "root:root drwxrwxr-t\nsecond:podman_dev drwxr-xr-x\n"
    );
    let as_user = |user: &str, script: &str| {
        sandbox
            .command("sh")
            .args(["-c", script])
            .user(user)
            .output()
            .status
            .success()
    };
    assert!(as_user(
        "imagemaker",
        "mkdir /var/sigstore/sigstore/c10f && rmdir /var/sigstore/sigstore/c10f"
    ));
    assert!(!as_user("second", "mkdir /var/sigstore/sigstore/c10f"));
    let after = kept(&sandbox);
    for line in before
        .lines()
        .filter(|l| l.contains("policy_") || l.contains("imagemaker"))
    {
        assert!(after.contains(line), "kept: {line}\n{after}");
    }
    assert_eq!(
        sandbox
            .sh_ok("ls /etc/containers/ | grep -c '^policy_'")
            .trim(),
        "3"
    );

    // Every package verifies.
    let verify = sandbox.sh(&format!("rpm -V --nodeps {}", PACKAGES.join(" ")));
    assert!(
        verify.status.success(),
        "rpm -V: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
