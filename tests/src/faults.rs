//! Fault injection: a command killed with SIGKILL at each of its failpoints
//! (common/src/host/failpoint.rs) leaves every path it touches in its old form or its new one,
//! and a re-run completes to exactly the state of an uninterrupted run.
//!
//! For one [`Scenario`]: a fresh sandbox with the scenario's setup, snapshot of the watched paths
//! (OLD), an uninterrupted run with a trace (its K steps), snapshot (NEW); then for each chosen
//! step n a fresh sandbox, the same setup, a run killed at step n (it must die of SIGKILL), a
//! check of every path against OLD and NEW, a re-run that must succeed, and a snapshot that
//! must equal NEW.
//!
//! What a snapshot holds: per path below the watched roots its type, mode, owner and group and
//! the SHA-256 of a file's content or a link's target. Normalised so two runs compare: the
//! versioned files (`policy_2026-12-04_10:00:00`, `.1` when the second was taken) are named by
//! their order, `policy_<old>`... for those there before the run, `policy_<new>`... for those
//! it made, and links to them follow. Two kinds of entries may exist after a
//! kill without being in OLD or NEW, because no consumer reads them: temporary files of the
//! atomic writes (`.<name>.<random>.tmp`) and temporary links of a versioned switch
//! (`.<name>.link`); the re-run must remove them (the final state equals NEW). Files that take
//! one line per step (`/etc/group` gets two groups in two `groupadd`s) are compared as sets
//! of lines: after a kill each line is an old or a new one and no line both had is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sandbox::{Options, Sandbox, control};

/// A command to kill at every step.
pub struct Scenario<'a> {
    pub name: &'a str,
    pub options: Options,
    /// Runs in each fresh sandbox before the command (the OLD state is taken after it).
    pub setup: &'a dyn Fn(&Sandbox),
    /// argv of the command, run with the command link farm first in PATH.
    pub argv: &'a [&'a str],
    /// Run as this user of the sandbox; root when `None`.
    pub user: Option<&'a str>,
    /// Extra environment of the command (and its re-run).
    pub env: &'a [(&'a str, &'a str)],
    /// Absolute paths whose trees are snapshotted.
    pub watched: &'a [&'a str],
    /// Files compared as sets of lines.
    pub line_sets: &'a [&'a str],
    /// Paths below the watched roots whose content differs between two uninterrupted runs
    /// (fresh keys): only their type, mode and owner are compared.
    pub volatile: &'a [&'a str],
    /// Entries the re-run may add below these prefixes beyond NEW (a known difference the
    /// scenario names and docs/testing.md explains; every other path must equal NEW).
    pub rerun_may_add: &'a [&'a str],
    /// Record files for which empty is the same as absent (no records either way).
    pub empty_is_absent: &'a [&'a str],
    /// State outside the watched files (a cluster's objects): its text is one more entry of
    /// the snapshot, `probe:`, compared like a file.
    pub probe: Option<&'a dyn Fn(&Sandbox) -> String>,
    /// Exit codes a re-run may end with (`[0]` but for a command that, by its contract, fails
    /// when there is nothing left to do; the state must still equal NEW).
    pub rerun_codes: &'a [i32],
    /// At most this many steps are tried: all when K is not larger, else K spread evenly over
    /// the steps, always with the first and the last.
    pub max_kills: usize,
}

