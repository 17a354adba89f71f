//! Image scans on the trivy server, shared by check-vuln and build-invulnerable-image.
//!
//! An image is exported with `podman save` into a private temporary directory and trivy reads
//! that archive (`--input`) as a client of `http://$U7S_TRIVY_SERVER:4954`; both run with the
//! rights of the image's owner (root scanning a user's images drops to that user: no login
//! shell, no machinectl, no podman socket), with the temporary directory as cache and TMPDIR,
//! so nothing stays behind. Trivy's `--format json` report is parsed with serde, and the outcome
//! follows upstream's trivyCheckImage: 0 clean, 3 trivy failed, 4 HIGH, 5 CRITICAL.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use nix::unistd::{Gid, Uid};
use podsec_common::host::beneath::Tree;
use podsec_common::host::files::{self, SafeDir};
use podsec_common::host::process::Process;
use podsec_common::log::Level;
use serde::Deserialize;

use crate::check_containers::escape;
use crate::storage::Owner;

pub const PORT: u16 = 4954;
pub const DEFAULT_SERVER: &str = "trivy.local";
pub const SERVER_ENV: &str = "U7S_TRIVY_SERVER";
/// PATH of the programs run as a user.
const USER_PATH: &str = podsec_common::host::programs::DEFAULT_PATH;

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum TrivyError {
    #[error("{SERVER_ENV}='{0}' is not a host name or address")]
    BadServer(String),
    #[error("{program} not found in PATH")]
    NotFound { program: &'static str },
    #[error("cannot create a temporary directory in {dir}: {source}")]
    Temp {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// `http://<host>:4954` from `U7S_TRIVY_SERVER` (default trivy.local).
pub fn server_url(value: Option<&str>) -> Result<String, TrivyError> {
    let host = match value {
        None | Some("") => DEFAULT_SERVER,
        Some(host) => host,
    };
    let valid = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        && !host.starts_with('-')
        && !host.starts_with('.');
    if !valid {
        return Err(TrivyError::BadServer(host.to_string()));
    }
    Ok(format!("http://{host}:{PORT}"))
}

/// Trivy's severities, lowest first; a word trivy may add later counts as UNKNOWN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(from = "String")]
pub enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl From<String> for Severity {
    fn from(word: String) -> Severity {
        match word.as_str() {
            "LOW" => Severity::Low,
            "MEDIUM" => Severity::Medium,
            "HIGH" => Severity::High,
            "CRITICAL" => Severity::Critical,
            _ => Severity::Unknown,
        }
    }
}

impl Severity {
    pub fn word(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// The parts of trivy's JSON report (`SchemaVersion` 2) that matter here.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Report {
    #[serde(default)]
    pub schema_version: u32,
    #[serde(default)]
    pub results: Option<Vec<ScanResult>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScanResult {
    #[serde(default)]
    pub vulnerabilities: Option<Vec<Vulnerability>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Vulnerability {
    #[serde(rename = "VulnerabilityID")]
    pub id: String,
    #[serde(default)]
    pub pkg_name: String,
    #[serde(default)]
    pub installed_version: String,
    #[serde(default)]
    pub fixed_version: String,
    pub severity: Severity,
    #[serde(default)]
    pub title: String,
}

impl Report {
    pub fn parse(json: &[u8]) -> Result<Report, String> {
        let report: Report = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        if report.schema_version != 2 {
            return Err(format!(
                "unsupported trivy report schema {} (2 expected)",
                report.schema_version
            ));
        }
        Ok(report)
    }

    /// Every finding, gravest first.
    pub fn vulnerabilities(&self) -> Vec<&Vulnerability> {
        let mut all: Vec<&Vulnerability> = self
            .results
            .iter()
            .flatten()
            .flat_map(|r| r.vulnerabilities.iter().flatten())
            .collect();
        all.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(&b.id)));
        all
    }

    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for v in self.vulnerabilities() {
            match v.severity {
                Severity::Critical => counts.critical += 1,
                Severity::High => counts.high += 1,
                _ => counts.lower += 1,
            }
        }
        counts
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub critical: usize,
    pub high: usize,
    pub lower: usize,
}

/// What a scan found, as upstream grades it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Clean,
    /// Only MEDIUM, LOW or UNKNOWN findings.
    BelowHigh(Counts),
    High(Counts),
    Critical(Counts),
    /// trivy (or podman save) failed: the image is not known to be safe.
    Failed(String),
}

impl Outcome {
    pub fn of(report: &Report) -> Outcome {
        let counts = report.counts();
        if counts.critical > 0 {
            Outcome::Critical(counts)
        } else if counts.high > 0 {
            Outcome::High(counts)
        } else if counts.lower > 0 {
            Outcome::BelowHigh(counts)
        } else {
            Outcome::Clean
        }
    }

    /// trivyCheckImage's return code.
    pub fn code(&self) -> u8 {
        match self {
            Outcome::Clean | Outcome::BelowHigh(_) => 0,
            Outcome::Failed(_) => 3,
            Outcome::High(_) => 4,
            Outcome::Critical(_) => 5,
        }
    }

    /// The level of the syslog line (none for a clean image). Upstream sent Fatal at info and
    /// the "Low" case at crit; these are the contract's priorities.
    pub fn level(&self) -> Option<Level> {
        match self {
            Outcome::Clean => None,
            Outcome::BelowHigh(_) => Some(Level::Low),
            Outcome::High(_) => Some(Level::High),
            Outcome::Critical(_) => Some(Level::Critical),
            Outcome::Failed(_) => Some(Level::Fatal),
        }
    }

    /// Upstream's sentence (its stray quote removed), with the counts.
    pub fn message(&self, image: &str, user: &str) -> String {
        let image = escape(image.as_bytes());
        let user = escape(user.as_bytes());
        let counts = |c: &Counts| {
            format!(
                " (CRITICAL: {}, HIGH: {}, lower: {})",
                c.critical, c.high, c.lower
            )
        };
        match self {
            Outcome::Clean => {
                format!("In the {image} image of the user {user} no vulnerabilities found.")
            }
            Outcome::Critical(c) if c.high > 0 => format!(
                "In the image {image} of the user {user} critical and high vulnerabilities were discovered.{}",
                counts(c)
            ),
            Outcome::Critical(c) => format!(
                "In the image {image} of the user {user} critical vulnerabilities have been discovered.{}",
                counts(c)
            ),
            Outcome::High(c) => format!(
                "In the image {image} of the user {user} high vulnerabilities found.{}",
                counts(c)
            ),
            Outcome::BelowHigh(c) => format!(
                "Vulnerabilities were found in the image {image} of user {user}, but none were high or critical.{}",
                counts(c)
            ),
            Outcome::Failed(detail) => format!(
                "The trivy vulnerability analysis command failed for the image {image} of the user {user}: {}",
                escape(detail.as_bytes())
            ),
        }
    }
}

/// The findings as text: one line each, gravest first (the mail body and the report on stdout).
pub fn findings_text(report: &Report) -> String {
    let mut text = String::new();
    for v in report.vulnerabilities() {
        let fixed = if v.fixed_version.is_empty() {
            "no fix yet".to_string()
        } else {
            format!("fixed in {}", escape(v.fixed_version.as_bytes()))
        };
        text.push_str(&format!(
            "{} {} {} {} ({fixed}): {}\n",
            v.severity.word(),
            escape(v.id.as_bytes()),
            escape(v.pkg_name.as_bytes()),
            escape(v.installed_version.as_bytes()),
            escape(v.title.as_bytes())
        ));
    }
    text
}

/// Finds `program` in PATH (resolved once, by the caller, before any privilege change).
pub fn find_program(program: &'static str) -> Result<PathBuf, TrivyError> {
    podsec_common::host::programs::find_program(program).ok_or(TrivyError::NotFound { program })
}

/// Runs podman and trivy for scans.
#[derive(Debug, Clone)]
pub struct Scanner {
    pub podman: PathBuf,
    pub trivy: PathBuf,
    pub server: String,
    /// Where the private temporary directories go (TMPDIR, else /var/tmp: archives are big).
    pub temp_base: PathBuf,
}

impl Scanner {
    pub fn from_env() -> Result<Scanner, TrivyError> {
        Ok(Scanner {
            podman: find_program("podman")?,
            trivy: find_program("trivy")?,
            server: server_url(std::env::var(SERVER_ENV).ok().as_deref())?,
            temp_base: std::env::var_os("TMPDIR")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .unwrap_or_else(|| PathBuf::from("/var/tmp")),
        })
    }

    /// Scans `image` (a name or an ID) of `owner` (`None`: the caller), in `store` (a graphroot
    /// podman does not use by default, passed as `--root`; `None`: podman's default store). Problems with podman or trivy are an
    /// [`Outcome::Failed`] with their words; only a temporary directory that cannot be made is
    /// an error.
    pub fn scan(
        &self,
        image: &str,
        owner: Option<&Owner>,
        store: Option<&Path>,
    ) -> Result<(Outcome, Option<Report>), TrivyError> {
        let temp = tempfile::Builder::new()
            .prefix("podsec-vuln.")
            .tempdir_in(&self.temp_base)
            .map_err(|source| TrivyError::Temp {
                dir: self.temp_base.clone(),
                source,
            })?;
        let as_user = owner.map(|o| RunAs::new(o, temp.path()));
        let private_runtime = as_user.as_ref().is_some_and(|r| r.private_runtime);
        // A problem with this image's directory fails this scan, not the whole run.
        let result = match prepare(temp.path(), owner, private_runtime) {
            Ok(work) => {
                let archive = work.join("image.tar");
                self.save_and_scan(image, store, &archive, &work, as_user.as_ref())
            }
            Err(e) => (Outcome::Failed(format!("the scan directory: {e}")), None),
        };
        if let Some(run_as) = &as_user {
            run_as.stop_leftovers();
        }
        drop(temp);
        Ok(result)
    }

    fn save_and_scan(
        &self,
        image: &str,
        store: Option<&Path>,
        archive: &Path,
        work: &Path,
        as_user: Option<&RunAs>,
    ) -> (Outcome, Option<Report>) {
        let mut save = command(&self.podman, as_user, work);
        if let Some(graphroot) = store {
            save.arg("--root")
                .arg(graphroot)
                .arg("--runroot")
                .arg(work.join("runroot"));
        }
        save.args(["save", "-q", "--format", "docker-archive", "-o"])
            .arg(archive)
            .arg("--")
            .arg(image);
        match run(save) {
            Ok(output) if output.status.success() => {}
            Ok(output) => {
                return (
                    Outcome::Failed(format!("podman save: {}", last_line(&output.stderr))),
                    None,
                );
            }
            Err(e) => return (Outcome::Failed(format!("podman save: {e}")), None),
        }
        let mut trivy = command(&self.trivy, as_user, work);
        trivy
            .args(["image", "--server", &self.server, "--input"])
            .arg(archive)
            .args(["--format", "json", "--scanners", "vuln", "--exit-code", "0"])
            .args(["--quiet", "--skip-version-check", "--disable-telemetry"])
            .arg("--cache-dir")
            .arg(work.join("cache"));
        let output = match run(trivy) {
            Ok(output) => output,
            Err(e) => return (Outcome::Failed(format!("trivy: {e}")), None),
        };
        if !output.status.success() {
            return (
                Outcome::Failed(format!(
                    "trivy {}: {}",
                    output.status,
                    last_line(&output.stderr)
                )),
                None,
            );
        }
        match Report::parse(&output.stdout) {
            Ok(report) => (Outcome::of(&report), Some(report)),
            Err(e) => (Outcome::Failed(format!("trivy's JSON report: {e}")), None),
        }
    }
}

fn run(mut command: Command) -> std::io::Result<Output> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
}

/// trivy's and podman's errors end with the line that says what went wrong.
fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no message)")
        .trim()
        .to_string()
}

