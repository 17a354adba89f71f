//! podsec-inotify-check-kubeapi in the sandbox: a generated audit.k8s.io/v1 log at its real path,
//! rotated the apiserver's way (rename to `audit-<timestamp>.log`) and logrotate's way
//! (copytruncate, the writer paused), the follower killed with SIGKILL and restarted; a real
//! journald receiving the `Critical: [...]` lines, a real postfix delivering the `-m` mail, and
//! the systemd units checked by `systemd-analyze verify`.

use std::ops::Range;
use std::time::{Duration, Instant};

use podsec_tests::fixtures::{command_links, path_with_commands};
use podsec_tests::sandbox::{Options, Sandbox};

const COMMAND: &str = "podsec-inotify-check-kubeapi";
const AUDIT: &str = "/etc/kubernetes/audit/audit.log";
const STATE: &str = "/var/lib/podsec/u7s/log/kubeapi";
const FORBIDDEN: &str = "/var/lib/podsec/u7s/log/kubeapi/forbidden.log";
const SUBJECT: &str = "Detected requests to the kubernetes cluster with excess authority";

fn binary() -> String {
    command_links().join(COMMAND).display().to_string()
}

fn timestamp(i: usize) -> String {
    format!(
        "2024-05-01T{:02}:{:02}:{:02}.{:06}Z",
        i / 3600 % 24,
        i / 60 % 60,
        i % 60,
        i
    )
}

/// Audit events `range`: every third refused (401, 403, 404, 500 in turn), some still at the
/// RequestReceived stage (no status), the rest 200. Returns the lines and the forbidden.log
/// records expected from them, written out by hand rather than by the code under test.
fn events(range: Range<usize>) -> (String, Vec<Record>) {
    let mut text = String::new();
    let mut records = Vec::new();
    for i in range {
        let ip = format!("10.0.{}.{}", i / 250 % 250, i % 250);
        let failed = i % 3 == 0;
        let code = if failed {
            [401, 403, 404, 500][i / 3 % 4]
        } else {
            200
        };
        let message = format!("pods is forbidden: User \"u{i}\" cannot list resource \"pods\"");
        let mut event = serde_json::json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": format!("{i:08}-aaaa-bbbb"), "stage": "ResponseComplete",
            "requestURI": format!("/api/v1/namespaces/ns{}/pods", i % 5), "verb": "list",
            "user": {"username": format!("u{i}"), "groups": ["system:authenticated"]},
            "sourceIPs": [ip, "192.0.2.1"], "userAgent": "kubectl/v1.30.2",
            "objectRef": {"resource": "pods", "namespace": format!("ns{}", i % 5), "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": code},
            "requestReceivedTimestamp": timestamp(i), "stageTimestamp": timestamp(i),
            "annotations": {"authorization.k8s.io/decision": if failed { "forbid" } else { "allow" }},
        });
        if failed {
            event["responseStatus"]["status"] = "Failure".into();
            event["responseStatus"]["message"] = message.clone().into();
            records.push(Record {
                line: format!(
                    r#"["{}","{ip}","{}"]"#,
                    timestamp(i),
                    message.replace('"', "\\\"")
                ),
                denied: matches!(code, 401 | 403),
                code,
            });
        } else if i % 50 == 1 {
            event["stage"] = "RequestReceived".into();
            event.as_object_mut().unwrap().remove("responseStatus");
        }
        text.push_str(&event.to_string());
        text.push('\n');
    }
    (text, records)
}

#[derive(Debug, Clone)]
struct Record {
    line: String,
    code: u16,
    denied: bool,
}

fn lines(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.line.clone()).collect()
}

struct Node {
    sandbox: Sandbox,
    files: usize,
}

impl Node {
    fn start() -> Node {
        let sandbox = Sandbox::start(&Options::default()).unwrap();
        sandbox.sh_ok("mkdir -p /etc/kubernetes/audit && chmod 0700 /etc/kubernetes/audit");
        Node { sandbox, files: 0 }
    }

    fn start_journald(&self) {
        self.sandbox.sh_ok("mkdir -p /run/systemd/journal");
        self.sandbox
            .spawn_daemon("journald", &["/lib/systemd/systemd-journald"])
            .unwrap();
        self.sandbox.sh_ok(
            "for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && exit 0; sleep 0.05; done; exit 1",
        );
    }

