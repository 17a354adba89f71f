//! Services: through systemd where it runs, else started directly (containers, CI, the test
//! sandbox) with their PIDs recorded under /run/podsec, so a second run finds and reloads them.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{command} failed: {detail}")]
    Failed { command: String, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where PIDs and logs of directly started daemons go.
pub const PID_DIR: &str = "/run/podsec";
pub const LOG_DIR: &str = "/var/log/podsec";

/// systemd is the init system (`/run/systemd/system` exists, sd_booted(3)).
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Runs a program to completion; a non-zero exit is an error carrying its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, ServiceError> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| ServiceError::Spawn {
            program: program.into(),
            source,
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(ServiceError::Failed {
            command: format!("{program} {}", args.join(" ")),
            detail: String::from_utf8_lossy(&output.stderr)
                .trim()
                .replace('\n', " "),
        })
    }
}

/// What [`systemd_ensure`] did to a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitAction {
    /// It was not running: `systemctl enable --now`.
    Started,
    /// It ran and its configuration changed: `systemctl reload-or-restart`.
    Reloaded,
    /// It ran and nothing changed: only `systemctl enable`.
    Unchanged,
}

/// A system unit enabled and running with its current configuration: started when it is not
/// active, reloaded (or restarted, for a unit without reload) only when `changed`, never
/// started twice. The caller runs `systemctl daemon-reload` first when unit files changed.
pub fn systemd_ensure(unit: &str, changed: bool) -> Result<UnitAction, ServiceError> {
    let active = Command::new("systemctl")
        .args(["is-active", "--quiet", unit])
        .status()
        .is_ok_and(|status| status.success());
    if !active {
        run("systemctl", &["enable", "--now", unit])?;
        return Ok(UnitAction::Started);
    }
    run("systemctl", &["enable", unit])?;
    if changed {
        run("systemctl", &["reload-or-restart", unit])?;
        Ok(UnitAction::Reloaded)
    } else {
        Ok(UnitAction::Unchanged)
    }
}

fn pid_file(name: &str) -> PathBuf {
    Path::new(PID_DIR).join(format!("{name}.pid"))
}

/// The PID of a directly started daemon, if it still runs.
pub fn running_pid(name: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(name))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    alive.then_some(pid)
}

/// Starts `program args` in the background (own session, output to /var/log/podsec/<name>.log)
/// and records its PID. Returns the PID.
pub fn start_direct(name: &str, program: &str, args: &[&str]) -> Result<i32, ServiceError> {
    for dir in [PID_DIR, LOG_DIR] {
        std::fs::create_dir_all(dir).map_err(|source| ServiceError::Io {
            path: dir.into(),
            source,
        })?;
    }
    let log_path = Path::new(LOG_DIR).join(format!("{name}.log"));
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|source| ServiceError::Io {
            path: log_path.clone(),
            source,
        })?;
    let err_log = log.try_clone().map_err(|source| ServiceError::Io {
        path: log_path,
        source,
    })?;
    let mut command = Command::new(program);
    command
        .args(args)
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
    let child = command.spawn().map_err(|source| ServiceError::Spawn {
        program: program.into(),
        source,
    })?;
    let pid = child.id() as i32;
    super::files::write_atomic(
        &pid_file(name),
        format!("{pid}\n").as_bytes(),
        0o644,
        Default::default(),
    )
    .map_err(|e| ServiceError::Io {
        path: pid_file(name),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(pid)
}

/// Stops a directly started daemon (SIGTERM) and forgets its PID.
pub fn stop_direct(name: &str) {
    if let Some(pid) = running_pid(name) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        for _ in 0..100 {
            if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_file(pid_file(name));
}
