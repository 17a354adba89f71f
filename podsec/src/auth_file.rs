//! Registry credentials as podman keeps them (`podman login` writes auth.json), so an image
//! maker logs in once and podsec-load-sign-oci pushes with the same credentials.

use std::path::PathBuf;

use base64::Engine;

/// The places podman reads, in its order.
fn candidates() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(file) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(file));
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(runtime).join("containers/auth.json"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        files.push(home.join(".config/containers/auth.json"));
        files.push(home.join(".docker/config.json"));
    }
    files
}

/// `Basic <base64 user:password>` for `host`, if the caller has logged in there.
pub fn basic_auth(host: &str) -> Option<String> {
    for file in candidates() {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Ok(document) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let Some(auths) = document.get("auths").and_then(|a| a.as_object()) else {
            continue;
        };
        for (key, entry) in auths {
            let key_host = key
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default();
            if key_host != host {
                continue;
            }
            let encoded = entry.get("auth").and_then(|a| a.as_str())?;
            // Only well-formed user:password pairs are sent.
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            if !decoded.contains(&b':') {
                return None;
            }
            return Some(format!("Basic {encoded}"));
        }
    }
    None
}
