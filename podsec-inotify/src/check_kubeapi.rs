//! podsec-inotify-check-kubeapi: requests the Kubernetes API refused, from its audit log.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, NotRoot};

pub const NAME: &str = "podsec-inotify-check-kubeapi";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Follow the Kubernetes audit log and record every request answered with code 400 or more in
/// /var/lib/podsec/u7s/log/kubeapi/forbidden.log and syslog; mail the record to root.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Environment:\n  MAILTO    address for -m (default root)\nMust be run as root."
)]
pub struct Args {
    /// Follow the audit log as a daemon (like tail -F)
    #[arg(short = 'd')]
    pub daemon: bool,
    /// Mail the accumulated forbidden.log and start a new one
    #[arg(short = 'm')]
    pub mail: bool,
    /// Process what the audit log holds now, then exit
    #[arg(long)]
    pub once: bool,
    /// The audit log to read
    #[arg(
        long,
        value_name = "path",
        default_value = "/etc/kubernetes/audit/audit.log"
    )]
    pub audit_log: PathBuf,
    /// Tokens old unit files pass (`>/dev/null`, `2>&1`): ignored with a warning
    #[arg(hide = true)]
    pub stray: Vec<String>,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, NotRoot> {
    cli::require_root()?;
    Ok(cli::not_implemented(NAME, 2))
}
