//! podsec-create-services: the local registry, the signature web server and trivy.
//!
//! Dedicated configuration files (never sed edits of the distribution's): the registry
//! (distribution v2, `docker-registry`) listens on 127.0.0.1:5000 with storage in
//! /var/lib/podsec/registry; nginx serves it as registry.local on port 80 and /var/sigstore as
//! sigstore.local on port 81 with a JSON autoindex. With systemd the units are enabled, started
//! when not running and reloaded (the registry restarted) only when their configuration
//! changed; without it (containers, CI) the daemons are started directly and their PIDs kept in
//! /run/podsec.
//!
//! On a server upgraded from upstream podsec 1.1.x the registry's data is moved from upstream's
//! podman volume (`registry_migration`), and nginx's ports are checked before any change: a
//! program other than nginx or the registry there is refused (ALT's httpd2 is stopped and
//! disabled under systemd, as upstream did), so nginx never half starts.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, Failure, NotRoot};
use podsec_common::host::files::{FileError, Owner};
use podsec_common::host::services::{self, ServiceError};
use podsec_common::host::{Host, HostDir, RealHost, hosts, users};
use podsec_common::profile::Profile;
use podsec_common::tr;

use crate::layout::{LOCAL_REGISTRY, SIGSTORE_HOST, SIGSTORE_PORT, SIGSTORE_ROOT};
use crate::registry_migration::{self, MigrationError, Plan};

pub const NAME: &str = "podsec-create-services";

pub const REGISTRY_CONFIG: &str = "/etc/podsec/registry/config.yml";
pub const REGISTRY_STORAGE: &str = "/var/lib/podsec/registry";
pub const REGISTRY_LISTEN: &str = "127.0.0.1:5000";
pub const NGINX_SITE_NAME: &str = "podsec.conf";
pub const TRIVY_PORT: u16 = 4954;
/// When this file exists, pushes to registry.local need HTTP basic auth (pulls stay anonymous).
pub const PUSH_HTPASSWD: &str = "/etc/podsec/registry/push.htpasswd";

/// Start the services of the signature server: the image registry registry.local on port 80,
/// the signature web server sigstore.local on port 81 and, when installed, the trivy server on
/// port 4954.
#[derive(Parser, Debug)]
#[command(name = NAME, version, after_help = "Environment: none read. Must be run as root.")]
pub struct Args {
    /// Require these credentials (an htpasswd file: `htpasswd -B` or `openssl passwd -apr1`
    /// lines) for pushes to registry.local; pulls stay anonymous. Kept for later runs.
    #[arg(long, value_name = "file")]
    pub push_htpasswd: Option<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error(transparent)]
    NotRoot(#[from] NotRoot),
    #[error(
        "this host is not the registry and signature server: {0}; run podsec-create-policy <this host's address> first"
    )]
    NotServer(podsec_common::i18n::Message),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Account(#[from] users::AccountError),
    #[error(
        "the nginx configuration with {path} is invalid, the previous one was restored: {detail}"
    )]
    NginxConfig { path: String, detail: String },
    #[error("push password file {path}: {detail}")]
    Htpasswd {
        path: String,
        detail: podsec_common::i18n::Message,
    },
    #[error(
        "port {port} is taken by {program} (pid {pid}{unit}), and nginx needs it for {what}: stop it or move it to another port, then run again; nothing was started"
    )]
    PortTaken {
        port: u16,
        program: String,
        pid: i32,
        unit: String,
        what: &'static str,
    },
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error("{what} does not answer after start ({detail}); see {log}")]
    NotServing {
        what: &'static str,
        detail: String,
        log: String,
    },
}

impl Failure for Error {}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

/// The ports nginx listens on, and for what.
const PORTS: [(u16, &str); 2] = [(80, LOCAL_REGISTRY), (SIGSTORE_PORT, SIGSTORE_HOST)];

