//! The "simple signing" payload (containers-signature(5)): the JSON that an OpenPGP signed
//! message carries for one image manifest. Signing and verification use it in the podsec crate.
//!
//! Parsing is as strict as containers/image: `critical` and the top level take exactly their
//! members; `optional` may carry anything.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const SIGNATURE_TYPE: &str = "atomic container signature";

#[derive(Debug, thiserror::Error, crate::i18n::Localize)]
pub enum PayloadError {
    #[error("signature payload is not valid: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("signature payload has type '{0}', expected '{SIGNATURE_TYPE}'")]
    WrongType(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimpleSigning {
    pub critical: Critical,
    pub optional: Optional,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Critical {
    #[serde(rename = "type")]
    pub kind: String,
    pub image: CriticalImage,
    pub identity: CriticalIdentity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriticalImage {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriticalIdentity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Optional {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SimpleSigning {
    /// The payload for `reference` (a full `host/path:tag`) and its manifest digest.
    pub fn new(reference: &str, manifest_digest: &str, timestamp: i64) -> SimpleSigning {
        SimpleSigning {
            critical: Critical {
                kind: SIGNATURE_TYPE.into(),
                image: CriticalImage {
                    docker_manifest_digest: manifest_digest.into(),
                },
                identity: CriticalIdentity {
                    docker_reference: reference.into(),
                },
            },
            optional: Optional {
                creator: Some(format!("podsec {}", env!("CARGO_PKG_VERSION"))),
                timestamp: Some(timestamp),
                extra: Map::new(),
            },
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a payload always serialises")
    }

    /// Reads a payload taken from a verified signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<SimpleSigning, PayloadError> {
        let payload: SimpleSigning = serde_json::from_slice(bytes)?;
        if payload.critical.kind != SIGNATURE_TYPE {
            return Err(PayloadError::WrongType(payload.critical.kind));
        }
        Ok(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_skopeo_writes() {
        let skopeo = br#"{"critical":{"identity":{"docker-reference":"registry.local/podsec/tiny:signed"},"image":{"docker-manifest-digest":"sha256:0123"},"type":"atomic container signature"},"optional":{"creator":"atomic 5.23.1","timestamp":1700000000}}"#;
        let payload = SimpleSigning::from_bytes(skopeo).unwrap();
        assert_eq!(
            payload.critical.identity.docker_reference,
            "registry.local/podsec/tiny:signed"
        );
        assert_eq!(payload.critical.image.docker_manifest_digest, "sha256:0123");
        assert_eq!(payload.optional.timestamp, Some(1700000000));
    }

    #[test]
    fn round_trips() {
        let payload = SimpleSigning::new("registry.local/a/b:1", "sha256:ff", 42);
        assert_eq!(
            SimpleSigning::from_bytes(&payload.to_bytes()).unwrap(),
            payload
        );
    }

    #[test]
    fn unknown_critical_members_are_rejected_optional_ones_kept() {
        let extra_critical = br#"{"critical":{"identity":{"docker-reference":"r/a:1"},"image":{"docker-manifest-digest":"sha256:0"},"type":"atomic container signature","x":1},"optional":{}}"#;
        assert!(SimpleSigning::from_bytes(extra_critical).is_err());
        let extra_top = br#"{"critical":{"identity":{"docker-reference":"r/a:1"},"image":{"docker-manifest-digest":"sha256:0"},"type":"atomic container signature"},"optional":{},"x":1}"#;
        assert!(SimpleSigning::from_bytes(extra_top).is_err());
        let no_optional = br#"{"critical":{"identity":{"docker-reference":"r/a:1"},"image":{"docker-manifest-digest":"sha256:0"},"type":"atomic container signature"}}"#;
        assert!(SimpleSigning::from_bytes(no_optional).is_err());
        let wrong_type = br#"{"critical":{"identity":{"docker-reference":"r/a:1"},"image":{"docker-manifest-digest":"sha256:0"},"type":"other"},"optional":{}}"#;
        assert!(matches!(
            SimpleSigning::from_bytes(wrong_type),
            Err(PayloadError::WrongType(_))
        ));
        let extra_optional = br#"{"critical":{"identity":{"docker-reference":"r/a:1"},"image":{"docker-manifest-digest":"sha256:0"},"type":"atomic container signature"},"optional":{"note":"x"}}"#;
        let payload = SimpleSigning::from_bytes(extra_optional).unwrap();
        assert_eq!(payload.optional.extra["note"], "x");
    }
}
