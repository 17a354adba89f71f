//! `u7s-rootlesskit`: the namespaces of u7s-admin (upstream rootlesskit.sh, spec 4.3); the
//! ExecStart of the user unit rootlesskit.service.
//!
//! Parent half (as u7s-admin, outside): loads and checks the root-owned node configuration,
//! writes CRI-O's configuration, seeds the private CNI directories, and runs `rootlesskit`
//! (slirp4netns network with MTU 65520 on a CIDR apart from the Service and pod networks,
//! host loopback unreachable, copy-ups, builtin port driver publishing the role's ports,
//! cgroup/pid/ipc/uts namespaces, rslave propagation). It stays as rootlesskit's supervisor:
//! SIGTERM is passed on, readiness (the child's ready file and every port published) is told
//! to systemd, a namespace that never gets ready within [`READY_TIMEOUT`] is torn down, and a
//! stale ready file never survives.
//!
//! Child half (`--child`, root inside the user namespace, started by rootlesskit): private
//! mounts (u7s-admin's `_var_lib_*` directories over /var/lib/kubelet and friends, private
//! copies of /etc/cni/net.d and /opt/cni/bin), /var/lib/kubelet made rshared here so it
//! survives every restart (upstream defect 20), the CRI socket link /run/crio/crio.sock,
//! ping_group_range and ip_forward of this network namespace only, the node's addresses on tap0
//! (bounded retries, defect 18), then the ready file and `exec` of CRI-O.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use nix::mount::{MsFlags, mount};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::unistd::Pid;
use podsec_common::cli::{self, Failure};
use podsec_common::host::files::{self, Owner};
use podsec_common::msg;

use super::cgroups::CgroupVersion;
use super::crio::{self, CrioConfig};
use super::nsenter;
use super::paths::{self, CNI_PLUGIN_DIRS, PRIVATE_DIRS, SEEDED_DIRS, U7sPaths};
use super::ports;
use crate::node_config::{CniPlugin, NodeConfig, NodeConfigError};

pub const NAME: &str = "u7s-rootlesskit";
pub const ROOTLESSKIT: &str = "/usr/bin/rootlesskit";
/// How long the namespace may take to come up before it is torn down.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long RootlessKit gets to exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Bounded retries of the tap0 address (upstream looped forever).
const ADDRESS_ATTEMPTS: u32 = 20;
const ADDRESS_INTERVAL: Duration = Duration::from_millis(250);
/// Copy-up symlinks removed inside so the namespace has its own (upstream's list).
const PRIVATE_RUN_ENTRIES: &[&str] = &[
    "/run/xtables.lock",
    "/run/netns",
    "/run/runc",
    "/run/crun",
    "/run/flannel",
    "/run/containerd",
    "/run/containers",
    "/run/crio",
    "/etc/containerd",
    "/etc/crio",
];
/// Always copied up: writable tmpfs views of the host's directories, entries as symlinks.
const COPY_UP: &[&str] = &["/etc", "/run", "/var/lib", "/opt", "/usr/libexec"];
/// Tells CRI-O inside the namespace that it is rootless (it sees uid 0 there).
pub const CRIO_ROOTLESS_VARIABLE: &str = "_CRIO_ROOTLESS";
/// Copied up too where the host has them.
const COPY_UP_IF_PRESENT: &[&str] = &["/etc/sysconfig", "/var/lib/crio"];

/// Start the RootlessKit namespaces of u7s-admin with CRI-O inside (the ExecStart of the user
/// unit rootlesskit.service); settings come from /etc/podsec/u7s/node.toml.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Runs as u7s-admin (systemctl --user -M u7s-admin@ start rootlesskit.service).\nThe namespace is entered with nsenter_u7s."
)]
pub struct Args {
    /// Internal: the child half, run by rootlesskit inside the namespaces
    #[arg(long, hide = true)]
    pub child: bool,
    #[arg(long, hide = true, requires = "child")]
    pub uid: Option<u32>,
    #[arg(long, hide = true, requires = "child")]
    pub home: Option<PathBuf>,
    /// Internal: addresses of the node put on tap0
    #[arg(long = "address", hide = true, requires = "child")]
    pub addresses: Vec<Ipv4Addr>,
    /// Internal: what the child runs once the namespace is ready (CRI-O)
    #[arg(last = true, hide = true)]
    pub command: Vec<OsString>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("must run as the node's account (uid {expected}), not uid {actual}")]
    WrongUser { expected: u32, actual: u32 },
    #[error(transparent)]
    Config(#[from] NodeConfigError),
    #[error(transparent)]
    Account(#[from] podsec_common::host::users::AccountError),
    #[error(
        "{0} does not exist: is the user manager of u7s-admin running (loginctl enable-linger)?"
    )]
    NoRuntimeDir(PathBuf),
    #[error("RootlessKit is already running (child {0})")]
    AlreadyRunning(i32),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    File(#[from] files::FileError),
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("the namespace was not ready within {0:?}: {1}")]
    NotReady(Duration, String),
    #[error("{what} failed: {detail}")]
    Setup { what: String, detail: String },
    #[error("the child half needs --uid and --home")]
    ChildArgs,
}

