//! Reaching an image registry the way containers/image does, shared by every podsec client of
//! the Docker Registry HTTP API v2 (podsec-load-sign-oci's pushes, podsec-u7s-kubeadm's tag
//! listing):
//! - TLS verified by default, against the system trust store plus containers' per-registry
//!   certificates (`/etc/containers/certs.d/<host>/*.crt`, `/etc/docker/certs.d/<host>/*.crt`);
//! - plain HTTP only for `registry.local` (podsec's own registry speaks HTTP by design) and for
//!   registries marked `insecure = true` in /etc/containers/registries.conf, the switch CRI-O,
//!   podman and skopeo read too;
//! - credentials from the caller's `auth.json`, as `podman login` leaves them;
//! - `WWW-Authenticate` challenges and bearer tokens fetched from the challenge's realm.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use crate::i18n::Message;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// podsec's own registry name: plain HTTP by design.
use crate::trust_chain::LOCAL_REGISTRY as REGISTRY_LOCAL;

#[derive(Debug, thiserror::Error, crate::i18n::Localize)]
pub enum AccessError {
    #[error("{url}: {detail}")]
    Http { url: String, detail: Message },
    #[error("{url}: status {status}")]
    Status { url: String, status: u16 },
    /// A status with what it means here.
    #[error("{url}: status {status} ({hint})")]
    StatusHint {
        url: String,
        status: u16,
        hint: Message,
    },
    #[error("{url}: {detail}")]
    Protocol { url: String, detail: Message },
    #[error("invalid registry name '{0}'")]
    BadHost(String),
}

/// Where trust anchors and the insecure switch come from (the system's; tests point elsewhere
/// only through the same files inside their sandbox).
#[derive(Debug, Clone)]
pub struct Trust {
    /// PEM bundles of the system trust store (the first that exists is read).
    pub system_bundles: Vec<PathBuf>,
    /// Directories holding `<host[:port]>/*.crt` CA certificates.
    pub certs_d: Vec<PathBuf>,
    /// containers-registries.conf(5), for `insecure = true`.
    pub registries_conf: PathBuf,
}

impl Default for Trust {
    fn default() -> Trust {
        Trust {
            system_bundles: [
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/ssl/cert.pem",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
            certs_d: ["/etc/containers/certs.d", "/etc/docker/certs.d"]
                .iter()
                .map(PathBuf::from)
                .collect(),
            registries_conf: PathBuf::from("/etc/containers/registries.conf"),
        }
    }
}

/// A trust configuration rooted at `root` (for tests that build their own files).
pub fn trust_under(root: &Path) -> Trust {
    let base = Trust::default();
    let rebase = |p: &PathBuf| root.join(p.strip_prefix("/").unwrap_or(p));
    Trust {
        system_bundles: base.system_bundles.iter().map(rebase).collect(),
        certs_d: base.certs_d.iter().map(rebase).collect(),
        registries_conf: rebase(&base.registries_conf),
    }
}

/// The CA certificates for `host`: the system bundle and its certs.d directories.
fn root_certs(trust: &Trust, host: &str) -> Vec<Certificate<'static>> {
    let mut files: Vec<PathBuf> = trust
        .system_bundles
        .iter()
        .filter(|p| p.is_file())
        .take(1)
        .cloned()
        .collect();
    for dir in &trust.certs_d {
        files.extend(files_with_extension(&dir.join(host), "crt"));
    }
    let mut certs = Vec::new();
    for file in files {
        let Ok(pem) = std::fs::read(&file) else {
            continue;
        };
        for item in ureq::tls::parse_pem(&pem).flatten() {
            if let ureq::tls::PemItem::Certificate(cert) = item {
                certs.push(cert);
            }
        }
    }
    certs
}

/// Whether registries.conf marks `host` insecure (`[[registry]] location = "host" insecure =
/// true`, or the v1 `[registries.insecure] registries = [...]`).
pub fn insecure_in_registries_conf(text: &str, host: &str) -> bool {
    insecure_setting(text, host) == Some(true)
}

