//! podsec-inotify-check-policy and -check-images in the sandbox: a signature server built by the
//! podsec commands (registry, nginx, image maker, signed pushes), podman users with real
//! storage (root: overlay, rootless: vfs), a real journald receiving the findings, the project's
//! nagwad filter (rpm/nagwad/podsec.sed) applied with sed to journalctl's lines, and a real
//! postfix delivering the `-M root` mail.

use std::path::PathBuf;
use std::process::Output;

use podsec_tests::fixtures::{busybox_image, command_links, path_with_commands};
use podsec_tests::sandbox::{Options, Sandbox};
use serde_json::Value;

const SERVER_IP: &str = "192.0.2.10";
const MAKER: &str = "imagemaker";
const EMAIL: &str = "imagemaker@registry.local";
const POLICY: &str = "podsec-inotify-check-policy";
const IMAGES: &str = "podsec-inotify-check-images";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repo_file(relative: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

struct Node {
    sandbox: Sandbox,
}

impl Node {
    /// The signature server of the trust chain, with journald and postfix running.
    fn start() -> Node {
        let sandbox = Sandbox::start(&Options {
            name: None,
            addresses: vec![format!("{SERVER_IP}/32")],
        })
        .unwrap();
        let node = Node { sandbox };
        node.sandbox.sh_ok("mkdir -p /run/systemd/journal");
        node.sandbox
            .spawn_daemon("journald", &["/lib/systemd/systemd-journald"])
            .unwrap();
        node.sandbox.sh_ok(
            "for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && exit 0; sleep 0.05; done; exit 1",
        );
        node.root_ok("postfix start 2>&1");
        node.root_ok(&format!("podsec-create-policy {SERVER_IP}"));
        node.root_ok("podsec-create-services");
        node.root_ok(&format!(
            "podsec-create-imagemakeruser --batch --email {EMAIL} {MAKER}@registry.local/demo"
        ));
        node
    }

    fn run(&self, user: Option<&str>, script: &str) -> Output {
        let mut command = self
            .sandbox
            .command("sh")
            .args(["-c", script])
            .env("PATH", &path_with_commands());
        if let Some(user) = user {
            command = command.user(user);
        }
        command.output()
    }

    fn ok(&self, user: Option<&str>, script: &str) -> String {
        let out = self.run(user, script);
        assert!(
            out.status.success(),
            "{user:?}: {script}\nstdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn root_ok(&self, script: &str) -> String {
        self.ok(None, script)
    }

    /// A permissive policy for test plumbing (world-readable, for users too).
    fn accept_anything(&self) -> PathBuf {
        let path = self.sandbox.share().join("accept-anything.json");
        std::fs::write(&path, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
        path
    }

    /// A plugin run as root: (exit code, stdout, stderr).
    fn plugin(&self, command: &str, args: &[&str]) -> (i32, String, String) {
        let out = self
            .sandbox
            .command(command_links().join(command))
            .args(args)
            .output();
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    /// `journalctl -t <command>` in the short format, after `count` lines arrived.
    fn journal(&self, command: &str, count: usize) -> String {
        self.root_ok(&format!(
            "for i in $(seq 100); do [ $(journalctl -t {command} -o short --no-pager | grep -c '{command}\\[') -ge {count} ] && break; sleep 0.1; done; \
             journalctl -t {command} -o short --no-pager"
        ))
    }

    /// The journal lines through the nagwad filter, as nagwad applies it.
    fn nagwad(&self, command: &str) -> Vec<String> {
        let sed = repo_file("rpm/nagwad/podsec.sed");
        self.root_ok(&format!(
            "journalctl -t {command} -o short --no-pager | sed -n -f {}",
            sed.display()
        ))
        .lines()
        .map(str::to_string)
        .collect()
    }

    fn mail(&self, mailbox: &str, subject_start: &str, count: usize) -> String {
        self.root_ok(&format!(
            "for i in $(seq 150); do [ \"$(grep -c '^Subject: {subject_start}' {mailbox} 2>/dev/null)\" -ge {count} ] && exit 0; sleep 0.1; done; \
             echo no mail in {mailbox} >&2; mailq >&2; exit 1"
        ));
        self.root_ok(&format!("cat {mailbox}"))
    }
}

fn first_line(stdout: &str) -> &str {
    stdout.lines().next().unwrap_or_default()
}

/// The classes check-images reported for each user: user -> [(name, class)].
fn classes(report: &Value) -> Vec<(String, Vec<(String, String)>)> {
    report["data"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| {
            let mut images: Vec<(String, String)> = user["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i["name"].as_str().unwrap().to_string(),
                        i["class"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            images.sort();
            (user["user"].as_str().unwrap().to_string(), images)
        })
        .collect()
}

fn pair(name: &str, class: &str) -> (String, String) {
    (name.to_string(), class.to_string())
}

#[test]
fn check_images_verifies_the_podsec_chain_and_alerts_through_journald_nagwad_and_mail() {
    let node = Node::start();
    // Three images signed by the image maker through the podsec chain, one pushed unsigned.
    busybox_image(&node.sandbox, "bb");
    let layout = node.sandbox.share().join("layout");
    let archive = node.sandbox.share().join("app.tar.xz");
    let accept = node.accept_anything();
    node.root_ok(&format!(
        "set -e; mkdir -p {l}; for r in demo/app:1 demo/tampered:1 demo/foreign:1; do \
         skopeo --policy {a} copy -q containers-storage:localhost/bb oci:{l}/amd64:$r; done; \
         tar -C {l} -cJf {x} amd64; chmod 0644 {x}",
        l = layout.display(),
        a = accept.display(),
        x = archive.display()
    ));
    node.ok(
        Some(MAKER),
        &format!(
            "podsec-load-sign-oci {} amd64 {EMAIL} registry.local/demo",
            archive.display()
        ),
    );
    node.root_ok(&format!(
        "skopeo --policy {} copy -q --remove-signatures --dest-tls-verify=false containers-storage:localhost/bb docker://registry.local/demo/unsigned:1",
        accept.display()
    ));
    // root: one signed image pulled under the system policy, and the locally built localhost/bb
    node.root_ok("podman pull -q registry.local/demo/app:1 >/dev/null");
    // alice, a podman user: the signed images pulled under the policy; the unsigned one and a
    // local archive only by overriding the policy (what a user can do, and monitoring must see)
    node.root_ok("podsec-create-podmanusers --batch alice >/dev/null");
    let bb = node.sandbox.share().join("bb.tar");
    node.ok(
        Some("alice"),
        &format!(
            "set -e; for r in app tampered foreign; do podman pull -q registry.local/demo/$r:1 >/dev/null; done; \
             podman pull -q --signature-policy {a} registry.local/demo/unsigned:1 >/dev/null; \
             podman pull -q --signature-policy {a} docker-archive:{bb} >/dev/null",
            a = accept.display(),
            bb = bb.display()
        ),
    );
    // After the pulls: one signature corrupted, one replaced by a valid signature of a key the
    // policy does not trust.
    node.root_ok(
        "set -e; f=$(ls /var/sigstore/sigstore/demo/tampered@sha256=*/signature-1); \
         python3 -c \"import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=0xff; open(p,'wb').write(b)\" $f",
    );
    node.root_ok(&format!(
        "set -e; export GNUPGHOME=$(mktemp -d); \
         gpg --batch --passphrase '' --quick-gen-key 'Intruder <intruder@example.com>' ed25519 sign never 2>/dev/null; \
         m=$(mktemp -d); skopeo copy -q --src-tls-verify=false --policy {} docker://registry.local/demo/foreign:1 dir:$m; \
         f=$(ls /var/sigstore/sigstore/demo/foreign@sha256=*/signature-1); \
         skopeo standalone-sign $m/manifest.json registry.local/demo/foreign:1 intruder@example.com -o $f",
        accept.display()
    ));
    // mallory links her storage to root's: refused, not reported as her images
    node.root_ok(
        "useradd -m mallory && mkdir -p ~mallory/.local/share/containers && \
         ln -s /var/lib/containers/storage ~mallory/.local/share/containers/storage",
    );
    // no login shell is run: a shell that leaves a mark
    let mark = node.sandbox.share().join("login-shell-ran");
    node.root_ok(&format!(
        "printf '#!/bin/sh\\ntouch {}\\n' > /usr/local/bin/marking-shell && chmod 0755 /usr/local/bin/marking-shell && \
         usermod -s /usr/local/bin/marking-shell alice && usermod -s /usr/local/bin/marking-shell mallory",
        mark.display()
    ));

    let (code, stdout, stderr) = node.plugin(IMAGES, &["--json"]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        classes(&report),
        [
            (
                "root".to_string(),
                vec![
                    pair("localhost/bb:latest", "out-of-policy"),
                    pair("registry.local/demo/app:1", "signed"),
                ]
            ),
            (
                "alice".to_string(),
                vec![
                    pair("localhost/bb:latest", "out-of-policy"),
                    pair("registry.local/demo/app:1", "signed"),
                    pair("registry.local/demo/foreign:1", "invalid"),
                    pair("registry.local/demo/tampered:1", "invalid"),
                    pair("registry.local/demo/unsigned:1", "unsigned"),
                ]
            ),
        ],
        "{stdout}"
    );
    // the accepted signatures are the image maker's key
    let fingerprint = node
        .ok(
            Some(MAKER),
            &format!(
                "gpg --with-colons --list-keys {EMAIL} | awk -F: '/^fpr/ {{print $10; exit}}'"
            ),
        )
        .trim()
        .to_string();
    let signers: Vec<&str> = report["data"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|u| u["images"].as_array().unwrap())
        .filter(|i| i["class"] == "signed")
        .map(|i| i["signer"].as_str().unwrap())
        .collect();
    assert_eq!(signers, [fingerprint.as_str(), fingerprint.as_str()]);
    let weights: Vec<u64> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["weight"].as_u64().unwrap())
        .collect();
    assert_eq!(weights, [102, 103, 104]);
    assert_eq!(report["metric"], 309);
    assert_eq!(report["state"], "CRITICAL");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .as_str()
            .unwrap()
            .starts_with("user \"mallory\": ")
            && errors[0].as_str().unwrap().contains("refusing to follow"),
        "{errors:?}"
    );
    assert!(!mark.exists(), "a login shell was run");

    // The plain plugin run, as the timer does it, with mail to root.
    let (code, stdout, _) = node.plugin(IMAGES, &["-vvv", "-c", "100", "-M", "root"]);
    assert_eq!(code, 2, "{stdout}");
    assert_eq!(
        first_line(&stdout),
        "POLICY CRITICAL - Images that violate established policies, users: \"alice\" \"root\"; 1 item could not be checked | metric=309;;100;0;"
    );
    for line in [
        "Critical(102): Users \"alice\" have unsigned images: \"alice\": \"registry.local/demo/unsigned:1\"",
        "Critical(103): Users \"alice\" \"root\" have images outside of supported policies: \"alice\": \"localhost/bb:latest\"; \"root\": \"localhost/bb:latest\"",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line} missing in\n{stdout}"
        );
    }
    let mailbox = node.mail("/var/mail/root", "POLICY CRITICAL - Images", 1);
    assert!(
        mailbox.contains("Subject: POLICY CRITICAL - Images that violate established policies, users: \"alice\" \"root\""),
        "{mailbox}"
    );
    assert!(
        mailbox
            .contains("Critical(104): Users \"alice\" have images whose signatures do not verify"),
        "{mailbox}"
    );

    // journald has one line per finding (two runs: 2 x 3) and the error as a Warning.
    let journal = node.journal(IMAGES, 8);
    let findings = journal_messages(&journal, IMAGES);
    assert_eq!(findings.len(), 8, "{journal}");
    assert_eq!(
        findings
            .iter()
            .filter(|m| m.starts_with("Critical: 102: Users \"alice\" have unsigned images"))
            .count(),
        2
    );
    assert_eq!(
        findings
            .iter()
            .filter(|m| m.starts_with("Warning: cannot check: user \"mallory\""))
            .count(),
        2
    );
    let nagwad = node.nagwad(IMAGES);
    assert_eq!(nagwad.len(), 8, "{nagwad:?}");
    assert!(nagwad.iter().any(|l| l.starts_with(&format!("{IMAGES}:CRITICAL:{IMAGES}(Critical) 104: Users \"alice\" have images whose signatures do not verify"))), "{nagwad:?}");
    assert!(
        nagwad.iter().any(|l| l.starts_with(&format!(
            "{IMAGES}:WARNING:{IMAGES}(Warning) cannot check: user \"mallory\""
        ))),
        "{nagwad:?}"
    );
}

#[test]
fn check_policy_findings_exit_codes_levels_and_mail_match_hand_computed_values() {
    let node = Node::start();
    // alice: a podman user as podsec makes them (clean); dave: the same, and an administrator
    node.root_ok(
        "podsec-create-podmanusers --batch alice dave >/dev/null && usermod -aG sudo dave",
    );
    // bob: in group podman but without the locked configuration
    node.root_ok("useradd -m -g podman bob");
    // carol: images of her own, not in group podman
    node.root_ok("useradd -m carol");
    let bb = busybox_image(&node.sandbox, "bb");
    let accept = node.accept_anything();
    node.ok(
        Some("carol"),
        &format!(
            "podman pull -q --signature-policy {} docker-archive:{} >/dev/null",
            accept.display(),
            bb.display()
        ),
    );
    // erin: a podman user with her own open configuration
    node.root_ok("useradd -m -g podman erin");
    node.ok(
        Some("erin"),
        r#"set -e; mkdir -p ~/.config/containers/registries.d
        echo '{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"":[{"type":"insecureAcceptAnything"}]},"oci":{"":[{"type":"insecureAcceptAnything"}]}}}' > ~/.config/containers/policy.json
        printf 'default-docker:\n  lookaside: file:///home/erin/sigstore\n' > ~/.config/containers/registries.d/mine.yaml
        printf '[storage]\ndriver = "vfs"\n' > ~/.config/containers/storage.conf"#,
    );
    // frank: his own policy.json is broken; grace's is a link to /etc/shadow
    node.root_ok("useradd -m -g podman frank && useradd -m -g podman grace");
    node.ok(
        Some("frank"),
        "mkdir -p ~/.config/containers && echo '{' > ~/.config/containers/policy.json && echo '[storage]' > ~/.config/containers/storage.conf",
    );
    node.ok(
        Some("grace"),
        "mkdir -p ~/.config/containers && ln -s /etc/shadow ~/.config/containers/policy.json && echo '[storage]' > ~/.config/containers/storage.conf",
    );
    let before =
        node.root_ok("sha256sum /etc/shadow; find /home/*/.config /etc/containers -printf '%p %y %m %U %s %T@\\n' 2>/dev/null | sort | sha256sum");

    // Hand-computed: podman-only users (podman, not podman_dev, not root) are alice, bob, dave,
    // erin, frank, grace: N = 6. Without storage.conf: bob, 90*1/6 = 15. Able to change their
    // configuration: erin, frank, grace, 90*3/6 = 45. 101 carol; 102..106 erin (frank's and
    // grace's policies are errors); 107 dave.
    // 101+102+103+104+105+106+107+15+45 = 788.
    let (code, stdout, stderr) = node.plugin(POLICY, &["--json"]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let found: Vec<(u64, Vec<String>)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["weight"].as_u64().unwrap(),
                f["users"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        found,
        [
            (101, names(&["carol"])),
            (102, names(&["erin"])),
            (103, names(&["erin"])),
            (104, names(&["erin"])),
            (105, names(&["erin"])),
            (106, names(&["erin"])),
            (107, names(&["dave"])),
            (15, names(&["bob"])),
            (45, names(&["erin", "frank", "grace"])),
        ],
        "{stdout}"
    );
    assert_eq!(report["metric"], 788);
    assert_eq!(report["state"], "CRITICAL");
    let errors: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "user \"frank\": /home/frank/.config/containers/policy.json: not a valid policy.json"
        ),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("user \"grace\": ")
            && errors[1].contains("refusing to follow a symbolic link to /etc/shadow"),
        "{errors:?}"
    );
    // nothing written (no `.test` file, no change in any ~/.config or /etc/containers), no link
    // followed
    assert_eq!(
        node.root_ok("sha256sum /etc/shadow; find /home/*/.config /etc/containers -printf '%p %y %m %U %s %T@\\n' 2>/dev/null | sort | sha256sum"),
        before
    );
    // journald: one Critical line per finding of weight > 100 (default -c 100), the two errors
    // as Warnings; the nagwad filter maps them to CRITICAL and WARNING.
    let journal = node.journal(POLICY, 9);
    let messages = journal_messages(&journal, POLICY);
    assert_eq!(messages.len(), 9, "{journal}");
    assert_eq!(
        messages[0],
        "Critical: 101: Users \"carol\" have images but are not in the podman group"
    );
    assert_eq!(
        messages[6],
        "Critical: 107: Users \"dave\" are members of the podman group and of the administrators' group"
    );
    assert!(messages[7].starts_with("Warning: cannot check: user \"frank\""));
    let nagwad = node.nagwad(POLICY);
    assert_eq!(nagwad.len(), 9, "{nagwad:?}");
    assert_eq!(
        nagwad[5],
        format!(
            "{POLICY}:CRITICAL:{POLICY}(Critical) 106: Users \"erin\" do not use the signature store http://sigstore.local:81/sigstore/ as the default signature store"
        )
    );
    assert!(
        nagwad[8].starts_with(&format!(
            "{POLICY}:WARNING:{POLICY}(Warning) cannot check: user \"grace\""
        )),
        "{nagwad:?}"
    );

    // Without the broken files the same weights remain (frank and grace keep their own
    // writable directories) and no error.
    node.root_ok(
        "rm /home/frank/.config/containers/policy.json /home/grace/.config/containers/policy.json",
    );
    // One range per journal level: the level is the most severe whose range the weight leaves,
    // in severity order; the mail goes to root.
    let (code, stdout, _) = node.plugin(
        POLICY,
        &[
            "-a", "107", "-f", "106", "-c", "105", "-h", "104", "-m", "103", "-l", "0", "-M",
            "root",
        ],
    );
    assert_eq!(code, 2, "{stdout}");
    let status_tail = "Violation of user containerization policies by users: \"bob\" \"carol\" \"dave\" \"erin\" \"frank\" \"grace\"";
    assert_eq!(
        first_line(&stdout),
        format!("POLICY CRITICAL - {status_tail} | metric=788;;105;0;")
    );
    let journal = node.journal(POLICY, 18);
    let levels: Vec<&str> = journal_messages(&journal, POLICY)[9..]
        .iter()
        .map(|m| m.split_once(": ").unwrap().0)
        .collect();
    // 101 102 103 Low, 104 Middle, 105 High, 106 Critical, 107 Fatal, 15 and 45 Low
    assert_eq!(
        levels,
        [
            "Low", "Low", "Low", "Middle", "High", "Critical", "Fatal", "Low", "Low"
        ]
    );
    let nagwad = node.nagwad(POLICY);
    let new: Vec<&str> = nagwad[9..]
        .iter()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        new,
        [
            format!("{POLICY}:CRITICAL:{POLICY}(Middle)"),
            format!("{POLICY}:CRITICAL:{POLICY}(High)"),
            format!("{POLICY}:CRITICAL:{POLICY}(Critical)"),
            format!("{POLICY}:CRITICAL:{POLICY}(Fatal)"),
        ],
        "{nagwad:?}"
    );
    let mailbox = node.mail("/var/mail/root", "POLICY CRITICAL - Violation", 1);
    assert!(
        mailbox.contains(&format!("Subject: POLICY CRITICAL - {status_tail}\n")),
        "{mailbox}"
    );
    assert!(
        mailbox.contains("Fatal(107): Users \"dave\" are members of the podman group"),
        "{mailbox}"
    );
    assert!(
        mailbox.contains(
            "Low(15): Users \"bob\" do not have config file .config/containers/storage.conf"
        ),
        "{mailbox}"
    );

    // Every range form against the metric 788, and critical before warning.
    let within = format!("within the thresholds: {status_tail}");
    let ok = |range: &str| (0, format!("POLICY OK - {within} | metric=788;{range};0;"));
    let critical = |range: &str| {
        (
            2,
            format!("POLICY CRITICAL - {status_tail} | metric=788;{range};0;"),
        )
    };
    let warning = |range: &str| {
        (
            1,
            format!("POLICY WARNING - {status_tail} | metric=788;{range};0;"),
        )
    };
    let cases: Vec<(&[&str], (i32, String))> = vec![
        (&["-c", "788"], ok(";788")),
        (&["-c", "787"], critical(";787")),
        (&["-c", "789:"], critical(";789:")),
        (&["-c", "788:"], ok(";788:")),
        (&["-c", "~:788"], ok(";~:788")),
        (&["-c", "~:787"], critical(";~:787")),
        (&["-c", ":800"], ok(";:800")),
        (&["-c", "700:800"], ok(";700:800")),
        (&["-c", "800:900"], critical(";800:900")),
        (&["-c", "@700:800"], critical(";@700:800")),
        (&["-c", "@800:900"], ok(";@800:900")),
        (&["-w", "100", "-c", "1000"], warning("100;1000")),
        (&["-w", "@700:800", "-c", "1000"], warning("@700:800;1000")),
        (&["-w", "100", "-c", "500"], critical("100;500")),
        (&["-w", "1000", "-c", "1000"], ok("1000;1000")),
        (
            &["-c", "20-100"],
            (3, "POLICY UNKNOWN - invalid Nagios range '20-100': not a number (expected N, N:, ~:N, :N, A:B or @ before any of them)".to_string()),
        ),
        (
            &["-w", "10:5"],
            (3, "POLICY UNKNOWN - invalid Nagios range '10:5': start is greater than end (expected N, N:, ~:N, :N, A:B or @ before any of them)".to_string()),
        ),
    ];
    for (args, (expected_code, expected_line)) in &cases {
        let (code, stdout, _) = node.plugin(POLICY, args);
        assert_eq!(
            (code, first_line(&stdout)),
            (*expected_code, expected_line.as_str()),
            "{args:?}"
        );
    }
    // a usage error is UNKNOWN too (clap's own code 2 would read as CRITICAL)
    let (code, stdout, _) = node.plugin(POLICY, &["-h"]);
    assert_eq!(code, 3);
    assert!(
        first_line(&stdout).starts_with("POLICY UNKNOWN - "),
        "{stdout}"
    );
    // the tokens old unit files pass are ignored with a warning
    let (code, _, stderr) = node.plugin(POLICY, &["-vvv", "-c", "1000", ">/dev/null", "2>&1"]);
    assert_eq!(code, 0);
    assert!(
        stderr.contains("warning: ignoring argument '>/dev/null'"),
        "{stderr}"
    );
    // only root
    let out = node
        .sandbox
        .command(command_links().join(POLICY))
        .user("alice")
        .output();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        text(&out.stdout),
        "POLICY UNKNOWN - plugin must be run as root user\n"
    );
}