impl Failure for Error {}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    if args.child {
        let (Some(uid), Some(home)) = (args.uid, args.home.clone()) else {
            return Err(Error::ChildArgs);
        };
        let paths = U7sPaths::new(uid, home);
        return child(&paths, &args.addresses, &args.command);
    }
    parent()
}

/// What the host has that changes the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The optional copy-ups that exist.
    pub present: Vec<String>,
    /// /sys/fs/cgroup is cgroup v2 and our cgroup can be split (systemd's Delegate=yes).
    pub cgroup2: bool,
}

impl HostFacts {
    pub fn detect() -> HostFacts {
        HostFacts {
            present: COPY_UP_IF_PRESENT
                .iter()
                .filter(|p| Path::new(p).is_dir())
                .map(|p| p.to_string())
                .collect(),
            cgroup2: CgroupVersion::detect() == CgroupVersion::V2,
        }
    }
}

/// RootlessKit's full command line for the node; `child` is the command of the child half.
pub fn rootlesskit_argv(
    config: &NodeConfig,
    paths: &U7sPaths,
    facts: &HostFacts,
    child: &[OsString],
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![ROOTLESSKIT.into()];
    let mut flag = |text: String| argv.push(text.into());
    flag(format!("--state-dir={}", paths.state_dir().display()));
    flag("--net=slirp4netns".into());
    flag("--mtu=65520".into());
    flag(format!("--cidr={}", config.slirp_cidr));
    flag("--disable-host-loopback".into());
    flag("--slirp4netns-sandbox=true".into());
    flag("--slirp4netns-seccomp=true".into());
    flag("--port-driver=builtin".into());
    for dir in COPY_UP
        .iter()
        .map(|d| d.to_string())
        .chain(facts.present.iter().cloned())
    {
        flag(format!("--copy-up={dir}"));
    }
    for namespace in ["--cgroupns", "--pidns", "--ipcns", "--utsns"] {
        flag(namespace.into());
    }
    flag("--propagation=rslave".into());
    if facts.cgroup2 {
        flag("--evacuate-cgroup2=rootlesskit_evac".into());
    }
    for port in config.published_ports() {
        flag(format!("--publish={port}"));
    }
    argv.extend(child.iter().cloned());
    argv
}

/// The child half's command line: this binary again, then CRI-O's.
pub fn child_argv(config: &NodeConfig, paths: &U7sPaths, exe: &Path) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![
        exe.into(),
        NAME.into(),
        "--child".into(),
        "--uid".into(),
        config.uid.to_string().into(),
        "--home".into(),
        paths.home.clone().into(),
    ];
    for address in node_addresses(config) {
        argv.push("--address".into());
        argv.push(address.to_string().into());
    }
    argv.push("--".into());
    argv.extend(crio::crio_argv(&paths.crio_config()));
    argv
}

/// The external address, and the advertised one if it differs: kubelet and etcd bind them.
pub fn node_addresses(config: &NodeConfig) -> Vec<Ipv4Addr> {
    let mut addresses = vec![config.external_ip];
    if config.advertise_address != config.external_ip {
        addresses.push(config.advertise_address);
    }
    addresses
}

static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: nix::libc::c_int) {
    SIGNAL.store(signal, Ordering::SeqCst);
}