    /// Writes `text` to a file in the share directory and returns its path.
    fn stage(&mut self, text: &str) -> String {
        self.files += 1;
        let path = self.sandbox.share().join(format!("batch-{}", self.files));
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// Runs `script` with `$batch` set to a staged copy of `text`.
    fn with_batch(&mut self, text: &str, script: &str) {
        let batch = self.stage(text);
        self.sandbox
            .sh_ok(&format!("batch={batch}; audit={AUDIT}; set -e; {script}"));
    }

    fn append(&mut self, text: &str) {
        self.with_batch(text, "cat \"$batch\" >> \"$audit\"");
    }

    /// Starts the follower; its pid goes to /run/<label>.pid.
    fn start_follower(&self, label: &str) {
        self.sandbox
            .spawn_daemon(
                label,
                &[
                    "sh",
                    "-c",
                    &format!("echo $$ > /run/{label}.pid; exec {} -d", binary()),
                ],
            )
            .unwrap();
        self.sandbox.sh_ok(&format!(
            "for i in $(seq 100); do [ -s /run/{label}.pid ] && exit 0; sleep 0.05; done; exit 1"
        ));
    }

    fn signal(&self, label: &str, signal: &str) {
        self.sandbox.sh_ok(&format!(
            "pid=$(cat /run/{label}.pid); kill -{signal} $pid; \
             for i in $(seq 200); do grep -qs '^State:[[:space:]]*[^Z]' /proc/$pid/status || exit 0; sleep 0.05; done; \
             echo $pid still running >&2; exit 1"
        ));
    }

    fn forbidden(&self) -> Vec<String> {
        self.sandbox
            .sh_ok(&format!("cat {FORBIDDEN} 2>/dev/null || true"))
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until forbidden.log holds `expected` (and stays so for a moment: no late
    /// duplicates), else fails showing the difference.
    fn expect_forbidden(&self, expected: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen;
        loop {
            seen = self.forbidden();
            if seen.len() >= expected.len() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(800));
        seen = self.forbidden();
        if seen != expected {
            let first_difference = seen.iter().zip(expected).position(|(a, b)| a != b);
            panic!(
                "forbidden.log has {} lines, expected {}; first difference at {first_difference:?}\n\
                 seen[..]: {:?}\nexpected[..]: {:?}",
                seen.len(),
                expected.len(),
                first_difference.map(|i| &seen[i]),
                first_difference.map(|i| &expected[i]),
            );
        }
    }
}

#[test]
fn follower_records_every_refusal_exactly_once_across_rotations_and_kill_9() {
    let mut node = Node::start();
    node.start_journald();
    let mut expected: Vec<Record> = Vec::new();

    // Events already in the log when the follower starts are read from the beginning.
    let (text, records) = events(0..300);
    node.append(&text);
    expected.extend(records);
    node.start_follower("follower-1");
    node.expect_forbidden(&lines(&expected));

    // Rename rotation as the apiserver does it, right after a write the follower may not have
    // read yet: the end of the old file comes first, then the new file.
    let (before, r1) = events(300..600);
    let (after, r2) = events(600..700);
    let after_file = node.stage(&after);
    node.with_batch(
        &before,
        &format!(
            "cat \"$batch\" >> \"$audit\"; mv \"$audit\" /etc/kubernetes/audit/audit-2024-05-01T10-00-00.000.log; \
             cat {after_file} > \"$audit\""
        ),
    );
    expected.extend(r1);
    expected.extend(r2);
    node.expect_forbidden(&lines(&expected));

    // copytruncate as logrotate does it, the writer paused in between: the events written just
    // before the copy are read from the copy, the file then starts over.
    let (before, r1) = events(700..1000);
    let (after, r2) = events(1000..1100);
    let after_file = node.stage(&after);
    node.with_batch(
        &before,
        &format!(
            "cat \"$batch\" >> \"$audit\"; cp \"$audit\" /etc/kubernetes/audit/audit.log.1; \
             truncate -s 0 \"$audit\"; cat {after_file} >> \"$audit\""
        ),
    );
    expected.extend(r1);
    expected.extend(r2);
    node.expect_forbidden(&lines(&expected));

    // SIGKILL in the middle of a large write; while it is down, a commit torn between
    // forbidden.log and the position (simulated: a record without its position), more events,
    // and a rename rotation. The restart cuts the torn record, finishes the rotated file and
    // reads the new one.
    let (big, r1) = events(1100..4100);
    node.with_batch(&big, "cat \"$batch\" >> \"$audit\"; sleep 0.3");
    node.signal("follower-1", "KILL");
    node.sandbox
        .sh_ok(&format!("echo '[\"torn\",\"commit\",null]' >> {FORBIDDEN}"));
    let (down, r2) = events(4100..4400);
    node.append(&down);
    let (new_file, r3) = events(4400..4500);
    let new_file = node.stage(&new_file);
    node.sandbox.sh_ok(&format!(
        "mv {AUDIT} /etc/kubernetes/audit/audit-2024-05-01T11-00-00.000.log; cat {new_file} > {AUDIT}"
    ));
    expected.extend(r1);
    expected.extend(r2);
    expected.extend(r3);
    node.start_follower("follower-2");
    node.expect_forbidden(&lines(&expected));

    // A malformed line is skipped and counted; the line after it is still recorded.
    let (tail, r4) = events(4500..4510);
    node.append(&format!(
        "{{\"kind\":\"Event\",\"responseStatus\":{{\"code\":403\n{tail}"
    ));
    expected.extend(r4);
    node.expect_forbidden(&lines(&expected));
    node.signal("follower-2", "TERM");
    let log = node.sandbox.daemon_log("follower-2");
    assert!(
        log.contains(&format!(
            "{COMMAND}: 1 malformed audit log lines skipped so far"
        )),
        "{log}"
    );

    // journald got one `Critical: [...]` line per record, with the crit priority; SIGKILL may
    // repeat a syslog line (at least once), never forbidden.log.
    let journal = node.sandbox.sh_ok(&format!(
        "journalctl -t {COMMAND} -p crit -o cat --no-pager"
    ));
    let journal: std::collections::HashSet<&str> = journal.lines().collect();
    for record in &expected {
        let line = if record.denied {
            format!("Critical: {} access denied ({})", record.line, record.code)
        } else {
            format!("Critical: {}", record.line)
        };
        assert!(journal.contains(line.as_str()), "journal lacks {line}");
    }
    let unexpected: Vec<&&str> = journal
        .iter()
        .filter(|l| !l.starts_with("Critical: [\""))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    // the state directory is the command's own, root's and private
    let mode = node.sandbox.sh_ok(&format!("stat -c '%a %U' {STATE}"));
    assert_eq!(mode.trim(), "700 root");
}

#[test]
fn mail_delivers_the_record_and_rotates_it_without_losing_events() {
    let mut node = Node::start();
    node.sandbox
        .sh_ok("postfix start 2>&1 && useradd -m secadmin");
    let (text, first) = events(0..90);
    node.append(&text);
    node.start_follower("follower");
    node.expect_forbidden(&lines(&first));

    // -m moves the record aside and mails it; events written right after land in the new
    // forbidden.log that the running follower switches to.
    let (more, second) = events(90..150);
    let more_file = node.stage(&more);
    let output = node
        .sandbox
        .command("sh")
        .args(["-c", &format!("{COMMAND} -m && cat {more_file} >> {AUDIT}")])
        .env("PATH", &path_with_commands())
        .env("MAILTO", "")
        .output();
    assert!(output.status.success(), "{output:?}");
    node.expect_forbidden(&lines(&second));
    let mailbox = wait_for_mail(&node.sandbox, "/var/mail/root", 1);
    assert_mail_holds(&mailbox, &lines(&first), &lines(&second));

    // MAILTO names the recipient (upstream always mailed root)
    let output = node
        .sandbox
        .command(binary())
        .arg("-m")
        .env("MAILTO", "secadmin")
        .output();
    assert!(output.status.success(), "{output:?}");
    let mailbox = wait_for_mail(&node.sandbox, "/var/mail/secadmin", 1);
    assert_mail_holds(&mailbox, &lines(&second), &lines(&first));
    assert!(node.forbidden().is_empty());
    let leftovers = node.sandbox.sh_ok(&format!("ls {STATE}"));
    assert!(!leftovers.contains("forbidden.log."), "{leftovers}");

    // nothing new: no mail
    let output = node.sandbox.command(binary()).arg("-m").output();
    assert!(output.status.success(), "{output:?}");
    std::thread::sleep(Duration::from_secs(2));
    let mailbox = node.sandbox.sh_ok("cat /var/mail/root");
    assert_eq!(mailbox.matches(&format!("Subject: {SUBJECT}")).count(), 1);
}

fn wait_for_mail(sandbox: &Sandbox, mailbox: &str, messages: usize) -> String {
    sandbox.sh_ok(&format!(
        "for i in $(seq 150); do [ \"$(grep -c '^Subject: {SUBJECT}' {mailbox} 2>/dev/null)\" -ge {messages} ] && exit 0; sleep 0.1; done; \
         echo no mail in {mailbox} >&2; mailq >&2; exit 1"
    ));
    sandbox.sh_ok(&format!("cat {mailbox}"))
}

fn assert_mail_holds(mailbox: &str, present: &[String], absent: &[String]) {
    assert_eq!(
        mailbox.matches(&format!("Subject: {SUBJECT}")).count(),
        1,
        "{mailbox}"
    );
    for line in present {
        assert_eq!(
            mailbox.matches(line.as_str()).count(),
            1,
            "{line} in {mailbox}"
        );
    }
    for line in absent {
        assert!(!mailbox.contains(line.as_str()), "{line} in {mailbox}");
    }
}

#[test]
fn edge_cases_missing_log_stray_tokens_symlinks_and_non_root() {
    let mut node = Node::start();
    let run = |node: &Node, args: &[&str]| node.sandbox.command(binary()).args(args).output();

    // no audit log: --once notes it and succeeds (timers on non-control-plane nodes)
    let output = run(&node, &["--once", ">/dev/null", "2>&1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("no audit log"), "{stderr}");
    // the tokens old unit files pass are ignored, with a warning
    assert!(
        stderr.contains("warning: ignoring argument '>/dev/null'")
            && stderr.contains("warning: ignoring argument '2>&1'"),
        "{stderr}"
    );
    // no mode, or two: a usage error
    assert_eq!(run(&node, &[]).status.code(), Some(2));
    assert_eq!(run(&node, &["-d", "-m"]).status.code(), Some(2));

    // -d waits for the log to appear instead of exiting (upstream restart-looped)
    node.start_follower("waiting");
    std::thread::sleep(Duration::from_millis(800));
    node.sandbox.sh_ok("kill -0 $(cat /run/waiting.pid)");
    let (text, records) = events(0..30);
    node.append(&text);
    node.expect_forbidden(&lines(&records));
    assert!(
        node.sandbox
            .daemon_log("waiting")
            .contains("waiting for the audit log to appear")
    );
    node.signal("waiting", "TERM");

    // a symlink at the audit log's path is refused, not followed
    node.sandbox.sh_ok(&format!(
        "mv {AUDIT} /etc/kubernetes/audit/real.log; ln -s /etc/shadow {AUDIT}"
    ));
    let output = run(&node, &["--once"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!("{COMMAND}: {AUDIT}: refusing to follow a symbolic link")
    );
    assert_eq!(node.forbidden(), lines(&records));

    // a planted symlink in place of forbidden.log is not followed either
    node.sandbox.sh_ok(&format!(
        "rm {AUDIT}; mv /etc/kubernetes/audit/real.log {AUDIT}; \
         mv {FORBIDDEN} {STATE}/saved; ln -s /etc/passwd {FORBIDDEN}; \
         cp /etc/passwd /root/passwd.before; rm {STATE}/position"
    ));
    let output = run(&node, &["--once"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("refusing to follow a symbolic link"),
        "{output:?}"
    );
    node.sandbox.sh_ok("cmp /etc/passwd /root/passwd.before");

    // only root
    node.sandbox.sh_ok("useradd -m bob");
    let output = node
        .sandbox
        .command(binary())
        .arg("--once")
        .user("bob")
        .output();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("must be run as root"),
        "{output:?}"
    );
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let sandbox = Sandbox::start(&Options::default()).unwrap();
    let units = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rpm/units");
    let names = [
        "podsec-inotify-check-kubeapi.service",
        "podsec-inotify-check-kubeapi-mail.service",
        "podsec-inotify-check-kubeapi-mail.timer",
    ];
    for name in names {
        let text = std::fs::read_to_string(units.join(name)).unwrap();
        assert!(
            !text.contains(">/dev/null") && !text.contains("2>&1"),
            "{name}: shell redirections in a unit"
        );
    }
    let service = std::fs::read_to_string(units.join(names[0])).unwrap();
    assert!(service.contains("ExecStart=/usr/bin/podsec-inotify-check-kubeapi -d\n"));
    assert!(service.contains("LogRateLimitIntervalSec=0\n"));
    assert!(service.contains("ConditionPathIsDirectory=/etc/kubernetes/audit\n"));
    sandbox.sh_ok(&format!(
        "cp {}/podsec-inotify-check-kubeapi* /etc/systemd/system/ && ln -sf {} /usr/bin/{COMMAND}",
        units.display(),
        binary()
    ));
    let verify = format!(
        "cd /etc/systemd/system && systemd-analyze verify {} 2>&1",
        names.join(" ")
    );
    let output = sandbox.sh(&verify);
    assert!(output.status.success(), "{output:?}");
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // the check is real: a unit whose command is missing fails it
    sandbox.sh_ok(&format!("rm /usr/bin/{COMMAND}"));
    assert!(!sandbox.sh(&verify).status.success());
}
