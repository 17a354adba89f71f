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
use podsec_common::i18n::Message;
use podsec_common::msg;

use super::cgroups::CgroupVersion;
use super::crio::{self, CrioConfig};
use super::nsenter;
use super::paths::{self, CNI_PLUGIN_DIRS, PRIVATE_DIRS, SEEDED_DIRS, U7sPaths};
use super::ports;
use crate::node_config::{CniPlugin, NodeConfig, NodeConfigError};

mod child;
mod parent;
#[cfg(test)]
mod tests;

pub use parent::readiness;

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

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
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
    NotReady(Duration, Message),
    #[error("{what} failed: {detail}")]
    Setup { what: Message, detail: Message },
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
        return child::child(&paths, &args.addresses, &args.command);
    }
    parent::parent()
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