fn parent() -> Result<ExitCode, Error> {
    let config = NodeConfig::load_default()?;
    let uid = nix::unistd::getuid().as_raw();
    if uid != config.uid {
        return Err(Error::WrongUser {
            expected: config.uid,
            actual: uid,
        });
    }
    let account = paths::account_of(uid)?;
    let paths = U7sPaths::new(uid, &account.home);
    prepare(&config, &paths)?;

    let exe = std::env::current_exe().map_err(io(Path::new("/proc/self/exe")))?;
    let argv = rootlesskit_argv(
        &config,
        &paths,
        &HostFacts::detect(),
        &child_argv(&config, &paths, &exe),
    );
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only stores into an atomic.
        unsafe { sigaction(signal, &action) }.map_err(|e| Error::Setup {
            what: "sigaction".into(),
            detail: e.to_string(),
        })?;
    }
    eprintln!(
        "[INFO] Starting RootlessKit: {}",
        argv.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut rootlesskit = Command::new(&argv[0])
        .args(&argv[1..])
        .env("ROOTLESSKIT_STATE_DIR", paths.state_dir())
        .current_dir(&paths.home)
        .spawn()
        .map_err(|source| Error::Spawn {
            program: ROOTLESSKIT.into(),
            source,
        })?;
    let pid = Pid::from_raw(rootlesskit.id() as i32);
    let started = Instant::now();
    let expected = config.published_ports();
    let mut ready = false;
    let mut terminating: Option<Instant> = None;
    let mut stopped_by_signal = false;
    let status = loop {
        if let Some(status) = rootlesskit.try_wait().map_err(io(Path::new(ROOTLESSKIT)))? {
            break status;
        }
        let signal = SIGNAL.swap(0, Ordering::SeqCst);
        if signal != 0 && terminating.is_none() {
            eprintln!("[INFO] Stopping RootlessKit (signal {signal})");
            let _ = kill(pid, Signal::SIGTERM);
            terminating = Some(Instant::now());
            stopped_by_signal = true;
        }
        if let Some(since) = terminating
            && since.elapsed() > STOP_TIMEOUT
        {
            let _ = kill(pid, Signal::SIGKILL);
        }
        if !ready && terminating.is_none() {
            match readiness(&paths, &expected) {
                Ok(child) => {
                    ready = true;
                    eprintln!(
                        "[INFO] RootlessKit ready, PID={child}, state directory={}; enter with: nsenter_u7s",
                        paths.state_dir().display()
                    );
                    if let Err(e) = super::notify::ready() {
                        eprintln!("[WARNING] cannot notify systemd: {e}");
                    }
                }
                Err(reason) if started.elapsed() > READY_TIMEOUT => {
                    eprintln!("[ERROR] {}", Error::NotReady(READY_TIMEOUT, reason.clone()));
                    let _ = kill(pid, Signal::SIGTERM);
                    terminating = Some(Instant::now());
                }
                Err(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // RootlessKit removes its state directory when it exits cleanly; after a kill the ready
    // file would point nsenter_u7s at a dead namespace.
    let _ = std::fs::remove_file(paths.ready_file());
    let code = status.code().unwrap_or(1);
    eprintln!("[INFO] RootlessKit exiting (status={status})");
    Ok(if stopped_by_signal {
        // Asked to stop: the teardown is the success.
        ExitCode::SUCCESS
    } else if ready || code != 0 {
        ExitCode::from(code.clamp(0, 255) as u8)
    } else {
        ExitCode::FAILURE
    })
}

/// Ready: the handshake holds, every expected port is published and CRI-O serves its socket
/// (upstream restarted RootlessKit until the socket appeared, without a bound).
pub fn readiness(paths: &U7sPaths, expected: &[ports::PortSpec]) -> Result<i32, String> {
    let pid = nsenter::ready_pid(paths).map_err(|e| e.to_string())?;
    let published = ports::published(&paths.api_socket()).map_err(|e| e.to_string())?;
    if let Some(missing) = expected.iter().find(|p| !published.contains(p)) {
        return Err(msg!("port {missing} is not published yet"));
    }
    let socket = paths.crio_socket();
    if std::os::unix::net::UnixStream::connect(&socket).is_err() {
        return Err(msg!("CRI-O does not answer on {} yet", socket.display()));
    }
    Ok(pid)
}

fn create_private_dir(path: &Path) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io(path))
}

/// Everything the parent does before RootlessKit starts.
fn prepare(config: &NodeConfig, paths: &U7sPaths) -> Result<(), Error> {
    let runtime = paths.runtime_dir();
    if !runtime.is_dir() {
        return Err(Error::NoRuntimeDir(runtime));
    }
    if let Ok(pid) = nsenter::ready_pid(paths) {
        return Err(Error::AlreadyRunning(pid));
    }
    // Left by a killed RootlessKit or CRI-O: nsenter_u7s and the readiness check must not
    // trust them.
    let _ = std::fs::remove_file(paths.ready_file());
    let _ = std::fs::remove_file(paths.crio_socket());
    for dir in [
        paths.usernetes_runtime(),
        paths.crio_runtime(),
        paths.data(),
        paths.config().join("crio"),
        paths.logs(),
    ] {
        create_private_dir(&dir)?;
    }
    for target in PRIVATE_DIRS.iter().chain(SEEDED_DIRS) {
        create_private_dir(&paths.private_dir(target))?;
    }
    let crio_config = CrioConfig::for_node(config, paths, CgroupVersion::detect()).to_toml();
    files::write_atomic(
        &paths.crio_config(),
        crio_config.as_bytes(),
        0o600,
        Owner::default(),
    )?;
    seed_cni_configs(
        Path::new("/etc/cni/net.d"),
        &paths.private_dir("/etc/cni/net.d"),
        config.cni_plugin,
    )?;
    match CNI_PLUGIN_DIRS.iter().map(Path::new).find(|d| d.is_dir()) {
        Some(plugins) => seed(plugins, &paths.private_dir("/opt/cni/bin"), 0o755)?,
        None => eprintln!(
            "[WARNING] no CNI plugins found in {}: /opt/cni/bin of the namespace is empty",
            CNI_PLUGIN_DIRS.join(" or ")
        ),
    }
    Ok(())
}

/// Copies the regular files of `source` into `target` (u7s-admin's), replacing those that
/// differ in size or age; files only `target` has (written by pods) stay.
/// The node's own CNI configuration, as podsec-u7s-kubeadm writes it into /etc/cni/net.d: only
/// it reaches the namespace. CRI-O takes the first usable configuration there, and until the
/// flannel pod has installed its plugin the pod network's is not usable: any other one (root
/// podman's 87-podman-bridge.conflist, or a loopback-only 99-loopback.conf, which older releases
/// wrote) would become the network of every pod started meanwhile (CoreDNS got only `lo` so).
/// With none, CRI-O reports the network not ready and the kubelet waits for flannel.
pub const NODE_CNI_CONFIGS: &[&str] = &[crate::u7s_kubeadm::flannel::CONFLIST_NAME];

/// The network configurations a node keeps in the namespace's /etc/cni/net.d: flannel's, which
/// podsec writes on the host and seeds; calico's, which calico's install-cni writes there itself
/// (nothing is seeded then: a host's flannel configuration of an earlier deployment would become
/// the pods' network until calico is up).
pub fn node_cni_configs(cni: CniPlugin) -> (&'static [&'static str], &'static [&'static str]) {
    match cni {
        CniPlugin::Flannel => (NODE_CNI_CONFIGS, NODE_CNI_CONFIGS),
        CniPlugin::Calico => (&[], &[crate::u7s_kubeadm::calico::CONFLIST_NAME]),
    }
}

