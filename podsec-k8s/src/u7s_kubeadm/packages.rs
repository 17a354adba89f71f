//! The kubeadm, kubelet and CRI-O of the chosen minor. Installed ones are recognised by their
//! versions (any distribution); on ALT the packages `kubernetes<minor>-{kubeadm,kubelet,crio}`
//! and `cri-tools<minor>` are installed with apt-get as a plan step. Minors are compared as
//! numbers (upstream compared strings, so 1.9 > 1.26). When the default minor has no packages,
//! the newest older minor that has them is used and the Kubernetes version lowered with it
//! (upstream kept the newer version, §10.2/13); a minor the administrator named is never
//! silently replaced.

use std::process::Command;

use podsec_common::i18n::Message;
use podsec_common::{msg, tr};

use super::versions::{KubeVersion, MIN_MINOR, Minor};

pub const KUBEADM: &str = "/usr/bin/kubeadm";
pub const KUBELET: &str = "/usr/bin/kubelet";
pub const CRIO: &str = "/usr/bin/crio";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, podsec_common::i18n::Localize)]
pub enum PackageError {
    #[error(
        "no kubeadm, kubelet and CRI-O packages of Kubernetes {wanted} in the package repository (it has: {available}); choose one of those with U7S_KUBEVERSION"
    )]
    MinorUnavailable { wanted: Minor, available: Message },
    #[error(
        "no packages of Kubernetes v1.{MIN_MINOR} or newer up to {wanted} in the package repository (it has: {available})"
    )]
    NothingInstallable { wanted: Minor, available: Message },
    #[error(
        "{missing} of Kubernetes {wanted} is not installed, and this distribution has no packages podsec can install; install it of {wanted} first"
    )]
    NotInstalledOffAlt { missing: String, wanted: Minor },
    #[error(
        "{missing} of Kubernetes {wanted} are not installed, and this distribution has no packages podsec can install; install them of {wanted} first"
    )]
    NoneInstalledOffAlt { missing: String, wanted: Minor },
}

/// Versions of what is installed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    pub kubeadm: Option<KubeVersion>,
    pub kubelet: Option<KubeVersion>,
    pub crio: Option<KubeVersion>,
}

/// The first `X.Y.Z` in a program's version output (`v1.33.13`, `Kubernetes v1.33.13`,
/// `crio version 1.33.2`).
pub fn version_in(output: &str) -> Option<KubeVersion> {
    output
        .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
        .find_map(|word| {
            let word = word.trim_start_matches('v');
            let core = word.split(['-', '+']).next().unwrap_or(word);
            let parts: Vec<&str> = core.split('.').collect();
            (parts.len() == 3).then_some(())?;
            KubeVersion::parse(core).ok()
        })
}

fn program_version(program: &str, args: &[&str]) -> Option<KubeVersion> {
    // Outside the host seam: a read-only version query, no change to record.
    let output = Command::new(program).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    version_in(&String::from_utf8_lossy(&output.stdout))
}

pub fn detect_installed() -> Installed {
    Installed {
        kubeadm: program_version(KUBEADM, &["version", "-o", "short"]),
        kubelet: program_version(KUBELET, &["--version"]),
        crio: program_version(CRIO, &["--version"]),
    }
}

impl Installed {
    /// The components whose minor is not `minor`. CRI-O may be one minor ahead: a node whose
    /// runtime has been upgraded before its Kubernetes (podsec-k8s-upgrade), the CRI API being
    /// the same v1 on both sides.
    pub fn missing(&self, minor: Minor) -> Vec<&'static str> {
        let next = Minor {
            major: minor.major,
            minor: minor.minor + 1,
        };
        [
            ("kubeadm", self.kubeadm, None),
            ("kubelet", self.kubelet, None),
            ("cri-o", self.crio, Some(next)),
        ]
        .into_iter()
        .filter(|(_, v, ahead)| {
            v.is_none_or(|v| v.minor_line() != minor && Some(v.minor_line()) != *ahead)
        })
        .map(|(name, _, _)| name)
        .collect()
    }
}

/// What the package repository offers: minors with their kubeadm package version.
pub trait PackageIndex {
    /// Whether this distribution has podsec-installable packages at all.
    fn available(&self) -> bool;
    fn minors(&self) -> Vec<(Minor, String)>;
}

/// ALT's apt-rpm.
pub struct AltApt;

