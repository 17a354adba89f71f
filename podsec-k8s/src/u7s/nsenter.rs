//! Entering the namespaces of the running RootlessKit child: the ready handshake and the
//! `nsenter` command line (spec 4.2).
//!
//! RootlessKit writes `child_pid` into its state directory; the child half of our launcher
//! writes `_child_pid.u7s-ready` with the same contents once its mounts, ports and addresses
//! are in place. Only when both exist, agree, and the process lives is the namespace entered.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::paths::U7sPaths;

/// Set in the environment of what runs inside, so a nested `nsenter_u7s` just runs its command.
pub const INSIDE_VARIABLE: &str = "_U7S_NSENTER_CHILD";
/// util-linux nsenter.
pub const NSENTER: &str = "/usr/bin/nsenter";
/// Upstream's bound: 10 tries, a second apart.
pub const ATTEMPTS: u32 = 10;
pub const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize, PartialEq, Eq)]
pub enum NotReady {
    #[error("RootlessKit is not running ({0} is missing)")]
    NoChildPid(String),
    #[error("the RootlessKit namespace is not set up yet ({0} is missing)")]
    NoReadyFile(String),
    #[error("{ready} ({ready_pid}) does not match {child} ({child_pid}): a stale namespace")]
    Mismatch {
        ready: String,
        ready_pid: String,
        child: String,
        child_pid: String,
    },
    #[error("the RootlessKit child {0} is not running")]
    Dead(i32),
}

/// The child's pid if the namespace is ready now.
pub fn ready_pid(paths: &U7sPaths) -> Result<i32, NotReady> {
    let read = |path: &Path| std::fs::read_to_string(path).map(|t| t.trim().to_string());
    let child_file = paths.child_pid_file();
    let ready_file = paths.ready_file();
    let child =
        read(&child_file).map_err(|_| NotReady::NoChildPid(child_file.display().to_string()))?;
    let ready =
        read(&ready_file).map_err(|_| NotReady::NoReadyFile(ready_file.display().to_string()))?;
    if child != ready || child.is_empty() {
        return Err(NotReady::Mismatch {
            ready: ready_file.display().to_string(),
            ready_pid: ready,
            child: child_file.display().to_string(),
            child_pid: child,
        });
    }
    let pid: i32 = child.parse().map_err(|_| NotReady::Mismatch {
        ready: ready_file.display().to_string(),
        ready_pid: ready.clone(),
        child: child_file.display().to_string(),
        child_pid: child.clone(),
    })?;
    if !alive(pid) {
        return Err(NotReady::Dead(pid));
    }
    Ok(pid)
}

/// Waits for [`ready_pid`], `attempts` times `interval` apart; the last reason on failure.
pub fn wait_ready(paths: &U7sPaths, attempts: u32, interval: Duration) -> Result<i32, NotReady> {
    let mut last = None;
    for attempt in 0..attempts.max(1) {
        match ready_pid(paths) {
            Ok(pid) => return Ok(pid),
            Err(e) => last = Some(e),
        }
        if attempt + 1 < attempts {
            std::thread::sleep(interval);
        }
    }
    Err(last.expect("at least one attempt"))
}

/// Alive and not a zombie.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// The arguments of `nsenter` that enter every namespace of `pid` (user, mount, net, pid, ipc,
/// uts, cgroup) keeping the caller's credentials (u7s-admin, root inside) and runs `argv`.
pub fn nsenter_args(pid: i32, workdir: Option<&Path>, argv: &[OsString]) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--user",
        "--preserve-credentials",
        "--mount",
        "--net",
        "--cgroup",
        "--pid",
        "--ipc",
        "--uts",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push("-t".into());
    args.push(pid.to_string().into());
    if let Some(dir) = workdir {
        let mut wd = OsString::from("--wd=");
        wd.push(dir);
        args.push(wd);
    }
    args.push("--".into());
    args.extend(argv.iter().cloned());
    args
}

/// `nsenter ... -- argv` for the namespace of `paths`, with the inside marker and the state
/// directory in its environment.
pub fn command(paths: &U7sPaths, pid: i32, workdir: Option<&Path>, argv: &[OsString]) -> Command {
    // Outside the host seam: entering the u7s namespace is this module's work.
    let mut command = Command::new(NSENTER);
    command
        .args(nsenter_args(pid, workdir, argv))
        .env(INSIDE_VARIABLE, "1")
        .env("ROOTLESSKIT_STATE_DIR", paths.state_dir());
    command
}

/// Whether this process runs inside the u7s namespace (entered through us, or a descendant of
/// the RootlessKit child).
pub fn inside() -> bool {
    std::env::var_os(INSIDE_VARIABLE).is_some_and(|v| v == "1") || in_user_namespace()
}

/// Not in the initial user namespace: the uid map is not the identity of the full range.
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|map| {
        let fields: Vec<&str> = map.split_whitespace().collect();
        fields != ["0", "0", "4294967295"]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsenter_enters_all_seven_namespaces_keeping_credentials() {
        let args = nsenter_args(
            42,
            Some(Path::new("/var/lib/u7s-admin")),
            &["id".into(), "-u".into()],
        );
        let text: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            text,
            [
                "--user",
                "--preserve-credentials",
                "--mount",
                "--net",
                "--cgroup",
                "--pid",
                "--ipc",
                "--uts",
                "-t",
                "42",
                "--wd=/var/lib/u7s-admin",
                "--",
                "id",
                "-u"
            ]
        );
    }

    #[test]
    fn the_handshake_needs_both_files_agreeing_on_a_live_process() {
        let home = tempfile::tempdir().unwrap();
        let paths = U7sPaths::new(4242, home.path()).with_runtime_dir(home.path().join("run"));
        std::fs::create_dir_all(paths.state_dir()).unwrap();
        assert!(matches!(ready_pid(&paths), Err(NotReady::NoChildPid(_))));
        let me = std::process::id().to_string();
        std::fs::write(paths.child_pid_file(), &me).unwrap();
        assert!(matches!(ready_pid(&paths), Err(NotReady::NoReadyFile(_))));
        std::fs::write(paths.ready_file(), "1").unwrap();
        assert!(matches!(ready_pid(&paths), Err(NotReady::Mismatch { .. })));
        std::fs::write(paths.ready_file(), format!("{me}\n")).unwrap();
        assert_eq!(ready_pid(&paths), Ok(std::process::id() as i32));
        // A pid that does not exist (above pid_max).
        std::fs::write(paths.child_pid_file(), "99999999").unwrap();
        std::fs::write(paths.ready_file(), "99999999").unwrap();
        assert_eq!(
            wait_ready(&paths, 2, Duration::from_millis(1)),
            Err(NotReady::Dead(99999999))
        );
    }
}
