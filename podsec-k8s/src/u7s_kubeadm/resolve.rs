//! Which platform, registry, Kubernetes version and image tags a node gets, with an explicit
//! precedence that the plan prints next to every value:
//! - registry: `--image-repository` > a set-but-empty `U7S_REGISTRY` (native registry.k8s.io
//!   images) > a non-empty `U7S_REGISTRY` (honoured; upstream overrode it, §10.2/12) >
//!   `registry.local` bound in /etc/hosts > registry.altlinux.org;
//! - platform: `U7S_PLATFORM` > /etc/os-release (`k8s-c10f*` is mapped to `c10f` for every image,
//!   flannel included);
//! - version: `--kubernetes-version` > `U7S_KUBEVERSION` > the minor of the installed kubeadm >
//!   the newest minor the package repository offers; a minor alone means its newest patch in the
//!   registry (by number: v1.26.11 > v1.26.9);
//! - tags: what kubeadm lists for the version, each checked in the registry. A missing tag is an
//!   error naming what the registry has, unless `U7S_SETAVAILABLEIMAGES=yes`: then the newest tag
//!   of the same major.minor stands in, announced loudly (never another minor, §10.2/14).

use std::collections::HashMap;
use std::path::PathBuf;

use podsec_common::{msg, tr};

use super::flannel;
use super::registry::{Registry, RegistryError, Trust, host_of};
use super::versions::{KubeVersion, Minor, Tag, VersionRequest, newest, newest_patch};
use crate::node_config::CniPlugin;

pub const ALT_REGISTRY: &str = "registry.altlinux.org";
pub const NATIVE_REGISTRY: &str = "registry.k8s.io";
pub const NATIVE_FLANNEL: &str = "docker.io/flannel";

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("invalid {variable}='{value}': {reason}")]
    Variable {
        variable: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "cannot determine the platform of the images: /etc/os-release describes no ALT system; set U7S_PLATFORM (c10f, p10, p11, sisyphus) or U7S_REGISTRY"
    )]
    NoPlatform,
    #[error(
        "cannot choose the Kubernetes version: no kubeadm is installed and no package repository lists one; set U7S_KUBEVERSION (e.g. v1.33)"
    )]
    NoVersion,
    #[error("{0}")]
    Registry(String),
    // `available` is "it has ..." (see available_of); one template per message, so that each
    // can be translated whole.
    #[error("{image}: the registry has no tag {tag} ({available})")]
    MissingTag {
        image: String,
        tag: String,
        available: String,
    },
    #[error(
        "{image}: the registry has no tag {tag} ({available}); U7S_SETAVAILABLEIMAGES=yes would use the newest of these"
    )]
    MissingTagSubstitutable {
        image: String,
        tag: String,
        available: String,
    },
    #[error(
        "{image}: the registry has no tag {tag} ({available}); export U7S_KUBEVERSION={suggested} or U7S_SETAVAILABLEIMAGES=yes"
    )]
    MissingPatch {
        image: String,
        tag: String,
        available: String,
        suggested: String,
    },
    #[error("{image}: the registry has no {minor}.x version ({available})")]
    NoPatch {
        image: String,
        minor: String,
        available: String,
    },
    /// No tag of the same minor to substitute for `tag`.
    #[error(
        "{image}: the registry has no tag of the same minor as {tag} to substitute (U7S_SETAVAILABLEIMAGES keeps major.minor) ({available})"
    )]
    NothingUsable {
        image: String,
        tag: String,
        available: String,
    },
    #[error(
        "{image}: the registry has no flannel release with a shipped manifest ({shipped}) ({available})"
    )]
    NoFlannelRelease {
        image: String,
        shipped: String,
        available: String,
    },
    #[error("{0}")]
    Flannel(#[from] flannel::FlannelError),
}

