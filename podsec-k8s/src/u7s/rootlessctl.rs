//! `rootlessctl`: RootlessKit's API client on the u7s namespace's socket (spec 4.7), so admins
//! can publish NodePorts: `nsenter_u7s rootlessctl add-ports 0.0.0.0:31000:31000/tcp`, or as
//! root `rootlessctl list-ports` (dropping to u7s-admin first).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Parser;
use podsec_common::cli::{self, Failure};

use super::nsenter;
use super::paths::{self, U7sPaths};
use crate::node_config::{NodeConfig, NodeConfigError};

pub const NAME: &str = "rootlessctl";
pub const ROOTLESSCTL: &str = "/usr/bin/rootlessctl";

/// RootlessKit's rootlessctl on the socket of the u7s namespace (list-ports, add-ports,
/// remove-ports, info).
#[derive(Parser, Debug)]
#[command(name = NAME, version, disable_help_flag = true)]
pub struct Args {
    /// rootlessctl's arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub arguments: Vec<OsString>,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] NodeConfigError),
    #[error(transparent)]
    Account(#[from] podsec_common::host::users::AccountError),
    #[error("cannot run {ROOTLESSCTL}: {0}")]
    Exec(std::io::Error),
}

impl Failure for Error {}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let socket_args = |socket: PathBuf| -> Vec<OsString> {
        let mut all = vec![OsString::from("--socket"), socket.into()];
        all.extend(args.arguments.iter().cloned());
        all
    };
    // Help and version need no namespace: rootlessctl's own text, wherever it is asked.
    let first = args.arguments.first().and_then(|a| a.to_str());
    if matches!(first, Some("--help" | "-h" | "--version" | "-v")) {
        return Err(Error::Exec(
            // Outside the host seam: this wrapper becomes rootlessctl (exec).
            Command::new(ROOTLESSCTL).args(&args.arguments).exec(),
        ));
    }
    let uid = nix::unistd::getuid().as_raw();
    let mut command = if nsenter::inside() || uid != 0 {
        // u7s-admin, inside or outside: its own state directory.
        let state = std::env::var_os("ROOTLESSKIT_STATE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_default();
                U7sPaths::new(uid, home).state_dir()
            });
        // Outside the host seam: this wrapper's job is to run rootlessctl.
        let mut plain = Command::new(ROOTLESSCTL);
        plain.args(socket_args(state.join("api.sock")));
        plain
    } else {
        // Root on the host: the node's namespace, as its account (the API server is theirs).
        let config = NodeConfig::load_default()?;
        let account = paths::account_of(config.uid)?;
        let socket = U7sPaths::new(account.uid, &account.home).api_socket();
        paths::command_as(&account, ROOTLESSCTL, &socket_args(socket))
    };
    Err(Error::Exec(command.exec()))
}
