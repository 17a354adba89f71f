//! podsec-save-oci: per-architecture OCI archives of images (package podsec-dev).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, NotRoot};

pub const NAME: &str = "podsec-save-oci";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Save images into per-architecture OCI archives <dir>/<arch>.tar.xz for podsec-load-sign-oci.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Environment:\n  U7S_ALTREGISTRY                registry the images come from\n  PODSECSAVE_USEEXISTINGIMAGES   use images already in local storage\nMust be run as root."
)]
pub struct Args {
    /// Directory to create for the archives (must not exist)
    #[arg(value_name = "oci_dir")]
    pub oci_dir: PathBuf,
    /// Comma-separated architectures, or all (amd64,arm64,arm,ppc64le,386)
    #[arg(value_name = "archs|all")]
    pub archs: String,
    /// Optional source transport (default docker://), then the images
    #[arg(value_name = "[transport] image", required = true)]
    pub images: Vec<String>,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, NotRoot> {
    cli::require_root()?;
    Ok(cli::not_implemented(NAME, 2))
}