fn variable_error(variable: &'static str, value: &str, reason: impl ToString) -> ResolveError {
    ResolveError::Variable {
        variable,
        value: value.to_string(),
        reason: reason.to_string(),
    }
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

/// A chosen value and where it came from (printed by the plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen<T> {
    pub value: T,
    pub origin: String,
}

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
            "registry.local".to_string(),
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

/// Tag listing, by full repository (`registry.local/c10f/kube-apiserver`).
pub trait Tags {
    fn tags(&self, repository: &str) -> Result<Vec<String>, ResolveError>;
}

/// The registries themselves, one connection per host, each repository listed once.
pub struct RegistryTags {
    trust: Trust,
    registries: std::sync::Mutex<HashMap<String, std::sync::Arc<Registry>>>,
    listed: std::sync::Mutex<HashMap<String, Vec<String>>>,
}

impl RegistryTags {
    pub fn new(trust: Trust) -> RegistryTags {
        RegistryTags {
            trust,
            registries: std::sync::Mutex::new(HashMap::new()),
            listed: std::sync::Mutex::new(HashMap::new()),
        }
    }
}

impl Tags for RegistryTags {
    fn tags(&self, repository: &str) -> Result<Vec<String>, ResolveError> {
        if let Some(tags) = self.listed.lock().expect("tag cache").get(repository) {
            return Ok(tags.clone());
        }
        let host = host_of(repository);
        let path = repository
            .strip_prefix(host)
            .map(|p| p.trim_start_matches('/'))
            .unwrap_or_default();
        // docker.io's API lives at registry-1.docker.io, and official images under library/.
        let (api_host, path) = if host == "docker.io" {
            let path = if path.contains('/') {
                path.to_string()
            } else {
                format!("library/{path}")
            };
            ("registry-1.docker.io", path)
        } else {
            (host, path.to_string())
        };
        let registry = {
            let mut registries = self.registries.lock().expect("registry cache");
            match registries.get(api_host) {
                Some(r) => r.clone(),
                None => {
                    let r = std::sync::Arc::new(
                        Registry::connect(api_host, &self.trust)
                            .map_err(|e| ResolveError::Registry(e.to_string()))?,
                    );
                    registries.insert(api_host.to_string(), r.clone());
                    r
                }
            }
        };
        let tags = registry
            .tags(&path)
            .map_err(|e: RegistryError| ResolveError::Registry(e.to_string()))?;
        self.listed
            .lock()
            .expect("tag cache")
            .insert(repository.to_string(), tags.clone());
        Ok(tags)
    }
}

/// The version asked for and where the request came from; `explicit` when an administrator
/// named it (flag or variable), which forbids falling back to another minor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub request: VersionRequest,
    pub origin: String,
    pub explicit: bool,
}

pub fn requested(
    flag: Option<VersionRequest>,
    env: &U7sEnv,
    installed_kubeadm: Option<KubeVersion>,
    newest_package_minor: Option<Minor>,
) -> Result<Requested, ResolveError> {
    let env_request = env
        .kube_version
        .as_deref()
        .map(|v| VersionRequest::parse(v).expect("validated"));
    let (request, origin, explicit) = match (flag, env_request) {
        (Some(r), _) => (r, "--kubernetes-version".to_string(), true),
        (None, Some(r)) => (r, "U7S_KUBEVERSION".to_string(), true),
        (None, None) => match (installed_kubeadm, newest_package_minor) {
            (Some(v), _) => (
                VersionRequest::Minor(v.minor_line()),
                tr!("the minor of the installed kubeadm {version}", version = v),
                false,
            ),
            (None, Some(m)) => (
                VersionRequest::Minor(m),
                tr!("the newest minor of the kubeadm packages").to_string(),
                false,
            ),
            (None, None) => return Err(ResolveError::NoVersion),
        },
    };
    request
        .minor_line()
        .check_supported()
        .map_err(|e| ResolveError::Registry(e.to_string()))?;
    Ok(Requested {
        request,
        origin,
        explicit,
    })
}

