//! A client node's trust bundle: the image makers' keys and the policy.json published by the
//! signature server at http://sigstore.local:81/keys/ (nginx JSON autoindex).
//!
//! The channel is plain HTTP (upstream's interface), so everything is validated before use:
//! file names, key material, and a policy that rejects by default and names only keys it came
//! with. Optional pins (policy SHA-256, key fingerprints) turn trust-on-first-use into a check.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use podsec_common::host::files::FileError;
use podsec_common::host::{Host, HostDir};
use podsec_common::i18n::Message;
use podsec_common::msg;
use podsec_common::policy::{Policy, Requirement};

use crate::layout::{KEYS_DIR, SIGSTORE_HOST, SIGSTORE_PORT};

/// Largest file accepted from the server (keys and policies are a few KiB).
const MAX_FILE: u64 = 1 << 20;

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum FetchError {
    #[error("cannot download {url}: {detail}")]
    Http { url: String, detail: String },
    #[error("the key listing of {url} is not nginx JSON autoindex output: {detail}")]
    Listing { url: String, detail: String },
    #[error("the server offers a file with an unacceptable name: '{0}'")]
    BadName(String),
    #[error("the server publishes no policy.json")]
    NoPolicy,
    #[error("the published policy.json is not acceptable: {0}")]
    BadPolicy(Message),
    #[error("the published policy names key {0}, which the server does not publish")]
    MissingKey(String),
    #[error("{name} is not an OpenPGP public key: {detail}")]
    BadKey { name: String, detail: Message },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("the published policy.json has SHA-256 {actual}, expected {expected}")]
    PolicyDigest { expected: String, actual: String },
    #[error("key {name} has fingerprint {fingerprint}, which is not among the expected ones")]
    KeyNotPinned { name: String, fingerprint: String },
    #[error("--expect-policy-sha256 '{0}' is not 64 hexadecimal digits")]
    BadPolicyPin(String),
    #[error("--expect-key-fingerprint '{0}' is not 40 or 64 hexadecimal digits")]
    BadKeyPin(String),
}

#[derive(Debug, Default, Clone)]
pub struct Pins {
    pub policy_sha256: Option<String>,
    pub key_fingerprints: Vec<String>,
}

