//! podsec-load-sign-oci: push the images of an OCI archive to the registry and sign them.
//!
//! Decided before the first push: the caller's exact membership in podman_dev, the arguments,
//! the archive (unpacked safely, every blob checked against its digest), the target names and
//! the signature store (each image's signature directory must be the caller's, or creatable by
//! it: see [`crate::signature_store`]). Then blobs are uploaded in parallel (skipping those the
//! registry has; one that several repositories need is uploaded once and mounted into the
//! others), each manifest pushed and its simple-signing signature written into the lookaside
//! staging store. Any failed push or signature makes the exit status non-zero, with a
//! per-image summary.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use podsec_common::cli::{self, Failure};
use podsec_common::host::{Host, HostDir, RealHost, users};
use podsec_common::image_ref::{Digest, ImageRef};
use podsec_common::lookaside;
use podsec_common::profile::OsRelease;
use podsec_common::registries_d::{Access, RegistriesD};
use podsec_common::signature::SimpleSigning;
use podsec_common::tr;

use crate::layout::GROUP_PODMAN_DEV;
use crate::oci_archive::{self, ARCHITECTURES, ArchiveError, Image, Layout};
use crate::registry::{Registry, RegistryError};
use crate::signature_store::{self, StoreError};

pub const NAME: &str = "podsec-load-sign-oci";
/// Parallel blob uploads.
const UPLOADERS: usize = 4;

/// Push every image of an OCI archive (<arch>/index.json inside tar.xz) for one architecture to
/// the registry and write a simple-signing signature for each into the signature store.
///
/// For members of group podman_dev (image makers).
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Environment:\n  U7S_PLATFORM    platform of this host (c10f, p10, ...); default from /etc/os-release\n\
\x20 PODSEC_LEGACY_NAMES=yes  as --legacy-names\n\
Exit status: 0 all images pushed and signed, 1 usage or a failed image, 3 unknown architecture,\n5 registry name without a dot, 6 archive cannot be unpacked, 7/8 archive layout missing."
)]
pub struct Args {
    /// The archive made by podsec-save-oci or podsec-k8s-save-oci
    #[arg(value_name = "archive.tar.xz")]
    pub archive: PathBuf,
    /// Architecture to load: amd64, arm64, arm, ppc64le or 386
    #[arg(value_name = "arch")]
    pub arch: String,
    /// E-mail of the signing key in your GnuPG keyring
    #[arg(value_name = "signer_email")]
    pub signer: String,
    /// Target registry and path (default registry.local/<platform>)
    #[arg(value_name = "registry/path")]
    pub target: Option<String>,
    /// Sign with this OpenPGP secret key file instead of the GnuPG keyring (automation)
    #[arg(long, value_name = "file")]
    pub sign_key: Option<PathBuf>,
    /// Answer yes to the platform-mismatch question
    #[arg(long)]
    pub yes: bool,
    /// For the c10f platform, also push and sign every image under upstream's legacy name
    /// <registry>/k8s-c10f2/<image> (nodes still on U7S_PLATFORM=k8s-c10f2 pull those)
    #[arg(long)]
    pub legacy_names: bool,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error("the caller is not a member of group {GROUP_PODMAN_DEV}")]
    NotImageMaker,
    #[error(transparent)]
    Account(#[from] users::AccountError),
    #[error("unknown architecture {0}; allowed: amd64 arm64 arm ppc64le 386")]
    Arch(String),
    #[error("missing path after the registry name in '{0}'")]
    NoPath(String),
    #[error("the registry name in '{0}' must contain a period (.)")]
    RegistryName(String),
    #[error("the platform is unknown: set U7S_PLATFORM or give <registry>/<path>")]
    NoPlatform,
    #[error(
        "the archive's platform {archive} does not match this host's {host}; run with --yes to load it anyway"
    )]
    PlatformMismatch { archive: String, host: String },
    #[error(
        "the k8s- prefix of platform {0} is no longer supported (images are under <registry>/<platform>/)"
    )]
    K8sPrefix(String),
    #[error(
        "--legacy-names: upstream's legacy names (k8s-c10f2/) exist only for the c10f platform, and the target is {0}"
    )]
    LegacyNotC10f(String),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("the archive has no image named by org.opencontainers.image.ref.name")]
    NoImages,
    #[error("image name '{name}' gives an invalid reference {reference}: {detail}")]
    BadName {
        name: String,
        reference: String,
        detail: podsec_common::i18n::Message,
    },
    #[error(
        "signatures for {image} would be written to {url}, which is not a local file:// store (configure lookaside-staging in registries.d)"
    )]
    NoStagingStore { image: String, url: String },
    #[error("cannot read the signing key {path}: {source}")]
    SignKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("signing key {path}: {source}")]
    SignKeyUnusable {
        path: PathBuf,
        source: podsec_common::openpgp::OpenPgpError,
    },
    #[error("signatures of {image}: {source}")]
    SignatureStore { image: String, source: StoreError },
    #[error("{failed} of {total} images failed")]
    Failed { failed: usize, total: usize },
}