/// Seeds the namespace's private /etc/cni/net.d with the node's configurations and removes any
/// other network configuration from it (left there by an older release, which copied them all).
pub fn seed_cni_configs(source: &Path, target: &Path, cni: CniPlugin) -> Result<(), Error> {
    let (seeded, kept) = node_cni_configs(cni);
    seed_only(source, target, 0o644, Some(seeded))?;
    let entries = std::fs::read_dir(target).map_err(io(target))?;
    for entry in entries {
        let entry = entry.map_err(io(target))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let network_config = [".conf", ".conflist", ".json"]
            .iter()
            .any(|suffix| name.ends_with(suffix));
        if network_config && !kept.contains(&name.as_ref()) {
            std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
        }
    }
    Ok(())
}

/// Copies every regular file of `source` into `target` (see [`seed_only`]).
pub fn seed(source: &Path, target: &Path, mode: u32) -> Result<(), Error> {
    seed_only(source, target, mode, None)
}

/// Copies the regular files of `source` (those named in `only`, if given) into `target` when
/// missing or changed; what else is in `target` (written by pods) stays.
fn seed_only(source: &Path, target: &Path, mode: u32, only: Option<&[&str]>) -> Result<(), Error> {
    let entries = match std::fs::read_dir(source) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(source)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(source))?;
        let from = entry.path();
        if only.is_some_and(|names| !names.iter().any(|n| *n == entry.file_name())) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&from) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let to = target.join(entry.file_name());
        let same = std::fs::symlink_metadata(&to).is_ok_and(|existing| {
            existing.is_file()
                && existing.len() == meta.len()
                && existing.modified().ok() >= meta.modified().ok()
        });
        if same {
            continue;
        }
        let temp = tempfile::Builder::new()
            .prefix(".seed.")
            .tempfile_in(target)
            .map_err(io(target))?;
        let mut input = std::fs::File::open(&from).map_err(io(&from))?;
        std::io::copy(&mut input, &mut temp.as_file()).map_err(io(&to))?;
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io(&to))?;
        temp.persist(&to).map_err(|e| io(&to)(e.error))?;
    }
    Ok(())
}

