//! The upstream archive format: `<arch>/` OCI image layouts inside a tar.xz. Unpacked safely into
//! a private temporary directory that is removed whatever happens (no absolute or `..` paths, no
//! links, no devices, bounded sizes), then every blob is checked against its digest before
//! anything is pushed.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use podsec_common::i18n::Message;
use podsec_common::msg;
use sha2::{Digest, Sha256};

/// Bounds of what an archive may unpack to.
pub const MAX_TOTAL_BYTES: u64 = 64 << 30;
pub const MAX_ENTRIES: usize = 200_000;
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ARCHITECTURES: [&str; 5] = ["amd64", "arm64", "arm", "ppc64le", "386"];

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum ArchiveError {
    #[error("archive {0} is missing or not a regular file")]
    Missing(PathBuf),
    #[error("unsuccessful archive unfolding of {archive}: {detail}")]
    Unpack { archive: PathBuf, detail: Message },
    #[error("archive entry '{entry}' is not allowed: {why}")]
    BadEntry { entry: String, why: Message },
    #[error("archive is larger than the allowed {MAX_TOTAL_BYTES} bytes or {MAX_ENTRIES} entries")]
    TooLarge,
    #[error("invalid archive format: architecture directory {0}/ is missing")]
    NoArch(String),
    #[error("invalid archive format: {0}/index.json is missing or invalid: {1}")]
    NoIndex(String, String),
    #[error("blob {digest} is missing or damaged: {detail}")]
    Blob { digest: String, detail: Message },
    #[error("manifest {digest} is not an OCI image manifest: {detail}")]
    Manifest { digest: String, detail: Message },
    #[error("cannot create a temporary directory: {0}")]
    Temp(std::io::Error),
}

/// An unpacked layout of one architecture; the directory goes away with this value.
pub struct Layout {
    _temp: tempfile::TempDir,
    pub root: PathBuf,
    /// Blobs whose content was hashed while unpacking and matched their file name.
    checked: std::collections::HashSet<String>,
}

/// One image of the layout.
#[derive(Clone)]
pub struct Image {
    pub ref_name: String,
    pub manifest_digest: String,
    pub manifest_bytes: Vec<u8>,
    pub manifest_media_type: String,
    /// Config and layers.
    pub blobs: Vec<Descriptor>,
}

fn bad(entry: &Path, why: Message) -> ArchiveError {
    ArchiveError::BadEntry {
        entry: entry.display().to_string(),
        why,
    }
}

/// Unpacks the `<arch>/` part of `archive` into a fresh private directory.
pub fn unpack(archive: &Path, arch: &str) -> Result<Layout, ArchiveError> {
    let meta = std::fs::metadata(archive).map_err(|_| ArchiveError::Missing(archive.into()))?;
    if !meta.is_file() {
        return Err(ArchiveError::Missing(archive.into()));
    }
    let file = File::open(archive).map_err(|e| ArchiveError::Unpack {
        archive: archive.into(),
        detail: Message::of(&e),
    })?;
    // xz decoding on a thread of its own, so that it overlaps the hashing and writing of the
    // entries (the unpacking was one core's work before: about half of a run).
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel(DECODED_CHUNKS);
        scope.spawn(move || {
            let mut decoder = liblzma::read::XzDecoder::new(std::io::BufReader::new(file));
            loop {
                let mut chunk = vec![0u8; DECODED_CHUNK_BYTES];
                let filled = match read_full(&mut decoder, &mut chunk) {
                    Ok(filled) => filled,
                    Err(e) => {
                        let _ = sender.send(Err(e));
                        return;
                    }
                };
                chunk.truncate(filled);
                // A closed channel: the reader gave up (a bad entry); stop decoding.
                if filled == 0 || sender.send(Ok(chunk)).is_err() {
                    return;
                }
            }
        });
        unpack_tar(
            ChunkReader {
                receiver,
                chunk: Vec::new(),
                offset: 0,
            },
            archive,
            arch,
        )
    })
}

