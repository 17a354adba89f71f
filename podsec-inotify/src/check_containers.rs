//! podsec-inotify-check-containers: watch the file systems of containers.
//!
//! Upstream ran `inotifywait -r` over every image layer, fed each output line to `eval` (a file
//! name with a quote in a container ran as shell code as root), attributed events to layer IDs,
//! raised the global watch limit silently and was restarted blind every 100 s. This one watches
//! each container's own writable layer in-process (see [`watcher`]), names the container from
//! the storage metadata, treats names as bytes, keeps to a watch budget and says when it runs
//! out, and follows containers and stores as they appear without restarting.

mod event;
mod watcher;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use podsec_common::cli::{self, Failure, NotRoot};
use podsec_common::log::Logger;
use podsec_common::{msg, tr};

pub use event::escape;
pub use watcher::{Findings, Watcher, kernel_max_watches};

use crate::storage;

pub const NAME: &str = "podsec-inotify-check-containers";

/// How long the watcher waits after a small batch of events so that the next read takes many
/// (a log line is then at most this late).
const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Watch the writable layers of the containers of root, of every rootless user and of
/// u7s-admin with inotify, and log each change: in home directories and /etc as Warning,
/// elsewhere as Critical, naming the container.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Each change is logged as `<Level>: An event <EVENT> occurred in the container <name> \
(ID <id>, user <user>) <where> on the file <path>`. Stores: the graphroot of storage.conf \
(overlay and vfs drivers) for root and each account owning its home directory, and u7s-admin's \
usernetes store. SIGHUP reads every store again; SIGTERM and SIGINT stop.\n\
Environment: none read. Must be run as root."
)]
pub struct Args {
    /// Use at most this many inotify watches (default: half of fs.inotify.max_user_watches);
    /// reaching it is logged as Critical, naming the container whose directories are not watched
    #[arg(long, value_name = "count")]
    pub max_watches: Option<usize>,
    /// Tokens old unit files pass (`2>/dev/null`): ignored with a warning
    #[arg(hide = true, allow_hyphen_values = true)]
    pub stray: Vec<String>,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum ContainersError {
    #[error(transparent)]
    NotRoot(#[from] NotRoot),
    #[error("{what}: {source}")]
    System {
        what: &'static str,
        source: nix::Error,
    },
    #[error("--max-watches must be at least 1")]
    NoWatches,
}

impl Failure for ContainersError {}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(args: Args) -> Result<ExitCode, ContainersError> {
    cli::require_root()?;
    for token in &args.stray {
        eprintln!(
            "{NAME}: {}",
            tr!(
                "warning: ignoring argument '{token}' (systemd does not interpret shell redirections)",
                token = token
            )
        );
    }
    let kernel = kernel_max_watches();
    let max_watches = match args.max_watches {
        Some(0) => return Err(ContainersError::NoWatches),
        Some(n) => n,
        None => kernel.map(|k| (k / 2).max(1)).unwrap_or(8192),
    };
    let system = |what| move |source| ContainersError::System { what, source };

    // Signals arrive on a descriptor next to inotify's: a stop is handled between two events.
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(signal);
    }
    signals.thread_block().map_err(system("blocking signals"))?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(system("signalfd"))?;

    let logger = Logger::new(NAME);
    let mut watcher = Watcher::new(&logger, max_watches).map_err(system("inotify_init"))?;
    watcher.watch_accounts(Path::new("/etc"));
    load_stores(&mut watcher);
    let (containers, stores, watches) = (
        watcher.container_count(),
        watcher.store_count(),
        watcher.watch_count(),
    );
    watcher::note(&match kernel {
        Some(kernel) => msg!(
            "watching {containers} containers in {stores} stores with {watches} of at most {max_watches} watches (fs.inotify.max_user_watches is {kernel})"
        ),
        None => msg!(
            "watching {containers} containers in {stores} stores with {watches} of at most {max_watches} watches"
        ),
    });

    let pause_below = watcher::kernel_max_queued_events().unwrap_or(16384) / 4;
    loop {
        let mut fds = [
            PollFd::new(watcher.fd(), PollFlags::POLLIN),
            PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(system("poll")(e)),
        }
        let signalled = fds[1].any().unwrap_or(false);
        let handled = watcher
            .process_events()
            .map_err(system("reading inotify events"))?;
        // A container writing many files makes events one at a time: waking for each costs
        // both sides a context switch (most of the watcher's time, and the container's
        // slowdown). After a batch smaller than a quarter of the queue, wait a little so the
        // next read takes many; a batch that large reads on at once, so the queue cannot fill
        // while we wait.
        if handled > 0 && handled < pause_below && !signalled {
            std::thread::sleep(BATCH_PAUSE);
        }
        if watcher.take_accounts_changed() {
            load_stores(&mut watcher);
        }
        if signalled {
            while let Ok(Some(info)) = signal_fd.read_signal() {
                let signal = Signal::try_from(info.ssi_signo as i32).ok();
                if signal == Some(Signal::SIGHUP) {
                    watcher::note(&msg!("SIGHUP: reading every store again"));
                    load_stores(&mut watcher);
                    watcher.refresh_all();
                } else {
                    let signal = signal.map(|s| s.as_str()).unwrap_or(tr!("a signal"));
                    watcher::note(&msg!("stopping on {signal}"));
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    }
}

use std::os::fd::AsFd;

fn load_stores<F: Findings>(watcher: &mut Watcher<F>) {
    let (stores, errors) = storage::all_stores();
    for error in errors {
        watcher::note(&msg!("skipping a storage configuration: {error}"));
    }
    watcher.set_stores(stores);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Owner, Store};
    use podsec_common::log::Level;
    use std::time::{Duration, Instant};

    const LAYER: &str = "c0ffee";

    /// A root store in a temporary directory: overlay metadata and one container's diff.
    fn store(dir: &Path, containers: &str) -> Store {
        std::fs::create_dir_all(dir.join("overlay-containers")).unwrap();
        std::fs::create_dir_all(dir.join(format!("overlay/{LAYER}/diff/etc"))).unwrap();
        std::fs::create_dir_all(dir.join(format!("overlay/{LAYER}/diff/var/log"))).unwrap();
        std::fs::write(dir.join("overlay-containers/containers.json"), containers).unwrap();
        Store {
            owner: Owner {
                name: "root".into(),
                uid: 0,
                gid: 0,
                home: "/root".into(),
            },
            graphroot: dir.to_path_buf(),
            rootless: false,
        }
    }

    fn web() -> String {
        format!(r#"[{{"id":"aa11","names":["web"],"image":"b2","layer":"{LAYER}"}}]"#)
    }

    /// Processes events until `done` holds for the findings (or 5 s pass).
    fn pump(
        watcher: &mut Watcher<Vec<(Level, String)>>,
        done: impl Fn(&[(Level, String)]) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done(watcher.findings()) && Instant::now() < deadline {
            let mut fds = [PollFd::new(watcher.fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(100u16));
            watcher.process_events().unwrap();
        }
    }

    /// A store holding the container web, watched: (its directory, web's diff, the watcher).
    fn watching_web() -> (
        tempfile::TempDir,
        std::path::PathBuf,
        Watcher<Vec<(Level, String)>>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), &web());
        let diff = dir.path().join(format!("overlay/{LAYER}/diff"));
        let mut watcher = Watcher::new(Vec::new(), 1000).unwrap();
        watcher.set_stores(vec![store]);
        (dir, diff, watcher)
    }

    fn has(findings: &[(Level, String)], level: Level, text: &str) -> bool {
        findings.iter().any(|(l, t)| *l == level && t == text)
    }

    #[test]
    fn one_read_takes_every_queued_event_and_counts_them() {
        let (_dir, diff, mut watcher) = watching_web();
        // 300 files made before the watcher reads: one call takes them all (more than one
        // read's buffer), as the run loop's pause after a small batch relies on.
        for i in 0..300 {
            std::fs::write(diff.join(format!("etc/f{i}")), "x").unwrap();
        }
        let handled = watcher.process_events().unwrap();
        assert_eq!(handled, 600, "a CREATE and a MODIFY per file");
        assert_eq!(watcher.findings().len(), 600);
        assert_eq!(watcher.process_events().unwrap(), 0);
    }

    #[test]
    fn changes_are_attributed_classified_and_new_directories_followed() {
        let (_dir, diff, mut watcher) = watching_web();
        assert_eq!(watcher.container_count(), 1);
        // diff, diff/etc (diff/var excluded) + graphroot and overlay-containers
        assert_eq!(watcher.watch_count(), 4);

        std::fs::write(diff.join("etc/passwd"), "x").unwrap();
        std::fs::write(diff.join("var/log/noise"), "x").unwrap();
        // a directory and a file in it at once: the file is found when the directory is watched
        std::fs::create_dir_all(diff.join("usr/bin")).unwrap();
        std::fs::write(diff.join("usr/bin/a'$(touch pwned)'b"), "x").unwrap();
        let label = "in the container web (ID aa11, user root)";
        let expect = [
            (
                Level::Warning,
                format!(
                    "An event CREATE occurred {label} in configuration directory on the file /etc/passwd"
                ),
            ),
            (
                Level::Warning,
                format!(
                    "An event MODIFY occurred {label} in configuration directory on the file /etc/passwd"
                ),
            ),
            (
                Level::Critical,
                format!(
                    "An event CREATE,ISDIR occurred {label} in system directory on the file /usr"
                ),
            ),
            (
                Level::Critical,
                format!(
                    "An event CREATE occurred {label} in system directory on the file /usr/bin/a'$(touch pwned)'b"
                ),
            ),
        ];
        pump(&mut watcher, |f| expect.iter().all(|(l, t)| has(f, *l, t)));
        for (level, text) in &expect {
            assert!(
                has(watcher.findings(), *level, text),
                "{text}: {:?}",
                watcher.findings()
            );
        }
        assert!(
            !watcher
                .findings()
                .iter()
                .any(|(_, t)| t.contains("/var/log")),
            "excluded /var reported: {:?}",
            watcher.findings()
        );
        assert!(!Path::new("pwned").exists() && !diff.join("usr/bin/pwned").exists());

        // moved away and back, deleted
        std::fs::rename(diff.join("usr/bin"), diff.join("bin2")).unwrap();
        std::fs::write(diff.join("bin2/later"), "x").unwrap();
        std::fs::remove_file(diff.join("etc/passwd")).unwrap();
        let expect = [
            (
                Level::Critical,
                format!(
                    "An event MOVED_FROM,ISDIR occurred {label} in system directory on the file /usr/bin"
                ),
            ),
            (
                Level::Critical,
                format!(
                    "An event MOVED_TO,ISDIR occurred {label} in system directory on the file /bin2"
                ),
            ),
            (
                Level::Critical,
                format!(
                    "An event CREATE occurred {label} in system directory on the file /bin2/later"
                ),
            ),
            (
                Level::Warning,
                format!(
                    "An event DELETE occurred {label} in configuration directory on the file /etc/passwd"
                ),
            ),
        ];
        pump(&mut watcher, |f| expect.iter().all(|(l, t)| has(f, *l, t)));
        for (level, text) in &expect {
            assert!(
                has(watcher.findings(), *level, text),
                "{text}: {:?}",
                watcher.findings()
            );
        }
        assert!(
            !watcher
                .findings()
                .iter()
                .any(|(_, t)| t.contains("/usr/bin/later")),
            "a moved directory reported under its old path"
        );
    }

    #[test]
    fn after_a_queue_overflow_directories_made_meanwhile_are_watched() {
        let (_dir, diff, mut watcher) = watching_web();
        // Flood the queue past its limit without reading it, then make a directory: the event
        // that would have announced it is lost.
        let queued = watcher::kernel_max_queued_events().unwrap();
        for i in 0..=queued {
            std::fs::File::create(diff.join(format!("etc/f{i}"))).unwrap();
        }
        std::fs::create_dir_all(diff.join("opt/hidden")).unwrap();
        std::fs::write(diff.join("opt/hidden/before"), "x").unwrap();
        pump(&mut watcher, |f| {
            f.iter()
                .any(|(_, t)| t.starts_with("The inotify event queue overflowed"))
        });
        let label = "in the container web (ID aa11, user root)";
        for path in ["/opt", "/opt/hidden", "/opt/hidden/before"] {
            assert!(
                watcher
                    .findings()
                    .iter()
                    .any(|(_, t)| t.contains("CREATE")
                        && t.ends_with(&format!("on the file {path}"))),
                "{path} not reported after the overflow"
            );
        }
        // and what happens there later is seen
        std::fs::write(diff.join("opt/hidden/after"), "x").unwrap();
        let after = format!(
            "An event CREATE occurred {label} in system directory on the file /opt/hidden/after"
        );
        pump(&mut watcher, |f| has(f, Level::Critical, &after));
        assert!(
            has(watcher.findings(), Level::Critical, &after),
            "a directory made during the overflow is not watched"
        );
    }

    #[test]
    fn containers_follow_the_metadata_and_the_budget_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), "[]");
        let mut watcher = Watcher::new(Vec::new(), 5).unwrap();
        watcher.set_stores(vec![store]);
        assert_eq!(watcher.container_count(), 0);
        // podman replaces containers.json by rename
        let metadata = dir.path().join("overlay-containers");
        let deep = dir.path().join(format!("overlay/{LAYER}/diff/a/b/c/d"));
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(metadata.join(".tmp"), web()).unwrap();
        std::fs::rename(metadata.join(".tmp"), metadata.join("containers.json")).unwrap();
        pump(&mut watcher, |f| !f.is_empty());
        assert_eq!(watcher.container_count(), 1);
        assert_eq!(watcher.watch_count(), 5, "the budget is kept");
        let findings = watcher.findings();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].0, Level::Critical);
        assert!(
            findings[0].1.starts_with("Not all changes in the container web (ID aa11, user root) are seen: the watch limit (5 watches, --max-watches) is reached"),
            "{}",
            findings[0].1
        );
        // removed: its watches go
        std::fs::write(metadata.join(".tmp"), "[]").unwrap();
        std::fs::rename(metadata.join(".tmp"), metadata.join("containers.json")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while watcher.container_count() > 0 && Instant::now() < deadline {
            let mut fds = [PollFd::new(watcher.fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(100u16));
            watcher.process_events().unwrap();
        }
        assert_eq!(watcher.container_count(), 0);
        assert_eq!(watcher.watch_count(), 2);
    }

    #[test]
    fn a_store_that_appears_later_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let graphroot = dir.path().join("lib/containers/storage");
        let store = Store {
            owner: Owner {
                name: "root".into(),
                uid: 0,
                gid: 0,
                home: "/root".into(),
            },
            graphroot: graphroot.clone(),
            rootless: false,
        };
        let mut watcher = Watcher::new(Vec::new(), 100).unwrap();
        watcher.set_stores(vec![store.clone()]);
        assert_eq!(watcher.watch_count(), 1, "the nearest existing directory");
        std::fs::create_dir_all(graphroot.join("overlay-containers")).unwrap();
        std::fs::create_dir_all(graphroot.join(format!("overlay/{LAYER}/diff"))).unwrap();
        std::fs::write(graphroot.join("overlay-containers/containers.json"), web()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while watcher.container_count() == 0 && Instant::now() < deadline {
            let mut fds = [PollFd::new(watcher.fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(100u16));
            watcher.process_events().unwrap();
        }
        assert_eq!(watcher.container_count(), 1);
        // the same store again (another path to it) is not watched twice
        watcher.set_stores(vec![store]);
        assert_eq!(watcher.container_count(), 1);
    }

    #[test]
    fn stray_tokens_and_limits_parse() {
        let args = Args::try_parse_from([NAME, "2>/dev/null"]).unwrap();
        assert_eq!(args.stray, ["2>/dev/null"]);
        let args = Args::try_parse_from([NAME, "--max-watches", "10"]).unwrap();
        assert_eq!(args.max_watches, Some(10));
        assert!(Args::try_parse_from([NAME, "--max-watches", "x"]).is_err());
    }
}
