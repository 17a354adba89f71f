//! `gpg --with-colons` listings: fingerprints are non-empty fields of `fpr` records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podsec::primary_fingerprints;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for record in ["pub", "sec"] {
        for fingerprint in primary_fingerprints(&text, record) {
            assert!(!fingerprint.is_empty() && !fingerprint.contains([':', '\n']));
        }
    }
});