/// Decoded data in flight between the xz thread and the tar reader.
const DECODED_CHUNK_BYTES: usize = 1 << 20;
const DECODED_CHUNKS: usize = 4;

/// Reads until `buffer` is full or the end of `reader`.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The decoded stream, as chunks from the decoding thread (an error ends it).
struct ChunkReader {
    receiver: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    offset: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.offset == self.chunk.len() {
            match self.receiver.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.offset = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The decoder finished (it sends no empty chunk).
                Err(_) => return Ok(0),
            }
        }
        let n = buffer.len().min(self.chunk.len() - self.offset);
        buffer[..n].copy_from_slice(&self.chunk[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

/// Unpacks the `<arch>/` part of the tar stream `reader` (already decompressed) into a fresh
/// private directory; `archive` names it in errors.
pub fn unpack_tar(reader: impl Read, archive: &Path, arch: &str) -> Result<Layout, ArchiveError> {
    let temp = tempfile::Builder::new()
        .prefix("podsec-oci.")
        .tempdir()
        .map_err(ArchiveError::Temp)?;
    let unpack_error = |detail: Message| ArchiveError::Unpack {
        archive: archive.into(),
        detail,
    };
    let mut tar = tar::Archive::new(reader);
    let mut total = 0u64;
    let mut count = 0usize;
    let mut checked = std::collections::HashSet::new();
    for entry in tar.entries().map_err(|e| unpack_error(Message::of(&e)))? {
        let mut entry = entry.map_err(|e| unpack_error(Message::of(&e)))?;
        count += 1;
        let path = entry
            .path()
            .map_err(|e| unpack_error(Message::of(&e)))?
            .into_owned();
        let mut parts = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => parts.push(part.to_owned()),
                Component::CurDir => {}
                _ => return Err(bad(&path, msg!("absolute or '..' path"))),
            }
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(bad(
                &path,
                msg!("only regular files and directories may be archived"),
            ));
        }
        let size = entry
            .header()
            .size()
            .map_err(|e| unpack_error(Message::of(&e)))?;
        total = total.saturating_add(size);
        if total > MAX_TOTAL_BYTES || count > MAX_ENTRIES {
            return Err(ArchiveError::TooLarge);
        }
        if parts.first().is_none_or(|p| p != arch) {
            continue;
        }
        let target = parts
            .iter()
            .fold(temp.path().to_path_buf(), |p, part| p.join(part));
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| unpack_error(Message::of(&e)))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| unpack_error(Message::of(&e)))?;
        }
        // create_new: a second entry of the same name is refused rather than overwriting.
        let mut out = File::options()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| unpack_error(msg!("{}: {e}", path.display())))?;
        // A blob's name is its digest: hash it on the way (one read of the data, not two).
        let blob_digest = match parts.as_slice() {
            [_, blobs, algorithm, hex] if blobs == "blobs" && algorithm == "sha256" => {
                Some(format!("sha256:{}", hex.to_string_lossy()))
            }
            _ => None,
        };
        let (copied, actual) = copy_hashed(&mut (&mut entry).take(size), &mut out)
            .map_err(|e| unpack_error(Message::of(&e)))?;
        if copied != size {
            return Err(unpack_error(msg!("{} is truncated", path.display())));
        }
        if let Some(expected) = blob_digest {
            if actual != expected {
                return Err(ArchiveError::Blob {
                    digest: expected,
                    detail: msg!("content hashes to {actual}"),
                });
            }
            checked.insert(expected);
        }
    }
    let root = temp.path().join(arch);
    if !root.is_dir() {
        return Err(ArchiveError::NoArch(arch.into()));
    }
    Ok(Layout {
        _temp: temp,
        root,
        checked,
    })
}

