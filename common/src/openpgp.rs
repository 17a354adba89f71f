//! Simple-signing signatures with sequoia-openpgp: an OpenPGP *signed message* whose literal
//! data is the JSON payload (what containers/image and `gpg --sign` produce), made from a secret
//! key file, and verified against a keyring as containers/image does (first good signature by a
//! trusted key; compressed messages accepted; encrypted or unsigned ones refused).

use std::io::{Read, Write};

use openpgp::cert::{Cert, CertParser};
use openpgp::parse::Parse;
use openpgp::parse::stream::{MessageLayer, MessageStructure, VerificationHelper, VerifierBuilder};
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{LiteralWriter, Message, Signer};
use openpgp::{Fingerprint, KeyHandle};
use sequoia_openpgp as openpgp;

#[derive(Debug, thiserror::Error, crate::i18n::Localize)]
pub enum OpenPgpError {
    #[error("no usable OpenPGP key: {0}")]
    Key(crate::i18n::Message),
    #[error(
        "the signing key is protected by a passphrase; --sign-key needs an unprotected key file"
    )]
    Protected,
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("signature verification failed: {0}")]
    Verify(String),
}

/// Signs `payload` with the first valid signing-capable secret key of `key_file` (armored or
/// binary transferable secret key).
pub fn sign(key_file: &[u8], payload: &[u8]) -> Result<Vec<u8>, OpenPgpError> {
    let policy = StandardPolicy::new();
    let cert = Cert::from_bytes(key_file)
        .map_err(|e| OpenPgpError::Key(crate::i18n::Message::verbatim(e.to_string())))?;
    let key = cert
        .keys()
        .with_policy(&policy, None)
        .supported()
        .alive()
        .revoked(false)
        .for_signing()
        .secret()
        .next()
        .ok_or_else(|| {
            OpenPgpError::Key(crate::msg!(
                "{} has no valid secret signing key",
                cert.fingerprint()
            ))
        })?;
    let keypair = key
        .key()
        .clone()
        .into_keypair()
        .map_err(|_| OpenPgpError::Protected)?;
    let mut sink = Vec::new();
    {
        let message = Message::new(&mut sink);
        let signer = Signer::new(message, keypair)
            .and_then(|s| s.build())
            .map_err(|e| OpenPgpError::Sign(e.to_string()))?;
        let mut literal = LiteralWriter::new(signer)
            .build()
            .map_err(|e| OpenPgpError::Sign(e.to_string()))?;
        literal
            .write_all(payload)
            .map_err(|e| OpenPgpError::Sign(e.to_string()))?;
        literal
            .finalize()
            .map_err(|e| OpenPgpError::Sign(e.to_string()))?;
    }
    Ok(sink)
}

/// A verified signature: the payload and the primary fingerprint of the key that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub payload: Vec<u8>,
    pub signer: Fingerprint,
}

struct Helper {
    certs: Vec<Cert>,
    signer: Option<Fingerprint>,
}

impl VerificationHelper for Helper {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.certs.clone())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure.into_iter() {
            match layer {
                MessageLayer::Compression { .. } => {}
                MessageLayer::SignatureGroup { results } => {
                    if let Some(good) = results.into_iter().flatten().next() {
                        self.signer = Some(good.ka.cert().fingerprint());
                        return Ok(());
                    }
                    return Err(openpgp::Error::BadSignature(
                        "no valid signature by a trusted key".into(),
                    )
                    .into());
                }
                MessageLayer::Encryption { .. } => {
                    return Err(openpgp::Error::InvalidOperation("encrypted message".into()).into());
                }
            }
        }
        Err(openpgp::Error::InvalidOperation("the message is not signed".into()).into())
    }
}

/// Parses every certificate of a keyring file (binary or armored, one or more keys).
pub fn keyring(bytes: &[u8]) -> Result<Vec<Cert>, OpenPgpError> {
    let certs: Vec<Cert> = CertParser::from_bytes(bytes)
        .map_err(|e| OpenPgpError::Key(crate::i18n::Message::verbatim(e.to_string())))?
        .collect::<Result<_, _>>()
        .map_err(|e| OpenPgpError::Key(crate::i18n::Message::verbatim(e.to_string())))?;
    if certs.is_empty() {
        return Err(OpenPgpError::Key(crate::msg!(
            "the keyring holds no certificate"
        )));
    }
    Ok(certs)
}

/// Verifies `signature` against `trusted` and returns the signed payload.
pub fn verify(trusted: &[Cert], signature: &[u8]) -> Result<Verified, OpenPgpError> {
    let policy = StandardPolicy::new();
    let helper = Helper {
        certs: trusted.to_vec(),
        signer: None,
    };
    let mut verifier = VerifierBuilder::from_bytes(signature)
        .and_then(|b| b.with_policy(&policy, None, helper))
        .map_err(|e| OpenPgpError::Verify(e.to_string()))?;
    let mut payload = Vec::new();
    verifier
        .read_to_end(&mut payload)
        .map_err(|e| OpenPgpError::Verify(e.to_string()))?;
    let signer = verifier
        .into_helper()
        .signer
        .ok_or_else(|| OpenPgpError::Verify("no valid signature".into()))?;
    Ok(Verified { payload, signer })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::cert::CertBuilder;
    use openpgp::serialize::SerializeInto;

    fn key(uid: &str) -> (Vec<u8>, Cert) {
        let (cert, _) = CertBuilder::general_purpose(Some(uid)).generate().unwrap();
        (
            cert.as_tsk().to_vec().unwrap(),
            cert.clone().strip_secret_key_material(),
        )
    }

    #[test]
    fn signs_and_verifies_and_refuses_other_keys_and_tampering() {
        let (secret, public) = key("maker <maker@registry.local>");
        let (_, other) = key("other <other@example.com>");
        let payload = br#"{"critical":{}}"#;
        let signature = sign(&secret, payload).unwrap();
        let verified = verify(std::slice::from_ref(&public), &signature).unwrap();
        assert_eq!(verified.payload, payload);
        assert_eq!(verified.signer, public.fingerprint());
        assert!(
            verify(&[other], &signature).is_err(),
            "a signature by an untrusted key passed"
        );
        let mut tampered = signature.clone();
        let middle = tampered.len() / 2;
        tampered[middle] ^= 0xff;
        assert!(
            verify(std::slice::from_ref(&public), &tampered).is_err(),
            "a tampered signature passed"
        );
        assert!(matches!(
            sign(&public.to_vec().unwrap(), payload),
            Err(OpenPgpError::Key(_))
        ));
    }
}
