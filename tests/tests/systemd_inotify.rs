//! podsec-inotify's units under a real systemd as PID 1 (systemd-nspawn,
//! `podsec_tests::systemd`): the preset, the timers and their services with the real journal,
//! SuccessExitStatus for WARNING and CRITICAL, and the watchers' Restart=.

use std::time::{Duration, Instant};

use podsec_tests::systemd::Machine;

const POLICY: &str = "podsec-inotify-check-policy";
const IMAGES: &str = "podsec-inotify-check-images";
const KUBEAPI_MAIL: &str = "podsec-inotify-check-kubeapi-mail";
const VULN: &str = "podsec-inotify-check-vuln";
const CONTAINERS: &str = "podsec-inotify-check-containers.service";
const KUBEAPI: &str = "podsec-inotify-check-kubeapi.service";
/// Where the kubeapi watcher keeps its record; the mail unit runs only where it exists.
const KUBEAPI_STATE: &str = "/var/lib/podsec/u7s/log/kubeapi";

fn booted() -> Machine {
    let machine = Machine::boot().unwrap();
    machine.install_packages();
    machine
}

/// Waits (bounded) until `check` holds.
fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Journal lines of the nagwad contract: `<Level>: <text>`.
fn level_lines(journal: &str) -> Vec<&str> {
    journal
        .lines()
        .filter(|line| {
            line.split_once(": ").is_some_and(|(level, _)| {
                [
                    "Crash", "Fatal", "Critical", "High", "Middle", "Warning", "Low", "Debug",
                ]
                .contains(&level)
            })
        })
        .collect()
}

#[test]
fn the_preset_enables_the_checks_the_readme_names_and_a_boot_starts_them() {
    let machine = booted();
    let units = [
        (format!("{POLICY}.timer"), "enabled"),
        (format!("{IMAGES}.timer"), "enabled"),
        (CONTAINERS.to_string(), "enabled"),
        (KUBEAPI.to_string(), "enabled"),
        (format!("{KUBEAPI_MAIL}.timer"), "enabled"),
        (format!("{VULN}.timer"), "disabled"),
        // The timers' services have no [Install]: only their timers start them.
        (format!("{POLICY}.service"), "static"),
    ];
    let names: Vec<&str> = units.iter().map(|(unit, _)| unit.as_str()).collect();
    for (unit, _) in &units {
        let out = machine.systemctl(&["is-enabled", unit]);
        assert_ne!(
            podsec_tests::systemd::text(&out.stdout).trim(),
            "enabled",
            "{unit} enabled before the preset"
        );
    }
    let mut preset = vec!["preset"];
    preset.extend(&names);
    machine.systemctl_ok(&preset);
    for (unit, expected) in &units {
        let out = machine.systemctl(&["is-enabled", unit]);
        assert_eq!(
            podsec_tests::systemd::text(&out.stdout).trim(),
            *expected,
            "{unit}"
        );
    }
    // What a boot pulls in: the enabled timers and watcher run; the kubeapi watcher's condition
    // (/etc/kubernetes/audit: a control-plane node) is false here, so it stays inactive.
    machine.systemctl_ok(&["start", "multi-user.target", "timers.target"]);
    for timer in [POLICY, IMAGES, KUBEAPI_MAIL] {
        assert_eq!(
            machine.state(&format!("{timer}.timer")),
            "active",
            "{timer}"
        );
    }
    assert_eq!(machine.state(&format!("{VULN}.timer")), "inactive");
    machine.wait_state(CONTAINERS, "active", Duration::from_secs(10));
    assert_eq!(machine.state(KUBEAPI), "inactive");
    assert_eq!(machine.property(KUBEAPI, "ConditionResult"), "no");
    assert_eq!(machine.failed_units(), Vec::<String>::new());
}