/// `<Level>: <text>` of each `<command>[<pid>]: ` line.
fn journal_messages<'a>(journal: &'a str, command: &str) -> Vec<&'a str> {
    journal
        .lines()
        .filter_map(|l| l.split_once(&format!("{command}[")).map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once("]: ").map(|(_, message)| message))
        .collect()
}

#[test]
fn units_verify_their_timers_are_preset_and_their_command_lines_run() {
    let sandbox = Sandbox::start(&Options::default()).unwrap();
    let units = repo_file("rpm/units");
    let names = [
        "podsec-inotify-check-policy.service",
        "podsec-inotify-check-policy.timer",
        "podsec-inotify-check-images.service",
        "podsec-inotify-check-images.timer",
    ];
    for name in names {
        let text = std::fs::read_to_string(units.join(name)).unwrap();
        assert!(
            !text.contains(">/dev/null") && !text.contains("2>&1") && !text.contains("2>/dev/null"),
            "{name}: shell redirections in a unit"
        );
        if name.ends_with(".service") {
            assert!(text.contains("\nSuccessExitStatus=1 2\n"), "{name}");
        } else {
            assert!(
                text.contains("\nOnCalendar=hourly\n")
                    && text.contains("\nWantedBy=timers.target\n"),
                "{name}"
            );
        }
    }
    sandbox.sh_ok(&format!(
        "cp {u}/podsec-inotify-check-policy.* {u}/podsec-inotify-check-images.* /etc/systemd/system/ && \
         ln -sf {p} /usr/bin/{POLICY} && ln -sf {i} /usr/bin/{IMAGES} && \
         {b} --generate man /usr/share/man/man1",
        b = podsec_tests::sandbox::target_dir().join("podsec-inotify").display(),
        u = units.display(),
        p = command_links().join(POLICY).display(),
        i = command_links().join(IMAGES).display()
    ));
    let verify = format!(
        "cd /etc/systemd/system && systemd-analyze verify {} 2>&1",
        names.join(" ")
    );
    let output = sandbox.sh(&verify);
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
    assert!(
        sandbox
            .sh_ok("systemd-analyze calendar hourly")
            .contains("Next elapse:")
    );
    // the check is real: a unit whose command is missing fails it
    sandbox.sh_ok(&format!("mv /usr/bin/{POLICY} /usr/bin/{POLICY}.away"));
    assert!(!sandbox.sh(&verify).status.success());
    sandbox.sh_ok(&format!("mv /usr/bin/{POLICY}.away /usr/bin/{POLICY}"));

    // The preset enables the timers (what %post_systemd applies on installation).
    let root = sandbox.share().join("installroot");
    sandbox.sh_ok(&format!(
        "set -e; mkdir -p {r}/lib/systemd/system {r}/lib/systemd/system-preset {r}/etc/systemd/system; \
         cp {u}/*.service {u}/*.timer {r}/lib/systemd/system/; cp {u}/85-podsec-inotify.preset {r}/lib/systemd/system-preset/; \
         printf 'disable *\\n' > {r}/lib/systemd/system-preset/99-default.preset; \
         systemctl --root={r} preset podsec-inotify-check-policy.timer podsec-inotify-check-images.timer podsec-inotify-check-policy.service 2>&1",
        r = root.display(),
        u = units.display()
    ));
    for timer in [
        "podsec-inotify-check-policy.timer",
        "podsec-inotify-check-images.timer",
    ] {
        let link = root
            .join("etc/systemd/system/timers.target.wants")
            .join(timer);
        assert!(
            link.symlink_metadata().is_ok(),
            "{timer} not enabled by the preset"
        );
    }

    // The ExecStart lines, run as systemd would run them (argument vector, no shell): no
    // warning about stray tokens, a plugin exit code, and the mail reaches root.
    sandbox.sh_ok("postfix start 2>&1 && mkdir -p /run/systemd/journal");
    sandbox
        .spawn_daemon("journald", &["/lib/systemd/systemd-journald"])
        .unwrap();
    sandbox.sh_ok(
        "for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && exit 0; sleep 0.05; done; exit 1",
    );
    for service in [
        "podsec-inotify-check-policy.service",
        "podsec-inotify-check-images.service",
    ] {
        let unit = std::fs::read_to_string(units.join(service)).unwrap();
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        let argv: Vec<&str> = exec.split(' ').collect();
        let out = sandbox.command(argv[0]).args(&argv[1..]).output();
        let code = out.status.code().unwrap();
        assert!([0, 1, 2].contains(&code), "{service}: {code} {out:?}");
        assert!(out.stderr.is_empty(), "{service}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with("POLICY "),
            "{service}: {}",
            text(&out.stdout)
        );
    }
    // this machine's stock policy (podman's insecureAcceptAnything) makes check-policy CRITICAL
    let mailbox = sandbox.sh_ok(
        "for i in $(seq 150); do grep -q '^Subject: POLICY CRITICAL' /var/mail/root 2>/dev/null && break; sleep 0.1; done; cat /var/mail/root",
    );
    assert!(
        mailbox.contains("Subject: POLICY CRITICAL - Violation of user containerization policies by users: \"root\""),
        "{mailbox}"
    );
}
