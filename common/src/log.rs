//! The logger with the nagwad contract.
//!
//! Every finding is one line `<Level>: <text>` whose syslog identifier is the full command name,
//! with the syslog priority of its level. nagwad's filter (`/etc/nagwad/podsec.sed`) turns
//! Crash..Middle into CRITICAL and Warning into WARNING; Nagios then asks `check_nagwad <command>`.
//!
//! Sinks, in order of preference: the journald native protocol on
//! `/run/systemd/journal/socket`; an RFC 3164 datagram on `/dev/log` (rsyslog and others); stderr
//! when neither exists, so that nothing is lost silently. (The log-crate adapters for journald map
//! only five levels; the contract needs emerg, alert and crit, so the two wire formats are written
//! here directly: a dozen lines each.)

use std::io::{IoSlice, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// The severity words of the nagwad contract, with their syslog priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Crash,
    Fatal,
    Critical,
    High,
    Middle,
    Warning,
    Low,
    Debug,
}

impl Level {
    pub const ALL: [Level; 8] = [
        Level::Crash,
        Level::Fatal,
        Level::Critical,
        Level::High,
        Level::Middle,
        Level::Warning,
        Level::Low,
        Level::Debug,
    ];

    /// The word that starts the message.
    pub fn word(self) -> &'static str {
        match self {
            Level::Crash => "Crash",
            Level::Fatal => "Fatal",
            Level::Critical => "Critical",
            Level::High => "High",
            Level::Middle => "Middle",
            Level::Warning => "Warning",
            Level::Low => "Low",
            Level::Debug => "Debug",
        }
    }

    /// Syslog priority: emerg 0, alert 1, crit 2, err 3, warning 4 (Middle and Warning),
    /// notice 5, debug 7.
    pub fn priority(self) -> u8 {
        match self {
            Level::Crash => 0,
            Level::Fatal => 1,
            Level::Critical => 2,
            Level::High => 3,
            Level::Middle | Level::Warning => 4,
            Level::Low => 5,
            Level::Debug => 7,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    Journal(PathBuf),
    Syslog(PathBuf),
    Stderr,
}

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
const SYSLOG_SOCKET: &str = "/dev/log";
/// `user` facility, as `logger` uses by default.
const FACILITY_USER: u8 = 1;

/// Logs `<Level>: <text>` lines under one identifier.
#[derive(Debug)]
pub struct Logger {
    identifier: String,
    sink: Sink,
    /// The unbound datagram socket the lines are sent from, made at the first line: one
    /// `sendto` per line instead of socket, sendto and close (a reader of a busy audit log sends
    /// thousands).
    socket: std::sync::OnceLock<std::io::Result<UnixDatagram>>,
}

impl Logger {
    /// A logger for `identifier` (the full command name) on the best sink of this machine.
    pub fn new(identifier: &str) -> Logger {
        Logger::with_sink(identifier, Sink::detect(Path::new("/")))
    }

    pub fn with_sink(identifier: &str, sink: Sink) -> Logger {
        Logger {
            identifier: identifier.to_string(),
            sink,
            socket: std::sync::OnceLock::new(),
        }
    }

    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    /// The message exactly as the contract wants it.
    pub fn line(level: Level, text: &str) -> String {
        format!("{level}: {text}")
    }

    /// Sends one line. A sink that fails (daemon gone) falls back to stderr, so the finding is
    /// never lost.
    pub fn log(&self, level: Level, text: &str) {
        let message = Logger::line(level, text);
        let sent = match &self.sink {
            Sink::Journal(socket) => self.send_journal(socket, level, &message),
            Sink::Syslog(socket) => self.send_syslog(socket, level, &message),
            Sink::Stderr => Err(std::io::Error::other("no log daemon")),
        };
        if sent.is_err() {
            // One write per line (stderr is unbuffered: `writeln!` would make four).
            let line = format!("{}: {message}\n", self.identifier);
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn socket(&self) -> std::io::Result<&UnixDatagram> {
        self.socket
            .get_or_init(UnixDatagram::unbound)
            .as_ref()
            .map_err(|e| std::io::Error::new(e.kind(), e.to_string()))
    }

    fn send_journal(&self, socket: &Path, level: Level, message: &str) -> std::io::Result<()> {
        let mut datagram = Vec::with_capacity(message.len() + 128);
        journal_field(&mut datagram, "MESSAGE", message);
        journal_field(&mut datagram, "PRIORITY", &level.priority().to_string());
        journal_field(&mut datagram, "SYSLOG_IDENTIFIER", &self.identifier);
        journal_field(&mut datagram, "SYSLOG_FACILITY", &FACILITY_USER.to_string());
        journal_field(&mut datagram, "SYSLOG_PID", &std::process::id().to_string());
        let sock = self.socket()?;
        match sock.send_to(&datagram, socket) {
            Ok(_) => Ok(()),
            // Too large for one datagram: journald takes the payload from a sealed memfd.
            Err(e) if e.raw_os_error() == Some(nix::libc::EMSGSIZE) => {
                send_journal_memfd(sock, socket, &datagram)
            }
            Err(e) => Err(e),
        }
    }

    fn send_syslog(&self, socket: &Path, level: Level, message: &str) -> std::io::Result<()> {
        let priority = FACILITY_USER * 8 + level.priority();
        let timestamp = syslog_timestamp();
        let datagram = format!(
            "<{priority}>{timestamp} {}[{}]: {message}",
            self.identifier,
            std::process::id()
        );
        self.socket()?
            .send_to(datagram.as_bytes(), socket)
            .map(|_| ())
    }
}

impl Sink {
    /// journald when its socket exists below `root`, else `/dev/log`, else stderr.
    pub fn detect(root: &Path) -> Sink {
        let journal = root.join(JOURNAL_SOCKET.trim_start_matches('/'));
        let syslog = root.join(SYSLOG_SOCKET.trim_start_matches('/'));
        if journal.exists() {
            Sink::Journal(journal)
        } else if syslog.exists() {
            Sink::Syslog(syslog)
        } else {
            Sink::Stderr
        }
    }
}

/// One field of the journald native protocol: `KEY=value\n`, or the binary form
/// `KEY\n<u64 le length><value>\n` when the value holds a newline.
fn journal_field(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(key.as_bytes());
    if value.contains('\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

fn send_journal_memfd(sock: &UnixDatagram, socket: &Path, payload: &[u8]) -> std::io::Result<()> {
    use nix::sys::memfd::{MFdFlags, memfd_create};
    use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
    use std::os::fd::AsRawFd;

    let fd = memfd_create(
        "podsec-journal",
        MFdFlags::MFD_ALLOW_SEALING | MFdFlags::MFD_CLOEXEC,
    )?;
    let mut file = std::fs::File::from(fd);
    file.write_all(payload)?;
    nix::fcntl::fcntl(
        file.as_fd(),
        nix::fcntl::FcntlArg::F_ADD_SEALS(nix::fcntl::SealFlag::all()),
    )?;
    let fds = [file.as_raw_fd()];
    let address = UnixAddr::new(socket)?;
    sendmsg(
        sock.as_fd().as_raw_fd(),
        &[] as &[IoSlice],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        Some(&address),
    )?;
    Ok(())
}

/// `Mmm dd hh:mm:ss` in local time, as RFC 3164 wants.
fn syslog_timestamp() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let tm = crate::timestamp::local(std::time::SystemTime::now());
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_the_contract() {
        let expected = [0, 1, 2, 3, 4, 4, 5, 7];
        for (level, priority) in Level::ALL.iter().zip(expected) {
            assert_eq!(level.priority(), priority, "{level}");
        }
    }

    #[test]
    fn line_has_the_level_prefix() {
        assert_eq!(
            Logger::line(Level::Critical, "user x: denied"),
            "Critical: user x: denied"
        );
    }

    #[test]
    fn journal_fields_use_binary_form_for_newlines() {
        let mut out = Vec::new();
        journal_field(&mut out, "MESSAGE", "a\nb");
        let mut expected = b"MESSAGE\n".to_vec();
        expected.extend_from_slice(&3u64.to_le_bytes());
        expected.extend_from_slice(b"a\nb\n");
        assert_eq!(out, expected);
        out.clear();
        journal_field(&mut out, "PRIORITY", "2");
        assert_eq!(out, b"PRIORITY=2\n");
    }

    #[test]
    fn syslog_datagram_reaches_a_listening_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let listener = UnixDatagram::bind(&path).unwrap();
        let logger = Logger::with_sink("podsec-test", Sink::Syslog(path));
        logger.log(Level::Warning, "hello");
        let mut buf = [0u8; 512];
        let n = listener.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        // user facility (1) * 8 + warning (4) = 12
        assert!(text.starts_with("<12>"), "{text}");
        assert!(
            text.ends_with(&format!(
                "podsec-test[{}]: Warning: hello",
                std::process::id()
            )),
            "{text}"
        );
    }

    #[test]
    fn journal_datagram_carries_identifier_and_priority() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let listener = UnixDatagram::bind(&path).unwrap();
        let logger = Logger::with_sink("podsec-inotify-check-policy", Sink::Journal(path));
        logger.log(Level::High, "x");
        let mut buf = [0u8; 1024];
        let n = listener.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.contains("MESSAGE=High: x\n"), "{text}");
        assert!(text.contains("PRIORITY=3\n"), "{text}");
        assert!(
            text.contains("SYSLOG_IDENTIFIER=podsec-inotify-check-policy\n"),
            "{text}"
        );
    }

    #[test]
    fn detect_prefers_journal_then_syslog_then_stderr() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(Sink::detect(root.path()), Sink::Stderr);
        std::fs::create_dir_all(root.path().join("dev")).unwrap();
        let _s = UnixDatagram::bind(root.path().join("dev/log")).unwrap();
        assert!(matches!(Sink::detect(root.path()), Sink::Syslog(_)));
        std::fs::create_dir_all(root.path().join("run/systemd/journal")).unwrap();
        let _j = UnixDatagram::bind(root.path().join("run/systemd/journal/socket")).unwrap();
        assert!(matches!(Sink::detect(root.path()), Sink::Journal(_)));
    }
}
