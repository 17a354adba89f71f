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
                let stamp = timestamp::stamp(meta.modified().unwrap_or_else(|_| SystemTime::now()));
                let kept = self.free_name(&stamp);
                std::fs::rename(&live, &kept).map_err(|e| io(&live, e))?;
                step("kept", &kept);
                Some(kept)
            }
            Ok(_) => return Err(FileError::NotFollowing { path: live }),
            Err(_) => None,
        };
        let version = self.free_name(&timestamp::stamp(SystemTime::now()));
        write_atomic(&version, contents, mode, Owner::default())?;
        let target = version.file_name().expect("versioned name").to_owned();
        let temp_link = self
            .dir
            .join(format!(".{}.{}.link", self.live_name, std::process::id()));
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
}
