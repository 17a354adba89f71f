//! Fault injection: numbered steps where a command changes the host, so a test can kill the
//! command at each of them and check what is left on disk (tests/src/faults.rs).
//!
//! Compiled in only with the cargo feature `fault-injection` of podsec-common; without it
//! [`step`] is an empty inline function. The feature is switched on by podsec-tests' dependency
//! on podsec-common: cargo unifies the features of one package across everything it builds in
//! one invocation, so `cargo build --workspace` (what the tests run) builds the commands with
//! it, while `cargo build -p podsec` (`make release`, `make install`, the rpm) does not build
//! podsec-tests and leaves it out. tests/tests/fault_injection.rs checks both with `cargo tree`
//! and looks for the trace variable's name in the binaries the tests run.
//!
//! At run time nothing happens unless `PODSEC_FAILPOINT_TRACE=<file>` is set: each step then
//! appends its name as a line to that file (under an exclusive lock, so the commands a command
//! starts number their steps in the same series), and with `PODSEC_FAILPOINT_KILL_AT=<n>` the
//! step whose line is the n-th sends SIGKILL to its own process, as the OOM killer or a
//! `kill -9` would (a process it started and still waits for is orphaned, as then).

use std::path::Path;

/// A step: `what` was just done to `path` (or is about to be), and is complete on disk.
/// Traced as `<what>:<path>`.
#[cfg(feature = "fault-injection")]
pub fn step(what: &str, path: &Path) {
    imp::step(&format!("{what}:{}", path.display()))
}

/// Without the `fault-injection` feature a step is nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn step(_what: &str, _path: &Path) {}

#[cfg(feature = "fault-injection")]
mod imp {
    use std::io::{Read, Seek, SeekFrom, Write};

    use nix::fcntl::{Flock, FlockArg};

    pub fn step(name: &str) {
        let Some(trace) = std::env::var_os("PODSEC_FAILPOINT_TRACE") else {
            return;
        };
        let kill_at: Option<u64> = std::env::var("PODSEC_FAILPOINT_KILL_AT")
            .ok()
            .and_then(|n| n.parse().ok());
        let file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&trace)
            .unwrap_or_else(|e| panic!("failpoint trace {}: {e}", trace.to_string_lossy()));
        let mut file = Flock::lock(file, FlockArg::LockExclusive)
            .unwrap_or_else(|(_, e)| panic!("failpoint trace lock: {e}"));
        let mut text = String::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut text))
            .expect("failpoint trace read");
        let number = text.lines().count() as u64 + 1;
        let line = format!("{}\n", name.replace('\n', " "));
        file.write_all(line.as_bytes())
            .expect("failpoint trace write");
        if kill_at == Some(number) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
            // The signal is delivered before kill(2) returns to the process it targets.
            loop {
                std::thread::park();
            }
        }
    }
}
