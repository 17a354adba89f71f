//! podsec-inotify-check-kubeapi: requests the Kubernetes API refused, from its audit log.
//!
//! Every audit event answered with code 400 or more becomes one line of forbidden.log in the
//! upstream format (`["<requestReceivedTimestamp>","<sourceIPs[0]>","<message>"]`, as `jq -c`
//! prints it) and one `Critical: [...]` syslog line. Upstream's pipeline (`tail -f | jq | tee`)
//! lost events on rotation, died on a bad line and restart-looped where no audit log exists;
//! see [`follow`] and [`state`] for how this one reads and records exactly once.

mod audit_setup;
mod follow;
mod state;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{ArgGroup, Parser};
use podsec_common::audit::Event;
use podsec_common::cli::{self, Failure, NotRoot};
use podsec_common::log::{Level, Logger};
use podsec_common::tr;

use follow::{Sink, Source, find_holder, open_audit};
use state::{Cursor, StateDir};

pub const NAME: &str = "podsec-inotify-check-kubeapi";

pub const DEFAULT_STATE_DIR: &str = "/var/lib/podsec/u7s/log/kubeapi";
pub const MAIL_SUBJECT: &str = "Detected requests to the kubernetes cluster with excess authority";

/// Commit at least this often while reading a large backlog (and at the end of every read).
const BATCH_EVENTS: usize = 65536;
const BATCH_BYTES: usize = 8 << 20;
/// How often a follower repeats the count of malformed lines when it has grown.
const MALFORMED_REPORT: Duration = Duration::from_secs(60);

/// Follow the Kubernetes audit log and record every request answered with code 400 or more in
/// /var/lib/podsec/u7s/log/kubeapi/forbidden.log and syslog; mail the record to root.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    group(ArgGroup::new("mode").required(true).args(["daemon", "mail", "once"])),
    after_help = "Each such request is logged as `Critical: [\"<time>\",\"<source IP>\",\"<message>\"]`; \
401 and 403 are marked as access denied.\n\
Every running kube-apiserver must audit as podsec set it up (its audit flags, the host's root-owned \
audit directory and policy in its view); each departure is a Critical line, and --once then exits 2.\n\
Environment:\n  MAILTO    address for -m (default root)\nMust be run as root."
)]
pub struct Args {
    /// Follow the audit log as a daemon (like tail -F)
    #[arg(short = 'd')]
    pub daemon: bool,
    /// Mail the accumulated forbidden.log and start a new one
    #[arg(short = 'm')]
    pub mail: bool,
    /// Process what the audit log holds now, then exit
    #[arg(long)]
    pub once: bool,
    /// The audit log to read
    #[arg(
        long,
        value_name = "path",
        default_value = podsec_common::audit::LOG_PATH
    )]
    pub audit_log: PathBuf,
    /// State directory (forbidden.log, position); for tests and benchmarks
    #[arg(long, value_name = "dir", hide = true, default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Tokens old unit files pass (`>/dev/null`, `2>&1`): ignored with a warning
    #[arg(hide = true)]
    pub stray: Vec<String>,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum KubeapiError {
    #[error(transparent)]
    NotRoot(#[from] NotRoot),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: refusing to follow a symbolic link")]
    Symlink { path: PathBuf },
    /// The host layer's other refusals (each names its path).
    #[error(transparent)]
    File(podsec_common::host::files::FileError),
    #[error("{path}: not a regular file")]
    NotRegular { path: PathBuf },
    #[error("{path}: the state directory must be an absolute path without '.' or '..'")]
    BadStateDir { path: PathBuf },
    #[error(
        "{path}: the state directory belongs to uid {uid} with mode {mode:o}; it must be root's and writable by root only"
    )]
    UnsafeStateDir { path: PathBuf, uid: u32, mode: u32 },
    #[error("{path}: another {NAME} is reading the audit log already")]
    Busy { path: PathBuf },
    #[error("{path}: unreadable position record (remove it to start over): {source}")]
    BadPosition {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("MAILTO '{0}' is not a mail address")]
    BadAddress(String),
    #[error("mailing {path} to {to} failed: {detail}")]
    Mail {
        path: PathBuf,
        to: String,
        detail: podsec_common::i18n::Message,
    },
}

