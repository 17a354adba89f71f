//! A real systemd as PID 1 for tests: `systemd-nspawn -b` boots a throwaway copy of this host
//! (an overlay of `/` whose upper layer is a tmpfs, in a private mount namespace with its own
//! tmpfs on /run, in cgroups of its own on the writable hierarchies), and the tests drive it
//! from outside with `nsenter -t <PID 1> -a systemctl ...`. Our packages are installed into it
//! as `make install` lays them out. Dropping the [`Machine`] powers it off and removes every
//! cgroup, mount (they live only in the private namespace), process and directory it made.
//!
//! Limits (systemd-nspawn on this host): the cgroup v1 controllers are read-only inside and the
//! cgroup2 hierarchy has no controllers, so `MemoryMax=`-like limits are accepted but not
//! enforced: tests check behaviour, not limits. The network has only `lo` (`add_address`).

use std::ffi::CString;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::libc;
use tempfile::TempDir;

use crate::sandbox::target_dir;

/// From the start of systemd-nspawn to `is-system-running` = running (about 1 s when idle; a
/// loaded 2-core host has taken 10 s).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(30);
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host units that fail in a container or only cost CPU during a test; masked in the overlay.
pub const MASKED: &[&str] = &[
    "podman.service",
    "podman.socket",
    "podman-restart.service",
    "podman-auto-update.service",
    "podman-auto-update.timer",
    "postgresql.service",
    "icinga2.service",
    "postfix.service",
    "ssh.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "man-db.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "systemd-timesyncd.service",
    "systemd-pstore.service",
    "getty@tty1.service",
];

/// A booted container with systemd as PID 1; powered off and removed on drop.
pub struct Machine {
    work: TempDir,
    name: String,
    nspawn: Option<Child>,
    pid1: i32,
    cgroups: Vec<PathBuf>,
}

/// The writable cgroup hierarchies of this host (cgroup2 and the named systemd v1 hierarchy on
/// a hybrid host, the single cgroup2 tree on a unified one) with this process's path in each.
fn hierarchies() -> Result<Vec<PathBuf>> {
    let own = fs::read_to_string("/proc/self/cgroup")?;
    let path_of = |wanted: &str| {
        own.lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                (controllers == wanted).then(|| path.trim_start_matches('/').to_string())
            })
            .next()
    };
    let mut found = Vec::new();
    if Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        found.push(Path::new("/sys/fs/cgroup/unified").join(path_of("").unwrap_or_default()));
        if let Some(path) = path_of("name=systemd") {
            found.push(Path::new("/sys/fs/cgroup/systemd").join(path));
        }
    } else if Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
        found.push(Path::new("/sys/fs/cgroup").join(path_of("").unwrap_or_default()));
    }
    if found.is_empty() {
        bail!("no writable cgroup hierarchy under /sys/fs/cgroup for systemd-nspawn");
    }
    Ok(found)
}

fn cstring(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("path without NUL")
}

/// What the child does between fork and exec of systemd-nspawn, prepared as C strings so the
/// child only makes system calls (the test process has other threads: no allocation after fork).
struct Prepare {
    cgroup_procs: Vec<CString>,
    ovl: CString,
    ovl_options: CString,
    dirs: Vec<CString>,
    masks: Vec<CString>,
    root: CString,
    overlay_options: CString,
}

impl Prepare {
    fn run(&self) -> std::io::Result<()> {
        fn check(result: libc::c_int) -> std::io::Result<()> {
            if result < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
        let none = std::ptr::null::<libc::c_char>();
        let tmpfs = c"tmpfs".as_ptr();
        // SAFETY: plain system calls on NUL-terminated strings prepared before fork.
        unsafe {
            // Die with the test: an orphaned container would hold its cgroups.
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM))?;
            for procs in &self.cgroup_procs {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                check(fd)?;
                // "0" moves the writer itself.
                let written = libc::write(fd, c"0".as_ptr().cast(), 1);
                libc::close(fd);
                if written != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            // nspawn keeps locks and state in /run; the host's /run is on disk here.
            check(libc::mount(
                tmpfs,
                c"/run".as_ptr(),
                tmpfs,
                0,
                c"mode=755".as_ptr().cast(),
            ))?;
            check(libc::mount(
                tmpfs,
                self.ovl.as_ptr(),
                tmpfs,
                0,
                self.ovl_options.as_ptr().cast(),
            ))?;
            for dir in &self.dirs {
                check(libc::mkdir(dir.as_ptr(), 0o755))?;
            }
            for mask in &self.masks {
                check(libc::symlink(c"/dev/null".as_ptr(), mask.as_ptr()))?;
            }
            check(libc::mount(
                c"overlay".as_ptr(),
                self.root.as_ptr(),
                c"overlay".as_ptr(),
                0,
                self.overlay_options.as_ptr().cast(),
            ))?;
        }
        Ok(())
    }
}

/// The workspace (where scripts/ and the unit files are).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("workspace")
}

