//! check-vuln and build-invulnerable-image against a real trivy 0.76 server in the sandbox, on
//! a vulnerability database built by the tests (trivy-db's own Go packages) with one CRITICAL
//! and one HIGH advisory for packages planted in Alpine-like test images; root's images and a
//! rootless user's (vfs); real journald and a real postfix delivering to root's mailbox.

use std::time::{Duration, Instant};

use podsec_tests::fixtures::path_with_commands;
use podsec_tests::sandbox::{Options, Sandbox};
use podsec_tests::trivy::{self, CRITICAL, HIGH, SAFE};

const VULN: &str = "podsec-inotify-check-vuln";
const BUILD: &str = "podsec-inotify-build-invulnerable-image";

fn path() -> String {
    format!("{}:{}", trivy::bin_dir().display(), path_with_commands())
}

fn node() -> Sandbox {
    let sandbox = Sandbox::start(&Options::default()).unwrap();
    sandbox.sh_ok("mkdir -p /run/systemd/journal");
    sandbox
        .spawn_daemon("journald", &["/lib/systemd/systemd-journald"])
        .unwrap();
    sandbox.sh_ok(
        "for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && exit 0; sleep 0.05; done; exit 1",
    );
    trivy::start_server(&sandbox, &[CRITICAL, HIGH]);
    sandbox
}

fn run(
    sandbox: &Sandbox,
    user: Option<&str>,
    program: &str,
    args: &[&str],
) -> std::process::Output {
    let mut command = sandbox
        .command(program)
        .args(args)
        .env("PATH", &path())
        .env("U7S_TRIVY_SERVER", "127.0.0.1");
    if let Some(user) = user {
        command = command.user(user);
    }
    command.output()
}

