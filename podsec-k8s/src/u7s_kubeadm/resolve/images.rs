//! The images of a node, each checked in the registry (kubeadm's, flannel's), and their
//! architecture names.

use super::*;

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
