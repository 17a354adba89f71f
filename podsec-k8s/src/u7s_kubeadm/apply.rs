//! Carrying out a plan, step by step, each step idempotent, every file written atomically and
//! without following links (the directories u7s-admin owns included), every failure an error
//! that names the step: nothing is ignored (upstream discarded kubeadm's stderr and image copy
//! errors, §10.2/13 and /19), every wait bounded (§10.2/18).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use podsec_common::host::files::{FileError, Owner as FileOwner};
use podsec_common::host::{Host, HostDir};
use podsec_common::i18n::{Localize, Message};
use podsec_common::{msg, tr};

use super::audit::{self, AuditError};
use super::plan::{ADMIN_CONF, Owner, Plan, Step};
use super::runtime::{PlannedFile, Runtime, RuntimeError, U7S_HOME};
use podsec_common::host::seam::sysctl_path;
use podsec_common::host::services::ServiceError;
use podsec_common::host::users::NewAccount;

/// How long `kubectl apply` of the pod network (flannel or calico) is retried while the API server comes up.
pub const APPLY_ATTEMPTS: u32 = 90;
pub const APPLY_PAUSE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum ApplyError {
    #[error("step {number} ({what}): {detail}")]
    Step {
        number: usize,
        what: Message,
        detail: Message,
    },
}

fn owner_of(host: &impl Host, owner: &Owner) -> Result<FileOwner, Message> {
    let uid = host.user(&owner.user).map_err(|e| Message::of(&e))?.uid;
    let gid = host
        .group_gid(&owner.group)
        .map_err(|e| Message::of(&e))?
        .ok_or_else(|| msg!("no group {}", owner.group))?;
    Ok(FileOwner::new(uid, gid))
}

fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

fn directory(host: &impl Host, path: &Path, mode: u32, owner: &Owner) -> Result<(), Message> {
    let owner = owner_of(host, owner)?;
    let root = host.open_dir(Path::new("/")).map_err(|e| Message::of(&e))?;
    let dir = root
        .create_dir_all(relative(path), mode, owner)
        .map_err(|e| Message::of(&e))?;
    dir.set_mode_owner(mode, owner).map_err(|e| Message::of(&e))
}

/// Writes a planned file (atomically; a symlink at its name is replaced, never followed).
pub fn write_file(host: &impl Host, file: &PlannedFile) -> Result<(), Message> {
    let owner = owner_of(
        host,
        &Owner {
            user: file.user.clone(),
            group: file.group.clone(),
        },
    )?;
    let parent = file
        .path
        .parent()
        .ok_or_else(|| msg!("no parent directory"))?;
    let name = file
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| msg!("no file name"))?;
    let dir = host.open_dir(parent).map_err(|e| Message::of(&e))?;
    dir.write_file(name, file.contents.as_bytes(), file.mode, owner)
        .map_err(|e: FileError| Message::of(&e))
}