/// The journal lines of `tag` as (priority, message).
fn journal(sandbox: &Sandbox, tag: &str) -> Vec<(String, String)> {
    let json = sandbox.sh_ok(&format!("journalctl -t {tag} -o json --no-pager"));
    json.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["PRIORITY"].as_str().unwrap_or_default().to_string(),
                v["MESSAGE"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn wait_for_journal(sandbox: &Sandbox, tag: &str, priority: &str, message: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = journal(sandbox, tag);
        if lines.iter().any(|(p, m)| p == priority && m == message) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no <{priority}> {message:?} in {lines:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn finding(a: &trivy::Advisory) -> String {
    format!(
        "{} {} {} {} (fixed in {}): {}",
        a.severity, a.id, a.package, a.installed, a.fixed, a.title
    )
}

#[test]
fn check_vuln_scans_root_and_rootless_images_logs_and_mails_the_findings() {
    let sandbox = node();
    sandbox.sh_ok("postfix start 2>&1 && useradd -m alice");
    let crit = (CRITICAL.package, CRITICAL.installed);
    let high = (HIGH.package, HIGH.installed);
    trivy::alpine_image(&sandbox, "vuln-crit", &[crit, high, SAFE]);
    trivy::alpine_image(&sandbox, "clean", &[SAFE]);
    // an untagged image (its name moved to a newer build) must not stop the scan
    trivy::alpine_image(&sandbox, "dangling", &[high]);
    trivy::alpine_image(
        &sandbox,
        "dangling",
        &[SAFE, ("podsec-demo-other", "1.0-r0")],
    );
    let dangling_id =
        sandbox.sh_ok("podman images -q --filter dangling=true --no-trunc | head -n1");
    let dangling_id = dangling_id.trim().trim_start_matches("sha256:").to_string();
    assert_eq!(dangling_id.len(), 64, "no untagged image: {dangling_id}");
    // alice's own image, in her rootless (vfs) store
    trivy::alpine_image(&sandbox, "alice-high", &[high]);
    let archive = sandbox.share().join("alice-high.tar");
    sandbox.sh_ok(&format!(
        "echo '{{\"default\":[{{\"type\":\"insecureAcceptAnything\"}}]}}' > /root/any.json && \
         skopeo --policy /root/any.json copy -q containers-storage:localhost/alice-high docker-archive:{0}:localhost/alice-high:latest && \
         chmod 644 {0} && podman rmi -f localhost/alice-high >/dev/null",
        archive.display()
    ));
    let load = run(
        &sandbox,
        Some("alice"),
        "podman",
        &["load", "-q", "-i", archive.to_str().unwrap()],
    );
    assert!(load.status.success(), "{load:?}");

    // systemd's configuration before (upstream enabled podman.socket for good)
    let units = "find /etc/systemd /home/alice/.config /root/.config -printf '%p %T@\\n' 2>/dev/null | sort";
    let units_before = sandbox.sh_ok(units);
    // -m root mails each finding; the old unit's flags after it are tolerated
    let output = run(
        &sandbox,
        None,
        VULN,
        &["-m", "root", "-vvv", "-c", "100", ">/dev/null"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");

    let critical = "In the image localhost/vuln-crit:latest of the user root critical and high vulnerabilities were discovered. (CRITICAL: 1, HIGH: 1, lower: 0)";
    let untagged = format!(
        "In the image <none>@{} of the user root high vulnerabilities found. (CRITICAL: 0, HIGH: 1, lower: 0)",
        &dangling_id[..12]
    );
    let alices = "In the image localhost/alice-high:latest of the user alice high vulnerabilities found. (CRITICAL: 0, HIGH: 1, lower: 0)";
    let clean = "In the localhost/clean:latest image of the user root no vulnerabilities found.";
    for line in [critical, untagged.as_str(), alices, clean] {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    assert!(
        stdout.contains(&finding(&CRITICAL)) && stdout.contains(&finding(&HIGH)),
        "{stdout}"
    );

    // journald: Critical at crit (2), High at err (3); the clean image is not logged
    wait_for_journal(&sandbox, VULN, "2", &format!("Critical: {critical}"));
    wait_for_journal(&sandbox, VULN, "3", &format!("High: {untagged}"));
    wait_for_journal(&sandbox, VULN, "3", &format!("High: {alices}"));
    assert!(
        !journal(&sandbox, VULN)
            .iter()
            .any(|(_, m)| m.contains("clean"))
    );

    // root's mailbox: one mail per vulnerable image, carrying the findings themselves
    let mailbox = sandbox.sh_ok(
        "for i in $(seq 150); do [ \"$(grep -c '^Subject: Vulnerabilities found' /var/mail/root 2>/dev/null)\" -ge 3 ] && break; sleep 0.1; done; cat /var/mail/root",
    );
    assert_eq!(
        mailbox
            .matches("Subject: Vulnerabilities found in image")
            .count(),
        3,
        "{mailbox}"
    );
    let crit_mail = mailbox
        .split("\nFrom ")
        .find(|m| {
            m.contains(
                "Subject: Vulnerabilities found in image localhost/vuln-crit:latest of user root",
            )
        })
        .unwrap_or_else(|| panic!("{mailbox}"));
    assert!(crit_mail.contains(critical), "{crit_mail}");
    assert!(
        crit_mail.contains(&finding(&CRITICAL)) && crit_mail.contains(&finding(&HIGH)),
        "{crit_mail}"
    );
    assert!(mailbox.contains(
        "Subject: Vulnerabilities found in image localhost/alice-high:latest of user alice"
    ));

    // no side effects: no temporary directories, no trivy caches, no podman socket enabled
    let leftovers = sandbox.sh_ok(
        "ls -d /var/tmp/podsec-vuln.* /root/.cache/trivy /home/alice/.cache/trivy 2>/dev/null; true",
    );
    assert!(leftovers.trim().is_empty(), "left behind: {leftovers}");
    assert_eq!(
        sandbox.sh_ok(units),
        units_before,
        "systemd configuration changed"
    );

    // alice herself: only her images, as herself
    let output = run(&sandbox, Some("alice"), VULN, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("In the")).count(),
        1,
        "{stdout}"
    );
    assert!(stdout.contains(alices), "{stdout}");

    // the server unreachable: Fatal at alert (1) for each image, and as no image could be
    // scanned, exit 3 (the unit fails: systemd shows it)
    let output = sandbox
        .command(VULN)
        .env("PATH", &path())
        .env("U7S_TRIVY_SERVER", "127.0.0.9")
        .output();
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let fatal = journal(&sandbox, VULN);
    assert!(
        fatal.iter().any(|(p, m)| p == "1"
            && m.starts_with("Fatal: The trivy vulnerability analysis command failed for the image localhost/clean:latest of the user root: trivy")),
        "{fatal:#?}"
    );
    // a bad address or server: refused before anything runs
    let output = run(&sandbox, None, VULN, &["-m", "root\nBcc: x"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        format!("{VULN}: 'root\\nBcc: x' is not a mail address")
    );
    let output = sandbox
        .command(VULN)
        .env("PATH", &path())
        .env("U7S_TRIVY_SERVER", "evil/host")
        .output();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        format!("{VULN}: U7S_TRIVY_SERVER='evil/host' is not a host name or address")
    );
}

#[test]
fn build_invulnerable_image_exit_codes_and_removal() {
    let sandbox = node();
    trivy::alpine_image(&sandbox, "base", &[SAFE]);
    let context = sandbox.share().join("ctx");
    std::fs::create_dir_all(&context).unwrap();
    let installed = |packages: &[(&str, &str)]| {
        packages
            .iter()
            .map(|(n, v)| format!("P:{n}\nV:{v}\nA:x86_64\no:{n}\nL:MIT\n\n"))
            .collect::<String>()
    };
    std::fs::write(
        context.join("crit"),
        installed(&[(CRITICAL.package, CRITICAL.installed)]),
    )
    .unwrap();
    std::fs::write(
        context.join("high"),
        installed(&[(HIGH.package, HIGH.installed)]),
    )
    .unwrap();
    std::fs::write(context.join("safe"), installed(&[SAFE])).unwrap();
    for kind in ["crit", "high", "safe"] {
        std::fs::write(
            context.join(format!("Dockerfile.{kind}")),
            format!("FROM localhost/base\nCOPY {kind} /lib/apk/db/installed\n"),
        )
        .unwrap();
    }
    std::fs::write(
        context.join("Dockerfile.broken"),
        "FROM localhost/base\nCOPY missing /x\n",
    )
    .unwrap();
    let ctx = context.to_str().unwrap();
    let build = |image: &str, kind: &str| {
        let dockerfile = context.join(format!("Dockerfile.{kind}"));
        run(
            &sandbox,
            None,
            BUILD,
            &[image, dockerfile.to_str().unwrap(), ctx, "--pull=never"],
        )
    };
    let exists = |image: &str| {
        sandbox
            .sh(&format!("podman image exists {image}"))
            .status
            .success()
    };

    let output = build("localhost/app-crit", "crit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("Image localhost/app-crit of user root has been deleted."),
        "{stderr}"
    );
    assert!(!exists("localhost/app-crit"), "a CRITICAL image was kept");
    wait_for_journal(
        &sandbox,
        BUILD,
        "2",
        "Critical: In the image localhost/app-crit of the user root critical vulnerabilities have been discovered. (CRITICAL: 1, HIGH: 0, lower: 0)",
    );

    let output = build("localhost/app-high", "high");
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert!(!exists("localhost/app-high"));
    wait_for_journal(
        &sandbox,
        BUILD,
        "3",
        "High: In the image localhost/app-high of the user root high vulnerabilities found. (CRITICAL: 0, HIGH: 1, lower: 0)",
    );

    let output = build("localhost/app-safe", "safe");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(exists("localhost/app-safe"), "a clean image was removed");

    // only a name: scan, never remove
    trivy::alpine_image(
        &sandbox,
        "existing-crit",
        &[(CRITICAL.package, CRITICAL.installed)],
    );
    let output = run(&sandbox, None, BUILD, &["localhost/existing-crit"]);
    assert_eq!(output.status.code(), Some(5), "{output:?}");
    assert!(exists("localhost/existing-crit"));

    // build failure: 2 and Fatal; trivy unreachable: 3, Fatal, the built image removed
    let output = build("localhost/app-broken", "broken");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    wait_for_journal(
        &sandbox,
        BUILD,
        "1",
        "Fatal: Building image localhost/app-broken failed. Image analysis is skipped.",
    );
    let dockerfile = context.join("Dockerfile.safe");
    let output = sandbox
        .command(BUILD)
        .args(["localhost/app-offline", dockerfile.to_str().unwrap(), ctx])
        .env("PATH", &path())
        .env("U7S_TRIVY_SERVER", "127.0.0.9")
        .output();
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(!exists("localhost/app-offline"));

    // usage: the upstream format line, exit 1
    let output = run(&sandbox, None, BUILD, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!("Format: {BUILD} <image_name>"))
    );
}
