//! Versions and tags ordered by their numbers, never as strings (upstream sorted `v1.26.9` after
//! `v1.26.11` and `1.9` after `1.26`): Kubernetes versions, the minors podsec supports, and the
//! tags of images (`v1.26.11`, `3.5.9-0`, `3.9`, `v1.7.1-flannel1`).

use std::cmp::Ordering;
use std::fmt;

/// The oldest Kubernetes minor podsec deploys (as upstream).
pub const MIN_MINOR: u32 = 26;
/// The newest Kubernetes minor podsec deploys: the one `make test` validates with the real kubeadm.
pub const NEWEST_MINOR: u32 = 33;
/// From this minor on kubeadm expects `kubeadm.k8s.io/v1beta4` (v1beta3 is deprecated there).
pub const V1BETA4_FROM_MINOR: u32 = 31;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, podsec_common::i18n::Localize)]
pub enum VersionError {
    #[error(
        "invalid Kubernetes version '{0}': expected vMAJOR.MINOR or vMAJOR.MINOR.PATCH, e.g. v1.33 or v1.33.13"
    )]
    Syntax(String),
    #[error("Kubernetes version '{0}': pre-release versions are not deployed by podsec")]
    PreRelease(String),
    #[error("Kubernetes {0} is not supported: podsec deploys v1.{MIN_MINOR} to v1.{NEWEST_MINOR}")]
    Unsupported(String),
}

/// A Kubernetes minor release line, `v1.33`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minor {
    pub major: u32,
    pub minor: u32,
}

impl Minor {
    pub const fn new(minor: u32) -> Minor {
        Minor { major: 1, minor }
    }

    /// `1.33`, as ALT package names carry it (`kubernetes1.33-kubeadm`).
    pub fn dotted(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }

    /// The previous minor of the same major, if any.
    pub fn previous(&self) -> Option<Minor> {
        self.minor.checked_sub(1).map(|minor| Minor {
            major: self.major,
            minor,
        })
    }

    pub fn is_supported(&self) -> bool {
        self.major == 1 && (MIN_MINOR..=NEWEST_MINOR).contains(&self.minor)
    }

    pub fn check_supported(&self) -> Result<(), VersionError> {
        if self.is_supported() {
            Ok(())
        } else {
            Err(VersionError::Unsupported(self.to_string()))
        }
    }

    /// The kubeadm configuration API this minor's kubeadm expects.
    pub fn kubeadm_api(&self) -> KubeadmApi {
        if self.minor >= V1BETA4_FROM_MINOR {
            KubeadmApi::V1beta4
        } else {
            KubeadmApi::V1beta3
        }
    }
}

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}", self.major, self.minor)
    }
}

/// `kubeadm.k8s.io/v1beta3` (up to 1.30) or `v1beta4` (from 1.31).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeadmApi {
    V1beta3,
    V1beta4,
}

impl KubeadmApi {
    pub fn api_version(&self) -> &'static str {
        match self {
            KubeadmApi::V1beta3 => "kubeadm.k8s.io/v1beta3",
            KubeadmApi::V1beta4 => "kubeadm.k8s.io/v1beta4",
        }
    }
}

/// A released Kubernetes version, `v1.33.13`: one type with node.toml's, whose parsing is
/// strict (`v` and three numbers); the wrapper adds what it needs to compare and resolve.
pub use crate::node_config::KubeVersion;

impl KubeVersion {
    pub fn minor_line(&self) -> Minor {
        Minor {
            major: self.major,
            minor: self.minor,
        }
    }

    /// The version an image tag names exactly (`v1.33.13`), if it does.
    pub fn from_tag(tag: &Tag) -> Option<KubeVersion> {
        if !tag.v_prefix || tag.suffix.is_some() || tag.numbers.len() != 3 {
            return None;
        }
        let n = |i: usize| u32::try_from(tag.numbers[i]).ok();
        Some(KubeVersion {
            major: n(0)?,
            minor: n(1)?,
            patch: n(2)?,
        })
    }

    /// Parses `v1.33.13` or `1.33.13` (what `kubeadm version -o short` and packages print).
    pub fn parse(text: &str) -> Result<KubeVersion, VersionError> {
        match VersionRequest::parse(text)? {
            VersionRequest::Exact(version) => Ok(version),
            VersionRequest::Minor(_) => Err(VersionError::Syntax(text.to_string())),
        }
    }
}

/// What an administrator asked for: an exact version or the newest patch of a minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRequest {
    Exact(KubeVersion),
    Minor(Minor),
}

