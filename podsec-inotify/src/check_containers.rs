//! podsec-inotify-check-containers: watch the file systems of running containers.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, NotRoot};

pub const NAME: &str = "podsec-inotify-check-containers";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Watch the writable layers of the containers of root, of every rootless user and of
/// u7s-admin with inotify, and log each change: in home directories and /etc as Warning,
/// elsewhere as Critical, naming the container.
#[derive(Parser, Debug)]
#[command(name = NAME, version, after_help = "Environment: none read. Must be run as root.")]
pub struct Args {
    /// Tokens old unit files pass (`2>/dev/null`): ignored with a warning
    #[arg(hide = true, allow_hyphen_values = true)]
    pub stray: Vec<String>,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, NotRoot> {
    cli::require_root()?;
    Ok(cli::not_implemented(NAME, 2))
}
