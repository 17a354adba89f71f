//! podsec-inotify-check-containers in the sandbox: real podman containers (runc) of root (overlay
//! driver) and of a rootless user (vfs driver, the store created only after the watcher started),
//! changes made with `podman exec`, a real journald receiving the lines.

use std::time::{Duration, Instant};

use podsec_tests::fixtures::{busybox_image, command_links};
use podsec_tests::sandbox::{Options, Sandbox};

const COMMAND: &str = "podsec-inotify-check-containers";
const HOSTILE: &str = "a'$(touch pwned)'b";

fn binary() -> String {
    command_links().join(COMMAND).display().to_string()
}

fn start_journald(sandbox: &Sandbox) {
    sandbox.sh_ok("mkdir -p /run/systemd/journal");
    sandbox
        .spawn_daemon("journald", &["/lib/systemd/systemd-journald"])
        .unwrap();
    sandbox.sh_ok(
        "for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && exit 0; sleep 0.05; done; exit 1",
    );
}

/// Waits until the watcher's own log (stderr) holds `text`.
fn wait_for_note(sandbox: &Sandbox, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sandbox.daemon_log("watcher").contains(text) {
        assert!(
            Instant::now() < deadline,
            "watcher never said {text:?}:\n{}",
            sandbox.daemon_log("watcher")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until journald has a line of the watcher equal to `line` (`-o cat`: the message).
fn wait_for_journal(sandbox: &Sandbox, line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let journal = sandbox.sh_ok(&format!("journalctl -t {COMMAND} -o cat --no-pager"));
        if journal.lines().any(|l| l == line) {
            return journal;
        }
        assert!(
            Instant::now() < deadline,
            "journal lacks {line:?}:\n{journal}\nwatcher:\n{}",
            sandbox.daemon_log("watcher")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn podman_as(sandbox: &Sandbox, user: Option<&str>, args: &[&str]) -> String {
    let mut command = sandbox.command("podman").args(args);
    if let Some(user) = user {
        command = command.user(user);
    }
    let output = command.output();
    assert!(
        output.status.success(),
        "podman {args:?} as {user:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn changes_in_root_and_rootless_containers_reach_journald_naming_the_container() {
    let sandbox = Sandbox::start(&Options::default()).unwrap();
    start_journald(&sandbox);
    let archive = busybox_image(&sandbox, "bb");
    let web = podman_as(
        &sandbox,
        None,
        &["run", "-d", "--name", "web", "localhost/bb", "sleep", "600"],
    );
    // alice exists but has no container storage yet when the watcher starts
    sandbox.sh_ok("useradd -m alice");

    sandbox
        .spawn_daemon(
            "watcher",
            &[
                "sh",
                "-c",
                &format!(
                    "echo $$ > /run/watcher.pid; exec {} '2>/dev/null'",
                    binary()
                ),
            ],
        )
        .unwrap();
    wait_for_note(
        &sandbox,
        &format!("watching container web (ID {web}, user root, overlay driver)"),
    );
    let log = sandbox.daemon_log("watcher");
    // the token old units pass is an argument, not a redirection: ignored with a warning
    assert!(
        log.contains("warning: ignoring argument '2>/dev/null'"),
        "{log}"
    );
    assert!(log.contains("watching 1 containers in "), "{log}");

    // root's container: /etc/passwd changed with podman exec
    podman_as(
        &sandbox,
        None,
        &[
            "exec",
            "web",
            "sh",
            "-c",
            "echo 'intruder:x:0:0::/:/bin/sh' >> /etc/passwd",
        ],
    );
    let label = format!("in the container web (ID {web}, user root)");
    let passwd = format!(
        "Warning: An event MODIFY occurred {label} in configuration directory on the file /etc/passwd"
    );
    wait_for_journal(&sandbox, &passwd);

    // a hostile file name is data: logged literally, never run
    podman_as(
        &sandbox,
        None,
        &[
            "exec",
            "-w",
            "/etc",
            "web",
            "touch",
            &format!("/etc/{HOSTILE}"),
        ],
    );
    wait_for_journal(
        &sandbox,
        &format!(
            "Warning: An event CREATE occurred {label} in configuration directory on the file /etc/{HOSTILE}"
        ),
    );
    // outside /etc and the homes: Critical
    podman_as(
        &sandbox,
        None,
        &["exec", "web", "sh", "-c", "echo x > /bin/implant"],
    );
    wait_for_journal(
        &sandbox,
        &format!(
            "Critical: An event CREATE occurred {label} in system directory on the file /bin/implant"
        ),
    );

    // a container created after the start is picked up from the storage metadata
    let late = podman_as(
        &sandbox,
        None,
        &[
            "run",
            "-d",
            "--name",
            "late",
            "localhost/bb",
            "sleep",
            "600",
        ],
    );
    wait_for_note(
        &sandbox,
        &format!("watching container late (ID {late}, user root"),
    );
    podman_as(
        &sandbox,
        None,
        &["exec", "late", "busybox", "mkdir", "-p", "/root/.ssh"],
    );
    wait_for_journal(
        &sandbox,
        &format!(
            "Warning: An event CREATE,ISDIR occurred in the container late (ID {late}, user root) in home directory on the file /root/.ssh"
        ),
    );

    // the rootless user's store appears now (vfs), and its container is watched
    let load = sandbox
        .command("podman")
        .args(["load", "-q", "-i", archive.to_str().unwrap()])
        .user("alice")
        .output();
    assert!(load.status.success(), "{load:?}");
    let rl = podman_as(
        &sandbox,
        Some("alice"),
        &["run", "-d", "--name", "rl", "localhost/bb", "sleep", "600"],
    );
    wait_for_note(
        &sandbox,
        &format!("watching container rl (ID {rl}, user alice, vfs driver)"),
    );
    podman_as(
        &sandbox,
        Some("alice"),
        &[
            "exec",
            "rl",
            "sh",
            "-c",
            "echo 'x:x:0:0::/:/bin/sh' >> /etc/passwd",
        ],
    );
    wait_for_journal(
        &sandbox,
        &format!(
            "Warning: An event MODIFY occurred in the container rl (ID {rl}, user alice) in configuration directory on the file /etc/passwd"
        ),
    );

    // nothing ran the name: no file `pwned` anywhere, on the host side (the root file system
    // and every overlaid directory of the sandbox) or in the containers
    let found = sandbox.sh_ok(
        "find / -xdev -name pwned 2>/dev/null; \
         find /etc /root /run /var /home /srv /opt /mnt -name pwned 2>/dev/null; \
         podman exec web ls / /etc | grep -x pwned || true",
    );
    assert!(found.trim().is_empty(), "pwned exists: {found}");

    // the short form nagwad reads: `<tag>[<pid>]: <Level>: <text>`
    let short = sandbox.sh_ok(&format!("journalctl -t {COMMAND} -o short --no-pager"));
    assert!(
        short
            .lines()
            .any(|l| l.contains(&format!("{COMMAND}[")) && l.ends_with(&format!("]: {passwd}"))),
        "{short}"
    );
    // container removed: its watches go
    podman_as(&sandbox, None, &["rm", "-f", "-t", "0", "late"]);
    wait_for_note(
        &sandbox,
        &format!("stopped watching container late (ID {late}, user root): it is gone"),
    );

    // SIGTERM: a clean stop
    sandbox.sh_ok(
        "pid=$(cat /run/watcher.pid); kill -TERM $pid; \
         for i in $(seq 100); do grep -qs '^State:[[:space:]]*[^Z]' /proc/$pid/status || exit 0; sleep 0.05; done; exit 1",
    );
    wait_for_note(&sandbox, "stopping on SIGTERM");
}

#[test]
fn refuses_non_root_and_a_zero_budget() {
    let sandbox = Sandbox::start(&Options::default()).unwrap();
    sandbox.sh_ok("useradd -m bob");
    let output = sandbox.command(binary()).user("bob").output();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("must be run as root"),
        "{output:?}"
    );
    let output = sandbox
        .command(binary())
        .args(["--max-watches", "0"])
        .output();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        format!("{COMMAND}: --max-watches must be at least 1")
    );
}
