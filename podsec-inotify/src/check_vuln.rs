//! podsec-inotify-check-vuln: scan the images of root and of every user with trivy.

use std::convert::Infallible;
use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli;

pub const NAME: &str = "podsec-inotify-check-vuln";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Scan the images of the caller (all users' when run as root) for HIGH and CRITICAL
/// vulnerabilities on the trivy server, log the findings and mail them.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Environment:\n  U7S_TRIVY_SERVER    trivy server host (default trivy.local; port 4954)"
)]
pub struct Args {
    /// Mail the findings to this address
    #[arg(short = 'm', value_name = "email")]
    pub mail_to: Option<String>,
    /// Flags old unit files pass (`-vvv -c 100 >/dev/null 2>&1`): ignored with a warning
    #[arg(hide = true, allow_hyphen_values = true, trailing_var_arg = true)]
    pub stray: Vec<String>,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, Infallible> {
    Ok(cli::not_implemented(NAME, 2))
}
