//! Tag listing and the Kubernetes version: requested, then resolved to a patch the registry has.

use super::*;

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
                            .map_err(|e| ResolveError::Registry(Message::of(&e)))?,
                    );
                    registries.insert(api_host.to_string(), r.clone());
                    r
                }
            }
        };
        let tags = registry
            .tags(&path)
            .map_err(|e: RegistryError| ResolveError::Registry(Message::of(&e)))?;
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
        .map_err(|e| ResolveError::Registry(Message::of(&e)))?;
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
