//! A Docker Registry HTTP API v2 client for pushing: blobs straight from the OCI layout (no
//! re-compression), skipped when the registry already has them, then the manifest by tag.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{method} {url}: {detail}")]
    Http {
        method: &'static str,
        url: String,
        detail: String,
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
    agent: ureq::Agent,
    base: String,
    /// `Basic ...` from the caller's auth.json, sent with every request when present.
    authorization: Option<String>,
}

impl Registry {
    /// `host` as in the image reference (registry.local, host:port); plain HTTP.
    pub fn new(host: &str) -> Registry {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(900)))
            .http_status_as_error(false)
            .build()
            .into();
        Registry {
            agent,
            base: format!("http://{host}"),
            authorization: crate::auth_file::basic_auth(host),
        }
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

    /// Whether the repository already has the blob.
    pub fn has_blob(&self, repository: &str, digest: &str) -> Result<bool, RegistryError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let mut request = self.agent.head(&url);
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let response = request
            .call()
            .map_err(|e| Self::http_error("HEAD", &url, e))?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            code => Err(Self::http_error("HEAD", &url, format!("status {code}"))),
        }
    }

    /// Uploads a blob monolithically (POST for a location, then PUT with the digest).
    pub fn push_blob(
        &self,
        repository: &str,
        digest: &str,
        path: &Path,
    ) -> Result<(), RegistryError> {
        let url = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let mut request = self.agent.post(&url);
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let response = request
            .send_empty()
            .map_err(|e| Self::http_error("POST", &url, e))?;
        if response.status().as_u16() != 202 {
            return Err(Self::http_error(
                "POST",
                &url,
                format!("status {}", response.status()),
            ));
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::NoLocation { url: url.clone() })?
            .to_string();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{separator}digest={digest}");
        let file = File::open(path).map_err(|source| RegistryError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut request = self
            .agent
            .put(&put_url)
            .header("Content-Type", "application/octet-stream");
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let response = request
            .send(file)
            .map_err(|e| Self::http_error("PUT", &put_url, e))?;
        if response.status().as_u16() != 201 {
            return Err(Self::http_error(
                "PUT",
                &put_url,
                format!("status {}", response.status()),
            ));
        }
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
        let url = format!("{}/v2/{repository}/manifests/{tag}", self.base);
        let mut request = self.agent.put(&url).header("Content-Type", media_type);
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let mut response = request
            .send(bytes)
            .map_err(|e| Self::http_error("PUT", &url, e))?;
        if response.status().as_u16() != 201 {
            let body = response.body_mut().read_to_string().unwrap_or_default();
            return Err(Self::http_error(
                "PUT",
                &url,
                format!("status {}: {}", response.status(), body.trim()),
            ));
        }
        Ok(response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }
}