#[test]
fn each_service_of_a_timer_logs_to_the_journal_and_findings_do_not_fail_the_unit() {
    let machine = booted();
    machine.sh_ok(&format!("install -d -m 0700 {KUBEAPI_STATE}"));
    // What each check finds on this host copy, as documented: check-policy CRITICAL (root's
    // policy accepts anything: weights 102, 103, 106), exit 2, a finding and not a failure;
    // check-images OK; nothing to mail; check-vuln cannot scan without trivy, exit 1, a
    // failure worth seeing.
    let expected = [
        (POLICY, "2", "success"),
        (IMAGES, "0", "success"),
        (KUBEAPI_MAIL, "0", "success"),
        (VULN, "1", "exit-code"),
    ];
    // The timers on their shipped (hourly) schedules; they also keep their services loaded, so
    // the services' exit status can be read after they finished.
    let timers: Vec<String> = expected
        .iter()
        .map(|(c, ..)| format!("{c}.timer"))
        .collect();
    let mut start = vec!["start"];
    start.extend(timers.iter().map(String::as_str));
    machine.systemctl_ok(&start);

    // Started by hand.
    for (check, status, result) in expected {
        let service = format!("{check}.service");
        let out = machine.systemctl(&["start", &service]);
        assert_eq!(out.status.success(), result == "success", "{service}");
        assert_eq!(machine.property(&service, "Result"), result, "{service}");
        assert_eq!(
            machine.property(&service, "ExecMainStatus"),
            status,
            "{service}: {}",
            machine.journal(check)
        );
    }
    let journal = machine.journal(POLICY);
    assert!(
        journal
            .lines()
            .any(|l| l.starts_with("POLICY CRITICAL - ") && l.ends_with("metric=311;;100;0;")),
        "{journal}"
    );
    assert_eq!(
        level_lines(&journal)
            .iter()
            .filter(|l| l.starts_with("Critical: 10"))
            .count(),
        3,
        "{journal}"
    );
    // nagwad's view of the same journal: the installed filter turns exactly those 3 lines into
    // CRITICAL events (the status line and the -vvv report on stdout give none).
    let nagwad = machine.sh_ok(&format!(
        "journalctl --no-pager -q -o short -t {POLICY} | sed -f /etc/nagwad/podsec.sed"
    ));
    let prefix = format!("{POLICY}:CRITICAL:{POLICY}(Critical) 10");
    assert_eq!(nagwad.lines().count(), 3, "{nagwad}");
    assert!(nagwad.lines().all(|l| l.starts_with(&prefix)), "{nagwad}");
    assert!(
        machine
            .journal(IMAGES)
            .lines()
            .any(|l| l.starts_with("POLICY OK - ")),
        "{}",
        machine.journal(IMAGES)
    );
    assert!(machine.journal(VULN).contains("trivy not found in PATH"));
    assert_eq!(machine.failed_units(), vec![format!("{VULN}.service")]);
    machine.systemctl_ok(&["reset-failed"]);

    // The timers elapse (a drop-in adds a one-second OnActiveSec to the shipped schedule).
    let mut before = Vec::new();
    for (check, ..) in expected {
        before.push(machine.property(
            &format!("{check}.service"),
            "ExecMainExitTimestampMonotonic",
        ));
        machine.sh_ok(&format!(
            "mkdir -p /etc/systemd/system/{check}.timer.d && printf '[Timer]\\nOnActiveSec=1s\\nAccuracySec=1ms\\nRandomizedDelaySec=0\\n' > /etc/systemd/system/{check}.timer.d/soon.conf"
        ));
    }
    machine.systemctl_ok(&["daemon-reload"]);
    let mut restart = vec!["restart"];
    restart.extend(timers.iter().map(String::as_str));
    machine.systemctl_ok(&restart);
    for ((check, status, result), before) in expected.iter().zip(&before) {
        let service = format!("{check}.service");
        wait_for(
            &format!("{service} run by its timer"),
            Duration::from_secs(30),
            || {
                machine.property(&service, "ExecMainExitTimestampMonotonic") != *before
                    && ["inactive", "failed"].contains(&machine.state(&service).as_str())
            },
        );
        assert_eq!(machine.property(&service, "Result"), *result, "{service}");
        assert_eq!(
            machine.property(&service, "ExecMainStatus"),
            *status,
            "{service}"
        );
        let timer = format!("{check}.timer");
        assert_ne!(machine.property(&timer, "LastTriggerUSecMonotonic"), "0");
        assert_eq!(machine.state(&timer), "active", "{timer}");
    }
    machine.systemctl_ok(&["reset-failed"]);

    // WARNING (exit 1) is a finding too, not a failure; UNKNOWN (3: a broken check) fails.
    let set_command = |arguments: &str| {
        machine.sh_ok(&format!(
            "mkdir -p /etc/systemd/system/{POLICY}.service.d && printf '[Service]\\nExecStart=\\nExecStart=/usr/bin/{POLICY} {arguments}\\n' > /etc/systemd/system/{POLICY}.service.d/test.conf"
        ));
        machine.systemctl_ok(&["daemon-reload"]);
    };
    set_command("-w 1 -c 1000000");
    machine.systemctl_ok(&["start", &format!("{POLICY}.service")]);
    assert_eq!(
        machine.property(&format!("{POLICY}.service"), "ExecMainStatus"),
        "1"
    );
    assert_eq!(
        machine.property(&format!("{POLICY}.service"), "Result"),
        "success"
    );
    set_command("-c 20-100");
    let out = machine.systemctl(&["start", &format!("{POLICY}.service")]);
    assert!(!out.status.success());
    assert_eq!(
        machine.property(&format!("{POLICY}.service"), "ExecMainStatus"),
        "3"
    );
    assert_eq!(machine.state(&format!("{POLICY}.service")), "failed");
    assert_eq!(
        machine.failed_units(),
        vec![format!("{POLICY}.service")],
        "only the broken check failed"
    );
}

