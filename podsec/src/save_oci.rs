//! podsec-save-oci: per-architecture OCI archives of images (package podsec-dev).
//!
//! `<oci_dir>/<arch>.tar.xz` holds `<arch>/` as an OCI image layout whose images are named by
//! `org.opencontainers.image.ref.name`: the format podsec-load-sign-oci reads. Upstream's defects
//! fixed: every architecture is validated, the transport is recognised rather than taken from a
//! fixed position, nothing is removed from local storage, and an unset U7S_ALTREGISTRY uses the
//! image names as given.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, Failure, NotRoot};
use podsec_common::oci_save::{self, SaveError, SourceImage};

pub const NAME: &str = "podsec-save-oci";

/// Save images into per-architecture OCI archives <dir>/<arch>.tar.xz for podsec-load-sign-oci.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Environment:\n  U7S_ALTREGISTRY                registry the images come from (prefixed to each image)\n  PODSECSAVE_USEEXISTINGIMAGES   accepted for compatibility (local storage is never modified)\n\
Examples:\n  podsec-save-oci /tmp/k8s amd64,arm64 registry.altlinux.org/c10f/pause:3.9\n  podsec-save-oci /tmp/x all containers-storage: localhost/app:1\nMust be run as root."
)]
pub struct Args {
    /// Directory to create for the archives (must not exist)
    #[arg(value_name = "oci_dir")]
    pub oci_dir: PathBuf,
    /// Comma-separated architectures, or all (amd64,arm64,arm,ppc64le,386)
    #[arg(value_name = "archs|all")]
    pub archs: String,
    /// Optional source transport (default docker://), then the images
    #[arg(value_name = "[transport] image", required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error(transparent)]
    NotRoot(#[from] NotRoot),
    #[error("OCI catalog {0} already exists")]
    Exists(PathBuf),
    #[error("unknown architecture {0}; allowed: amd64 arm64 arm ppc64le 386 or all")]
    Arch(String),
    #[error("no list of images specified")]
    NoImages,
    #[error("invalid image name '{0}'")]
    BadImage(String),
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

/// The architectures of `archs|all`, each validated.
pub fn architectures(text: &str) -> Result<Vec<&'static str>, Error> {
    Ok(oci_save::architectures(text)?)
}

/// A transport word as skopeo spells them (`docker://`, `containers-storage:`,
/// `containers-storage:[...]`, `docker-archive:`, `oci:`, `dir:`).
pub fn is_transport(word: &str) -> bool {
    word.ends_with("://")
        || (word.ends_with(':') && !word.contains('/'))
        || (word.starts_with("containers-storage:[") && word.ends_with(']'))
}

/// Transport and images from the positional words.
pub fn split_transport(words: &[String]) -> Result<(String, Vec<String>), Error> {
    let (transport, images) = match words.split_first() {
        Some((first, rest)) if is_transport(first) => (first.clone(), rest.to_vec()),
        _ => ("docker://".to_string(), words.to_vec()),
    };
    if images.is_empty() {
        return Err(Error::NoImages);
    }
    for image in &images {
        let ok = !image.is_empty()
            && !image.starts_with('/')
            && !image.contains("..")
            && image
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "./:_-@".contains(c));
        if !ok {
            return Err(Error::BadImage(image.clone()));
        }
    }
    Ok((transport, images))
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    cli::require_root()?;
    let archs = architectures(&args.archs)?;
    let (transport, images) = split_transport(&args.images)?;
    if args.oci_dir.exists() {
        return Err(Error::Exists(args.oci_dir));
    }
    let registry = std::env::var("U7S_ALTREGISTRY")
        .ok()
        .filter(|r| !r.is_empty());
    let sources: Vec<SourceImage> = images
        .iter()
        .map(|image| SourceImage {
            source: match &registry {
                Some(registry) => format!("{transport}{registry}/{image}"),
                None => format!("{transport}{image}"),
            },
            name: image.clone(),
        })
        .collect();
    oci_save::save(&args.oci_dir, &archs, &sources, |line| {
        println!("{}", podsec_common::i18n::Localize::localized(line))
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_architecture_is_validated() {
        assert_eq!(architectures("amd64,arm64").unwrap(), ["amd64", "arm64"]);
        assert_eq!(architectures("all").unwrap().len(), 5);
        assert!(matches!(architectures("amd64,sparc"), Err(Error::Arch(a)) if a == "sparc"));
    }

    #[test]
    fn the_transport_is_recognised_not_positional() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            split_transport(&words(&["c10f/pause:3.9"])).unwrap().0,
            "docker://"
        );
        let (transport, images) =
            split_transport(&words(&["containers-storage:", "localhost/a:1", "b:2"])).unwrap();
        assert_eq!(
            (transport.as_str(), images.len()),
            ("containers-storage:", 2)
        );
        assert!(matches!(
            split_transport(&words(&["docker://"])),
            Err(Error::NoImages)
        ));
        assert!(matches!(
            split_transport(&words(&["../../etc:1"])),
            Err(Error::BadImage(_))
        ));
    }
}
