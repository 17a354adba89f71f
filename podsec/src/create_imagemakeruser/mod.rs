//! podsec-create-imagemakeruser: accounts of image makers, their signing keys and policy scopes.
//!
//! All arguments are validated and the policy change is computed before anything changes. A
//! scope already trusted with another maker's key is an error (never a silent replacement, never
//! two required signatures). Re-running for an existing maker reuses the account and the key.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, Failure, NotRoot};
use podsec_common::host::files::{FileError, Owner};
use podsec_common::host::users::{self, Account, NewAccount};
use podsec_common::host::versioned::Outcome;
use podsec_common::host::{Host, HostDir, RealHost};
use podsec_common::image_ref::{self, RefError};
use podsec_common::policy::{Policy, PolicyError, Requirement, SignedBy};
use podsec_common::tr;

use crate::create_services::{self, check_is_server};
use crate::layout::{self, GROUP_PODMAN, GROUP_PODMAN_DEV, KEYS_DIR, SIGNATURES_DIR};
use crate::signature_store::{self, StoreError};

pub const NAME: &str = "podsec-create-imagemakeruser";

pub const DEFAULT_USER: &str = "imagemaker";
pub const DEFAULT_SCOPE: &str = layout::LOCAL_REGISTRY;

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
    /// E-mail of the signing key's user ID, one per image maker in order (with --batch)
    #[arg(long, value_name = "address")]
    pub email: Vec<String>,
    /// Protect the signing key with the passphrase read from this file
    #[arg(long, value_name = "file")]
    pub passphrase_file: Option<PathBuf>,
    /// Set the account password from standard input (otherwise the account stays locked)
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error(transparent)]
    NotRoot(#[from] NotRoot),
    #[error(transparent)]
    NotServer(#[from] create_services::Error),
    #[error(
        "invalid repository path description for '{0}': the format is <user>@<registry>[/<path>] when several users are given"
    )]
    Format(String),
    #[error("'{0}': {1}")]
    Scope(String, RefError),
    #[error("two image makers for the same repository path {0}")]
    DuplicateScope(String),
    #[error("--batch needs one --email per image maker ({users} given, {emails} e-mails)")]
    Emails { users: usize, emails: usize },
    #[error("invalid e-mail address '{0}'")]
    BadEmail(String),
    #[error(
        "scope {scope} already trusts {existing}; remove that rule from the policy first (an image maker never silently replaces another's key)"
    )]
    ScopeTaken { scope: String, existing: String },
    #[error("/etc/containers/policy.json: {0}")]
    Policy(#[from] PolicyError),
    #[error("{SIGNATURES_DIR} does not exist: run podsec-create-policy first")]
    NoSigstore,
    #[error("{path} belongs to another account; refusing to hand it to {user}")]
    StoreTaken { path: String, user: String },
    #[error(
        "{user}@{scope} would sign for a whole registry, as {other}@{other_scope} does: signature paths do not name the registry, so both would write at the top of the signature store; give {user} a scope with a path (<registry>/<path>)"
    )]
    WholeRegistryTaken {
        user: String,
        scope: String,
        other: String,
        other_scope: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Account(#[from] users::AccountError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("gpg for {user}: {detail}")]
    Gpg {
        user: String,
        detail: podsec_common::i18n::Message,
    },
    #[error("{0}: the passphrase (its first line) is empty")]
    EmptyPassphrase(PathBuf),
    #[error(
        "--password-stdin: the password (the first line of standard input) is empty or contains ':'"
    )]
    BadPassword,
    #[error("setting the password of {user}: {detail}")]
    Password {
        user: String,
        detail: podsec_common::i18n::Message,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Failure for Error {}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

/// One image maker to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maker {
    pub user: String,
    pub scope: String,
    /// The scope's namespace below the registry host (`c10f` for registry.local/c10f).
    pub namespace: Option<String>,
}

/// Upstream's argument forms, validated.
pub fn parse_makers(arguments: &[String]) -> Result<Vec<Maker>, Error> {
    let specs: Vec<(String, String)> = match arguments {
        [] => vec![(DEFAULT_USER.into(), DEFAULT_SCOPE.into())],
        [one] if !one.contains('@') => vec![(one.clone(), DEFAULT_SCOPE.into())],
        many => many
            .iter()
            .map(|a| {
                a.split_once('@')
                    .map(|(u, s)| (u.to_string(), s.to_string()))
                    .ok_or_else(|| Error::Format(a.clone()))
            })
            .collect::<Result<_, _>>()?,
    };
    let mut scopes = BTreeSet::new();
    let mut makers = Vec::new();
    for (user, scope) in specs {
        users::check_account_name(&user)?;
        let (_, namespace) = image_ref::parse_scope(&scope)
            .map_err(|e| Error::Scope(format!("{user}@{scope}"), e))?;
        if !scopes.insert(scope.clone()) {
            return Err(Error::DuplicateScope(scope));
        }
        makers.push(Maker {
            user,
            scope,
            namespace,
        });
    }
    Ok(makers)
}

