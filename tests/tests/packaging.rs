//! The RPM packages (issue 7, acceptance 1-3): built offline from the vendored crates; each
//! file in exactly one package, each command with its man page and completion in its package;
//! units, presets and scriptlets agree; Requires follow what the commands run; nothing root
//! runs or reads as code is owned by or writable for u7s-admin. And installed into a sandbox's
//! rpm database: everything where it belongs, `rpm -V` clean, every unit verified by
//! `systemd-analyze verify`, presets applied, and an erase that leaves user data and says so.
//!
//! The checks are invariants over whatever the packages contain, so they keep holding (or
//! fail loudly) as commands, units and data files are added.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use podsec_tests::rpm::{FileEntry, PACKAGES, built};
use podsec_tests::sandbox::{Options, Sandbox, target_dir};

const UNITDIR: &str = "/usr/lib/systemd/system";
const PRESETDIR: &str = "/usr/lib/systemd/system-preset";
const MAN1: &str = "/usr/share/man/man1/";
const MAN1_RU: &str = "/usr/share/man/ru/man1/";
const COMPLETIONS: &str = "/usr/share/bash-completion/completions/";
const SERVICE_ACCOUNT: &str = "u7s-admin";

/// The commands of a package binary, from the binary itself.
fn commands_of(binary: &str) -> Vec<String> {
    let output = Command::new(target_dir().join(binary))
        .arg("--list")
        .output()
        .unwrap_or_else(|e| panic!("{binary} not built ({e}): cargo build --workspace --bins"));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The package a command belongs in: the save-oci tools in podsec-dev, the rest with their
/// binary.
fn package_of_command(binary: &str, command: &str) -> String {
    if command.ends_with("-save-oci") {
        "podsec-dev".into()
    } else {
        binary.into()
    }
}

fn all_files() -> BTreeMap<String, Vec<FileEntry>> {
    let built = built();
    PACKAGES
        .iter()
        .map(|p| (p.to_string(), built.files(p)))
        .collect()
}

/// path -> package, asserting no path is in two packages.
fn owners() -> BTreeMap<String, String> {
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for (package, files) in all_files() {
        for file in files {
            if let Some(other) = owner.insert(file.path.clone(), package.clone()) {
                panic!("{} is in both {other} and {package}", file.path);
            }
        }
    }
    owner
}

#[test]
fn seven_packages_are_built_offline_from_vendored_crates() {
    let built = built();
    let names: BTreeSet<&str> = built.rpms.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        PACKAGES.iter().copied().collect(),
        "the packages of the spec"
    );
    let version = env!("CARGO_PKG_VERSION");
    for package in PACKAGES {
        let evr = built.query(package, &["--qf", "%{VERSION}-%{RELEASE}"]);
        assert_eq!(evr, format!("{version}-alt1"), "{package}");
    }
    for noarch in ["podsec-icinga", "podsec-nagios"] {
        assert_eq!(built.query(noarch, &["--qf", "%{ARCH}"]), "noarch");
    }

    // The tarball carries the vendored crates and the source replacement.
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(built.tarball())
        .output()
        .expect("tar -tf");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let top = format!("podsec-{version}/");
    assert!(
        listing
            .lines()
            .any(|l| l == format!("{top}.cargo/config.toml"))
    );
    for krate in ["vendor/serde/", "vendor/sequoia-openpgp/", "vendor/kube/"] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(&format!("{top}{krate}"))),
            "{krate} vendored"
        );
    }
    let config = Command::new("tar")
        .arg("-xOf")
        .arg(built.tarball())
        .arg(format!("{top}.cargo/config.toml"))
        .output()
        .expect("tar -xOf");
    let config = String::from_utf8_lossy(&config.stdout);
    assert!(
        config.contains("replace-with = \"vendored-sources\"")
            && config.contains("directory = \"vendor\""),
        "{config}"
    );

    // rpmbuild ran without a network (loopback only), with an empty CARGO_HOME of its own and
    // cargo offline; cargo never touched a registry.
    let log = built.log();
    let interfaces = log
        .lines()
        .find_map(|l| l.strip_prefix("network interfaces: "))
        .expect("rpm-build logs the interfaces rpmbuild saw");
    assert_eq!(interfaces.trim(), "lo", "rpmbuild must see no network");
    assert!(
        log.contains("build environment: CARGO_HOME=") && log.contains("CARGO_NET_OFFLINE=true"),
        "the %build environment is logged"
    );
    for forbidden in [
        "Updating crates.io index",
        "Downloading crates",
        "Downloaded ",
    ] {
        assert!(
            !log.contains(forbidden),
            "rpmbuild reached a registry: {forbidden}"
        );
    }
    assert!(
        log.contains("Finished `release-small` profile"),
        "a release build ran"
    );
}