impl Machine {
    /// Boots a machine; fails with the console log when systemd is not up within BOOT_TIMEOUT.
    pub fn boot() -> Result<Machine> {
        let nspawn_binary = ["/usr/bin/systemd-nspawn", "/bin/systemd-nspawn"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .context(
                "systemd-nspawn is not installed (Debian package systemd-container, scripts/deps)",
            )?;
        let work = tempfile::Builder::new()
            .prefix("podsec-systemd.")
            .tempdir()
            .context("work directory")?;
        // tempfile's random part (alphanumeric) makes the machine's name unique too.
        let suffix = work
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("podsec-systemd.")
            .to_string();
        let name = format!("podsecsd{suffix}");
        let ovl = work.path().join("ovl");
        let root = work.path().join("root");
        let share = work.path().join("share");
        for dir in [&ovl, &root, &share] {
            fs::create_dir(dir)?;
        }
        let hierarchies = hierarchies()?;
        // From here on, Drop undoes whatever was made.
        let mut machine = Machine {
            work,
            name,
            nspawn: None,
            pid1: 0,
            cgroups: Vec::new(),
        };
        for hierarchy in hierarchies {
            let dir = hierarchy.join(&machine.name);
            fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
            machine.cgroups.push(dir);
        }
        let up = ovl.join("up");
        let units = up.join("etc/systemd/system");
        let prepare = Prepare {
            cgroup_procs: machine
                .cgroups
                .iter()
                .map(|dir| cstring(&dir.join("cgroup.procs")))
                .collect(),
            ovl: cstring(&ovl),
            ovl_options: CString::new("size=2g,mode=755").unwrap(),
            dirs: [
                up.clone(),
                ovl.join("wk"),
                up.join("etc"),
                up.join("etc/systemd"),
                units.clone(),
            ]
            .iter()
            .map(|d| cstring(d))
            .collect(),
            masks: MASKED.iter().map(|u| cstring(&units.join(u))).collect(),
            root: cstring(&root),
            overlay_options: CString::new(format!(
                "lowerdir=/,upperdir={},workdir={}",
                up.display(),
                ovl.join("wk").display()
            ))
            .unwrap(),
        };
        let console = File::create(machine.work.path().join("console.log"))?;
        let mut command = Command::new(nspawn_binary);
        command
            .arg("-D")
            .arg(&root)
            .args([
                "-b",
                "--register=no",
                "--keep-unit",
                "--link-journal=no",
                "--private-network",
                "--console=pipe",
                "--resolv-conf=off",
                "--timezone=off",
                // runc and crun give every container a session keyring, as on a real host;
                // nspawn's default filter refuses the keyring calls (keyrings are not
                // namespaced), which only matters to the container runtimes of the real node.
                "--system-call-filter=@keyring",
                "-M",
                &machine.name,
            ])
            .arg(format!("--bind={}", share.display()));
        // The sources and the build, at the same paths inside, for install-commands.
        let workspace = workspace();
        let target = target_dir();
        command.arg(format!("--bind-ro={}", workspace.display()));
        if !target.starts_with(&workspace) {
            command.arg(format!("--bind-ro={}", target.display()));
        }
        command
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console);
        // SAFETY: Prepare::run makes only async-signal-safe system calls.
        unsafe {
            command.pre_exec(move || prepare.run());
        }
        let started = Instant::now();
        let child = command.spawn().context("cannot start systemd-nspawn")?;
        let nspawn_pid = child.id() as i32;
        machine.nspawn = Some(child);
        machine.pid1 = machine.wait_pid1(nspawn_pid, started)?;
        machine.wait_running(started)?;
        Ok(machine)
    }

    fn console(&self) -> String {
        fs::read_to_string(self.work.path().join("console.log")).unwrap_or_default()
    }

