//! podsec-k8s-save-oci: OCI archives of the Kubernetes images of a platform (package
//! podsec-dev), one `<oci_dir>/<arch>.tar.xz` per requested architecture, for
//! podsec-load-sign-oci to push and sign into registry.local.
//!
//! Upstream defects fixed (24): every architecture of a comma list (or `all`) is archived, the
//! platform argument is applied before anything is computed from it, nothing is installed on
//! the archiving host (upstream installed the cluster's kubernetes packages there), and the
//! messages say what is wrong. The image set is the one kubeadm of the chosen version pulls
//! with the node's imageRepository `<registry>/<platform>`; archive names are
//! `<platform>/<image>:<tag>`, which load-sign-oci pushes as `registry.local/<platform>/...`:
//! exactly the names a node with `registry = "registry.local"` pulls.
//!
//! Beside kubeadm's images the archive holds what `kubeadm init` through the wrapper pulls too,
//! chosen the way the wrapper chooses them from the same registry: flannel (the newest release
//! with a manifest in the package, or `U7S_FLANNEL_TAG`) and its CNI plugin (the manifest's, or
//! `U7S_FLANNELCNIPLUGIN_TAG`), and the images of `U7S_ARCHIMAGES`; every tag is checked in the
//! registry first, `U7S_SETAVAILABLEIMAGES=yes` taking the newest of the same minor for a
//! missing one, as upstream did. A registry.local loaded from the archive alone deploys a node.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Parser;
use podsec_common::cli::{self, Failure, NotRoot};
use podsec_common::i18n::Message;
use podsec_common::oci_save::{self, SaveError, SourceImage};
use podsec_common::profile::OsRelease;
use podsec_common::{msg, tr};

use crate::node_config::{KubeVersion, VersionError};
use crate::u7s_kubeadm::registry::Trust;
use crate::u7s_kubeadm::resolve::{
    self, ImageRole, RegistryTags, ResolveError, Source, Tags, U7sEnv,
};

pub const NAME: &str = "podsec-k8s-save-oci";
/// The registry of ALT's Kubernetes images.
pub const ALT_REGISTRY: &str = "registry.altlinux.org";
/// The native kubeadm that lists a version's images (pause, etcd and coredns tags are
/// constants of kubeadm's minor). Only read, never installed.
pub const KUBEADM: &str = "/usr/bin/kubeadm";

/// Save the Kubernetes images that kubeadm will pull into per-architecture OCI archives
/// <oci_dir>/<arch>.tar.xz, to be loaded with podsec-load-sign-oci.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Environment:\n  \
U7S_PLATFORM      platform of the images when no platform argument is given; default from /etc/os-release\n  \
U7S_KUBEVERSION   Kubernetes version of the images (vX.Y.Z); default the version of /usr/bin/kubeadm\n  \
U7S_ALTREGISTRY   registry to copy from (default registry.altlinux.org; TLS is verified unless\n                    containers-registries.conf marks it insecure)\n  \
U7S_FLANNEL_TAG, U7S_FLANNELCNIPLUGIN_TAG  flannel's tags (default: as kubeadm init would choose)\n  \
U7S_ARCHIMAGES    more images to archive, PATH/NAME:TAG (relative to the registry) separated by spaces\n  \
U7S_SETAVAILABLEIMAGES=yes  a missing tag is replaced by the newest of its minor (with a warning)\n\
The image list comes from /usr/bin/kubeadm of the same minor (nothing is installed).\n\
Example: podsec-k8s-save-oci /tmp/k8s amd64,arm64 c10f\nMust be run as root."
)]
pub struct Args {
    /// Directory to create for the archives (must not exist)
    #[arg(value_name = "oci_dir")]
    pub oci_dir: PathBuf,
    /// Comma-separated architectures, or all (amd64,arm64,arm,ppc64le,386)
    #[arg(value_name = "arch")]
    pub arch: String,
    /// Platform of the images (default: U7S_PLATFORM, else this host's)
    #[arg(value_name = "platform")]
    pub platform: Option<String>,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error(transparent)]
    NotRoot(#[from] NotRoot),
    #[error("image archiving directory {0} already exists")]
    Exists(PathBuf),
    #[error(
        "unknown architecture {0}; allowed: amd64 arm64 arm ppc64le 386, a comma list of them, or all"
    )]
    Arch(String),
    #[error(
        "the platform is unknown: give it as the third argument or set U7S_PLATFORM (this host's /etc/os-release names no ALT platform)"
    )]
    NoPlatform,
    #[error(
        "platform {0}: the k8s- prefix is no longer supported (images are under <registry>/<platform>/, e.g. c10f)"
    )]
    K8sPrefix(String),
    #[error("invalid platform '{0}' (lower-case letters, digits, '.', '_', '-')")]
    BadPlatform(String),
    #[error("invalid registry '{0}' in U7S_ALTREGISTRY")]
    BadRegistry(String),
    #[error("U7S_KUBEVERSION: {0}")]
    Version(#[from] VersionError),
    #[error(
        "{KUBEADM} is needed to list the images of Kubernetes {wanted} (set U7S_KUBEVERSION or install kubeadm of that minor): {detail}"
    )]
    NoKubeadm { wanted: Message, detail: Message },
    #[error(
        "{KUBEADM} is {found}: it lists the pause, etcd and coredns images of its own minor, not of {wanted}"
    )]
    KubeadmMinor { found: String, wanted: String },
    #[error("kubeadm listed no images for {0}")]
    NoImages(String),
    #[error("'{0}' is not an image of the registry the images are copied from")]
    ForeignImage(String),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Save(SaveError),
}