/// The exact version: a requested patch must be in the registry (or U7S_SETAVAILABLEIMAGES
/// lets kube images be substituted later); a minor means its newest patch there.
pub fn patch_version(
    requested: &Requested,
    env: &U7sEnv,
    source: &Source,
    tags: &dyn Tags,
    notes: &mut Vec<String>,
) -> Result<Chosen<KubeVersion>, ResolveError> {
    let minor = requested.request.minor_line();
    let origin = requested.origin.clone();
    let repository = format!("{}/kube-apiserver", source.prefix);
    let available = tags.tags(&repository)?;
    match requested.request {
        VersionRequest::Exact(v) => {
            if available.iter().any(|t| t == &v.to_string()) {
                Ok(Chosen { value: v, origin })
            } else if let Some(newest) = newest_patch(available.iter().map(String::as_str), minor)
                .filter(|_| env.set_available_images)
            {
                // The kube images share the version: deploy the available patch itself rather
                // than retagging it under a version it is not.
                notes.push(tr!(
                    "WARNING: U7S_SETAVAILABLEIMAGES=yes: {repository}:{version} is not in the registry; deploying {newest} of the same minor instead",
                    repository = repository,
                    version = v,
                    newest = newest
                ));
                Ok(Chosen {
                    value: newest,
                    origin: tr!(
                        "{origin}, replaced by the newest available {minor} patch",
                        origin = origin,
                        minor = minor
                    ),
                })
            } else {
                Err(ResolveError::MissingPatch {
                    image: repository,
                    tag: v.to_string(),
                    available: available_of(&available, |t| {
                        KubeVersion::from_tag(t).is_some_and(|k| k.minor_line() == minor)
                    }),
                    suggested: newest_patch(available.iter().map(String::as_str), minor)
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| minor.to_string()),
                })
            }
        }
        VersionRequest::Minor(m) => {
            let v = newest_patch(available.iter().map(String::as_str), m).ok_or_else(|| {
                ResolveError::NoPatch {
                    image: repository.clone(),
                    minor: m.to_string(),
                    available: available_of(&available, |t| KubeVersion::from_tag(t).is_some()),
                }
            })?;
            Ok(Chosen {
                value: v,
                origin: tr!(
                    "{origin}, newest {minor} patch in the registry",
                    origin = origin,
                    minor = m
                ),
            })
        }
    }
}

/// Both steps at once (no package fallback in between).
pub fn version(
    flag: Option<VersionRequest>,
    env: &U7sEnv,
    installed_kubeadm: Option<KubeVersion>,
    newest_package_minor: Option<Minor>,
    source: &Source,
    tags: &dyn Tags,
) -> Result<Chosen<KubeVersion>, ResolveError> {
    let requested = requested(flag, env, installed_kubeadm, newest_package_minor)?;
    patch_version(&requested, env, source, tags, &mut Vec::new())
}

