//! Whether the running API server audits the way podsec set it up.
//!
//! No file root owns can force that: u7s-admin runs the kubelet, which starts kube-apiserver
//! from the manifests in u7s-admin's `/etc/kubernetes`, and u7s-admin could start an API server
//! of its own. What root can do is look at what runs. Every kube-apiserver process must have
//! podsec's audit flags and see, through its mounts, the very audit directory and policy file
//! that are root's on the host; the host's directory must be root's (sticky, so the API server
//! may write its log but not replace the policy) and the policy root's, writable by root only.
//! Each departure is one finding, which check-kubeapi logs as Critical (docs/security.md says
//! what this cannot see).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use podsec_common::audit::{AUDIT_DIR, LOG_PATH, POLICY_PATH};
use podsec_common::host::beneath::{Kind, Tree};
use podsec_common::log::{Level, Logger};

/// How often a following check-kubeapi looks again.
const CHECK_EVERY: Duration = Duration::from_secs(60);

/// The process name (`comm`) of the API server.
const APISERVER: &str = "kube-apiserver";
/// The flags podsec gives it, and their values.
const FLAGS: [(&str, &str); 2] = [
    ("--audit-policy-file", POLICY_PATH),
    ("--audit-log-path", LOG_PATH),
];
/// A command line is a few KiB; a bound keeps a hostile one from costing memory.
const CMDLINE_LIMIT: u64 = 1 << 20;

/// The check as check-kubeapi runs it: at start and, following, every minute; each finding is
/// logged as Critical once while it stands (again if it goes and comes back).
#[derive(Debug, Default)]
pub struct Watch {
    standing: Vec<String>,
    checked: Option<Instant>,
}

impl Watch {
    /// Checks when due; whether any finding stands.
    pub fn check(&mut self, logger: &Logger) -> bool {
        if self.checked.is_none_or(|at| at.elapsed() >= CHECK_EVERY) {
            self.checked = Some(Instant::now());
            let found = findings(Path::new("/proc"), Path::new("/"));
            for finding in found.iter().filter(|f| !self.standing.contains(f)) {
                logger.log(
                    Level::Critical,
                    &format!("the API server's audit is not as podsec set it up: {finding}"),
                );
            }
            self.standing = found;
        }
        !self.standing.is_empty()
    }
}

/// What is wrong with the audit of the API servers running on this host, one sentence each;
/// empty when none runs. `proc_dir` is `/proc`, `host_root` is `/` (parameters for tests).
pub fn findings(proc_dir: &Path, host_root: &Path) -> Vec<String> {
    let servers = apiservers(proc_dir);
    if servers.is_empty() {
        return Vec::new();
    }
    let mut findings = Vec::new();
    let host = match Tree::open(host_root) {
        Ok(Some(tree)) => tree,
        Ok(None) => return vec![format!("{}: missing", host_root.display())],
        Err(e) => return vec![e.to_string()],
    };
    findings.extend(host_setup(&host));
    for pid in servers {
        findings.extend(server_setup(proc_dir, pid, &host));
    }
    findings
}

fn relative(path: &str) -> &Path {
    Path::new(path.trim_start_matches('/'))
}

