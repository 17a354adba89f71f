//! containers-registries.d(5) YAML (load-sign-oci and the inventory read it): a parse error or a
//! configuration that, when it writes, reads back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podsec_common::image_ref::ImageRef;
use podsec_common::registries_d::{Access, RegistriesD};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = RegistriesD::from_yaml(text) else {
        return;
    };
    // What writes must read back as it was (a mapping as a mapping key does not write: an error).
    if let Ok(written) = config.to_yaml() {
        let again = RegistriesD::from_yaml(&written).expect("written registries.d reads back");
        assert_eq!(again, config, "registries.d changed on a write and read");
    }
    let image = ImageRef::parse("registry.local/c10f/pause:3.9").expect("a valid reference");
    let _ = config.storage_url(&image, Access::Read);
    let _ = config.storage_url(&image, Access::Write);
    let _ = RegistriesD::merge([
        ("a.yaml".into(), text.to_string()),
        ("b.yaml".into(), text.to_string()),
    ]);
});