fn status_of(
    status: std::io::Result<std::process::ExitStatus>,
    what: &Message,
) -> Result<(), Message> {
    let status = status.map_err(|e| msg!("cannot run {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(msg!("{what} failed ({status}); its messages are above"))
    }
}

/// An admin kubeconfig root may use: credentials embedded, no files or programs named in it.
pub fn check_kubeconfig(text: &str) -> Result<(), Message> {
    let document: serde_json::Value =
        podsec_common::yaml::from_str(text).map_err(|e| msg!("not a kubeconfig: {e}"))?;
    let refused_user = [
        "client-certificate",
        "client-key",
        "tokenFile",
        "exec",
        "auth-provider",
    ];
    for user in document["users"].as_array().into_iter().flatten() {
        for key in refused_user {
            if !user["user"][key].is_null() {
                return Err(msg!(
                    "its user entry names '{key}', which root does not follow"
                ));
            }
        }
    }
    for cluster in document["clusters"].as_array().into_iter().flatten() {
        if !cluster["cluster"]["certificate-authority"].is_null() {
            return Err(msg!("its cluster entry names a certificate-authority file"));
        }
    }
    if document["clusters"].as_array().is_none_or(|c| c.is_empty()) {
        return Err(msg!("it has no cluster"));
    }
    Ok(())
}

pub(crate) fn patch_audit(host: &impl Host) -> Result<(), Message> {
    let manifests = host
        .open_dir(Path::new("/etc/kubernetes/manifests"))
        .map_err(|e| Message::of(&e))?;
    let text = manifests
        .read_file("kube-apiserver.yaml", 1 << 20)
        .map_err(|e| Message::of(&e))?;
    let text = String::from_utf8(text).map_err(|_| msg!("not UTF-8"))?;
    match audit::patch_manifest(&text).map_err(|e: AuditError| Message::of(&e))? {
        None => Ok(()),
        Some(patched) => manifests
            .write_file(
                "kube-apiserver.yaml",
                patched.as_bytes(),
                0o600,
                owner_of(host, &Owner::u7s())?,
            )
            .map_err(|e| Message::of(&e)),
    }
}

fn copy_admin_conf(host: &impl Host, targets: &[std::path::PathBuf]) -> Result<(), Message> {
    let kube = host
        .open_dir(Path::new("/etc/kubernetes"))
        .map_err(|e| Message::of(&e))?;
    let conf = kube
        .read_file("admin.conf", 1 << 20)
        .map_err(|e| msg!("{ADMIN_CONF} was not written by kubeadm: {e}"))?;
    if conf.is_empty() {
        return Err(msg!("{ADMIN_CONF} is empty"));
    }
    check_kubeconfig(&String::from_utf8_lossy(&conf))
        .map_err(|e| crate::path_message(Path::new(ADMIN_CONF), &e))?;
    for target in targets {
        let home = target
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| Message::verbatim("bad target"))?;
        let owner = if home == Path::new(U7S_HOME) {
            owner_of(host, &Owner::u7s())?
        } else {
            FileOwner::new(0, 0)
        };
        let home_dir = host.open_dir(home).map_err(|e| Message::of(&e))?;
        let dot_kube = home_dir
            .create_dir_all(Path::new(".kube"), 0o700, owner)
            .map_err(|e| Message::of(&e))?;
        dot_kube
            .set_mode_owner(0o700, owner)
            .map_err(|e| Message::of(&e))?;
        dot_kube
            .write_file("config", &conf, 0o600, owner)
            .map_err(|e| Message::of(&e))?;
    }
    Ok(())
}

fn apply_manifest(
    host: &impl Host,
    name: &str,
    argv: &[String],
    attempts: u32,
    pause: Duration,
) -> Result<(), Message> {
    let mut last = Message::verbatim("");
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    for _ in 0..attempts {
        match host.run(&argv[0], &args) {
            Ok(stdout) => {
                let _ = std::io::stdout().write_all(stdout.as_bytes());
                return Ok(());
            }
            Err(ServiceError::Failed { detail, .. }) => last = Message::verbatim(detail),
            // "cannot run <program>: <why>", the program named once.
            Err(e) => return Err(Message::of(&e)),
        }
        std::thread::sleep(pause);
    }
    Err(msg!(
        "the API server did not accept the {name} manifest after {attempts} attempts in {} s: {last}",
        u64::from(attempts) * pause.as_secs()
    ))
}