fn available_of(tags: &[String], keep: impl Fn(&Tag) -> bool) -> String {
    let mut parsed: Vec<Tag> = tags
        .iter()
        .filter_map(|t| Tag::parse(t))
        .filter(|t| keep(t))
        .collect();
    parsed.sort();
    if parsed.is_empty() {
        msg!("it has none of that kind")
    } else {
        msg!(
            "it has {}",
            parsed
                .iter()
                .map(|t| t.raw.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// What an image is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRole {
    Kube,
    Etcd,
    CoreDns,
    Pause,
    Flannel,
    FlannelCniPlugin,
    /// An image of the administrator's calico manifest.
    Calico,
    Extra,
}

/// One image of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub role: ImageRole,
    /// What kubeadm, CRI-O or the manifests will ask for.
    pub wanted: String,
    /// What is pulled (equal to `wanted` unless substituted).
    pub pull: String,
}

impl Image {
    pub fn substituted(&self) -> bool {
        self.wanted != self.pull
    }
}

fn split_reference(reference: &str) -> (&str, &str) {
    reference.rsplit_once(':').unwrap_or((reference, ""))
}

fn role_of(name: &str) -> ImageRole {
    let base = name.rsplit('/').next().unwrap_or(name);
    match base {
        "etcd" => ImageRole::Etcd,
        "coredns" => ImageRole::CoreDns,
        "pause" => ImageRole::Pause,
        b if b.starts_with("kube-") => ImageRole::Kube,
        _ => ImageRole::Extra,
    }
}

/// Checks each reference in the registry, substituting within the same minor when allowed.
pub fn check_images(
    references: &[String],
    role_override: Option<ImageRole>,
    set_available: bool,
    tags: &dyn Tags,
    notes: &mut Vec<String>,
) -> Result<Vec<Image>, ResolveError> {
    let mut images = Vec::new();
    for reference in references {
        let (repository, tag) = split_reference(reference);
        let role = role_override.unwrap_or_else(|| role_of(repository));
        let available = tags.tags(repository)?;
        if available.iter().any(|t| t == tag) {
            images.push(Image {
                role,
                wanted: reference.clone(),
                pull: reference.clone(),
            });
            continue;
        }
        let wanted_tag = Tag::parse(tag);
        let same_minor = |t: &Tag| wanted_tag.as_ref().is_some_and(|w| w.same_minor(t));
        if !set_available {
            let best = newest(available.iter().map(String::as_str), same_minor);
            let (image, tag, available) = (
                repository.to_string(),
                tag.to_string(),
                available_of(&available, same_minor),
            );
            return Err(match best {
                Some(_) => ResolveError::MissingTagSubstitutable {
                    image,
                    tag,
                    available,
                },
                None => ResolveError::MissingTag {
                    image,
                    tag,
                    available,
                },
            });
        }
        let best = newest(available.iter().map(String::as_str), same_minor).ok_or_else(|| {
            ResolveError::NothingUsable {
                image: repository.to_string(),
                tag: tag.to_string(),
                available: available_of(&available, |_| true),
            }
        })?;
        notes.push(tr!(
            "WARNING: U7S_SETAVAILABLEIMAGES=yes: {repository}:{tag} is not in the registry; using {repository}:{best} in its place",
            repository = repository,
            tag = tag,
            best = best.raw
        ));
        images.push(Image {
            role,
            wanted: reference.clone(),
            pull: format!("{repository}:{}", best.raw),
        });
    }
    Ok(images)
}

/// An image of U7S_ARCHIMAGES: relative ones live on the node's registry.
pub fn absolute_reference(image: &str, registry: &str) -> String {
    let first = image.split('/').next().unwrap_or(image);
    if image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost") {
        image.to_string()
    } else {
        format!("{registry}/{image}")
    }
}

/// flannel and its CNI plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlannelChoice {
    pub manifest: &'static flannel::Manifest,
    pub flannel: Image,
    pub cni_plugin: Image,
    pub origin: String,
}