impl Failure for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Error::Arch(_) => 3,
            Error::RegistryName(_) => 5,
            Error::Archive(ArchiveError::Missing(_)) => 1,
            Error::Archive(ArchiveError::NoArch(_)) => 7,
            Error::Archive(ArchiveError::NoIndex(..)) => 8,
            Error::Archive(
                ArchiveError::Unpack { .. }
                | ArchiveError::BadEntry { .. }
                | ArchiveError::TooLarge,
            ) => 6,
            _ => 1,
        }
    }
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

/// Where images go: `registry.local/<platform>` (base `<platform>/`) or the given
/// `<registry>/<path>` (base `<last path element>/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub prefix: String,
    pub base: String,
}

pub fn target(argument: Option<&str>, platform: Option<&str>) -> Result<Target, Error> {
    match argument {
        None => {
            let platform = platform.ok_or(Error::NoPlatform)?;
            Ok(Target {
                prefix: format!("registry.local/{platform}"),
                base: format!("{platform}/"),
            })
        }
        Some(text) => {
            let text = text.trim_end_matches('/');
            let (registry, path) = text
                .split_once('/')
                .ok_or_else(|| Error::NoPath(text.into()))?;
            if !registry.contains('.') {
                return Err(Error::RegistryName(text.into()));
            }
            let last = path.rsplit('/').next().unwrap_or(path);
            Ok(Target {
                prefix: format!("{registry}/{path}"),
                base: format!("{last}/"),
            })
        }
    }
}

/// The reference an archive image is pushed as (upstream's mapping).
pub fn reference_for(target: &Target, ref_name: &str) -> Result<ImageRef, Error> {
    let reference = match ref_name.strip_prefix(&target.base) {
        Some(rest) => format!("{}/{rest}", target.prefix),
        None => format!("registry.local/{ref_name}"),
    };
    let image = ImageRef::parse(&reference).map_err(|e| Error::BadName {
        name: ref_name.into(),
        reference: reference.clone(),
        detail: podsec_common::i18n::Message::of(&e),
    })?;
    if image.tag.is_none() || image.digest.is_some() {
        return Err(Error::BadName {
            name: ref_name.into(),
            reference,
            detail: podsec_common::msg!("a tag is needed"),
        });
    }
    Ok(image)
}

/// The platform whose images upstream also pushed under a legacy name, and that name.
pub const LEGACY_PLATFORM: &str = "c10f";
pub const LEGACY_NAME: &str = "k8s-c10f2";

/// Upstream's legacy reference of an archive image for a c10f target:
/// `<registry>/.../k8s-c10f2/<image>` beside `<registry>/.../c10f/<image>`; `None` for an image
/// outside the platform's names.
pub fn legacy_reference(target: &Target, ref_name: &str) -> Result<Option<ImageRef>, Error> {
    let Some(prefix) = target.prefix.strip_suffix(LEGACY_PLATFORM) else {
        return Err(Error::LegacyNotC10f(target.prefix.clone()));
    };
    if !prefix.ends_with('/') || target.base != format!("{LEGACY_PLATFORM}/") {
        return Err(Error::LegacyNotC10f(target.prefix.clone()));
    }
    let Some(rest) = ref_name.strip_prefix(&target.base) else {
        return Ok(None);
    };
    let legacy = Target {
        prefix: format!("{prefix}{LEGACY_NAME}"),
        base: target.base.clone(),
    };
    reference_for(&legacy, &format!("{}{rest}", target.base)).map(Some)
}