impl Failure for KubeapiError {}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(args: Args) -> Result<ExitCode, KubeapiError> {
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
    if !args.mail {
        // A link, FIFO or directory named as the audit log is refused before any state is made.
        open_audit(&args.audit_log)?;
    }
    let mut state = StateDir::open_or_create(&args.state_dir)?;
    if args.mail {
        return mail(&mut state);
    }
    let _reader = state.reader_lock()?;
    let logger = Logger::new(NAME);
    let mut recorder = Recorder::new(&mut state, &logger);
    if args.daemon {
        install_stop_handler();
    }
    let tampered = recorder.setup.check(&logger);
    let result = follow(&args.audit_log, &mut recorder, args.daemon);
    recorder.report_malformed();
    match result {
        // A run's unit fails when the API server's audit was tampered with.
        Ok(code) if tampered && !args.daemon && code == ExitCode::SUCCESS => Ok(ExitCode::from(2)),
        result => result,
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: nix::libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGTERM/SIGINT end the follower after its current commit, so the malformed count is
/// reported; a harder kill loses nothing either (see [`state`]).
fn install_stop_handler() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_stop),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { sigaction(signal, &action) };
    }
}

/// Turns audit lines into records: forbidden.log lines in batches, syslog lines at once.
struct Recorder<'a> {
    state: &'a mut StateDir,
    logger: &'a Logger,
    batch: Vec<u8>,
    batch_events: usize,
    /// Where reading stands, when not yet committed.
    cursor: Option<Cursor>,
    malformed: u64,
    reported_malformed: u64,
    last_report: Instant,
    code_key: memchr::memmem::Finder<'static>,
    /// Events whose syslog line went out before a crash (see [`state`]): not sent again.
    journaled: std::collections::HashSet<String>,
    /// Whether the API server audits as podsec set it up.
    setup: audit_setup::Watch,
}

impl<'a> Recorder<'a> {
    fn new(state: &'a mut StateDir, logger: &'a Logger) -> Recorder<'a> {
        // Unreadable: lines may repeat after a crash, as they would without it.
        let journaled = state.journaled_ids().unwrap_or_default();
        Recorder {
            journaled,
            state,
            logger,
            batch: Vec::with_capacity(BATCH_BYTES),
            batch_events: 0,
            cursor: None,
            malformed: 0,
            reported_malformed: 0,
            last_report: Instant::now(),
            code_key: memchr::memmem::Finder::new(CODE_KEY),
            setup: audit_setup::Watch::default(),
        }
    }

    fn commit(&mut self) -> Result<(), KubeapiError> {
        let Some(cursor) = self.cursor.take() else {
            return Ok(());
        };
        let _lock = self.state.commit_lock()?;
        self.state.commit(&self.batch, cursor)?;
        self.batch.clear();
        self.batch_events = 0;
        Ok(())
    }

    fn report_malformed(&mut self) {
        if self.malformed != self.reported_malformed {
            eprintln!(
                "{NAME}: {}",
                tr!(
                    "{count} malformed audit log lines skipped so far",
                    count = self.malformed
                )
            );
            self.reported_malformed = self.malformed;
        }
        self.last_report = Instant::now();
    }
}

