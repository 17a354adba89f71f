//! Per-architecture OCI archives of images, the format podsec-load-sign-oci reads:
//! `<dir>/<arch>.tar.xz` holding `<arch>/` as an OCI image layout whose images are named by
//! `org.opencontainers.image.ref.name`. Shared by podsec-save-oci and podsec-k8s-save-oci.
//!
//! Each image is copied by skopeo for each architecture (`--override-arch`, so a multi-arch
//! source gives every archive its own platform's image), without signatures: trust is decided
//! when the archive is loaded and signed. An archive appears complete (written to a temporary
//! name, renamed) or not at all.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::host::files::SafeDir;

/// The architectures podsec archives, by their OCI names.
pub const ARCHITECTURES: [&str; 5] = ["amd64", "arm64", "arm", "ppc64le", "386"];

#[derive(Debug, thiserror::Error, crate::i18n::Localize)]
pub enum SaveError {
    #[error("unknown architecture {0}; allowed: amd64 arm64 arm ppc64le 386 or all")]
    Arch(String),
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
    #[error(transparent)]
    Dir(#[from] crate::host::files::FileError),
    #[error("skopeo not found in PATH; install the skopeo package")]
    NoSkopeo,
}

/// The architectures of `archs|all` (comma-separated), each validated.
pub fn architectures(text: &str) -> Result<Vec<&'static str>, SaveError> {
    if text == "all" {
        return Ok(ARCHITECTURES.to_vec());
    }
    text.split(',')
        .map(|arch| {
            ARCHITECTURES
                .iter()
                .copied()
                .find(|a| *a == arch)
                .ok_or_else(|| SaveError::Arch(arch.into()))
        })
        .collect()
}

/// One image to archive: where skopeo reads it (`docker://…`, `containers-storage:…`) and its
/// name in the archive (`c10f/pause:3.10`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceImage {
    pub source: String,
    pub name: String,
}

