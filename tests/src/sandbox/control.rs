//! Start, enter and stop a sandbox: the namespace work behind the `podsec-sandbox` binary.
//! It must run in a single-threaded process (unshare and setns of mount namespaces require it),
//! which is why tests reach it through the binary and never call it in-process.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, fork, pipe, setsid};

use super::setup::{self, Layout};

/// Namespaces of a sandbox, in the order `exec` enters them (mount last but pid, whose
/// effect is on children only).
const NAMESPACES: &[(&str, CloneFlags)] = &[
    ("net", CloneFlags::CLONE_NEWNET),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("pid", CloneFlags::CLONE_NEWPID),
];

pub struct StartOptions {
    pub base: PathBuf,
    pub name: String,
    pub addresses: Vec<String>,
}

/// Creates the namespaces and returns the state directory once pid 1 reports ready.
pub fn start(options: &StartOptions) -> Result<PathBuf> {
    setup::check_base(&options.base)?;
    fs::create_dir_all(&options.base)?;
    let state = tempfile::Builder::new()
        .prefix(&format!("{}.", options.name))
        .tempdir_in(&options.base)
        .context("creating the state directory")?
        .keep();
    let layout = Layout {
        state: state.clone(),
    };
    layout.create()?;
    let (ready_read, ready_write) = pipe()?;

    // SAFETY: this process is single-threaded (the podsec-sandbox binary).
    match unsafe { fork() }? {
        ForkResult::Parent { child } => {
            drop(ready_write);
            let mut report = String::new();
            File::from(ready_read).read_to_string(&mut report)?;
            waitpid(child, None)?;
            if report.trim() != "ready" {
                let _ = fs::remove_dir_all(&state);
                bail!("sandbox did not start: {}", report.trim());
            }
            Ok(state)
        }
        ForkResult::Child => {
            drop(ready_read);
            let code = match intermediate(&layout, options, ready_write) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            std::process::exit(code);
        }
    }
}

/// The intermediate process: unshares, forks pid 1, records its pid and leaves.
fn intermediate(layout: &Layout, options: &StartOptions, ready: OwnedFd) -> Result<()> {
    let report = |text: &str| {
        let _ = File::from(ready.try_clone().expect("dup")).write_all(text.as_bytes());
    };
    setsid()?;
    let flags = NAMESPACES
        .iter()
        .fold(CloneFlags::empty(), |all, (_, flag)| all | *flag);
    if let Err(e) = unshare(flags) {
        report(&format!("unshare: {e} (root is needed)"));
        bail!("unshare");
    }
    // SAFETY: still single-threaded.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => {
            fs::write(layout.pid_file(), format!("{child}\n"))?;
            Ok(())
        }
        ForkResult::Child => {
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(layout.logs().join("init.log"))?;
            redirect_stdio(&log)?;
            match setup::inside(layout, &options.name, &options.addresses) {
                Ok(()) => {
                    report("ready");
                    drop(ready);
                    init_loop()
                }
                Err(e) => {
                    report(&format!("{e:#}"));
                    std::process::exit(1);
                }
            }
        }
    }
}

fn redirect_stdio(log: &File) -> Result<()> {
    let null = File::open("/dev/null")?;
    nix::unistd::dup2_stdin(null.as_fd())?;
    nix::unistd::dup2_stdout(log.as_fd())?;
    nix::unistd::dup2_stderr(log.as_fd())?;
    Ok(())
}

/// pid 1: reap orphans until told to stop. Signals are blocked and waited for, so the kernel
/// delivers them to this namespace init (it drops unhandled ones).
fn init_loop() -> ! {
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT] {
        signals.add(signal);
    }
    let _ = signals.thread_block();
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => {
                while let Ok(status) = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                    if status == WaitStatus::StillAlive {
                        break;
                    }
                }
            }
            Ok(_) => std::process::exit(0),
            Err(_) => {}
        }
    }
}