fn command(program: &Path, as_user: Option<&RunAs>, work: &Path) -> Command {
    // Outside the host seam: trivy's scan is the work itself, run as the caller.
    let mut command = Command::new(program);
    command.env("TMPDIR", work).current_dir(work);
    if let Some(run_as) = as_user {
        run_as.apply(&mut command);
    }
    command
}

/// Dropping to an image owner's account for podman and trivy: its uid, gid and groups, a
/// minimal environment, its runtime directory when it has one (else a private one, removed with
/// the scan along with any process podman left there).
struct RunAs {
    owner: Owner,
    groups: Vec<Gid>,
    runtime: PathBuf,
    private_runtime: bool,
}

/// The directories of one scan below `top` (root's fresh temporary directory): `top` stays
/// root's (0711), `work` (podman's and trivy's TMPDIR, the archive, trivy's cache) and, when
/// asked, `runtime` (a private XDG_RUNTIME_DIR) are created in it exclusively and given to the
/// owner through their descriptors. So root never chowns by a path, and never works in a
/// directory the user can write: the user cannot put a link where root looks. Returns `work`.
fn prepare(
    top: &Path,
    owner: Option<&Owner>,
    private_runtime: bool,
) -> Result<PathBuf, files::FileError> {
    let top = SafeDir::open_trusted(top)?;
    top.set_mode_owner(0o711, files::Owner::default())?;
    let user = owner
        .map(|o| files::Owner::new(o.uid, o.gid))
        .unwrap_or_default();
    let work = top.create_dir_new("work", 0o700, user)?;
    if private_runtime {
        top.create_dir_new("runtime", 0o700, user)?;
    }
    Ok(work.path().to_path_buf())
}

