//! The seam to the u7s runtime (rootlesskit namespace of u7s-admin, CRI-O, kubelet, u7s.service),
//! which lives in its own modules (`crate::u7s`, `crate::node_config`): init and join write the
//! runtime's typed node configuration (/etc/podsec/u7s/node.toml), start the runtime, and run
//! commands inside its namespace through it. Nothing else of the wrapper knows how the runtime
//! works, so the plan, the dry run and the configuration are testable without it.

use std::path::PathBuf;
use std::process::Command;

use crate::node_config::NodeConfig;

/// The service account every cluster process runs as.
pub const U7S_ADMIN: &str = "u7s-admin";
pub const U7S_HOME: &str = "/var/lib/u7s-admin";
/// The runtime's programs (root-owned).
pub const U7S_BIN: &str = "/usr/libexec/podsec/u7s/bin";

/// A file the plan writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub path: PathBuf,
    pub mode: u32,
    pub user: String,
    pub group: String,
    pub contents: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("the u7s runtime is not available: {0}")]
    Unavailable(String),
    #[error("{what}: {detail}")]
    Failed { what: String, detail: String },
}

/// The runtime as init and join use it.
pub trait Runtime {
    /// The long-running processes it starts, for the plan.
    fn processes(&self, node: &NodeConfig) -> Vec<String>;
    /// Whether the namespace of an earlier deployment is running.
    fn is_running(&self) -> bool;
    /// Starts the namespace and CRI-O (bounded waits) with the installed node configuration.
    fn start(&self) -> Result<(), RuntimeError>;
    fn stop(&self) -> Result<(), RuntimeError>;
    /// A command running `argv` inside the namespace as u7s-admin (uid 0 there).
    fn in_namespace(&self, argv: &[String]) -> Result<Command, RuntimeError>;
    /// The containers-storage transport of CRI-O's image store (`containers-storage:[...]`).
    fn image_storage(&self) -> String;
    /// State an earlier deployment leaves in u7s-admin's data (kubelet directories).
    fn leftover_state(&self) -> Vec<PathBuf>;
    /// Enables and starts u7s.service (or its direct launcher without systemd).
    fn enable_service(&self) -> Result<(), RuntimeError>;
}

/// The runtime as installed on the node, reached through its programs in
/// /usr/libexec/podsec/u7s/bin.
pub struct InstalledRuntime {
    pub uid: Option<u32>,
}

impl InstalledRuntime {
    pub fn new() -> InstalledRuntime {
        let uid = podsec_common::host::users::find_user(U7S_ADMIN)
            .ok()
            .flatten()
            .map(|a| a.uid);
        InstalledRuntime { uid }
    }

    fn runtime_dir(&self) -> Option<PathBuf> {
        self.uid
            .map(|uid| PathBuf::from(format!("/run/user/{uid}")))
    }

    fn program(&self, name: &str) -> Result<PathBuf, RuntimeError> {
        let path = PathBuf::from(U7S_BIN).join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(RuntimeError::Unavailable(format!(
                "{} is not installed (package podsec-k8s)",
                path.display()
            )))
        }
    }
}

impl Default for InstalledRuntime {
    fn default() -> Self {
        InstalledRuntime::new()
    }
}

impl Runtime for InstalledRuntime {
    fn processes(&self, node: &NodeConfig) -> Vec<String> {
        let ports: Vec<String> = node
            .published_ports()
            .iter()
            .map(|p| p.to_string())
            .collect();
        vec![
            format!(
                "rootlesskit as {U7S_ADMIN} (user, mount, net, pid, ipc, uts, cgroup namespaces; slirp4netns {}, MTU 65520; {} on tap0; publishes {})",
                node.slirp_cidr,
                node.external_ip,
                ports.join(" ")
            ),
            format!(
                "crio inside the namespace (pause image {})",
                node.pause_image
            ),
            "kubelet inside the namespace".to_string(),
        ]
    }

    fn is_running(&self) -> bool {
        let Some(dir) = self.runtime_dir() else {
            return false;
        };
        let pid = std::fs::read_to_string(dir.join("usernetes/rootlesskit/child_pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        pid.is_some_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok())
    }

    fn start(&self) -> Result<(), RuntimeError> {
        let program = self.program("u7s-start-stop")?;
        run_checked(
            Command::new(program).arg("start"),
            "starting the u7s runtime",
        )
    }

    fn stop(&self) -> Result<(), RuntimeError> {
        let program = self.program("u7s-start-stop")?;
        run_checked(
            Command::new(program).arg("stop"),
            "stopping the u7s runtime",
        )
    }

    fn in_namespace(&self, argv: &[String]) -> Result<Command, RuntimeError> {
        let nsenter = self.program("nsenter_u7s")?;
        let uid = self
            .uid
            .ok_or_else(|| RuntimeError::Unavailable(format!("no account {U7S_ADMIN}")))?;
        // setpriv (util-linux) drops to the account with its groups; the environment is set
        // explicitly, nothing of root's leaks in.
        let mut command = Command::new("setpriv");
        command
            .args([
                &format!("--reuid={uid}"),
                "--regid=u7s-admin",
                "--init-groups",
                "--reset-env",
                "--",
            ])
            .arg(nsenter)
            .args(argv)
            .env_clear()
            .env("HOME", U7S_HOME)
            .env("USER", U7S_ADMIN)
            .env("XDG_RUNTIME_DIR", format!("/run/user/{uid}"))
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir(U7S_HOME);
        Ok(command)
    }

    fn image_storage(&self) -> String {
        let uid = self.uid.unwrap_or(0);
        format!(
            "containers-storage:[overlay@{U7S_HOME}/.local/share/usernetes/containers/storage+/run/user/{uid}/usernetes/containers/storage]"
        )
    }

    fn leftover_state(&self) -> Vec<PathBuf> {
        ["_var_lib_kubelet", "kubelet"]
            .iter()
            .map(|d| {
                PathBuf::from(U7S_HOME)
                    .join(".local/share/usernetes")
                    .join(d)
            })
            .collect()
    }

    fn enable_service(&self) -> Result<(), RuntimeError> {
        if podsec_common::host::services::systemd_running() {
            run_checked(
                Command::new("systemctl").args(["enable", "--now", "u7s.service"]),
                "enabling u7s.service",
            )
        } else {
            // Without systemd the runtime's start above keeps running; nothing to enable.
            Ok(())
        }
    }
}

fn run_checked(command: &mut Command, what: &str) -> Result<(), RuntimeError> {
    let status = command.status().map_err(|e| RuntimeError::Failed {
        what: what.into(),
        detail: e.to_string(),
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(RuntimeError::Failed {
            what: what.into(),
            detail: format!("exit status {status}"),
        })
    }
}
