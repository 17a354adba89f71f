//! A Docker Registry HTTP API v2 client for pushing: blobs straight from the OCI layout (no
//! re-compression), skipped when the registry already has them, then the manifest by tag.
//!
//! How the registry is reached (TLS verified against the system store and containers'
//! certs.d, plain HTTP only for registry.local and registries.conf's insecure registries,
//! credentials from `podman login`, bearer tokens) is common's [`registry_access`]; this adds
//! the push protocol and the authorization a push needs: the challenge of `GET /v2/` decides
//! between a bearer token per repository (scope `repository:<name>:pull,push`), Basic
//! credentials, or none, in which case credentials the caller has are still sent with every
//! request (podsec's nginx lets anyone pull and asks for a password only on writes).

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use podsec_common::msg;
use podsec_common::registry_access::{self, AccessError, Challenge, Endpoint, Trust};

/// Long enough for a large layer over a slow link; a stalled registry still ends the run.
const TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum RegistryError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("{method} {url}: {detail}")]
    Http {
        method: &'static str,
        url: String,
        detail: String,
    },
    #[error("{method} {url}: status {status}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
    },
    #[error("{method} {url}: status {status}: {body}")]
    StatusBody {
        method: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    #[error(
        "{method} {url}: status {status} (access denied: log in with `podman login` as this user)"
    )]
    Denied {
        method: &'static str,
        url: String,
        status: u16,
    },
    #[error("{url}: the registry gave no upload location")]
    NoLocation { url: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

pub struct Registry {
    endpoint: Endpoint,
    /// What `GET /v2/` asked for, if anything.
    challenge: Option<Challenge>,
    /// The Authorization header per repository (bearer tokens are scoped to one).
    authorizations: Mutex<HashMap<String, Option<String>>>,
}

impl Registry {
    /// `host` as in the image reference (registry.local, host:port), with the system's trust.
    pub fn connect(host: &str) -> Result<Registry, RegistryError> {
        Registry::connect_with(host, &Trust::default())
    }

    /// Reaches `host` once (`GET /v2/`) to learn the scheme and what authentication it wants.
    pub fn connect_with(host: &str, trust: &Trust) -> Result<Registry, RegistryError> {
        let endpoint = Endpoint::connect(host, trust, "podsec-load-sign-oci", TIMEOUT)?;
        let url = format!("{}/v2/", endpoint.base_url());
        let response = endpoint
            .agent()
            .get(&url)
            .call()
            .map_err(|e| endpoint.transport_error(&url, e))?;
        let challenge = match response.status().as_u16() {
            200 => None,
            401 => Some(registry_access::challenge_of(&url, &response)?),
            status => {
                return Err(AccessError::StatusHint {
                    url,
                    status,
                    hint: msg!("not a Docker Registry HTTP API v2"),
                }
                .into());
            }
        };
        Ok(Registry {
            endpoint,
            challenge,
            authorizations: Mutex::new(HashMap::new()),
        })
    }

    /// `https://host` or, for registry.local and insecure registries, `http://host`.
    pub fn base_url(&self) -> &str {
        self.endpoint.base_url()
    }

    /// The Authorization header for requests on `repository`, fetched once.
    fn authorization(&self, repository: &str) -> Result<Option<String>, RegistryError> {
        if let Some(known) = self.authorizations.lock().expect("lock").get(repository) {
            return Ok(known.clone());
        }
        let authorization = match &self.challenge {
            // Plain HTTP reaches only registry.local and registries the administrator marked
            // insecure, where podman sends credentials in clear too.
            Some(challenge) => Some(self.endpoint.answer(
                challenge,
                &format!("repository:{repository}:pull,push"),
                self.endpoint.base_url(),
                true,
            )?),
            None => self.endpoint.basic_authorization(),
        };
        self.authorizations
            .lock()
            .expect("lock")
            .insert(repository.to_string(), authorization.clone());
        Ok(authorization)
    }

    fn http_error(
        method: &'static str,
        url: &str,
        detail: impl std::fmt::Display,
    ) -> RegistryError {
        RegistryError::Http {
            method,
            url: url.to_string(),
            detail: detail.to_string(),
        }
    }

    fn status_error(method: &'static str, url: &str, status: u16, body: &str) -> RegistryError {
        let (url, body) = (url.to_string(), body.trim().to_string());
        match status {
            401 | 403 => RegistryError::Denied {
                method,
                url,
                status,
            },
            _ if body.is_empty() => RegistryError::Status {
                method,
                url,
                status,
            },
            _ => RegistryError::StatusBody {
                method,
                url,
                status,
                body,
            },
        }
    }

    /// Whether the repository already has the blob.
    pub fn has_blob(&self, repository: &str, digest: &str) -> Result<bool, RegistryError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base_url());
        let mut request = self.endpoint.agent().head(&url);
        if let Some(auth) = self.authorization(repository)? {
            request = request.header("Authorization", auth);
        }
        let response = request
            .call()
            .map_err(|e| self.endpoint.transport_error(&url, e))?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            code => Err(Self::status_error("HEAD", &url, code, "")),
        }
    }

    /// Uploads a blob monolithically (POST for a location, then PUT with the digest). With
    /// `mount_from`, a repository of this registry that has the blob, the POST first asks the
    /// registry to mount it from there (no upload); a registry that does not (201 means it
    /// did) answers with an upload location as usual.
    pub fn push_blob(
        &self,
        repository: &str,
        digest: &str,
        path: &Path,
        mount_from: Option<&str>,
    ) -> Result<(), RegistryError> {
        // A bearer token is scoped to `repository` alone, and a mount needs pull on `from` too.
        let mount_from = mount_from.filter(|_| {
            self.challenge
                .as_ref()
                .is_none_or(|challenge| challenge.scheme != "bearer")
        });
        let authorization = self.authorization(repository)?;
        let mut url = format!("{}/v2/{repository}/blobs/uploads/", self.base_url());
        if let Some(from) = mount_from {
            url.push_str(&format!(
                "?mount={}&from={}",
                digest.replace(':', "%3A"),
                from.replace('/', "%2F")
            ));
        }
        let mut request = self.endpoint.agent().post(&url);
        if let Some(auth) = &authorization {
            request = request.header("Authorization", auth);
        }
        let mut response = request
            .send_empty()
            .map_err(|e| self.endpoint.transport_error(&url, e))?;
        if mount_from.is_some() && response.status().as_u16() == 201 {
            podsec_common::host::failpoint::step(
                "blob-pushed",
                Path::new(&format!("{repository}@{digest}")),
            );
            return Ok(());
        }
        if mount_from.is_some() && matches!(response.status().as_u16(), 401 | 403) {
            // Refused because of the source repository: upload it instead.
            return self.push_blob(repository, digest, path, None);
        }
        if response.status().as_u16() != 202 {
            let body = response.body_mut().read_to_string().unwrap_or_default();
            return Err(Self::status_error(
                "POST",
                &url,
                response.status().as_u16(),
                &body,
            ));
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::NoLocation { url: url.clone() })?
            .to_string();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base_url())
        } else {
            location
        };
        // The upload location must stay on this registry: credentials go nowhere else.
        if !location.starts_with(&format!("{}/", self.base_url())) {
            return Err(Self::http_error(
                "POST",
                &url,
                msg!("refusing an upload location off the registry: {location}"),
            ));
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{separator}digest={digest}");
        let file = File::open(path).map_err(|source| RegistryError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut request = self
            .endpoint
            .agent()
            .put(&put_url)
            .header("Content-Type", "application/octet-stream");
        if let Some(auth) = &authorization {
            request = request.header("Authorization", auth);
        }
        let mut response = request
            .send(file)
            .map_err(|e| self.endpoint.transport_error(&put_url, e))?;
        if response.status().as_u16() != 201 {
            let body = response.body_mut().read_to_string().unwrap_or_default();
            return Err(Self::status_error(
                "PUT",
                &put_url,
                response.status().as_u16(),
                &body,
            ));
        }
        podsec_common::host::failpoint::step(
            "blob-pushed",
            Path::new(&format!("{repository}@{digest}")),
        );
        Ok(())
    }

    /// Puts the manifest under `tag`; returns the digest the registry reports.
    pub fn push_manifest(
        &self,
        repository: &str,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Option<String>, RegistryError> {
        let url = format!("{}/v2/{repository}/manifests/{tag}", self.base_url());
        let mut request = self
            .endpoint
            .agent()
            .put(&url)
            .header("Content-Type", media_type);
        if let Some(auth) = self.authorization(repository)? {
            request = request.header("Authorization", auth);
        }
        let mut response = request
            .send(bytes)
            .map_err(|e| self.endpoint.transport_error(&url, e))?;
        if response.status().as_u16() != 201 {
            let body = response.body_mut().read_to_string().unwrap_or_default();
            return Err(Self::status_error(
                "PUT",
                &url,
                response.status().as_u16(),
                &body,
            ));
        }
        podsec_common::host::failpoint::step(
            "manifest-pushed",
            Path::new(&format!("{repository}:{tag}")),
        );
        Ok(response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }
}