impl From<SaveError> for Error {
    fn from(error: SaveError) -> Error {
        match error {
            SaveError::Arch(arch) => Error::Arch(arch),
            other => Error::Save(other),
        }
    }
}

impl Failure for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Error::Arch(_) => 2,
            _ => 1,
        }
    }
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

/// The platform: the argument, else a non-empty U7S_PLATFORM, else os-release's.
pub fn platform(
    argument: Option<&str>,
    variable: Option<&str>,
    os: &OsRelease,
) -> Result<String, Error> {
    let platform = argument
        .filter(|p| !p.is_empty())
        .or(variable.filter(|v| !v.is_empty()))
        .map(str::to_string)
        .or_else(|| os.alt_platform())
        .ok_or(Error::NoPlatform)?;
    if platform.starts_with("k8s-") {
        return Err(Error::K8sPrefix(platform));
    }
    let valid = platform
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && platform
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if !valid {
        return Err(Error::BadPlatform(platform));
    }
    Ok(platform)
}

/// The version of the installed kubeadm (`kubeadm version -o short`).
fn kubeadm_version(wanted: Message) -> Result<KubeVersion, Error> {
    // Outside the host seam (here and in the image list below): read-only kubeadm queries.
    let output = Command::new(KUBEADM)
        .args(["version", "-o", "short"])
        .output()
        .map_err(|e| Error::NoKubeadm {
            wanted: wanted.clone(),
            detail: Message::of(&e),
        })?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    text.parse().map_err(|_| Error::NoKubeadm {
        wanted,
        detail: msg!("it reports version '{text}'"),
    })
}

/// The images kubeadm pulls for `version` from `repository` (`registry/platform`).
///
/// A seam: kubeadm itself answers (`kubeadm config images list`), read-only. It is what
/// `kubeadm init` pulls, by definition.
pub fn kubernetes_images(version: &KubeVersion, repository: &str) -> Result<Vec<String>, Error> {
    let installed = kubeadm_version(Message::verbatim(version.to_string()))?;
    if !installed.same_minor(version) {
        return Err(Error::KubeadmMinor {
            found: installed.to_string(),
            wanted: version.to_string(),
        });
    }
    let output = Command::new(KUBEADM)
        .args(["config", "images", "list", "--kubernetes-version"])
        .arg(version.to_string())
        .arg("--image-repository")
        .arg(repository)
        .output()
        .map_err(|e| Error::NoKubeadm {
            wanted: Message::verbatim(version.to_string()),
            detail: Message::of(&e),
        })?;
    if !output.status.success() {
        return Err(Error::NoKubeadm {
            wanted: Message::verbatim(version.to_string()),
            detail: Message::verbatim(
                String::from_utf8_lossy(&output.stderr)
                    .trim()
                    .replace('\n', " "),
            ),
        });
    }
    let images: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if images.is_empty() {
        return Err(Error::NoImages(version.to_string()));
    }
    Ok(images)
}

