//! The class of one stored image name under a user's policy, decided as containers/image would
//! decide a pull of it today, with the signatures verified cryptographically:
//!
//! - **out-of-policy**: no docker scope of the policy covers the name (the `""` scope or
//!   `default` would decide), or its scope rejects;
//! - **unsigned**: the scope requires no signature, or no signature exists in the lookaside
//!   store the user's registries.d names for it;
//! - **invalid**: signatures exist but none satisfies every `signedBy` of the scope: not made by
//!   a key the policy trusts, corrupted, for another manifest digest, for another identity, or
//!   the stored manifest is not the one signed;
//! - **signed**: every `signedBy` of the scope is satisfied by some signature, with the identity
//!   rule of its `signedIdentity` (default `matchRepoDigestOrExact`) and the stored manifest
//!   hashing to the signed digest.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine;
use podsec_common::image_ref::{Digest, ImageRef};
use podsec_common::openpgp;
use podsec_common::policy::{Policy, Requirement, ScopeMatch, SignedBy, SignedIdentity};
use podsec_common::signature::SimpleSigning;
use sequoia_openpgp::Cert;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

const MAX_KEY_FILE: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    Signed,
    Unsigned,
    Invalid,
    OutOfPolicy,
}

impl Class {
    pub fn word(self) -> &'static str {
        match self {
            Class::Signed => "signed",
            Class::Unsigned => "unsigned",
            Class::Invalid => "invalid",
            Class::OutOfPolicy => "out-of-policy",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub class: Class,
    pub detail: String,
    /// The primary fingerprint of the key that made an accepted signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
}

impl Verdict {
    fn new(class: Class, detail: impl Into<String>) -> Verdict {
        Verdict {
            class,
            detail: detail.into(),
            signer: None,
        }
    }
}

/// Where signatures come from (the lookaside store, in production).
pub trait SignatureSource {
    /// Every signature (`signature-1`, `-2`, ... until the first missing) of `digest` of
    /// `image` below `base`; an error when the store cannot be asked.
    fn signatures(
        &mut self,
        base: &str,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<Vec<Vec<u8>>, String>;
}

/// The keys of `signedBy` requirements, read once per file.
#[derive(Default)]
pub struct KeyCache {
    files: HashMap<PathBuf, Result<Vec<Cert>, String>>,
}

impl KeyCache {
    fn file(&mut self, path: &str) -> Result<Vec<Cert>, String> {
        self.files
            .entry(PathBuf::from(path))
            .or_insert_with(|| {
                let bytes = read_key_file(path)?;
                openpgp::keyring(&bytes).map_err(|e| format!("key {path}: {e}"))
            })
            .clone()
    }

