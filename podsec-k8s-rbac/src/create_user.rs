//! podsec-k8s-rbac-create-user: the local account of a cluster user.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, NotRoot};

pub const NAME: &str = "podsec-k8s-rbac-create-user";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Create the local account of a Kubernetes user, with a private ~/.kube (mode 0700).
#[derive(Parser, Debug)]
#[command(name = NAME, version, after_help = "Environment: none read. Must be run as root.")]
pub struct Args {
    /// Account name
    pub user: String,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, NotRoot> {
    cli::require_root()?;
    Ok(cli::not_implemented(NAME, 2))
}
