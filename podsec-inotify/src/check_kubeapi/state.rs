//! The state directory of check-kubeapi (`/var/lib/podsec/u7s/log/kubeapi`, root's, 0700):
//! `forbidden.log` (the upstream record), `position` (where in which audit log we are, and how
//! long forbidden.log was when we got there), lock files, and `forbidden.log.<n>` files that
//! `-m` has taken out of the way and not mailed yet.
//!
//! Exactly-once after `kill -9`: a batch of records is appended to forbidden.log and synced,
//! then the position (audit offset together with forbidden.log's size) replaces the old one
//! atomically. A crash between the two leaves forbidden.log longer than the position says; the
//! next start cuts it back to the recorded size and reads those events again.
//!
//! The syslog lines cannot take part in that: journald's socket and a file cannot change
//! together, so their contract is at-least-once. The audit ID of each event is appended to
//! `journaled` right after its line is sent and the file is emptied by the next commit; the
//! events read again after a crash are recorded but not sent again when their ID is there.
//! Only a crash between the send and that append repeats a line. The append is a copy into a
//! shared mapping of the file ([`Journal`]): the page cache has it as soon as a write(2) would
//! have, so a crash of the process loses it no more than it would lose a write (neither is
//! synced), and a backlog of a hundred thousand refused requests costs no system call each.

use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, Flock, FlockArg, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use serde::{Deserialize, Serialize};

use podsec_common::host::failpoint::step;
use podsec_common::host::files::{FileError, Owner, SafeDir};

use super::KubeapiError;

pub const FORBIDDEN_LOG: &str = "forbidden.log";
const POSITION: &str = "position";
/// Held while forbidden.log and the position change (the follower's commits, `-m`'s rotation).
const COMMIT_LOCK: &str = "commit.lock";
/// Held for the whole run by the one process that reads the audit log.
const READER_LOCK: &str = "reader.lock";
/// Audit IDs whose syslog line was sent since the last commit.
const JOURNALED: &str = "journaled";
/// More than any batch between two commits holds (it is read at start only).
const MAX_JOURNALED: u64 = 64 << 20;

/// Where reading stopped: the audit file (device, inode), the offset after the last complete
/// line, and that line's length and hash, which tell whether the file still holds the same bytes
/// (a copytruncate refills a file under the same inode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
    pub last_len: u64,
    pub last_hash: u64,
}

/// forbidden.log as of the last commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub ino: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub audit: Option<Cursor>,
    pub forbidden: Option<Recorded>,
}

/// The opened state directory; every file in it is reached through the directory descriptor
/// and opened without following symlinks.
#[derive(Debug)]
pub struct StateDir {
    dir: SafeDir,
    /// forbidden.log as this process has it open for appending.
    forbidden: Option<File>,
    /// `journaled`, mapped for appending.
    journaled: Option<Journal>,
}

/// How much of `journaled` is mapped: the IDs of more than a full batch (`BATCH_EVENTS` UUIDs
/// take 2.4 MB). Notes past it are appended with pwrite(2).
const JOURNAL_MAP: usize = 4 << 20;

/// `journaled` while this process notes IDs in it: the file is kept [`JOURNAL_MAP`] bytes long,
/// the IDs (one a line) followed by zeros, which [`StateDir::journaled_ids`] skips.
#[derive(Debug)]
struct Journal {
    file: File,
    map: std::ptr::NonNull<std::ffi::c_void>,
    /// Bytes of IDs in the file.
    len: usize,
}

impl Journal {
    /// Maps `file`, keeping the IDs it holds (of a run that crashed before its commit).
    fn open(file: File) -> std::io::Result<Journal> {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(&file, MAX_JOURNALED), &mut bytes)?;
        let len = bytes.iter().rposition(|&b| b != 0).map_or(0, |at| at + 1);
        if (file.metadata()?.len() as usize) < JOURNAL_MAP {
            file.set_len(JOURNAL_MAP as u64)?;
        }
        // SAFETY: a shared read-write mapping of a regular file of at least JOURNAL_MAP bytes in
        // the root-only state directory; only this process (the reader lock's holder) changes
        // the file's length, and only through `clear`, which restores it before the next note.
        let map = unsafe {
            nix::sys::mman::mmap(
                None,
                std::num::NonZeroUsize::new(JOURNAL_MAP).expect("non-zero"),
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED,
                &file,
                0,
            )?
        };
        let mut journal = Journal { file, map, len };
        // A line cut by a crash stays a line of its own.
        if len > 0 && bytes[len - 1] != b'\n' {
            journal.append(b"\n")?;
        }
        Ok(journal)
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let end = self.len + bytes.len();
        if end <= JOURNAL_MAP {
            // SAFETY: `self.len..end` lies inside the mapping, which nothing else aliases.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    self.map.as_ptr().cast::<u8>().add(self.len),
                    bytes.len(),
                );
            }
        } else {
            std::os::unix::fs::FileExt::write_all_at(&self.file, bytes, self.len as u64)?;
        }
        self.len = end;
        Ok(())
    }

    /// Forgets every ID: the file becomes zeros again.
    fn clear(&mut self) -> std::io::Result<()> {
        self.len = 0;
        self.file.set_len(0)?;
        self.file.set_len(JOURNAL_MAP as u64)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `open`, not used after this.
        let _ = unsafe { nix::sys::mman::munmap(self.map, JOURNAL_MAP) };
    }
}

