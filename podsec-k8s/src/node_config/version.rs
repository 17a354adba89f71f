//! Kubernetes release numbers as node.toml and the wrapper compare them.

use std::fmt;
use std::str::FromStr;

/// A Kubernetes release `vMAJOR.MINOR.PATCH`, ordered numerically (v1.26.9 < v1.26.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

#[derive(Debug, Clone, thiserror::Error, podsec_common::i18n::Localize, PartialEq, Eq)]
#[error("invalid Kubernetes version '{0}': expected vMAJOR.MINOR.PATCH, e.g. v1.33.13")]
pub struct VersionError(pub String);

impl FromStr for KubeVersion {
    type Err = VersionError;
    fn from_str(text: &str) -> Result<KubeVersion, VersionError> {
        let bad = || VersionError(text.to_string());
        let rest = text.strip_prefix('v').ok_or_else(bad)?;
        let numbers: Vec<u32> = rest
            .split('.')
            .map(|part| {
                let digits = !part.is_empty()
                    && part.len() <= 9
                    && part.chars().all(|c| c.is_ascii_digit())
                    && (part == "0" || !part.starts_with('0'));
                if digits {
                    part.parse().map_err(|_| bad())
                } else {
                    Err(bad())
                }
            })
            .collect::<Result<_, _>>()?;
        match numbers[..] {
            [major, minor, patch] => Ok(KubeVersion {
                major,
                minor,
                patch,
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl KubeVersion {
    /// `1.33.13`, as ClusterConfiguration's kubernetesVersion and package versions spell it.
    pub fn without_v(&self) -> String {
        format!("{}.{}.{}", self.major, self.minor, self.patch)
    }

    /// Same major and minor.
    pub fn same_minor(&self, other: &KubeVersion) -> bool {
        self.major == other.major && self.minor == other.minor
    }
}
