//! podsec-k8s-rbac-get-userroles: the roles a user is bound to, as JSON.

use std::convert::Infallible;
use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli;

pub const NAME: &str = "podsec-k8s-rbac-get-userroles";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Print, as JSON, the cluster roles and the roles per namespace a user is bound to, each with
/// the command that removes the binding.
#[derive(Parser, Debug)]
#[command(name = NAME, version, after_help = crate::KUBECONFIG_HELP)]
pub struct Args {
    /// The user
    pub user: String,
    /// `showRules` also prints the rules of each role
    #[arg(value_name = "showRules")]
    pub show_rules: Option<String>,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, Infallible> {
    Ok(cli::not_implemented(NAME, 2))
}