impl Pins {
    /// Refuses a pin that no digest or fingerprint could match, before anything is fetched.
    pub fn check(&self) -> Result<(), FetchError> {
        let hex_of = |text: &str, lengths: &[usize]| {
            lengths.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
        };
        if let Some(digest) = &self.policy_sha256
            && !hex_of(digest, &[64])
        {
            return Err(FetchError::BadPolicyPin(digest.clone()));
        }
        for fingerprint in &self.key_fingerprints {
            // OpenPGP v4 fingerprints are 40 digits, v6 ones 64; gpg prints them spaced.
            if !hex_of(&fingerprint.replace(' ', ""), &[40, 64]) {
                return Err(FetchError::BadKeyPin(fingerprint.clone()));
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct TrustBundle {
    pub keys: BTreeMap<String, Vec<u8>>,
    pub policy_text: String,
    /// What the bundle is, in the form a client pins it.
    pub pins: TrustPins,
}

/// A trust bundle as a client pins it: the policy's SHA-256 and every key's primary
/// fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPins {
    pub policy_sha256: String,
    pub key_fingerprints: Vec<String>,
}

impl TrustPins {
    /// The podsec-create-policy options that accept exactly this bundle.
    pub fn options(&self) -> String {
        let mut options = format!("--expect-policy-sha256 {}", self.policy_sha256);
        for fingerprint in &self.key_fingerprints {
            options.push_str(&format!(" --expect-key-fingerprint {fingerprint}"));
        }
        options
    }

    fn new(policy: &[u8], fingerprints: &BTreeMap<String, Vec<String>>) -> TrustPins {
        let mut key_fingerprints: Vec<String> = Vec::new();
        for fingerprint in fingerprints.values().flatten() {
            if !key_fingerprints.contains(fingerprint) {
                key_fingerprints.push(fingerprint.clone());
            }
        }
        TrustPins {
            policy_sha256: hex(&Sha256::digest(policy)),
            key_fingerprints,
        }
    }
}

/// Each key's primary fingerprints.
fn fingerprints_by_key(
    keys: &BTreeMap<String, Vec<u8>>,
) -> Result<BTreeMap<String, Vec<String>>, FetchError> {
    keys.iter()
        .map(|(name, bytes)| Ok((name.clone(), key_fingerprints(name, bytes)?)))
        .collect()
}

/// What the server publishes in `dir` (its keys directory), as clients pin it; `None` while
/// it publishes no policy (no image maker yet).
pub fn published_pins(host: &impl Host, dir: &Path) -> Result<Option<TrustPins>, FetchError> {
    // No keys directory yet: nothing published. Anything else (a link there, no access) is
    // said, not taken for "no image maker".
    let dir = match host.open_dir(dir) {
        Ok(dir) => dir,
        Err(FileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let names = dir.list()?;
    if !names.iter().any(|n| n == "policy.json") {
        return Ok(None);
    }
    let policy = dir.read_file("policy.json", MAX_FILE)?;
    let mut keys = BTreeMap::new();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        if name.ends_with(".pgp") && acceptable_name(&name) {
            let bytes = dir.read_file(&name, MAX_FILE)?;
            keys.insert(name, bytes);
        }
    }
    Ok(Some(TrustPins::new(&policy, &fingerprints_by_key(&keys)?)))
}

#[derive(serde::Deserialize)]
struct Entry {
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

fn base_url(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => format!("http://{v4}:{SIGSTORE_PORT}/keys/"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{SIGSTORE_PORT}/keys/"),
    }
}

fn get(agent: &ureq::Agent, url: &str) -> Result<Vec<u8>, FetchError> {
    let http = |detail: String| FetchError::Http {
        url: url.to_string(),
        detail,
    };
    // The server is addressed by IP (the /etc/hosts binding may not exist yet), by name for nginx.
    let mut response = agent
        .get(url)
        .header("Host", SIGSTORE_HOST)
        .call()
        .map_err(|e| http(e.to_string()))?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_FILE)
        .read_to_vec()
        .map_err(|e| http(e.to_string()))
}

/// A key or policy name as podsec publishes them: `<name>.pgp` or `policy.json`, no paths.
pub fn acceptable_name(name: &str) -> bool {
    let stem_ok = |stem: &str| {
        !stem.is_empty()
            && stem
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    name == "policy.json" || name.strip_suffix(".pgp").is_some_and(stem_ok)
}

/// Downloads and validates the bundle; nothing is written.
pub fn trust_bundle(address: IpAddr, pins: &Pins) -> Result<TrustBundle, FetchError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let url = base_url(address);
    let listing = get(&agent, &url)?;
    let entries: Vec<Entry> =
        serde_json::from_slice(&listing).map_err(|e| FetchError::Listing {
            url: url.clone(),
            detail: e.to_string(),
        })?;
    let mut keys = BTreeMap::new();
    let mut policy_bytes = None;
    for entry in entries.iter().filter(|e| e.kind == "file") {
        if !acceptable_name(&entry.name) {
            return Err(FetchError::BadName(entry.name.clone()));
        }
        let bytes = get(&agent, &format!("{url}{}", entry.name))?;
        if entry.name == "policy.json" {
            policy_bytes = Some(bytes);
        } else {
            keys.insert(entry.name.clone(), bytes);
        }
    }
    let policy_bytes = policy_bytes.ok_or(FetchError::NoPolicy)?;
    if let Some(expected) = &pins.policy_sha256 {
        let actual = hex(&Sha256::digest(&policy_bytes));
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(FetchError::PolicyDigest {
                expected: expected.clone(),
                actual,
            });
        }
    }
    let fingerprints = fingerprints_by_key(&keys)?;
    let found = TrustPins::new(&policy_bytes, &fingerprints);
    let policy_text = String::from_utf8(policy_bytes)
        .map_err(|e| FetchError::BadPolicy(Message::verbatim(e.to_string())))?;
    check_policy(&policy_text, &keys)?;
    if !pins.key_fingerprints.is_empty() {
        for (name, found) in &fingerprints {
            for fingerprint in found.iter().cloned() {
                let pinned = pins
                    .key_fingerprints
                    .iter()
                    .any(|p| p.replace(' ', "").eq_ignore_ascii_case(&fingerprint));
                if !pinned {
                    return Err(FetchError::KeyNotPinned {
                        name: name.clone(),
                        fingerprint,
                    });
                }
            }
        }
    }
    Ok(TrustBundle {
        keys,
        policy_text,
        pins: found,
    })
}

/// Rejects by default; every signedBy key is one of the published keys, under /var/sigstore/keys.
fn check_policy(text: &str, keys: &BTreeMap<String, Vec<u8>>) -> Result<(), FetchError> {
    let policy = Policy::from_json(text).map_err(|e| FetchError::BadPolicy(Message::of(&e)))?;
    if !matches!(policy.default.as_slice(), [Requirement::Reject(_)]) {
        return Err(FetchError::BadPolicy(msg!(
            "its default is not [{{\"type\":\"reject\"}}]"
        )));
    }
    for requirement in policy
        .transports
        .values()
        .flat_map(|s| s.values())
        .flatten()
    {
        if let Requirement::SignedBy(rule) = requirement {
            let paths = rule.key_path.iter().chain(rule.key_paths.iter().flatten());
            for path in paths {
                let name = path
                    .strip_prefix(KEYS_DIR)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .filter(|name| acceptable_name(name))
                    .ok_or_else(|| {
                        FetchError::BadPolicy(msg!("key path {path} is not in {KEYS_DIR}"))
                    })?;
                if !keys.contains_key(name) {
                    return Err(FetchError::MissingKey(path.clone()));
                }
            }
        }
    }
    Ok(())
}

/// The primary fingerprints of the certificates in `bytes` (read in process: no keyring, no
/// program, no temporary directory).
pub fn key_fingerprints(name: &str, bytes: &[u8]) -> Result<Vec<String>, FetchError> {
    let bad = |detail: Message| FetchError::BadKey {
        name: name.to_string(),
        detail,
    };
    let certs = podsec_common::openpgp::keyring(bytes)
        .map_err(|e| bad(Message::verbatim(e.to_string())))?;
    if certs.iter().any(|cert| cert.is_tsk()) {
        return Err(bad(msg!("it contains secret key material")));
    }
    Ok(certs
        .iter()
        .map(|cert| cert.fingerprint().to_hex())
        .collect())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_keys_directory_publishes_nothing_but_a_non_directory_there_is_an_error() {
        use podsec_common::host::fake::FakeHost;
        let keys = Path::new("/var/sigstore/keys");
        assert!(matches!(published_pins(&FakeHost::new(), keys), Ok(None)));
        let host = FakeHost::new()
            .with_dir("/var/sigstore", 0o755, (0, 0))
            .with_file(keys, b"not a directory");
        match published_pins(&host, keys) {
            Err(FetchError::File(FileError::NotFollowing { path })) => assert_eq!(path, keys),
            other => panic!("expected a refusal, got {:?}", other.map(|p| p.is_some())),
        }
    }

    #[test]
    fn names_from_the_server_are_checked() {
        for good in ["policy.json", "imagemaker.pgp", "a-b_c.1.pgp"] {
            assert!(acceptable_name(good), "{good}");
        }
        for bad in [
            "../x.pgp",
            "x/y.pgp",
            ".pgp",
            "..pgp",
            "a.json",
            "policy.json.bak",
            "-x.pgp",
            "a b.pgp",
        ] {
            assert!(!acceptable_name(bad), "{bad}");
        }
    }

    #[test]
    fn pins_that_nothing_could_match_are_refused_before_any_download() {
        let pins = |digest: Option<&str>, keys: &[&str]| Pins {
            policy_sha256: digest.map(str::to_string),
            key_fingerprints: keys.iter().map(|k| k.to_string()).collect(),
        };
        let digest = "ab".repeat(32);
        let v4 = "0123 4567 89AB CDEF 0123  4567 89AB CDEF 0123 4567";
        assert!(pins(Some(&digest), &[v4, &"c".repeat(64)]).check().is_ok());
        assert!(pins(None, &[]).check().is_ok());
        for bad in ["xyz", &digest[1..], &format!("{digest}0"), &"g".repeat(64)] {
            let error = pins(Some(bad), &[]).check().unwrap_err();
            assert!(
                matches!(&error, FetchError::BadPolicyPin(v) if v == bad),
                "{bad}"
            );
        }
        for bad in ["", "abc", &"a".repeat(41), &"z".repeat(40)] {
            let error = pins(None, &[bad]).check().unwrap_err();
            assert!(
                matches!(&error, FetchError::BadKeyPin(v) if v == bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn policy_must_reject_by_default_and_name_only_published_keys() {
        let keys: BTreeMap<String, Vec<u8>> = [("im.pgp".to_string(), Vec::new())].into();
        let good = r#"{"default":[{"type":"reject"}],"transports":{"docker":{"registry.local":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/var/sigstore/keys/im.pgp"}]}}}"#;
        assert!(check_policy(good, &keys).is_ok());
        let open = r#"{"default":[{"type":"insecureAcceptAnything"}]}"#;
        assert!(matches!(
            check_policy(open, &keys),
            Err(FetchError::BadPolicy(_))
        ));
        let missing = good.replace("im.pgp", "other.pgp");
        assert!(matches!(
            check_policy(&missing, &keys),
            Err(FetchError::MissingKey(_))
        ));
        let outside = good.replace("/var/sigstore/keys/im.pgp", "/etc/shadow");
        assert!(matches!(
            check_policy(&outside, &keys),
            Err(FetchError::BadPolicy(_))
        ));
    }
}
