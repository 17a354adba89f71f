//! A real trivy server in a sandbox, with a vulnerability database the tests build themselves
//! (`scripts/trivy-bins` caches trivy and podsec-trivy-db), and Alpine-like test images whose
//! package database lists the packages the database has advisories for.

use std::path::PathBuf;

use crate::sandbox::Sandbox;

/// Keep in step with scripts/trivy-bins.
pub const VERSION: &str = "0.76.0";
pub const PLATFORM: &str = "alpine 3.19";

/// One planted advisory: a package, the version that fixes it, its ID, severity and title.
#[derive(Debug, Clone, Copy)]
pub struct Advisory {
    pub package: &'static str,
    pub installed: &'static str,
    pub fixed: &'static str,
    pub id: &'static str,
    pub severity: &'static str,
    pub title: &'static str,
}

pub const CRITICAL: Advisory = Advisory {
    package: "podsec-demo-crit",
    installed: "1.0.0-r0",
    fixed: "1.0.1-r0",
    id: "CVE-2099-0001",
    severity: "CRITICAL",
    title: "remote code execution in podsec-demo-crit",
};
pub const HIGH: Advisory = Advisory {
    package: "podsec-demo-high",
    installed: "2.0.0-r0",
    fixed: "2.0.1-r0",
    id: "CVE-2099-0002",
    severity: "HIGH",
    title: "privilege escalation in podsec-demo-high",
};
/// A package with no advisory.
pub const SAFE: (&str, &str) = ("podsec-demo-safe", "3.0.0-r0");

/// `~/.cache/podsec/trivy/<version>/bin` (or `PODSEC_TRIVY_BIN`), made by scripts/trivy-bins.
pub fn bin_dir() -> PathBuf {
    let dir = std::env::var_os("PODSEC_TRIVY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(format!(".cache/podsec/trivy/{VERSION}/bin"))
        });
    assert!(
        dir.join("trivy").exists() && dir.join("podsec-trivy-db").exists(),
        "{} lacks trivy or podsec-trivy-db: run scripts/trivy-bins (make test does)",
        dir.display()
    );
    dir
}

/// Builds the database with `advisories` into the sandbox's share directory and starts
/// `trivy server` on 127.0.0.1:4954 inside; returns once it answers.
pub fn start_server(sandbox: &Sandbox, advisories: &[Advisory]) {
    let bin = bin_dir();
    let cache = sandbox.share().join("trivy-server");
    let mut command = std::process::Command::new(bin.join("podsec-trivy-db"));
    command.arg("-dir").arg(cache.join("db"));
    for a in advisories {
        command.arg("-advisory").arg(format!(
            "{PLATFORM}|{}|{}|{}|{}|{}",
            a.package, a.fixed, a.id, a.severity, a.title
        ));
    }
    let output = command.output().expect("podsec-trivy-db");
    assert!(output.status.success(), "podsec-trivy-db: {output:?}");
    let trivy = bin.join("trivy");
    sandbox
        .spawn_daemon(
            "trivy-server",
            &[
                trivy.to_str().unwrap(),
                "server",
                "--listen",
                "127.0.0.1:4954",
                "--cache-dir",
                cache.to_str().unwrap(),
                "--skip-db-update",
            ],
        )
        .unwrap();
    let ready = sandbox.sh(
        "for i in $(seq 150); do curl -s -o /dev/null http://127.0.0.1:4954/ && exit 0; sleep 0.1; done; exit 1",
    );
    assert!(
        ready.status.success(),
        "trivy server did not start: {}",
        sandbox.daemon_log("trivy-server")
    );
}

/// The root file system of an Alpine 3.19-like image (busybox, os-release, an apk database
/// listing `packages`) written to `dir` inside the sandbox (a shell fragment's worth of work).
pub fn alpine_rootfs_script(dir: &str, packages: &[(&str, &str)]) -> String {
    let mut script = format!(
        "mkdir -p {dir}/bin {dir}/etc {dir}/lib/apk/db\n\
         cp /bin/busybox {dir}/bin/busybox\n\
         for tool in sh cat echo ls touch sleep; do ln -sf busybox {dir}/bin/$tool; done\n\
         echo 3.19.1 > {dir}/etc/alpine-release\n\
         printf 'NAME=\"Alpine Linux\"\\nID=alpine\\nVERSION_ID=3.19.1\\n' > {dir}/etc/os-release\n\
         : > {dir}/lib/apk/db/installed\n"
    );
    for (name, version) in packages {
        script.push_str(&format!(
            "printf 'P:{name}\\nV:{version}\\nA:x86_64\\no:{name}\\nL:MIT\\n\\n' >> {dir}/lib/apk/db/installed\n"
        ));
    }
    script
}

/// Commits `localhost/<name>` into root's storage of the sandbox from such a root file system.
pub fn alpine_image(sandbox: &Sandbox, name: &str, packages: &[(&str, &str)]) {
    let script = format!(
        "set -e\nroot=$(mktemp -d)\n{}ctr=$(buildah from scratch)\nbuildah copy \"$ctr\" \"$root/\" / >/dev/null\n\
         buildah config --cmd /bin/sh \"$ctr\"\nbuildah commit -q \"$ctr\" localhost/{name} >/dev/null\n\
         buildah rm \"$ctr\" >/dev/null\nrm -rf \"$root\"",
        alpine_rootfs_script("$root", packages)
    );
    sandbox.sh_ok(&script);
}
