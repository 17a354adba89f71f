//! podsec-create-policy: trust policy, /etc/hosts binding and /var/sigstore of a node.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, NotRoot};

pub const NAME: &str = "podsec-create-policy";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Set up the image-trust policy of this node for the registry and signature server at IP.
///
/// On the signature server itself (IP is one of this host's addresses) it creates the
/// reject-all policy and /var/sigstore; on other nodes it downloads the keys and policy.json
/// from http://sigstore.local:81/keys/. Binds registry.local, sigstore.local and trivy.local to
/// IP in /etc/hosts.
#[derive(Parser, Debug)]
#[command(name = NAME, version, after_help = "Environment: none read. Must be run as root.")]
pub struct Args {
    /// IPv4 address of the registry and signature server (not a loopback address)
    #[arg(value_name = "ip_address_of_registrar_and_signature_server")]
    pub ip: String,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, NotRoot> {
    cli::require_root()?;
    Ok(cli::not_implemented(NAME, 2))
}
