//! Starting, stopping and entering the u7s runtime: the API the kubeadm wrapper (and
//! `u7s-start-stop`, the ExecStart of u7s.service) uses.
//!
//! (Private to the crate, so the example is text, not a doctest.)
//!
//! ```text
//! let config = NodeConfig::load_default()?;           // written by podsec-u7s-kubeadm
//! let runtime = Runtime::new(&config)?;               // systemd if it is PID 1, else direct
//! runtime.start(Units::NamespaceOnly)?;               // rootlesskit.service (CRI-O inside)
//! let status = runtime.command(&["/usr/bin/kubeadm".into(), "version".into()])?.status();
//! runtime.stop()?;
//! ```
//!
//! With systemd: `loginctl enable-linger u7s-admin` (the user manager then outlives every login
//! session, upstream defect 25), then `systemctl --user -M u7s-admin@ start` of the user units;
//! stopping disables the lingering again, so the manager goes too.
//! Without systemd the same ExecStart lines of the same unit files are started directly, as
//! u7s-admin, in their own sessions, with the units' LimitNOFILE and WorkingDirectory; logs go
//! to /var/log/podsec/u7s-<unit>.log (root) or ~/.local/share/usernetes/log (u7s-admin), PIDs to
//! /run/podsec/u7s (root) or /run/user/<uid>/usernetes/direct. Restart= is systemd's alone.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use podsec_common::host::services::{self, ServiceError};
use podsec_common::host::users::{Account, AccountError};
use podsec_common::i18n::Message;
use podsec_common::msg;

use super::nsenter;
use super::paths::{self, U7sPaths};
use super::rootlesskit::{self, READY_TIMEOUT};
use super::units::{self, UserUnit};
use crate::node_config::NodeConfig;

/// How long the kubelet launcher may wait for CRI-O's socket.
pub const CRIO_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    Systemd,
    Direct,
}

impl Launch {
    pub fn detect() -> Launch {
        if services::systemd_running() {
            Launch::Systemd
        } else {
            Launch::Direct
        }
    }
}