impl Sink for Recorder<'_> {
    fn line(&mut self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        if !may_have_failed(&self.code_key, line) {
            if !looks_like_object(line) {
                self.malformed += 1;
            }
            return;
        }
        let Ok(event) = Event::parse_summary(line) else {
            self.malformed += 1;
            return;
        };
        if !event.is_failed_request() {
            return;
        }
        let record = event.forbidden_record();
        self.batch.extend_from_slice(record.as_bytes());
        self.batch.push(b'\n');
        self.batch_events += 1;
        // The record stays first on the line: what nagwad and admins grep for.
        let id = event.audit_id.as_deref().filter(|id| !id.is_empty());
        if id.is_some_and(|id| self.journaled.contains(id)) {
            return;
        }
        let text = match event.code() {
            Some(code @ (401 | 403)) => format!("{record} access denied ({code})"),
            _ => record,
        };
        self.logger.log(Level::Critical, &text);
        if let Some(id) = id {
            self.state.note_journaled(id);
        }
    }

    fn chunk_done(&mut self, cursor: Cursor) -> Result<(), KubeapiError> {
        self.cursor = Some(cursor);
        if self.batch_events >= BATCH_EVENTS || self.batch.len() >= BATCH_BYTES {
            self.commit()?;
        }
        Ok(())
    }

    fn malformed(&mut self) {
        self.malformed += 1;
    }
}

pub const CODE_KEY: &[u8] = b"\"code\"";

/// Whether the line may hold a `code` of 400 or more: some `"code"` key followed by a number of
/// at least 400 or by anything that is not a number (the full parse decides those). Nine lines
/// in ten are successes; skipping their full parse is what makes the reader 20 times faster than jq.
/// (Go's encoder, which writes audit logs, never escapes the letters of a key.)
pub fn may_have_failed(finder: &memchr::memmem::Finder, line: &[u8]) -> bool {
    finder.find_iter(line).any(|at| {
        let rest = &line[at + CODE_KEY.len()..];
        let rest = trim_start(rest);
        let Some(rest) = rest.strip_prefix(b":") else {
            return false;
        };
        let rest = trim_start(rest);
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return true;
        }
        digits > 3 || (digits == 3 && rest[0] >= b'4')
    })
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[skip..]
}

/// The check for lines that cannot be selected: one JSON object, `{` to `}`. It catches what
/// breaks audit logs in practice (lines cut by a crash or a full disk, garbage) without paying
/// for a full parse of every success; selected lines are fully parsed.
fn looks_like_object(line: &[u8]) -> bool {
    let line = line.trim_ascii();
    line.first() == Some(&b'{') && line.last() == Some(&b'}')
}