#[test]
fn every_file_is_in_exactly_one_package() {
    let owner = owners();
    // Directories of the layout belong to the package of their contents.
    for (path, package) in [
        ("/etc/podsec", "podsec"),
        ("/usr/libexec/podsec", "podsec"),
        ("/var/lib/podsec", "podsec"),
        ("/usr/libexec/podsec/u7s/bin", "podsec-k8s"),
        ("/etc/podsec/u7s", "podsec-k8s"),
        ("/var/lib/u7s-admin", "podsec-k8s"),
        ("/etc/icinga2/conf.d/podsec.conf", "podsec-icinga"),
        ("/etc/nagios/templates/podsec-services.cfg", "podsec-nagios"),
        (
            "/etc/nagios/nrpe-commands/podsec-commands.cfg",
            "podsec-nagios",
        ),
    ] {
        assert_eq!(owner.get(path).map(String::as_str), Some(package), "{path}");
    }
    // Configuration is %config(noreplace).
    let built = built();
    for package in PACKAGES {
        let configs = built.query(package, &["-c"]);
        let configs: BTreeSet<&str> = configs.lines().collect();
        for file in built.files(package) {
            if file.path.starts_with("/etc/") && file.is_regular() {
                assert!(
                    configs.contains(file.path.as_str()),
                    "{} is %config",
                    file.path
                );
            }
        }
    }
}

#[test]
fn every_command_its_man_pages_and_completion_land_in_its_package() {
    let owner = owners();
    let files: BTreeMap<String, FileEntry> = all_files()
        .into_values()
        .flatten()
        .map(|f| (f.path.clone(), f))
        .collect();
    let russian_pages = tempfile::tempdir().unwrap();
    for binary in podsec_tests::fixtures::PACKAGE_BINARIES {
        let bin = format!("/usr/bin/{binary}");
        assert_eq!(owner.get(&bin).map(String::as_str), Some(*binary), "{bin}");
        assert!(files[&bin].is_executable() && files[&bin].user == "root");
        // The Russian pages the binary renders (those whose texts are all translated).
        let status = Command::new(target_dir().join(binary))
            .args(["--generate", "man-ru"])
            .arg(russian_pages.path())
            .output()
            .unwrap();
        assert!(status.status.success());
        for command in commands_of(binary) {
            let package = package_of_command(binary, &command);
            let link = format!("/usr/bin/{command}");
            assert_eq!(owner.get(&link), Some(&package), "{link}");
            assert!(
                files[&link].is_link() && files[&link].link_to == *binary,
                "{link} -> {binary}"
            );
            let man = owner
                .iter()
                .find(|(p, _)| {
                    p.strip_prefix(MAN1).is_some_and(|n| {
                        n == format!("{command}.1") || n.starts_with(&format!("{command}.1."))
                    })
                })
                .unwrap_or_else(|| panic!("no man page of {command}"));
            assert_eq!(man.1, &package, "{}", man.0);
            let completion = format!("{COMPLETIONS}{command}");
            assert_eq!(owner.get(&completion), Some(&package), "{completion}");
            if russian_pages.path().join(format!("{command}.1")).exists() {
                let ru = owner
                    .iter()
                    .find(|(p, _)| p.starts_with(&format!("{MAN1_RU}{command}.1")))
                    .unwrap_or_else(|| panic!("no Russian man page of {command} packaged"));
                assert_eq!(ru.1, &package, "{}", ru.0);
            }
        }
    }
    let kubeadm = "/usr/libexec/podsec/u7s/bin/kubeadm";
    assert_eq!(owner.get(kubeadm).map(String::as_str), Some("podsec-k8s"));
    assert_eq!(files[kubeadm].link_to, "/usr/bin/podsec-u7s-kubeadm");
    // Every command of every package has its Russian page.
    for command in commands_of("podsec")
        .into_iter()
        .chain(commands_of("podsec-k8s"))
        .chain(commands_of("podsec-k8s-rbac"))
        .chain(commands_of("podsec-inotify"))
    {
        assert!(
            russian_pages.path().join(format!("{command}.1")).exists(),
            "Russian man page of {command}"
        );
    }
}

