//! The common logger against real log daemons in the sandbox: journald's native protocol,
//! rsyslog on /dev/log, and stderr when neither runs.

use podsec_common::log::Level;
use podsec_tests::sandbox::{Options, Sandbox, target_dir};

const COMMAND: &str = "podsec-inotify-check-policy";

fn probe() -> String {
    target_dir().join("podsec-log-probe").display().to_string()
}

fn wait_for(sandbox: &Sandbox, path: &str) {
    sandbox.sh_ok(&format!(
        "for i in $(seq 100); do [ -e {path} ] && exit 0; sleep 0.05; done; echo {path} never appeared >&2; exit 1"
    ));
}

#[test]
fn journald_receives_level_prefix_identifier_and_priority() {
    let sandbox = Sandbox::start(&Options::default()).unwrap();
    sandbox.sh_ok("mkdir -p /run/systemd/journal");
    sandbox
        .spawn_daemon("journald", &["/lib/systemd/systemd-journald"])
        .unwrap();
    wait_for(&sandbox, "/run/systemd/journal/socket");
    for level in Level::ALL {
        sandbox.sh_ok(&format!(
            "{} {COMMAND} {level} 'user alice: finding {level}'",
            probe()
        ));
    }
    // A message with a newline goes through the binary field form.
    sandbox.sh_ok(&format!(
        "{} {COMMAND} Warning \"$(printf 'two\\nlines')\"",
        probe()
    ));
    let json = sandbox.sh_ok(&format!(
        "for i in $(seq 50); do n=$(journalctl -t {COMMAND} -o json --no-pager | wc -l); [ $n -ge 9 ] && break; sleep 0.1; done; \
         journalctl -t {COMMAND} -o json --no-pager"
    ));
    let entries: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 9, "{json}");
    for (entry, level) in entries.iter().zip(Level::ALL) {
        assert_eq!(
            entry["MESSAGE"],
            format!("{level}: user alice: finding {level}")
        );
        assert_eq!(entry["PRIORITY"], level.priority().to_string());
        assert_eq!(entry["SYSLOG_IDENTIFIER"], COMMAND);
    }
    assert_eq!(entries[8]["MESSAGE"], "Warning: two\nlines");
    // What nagwad reads: `<tag>[<pid>]: <Level>: <text>` in the short output format.
    let short = sandbox.sh_ok(&format!(
        "journalctl -t {COMMAND} -p crit --no-pager -o short"
    ));
    let critical_line = short
        .lines()
        .find(|l| l.contains("Critical: user alice"))
        .unwrap_or_else(|| panic!("{short}"));
    assert!(
        critical_line.contains(&format!("{COMMAND}[")),
        "{critical_line}"
    );
    assert!(
        !short.contains("High:"),
        "-p crit must not show err-level lines: {short}"
    );

    // A real command called as `<package binary> <command>` logs under the command's full
    // name: check-policy finds root's accept-anything policy here (weight 102, Critical).
    sandbox.sh(&format!(
        "{} check-policy",
        target_dir().join("podsec-inotify").display()
    ));
    // Found by its message (the probe's lines above carry no weight): journald adds _COMM only
    // when it reads /proc/<pid> before the sender exits, which a loaded host does not promise.
    let json = sandbox.sh_ok(&format!(
        "for i in $(seq 50); do journalctl -t {COMMAND} -o json --no-pager | grep -q 'Critical: 102' && break; sleep 0.1; done; \
         journalctl -t {COMMAND} -o json --no-pager"
    ));
    let entries: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .collect();
    assert!(
        entries.iter().any(|e| e["SYSLOG_IDENTIFIER"] == COMMAND
            && e["MESSAGE"]
                .as_str()
                .is_some_and(|m| m.starts_with("Critical: 102"))),
        "{json}"
    );
}

#[test]
fn rsyslog_receives_priority_and_tag_on_dev_log() {
    let sandbox = Sandbox::start(&Options::default()).unwrap();
    let conf = sandbox.share().join("rsyslog.conf");
    let out = sandbox.share().join("messages");
    std::fs::write(
        &conf,
        format!(
            "module(load=\"imuxsock\" SysSock.Name=\"/dev/log\")\n\
             template(name=\"probe\" type=\"string\" string=\"%syslogseverity% %programname%[%procid%]:%msg%\\n\")\n\
             *.* action(type=\"omfile\" file=\"{}\" template=\"probe\")\n",
            out.display()
        ),
    )
    .unwrap();
    sandbox
        .spawn_daemon(
            "rsyslogd",
            &[
                "rsyslogd",
                "-n",
                "-f",
                conf.to_str().unwrap(),
                "-i",
                "/run/rsyslogd.pid",
            ],
        )
        .unwrap();
    wait_for(&sandbox, "/dev/log");
    sandbox.sh_ok(&format!("{} {COMMAND} Fatal 'policy changed'", probe()));
    sandbox.sh_ok(&format!("{} {COMMAND} Low 'note'", probe()));
    let text = sandbox.sh_ok(&format!(
        "for i in $(seq 100); do grep -q note {0} 2>/dev/null && break; sleep 0.05; done; cat {0}",
        out.display()
    ));
    // `<severity> <tag>[<pid>]: <Level>: <text>`: the syslog line nagwad's filter reads.
    let line = |severity: u8, message: &str| {
        text.lines().any(|l| {
            l.starts_with(&format!("{severity} {COMMAND}["))
                && l.split_once("]:").is_some_and(|(pid, rest)| {
                    pid.rsplit('[')
                        .next()
                        .is_some_and(|p| p.parse::<u32>().is_ok())
                        && rest == format!(" {message}")
                })
        })
    };
    assert!(line(1, "Fatal: policy changed"), "{text}");
    assert!(line(5, "Low: note"), "{text}");
}

#[test]
fn without_a_log_daemon_the_line_goes_to_stderr() {
    let sandbox = Sandbox::start(&Options::default()).unwrap();
    let output = sandbox
        .command(probe())
        .args([COMMAND, "Critical", "nobody listens"])
        .output();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        format!("{COMMAND}: Critical: nobody listens")
    );
}