impl<'a> Scenario<'a> {
    /// `argv` as root in a default sandbox with nothing set up, nothing watched, up to 40 steps
    /// killed and a re-run that exits 0: a scenario names what differs (`..Scenario::new`).
    pub fn new(name: &'a str, argv: &'a [&'a str]) -> Scenario<'a> {
        Scenario {
            name,
            options: Options::default(),
            setup: &no_setup,
            argv,
            user: None,
            env: &[],
            watched: &[],
            line_sets: &[],
            volatile: &[],
            rerun_may_add: &[],
            empty_is_absent: &[],
            probe: None,
            rerun_codes: &[0],
            max_kills: 40,
        }
    }
}

fn no_setup(_: &Sandbox) {}

/// What a scenario found, for the report.
#[derive(Debug)]
pub struct Report {
    pub steps: Vec<String>,
    pub killed_at: Vec<usize>,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        content: Content,
    },
    Link {
        target: String,
    },
    Other {
        mode: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    Digest(String),
    Lines(BTreeSet<String>),
    Volatile,
}

type Snapshot = BTreeMap<String, Entry>;

impl Scenario<'_> {
    /// Runs the whole scenario; panics with every defect found.
    pub fn run(&self) -> Report {
        let started = Instant::now();
        let reference = self.fresh();
        let old_raw = self.raw(&reference);
        let before: BTreeSet<String> = old_raw.iter().map(|(p, _)| p.clone()).collect();
        let old = self.normalised(old_raw, &before, &reference);
        let trace = reference.share().join("failpoint-trace");
        let output = self.command(&reference, &trace, None);
        assert!(
            output.status.success(),
            "{}: the uninterrupted run failed: {}{}",
            self.name,
            text(&output.stdout),
            text(&output.stderr)
        );
        let steps: Vec<String> = std::fs::read_to_string(&trace)
            .unwrap_or_else(|e| panic!("{}: no failpoint trace ({e})", self.name))
            .lines()
            .map(str::to_string)
            .collect();
        assert!(
            !steps.is_empty(),
            "{}: the command passed no failpoint",
            self.name
        );
        let new = self.snapshot(&reference, &before);
        assert_ne!(old, new, "{}: the command changed nothing", self.name);
        drop(reference);

        let chosen = sample(steps.len(), self.max_kills);
        let mut defects = Vec::new();
        for &n in &chosen {
            let sandbox = self.fresh();
            // This sandbox's own names before the run (its setup's versions have their times).
            let before: BTreeSet<String> = self.raw(&sandbox).into_iter().map(|(p, _)| p).collect();
            let trace = sandbox.share().join("failpoint-trace");
            let killed = self.command(&sandbox, &trace, Some(n));
            let step = &steps[n - 1];
            if killed.status.code() != Some(128 + 9) {
                defects.push(format!(
                    "kill at step {n} ({step}): did not die of SIGKILL: {:?} {}{}",
                    killed.status,
                    text(&killed.stdout),
                    text(&killed.stderr)
                ));
                continue;
            }
            // It died at its n-th step (steps of parallel work, blob uploads, may come in
            // another order than in the reference run: the count is what must agree).
            let traced = std::fs::read_to_string(&trace).unwrap_or_default();
            if traced.lines().count() != n {
                defects.push(format!(
                    "kill at step {n} ({step}): it died after {} steps",
                    traced.lines().count()
                ));
            }
            let mid = self.snapshot(&sandbox, &before);
            for problem in mixed(&old, &new, &mid) {
                defects.push(format!("kill at step {n} ({step}): {problem}"));
            }
            let rerun = self.command(&sandbox, &sandbox.share().join("rerun-trace"), None);
            if !rerun
                .status
                .code()
                .is_some_and(|code| self.rerun_codes.contains(&code))
            {
                defects.push(format!(
                    "kill at step {n} ({step}): the re-run failed: {}{}",
                    text(&rerun.stdout),
                    text(&rerun.stderr)
                ));
                continue;
            }
            let mut after = self.snapshot(&sandbox, &before);
            after.retain(|path, _| {
                new.contains_key(path) || !self.rerun_may_add.iter().any(|p| path.starts_with(p))
            });
            for problem in differences(&new, &after) {
                defects.push(format!(
                    "kill at step {n} ({step}), after the re-run: {problem}"
                ));
            }
        }
        assert!(
            defects.is_empty(),
            "{}: {} defects in {} kills:\n{}",
            self.name,
            defects.len(),
            chosen.len(),
            defects.join("\n")
        );
        Report {
            steps,
            killed_at: chosen,
            elapsed: started.elapsed(),
        }
    }

    fn fresh(&self) -> Sandbox {
        let sandbox = Sandbox::start(&self.options).expect("sandbox");
        (self.setup)(&sandbox);
        sandbox
    }

    fn command(
        &self,
        sandbox: &Sandbox,
        trace: &Path,
        kill_at: Option<usize>,
    ) -> std::process::Output {
        // Made here, writable by all: a command run as a user appends to it too.
        std::fs::write(trace, "").expect("failpoint trace");
        std::fs::set_permissions(trace, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .expect("failpoint trace mode");
        let mut command = sandbox
            .command(self.argv[0])
            .args(&self.argv[1..])
            .env("PATH", &crate::fixtures::path_with_commands())
            .env("PODSEC_FAILPOINT_TRACE", &trace.to_string_lossy());
        if let Some(n) = kill_at {
            command = command.env("PODSEC_FAILPOINT_KILL_AT", &n.to_string());
        }
        for (key, value) in self.env {
            command = command.env(key, value);
        }
        if let Some(user) = self.user {
            command = command.user(user);
        }
        command.output()
    }

    /// The watched trees, versioned names the run made (absent from `before`) normalised.
    fn snapshot(&self, sandbox: &Sandbox, before: &BTreeSet<String>) -> Snapshot {
        let raw = self.raw(sandbox);
        self.normalised(raw, before, sandbox)
    }

    /// Versioned files (`policy_2026-12-04_10:00:00[.n]`) are named by their order: those that
    /// were there before the run (`before`) `policy_<old>`, `policy_<old>.1`, ..., those it made
    /// `policy_<new>`, ...; links to them follow. Two runs compare whatever second they and
    /// their setups ran in.
    /// The probe's text is added.
    fn normalised(
        &self,
        raw: Vec<(String, Entry)>,
        before: &BTreeSet<String>,
        sandbox: &Sandbox,
    ) -> Snapshot {
        let mut groups: BTreeMap<(String, String, &str), Vec<String>> = BTreeMap::new();
        for (path, _) in &raw {
            let made = if before.contains(path) { "old" } else { "new" };
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
            // Temporaries (`.policy_<time>.<random>.tmp`) keep their names.
            if let Some(at) = stamp_at(name).filter(|_| !name.starts_with('.')) {
                groups
                    .entry((dir.to_string(), name[..at].to_string(), made))
                    .or_default()
                    .push(path.clone());
            }
        }
        let mut renamed: BTreeMap<String, String> = BTreeMap::new();
        for ((dir, prefix, made), mut paths) in groups {
            paths.sort();
            for (i, path) in paths.into_iter().enumerate() {
                let suffix = if i == 0 {
                    String::new()
                } else {
                    format!(".{i}")
                };
                renamed.insert(path, format!("{dir}/{prefix}_<{made}>{suffix}"));
            }
        }
        let mut snapshot = Snapshot::new();
        for (path, entry) in raw {
            let entry = match entry {
                Entry::Link { target } if !target.contains('/') => {
                    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    let target = renamed
                        .get(&format!("{dir}/{target}"))
                        .and_then(|p| p.rsplit_once('/'))
                        .map(|(_, name)| name.to_string())
                        .unwrap_or(target);
                    Entry::Link { target }
                }
                other => other,
            };
            snapshot.insert(renamed.get(&path).cloned().unwrap_or(path), entry);
        }
        if let Some(probe) = self.probe {
            let text = probe(sandbox);
            snapshot.insert(
                "probe:".into(),
                Entry::File {
                    mode: 0,
                    uid: 0,
                    gid: 0,
                    content: Content::Lines(text.lines().map(str::to_string).collect()),
                },
            );
        }
        snapshot
    }

    /// The watched trees as the sandbox sees them (through its init's root), as they are.
    fn raw(&self, sandbox: &Sandbox) -> Vec<(String, Entry)> {
        let pid = control::init_pid(sandbox.state()).expect("sandbox init");
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        let mut snapshot = Vec::new();
        for watched in self.watched {
            let mut stack = vec![PathBuf::from(watched)];
            while let Some(path) = stack.pop() {
                let inside = root.join(path.strip_prefix("/").unwrap());
                let Ok(meta) = std::fs::symlink_metadata(&inside) else {
                    continue;
                };
                let name = path.to_string_lossy().into_owned();
                let mode = meta.mode() & 0o7777;
                let (uid, gid) = (meta.uid(), meta.gid());
                let entry = if meta.is_dir() {
                    let mut children: Vec<PathBuf> = std::fs::read_dir(&inside)
                        .map(|rd| {
                            rd.filter_map(|e| e.ok().map(|e| path.join(e.file_name())))
                                .collect()
                        })
                        .unwrap_or_default();
                    children.sort();
                    stack.extend(children);
                    Entry::Dir { mode, uid, gid }
                } else if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&inside).unwrap_or_default();
                    Entry::Link {
                        target: target.to_string_lossy().into_owned(),
                    }
                } else if meta.is_file() {
                    let bytes = std::fs::read(&inside).unwrap_or_default();
                    if bytes.is_empty() && self.empty_is_absent.contains(&name.as_str()) {
                        continue;
                    }
                    let content = if self.volatile.iter().any(|v| name.starts_with(v)) {
                        Content::Volatile
                    } else if self.line_sets.contains(&name.as_str()) {
                        Content::Lines(
                            String::from_utf8_lossy(&bytes)
                                .lines()
                                .map(str::to_string)
                                .collect(),
                        )
                    } else {
                        Content::Digest(sha256(&bytes))
                    };
                    Entry::File {
                        mode,
                        uid,
                        gid,
                        content,
                    }
                } else {
                    Entry::Other { mode }
                };
                snapshot.push((name, entry));
            }
        }
        snapshot
    }
}

