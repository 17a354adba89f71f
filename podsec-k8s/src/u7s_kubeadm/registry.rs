//! Tag listing through the Docker Registry HTTP API v2 (`GET /v2/<name>/tags/list`), done the way
//! a registry client must (upstream ran `curl -ks`, §10.1/6 and §10.2/13):
//! - TLS verified by default, against the system trust store plus containers' per-registry
//!   certificates (`/etc/containers/certs.d/<host>/*.crt`, `/etc/docker/certs.d/<host>/*.crt`);
//! - plain HTTP only for `registry.local` (podsec's own registry speaks HTTP by design) and for
//!   registries marked `insecure = true` in /etc/containers/registries.conf, the switch CRI-O and
//!   skopeo read too;
//! - bearer-token auth: a 401 with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`
//!   fetches a token from the realm (with the caller's `auth.json` credentials when there are
//!   some, only over HTTPS) and retries; `Basic` challenges are answered with those credentials;
//! - pagination: `Link: <...>; rel="next"` is followed (same registry only, bounded);
//! - redirects are followed without forwarding credentials to another host.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use podsec_common::msg;
use ureq::ResponseExt;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// podsec's own registry name: plain HTTP by design.
pub const REGISTRY_LOCAL: &str = "registry.local";
const BODY_LIMIT: u64 = 16 << 20;
const MAX_PAGES: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{url}: {detail}")]
    Http { url: String, detail: String },
    #[error("{url}: status {status}")]
    Status { url: String, status: u16 },
    /// A status with what it means here.
    #[error("{url}: status {status} ({hint})")]
    StatusHint {
        url: String,
        status: u16,
        hint: String,
    },
    #[error("{url}: {detail}")]
    Protocol { url: String, detail: String },
    #[error("invalid registry name '{0}'")]
    BadHost(String),
}

/// Where trust anchors and the insecure switch come from (the system's; tests point elsewhere
/// only through the same files inside their sandbox).
#[derive(Debug, Clone)]
pub struct Trust {
    /// PEM bundles of the system trust store (the first that exists is read, then all others).
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

/// The CA certificates for `host`: the system bundle and its certs.d directory.
fn root_certs(trust: &Trust, host: &str) -> Vec<Certificate<'static>> {
    let mut certs = Vec::new();
    let mut files: Vec<PathBuf> = trust
        .system_bundles
        .iter()
        .filter(|p| p.is_file())
        .take(1)
        .cloned()
        .collect();
    for dir in &trust.certs_d {
        if let Ok(entries) = std::fs::read_dir(dir.join(host)) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "crt"))
                .collect();
            found.sort();
            files.extend(found);
        }
    }
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
    let Ok(document) = text.parse::<toml_edit::DocumentMut>() else {
        return false;
    };
    let location_host = |location: &str| location.split('/').next().unwrap_or("").to_string();
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
            let insecure = registry
                .get("insecure")
                .and_then(|i| i.as_bool())
                .unwrap_or(false);
            if insecure && location_host(location) == host {
                return true;
            }
        }
    }
    document
        .get("registries")
        .and_then(|r| r.get("insecure"))
        .and_then(|i| i.get("registries"))
        .and_then(|l| l.as_array())
        .is_some_and(|list| list.iter().any(|v| v.as_str() == Some(host)))
}

/// Whether `host` (`name[:port]`) may be spoken to over plain HTTP.
pub fn plain_http_allowed(trust: &Trust, host: &str) -> bool {
    let name = host.split(':').next().unwrap_or(host);
    name == REGISTRY_LOCAL
        || std::fs::read_to_string(&trust.registries_conf)
            .is_ok_and(|text| insecure_in_registries_conf(&text, host))
}