/// The PIDs whose `comm` is kube-apiserver.
fn apiservers(proc_dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(proc_dir) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &u32| {
            std::fs::read_to_string(proc_dir.join(pid.to_string()).join("comm"))
                .is_ok_and(|comm| comm.trim_end() == APISERVER)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// The host's audit directory and policy: root's, and only root may change them.
fn host_setup(host: &Tree) -> Vec<String> {
    let mut findings = Vec::new();
    match host.walk(relative(AUDIT_DIR)).map(|entries| entries.last().copied().flatten()) {
        Ok(Some(dir))
            if dir.kind == Kind::Directory
                && dir.uid == 0
                && (dir.mode & 0o022 == 0 || dir.mode & 0o1000 != 0) => {}
        Ok(Some(dir)) => findings.push(format!(
            "{AUDIT_DIR} is not root's protected directory ({:?}, owner uid {}, mode {:o}): the audit policy can be replaced",
            dir.kind, dir.uid, dir.mode
        )),
        Ok(None) => findings.push(format!("{AUDIT_DIR} is missing")),
        Err(e) => findings.push(e.to_string()),
    }
    match host.entry(relative(POLICY_PATH)) {
        Ok(Some(policy))
            if policy.kind == Kind::File && policy.uid == 0 && policy.mode & 0o022 == 0 => {}
        Ok(Some(policy)) => findings.push(format!(
            "{POLICY_PATH} is not a file only root may change ({:?}, owner uid {}, mode {:o})",
            policy.kind, policy.uid, policy.mode
        )),
        Ok(None) => findings.push(format!("{POLICY_PATH} is missing")),
        Err(e) => findings.push(e.to_string()),
    }
    findings
}

/// One API server: podsec's audit flags, and the host's audit directory and policy in its view.
fn server_setup(proc_dir: &Path, pid: u32, host: &Tree) -> Vec<String> {
    let process: PathBuf = proc_dir.join(pid.to_string());
    let Ok(Some(cmdline)) = Tree::open(&process).and_then(|tree| {
        tree.map(|tree| tree.read(Path::new("cmdline"), CMDLINE_LIMIT))
            .transpose()
            .map(Option::flatten)
    }) else {
        // Gone meanwhile: nothing runs there to audit.
        return Vec::new();
    };
    let args: Vec<String> = cmdline
        .split(|byte| *byte == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    let mut findings = Vec::new();
    for (flag, wanted) in FLAGS {
        match flag_value(&args, flag) {
            Some(value) if value == wanted => {}
            Some(value) => findings.push(format!(
                "{APISERVER} (pid {pid}) runs with {flag}={value}, not {wanted}"
            )),
            None => findings.push(format!("{APISERVER} (pid {pid}) runs without {flag}")),
        }
    }
    let view = match Tree::open(&process.join("root")) {
        Ok(Some(view)) => view,
        Ok(None) => return findings,
        Err(e) => {
            findings.push(format!("{APISERVER} (pid {pid}): {e}"));
            return findings;
        }
    };
    for path in [AUDIT_DIR, POLICY_PATH] {
        let seen = view.identity(relative(path));
        let ours = host.identity(relative(path));
        match (seen, ours) {
            (Ok(Some(seen)), Ok(Some(ours))) if seen == ours => {}
            (Ok(_), Ok(_)) => findings.push(format!(
                "{APISERVER} (pid {pid}) does not see the host's {path} at {path}"
            )),
            (Err(e), _) | (_, Err(e)) => findings.push(format!("{APISERVER} (pid {pid}): {e}")),
        }
    }
    findings
}

/// A flag's value as pflag reads it: `--flag=value` or `--flag value`, the last one winning.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let mut value = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if let Some(rest) = arg.strip_prefix(flag) {
            if let Some(inline) = rest.strip_prefix('=') {
                value = Some(inline);
            } else if rest.is_empty() {
                value = args.next().map(String::as_str);
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A host root with podsec's audit directory and policy, and a /proc with processes whose
    /// root is that host (as a static pod's bind mounts make it).
    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let audit = dir.path().join("host/etc/kubernetes/audit");
            std::fs::create_dir_all(&audit).unwrap();
            std::fs::set_permissions(&audit, std::fs::Permissions::from_mode(0o1770)).unwrap();
            std::fs::write(audit.join("policy.yaml"), "rules: []\n").unwrap();
            std::fs::create_dir(dir.path().join("proc")).unwrap();
            Fixture { dir }
        }

        fn host(&self) -> PathBuf {
            self.dir.path().join("host")
        }

        fn proc(&self) -> PathBuf {
            self.dir.path().join("proc")
        }

        fn process(&self, pid: u32, comm: &str, args: &[&str], root: &Path) {
            let process = self.proc().join(pid.to_string());
            std::fs::create_dir(&process).unwrap();
            std::fs::write(process.join("comm"), format!("{comm}\n")).unwrap();
            let mut cmdline = Vec::new();
            for arg in args {
                cmdline.extend_from_slice(arg.as_bytes());
                cmdline.push(0);
            }
            std::fs::write(process.join("cmdline"), cmdline).unwrap();
            std::os::unix::fs::symlink(root, process.join("root")).unwrap();
        }

        fn findings(&self) -> Vec<String> {
            findings(&self.proc(), &self.host())
        }
    }

    const AUDITED: [&str; 4] = [
        "kube-apiserver",
        "--audit-policy-file=/etc/kubernetes/audit/policy.yaml",
        "--audit-log-path",
        "/etc/kubernetes/audit/audit.log",
    ];

    #[test]
    fn an_audited_apiserver_that_sees_the_hosts_files_is_fine_and_none_is_nothing_to_check() {
        let fixture = Fixture::new();
        fixture.process(7, "kubelet", &["kubelet"], &fixture.host());
        assert_eq!(fixture.findings(), Vec::<String>::new());
        fixture.process(42, "kube-apiserver", &AUDITED, &fixture.host());
        assert_eq!(fixture.findings(), Vec::<String>::new());
    }

    #[test]
    fn missing_or_other_audit_flags_are_findings_and_the_last_flag_wins() {
        let fixture = Fixture::new();
        fixture.process(42, "kube-apiserver", &["kube-apiserver"], &fixture.host());
        fixture.process(
            43,
            "kube-apiserver",
            &[
                "kube-apiserver",
                "--audit-policy-file=/etc/kubernetes/audit/policy.yaml",
                "--audit-log-path=/etc/kubernetes/audit/audit.log",
                "--audit-policy-file=/tmp/lax.yaml",
            ],
            &fixture.host(),
        );
        assert_eq!(
            fixture.findings(),
            [
                "kube-apiserver (pid 42) runs without --audit-policy-file",
                "kube-apiserver (pid 42) runs without --audit-log-path",
                "kube-apiserver (pid 43) runs with --audit-policy-file=/tmp/lax.yaml, not /etc/kubernetes/audit/policy.yaml",
            ]
        );
    }

    #[test]
    fn an_apiserver_that_sees_another_policy_or_directory_is_a_finding() {
        let fixture = Fixture::new();
        // Its own tree: the same paths, other files (a hostPath pointing elsewhere).
        let other = fixture.dir.path().join("other");
        std::fs::create_dir_all(other.join("etc/kubernetes/audit")).unwrap();
        std::fs::write(
            other.join("etc/kubernetes/audit/policy.yaml"),
            "rules: []\n",
        )
        .unwrap();
        fixture.process(42, "kube-apiserver", &AUDITED, &other);
        assert_eq!(
            fixture.findings(),
            [
                "kube-apiserver (pid 42) does not see the host's /etc/kubernetes/audit at /etc/kubernetes/audit",
                "kube-apiserver (pid 42) does not see the host's /etc/kubernetes/audit/policy.yaml at /etc/kubernetes/audit/policy.yaml",
            ]
        );
    }

    #[test]
    fn a_replaceable_policy_or_directory_on_the_host_is_a_finding() {
        let fixture = Fixture::new();
        fixture.process(42, "kube-apiserver", &AUDITED, &fixture.host());
        let audit = fixture.host().join("etc/kubernetes/audit");
        std::fs::set_permissions(
            audit.join("policy.yaml"),
            std::fs::Permissions::from_mode(0o664),
        )
        .unwrap();
        std::fs::set_permissions(&audit, std::fs::Permissions::from_mode(0o777)).unwrap();
        let findings = fixture.findings();
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(
            findings[0].starts_with("/etc/kubernetes/audit is not root's protected directory")
                && findings[0].contains("mode 777"),
            "{findings:?}"
        );
        assert!(
            findings[1].starts_with("/etc/kubernetes/audit/policy.yaml is not a file only root")
                && findings[1].contains("mode 664"),
            "{findings:?}"
        );
        // A link in place of the directory (renamed away and replaced) is one too.
        std::fs::rename(&audit, fixture.host().join("etc/kubernetes/moved")).unwrap();
        std::os::unix::fs::symlink("moved", &audit).unwrap();
        assert!(
            fixture.findings()[0].contains("(Symlink"),
            "{:?}",
            fixture.findings()
        );
    }
}