impl VersionRequest {
    /// `v1.33`, `v1.33.13`, `1.33` or `1.33.13`; labels such as `stable-1` (which kubeadm would
    /// resolve on the Internet) and pre-releases are refused.
    pub fn parse(text: &str) -> Result<VersionRequest, VersionError> {
        let syntax = || VersionError::Syntax(text.to_string());
        let body = text.strip_prefix('v').unwrap_or(text);
        if body.contains('-') || body.contains('+') {
            let (core, _) = body.split_once(['-', '+']).unwrap_or((body, ""));
            if !core.is_empty() && core.split('.').all(is_number) {
                return Err(VersionError::PreRelease(text.to_string()));
            }
            return Err(syntax());
        }
        let parts: Vec<&str> = body.split('.').collect();
        if !parts.iter().all(|p| is_number(p)) {
            return Err(syntax());
        }
        let number = |p: &str| p.parse::<u32>().map_err(|_| syntax());
        match parts.as_slice() {
            [major, minor] => Ok(VersionRequest::Minor(Minor {
                major: number(major)?,
                minor: number(minor)?,
            })),
            [major, minor, patch] => Ok(VersionRequest::Exact(KubeVersion {
                major: number(major)?,
                minor: number(minor)?,
                patch: number(patch)?,
            })),
            _ => Err(syntax()),
        }
    }

    pub fn minor_line(&self) -> Minor {
        match self {
            VersionRequest::Exact(v) => v.minor_line(),
            VersionRequest::Minor(m) => *m,
        }
    }
}

fn is_number(part: &str) -> bool {
    !part.is_empty() && part.len() <= 9 && part.bytes().all(|b| b.is_ascii_digit())
}

/// An image tag with its numbers: `v1.26.11`, `3.5.9-0`, `3.10`, `v1.7.1-flannel1`. Tags without
/// a leading number (`latest`, `sha256-...`) do not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub raw: String,
    pub v_prefix: bool,
    pub numbers: Vec<u64>,
    /// What follows the first `-`, if anything (`0` of etcd's `3.5.9-0`).
    pub suffix: Option<String>,
}

impl Tag {
    pub fn parse(raw: &str) -> Option<Tag> {
        let (v_prefix, body) = match raw.strip_prefix('v') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let (core, suffix) = match body.split_once('-') {
            Some((core, suffix)) if !suffix.is_empty() => (core, Some(suffix.to_string())),
            Some(_) => return None,
            None => (body, None),
        };
        let numbers: Option<Vec<u64>> = core
            .split('.')
            .map(|p| is_number(p).then(|| p.parse().ok()).flatten())
            .collect();
        let numbers = numbers?;
        if numbers.is_empty() || numbers.len() > 4 {
            return None;
        }
        Some(Tag {
            raw: raw.to_string(),
            v_prefix,
            numbers,
            suffix,
        })
    }

    /// `alpha`, `beta` or `rc` releases, which are never picked as "the newest".
    pub fn is_prerelease(&self) -> bool {
        self.suffix.as_deref().is_some_and(|s| {
            let s = s.to_ascii_lowercase();
            s.starts_with("alpha") || s.starts_with("beta") || s.starts_with("rc")
        })
    }

    /// Same prefix style and the same first two numbers (`3.5.9-0` and `3.5.16-0`, `v1.26.9` and
    /// `v1.26.11`, but neither `3.6.0-0` nor `v1.27.0`).
    pub fn same_minor(&self, other: &Tag) -> bool {
        self.v_prefix == other.v_prefix
            && self.numbers.len() >= 2
            && other.numbers.len() >= 2
            && self.numbers[..2] == other.numbers[..2]
    }

    pub fn same_major(&self, other: &Tag) -> bool {
        self.v_prefix == other.v_prefix && self.numbers.first() == other.numbers.first()
    }
}