pub fn flannel_images(
    env: &U7sEnv,
    source: &Source,
    tags: &dyn Tags,
    notes: &mut Vec<String>,
) -> Result<FlannelChoice, ResolveError> {
    let repository = source.flannel_repository();
    let flannel_repo = format!("{repository}/flannel");
    let (tag, origin) = match &env.flannel_tag {
        Some(tag) => (tag.clone(), "U7S_FLANNEL_TAG".to_string()),
        None => {
            // The newest release the registry has and podsec ships a manifest for (on the
            // flannel registry: upstream asked the kube registry, §10.2/12).
            let available = tags.tags(&flannel_repo)?;
            let best = newest(available.iter().map(String::as_str), flannel::has_manifest)
                .ok_or_else(|| ResolveError::NoFlannelRelease {
                    image: flannel_repo.clone(),
                    shipped: flannel::shipped(),
                    available: available_of(&available, |t| t.v_prefix),
                })?;
            (
                best.raw,
                tr!("newest in the registry with a shipped manifest").to_string(),
            )
        }
    };
    let manifest = flannel::manifest_for(&tag)?;
    let cni_tag = env
        .flannel_cni_plugin_tag
        .clone()
        .unwrap_or_else(|| manifest.cni_plugin_tag.to_string());
    let flannel = check_images(
        &[format!("{flannel_repo}:{tag}")],
        Some(ImageRole::Flannel),
        env.set_available_images,
        tags,
        notes,
    )?
    .remove(0);
    let cni_plugin = check_images(
        &[format!("{repository}/flannel-cni-plugin:{cni_tag}")],
        Some(ImageRole::FlannelCniPlugin),
        env.set_available_images,
        tags,
        notes,
    )?
    .remove(0);
    Ok(FlannelChoice {
        manifest,
        flannel,
        cni_plugin,
        origin: tr!(
            "flannel {tag} ({origin}), CNI plugin {cni_tag} ({cni_origin})",
            tag = tag,
            origin = origin,
            cni_tag = cni_tag,
            cni_origin = if env.flannel_cni_plugin_tag.is_some() {
                "U7S_FLANNELCNIPLUGIN_TAG"
            } else {
                tr!("pinned by the manifest")
            }
        ),
    })
}

