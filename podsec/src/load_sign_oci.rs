//! podsec-load-sign-oci: push the images of an OCI archive to the registry and sign them.

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli;

pub const NAME: &str = "podsec-load-sign-oci";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Push every image of an OCI archive (<arch>/index.json inside tar.xz) for one architecture to
/// the registry and write a simple-signing signature for each into the signature store.
///
/// For members of group podman_dev (image makers).
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Environment:\n  U7S_PLATFORM    platform of this host (c10f, p10, ...); default from /etc/os-release"
)]
pub struct Args {
    /// The archive made by podsec-save-oci or podsec-k8s-save-oci
    #[arg(value_name = "archive.tar.xz")]
    pub archive: PathBuf,
    /// Architecture to load: amd64, arm64, arm, ppc64le or 386
    #[arg(value_name = "arch")]
    pub arch: String,
    /// E-mail of the signing key in your GnuPG keyring
    #[arg(value_name = "signer_email")]
    pub signer: String,
    /// Target registry and path (default registry.local/<platform>)
    #[arg(value_name = "registry/path")]
    pub target: Option<String>,
    /// Sign with this OpenPGP secret key file instead of the GnuPG keyring (automation)
    #[arg(long, value_name = "file")]
    pub sign_key: Option<PathBuf>,
    /// Answer yes to the platform-mismatch question
    #[arg(long)]
    pub yes: bool,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, Infallible> {
    Ok(cli::not_implemented(NAME, 2))
}
