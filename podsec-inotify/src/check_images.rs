//! podsec-inotify-check-images: Nagios plugin checking the signatures of every user's images.

use std::convert::Infallible;
use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli;

use crate::plugin_args::{self, PluginArgs, RANGES_HELP, UNKNOWN};

pub const NAME: &str = "podsec-inotify-check-images";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Check the images of root and every podman user: each signature is verified against the
/// keys of the user's policy (signed, unsigned, invalid, out of policy); report the
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
