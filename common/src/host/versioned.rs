//! Upstream's history scheme for configuration files: the live name is a symlink to a
//! timestamped copy (`policy.json -> policy_2025-01-31_10:00:00`), so every earlier version stays
//! on disk. Each switch is atomic: the copy is written completely first, then a new symlink is
//! renamed over the live name. Re-running with the same content changes nothing.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::failpoint::step;
use super::files::{FileError, Owner, write_atomic};
use crate::timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The live file already had this content.
    Unchanged,
    /// A new version was written and linked; `previous` is what the live name pointed to or the
    /// regular file it was, kept under a timestamped name.
    Switched {
        version: PathBuf,
        previous: Option<PathBuf>,
    },
}

/// One versioned file: `dir/live_name -> dir/<prefix><stamp>`.
#[derive(Debug, Clone)]
pub struct Versioned<'a> {
    pub dir: &'a Path,
    pub live_name: &'a str,
    pub prefix: &'a str,
}

fn io(path: &Path, source: std::io::Error) -> FileError {
    FileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Versioned<'_> {
    pub fn live(&self) -> PathBuf {
        self.dir.join(self.live_name)
    }

    /// The current content (following the link), if any.
    pub fn current(&self) -> Option<Vec<u8>> {
        std::fs::read(self.live()).ok()
    }

    /// Installs `contents` as a new version unless the live file already holds exactly it.
    pub fn install(&self, contents: &[u8], mode: u32) -> Result<Outcome, FileError> {
        if self.current().as_deref() == Some(contents) {
            return Ok(Outcome::Unchanged);
        }
        let live = self.live();
        let previous = match std::fs::symlink_metadata(&live) {
            Ok(meta) if meta.file_type().is_symlink() => {
                std::fs::read_link(&live).ok().map(|t| self.dir.join(t))
            }
            Ok(meta) if meta.is_file() => {
                // A plain file from before podsec: keep it in the series, named by its mtime.
                // A second name (a hard link), so the live name stays until the new link
                // replaces it; a run killed after this step left the same link, which is taken.
                let stamp = timestamp::stamp(meta.modified().unwrap_or_else(|_| SystemTime::now()));
                let kept = match self.same_file_named(&stamp, &meta) {
                    Some(kept) => kept,
                    None => {
                        let kept = self.free_name(&stamp);
                        std::fs::hard_link(&live, &kept).map_err(|e| io(&kept, e))?;
                        step("kept", &kept);
                        kept
                    }
                };
                Some(kept)
            }
            Ok(_) => return Err(FileError::NotFollowing { path: live }),
            Err(_) => None,
        };
        let version = match self.unlinked_version(contents, mode, previous.as_deref()) {
            Some(version) => version,
            None => {
                let version = self.free_name(&timestamp::stamp(SystemTime::now()));
                write_atomic(&version, contents, mode, Owner::default())?;
                version
            }
        };
        let target = version.file_name().expect("versioned name").to_owned();
        // One fixed name: whatever a killed run left there is replaced, not piled up.
        let temp_link = self.dir.join(format!(".{}.link", self.live_name));
        let _ = std::fs::remove_file(&temp_link);
        std::os::unix::fs::symlink(&target, &temp_link).map_err(|e| io(&temp_link, e))?;
        step("link-made", &temp_link);
        std::fs::rename(&temp_link, &live).map_err(|e| io(&live, e))?;
        std::fs::File::open(self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(self.dir, e))?;
        step("switched", &live);
        Ok(Outcome::Switched { version, previous })
    }

    /// The kept copy `<prefix><stamp>[.n]` that already is the live file (a hard link made by
    /// a run killed before its switch).
    fn same_file_named(&self, stamp: &str, live: &std::fs::Metadata) -> Option<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let base = self.dir.join(format!("{}{stamp}", self.prefix));
        std::iter::once(base)
            .chain((1..).map(|n| self.dir.join(format!("{}{stamp}.{n}", self.prefix))))
            .map_while(|p| std::fs::symlink_metadata(&p).ok().map(|m| (p, m)))
            .find(|(_, m)| m.is_file() && m.dev() == live.dev() && m.ino() == live.ino())
            .map(|(p, _)| p)
    }

    /// A version that a run killed before its switch wrote completely and never linked: newer
    /// than what the live name points to (`previous`), with exactly `contents` and `mode`. The
    /// re-run links it instead of writing yet another copy. The temporaries of such a run are
    /// removed here too.
    fn unlinked_version(
        &self,
        contents: &[u8],
        mode: u32,
        previous: Option<&Path>,
    ) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(dir) = std::fs::File::open(self.dir) {
            super::files::sweep_stale_temps(&dir, &format!(".{}", self.prefix));
        }
        let floor = previous
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut candidates: Vec<(String, PathBuf)> = std::fs::read_dir(self.dir)
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let stamped = name
                    .strip_prefix(self.prefix)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
                (stamped && name > floor).then(|| (name, entry.path()))
            })
            .collect();
        candidates.sort();
        let (_, path) = candidates.pop()?;
        let meta = std::fs::symlink_metadata(&path).ok()?;
        let same = meta.is_file()
            && meta.permissions().mode() & 0o7777 == mode
            && std::fs::read(&path).ok()?.as_slice() == contents;
        same.then_some(path)
    }

    /// `<prefix><stamp>`, or with `.1`, `.2`… when two versions fall in the same second.
    fn free_name(&self, stamp: &str) -> PathBuf {
        let base = self.dir.join(format!("{}{stamp}", self.prefix));
        if std::fs::symlink_metadata(&base).is_err() {
            return base;
        }
        (1..)
            .map(|n| self.dir.join(format!("{}{stamp}.{n}", self.prefix)))
            .find(|p| std::fs::symlink_metadata(p).is_err())
            .expect("a free name")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn plain_file_is_kept_and_link_switched_then_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.json"), "old").unwrap();
        let file = Versioned {
            dir: dir.path(),
            live_name: "policy.json",
            prefix: "policy_",
        };
        let Outcome::Switched { version, previous } = file.install(b"new", 0o644).unwrap() else {
            panic!("not switched")
        };
        assert_eq!(std::fs::read_to_string(previous.unwrap()).unwrap(), "old");
        assert_eq!(std::fs::read_to_string(&version).unwrap(), "new");
        let link = std::fs::read_link(dir.path().join("policy.json")).unwrap();
        assert_eq!(dir.path().join(link), version);
        assert_eq!(file.install(b"new", 0o644).unwrap(), Outcome::Unchanged);
        // A second change in the same second gets its own name.
        let Outcome::Switched {
            version: second,
            previous,
        } = file.install(b"newer", 0o644).unwrap()
        else {
            panic!("not switched")
        };
        assert_ne!(second, version);
        assert_eq!(previous.unwrap(), version);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("policy.json")).unwrap(),
            "newer"
        );
    }

    /// What a run killed at each failpoint leaves (tests/tests/fault_injection.rs found these):
    /// the live name never goes missing, and a re-run takes over the kept link, the unlinked
    /// version and the temporaries instead of piling up copies.
    #[test]
    fn a_rerun_after_a_kill_takes_over_what_the_killed_run_left() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("policy.json");
        std::fs::write(&live, "old").unwrap();
        let file = Versioned {
            dir: dir.path(),
            live_name: "policy.json",
            prefix: "policy_",
        };
        // Killed after keeping the plain file: it is still live, under two names.
        let stamp = timestamp::stamp(std::fs::metadata(&live).unwrap().modified().unwrap());
        let kept = dir.path().join(format!("policy_{stamp}"));
        std::fs::hard_link(&live, &kept).unwrap();
        // ... and after writing the new version, before the switch; with its temporaries.
        let orphan = dir.path().join("policy_2999-01-01_00:00:00");
        std::fs::write(&orphan, "new").unwrap();
        std::fs::set_permissions(&orphan, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(
            dir.path().join(".policy_2999-01-01_00:00:01.Ab12Cd.tmp"),
            "ne",
        )
        .unwrap();
        std::os::unix::fs::symlink("policy_x", dir.path().join(".policy.json.link")).unwrap();
        let Outcome::Switched { version, previous } = file.install(b"new", 0o644).unwrap() else {
            panic!("not switched")
        };
        assert_eq!(version, orphan);
        assert_eq!(previous.unwrap(), kept);
        assert_eq!(std::fs::read_to_string(&live).unwrap(), "new");
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "policy.json".to_string(),
                format!("policy_{stamp}"),
                "policy_2999-01-01_00:00:00".to_string(),
            ]
        );
    }
}