    fn nspawn_exited(&mut self) -> bool {
        self.nspawn
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    fn wait_pid1(&mut self, nspawn: i32, started: Instant) -> Result<i32> {
        loop {
            if let Some(pid) = child_named(nspawn, "systemd") {
                return Ok(pid);
            }
            if self.nspawn_exited() {
                bail!("systemd-nspawn exited during boot: {}", self.console());
            }
            if started.elapsed() > BOOT_TIMEOUT {
                bail!(
                    "no systemd PID 1 within {BOOT_TIMEOUT:?}: {}",
                    self.console()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_running(&mut self, started: Instant) -> Result<()> {
        let mut state = String::new();
        while started.elapsed() < BOOT_TIMEOUT {
            let left = BOOT_TIMEOUT.saturating_sub(started.elapsed()).as_secs() + 1;
            let out = self.command_in(
                "timeout",
                &[
                    &left.to_string(),
                    "systemctl",
                    "is-system-running",
                    "--wait",
                ],
            );
            state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if matches!(state.as_str(), "running" | "degraded") {
                return Ok(());
            }
            if self.nspawn_exited() {
                bail!("the machine stopped during boot: {}", self.console());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "systemd did not finish booting within {BOOT_TIMEOUT:?} (state {state:?}); jobs: {}",
            String::from_utf8_lossy(&self.command_in("systemctl", &["list-jobs"]).stdout)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host pid of the container's PID 1.
    pub fn pid1(&self) -> i32 {
        self.pid1
    }

    /// A directory shared with the machine at the same path.
    pub fn share(&self) -> PathBuf {
        self.work.path().join("share")
    }

    /// `program args` inside (all namespaces of PID 1) as root, with a clean environment.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .args(["-t", &self.pid1.to_string(), "-a", "env", "-i"])
            .arg(format!("PATH={PATH}"))
            .args(["LANG=C.UTF-8", "HOME=/root", program])
            .stdin(Stdio::null());
        command
    }

    fn command_in(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .output()
            .expect("cannot run nsenter")
    }

    /// `sh -c script` inside as root.
    pub fn sh(&self, script: &str) -> Output {
        self.command_in("sh", &["-c", script])
    }

    /// `sh -c script` inside as root; fails the test unless it exits 0. Returns stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        ok(script, self.sh(script))
    }

    /// `sh -c script` inside as `user` (runuser, a login-less session like a service's).
    pub fn user_sh(&self, user: &str, script: &str) -> Output {
        self.command_in("runuser", &["-u", user, "--", "sh", "-c", script])
    }

    pub fn systemctl(&self, args: &[&str]) -> Output {
        self.command_in("systemctl", args)
    }

    pub fn systemctl_ok(&self, args: &[&str]) -> String {
        ok(
            &format!("systemctl {}", args.join(" ")),
            self.systemctl(args),
        )
    }

    /// One property of a unit (`systemctl show -p NAME --value`).
    pub fn property(&self, unit: &str, property: &str) -> String {
        self.systemctl_ok(&["show", "-p", property, "--value", unit])
            .trim()
            .to_string()
    }

    /// `systemctl is-active` (active, inactive, failed, activating...).
    pub fn state(&self, unit: &str) -> String {
        String::from_utf8_lossy(&self.systemctl(&["is-active", unit]).stdout)
            .trim()
            .to_string()
    }

    /// Waits (bounded) until `unit` is in `state`; fails with its status otherwise.
    pub fn wait_state(&self, unit: &str, state: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.state(unit) != state {
            if Instant::now() > deadline {
                panic!(
                    "{unit} not {state} within {timeout:?}: {}",
                    String::from_utf8_lossy(
                        &self.systemctl(&["status", "--no-pager", unit]).stdout
                    )
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The failed units (`systemctl --failed`), one per line.
    pub fn failed_units(&self) -> Vec<String> {
        self.systemctl_ok(&["--failed", "--plain", "--no-legend"])
            .lines()
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
            .filter(|u| !u.is_empty())
            .collect()
    }

    /// The journal lines of one syslog identifier (`journalctl -t`), message only.
    pub fn journal(&self, identifier: &str) -> String {
        self.sh_ok(&format!(
            "journalctl --no-pager -q -o cat -t '{identifier}'"
        ))
    }

    /// The packages installed as `make install` lays them out (scripts/install-commands with the
    /// test build, prefix /usr), then `systemctl daemon-reload`.
    pub fn install_packages(&self) {
        let script = workspace().join("scripts/install-commands");
        let build = target_dir();
        let out = self.command_in(
            &script.display().to_string(),
            &[&build.display().to_string(), "", "/usr"],
        );
        ok("install-commands", out);
        self.systemctl_ok(&["daemon-reload"]);
    }

    /// Adds an address to the machine's loopback (its only interface).
    pub fn add_address(&self, cidr: &str) {
        self.sh_ok(&format!("ip addr add {cidr} dev lo"));
    }

    fn poweroff(&mut self) {
        let Some(mut child) = self.nspawn.take() else {
            return;
        };
        if child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("timeout")
                .args(["20", "nsenter", "-t", &self.pid1.to_string(), "-a"])
                .args(["systemctl", "poweroff"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + POWEROFF_TIMEOUT;
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if child.try_wait().ok().flatten().is_none() {
            eprintln!(
                "warning: machine {} did not power off in {POWEROFF_TIMEOUT:?}: killed",
                self.name
            );
            // PID 1 of a pid namespace takes every process of the container with it.
            kill(self.pid1, libc::SIGKILL);
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    fn remove_cgroups(&self) {
        for top in &self.cgroups {
            let deadline = Instant::now() + Duration::from_secs(10);
            while top.exists() {
                remove_tree(top);
                if Instant::now() > deadline {
                    eprintln!("warning: cannot remove cgroup {}", top.display());
                    break;
                }
                if top.exists() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.poweroff();
        self.remove_cgroups();
        // The mounts lived in the namespace of nspawn, gone with it; the work dir goes with
        // the TempDir.
    }
}

/// rmdir of a cgroup directory and everything below it, deepest first.
fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

fn kill(pid: i32, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory effects.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// A child of `parent` whose command name is `name`.
fn child_named(parent: i32, name: &str) -> Option<i32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
        let (head, tail) = stat.rsplit_once(") ")?;
        let comm = head.split_once(" (")?.1;
        let ppid: i32 = tail.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == parent && comm == name).then_some(pid)
    })
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "in the machine: {what}\nstatus {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}
