//! `systemctl`: first in the PATH of the u7s runtime (and of admins who put
//! /usr/libexec/podsec/u7s/bin first). In the u7s namespace or as u7s-admin, kubeadm's
//! `systemctl restart kubelet` must reach u7s-admin's user manager: `systemctl --user
//! -M u7s-admin@ -T ...`. Root on the host gets the system's systemctl unchanged (spec 4.7).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Parser;
use podsec_common::cli::{self, Failure};

use super::nsenter;
use super::paths::U7S_USER;

pub const NAME: &str = "systemctl";
pub const IMPLEMENTED: bool = true;
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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no systemctl found in {}", CANDIDATES.join(", "))]
    NotFound,
    #[error("cannot run {0}: {1}")]
    Exec(PathBuf, std::io::Error),
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
        args.extend([
            "--user".into(),
            "-M".into(),
            format!("{U7S_USER}@").into(),
            "-T".into(),
        ]);
    }
    args.extend(given.iter().cloned());
    args
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let real = real_systemctl().ok_or(Error::NotFound)?;
    let user_manager = nsenter::inside() || !nix::unistd::getuid().is_root();
    let error = Command::new(&real)
        .args(arguments(user_manager, &args.arguments))
        .exec();
    Err(Error::Exec(real, error))
}
