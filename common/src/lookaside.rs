//! The lookaside ("sigstore") layout of signatures: `BASE/<repository path>@<algo>=<hex>/signature-N`.
//!
//! The host is not part of the path, and the digest is always the manifest digest.

use crate::image_ref::{Digest, ImageRef};

/// `c10f/pause@sha256=<hex>`: the directory of an image's signatures below a storage root.
pub fn signature_dir(image: &ImageRef, manifest: &Digest) -> String {
    format!("{}@{}={}", image.path, manifest.algorithm, manifest.hex)
}

/// `…/signature-N` (N from 1) below a storage root.
pub fn signature_path(image: &ImageRef, manifest: &Digest, index: usize) -> String {
    format!("{}/signature-{}", signature_dir(image, manifest), index)
}

/// The URL containers/image computes from a storage base URL: base + `/` + path; a base that ends
/// in `/` gives a double slash, which file systems and nginx both treat as one.
pub fn signature_url(base: &str, image: &ImageRef, manifest: &Digest, index: usize) -> String {
    format!("{base}/{}", signature_path(image, manifest, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_not_in_the_path() {
        let hex = "ab".repeat(32);
        let image = ImageRef::parse("registry.local/k8s/pause:3.9").unwrap();
        let digest = Digest::parse(&format!("sha256:{hex}")).unwrap();
        assert_eq!(
            signature_path(&image, &digest, 1),
            format!("k8s/pause@sha256={hex}/signature-1")
        );
        assert_eq!(
            signature_url("file:///var/sigstore/sigstore", &image, &digest, 2),
            format!("file:///var/sigstore/sigstore/k8s/pause@sha256={hex}/signature-2")
        );
    }
}