/// Who holds nginx's ports, read before any change: nginx itself is fine, so is the registry's
/// systemd unit (upstream's ran on port 80; it is restarted with our configuration);
/// ALT's httpd2 is stopped and disabled under systemd, as upstream did (its units are returned);
/// anything else is refused, so nginx never half starts.
fn check_ports(host: &impl Host, profile: &Profile) -> Result<Vec<String>, Error> {
    let systemd = host.systemd_running();
    let mut to_stop = Vec::new();
    for (port, what) in PORTS {
        for listener in host.listeners(port) {
            let unit = listener.unit.clone().unwrap_or_default();
            let httpd2 = listener.program == "httpd2" || unit == "httpd2.service";
            // The registry only as its unit: that is what gets restarted, freeing the port.
            let fine = listener.program == "nginx" || (systemd && unit == profile.registry_unit);
            if fine {
                continue;
            }
            if httpd2 && systemd {
                to_stop.push("httpd2.service".to_string());
                continue;
            }
            return Err(Error::PortTaken {
                port,
                program: listener.program,
                pid: listener.pid,
                unit: if unit.is_empty() {
                    String::new()
                } else {
                    format!(", {unit}")
                },
                what,
            });
        }
    }
    to_stop.dedup();
    Ok(to_stop)
}

pub fn registry_config(storage: &str) -> String {
    format!(
        "# Written by {NAME}: the podsec local registry, served as registry.local:80 through nginx.\n\
         version: 0.1\n\
         log:\n  fields:\n    service: registry\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         http:\n  addr: {REGISTRY_LISTEN}\n  headers:\n    X-Content-Type-Options: [nosniff]\n"
    )
}

pub fn nginx_site(push_auth: bool) -> String {
    let auth = if push_auth {
        format!(
            "        limit_except GET HEAD OPTIONS {{\n            auth_basic \"podsec registry push\";\n            auth_basic_user_file {PUSH_HTPASSWD};\n        }}\n"
        )
    } else {
        String::new()
    };
    format!(
        "# Written by {NAME}.\n\
         # registry.local: the local registry (pushes {push}).\n\
         server {{\n    listen 80;\n    server_name registry.local;\n    client_max_body_size 0;\n    chunked_transfer_encoding on;\n\
         \x20   location /v2/ {{\n{auth}        proxy_pass http://{REGISTRY_LISTEN};\n        proxy_set_header Host $http_host;\n\
         \x20       proxy_set_header X-Forwarded-Proto $scheme;\n        proxy_request_buffering off;\n        proxy_buffering off;\n\
         \x20       proxy_read_timeout 900;\n    }}\n}}\n\
         # sigstore.local: public keys, the published policy and image signatures.\n\
         server {{\n    listen 81;\n    server_name sigstore.local;\n    root {SIGSTORE_ROOT};\n\
         \x20   location / {{\n        autoindex on;\n        autoindex_format json;\n    }}\n}}\n",
        push = if push_auth {
            "need basic auth, see htpasswd"
        } else {
            "anonymous: see the podsec README"
        }
    )
}

/// The server check that upstream's isSigstoreServer meant to do: registry.local is bound in
/// /etc/hosts to one of this host's own addresses.
pub fn check_is_server(host: &impl Host) -> Result<(), Error> {
    let text = host.read_to_string(Path::new("/etc/hosts")).map_err(|e| {
        Error::NotServer(podsec_common::msg!(
            "cannot read /etc/hosts: {error}",
            error = e
        ))
    })?;
    let bound = hosts::address_of(&text, LOCAL_REGISTRY).ok_or_else(|| {
        Error::NotServer(podsec_common::msg!(
            "registry.local is not bound in /etc/hosts"
        ))
    })?;
    let local = bound
        .parse()
        .ok()
        .and_then(|address| host.is_local_address(address).ok())
        .unwrap_or(false);
    if !local {
        return Err(Error::NotServer(podsec_common::msg!(
            "registry.local is bound to {bound}, which is not an address of this host",
            bound = bound
        )));
    }
    if host.open_dir(Path::new(SIGSTORE_ROOT)).is_err() {
        return Err(Error::NotServer(podsec_common::msg!(
            "{path} does not exist",
            path = SIGSTORE_ROOT
        )));
    }
    Ok(())
}

