//! The platform and the registry a node's images come from.

use super::*;
use podsec_common::trust_chain::LOCAL_REGISTRY;

/// The platform: `U7S_PLATFORM`, else os-release.
pub fn platform(
    env: &U7sEnv,
    os_platform: Option<String>,
    notes: &mut Vec<String>,
) -> Option<Chosen<String>> {
    if let Some(p) = &env.platform {
        // Images have lived under <registry>/c10f since 2025; the old k8s-c10fN names map there
        // for every image, flannel's too (§10.2/12).
        let mapped = if p.starts_with("k8s-c10f") {
            "c10f".to_string()
        } else if let Some(rest) = p.strip_prefix("k8s-") {
            rest.to_string()
        } else {
            p.clone()
        };
        if &mapped != p {
            notes.push(tr!(
                "U7S_PLATFORM={platform}: images live under /{mapped} now; using {mapped}",
                platform = p,
                mapped = mapped
            ));
        }
        return Some(Chosen {
            value: mapped,
            origin: "U7S_PLATFORM".into(),
        });
    }
    os_platform.map(|value| Chosen {
        value,
        origin: "/etc/os-release".into(),
    })
}

/// The repository prefix of the images (`registry.local/c10f`, `registry.k8s.io`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub prefix: String,
    /// The platform path in it, if any.
    pub platform: Option<String>,
    pub origin: String,
    /// Native upstream images (flannel then comes from docker.io/flannel).
    pub native: bool,
}

impl Source {
    pub fn registry(&self) -> &str {
        host_of(&self.prefix)
    }

    /// `<prefix>/<name>` for kube images; flannel's repository for the flannel images.
    pub fn flannel_repository(&self) -> String {
        if self.native {
            NATIVE_FLANNEL.to_string()
        } else {
            self.prefix.clone()
        }
    }
}

pub fn source(
    image_repository: Option<&str>,
    env: &U7sEnv,
    hosts_binds_registry_local: bool,
    os_platform: Option<String>,
    notes: &mut Vec<String>,
) -> Result<Source, ResolveError> {
    if let Some(repository) = image_repository {
        return Ok(Source {
            prefix: repository.to_string(),
            platform: None,
            origin: "--image-repository".into(),
            native: host_of(repository) == NATIVE_REGISTRY,
        });
    }
    let (registry, origin) = match &env.registry {
        RegistryVar::Empty => {
            return Ok(Source {
                prefix: NATIVE_REGISTRY.into(),
                platform: None,
                origin: tr!("U7S_REGISTRY set empty: native Kubernetes images").into(),
                native: true,
            });
        }
        RegistryVar::Value(value) if value.contains('/') => {
            return Ok(Source {
                prefix: value.clone(),
                platform: None,
                origin: tr!("U7S_REGISTRY (with path)").into(),
                native: false,
            });
        }
        RegistryVar::Value(value) => (value.clone(), "U7S_REGISTRY"),
        RegistryVar::Unset if hosts_binds_registry_local => (
            LOCAL_REGISTRY.to_string(),
            tr!("registry.local bound in /etc/hosts"),
        ),
        RegistryVar::Unset => (ALT_REGISTRY.to_string(), tr!("default")),
    };
    if registry == NATIVE_REGISTRY {
        return Ok(Source {
            prefix: registry,
            platform: None,
            origin: origin.into(),
            native: true,
        });
    }
    let platform = platform(env, os_platform, notes).ok_or(ResolveError::NoPlatform)?;
    Ok(Source {
        prefix: format!("{registry}/{}", platform.value),
        origin: tr!(
            "{origin}; platform {platform} from {source}",
            origin = origin,
            platform = platform.value,
            source = platform.origin
        ),
        platform: Some(platform.value),
        native: false,
    })
}