fn setup_error(what: impl Into<String>, detail: impl ToString) -> Error {
    Error::Setup {
        what: what.into(),
        detail: detail.to_string(),
    }
}

/// Removes a copy-up symlink (or nothing) and makes `path` a directory to mount on.
fn own_mountpoint(path: &Path) -> Result<(), Error> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(path).map_err(io(path))?;
    }
    std::fs::create_dir_all(path).map_err(io(path))
}

fn bind(source: &Path, target: &Path) -> Result<(), Error> {
    own_mountpoint(target)?;
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| {
        setup_error(
            msg!("bind mount of {} on {}", source.display(), target.display()),
            e,
        )
    })
}

/// The child half, root inside the user namespace.
fn child(
    paths: &U7sPaths,
    addresses: &[Ipv4Addr],
    command: &[OsString],
) -> Result<ExitCode, Error> {
    for entry in PRIVATE_RUN_ENTRIES {
        let path = Path::new(entry);
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(path).map_err(io(path))?;
        }
    }
    for dir in ["/etc/kubernetes/pki", "/usr/libexec/kubernetes"] {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("[WARNING] cannot create {dir}: {e}");
        }
    }
    for target in PRIVATE_DIRS.iter().chain(SEEDED_DIRS) {
        bind(&paths.private_dir(target), Path::new(target))?;
    }
    // Mount propagation for volumes (CSI, flexvolume): done here, so every restart has it.
    mount(
        None::<&str>,
        "/var/lib/kubelet",
        None::<&str>,
        MsFlags::MS_SHARED | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| setup_error("mount --make-rshared /var/lib/kubelet", e))?;
    let kubelet_link = paths.data().join("kubelet");
    if std::fs::symlink_metadata(&kubelet_link).is_err() {
        std::os::unix::fs::symlink("_var_lib_kubelet", &kubelet_link).map_err(io(&kubelet_link))?;
    }
    own_mountpoint(Path::new("/run/crio"))?;
    let socket_link = Path::new("/run/crio/crio.sock");
    let _ = std::fs::remove_file(socket_link);
    std::os::unix::fs::symlink(paths.crio_socket(), socket_link).map_err(io(socket_link))?;
    open_ping_group_range()?;
    enable_ip_forward()?;
    for address in addresses {
        add_address(*address)?;
    }
    write_ready_file(paths)?;
    eprintln!("[INFO] u7s namespace ready");
    if command.is_empty() {
        loop {
            std::thread::park();
        }
    }
    // CRI-O runs as uid 0 of this user namespace, so it cannot tell by itself that it is
    // rootless; told so, it leaves out of every container what an unprivileged user cannot
    // have: cgroup paths and limits without a delegated cgroup v2 subtree, hugepage limits, a
    // negative oom_score_adj, device cgroup rules (CRI-O's makeOCIConfigurationRootless).
    let error = Command::new(&command[0])
        .args(&command[1..])
        .env(CRIO_ROOTLESS_VARIABLE, "1")
        .exec();
    Err(Error::Spawn {
        program: command[0].to_string_lossy().into_owned(),
        source: error,
    })
}

/// Unprivileged ICMP sockets for the groups of this user namespace, in this network namespace
/// only (upstream opened `0 2147483647` host-wide, as root, in u7sinit.sh). Pods get their own
/// network namespaces and set it through the safe sysctl if they need it.
fn open_ping_group_range() -> Result<(), Error> {
    let map = std::fs::read_to_string("/proc/self/gid_map")
        .map_err(io(Path::new("/proc/self/gid_map")))?;
    let highest = map
        .lines()
        .filter_map(|line| {
            let fields: Vec<u64> = line
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            (fields.len() == 3 && fields[2] > 0).then(|| fields[0] + fields[2] - 1)
        })
        .max()
        .unwrap_or(0);
    let path = Path::new("/proc/sys/net/ipv4/ping_group_range");
    std::fs::write(path, format!("0 {highest}\n")).map_err(io(path))
}

