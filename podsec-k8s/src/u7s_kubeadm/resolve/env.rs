//! The `U7S_*` variables, read once and checked.

use super::*;

/// `U7S_REGISTRY`: unset, set to the empty string, or a value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RegistryVar {
    #[default]
    Unset,
    Empty,
    Value(String),
}

/// The `U7S_*` variables the wrapper reads, read once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct U7sEnv {
    pub platform: Option<String>,
    pub registry: RegistryVar,
    pub kube_version: Option<String>,
    pub set_available_images: bool,
    pub flannel_tag: Option<String>,
    pub flannel_cni_plugin_tag: Option<String>,
    pub cni_plugin: Option<String>,
    /// `U7S_CALICO_MANIFEST`: the administrator's calico manifest (with `U7S_CNI_PLUGIN=calico`).
    pub calico_manifest: Option<PathBuf>,
    pub arch_images: Vec<String>,
    pub skip_phases: Vec<String>,
    pub certmanager_tag: Option<String>,
}

impl U7sEnv {
    /// From `(name, value)` pairs; a name may be absent (unset) or present with "".
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<U7sEnv, ResolveError> {
        let vars: HashMap<&str, &str> = pairs.into_iter().collect();
        let non_empty = |name: &str| {
            vars.get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let mut env = U7sEnv {
            platform: non_empty("U7S_PLATFORM"),
            registry: match vars.get("U7S_REGISTRY") {
                None => RegistryVar::Unset,
                Some(v) if v.trim().is_empty() => RegistryVar::Empty,
                Some(v) => RegistryVar::Value(v.trim().trim_end_matches('/').to_string()),
            },
            kube_version: non_empty("U7S_KUBEVERSION"),
            flannel_tag: non_empty("U7S_FLANNEL_TAG"),
            flannel_cni_plugin_tag: non_empty("U7S_FLANNELCNIPLUGIN_TAG"),
            cni_plugin: non_empty("U7S_CNI_PLUGIN"),
            calico_manifest: non_empty("U7S_CALICO_MANIFEST").map(PathBuf::from),
            certmanager_tag: non_empty("U7S_CERTMANAGER_TAG"),
            ..U7sEnv::default()
        };
        if let Some(value) = non_empty("U7S_SETAVAILABLEIMAGES") {
            env.set_available_images = match value.as_str() {
                "yes" | "true" | "1" => true,
                "no" | "false" | "0" => false,
                _ => {
                    return Err(variable_error(
                        "U7S_SETAVAILABLEIMAGES",
                        &value,
                        msg!("expected yes or no"),
                    ));
                }
            };
        }
        if let Some(platform) = &env.platform
            && !platform
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
        {
            return Err(variable_error(
                "U7S_PLATFORM",
                platform,
                msg!("a platform name such as c10f, p10, p11, sisyphus"),
            ));
        }
        if let RegistryVar::Value(registry) = &env.registry {
            check_prefix("U7S_REGISTRY", registry)?;
        }
        if let Some(version) = &env.kube_version {
            VersionRequest::parse(version)
                .and_then(|r| r.minor_line().check_supported().map(|_| r))
                .map_err(|e| variable_error("U7S_KUBEVERSION", version, e))?;
        }
        for (name, tag) in [
            ("U7S_FLANNEL_TAG", &env.flannel_tag),
            ("U7S_FLANNELCNIPLUGIN_TAG", &env.flannel_cni_plugin_tag),
        ] {
            if let Some(tag) = tag
                && Tag::parse(tag).is_none()
            {
                return Err(variable_error(
                    name,
                    tag,
                    msg!("a version tag such as v0.26.7"),
                ));
            }
        }
        if let Some(plugin) = &env.cni_plugin {
            match plugin.as_str() {
                "flannel" => {}
                "calico" if env.calico_manifest.is_none() => {
                    return Err(variable_error(
                        "U7S_CNI_PLUGIN",
                        plugin,
                        msg!(
                            "calico needs its manifest: set U7S_CALICO_MANIFEST to Calico's calico.yaml with its images in the node's registry"
                        ),
                    ));
                }
                "calico" => {}
                _ => {
                    return Err(variable_error(
                        "U7S_CNI_PLUGIN",
                        plugin,
                        msg!("flannel or calico"),
                    ));
                }
            }
        }
        if let Some(manifest) = &env.calico_manifest
            && env.cni() != CniPlugin::Calico
        {
            return Err(variable_error(
                "U7S_CALICO_MANIFEST",
                &manifest.display().to_string(),
                msg!("set U7S_CNI_PLUGIN=calico to deploy calico (flannel is the default)"),
            ));
        }
        if let Some(images) = non_empty("U7S_ARCHIMAGES") {
            for image in images.split_whitespace() {
                if !valid_reference(image) {
                    return Err(variable_error(
                        "U7S_ARCHIMAGES",
                        image,
                        msg!(
                            "an image reference PATH/NAME:TAG (relative to the registry) or REGISTRY/PATH/NAME:TAG"
                        ),
                    ));
                }
                env.arch_images.push(image.to_string());
            }
        }
        if let Some(phases) = non_empty("U7S_SKIP_PHASES") {
            for phase in phases.split([',', ' ']).filter(|p| !p.is_empty()) {
                if !phase
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-/".contains(&b))
                {
                    return Err(variable_error(
                        "U7S_SKIP_PHASES",
                        phase,
                        msg!("a kubeadm phase name"),
                    ));
                }
                env.skip_phases.push(phase.to_string());
            }
        }
        Ok(env)
    }

    /// The pod network add-on (flannel unless `U7S_CNI_PLUGIN=calico`).
    pub fn cni(&self) -> CniPlugin {
        if self.cni_plugin.as_deref() == Some("calico") {
            CniPlugin::Calico
        } else {
            CniPlugin::Flannel
        }
    }

    pub fn from_process() -> Result<U7sEnv, ResolveError> {
        let vars: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("U7S_"))
            .collect();
        U7sEnv::from_pairs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

fn valid_reference(image: &str) -> bool {
    let (name, tag) = match image.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => return false,
    };
    !tag.is_empty()
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !name.is_empty()
        && name.split('/').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
        })
}

fn check_prefix(variable: &'static str, value: &str) -> Result<(), ResolveError> {
    let ok = value.split('/').all(|p| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-:".contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(variable_error(
            variable,
            value,
            msg!(
                "a registry name, optionally with a path (registry.local, registry.altlinux.org/p11)"
            ),
        ))
    }
}
