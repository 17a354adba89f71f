//! Reading the audit log like `tail -F`, with a position that survives restarts.
//!
//! Following is a short poll (every [`POLL`]) rather than inotify: one `stat` and one small
//! `pread` per tick cost nothing next to the apiserver's writes, and polling sees every case the
//! same way — data appended, the file renamed away (`audit-<timestamp>.log`) and a new one
//! created, the file truncated in place (copytruncate, possibly refilled before we look), the
//! file not existing yet — where inotify would need watches on both the file and its directory
//! and still a rescan for what happened between events. `tail -F` polls too.
//!
//! Rotation never loses the end of the old file: after a rename the old file is read to its end
//! through the descriptor we hold; after a copytruncate the copy is found next to the log (same
//! name stem, holding the last line we read at the same offset) and read on from there. A
//! restart finds the file it stopped in by inode, or by that fingerprint.

use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::KubeapiError;
use super::state::Cursor;

pub const POLL: Duration = Duration::from_millis(250);
const CHUNK: usize = 1 << 20;
/// A line longer than this is not an audit event we can use; it is skipped as malformed instead
/// of growing the buffer without bound.
const MAX_LINE: usize = 64 << 20;

/// What the reader does with each complete line, and when it has read enough to commit.
pub trait Sink {
    fn line(&mut self, line: &[u8]);
    /// Called after each chunk; commits when the sink's batch is full.
    fn chunk_done(&mut self, cursor: Cursor) -> Result<(), KubeapiError>;
    fn malformed(&mut self);
}

/// One audit file being read.
#[derive(Debug)]
pub struct Source {
    file: File,
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    /// After the last complete line handed to the sink.
    pub offset: u64,
    last_len: u64,
    last_hash: u64,
    /// `buf[..filled]`: bytes read after `offset` that do not end in a newline yet.
    buf: Vec<u8>,
    filled: usize,
    /// Inside an over-long line: drop bytes up to the next newline.
    skipping: bool,
}

/// FNV-1a: a stable fingerprint for one line (std's hasher may change between releases, and the
/// value is stored on disk).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Opens an audit file read-only without following a symlink; `Ok(None)` when it is missing.
pub fn open_audit(path: &Path) -> Result<Option<File>, KubeapiError> {
    // O_NONBLOCK: a FIFO planted at the path must not hang us; it is refused below.
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd = match nix::fcntl::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) => {
            return Err(KubeapiError::Symlink {
                path: path.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(KubeapiError::Io {
                path: path.to_path_buf(),
                source: e.into(),
            });
        }
    };
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| KubeapiError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    if !meta.is_file() {
        return Err(KubeapiError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    Ok(Some(file))
}

impl Source {
    pub fn new(file: File, path: &Path) -> Result<Source, KubeapiError> {
        let meta = file.metadata().map_err(|e| io_err(path, e))?;
        Ok(Source {
            file,
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
            offset: 0,
            last_len: 0,
            last_hash: 0,
            buf: Vec::new(),
            filled: 0,
            skipping: false,
        })
    }

    /// Continue at a saved cursor (the caller checked it with [`Source::holds`]).
    pub fn resume(&mut self, cursor: &Cursor) {
        self.offset = cursor.offset;
        self.last_len = cursor.last_len;
        self.last_hash = cursor.last_hash;
        self.filled = 0;
        self.skipping = false;
    }

    /// Back to the start (the file was truncated).
    pub fn restart(&mut self) {
        self.resume(&Cursor::default());
    }

    pub fn cursor(&self) -> Cursor {
        Cursor {
            dev: self.dev,
            ino: self.ino,
            offset: self.offset,
            last_len: self.last_len,
            last_hash: self.last_hash,
        }
    }

    pub fn size(&self) -> Result<u64, KubeapiError> {
        Ok(self
            .file
            .metadata()
            .map_err(|e| io_err(&self.path, e))?
            .len())
    }

    /// Whether this file still holds, just before `cursor.offset`, the last line read there.
    pub fn holds(&self, cursor: &Cursor) -> Result<bool, KubeapiError> {
        if self.size()? < cursor.offset {
            return Ok(false);
        }
        if cursor.last_len == 0 || cursor.last_len > cursor.offset {
            return Ok(true);
        }
        let mut line = vec![0u8; cursor.last_len as usize];
        match self
            .file
            .read_exact_at(&mut line, cursor.offset - cursor.last_len)
        {
            Ok(()) => Ok(fnv1a(&line) == cursor.last_hash),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(io_err(&self.path, e)),
        }
    }

    /// Whether the file was truncated (or truncated and refilled) under us.
    pub fn truncated(&self) -> Result<bool, KubeapiError> {
        Ok(!self.holds(&self.cursor())?)
    }

    /// Reads to the end of the file, handing each complete line to `sink`.
    pub fn drain(&mut self, sink: &mut dyn Sink) -> Result<(), KubeapiError> {
        loop {
            // The buffer is zeroed once and reused; it grows only for a line longer than it.
            if self.buf.len() - self.filled < CHUNK / 2 {
                let grown = (self.buf.len() * 2).max(CHUNK);
                self.buf.resize(grown, 0);
            }
            let read = loop {
                match self.file.read_at(
                    &mut self.buf[self.filled..],
                    self.offset + self.filled as u64,
                ) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_err(&self.path, e)),
                }
            };
            if read == 0 {
                return Ok(());
            }
            self.filled += read;
            let data = &self.buf[..self.filled];
            let mut consumed = 0;
            let mut last_line = None;
            for end in memchr::memchr_iter(b'\n', data) {
                if self.skipping {
                    self.skipping = false;
                } else {
                    sink.line(&data[consumed..end]);
                    last_line = Some((consumed, end + 1));
                }
                consumed = end + 1;
            }
            if let Some((at, end)) = last_line {
                self.last_len = (end - at) as u64;
                self.last_hash = fnv1a(&data[at..end]);
            } else if consumed > 0 {
                // only the tail of a skipped line: no fingerprint to check against
                self.last_len = 0;
            }
            self.offset += consumed as u64;
            self.buf.copy_within(consumed..self.filled, 0);
            self.filled -= consumed;
            if self.filled > MAX_LINE {
                if !self.skipping {
                    sink.malformed();
                }
                self.skipping = true;
                self.offset += self.filled as u64;
                self.last_len = 0;
                self.filled = 0;
                self.buf = Vec::new();
            }
            sink.chunk_done(self.cursor())?;
        }
    }
}