/// The units of each package, with whether they have an [Install] section and their text.
fn units() -> Vec<(String, String, String)> {
    let built = built();
    let mut units = Vec::new();
    let extract = tempfile::tempdir().unwrap();
    for package in PACKAGES {
        let names: Vec<String> = built
            .files(package)
            .into_iter()
            .filter(|f| f.is_regular() && f.path.starts_with(&format!("{UNITDIR}/")))
            .map(|f| f.path)
            .collect();
        if names.is_empty() {
            continue;
        }
        let dir = extract.path().join(package);
        extract_rpm(built.rpm(package), &dir);
        for path in names {
            let text = std::fs::read_to_string(dir.join(path.trim_start_matches('/'))).unwrap();
            units.push((package.to_string(), path, text));
        }
    }
    units
}

fn extract_rpm(rpm: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg("rpm2cpio \"$1\" | cpio -idm --quiet")
        .arg("sh")
        .arg(rpm)
        .current_dir(dir)
        .status()
        .expect("rpm2cpio | cpio");
    assert!(status.success());
}

/// `enable x` / `disable x` lines of a package's preset files.
fn presets(package: &str) -> BTreeMap<String, String> {
    let built = built();
    let extract = tempfile::tempdir().unwrap();
    extract_rpm(built.rpm(package), extract.path());
    let mut lines = BTreeMap::new();
    for file in built.files(package) {
        if !file.path.starts_with(&format!("{PRESETDIR}/")) {
            continue;
        }
        let text = std::fs::read_to_string(extract.path().join(file.path.trim_start_matches('/')))
            .unwrap();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (action, unit) = line.split_once(' ').expect("preset line");
            let previous = lines.insert(unit.trim().to_string(), action.to_string());
            assert!(previous.is_none(), "{unit} preset twice in {package}");
        }
    }
    lines
}

#[test]
fn units_presets_and_scriptlets_agree() {
    let built = built();
    let units = units();
    assert!(!units.is_empty(), "the packages ship units");
    let mut by_package: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (package, path, text) in units {
        // The unit, or the drop-in directory and file (user@.service.d/delegate.conf).
        let name = path
            .strip_prefix(&format!("{UNITDIR}/"))
            .unwrap()
            .to_string();
        // Units land in the package of their prefix.
        let expected = if name.starts_with("podsec-inotify-") {
            "podsec-inotify"
        } else if name.starts_with("u7s") || name.starts_with("user@") {
            "podsec-k8s"
        } else {
            panic!("{name}: a unit name no package rule covers")
        };
        assert_eq!(package, expected, "{name}");
        by_package.entry(package).or_default().push((name, text));
    }
    for (package, units) in by_package {
        let preset = presets(&package);
        let scripts = built.query(&package, &["--scripts"]);
        let post = scriptlet(&scripts, "postinstall");
        let preun = scriptlet(&scripts, "preuninstall");
        let installable: BTreeSet<&str> = units
            .iter()
            .filter(|(_, text)| text.contains("[Install]"))
            .map(|(name, _)| name.as_str())
            .collect();
        let preset_units: BTreeSet<&str> = preset.keys().map(String::as_str).collect();
        assert_eq!(
            preset_units, installable,
            "{package}: every unit with [Install] is preset, and nothing else"
        );
        for (name, text) in &units {
            if !installable.contains(name.as_str()) {
                continue;
            }
            assert!(
                post.contains(name.as_str()),
                "{package}: %post presets {name}"
            );
            assert!(
                preun.contains(name.as_str()),
                "{package}: %preun disables {name}"
            );
            let enabled = preset[name] == "enable";
            // What must run by default runs, the timers too (but check-vuln's: it needs a
            // trivy server, so the administrator enables it); a watcher that only applies to
            // some nodes is enabled only with a condition that keeps it quiet elsewhere.
            let needs_a_server = name == "podsec-inotify-check-vuln.timer";
            if (name.ends_with(".timer") && !needs_a_server)
                || name == "podsec-inotify-check-containers.service"
            {
                assert!(enabled, "{name} is enabled by default");
            }
            if needs_a_server {
                assert!(!enabled, "{name} waits for a trivy server");
            }
            if name == "podsec-inotify-check-kubeapi.service" && enabled {
                assert!(
                    text.contains("ConditionPath"),
                    "{name} needs a condition to be enabled"
                );
            }
            if name == "u7s.service" {
                assert!(
                    !enabled,
                    "u7s.service starts with kubeadm init/join, not at install"
                );
            }
        }
    }
}

