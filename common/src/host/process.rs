//! Processes identified so that a signal reaches the one that was meant.
//!
//! A PID alone names whatever process holds it now: once the daemon we started has died, its
//! PID file under /run/podsec (or a user's `pause.pid`) may name an unrelated process. A process
//! is identified here by its PID and its start time (field 22 of `/proc/<pid>/stat`, clock ticks
//! since boot; the pair is unique for the uptime) and signalled through a pidfd opened *before*
//! the check, so the PID cannot change hands between the check and the signal.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

/// A process held by a pidfd.
#[derive(Debug)]
pub struct Process {
    pid: i32,
    fd: OwnedFd,
}

/// The start time of `pid` (clock ticks after boot), from `/proc/<pid>/stat`.
pub fn start_time(pid: i32) -> std::io::Result<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat"))?;
    parse_start_time(&stat).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: no start time"),
        )
    })
}

/// Field 22 of a stat line; the command name (field 2) may hold spaces and parentheses, so
/// the fields are counted after its last `)`.
fn parse_start_time(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|b| *b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // the remainder starts at field 3 (state)
    rest.split_ascii_whitespace().nth(22 - 3)?.parse().ok()
}

/// The parent of a process from its stat line (field 4, counted like the start time).
fn parse_parent(stat: &[u8]) -> Option<i32> {
    let close = stat.iter().rposition(|b| *b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    rest.split_ascii_whitespace().nth(4 - 3)?.parse().ok()
}

/// The processes whose parent is `pid` (a master's workers), from every `/proc/<n>/stat`:
/// `/proc/<pid>/task/*/children` needs a kernel option that not every kernel has.
pub fn children(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: Vec<i32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|child| {
            std::fs::read(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| parse_parent(&stat))
                == Some(pid)
        })
        .collect();
    children.sort_unstable();
    children
}

impl Process {
    /// A pidfd for `pid`; `None` when there is no such process.
    pub fn open(pid: i32) -> std::io::Result<Option<Process>> {
        let Some(raw) = rustix::process::Pid::from_raw(pid).filter(|_| pid > 1) else {
            return Ok(None);
        };
        match rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()) {
            Ok(fd) => Ok(Some(Process { pid, fd })),
            Err(rustix::io::Errno::SRCH) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The process `pid` only if it is the one started at `started` (see [`start_time`]).
    pub fn open_identified(pid: i32, started: u64) -> std::io::Result<Option<Process>> {
        let Some(process) = Process::open(pid)? else {
            return Ok(None);
        };
        // Read after the pidfd exists: if the PID was reused in between, the times differ.
        match start_time(pid) {
            Ok(time) if time == started => Ok(Some(process)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The real uid of the process, read after the pidfd was opened: if the PID was reused in
    /// between, a signal through the pidfd reaches the old (dead) process, never the new one.
    pub fn uid(&self) -> std::io::Result<u32> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            .and_then(|uid| uid.parse().ok())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("/proc/{}/status: no Uid line", self.pid),
                )
            })
    }

    /// Sends `signal` to exactly this process (`ESRCH` once it has exited).
    pub fn signal(&self, signal: Signal) -> std::io::Result<()> {
        let signal = rustix::process::Signal::from_named_raw(signal as i32)
            .ok_or_else(|| std::io::Error::other("unknown signal"))?;
        rustix::process::pidfd_send_signal(&self.fd, signal).map_err(Into::into)
    }

    /// Waits up to `timeout` for the process to exit; true when it has.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(millis)) {
                Ok(n) if n > 0 => return true,
                Ok(_) if left.is_zero() => return false,
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_parentheses_in_the_name() {
        let line =
            b"123 (a) b (c)) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10\n";
        assert_eq!(parse_start_time(line), Some(987654));
        assert_eq!(parse_start_time(b"123 (x) S 1"), None);
        assert_eq!(parse_parent(line), Some(1));
        assert_eq!(parse_parent(b"123 (x)"), None);
    }

    #[test]
    fn children_are_the_processes_a_parent_started() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert!(children(std::process::id() as i32).contains(&pid));
        assert!(!children(1).contains(&pid));
        child.kill().unwrap();
        let _ = child.wait();
        assert!(!children(std::process::id() as i32).contains(&pid));
    }

    #[test]
    fn a_process_is_signalled_only_under_its_own_start_time() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let started = start_time(pid).unwrap();
        // Another start time: the PID is taken to be someone else's now.
        assert!(
            Process::open_identified(pid, started + 1)
                .unwrap()
                .is_none()
        );
        let process = Process::open_identified(pid, started).unwrap().unwrap();
        assert_eq!(process.uid().unwrap(), nix::unistd::getuid().as_raw());
        assert!(!process.wait_exit(Duration::from_millis(10)));
        process.signal(Signal::SIGTERM).unwrap();
        assert!(process.wait_exit(Duration::from_secs(5)));
        let _ = child.wait();
        assert!(Process::open_identified(pid, started).unwrap().is_none());
        assert!(
            Process::open(1).unwrap().is_none(),
            "init is never a target"
        );
    }
}
