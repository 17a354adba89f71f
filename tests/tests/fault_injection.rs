//! Fault injection (issue 12): each mutating command killed with SIGKILL at each of its
//! failpoints leaves every path it touches old or new, never a mix, and a re-run completes
//! (tests/src/faults.rs; docs/testing.md, "Fault injection").

use podsec_tests::faults::Scenario;
use podsec_tests::sandbox::{Options, Sandbox};

const SERVER_IP: &str = "192.0.2.10";

fn server_options() -> Options {
    Options {
        name: None,
        addresses: vec![format!("{SERVER_IP}/32")],
    }
}

fn nothing(_: &Sandbox) {}

fn report(name: &str, report: &podsec_tests::faults::Report) {
    eprintln!(
        "{name}: {} steps, killed at {} of them, {:.1}s",
        report.steps.len(),
        report.killed_at.len(),
        report.elapsed.as_secs_f64()
    );
}

#[test]
fn the_commands_are_built_with_failpoints() {
    assert!(
        podsec_common::host::failpoint::ENABLED,
        "podsec-tests must enable podsec-common's fault-injection feature"
    );
}

#[test]
fn create_policy_on_the_server_survives_a_kill_at_every_step() {
    let scenario = Scenario {
        name: "podsec-create-policy (server)",
        options: server_options(),
        setup: &nothing,
        argv: &["podsec-create-policy", SERVER_IP],
        env: &[],
        watched: &[
            "/etc/hosts",
            "/etc/group",
            "/etc/gshadow",
            "/etc/containers",
            "/etc/sysctl.d",
            "/var/sigstore",
        ],
        line_sets: &["/etc/group", "/etc/gshadow"],
        volatile: &[],
        max_kills: 40,
    };
    report(scenario.name, &scenario.run());
}
