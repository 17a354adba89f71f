//! podsec-u7s-kubeadm (installed as `kubeadm` in /usr/libexec/podsec/u7s/bin): kubeadm for
//! rootless clusters whose pods all run in the user namespace of u7s-admin.

pub mod audit;
pub mod flags;
pub mod flannel;
pub mod host_prep;
pub mod kubeadm_config;
pub mod network;
pub mod packages;
pub mod plan;
pub mod registry;
pub mod resolve;
pub mod runtime;
pub mod versions;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, NotRoot};

pub const NAME: &str = "podsec-u7s-kubeadm";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = false;

/// Deploy and manage a rootless Kubernetes node: `kubeadm init`, `kubeadm join` (worker or
/// --control-plane) and the other kubeadm subcommands, run inside the namespace of u7s-admin.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Environment:\n  \
U7S_PLATFORM              platform (c10f, p10, p11, sisyphus); default from /etc/os-release\n  \
U7S_REGISTRY              image registry; default registry.local if bound in /etc/hosts, else registry.altlinux.org\n  \
U7S_KUBEVERSION           Kubernetes version (vX.Y or vX.Y.Z); default the newest available\n  \
U7S_SETAVAILABLEIMAGES    allow substituting the nearest available image tag of the same minor\n  \
U7S_FLANNEL_TAG           flannel image tag\n  \
U7S_FLANNELCNIPLUGIN_TAG  flannel CNI plugin image tag\n\
Must be run as root."
)]
pub struct Args {
    /// kubeadm subcommand (init, join, reset, token, upgrade, config, ...) and its flags
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "subcommand [flags]"
    )]
    pub kubeadm: Vec<String>,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(_args: Args) -> Result<ExitCode, NotRoot> {
    cli::require_root()?;
    Ok(cli::not_implemented(NAME, 2))
}
