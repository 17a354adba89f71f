//! podsec-create-policy: trust policy, /etc/hosts binding and /var/sigstore of a node.
//!
//! Everything that can fail without changing anything is done first: the address is checked,
//! the /etc/hosts binding computed, and on a client node the keys and policy are downloaded and
//! validated into memory. Only then does the host change, in an order where an interruption
//! leaves the old policy in force.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, Failure, NotRoot};
use podsec_common::host::files::{FileError, Owner};
use podsec_common::host::seam::sysctl_path;
use podsec_common::host::versioned::Outcome;
use podsec_common::host::{Host, HostDir, RealHost, hosts, users};
use podsec_common::policy::{Policy, Requirement};
use podsec_common::tr;

use crate::fetch::{self, FetchError, Pins, TrustBundle};
use crate::layout::{self, GROUP_PODMAN, GROUP_PODMAN_DEV, KEYS_DIR};
use crate::registries_conf;
use crate::signature_store::{self, StoreError};

pub const NAME: &str = "podsec-create-policy";

/// Set up the image-trust policy of this node for the registry and signature server at IP.
///
/// On the signature server itself (IP is one of this host's addresses) it creates the
/// reject-all policy and /var/sigstore; on other nodes it downloads the keys and policy.json
/// from http://sigstore.local:81/keys/. Binds registry.local, sigstore.local and trivy.local to
/// IP in /etc/hosts.
#[derive(Parser, Debug)]
#[command(name = NAME, version, after_help = "Environment: none read. Must be run as root.")]
pub struct Args {
    /// IP address of the registry and signature server (not a loopback address)
    #[arg(value_name = "ip_address_of_registrar_and_signature_server", required = true, num_args = 1..)]
    pub ip: Vec<String>,
    /// On a client node: accept the downloaded policy.json only if its SHA-256 is this
    #[arg(long, value_name = "hex")]
    pub expect_policy_sha256: Option<String>,
    /// On a client node: accept only keys with these primary fingerprints (repeatable)
    #[arg(long = "expect-key-fingerprint", value_name = "fingerprint")]
    pub expect_key_fingerprints: Vec<String>,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error(transparent)]
    NotRoot(#[from] NotRoot),
    #[error("only one IP address of the registry and signature server may be given, got {0}")]
    TooManyAddresses(usize),
    #[error("invalid IP address: '{0}'")]
    InvalidAddress(String),
    #[error("IP address {0} must not be a loopback, unspecified or multicast address")]
    NotUsable(IpAddr),
    #[error(transparent)]
    Hosts(#[from] hosts::HostsError),
    #[error(transparent)]
    Account(#[from] users::AccountError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    RegistriesConf(#[from] registries_conf::RegistriesConfError),
    #[error("cannot read /etc/hosts: {0}")]
    ReadHosts(std::io::Error),
    #[error("cannot list this host's addresses: {0}")]
    Addresses(std::io::Error),
    #[error("cannot enable {knob}: {path}: {source}")]
    Sysctl {
        knob: String,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl Failure for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Error::InvalidAddress(_) => 2,
            _ => 1,
        }
    }
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

/// A usable server address: one IPv4 or IPv6 address, nothing else in the word.
pub fn parse_address(text: &str) -> Result<IpAddr, Error> {
    let address: IpAddr = text
        .parse()
        .map_err(|_| Error::InvalidAddress(text.to_string()))?;
    if address.is_loopback() || address.is_unspecified() || address.is_multicast() {
        return Err(Error::NotUsable(address));
    }
    Ok(address)
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    cli::require_root()?;
    configure(&RealHost, &args, fetch::trust_bundle)
}

/// The command on `host`; a client node's keys and policy come from `download`.
pub fn configure(
    host: &impl Host,
    args: &Args,
    download: impl FnOnce(IpAddr, &Pins) -> Result<TrustBundle, FetchError>,
) -> Result<ExitCode, Error> {
    if args.ip.len() != 1 {
        return Err(Error::TooManyAddresses(args.ip.len()));
    }
    let address = parse_address(&args.ip[0])?;
    let pins = Pins {
        policy_sha256: args.expect_policy_sha256.clone(),
        key_fingerprints: args.expect_key_fingerprints.clone(),
    };
    pins.check()?;

    // Decide everything before changing anything.
    let hosts_text = host
        .read_to_string(Path::new("/etc/hosts"))
        .map_err(Error::ReadHosts)?;
    let new_hosts = hosts::bind_services(&hosts_text, address)?;
    let is_server = host.is_local_address(address).map_err(Error::Addresses)?;
    let downloaded = if is_server {
        None
    } else {
        println!(
            "{}",
            tr!(
                "Downloading keys and policy from http://sigstore.local:{port}/keys/ ({address})",
                port = layout::SIGSTORE_PORT,
                address = address
            )
        );
        let bundle = download(address, &pins)?;
        println!(
            "{}",
            tr!(
                "Fetched policy.json with SHA-256 {digest}; keys with fingerprints {fingerprints}",
                digest = bundle.pins.policy_sha256,
                fingerprints = bundle.pins.key_fingerprints.join(" ")
            )
        );
        if pins.policy_sha256.is_none() || pins.key_fingerprints.is_empty() {
            eprintln!(
                "{}",
                tr!(
                    "WARNING: the keys and policy came over plain HTTP and were not pinned: whoever answered as {address} decides which images this node trusts. Compare the digest and fingerprints above with what the server printed, and pin them: podsec-create-policy {options} {address}",
                    address = address,
                    options = bundle.pins.options()
                )
            );
        }
        Some(bundle)
    };

    host.ensure_group(GROUP_PODMAN, true)?;
    host.ensure_group(GROUP_PODMAN_DEV, true)?;
    match new_hosts {
        Some(text) => {
            println!(
                "{}",
                tr!(
                    "Adding a binding of domains registry.local sigstore.local trivy.local to IP address {address}",
                    address = address
                )
            );
            host.write_atomic(
                Path::new("/etc/hosts"),
                text.as_bytes(),
                0o644,
                Owner::default(),
            )?;
        }
        None => println!(
            "{}",
            tr!(
                "Domains registry.local sigstore.local trivy.local are already bound to {address}",
                address = address
            )
        ),
    }
    create_sigstore_layout(host, is_server)?;

    let policy = match downloaded {
        Some(bundle) => {
            install_keys(host, &bundle.keys)?;
            bundle.policy_text
        }
        None => server_policy(host),
    };
    if is_server {
        let rules = Policy::from_json(&policy).unwrap_or_else(|_| Policy::reject_all());
        signature_store::secure(host, NAME, &rules)?;
    }
    report(
        "/etc/containers/policy.json",
        host.install(&layout::policy_file(), policy.as_bytes(), 0o644)?,
    );
    host.create_dirs(Path::new(layout::REGISTRIES_D_DIR))?;
    report(
        "/etc/containers/registries.d/default.yaml",
        host.install(
            &layout::registries_d_file(),
            layout::system_registries_d()
                .to_yaml()
                .expect("podsec's registries.d serialises")
                .as_bytes(),
            0o644,
        )?,
    );
    let conf = layout::registries_conf_file();
    let current = host
        .current(&conf)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let edited = registries_conf::allow_insecure_registry_local(&current)?;
    report(
        "/etc/containers/registries.conf",
        host.install(&conf, edited.as_bytes(), 0o644)?,
    );
    alt_only_steps(host)?;
    if is_server {
        print_pins(host, &address.to_string());
    }
    Ok(ExitCode::SUCCESS)
}

/// On the server: how clients pin what it publishes (nothing before the first image maker).
/// A report once the work is done: a failure to compute it is said, not fatal.
pub fn print_pins(host: &impl Host, address: &str) {
    match fetch::published_pins(host, Path::new(KEYS_DIR)) {
        Ok(Some(pins)) => println!(
            "{}",
            tr!(
                "Clients pin this server's policy and keys with: podsec-create-policy {options} {address}",
                options = pins.options(),
                address = address
            )
        ),
        Ok(None) => {}
        Err(e) => eprintln!("{}", tr!("Note: no pins for clients: {error}", error = e)),
    }
}

fn report(what: &str, outcome: Outcome) {
    match outcome {
        Outcome::Unchanged => println!("{}", tr!("{what}: unchanged", what = what)),
        Outcome::Switched { version, .. } => println!("{what} -> {}", version.display()),
    }
}

/// The server keeps a policy that already rejects by default (it holds the image makers' rules);
/// anything else is replaced by reject-all.
fn server_policy(host: &impl Host) -> String {
    let current = host
        .current(&layout::policy_file())
        .and_then(|bytes| Policy::from_json(&String::from_utf8_lossy(&bytes)).ok());
    match current {
        Some(policy) if matches!(policy.default.as_slice(), [Requirement::Reject(_)]) => {
            policy.to_json()
        }
        _ => Policy::reject_all().to_json(),
    }
}

/// /var/sigstore: root-owned and read-only for others; on the server also the signature store,
/// whose permissions [`signature_store::secure`] sets.
fn create_sigstore_layout(host: &impl Host, is_server: bool) -> Result<(), FileError> {
    let var = host.open_dir(Path::new("/var"))?;
    let root_owned = Owner::new(0, 0);
    let sigstore = var.create_dir_all(Path::new("sigstore"), 0o755, root_owned)?;
    sigstore.set_mode_owner(0o755, root_owned)?;
    let keys = sigstore.create_dir_all(Path::new("keys"), 0o755, root_owned)?;
    keys.set_mode_owner(0o755, root_owned)?;
    if is_server {
        sigstore.create_dir_all(Path::new("sigstore"), 0o1755, root_owned)?;
        sigstore.write_file(
            "index.html",
            b"<html><body><h1>SigStore works!</h1></body></html>\n",
            0o644,
            root_owned,
        )?;
    }
    Ok(())
}

fn install_keys(host: &impl Host, keys: &BTreeMap<String, Vec<u8>>) -> Result<(), FileError> {
    let dir = host.open_dir(Path::new(KEYS_DIR))?;
    for (name, bytes) in keys {
        dir.write_file(name, bytes, 0o644, Owner::new(0, 0))?;
        println!(
            "{}",
            tr!("Installed key {path}", path = format!("{KEYS_DIR}/{name}"))
        );
    }
    Ok(())
}

/// ALT only: newuidmap/newgidmap restricted to group podman, and the userns sysctl where the
/// kernel has that knob. Elsewhere these are skipped with a note.
fn alt_only_steps(host: &impl Host) -> Result<(), Error> {
    let profile = host.profile();
    match profile
        .control_program
        .filter(|p| host.exists(Path::new(p)))
    {
        Some(control) => {
            for tool in ["newgidmap", "newuidmap"] {
                if let Err(e) = host.run(control, &[tool, "podmanonly"]) {
                    eprintln!(
                        "{NAME}: {}",
                        tr!(
                            "warning: {error}",
                            error = podsec_common::i18n::Localize::localized(&e)
                        )
                    );
                }
            }
        }
        None => println!(
            "{}",
            tr!(
                "Note: control(8) is not available here; newuidmap/newgidmap are not restricted to group podman"
            )
        ),
    }
    match profile.userns_sysctl {
        Some(knob) if host.has_sysctl(knob) => enable_sysctl(host, knob)?,
        _ => {
            println!(
                "{}",
                tr!("Note: this kernel has no unprivileged_userns_clone switch; nothing to enable")
            )
        }
    }
    Ok(())
}

pub const SYSCTL_DROP_IN: &str = "/etc/sysctl.d/99-podman.conf";

/// `knob=1` in the drop-in (replaced atomically: a crash leaves the old file or the new one),
/// then in the running kernel; either failing is an error naming the file.
fn enable_sysctl(host: &impl Host, knob: &str) -> Result<(), Error> {
    let drop_in = Path::new(SYSCTL_DROP_IN);
    let failed = |path: &Path, source: std::io::Error| Error::Sysctl {
        knob: knob.to_string(),
        path: path.to_path_buf(),
        source,
    };
    host.write_atomic(
        drop_in,
        format!("# Written by {NAME}: rootless podman needs user namespaces.\n{knob}=1\n")
            .as_bytes(),
        0o644,
        Owner::new(0, 0),
    )
    .map_err(|e| match e {
        FileError::Io { path, source } => failed(&path, source),
        other => failed(drop_in, std::io::Error::other(other.to_string())),
    })?;
    host.set_sysctl(knob, "1")
        .map_err(|e| failed(&sysctl_path(knob), e))?;
    println!(
        "{}",
        tr!(
            "{knob} = 1 (and in {path})",
            knob = knob,
            path = drop_in.display()
        )
    );
    Ok(())
}

#[cfg(test)]
mod tests;
