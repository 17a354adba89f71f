//! podsec-k8s-save-oci: OCI archives of the Kubernetes images of a platform (package podsec-dev).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, NotRoot};

pub const NAME: &str = "podsec-k8s-save-oci";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Save the Kubernetes images that kubeadm will pull into per-architecture OCI archives
/// <oci_dir>/<arch>.tar.xz, to be loaded with podsec-load-sign-oci.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Environment:\n  U7S_PLATFORM      platform of the images; default from /etc/os-release\n  U7S_KUBEVERSION   Kubernetes version of the images\nMust be run as root."
)]
pub struct Args {
    /// Directory to create for the archives (must not exist)
    #[arg(value_name = "oci_dir")]
    pub oci_dir: PathBuf,
    /// Comma-separated architectures, or all (amd64,arm64,arm,ppc64le,386)
    #[arg(value_name = "arch")]
    pub arch: String,
    /// Platform of the images (default: this host's)
    #[arg(value_name = "platform")]
    pub platform: Option<String>,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, NotRoot> {
    cli::require_root()?;
    Ok(cli::not_implemented(NAME, 2))
}