/// Steps 1..=k, or `max` of them spread evenly with the first and the last.
pub fn sample(k: usize, max: usize) -> Vec<usize> {
    if k <= max || max < 2 {
        return (1..=k).collect();
    }
    let mut chosen: Vec<usize> = (0..max).map(|i| 1 + i * (k - 1) / (max - 1)).collect();
    chosen.dedup();
    chosen
}

/// Whether a name is a temporary of an atomic write or a versioned switch.
fn transient(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with('.') && (name.ends_with(".tmp") || name.ends_with(".link"))
}

/// After a kill: every path in its OLD or NEW form (absence being a form), temporaries aside;
/// line-set files between the two.
fn mixed(old: &Snapshot, new: &Snapshot, mid: &Snapshot) -> Vec<String> {
    let paths: BTreeSet<&String> = old.keys().chain(new.keys()).chain(mid.keys()).collect();
    let mut problems = Vec::new();
    for path in paths {
        let (o, n, m) = (old.get(path), new.get(path), mid.get(path));
        if m == o || m == n {
            continue;
        }
        if m.is_some() && o.is_none() && transient(path) {
            continue;
        }
        if let (
            Some(Entry::File {
                content: Content::Lines(o_lines),
                mode: om,
                ..
            }),
            Some(Entry::File {
                content: Content::Lines(n_lines),
                ..
            }),
            Some(Entry::File {
                content: Content::Lines(m_lines),
                mode: mm,
                ..
            }),
        ) = (o, n, m)
        {
            let between = o_lines
                .intersection(n_lines)
                .all(|line| m_lines.contains(line))
                && m_lines
                    .iter()
                    .all(|line| o_lines.contains(line) || n_lines.contains(line));
            if between && om == mm {
                continue;
            }
        }
        problems.push(format!(
            "{path} is neither old nor new: {}; {}",
            compare("old", o, m),
            compare("new", n, m)
        ));
    }
    problems
}

