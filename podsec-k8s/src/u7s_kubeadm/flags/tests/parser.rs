//! The command line itself: no subcommand, values as given, unknown flags, phases.

use super::*;

#[test]
fn no_subcommand_is_usage_never_deployment() {
    // Upstream fell through to the destructive init/join path (§10.2 defect 10).
    assert_eq!(parse(&[]).unwrap(), Invocation::Usage { help: false });
    assert_eq!(
        parse(&args(&["-v", "5"])).unwrap(),
        Invocation::Usage { help: false }
    );
    assert_eq!(
        parse(&args(&["--"])).unwrap(),
        Invocation::Usage { help: false }
    );
    rejected(parse(&args(&["--rootfs", "/"])), "rootfs");
}

#[test]
fn values_keep_spaces_and_quotes_and_unknown_flags_are_errors() {
    // Upstream re-split getopt output on whitespace and kept its quotes (§10.2 defect 9).
    native(&[
        "token",
        "create",
        "--description",
        "for the 'new' nodes",
        "--ttl",
        "1h",
    ]);
    assert_eq!(
        init(&["--ttl", "1h"]).unwrap_err(),
        FlagError::Unknown {
            command: "init",
            flag: "--ttl".into()
        }
    );
    assert!(matches!(
        init(&["--node-name"]),
        Err(FlagError::MissingValue { flag: "node-name" })
    ));
    assert_eq!(
        init(&["--node-name", "a", "--node-name=b"]).unwrap_err(),
        FlagError::Twice { flag: "node-name" }
    );
    assert!(matches!(
        parse(&args(&["init", "extra"])),
        Err(FlagError::ExtraArgument { .. })
    ));
    assert!(matches!(
        parse(&args(&["join", "192.0.2.10:6443", "192.0.2.11:6443"])),
        Err(FlagError::ExtraArgument { .. })
    ));
}

#[test]
fn phases_and_other_subcommands_are_native() {
    native(&["init", "phase", "upload-certs", "--upload-certs"]);
    native(&["join", "phase", "control-plane-prepare", "all"]);
    native(&["reset", "-f"]);
    native(&["version", "-o", "short"]);
}