/// What one registries.conf file says of `host`: `Some(insecure)` when a `[[registry]]` table
/// names it (the last one in the file counts), `Some(true)` when the v1 list holds it, `None`
/// when it says nothing (a later drop-in then overrides an earlier file, as in
/// containers-registries.conf.d(5)).
fn insecure_setting(text: &str, host: &str) -> Option<bool> {
    let document = text.parse::<toml_edit::DocumentMut>().ok()?;
    let location_host = |location: &str| location.split('/').next().unwrap_or("").to_string();
    let mut setting = None;
    if let Some(registries) = document
        .get("registry")
        .and_then(|r| r.as_array_of_tables())
    {
        for registry in registries.iter() {
            let location = registry
                .get("location")
                .or_else(|| registry.get("prefix"))
                .and_then(|l| l.as_str())
                .unwrap_or_default();
            if location_host(location) == host {
                setting = Some(
                    registry
                        .get("insecure")
                        .and_then(|i| i.as_bool())
                        .unwrap_or(false),
                );
            }
        }
    }
    let listed = document
        .get("registries")
        .and_then(|r| r.get("insecure"))
        .and_then(|i| i.get("registries"))
        .and_then(|l| l.as_array())
        .is_some_and(|list| list.iter().any(|v| v.as_str() == Some(host)));
    if listed { Some(true) } else { setting }
}

/// registries.conf, then its drop-ins (`registries.conf.d/*.conf` beside it, in name order),
/// as podman, skopeo and CRI-O read them.
fn registries_conf_files(main: &Path) -> Vec<PathBuf> {
    let mut files = vec![main.to_path_buf()];
    files.extend(files_with_extension(&main.with_extension("conf.d"), "conf"));
    files
}

/// The files of `dir` named `*.<extension>`, in name order (none when `dir` cannot be read).
fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    found.sort();
    found
}

/// Whether `host` (`name[:port]`) may be spoken to over plain HTTP.
pub fn plain_http_allowed(trust: &Trust, host: &str) -> bool {
    let name = host.split(':').next().unwrap_or(host);
    name == REGISTRY_LOCAL
        || registries_conf_files(&trust.registries_conf)
            .iter()
            .rev()
            .filter_map(|file| std::fs::read_to_string(file).ok())
            .find_map(|text| insecure_setting(&text, host))
            == Some(true)
}

/// A registry host as image references name it: `name`, `name:port`, `[v6]:port`.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        && !host.starts_with(['.', '-', ':'])
}

/// The auth.json files podman reads, in its order.
fn auth_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(file) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(file.into());
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(runtime).join("containers/auth.json"));
    }
    let uid = nix::unistd::geteuid().as_raw();
    files.push(PathBuf::from(format!("/run/containers/{uid}/auth.json")));
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        files.push(home.join(".config/containers/auth.json"));
        files.push(home.join(".docker/config.json"));
    }
    files
}

/// `user:password` for `host` from the caller's auth.json (as podman and skopeo keep it); only
/// well-formed pairs.
pub fn credentials(host: &str) -> Option<String> {
    for file in auth_files() {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Ok(document) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let Some(auths) = document.get("auths").and_then(|a| a.as_object()) else {
            continue;
        };
        for (key, entry) in auths {
            let key_host = key
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default();
            if key_host != host {
                continue;
            }
            let encoded = entry.get("auth").and_then(|a| a.as_str())?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            return String::from_utf8(decoded).ok().filter(|c| c.contains(':'));
        }
    }
    None
}

/// One `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: HashMap<String, String>,
}

/// Parses `Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            return None;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
            value = value.trim().to_string();
        }
        params.insert(key, value);
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// The first usable (Bearer or Basic) challenge of a 401 response from `url`.
pub fn challenge_of<B>(
    url: &str,
    response: &ureq::http::Response<B>,
) -> Result<Challenge, AccessError> {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(parse_challenge)
        .find(|c| c.scheme == "bearer" || c.scheme == "basic")
        .ok_or_else(|| AccessError::StatusHint {
            url: url.to_string(),
            status: response.status().as_u16(),
            hint: crate::msg!("no usable WWW-Authenticate challenge"),
        })
}

/// Adds where to put a CA when a certificate is not trusted.
fn tls_hint(detail: &str, host: &str) -> Message {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("tls") {
        let host = host
            .trim_start_matches("https://")
            .split('/')
            .next()
            .unwrap_or(host);
        crate::msg!(
            "{detail} (TLS is verified: put the registry's CA into /etc/containers/certs.d/{host}/ca.crt)"
        )
    } else {
        Message::verbatim(detail)
    }
}