/// `user:password` for `host` from the caller's auth.json (as podman and skopeo keep it).
fn credentials(host: &str) -> Option<String> {
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(file) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(file.into());
    }
    let uid = nix::unistd::geteuid().as_raw();
    files.push(PathBuf::from(format!("/run/containers/{uid}/auth.json")));
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(runtime).join("containers/auth.json"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        files.push(home.join(".config/containers/auth.json"));
        files.push(home.join(".docker/config.json"));
    }
    for file in files {
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

/// The `rel="next"` target of a `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

/// A response body and its `Link` header.
type Page = (Vec<u8>, Option<String>);

/// A registry and how to talk to it.
pub struct Registry {
    host: String,
    base: String,
    agent: ureq::Agent,
    credentials: Option<String>,
    /// Bearer tokens by scope.
    tokens: Mutex<HashMap<String, String>>,
}

impl Registry {
    /// `host` as in image references (`registry.local`, `registry.altlinux.org`,
    /// `127.0.0.1:5443`).
    pub fn connect(host: &str, trust: &Trust) -> Result<Registry, RegistryError> {
        let valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            && !host.starts_with(['.', '-', ':']);
        if !valid {
            return Err(RegistryError::BadHost(host.to_string()));
        }
        let plain = plain_http_allowed(trust, host);
        let certs = root_certs(trust, host);
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(certs)))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .max_redirects(5)
            .user_agent("podsec-u7s-kubeadm")
            .build()
            .into();
        Ok(Registry {
            host: host.to_string(),
            base: format!("{}://{host}", if plain { "http" } else { "https" }),
            agent,
            credentials: credentials(host),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Every tag of `repository` (`c10f/kube-apiserver`), over all pages; an unknown
    /// repository has none.
    pub fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let valid = !repository.is_empty()
            && repository.split('/').all(|p| {
                !p.is_empty()
                    && p.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            });
        if !valid {
            return Err(RegistryError::Protocol {
                url: format!("{}/v2/{repository}", self.base),
                detail: msg!("invalid repository name"),
            });
        }
        let scope = format!("repository:{repository}:pull");
        let mut url = format!("{}/v2/{repository}/tags/list", self.base);
        let mut tags = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            if !seen.insert(url.clone()) {
                return Err(RegistryError::Protocol {
                    url,
                    detail: msg!("pagination loops"),
                });
            }
            let Some((body, link)) = self.get(&url, &scope)? else {
                return Ok(tags);
            };
            let page: TagList =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                    url: url.clone(),
                    detail: msg!("not a tag list: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match link.as_deref().and_then(next_link) {
                Some(next) => url = self.same_registry(&url, &next)?,
                None => return Ok(tags),
            }
        }
        Err(RegistryError::Protocol {
            url,
            detail: msg!("more than {MAX_PAGES} pages of tags"),
        })
    }

    /// The absolute URL of a `Link` target, which must stay on this registry.
    fn same_registry(&self, current: &str, next: &str) -> Result<String, RegistryError> {
        if next.starts_with('/') {
            return Ok(format!("{}{next}", self.base));
        }
        if next.starts_with(&format!("{}/", self.base)) {
            return Ok(next.to_string());
        }
        Err(RegistryError::Protocol {
            url: current.to_string(),
            detail: msg!("refusing to follow a pagination link off the registry: {next}"),
        })
    }

    /// GET with authentication: `Ok(None)` for 404, else the body and the Link header.
    fn get(&self, url: &str, scope: &str) -> Result<Option<Page>, RegistryError> {
        let mut attempt = 0;
        let mut authorization: Option<String> = self
            .tokens
            .lock()
            .ok()
            .and_then(|t| t.get(scope).map(|t| format!("Bearer {t}")));
        loop {
            attempt += 1;
            let mut request = self.agent.get(url).header("Accept", "application/json");
            if let Some(auth) = &authorization {
                request = request.header("Authorization", auth);
            }
            let mut response = request.call().map_err(|e| RegistryError::Http {
                url: url.to_string(),
                detail: tls_hint(&e.to_string(), &self.host),
            })?;
            let status = response.status().as_u16();
            let final_url = response.get_uri().to_string();
            match status {
                200 => {
                    let link = response
                        .headers()
                        .get("link")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let body = response
                        .body_mut()
                        .with_config()
                        .limit(BODY_LIMIT)
                        .read_to_vec()
                        .map_err(|e| RegistryError::Http {
                            url: url.to_string(),
                            detail: e.to_string(),
                        })?;
                    return Ok(Some((body, link)));
                }
                404 => return Ok(None),
                401 if attempt == 1 => {
                    let challenge = response
                        .headers()
                        .get_all("www-authenticate")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .filter_map(parse_challenge)
                        .find(|c| c.scheme == "bearer" || c.scheme == "basic")
                        .ok_or_else(|| RegistryError::StatusHint {
                            url: url.to_string(),
                            status,
                            hint: msg!("no usable WWW-Authenticate challenge"),
                        })?;
                    authorization = Some(self.answer(&challenge, scope, &final_url)?);
                }
                _ => {
                    return Err(if status == 401 || status == 403 {
                        RegistryError::StatusHint {
                            url: final_url,
                            status,
                            hint: msg!("access denied: log in with `podman login` as this user"),
                        }
                    } else {
                        RegistryError::Status {
                            url: final_url,
                            status,
                        }
                    });
                }
            }
        }
    }

    /// The Authorization header that answers a challenge.
    fn answer(
        &self,
        challenge: &Challenge,
        scope: &str,
        url: &str,
    ) -> Result<String, RegistryError> {
        let basic = || {
            self.credentials.as_ref().map(|c| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(c)
                )
            })
        };
        if challenge.scheme == "basic" {
            if !url.starts_with("https://") {
                return Err(RegistryError::Protocol {
                    url: url.to_string(),
                    detail: msg!("refusing to send credentials over plain HTTP"),
                });
            }
            return basic().ok_or_else(|| RegistryError::StatusHint {
                url: url.to_string(),
                status: 401,
                hint: msg!("the registry wants a login: `podman login` as this user"),
            });
        }
        let realm = challenge
            .params
            .get("realm")
            .ok_or_else(|| RegistryError::Protocol {
                url: url.to_string(),
                detail: msg!("bearer challenge without realm"),
            })?;
        let realm_https = realm.starts_with("https://");
        let plain_realm_on_plain_registry =
            realm.starts_with("http://") && self.base.starts_with("http://");
        if !(realm_https || plain_realm_on_plain_registry) {
            return Err(RegistryError::Protocol {
                url: url.to_string(),
                detail: msg!("refusing token realm {realm}: not HTTPS"),
            });
        }
        let scope = challenge
            .params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| scope.to_string());
        let mut request = self.agent.get(realm).query("scope", &scope);
        if let Some(service) = challenge.params.get("service") {
            request = request.query("service", service);
        }
        if realm_https && let Some(auth) = basic() {
            request = request.header("Authorization", &auth);
        }
        let mut response = request.call().map_err(|e| RegistryError::Http {
            url: realm.clone(),
            detail: tls_hint(&e.to_string(), realm),
        })?;
        if response.status().as_u16() != 200 {
            return Err(RegistryError::StatusHint {
                url: realm.clone(),
                status: response.status().as_u16(),
                hint: msg!("token request refused"),
            });
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| RegistryError::Http {
                url: realm.clone(),
                detail: e.to_string(),
            })?;
        let document: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                url: realm.clone(),
                detail: msg!("token response: {e}"),
            })?;
        let token = document
            .get("token")
            .or_else(|| document.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| RegistryError::Protocol {
                url: realm.clone(),
                detail: msg!("token response without a token"),
            })?;
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(scope.clone(), token.to_string());
        }
        Ok(format!("Bearer {token}"))
    }
}

