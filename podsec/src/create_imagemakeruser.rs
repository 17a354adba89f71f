//! podsec-create-imagemakeruser: accounts of image makers, their signing keys and policy scopes.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, NotRoot};

pub const NAME: &str = "podsec-create-imagemakeruser";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Create image-maker accounts: each gets an OpenPGP signing key, its public key in
/// /var/sigstore/keys, and a signedBy rule for its registry scope in the system policy.
///
/// Without arguments the user is imagemaker@registry.local; one argument without '@' is
/// <user>@registry.local.
#[derive(Parser, Debug)]
#[command(name = NAME, version, after_help = "Environment: none read. Must be run as root.")]
pub struct Args {
    /// Image makers and the registry scope each signs for
    #[arg(value_name = "user[@registry/path]")]
    pub users: Vec<String>,
    /// Ask nothing: no password prompt, no key passphrase prompt (needs --email)
    #[arg(long)]
    pub batch: bool,
    /// E-mail of the signing key's user ID (with --batch)
    #[arg(long, value_name = "address")]
    pub email: Option<String>,
    /// Protect the signing key with the passphrase read from this file
    #[arg(long, value_name = "file")]
    pub passphrase_file: Option<PathBuf>,
    /// Set the account password from standard input (otherwise the account stays locked)
    #[arg(long)]
    pub password_stdin: bool,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, NotRoot> {
    cli::require_root()?;
    Ok(cli::not_implemented(NAME, 2))
}
