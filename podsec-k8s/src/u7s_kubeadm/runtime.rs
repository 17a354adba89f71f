//! The seam to the u7s runtime (rootlesskit namespace of u7s-admin, CRI-O, kubelet, u7s.service),
//! which lives in its own modules (`crate::u7s`, `crate::node_config`): init and join write the
//! runtime's typed node configuration (/etc/podsec/u7s/node.toml), start the runtime, and run
//! commands inside its namespace through it. Nothing else of the wrapper knows how the runtime
//! works, so the plan, the dry run and the configuration are testable without it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use podsec_common::i18n::Message;
use podsec_common::{msg, tr};

use crate::node_config::NodeConfig;
use crate::u7s::paths::U7sPaths;
use crate::u7s::runtime::{Runtime as U7s, Units};

/// The service account every cluster process runs as.
pub const U7S_ADMIN: &str = "u7s-admin";
pub const U7S_HOME: &str = "/var/lib/u7s-admin";

/// A file the plan writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub path: PathBuf,
    pub mode: u32,
    pub user: String,
    pub group: String,
    pub contents: String,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum RuntimeError {
    #[error("the u7s runtime is not available: {0}")]
    Unavailable(Message),
    #[error("{what}: {detail}")]
    Failed { what: Message, detail: Message },
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

/// The runtime of this package (`crate::u7s::runtime`), for the node configuration in
/// /etc/podsec/u7s/node.toml.
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

    /// The runtime of the node configuration podsec-u7s-kubeadm wrote.
    fn runtime(&self) -> Result<U7s, RuntimeError> {
        let config =
            NodeConfig::load_default().map_err(|e| RuntimeError::Unavailable(Message::of(&e)))?;
        U7s::new(&config).map_err(|e| RuntimeError::Failed {
            what: msg!("the u7s runtime"),
            detail: Message::of(&e),
        })
    }

    fn paths(&self) -> U7sPaths {
        U7sPaths::new(self.uid.unwrap_or(0), U7S_HOME)
    }
}

impl Default for InstalledRuntime {
    fn default() -> Self {
        InstalledRuntime::new()
    }
}

fn failed(what: Message) -> impl FnOnce(crate::u7s::runtime::RuntimeError) -> RuntimeError {
    move |e| RuntimeError::Failed {
        what,
        detail: Message::of(&e),
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
            tr!(
                "rootlesskit as {user} (user, mount, net, pid, ipc, uts, cgroup namespaces; slirp4netns {slirp}, MTU 65520; {address} on tap0; publishes {ports})",
                user = U7S_ADMIN,
                slirp = node.slirp_cidr,
                address = node.external_ip,
                ports = ports.join(" ")
            ),
            tr!(
                "crio inside the namespace (pause image {image})",
                image = node.pause_image
            ),
            tr!("kubelet inside the namespace").to_string(),
        ]
    }

    fn is_running(&self) -> bool {
        self.runtime().is_ok_and(|r| r.ready().is_ok())
    }

    fn start(&self) -> Result<(), RuntimeError> {
        // The kubelet unit waits for the configuration kubeadm writes.
        if podsec_common::host::services::systemd_running() {
            // The node is u7s.service (its ExecStart starts Units::All), so that
            // `systemctl status u7s` and `systemctl stop u7s` tell and do what the wrapper did.
            return systemctl_u7s(&["start"], msg!("starting u7s.service"));
        }
        self.runtime()?
            .start(Units::All)
            .map(|_| ())
            .map_err(failed(msg!("starting the u7s runtime")))
    }

    fn stop(&self) -> Result<(), RuntimeError> {
        if podsec_common::host::services::systemd_running() {
            systemctl_u7s(&["stop"], msg!("stopping u7s.service"))?;
        }
        // Also what was started outside u7s.service (u7s-start-stop start); a no-op otherwise.
        self.runtime()?
            .stop()
            .map_err(failed(msg!("stopping the u7s runtime")))
    }

    fn in_namespace(&self, argv: &[String]) -> Result<Command, RuntimeError> {
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        self.runtime()?
            .command(&argv)
            .map_err(failed(msg!("entering the u7s namespace")))
    }

    fn image_storage(&self) -> String {
        // CRI-O's storage (crate::u7s::crio): graphroot and runroot of u7s-admin.
        let paths = self.paths();
        format!(
            "containers-storage:[overlay@{}+{}]",
            paths.data().join("containers/storage").display(),
            paths
                .usernetes_runtime()
                .join("containers/storage")
                .display()
        )
    }

    fn leftover_state(&self) -> Vec<PathBuf> {
        vec![self.paths().kubelet_dir()]
    }

    fn enable_service(&self) -> Result<(), RuntimeError> {
        if podsec_common::host::services::systemd_running() {
            // --now: a node deployed by an older wrapper runs outside the unit until then.
            systemctl_u7s(&["enable", "--now"], msg!("enabling u7s.service"))
        } else {
            // Without systemd the runtime started above keeps running; nothing to enable.
            Ok(())
        }
    }
}

/// `systemctl ARGS u7s.service` with the system's systemctl (not the u7s wrapper).
fn systemctl_u7s(args: &[&str], what: Message) -> Result<(), RuntimeError> {
    let systemctl =
        crate::u7s::systemctl::real_systemctl().unwrap_or_else(|| PathBuf::from("systemctl"));
    // Outside the host seam: the runtime trait (runtime.rs) is the wrapper's seam for the u7s service.
    run_checked(Command::new(systemctl).args(args).arg("u7s.service"), what)
}

fn run_checked(command: &mut Command, what: Message) -> Result<(), RuntimeError> {
    let status = match command.status() {
        Ok(status) => status,
        Err(e) => {
            return Err(RuntimeError::Failed {
                what,
                detail: Message::of(&e),
            });
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(RuntimeError::Failed {
            what,
            detail: msg!("exit status {status}"),
        })
    }
}