/// The system policy with a signedBy rule for each maker's scope; a scope that already trusts
/// something else is refused.
pub fn add_rules(mut policy: Policy, makers: &[Maker]) -> Result<Policy, Error> {
    for maker in makers {
        let key = layout::key_path(&maker.user);
        let rules = policy.docker_scope_mut(&maker.scope);
        let ours = |r: &Requirement| matches!(r, Requirement::SignedBy(s) if s.key_path.as_deref() == Some(key.as_str()));
        if let Some(other) = rules.iter().find(|r| !ours(r)) {
            return Err(Error::ScopeTaken {
                scope: maker.scope.clone(),
                existing: serde_json::to_string(other).unwrap_or_default(),
            });
        }
        if rules.is_empty() {
            rules.push(Requirement::SignedBy(SignedBy::gpg_key_path(&key)));
        }
    }
    Ok(policy)
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && email
            .chars()
            .all(|c| c.is_ascii_graphic() && !"<>()\"'`\\;,".contains(c))
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    cli::require_root()?;
    create(&RealHost, &args, std::io::stdin())
}

/// The command on `host`, the password (with --password-stdin) read from `stdin`.
pub fn create(host: &impl Host, args: &Args, mut stdin: impl Read) -> Result<ExitCode, Error> {
    // The arguments first: a bad one is named whatever state the host is in.
    let makers = parse_makers(&args.users)?;
    if args.batch && args.email.len() != makers.len() {
        return Err(Error::Emails {
            users: makers.len(),
            emails: args.email.len(),
        });
    }
    if let Some(bad) = args.email.iter().find(|e| !valid_email(e)) {
        return Err(Error::BadEmail(bad.clone()));
    }
    check_is_server(host)?;
    let store = host
        .open_dir(Path::new(SIGNATURES_DIR))
        .map_err(|_| Error::NoSigstore)?;
    let passphrase = match &args.passphrase_file {
        Some(path) => match read_trimmed(host, path)? {
            // An empty passphrase would leave the key unprotected without a word.
            empty if empty.is_empty() => return Err(Error::EmptyPassphrase(path.clone())),
            passphrase => Some(passphrase),
        },
        None => None,
    };
    let password = if args.password_stdin {
        let mut text = String::new();
        stdin
            .read_to_string(&mut text)
            .map_err(|source| Error::Read {
                path: "<stdin>".into(),
                source,
            })?;
        let password = text.lines().next().unwrap_or_default().to_string();
        if password.is_empty() || password.contains(':') {
            return Err(Error::BadPassword);
        }
        Some(password)
    } else {
        None
    };
    let current = host
        .current(&layout::policy_file())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|| Policy::reject_all().to_json());
    let policy = add_rules(Policy::from_json(&current)?, &makers)?;
    check_store(host, &store, &makers, &policy)?;

    for (index, maker) in makers.iter().enumerate() {
        let email = args
            .email
            .get(index)
            .cloned()
            .unwrap_or_else(|| format!("{}@{}", maker.user, DEFAULT_SCOPE));
        let account = create_account(host, maker)?;
        if let Some(password) = &password {
            host.set_password(&account.name, password)?;
        } else if !args.batch {
            println!(
                "{}",
                tr!(
                    "Enter the password for user {user} - the container image developer",
                    user = account.name
                )
            );
            if !host
                .run_shown("passwd", &["--", &account.name])
                .is_ok_and(|s| s.success())
            {
                return Err(Error::Password {
                    user: account.name.clone(),
                    detail: podsec_common::msg!("passwd failed"),
                });
            }
        }
        prepare_store(host, maker, &account, &policy)?;
        let fingerprint = ensure_key(host, &account, &email, args.batch, passphrase.as_deref())?;
        let public = export_key(host, &account, &fingerprint)?;
        host.write_atomic(
            Path::new(&layout::key_path(&maker.user)),
            &public,
            0o644,
            Owner::new(0, 0),
        )?;
        write_user_config(host, &account, &policy)?;
        println!(
            "{}",
            tr!(
                "Image maker {user} signs {scope} with key {fingerprint} ({email}); public key {key}",
                user = maker.user,
                scope = maker.scope,
                fingerprint = fingerprint,
                email = email,
                key = layout::key_path(&maker.user)
            )
        );
    }
    let text = policy.to_json();
    match host.install(&layout::policy_file(), text.as_bytes(), 0o644)? {
        Outcome::Unchanged => {
            println!("{}", tr!("/etc/containers/policy.json: unchanged"))
        }
        Outcome::Switched { version, .. } => {
            println!("/etc/containers/policy.json -> {}", version.display())
        }
    }
    host.write_atomic(
        &Path::new(KEYS_DIR).join("policy.json"),
        text.as_bytes(),
        0o644,
        Owner::new(0, 0),
    )?;
    // The address clients fetch from: the one sigstore.local is bound to here.
    let address = host
        .read_to_string(Path::new("/etc/hosts"))
        .ok()
        .and_then(|hosts| podsec_common::host::hosts::address_of(&hosts, layout::SIGSTORE_HOST))
        .unwrap_or_else(|| tr!("<server address>").to_string());
    println!(
        "{}",
        tr!(
            "Published {dir}/policy.json: run podsec-create-policy {address} on the other nodes to fetch it",
            dir = KEYS_DIR,
            address = address
        )
    );
    crate::create_policy::print_pins(host, &address);
    Ok(ExitCode::SUCCESS)
}