/// `kubernetes1.33-kubeadm - ...` lines of `apt-cache search` → minors.
pub fn parse_search(text: &str) -> Vec<Minor> {
    let mut minors: Vec<Minor> = text
        .lines()
        .filter_map(|line| {
            let name = line.split_whitespace().next()?;
            let version = name.strip_prefix("kubernetes")?.strip_suffix("-kubeadm")?;
            let (major, minor) = version.split_once('.')?;
            Some(Minor {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
            })
        })
        .collect();
    minors.sort();
    minors.dedup();
    minors
}

/// The first `Version:` of `apt-cache show`, up to the release (`1.33.2-alt1` → `1.33.2`).
pub fn parse_show_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(|v| v.trim().split('-').next().unwrap_or("").to_string())
        .filter(|v| !v.is_empty())
}

impl PackageIndex for AltApt {
    fn available(&self) -> bool {
        true
    }

    fn minors(&self) -> Vec<(Minor, String)> {
        // Outside the host seam: read-only queries of the package index, no change to record.
        let search = Command::new("apt-cache")
            .args(["search", "--names-only", "^kubernetes[0-9.]*-kubeadm$"])
            .output();
        let Ok(search) = search else {
            return Vec::new();
        };
        parse_search(&String::from_utf8_lossy(&search.stdout))
            .into_iter()
            .filter_map(|m| {
                let show = Command::new("apt-cache")
                    .args(["show", &format!("kubernetes{}-kubeadm", m.dotted())])
                    .output()
                    .ok()?;
                Some((
                    m,
                    parse_show_version(&String::from_utf8_lossy(&show.stdout))?,
                ))
            })
            .collect()
    }
}

/// No installable packages (Debian, where the tests run, and other distributions).
pub struct NoPackages;

impl PackageIndex for NoPackages {
    fn available(&self) -> bool {
        false
    }

    fn minors(&self) -> Vec<(Minor, String)> {
        Vec::new()
    }
}

/// The package step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagePlan {
    /// The minor that will be installed (lower than asked after a fallback).
    pub minor: Minor,
    /// Package names to install; empty when everything is installed.
    pub install: Vec<String>,
    pub notes: Vec<String>,
}

impl PackagePlan {
    pub fn commands(&self) -> Vec<Vec<String>> {
        if self.install.is_empty() {
            return Vec::new();
        }
        let mut install: Vec<String> = ["apt-get", "install", "-y"].map(String::from).to_vec();
        install.extend(self.install.iter().cloned());
        vec![vec!["apt-get".into(), "update".into()], install]
    }
}

pub fn package_names(minor: Minor) -> Vec<String> {
    let m = minor.dotted();
    vec![
        format!("kubernetes{m}-kubeadm"),
        format!("kubernetes{m}-kubelet"),
        format!("kubernetes{m}-crio"),
        format!("cri-tools{m}"),
    ]
}