/// A registry host, the scheme chosen for it and an agent that verifies its TLS.
pub struct Endpoint {
    host: String,
    base: String,
    agent: ureq::Agent,
    credentials: Option<String>,
}

impl Endpoint {
    /// `host` as in image references (`registry.local`, `registry.altlinux.org`,
    /// `127.0.0.1:5443`).
    pub fn connect(
        host: &str,
        trust: &Trust,
        user_agent: &str,
        timeout: Duration,
    ) -> Result<Endpoint, AccessError> {
        if !valid_host(host) {
            return Err(AccessError::BadHost(host.to_string()));
        }
        let plain = plain_http_allowed(trust, host);
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(root_certs(trust, host))))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_redirects(5)
            .user_agent(user_agent)
            .build()
            .into();
        Ok(Endpoint {
            host: host.to_string(),
            base: format!("{}://{host}", if plain { "http" } else { "https" }),
            agent,
            credentials: credentials(host),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// `https://host` or, where plain HTTP is allowed, `http://host`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// `Basic <base64 user:password>` when the caller has logged in to this registry.
    pub fn basic_authorization(&self) -> Option<String> {
        self.credentials.as_ref().map(|c| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(c)
            )
        })
    }

    /// A transport error of a request to `url`, with the TLS hint where it applies.
    pub fn transport_error(&self, url: &str, error: impl std::fmt::Display) -> AccessError {
        AccessError::Http {
            url: url.to_string(),
            detail: tls_hint(&error.to_string(), &self.host),
        }
    }

    /// The Authorization header that answers `challenge` for `scope` (`repository:a/b:pull`).
    /// Basic credentials go only over HTTPS unless `basic_over_plain_http`; a bearer token is
    /// fetched from the realm (with the credentials only when the realm is HTTPS).
    pub fn answer(
        &self,
        challenge: &Challenge,
        scope: &str,
        url: &str,
        basic_over_plain_http: bool,
    ) -> Result<String, AccessError> {
        if challenge.scheme == "basic" {
            if !url.starts_with("https://") && !basic_over_plain_http {
                return Err(AccessError::Protocol {
                    url: url.to_string(),
                    detail: crate::msg!("refusing to send credentials over plain HTTP"),
                });
            }
            return self
                .basic_authorization()
                .ok_or_else(|| AccessError::StatusHint {
                    url: url.to_string(),
                    status: 401,
                    hint: crate::msg!("the registry wants a login: `podman login` as this user"),
                });
        }
        let realm = challenge
            .params
            .get("realm")
            .ok_or_else(|| AccessError::Protocol {
                url: url.to_string(),
                detail: crate::msg!("bearer challenge without realm"),
            })?;
        let realm_https = realm.starts_with("https://");
        let plain_realm_on_plain_registry =
            realm.starts_with("http://") && self.base.starts_with("http://");
        if !(realm_https || plain_realm_on_plain_registry) {
            return Err(AccessError::Protocol {
                url: url.to_string(),
                detail: crate::msg!("refusing token realm {realm}: not HTTPS"),
            });
        }
        let mut request = self.agent.get(realm).query("scope", scope);
        if let Some(service) = challenge.params.get("service") {
            request = request.query("service", service);
        }
        if realm_https && let Some(auth) = self.basic_authorization() {
            request = request.header("Authorization", &auth);
        }
        let mut response = request.call().map_err(|e| AccessError::Http {
            url: realm.clone(),
            detail: tls_hint(&e.to_string(), realm),
        })?;
        if response.status().as_u16() != 200 {
            return Err(AccessError::StatusHint {
                url: realm.clone(),
                status: response.status().as_u16(),
                hint: crate::msg!("token request refused"),
            });
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| AccessError::Http {
                url: realm.clone(),
                detail: Message::verbatim(e.to_string()),
            })?;
        let document: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| AccessError::Protocol {
                url: realm.clone(),
                detail: crate::msg!("token response: {e}"),
            })?;
        let token = document
            .get("token")
            .or_else(|| document.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| AccessError::Protocol {
                url: realm.clone(),
                detail: crate::msg!("token response without a token"),
            })?;
        Ok(format!("Bearer {token}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_quotes_and_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:c10f/pause:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example/token");
        assert_eq!(c.params["scope"], "repository:c10f/pause:pull,push");
        let b = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.params["realm"], "Registry Realm");
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
    }

    #[test]
    fn plain_http_only_for_registry_local_or_insecure_registries() {
        let dir = tempfile::tempdir().unwrap();
        let trust = trust_under(dir.path());
        assert!(plain_http_allowed(&trust, "registry.local"));
        assert!(plain_http_allowed(&trust, "registry.local:80"));
        assert!(!plain_http_allowed(&trust, "registry.altlinux.org"));
        let conf = trust.registries_conf.clone();
        std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
        std::fs::write(
            &conf,
            "[[registry]]\nlocation = \"mirror.lan:5000\"\ninsecure = true\n\n[[registry]]\nlocation = \"registry.altlinux.org\"\n",
        )
        .unwrap();
        assert!(plain_http_allowed(&trust, "mirror.lan:5000"));
        assert!(!plain_http_allowed(&trust, "registry.altlinux.org"));
        assert!(insecure_in_registries_conf(
            "[registries.insecure]\nregistries = ['old.lan']\n",
            "old.lan"
        ));
        let timeout = Duration::from_secs(5);
        let endpoint = Endpoint::connect("registry.altlinux.org", &trust, "t", timeout).unwrap();
        assert_eq!(endpoint.base_url(), "https://registry.altlinux.org");
        let local = Endpoint::connect("registry.local", &trust, "t", timeout).unwrap();
        assert_eq!(local.base_url(), "http://registry.local");
        assert!(Endpoint::connect("bad host", &trust, "t", timeout).is_err());
        assert!(Endpoint::connect("-x", &trust, "t", timeout).is_err());
        // Drop-ins in registries.conf.d, in name order: a later one overrides, silence does not.
        let drop_ins = conf.with_extension("conf.d");
        std::fs::create_dir_all(&drop_ins).unwrap();
        std::fs::write(
            drop_ins.join("50-mirror.conf"),
            "[[registry]]\nlocation = \"registry.altlinux.org\"\ninsecure = true\n",
        )
        .unwrap();
        assert!(plain_http_allowed(&trust, "registry.altlinux.org"));
        std::fs::write(
            drop_ins.join("60-other.conf"),
            "unqualified-search-registries = []\n",
        )
        .unwrap();
        std::fs::write(
            drop_ins.join("70-notes.txt"),
            "[[registry]]\nlocation = \"mirror.lan:5000\"\n",
        )
        .unwrap();
        assert!(plain_http_allowed(&trust, "registry.altlinux.org"));
        assert!(plain_http_allowed(&trust, "mirror.lan:5000"));
        std::fs::write(
            drop_ins.join("90-secure.conf"),
            "[[registry]]\nlocation = \"mirror.lan:5000\"\ninsecure = false\n",
        )
        .unwrap();
        assert!(!plain_http_allowed(&trust, "mirror.lan:5000"));
    }

    #[test]
    fn basic_credentials_never_go_over_plain_http_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let trust = trust_under(dir.path());
        let endpoint =
            Endpoint::connect("registry.local", &trust, "t", Duration::from_secs(5)).unwrap();
        let basic = parse_challenge(r#"Basic realm="r""#).unwrap();
        let err = endpoint
            .answer(
                &basic,
                "repository:a:pull",
                "http://registry.local/v2/",
                false,
            )
            .unwrap_err();
        assert!(err.to_string().contains("plain HTTP"), "{err}");
        let bearer = parse_challenge(r#"Bearer realm="http://elsewhere/token""#).unwrap();
        // A plain-HTTP realm is accepted only for a plain-HTTP registry; an HTTPS registry's
        // plain realm is refused before any request.
        let tls = Endpoint::connect("tls.example", &trust, "t", Duration::from_secs(5)).unwrap();
        let err = tls
            .answer(
                &bearer,
                "repository:a:pull",
                "https://tls.example/v2/",
                false,
            )
            .unwrap_err();
        assert!(err.to_string().contains("not HTTPS"), "{err}");
    }
}
