//! Every upstream command name exists, installs where `make install` puts it, answers --help and
//! --version, and the ones a later release implements say so honestly (exit 2, or 3 = UNKNOWN
//! for the Nagios plugins), after refusing non-root callers where upstream was root-only.

use std::path::{Path, PathBuf};
use std::process::Command;

use podsec_tests::fixtures::{command_links, path_with_commands};
use podsec_tests::sandbox::{Options, Sandbox, target_dir};

/// Every upstream command, its package binary, and whether it is root-only.
const COMMANDS: &[(&str, &str, bool)] = &[
    ("podsec-create-policy", "podsec", true),
    ("podsec-create-services", "podsec", true),
    ("podsec-create-imagemakeruser", "podsec", true),
    ("podsec-create-podmanusers", "podsec", true),
    ("podsec-load-sign-oci", "podsec", false),
    ("podsec-save-oci", "podsec", true),
    ("podsec-get-platform", "podsec", false),
    ("podsec-u7s-kubeadm", "podsec-k8s", true),
    ("podsec-k8s-save-oci", "podsec-k8s", true),
    ("podsec-k8s-upgrade", "podsec-k8s", true),
    ("podsec-k8s-rbac-create-user", "podsec-k8s-rbac", true),
    (
        "podsec-k8s-rbac-create-kubeconfig",
        "podsec-k8s-rbac",
        false,
    ),
    (
        "podsec-k8s-rbac-create-remoteplace",
        "podsec-k8s-rbac",
        false,
    ),
    ("podsec-k8s-rbac-bindrole", "podsec-k8s-rbac", false),
    ("podsec-k8s-rbac-unbindrole", "podsec-k8s-rbac", false),
    ("podsec-k8s-rbac-get-userroles", "podsec-k8s-rbac", false),
    ("podsec-inotify-check-policy", "podsec-inotify", true),
    ("podsec-inotify-check-images", "podsec-inotify", true),
    ("podsec-inotify-check-containers", "podsec-inotify", true),
    ("podsec-inotify-check-kubeapi", "podsec-inotify", true),
    ("podsec-inotify-check-vuln", "podsec-inotify", false),
    (
        "podsec-inotify-build-invulnerable-image",
        "podsec-inotify",
        false,
    ),
];

/// The u7s runtime's helpers: commands of podsec-k8s linked only into
/// /usr/libexec/podsec/u7s/bin (no /usr/bin link, man page or completion: some share names with
/// system tools), and whether they answer --help themselves (the wrappers pass it on).
const U7S_HELPERS: &[(&str, bool)] = &[
    ("nsenter_u7s", true),
    ("rootlessctl", false),
    ("systemctl", false),
    ("u7s-rootlesskit", true),
    ("u7s-kubelet", true),
    ("u7s-start-stop", true),
];

/// Arguments a command accepts (its upstream synopsis).
fn valid_args(name: &str) -> &'static [&'static str] {
    match name {
        "podsec-create-policy" => &["192.0.2.1"],
        "podsec-create-podmanusers" => &["alice"],
        "podsec-load-sign-oci" => &["a.tar.xz", "amd64", "me@example.com"],
        "podsec-save-oci" => &["/tmp/x", "amd64", "busybox"],
        "podsec-k8s-save-oci" => &["/tmp/x", "amd64"],
        "podsec-k8s-upgrade" => &["plan"],
        "podsec-u7s-kubeadm" => &["init"],
        "podsec-k8s-rbac-create-user" | "podsec-k8s-rbac-create-kubeconfig" => &["alice"],
        "podsec-k8s-rbac-create-remoteplace" => &["192.0.2.1"],
        "podsec-k8s-rbac-bindrole" | "podsec-k8s-rbac-unbindrole" => {
            &["alice", "role", "view", "rb", "ns1"]
        }
        "podsec-k8s-rbac-get-userroles" => &["alice"],
        "podsec-inotify-check-policy" | "podsec-inotify-check-images" => {
            &["-vvv", "-c", "100", ">/dev/null", "2>&1"]
        }
        "podsec-inotify-check-vuln" => &["-vvv", "-c", "100", ">/dev/null", "2>&1"],
        "podsec-inotify-check-kubeapi" => &["--once"],
        "podsec-inotify-build-invulnerable-image" => &["localhost/x"],
        _ => &[],
    }
}