/// Decides what to install for `wanted`.
pub fn plan(
    wanted: Minor,
    explicit: bool,
    installed: &Installed,
    index: &dyn PackageIndex,
) -> Result<PackagePlan, PackageError> {
    let missing = installed.missing(wanted);
    if missing.is_empty() {
        return Ok(PackagePlan {
            minor: wanted,
            install: Vec::new(),
            notes: Vec::new(),
        });
    }
    if !index.available() {
        let one = missing.len() == 1;
        let missing = missing.join(", ");
        return Err(if one {
            PackageError::NotInstalledOffAlt { missing, wanted }
        } else {
            PackageError::NoneInstalledOffAlt { missing, wanted }
        });
    }
    let minors = index.minors();
    let list = || {
        if minors.is_empty() {
            return msg!("none");
        }
        let names: Vec<String> = minors.iter().map(|(m, v)| format!("{m} ({v})")).collect();
        Message::verbatim(names.join(", "))
    };
    if minors.iter().any(|(m, _)| *m == wanted) {
        return Ok(PackagePlan {
            minor: wanted,
            install: package_names(wanted),
            notes: Vec::new(),
        });
    }
    if explicit {
        return Err(PackageError::MinorUnavailable {
            wanted,
            available: list(),
        });
    }
    let fallback = minors
        .iter()
        .map(|(m, _)| *m)
        .filter(|m| *m < wanted && m.is_supported())
        .max()
        .ok_or_else(|| PackageError::NothingInstallable {
            wanted,
            available: list(),
        })?;
    let mut notes = vec![tr!(
        "WARNING: no packages of Kubernetes {wanted}: installing {fallback} and deploying Kubernetes {fallback} instead",
        wanted = wanted,
        fallback = fallback
    )];
    if wanted.minor - fallback.minor > 1 {
        notes.push(tr!(
            "WARNING: {fallback} is more than one minor older than {wanted}: joining a cluster of {wanted} with it may fail",
            fallback = fallback,
            wanted = wanted
        ));
    }
    Ok(PackagePlan {
        minor: fallback,
        install: package_names(fallback),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Index(Vec<(Minor, String)>);
    impl PackageIndex for Index {
        fn available(&self) -> bool {
            true
        }
        fn minors(&self) -> Vec<(Minor, String)> {
            self.0.clone()
        }
    }

    fn v(s: &str) -> Option<KubeVersion> {
        Some(KubeVersion::parse(s).unwrap())
    }

    #[test]
    fn versions_from_program_output() {
        assert_eq!(version_in("v1.33.13\n"), v("1.33.13"));
        assert_eq!(version_in("Kubernetes v1.30.4\n"), v("1.30.4"));
        assert_eq!(
            version_in("crio version 1.33.2\nVersion: 1.33.2\n"),
            v("1.33.2")
        );
        assert_eq!(version_in("nothing here"), None);
    }

    #[test]
    fn apt_output_parses_and_minors_sort_as_numbers() {
        let search = "kubernetes1.9-kubeadm - old\nkubernetes1.26-kubeadm - Kubernetes\nkubernetes1.30-kubeadm - x\nkubernetes-client - y\n";
        assert_eq!(
            parse_search(search),
            [Minor::new(9), Minor::new(26), Minor::new(30)]
        );
        assert_eq!(
            parse_show_version("Package: kubernetes1.30-kubeadm\nVersion: 1.30.4-alt1\n")
                .as_deref(),
            Some("1.30.4")
        );
    }

    #[test]
    fn nothing_to_install_when_the_minor_is_there() {
        let installed = Installed {
            kubeadm: v("1.33.13"),
            kubelet: v("1.33.2"),
            crio: v("1.33.0"),
        };
        let p = plan(Minor::new(33), true, &installed, &NoPackages).unwrap();
        assert!(p.install.is_empty() && p.commands().is_empty());
        // another minor installed: packages needed; off ALT a clear error
        let err = plan(Minor::new(30), false, &installed, &NoPackages).unwrap_err();
        assert!(
            err.to_string()
                .contains("kubeadm, kubelet, cri-o of Kubernetes v1.30 are not installed"),
            "{err}"
        );
    }

    #[test]
    fn cri_o_may_be_one_minor_ahead_never_behind_or_further() {
        let with_crio = |crio: &str| Installed {
            kubeadm: v("1.32.13"),
            kubelet: v("1.32.13"),
            crio: v(crio),
        };
        assert!(with_crio("1.32.4").missing(Minor::new(32)).is_empty());
        assert!(with_crio("1.33.2").missing(Minor::new(32)).is_empty());
        assert_eq!(with_crio("1.34.0").missing(Minor::new(32)), ["cri-o"]);
        assert_eq!(with_crio("1.31.9").missing(Minor::new(32)), ["cri-o"]);
    }

    #[test]
    fn fallback_lowers_the_minor_only_for_the_default() {
        let index = Index(vec![
            (Minor::new(9), "1.9.0".into()),
            (Minor::new(28), "1.28.7".into()),
            (Minor::new(31), "1.31.2".into()),
        ]);
        let none = Installed::default();
        let p = plan(Minor::new(31), false, &none, &index).unwrap();
        assert_eq!(p.minor, Minor::new(31));
        assert_eq!(
            p.commands()[1],
            [
                "apt-get",
                "install",
                "-y",
                "kubernetes1.31-kubeadm",
                "kubernetes1.31-kubelet",
                "kubernetes1.31-crio",
                "cri-tools1.31"
            ]
        );
        let p = plan(Minor::new(33), false, &none, &index).unwrap();
        assert_eq!(p.minor, Minor::new(31));
        assert!(
            p.notes[0].contains("deploying Kubernetes v1.31 instead"),
            "{:?}",
            p.notes
        );
        assert!(p.notes[1].contains("more than one minor older"));
        let p = plan(Minor::new(30), false, &none, &index).unwrap();
        assert_eq!(p.minor, Minor::new(28), "1.9 is not newer than 1.28");
        let err = plan(Minor::new(33), true, &none, &index).unwrap_err();
        assert!(matches!(err, PackageError::MinorUnavailable { .. }));
        assert!(
            err.to_string().contains("v1.28 (1.28.7), v1.31 (1.31.2)"),
            "{err}"
        );
        let err = plan(Minor::new(27), false, &none, &index).unwrap_err();
        assert!(
            matches!(err, PackageError::NothingInstallable { .. }),
            "1.9 is unsupported: {err}"
        );
    }
}
