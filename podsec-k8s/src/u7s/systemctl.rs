//! `systemctl`: first in the PATH of the u7s runtime (and of admins who put
//! /usr/libexec/podsec/u7s/bin first). In the u7s namespace or as u7s-admin, kubeadm's
//! `systemctl restart kubelet` must reach u7s-admin's user manager with `systemctl --user`. Not
//! with `-M u7s-admin@`: for anyone but host root that goes through the system manager (a
//! transient unit, polkit), which refuses u7s-admin ("Interactive authentication required") and
//! root of the namespace alike. As u7s-admin on the host: the manager's own socket
//! (`XDG_RUNTIME_DIR=/run/user/<uid>`). Inside the namespace: u7s-admin's D-Bus session bus
//! (`/run/user/<uid>/bus`), because the manager's socket refuses the namespace's root (sd-bus
//! of systemd 252 claims uid 0 while the kernel reports u7s-admin) and dbus-daemon does not.
//! Root on the host gets the system's systemctl unchanged (spec 4.7).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Parser;
use podsec_common::cli::{self, Failure};

use podsec_common::host::users::{self, AccountError};

use super::nsenter;
use super::paths::U7S_USER;

pub const NAME: &str = "systemctl";
/// Where the distribution's systemctl may be (ALT has /bin and /sbin, Debian /usr/bin).
pub const CANDIDATES: &[&str] = &[
    "/usr/bin/systemctl",
    "/bin/systemctl",
    "/usr/sbin/systemctl",
    "/sbin/systemctl",
];

/// systemctl for the u7s runtime: u7s-admin's user manager from the namespace or as u7s-admin,
/// the system manager for root.
#[derive(Parser, Debug)]
#[command(name = NAME, version, disable_help_flag = true, disable_version_flag = true)]
pub struct Args {
    /// systemctl's arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub arguments: Vec<OsString>,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error("no systemctl found in {}", CANDIDATES.join(", "))]
    NotFound,
    #[error("cannot run {0}: {1}")]
    Exec(PathBuf, std::io::Error),
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl Failure for Error {}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

/// The system's systemctl: the first candidate that is not this wrapper.
pub fn real_systemctl() -> Option<PathBuf> {
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok());
    CANDIDATES.iter().map(Path::new).find_map(|candidate| {
        let resolved = candidate.canonicalize().ok()?;
        (Some(&resolved) != me.as_ref() && resolved.is_file()).then(|| candidate.to_path_buf())
    })
}

/// The arguments for the real systemctl.
pub fn arguments(for_user_manager: bool, given: &[OsString]) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    if for_user_manager {
        args.push("--user".into());
    }
    args.extend(given.iter().cloned());
    args
}

/// The runtime directory of u7s-admin's user manager.
pub fn user_runtime_dir() -> Result<PathBuf, Error> {
    let account = users::user(U7S_USER)?;
    Ok(PathBuf::from(format!("/run/user/{}", account.uid)))
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let real = real_systemctl().ok_or(Error::NotFound)?;
    let user_manager = nsenter::inside() || !nix::unistd::getuid().is_root();
    // Outside the host seam: this wrapper's job is to run the real systemctl with the right bus.
    let mut command = Command::new(&real);
    command.args(arguments(user_manager, &args.arguments));
    if nsenter::inside() {
        let bus = user_runtime_dir()?.join("bus");
        let mut address = OsString::from("unix:path=");
        address.push(bus);
        // Without XDG_RUNTIME_DIR systemctl takes the session bus, not the manager's socket.
        command
            .env("DBUS_SESSION_BUS_ADDRESS", address)
            .env_remove("XDG_RUNTIME_DIR");
    } else if user_manager {
        command
            .env("XDG_RUNTIME_DIR", user_runtime_dir()?)
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
    }
    let error = command.exec();
    Err(Error::Exec(real, error))
}
