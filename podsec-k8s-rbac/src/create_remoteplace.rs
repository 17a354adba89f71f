//! podsec-k8s-rbac-create-remoteplace: the user's kubeconfig on a remote workstation.

use std::convert::Infallible;
use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli;

pub const NAME: &str = "podsec-k8s-rbac-create-remoteplace";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Copy your kubeconfig to your account on a remote workstation over ssh, creating ~/.kube
/// there with mode 0700.
#[derive(Parser, Debug)]
#[command(name = NAME, version, after_help = "Environment: none read.")]
pub struct Args {
    /// Address of the remote workstation
    #[arg(value_name = "address")]
    pub address: String,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, Infallible> {
    Ok(cli::not_implemented(NAME, 2))
}
