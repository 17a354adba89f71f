//! containers-policy.json(5): the image-trust policy that skopeo, podman and CRI-O enforce.
//!
//! Every requirement type and `signedIdentity` form of the man page has a typed model. Whatever
//! the model does not know (fields added by a newer containers/image, a requirement type it has
//! never heard of) is kept and written back unchanged, as podman's own editor does: podsec must
//! never drop a rule another tool put there.

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::image_ref::ImageRef;

#[derive(Debug, thiserror::Error, crate::i18n::Localize)]
pub enum PolicyError {
    #[error("not a valid policy.json: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("invalid policy: {0}")]
    Invalid(crate::i18n::Message),
}

/// Unknown members of an object, in their original order.
pub type Extra = Map<String, Value>;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub default: Vec<Requirement>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub transports: IndexMap<String, IndexMap<String, Vec<Requirement>>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One requirement; all requirements of a scope must be satisfied.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    InsecureAcceptAnything(Extra),
    Reject(Extra),
    SignedBy(SignedBy),
    SigstoreSigned(Box<SigstoreSigned>),
    SignedBaseLayer(SignedBaseLayer),
    /// A requirement this model cannot read (unknown type, or a known type in a shape it does not
    /// understand), kept verbatim.
    Other(Value),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedBy {
    /// `GPGKeys` (the one containers/image evaluates), `signedByGPGKeys`, `X509Certificates`,
    /// `signedByX509CAs`.
    pub key_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_identity: Option<SignedIdentity>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl SignedBy {
    /// `{"type":"signedBy","keyType":"GPGKeys","keyPath":path}`, what podsec writes per image maker.
    pub fn gpg_key_path(path: &str) -> SignedBy {
        SignedBy {
            key_type: "GPGKeys".into(),
            key_path: Some(path.into()),
            key_paths: None,
            key_data: None,
            signed_identity: None,
            extra: Extra::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigstoreSigned {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_datas: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulcio: Option<Fulcio>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pki: Option<Pki>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekor_public_key_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekor_public_key_paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekor_public_key_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekor_public_key_datas: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_identity: Option<SignedIdentity>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fulcio {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_email: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pki {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_roots_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_roots_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_intermediates_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_intermediates_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_email: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `signedBaseLayer` (in containers/image's code, not in the man page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedBaseLayer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_layer_identity: Option<SignedIdentity>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// How the identity in a signature must relate to the image reference.
#[derive(Debug, Clone, PartialEq)]
pub enum SignedIdentity {
    MatchExact(Extra),
    MatchRepoDigestOrExact(Extra),
    MatchRepository(Extra),
    ExactReference(ExactReference),
    ExactRepository(ExactRepository),
    RemapIdentity(RemapIdentity),
    Other(Value),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExactReference {
    pub docker_reference: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExactRepository {
    pub docker_repository: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemapIdentity {
    pub prefix: String,
    pub signed_prefix: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `{"type": tag, ...fields of value}`, the type first as every example writes it.
fn tagged<T: Serialize>(tag: &str, value: &T) -> Result<Value, serde_json::Error> {
    let mut object = Map::new();
    object.insert("type".into(), Value::String(tag.into()));
    if let Value::Object(fields) = serde_json::to_value(value)? {
        object.extend(fields);
    }
    Ok(Value::Object(object))
}

/// The fields of `object` without `type`, read as `T`; `None` when they do not fit or when the
/// typed form would not write them back identically (an explicit `null`, say): then the caller
/// keeps the object verbatim.
fn untagged<T: DeserializeOwned + Serialize>(object: &Map<String, Value>) -> Option<T> {
    let mut fields = object.clone();
    fields.remove("type");
    let fields = Value::Object(fields);
    let typed: T = serde_json::from_value(fields.clone()).ok()?;
    (serde_json::to_value(&typed).ok()? == fields).then_some(typed)
}

fn type_of(value: &Value) -> Option<(&str, &Map<String, Value>)> {
    let object = value.as_object()?;
    Some((object.get("type")?.as_str()?, object))
}

impl Requirement {
    fn to_value(&self) -> Result<Value, serde_json::Error> {
        match self {
            Requirement::InsecureAcceptAnything(extra) => tagged("insecureAcceptAnything", extra),
            Requirement::Reject(extra) => tagged("reject", extra),
            Requirement::SignedBy(r) => tagged("signedBy", r),
            Requirement::SigstoreSigned(r) => tagged("sigstoreSigned", r),
            Requirement::SignedBaseLayer(r) => tagged("signedBaseLayer", r),
            Requirement::Other(value) => Ok(value.clone()),
        }
    }

    fn from_value(value: Value) -> Requirement {
        let parsed = type_of(&value).and_then(|(kind, object)| match kind {
            "insecureAcceptAnything" => untagged(object).map(Requirement::InsecureAcceptAnything),
            "reject" => untagged(object).map(Requirement::Reject),
            "signedBy" => untagged(object).map(Requirement::SignedBy),
            "sigstoreSigned" => untagged(object).map(|r| Requirement::SigstoreSigned(Box::new(r))),
            "signedBaseLayer" => untagged(object).map(Requirement::SignedBaseLayer),
            _ => None,
        });
        parsed.unwrap_or(Requirement::Other(value))
    }

    /// The `type` member.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Requirement::InsecureAcceptAnything(_) => Some("insecureAcceptAnything"),
            Requirement::Reject(_) => Some("reject"),
            Requirement::SignedBy(_) => Some("signedBy"),
            Requirement::SigstoreSigned(_) => Some("sigstoreSigned"),
            Requirement::SignedBaseLayer(_) => Some("signedBaseLayer"),
            Requirement::Other(value) => type_of(value).map(|(kind, _)| kind),
        }
    }

    pub fn reject() -> Requirement {
        Requirement::Reject(Extra::new())
    }

    pub fn insecure_accept_anything() -> Requirement {
        Requirement::InsecureAcceptAnything(Extra::new())
    }
}

impl Serialize for Requirement {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Requirement {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if !value.is_object() {
            return Err(serde::de::Error::custom(
                "a requirement must be a JSON object",
            ));
        }
        Ok(Requirement::from_value(value))
    }
}

impl SignedIdentity {
    fn to_value(&self) -> Result<Value, serde_json::Error> {
        match self {
            SignedIdentity::MatchExact(extra) => tagged("matchExact", extra),
            SignedIdentity::MatchRepoDigestOrExact(extra) => {
                tagged("matchRepoDigestOrExact", extra)
            }
            SignedIdentity::MatchRepository(extra) => tagged("matchRepository", extra),
            SignedIdentity::ExactReference(r) => tagged("exactReference", r),
            SignedIdentity::ExactRepository(r) => tagged("exactRepository", r),
            SignedIdentity::RemapIdentity(r) => tagged("remapIdentity", r),
            SignedIdentity::Other(value) => Ok(value.clone()),
        }
    }

    fn from_value(value: Value) -> SignedIdentity {
        let parsed = type_of(&value).and_then(|(kind, object)| match kind {
            "matchExact" => untagged(object).map(SignedIdentity::MatchExact),
            "matchRepoDigestOrExact" => {
                untagged(object).map(SignedIdentity::MatchRepoDigestOrExact)
            }
            "matchRepository" => untagged(object).map(SignedIdentity::MatchRepository),
            "exactReference" => untagged(object).map(SignedIdentity::ExactReference),
            "exactRepository" => untagged(object).map(SignedIdentity::ExactRepository),
            "remapIdentity" => untagged(object).map(SignedIdentity::RemapIdentity),
            _ => None,
        });
        parsed.unwrap_or(SignedIdentity::Other(value))
    }
}

impl Serialize for SignedIdentity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SignedIdentity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(SignedIdentity::from_value(Value::deserialize(
            deserializer,
        )?))
    }
}

/// Where a docker reference's requirements came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeMatch {
    /// A scope of `transports.docker`.
    Scope(String),
    /// The transport-wide `""` scope.
    TransportDefault,
    /// The top-level `default`.
    Default,
}

impl Policy {
    /// `{"default":[{"type":"reject"}],"transports":{"docker":{}}}`: the signature server's start.
    pub fn reject_all() -> Policy {
        let mut transports = IndexMap::new();
        transports.insert("docker".to_string(), IndexMap::new());
        Policy {
            default: vec![Requirement::reject()],
            transports,
            extra: Extra::new(),
        }
    }

    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = serde_json::from_str(text)?;
        policy.validate()?;
        Ok(policy)
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a policy always serialises");
        text.push('\n');
        text
    }

    /// The structural rules containers/image enforces that serde alone does not: a non-empty
    /// `default`, exactly one key source per signature requirement.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.default.is_empty() {
            return Err(PolicyError::Invalid(crate::msg!(
                "\"default\" has no requirement"
            )));
        }
        let scoped = self
            .transports
            .iter()
            .flat_map(|(t, scopes)| scopes.iter().map(move |(s, r)| (format!("{t}:{s}"), r)));
        for (place, requirements) in
            std::iter::once(("default".to_string(), &self.default)).chain(scoped)
        {
            for requirement in requirements {
                check_requirement(requirement)
                    .map_err(|why| PolicyError::Invalid(crate::msg!("{place}: {why}")))?;
            }
        }
        Ok(())
    }

    /// The requirements that apply to a `docker://` reference: the most specific matching scope,
    /// else the transport's `""` scope, else `default`.
    pub fn docker_requirements(&self, image: &ImageRef) -> (ScopeMatch, &[Requirement]) {
        if let Some(scopes) = self.transports.get("docker") {
            for scope in image.policy_scopes() {
                if let Some(requirements) = scopes.get(&scope) {
                    return (ScopeMatch::Scope(scope), requirements);
                }
            }
            if let Some(requirements) = scopes.get("") {
                return (ScopeMatch::TransportDefault, requirements);
            }
        }
        (ScopeMatch::Default, &self.default)
    }

    /// The requirements of a docker scope, created empty when absent.
    pub fn docker_scope_mut(&mut self, scope: &str) -> &mut Vec<Requirement> {
        self.transports
            .entry("docker".into())
            .or_default()
            .entry(scope.into())
            .or_default()
    }
}

fn check_requirement(requirement: &Requirement) -> Result<(), crate::i18n::Message> {
    let count = |items: &[bool]| items.iter().filter(|b| **b).count();
    match requirement {
        Requirement::SignedBy(r) => {
            let sources = count(&[
                r.key_path.is_some(),
                r.key_paths.is_some(),
                r.key_data.is_some(),
            ]);
            if sources != 1 {
                return Err(crate::msg!(
                    "signedBy needs exactly one of keyPath, keyPaths, keyData"
                ));
            }
        }
        Requirement::SigstoreSigned(r) => {
            let sources = count(&[
                r.key_path.is_some(),
                r.key_paths.is_some(),
                r.key_data.is_some(),
                r.key_datas.is_some(),
                r.fulcio.is_some(),
                r.pki.is_some(),
            ]);
            if sources != 1 {
                return Err(crate::msg!(
                    "sigstoreSigned needs exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, pki"
                ));
            }
            let rekor = count(&[
                r.rekor_public_key_path.is_some(),
                r.rekor_public_key_paths.is_some(),
                r.rekor_public_key_data.is_some(),
                r.rekor_public_key_datas.is_some(),
            ]);
            if rekor > 1 {
                return Err(crate::msg!(
                    "sigstoreSigned takes at most one rekorPublicKey* member"
                ));
            }
            if r.fulcio.is_some() && rekor == 0 {
                return Err(crate::msg!(
                    "sigstoreSigned with fulcio needs a rekorPublicKey* member"
                ));
            }
        }
        Requirement::Other(value) if type_of(value).is_none() => {
            return Err(crate::msg!("requirement without a \"type\""));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_all_is_what_upstream_writes() {
        let expected: Value =
            serde_json::from_str(r#"{"default":[{"type":"reject"}],"transports":{"docker":{}}}"#)
                .unwrap();
        assert_eq!(
            serde_json::to_value(Policy::reject_all()).unwrap(),
            expected
        );
    }

    #[test]
    fn most_specific_scope_wins() {
        let policy = Policy::from_json(
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{
                "registry.local":[{"type":"insecureAcceptAnything"}],
                "registry.local/c10f":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k.pgp"}],
                "":[{"type":"reject"}]}}}"#,
        )
        .unwrap();
        let pause = ImageRef::parse("registry.local/c10f/pause:3.9").unwrap();
        let (scope, requirements) = policy.docker_requirements(&pause);
        assert_eq!(scope, ScopeMatch::Scope("registry.local/c10f".into()));
        assert_eq!(requirements[0].kind(), Some("signedBy"));
        let other = ImageRef::parse("registry.local/x/y").unwrap();
        assert_eq!(
            policy.docker_requirements(&other).0,
            ScopeMatch::Scope("registry.local".into())
        );
        let elsewhere = ImageRef::parse("quay.io/x/y").unwrap();
        assert_eq!(
            policy.docker_requirements(&elsewhere).0,
            ScopeMatch::TransportDefault
        );
    }

    #[test]
    fn unknown_requirement_types_and_fields_survive() {
        let text = r#"{"default":[{"type":"reject","x-note":"keep"}],
            "transports":{"docker":{"a.example":[{"type":"futureType","k":[1,2]},
            {"type":"signedBy","keyType":"GPGKeys","keyPath":"/p","signedIdentity":{"type":"futureIdentity","z":1},"x":true}]}},
            "futureTopLevel":{"a":1}}"#;
        let policy = Policy::from_json(text).unwrap();
        let back: Value = serde_json::from_str(&policy.to_json()).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(text).unwrap());
        let a = &policy.transports["docker"]["a.example"];
        assert!(matches!(a[0], Requirement::Other(_)));
        match &a[1] {
            Requirement::SignedBy(s) => {
                assert!(matches!(s.signed_identity, Some(SignedIdentity::Other(_))));
                assert_eq!(s.extra["x"], Value::Bool(true));
            }
            other => panic!("signedBy not recognised: {other:?}"),
        }
    }

    #[test]
    fn validation_rejects_ambiguous_key_sources() {
        for bad in [
            r#"{"default":[]}"#,
            r#"{"default":[{"type":"signedBy","keyType":"GPGKeys"}]}"#,
            r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","keyData":"eA=="}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","keyPath":"/a","fulcio":{"caPath":"/c"}}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","fulcio":{"caPath":"/c","oidcIssuer":"i","subjectEmail":"e"}}]}"#,
            r#"{"default":[{"notype":1}]}"#,
            r#"{"default":[1]}"#,
            r#"{"transports":{}}"#,
        ] {
            assert!(Policy::from_json(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn numbers_of_unknown_fields_survive_a_rewrite() {
        // Found by the fuzzer (tests/fuzz, policy_json): without serde_json's float_roundtrip a
        // number too large for an integer was read one unit in the last place off, and the
        // rewritten policy.json read back as another value.
        let text = r#"{"default":[{"type":"reject"}],"x":[211111111111111111111111111111111111111111111]}"#;
        let policy = Policy::from_json(text).unwrap();
        assert_eq!(Policy::from_json(&policy.to_json()).unwrap(), policy);
        assert_eq!(policy.extra["x"][0].as_f64(), Some(2.111111111111111e44));
    }
}