/// What to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    /// rootlesskit.service only (before kubeadm has configured the kubelet).
    NamespaceOnly,
    /// rootlesskit.service and kubelet.service.
    All,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum RuntimeError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("only root or uid {expected} may control the u7s runtime, not uid {actual}")]
    Caller { expected: u32, actual: u32 },
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    File(#[from] podsec_common::host::files::FileError),
    /// `reason` ends with the unit's log, if any.
    #[error("{unit} did not get ready within {timeout:?}: {reason}")]
    NotReady {
        unit: &'static str,
        timeout: Duration,
        reason: Message,
    },
    #[error("the u7s namespace is not running: {0}")]
    NotRunning(Message),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {unit}: {source}")]
    Spawn {
        unit: &'static str,
        source: std::io::Error,
    },
    #[error("{unit}: ExecStartPre {command} failed with {status}")]
    Pre {
        unit: &'static str,
        command: String,
        status: std::process::ExitStatus,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
    move |source| RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The runtime of one node.
#[derive(Debug, Clone)]
pub struct Runtime {
    config: NodeConfig,
    account: Account,
    paths: U7sPaths,
    launch: Launch,
}

impl Runtime {
    /// For the node of `config`, launched as this machine runs services.
    pub fn new(config: &NodeConfig) -> Result<Runtime, RuntimeError> {
        let account = paths::account_of(config.uid)?;
        let caller = nix::unistd::geteuid().as_raw();
        if caller != 0 && caller != config.uid {
            return Err(RuntimeError::Caller {
                expected: config.uid,
                actual: caller,
            });
        }
        Ok(Runtime {
            paths: U7sPaths::new(account.uid, &account.home),
            config: config.clone(),
            account,
            launch: Launch::detect(),
        })
    }

    pub fn launch(&self) -> Launch {
        self.launch
    }

    fn as_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Starts the units and waits (bounded) until the namespace is ready with every port
    /// published; returns the RootlessKit child's pid.
    pub fn start(&self, units: Units) -> Result<i32, RuntimeError> {
        let selected: &[UserUnit] = match units {
            Units::NamespaceOnly => &[UserUnit::Rootlesskit],
            Units::All => &UserUnit::ALL,
        };
        match self.launch {
            Launch::Systemd => {
                if Self::as_root() {
                    services::run("loginctl", &["enable-linger", &self.account.name])?;
                    self.wait_runtime_dir()?;
                }
                let mut args = self.systemctl_user_args();
                args.push("start".into());
                args.extend(selected.iter().map(|u| u.name().to_string()));
                self.systemctl(&args)?;
                self.wait_ready(None)
            }
            Launch::Direct => {
                self.ensure_runtime_dir()?;
                let mut child = None;
                for unit in selected {
                    if self.direct_pid(*unit).is_some() {
                        continue;
                    }
                    self.spawn_direct(*unit)?;
                    if *unit == UserUnit::Rootlesskit {
                        child = Some(self.wait_ready(Some(*unit))?);
                    }
                }
                match child {
                    Some(pid) => Ok(pid),
                    None => self.wait_ready(Some(UserUnit::Rootlesskit)),
                }
            }
        }
    }

    /// Stops the kubelet, then the namespace (everything in it ends with its pid namespace).
    pub fn stop(&self) -> Result<(), RuntimeError> {
        match self.launch {
            Launch::Systemd => {
                let mut args = self.systemctl_user_args();
                args.push("stop".into());
                args.extend(UserUnit::ALL.iter().rev().map(|u| u.name().to_string()));
                self.systemctl(&args)?;
                if Self::as_root() {
                    // start() made the user manager outlive every session; a stopped node
                    // leaves no process of u7s-admin (the manager, its dbus) behind.
                    services::run("loginctl", &["disable-linger", &self.account.name])?;
                    self.wait_manager_gone();
                }
                Ok(())
            }
            Launch::Direct => {
                for unit in UserUnit::ALL.iter().rev() {
                    self.stop_direct(*unit)?;
                }
                Ok(())
            }
        }
    }

    /// Restarts the kubelet, so that it runs the installed binary and configuration (a
    /// Kubernetes upgrade); with `whole`, the namespace and CRI-O first (a new pause image).
    pub fn restart(&self, whole: bool) -> Result<(), RuntimeError> {
        match self.launch {
            Launch::Systemd => {
                let mut args = self.systemctl_user_args();
                args.push("restart".into());
                if whole {
                    args.push(UserUnit::Rootlesskit.name().into());
                }
                args.push(UserUnit::Kubelet.name().into());
                self.systemctl(&args)?;
                self.wait_ready(None).map(|_| ())
            }
            Launch::Direct => {
                if whole {
                    self.stop()?;
                } else {
                    self.stop_direct(UserUnit::Kubelet)?;
                }
                self.start(Units::All).map(|_| ())
            }
        }
    }

    /// The namespace's child pid if it is ready now (handshake and ports).
    pub fn ready(&self) -> Result<i32, Message> {
        rootlesskit::readiness(&self.paths, &self.config.published_ports())
    }

    /// `argv` inside the namespace as u7s-admin (root there): for kubeadm's subcommands, crictl,
    /// `rootlessctl add-ports`. Waits for the namespace like nsenter_u7s does.
    pub fn command(&self, argv: &[OsString]) -> Result<Command, RuntimeError> {
        let pid = nsenter::wait_ready(&self.paths, nsenter::ATTEMPTS, nsenter::INTERVAL)
            .map_err(|e| RuntimeError::NotRunning(Message::of(&e)))?;
        let args = nsenter::nsenter_args(pid, Some(&self.account.home), argv);
        let mut command = paths::command_as(&self.account, nsenter::NSENTER, &args);
        command
            .env(nsenter::INSIDE_VARIABLE, "1")
            .env("ROOTLESSKIT_STATE_DIR", self.paths.state_dir());
        Ok(command)
    }

    /// The system's systemctl (never the u7s wrapper that may come first in PATH).
    fn systemctl(&self, args: &[String]) -> Result<(), RuntimeError> {
        let program =
            super::systemctl::real_systemctl().unwrap_or_else(|| PathBuf::from("systemctl"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        services::run(&program.to_string_lossy(), &args)?;
        Ok(())
    }

    fn systemctl_user_args(&self) -> Vec<String> {
        if Self::as_root() {
            vec![
                "--user".into(),
                "-M".into(),
                format!("{}@", self.account.name),
            ]
        } else {
            vec!["--user".into()]
        }
    }

    fn wait_runtime_dir(&self) -> Result<(), RuntimeError> {
        let dir = self.paths.runtime_dir();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !dir.is_dir() {
            if Instant::now() > deadline {
                return Err(RuntimeError::NotRunning(msg!(
                    "{} did not appear: the user manager of {} is not running",
                    dir.display(),
                    self.account.name
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Waits (bounded) until logind has stopped the user manager and removed its runtime
    /// directory. A login session of u7s-admin keeps both: that is not an error.
    fn wait_manager_gone(&self) {
        let dir = self.paths.runtime_dir();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while dir.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What logind would create; only in direct mode.
    fn ensure_runtime_dir(&self) -> Result<(), RuntimeError> {
        let dir = self.paths.runtime_dir();
        if dir.is_dir() || !Self::as_root() {
            return Ok(());
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io(&dir))?;
        std::os::unix::fs::chown(&dir, Some(self.account.uid), Some(self.account.gid))
            .map_err(io(&dir))
    }

    fn wait_ready(&self, unit: Option<UserUnit>) -> Result<i32, RuntimeError> {
        let timeout = READY_TIMEOUT + Duration::from_secs(10);
        let deadline = Instant::now() + timeout;
        loop {
            let reason = match self.ready() {
                Ok(pid) => return Ok(pid),
                Err(reason) => reason,
            };
            let launcher_gone = unit.is_some_and(|u| self.direct_pid(u).is_none());
            if launcher_gone || Instant::now() > deadline {
                let reason = if launcher_gone {
                    msg!("the launcher exited ({reason})")
                } else {
                    reason
                };
                let log = unit.map(|u| self.log_tail(u)).filter(|t| !t.is_empty());
                return Err(RuntimeError::NotReady {
                    unit: UserUnit::Rootlesskit.name(),
                    timeout,
                    reason: match log {
                        Some(log) => msg!("{reason}; its log ends: {log}"),
                        None => reason,
                    },
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Where directly started units keep PIDs and logs: root's own directories for root, the
    /// account's for the account (root never writes into u7s-admin's directories).
    fn direct_dirs(&self) -> (PathBuf, PathBuf) {
        if Self::as_root() {
            (
                PathBuf::from(services::PID_DIR).join("u7s"),
                PathBuf::from(services::LOG_DIR),
            )
        } else {
            (self.paths.direct_dir(), self.paths.logs())
        }
    }

    fn pid_file(&self, unit: UserUnit) -> PathBuf {
        self.direct_dirs()
            .0
            .join(format!("{}.pid", unit_stem(unit)))
    }

    /// The log file of a directly started unit.
    pub fn log_file(&self, unit: UserUnit) -> PathBuf {
        self.direct_dirs()
            .1
            .join(format!("u7s-{}.log", unit_stem(unit)))
    }

    fn log_tail(&self, unit: UserUnit) -> String {
        let text = std::fs::read_to_string(self.log_file(unit)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    }

    fn direct_pid(&self, unit: UserUnit) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.pid_file(unit))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        nsenter::alive(pid).then_some(pid)
    }

    fn spawn_direct(&self, unit: UserUnit) -> Result<(), RuntimeError> {
        let service = unit.service();
        let (pid_dir, log_dir) = self.direct_dirs();
        for dir in [&pid_dir, &log_dir] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(io(dir))?;
        }
        let workdir = service.working_directory_for(&self.account.home);
        for pre in &service.exec_start_pre {
            let argv = units::argv(pre);
            let status = paths::command_as(&self.account, &argv[0], &argv[1..])
                .current_dir(&workdir)
                .stdin(Stdio::null())
                .status()
                .map_err(|source| RuntimeError::Spawn {
                    unit: unit.name(),
                    source,
                })?;
            if !status.success() {
                return Err(RuntimeError::Pre {
                    unit: unit.name(),
                    command: pre.join(" "),
                    status,
                });
            }
        }
        let log_path = self.log_file(unit);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let err_log = log.try_clone().map_err(io(&log_path))?;
        let argv = units::argv(&service.exec_start);
        let mut command =
            paths::command_as_limited(&self.account, &argv[0], &argv[1..], service.limit_nofile);
        command
            .current_dir(&workdir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log);
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid()?;
                Ok(())
            });
        }
        let child = command.spawn().map_err(|source| RuntimeError::Spawn {
            unit: unit.name(),
            source,
        })?;
        let pid_file = self.pid_file(unit);
        podsec_common::host::files::write_atomic(
            &pid_file,
            format!("{}\n", child.id()).as_bytes(),
            0o644,
            Default::default(),
        )?;
        Ok(())
    }

    fn stop_direct(&self, unit: UserUnit) -> Result<(), RuntimeError> {
        let pid_file = self.pid_file(unit);
        if let Some(pid) = self.direct_pid(unit) {
            // Like KillMode=mixed: SIGTERM to the main process (the rootlesskit launcher passes
            // it on in order); the kubelet's session (nsenter and the kubelet) as a group.
            let target = match unit {
                UserUnit::Rootlesskit => Pid::from_raw(pid),
                UserUnit::Kubelet => Pid::from_raw(-pid),
            };
            let _ = kill(target, Signal::SIGTERM);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while nsenter::alive(pid) {
                if Instant::now() > deadline {
                    let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        match std::fs::remove_file(&pid_file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&pid_file)(e)),
        }
    }
}

fn unit_stem(unit: UserUnit) -> &'static str {
    unit.name().trim_end_matches(".service")
}