/// Creates `dir` (which must not exist; every directory above it must be root's and not
/// writable by others, or sticky: see [`SafeDir::create_exclusive`]) and writes
/// `<dir>/<arch>.tar.xz` for every architecture; `progress` hears one line per image and archive.
///
/// The directory is root's and 0700 while it is written, so what skopeo and the archiver find
/// below it is only what they put there; it is opened to 0755 when complete.
pub fn save(
    dir: &Path,
    archs: &[&str],
    images: &[SourceImage],
    mut progress: impl FnMut(&crate::i18n::Message),
) -> Result<(), SaveError> {
    let skopeo = crate::host::programs::find_program("skopeo").ok_or(SaveError::NoSkopeo)?;
    let out = SafeDir::create_exclusive(dir, 0o700)?;
    let dir = out.path().to_path_buf();
    let policy_name = ".accept-source.json";
    // Saving copies what the source has; trust is decided when the archive is loaded and signed.
    let result = out
        .write_file(
            policy_name,
            br#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
            0o600,
            Default::default(),
        )
        .map_err(SaveError::from)
        .and_then(|()| {
            let policy = dir.join(policy_name);
            save_all(&skopeo, &dir, archs, images, &policy, &mut progress)
        });
    let _ = nix::unistd::unlinkat(&out, policy_name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    if result.is_err() {
        // The directory is this run's alone (made exclusively, root's, 0700): a failed run
        // leaves what was there before, nothing. remove_dir_all does not follow links.
        let _ = std::fs::remove_dir_all(&dir);
    }
    result?;
    out.set_mode_owner(0o755, Default::default())?;
    Ok(())
}

fn save_all(
    skopeo: &Path,
    dir: &Path,
    archs: &[&str],
    images: &[SourceImage],
    policy: &Path,
    progress: &mut impl FnMut(&crate::i18n::Message),
) -> Result<(), SaveError> {
    for arch in archs {
        let layout = dir.join(arch);
        for image in images {
            let destination = format!("oci:{}:{}", layout.display(), image.name);
            // Outside the host seam: skopeo's copy is this function's work, run as its caller, not a change to the host.
            let output = Command::new(skopeo)
                .arg("--policy")
                .arg(policy)
                .args([
                    "--override-arch",
                    arch,
                    "copy",
                    "--remove-signatures",
                    "--quiet",
                    &image.source,
                    &destination,
                ])
                .output()
                .map_err(|e| SaveError::Copy {
                    source_ref: image.source.clone(),
                    arch: arch.to_string(),
                    detail: e.to_string(),
                })?;
            if !output.status.success() {
                return Err(SaveError::Copy {
                    source_ref: image.source.clone(),
                    arch: arch.to_string(),
                    detail: String::from_utf8_lossy(&output.stderr)
                        .trim()
                        .replace('\n', " "),
                });
            }
            progress(&crate::msg!("{arch}: saved {}", image.source));
        }
        let archive = dir.join(format!("{arch}.tar.xz"));
        pack(dir, arch, &archive)?;
        std::fs::remove_dir_all(&layout).map_err(|source| SaveError::Io {
            path: layout.clone(),
            source,
        })?;
        progress(&crate::i18n::Message::verbatim(format!(
            "{arch}: {}",
            archive.display()
        )));
    }
    Ok(())
}

/// `tar -C dir -cf - arch | xz -9`, written to a temporary name and renamed when complete.
fn pack(dir: &Path, arch: &str, archive: &Path) -> Result<(), SaveError> {
    let io = |source| SaveError::Io {
        path: archive.to_path_buf(),
        source,
    };
    let temp = tempfile::Builder::new()
        .prefix(".archive.")
        .tempfile_in(dir)
        .map_err(io)?;
    let encoder = liblzma::write::XzEncoder::new(temp.as_file().try_clone().map_err(io)?, 9);
    let mut tar = tar::Builder::new(encoder);
    // A link is archived as a link, never as what it points to.
    tar.follow_symlinks(false);
    tar.append_dir_all(arch, dir.join(arch)).map_err(io)?;
    let encoder = tar.into_inner().map_err(io)?;
    let file: File = encoder.finish().map_err(io)?;
    // Public images, loaded by an image maker (not root): readable by all, as `xz -9` made it.
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    temp.persist(archive).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_hold_links_as_links() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("amd64/blobs")).unwrap();
        std::fs::write(dir.path().join("secret"), "not for the archive").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), dir.path().join("amd64/blobs/x"))
            .unwrap();
        let archive = dir.path().join("amd64.tar.xz");
        pack(dir.path(), "amd64", &archive).unwrap();
        // Readable by the image maker who loads it (a temporary file is 0600).
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&archive).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let mut tar = Vec::new();
        liblzma::read::XzDecoder::new(File::open(&archive).unwrap())
            .read_to_end(&mut tar)
            .unwrap();
        let mut entries = tar::Archive::new(tar.as_slice());
        let link = entries
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().ends_with("blobs/x"))
            .expect("the link is archived");
        assert!(link.header().entry_type().is_symlink());
        assert!(!String::from_utf8_lossy(&tar).contains("not for the archive"));
    }

    #[test]
    fn a_planted_output_directory_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let planted = dir.path().join("k8s");
        std::os::unix::fs::symlink(dir.path(), &planted).unwrap();
        let err = save(&planted, &["amd64"], &[], |_| {}).unwrap_err();
        assert!(err.to_string().ends_with("k8s already exists"), "{err}");
        assert!(!dir.path().join(".accept-source.json").exists());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }

    #[test]
    fn every_architecture_is_validated() {
        assert_eq!(architectures("amd64,arm64").unwrap(), ["amd64", "arm64"]);
        assert_eq!(architectures("all").unwrap().len(), 5);
        assert!(matches!(architectures("amd64,sparc"), Err(SaveError::Arch(a)) if a == "sparc"));
        assert!(architectures("").is_err());
    }
}
