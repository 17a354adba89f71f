//! podsec-inotify-build-invulnerable-image: build an image and keep it only if trivy finds no
//! HIGH or CRITICAL vulnerability.

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli;

pub const NAME: &str = "podsec-inotify-build-invulnerable-image";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Build an image with podman (when a Dockerfile is given) and scan it with trivy; a built image
/// with HIGH or CRITICAL vulnerabilities is removed. With only an image name, scan that image.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Exit status: 0 clean, 2 build failed, 3 trivy failed, 4 HIGH found, 5 CRITICAL found.\n\
Environment:\n  U7S_TRIVY_SERVER    trivy server host (default trivy.local; port 4954)"
)]
pub struct Args {
    /// Name of the image to build or scan
    #[arg(value_name = "image_name")]
    pub image: String,
    /// Dockerfile to build from
    #[arg(value_name = "dockerfile")]
    pub dockerfile: Option<PathBuf>,
    /// Build context directory (default .)
    #[arg(value_name = "context_dir")]
    pub context: Option<PathBuf>,
    /// Further options for podman build
    #[arg(
        value_name = "podman build options",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub build_options: Vec<String>,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, Infallible> {
    Ok(cli::not_implemented(NAME, 2))
}