struct Planned {
    image: Image,
    reference: ImageRef,
    store: PathBuf,
    /// `<repository path>@sha256=<hex>` below `store`.
    signatures: String,
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let caller = users::find_user_by_uid(nix::unistd::getuid().as_raw())?;
    if !caller
        .as_ref()
        .is_some_and(|account| users::is_member(account, GROUP_PODMAN_DEV).unwrap_or(false))
    {
        return Err(Error::NotImageMaker);
    }
    if !ARCHITECTURES.contains(&args.arch.as_str()) {
        return Err(Error::Arch(args.arch));
    }
    let signer = match &args.sign_key {
        Some(path) => {
            let key = std::fs::read(path).map_err(|source| Error::SignKey {
                path: path.clone(),
                source,
            })?;
            // Fail on an unusable key before anything is pushed.
            podsec_common::openpgp::sign(&key, b"{}").map_err(|source| Error::SignKeyUnusable {
                path: path.clone(),
                source,
            })?;
            SigningKey::File(key)
        }
        None => SigningKey::Gpg(args.signer.clone()),
    };
    let host_platform = std::env::var("U7S_PLATFORM")
        .ok()
        .filter(|p| !p.is_empty())
        .or_else(|| OsRelease::load(Path::new("/")).alt_platform());
    let mut target = target(args.target.as_deref(), host_platform.as_deref())?;

    let layout = oci_archive::unpack(&args.archive, &args.arch)?;
    let images = layout.images(&args.arch)?;
    let first = images.first().ok_or(Error::NoImages)?;
    let archive_platform = first
        .ref_name
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    if args.target.is_none() && Some(archive_platform.as_str()) != host_platform.as_deref() {
        if archive_platform.starts_with("k8s-") {
            return Err(Error::K8sPrefix(archive_platform));
        }
        if !args.yes {
            return Err(Error::PlatformMismatch {
                archive: archive_platform,
                host: host_platform.unwrap_or_default(),
            });
        }
        target = Target {
            prefix: format!("registry.local/{archive_platform}"),
            base: format!("{archive_platform}/"),
        };
    }

    let legacy = args.legacy_names
        || std::env::var("PODSEC_LEGACY_NAMES").is_ok_and(|v| matches!(v.as_str(), "yes" | "1"));
    let mut references = Vec::new();
    for image in images {
        let reference = reference_for(&target, &image.ref_name)?;
        let alias = if legacy {
            legacy_reference(&target, &image.ref_name)?
        } else {
            None
        };
        if let Some(alias) = alias {
            references.push((image.clone(), alias));
        }
        references.push((image, reference));
    }
    // The legacy names after their images, as upstream tagged them.
    references.sort_by_key(|(_, r)| r.path.contains(LEGACY_NAME));

    let registries_d = load_registries_d()?;
    let caller_uid = nix::unistd::geteuid().as_raw();
    let mut planned = Vec::new();
    for (image, reference) in references {
        let url = registries_d
            .storage_url(&reference, Access::Write)
            .unwrap_or("file:///var/lib/containers/sigstore")
            .to_string();
        let store = url
            .strip_prefix("file://")
            .map(PathBuf::from)
            .ok_or_else(|| Error::NoStagingStore {
                image: reference.to_string(),
                url: url.clone(),
            })?;
        let digest = Digest::parse(&image.manifest_digest).map_err(|e| Error::BadName {
            name: image.ref_name.clone(),
            reference: reference.to_string(),
            detail: podsec_common::i18n::Message::of(&e),
        })?;
        let signatures = lookaside::signature_dir(&reference, &digest);
        // Nothing is pushed for a signature that could not be stored.
        signature_store::signature_dir(&RealHost, &store, &signatures, caller_uid, false).map_err(
            |source| Error::SignatureStore {
                image: reference.to_string(),
                source,
            },
        )?;
        planned.push(Planned {
            image,
            reference,
            store,
            signatures,
        });
    }

