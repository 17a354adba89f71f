//! podsec-create-podmanusers: locked-down accounts that run signed images with podman.
//!
//! The account's ~/.config/containers belongs to root (the user can add nothing there, so the
//! system policy.json and registries.d apply) and holds the storage.conf that
//! podsec-inotify-check-policy expects; it is made immutable where the file system allows, so
//! the user cannot rename it away either. What this does not prevent is in docs/security.md
//! (XDG_CONFIG_HOME, --signature-policy).

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, Failure, NotRoot};
use podsec_common::host::files::{FileError, Owner};
use podsec_common::host::users::{self, Account, NewAccount};
use podsec_common::host::{Host, HostDir, RealHost};
use podsec_common::tr;

use crate::layout::GROUP_PODMAN;

pub const NAME: &str = "podsec-create-podmanusers";

/// The storage.conf of a podman user. podman insists on an explicit driver once the file
/// exists: overlay (native rootless overlay), or vfs where the home directory itself lies on
/// overlayfs (containers, test sandboxes), which rootless overlay cannot stack on.
pub fn storage_conf(driver: &str) -> String {
    format!(
        "# Written by {NAME}: this account's container configuration is fixed by root.\n\
         [storage]\n\
         driver = \"{driver}\"\n"
    )
}

/// The driver for a home directory on the file system of `home`.
fn storage_driver(host: &impl Host, home: &Path) -> &'static str {
    if host.on_overlayfs(home) {
        "vfs"
    } else {
        "overlay"
    }
}

/// Create podman users: members of group podman whose container configuration is fixed by root,
/// so they run only images the system policy trusts.
#[derive(Parser, Debug)]
#[command(name = NAME, version, after_help = "Environment: none read. Must be run as root.")]
pub struct Args {
    /// Accounts to create
    #[arg(value_name = "username", required = true)]
    pub users: Vec<String>,
    /// Ask nothing: the accounts stay locked unless --password-stdin is given
    #[arg(long)]
    pub batch: bool,
    /// Set the password of every account from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error(transparent)]
    NotRoot(#[from] NotRoot),
    #[error(transparent)]
    Account(#[from] users::AccountError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("setting the password of {user}: {detail}")]
    Password {
        user: String,
        detail: podsec_common::i18n::Message,
    },
    #[error("{0} is given twice")]
    Duplicate(String),
    #[error("--password-stdin: {0}")]
    PasswordStdin(String),
}

impl Failure for Error {}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    cli::require_root()?;
    create(&RealHost, &args, std::io::stdin())
}

/// The command on `host`, the password (with --password-stdin) read from `stdin`.
pub fn create(host: &impl Host, args: &Args, stdin: impl Read) -> Result<ExitCode, Error> {
    // Every name is checked before any account is touched.
    for (index, name) in args.users.iter().enumerate() {
        users::check_account_name(name)?;
        if args.users[..index].contains(name) {
            return Err(Error::Duplicate(name.clone()));
        }
    }
    // The password too: a bad one must not leave accounts made without it.
    let password = if args.password_stdin {
        Some(users::password_from(stdin).map_err(Error::PasswordStdin)?)
    } else {
        None
    };
    host.ensure_group(GROUP_PODMAN, true)?;
    for name in &args.users {
        let (account, created) = host.ensure_user(
            name,
            &NewAccount {
                primary_group: Some(GROUP_PODMAN),
                create_home: true,
                comment: Some("podsec podman user"),
                ..NewAccount::default()
            },
        )?;
        if !created {
            host.add_to_groups(name, &[GROUP_PODMAN])?;
        }
        match &password {
            Some(password) => host.set_password(name, password)?,
            None if !args.batch && created => {
                println!(
                    "{}",
                    tr!("Enter the password for user '{name}':", name = name)
                );
                if !host
                    .run_shown("passwd", &["--", name])
                    .is_ok_and(|s| s.success())
                {
                    return Err(Error::Password {
                        user: name.clone(),
                        detail: podsec_common::msg!("passwd failed"),
                    });
                }
            }
            None => {}
        }
        lock_configuration(host, &account)?;
        println!(
            "{}",
            tr!(
                "Podman user {name}: ~/.config/containers is fixed by root",
                name = name
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// ~/.config (the user's) / containers (root's, 0755) / storage.conf (root's, 0644); then the
/// immutable attribute on the directory so it cannot be renamed or replaced.
fn lock_configuration(host: &impl Host, account: &Account) -> Result<(), Error> {
    let home = host.open_dir(&account.home)?;
    let config = home.create_dir_all(
        Path::new(".config"),
        0o755,
        Owner::new(account.uid, account.gid),
    )?;
    let root = Owner::new(0, 0);
    let containers = config.create_dir_all(Path::new("containers"), 0o755, root)?;
    // Lift an earlier run's immutability (through the descriptor, never a path a user could
    // redirect), rewrite, and set it again.
    containers.set_immutable(false)?;
    containers.set_mode_owner(0o755, root)?;
    set_aside_user_entries(host, account, &config, &containers)?;
    let conf = storage_conf(storage_driver(host, &account.home));
    containers.write_file("storage.conf", conf.as_bytes(), 0o644, root)?;
    if !containers.set_immutable(true)? {
        eprintln!(
            "{NAME}: {}",
            tr!(
                "note: {path} could not be made immutable (file system without attributes); it stays root-owned",
                path = containers.path().display()
            )
        );
    }
    Ok(())
}

/// An account that existed before may have its own policy.json, registries.d, containers.conf
/// ... in ~/.config/containers: they would still apply (podman prefers them to the system's),
/// and what the user owns stays editable. Everything but storage.conf (rewritten by root next)
/// moves, unfollowed, to a new `~/.config/containers.podsec-saved.<time>` of the user's.
fn set_aside_user_entries<H: Host>(
    host: &H,
    account: &Account,
    config: &H::Dir,
    containers: &H::Dir,
) -> Result<(), Error> {
    // What a run killed while writing storage.conf left is ours, not the user's.
    containers.sweep_stale_temps(".storage.conf.");
    let entries: Vec<OsString> = containers
        .list()?
        .into_iter()
        .filter(|name| name != "storage.conf")
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    let stamp = host
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let saved = (0..100)
        .map(|n| match n {
            0 => format!("containers.podsec-saved.{stamp}"),
            n => format!("containers.podsec-saved.{stamp}.{n}"),
        })
        // Root's until everything is in: the user cannot put anything in the way meanwhile.
        .find_map(|name| config.create_dir_new(&name, 0o700, Owner::new(0, 0)).ok())
        .ok_or_else(|| FileError::Exists {
            path: config
                .path()
                .join(format!("containers.podsec-saved.{stamp}")),
        })?;
    for name in &entries {
        containers.move_entry(name, &saved)?;
    }
    saved.set_mode_owner(0o700, Owner::new(account.uid, account.gid))?;
    eprintln!(
        "{NAME}: {}",
        tr!(
            "note: {path} held {entries} of the user; moved to {saved} (only root's storage.conf stays)",
            path = containers.path().display(),
            entries = entries
                .iter()
                .map(|n| n.to_string_lossy().escape_debug().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            saved = saved.path().display()
        )
    );
    Ok(())
}

#[cfg(test)]
mod tests;
