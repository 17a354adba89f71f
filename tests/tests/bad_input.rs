//! The bad-input matrix (issue 12): for each command, bad arguments and bad files (missing,
//! empty, truncated, of the wrong type: a directory, a FIFO, a link, a device) each get one line
//! on stderr that names the input, a non-zero exit, and change nothing: the sandbox's trees of
//! configuration and state (/etc, /var/lib, /var/sigstore, /var/tmp, /home, /root) are compared before and
//! after every case. One sandbox for all the cases: the comparison is what makes them
//! independent, and a case that changed anything fails.
//!
//! Other suites hold the cases that need more around them: unreachable servers
//! (`trust_chain.rs`: create-policy's client with the server gone, load-sign-oci's push
//! failures), the kubeadm wrapper's flags (`u7s_kubeadm.rs`), k8s-save-oci (`k8s_images.rs`),
//! the RBAC commands against a real API server (`rbac.rs`: a missing or bad kubeconfig).

use podsec_tests::fixtures::path_with_commands;
use podsec_tests::sandbox::{Options, Sandbox};

const ADDRESS: &str = "192.0.2.10";

/// A bad input: the shell words after the command, the text its one error line must hold (the
/// input it names), and where that line goes: stderr, or stdout for the Nagios plugins, whose
/// contract is one status line on stdout (exit 3, UNKNOWN, for bad arguments).
struct Case {
    command: &'static str,
    args: &'static str,
    names: &'static str,
    nagios: bool,
}

const fn case(command: &'static str, args: &'static str, names: &'static str) -> Case {
    Case {
        command,
        args,
        names,
        nagios: false,
    }
}

const fn plugin(command: &'static str, args: &'static str, names: &'static str) -> Case {
    Case {
        command,
        args,
        names,
        nagios: true,
    }
}

/// load-sign-oci is the image maker's command: it refuses callers outside podman_dev first, so
/// its cases run as `maker`, a member made by SETUP, on a named platform (as the user, the archive's link is followed
/// with the user's rights: /etc/shadow is unreadable).
const AS_MAKER: &str =
    "runuser -u maker -- env PATH=\"$PATH\" U7S_PLATFORM=c10f2 podsec-load-sign-oci";

/// Files the cases point at, made once: `B/empty` (empty), `B/truncated.tar.xz` (an xz stream
/// cut short), `B/fifo` (a FIFO nobody writes: a reader that opens it blocking hangs),
/// `B/dir` (a directory), `B/link` (a link to /etc/shadow), `B/garbage` (random bytes), `B/huge` (8 GiB, sparse); the image maker `maker`.
const SETUP: &str = "set -e; B=/var/tmp/bad; mkdir -p $B/dir; : > $B/empty; \
    head -c 4096 /dev/urandom > $B/garbage; \
    tar -C /etc -cJf - hostname passwd group | head -c 300 > $B/truncated.tar.xz; \
    mkfifo $B/fifo; ln -s /etc/shadow $B/link; truncate -s 8G $B/huge; \
    groupadd -f podman_dev; useradd -m -G podman_dev maker";

