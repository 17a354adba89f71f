//! Services: through systemd where it runs, else started directly (containers, CI, the test
//! sandbox) with their PIDs recorded under /run/podsec, so a second run finds and reloads them.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{self, Process};

/// How long a master process may take to replace its workers after a reload.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error, crate::i18n::Localize)]
pub enum ServiceError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{command} failed: {detail}")]
    Failed { command: String, detail: String },
    #[error(
        "{unit}: its main process (pid {pid}) started no workers with the new configuration within {seconds} s; its error log says why"
    )]
    NotReloaded {
        unit: String,
        pid: i32,
        seconds: u64,
    },
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
        super::failpoint::step("ran", Path::new(&format!("{program} {}", args.join(" "))));
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

/// When a reload has taken effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadDone {
    /// When the reload command returns (a restart, or a daemon that rereads synchronously).
    OnReturn,
    /// When the main process runs workers started after the reload and the old ones are gone
    /// (nginx: `nginx -s reload` only sends a signal, so the next request may still meet an
    /// old worker with the old configuration).
    WorkersReplaced,
}

/// A system unit enabled and running with its current configuration: started when it is not
/// active, reloaded (or restarted, for a unit without reload) only when `changed`, never
/// started twice; it returns once the reload is `done`. The caller runs
/// `systemctl daemon-reload` first when unit files changed.
pub fn systemd_ensure(
    unit: &str,
    changed: bool,
    done: ReloadDone,
) -> Result<UnitAction, ServiceError> {
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
        let master = systemd_main_pid(unit).filter(|_| done == ReloadDone::WorkersReplaced);
        let workers = master.map(process::children).unwrap_or_default();
        run("systemctl", &["reload-or-restart", unit])?;
        // A new main process was restarted, not reloaded: systemd waited for it.
        if let Some(master) = master.filter(|pid| systemd_main_pid(unit) == Some(*pid)) {
            await_new_workers(unit, master, &workers, RELOAD_TIMEOUT)?;
        }
        Ok(UnitAction::Reloaded)
    } else {
        Ok(UnitAction::Unchanged)
    }
}

/// The main process of an active unit.
fn systemd_main_pid(unit: &str) -> Option<i32> {
    run(
        "systemctl",
        &["show", "--property=MainPID", "--value", unit],
    )
    .ok()?
    .trim()
    .parse()
    .ok()
    .filter(|pid| *pid > 0)
}

/// Reloads a master process that forks workers (`reload` signals it) and returns once it
/// serves with workers started after the signal: an error when none come, and up to the same
/// bound for the old workers to finish (idle connections end at once, a long upload may not;
/// the old workers stopped accepting when told to quit).
pub fn reload_workers(
    name: &str,
    master: i32,
    reload: impl FnOnce() -> Result<(), ServiceError>,
) -> Result<(), ServiceError> {
    let workers = process::children(master);
    reload()?;
    await_new_workers(name, master, &workers, RELOAD_TIMEOUT)
}

fn await_new_workers(
    name: &str,
    master: i32,
    old: &[i32],
    timeout: Duration,
) -> Result<(), ServiceError> {
    let deadline = Instant::now() + timeout;
    let mut renewed = false;
    while Instant::now() < deadline {
        let now = process::children(master);
        renewed |= now.iter().any(|pid| !old.contains(pid));
        if renewed && !now.iter().any(|pid| old.contains(pid)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if renewed {
        Ok(())
    } else {
        Err(ServiceError::NotReloaded {
            unit: name.into(),
            pid: master,
            seconds: timeout.as_secs(),
        })
    }
}

fn pid_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.pid"))
}

/// Beside the PID file (which stays a plain PID for `kill $(cat ...)`): the process's start
/// time, without which a PID is not taken to be ours.
fn start_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.start"))
}

/// The directly started daemon `name`, if the process its PID file names is still the one we
/// started (same PID and start time).
fn running_in(dir: &Path, name: &str) -> Option<Process> {
    let read =
        |path: PathBuf| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    let pid = i32::try_from(read(pid_file(dir, name))?).ok()?;
    let started = read(start_file(dir, name))?;
    Process::open_identified(pid, started).ok().flatten()
}

/// The PID of a directly started daemon, if it still runs (a stale PID file naming another
/// process, or one without its start time, does not count).
pub fn running_pid(name: &str) -> Option<i32> {
    running_in(Path::new(PID_DIR), name).map(|p| p.pid())
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
    super::failpoint::step("spawned", Path::new(name));
    record(Path::new(PID_DIR), name, pid)?;
    super::failpoint::step("started", Path::new(name));
    Ok(pid)
}