/// The commands the package binaries list (`--list`, and `--list-u7s` for the u7s runtime's
/// helpers): exactly the upstream commands.
fn listed() -> Vec<String> {
    let mut listed = Vec::new();
    for package in ["podsec", "podsec-k8s", "podsec-k8s-rbac", "podsec-inotify"] {
        let out = Command::new(target_dir().join(package))
            .arg("--list")
            .output()
            .unwrap();
        assert!(out.status.success(), "{package} --list");
        listed.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string),
        );
        let out = Command::new(target_dir().join(package))
            .arg("--list-u7s")
            .output()
            .unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let (link, target) = line.split_once('\t').expect("link<TAB>target");
            // Links to a listed command (kubeadm) are aliases, not commands of their own.
            if target == package {
                listed.push(link.to_string());
            }
        }
    }
    let mut expected: Vec<String> = COMMANDS
        .iter()
        .map(|c| c.0)
        .chain(U7S_HELPERS.iter().map(|h| h.0))
        .map(str::to_string)
        .collect();
    listed.sort();
    expected.sort();
    assert_eq!(
        listed, expected,
        "the binaries do not list exactly the upstream commands"
    );
    listed
}

/// The Nagios plugins answer in the plugin contract (a status line, exit 3 = UNKNOWN).
fn is_nagios_plugin(name: &str) -> bool {
    name == "podsec-inotify-check-policy" || name == "podsec-inotify-check-images"
}

fn install_tree() -> (tempfile::TempDir, PathBuf) {
    let dest = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-commands");
    let status = Command::new(script)
        .arg(target_dir())
        .arg(dest.path())
        .arg("/usr")
        .status()
        .unwrap();
    assert!(status.success(), "install-commands failed");
    let root = dest.path().to_path_buf();
    (dest, root)
}

#[test]
fn make_install_layout_has_every_name_and_help_works() {
    let (_guard, root) = install_tree();
    for (name, package, _) in COMMANDS {
        let link = root.join("usr/bin").join(name);
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new(package),
            "{name}"
        );
        let help = Command::new(&link).arg("--help").output().unwrap();
        assert!(help.status.success(), "{name} --help: {:?}", help.status);
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(
            text.contains(&format!("Usage: {name}")),
            "{name} --help:\n{text}"
        );
        let version = Command::new(&link).arg("--version").output().unwrap();
        assert!(version.status.success(), "{name} --version");
        assert!(String::from_utf8_lossy(&version.stdout).starts_with(&format!("{name} ")));
    }
    for (name, _, _) in COMMANDS {
        let page = root.join(format!("usr/share/man/man1/{name}.1"));
        let rendered = Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&rendered.stdout);
        assert!(
            rendered.status.success(),
            "man -l {}: {}",
            page.display(),
            String::from_utf8_lossy(&rendered.stderr)
        );
        assert!(
            text.contains("NAME")
                && text
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{name} "))),
            "{name}: man page:\n{text}"
        );
        let completion = std::fs::read_to_string(
            root.join(format!("usr/share/bash-completion/completions/{name}")),
        )
        .unwrap();
        assert!(
            completion.contains("complete -F") && completion.contains(name),
            "{name}: completion"
        );
    }
    let count = std::fs::read_dir(root.join("usr/bin")).unwrap().count();
    assert_eq!(count, COMMANDS.len() + 4, "unexpected files in bin/");
    let u7s_bin = root.join("usr/libexec/podsec/u7s/bin");
    let mut linked: Vec<String> = std::fs::read_dir(&u7s_bin)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    linked.sort();
    let mut expected: Vec<String> = U7S_HELPERS
        .iter()
        .map(|h| h.0.to_string())
        .chain(["kubeadm".to_string()])
        .collect();
    expected.sort();
    assert_eq!(
        linked, expected,
        "unexpected files in libexec/podsec/u7s/bin/"
    );
    for (helper, answers_help) in U7S_HELPERS {
        assert_eq!(
            std::fs::read_link(u7s_bin.join(helper)).unwrap(),
            Path::new("/usr/bin/podsec-k8s"),
            "{helper}"
        );
        assert!(
            !root.join("usr/bin").join(helper).exists(),
            "{helper} in bin/"
        );
        assert!(
            !root.join(format!("usr/share/man/man1/{helper}.1")).exists(),
            "{helper}: a man page would shadow the system's"
        );
        if *answers_help {
            let help = Command::new(root.join("usr/bin/podsec-k8s"))
                .arg0(helper)
                .arg("--help")
                .output()
                .unwrap();
            assert!(
                String::from_utf8_lossy(&help.stdout).contains(&format!("Usage: {helper}")),
                "{helper} --help"
            );
        }
    }
    for unit in [
        "lib/systemd/system/u7s.service",
        "lib/systemd/system/user@.service.d/delegate.conf",
        "lib/systemd/user/rootlesskit.service",
        "lib/systemd/user/kubelet.service",
    ] {
        let meta = std::fs::metadata(root.join("usr").join(unit)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o644,
            "{unit}"
        );
    }
    let kubeadm = root.join("usr/libexec/podsec/u7s/bin/kubeadm");
    assert_eq!(
        std::fs::read_link(&kubeadm).unwrap(),
        Path::new("/usr/bin/podsec-u7s-kubeadm")
    );
    // The nagwad filter of the monitoring lines.
    let sed = root.join("etc/nagwad/podsec.sed");
    assert_eq!(
        std::fs::read(&sed).unwrap(),
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../rpm/nagwad/podsec.sed"))
            .unwrap()
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sed).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644);
    }
    // The link resolves inside the install tree as it will on the host.
    let via_alias = Command::new(root.join("usr/bin/podsec-k8s"))
        .arg0("kubeadm")
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&via_alias.stdout).contains("Usage: podsec-u7s-kubeadm"));
}

