//! Parsing and re-serialising policies keeps every field, known or not.

use std::path::PathBuf;

use podsec_common::policy::{Policy, Requirement, SignedIdentity};
use serde_json::Value;

fn fixtures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_fixture_round_trips_exactly() {
    let files = fixtures();
    assert!(files.len() >= 6, "fixtures missing: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let original: Value = serde_json::from_str(&text).unwrap();
        let policy = Policy::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let written = policy.to_json();
        let reread: Value = serde_json::from_str(&written).unwrap();
        assert_eq!(reread, original, "{} changed on rewrite", file.display());
        // And a second round is stable text.
        assert_eq!(Policy::from_json(&written).unwrap().to_json(), written);
    }
}

#[test]
fn every_documented_form_is_typed_not_kept_raw() {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/policy/man-page-every-form.json"),
    )
    .unwrap();
    let policy = Policy::from_json(&text).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    let mut identities = std::collections::BTreeSet::new();
    for scopes in policy.transports.values() {
        for requirements in scopes.values() {
            for requirement in requirements {
                assert!(
                    !matches!(requirement, Requirement::Other(_)),
                    "untyped: {requirement:?}"
                );
                kinds.insert(requirement.kind().unwrap().to_string());
                let identity = match requirement {
                    Requirement::SignedBy(r) => r.signed_identity.as_ref(),
                    Requirement::SigstoreSigned(r) => r.signed_identity.as_ref(),
                    Requirement::SignedBaseLayer(r) => r.base_layer_identity.as_ref(),
                    _ => None,
                };
                if let Some(identity) = identity {
                    assert!(
                        !matches!(identity, SignedIdentity::Other(_)),
                        "untyped: {identity:?}"
                    );
                    identities.insert(
                        format!("{identity:?}")
                            .split('(')
                            .next()
                            .unwrap()
                            .to_string(),
                    );
                }
            }
        }
    }
    let expected_kinds = [
        "insecureAcceptAnything",
        "reject",
        "signedBaseLayer",
        "signedBy",
        "sigstoreSigned",
    ];
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), expected_kinds);
    assert_eq!(identities.len(), 6, "{identities:?}");
}

#[test]
fn the_installed_containers_policy_parses_and_round_trips() {
    // containers-common installs it; scripts/deps installs podman, so it must be there.
    let text = std::fs::read_to_string("/etc/containers/policy.json")
        .expect("/etc/containers/policy.json");
    let policy = Policy::from_json(&text).unwrap();
    let reread: Value = serde_json::from_str(&policy.to_json()).unwrap();
    assert_eq!(reread, serde_json::from_str::<Value>(&text).unwrap());
}