impl Layout {
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
        self.root.join("blobs").join(algorithm).join(hex)
    }

    /// Checks that a blob is present, had the right SHA-256 when unpacked, and has the size its
    /// descriptor says.
    pub fn verify_blob(&self, descriptor: &Descriptor) -> Result<(), ArchiveError> {
        let digest = descriptor.digest().to_string();
        let damaged = |detail: Message| ArchiveError::Blob {
            digest: digest.clone(),
            detail,
        };
        if !self.checked.contains(&digest) {
            return Err(damaged(msg!(
                "not in the archive (only sha256 blobs are accepted)"
            )));
        }
        let size = std::fs::metadata(self.blob_path(&digest))
            .map_err(|e| damaged(Message::of(&e)))?
            .len();
        if size != descriptor.size() {
            return Err(damaged(msg!(
                "{size} bytes, the manifest says {}",
                descriptor.size()
            )));
        }
        Ok(())
    }

    /// Every image of `index.json` named by `org.opencontainers.image.ref.name` (other
    /// annotations are not image names), with all its blobs verified.
    pub fn images(&self, arch: &str) -> Result<Vec<Image>, ArchiveError> {
        let index = ImageIndex::from_file(self.root.join("index.json"))
            .map_err(|e| ArchiveError::NoIndex(arch.into(), e.to_string()))?;
        let mut images = Vec::new();
        for descriptor in index.manifests() {
            let Some(ref_name) = descriptor
                .annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
            else {
                continue;
            };
            self.verify_blob(descriptor)?;
            let digest = descriptor.digest().to_string();
            let bytes = std::fs::read(self.blob_path(&digest)).map_err(|e| ArchiveError::Blob {
                digest: digest.clone(),
                detail: Message::of(&e),
            })?;
            let manifest = ImageManifest::from_reader(bytes.as_slice()).map_err(|e| {
                ArchiveError::Manifest {
                    digest: digest.clone(),
                    detail: Message::verbatim(e.to_string()),
                }
            })?;
            let mut blobs = vec![manifest.config().clone()];
            blobs.extend(manifest.layers().iter().cloned());
            for blob in &blobs {
                self.verify_blob(blob)?;
            }
            images.push(Image {
                ref_name: ref_name.clone(),
                manifest_digest: digest,
                manifest_media_type: descriptor.media_type().to_string(),
                manifest_bytes: bytes,
                blobs,
            });
        }
        Ok(images)
    }
}

/// Copies `reader` into `writer`, feeding a SHA-256 on the way (for streaming checks).
pub fn copy_hashed(
    reader: &mut impl Read,
    writer: &mut impl Write,
) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        writer.write_all(&buffer[..n])?;
        total += n as u64;
    }
    Ok((
        total,
        format!("sha256:{}", crate::fetch::hex(&hasher.finalize())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_xz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *data).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 0);
        xz.write_all(&tar).unwrap();
        xz.finish().unwrap()
    }

    #[test]
    fn unpacks_through_the_decoding_thread_and_checks_blobs() {
        // Larger than the decoded chunks, so that a blob spans several of them.
        let blob: Vec<u8> = (0..3 * DECODED_CHUNK_BYTES + 17)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let digest = format!("sha256:{}", crate::fetch::hex(&Sha256::digest(&blob)));
        let name = format!("amd64/blobs/sha256/{}", &digest[7..]);
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.tar.xz");
        std::fs::write(
            &good,
            tar_xz(&[("amd64/index.json", b"{}"), (&name, &blob)]),
        )
        .unwrap();
        let layout = unpack(&good, "amd64").unwrap();
        assert_eq!(std::fs::read(layout.blob_path(&digest)).unwrap(), blob);
        assert!(layout.checked.contains(&digest));

        let mut damaged = blob.clone();
        damaged[DECODED_CHUNK_BYTES + 5] ^= 1;
        let bad = dir.path().join("bad.tar.xz");
        std::fs::write(&bad, tar_xz(&[(&name, &damaged)])).unwrap();
        assert!(matches!(
            unpack(&bad, "amd64"),
            Err(ArchiveError::Blob { .. })
        ));

        // Not xz: the decoder's error ends the stream.
        let plain = dir.path().join("plain.tar");
        std::fs::write(&plain, b"not an xz stream at all").unwrap();
        assert!(matches!(
            unpack(&plain, "amd64"),
            Err(ArchiveError::Unpack { .. })
        ));
    }
}