/// Writes the PID file and the start time of `pid` (the child is not reaped yet, so its
/// /proc entry is there).
fn record(dir: &Path, name: &str, pid: i32) -> Result<(), ServiceError> {
    let started = super::process::start_time(pid).map_err(|source| ServiceError::Io {
        path: PathBuf::from(format!("/proc/{pid}/stat")),
        source,
    })?;
    for (path, text) in [
        (start_file(dir, name), format!("{started}\n")),
        (pid_file(dir, name), format!("{pid}\n")),
    ] {
        super::files::write_atomic(&path, text.as_bytes(), 0o644, Default::default()).map_err(
            |e| ServiceError::Io {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            },
        )?;
    }
    Ok(())
}

/// Stops a directly started daemon (SIGTERM) and forgets its PID. Only the process we started
/// is signalled, through a pidfd: a stale PID file never hits another process.
pub fn stop_direct(name: &str) {
    stop_in(Path::new(PID_DIR), name)
}

fn stop_in(dir: &Path, name: &str) {
    if let Some(process) = running_in(dir, name)
        && process.signal(nix::sys::signal::Signal::SIGTERM).is_ok()
    {
        process.wait_exit(std::time::Duration::from_secs(2));
    }
    let _ = std::fs::remove_file(pid_file(dir, name));
    let _ = std::fs::remove_file(start_file(dir, name));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A master that forks one worker and, on SIGHUP, a new one before stopping the old
    /// (nginx's order) — or that ignores SIGHUP.
    fn master(replaces_on_hup: bool) -> std::process::Child {
        let script = if replaces_on_hup {
            "trap 'old=$w; sleep 60 & w=$!; kill $old' HUP; sleep 60 & w=$!; while :; do wait; done"
        } else {
            "trap '' HUP; sleep 60 & while :; do wait; done"
        };
        let child = Command::new("sh").args(["-c", script]).spawn().unwrap();
        let pid = child.id() as i32;
        while process::children(pid).is_empty() {
            std::thread::sleep(Duration::from_millis(10));
        }
        child
    }

    fn stop(mut master: std::process::Child) {
        for worker in process::children(master.id() as i32) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(worker),
                nix::sys::signal::SIGKILL,
            );
        }
        master.kill().unwrap();
        let _ = master.wait();
    }

    fn hangup(pid: i32) -> Result<(), ServiceError> {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGHUP).unwrap();
        Ok(())
    }

    #[test]
    fn a_reload_is_done_when_new_workers_replaced_the_old() {
        let child = master(true);
        let pid = child.id() as i32;
        let before = process::children(pid);
        reload_workers("master", pid, || hangup(pid)).unwrap();
        let after = process::children(pid);
        assert_eq!(after.len(), 1, "{after:?}");
        assert!(!before.contains(&after[0]), "{before:?} {after:?}");
        stop(child);
    }

    #[test]
    fn a_master_that_keeps_its_old_workers_was_not_reloaded() {
        let child = master(false);
        let pid = child.id() as i32;
        let workers = process::children(pid);
        hangup(pid).unwrap();
        let err =
            await_new_workers("master", pid, &workers, Duration::from_millis(300)).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "master: its main process (pid {pid}) started no workers"
            )),
            "{err}"
        );
        stop(child);
    }

    #[test]
    fn a_stale_pid_file_never_signals_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut other = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = other.id() as i32;
        // A PID file of ours now naming someone else's process: its start time differs.
        let started = super::super::process::start_time(pid).unwrap();
        std::fs::write(pid_file(dir.path(), "nginx"), format!("{pid}\n")).unwrap();
        std::fs::write(
            start_file(dir.path(), "nginx"),
            format!("{}\n", started + 1),
        )
        .unwrap();
        assert!(running_in(dir.path(), "nginx").is_none());
        stop_in(dir.path(), "nginx");
        assert!(
            other.try_wait().unwrap().is_none(),
            "another process was killed"
        );
        assert!(
            !pid_file(dir.path(), "nginx").exists(),
            "the stale file stays"
        );
        // Without a start time (an older PID file): not ours either.
        std::fs::write(pid_file(dir.path(), "nginx"), format!("{pid}\n")).unwrap();
        assert!(running_in(dir.path(), "nginx").is_none());
        stop_in(dir.path(), "nginx");
        assert!(
            other.try_wait().unwrap().is_none(),
            "another process was killed"
        );

        // The process we recorded is found and stopped.
        record(dir.path(), "registry", pid).unwrap();
        assert_eq!(
            running_in(dir.path(), "registry").map(|p| p.pid()),
            Some(pid)
        );
        stop_in(dir.path(), "registry");
        assert!(other.wait().is_ok());
        assert!(!start_file(dir.path(), "registry").exists());
    }
}