/// Every image `kubeadm init` through the wrapper pulls from `<registry>/<platform>`, each
/// checked in the registry (tags substituted under `U7S_SETAVAILABLEIMAGES=yes`): kubeadm's,
/// flannel and its CNI plugin, then `U7S_ARCHIMAGES`; the references to copy, once each.
pub fn archive_images(
    kubeadm_images: &[String],
    env: &U7sEnv,
    registry: &str,
    platform: &str,
    tags: &dyn Tags,
    notes: &mut Vec<String>,
) -> Result<Vec<String>, Error> {
    let source = Source {
        prefix: format!("{registry}/{platform}"),
        platform: Some(platform.to_string()),
        origin: "U7S_ALTREGISTRY".into(),
        native: false,
    };
    let mut images =
        resolve::check_images(kubeadm_images, None, env.set_available_images, tags, notes)?;
    let flannel = resolve::flannel_images(env, &source, tags, notes)?;
    images.push(flannel.flannel);
    images.push(flannel.cni_plugin);
    let extra: Vec<String> = env
        .arch_images
        .iter()
        .map(|image| resolve::absolute_reference(image, registry))
        .collect();
    images.extend(resolve::check_images(
        &extra,
        Some(ImageRole::Extra),
        env.set_available_images,
        tags,
        notes,
    )?);
    let mut pulls: Vec<String> = Vec::new();
    for image in images {
        if !pulls.contains(&image.pull) {
            pulls.push(image.pull);
        }
    }
    Ok(pulls)
}

