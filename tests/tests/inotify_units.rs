//! The systemd units of check-containers and check-vuln: no shell redirections, no blind
//! restarts, a timer that names its service and a calendar systemd can schedule; all of it
//! checked by `systemd-analyze verify` (systemd is installed here, not running).

use std::path::Path;

use podsec_tests::fixtures::command_links;
use podsec_tests::sandbox::{Options, Sandbox};

const UNITS: [&str; 3] = [
    "podsec-inotify-check-containers.service",
    "podsec-inotify-check-vuln.service",
    "podsec-inotify-check-vuln.timer",
];

fn unit(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rpm/units");
    std::fs::read_to_string(dir.join(name)).unwrap()
}

fn key_values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

#[test]
fn units_have_no_redirections_no_blind_restarts_and_a_working_timer() {
    for name in UNITS {
        let text = unit(name);
        for exec in key_values(&text, "ExecStart") {
            assert!(
                !exec.contains('>') && !exec.contains("2>&1"),
                "{name}: shell redirection in {exec}"
            );
        }
    }
    let watcher = unit(UNITS[0]);
    assert_eq!(
        key_values(&watcher, "ExecStart"),
        ["/usr/bin/podsec-inotify-check-containers"]
    );
    assert!(
        key_values(&watcher, "RuntimeMaxSec").is_empty(),
        "blind restarts"
    );
    assert_eq!(key_values(&watcher, "Restart"), ["on-failure"]);
    assert_eq!(key_values(&watcher, "LogRateLimitIntervalSec"), ["0"]);
    let vuln = unit(UNITS[1]);
    assert_eq!(
        key_values(&vuln, "ExecStart"),
        ["/usr/bin/podsec-inotify-check-vuln -m root"]
    );
    assert_eq!(key_values(&vuln, "Type"), ["oneshot"]);
    assert_eq!(
        key_values(&vuln, "Environment"),
        ["U7S_TRIVY_SERVER=trivy.local"]
    );
    let timer = unit(UNITS[2]);
    assert_eq!(key_values(&timer, "Unit"), [UNITS[1]]);
    assert_eq!(key_values(&timer, "WantedBy"), ["timers.target"]);
    let calendar = key_values(&timer, "OnCalendar");
    assert_eq!(calendar, ["hourly"]);

    let sandbox = Sandbox::start(&Options::default()).unwrap();
    // the calendar expression has a next elapse (a timer that really fires)
    let next = sandbox.sh_ok(&format!("systemd-analyze calendar {}", calendar[0]));
    assert!(next.contains("Next elapse:"), "{next}");
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rpm/units");
    sandbox.sh_ok(&format!(
        "cp {0}/podsec-inotify-check-containers.service {0}/podsec-inotify-check-vuln.* /etc/systemd/system/ && \
         for c in podsec-inotify-check-containers podsec-inotify-check-vuln; do ln -sf {1}/$c /usr/bin/$c; done",
        units.display(),
        command_links().display()
    ));
    let verify = format!(
        "cd /etc/systemd/system && systemd-analyze verify {} 2>&1",
        UNITS.join(" ")
    );
    let output = sandbox.sh(&verify);
    assert!(output.status.success(), "{output:?}");
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // the check is real: a unit whose command is missing fails it
    sandbox.sh_ok("rm /usr/bin/podsec-inotify-check-vuln");
    assert!(!sandbox.sh(&verify).status.success());
}