impl Ord for Tag {
    fn cmp(&self, other: &Tag) -> Ordering {
        let width = self.numbers.len().max(other.numbers.len());
        for i in 0..width {
            let a = self.numbers.get(i).copied().unwrap_or(0);
            let b = other.numbers.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        // Pre-releases before the release, the release before revisions (`3.5.9` < `3.5.9-0`
        // < `3.5.9-1`), revisions in natural order.
        let rank = |t: &Tag| match &t.suffix {
            _ if t.is_prerelease() => 0,
            None => 1,
            Some(_) => 2,
        };
        rank(self)
            .cmp(&rank(other))
            .then_with(|| natural_cmp(self.suffix.as_deref(), other.suffix.as_deref()))
            .then_with(|| self.numbers.len().cmp(&other.numbers.len()))
            .then_with(|| self.raw.cmp(&other.raw))
    }
}

impl PartialOrd for Tag {
    fn partial_cmp(&self, other: &Tag) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares text with embedded numbers by their values (`flannel2` < `flannel10`).
fn natural_cmp(a: Option<&str>, b: Option<&str>) -> Ordering {
    let (a, b) = (a.unwrap_or(""), b.unwrap_or(""));
    let chunks = |s: &str| -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let digit = c.is_ascii_digit();
            match out.last_mut() {
                Some((d, text)) if *d == digit => text.push(c),
                _ => out.push((digit, c.to_string())),
            }
        }
        out
    };
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(cb.iter()) {
        let order = match (x, y) {
            ((true, x), (true, y)) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            ((_, x), (_, y)) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    ca.len().cmp(&cb.len())
}

/// The newest release tag among `tags` that `accept` admits (pre-releases and unparsable tags
/// such as `latest` never count).
pub fn newest<'a>(
    tags: impl IntoIterator<Item = &'a str>,
    accept: impl Fn(&Tag) -> bool,
) -> Option<Tag> {
    tags.into_iter()
        .filter_map(Tag::parse)
        .filter(|t| !t.is_prerelease() && accept(t))
        .max()
}

/// The newest `vX.Y.Z` of `minor` among `tags`.
pub fn newest_patch<'a>(
    tags: impl IntoIterator<Item = &'a str>,
    minor: Minor,
) -> Option<KubeVersion> {
    tags.into_iter()
        .filter_map(Tag::parse)
        .filter_map(|t| KubeVersion::from_tag(&t))
        .filter(|v| v.minor_line() == minor)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &str) -> Tag {
        Tag::parse(s).unwrap_or_else(|| panic!("{s} does not parse"))
    }

    #[test]
    fn patch_versions_order_by_number_not_by_string() {
        // Upstream's `sort` put v1.26.9 after v1.26.11 (§10.2 defect 13).
        assert!(tag("v1.26.9") < tag("v1.26.11"));
        assert!(tag("1.9") < tag("1.26"));
        assert!(tag("v0.9.1") < tag("v0.26.7"));
        let tags = [
            "v1.26.9",
            "v1.26.11",
            "v1.26.3",
            "latest",
            "v1.27.0",
            "v1.26.12-rc.0",
        ];
        assert_eq!(
            newest_patch(tags, Minor::new(26)),
            Some(KubeVersion {
                major: 1,
                minor: 26,
                patch: 11
            })
        );
        assert_eq!(newest(tags, |_| true).unwrap().raw, "v1.27.0");
    }

    #[test]
    fn revisions_and_prereleases() {
        assert!(tag("3.5.9-0") < tag("3.5.9-1"));
        assert!(tag("3.5.9-1") < tag("3.5.10-0"));
        assert!(tag("v1.26.0-rc.1") < tag("v1.26.0"));
        assert!(tag("v1.7.1-flannel2") < tag("v1.7.1-flannel10"));
        assert!(tag("3.9") < tag("3.10"));
        assert!(tag("v1.26.0-rc.1").is_prerelease());
        assert!(!tag("3.5.9-0").is_prerelease());
        for bad in ["latest", "", "v", "sha256-abc", "1..2", "v1.2-", "x1.2"] {
            assert_eq!(Tag::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn same_minor_keeps_major_and_minor() {
        assert!(tag("3.5.9-0").same_minor(&tag("3.5.16-0")));
        assert!(!tag("3.5.9-0").same_minor(&tag("3.6.0-0")));
        assert!(!tag("v1.26.9").same_minor(&tag("v1.27.0")));
        assert!(!tag("v1.9.3").same_minor(&tag("1.9.3")));
        assert!(!tag("3.9").same_minor(&tag("3.10")));
        assert!(!tag("3").same_minor(&tag("3")));
    }

    #[test]
    fn requests_and_the_supported_range() {
        assert_eq!(
            VersionRequest::parse("v1.33").unwrap(),
            VersionRequest::Minor(Minor::new(33))
        );
        assert_eq!(
            VersionRequest::parse("1.26.9").unwrap(),
            VersionRequest::Exact(KubeVersion {
                major: 1,
                minor: 26,
                patch: 9
            })
        );
        for bad in [
            "stable-1",
            "latest",
            "v1",
            "v1.26.9.1",
            "1.x",
            "",
            "v1.26.",
            "v1.026a",
        ] {
            assert!(
                matches!(VersionRequest::parse(bad), Err(VersionError::Syntax(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            VersionRequest::parse("v1.31.0-rc.1"),
            Err(VersionError::PreRelease(_))
        ));
        assert!(Minor::new(26).is_supported() && Minor::new(NEWEST_MINOR).is_supported());
        assert!(!Minor::new(25).is_supported() && !Minor::new(NEWEST_MINOR + 1).is_supported());
        assert!(
            Minor {
                major: 2,
                minor: 30
            }
            .check_supported()
            .is_err()
        );
        assert_eq!(Minor::new(30).kubeadm_api(), KubeadmApi::V1beta3);
        assert_eq!(Minor::new(31).kubeadm_api(), KubeadmApi::V1beta4);
        assert_eq!(Minor::new(26).previous(), Some(Minor::new(25)));
        assert_eq!(
            KubeVersion::parse("v1.33.13").unwrap().without_v(),
            "1.33.13"
        );
    }
}
