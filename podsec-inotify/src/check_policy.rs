//! podsec-inotify-check-policy: Nagios plugin checking the container policies of all users.

use std::convert::Infallible;
use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli;

use crate::plugin_args::{self, PluginArgs, RANGES_HELP, UNKNOWN};

pub const NAME: &str = "podsec-inotify-check-policy";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Check the container policies of root and every podman user (default policy, signature
/// requirements, transports, signature store, groups, locked configuration) and report the
/// weighted findings as a Nagios plugin and to syslog.
#[derive(Parser, Debug)]
#[command(name = NAME, version, disable_help_flag = true, after_help = RANGES_HELP)]
pub struct Args {
    #[command(flatten)]
    pub plugin: PluginArgs,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, Infallible> {
    if let Err(code) = plugin_args::require_root("POLICY") {
        return Ok(code);
    }
    Ok(cli::not_implemented(NAME, UNKNOWN))
}
