//! OCI image index and manifest JSON (index.json of an archive, manifests of registries): a
//! parse error or descriptors whose digests name a blob file inside blobs/ (load-sign-oci joins
//! the digest into a path).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

fn check(descriptor: &Descriptor) {
    let digest = descriptor.digest().to_string();
    let (algorithm, hex) = digest.split_once(':').expect("a digest has an algorithm");
    for part in [algorithm, hex] {
        assert!(
            !part.is_empty() && !part.contains('/') && part != "." && part != "..",
            "digest {digest:?} is not a file name"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = ImageIndex::from_reader(data) {
        index.manifests().iter().for_each(check);
    }
    if let Ok(manifest) = ImageManifest::from_reader(data) {
        check(manifest.config());
        manifest.layers().iter().for_each(check);
    }
});
