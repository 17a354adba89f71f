//! podsec-k8s-rbac-bindrole: bind a user to a role.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli;
use podsec_common::i18n::Localize;

use crate::api::{self, AdminConfig};
use crate::binding;
use crate::binding_args::{BindingArgs, Target};
use crate::error::Error;

pub const NAME: &str = "podsec-k8s-rbac-bindrole";

/// Create a RoleBinding or ClusterRoleBinding for a user, or add the user to an existing one
/// that refers to the same role.
#[derive(Parser, Debug)]
#[command(name = NAME, version, after_help = crate::KUBECONFIG_HELP)]
pub struct Args {
    #[command(flatten)]
    pub binding: BindingArgs,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let target = Target::parse(&args.binding)?;
    let admin = AdminConfig::load()?;
    let message = api::block_on(async {
        let client = admin.client().await?;
        binding::bind(client, &target).await
    })??;
    println!("{NAME}: {}", message.localized());
    Ok(ExitCode::SUCCESS)
}
