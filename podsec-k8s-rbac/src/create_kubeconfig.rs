//! podsec-k8s-rbac-create-kubeconfig: a client certificate issued by the cluster, and a kubeconfig.

use std::convert::Infallible;
use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli;

pub const NAME: &str = "podsec-k8s-rbac-create-kubeconfig";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Issue a client certificate for a user through a CertificateSigningRequest (CN = user,
/// O = groups) and write ~user/.kube/config (0600) for the cluster of the administrator's
/// kubeconfig.
#[derive(Parser, Debug)]
#[command(name = NAME, version, after_help = crate::KUBECONFIG_HELP)]
pub struct Args {
    /// The user, optionally with the remote account of the cluster (accepted for compatibility)
    #[arg(value_name = "user[@remote_user]")]
    pub user: String,
    /// Groups of the user (default k8s)
    #[arg(value_name = "group")]
    pub groups: Vec<String>,
    /// Allow system: groups such as system:masters
    #[arg(long)]
    pub allow_system_groups: bool,
    /// Delete an existing CertificateSigningRequest of the same name first
    #[arg(long)]
    pub replace_csr: bool,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, Infallible> {
    Ok(cli::not_implemented(NAME, 2))
}