fn run_step(host: &impl Host, step: &Step, runtime: &dyn Runtime) -> Result<(), Message> {
    let runtime_error = |e: RuntimeError| Message::of(&e);
    match step {
        Step::InstallPackages { commands, .. } => {
            for command in commands {
                let args: Vec<&str> = command[1..].iter().map(String::as_str).collect();
                status_of(
                    host.run_shown(&command[0], &args),
                    &Message::verbatim(command.join(" ")),
                )?;
            }
            Ok(())
        }
        Step::CreateGroup { name } => host
            .ensure_group(name, true)
            .map(|_| ())
            .map_err(|e| Message::of(&e)),
        Step::CreateUser { name, home, groups } => {
            let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
            let shell = if host.exists(Path::new("/bin/bash")) {
                "/bin/bash"
            } else {
                "/bin/sh"
            };
            host.ensure_user(
                name,
                &NewAccount {
                    primary_group: Some(name),
                    groups: &groups,
                    home: Some(home),
                    create_home: true,
                    system: true,
                    comment: Some("usernet user account"),
                    shell: Some(shell),
                },
            )
            .map(|_| ())
            .map_err(|e| Message::of(&e))
        }
        Step::AddSubIds { user, start, count } => host
            .add_subordinate_ids(user, *start, *count)
            .map_err(|e| Message::of(&e)),
        Step::AddToGroups { user, groups } => {
            let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
            host.add_to_groups(user, &groups)
                .map_err(|e| Message::of(&e))
        }
        Step::RemoveLeftovers {
            paths,
            stop_runtime,
            confirmed,
        } => {
            if !confirmed {
                return Err(msg!("not confirmed: run with --reset"));
            }
            if *stop_runtime {
                runtime.stop().map_err(runtime_error)?;
            }
            for path in paths {
                host.remove_all(path)
                    .map_err(|e| crate::path_message(path, &e))?;
            }
            Ok(())
        }
        Step::Sysctl { key, value } => host
            .set_sysctl(key, value)
            .map_err(|e| crate::path_message(&sysctl_path(key), &e)),
        Step::LoadModules { modules } => {
            let mut missing = Vec::new();
            for module in modules {
                if !host.load_module(module) {
                    missing.push(module.as_str());
                }
            }
            if !missing.is_empty() {
                // Built-in or absent modules are the kernel's business; the pods that need
                // them fail visibly if they are absent.
                eprintln!(
                    "podsec-u7s-kubeadm: {}",
                    tr!(
                        "warning: kernel modules not loaded (built in, or missing): {modules}",
                        modules = missing.join(" ")
                    )
                );
            }
            Ok(())
        }
        Step::Directory { path, mode, owner } => directory(host, path, *mode, owner),
        Step::File { file } => write_file(host, file),
        Step::NodeConfig { config } => {
            let mut config = config.clone();
            config.uid = host
                .user(super::runtime::U7S_ADMIN)
                .map_err(|e| Message::of(&e))?
                .uid;
            config
                .save(Path::new(crate::node_config::NODE_CONFIG_PATH))
                .map_err(|e| Message::of(&e))
        }
        Step::StartRuntime => runtime.start().map_err(runtime_error),
        Step::PullImages { commands } => {
            for command in commands {
                let mut cmd = runtime.in_namespace(command).map_err(runtime_error)?;
                status_of(cmd.status(), &msg!("pulling {}", command[4]))?;
            }
            Ok(())
        }
        Step::RunKubeadm { argv } => {
            let mut cmd = runtime.in_namespace(argv).map_err(runtime_error)?;
            let program = Path::new(&argv[0])
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            status_of(
                cmd.status(),
                &Message::verbatim(format!("{program} {}", argv[1])),
            )
        }
        Step::PatchAudit => patch_audit(host),
        Step::CopyAdminConf { targets } => copy_admin_conf(host, targets),
        Step::ApplyFlannel { argv } => {
            apply_manifest(host, "flannel", argv, APPLY_ATTEMPTS, APPLY_PAUSE)
        }
        Step::ApplyCalico { argv } => {
            apply_manifest(host, "calico", argv, APPLY_ATTEMPTS, APPLY_PAUSE)
        }
        Step::EnableService => runtime.enable_service().map_err(runtime_error),
    }
}