/// Adds where to put a CA when a certificate is not trusted.
fn tls_hint(detail: &str, host: &str) -> String {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("tls") {
        let host = host
            .trim_start_matches("https://")
            .split('/')
            .next()
            .unwrap_or(host);
        msg!(
            "{detail} (TLS is verified: put the registry's CA into /etc/containers/certs.d/{host}/ca.crt)"
        )
    } else {
        detail.to_string()
    }
}

/// The registry host of an image reference or repository prefix (`registry.local/c10f` →
/// `registry.local`).
pub fn host_of(reference: &str) -> &str {
    reference.split('/').next().unwrap_or(reference)
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
    fn next_links() {
        assert_eq!(
            next_link(r#"</v2/c10f/pause/tags/list?last=3.9&n=3>; rel="next""#).as_deref(),
            Some("/v2/c10f/pause/tags/list?last=3.9&n=3")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
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
        let registry = Registry::connect("registry.altlinux.org", &trust).unwrap();
        assert_eq!(registry.base_url(), "https://registry.altlinux.org");
        assert!(Registry::connect("bad host", &trust).is_err());
    }

    #[test]
    fn host_of_a_prefix() {
        assert_eq!(host_of("registry.local/c10f"), "registry.local");
        assert_eq!(host_of("127.0.0.1:5000/x/y"), "127.0.0.1:5000");
    }
}