/// What to copy: from `docker://<image>` into the archive as the image without its registry.
pub fn sources(images: &[String], registry: &str) -> Result<Vec<SourceImage>, Error> {
    images
        .iter()
        .map(|image| {
            let name = image
                .strip_prefix(registry)
                .and_then(|rest| rest.strip_prefix('/'))
                .filter(|rest| rest.contains('/'))
                .ok_or_else(|| Error::ForeignImage(image.clone()))?;
            Ok(SourceImage {
                source: format!("docker://{image}"),
                name: name.to_string(),
            })
        })
        .collect()
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    cli::require_root()?;
    let archs = oci_save::architectures(&args.arch)?;
    let platform = platform(
        args.platform.as_deref(),
        std::env::var("U7S_PLATFORM").ok().as_deref(),
        &OsRelease::load(Path::new("/")),
    )?;
    let registry = std::env::var("U7S_ALTREGISTRY")
        .ok()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| ALT_REGISTRY.to_string());
    if registry.contains('/')
        || podsec_common::image_ref::ImageRef::parse(&format!("{registry}/x/y:1")).is_err()
    {
        return Err(Error::BadRegistry(registry));
    }
    if args.oci_dir.exists() {
        return Err(Error::Exists(args.oci_dir));
    }
    let version = match std::env::var("U7S_KUBEVERSION")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(text) => text.parse::<KubeVersion>()?,
        None => kubeadm_version(msg!("the installed kubeadm's version"))?,
    };
    let repository = format!("{registry}/{platform}");
    let kubeadm_images = kubernetes_images(&version, &repository)?;
    let env = U7sEnv::from_process()?;
    let tags = RegistryTags::new(Trust::default());
    let mut notes = Vec::new();
    let images = archive_images(
        &kubeadm_images,
        &env,
        &registry,
        &platform,
        &tags,
        &mut notes,
    )?;
    for note in &notes {
        eprintln!("{note}");
    }
    let sources = sources(&images, &registry)?;
    eprintln!(
        "{}",
        tr!(
            "Saving {count} images of Kubernetes {version} for platform {platform} from {repository} ({archs})",
            count = sources.len(),
            version = version,
            platform = platform,
            repository = repository,
            archs = archs.join(", ")
        )
    );
    oci_save::save(&args.oci_dir, &archs, &sources, |line| {
        println!("{}", podsec_common::i18n::Localize::localized(line))
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_argument_wins_and_is_checked_first() {
        let alt = OsRelease::parse("ID=altlinux\nALT_BRANCH_ID=p11\n");
        let debian = OsRelease::parse("ID=debian\n");
        assert_eq!(platform(Some("c10f"), Some("p10"), &alt).unwrap(), "c10f");
        assert_eq!(platform(None, Some("p10"), &alt).unwrap(), "p10");
        assert_eq!(platform(None, None, &alt).unwrap(), "p11");
        assert!(matches!(
            platform(None, None, &debian),
            Err(Error::NoPlatform)
        ));
        assert!(matches!(
            platform(Some("k8s-c10f2"), None, &alt),
            Err(Error::K8sPrefix(_))
        ));
        assert!(matches!(
            platform(Some("../x"), None, &alt),
            Err(Error::BadPlatform(_))
        ));
    }

    #[test]
    fn archive_names_drop_only_the_registry() {
        let images = vec![
            "registry.altlinux.org/c10f/kube-apiserver:v1.33.13".to_string(),
            "registry.altlinux.org/c10f/coredns:v1.12.0".to_string(),
        ];
        let saved = sources(&images, "registry.altlinux.org").unwrap();
        assert_eq!(saved[0].name, "c10f/kube-apiserver:v1.33.13");
        assert_eq!(
            saved[0].source,
            "docker://registry.altlinux.org/c10f/kube-apiserver:v1.33.13"
        );
        assert_eq!(saved[1].name, "c10f/coredns:v1.12.0");
        let foreign = vec!["registry.k8s.io/pause:3.10".to_string()];
        assert!(matches!(
            sources(&foreign, "registry.altlinux.org"),
            Err(Error::ForeignImage(_))
        ));
    }

    /// A registry's tags, by full repository.
    struct FakeTags(Vec<(&'static str, Vec<&'static str>)>);

    impl Tags for FakeTags {
        fn tags(&self, repository: &str) -> Result<Vec<String>, ResolveError> {
            Ok(self
                .0
                .iter()
                .find(|(r, _)| *r == repository)
                .map(|(_, t)| t.iter().map(|t| t.to_string()).collect())
                .unwrap_or_default())
        }
    }

    fn registry() -> FakeTags {
        FakeTags(vec![
            (
                "alt.example/c10f/kube-apiserver",
                vec!["v1.33.11", "v1.33.13"],
            ),
            ("alt.example/c10f/pause", vec!["3.10"]),
            (
                "alt.example/c10f/flannel",
                vec!["v0.25.7", "v0.26.7", "v0.99.0"],
            ),
            (
                "alt.example/c10f/flannel-cni-plugin",
                vec!["v1.5.1-flannel2", "v1.7.1-flannel1"],
            ),
            ("alt.example/c10f/busybox", vec!["1.35"]),
        ])
    }

    fn env(pairs: &[(&str, &str)]) -> U7sEnv {
        U7sEnv::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn the_archive_has_what_the_wrapper_pulls() {
        let kubeadm = vec![
            "alt.example/c10f/kube-apiserver:v1.33.13".to_string(),
            "alt.example/c10f/pause:3.10".to_string(),
        ];
        let mut notes = Vec::new();
        let images = archive_images(
            &kubeadm,
            &env(&[("U7S_ARCHIMAGES", "c10f/busybox:1.35 c10f/pause:3.10")]),
            "alt.example",
            "c10f",
            &registry(),
            &mut notes,
        )
        .unwrap();
        // flannel: the newest release with a shipped manifest (not v0.99.0), its CNI plugin
        // the manifest's; the extra images once each.
        assert_eq!(
            images,
            [
                "alt.example/c10f/kube-apiserver:v1.33.13",
                "alt.example/c10f/pause:3.10",
                "alt.example/c10f/flannel:v0.26.7",
                "alt.example/c10f/flannel-cni-plugin:v1.7.1-flannel1",
                "alt.example/c10f/busybox:1.35",
            ]
        );
        // The flannel tags as given.
        let images = archive_images(
            &kubeadm,
            &env(&[
                ("U7S_FLANNEL_TAG", "v0.25.7"),
                ("U7S_FLANNELCNIPLUGIN_TAG", "v1.5.1-flannel2"),
            ]),
            "alt.example",
            "c10f",
            &registry(),
            &mut notes,
        )
        .unwrap();
        assert_eq!(images[2], "alt.example/c10f/flannel:v0.25.7");
        assert_eq!(
            images[3],
            "alt.example/c10f/flannel-cni-plugin:v1.5.1-flannel2"
        );
    }

    #[test]
    fn a_missing_tag_is_an_error_or_with_setavailableimages_the_newest_of_its_minor() {
        let kubeadm = vec!["alt.example/c10f/kube-apiserver:v1.33.14".to_string()];
        let mut notes = Vec::new();
        let err = archive_images(
            &kubeadm,
            &env(&[]),
            "alt.example",
            "c10f",
            &registry(),
            &mut notes,
        )
        .unwrap_err();
        assert!(err.to_string().contains("v1.33.14"), "{err}");
        let images = archive_images(
            &kubeadm,
            &env(&[("U7S_SETAVAILABLEIMAGES", "yes")]),
            "alt.example",
            "c10f",
            &registry(),
            &mut notes,
        )
        .unwrap();
        assert_eq!(images[0], "alt.example/c10f/kube-apiserver:v1.33.13");
        assert!(
            notes.iter().any(|n| n.contains("U7S_SETAVAILABLEIMAGES")),
            "{notes:?}"
        );
        // An extra image the registry lacks is named.
        let err = archive_images(
            &[],
            &env(&[("U7S_ARCHIMAGES", "c10f/nginx:1.25")]),
            "alt.example",
            "c10f",
            &registry(),
            &mut notes,
        )
        .unwrap_err();
        assert!(err.to_string().contains("c10f/nginx"), "{err}");
    }
}