/// Reads `audit_path` from the saved position: once to its end, or following it (`daemon`).
fn follow(
    audit_path: &Path,
    recorder: &mut Recorder,
    daemon: bool,
) -> Result<ExitCode, KubeapiError> {
    let position = {
        let _lock = recorder.state.commit_lock()?;
        let position = recorder.state.load_position()?;
        recorder.state.recover(&position)?;
        position
    };
    let mut saved = position.audit;
    let mut current: Option<Source> = None;
    let mut told_waiting = false;
    loop {
        if current.is_none() {
            match open_audit(audit_path)? {
                Some(file) => {
                    let mut source = Source::new(file, audit_path)?;
                    if let Some(cursor) = saved.take() {
                        catch_up(audit_path, &mut source, &cursor, recorder)?;
                    }
                    current = Some(source);
                }
                None if !daemon => {
                    eprintln!(
                        "{NAME}: {}",
                        tr!(
                            "{path}: no audit log (not a control-plane node?); nothing to do",
                            path = audit_path.display()
                        )
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                None => {
                    if !told_waiting {
                        eprintln!(
                            "{NAME}: {}",
                            tr!(
                                "{path}: waiting for the audit log to appear",
                                path = audit_path.display()
                            )
                        );
                        told_waiting = true;
                    }
                    if sleep_or_stop() {
                        return Ok(ExitCode::SUCCESS);
                    }
                    continue;
                }
            }
        }
        let source = current.as_mut().expect("opened above");
        if source.truncated()? {
            copytruncated(audit_path, source, recorder)?;
        }
        source.drain(recorder)?;
        recorder.commit()?;
        if !daemon {
            return Ok(ExitCode::SUCCESS);
        }
        // Renamed away and replaced: finish the old file, then go on with the new one.
        if let Some(file) = open_audit(audit_path)? {
            let ino = file
                .metadata()
                .map_err(|e| KubeapiError::Io {
                    path: audit_path.to_path_buf(),
                    source: e,
                })?
                .ino_dev();
            if ino != (source.ino, source.dev) {
                source.drain(recorder)?;
                recorder.commit()?;
                current = Some(Source::new(file, audit_path)?);
                continue;
            }
        }
        if recorder.last_report.elapsed() >= MALFORMED_REPORT {
            recorder.report_malformed();
        }
        recorder.setup.check(recorder.logger);
        if sleep_or_stop() {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

trait InoDev {
    fn ino_dev(&self) -> (u64, u64);
}

impl InoDev for std::fs::Metadata {
    fn ino_dev(&self) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        (self.ino(), self.dev())
    }
}

/// At start: continue where the last run stopped, reading first the rest of the file it
/// stopped in if that file has been rotated away since.
fn catch_up(
    audit_path: &Path,
    source: &mut Source,
    cursor: &Cursor,
    recorder: &mut Recorder,
) -> Result<(), KubeapiError> {
    if (source.dev, source.ino) == (cursor.dev, cursor.ino) && source.holds(cursor)? {
        source.resume(cursor);
        return Ok(());
    }
    match find_holder(audit_path, cursor, Some(source.ino))? {
        Some(mut old) => {
            old.resume(cursor);
            old.drain(recorder)?;
            recorder.commit()?;
        }
        None => eprintln!(
            "{NAME}: {}",
            tr!(
                "{path}: the file last read (offset {offset}) was rotated away and is gone; reading the current audit log from its start",
                path = audit_path.display(),
                offset = cursor.offset
            )
        ),
    }
    Ok(())
}

/// The live file was truncated in place: read the rest from the copy, then start over.
fn copytruncated(
    audit_path: &Path,
    source: &mut Source,
    recorder: &mut Recorder,
) -> Result<(), KubeapiError> {
    let cursor = source.cursor();
    match find_holder(audit_path, &cursor, Some(source.ino))? {
        Some(mut copy) => {
            copy.resume(&cursor);
            copy.drain(recorder)?;
            recorder.commit()?;
        }
        None => eprintln!(
            "{NAME}: {}",
            tr!(
                "{path}: truncated at offset {offset} and no copy found; events written just before the truncation may be missing",
                path = audit_path.display(),
                offset = cursor.offset
            )
        ),
    }
    source.restart();
    Ok(())
}

/// Sleeps one poll interval; true when asked to stop.
fn sleep_or_stop() -> bool {
    if STOP.load(Ordering::SeqCst) {
        return true;
    }
    std::thread::sleep(follow::POLL);
    STOP.load(Ordering::SeqCst)
}

/// `-m`: move forbidden.log aside (a follower writes to a fresh one from its next commit on),
/// then mail every file moved aside and not mailed yet, oldest first. A failed mail keeps its
/// file for the next run.
fn mail(state: &mut StateDir) -> Result<ExitCode, KubeapiError> {
    let to = mail_address(std::env::var("MAILTO").ok())?;
    {
        let _lock = state.commit_lock()?;
        state.rotate_forbidden()?;
    }
    for (_, name) in state.rotated()? {
        let body = state.read_file(&name)?;
        if !body.is_empty() {
            send_mail(&to, &body, &state.path().join(&name))?;
        }
        state.remove(&name)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `$MAILTO` when set and non-empty, else root; checked as [`crate::mail::check_address`] does.
fn mail_address(value: Option<String>) -> Result<String, KubeapiError> {
    match value {
        None => Ok("root".to_string()),
        Some(v) if v.is_empty() => Ok("root".to_string()),
        Some(v) => match crate::mail::check_address(&v) {
            Ok(()) => Ok(v),
            Err(_) => Err(KubeapiError::BadAddress(v)),
        },
    }
}

fn send_mail(to: &str, body: &[u8], path: &Path) -> Result<(), KubeapiError> {
    // forbidden.log holds jq-style JSON lines: UTF-8 unless the apiserver wrote otherwise.
    crate::mail::send(to, MAIL_SUBJECT, &String::from_utf8_lossy(body)).map_err(|e| {
        KubeapiError::Mail {
            path: path.to_path_buf(),
            to: to.to_string(),
            detail: match e {
                crate::mail::MailError::Failed { detail, .. } => detail,
                other => podsec_common::i18n::Message::of(&other),
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::io::Write;

    #[test]
    fn exactly_one_mode_and_stray_tokens_are_accepted() {
        let args = Args::try_parse_from([NAME, "-m", ">/dev/null", "2>&1"]).unwrap();
        assert!(args.mail);
        assert_eq!(args.stray, [">/dev/null", "2>&1"]);
        assert!(Args::try_parse_from([NAME]).is_err());
        assert!(Args::try_parse_from([NAME, "-d", "-m"]).is_err());
        let args = Args::try_parse_from([NAME, "--once", "--audit-log", "/x"]).unwrap();
        assert_eq!(args.audit_log, Path::new("/x"));
        assert_eq!(args.state_dir, Path::new(DEFAULT_STATE_DIR));
    }

    #[test]
    fn mail_address_defaults_to_root_and_refuses_options() {
        assert_eq!(mail_address(None).unwrap(), "root");
        assert_eq!(mail_address(Some(String::new())).unwrap(), "root");
        assert_eq!(
            mail_address(Some("sec@example.org".into())).unwrap(),
            "sec@example.org"
        );
        for bad in ["-oQ/tmp", "a b", "a\nBcc: x"] {
            assert!(matches!(
                mail_address(Some(bad.into())),
                Err(KubeapiError::BadAddress(_))
            ));
        }
    }

    #[test]
    fn prefilter_passes_every_possible_failure() {
        let finder = memchr::memmem::Finder::new(CODE_KEY);
        let may = |line: &str| may_have_failed(&finder, line.as_bytes());
        assert!(may(r#"{"responseStatus":{"code":403}}"#));
        assert!(may(r#"{"responseStatus":{"code" : 500}}"#));
        assert!(may(r#"{"responseStatus":{"code":1000}}"#));
        assert!(may(r#"{"responseStatus":{"code":"403"}}"#));
        assert!(may(r#"{"a":{"code":200},"responseStatus":{"code":409}}"#));
        assert!(!may(r#"{"responseStatus":{"code":200}}"#));
        assert!(!may(r#"{"responseStatus":{"code":399}}"#));
        assert!(!may(r#"{"responseStatus":{"code":42}}"#));
        assert!(!may(r#"{"stage":"RequestReceived"}"#));
        assert!(looks_like_object(b" {\"a\":1} "));
        assert!(!looks_like_object(br#"{"a":1"#));
    }

    /// The prefilter may only skip lines the full parse would not select: every line here is
    /// either a real failure (and must pass) or not one (and may go either way), checked against
    /// the full parse the reader makes of the lines it passes.
    #[test]
    fn prefilter_never_drops_a_failure_the_parse_selects() {
        let finder = memchr::memmem::Finder::new(CODE_KEY);
        let failures = [
            // "code" inside string values, before and after the real one, with escaped quotes
            r#"{"requestURI":"/api?\"code\":200","responseStatus":{"code":403}}"#,
            r#"{"userAgent":"x \"code\": 200 y","responseStatus":{"code":401},"annotations":{"a":"\"code\":100"}}"#,
            r#"{"responseStatus":{"code":404,"message":"the \"code\":200 of it"}}"#,
            r#"{"requestURI":"/code/\"code\"","responseStatus":{"metadata":{},"code":409}}"#,
            r#"{"annotations":{"k":"{\"code\":200}"},"responseStatus":{"code":500}}"#,
            // other "code" keys (request or response objects) next to the real one
            r#"{"requestObject":{"code":200},"responseStatus":{"code":403}}"#,
            r#"{"responseStatus":{"code":403},"responseObject":{"code":200}}"#,
            r#"{"responseStatus":{"details":{"causes":[{"code":1}]},"code":422}}"#,
            // whitespace Go never writes but JSON allows
            r#"{"responseStatus":{"code": 403}}"#,
            "{\"responseStatus\":{\"code\"\t:\t403}}",
            r#"{ "responseStatus" : { "code" :  404 } }"#,
            r#"{"responseStatus":{"code":400}}"#,
            r#"{"responseStatus":{"code":599}}"#,
            r#"{"responseStatus":{"code":1000}}"#,
            r#"{"responseStatus":{"code":4000}}"#,
        ];
        for line in failures {
            let parsed = Event::parse_summary(line.as_bytes()).unwrap();
            assert!(parsed.is_failed_request(), "not a failure: {line}");
            assert!(may_have_failed(&finder, line.as_bytes()), "dropped: {line}");
        }
        let skippable = [
            r#"{"responseStatus":{"code":200}}"#,
            r#"{"responseStatus":{"code":399}}"#,
            r#"{"responseStatus":{"code":42}}"#,
            r#"{"responseStatus":{"code":0}}"#,
            // no responseStatus at all (stage RequestReceived), whatever the strings say
            r#"{"stage":"RequestReceived"}"#,
            r#"{"stage":"RequestReceived","requestURI":"/x?code=403"}"#,
            r#"{"stage":"RequestReceived","userAgent":"\"code\":403"}"#,
            r#"{"requestObject":{"code":403},"responseStatus":{"code":200}}"#,
        ];
        for line in skippable {
            let parsed = Event::parse_summary(line.as_bytes()).unwrap();
            assert!(!parsed.is_failed_request(), "a failure: {line}");
        }
        // Of those, what the prefilter must skip to be worth anything: every success line of
        // a real log (no other "code" key) and lines without a code.
        for line in &skippable[..7] {
            assert!(!may_have_failed(&finder, line.as_bytes()), "passed: {line}");
        }
    }

    fn event(code: u32, id: usize) -> String {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"id-{id}","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{{"username":"u{id}"}},"sourceIPs":["10.0.0.{id}"],"responseStatus":{{"metadata":{{}},"code":{code},"message":"m{id}"}},"requestReceivedTimestamp":"2024-05-01T10:00:{id:02}.000000Z"}}"#
        )
    }

    fn run_once(audit: &Path, state: &Path) -> (Vec<String>, u64) {
        let mut dir = StateDir::open_or_create(state).unwrap();
        let logger = Logger::with_sink(NAME, podsec_common::log::Sink::Stderr);
        let mut recorder = Recorder::new(&mut dir, &logger);
        follow(audit, &mut recorder, false).unwrap();
        let malformed = recorder.malformed;
        let text = std::fs::read_to_string(state.join("forbidden.log")).unwrap_or_default();
        (text.lines().map(str::to_string).collect(), malformed)
    }

    /// A logger whose lines land on a datagram socket of the test (the syslog wire format).
    fn captured(dir: &Path, name: &str) -> (std::os::unix::net::UnixDatagram, Logger) {
        let path = dir.join(name);
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        (
            socket,
            Logger::with_sink(NAME, podsec_common::log::Sink::Syslog(path)),
        )
    }

    fn received(socket: &std::os::unix::net::UnixDatagram) -> Vec<String> {
        let mut lines = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = socket.recv(&mut buffer) {
            lines.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
        lines
    }

    #[test]
    fn lines_sent_before_a_crash_are_recorded_but_not_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.log");
        let state = dir.path().join("state");
        std::fs::write(&audit, format!("{}\n{}\n", event(403, 1), event(404, 2))).unwrap();
        // kill -9 after both lines were sent, before the commit
        {
            let mut first = StateDir::open_or_create(&state).unwrap();
            let (socket, logger) = captured(dir.path(), "log1");
            let mut recorder = Recorder::new(&mut first, &logger);
            for line in std::fs::read_to_string(&audit).unwrap().lines() {
                recorder.line(line.as_bytes());
            }
            assert_eq!(received(&socket).len(), 2);
        }
        // the next run records both once and sends neither again; its commit empties the note
        let mut second = StateDir::open_or_create(&state).unwrap();
        let (socket, logger) = captured(dir.path(), "log2");
        let mut recorder = Recorder::new(&mut second, &logger);
        follow(&audit, &mut recorder, false).unwrap();
        assert_eq!(received(&socket), Vec::<String>::new(), "sent again");
        let text = std::fs::read_to_string(state.join("forbidden.log")).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        let ids = StateDir::open_or_create(&state)
            .unwrap()
            .journaled_ids()
            .unwrap();
        assert!(ids.is_empty(), "{ids:?}");
        // a new event after that is sent as usual
        std::fs::write(
            &audit,
            format!("{}\n{}\n{}\n", event(403, 1), event(404, 2), event(403, 3)),
        )
        .unwrap();
        let mut third = StateDir::open_or_create(&state).unwrap();
        let (socket, logger) = captured(dir.path(), "log3");
        let mut recorder = Recorder::new(&mut third, &logger);
        follow(&audit, &mut recorder, false).unwrap();
        let lines = received(&socket);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("m3"), "{lines:?}");
    }

    #[test]
    fn once_records_failed_requests_exactly_once_across_runs_and_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.log");
        let state = dir.path().join("state");
        let mut text = String::new();
        text.push_str(&event(200, 1));
        text.push('\n');
        text.push_str(&event(403, 2));
        text.push_str("\n{broken\n\n");
        text.push_str(&event(404, 3));
        text.push('\n');
        std::fs::write(&audit, &text).unwrap();
        let (lines, malformed) = run_once(&audit, &state);
        assert_eq!(
            lines,
            [
                r#"["2024-05-01T10:00:02.000000Z","10.0.0.2","m2"]"#,
                r#"["2024-05-01T10:00:03.000000Z","10.0.0.3","m3"]"#
            ]
        );
        assert_eq!(malformed, 1);
        // nothing new: nothing repeated
        assert_eq!(run_once(&audit, &state).0.len(), 2);
        // appended, then renamed away and a new file started, all while not running
        let mut more = event(401, 4);
        more.push('\n');
        std::fs::OpenOptions::new()
            .append(true)
            .open(&audit)
            .unwrap()
            .write_all(more.as_bytes())
            .unwrap();
        std::fs::rename(&audit, dir.path().join("audit-2024-05-01T10-01-00.000.log")).unwrap();
        std::fs::write(&audit, format!("{}\n", event(500, 5))).unwrap();
        let (lines, _) = run_once(&audit, &state);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(
            lines[2].contains("m4") && lines[3].contains("m5"),
            "{lines:?}"
        );
        // copytruncate while not running, the new file refilled past the old offset
        std::fs::OpenOptions::new()
            .append(true)
            .open(&audit)
            .unwrap()
            .write_all(format!("{}\n", event(409, 6)).as_bytes())
            .unwrap();
        std::fs::copy(&audit, dir.path().join("audit.log.1")).unwrap();
        std::fs::write(
            &audit,
            format!("{}\n{}\n{}\n", event(200, 7), event(200, 8), event(418, 9)),
        )
        .unwrap();
        let (lines, _) = run_once(&audit, &state);
        let ids: Vec<&str> = lines
            .iter()
            .map(|l| l.rsplit("\"m").next().unwrap())
            .collect();
        assert_eq!(ids, ["2\"]", "3\"]", "4\"]", "5\"]", "6\"]", "9\"]"]);
    }
}