#[test]
fn the_watchers_come_back_after_restart_and_kill() {
    let machine = booted();
    // A control-plane node (the kubeapi watcher's condition).
    machine.sh_ok("mkdir -p /etc/kubernetes/audit");
    machine.systemctl_ok(&["start", CONTAINERS, KUBEAPI]);
    let pid = |unit: &str| machine.property(unit, "MainPID");
    for unit in [CONTAINERS, KUBEAPI] {
        assert_eq!(machine.state(unit), "active", "{unit}");
    }
    let first = [pid(CONTAINERS), pid(KUBEAPI)];

    machine.systemctl_ok(&["restart", CONTAINERS, KUBEAPI]);
    let second = [pid(CONTAINERS), pid(KUBEAPI)];
    for (i, unit) in [CONTAINERS, KUBEAPI].into_iter().enumerate() {
        assert_eq!(machine.state(unit), "active", "{unit}");
        assert_ne!(
            second[i], first[i],
            "{unit}: same main process after restart"
        );
        assert_ne!(second[i], "0", "{unit}");
    }

    // kill -9 of the main process: Restart=on-failure brings it back after RestartSec=5s.
    machine.sh_ok(&format!("kill -9 {} {}", second[0], second[1]));
    for (i, unit) in [CONTAINERS, KUBEAPI].into_iter().enumerate() {
        wait_for(
            &format!("{unit} restarted after kill -9"),
            Duration::from_secs(20),
            || {
                let now = pid(unit);
                machine.state(unit) == "active" && now != second[i] && now != "0"
            },
        );
        assert_eq!(machine.property(unit, "NRestarts"), "1", "{unit}");
    }
    // The restarted kubeapi watcher does its job: a refused request in the audit log becomes
    // one Critical line in the journal.
    let event = serde_json::json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": "00000001-aaaa-bbbb", "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/demo/pods", "verb": "list",
        "user": {"username": "mallory", "groups": ["system:authenticated"]},
        "sourceIPs": ["192.0.2.1"], "userAgent": "kubectl/v1.33.13",
        "objectRef": {"resource": "pods", "namespace": "demo", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "status": "Failure", "code": 403,
            "message": "pods is forbidden: User \"mallory\" cannot list resource \"pods\""},
        "requestReceivedTimestamp": "2026-12-03T10:00:00.000000Z",
        "stageTimestamp": "2026-12-03T10:00:00.000000Z",
    });
    let staged = machine.share().join("audit.log");
    std::fs::write(&staged, format!("{event}\n")).unwrap();
    machine.sh_ok(&format!(
        "cat {} >> /etc/kubernetes/audit/audit.log",
        staged.display()
    ));
    wait_for(
        "the refused request in the journal",
        Duration::from_secs(20),
        || {
            machine
                .journal("podsec-inotify-check-kubeapi")
                .lines()
                .any(|l| l.starts_with("Critical: ") && l.contains("mallory"))
        },
    );
    assert_eq!(machine.failed_units(), Vec::<String>::new());
}