/// `uname -m` → the OCI architecture name (upstream mapped only x86_64, §10.2/13).
pub fn oci_arch(machine: &str) -> Option<&'static str> {
    Some(match machine {
        "x86_64" | "amd64" => "amd64",
        "aarch64" | "arm64" => "arm64",
        "armv7l" | "armv6l" | "armv8l" | "arm" => "arm",
        "ppc64le" => "ppc64le",
        "i386" | "i486" | "i586" | "i686" | "386" => "386",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => return None,
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// An in-memory registry.
    pub struct FakeTags(pub HashMap<String, Vec<String>>);

    impl FakeTags {
        pub fn new(entries: &[(&str, &[&str])]) -> FakeTags {
            FakeTags(
                entries
                    .iter()
                    .map(|(r, t)| (r.to_string(), t.iter().map(|t| t.to_string()).collect()))
                    .collect(),
            )
        }
    }

    impl Tags for FakeTags {
        fn tags(&self, repository: &str) -> Result<Vec<String>, ResolveError> {
            Ok(self.0.get(repository).cloned().unwrap_or_default())
        }
    }

    fn env(pairs: &[(&str, &str)]) -> U7sEnv {
        U7sEnv::from_pairs(pairs.iter().copied()).unwrap()
    }

    fn alt() -> Option<String> {
        Some("c10f".into())
    }

    #[test]
    fn registry_precedence() {
        let mut notes = Vec::new();
        let pick = |image_repository: Option<&str>, e: &U7sEnv, hosts: bool| {
            source(image_repository, e, hosts, alt(), &mut Vec::new()).unwrap()
        };
        // flag > environment
        let s = pick(
            Some("mirror.lan/k8s"),
            &env(&[("U7S_REGISTRY", "registry.local")]),
            true,
        );
        assert_eq!(
            (s.prefix.as_str(), s.origin.as_str()),
            ("mirror.lan/k8s", "--image-repository")
        );
        // a set-empty U7S_REGISTRY: native images, no platform
        let s = pick(None, &env(&[("U7S_REGISTRY", "")]), true);
        assert_eq!(s.prefix, "registry.k8s.io");
        assert!(s.native);
        assert_eq!(s.flannel_repository(), "docker.io/flannel");
        // a non-empty U7S_REGISTRY is honoured, even with registry.local in /etc/hosts (§10.2/12)
        let s = pick(
            None,
            &env(&[("U7S_REGISTRY", "registry.altlinux.org")]),
            true,
        );
        assert_eq!(s.prefix, "registry.altlinux.org/c10f");
        let s = pick(
            None,
            &env(&[("U7S_REGISTRY", "registry.altlinux.org/p11")]),
            true,
        );
        assert_eq!(s.prefix, "registry.altlinux.org/p11");
        // /etc/hosts, then the default
        assert_eq!(pick(None, &env(&[]), true).prefix, "registry.local/c10f");
        assert_eq!(
            pick(None, &env(&[]), false).prefix,
            "registry.altlinux.org/c10f"
        );
        // platform from the variable, old k8s-c10fN names mapped for every image
        let s = source(
            None,
            &env(&[("U7S_PLATFORM", "k8s-c10f2")]),
            true,
            None,
            &mut notes,
        )
        .unwrap();
        assert_eq!(s.prefix, "registry.local/c10f");
        assert_eq!(s.flannel_repository(), "registry.local/c10f");
        assert!(notes[0].contains("using c10f"), "{notes:?}");
        // no platform off ALT: an error, not "registry.local//kube-apiserver"
        assert_eq!(
            source(None, &env(&[]), true, None, &mut notes).unwrap_err(),
            ResolveError::NoPlatform
        );
    }

    #[test]
    fn environment_is_validated() {
        for (name, value) in [
            ("U7S_KUBEVERSION", "1.x"),
            ("U7S_KUBEVERSION", "v1.25.3"),
            ("U7S_SETAVAILABLEIMAGES", "maybe"),
            ("U7S_REGISTRY", "reg istry"),
            ("U7S_PLATFORM", "C10F;rm"),
            ("U7S_FLANNEL_TAG", "latest"),
            ("U7S_CNI_PLUGIN", "weave"),
            ("U7S_CNI_PLUGIN", "calico"),
            ("U7S_CALICO_MANIFEST", "/root/calico.yaml"),
            ("U7S_ARCHIMAGES", "busybox"),
        ] {
            let err = U7sEnv::from_pairs([(name, value)]).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        let e = env(&[
            ("U7S_SETAVAILABLEIMAGES", "yes"),
            ("U7S_ARCHIMAGES", "c10f/busybox:1.36 registry.local/x/y:1"),
            ("U7S_SKIP_PHASES", "addon/kube-proxy"),
        ]);
        assert!(e.set_available_images);
        assert_eq!(e.arch_images.len(), 2);
        assert_eq!(e.cni(), CniPlugin::Flannel);
        assert_eq!(e.skip_phases, ["addon/kube-proxy"]);
        // calico: only with the administrator's manifest, which is not refused as "unsupported"
        let err = U7sEnv::from_pairs([("U7S_CNI_PLUGIN", "calico")]).unwrap_err();
        assert!(err.to_string().contains("set U7S_CALICO_MANIFEST"), "{err}");
        assert!(!err.to_string().contains("not supported"), "{err}");
        let e = env(&[
            ("U7S_CNI_PLUGIN", "calico"),
            ("U7S_CALICO_MANIFEST", "/root/calico.yaml"),
        ]);
        assert_eq!(e.cni(), CniPlugin::Calico);
        assert_eq!(e.calico_manifest, Some(PathBuf::from("/root/calico.yaml")));
        // a manifest without calico chosen is a mistake, not silently flannel
        let err = U7sEnv::from_pairs([
            ("U7S_CNI_PLUGIN", "flannel"),
            ("U7S_CALICO_MANIFEST", "/root/calico.yaml"),
        ])
        .unwrap_err();
        assert!(
            err.to_string().contains("set U7S_CNI_PLUGIN=calico"),
            "{err}"
        );
    }

    fn kube_tags() -> FakeTags {
        FakeTags::new(&[(
            "registry.local/c10f/kube-apiserver",
            &[
                "v1.26.9", "v1.26.11", "v1.26.3", "latest", "v1.27.2", "v1.33.1", "v1.33.13",
            ],
        )])
    }

    #[test]
    fn version_precedence_and_numeric_patches() {
        let src = source(None, &env(&[]), true, alt(), &mut Vec::new()).unwrap();
        let tags = kube_tags();
        let installed = Some(KubeVersion::parse("v1.33.2").unwrap());
        let v = |flag, e: &U7sEnv, installed, newest| {
            version(flag, e, installed, newest, &src, &tags).map(|c| c.value.to_string())
        };
        // v1.26.11 > v1.26.9 (upstream sorted as strings)
        assert_eq!(
            v(None, &env(&[("U7S_KUBEVERSION", "v1.26")]), installed, None).unwrap(),
            "v1.26.11"
        );
        // flag > environment > installed kubeadm > packages
        assert_eq!(
            v(
                VersionRequest::parse("v1.27").ok(),
                &env(&[("U7S_KUBEVERSION", "v1.26")]),
                installed,
                None
            )
            .unwrap(),
            "v1.27.2"
        );
        assert_eq!(
            v(None, &env(&[]), installed, Some(Minor::new(26))).unwrap(),
            "v1.33.13"
        );
        assert_eq!(
            v(None, &env(&[]), None, Some(Minor::new(26))).unwrap(),
            "v1.26.11"
        );
        assert_eq!(
            v(None, &env(&[]), None, None).unwrap_err(),
            ResolveError::NoVersion
        );
        // an exact version the registry lacks: the error lists the minor's patches, in order
        let err = v(None, &env(&[("U7S_KUBEVERSION", "v1.26.10")]), None, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("(it has v1.26.3, v1.26.9, v1.26.11); export U7S_KUBEVERSION=v1.26.11"),
            "{err}"
        );
        // allowed substitution: the newest patch of the same minor, announced
        let e = env(&[
            ("U7S_KUBEVERSION", "v1.26.10"),
            ("U7S_SETAVAILABLEIMAGES", "yes"),
        ]);
        let req = requested(None, &e, None, None).unwrap();
        let mut notes = Vec::new();
        let chosen = patch_version(&req, &e, &src, &tags, &mut notes).unwrap();
        assert_eq!(chosen.value.to_string(), "v1.26.11");
        assert!(
            notes[0].contains("deploying v1.26.11 of the same minor instead"),
            "{notes:?}"
        );
        let e = env(&[
            ("U7S_KUBEVERSION", "v1.28.1"),
            ("U7S_SETAVAILABLEIMAGES", "yes"),
        ]);
        let req = requested(None, &e, None, None).unwrap();
        assert!(
            patch_version(&req, &e, &src, &tags, &mut notes).is_err(),
            "no v1.28 at all"
        );
    }

    #[test]
    fn substitution_stays_within_the_minor_and_is_loud() {
        let tags = FakeTags::new(&[
            (
                "registry.local/c10f/etcd",
                &["3.5.9-0", "3.5.16-0", "3.6.1-0", "latest"],
            ),
            ("registry.local/c10f/pause", &["3.9", "3.10"]),
            (
                "registry.local/c10f/coredns",
                &["v1.10.1", "v1.11.1", "v1.11.3"],
            ),
        ]);
        let wanted = [
            "registry.local/c10f/etcd:3.5.21-0".to_string(),
            "registry.local/c10f/coredns:v1.11.4".to_string(),
        ];
        let mut notes = Vec::new();
        // not allowed: an error that says what would be used
        let err = check_images(&wanted, None, false, &tags, &mut notes).unwrap_err();
        assert!(
            err.to_string()
                .contains("no tag 3.5.21-0 (it has 3.5.9-0, 3.5.16-0)"),
            "{err}"
        );
        let images = check_images(&wanted, None, true, &tags, &mut notes).unwrap();
        assert_eq!(images[0].pull, "registry.local/c10f/etcd:3.5.16-0");
        assert_eq!(images[0].role, ImageRole::Etcd);
        assert_eq!(images[1].pull, "registry.local/c10f/coredns:v1.11.3");
        assert!(images.iter().all(Image::substituted));
        assert_eq!(notes.len(), 2);
        assert!(
            notes[0].starts_with("WARNING: U7S_SETAVAILABLEIMAGES=yes"),
            "{notes:?}"
        );
        // never another minor: pause 3.11 has no 3.11.x, 3.10 is not a stand-in (§10.2/14)
        let err = check_images(
            &["registry.local/c10f/pause:3.11".to_string()],
            None,
            true,
            &tags,
            &mut notes,
        )
        .unwrap_err();
        assert!(matches!(err, ResolveError::NothingUsable { .. }), "{err}");
        let err = check_images(
            &["registry.local/c10f/etcd:3.4.0-0".to_string()],
            None,
            true,
            &tags,
            &mut notes,
        )
        .unwrap_err();
        assert!(err.to_string().contains("same minor"), "{err}");
    }

    #[test]
    fn flannel_tag_by_number_with_a_manifest_and_honoured_variables() {
        let tags = FakeTags::new(&[
            (
                "registry.local/c10f/flannel",
                &["v0.9.1", "v0.25.1", "v0.26.7", "v0.27.0", "latest"],
            ),
            (
                "registry.local/c10f/flannel-cni-plugin",
                &["v1.5.1-flannel2", "v1.7.1-flannel1", "v1.6.0-flannel1"],
            ),
            ("docker.io/flannel/flannel", &["v0.26.1"]),
            ("docker.io/flannel/flannel-cni-plugin", &["v1.7.1-flannel1"]),
        ]);
        let alt_source = source(None, &env(&[]), true, alt(), &mut Vec::new()).unwrap();
        let mut notes = Vec::new();
        let choice = flannel_images(&env(&[]), &alt_source, &tags, &mut notes).unwrap();
        // v0.27.0 is newer but has no shipped manifest; v0.9.1 is not newer than v0.26.7
        assert_eq!(choice.flannel.pull, "registry.local/c10f/flannel:v0.26.7");
        assert_eq!(
            choice.cni_plugin.pull,
            "registry.local/c10f/flannel-cni-plugin:v1.7.1-flannel1"
        );
        // U7S_FLANNELCNIPLUGIN_TAG is honoured (upstream ignored it, §10.2/15)
        let choice = flannel_images(
            &env(&[
                ("U7S_FLANNEL_TAG", "v0.25.1"),
                ("U7S_FLANNELCNIPLUGIN_TAG", "v1.6.0-flannel1"),
            ]),
            &alt_source,
            &tags,
            &mut notes,
        )
        .unwrap();
        assert_eq!(choice.manifest.minor, (0, 25));
        assert_eq!(
            choice.cni_plugin.pull,
            "registry.local/c10f/flannel-cni-plugin:v1.6.0-flannel1"
        );
        // native registry: flannel from docker.io/flannel, never docker.io/flannel//flannel
        let native = source(None, &env(&[("U7S_REGISTRY", "")]), false, None, &mut notes).unwrap();
        let choice = flannel_images(&env(&[]), &native, &tags, &mut notes).unwrap();
        assert_eq!(choice.flannel.pull, "docker.io/flannel/flannel:v0.26.1");
        // an unshipped U7S_FLANNEL_TAG is an error with a non-zero exit, not exit 0
        assert!(
            flannel_images(
                &env(&[("U7S_FLANNEL_TAG", "v0.27.0")]),
                &alt_source,
                &tags,
                &mut notes
            )
            .is_err()
        );
    }

    #[test]
    fn architectures_map_to_oci_names() {
        assert_eq!(oci_arch("x86_64"), Some("amd64"));
        assert_eq!(oci_arch("aarch64"), Some("arm64"));
        assert_eq!(oci_arch("ppc64le"), Some("ppc64le"));
        assert_eq!(oci_arch("i686"), Some("386"));
        assert_eq!(oci_arch("mips"), None);
    }
}
