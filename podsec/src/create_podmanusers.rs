//! podsec-create-podmanusers: locked-down accounts that run signed images with podman.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, NotRoot};

pub const NAME: &str = "podsec-create-podmanusers";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Create podman users: members of group podman whose container configuration is fixed by root,
/// so they run only images the system policy trusts.
#[derive(Parser, Debug)]
#[command(name = NAME, version, after_help = "Environment: none read. Must be run as root.")]
pub struct Args {
    /// Accounts to create
    #[arg(value_name = "username", required = true)]
    pub users: Vec<String>,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, NotRoot> {
    cli::require_root()?;
    Ok(cli::not_implemented(NAME, 2))
}
