//! `nsenter_u7s [command...]`: run a command (default: a shell) in the u7s namespace of
//! u7s-admin, where it is root while staying u7s-admin on the host (spec 4.2). Root may call it
//! too: it drops to the node's account first. Inside the namespace already, it just runs it.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use clap::Parser;
use podsec_common::cli::{self, Failure};
use podsec_common::i18n::Message;

use super::nsenter::{self, ATTEMPTS, INTERVAL};
use super::paths::{self, U7sPaths};
use crate::node_config::{NodeConfig, NodeConfigError};

pub const NAME: &str = "nsenter_u7s";

/// Run a command (default: a shell) in the RootlessKit namespaces of u7s-admin: root inside,
/// u7s-admin on the host. Examples: `nsenter_u7s crictl ps`,
/// `nsenter_u7s rootlessctl add-ports 0.0.0.0:31000:31000/tcp`.
#[derive(Parser, Debug)]
#[command(name = NAME, version)]
pub struct Args {
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] NodeConfigError),
    #[error(transparent)]
    Account(#[from] podsec_common::host::users::AccountError),
    #[error("must be run as u7s-admin (uid {expected}) or root, not uid {actual}")]
    WrongUser { expected: u32, actual: u32 },
    #[error("nsenter failed after {ATTEMPTS} attempts, RootlessKit not running? ({0})")]
    NotRunning(Message),
    #[error("cannot run {0}: {1}")]
    Exec(String, std::io::Error),
}

impl Failure for Error {}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

fn shell() -> OsString {
    std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into())
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let command = if args.command.is_empty() {
        vec![shell()]
    } else {
        args.command
    };
    if nsenter::inside() {
        // Outside the host seam: inside the namespace this wrapper becomes the command (exec).
        let error = Command::new(&command[0]).args(&command[1..]).exec();
        return Err(Error::Exec(
            command[0].to_string_lossy().into_owned(),
            error,
        ));
    }
    let config = NodeConfig::load_default()?;
    let caller = nix::unistd::getuid().as_raw();
    if caller != 0 && caller != config.uid {
        return Err(Error::WrongUser {
            expected: config.uid,
            actual: caller,
        });
    }
    let account = paths::account_of(config.uid)?;
    let paths = U7sPaths::new(account.uid, &account.home);
    let pid = nsenter::wait_ready(&paths, ATTEMPTS, INTERVAL)
        .map_err(|e| Error::NotRunning(Message::of(&e)))?;
    let workdir = if caller == 0 {
        account.home.clone()
    } else {
        std::env::current_dir().unwrap_or_else(|_| account.home.clone())
    };
    let nsenter_args = nsenter::nsenter_args(pid, Some(&workdir), &command);
    let mut nsenter = if caller == 0 {
        paths::command_as(&account, nsenter::NSENTER, &nsenter_args)
    } else {
        // Outside the host seam: this wrapper's job is to run nsenter.
        let mut plain = Command::new(nsenter::NSENTER);
        plain.args(&nsenter_args);
        plain
    };
    nsenter
        .env(nsenter::INSIDE_VARIABLE, "1")
        .env("ROOTLESSKIT_STATE_DIR", paths.state_dir());
    let error = nsenter.exec();
    Err(Error::Exec(nsenter::NSENTER.into(), error))
}