/// Runs every step of `plan` in order; stops at the first failure.
pub fn apply(host: &impl Host, plan: &Plan, runtime: &dyn Runtime) -> Result<(), ApplyError> {
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        let what = step.describe();
        eprintln!(
            "podsec-u7s-kubeadm: [{}/{total}] {}",
            i + 1,
            what.localized()
        );
        run_step(host, step, runtime).map_err(|detail| ApplyError::Step {
            number: i + 1,
            what,
            detail,
        })?;
    }
    if plan.prepare_only {
        eprintln!(
            "podsec-u7s-kubeadm: {}",
            tr!(
                "the host is prepared (--prepare-only); run kubeadm {command} again without it to deploy",
                command = plan.command
            )
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_config::NodeConfig;
    use podsec_common::host::fake::{Effect, FakeHost, Node};
    use std::process::Command;

    /// Runs "inside the namespace" as a plain local command and records what it was asked.
    struct FakeRuntime {
        started: std::cell::Cell<bool>,
    }

    impl Runtime for FakeRuntime {
        fn processes(&self, _: &NodeConfig) -> Vec<String> {
            Vec::new()
        }
        fn is_running(&self) -> bool {
            self.started.get()
        }
        fn start(&self) -> Result<(), RuntimeError> {
            self.started.set(true);
            Ok(())
        }
        fn stop(&self) -> Result<(), RuntimeError> {
            Ok(())
        }
        fn in_namespace(&self, argv: &[String]) -> Result<Command, RuntimeError> {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            Ok(c)
        }
        fn image_storage(&self) -> String {
            "containers-storage:".into()
        }
        fn leftover_state(&self) -> Vec<std::path::PathBuf> {
            Vec::new()
        }
        fn enable_service(&self) -> Result<(), RuntimeError> {
            Ok(())
        }
    }

    fn plan_of(steps: Vec<Step>) -> Plan {
        Plan {
            command: "init",
            summary: Vec::new(),
            notes: Vec::new(),
            steps,
            images: Vec::new(),
            images_pending: None,
            processes: Vec::new(),
            ports: Vec::new(),
            prepare_only: false,
        }
    }

    #[test]
    fn failures_of_kubeadm_and_pulls_stop_the_run_with_their_status() {
        // §10.2 defects 13 and 19: image copy errors were ignored and kubeadm's stderr and
        // status lost behind machinectl; here every failure stops the run, named.
        let runtime = FakeRuntime {
            started: std::cell::Cell::new(false),
        };
        let dir = tempfile::tempdir().unwrap();
        let kubeadm = dir.path().join("kubeadm");
        std::fs::write(
            &kubeadm,
            "#!/bin/sh\necho 'stand-in: preflight failed' >&2\nexit 3\n",
        )
        .unwrap();
        std::fs::set_permissions(
            &kubeadm,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        // A fork in another test thread can briefly hold the descriptor the script was
        // written through (exec gives ETXTBSY): wait until it runs, before the run under test.
        for _ in 0..500 {
            match std::process::Command::new(&kubeadm).output() {
                Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                _ => break,
            }
        }
        let plan = plan_of(vec![
            Step::StartRuntime,
            Step::RunKubeadm {
                argv: vec![kubeadm.display().to_string(), "init".into()],
            },
            Step::EnableService,
        ]);
        let err = apply(&FakeHost::new(), &plan, &runtime)
            .unwrap_err()
            .to_string();
        assert!(runtime.started.get());
        assert!(err.starts_with("step 2 (run inside the namespace"), "{err}");
        assert!(
            err.contains("kubeadm init failed (exit status: 3)"),
            "{err}"
        );
        let argv = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let plan = plan_of(vec![Step::PullImages {
            commands: vec![argv(&[
                "false",
                "copy",
                "--override-arch",
                "amd64",
                "docker://registry.local/c10f/pause:3.10",
                "x",
            ])],
        }]);
        let err = apply(&FakeHost::new(), &plan, &runtime)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pulling docker://registry.local/c10f/pause:3.10 failed"),
            "{err}"
        );
    }

    /// The host-preparation steps of a plan, on a machine in memory: each step's effect, in
    /// the plan's order; files and directories with the planned owner and mode.
    #[test]
    fn host_steps_change_the_machine_in_order() {
        let runtime = FakeRuntime {
            started: std::cell::Cell::new(false),
        };
        let host = FakeHost::new()
            .with_sysctl("net.ipv4.ip_forward", "0")
            .with_dir("/etc/podsec", 0o755, (0, 0))
            .with_dir("/var/lib", 0o755, (0, 0))
            .without_module("br_netfilter");
        let plan = plan_of(vec![
            Step::CreateGroup {
                name: "u7s-admin".into(),
            },
            Step::CreateUser {
                name: "u7s-admin".into(),
                home: "/var/lib/u7s-admin".into(),
                groups: vec![],
            },
            Step::AddSubIds {
                user: "u7s-admin".into(),
                start: 200_000,
                count: 65_536,
            },
            Step::Sysctl {
                key: "net.ipv4.ip_forward".into(),
                value: "1".into(),
            },
            Step::LoadModules {
                modules: vec!["overlay".into(), "br_netfilter".into()],
            },
            Step::Directory {
                path: "/etc/podsec/u7s".into(),
                mode: 0o750,
                owner: Owner::root_u7s_group(),
            },
            Step::File {
                file: PlannedFile {
                    path: "/etc/podsec/u7s/env".into(),
                    mode: 0o640,
                    user: "root".into(),
                    group: "u7s-admin".into(),
                    contents: "U7S=1\n".into(),
                },
            },
        ]);
        apply(&host, &plan, &runtime).unwrap();
        let admin = host.account("u7s-admin").expect("account made");
        assert_eq!(admin.home, Path::new("/var/lib/u7s-admin"));
        assert!(host.node("/var/lib/u7s-admin").is_some(), "home made");
        let gid = admin.gid;
        let effects = host.effects();
        assert_eq!(
            effects[..6],
            [
                Effect::AddGroup {
                    name: "u7s-admin".into(),
                    system: true
                },
                Effect::AddUser {
                    name: "u7s-admin".into(),
                    groups: vec![]
                },
                Effect::AddSubordinateIds {
                    name: "u7s-admin".into(),
                    start: 200_000,
                    count: 65_536
                },
                Effect::Sysctl {
                    knob: "net.ipv4.ip_forward".into(),
                    value: "1".into()
                },
                Effect::LoadModule {
                    name: "overlay".into()
                },
                Effect::LoadModule {
                    name: "br_netfilter".into()
                },
            ]
        );
        match host.node("/etc/podsec/u7s") {
            Some(Node::Dir { mode, owner, .. }) => assert_eq!((mode, owner), (0o750, (0, gid))),
            other => panic!("{other:?}"),
        }
        match host.node("/etc/podsec/u7s/env") {
            Some(Node::File {
                contents,
                mode,
                owner,
            }) => {
                assert_eq!(contents, b"U7S=1\n");
                assert_eq!((mode, owner), (0o640, (0, gid)));
            }
            other => panic!("{other:?}"),
        }
        assert!(!runtime.started.get(), "no runtime step was planned");
    }

    #[test]
    fn a_failing_host_step_stops_the_run_naming_it() {
        let runtime = FakeRuntime {
            started: std::cell::Cell::new(false),
        };
        // This kernel has no such knob.
        let host = FakeHost::new();
        let plan = plan_of(vec![
            Step::Sysctl {
                key: "net.ipv4.ip_forward".into(),
                value: "1".into(),
            },
            Step::StartRuntime,
        ]);
        let err = apply(&host, &plan, &runtime).unwrap_err().to_string();
        assert!(
            err.starts_with("step 1 (") && err.contains("/proc/sys/net/ipv4/ip_forward"),
            "{err}"
        );
        assert!(!runtime.started.get(), "nothing after the failed step runs");
    }

    #[test]
    fn flannel_apply_is_bounded() {
        // §10.2 defect 18: upstream retried `kubectl apply` forever.
        let start = std::time::Instant::now();
        let refusing = FakeHost::new().with_programs(|_, _, _| Err("connection refused".into()));
        let err = apply_manifest(
            &refusing,
            "flannel",
            &["kubectl".to_string(), "apply".to_string()],
            3,
            Duration::from_millis(10),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("after 3 attempts"), "{err}");
        assert!(err.ends_with(": connection refused"), "{err}");
        assert_eq!(refusing.effects().len(), 3);
        assert!(start.elapsed() < Duration::from_secs(5));
        apply_manifest(
            &FakeHost::new(),
            "flannel",
            &["kubectl".to_string()],
            3,
            Duration::from_millis(10),
        )
        .unwrap();
    }

    #[test]
    fn admin_kubeconfigs_with_file_references_are_refused() {
        let good = "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: https://192.0.2.20:6443\n    certificate-authority-data: QUJD\nusers:\n- name: a\n  user:\n    client-certificate-data: QUJD\n    client-key-data: QUJD\n";
        check_kubeconfig(good).unwrap();
        let bad = good.replace("client-key-data: QUJD", "client-key: /etc/shadow");
        assert!(
            check_kubeconfig(&bad)
                .unwrap_err()
                .to_string()
                .contains("client-key")
        );
        let bad = good.replace("client-key-data: QUJD", "exec:\n      command: /bin/sh");
        assert!(check_kubeconfig(&bad).is_err());
        let bad = good.replace(
            "certificate-authority-data: QUJD",
            "certificate-authority: /root/x",
        );
        assert!(check_kubeconfig(&bad).is_err());
        assert!(check_kubeconfig("kind: Config\n").is_err());
    }
}
