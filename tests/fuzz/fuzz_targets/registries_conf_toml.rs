//! containers-registries.conf(5) TOML: the edit that allows plain HTTP to registry.local either
//! refuses the file or gives one that the reader (registry_access) finds registry.local
//! insecure in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podsec::{REGISTRY, allow_insecure_registry_local};
use podsec_common::registry_access::insecure_in_registries_conf;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = insecure_in_registries_conf(text, REGISTRY);
    let Ok(edited) = allow_insecure_registry_local(text) else {
        return;
    };
    assert!(
        insecure_in_registries_conf(&edited, REGISTRY),
        "the edited registries.conf does not allow plain HTTP to {REGISTRY}:\n{edited}"
    );
    let twice = allow_insecure_registry_local(&edited).expect("the edited file edits again");
    assert_eq!(twice, edited, "a second edit changed the file");
});