/// Writes `contents` to `path` (creating its directory); returns whether it changed.
fn install(host: &impl Host, path: &str, contents: &str) -> Result<bool, FileError> {
    let path = Path::new(path);
    if host.read_to_string(path).ok().as_deref() == Some(contents) {
        return Ok(false);
    }
    write_creating_dirs(host, path, contents, 0o644, Owner::default())?;
    Ok(true)
}

/// `path` replaced atomically, its missing directories made root's 0755 on the way.
fn write_creating_dirs(
    host: &impl Host,
    path: &Path,
    contents: &str,
    mode: u32,
    owner: Owner,
) -> Result<(), FileError> {
    if let Some(dir) = path.parent() {
        host.create_dirs(dir)?;
    }
    host.write_atomic(path, contents.as_bytes(), mode, owner)
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    cli::require_root()?;
    let agent = probe_agent();
    create(
        &RealHost,
        &args,
        || {
            registry_migration::plan(
                Path::new(registry_migration::UPSTREAM_STORAGE),
                Path::new(REGISTRY_STORAGE),
            )
        },
        |url, name| http_status(&agent, url, name),
    )
}

/// The command on `host`. Upstream's registry data is planned by `plan_migration` (and moved
/// on the machine itself: the unit tests plan none); the services are probed over HTTP by
/// `probe` (`url`, `Host` header -> status).
pub fn create(
    host: &impl Host,
    args: &Args,
    plan_migration: impl FnOnce() -> Result<Plan, MigrationError>,
    probe: impl Fn(&str, &str) -> Result<u16, String>,
) -> Result<ExitCode, Error> {
    check_is_server(host)?;
    let profile = host.profile();
    // Everything that can refuse is read before the first change.
    let to_stop = check_ports(host, profile)?;
    let migration = plan_migration()?;

    // The registry: runs as its own account where the distribution made one.
    let registry_user = host.find_user("docker-registry")?;
    let owner = registry_user.as_ref().map(|a| Owner::new(a.uid, a.gid));
    host.create_dirs(Path::new(REGISTRY_STORAGE))?;
    if let Some(owner) = owner {
        // Through its descriptor: a link put there is refused, never followed.
        host.open_system_dir(Path::new(REGISTRY_STORAGE))?
            .set_mode_owner(0o755, owner)?;
    }
    let storage = match &migration {
        Plan::InPlace { old, repositories } => {
            registry_migration::serve_in_place(&migration, owner)?;
            println!(
                "{}",
                tr!(
                    "Registry data of upstream podsec stays in {old} and is served from there ({count} repositories): it is on another mount than {new} (no rename can move it), and a copy is not made",
                    old = old.display(),
                    new = REGISTRY_STORAGE,
                    count = repositories.len()
                )
            );
            old.display().to_string()
        }
        _ => REGISTRY_STORAGE.to_string(),
    };
    let registry_changed = install(host, REGISTRY_CONFIG, &registry_config(&storage))?;

    if let Some(file) = &args.push_htpasswd {
        install_htpasswd(host, file, profile)?;
    }
    let push_auth = host.exists(Path::new(PUSH_HTPASSWD));
    let site = format!("{}/{NGINX_SITE_NAME}", profile.nginx_conf_dir);
    let previous_site = host.read_to_string(Path::new(&site)).ok();
    let site_changed = install(host, &site, &nginx_site(push_auth))?;
    if let Err(e) = host.run("nginx", &["-t", "-q"]) {
        match previous_site {
            Some(old) => install(host, &site, &old)?,
            None => {
                let _ = host.remove_all(Path::new(&site));
                true
            }
        };
        return Err(Error::NginxConfig {
            path: site,
            detail: e.to_string(),
        });
    }

    for unit in &to_stop {
        host.run("systemctl", &["disable", "--now", unit])?;
        println!(
            "{}",
            tr!(
                "{unit} listened on port 80 or 81, which nginx needs: stopped and disabled (as upstream podsec did)",
                unit = unit
            )
        );
    }
    if let Plan::Move {
        old,
        new,
        repositories,
        ..
    } = &migration
    {
        // The registry must not write into the tree while it moves.
        if host.systemd_running() {
            host.run("systemctl", &["stop", profile.registry_unit])?;
        } else {
            host.stop_direct("registry");
        }
        registry_migration::migrate(&migration, owner)?;
        println!(
            "{}",
            tr!(
                "Registry data of upstream podsec moved (one rename, nothing copied): {old} -> {new} ({count} repositories: {names})",
                old = old.join(registry_migration::DRIVER_DIR).display(),
                new = new.join(registry_migration::DRIVER_DIR).display(),
                count = repositories.len(),
                names = repositories.join(" ")
            )
        );
    }

    if host.systemd_running() {
        let drop_in = format!(
            "/etc/systemd/system/{}.d/podsec.conf",
            profile.registry_unit
        );
        let drop_in_changed = install(
            host,
            &drop_in,
            &format!(
                "# Written by {NAME}: serve the podsec registry configuration.\n[Service]\nExecStart=\nExecStart={} serve {REGISTRY_CONFIG}\n",
                profile.registry_program
            ),
        )?;
        if drop_in_changed {
            host.run("systemctl", &["daemon-reload"])?;
        }
        let registry = host.systemd_ensure(
            profile.registry_unit,
            registry_changed || drop_in_changed,
            services::ReloadDone::OnReturn,
        )?;
        report_unit(profile.registry_unit, registry);
        report_unit(
            profile.nginx_unit,
            host.systemd_ensure(
                profile.nginx_unit,
                site_changed,
                services::ReloadDone::WorkersReplaced,
            )?,
        );
    } else {
        println!(
            "{}",
            tr!(
                "systemd is not running: starting the daemons directly (PIDs in {dir})",
                dir = services::PID_DIR
            )
        );
        start_registry(host, profile, registry_user.as_ref(), registry_changed)?;
        start_nginx(host, site_changed)?;
    }
    start_trivy(host, profile)?;
    wait_until_served(probe)?;
    println!(
        "{}",
        tr!("registry.local:80 (registry), sigstore.local:81 (signatures) are served")
    );
    if push_auth {
        println!(
            "{}",
            tr!(
                "Pushes to registry.local need the credentials of {file} (podman login registry.local)",
                file = PUSH_HTPASSWD
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies an htpasswd file (validated: `user:hash` lines) to PUSH_HTPASSWD, readable by root and
/// nginx's workers only.
fn install_htpasswd(host: &impl Host, source: &Path, profile: &Profile) -> Result<(), Error> {
    let text = host.read_to_string(source).map_err(|e| Error::Htpasswd {
        path: source.display().to_string(),
        detail: podsec_common::i18n::Message::of(&e),
    })?;
    let valid = text.lines().filter(|l| !l.trim().is_empty()).all(|line| {
        line.split_once(':').is_some_and(|(user, hash)| {
            users::valid_account_name(user)
                && !hash.is_empty()
                && !hash.contains(char::is_whitespace)
        })
    });
    if !valid || text.trim().is_empty() {
        return Err(Error::Htpasswd {
            path: source.display().to_string(),
            detail: podsec_common::msg!(
                "expected user:hash lines (htpasswd -B or openssl passwd -apr1)"
            ),
        });
    }
    let group = host.group_gid(profile.nginx_group)?.unwrap_or(0);
    write_creating_dirs(
        host,
        Path::new(PUSH_HTPASSWD),
        &text,
        0o640,
        Owner::new(0, group),
    )?;
    Ok(())
}

/// Both services answer as their clients will ask: the registry API through nginx on port 80
/// (Host registry.local), the signature store on port 81.
/// How long create-services waits for the registry and nginx to answer after starting them.
const SERVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The one HTTP client of a run's probes (its connections are reused from try to try).
fn probe_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// `GET url` with `Host: host`: its status, or why there is none.
fn http_status(agent: &ureq::Agent, url: &str, host: &str) -> Result<u16, String> {
    agent
        .get(url)
        .header("Host", host)
        .call()
        .map(|response| response.status().as_u16())
        .map_err(|e| e.to_string())
}

fn wait_until_served(probe: impl Fn(&str, &str) -> Result<u16, String>) -> Result<(), Error> {
    let checks: [(&'static str, &str, &str, u16, &str); 2] = [
        (
            "the registry on port 80",
            "http://127.0.0.1:80/v2/",
            LOCAL_REGISTRY,
            200,
            "registry.log",
        ),
        (
            "the signature server on port 81",
            "http://127.0.0.1:81/keys/",
            SIGSTORE_HOST,
            200,
            "nginx.log",
        ),
    ];
    for (what, url, host, expected, log) in checks {
        let mut last = String::new();
        // Bounded by time rather than by a count of tries, so the wait does not shrink or grow
        // with how long each try takes on a loaded host.
        let deadline = std::time::Instant::now() + SERVE_TIMEOUT;
        let served = loop {
            match probe(url, host) {
                Ok(status) if status == expected => break true,
                Ok(status) => last = tr!("status {status}", status = status),
                Err(e) => last = e,
            }
            if std::time::Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        if !served {
            return Err(Error::NotServing {
                what,
                detail: last,
                log: format!("{}/{log}", services::LOG_DIR),
            });
        }
    }
    Ok(())
}

fn start_registry(
    host: &impl Host,
    profile: &Profile,
    account: Option<&users::Account>,
    changed: bool,
) -> Result<(), Error> {
    if host.running_pid("registry").is_some() {
        if !changed {
            println!("{}", tr!("registry: already running"));
            return Ok(());
        }
        host.stop_direct("registry");
    }
    let pid = match account {
        Some(account) => start_as(
            host,
            "registry",
            account,
            profile.registry_program,
            &["serve", REGISTRY_CONFIG],
        )?,
        None => host.start_direct(
            "registry",
            profile.registry_program,
            &["serve", REGISTRY_CONFIG],
        )?,
    };
    println!("{}", tr!("registry: started, pid {pid}", pid = pid));
    Ok(())
}

/// A daemon started directly that drops root for `account` (setpriv from util-linux,
/// arguments as arguments).
fn start_as(
    host: &impl Host,
    name: &str,
    account: &users::Account,
    program: &str,
    args: &[&str],
) -> Result<i32, ServiceError> {
    let reuid = format!("--reuid={}", account.uid);
    let regid = format!("--regid={}", account.gid);
    let mut argv = vec![
        reuid.as_str(),
        regid.as_str(),
        "--init-groups",
        "--",
        program,
    ];
    argv.extend(args);
    host.start_direct(name, "setpriv", &argv)
}

fn report_unit(unit: &str, action: services::UnitAction) {
    let text = match action {
        services::UnitAction::Started => tr!("{unit}: enabled and started (systemd)", unit = unit),
        services::UnitAction::Reloaded => tr!(
            "{unit}: configuration changed, reloaded or restarted (systemd)",
            unit = unit
        ),
        services::UnitAction::Unchanged => tr!("{unit}: already running (systemd)", unit = unit),
    };
    println!("{text}");
}

fn start_nginx(host: &impl Host, changed: bool) -> Result<(), Error> {
    if let Some(master) = host.running_pid("nginx") {
        if changed {
            host.reload_direct("nginx", master, "nginx", &["-s", "reload"])?;
            println!("{}", tr!("nginx: configuration reloaded"));
        } else {
            println!("{}", tr!("nginx: already running"));
        }
        return Ok(());
    }
    let pid = host.start_direct("nginx", "nginx", &["-g", "daemon off;"])?;
    println!("{}", tr!("nginx: started, pid {pid}", pid = pid));
    Ok(())
}

/// The account the directly started trivy server runs as (created when missing), and its
/// database cache.
pub const TRIVY_USER: &str = "_trivy";
pub const TRIVY_CACHE: &str = "/var/lib/podsec/trivy";

fn start_trivy(host: &impl Host, profile: &Profile) -> Result<(), Error> {
    let Some(trivy) = host.find_program("trivy") else {
        println!(
            "{}",
            tr!(
                "Note: trivy is not installed; no vulnerability server on port {port}",
                port = TRIVY_PORT
            )
        );
        return Ok(());
    };
    if host.systemd_running() {
        report_unit(
            profile.trivy_unit,
            host.systemd_ensure(profile.trivy_unit, false, services::ReloadDone::OnReturn)?,
        );
    } else if host.running_pid("trivy").is_none() {
        // Not root, and only on the address trivy.local is bound to (create-policy's binding
        // in /etc/hosts, an address of this host), as the unit of the distribution would.
        let text = host.read_to_string(Path::new("/etc/hosts")).map_err(|e| {
            Error::NotServer(podsec_common::msg!(
                "cannot read /etc/hosts: {error}",
                error = e
            ))
        })?;
        let listen = trivy_listen(host, &text)?;
        let (account, _) = host.ensure_user(
            TRIVY_USER,
            &users::NewAccount {
                system: true,
                home: Some(TRIVY_CACHE),
                shell: Some("/sbin/nologin"),
                comment: Some("podsec trivy server"),
                ..users::NewAccount::default()
            },
        )?;
        let owner = Owner::new(account.uid, account.gid);
        let podsec = host.open_dir(Path::new("/var/lib"))?.create_dir_all(
            Path::new("podsec"),
            0o755,
            Owner::new(0, 0),
        )?;
        let cache = podsec.create_dir_all(Path::new("trivy"), 0o700, owner)?;
        cache.set_mode_owner(0o700, owner)?;
        let trivy = trivy.to_string_lossy();
        let pid = start_as(
            host,
            "trivy",
            &account,
            &trivy,
            &["server", "--listen", &listen, "--cache-dir", TRIVY_CACHE],
        )?;
        println!(
            "{}",
            tr!(
                "trivy: started as {user} on {listen}, pid {pid}",
                user = TRIVY_USER,
                listen = listen,
                pid = pid
            )
        );
    }
    Ok(())
}

/// `<address>:4954` of trivy.local in /etc/hosts, which must be an address of this host.
pub fn trivy_listen(host: &impl Host, hosts_text: &str) -> Result<String, Error> {
    let bound = hosts::address_of(hosts_text, "trivy.local").ok_or_else(|| {
        Error::NotServer(podsec_common::msg!(
            "trivy.local is not bound in /etc/hosts"
        ))
    })?;
    let address: std::net::IpAddr = bound.parse().map_err(|_| {
        Error::NotServer(podsec_common::msg!(
            "trivy.local is bound to '{bound}', which is not an IP address",
            bound = bound
        ))
    })?;
    if !host.is_local_address(address).unwrap_or(false) {
        return Err(Error::NotServer(podsec_common::msg!(
            "trivy.local is bound to {bound}, which is not an address of this host",
            bound = bound
        )));
    }
    Ok(std::net::SocketAddr::new(address, TRIVY_PORT).to_string())
}

#[cfg(test)]
mod tests;