/// The body of one scriptlet in `rpm --scripts` output.
fn scriptlet(scripts: &str, kind: &str) -> String {
    let mut body = String::new();
    let mut inside = false;
    for line in scripts.lines() {
        if line.ends_with("scriptlet (using /bin/sh):") || line.contains(" scriptlet (using ") {
            inside = line.starts_with(kind);
            continue;
        }
        if inside {
            body.push_str(line);
            body.push('\n');
        }
    }
    body
}

#[test]
fn scriptlets_create_the_accounts_and_say_what_erase_leaves() {
    let built = built();
    let podsec = built.query("podsec", &["--scripts"]);
    let pre = scriptlet(&podsec, "preinstall");
    assert!(pre.contains("groupadd -r -f podman") && pre.contains("groupadd -r -f podman_dev"));
    let k8s = built.query("podsec-k8s", &["--scripts"]);
    let pre = scriptlet(&k8s, "preinstall");
    assert!(
        pre.contains("useradd -r") && pre.contains(SERVICE_ACCOUNT),
        "{pre}"
    );
    assert!(
        pre.contains("--add-subuids") && pre.contains("--add-subgids"),
        "{pre}"
    );
    assert!(
        !pre.contains("rm -"),
        "%pre must not delete anything of the account (upstream removed ~/.local/share/containers)"
    );
    for package in ["podsec", "podsec-k8s", "podsec-k8s-rbac", "podsec-inotify"] {
        let postun = scriptlet(&built.query(package, &["--scripts"]), "postuninstall");
        assert!(
            postun.contains("left in place"),
            "{package} says what erase leaves"
        );
    }
}

#[test]
fn requires_follow_what_the_commands_run() {
    let built = built();
    let expected: &[(&str, &[&str])] = &[
        (
            "podsec",
            &[
                "podman",
                "nginx",
                "docker-registry",
                "gnupg2",
                "shadow-submap",
                "util-linux",
                "shadow-utils",
                "trivy-server",
                "pinentry-common",
            ],
        ),
        (
            // The namespace (rootlesskit, slirp4netns, nsenter, newuidmap), CRI-O's runtime
            // (crun), the user manager (machinectl), tap0's addresses (ip), kube-proxy and
            // kubeadm's preflight (iptables, conntrack), modprobe, u7s-admin (useradd, usermod),
            // the image pre-pull (skopeo copy in plan.rs), flannel (kubectl apply in plan.rs),
            // the Kubernetes packages of the minor (apt-cache, apt-get in packages.rs).
            "podsec-k8s",
            &[
                "podsec",
                "rootlesskit",
                "slirp4netns",
                "crun",
                "systemd-container",
                "util-linux",
                "iproute2",
                "shadow-submap",
                "iptables",
                "conntrack-tools",
                "kmod",
                "shadow-utils",
                "skopeo",
                "/usr/bin/kubectl",
                "apt",
            ],
        ),
        ("podsec-k8s-rbac", &["openssh-clients", "shadow-utils"]),
        (
            "podsec-inotify",
            &[
                "podsec",
                "trivy",
                "podman",
                "systemd-container",
                "/usr/sbin/sendmail",
            ],
        ),
        // save-oci copies with skopeo; k8s-save-oci lists the images with the native kubeadm.
        (
            "podsec-dev",
            &["podsec", "podsec-k8s", "skopeo", "/usr/bin/kubeadm"],
        ),
        ("podsec-icinga", &["nagwad-icinga-templates"]),
        ("podsec-nagios", &["nagwad-nagios-templates", "sudo"]),
    ];
    // Upstream's shell tools that the Rust commands no longer run.
    let gone = [
        "jq",
        "yq",
        "wget",
        "curl",
        "inotify-tools",
        "psmisc",
        "mailx",
    ];
    for (package, names) in expected {
        let requires = built.query(package, &["--requires"]);
        let required: BTreeSet<&str> = requires
            .lines()
            .map(|l| l.split_whitespace().next().unwrap_or_default())
            .collect();
        for name in *names {
            assert!(
                required.contains(name),
                "{package} requires {name}: {requires}"
            );
        }
        for name in gone {
            assert!(
                !required.contains(name),
                "{package} must not require {name}"
            );
        }
    }
    // The same version of the sibling packages.
    let dev = built.query("podsec-dev", &["--requires"]);
    let evr = format!("{}-alt1", env!("CARGO_PKG_VERSION"));
    assert!(
        dev.contains(&format!("podsec = {evr}")) && dev.contains(&format!("podsec-k8s = {evr}")),
        "{dev}"
    );
}