use std::os::unix::process::CommandExt;

#[test]
fn help_lists_environment_variables_they_read() {
    let links = command_links();
    for (name, expected) in [
        ("podsec-u7s-kubeadm", "U7S_REGISTRY"),
        ("podsec-get-platform", "U7S_PLATFORM"),
        ("podsec-inotify-check-vuln", "U7S_TRIVY_SERVER"),
        ("podsec-k8s-rbac-bindrole", "KUBECONFIG"),
        ("podsec-save-oci", "U7S_ALTREGISTRY"),
    ] {
        let out = Command::new(links.join(name))
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(expected),
            "{name} does not mention {expected}"
        );
    }
}

/// The README's table of commands names each command the binaries list, once.
#[test]
fn the_readme_command_table_matches_the_binaries() {
    let listed = listed();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let table = readme
        .split("## Commands")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README section \"Commands\"");
    let mut rows = Vec::new();
    for line in table.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | package | command | what it does |
        let Some(command) = cells.get(2) else {
            continue;
        };
        if let Some((name, _, _)) = COMMANDS.iter().find(|(n, _, _)| command.starts_with(n)) {
            rows.push(name.to_string());
        }
    }
    let mut commands: Vec<String> = listed
        .into_iter()
        .filter(|name| COMMANDS.iter().any(|(n, _, _)| n == name))
        .collect();
    commands.sort();
    rows.sort();
    assert_eq!(rows, commands, "one README row per listed command");
}

#[test]
fn package_binary_dispatches_subcommands_by_short_and_full_name() {
    // Harmless commands only: this runs on the host.
    let podsec = target_dir().join("podsec");
    for form in ["get-platform", "podsec-get-platform"] {
        let out = Command::new(&podsec)
            .arg(form)
            .env("U7S_PLATFORM", "p11")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "p11\n", "{form}");
    }
    let out = Command::new(&podsec)
        .arg("no-such-command")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(target_dir().join("podsec-inotify"))
        .args(["check-vuln", "--version"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("podsec-inotify-check-vuln "));
}

#[test]
fn root_only_commands_refuse_other_users() {
    let sandbox = Sandbox::start(&Options::default()).unwrap();
    sandbox.sh_ok("useradd -m podsec-plain");
    let path = path_with_commands();
    for (name, _, root_only) in COMMANDS.iter().filter(|c| c.2) {
        let out = sandbox
            .command(name)
            .args(valid_args(name))
            .user("podsec-plain")
            .env("PATH", &path)
            .output();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(*root_only);
        if is_nagios_plugin(name) {
            assert_eq!(out.status.code(), Some(3), "{name}");
            assert_eq!(
                stdout.trim(),
                "POLICY UNKNOWN - plugin must be run as root user",
                "{name}"
            );
        } else {
            assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
            assert!(
                stderr.starts_with(&format!("{name}: must be run as root")),
                "{name}: {stderr}"
            );
        }
    }
}

#[test]
fn get_platform_prints_the_variable_or_fails_off_alt() {
    let links = command_links();
    let out = Command::new(links.join("podsec-get-platform"))
        .env("U7S_PLATFORM", "p11")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "p11\n");
    // This machine is Debian: without the variable the platform is unknown.
    let out = Command::new(links.join("podsec-get-platform"))
        .env_remove("U7S_PLATFORM")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot determine the platform"));
}