const CASES: &[Case] = &[
    // podsec
    case("podsec-create-policy", "", "<ip_address_of_registrar"),
    case("podsec-create-policy", "1.2.3", "1.2.3"),
    case("podsec-create-policy", "not-an-address", "not-an-address"),
    case("podsec-create-policy", "127.0.0.1", "127.0.0.1"),
    case("podsec-create-policy", "192.0.2.10 192.0.2.11", "2"),
    case(
        "podsec-create-policy",
        "--expect-policy-sha256 xyz 192.0.2.77",
        "xyz",
    ),
    // An unreachable signature server (no route from the sandbox).
    case("podsec-create-policy", "192.0.2.77", "192.0.2.77"),
    case(
        "podsec-create-imagemakeruser",
        "'bad user@registry.local/x'",
        "bad user",
    ),
    case("podsec-create-imagemakeruser", "maker@", "maker@"),
    case(
        "podsec-create-imagemakeruser",
        "maker@registry.local/../x",
        "..",
    ),
    case("podsec-create-podmanusers", "", "<username>"),
    case("podsec-create-podmanusers", "'bad name'", "bad name"),
    case("podsec-create-podmanusers", "-x", "-x"),
    case(
        AS_MAKER,
        "/var/tmp/bad/missing.tar.xz amd64 m@registry.local",
        "/var/tmp/bad/missing.tar.xz",
    ),
    case(
        AS_MAKER,
        "/var/tmp/bad/empty amd64 m@registry.local",
        "/var/tmp/bad/empty",
    ),
    case(
        AS_MAKER,
        "/var/tmp/bad/truncated.tar.xz amd64 m@registry.local",
        "/var/tmp/bad/truncated.tar.xz",
    ),
    case(
        AS_MAKER,
        "/var/tmp/bad/garbage amd64 m@registry.local",
        "/var/tmp/bad/garbage",
    ),
    case(
        AS_MAKER,
        "/var/tmp/bad/fifo amd64 m@registry.local",
        "/var/tmp/bad/fifo",
    ),
    case(
        AS_MAKER,
        "/var/tmp/bad/dir amd64 m@registry.local",
        "/var/tmp/bad/dir",
    ),
    case(
        AS_MAKER,
        "/var/tmp/bad/link amd64 m@registry.local",
        "/var/tmp/bad/link",
    ),
    case(
        AS_MAKER,
        "/var/tmp/bad/huge amd64 m@registry.local",
        "/var/tmp/bad/huge",
    ),
    case(
        AS_MAKER,
        "/var/tmp/bad/empty sparc m@registry.local",
        "sparc",
    ),
    case(
        "podsec-save-oci",
        "/var/tmp/bad/dir amd64 busybox",
        "/var/tmp/bad/dir",
    ),
    case(
        "podsec-save-oci",
        "/var/tmp/new amd64,sparc busybox",
        "sparc",
    ),
    // An image the source lacks: skopeo fails, the new directory goes with the run.
    case(
        "podsec-save-oci",
        "/var/tmp/new amd64 containers-storage: localhost/none:1",
        "localhost/none:1",
    ),
    // A missing tool: only podsec's own commands on PATH.
    case(
        "PATH=${PATH%%:*} podsec-save-oci",
        "/var/tmp/new amd64 busybox",
        "skopeo",
    ),
    // podsec-k8s-rbac
    case("podsec-k8s-rbac-create-user", "", "<USER>"),
    case("podsec-k8s-rbac-create-user", "'bad name'", "bad name"),
    case(
        "podsec-k8s-rbac-bindrole",
        "alice nonsense view rb ns1",
        "nonsense",
    ),
    // podsec-inotify
    plugin("podsec-inotify-check-policy", "-w abc", "abc"),
    plugin("podsec-inotify-check-images", "-c -5", "-5"),
    case(
        "podsec-inotify-check-kubeapi",
        "--once --audit-log /var/tmp/bad/fifo",
        "/var/tmp/bad/fifo",
    ),
    case(
        "podsec-inotify-check-kubeapi",
        "--once --audit-log /var/tmp/bad/link",
        "/var/tmp/bad/link",
    ),
    case(
        "podsec-inotify-check-kubeapi",
        "--once --audit-log /var/tmp/bad/dir",
        "/var/tmp/bad/dir",
    ),
    case(
        "podsec-inotify-build-invulnerable-image",
        "'bad image name'",
        "bad image name",
    ),
];

/// Everything a command could have changed: path, type, mode, owner, size, modification time.
/// A directory's own size and time are left out: a file made and removed again (a failed run
/// cleaning up after itself, skopeo opening containers-storage) changes them, and its entries
/// are compared one by one anyway. root's toolchains and caches (this host's build tools,
/// hundreds of thousands of files that no podsec command writes) are left out so that a
/// snapshot takes a fraction of a second.
const SNAPSHOT: &str = "find /etc /var/lib /var/sigstore /var/tmp /home /root -xdev \
    \\( -path /root/.cargo -o -path /root/.rustup -o -path /root/go -o -path /root/.cache \
    -o -path /root/.pyenv -o -path /root/.npm \\) -prune \
    -o -type d -printf '%p %y %m %u:%g\\n' \
    -o -printf '%p %y %m %u:%g %s %T@\\n' 2>/dev/null | sort";

#[test]
fn every_bad_input_gets_one_line_naming_it_a_non_zero_exit_and_changes_nothing() {
    let sandbox = Sandbox::start(&Options {
        name: None,
        addresses: vec![format!("{ADDRESS}/32")],
    })
    .expect("sandbox start (needs root)");
    let sh = |script: &str| {
        sandbox
            .command("timeout")
            .args(["20", "sh", "-c", script])
            .env("PATH", &path_with_commands())
            .output()
    };
    let setup = sh(SETUP);
    assert!(setup.status.success(), "{setup:?}");
    let mut failures = Vec::new();
    for case in CASES {
        let before = sh(SNAPSHOT).stdout;
        let out = sh(&format!("{} {}", case.command, case.args));
        let stderr = String::from_utf8_lossy(if case.nagios {
            &out.stdout
        } else {
            &out.stderr
        });
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let code = out.status.code();
        let what = format!("{} {}", case.command, case.args);
        if code == Some(124) || code.is_none() {
            failures.push(format!("{what}: hung or killed ({:?})", out.status));
        } else if code == Some(0) {
            failures.push(format!("{what}: exit 0"));
        } else if case.nagios && code != Some(3) {
            failures.push(format!("{what}: exit {code:?}, not 3 (UNKNOWN)"));
        } else if lines.len() != 1 || !lines[0].contains(case.names) {
            failures.push(format!(
                "{what}: exit {code:?}, output not one line naming '{}': {stderr:?}",
                case.names
            ));
        }
        let after = sh(SNAPSHOT).stdout;
        if after != before {
            let before = String::from_utf8_lossy(&before);
            let after = String::from_utf8_lossy(&after);
            let changed: Vec<&str> = after
                .lines()
                .filter(|line| !before.lines().any(|b| b == *line))
                .chain(
                    before
                        .lines()
                        .filter(|line| !after.lines().any(|a| a == *line)),
                )
                .collect();
            failures.push(format!("{what}: changed {changed:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