fn read_trimmed(host: &impl Host, path: &Path) -> Result<String, Error> {
    host.read_to_string(path)
        .map(|t| t.lines().next().unwrap_or_default().to_string())
        .map_err(|source| Error::Read {
            path: path.into(),
            source,
        })
}

fn create_account(host: &impl Host, maker: &Maker) -> Result<Account, Error> {
    let (account, created) = host.ensure_user(
        &maker.user,
        &NewAccount {
            primary_group: Some(GROUP_PODMAN),
            groups: &[GROUP_PODMAN_DEV],
            create_home: true,
            comment: Some("podsec image maker"),
            ..NewAccount::default()
        },
    )?;
    if !created {
        host.add_to_groups(&maker.user, &[GROUP_PODMAN, GROUP_PODMAN_DEV])?;
        println!(
            "{}",
            tr!(
                "User {user} exists; added to groups {groups}",
                user = maker.user,
                groups = format!("{GROUP_PODMAN}, {GROUP_PODMAN_DEV}")
            )
        );
    }
    Ok(account)
}

/// Whether the signature store can give each maker its own place, decided before any change:
/// a scope with a path needs its directory free (absent, root's or already this maker's); a
/// whole registry needs the top of the store to be no other maker's and ACLs to give it.
fn check_store<H: Host>(
    host: &H,
    store: &H::Dir,
    makers: &[Maker],
    policy: &Policy,
) -> Result<(), Error> {
    let whole = signature_store::whole_registry_makers(policy);
    for maker in makers {
        match &maker.namespace {
            Some(namespace) => {
                let uid = host.find_user(&maker.user)?.map(|a| a.uid);
                check_scope_dir(store, maker, namespace, uid)?;
            }
            None => {
                if let Some((other_scope, other)) = whole.iter().find(|(_, u)| *u != maker.user) {
                    return Err(Error::WholeRegistryTaken {
                        user: maker.user.clone(),
                        scope: maker.scope.clone(),
                        other: other.clone(),
                        other_scope: other_scope.clone(),
                    });
                }
                if !store.acls_supported() {
                    return Err(StoreError::NoAcl {
                        path: SIGNATURES_DIR.into(),
                        user: maker.user.clone(),
                    }
                    .into());
                }
            }
        }
    }
    Ok(())
}

/// The first directory of a scope's path in the store must be absent, root's or the maker's
/// (`uid`, when the account exists).
fn check_scope_dir(
    store: &impl HostDir,
    maker: &Maker,
    namespace: &str,
    uid: Option<u32>,
) -> Result<(), Error> {
    let first = namespace.split('/').next().unwrap_or_default();
    if let Some(entry) = store.entry(first)?
        && (!entry.is_dir || (Some(entry.uid) != uid && entry.uid != 0))
    {
        return Err(Error::StoreTaken {
            path: format!("{SIGNATURES_DIR}/{first}"),
            user: maker.user.clone(),
        });
    }
    Ok(())
}

/// The maker's place in the signature store, so that no other maker can pre-create or replace
/// its signatures: for a scope with a path, its own directory created by root; for a whole
/// registry, the right to create entries at the top of the store (an ACL entry; see
/// [`signature_store`]). The top itself stays root's.
fn prepare_store(
    host: &impl Host,
    maker: &Maker,
    account: &Account,
    policy: &Policy,
) -> Result<(), Error> {
    if let Some(namespace) = &maker.namespace {
        let store = host.open_dir(Path::new(SIGNATURES_DIR))?;
        check_scope_dir(&store, maker, namespace, Some(account.uid))?;
        let podman_dev = host.group_gid(GROUP_PODMAN_DEV)?.unwrap_or(account.gid);
        let owner = Owner::new(account.uid, podman_dev);
        let dir = store.create_dir_all(Path::new(namespace), 0o755, owner)?;
        dir.set_mode_owner(0o755, owner)?;
    }
    signature_store::secure(host, NAME, policy)?;
    Ok(())
}