    /// The certificates a `signedBy` trusts.
    pub fn certs(&mut self, requirement: &SignedBy) -> Result<Vec<Cert>, String> {
        if requirement.key_type != "GPGKeys" {
            return Err(format!(
                "keyType {} is not implemented by containers/image",
                requirement.key_type
            ));
        }
        let mut certs = Vec::new();
        if let Some(path) = &requirement.key_path {
            certs.extend(self.file(path)?);
        }
        for path in requirement.key_paths.iter().flatten() {
            certs.extend(self.file(path)?);
        }
        if let Some(data) = &requirement.key_data {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|e| format!("keyData is not base64: {e}"))?;
            certs.extend(openpgp::keyring(&bytes).map_err(|e| format!("keyData: {e}"))?);
        }
        if certs.is_empty() {
            return Err("signedBy names no key".into());
        }
        Ok(certs)
    }
}

fn read_key_file(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("key {path}: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("key {path}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("key {path}: not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("key {path}: {e}"))?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(format!("key {path}: larger than {MAX_KEY_FILE} bytes"));
    }
    Ok(bytes)
}

/// What is known about the stored image apart from its name.
pub struct Stored<'a> {
    /// The manifest digests recorded by the storage.
    pub digests: &'a [String],
    /// The stored manifest of a digest, if any.
    pub manifest: &'a dyn Fn(&str) -> Option<Vec<u8>>,
}

/// containers/image's identity rules.
pub fn identity_matches(rule: Option<&SignedIdentity>, image: &ImageRef, signed: &str) -> bool {
    let Ok(signed) = ImageRef::parse(signed) else {
        return false;
    };
    let repo_digest_or_exact = |image: &ImageRef| {
        if image.digest.is_some() && image.tag.is_none() {
            image.repository() == signed.repository()
        } else {
            image.to_string() == signed.to_string()
        }
    };
    match rule {
        None | Some(SignedIdentity::MatchRepoDigestOrExact(_)) => repo_digest_or_exact(image),
        Some(SignedIdentity::MatchExact(_)) => {
            (image.tag.is_some() || image.digest.is_some())
                && image.to_string() == signed.to_string()
        }
        Some(SignedIdentity::MatchRepository(_)) => image.repository() == signed.repository(),
        Some(SignedIdentity::ExactReference(r)) => ImageRef::parse(&r.docker_reference)
            .is_ok_and(|wanted| wanted.to_string() == signed.to_string()),
        Some(SignedIdentity::ExactRepository(r)) => ImageRef::parse(&r.docker_repository)
            .is_ok_and(|wanted| wanted.repository() == signed.repository()),
        Some(SignedIdentity::RemapIdentity(r)) => {
            let text = image.to_string();
            match text.strip_prefix(&r.prefix) {
                Some(rest) if rest.is_empty() || rest.starts_with(['/', ':', '@']) => {
                    match ImageRef::parse(&format!("{}{rest}", r.signed_prefix)) {
                        Ok(remapped) => repo_digest_or_exact(&remapped),
                        Err(_) => false,
                    }
                }
                _ => repo_digest_or_exact(image),
            }
        }
        Some(SignedIdentity::Other(_)) => false,
    }
}

/// Why one signature does not satisfy a requirement; `Ok(signer)` when it does.
fn check_signature(
    certs: &[Cert],
    requirement: &SignedBy,
    image: &ImageRef,
    digest: &Digest,
    signature: &[u8],
    stored: &Stored,
) -> Result<String, String> {
    let verified = openpgp::verify(certs, signature).map_err(|e| match e {
        openpgp::OpenPgpError::Verify(why) => {
            format!("not a valid signature by a trusted key ({why})")
        }
        other => other.to_string(),
    })?;
    let payload = SimpleSigning::from_bytes(&verified.payload).map_err(|e| e.to_string())?;
    let signed_digest = &payload.critical.image.docker_manifest_digest;
    if *signed_digest != digest.to_string() {
        return Err(format!(
            "the signature is for manifest {signed_digest}, not {digest}"
        ));
    }
    let identity = &payload.critical.identity.docker_reference;
    if !identity_matches(requirement.signed_identity.as_ref(), image, identity) {
        return Err(format!("the signature is for {identity}, not {image}"));
    }
    match (stored.manifest)(&digest.to_string()) {
        Some(manifest) => {
            let actual = format!("sha256:{}", hex(&Sha256::digest(&manifest)));
            if digest.algorithm == "sha256" && actual != digest.to_string() {
                return Err(format!(
                    "the stored manifest has digest {actual}, not the signed {digest}"
                ));
            }
        }
        None => return Err(format!("the stored manifest {digest} is missing")),
    }
    Ok(verified.signer.to_hex())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The verdict for the stored image `name` (`None` for an untagged image). `lookaside` gives
/// the signature store base URL for a reference. `Err` when the signatures could not be
/// fetched (the image is then not classified).
pub fn classify(
    name: Option<&str>,
    stored: &Stored,
    policy: &Policy,
    lookaside: &dyn Fn(&ImageRef) -> String,
    source: &mut dyn SignatureSource,
    keys: &mut KeyCache,
) -> Result<Verdict, String> {
    let Some(name) = name else {
        return Ok(Verdict::new(
            Class::OutOfPolicy,
            "untagged image: no name a policy scope can cover",
        ));
    };
    let image = match ImageRef::parse(name) {
        Ok(image) => image,
        Err(e) => return Ok(Verdict::new(Class::OutOfPolicy, e.to_string())),
    };
    let (scope, requirements) = policy.docker_requirements(&image);
    let scope = match scope {
        ScopeMatch::Scope(scope) => scope,
        ScopeMatch::TransportDefault | ScopeMatch::Default => {
            return Ok(Verdict::new(
                Class::OutOfPolicy,
                "no docker scope of the policy covers it",
            ));
        }
    };
    if requirements
        .iter()
        .any(|r| matches!(r, Requirement::Reject(_) | Requirement::Other(_)))
    {
        return Ok(Verdict::new(
            Class::OutOfPolicy,
            format!("the policy rejects the scope {scope}"),
        ));
    }
    let signed_by: Vec<&SignedBy> = requirements
        .iter()
        .filter_map(|r| match r {
            Requirement::SignedBy(s) => Some(s),
            _ => None,
        })
        .collect();
    if signed_by.is_empty() {
        let why = if requirements
            .iter()
            .any(|r| matches!(r, Requirement::SigstoreSigned(_)))
        {
            format!(
                "the scope {scope} requires sigstore signatures, which this check does not verify"
            )
        } else {
            format!("the policy requires no signature for the scope {scope}")
        };
        return Ok(Verdict::new(Class::Unsigned, why));
    }
    let digests: Vec<Digest> = stored
        .digests
        .iter()
        .filter_map(|d| Digest::parse(d).ok())
        .collect();
    if digests.is_empty() {
        return Ok(Verdict::new(
            Class::Unsigned,
            "the storage records no manifest digest",
        ));
    }
    let base = lookaside(&image);
    let mut signatures: Vec<(&Digest, Vec<u8>)> = Vec::new();
    for digest in &digests {
        for signature in source.signatures(&base, &image, digest)? {
            signatures.push((digest, signature));
        }
    }
    if signatures.is_empty() {
        return Ok(Verdict::new(
            Class::Unsigned,
            format!("no signature in {base}"),
        ));
    }
    let mut signer = None;
    for requirement in signed_by {
        let certs = match keys.certs(requirement) {
            Ok(certs) => certs,
            Err(e) => return Ok(Verdict::new(Class::Invalid, e)),
        };
        let mut first_failure = None;
        let mut satisfied = false;
        for (digest, signature) in &signatures {
            match check_signature(&certs, requirement, &image, digest, signature, stored) {
                Ok(fingerprint) => {
                    signer.get_or_insert(fingerprint);
                    satisfied = true;
                    break;
                }
                Err(why) => {
                    first_failure.get_or_insert(why);
                }
            }
        }
        if !satisfied {
            return Ok(Verdict::new(
                Class::Invalid,
                first_failure.unwrap_or_else(|| "no signature satisfies the policy".into()),
            ));
        }
    }
    Ok(Verdict {
        class: Class::Signed,
        detail: format!("verified signature from {base}"),
        signer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sequoia_openpgp::cert::CertBuilder;
    use sequoia_openpgp::serialize::SerializeInto;

    struct Memory(HashMap<String, Vec<Vec<u8>>>);

    impl SignatureSource for Memory {
        fn signatures(
            &mut self,
            base: &str,
            image: &ImageRef,
            digest: &Digest,
        ) -> Result<Vec<Vec<u8>>, String> {
            if base == "http://down/" {
                return Err("connection refused".into());
            }
            Ok(self
                .0
                .get(&format!("{}@{digest}", image.path))
                .cloned()
                .unwrap_or_default())
        }
    }

    fn key(uid: &str) -> (Vec<u8>, Vec<u8>) {
        let (cert, _) = CertBuilder::general_purpose(Some(uid)).generate().unwrap();
        (cert.as_tsk().to_vec().unwrap(), cert.to_vec().unwrap())
    }

    fn sign(secret: &[u8], reference: &str, digest: &str) -> Vec<u8> {
        openpgp::sign(secret, &SimpleSigning::new(reference, digest, 1).to_bytes()).unwrap()
    }

    struct World {
        dir: tempfile::TempDir,
        maker: Vec<u8>,
        intruder: Vec<u8>,
        policy: Policy,
        manifest: Vec<u8>,
        digest: String,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let (maker, maker_public) = key("maker <maker@registry.local>");
        let (intruder, _) = key("intruder <x@example.com>");
        let key_path = dir.path().join("maker.pgp");
        std::fs::write(&key_path, maker_public).unwrap();
        let policy = Policy::from_json(&format!(
            r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{
                "registry.local/demo":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{}"}}],
                "registry.local/open":[{{"type":"insecureAcceptAnything"}}],
                "registry.local/closed":[{{"type":"reject"}}],
                "registry.local/pinned":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"{0}",
                    "signedIdentity":{{"type":"exactReference","dockerReference":"registry.local/demo/app:1"}}}}]}}}}}}"#,
            key_path.display()
        ))
        .unwrap();
        let manifest = br#"{"schemaVersion":2}"#.to_vec();
        let digest = format!("sha256:{}", hex(&Sha256::digest(&manifest)));
        World {
            dir,
            maker,
            intruder,
            policy,
            manifest,
            digest,
        }
    }

    fn run(
        world: &World,
        name: Option<&str>,
        signatures: &[(&str, Vec<u8>)],
        manifest: Option<Vec<u8>>,
    ) -> Result<Verdict, String> {
        let mut memory = Memory(HashMap::new());
        for (path, signature) in signatures {
            memory
                .0
                .entry(format!("{path}@{}", world.digest))
                .or_default()
                .push(signature.clone());
        }
        let digests = vec![world.digest.clone()];
        let lookup = move |_: &str| manifest.clone();
        let stored = Stored {
            digests: &digests,
            manifest: &lookup,
        };
        let lookaside = |image: &ImageRef| {
            if image.path.starts_with("down/") {
                "http://down/".to_string()
            } else {
                "http://sigstore.local:81/sigstore/".to_string()
            }
        };
        classify(
            name,
            &stored,
            &world.policy,
            &lookaside,
            &mut memory,
            &mut KeyCache::default(),
        )
    }

    #[test]
    fn every_class_is_told_apart() {
        let w = world();
        let good = sign(&w.maker, "registry.local/demo/app:1", &w.digest);
        let stored = Some(w.manifest.clone());
        let signed = run(
            &w,
            Some("registry.local/demo/app:1"),
            &[("demo/app", good.clone())],
            stored.clone(),
        )
        .unwrap();
        assert_eq!(signed.class, Class::Signed, "{signed:?}");
        assert!(signed.signer.is_some());

        let unsigned = run(&w, Some("registry.local/demo/app:1"), &[], stored.clone()).unwrap();
        assert_eq!(
            (unsigned.class, unsigned.detail.as_str()),
            (
                Class::Unsigned,
                "no signature in http://sigstore.local:81/sigstore/"
            )
        );

        let mut tampered = good.clone();
        let middle = tampered.len() / 2;
        tampered[middle] ^= 0xff;
        let invalid = run(
            &w,
            Some("registry.local/demo/app:1"),
            &[("demo/app", tampered)],
            stored.clone(),
        )
        .unwrap();
        assert_eq!(invalid.class, Class::Invalid, "{invalid:?}");

        let foreign = sign(&w.intruder, "registry.local/demo/app:1", &w.digest);
        let invalid = run(
            &w,
            Some("registry.local/demo/app:1"),
            &[("demo/app", foreign)],
            stored.clone(),
        )
        .unwrap();
        assert_eq!(invalid.class, Class::Invalid);
        assert!(
            invalid
                .detail
                .starts_with("not a valid signature by a trusted key"),
            "{}",
            invalid.detail
        );

        // a valid signature for another tag, another digest, or a stored manifest that differs
        let other_tag = sign(&w.maker, "registry.local/demo/app:2", &w.digest);
        let verdict = run(
            &w,
            Some("registry.local/demo/app:1"),
            &[("demo/app", other_tag)],
            stored.clone(),
        )
        .unwrap();
        assert_eq!(verdict.class, Class::Invalid);
        assert!(
            verdict.detail.contains("is for registry.local/demo/app:2"),
            "{}",
            verdict.detail
        );
        let other_digest = sign(
            &w.maker,
            "registry.local/demo/app:1",
            &format!("sha256:{}", "0".repeat(64)),
        );
        let verdict = run(
            &w,
            Some("registry.local/demo/app:1"),
            &[("demo/app", other_digest)],
            stored.clone(),
        )
        .unwrap();
        assert_eq!(verdict.class, Class::Invalid);
        let verdict = run(
            &w,
            Some("registry.local/demo/app:1"),
            &[("demo/app", good.clone())],
            Some(b"{}".to_vec()),
        )
        .unwrap();
        assert_eq!(verdict.class, Class::Invalid);
        assert!(
            verdict.detail.starts_with("the stored manifest has digest"),
            "{}",
            verdict.detail
        );
        // a bad signature first, a good one second: signed
        let verdict = run(
            &w,
            Some("registry.local/demo/app:1"),
            &[("demo/app", b"junk".to_vec()), ("demo/app", good.clone())],
            stored.clone(),
        )
        .unwrap();
        assert_eq!(verdict.class, Class::Signed);

        for (name, why) in [
            (Some("localhost/bb:latest"), "no docker scope"),
            (Some("registry.local/closed/x:1"), "rejects"),
            (None, "untagged"),
        ] {
            let verdict = run(&w, name, &[], stored.clone()).unwrap();
            assert_eq!(verdict.class, Class::OutOfPolicy, "{name:?}");
            assert!(verdict.detail.contains(why), "{verdict:?}");
        }
        let open = run(&w, Some("registry.local/open/x:1"), &[], stored.clone()).unwrap();
        assert_eq!(open.class, Class::Unsigned);
        assert!(open.detail.contains("requires no signature"));
        // a store that cannot be asked is an error, not a class
        let policy_down = Policy::from_json(
            &w.policy
                .to_json()
                .replace("registry.local/demo", "registry.local/down"),
        )
        .unwrap();
        let w2 = World {
            policy: policy_down,
            ..w
        };
        assert!(run(&w2, Some("registry.local/down/x:1"), &[], stored).is_err());
        drop(w2.dir);
    }

    #[test]
    fn identity_rules_follow_containers_image() {
        let w = world();
        // exactReference: the signature must name registry.local/demo/app:1 whatever the image is called
        let sig = sign(&w.maker, "registry.local/demo/app:1", &w.digest);
        let verdict = run(
            &w,
            Some("registry.local/pinned/copy:7"),
            &[("pinned/copy", sig)],
            Some(w.manifest.clone()),
        )
        .unwrap();
        assert_eq!(verdict.class, Class::Signed, "{verdict:?}");
        let image = ImageRef::parse("registry.local/demo/app:1").unwrap();
        assert!(identity_matches(None, &image, "registry.local/demo/app:1"));
        assert!(!identity_matches(None, &image, "registry.local/demo/app:2"));
        assert!(identity_matches(
            Some(&SignedIdentity::MatchRepository(Default::default())),
            &image,
            "registry.local/demo/app:2"
        ));
        let by_digest = ImageRef::parse(&format!("registry.local/demo/app@{}", w.digest)).unwrap();
        assert!(identity_matches(
            None,
            &by_digest,
            "registry.local/demo/app:9"
        ));
        let remap = SignedIdentity::RemapIdentity(podsec_common::policy::RemapIdentity {
            prefix: "mirror.local/demo".into(),
            signed_prefix: "registry.local/demo".into(),
            extra: Default::default(),
        });
        let mirrored = ImageRef::parse("mirror.local/demo/app:1").unwrap();
        assert!(identity_matches(
            Some(&remap),
            &mirrored,
            "registry.local/demo/app:1"
        ));
        assert!(!identity_matches(
            Some(&remap),
            &mirrored,
            "mirror.local/demo/app:2"
        ));
        assert!(!identity_matches(None, &image, "not a reference"));
    }
}
