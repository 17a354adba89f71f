//! podsec-k8s-rbac-create-user: the local account of a cluster user.

use podsec_common::msg;
use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli;
use podsec_common::host::users::{self, NewAccount};
use podsec_common::i18n::Localize;

use crate::error::Error;
use crate::names;
use crate::user_kubeconfig;

pub const NAME: &str = "podsec-k8s-rbac-create-user";

/// The group upstream puts every cluster user in.
pub const K8S_GROUP: &str = "k8s";

/// Create the local account of a Kubernetes user, with a private ~/.kube (mode 0700).
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "The account gets the group k8s (created if missing) and podman when that group exists. \
An existing account is kept; its ~/.kube is made private. Without --password-stdin a new account \
has no password (set one with passwd before logging in over ssh).\n\nEnvironment: none read. Must be run as root."
)]
pub struct Args {
    /// Set the account's password from the first line of standard input (as upstream's
    /// interactive passwd did; checked before anything is created)
    #[arg(long)]
    pub password_stdin: bool,
    /// Account name
    pub user: String,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    cli::require_root()?;
    names::check_account(&args.user)?;
    // Read and checked first: a bad password must not leave an account without one.
    let password = if args.password_stdin {
        Some(
            users::password_from(std::io::stdin().lock())
                .map_err(|e| Error::Invalid(msg!("--password-stdin: {}", e)))?,
        )
    } else {
        None
    };
    users::ensure_group(K8S_GROUP, true)?;
    // upstream also gave podman access; only where podsec made that group
    let mut groups = vec![K8S_GROUP];
    if users::group_gid("podman")?.is_some() {
        groups.push("podman");
    }
    let spec = NewAccount {
        groups: &groups,
        create_home: true,
        ..NewAccount::default()
    };
    let (account, created) = users::ensure_user(&args.user, &spec)?;
    if !created {
        users::add_to_groups(&account.name, &[K8S_GROUP])?;
    }
    let dir = user_kubeconfig::open_kube_dir(&account)?;
    if let Some(password) = &password {
        users::set_password(&account.name, password)?;
    }
    if created {
        println!(
            "{NAME}: {}",
            msg!(
                "account '{}' created with a private {}",
                account.name,
                dir.path().display()
            )
            .localized()
        );
    } else {
        println!(
            "{NAME}: {}",
            msg!(
                "account '{}' exists; {} is private",
                account.name,
                dir.path().display()
            )
            .localized()
        );
    }
    Ok(ExitCode::SUCCESS)
}
