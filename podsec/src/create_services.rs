//! podsec-create-services: the local registry, the signature web server and trivy.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, NotRoot};

pub const NAME: &str = "podsec-create-services";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Start the services of the signature server: the image registry registry.local on port 80,
/// the signature web server sigstore.local on port 81 and, when installed, the trivy server on
/// port 4954.
#[derive(Parser, Debug)]
#[command(name = NAME, version, after_help = "Environment: none read. Must be run as root.")]
pub struct Args {}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, NotRoot> {
    cli::require_root()?;
    Ok(cli::not_implemented(NAME, 2))
}