fn differences(expected: &Snapshot, actual: &Snapshot) -> Vec<String> {
    let paths: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    paths
        .into_iter()
        .filter(|p| expected.get(*p) != actual.get(*p))
        .map(|p| {
            format!(
                "{p}: {}",
                compare("expected", expected.get(p), actual.get(p))
            )
        })
        .collect()
}

/// `what` against what is there: line sets by their differing lines, the rest in full.
fn compare(what: &str, expected: Option<&Entry>, found: Option<&Entry>) -> String {
    if let (
        Some(Entry::File {
            content: Content::Lines(e),
            mode: em,
            ..
        }),
        Some(Entry::File {
            content: Content::Lines(f),
            mode: fm,
            ..
        }),
    ) = (expected, found)
    {
        let missing: Vec<&String> = e.difference(f).collect();
        let extra: Vec<&String> = f.difference(e).collect();
        return format!(
            "{what} mode {em:o} has lines {missing:?} not there, there are lines {extra:?} \
             it has not, mode {fm:o}"
        );
    }
    format!("{what} {expected:?}, found {found:?}")
}

/// Where a `_YYYY-MM-DD_HH:MM:SS` stamp starts in a file name.
fn stamp_at(name: &str) -> Option<usize> {
    (0..name.len()).find(|&i| name.get(i..i + 20).is_some_and(is_stamp))
}

fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b[0] == b'_'
        && b[11] == b'_'
        && b.iter().enumerate().all(|(i, c)| match i {
            0 | 11 => *c == b'_',
            5 | 8 => *c == b'-',
            14 | 17 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_keep_the_ends_and_stay_within_bounds() {
        assert_eq!(sample(3, 10), [1, 2, 3]);
        let s = sample(100, 10);
        assert_eq!(s.len(), 10);
        assert_eq!((s[0], s[9]), (1, 100));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn stamps_are_found_in_versioned_names() {
        assert_eq!(stamp_at("policy_2026-12-04_04:45:11.1"), Some(6));
        assert_eq!(stamp_at("default_2023-02-05_14:55:56"), Some(7));
        assert_eq!(stamp_at("policy.json"), None);
    }

    #[test]
    fn a_half_state_is_a_mix_and_temporaries_are_not() {
        let file = |d: &str| Entry::File {
            mode: 0o644,
            uid: 0,
            gid: 0,
            content: Content::Digest(d.into()),
        };
        let old: Snapshot = [("/a".to_string(), file("1"))].into();
        let new: Snapshot = [("/a".to_string(), file("2"))].into();
        let mut mid = old.clone();
        mid.insert("/.a.x.tmp".into(), file("2"));
        assert!(mixed(&old, &new, &mid).is_empty());
        mid.insert("/a".into(), file("3"));
        assert_eq!(mixed(&old, &new, &mid).len(), 1);
        mid.remove("/a");
        assert_eq!(mixed(&old, &new, &mid).len(), 1, "a vanished file");
        let lines = |l: &[&str]| Entry::File {
            mode: 0o644,
            uid: 0,
            gid: 0,
            content: Content::Lines(l.iter().map(|s| s.to_string()).collect()),
        };
        let old: Snapshot = [("/g".to_string(), lines(&["root"]))].into();
        let new: Snapshot = [("/g".to_string(), lines(&["root", "a", "b"]))].into();
        let half: Snapshot = [("/g".to_string(), lines(&["root", "a"]))].into();
        assert!(mixed(&old, &new, &half).is_empty());
        let lost: Snapshot = [("/g".to_string(), lines(&["a"]))].into();
        assert_eq!(mixed(&old, &new, &lost).len(), 1);
    }
}
