//! podsec-save-oci: per-architecture OCI archives of images (package podsec-dev).
//!
//! `<oci_dir>/<arch>.tar.xz` holds `<arch>/` as an OCI image layout whose images are named by
//! `org.opencontainers.image.ref.name`: the format podsec-load-sign-oci reads. Upstream's defects
//! fixed: every architecture is validated, the transport is recognised rather than taken from a
//! fixed position, nothing is removed from local storage, and an unset U7S_ALTREGISTRY uses the
//! image names as given.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Parser;
use podsec_common::cli::{self, Failure, NotRoot};
use podsec_common::tr;

use crate::oci_archive::ARCHITECTURES;

pub const NAME: &str = "podsec-save-oci";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = true;

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

#[derive(Debug, thiserror::Error)]
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
    #[error("copying {source_ref} for {arch}: {detail}")]
    Copy {
        source_ref: String,
        arch: String,
        detail: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
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
    if text == "all" {
        return Ok(ARCHITECTURES.to_vec());
    }
    text.split(',')
        .map(|arch| {
            ARCHITECTURES
                .iter()
                .copied()
                .find(|a| *a == arch)
                .ok_or_else(|| Error::Arch(arch.into()))
        })
        .collect()
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
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(&args.oci_dir).map_err(io(&args.oci_dir))?;
    let policy = args.oci_dir.join(".accept-source.json");
    // Saving copies what the source has; trust is decided when the archive is loaded and signed.
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .map_err(io(&policy))?;
    let result = save_all(
        &args.oci_dir,
        &archs,
        &transport,
        &images,
        registry.as_deref(),
        &policy,
    );
    let _ = std::fs::remove_file(&policy);
    result?;
    Ok(ExitCode::SUCCESS)
}

fn save_all(
    dir: &Path,
    archs: &[&str],
    transport: &str,
    images: &[String],
    registry: Option<&str>,
    policy: &Path,
) -> Result<(), Error> {
    for arch in archs {
        let layout = dir.join(arch);
        for image in images {
            let source_ref = match registry {
                Some(registry) => format!("{transport}{registry}/{image}"),
                None => format!("{transport}{image}"),
            };
            let destination = format!("oci:{}:{image}", layout.display());
            let output = Command::new("skopeo")
                .arg("--policy")
                .arg(policy)
                .args([
                    "--override-arch",
                    arch,
                    "copy",
                    "--remove-signatures",
                    "--quiet",
                    &source_ref,
                    &destination,
                ])
                .output()
                .map_err(|e| Error::Copy {
                    source_ref: source_ref.clone(),
                    arch: arch.to_string(),
                    detail: e.to_string(),
                })?;
            if !output.status.success() {
                return Err(Error::Copy {
                    source_ref,
                    arch: arch.to_string(),
                    detail: String::from_utf8_lossy(&output.stderr)
                        .trim()
                        .replace('\n', " "),
                });
            }
            println!(
                "{}",
                tr!("{arch}: saved {image}", arch = arch, image = source_ref)
            );
        }
        let archive = dir.join(format!("{arch}.tar.xz"));
        pack(dir, arch, &archive)?;
        std::fs::remove_dir_all(&layout).map_err(|source| Error::Io {
            path: layout.clone(),
            source,
        })?;
        println!("{arch}: {}", archive.display());
    }
    Ok(())
}

/// `tar -C dir -cf - arch | xz -9`, written to a temporary name and renamed when complete.
fn pack(dir: &Path, arch: &str, archive: &Path) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: archive.to_path_buf(),
        source,
    };
    let temp = tempfile::Builder::new()
        .prefix(".archive.")
        .tempfile_in(dir)
        .map_err(io)?;
    let encoder = xz2::write::XzEncoder::new(temp.as_file().try_clone().map_err(io)?, 9);
    let mut tar = tar::Builder::new(encoder);
    tar.append_dir_all(arch, dir.join(arch)).map_err(io)?;
    let encoder = tar.into_inner().map_err(io)?;
    let file: File = encoder.finish().map_err(io)?;
    file.sync_all().map_err(io)?;
    temp.persist(archive).map_err(|e| io(e.error))?;
    Ok(())
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
