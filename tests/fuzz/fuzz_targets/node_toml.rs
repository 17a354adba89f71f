//! The u7s node configuration (node.toml): a parse or validation error, or a configuration that
//! writes and reads back to itself.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use podsec_k8s::node_config::NodeConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = NodeConfig::from_toml(text, Path::new("node.toml")) else {
        return;
    };
    let written = config.to_toml().expect("a valid configuration writes");
    let again = NodeConfig::from_toml(&written, Path::new("node.toml")).expect("it reads back");
    assert_eq!(again.to_toml().expect("writes again"), written);
    let _ = config.published_ports();
    let _ = config.image_repository();
    let _ = config.slirp_guest_address();
});
