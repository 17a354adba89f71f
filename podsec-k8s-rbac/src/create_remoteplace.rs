//! podsec-k8s-rbac-create-remoteplace: the user's kubeconfig on a remote workstation.
//!
//! Upstream copied from a literal host `clusterIP` into a `.kube` of the current directory, so it
//! never worked. Here one OpenSSH `ssh` session (one password prompt at most) runs a fixed remote
//! script that creates ~/.kube (0700) and replaces ~/.kube/config (0600) with what it reads on
//! its standard input: the caller's own kubeconfig. The address is an argument, never script text.

use podsec_common::msg;
use std::ffi::OsString;
use std::io::Write;
use std::process::{Command, ExitCode, Stdio};

use clap::Parser;
use podsec_common::cli;
use podsec_common::host::users;
use podsec_common::i18n::Localize;

use crate::error::Error;
use crate::user_kubeconfig;

pub const NAME: &str = "podsec-k8s-rbac-create-remoteplace";

/// Runs on the remote side under the user's login shell; reads the kubeconfig from stdin.
/// mktemp keeps a half-copied file from ever being ~/.kube/config.
const REMOTE_SCRIPT: &str = "set -e; umask 077; mkdir -p .kube; chmod 700 .kube; \
t=$(mktemp .kube/.config.XXXXXXXX); trap 'rm -f \"$t\"' EXIT; cat > \"$t\"; \
chmod 600 \"$t\"; mv -f \"$t\" .kube/config; trap - EXIT";

/// Copy your kubeconfig to your account on a remote workstation over ssh, creating ~/.kube
/// there with mode 0700.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Copies ~/.kube/config of the calling user (as create-kubeconfig wrote it) to the same \
account on <address> with the OpenSSH client (ssh options come from ~/.ssh/config).\n\nEnvironment: none read."
)]
pub struct Args {
    /// Address of the remote workstation
    #[arg(value_name = "address", allow_hyphen_values = true)]
    pub address: String,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

/// A host name, an IPv4 or an IPv6 address; never something ssh would read as an option.
pub fn check_address(address: &str) -> Result<(), Error> {
    let ip = address.parse::<std::net::IpAddr>().is_ok();
    let host = !address.is_empty()
        && address.len() <= 253
        && address.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ip || host {
        Ok(())
    } else {
        Err(Error::Invalid(msg!(
            "invalid address '{}': give a host name or an IP address",
            address.escape_debug()
        )))
    }
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    check_address(&args.address)?;
    let uid = nix::unistd::geteuid().as_raw();
    let account = users::find_user_by_uid(uid)?
        .ok_or_else(|| Error::Failed(msg!("the calling uid {uid} has no account")))?;
    let path = account.home.join(".kube/config");
    let config = user_kubeconfig::read_no_follow(&path)
        .map_err(|e| Error::Failed(msg!("cannot read {}: {e}", path.display())))?;
    user_kubeconfig::client_certificate(&config).map_err(|why| {
        Error::Failed(msg!(
            "{} is not a usable kubeconfig ({why}); ask the security administrator to run podsec-k8s-rbac-create-kubeconfig",
            path.display()
        ))
    })?;
    // Outside the host seam: the work happens on the remote host, through the caller's ssh.
    let mut child = Command::new("ssh")
        .args([
            "-o",
            "ClearAllForwardings=yes",
            "-o",
            "ConnectTimeout=20",
            "--",
        ])
        .arg(&args.address)
        .arg(REMOTE_SCRIPT)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Failed(msg!("cannot run ssh: {e}")))?;
    let write_result = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&config))
        .transpose();
    let status = child.wait().map_err(|e| Error::Failed(msg!("ssh: {e}")))?;
    if !status.success() {
        return Err(Error::Failed(msg!(
            "copying {} to {}:.kube/config failed (ssh {status})",
            path.display(),
            args.address
        )));
    }
    write_result.map_err(|e| Error::Failed(msg!("ssh: cannot send the kubeconfig: {e}")))?;
    println!(
        "{NAME}: {}",
        msg!(
            "{} copied to {}:.kube/config (0600, in a 0700 ~/.kube)",
            path.display(),
            args.address
        )
        .localized()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for good in ["192.0.2.10", "ws1", "ws1.example.org", "::1", "2001:db8::1"] {
            check_address(good).unwrap();
        }
        for bad in [
            "",
            "-oProxyCommand=x",
            "a b",
            "user@host",
            "host:22",
            "a..b",
            "h;id",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }
}
