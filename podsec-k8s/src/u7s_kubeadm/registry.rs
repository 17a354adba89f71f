//! Tag listing through the Docker Registry HTTP API v2 (`GET /v2/<name>/tags/list`), done the way
//! a registry client must (upstream ran `curl -ks`, §10.1/6 and §10.2/13). How a registry is
//! reached is common's [`registry_access`] (shared with podsec-load-sign-oci):
//! - TLS verified by default, against the system trust store plus containers' per-registry
//!   certificates (`/etc/containers/certs.d/<host>/*.crt`, `/etc/docker/certs.d/<host>/*.crt`);
//! - plain HTTP only for `registry.local` (podsec's own registry speaks HTTP by design) and for
//!   registries marked `insecure = true` in /etc/containers/registries.conf, the switch CRI-O and
//!   skopeo read too;
//! - bearer-token auth: a 401 with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`
//!   fetches a token from the realm (with the caller's `auth.json` credentials when there are
//!   some, only over HTTPS) and retries; `Basic` challenges are answered with those credentials,
//!   never over plain HTTP.
//!
//! This module adds pagination: `Link: <...>; rel="next"` is followed (same registry only,
//! bounded); redirects are followed without forwarding credentials to another host.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use podsec_common::i18n::Message;
use podsec_common::msg;
pub use podsec_common::registry_access::Trust;
use podsec_common::registry_access::{self, AccessError, Endpoint};
use ureq::ResponseExt;

const BODY_LIMIT: u64 = 16 << 20;
const MAX_PAGES: usize = 1000;

/// What can go wrong reaching a registry (common's, pagination included).
pub type RegistryError = AccessError;

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
    endpoint: Endpoint,
    /// Bearer tokens by scope.
    tokens: Mutex<HashMap<String, String>>,
}

impl Registry {
    /// `host` as in image references (`registry.local`, `registry.altlinux.org`,
    /// `127.0.0.1:5443`).
    pub fn connect(host: &str, trust: &Trust) -> Result<Registry, RegistryError> {
        Ok(Registry {
            endpoint: Endpoint::connect(
                host,
                trust,
                "podsec-u7s-kubeadm",
                Duration::from_secs(60),
            )?,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    pub fn base_url(&self) -> &str {
        self.endpoint.base_url()
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
            return Err(AccessError::Protocol {
                url: format!("{}/v2/{repository}", self.base_url()),
                detail: msg!("invalid repository name"),
            });
        }
        let scope = format!("repository:{repository}:pull");
        let mut url = format!("{}/v2/{repository}/tags/list", self.base_url());
        let mut tags = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            if !seen.insert(url.clone()) {
                return Err(AccessError::Protocol {
                    url,
                    detail: msg!("pagination loops"),
                });
            }
            let Some((body, link)) = self.get(&url, &scope)? else {
                return Ok(tags);
            };
            let page: TagList =
                serde_json::from_slice(&body).map_err(|e| AccessError::Protocol {
                    url: url.clone(),
                    detail: msg!("not a tag list: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match link.as_deref().and_then(next_link) {
                Some(next) => url = self.same_registry(&url, &next)?,
                None => return Ok(tags),
            }
        }
        Err(AccessError::Protocol {
            url,
            detail: msg!("more than {MAX_PAGES} pages of tags"),
        })
    }

    /// The absolute URL of a `Link` target, which must stay on this registry.
    fn same_registry(&self, current: &str, next: &str) -> Result<String, RegistryError> {
        if next.starts_with('/') {
            return Ok(format!("{}{next}", self.base_url()));
        }
        if next.starts_with(&format!("{}/", self.base_url())) {
            return Ok(next.to_string());
        }
        Err(AccessError::Protocol {
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
            let mut request = self
                .endpoint
                .agent()
                .get(url)
                .header("Accept", "application/json");
            if let Some(auth) = &authorization {
                request = request.header("Authorization", auth);
            }
            let mut response = request
                .call()
                .map_err(|e| self.endpoint.transport_error(url, e))?;
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
                        .map_err(|e| AccessError::Http {
                            url: url.to_string(),
                            detail: Message::verbatim(e.to_string()),
                        })?;
                    return Ok(Some((body, link)));
                }
                404 => return Ok(None),
                401 if attempt == 1 => {
                    let challenge = registry_access::challenge_of(url, &response)?;
                    // The scope the registry names, else the one this request needs.
                    let scope = challenge
                        .params
                        .get("scope")
                        .cloned()
                        .unwrap_or_else(|| scope.to_string());
                    let answer = self
                        .endpoint
                        .answer(&challenge, &scope, &final_url, false)?;
                    if let Some(token) = answer.strip_prefix("Bearer ")
                        && let Ok(mut tokens) = self.tokens.lock()
                    {
                        tokens.insert(scope, token.to_string());
                    }
                    authorization = Some(answer);
                }
                _ => {
                    return Err(if status == 401 || status == 403 {
                        AccessError::StatusHint {
                            url: final_url,
                            status,
                            hint: msg!("access denied: log in with `podman login` as this user"),
                        }
                    } else {
                        AccessError::Status {
                            url: final_url,
                            status,
                        }
                    });
                }
            }
        }
    }
}

/// The registry host of an image reference or repository prefix (`registry.local/c10f` →
/// `registry.local`).
pub fn host_of(reference: &str) -> &str {
    reference.split('/').next().unwrap_or(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links() {
        assert_eq!(
            next_link(r#"</v2/c10f/pause/tags/list?last=3.9&n=3>; rel="next""#).as_deref(),
            Some("/v2/c10f/pause/tags/list?last=3.9&n=3")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }

    #[test]
    fn tls_unless_registry_local_and_pagination_stays_on_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let trust = registry_access::trust_under(dir.path());
        let registry = Registry::connect("registry.altlinux.org", &trust).unwrap();
        assert_eq!(registry.base_url(), "https://registry.altlinux.org");
        let local = Registry::connect("registry.local", &trust).unwrap();
        assert_eq!(local.base_url(), "http://registry.local");
        assert!(Registry::connect("bad host", &trust).is_err());
        let here = "https://registry.altlinux.org/v2/c10f/pause/tags/list";
        assert_eq!(
            registry
                .same_registry(here, "/v2/c10f/pause/tags/list?last=x")
                .unwrap(),
            "https://registry.altlinux.org/v2/c10f/pause/tags/list?last=x"
        );
        assert!(
            registry
                .same_registry(here, "https://elsewhere.example/v2/x")
                .is_err()
        );
    }

    #[test]
    fn host_of_a_prefix() {
        assert_eq!(host_of("registry.local/c10f"), "registry.local");
        assert_eq!(host_of("127.0.0.1:5000/x/y"), "127.0.0.1:5000");
    }
}