    // Signatures need only the manifest digests, known from the archive: sign while the blobs
    // upload, store each signature once its manifest is in the registry.
    let registries = connect_registries(&planned);
    let (failed_blobs, signatures) = std::thread::scope(|scope| {
        let signing = scope.spawn(|| sign_all(&planned, &signer));
        let failed = upload_blobs(&layout, &planned, &registries);
        (failed, signing.join().expect("signing thread"))
    });
    let mut failed = 0;
    for (plan, signature) in planned.iter().zip(signatures) {
        print!(
            "{}",
            tr!(
                "Signing and transferring the {image} to the registry: ",
                image = plan.reference
            )
        );
        match finish_image(plan, &registries, &failed_blobs, signature) {
            Ok(path) => println!("{}", tr!("pushed, signed ({path})", path = path.display())),
            Err(e) => {
                failed += 1;
                println!(
                    "{}",
                    tr!(
                        "FAILED: {error}",
                        error = podsec_common::i18n::Localize::localized(&e)
                    )
                );
            }
        }
    }
    let total = planned.len();
    println!(
        "{}",
        tr!(
            "{done} of {total} images pushed and signed",
            done = total - failed,
            total = total
        )
    );
    if failed > 0 {
        return Err(Error::Failed { failed, total });
    }
    Ok(ExitCode::SUCCESS)
}

/// The caller's registries.d (as podman reads it): the user's own, else the system's.
fn load_registries_d() -> Result<RegistriesD, Error> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let user_dir = home
        .map(|h| h.join(".config/containers/registries.d"))
        .filter(|d| d.is_dir());
    let dir = user_dir.unwrap_or_else(|| PathBuf::from("/etc/containers/registries.d"));
    RegistriesD::load_dir(&dir).map_err(|e| Error::NoStagingStore {
        image: String::new(),
        url: e.to_string(),
    })
}

/// Reaches each target registry once; a registry that cannot be reached fails its images
/// with the reason.
fn connect_registries(planned: &[Planned]) -> Registries {
    let hosts: BTreeSet<&str> = planned
        .iter()
        .map(|p| p.reference.domain.as_str())
        .collect();
    hosts
        .into_iter()
        .map(|host| {
            let registry = Registry::connect(host).map_err(|e| e.to_string());
            (host.to_string(), registry)
        })
        .collect()
}

/// The registries of a run by host, or why one cannot be used.
type Registries = BTreeMap<String, Result<Registry, String>>;

/// A blob to put into a repository: host, repository, digest, and the repository of the same
/// registry it is mounted from, if any.
type BlobJob = (String, String, String, Option<String>);

/// Uploads every blob every image needs, in parallel; returns the blobs that failed, by
/// repository and digest, with the reason. A blob that several repositories of one registry
/// need (images sharing layers, `--legacy-names`) is uploaded once, into the first of them,
/// and then mounted into the others from there.
fn upload_blobs(
    layout: &Layout,
    planned: &[Planned],
    registries: &Registries,
) -> BTreeMap<(String, String), String> {
    let mut wanted = BTreeSet::new();
    for plan in planned {
        for blob in &plan.image.blobs {
            wanted.insert((
                plan.reference.domain.clone(),
                plan.reference.path.clone(),
                blob.digest().to_string(),
            ));
        }
    }
    let (uploads, mut mounts) = uploads_and_mounts(wanted);
    let mut failures = run_blob_jobs(layout, registries, uploads);
    // A source whose upload failed is no source: those blobs are uploaded again.
    for job in &mut mounts {
        if let Some(from) = &job.3
            && failures.contains_key(&(from.clone(), job.2.clone()))
        {
            job.3 = None;
        }
    }
    failures.extend(run_blob_jobs(layout, registries, mounts));
    failures
}

/// The blobs of (host, repository, digest) to upload (each digest once per host, into its
/// first repository) and those to mount from there.
fn uploads_and_mounts(wanted: BTreeSet<(String, String, String)>) -> (Vec<BlobJob>, Vec<BlobJob>) {
    let mut first: BTreeMap<(String, String), String> = BTreeMap::new();
    let (mut uploads, mut mounts) = (Vec::new(), Vec::new());
    for (host, repository, digest) in wanted {
        match first.get(&(host.clone(), digest.clone())) {
            Some(from) => mounts.push((host, repository, digest, Some(from.clone()))),
            None => {
                first.insert((host.clone(), digest.clone()), repository.clone());
                uploads.push((host, repository, digest, None));
            }
        }
    }
    (uploads, mounts)
}

