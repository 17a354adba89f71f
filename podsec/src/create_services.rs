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
use podsec_common::host::files::{FileError, Owner, SafeDir, write_atomic};
use podsec_common::host::services::{self, ServiceError};
use podsec_common::host::{Host, RealHost, hosts, net, users};
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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    NotRoot(#[from] NotRoot),
    #[error(
        "this host is not the registry and signature server: {0}; run podsec-create-policy <this host's address> first"
    )]
    NotServer(String),
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
    Htpasswd { path: String, detail: String },
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
fn check_ports(profile: &Profile) -> Result<Vec<String>, Error> {
    let systemd = services::systemd_running();
    let mut to_stop = Vec::new();
    for (port, what) in PORTS {
        for listener in net::listeners(port) {
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
    let text = host
        .read_to_string(Path::new("/etc/hosts"))
        .map_err(|e| Error::NotServer(tr!("cannot read /etc/hosts: {error}", error = e)))?;
    let bound = hosts::address_of(&text, LOCAL_REGISTRY)
        .ok_or_else(|| Error::NotServer(tr!("registry.local is not bound in /etc/hosts").into()))?;
    let local = bound
        .parse()
        .ok()
        .and_then(|address| host.is_local_address(address).ok())
        .unwrap_or(false);
    if !local {
        return Err(Error::NotServer(tr!(
            "registry.local is bound to {bound}, which is not an address of this host",
            bound = bound
        )));
    }
    if host.open_dir(Path::new(SIGSTORE_ROOT)).is_err() {
        return Err(Error::NotServer(tr!(
            "{path} does not exist",
            path = SIGSTORE_ROOT
        )));
    }
    Ok(())
}

/// Writes `contents` to `path` (creating its directory); returns whether it changed.
fn install(path: &str, contents: &str) -> Result<bool, FileError> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(contents) {
        return Ok(false);
    }
    let path = Path::new(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| FileError::Io {
            path: dir.into(),
            source,
        })?;
    }
    write_atomic(path, contents.as_bytes(), 0o644, Owner::default())?;
    Ok(true)
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    cli::require_root()?;
    check_is_server(&RealHost)?;
    let profile = Profile::detect();
    // Everything that can refuse is read before the first change.
    let to_stop = check_ports(profile)?;
    let migration = registry_migration::plan(
        Path::new(registry_migration::UPSTREAM_STORAGE),
        Path::new(REGISTRY_STORAGE),
    )?;

    // The registry: runs as its own account where the distribution made one.
    let registry_user = users::find_user("docker-registry")?;
    std::fs::create_dir_all(REGISTRY_STORAGE).map_err(|source| FileError::Io {
        path: REGISTRY_STORAGE.into(),
        source,
    })?;
    if let Some(account) = &registry_user {
        nix::unistd::chown(
            REGISTRY_STORAGE,
            Some(account.uid.into()),
            Some(account.gid.into()),
        )
        .map_err(|e| FileError::Io {
            path: REGISTRY_STORAGE.into(),
            source: e.into(),
        })?;
    }
    let owner = registry_user.as_ref().map(|a| Owner::new(a.uid, a.gid));
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
    let registry_changed = install(REGISTRY_CONFIG, &registry_config(&storage))?;

    if let Some(file) = &args.push_htpasswd {
        install_htpasswd(file, profile)?;
    }
    let push_auth = Path::new(PUSH_HTPASSWD).is_file();
    let site = format!("{}/{NGINX_SITE_NAME}", profile.nginx_conf_dir);
    let previous_site = std::fs::read_to_string(&site).ok();
    let site_changed = install(&site, &nginx_site(push_auth))?;
    if let Err(e) = services::run("nginx", &["-t", "-q"]) {
        match previous_site {
            Some(old) => install(&site, &old)?,
            None => {
                let _ = std::fs::remove_file(&site);
                true
            }
        };
        return Err(Error::NginxConfig {
            path: site,
            detail: e.to_string(),
        });
    }

    for unit in &to_stop {
        services::run("systemctl", &["disable", "--now", unit])?;
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
        if services::systemd_running() {
            services::run("systemctl", &["stop", profile.registry_unit])?;
        } else {
            services::stop_direct("registry");
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

    if services::systemd_running() {
        let drop_in = format!(
            "/etc/systemd/system/{}.d/podsec.conf",
            profile.registry_unit
        );
        let drop_in_changed = install(
            &drop_in,
            &format!(
                "# Written by {NAME}: serve the podsec registry configuration.\n[Service]\nExecStart=\nExecStart={} serve {REGISTRY_CONFIG}\n",
                profile.registry_program
            ),
        )?;
        if drop_in_changed {
            services::run("systemctl", &["daemon-reload"])?;
        }
        let registry = services::systemd_ensure(
            profile.registry_unit,
            registry_changed || drop_in_changed,
            services::ReloadDone::OnReturn,
        )?;
        report_unit(profile.registry_unit, registry);
        report_unit(
            profile.nginx_unit,
            services::systemd_ensure(
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
        start_registry(profile, registry_user.as_ref(), registry_changed)?;
        start_nginx(site_changed)?;
    }
    start_trivy(profile)?;
    wait_until_served()?;
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
fn install_htpasswd(source: &Path, profile: &Profile) -> Result<(), Error> {
    let text = std::fs::read_to_string(source).map_err(|e| Error::Htpasswd {
        path: source.display().to_string(),
        detail: e.to_string(),
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
            detail: "expected user:hash lines (htpasswd -B or openssl passwd -apr1)".into(),
        });
    }
    let group = users::group_gid(profile.nginx_group)?.unwrap_or(0);
    let path = Path::new(PUSH_HTPASSWD);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| FileError::Io {
            path: dir.into(),
            source,
        })?;
    }
    write_atomic(path, text.as_bytes(), 0o640, Owner::new(0, group))?;
    Ok(())
}

/// Both services answer as their clients will ask: the registry API through nginx on port 80
/// (Host registry.local), the signature store on port 81.
/// How long create-services waits for the registry and nginx to answer after starting them.
const SERVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn wait_until_served() -> Result<(), Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
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
            match agent.get(url).header("Host", host).call() {
                Ok(response) if response.status().as_u16() == expected => break true,
                Ok(response) => last = tr!("status {status}", status = response.status()),
                Err(e) => last = e.to_string(),
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
    profile: &Profile,
    account: Option<&users::Account>,
    changed: bool,
) -> Result<(), Error> {
    if services::running_pid("registry").is_some() {
        if !changed {
            println!("{}", tr!("registry: already running"));
            return Ok(());
        }
        services::stop_direct("registry");
    }
    let pid = match account {
        // Drop root for the registry daemon (setpriv from util-linux, arguments as arguments).
        Some(account) => services::start_direct(
            "registry",
            "setpriv",
            &[
                &format!("--reuid={}", account.uid),
                &format!("--regid={}", account.gid),
                "--init-groups",
                "--",
                profile.registry_program,
                "serve",
                REGISTRY_CONFIG,
            ],
        )?,
        None => services::start_direct(
            "registry",
            profile.registry_program,
            &["serve", REGISTRY_CONFIG],
        )?,
    };
    println!("{}", tr!("registry: started, pid {pid}", pid = pid));
    Ok(())
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

fn start_nginx(changed: bool) -> Result<(), Error> {
    if let Some(master) = services::running_pid("nginx") {
        if changed {
            services::reload_workers("nginx", master, || {
                services::run("nginx", &["-s", "reload"]).map(drop)
            })?;
            println!("{}", tr!("nginx: configuration reloaded"));
        } else {
            println!("{}", tr!("nginx: already running"));
        }
        return Ok(());
    }
    let pid = services::start_direct("nginx", "nginx", &["-g", "daemon off;"])?;
    println!("{}", tr!("nginx: started, pid {pid}", pid = pid));
    Ok(())
}

/// The account the directly started trivy server runs as (created when missing), and its
/// database cache.
pub const TRIVY_USER: &str = "_trivy";
pub const TRIVY_CACHE: &str = "/var/lib/podsec/trivy";

fn start_trivy(profile: &Profile) -> Result<(), Error> {
    let Some(trivy) = podsec_common::host::programs::find_program("trivy") else {
        println!(
            "{}",
            tr!(
                "Note: trivy is not installed; no vulnerability server on port {port}",
                port = TRIVY_PORT
            )
        );
        return Ok(());
    };
    if services::systemd_running() {
        report_unit(
            profile.trivy_unit,
            services::systemd_ensure(profile.trivy_unit, false, services::ReloadDone::OnReturn)?,
        );
    } else if services::running_pid("trivy").is_none() {
        // Not root, and only on the address trivy.local is bound to (create-policy's binding
        // in /etc/hosts, an address of this host), as the unit of the distribution would.
        let text = std::fs::read_to_string("/etc/hosts")
            .map_err(|e| Error::NotServer(tr!("cannot read /etc/hosts: {error}", error = e)))?;
        let listen = trivy_listen(&text)?;
        let (account, _) = users::ensure_user(
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
        let podsec = SafeDir::open(Path::new("/var/lib"))?.create_dir_all(
            Path::new("podsec"),
            0o755,
            Owner::new(0, 0),
        )?;
        let cache = podsec.create_dir_all(Path::new("trivy"), 0o700, owner)?;
        cache.set_mode_owner(0o700, owner)?;
        let trivy = trivy.to_string_lossy();
        let pid = services::start_direct(
            "trivy",
            "setpriv",
            &[
                &format!("--reuid={}", account.uid),
                &format!("--regid={}", account.gid),
                "--init-groups",
                "--",
                &trivy,
                "server",
                "--listen",
                &listen,
                "--cache-dir",
                TRIVY_CACHE,
            ],
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
pub fn trivy_listen(hosts_text: &str) -> Result<String, Error> {
    let bound = hosts::address_of(hosts_text, "trivy.local")
        .ok_or_else(|| Error::NotServer(tr!("trivy.local is not bound in /etc/hosts").into()))?;
    let address: std::net::IpAddr = bound.parse().map_err(|_| {
        Error::NotServer(tr!(
            "trivy.local is bound to '{bound}', which is not an IP address",
            bound = bound
        ))
    })?;
    if !net::is_local_address(address).unwrap_or(false) {
        return Err(Error::NotServer(tr!(
            "trivy.local is bound to {bound}, which is not an address of this host",
            bound = bound
        )));
    }
    Ok(std::net::SocketAddr::new(address, TRIVY_PORT).to_string())
}