/// The host layer's refusal of a link is this command's; its other errors name their path.
fn file_error(error: FileError) -> KubeapiError {
    match error {
        FileError::NotFollowing { path } => KubeapiError::Symlink { path },
        FileError::Io { path, source } => KubeapiError::Io { path, source },
        other => KubeapiError::File(other),
    }
}

fn io_err(path: &Path, source: impl Into<std::io::Error>) -> KubeapiError {
    KubeapiError::Io {
        path: path.to_path_buf(),
        source: source.into(),
    }
}

impl StateDir {
    /// Opens `path`, creating missing directories (0755 on the way, 0700 for the last one),
    /// refusing symlinks anywhere and a last directory that is not root's or is writable by
    /// others.
    pub fn open_or_create(path: &Path) -> Result<StateDir, KubeapiError> {
        let bad = || KubeapiError::BadStateDir {
            path: path.to_path_buf(),
        };
        let (Some(parent), Some(last)) = (path.parent(), path.file_name()) else {
            return Err(bad());
        };
        let relative = parent.strip_prefix("/").map_err(|_| bad())?;
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(bad());
        }
        let from_file = |e: FileError| match e {
            FileError::BadName { .. } => bad(),
            other => file_error(other),
        };
        let dir = SafeDir::open(Path::new("/"))
            .and_then(|root| root.create_dir_all(relative, 0o755, Owner::default()))
            .and_then(|parent| parent.create_dir_all(Path::new(last), 0o700, Owner::default()))
            .map_err(from_file)?;
        let meta = dir.stat().map_err(from_file)?;
        if meta.st_uid != 0 || meta.st_mode & 0o022 != 0 {
            return Err(KubeapiError::UnsafeStateDir {
                path: dir.path().to_path_buf(),
                uid: meta.st_uid,
                mode: meta.st_mode & 0o7777,
            });
        }
        Ok(StateDir {
            dir,
            forbidden: None,
            journaled: None,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn open_file(&self, name: &str, flags: OFlag) -> Result<File, KubeapiError> {
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(&self.dir, name, flags, Mode::from_bits_truncate(0o600)) {
            Ok(fd) => Ok(File::from(fd)),
            Err(Errno::ELOOP) => Err(KubeapiError::Symlink {
                path: self.dir.path().join(name),
            }),
            Err(e) => Err(io_err(&self.dir.path().join(name), e)),
        }
    }

    fn lock(&self, name: &str, arg: FlockArg) -> Result<Option<Flock<File>>, KubeapiError> {
        let file = self.open_file(name, OFlag::O_RDWR | OFlag::O_CREAT)?;
        match Flock::lock(file, arg) {
            Ok(lock) => Ok(Some(lock)),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(io_err(&self.dir.path().join(name), e)),
        }
    }

    /// The commit lock (blocking).
    pub fn commit_lock(&self) -> Result<Flock<File>, KubeapiError> {
        self.lock(COMMIT_LOCK, FlockArg::LockExclusive)
            .map(|l| l.expect("blocking lock"))
    }

    /// The reader lock, or an error when another process follows the audit log already.
    pub fn reader_lock(&self) -> Result<Flock<File>, KubeapiError> {
        self.lock(READER_LOCK, FlockArg::LockExclusiveNonblock)?
            .ok_or_else(|| KubeapiError::Busy {
                path: self.dir.path().to_path_buf(),
            })
    }

    pub fn load_position(&self) -> Result<Position, KubeapiError> {
        let path = self.dir.path().join(POSITION);
        let file = match self.open_file(POSITION, OFlag::O_RDONLY) {
            Ok(file) => file,
            Err(KubeapiError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(Position::default());
            }
            Err(e) => return Err(e),
        };
        serde_json::from_reader(std::io::BufReader::new(file))
            .map_err(|source| KubeapiError::BadPosition { path, source })
    }

    /// Replaces the position file atomically (temporary file, fsync, rename).
    pub fn save_position(&self, position: &Position) -> Result<(), KubeapiError> {
        let text = serde_json::to_vec(position).expect("position serialises");
        self.dir
            .write_file(POSITION, &text, 0o600, Owner::default())
            .map_err(file_error)
    }

    /// (inode, size) of the entry `name`, not following a symlink; `None` when missing.
    pub fn stat(&self, name: &str) -> Result<Option<(u64, u64)>, KubeapiError> {
        match fstatat(&self.dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some((st.st_ino, st.st_size as u64))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(io_err(&self.dir.path().join(name), e)),
        }
    }

    /// forbidden.log for appending, reopened when `-m` has renamed it away.
    fn forbidden(&mut self) -> Result<&mut File, KubeapiError> {
        let on_disk = self.stat(FORBIDDEN_LOG)?.map(|(ino, _)| ino);
        let open_ino = match &self.forbidden {
            Some(file) => Some(
                file.metadata()
                    .map_err(|e| io_err(&self.dir.path().join(FORBIDDEN_LOG), e))?
                    .ino(),
            ),
            None => None,
        };
        if on_disk.is_none() || on_disk != open_ino {
            let file = self.open_file(
                FORBIDDEN_LOG,
                OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT,
            )?;
            let meta = file
                .metadata()
                .map_err(|e| io_err(&self.dir.path().join(FORBIDDEN_LOG), e))?;
            if !meta.is_file() || meta.nlink() != 1 {
                return Err(KubeapiError::NotRegular {
                    path: self.dir.path().join(FORBIDDEN_LOG),
                });
            }
            self.forbidden = Some(file);
        }
        Ok(self.forbidden.as_mut().expect("opened above"))
    }

    /// Under the commit lock at start: cuts forbidden.log back to what the position records
    /// (records written after the last position were not committed and will be read again).
    /// Without a recorded size (the first run, or a position of before), forbidden.log as it is
    /// now is recorded first: a run killed between its first append and its first position
    /// had left those records to be appended again (fault injection found it).
    pub fn recover(&mut self, position: &Position) -> Result<(), KubeapiError> {
        let path = self.dir.path().join(FORBIDDEN_LOG);
        let file = self.forbidden()?;
        let meta = file.metadata().map_err(|e| io_err(&path, e))?;
        let Some(recorded) = position.forbidden else {
            return self.save_position(&Position {
                audit: position.audit,
                forbidden: Some(Recorded {
                    ino: meta.ino(),
                    size: meta.len(),
                }),
            });
        };
        let file = self.forbidden()?;
        if meta.ino() == recorded.ino && meta.len() > recorded.size {
            file.set_len(recorded.size).map_err(|e| io_err(&path, e))?;
            file.sync_data().map_err(|e| io_err(&path, e))?;
            step("cut-back", &path);
        }
        Ok(())
    }

    /// The audit IDs whose syslog lines were sent after the last commit (before a crash).
    pub fn journaled_ids(&self) -> Result<std::collections::HashSet<String>, KubeapiError> {
        let file = match self.open_file(JOURNALED, OFlag::O_RDONLY | OFlag::O_NONBLOCK) {
            Ok(file) => file,
            Err(KubeapiError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(Default::default());
            }
            Err(e) => return Err(e),
        };
        let path = self.dir.path().join(JOURNALED);
        let meta = file.metadata().map_err(|e| io_err(&path, e))?;
        if !meta.is_file() {
            return Err(KubeapiError::NotRegular { path });
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_JOURNALED), &mut bytes)
            .map_err(|e| io_err(&path, e))?;
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| l.trim_matches('\0'))
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Notes that the syslog line of the event `id` was sent (best effort: a failure only
    /// means the line may be sent again after a crash).
    pub fn note_journaled(&mut self, id: &str) {
        if self.journaled.is_none() {
            self.journaled = self
                .open_file(JOURNALED, OFlag::O_RDWR | OFlag::O_CREAT)
                .and_then(|file| {
                    Journal::open(file).map_err(|e| io_err(&self.dir.path().join(JOURNALED), e))
                })
                .ok();
        }
        if let Some(journal) = &mut self.journaled {
            let _ = journal
                .append(id.as_bytes())
                .and_then(|()| journal.append(b"\n"));
            step("journaled", &self.dir.path().join(JOURNALED));
        }
    }

    /// Appends `records` to forbidden.log, syncs them, and records the new position. Call with
    /// the commit lock held.
    pub fn commit(&mut self, records: &[u8], audit: Cursor) -> Result<(), KubeapiError> {
        let path = self.dir.path().join(FORBIDDEN_LOG);
        let file = self.forbidden()?;
        if !records.is_empty() {
            file.write_all(records).map_err(|e| io_err(&path, e))?;
            file.sync_data().map_err(|e| io_err(&path, e))?;
            step("appended", &path);
        }
        let meta = file.metadata().map_err(|e| io_err(&path, e))?;
        self.save_position(&Position {
            audit: Some(audit),
            forbidden: Some(Recorded {
                ino: meta.ino(),
                size: meta.len(),
            }),
        })?;
        // Those events are behind the position now: they will not be read again.
        match &mut self.journaled {
            Some(journal) => {
                let _ = journal.clear();
            }
            None => {
                if let Ok(file) = self.open_file(JOURNALED, OFlag::O_WRONLY) {
                    let _ = file.set_len(0);
                }
            }
        }
        step("emptied", &self.dir.path().join(JOURNALED));
        Ok(())
    }

    /// `-m`, under the commit lock: renames a non-empty forbidden.log to `forbidden.log.<n>`,
    /// puts an empty one in its place and records that in the position, so a running follower
    /// appends to the new file from its next commit on.
    pub fn rotate_forbidden(&mut self) -> Result<(), KubeapiError> {
        let Some((_, size)) = self.stat(FORBIDDEN_LOG)? else {
            return Ok(());
        };
        if size == 0 {
            return Ok(());
        }
        let next = self.rotated()?.last().map(|(n, _)| n + 1).unwrap_or(1);
        let rotated = format!("{FORBIDDEN_LOG}.{next}");
        let mut position = self.load_position()?;
        renameat(&self.dir, FORBIDDEN_LOG, &self.dir, rotated.as_str())
            .map_err(|e| io_err(&self.dir.path().join(FORBIDDEN_LOG), e))?;
        step("rotated", &self.dir.path().join(&rotated));
        self.forbidden = None;
        let file = self.forbidden()?;
        let ino = file
            .metadata()
            .map_err(|e| io_err(&self.dir.path().join(FORBIDDEN_LOG), e))?
            .ino();
        if position.audit.is_some() {
            position.forbidden = Some(Recorded { ino, size: 0 });
            self.save_position(&position)?;
        }
        Ok(())
    }

    /// The `forbidden.log.<n>` files, by number.
    pub fn rotated(&self) -> Result<Vec<(u64, String)>, KubeapiError> {
        let names = self.dir.list().map_err(file_error)?;
        let prefix = format!("{FORBIDDEN_LOG}.");
        let mut found = Vec::new();
        for name in names {
            let Some(number) = std::str::from_utf8(name.as_bytes())
                .ok()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            found.push((number, name.to_string_lossy().into_owned()));
        }
        found.sort();
        Ok(found)
    }

    pub fn read_file(&self, name: &str) -> Result<Vec<u8>, KubeapiError> {
        let mut file = self.open_file(name, OFlag::O_RDONLY)?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes)
            .map_err(|e| io_err(&self.dir.path().join(name), e))?;
        Ok(bytes)
    }

    pub fn remove(&self, name: &str) -> Result<(), KubeapiError> {
        unlinkat(&self.dir, name, UnlinkatFlags::NoRemoveDir)
            .map_err(|e| io_err(&self.dir.path().join(name), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> (tempfile::TempDir, StateDir) {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open_or_create(&dir.path().join("a/kubeapi")).unwrap();
        (dir, state)
    }

    fn cursor(offset: u64) -> Cursor {
        Cursor {
            dev: 1,
            ino: 2,
            offset,
            ..Cursor::default()
        }
    }

    #[test]
    fn journaled_ids_outlive_the_process_until_the_commit() {
        let (dir, mut state) = state();
        let path = dir.path().join("a/kubeapi");
        state.note_journaled("a");
        state.note_journaled("b");
        // the process dies without a commit: the next one finds both, and adds to them
        drop(state);
        let mut state = StateDir::open_or_create(&path).unwrap();
        let ids = state.journaled_ids().unwrap();
        assert_eq!(ids.len(), 2, "{ids:?}");
        state.note_journaled("c");
        drop(state);
        let mut state = StateDir::open_or_create(&path).unwrap();
        let mut ids: Vec<String> = state.journaled_ids().unwrap().into_iter().collect();
        ids.sort();
        assert_eq!(ids, ["a", "b", "c"]);
        // more than the mapping holds: the rest is appended after it
        let many: Vec<String> = (0..JOURNAL_MAP / 36 + 1000)
            .map(|i| format!("{i:08x}-5b1c-4e8e-9d2a-000000000000"))
            .collect();
        for id in &many {
            state.note_journaled(id);
        }
        drop(state);
        let mut state = StateDir::open_or_create(&path).unwrap();
        let ids = state.journaled_ids().unwrap();
        assert_eq!(ids.len(), 3 + many.len());
        assert!(ids.contains(&many[many.len() - 1]));
        // a commit forgets them all, also for a later run
        state.note_journaled("d");
        state.commit(b"", cursor(0)).unwrap();
        assert!(state.journaled_ids().unwrap().is_empty());
        state.note_journaled("e");
        drop(state);
        let state = StateDir::open_or_create(&path).unwrap();
        let ids: Vec<String> = state.journaled_ids().unwrap().into_iter().collect();
        assert_eq!(ids, ["e"]);
    }

    #[test]
    fn creates_a_private_directory_and_refuses_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, state) = state();
        let mode = std::fs::metadata(state.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o700);
        std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("link")).unwrap();
        let err = StateDir::open_or_create(&dir.path().join("link/kubeapi")).unwrap_err();
        assert!(matches!(err, KubeapiError::Symlink { .. }), "{err}");
        std::fs::create_dir(dir.path().join("open")).unwrap();
        std::fs::set_permissions(
            dir.path().join("open"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let err = StateDir::open_or_create(&dir.path().join("open")).unwrap_err();
        assert!(matches!(err, KubeapiError::UnsafeStateDir { .. }), "{err}");
    }

    #[test]
    fn a_first_batch_killed_before_its_position_is_cut_back_too() {
        let (_dir, mut state) = state();
        let path = state.path().join(FORBIDDEN_LOG);
        std::fs::write(&path, b"[upstream]\n").unwrap();
        state.recover(&state.load_position().unwrap()).unwrap();
        // the first batch appended, the kill before its position
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"[1]\n").unwrap();
        let mut fresh = StateDir::open_or_create(state.path()).unwrap();
        fresh.recover(&fresh.load_position().unwrap()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"[upstream]\n");
    }

    #[test]
    fn uncommitted_records_are_cut_back_on_recovery() {
        let (_dir, mut state) = state();
        state.commit(b"[1]\n", cursor(10)).unwrap();
        let position = state.load_position().unwrap();
        assert_eq!(position.audit, Some(cursor(10)));
        assert_eq!(position.forbidden.unwrap().size, 4);
        // appended but the position never saved (kill -9 between the two)
        let path = state.path().join(FORBIDDEN_LOG);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"[2]\n").unwrap();
        let mut fresh = StateDir::open_or_create(state.path()).unwrap();
        fresh.recover(&position).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"[1]\n");
    }

    #[test]
    fn rotation_moves_the_log_aside_and_the_writer_follows() {
        let (_dir, mut state) = state();
        state.commit(b"[1]\n", cursor(10)).unwrap();
        let mut mailer = StateDir::open_or_create(state.path()).unwrap();
        mailer.rotate_forbidden().unwrap();
        state.commit(b"[2]\n", cursor(20)).unwrap();
        assert_eq!(state.read_file("forbidden.log.1").unwrap(), b"[1]\n");
        assert_eq!(state.read_file(FORBIDDEN_LOG).unwrap(), b"[2]\n");
        mailer.rotate_forbidden().unwrap();
        let rotated: Vec<u64> = state.rotated().unwrap().iter().map(|r| r.0).collect();
        assert_eq!(rotated, [1, 2]);
        let position = state.load_position().unwrap();
        assert_eq!(position.forbidden.unwrap().size, 0);
        assert_eq!(position.audit, Some(cursor(20)));
    }

    #[test]
    fn only_one_reader() {
        let (_dir, state) = state();
        let _held = state.reader_lock().unwrap();
        let other = StateDir::open_or_create(state.path()).unwrap();
        assert!(matches!(
            other.reader_lock(),
            Err(KubeapiError::Busy { .. })
        ));
    }
}