impl RunAs {
    fn new(owner: &Owner, top: &Path) -> RunAs {
        let groups = CString::new(owner.name.as_str())
            .ok()
            .and_then(|name| nix::unistd::getgrouplist(&name, Gid::from_raw(owner.gid)).ok())
            .unwrap_or_else(|| vec![Gid::from_raw(owner.gid)]);
        let session = PathBuf::from(format!("/run/user/{}", owner.uid));
        let owned = std::fs::symlink_metadata(&session).is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.is_dir() && m.uid() == owner.uid
        });
        let (runtime, private_runtime) = if owned {
            (session, false)
        } else {
            (top.join("runtime"), true)
        };
        RunAs {
            owner: owner.clone(),
            groups,
            runtime,
            private_runtime,
        }
    }

    fn apply(&self, command: &mut Command) {
        command
            .env_clear()
            .env("HOME", &self.owner.home)
            .env("USER", &self.owner.name)
            .env("LOGNAME", &self.owner.name)
            .env("PATH", USER_PATH)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("LANG", "C.UTF-8");
        let groups = self.groups.clone();
        let uid = Uid::from_raw(self.owner.uid);
        let gid = Gid::from_raw(self.owner.gid);
        // SAFETY: between fork and exec only async-signal-safe system calls are made.
        unsafe {
            command.pre_exec(move || {
                nix::unistd::setgroups(&groups)?;
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(uid)?;
                Ok(())
            });
        }
    }

    /// A rootless podman started in a private runtime directory may leave its pause process.
    fn stop_leftovers(&self) {
        if !self.private_runtime {
            return;
        }
        // The runtime directory is the user's: its pause.pid is read without leaving it,
        // without blocking on a FIFO, and bounded.
        let text = Tree::open(&self.runtime)
            .ok()
            .flatten()
            .and_then(|tree| tree.read_string(Path::new(PAUSE_PID), 32).ok().flatten());
        let Some(pid) = text.and_then(|t| t.trim().parse::<i32>().ok()) else {
            return;
        };
        // The pidfd first, then the owner: the signal reaches the process that was checked.
        if let Ok(Some(process)) = Process::open(pid)
            && process.uid().ok() == Some(self.owner.uid)
        {
            let _ = process.signal(nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Where rootless podman records its pause process, below the runtime directory.
const PAUSE_PID: &str = "libpod/tmp/pause.pid";

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDED: &str = include_str!("trivy/critical-high.json");

    /// The recorded report (a real trivy 0.76 server with the tests' database) with its
    /// severities replaced.
    fn with_severities(severities: &[&str]) -> Report {
        let mut value: serde_json::Value = serde_json::from_str(RECORDED).unwrap();
        let vulns = value["Results"][0]["Vulnerabilities"]
            .as_array_mut()
            .unwrap();
        vulns.truncate(severities.len());
        for (v, s) in vulns.iter_mut().zip(severities) {
            v["Severity"] = (*s).into();
        }
        Report::parse(value.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn recorded_report_gives_critical_and_its_findings() {
        let report = Report::parse(RECORDED.as_bytes()).unwrap();
        assert_eq!(
            report.counts(),
            Counts {
                critical: 1,
                high: 1,
                lower: 0
            }
        );
        let outcome = Outcome::of(&report);
        assert_eq!(outcome.code(), 5);
        assert_eq!(outcome.level(), Some(Level::Critical));
        assert_eq!(
            outcome.message("localhost/vuln:latest", "root"),
            "In the image localhost/vuln:latest of the user root critical and high vulnerabilities were discovered. (CRITICAL: 1, HIGH: 1, lower: 0)"
        );
        assert_eq!(
            findings_text(&report),
            "CRITICAL CVE-2099-0001 podsec-demo-crit 1.0.0-r0 (fixed in 1.0.1-r0): demo critical\n\
             HIGH CVE-2099-0002 podsec-demo-high 2.0.0-r0 (fixed in 2.0.1-r0): demo high\n"
        );
    }

    #[test]
    fn every_grade_of_upstream_with_its_level() {
        let high = Outcome::of(&with_severities(&["HIGH", "MEDIUM"]));
        assert_eq!((high.code(), high.level()), (4, Some(Level::High)));
        assert!(
            high.message("i", "u")
                .starts_with("In the image i of the user u high vulnerabilities found.")
        );
        let critical = Outcome::of(&with_severities(&["CRITICAL", "LOW"]));
        assert_eq!(critical.code(), 5);
        assert!(critical.message("i", "u").starts_with(
            "In the image i of the user u critical vulnerabilities have been discovered."
        ));
        let lower = Outcome::of(&with_severities(&["MEDIUM", "WHATEVER"]));
        assert_eq!(lower.code(), 0);
        assert_eq!(lower.level(), Some(Level::Low), "not Low at crit");
        assert_eq!(Level::Low.priority(), 5);
        assert!(lower.message("i", "u").starts_with(
            "Vulnerabilities were found in the image i of user u, but none were high or critical."
        ));
        let clean = Outcome::of(&with_severities(&[]));
        assert_eq!((clean.code(), clean.level()), (0, None));
        assert_eq!(
            clean.message("i", "u"),
            "In the i image of the user u no vulnerabilities found."
        );
        // a clean report may have no Results, or null Vulnerabilities
        let bare = Report::parse(br#"{"SchemaVersion":2,"ArtifactName":"x"}"#).unwrap();
        assert_eq!(Outcome::of(&bare), Outcome::Clean);
        let null = Report::parse(
            br#"{"SchemaVersion":2,"Results":[{"Target":"t","Vulnerabilities":null}]}"#,
        )
        .unwrap();
        assert_eq!(Outcome::of(&null), Outcome::Clean);
        let failed = Outcome::Failed("connection refused".into());
        assert_eq!((failed.code(), failed.level()), (3, Some(Level::Fatal)));
        assert_eq!(Level::Fatal.priority(), 1, "Fatal at alert, not info");
        assert!(
            Report::parse(b"Total: 3 (HIGH: 1)").is_err(),
            "no table scraping"
        );
        assert!(Report::parse(br#"{"SchemaVersion":1}"#).is_err());
    }

    fn nobody(home: &Path) -> Owner {
        Owner {
            name: "nobody".into(),
            uid: 65534,
            gid: 65534,
            home: home.to_path_buf(),
        }
    }

    #[test]
    fn the_scan_directory_stays_roots_and_the_users_parts_are_given_by_descriptor() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        assert!(nix::unistd::geteuid().is_root(), "needs root (chown)");
        let temp = tempfile::tempdir().unwrap();
        let owner = nobody(temp.path());
        let work = prepare(temp.path(), Some(&owner), true).unwrap();
        let stat = |path: &Path| {
            let m = std::fs::symlink_metadata(path).unwrap();
            (m.uid(), m.permissions().mode() & 0o7777, m.is_dir())
        };
        // The directory holding the user's parts is root's and not writable by the user, so
        // the user cannot swap `runtime` or `work` for a link to have root chown something else.
        assert_eq!(stat(temp.path()), (0, 0o711, true));
        assert_eq!(work, temp.path().join("work"));
        assert_eq!(stat(&work), (65534, 0o700, true));
        assert_eq!(stat(&temp.path().join("runtime")), (65534, 0o700, true));
        // Made exclusively: a second preparation of the same directory fails (it never adopts
        // what is already there).
        assert!(prepare(temp.path(), Some(&owner), false).is_err());
    }

    #[test]
    fn a_fifo_as_pause_pid_does_not_block_and_foreign_processes_are_left_alone() {
        let temp = tempfile::tempdir().unwrap();
        let owner = nobody(temp.path());
        let run_as = RunAs::new(&owner, temp.path());
        assert!(run_as.private_runtime);
        let tmp = temp.path().join("runtime/libpod/tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        nix::unistd::mkfifo(
            &tmp.join("pause.pid"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            run_as.stop_leftovers();
            let _ = done.send(());
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("blocked on a FIFO named pause.pid");
        // A pause.pid naming a process of another account (here: the test's own child).
        std::fs::remove_file(tmp.join("pause.pid")).unwrap();
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(tmp.join("pause.pid"), child.id().to_string()).unwrap();
        RunAs::new(&owner, temp.path()).stop_leftovers();
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            child.try_wait().unwrap().is_none(),
            "killed another account's process"
        );
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn server_from_the_environment() {
        assert_eq!(server_url(None).unwrap(), "http://trivy.local:4954");
        assert_eq!(server_url(Some("")).unwrap(), "http://trivy.local:4954");
        assert_eq!(
            server_url(Some("127.0.0.1")).unwrap(),
            "http://127.0.0.1:4954"
        );
        for bad in ["a b", "-x", "h/evil", "h?q", "h@x"] {
            assert!(server_url(Some(bad)).is_err(), "{bad}");
        }
    }
}
