//! Image references, policy scopes and WWW-Authenticate challenges from registries: errors or
//! values whose printed form parses back, and lookaside paths that stay below the store.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podsec_common::image_ref::{Digest, ImageRef, parse_scope};
use podsec_common::lookaside::signature_path;
use podsec_common::registry_access::parse_challenge;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_scope(text);
    let _ = parse_challenge(text);
    let _ = Digest::parse(text);
    let Ok(image) = ImageRef::parse(text) else {
        return;
    };
    let printed = image.to_string();
    let again = ImageRef::parse(&printed).expect("a printed reference parses");
    assert_eq!(again.to_string(), printed);
    let _ = image.policy_scopes();
    let digest = Digest::parse(&format!("sha256:{}", "0".repeat(64))).expect("a digest");
    let path = signature_path(&image, &digest, 1);
    assert!(
        !path.starts_with('/') && !path.split('/').any(|p| p == ".." || p == "."),
        "lookaside path {path:?} leaves the store"
    );
});