pub fn init_pid(state: &Path) -> Result<Pid> {
    let text = fs::read_to_string(state.join("init.pid"))
        .with_context(|| format!("{} is not a sandbox state directory", state.display()))?;
    let pid: i32 = text.trim().parse().context("bad init.pid")?;
    if !alive(Pid::from_raw(pid)) {
        bail!("sandbox {} is not running", state.display());
    }
    Ok(Pid::from_raw(pid))
}

/// Alive and not a zombie.
fn alive(pid: Pid) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

pub struct ExecOptions {
    pub user: Option<String>,
    pub detach: Option<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
}

/// Runs a command inside: enters the namespaces, then spawns it (so it lands in the pid
/// namespace) as root or as `user`.
pub fn exec(state: &Path, options: &ExecOptions, command: &[OsString]) -> Result<ExitCode> {
    let pid = init_pid(state)?;
    let layout = Layout {
        state: state.to_path_buf(),
    };
    let handles: Vec<(File, CloneFlags)> = NAMESPACES
        .iter()
        .map(|(name, flag)| Ok((File::open(format!("/proc/{pid}/ns/{name}"))?, *flag)))
        .collect::<Result<_>>()?;
    let cwd = std::env::current_dir().ok();
    // Into the sandbox's cgroups and cgroup namespace too, so what runs inside is accounted
    // there and sees the sandbox's cgroup tree.
    super::cgroups::join(&state.join("cgroups"));
    let cgroup_ns = File::open(format!("/proc/{pid}/ns/cgroup"))?;
    setns(cgroup_ns.as_fd(), CloneFlags::CLONE_NEWCGROUP).context("setns cgroup")?;
    for (handle, flag) in &handles {
        setns(handle.as_fd(), *flag).with_context(|| format!("setns {flag:?}"))?;
    }
    let (program, args) = command.split_first().context("no command given")?;
    let mut child = Command::new(program);
    child.args(args);
    child.env("TMPDIR", layout.tmp());
    child.env("PODSEC_SANDBOX", state);
    for (key, value) in &options.env {
        child.env(key, value);
    }
    let mut directory = options.cwd.clone().or(cwd).unwrap_or_else(|| "/".into());
    if let Some(name) = &options.user {
        let account = nix::unistd::User::from_name(name)?
            .with_context(|| format!("no user {name} in the sandbox"))?;
        let c_name = std::ffi::CString::new(name.as_str())?;
        let groups: Vec<Gid> = nix::unistd::getgrouplist(&c_name, account.gid)?;
        let runtime = PathBuf::from(format!("/run/user/{}", account.uid));
        if !runtime.exists() {
            fs::create_dir_all(&runtime)?;
            nix::unistd::chown(&runtime, Some(account.uid), Some(account.gid))?;
            fs::set_permissions(
                &runtime,
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )?;
        }
        child
            .env("HOME", &account.dir)
            .env("USER", name)
            .env("LOGNAME", name)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME");
        if options.cwd.is_none() {
            directory = account.dir.clone();
        }
        let (uid, gid): (Uid, Gid) = (account.uid, account.gid);
        // SAFETY: only async-signal-safe system calls between fork and exec.
        unsafe {
            child.pre_exec(move || {
                nix::unistd::setgroups(&groups)?;
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(uid)?;
                Ok(())
            });
        }
    }
    child.current_dir(&directory);
    if let Some(label) = &options.detach {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(layout.logs().join(format!("{label}.log")))?;
        child
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            child.pre_exec(|| {
                nix::unistd::setsid()?;
                Ok(())
            });
        }
        let spawned = child
            .spawn()
            .with_context(|| format!("cannot start {}", program.to_string_lossy()))?;
        // The pid inside the sandbox is unknown here; print the host's.
        println!("{}", spawned.id());
        return Ok(ExitCode::SUCCESS);
    }
    let status = child
        .status()
        .with_context(|| format!("cannot run {}", program.to_string_lossy()))?;
    Ok(
        match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(code), _) => ExitCode::from(code as u8),
            (None, Some(signal)) => ExitCode::from(128 + signal as u8),
            _ => ExitCode::FAILURE,
        },
    )
}