fn io_err(path: &Path, source: std::io::Error) -> KubeapiError {
    KubeapiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Finds the file that holds `cursor` next to `audit_path`: the same inode (renamed away by the
/// apiserver), else a file whose bytes before `cursor.offset` end with the fingerprinted line (a
/// copytruncate copy). Only names starting with the log's stem (`audit`) are looked at, and
/// `exclude` (the live file's inode) is skipped in the fingerprint search.
pub fn find_holder(
    audit_path: &Path,
    cursor: &Cursor,
    exclude: Option<u64>,
) -> Result<Option<Source>, KubeapiError> {
    let dir = audit_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = audit_path
        .file_stem()
        .map(|s| s.as_bytes().to_vec())
        .unwrap_or_default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(dir, e)),
    };
    let mut by_content = None;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let name = entry.file_name();
        if !name.as_bytes().starts_with(&stem) {
            continue;
        }
        let path = dir.join(&name);
        // Symlinks and other non-files are simply not candidates.
        let Ok(Some(file)) = open_audit(&path) else {
            continue;
        };
        let source = Source::new(file, &path)?;
        if source.dev == cursor.dev && source.ino == cursor.ino {
            if source.holds(cursor)? {
                return Ok(Some(source));
            }
            continue;
        }
        if by_content.is_none()
            && Some(source.ino) != exclude
            && cursor.last_len > 0
            && source.holds(cursor)?
        {
            by_content = Some(source);
        }
    }
    Ok(by_content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[derive(Default)]
    struct Lines {
        lines: Vec<String>,
        malformed: u64,
        cursors: Vec<Cursor>,
    }

    impl Sink for Lines {
        fn line(&mut self, line: &[u8]) {
            self.lines.push(String::from_utf8_lossy(line).into_owned());
        }
        fn chunk_done(&mut self, cursor: Cursor) -> Result<(), KubeapiError> {
            self.cursors.push(cursor);
            Ok(())
        }
        fn malformed(&mut self) {
            self.malformed += 1;
        }
    }

    fn append(path: &Path, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn partial_lines_wait_for_their_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        append(&path, "a\nb");
        let mut source = Source::new(open_audit(&path).unwrap().unwrap(), &path).unwrap();
        let mut sink = Lines::default();
        source.drain(&mut sink).unwrap();
        assert_eq!(sink.lines, ["a"]);
        assert_eq!(source.offset, 2);
        append(&path, "c\nd\n");
        source.drain(&mut sink).unwrap();
        assert_eq!(sink.lines, ["a", "bc", "d"]);
        assert_eq!(source.offset, 7);
        assert!(source.holds(&source.cursor()).unwrap());
    }

    #[test]
    fn truncation_and_refill_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        append(&path, "first line\nsecond\n");
        let mut source = Source::new(open_audit(&path).unwrap().unwrap(), &path).unwrap();
        source.drain(&mut Lines::default()).unwrap();
        assert!(!source.truncated().unwrap());
        // copytruncate, then the writer fills the file past the old offset again
        std::fs::copy(&path, dir.path().join("audit-2024-01-01T00-00-00.000.log")).unwrap();
        std::fs::File::create(&path).unwrap();
        append(&path, "a different, longer line\n");
        assert!(source.truncated().unwrap());
        let holder = find_holder(&path, &source.cursor(), Some(source.ino))
            .unwrap()
            .expect("the copy holds the cursor");
        assert!(holder.path.ends_with("audit-2024-01-01T00-00-00.000.log"));
    }

    #[test]
    fn renamed_file_is_found_by_inode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        append(&path, "x\n");
        let mut source = Source::new(open_audit(&path).unwrap().unwrap(), &path).unwrap();
        source.drain(&mut Lines::default()).unwrap();
        let rotated = dir.path().join("audit-2024-01-01T00-00-00.000.log");
        std::fs::rename(&path, &rotated).unwrap();
        append(&path, "y\n");
        append(&dir.path().join("other.log"), "x\n");
        let holder = find_holder(&path, &source.cursor(), None).unwrap().unwrap();
        assert_eq!(holder.path, rotated);
        assert_eq!(holder.ino, source.ino);
    }

    #[test]
    fn symlinks_and_fifos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        append(&target, "x\n");
        let link = dir.path().join("audit.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            open_audit(&link),
            Err(KubeapiError::Symlink { .. })
        ));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            open_audit(&fifo),
            Err(KubeapiError::NotRegular { .. })
        ));
        assert!(open_audit(&dir.path().join("missing")).unwrap().is_none());
    }

    #[test]
    fn fingerprint_is_stable() {
        // stored on disk: must never change between builds
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
