//! Fault injection (issue 12): each mutating command killed with SIGKILL at each of its
//! failpoints leaves every path it touches old or new, never a mix, and a re-run completes
//! (tests/src/faults.rs; docs/testing.md, "Fault injection").

use podsec_tests::faults::Scenario;
use podsec_tests::fixtures::PACKAGE_BINARIES;
use podsec_tests::sandbox::{Options, Sandbox, target_dir};

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

fn fault_injection_reaches(packages: &[&str]) -> bool {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["tree", "--offline", "-e", "features", "-i", "podsec-common"]);
    for package in packages {
        command.args(["-p", package]);
    }
    let output = command.output().expect("cargo tree");
    assert!(output.status.success(), "cargo tree: {output:?}");
    String::from_utf8_lossy(&output.stdout).contains("podsec-common feature \"fault-injection\"")
}

/// The tests' build of the commands has failpoints, a release build of the packages has not
/// (cargo unifies features per invocation: only one that builds podsec-tests turns it on).
#[test]
fn failpoints_are_in_the_test_build_only() {
    let mut with_tests = PACKAGE_BINARIES.to_vec();
    with_tests.push("podsec-tests");
    assert!(fault_injection_reaches(&with_tests));
    assert!(!fault_injection_reaches(PACKAGE_BINARIES));
    for package in PACKAGE_BINARIES {
        let binary = std::fs::read(target_dir().join(package)).expect("built binary");
        assert!(
            memchr_contains(&binary, b"PODSEC_FAILPOINT_TRACE"),
            "{package} of this build has no failpoints: run `cargo build --workspace`"
        );
    }
}

fn memchr_contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
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