/// Runs blob jobs on [`UPLOADERS`] threads (skipping blobs the repository has); the failures
/// by repository and digest.
fn run_blob_jobs(
    layout: &Layout,
    registries: &Registries,
    jobs: Vec<BlobJob>,
) -> BTreeMap<(String, String), String> {
    let queue = Mutex::new(jobs);
    let failures = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..UPLOADERS {
            scope.spawn(|| {
                loop {
                    let Some((host, repository, digest, from)) = queue.lock().expect("queue").pop()
                    else {
                        break;
                    };
                    let result = match &registries[&host] {
                        Ok(registry) => match registry.has_blob(&repository, &digest) {
                            Ok(true) => Ok(()),
                            Ok(false) => registry
                                .push_blob(
                                    &repository,
                                    &digest,
                                    &layout.blob_path(&digest),
                                    from.as_deref(),
                                )
                                .map_err(|e| e.to_string()),
                            Err(e) => Err(e.to_string()),
                        },
                        Err(reason) => Err(reason.clone()),
                    };
                    if let Err(e) = result {
                        failures
                            .lock()
                            .expect("failures")
                            .insert((repository, digest), e);
                    }
                }
            });
        }
    });
    failures.into_inner().expect("failures")
}

/// Signs every image's payload (gpg or the key file), in order.
fn sign_all(planned: &[Planned], signer: &SigningKey) -> Vec<Result<Vec<u8>, ImageError>> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    planned
        .iter()
        .map(|plan| {
            let payload = SimpleSigning::new(
                &plan.reference.to_string(),
                &plan.image.manifest_digest,
                timestamp,
            )
            .to_bytes();
            match signer {
                SigningKey::Gpg(email) => gpg_sign(email, &payload),
                SigningKey::File(key) => podsec_common::openpgp::sign(key, &payload)
                    .map_err(|e| ImageError::Gpg(e.to_string())),
            }
        })
        .collect()
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
enum ImageError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    Unreachable(String),
    #[error("blob {0} did not reach the registry")]
    MissingBlob(String),
    #[error("the registry stored manifest {stored}, expected {expected}")]
    DigestMismatch { stored: String, expected: String },
    #[error("signing: {0}")]
    Gpg(String),
    #[error("writing the signature {path}: {source}")]
    Store { path: PathBuf, source: StoreError },
}

/// Who signs: the caller's gpg (by e-mail, through the agent) or a key file (sequoia).
enum SigningKey {
    Gpg(String),
    File(Vec<u8>),
}

/// Puts the manifest (when all its blobs arrived) and stores the signature.
fn finish_image(
    plan: &Planned,
    registries: &Registries,
    failed_blobs: &BTreeMap<(String, String), String>,
    signature: Result<Vec<u8>, ImageError>,
) -> Result<PathBuf, ImageError> {
    let registry = registries[&plan.reference.domain]
        .as_ref()
        .map_err(|reason| ImageError::Unreachable(reason.clone()))?;
    for blob in &plan.image.blobs {
        let key = (plan.reference.path.clone(), blob.digest().to_string());
        if let Some(reason) = failed_blobs.get(&key) {
            return Err(ImageError::MissingBlob(format!("{}: {reason}", key.1)));
        }
    }
    let signature = signature?;
    let tag = plan.reference.tag.as_deref().expect("references have tags");
    let stored = registry.push_manifest(
        &plan.reference.path,
        tag,
        &plan.image.manifest_media_type,
        &plan.image.manifest_bytes,
    )?;
    if let Some(stored) = stored.filter(|s| *s != plan.image.manifest_digest) {
        return Err(ImageError::DigestMismatch {
            stored,
            expected: plan.image.manifest_digest.clone(),
        });
    }
    store_signature(&RealHost, plan, &signature, nix::unistd::geteuid().as_raw())
}