/// Kills everything inside (SIGKILL to pid 1 ends the pid namespace) and removes the state.
pub fn stop(state: &Path) -> Result<()> {
    if let Ok(pid) = init_pid(state) {
        kill(pid, Signal::SIGKILL)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while alive(pid) {
            if Instant::now() > deadline {
                bail!("sandbox init {pid} did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    super::cgroups::remove(&state.join("cgroups"));
    // The last mount of the namespace goes away with its last process; removal may race it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match fs::remove_dir_all(state) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(e).with_context(|| format!("removing {}", state.display()));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A veth pair: `name` in the network namespace of `pid`, `peer` in that of `peer_pid`.
fn veth_pair(name: &str, pid: Pid, peer: &str, peer_pid: Pid) -> Result<()> {
    let (pid, peer_pid) = (pid.to_string(), peer_pid.to_string());
    setup::run(
        "ip",
        &[
            "link", "add", "name", name, "netns", &pid, "type", "veth", "peer", "name", peer,
            "netns", &peer_pid,
        ],
    )
}

/// A veth pair between two sandboxes, `name` at both ends, with the given addresses.
pub fn link(a: &Path, b: &Path, name: &str, address_a: &str, address_b: &str) -> Result<()> {
    let (pid_a, pid_b) = (init_pid(a)?, init_pid(b)?);
    let peer = format!("{name}p");
    veth_pair(name, pid_a, &peer, pid_b)?;
    for (pid, device, address) in [(pid_a, name, address_a), (pid_b, peer.as_str(), address_b)] {
        let netns = format!("--net=/proc/{pid}/ns/net");
        if device != name {
            setup::run(
                "nsenter",
                &[&netns, "ip", "link", "set", device, "name", name],
            )?;
        }
        setup::run(
            "nsenter",
            &[&netns, "ip", "addr", "add", address, "dev", name],
        )?;
        setup::run("nsenter", &[&netns, "ip", "link", "set", name, "up"])?;
    }
    Ok(())
}

/// Plugs sandbox `node` into the bridge `bridge` of sandbox `switch` through a veth pair:
/// `name` with `address` on the node's side, a port of the bridge on the other. The bridge is
/// made (up, with `bridge_address`) on first use, so several nodes share one link layer the way
/// hosts on a switch do, and nothing of it is in the host's namespaces.
pub fn attach(
    switch: &Path,
    node: &Path,
    bridge: &str,
    bridge_address: &str,
    name: &str,
    address: &str,
) -> Result<()> {
    let (pid_switch, pid_node) = (init_pid(switch)?, init_pid(node)?);
    let in_netns = |pid: Pid, args: &[&str]| {
        let netns = format!("--net=/proc/{pid}/ns/net");
        let mut all = vec![netns.as_str()];
        all.extend_from_slice(args);
        setup::run("nsenter", &all)
    };
    if in_netns(pid_switch, &["ip", "link", "show", bridge]).is_err() {
        in_netns(pid_switch, &["ip", "link", "add", bridge, "type", "bridge"])?;
        in_netns(
            pid_switch,
            &["ip", "addr", "add", bridge_address, "dev", bridge],
        )?;
        in_netns(pid_switch, &["ip", "link", "set", bridge, "up"])?;
    }
    // One port per node on this switch; the node's end is renamed to `name`.
    let port = format!("p{pid_node}");
    let peer = format!("{port}n");
    veth_pair(&port, pid_switch, &peer, pid_node)?;
    in_netns(
        pid_switch,
        &["ip", "link", "set", &port, "master", bridge, "up"],
    )?;
    in_netns(pid_node, &["ip", "link", "set", &peer, "name", name])?;
    in_netns(pid_node, &["ip", "addr", "add", address, "dev", name])?;
    in_netns(pid_node, &["ip", "link", "set", name, "up"])?;
    Ok(())
}
