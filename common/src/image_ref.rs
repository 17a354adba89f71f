//! Docker image references (distribution's grammar, as containers/image expands them) and the
//! policy scopes a reference falls under.

use std::fmt;

#[derive(Debug, thiserror::Error, crate::i18n::Localize, PartialEq, Eq)]
pub enum RefError {
    #[error("invalid image reference '{0}': {1}")]
    Invalid(String, &'static str),
}

/// A fully expanded reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// `algorithm:hex`, e.g. `sha256:…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub algorithm: String,
    pub hex: String,
}

impl Digest {
    pub fn parse(text: &str) -> Result<Digest, RefError> {
        let bad = |why| RefError::Invalid(text.to_string(), why);
        let (algorithm, hex) = text.split_once(':').ok_or(bad("digest without ':'"))?;
        let algorithm_ok = !algorithm.is_empty()
            && algorithm
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c));
        if !algorithm_ok {
            return Err(bad("bad digest algorithm"));
        }
        let expected_len = match algorithm {
            "sha256" => Some(64),
            "sha512" => Some(128),
            _ => None,
        };
        let hex_ok = hex.len() >= 32
            && hex
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            && expected_len.is_none_or(|n| n == hex.len());
        if !hex_ok {
            return Err(bad("bad digest value"));
        }
        Ok(Digest {
            algorithm: algorithm.to_string(),
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

const DEFAULT_DOMAIN: &str = "docker.io";

impl ImageRef {
    /// Parses and expands a reference as `docker://` does: `busybox` is
    /// `docker.io/library/busybox`, `registry.local/c10f/pause:3.9` stays as it is.
    pub fn parse(text: &str) -> Result<ImageRef, RefError> {
        let bad = |why| RefError::Invalid(text.to_string(), why);
        if text.is_empty() || text.len() > 4096 {
            return Err(bad("empty or too long"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(Digest::parse(digest)?)),
            None => (text, None),
        };
        // A tag is a ':' after the last '/'; a ':' before it belongs to a host:port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                return Err(bad("bad tag"));
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if !valid_domain(&domain) {
            return Err(bad("bad registry host"));
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.is_empty() || !path.split('/').all(valid_path_component) {
            return Err(bad(
                "bad repository path (lower-case letters, digits, '.', '_', '-')",
            ));
        }
        if domain.len() + 1 + path.len() > 255 {
            return Err(bad("repository name longer than 255 characters"));
        }
        Ok(ImageRef {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// `domain/path`, the repository.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The policy scopes this reference is looked up under, most specific first: the full
    /// reference, the repository, each parent namespace, the host, then `*.` wildcards of the
    /// host without port (containers/image `DockerReferenceNamespaces`).
    pub fn policy_scopes(&self) -> Vec<String> {
        let mut scopes = Vec::new();
        if self.tag.is_some() || self.digest.is_some() {
            scopes.push(self.to_string());
        }
        let mut name = self.repository();
        loop {
            scopes.push(name.clone());
            match name.rfind('/') {
                Some(i) => name.truncate(i),
                None => break,
            }
        }
        let mut host = name.split(':').next().unwrap_or_default().to_string();
        while let Some(dot) = host.find('.') {
            host = host[dot + 1..].to_string();
            scopes.push(format!("*.{host}"));
        }
        scopes
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// A policy scope of the docker transport as podsec writes them: a registry host
/// (`registry.local`, `host:port`) optionally followed by a repository namespace
/// (`registry.local/c10f`). Returns the host and the namespace path.
pub fn parse_scope(text: &str) -> Result<(String, Option<String>), RefError> {
    let bad = |why| RefError::Invalid(text.to_string(), why);
    let (host, path) = match text.split_once('/') {
        Some((host, path)) => (host, Some(path)),
        None => (text, None),
    };
    if !valid_domain(host) || !(host.contains('.') || host.contains(':') || host == "localhost") {
        return Err(bad(
            "a scope starts with a registry host such as registry.local",
        ));
    }
    if let Some(path) = path
        && !path.split('/').all(valid_path_component)
    {
        return Err(bad(
            "bad repository path (lower-case letters, digits, '.', '_', '-')",
        ));
    }
    Ok((host.to_string(), path.map(str::to_string)))
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    port_ok && host_ok
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.chars().all(|c| c == '-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn expands_docker_hub_short_names() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox");
        let r = ImageRef::parse("user/app:1").unwrap();
        assert_eq!(r.to_string(), "docker.io/user/app:1");
    }

    #[test]
    fn keeps_registry_port_and_tag_apart() {
        let r = ImageRef::parse("registry.local:5000/c10f/pause:3.9").unwrap();
        assert_eq!(r.domain, "registry.local:5000");
        assert_eq!(r.path, "c10f/pause");
        assert_eq!(r.tag.as_deref(), Some("3.9"));
        let r = ImageRef::parse(&format!("localhost/x@sha256:{HEX}")).unwrap();
        assert_eq!(r.domain, "localhost");
        assert_eq!(r.digest.unwrap().hex, HEX);
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "Registry.local/UPPER",
            "registry.local/a//b",
            "registry.local/a:",
            "registry.local/a@sha256:short",
            "registry.local/a b",
            "registry.local/-a",
            "reg_istry.local/a",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn scopes_are_host_and_optional_namespace() {
        assert_eq!(
            parse_scope("registry.local").unwrap(),
            ("registry.local".into(), None)
        );
        assert_eq!(
            parse_scope("registry.local/c10f/k8s").unwrap(),
            ("registry.local".into(), Some("c10f/k8s".into()))
        );
        for bad in [
            "imagemaker",
            "registry.local/",
            "registry.local/A",
            "registry.local/../x",
            "reg istry.local",
            "\"x\"",
        ] {
            assert!(parse_scope(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_go_from_specific_to_wildcards() {
        let r = ImageRef::parse("registry.example.com:5000/k8s/pause:3.9").unwrap();
        assert_eq!(
            r.policy_scopes(),
            vec![
                "registry.example.com:5000/k8s/pause:3.9",
                "registry.example.com:5000/k8s/pause",
                "registry.example.com:5000/k8s",
                "registry.example.com:5000",
                "*.example.com",
                "*.com",
            ]
        );
    }
}