#[test]
fn nothing_root_runs_is_owned_by_or_writable_for_the_service_account() {
    // rpm -qp --qf '[%{FILEUSERNAME} %{FILEMODES:perms} %{FILENAMES}\n]' over every package.
    let allowed_dirs = ["/var/lib/u7s-admin", "/var/lib/podsec/u7s/etcd"];
    let mut service_owned = Vec::new();
    for (package, files) in all_files() {
        for file in files {
            let foreign = file.user != "root" || file.group != "root";
            if foreign {
                service_owned.push(file.path.clone());
                assert!(
                    file.is_dir() && allowed_dirs.contains(&file.path.as_str()),
                    "{package}: {} {}:{} {} — only the account's data directories may be its own",
                    file.mode,
                    file.user,
                    file.group,
                    file.path
                );
            }
            assert!(
                !file.is_shared_writable(),
                "{package}: {} {} is writable by group or others",
                file.mode,
                file.path
            );
            if file.path.starts_with("/usr/") || file.path.starts_with("/etc/") {
                assert!(!foreign, "{package}: {} must be root's", file.path);
            }
        }
    }
    assert_eq!(service_owned.len(), allowed_dirs.len(), "{service_owned:?}");
}

/// Installs all packages into a sandbox's rpm database (Debian's rpm; --nodeps because the
/// dependencies are ALT package names that dpkg, not rpm, knows here).
fn install_all(sandbox: &Sandbox) -> String {
    let share = sandbox.share();
    let mut files = Vec::new();
    for (name, path) in &built().rpms {
        let copy = share.join(format!("{name}.rpm"));
        std::fs::copy(path, &copy).unwrap();
        files.push(copy.display().to_string());
    }
    sandbox.sh_ok(&format!("rpm -i --nodeps {} 2>&1", files.join(" ")))
}