/// An OpenPGP signed message (what containers/image verifies) made by the caller's gpg, so the
/// agent asks for a passphrase as it does for podman.
fn gpg_sign(signer: &str, payload: &[u8]) -> Result<Vec<u8>, ImageError> {
    // Outside the host seam: signing with the caller's own gpg and agent, as the caller.
    let mut child = Command::new("gpg")
        .args([
            "--batch",
            "--no-tty",
            "--sign",
            "--local-user",
            signer,
            "--output",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ImageError::Gpg(format!("cannot run gpg: {e}")))?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(payload)
        .map_err(|e| ImageError::Gpg(e.to_string()))?;
    let output = child
        .wait_with_output()
        .map_err(|e| ImageError::Gpg(e.to_string()))?;
    if !output.status.success() || output.stdout.is_empty() {
        return Err(ImageError::Gpg(
            String::from_utf8_lossy(&output.stderr)
                .trim()
                .replace('\n', " "),
        ));
    }
    Ok(output.stdout)
}

/// `<store>/<path>@sha256=<hex>/signature-<first free N>`: in a directory of the caller's (see
/// [`signature_store::signature_dir`]), written completely before it appears, never replacing
/// a signature somebody else wrote meanwhile.
fn store_signature(
    host: &impl Host,
    plan: &Planned,
    signature: &[u8],
    uid: u32,
) -> Result<PathBuf, ImageError> {
    let path = plan.store.join(&plan.signatures);
    let store_error = |source: StoreError| ImageError::Store {
        path: path.clone(),
        source,
    };
    let dir = signature_store::signature_dir(host, &plan.store, &plan.signatures, uid, true)
        .map_err(store_error)?
        .expect("created");
    let name = dir
        .create_new_file(
            (1..).map(|index| format!("signature-{index}")),
            signature,
            0o644,
        )
        .map_err(|e| store_error(e.into()))?
        .expect("an unbounded range of names");
    Ok(dir.path().join(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use podsec_common::host::fake::{Effect, FakeHost, Node};
    use podsec_common::host::posix_acl;

    const STORE: &str = "/var/sigstore/sigstore";
    const MAKER: u32 = 1500;

    fn planned(signatures: &str) -> Planned {
        Planned {
            image: Image {
                ref_name: "c10f/app:1".into(),
                manifest_digest: "sha256:ab".into(),
                manifest_bytes: Vec::new(),
                manifest_media_type: String::new(),
                blobs: Vec::new(),
            },
            reference: ImageRef::parse("registry.local/c10f/app:1").unwrap(),
            store: STORE.into(),
            signatures: signatures.into(),
        }
    }

    /// The signature server's store as create-imagemakeruser leaves it: root's top, the maker's
    /// scope directory `c10f`, another maker's `other`; the process runs as the maker.
    fn store() -> FakeHost {
        FakeHost::new()
            .with_user("maker", MAKER)
            .with_user("other", 1600)
            .as_caller(MAKER)
            .with_dir(STORE, 0o1755, (0, 0))
            .with_dir(format!("{STORE}/c10f"), 0o755, (MAKER, 901))
            .with_dir(format!("{STORE}/other"), 0o755, (1600, 901))
    }

    #[test]
    fn signatures_go_below_the_makers_own_directory_and_never_replace_one() {
        let host = store();
        let first = store_signature(&host, &planned("c10f/app@sha256=ab"), b"one", MAKER).unwrap();
        assert_eq!(
            first,
            Path::new(STORE).join("c10f/app@sha256=ab/signature-1")
        );
        match host.node(format!("{STORE}/c10f/app@sha256=ab")) {
            Some(Node::Dir { mode, owner, .. }) => assert_eq!((mode, owner.0), (0o755, MAKER)),
            other => panic!("{other:?}"),
        }
        let second = store_signature(&host, &planned("c10f/app@sha256=ab"), b"two", MAKER).unwrap();
        assert_eq!(second.file_name().unwrap(), "signature-2");
        assert_eq!(host.file(&first).unwrap(), b"one");
        assert_eq!(host.file(&second).unwrap(), b"two");
    }

    #[test]
    fn another_makers_directory_and_the_stores_top_are_refused() {
        let host = store();
        let tree = host.tree();
        let err = store_signature(&host, &planned("other/app@sha256=ab"), b"x", MAKER).unwrap_err();
        assert!(
            matches!(&err, ImageError::Store { source: StoreError::Foreign { owner, .. }, .. } if owner == "other"),
            "{err}"
        );
        let err = store_signature(&host, &planned("new/app@sha256=ab"), b"x", MAKER).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::Store {
                    source: StoreError::NotWritable { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(host.tree(), tree, "nothing written");
        assert!(host.effects().is_empty());
    }

    #[test]
    fn the_maker_of_the_whole_registry_creates_at_the_top_through_its_acl() {
        let host = store();
        let acl = posix_acl::encode(&[
            (posix_acl::USER_OBJ, 7, posix_acl::NO_ID),
            (posix_acl::USER, 7, MAKER),
            (posix_acl::GROUP_OBJ, 5, posix_acl::NO_ID),
            (posix_acl::MASK, 7, posix_acl::NO_ID),
            (posix_acl::OTHER, 5, posix_acl::NO_ID),
        ]);
        host.open_dir(Path::new(STORE))
            .unwrap()
            .set_acl(&acl)
            .unwrap();
        let path = store_signature(&host, &planned("new/app@sha256=ab"), b"x", MAKER).unwrap();
        assert_eq!(path, Path::new(STORE).join("new/app@sha256=ab/signature-1"));
        assert!(host.effects().contains(&Effect::MakeDir {
            path: Path::new(STORE).join("new"),
            mode: 0o755,
            owner: (MAKER, MAKER)
        }));
    }

    #[test]
    fn legacy_names_only_for_the_c10f_platform() {
        let c10f = target(None, Some("c10f")).unwrap();
        assert_eq!(
            legacy_reference(&c10f, "c10f/pause:3.9")
                .unwrap()
                .unwrap()
                .to_string(),
            "registry.local/k8s-c10f2/pause:3.9"
        );
        let other = target(Some("harbor.example:5443/mirror/c10f"), None).unwrap();
        assert_eq!(
            legacy_reference(&other, "c10f/kube-proxy:v1.33.13")
                .unwrap()
                .unwrap()
                .to_string(),
            "harbor.example:5443/mirror/k8s-c10f2/kube-proxy:v1.33.13"
        );
        // Not the platform's name: no alias (it goes to registry.local/<name> unchanged).
        assert_eq!(legacy_reference(&c10f, "other/x:1").unwrap(), None);
        for refused in [
            target(None, Some("p10")).unwrap(),
            target(Some("registry.local/notc10f"), None).unwrap(),
        ] {
            assert!(matches!(
                legacy_reference(&refused, "p10/pause:3.9"),
                Err(Error::LegacyNotC10f(_))
            ));
        }
    }

    #[test]
    fn a_blob_is_uploaded_once_per_registry_and_mounted_elsewhere() {
        let wanted = [
            ("registry.local", "c10f/pause", "sha256:a"),
            ("registry.local", "c10f/pause", "sha256:b"),
            ("registry.local", "k8s-c10f2/pause", "sha256:a"),
            ("registry.local", "c10f/etcd", "sha256:b"),
            ("harbor.example", "x/pause", "sha256:a"),
        ]
        .map(|(h, r, d)| (h.to_string(), r.to_string(), d.to_string()))
        .into_iter()
        .collect();
        let job = |h: &str, r: &str, d: &str, from: Option<&str>| {
            (h.into(), r.into(), d.into(), from.map(String::from))
        };
        let (uploads, mounts) = uploads_and_mounts(wanted);
        assert_eq!(
            uploads,
            vec![
                job("harbor.example", "x/pause", "sha256:a", None),
                job("registry.local", "c10f/etcd", "sha256:b", None),
                job("registry.local", "c10f/pause", "sha256:a", None),
            ]
        );
        assert_eq!(
            mounts,
            vec![
                job(
                    "registry.local",
                    "c10f/pause",
                    "sha256:b",
                    Some("c10f/etcd")
                ),
                job(
                    "registry.local",
                    "k8s-c10f2/pause",
                    "sha256:a",
                    Some("c10f/pause")
                ),
            ]
        );
    }

    #[test]
    fn targets_as_upstream_maps_them() {
        let default = target(None, Some("c10f")).unwrap();
        assert_eq!(
            default,
            Target {
                prefix: "registry.local/c10f".into(),
                base: "c10f/".into()
            }
        );
        assert_eq!(
            reference_for(&default, "c10f/pause:3.9")
                .unwrap()
                .to_string(),
            "registry.local/c10f/pause:3.9"
        );
        assert_eq!(
            reference_for(&default, "other/x:1").unwrap().to_string(),
            "registry.local/other/x:1"
        );
        let given = target(Some("registry.local/demo"), None).unwrap();
        assert_eq!(
            reference_for(&given, "demo/app:1").unwrap().to_string(),
            "registry.local/demo/app:1"
        );
        assert!(matches!(
            target(Some("registry.local"), None),
            Err(Error::NoPath(_))
        ));
        assert!(matches!(
            target(Some("registry/x"), None),
            Err(Error::RegistryName(_))
        ));
        assert!(matches!(target(None, None), Err(Error::NoPlatform)));
        assert!(matches!(
            reference_for(&given, "demo/app"),
            Err(Error::BadName { .. })
        ));
        assert!(matches!(
            reference_for(&given, "demo/APP:1"),
            Err(Error::BadName { .. })
        ));
    }
}
