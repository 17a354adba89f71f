//! The tar reader of load-sign-oci (the stream inside the .tar.xz): paths, links, sizes and
//! duplicates are refused with an error, never a panic, and nothing lands outside the private
//! directory; what unpacks is then read as a layout (index.json, manifests, blob digests).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use podsec::unpack_tar;

fuzz_target!(|data: &[u8]| {
    let Ok(layout) = unpack_tar(data, Path::new("fuzz.tar"), "amd64") else {
        return;
    };
    let private = layout.root.parent().expect("the layout is in a directory");
    let top: Vec<_> = std::fs::read_dir(private)
        .expect("the private directory")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    assert_eq!(top, ["amd64"], "only <arch>/ is unpacked");
    let _ = layout.images("amd64");
});