/// Forwarding in this network namespace only: a new network namespace starts with
/// `net.ipv4.ip_forward` 0 whatever the host has, kubeadm's preflight refuses that
/// (FileContent--proc-sys-net-ipv4-ip_forward) and pod traffic (flannel's cni0 to tap0) is routed
/// here. The host's own knob is the wrapper's business (podsec-u7s-kubeadm sets it and writes
/// /etc/sysctl.d); this is the namespace's /proc/sys, root of its user namespace owning it.
fn enable_ip_forward() -> Result<(), Error> {
    let path = Path::new("/proc/sys/net/ipv4/ip_forward");
    std::fs::write(path, "1\n").map_err(io(path))
}

fn add_address(address: Ipv4Addr) -> Result<(), Error> {
    let cidr = format!("{address}/32");
    let mut last = String::new();
    for attempt in 0..ADDRESS_ATTEMPTS {
        let output = Command::new("ip")
            .args(["address", "add", &cidr, "dev", "tap0"])
            .output()
            .map_err(|source| Error::Spawn {
                program: "ip".into(),
                source,
            })?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() || stderr.contains("File exists") {
            return Ok(());
        }
        last = stderr.trim().to_string();
        if attempt + 1 < ADDRESS_ATTEMPTS {
            std::thread::sleep(ADDRESS_INTERVAL);
        }
    }
    Err(setup_error(
        msg!("ip address add {cidr} dev tap0 ({ADDRESS_ATTEMPTS} attempts)"),
        last,
    ))
}

