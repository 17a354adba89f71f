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

use podsec_common::i18n::{Localize, Message};
use podsec_common::{msg, tr};

use super::flannel;
use super::registry::{Registry, RegistryError, Trust, host_of};
use super::versions::{KubeVersion, Minor, Tag, VersionRequest, newest, newest_patch};
use crate::node_config::CniPlugin;

pub const ALT_REGISTRY: &str = "registry.altlinux.org";
pub const NATIVE_REGISTRY: &str = "registry.k8s.io";
pub const NATIVE_FLANNEL: &str = "docker.io/flannel";

mod env;
mod images;
mod source;
#[cfg(test)]
pub mod tests;
mod version;

pub use env::*;
pub use images::*;
pub use source::*;
pub use version::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, podsec_common::i18n::Localize)]
pub enum ResolveError {
    #[error("invalid {variable}='{value}': {reason}")]
    Variable {
        variable: &'static str,
        value: String,
        reason: Message,
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
    Registry(Message),
    // `available` is "it has ..." (see available_of); one template per message, so that each
    // can be translated whole.
    #[error("{image}: the registry has no tag {tag} ({available})")]
    MissingTag {
        image: String,
        tag: String,
        available: Message,
    },
    #[error(
        "{image}: the registry has no tag {tag} ({available}); U7S_SETAVAILABLEIMAGES=yes would use the newest of these"
    )]
    MissingTagSubstitutable {
        image: String,
        tag: String,
        available: Message,
    },
    #[error(
        "{image}: the registry has no tag {tag} ({available}); export U7S_KUBEVERSION={suggested} or U7S_SETAVAILABLEIMAGES=yes"
    )]
    MissingPatch {
        image: String,
        tag: String,
        available: Message,
        suggested: String,
    },
    #[error("{image}: the registry has no {minor}.x version ({available})")]
    NoPatch {
        image: String,
        minor: String,
        available: Message,
    },
    /// No tag of the same minor to substitute for `tag`.
    #[error(
        "{image}: the registry has no tag of the same minor as {tag} to substitute (U7S_SETAVAILABLEIMAGES keeps major.minor) ({available})"
    )]
    NothingUsable {
        image: String,
        tag: String,
        available: Message,
    },
    #[error(
        "{image}: the registry has no flannel release with a shipped manifest ({shipped}) ({available})"
    )]
    NoFlannelRelease {
        image: String,
        shipped: String,
        available: Message,
    },
    #[error("{0}")]
    Flannel(#[from] flannel::FlannelError),
}

fn variable_error(
    variable: &'static str,
    value: &str,
    reason: impl std::fmt::Display + Localize,
) -> ResolveError {
    ResolveError::Variable {
        variable,
        value: value.to_string(),
        reason: Message::of(&reason),
    }
}

/// A chosen value and where it came from (printed by the plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen<T> {
    pub value: T,
    pub origin: String,
}

/// What the registry has, for an error: the tags `keep` selects, oldest first.
fn available_of(tags: &[String], keep: impl Fn(&Tag) -> bool) -> Message {
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
