//! Signatures from a lookaside store: the OpenPGP message (parsed before any key matches) and
//! the simple-signing payload inside it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podsec_common::openpgp::{keyring, verify};
use podsec_common::signature::SimpleSigning;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = SimpleSigning::from_bytes(data) {
        let again = SimpleSigning::from_bytes(&payload.to_bytes()).expect("a payload reads back");
        assert_eq!(again, payload);
    }
    let _ = verify(&[], data);
    let _ = keyring(data);
});