/// Copies RootlessKit's child_pid into the ready file (atomically) once it is there.
fn write_ready_file(paths: &U7sPaths) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let child_pid = loop {
        match std::fs::read_to_string(paths.child_pid_file()) {
            Ok(text) if !text.trim().is_empty() => break text.trim().to_string(),
            _ if Instant::now() > deadline => {
                return Err(setup_error(
                    msg!("waiting for RootlessKit's child_pid"),
                    msg!("{} did not appear", paths.child_pid_file().display()),
                ));
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    files::write_atomic(
        &paths.ready_file(),
        format!("{child_pid}\n").as_bytes(),
        0o644,
        Owner::default(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NodeConfig {
        let text = r#"role = "init-master"
kubernetes-version = "v1.33.13"
uid = 990
registry = "registry.local"
platform = "c10f"
pause-image = "registry.local/c10f/pause:3.10"
external-ip = "192.0.2.10"
advertise-address = "192.0.2.11"
bind-port = 16443
service-cidr = "10.96.0.0/12"
pod-cidr = "10.244.0.0/16"
cni-plugin = "flannel"
extra-ports = ["0.0.0.0:31000:31000/tcp"]
"#;
        NodeConfig::from_toml(text, Path::new("t")).unwrap()
    }

    fn words(argv: &[OsString]) -> Vec<String> {
        argv.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_command_line_has_every_upstream_flag_and_the_fixes() {
        let config = config();
        let paths = U7sPaths::new(990, "/var/lib/u7s-admin");
        let child = child_argv(&config, &paths, Path::new("/usr/bin/podsec-k8s"));
        let argv = words(&rootlesskit_argv(
            &config,
            &paths,
            &HostFacts::default(),
            &child,
        ));
        let expected_head = [
            "/usr/bin/rootlesskit",
            "--state-dir=/run/user/990/usernetes/rootlesskit",
            "--net=slirp4netns",
            "--mtu=65520",
            // Not the Service CIDR (upstream defect 16).
            "--cidr=10.0.2.0/24",
            "--disable-host-loopback",
            "--slirp4netns-sandbox=true",
            "--slirp4netns-seccomp=true",
            "--port-driver=builtin",
            "--copy-up=/etc",
            "--copy-up=/run",
            "--copy-up=/var/lib",
            "--copy-up=/opt",
            "--copy-up=/usr/libexec",
            "--cgroupns",
            "--pidns",
            "--ipcns",
            "--utsns",
            "--propagation=rslave",
            "--publish=0.0.0.0:2379:2379/tcp",
            "--publish=0.0.0.0:2380:2380/tcp",
            // The configured bind port (upstream defect 11).
            "--publish=0.0.0.0:16443:16443/tcp",
            "--publish=0.0.0.0:10250:10250/tcp",
            "--publish=0.0.0.0:10256:10256/tcp",
            "--publish=0.0.0.0:8472:8472/udp",
            "--publish=0.0.0.0:6053:53/udp",
            "--publish=0.0.0.0:31000:31000/tcp",
        ];
        assert_eq!(&argv[..expected_head.len()], expected_head);
        assert_eq!(
            &argv[expected_head.len()..],
            [
                "/usr/bin/podsec-k8s",
                "u7s-rootlesskit",
                "--child",
                "--uid",
                "990",
                "--home",
                "/var/lib/u7s-admin",
                "--address",
                "192.0.2.10",
                "--address",
                "192.0.2.11",
                "--",
                "/usr/bin/crio",
                "--config",
                "/var/lib/u7s-admin/.config/usernetes/crio/crio.conf"
            ]
        );
        let facts = HostFacts {
            present: vec!["/var/lib/crio".into()],
            cgroup2: true,
        };
        let argv = words(&rootlesskit_argv(&config, &paths, &facts, &child));
        assert!(argv.contains(&"--copy-up=/var/lib/crio".to_string()));
        assert!(argv.contains(&"--evacuate-cgroup2=rootlesskit_evac".to_string()));
    }

    #[test]
    fn the_child_arguments_parse_back() {
        let config = config();
        let paths = U7sPaths::new(990, "/var/lib/u7s-admin");
        let mut argv = child_argv(&config, &paths, Path::new("/usr/bin/podsec-k8s"));
        argv.remove(0);
        let args = Args::try_parse_from(argv).unwrap();
        assert!(args.child);
        assert_eq!(args.uid, Some(990));
        assert_eq!(args.addresses.len(), 2);
        assert_eq!(args.command[0], "/usr/bin/crio");
    }

    #[test]
    fn seeding_copies_package_files_and_keeps_what_pods_wrote() {
        let source = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        std::fs::write(source.path().join("bridge"), b"plugin v1").unwrap();
        std::fs::write(target.path().join("flannel"), b"written by a pod").unwrap();
        seed(source.path(), target.path(), 0o755).unwrap();
        assert_eq!(
            std::fs::read(target.path().join("bridge")).unwrap(),
            b"plugin v1"
        );
        assert_eq!(
            std::fs::read(target.path().join("flannel")).unwrap(),
            b"written by a pod"
        );
        // A changed package file replaces the copy; the source is never written.
        std::fs::write(source.path().join("bridge"), b"plugin v2!").unwrap();
        seed(source.path(), target.path(), 0o755).unwrap();
        assert_eq!(
            std::fs::read(target.path().join("bridge")).unwrap(),
            b"plugin v2!"
        );
        seed(Path::new("/nonexistent/podsec"), target.path(), 0o755).unwrap();
    }

    #[test]
    fn only_the_nodes_own_network_configuration_reaches_the_namespace() {
        let source = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        for name in ["10-flannel.conflist", "87-podman-bridge.conflist"] {
            std::fs::write(source.path().join(name), name).unwrap();
        }
        // Copied there by an older release, and a lock file of the CNI library.
        std::fs::write(target.path().join("87-podman-bridge.conflist"), "old").unwrap();
        std::fs::write(target.path().join("99-loopback.conf"), "old").unwrap();
        std::fs::write(target.path().join("cni.lock"), "").unwrap();
        seed_cni_configs(source.path(), target.path(), CniPlugin::Flannel).unwrap();
        let names = |dir: &Path| {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(target.path()), ["10-flannel.conflist", "cni.lock"]);
        // calico: nothing of the host's is seeded (flannel's of an earlier deployment neither),
        // what calico's install-cni wrote inside stays
        let target = tempfile::tempdir().unwrap();
        std::fs::write(target.path().join("10-calico.conflist"), "calico").unwrap();
        std::fs::write(target.path().join("calico-kubeconfig"), "calico").unwrap();
        std::fs::write(target.path().join("99-loopback.conf"), "old").unwrap();
        seed_cni_configs(source.path(), target.path(), CniPlugin::Calico).unwrap();
        assert_eq!(
            names(target.path()),
            ["10-calico.conflist", "calico-kubeconfig"]
        );
    }
}