fn gpg_error(account: &Account, output: &std::process::Output) -> Error {
    Error::Gpg {
        user: account.name.clone(),
        detail: podsec_common::i18n::Message::verbatim(
            String::from_utf8_lossy(&output.stderr)
                .trim()
                .replace('\n', " "),
        ),
    }
}

/// gpg as the maker, in the maker's own keyring.
fn gpg(
    host: &impl Host,
    account: &Account,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<std::process::Output, Error> {
    host.run_as(account, "gpg", args, stdin)
        .map_err(|e| Error::Gpg {
            user: account.name.clone(),
            detail: podsec_common::i18n::Message::of(&e),
        })
}

/// The fingerprint of the maker's signing key for `email`, generating the key when missing.
fn ensure_key(
    host: &impl Host,
    account: &Account,
    email: &str,
    batch: bool,
    passphrase: Option<&str>,
) -> Result<String, Error> {
    if let Some(fingerprint) = secret_key_fingerprint(host, account, email)? {
        println!(
            "{}",
            tr!(
                "User {user} already has a signing key for {email}",
                user = account.name,
                email = email
            )
        );
        return Ok(fingerprint);
    }
    let uid = format!("{} <{email}>", account.name);
    // RSA, not ed25519: CRI-O and other containers/image consumers built with the pure-Go
    // OpenPGP backend (`containers_image_openpgp`, as CRI-O often is) cannot read EdDSA keys,
    // and a signature that one node's runtime cannot verify blocks that node's pods.
    let key_spec = ["--quick-gen-key", &uid, "rsa3072", "sign", "never"];
    if batch || passphrase.is_some() {
        let input = format!("{}\n", passphrase.unwrap_or_default());
        let mut args = vec![
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase-fd",
            "0",
        ];
        args.extend(key_spec);
        let output = gpg(host, account, &args, Some(input.as_bytes()))?;
        if !output.status.success() {
            return Err(gpg_error(account, &output));
        }
    } else {
        println!(
            "{}",
            tr!(
                "Creating the signing key of {user}: gpg asks for its passphrase",
                user = account.name
            )
        );
        let status = host
            .run_as_interactive(account, "gpg", &key_spec)
            .map_err(|e| Error::Gpg {
                user: account.name.clone(),
                detail: podsec_common::i18n::Message::of(&e),
            })?;
        if !status.success() {
            return Err(Error::Gpg {
                user: account.name.clone(),
                detail: podsec_common::msg!("key generation failed ({status})", status = status),
            });
        }
    }
    secret_key_fingerprint(host, account, email)?.ok_or_else(|| Error::Gpg {
        user: account.name.clone(),
        detail: podsec_common::msg!("no secret key for {email} after generation", email = email),
    })
}

fn secret_key_fingerprint(
    host: &impl Host,
    account: &Account,
    email: &str,
) -> Result<Option<String>, Error> {
    let output = gpg(
        host,
        account,
        &[
            "--batch",
            "--with-colons",
            "--list-secret-keys",
            &format!("<{email}>"),
        ],
        None,
    )?;
    if !output.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(crate::gpg_colons::primary_fingerprints(&text, "sec")
        .into_iter()
        .next())
}

fn export_key(host: &impl Host, account: &Account, fingerprint: &str) -> Result<Vec<u8>, Error> {
    let output = gpg(
        host,
        account,
        &["--batch", "--armor", "--export", fingerprint],
        None,
    )?;
    if !output.status.success() || output.stdout.is_empty() {
        return Err(gpg_error(account, &output));
    }
    Ok(output.stdout)
}

/// ~maker/.config/containers/{policy.json, registries.d/default.yaml}: the system rules with
/// default accept (to pull base images), and the local store as lookaside-staging. Written
/// through descriptors opened without following symlinks, owned by the maker.
fn write_user_config(host: &impl Host, account: &Account, policy: &Policy) -> Result<(), Error> {
    let owner = Owner::new(account.uid, account.gid);
    let home = host.open_dir(&account.home)?;
    let containers = home.create_dir_all(Path::new(".config/containers"), 0o755, owner)?;
    let mut own = policy.clone();
    own.default = vec![Requirement::insecure_accept_anything()];
    containers.write_file("policy.json", own.to_json().as_bytes(), 0o644, owner)?;
    let registries_d = containers.create_dir_all(Path::new("registries.d"), 0o755, owner)?;
    registries_d.write_file(
        "default.yaml",
        layout::maker_registries_d()
            .to_yaml()
            .expect("podsec's registries.d serialises")
            .as_bytes(),
        0o644,
        owner,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;
