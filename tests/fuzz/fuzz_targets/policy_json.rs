//! containers-policy.json(5): any text either fails to parse or gives a valid policy that
//! serialises and reads back to itself (create-policy rewrites the file it read).
#![no_main]

use libfuzzer_sys::fuzz_target;
use podsec_common::image_ref::ImageRef;
use podsec_common::policy::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut policy) = Policy::from_json(text) else {
        return;
    };
    let again = Policy::from_json(&policy.to_json()).expect("a written policy reads back");
    assert_eq!(again, policy, "the policy changed on a write and read");
    if let Ok(image) = ImageRef::parse("registry.local/c10f/pause:3.9") {
        let _ = policy.docker_requirements(&image);
    }
    policy.docker_scope_mut("registry.local").clear();
    let _ = policy.to_json();
});