#[test]
fn packages_install_into_a_sandbox_and_verify() {
    let sandbox = Sandbox::start(&Options::default()).expect("sandbox");
    // An account with subordinate ids before the packages come (useradd gives it a range).
    sandbox.sh_ok("useradd -m early-user && grep -q '^early-user:' /etc/subuid");
    install_all(&sandbox);
    let installed = sandbox.sh_ok("rpm -qa --qf '%{NAME}\\n' | sort");
    let installed: BTreeSet<&str> = installed.lines().collect();
    for package in PACKAGES {
        assert!(installed.contains(package), "{package} installed");
    }

    // The accounts of %pre: the groups, and u7s-admin with subordinate ids of its own.
    sandbox.sh_ok("getent group podman && getent group podman_dev && getent group u7s-admin");
    let account = sandbox.sh_ok("getent passwd u7s-admin");
    assert!(account.contains(":/var/lib/u7s-admin:"), "{account}");
    assert!(
        sandbox
            .sh_ok("id -nG u7s-admin")
            .split_whitespace()
            .any(|g| g == "podman")
    );
    // A range of its own: 65536 ids that overlap nobody else's (early-user had one first).
    for map in ["subuid", "subgid"] {
        let text = sandbox.sh_ok(&format!("cat /etc/{map}"));
        let ranges: Vec<(String, u64, u64)> = text
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((
                    f.first()?.to_string(),
                    f.get(1)?.parse().ok()?,
                    f.get(2)?.parse().ok()?,
                ))
            })
            .collect();
        let own: Vec<_> = ranges.iter().filter(|r| r.0 == "u7s-admin").collect();
        assert_eq!(own.len(), 1, "{map}: {text}");
        let (_, start, count) = own[0];
        assert_eq!(*count, 65536, "{map}: {text}");
        for (user, other_start, other_count) in ranges.iter().filter(|r| r.0 != "u7s-admin") {
            assert!(
                start + count <= *other_start || other_start + other_count <= *start,
                "{map}: u7s-admin's range overlaps {user}'s: {text}"
            );
        }
    }
    assert_eq!(
        sandbox.sh_ok("stat -c '%U %a' /var/lib/u7s-admin").trim(),
        "u7s-admin 700"
    );

    // Every command runs from its installed link.
    let version = env!("CARGO_PKG_VERSION");
    for binary in podsec_tests::fixtures::PACKAGE_BINARIES {
        for command in commands_of(binary) {
            let out = sandbox.sh_ok(&format!("/usr/bin/{command} --version"));
            assert!(out.contains(version), "{command} --version: {out}");
        }
    }
    sandbox.sh_ok("/usr/libexec/podsec/u7s/bin/kubeadm --version");

    // Every man page renders, English and Russian; completions load into bash.
    let pages = sandbox.sh_ok(&format!(
        "rpm -ql {} | grep '/man/.*\\.1'",
        PACKAGES.join(" ")
    ));
    assert!(pages.lines().count() > 20, "{pages}");
    for page in pages.lines() {
        let out = sandbox.sh_ok(&format!("MANWIDTH=80 man -l {page} 2>&1"));
        assert!(out.lines().count() > 5, "man -l {page}: {out}");
    }
    let english = sandbox.sh_ok("LANG=C MANWIDTH=80 man -P cat podsec-create-policy");
    assert!(
        english.contains("NAME") && english.contains("image-trust policy"),
        "{english}"
    );
    let russian = sandbox.sh_ok("MANWIDTH=80 man -L ru -P cat podsec-create-policy");
    assert!(
        russian.contains("ИМЯ") && russian.contains("политику доступа к образам"),
        "man -L ru: {russian}"
    );
    for binary in podsec_tests::fixtures::PACKAGE_BINARIES {
        for command in commands_of(binary) {
            sandbox.sh_ok(&format!(
                "bash -c '. {COMPLETIONS}{command} && complete -p {command}'"
            ));
        }
    }

    // rpm -V: every file as packaged (--nodeps: the dependencies are ALT's names).
    let verify = sandbox.sh(&format!("rpm -V --nodeps {}", PACKAGES.join(" ")));
    assert!(
        verify.status.success() && verify.stdout.is_empty(),
        "rpm -V: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // Every unit passes systemd-analyze verify; presets took effect.
    let units = sandbox.sh_ok(&format!(
        "rpm -ql {} | grep -E '^{UNITDIR}/[^/]*\\.(service|timer|socket|path|target)$'",
        PACKAGES.join(" ")
    ));
    for unit in units.lines() {
        let out = sandbox.sh(&format!("systemd-analyze verify {unit} 2>&1"));
        assert!(
            out.status.success(),
            "systemd-analyze verify {unit}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    for (unit, action) in presets("podsec-inotify") {
        let state = sandbox.sh(&format!("systemctl is-enabled {unit}"));
        let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
        let expected = if action == "enable" {
            "enabled"
        } else {
            "disabled"
        };
        assert_eq!(state, expected, "{unit}");
    }

    // Erase: user data stays, and the scriptlets say what they leave.
    sandbox
        .sh_ok("echo data > /var/lib/u7s-admin/state && chown u7s-admin: /var/lib/u7s-admin/state");
    let erase = sandbox.sh_ok(&format!("rpm -e {} 2>&1", PACKAGES.join(" ")));
    assert!(erase.contains("left in place"), "{erase}");
    assert!(erase.contains("u7s-admin"), "{erase}");
    sandbox.sh_ok(
        "getent passwd u7s-admin && getent group podman && test -f /var/lib/u7s-admin/state",
    );
    let left = sandbox
        .sh("ls /usr/bin/podsec* 2>/dev/null; ls /etc/systemd/system/*.wants/podsec-* 2>/dev/null");
    assert!(
        left.stdout.is_empty(),
        "erase removed the commands and the unit links: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}
