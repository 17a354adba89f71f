//! The user's key and PKCS#10 request, made in-process, and the check of what the cluster issued.
//!
//! The key is ECDSA P-256 (ring, through rcgen). The request is written with yasna because
//! rcgen's distinguished names keep one value per attribute type and a user may be in several
//! groups: CN = user, one O = per group, as Kubernetes reads them (username = CN, groups = O).

use podsec_common::i18n::Message;
use podsec_common::msg;
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData, SigningKey};
use x509_parser::prelude::*;
use yasna::models::ObjectIdentifier;

use crate::error::Error;

const OID_CN: &[u64] = &[2, 5, 4, 3];
const OID_O: &[u64] = &[2, 5, 4, 10];
const OID_ECDSA_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];

/// A fresh private key (never written anywhere but the user's own kubeconfig).
pub fn generate_key() -> Result<KeyPair, Error> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| Error::Failed(msg!("cannot generate a private key: {e}")))
}

/// The PEM PKCS#10 request for CN=`user`, O=`groups`..., signed by `key`.
pub fn request_pem(key: &KeyPair, user: &str, groups: &[String]) -> Result<String, Error> {
    let spki = key.subject_public_key_info();
    let info = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(0);
            w.next().write_sequence(|w| {
                write_rdn(w.next(), OID_CN, user);
                for group in groups {
                    write_rdn(w.next(), OID_O, group);
                }
            });
            w.next().write_der(&spki);
            // attributes [0]: none
            w.next()
                .write_tagged_implicit(yasna::Tag::context(0), |w| w.write_set(|_| {}));
        })
    });
    let signature = key
        .sign(&info)
        .map_err(|e| Error::Failed(msg!("cannot sign the certificate request: {e}")))?;
    let der = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&info);
            w.next().write_sequence(|w| {
                w.next()
                    .write_oid(&ObjectIdentifier::from_slice(OID_ECDSA_SHA256));
            });
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
        })
    });
    Ok(pem_encode("CERTIFICATE REQUEST", &der))
}

fn write_rdn(w: yasna::DERWriter, oid: &[u64], value: &str) {
    w.write_set(|w| {
        w.next().write_sequence(|w| {
            w.next().write_oid(&ObjectIdentifier::from_slice(oid));
            w.next().write_utf8_string(value);
        });
    });
}

/// PEM with LF line endings, as kubectl and openssl write it (the crate's default is CRLF).
fn pem_encode(label: &str, der: &[u8]) -> String {
    ::pem::encode_config(
        &::pem::Pem::new(label, der),
        ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
    )
}

/// What an issued certificate says.
#[derive(Debug)]
pub struct Issued {
    pub not_after: String,
}

/// Checks that the PEM certificate `cert_pem` carries `key`'s public key and exactly the subject
/// CN=`user`, O=`groups` that was requested.
pub fn check_issued(
    cert_pem: &[u8],
    key: &KeyPair,
    user: &str,
    groups: &[String],
) -> Result<Issued, Error> {
    let bad = |why: Message| Error::Failed(msg!("the certificate issued for '{user}' {why}"));
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(cert_pem).map_err(|e| bad(msg!("is not PEM: {e}")))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| bad(msg!("cannot be parsed: {e}")))?;
    if cert.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err(bad(msg!("does not match the generated private key")));
    }
    let names = subject_names(&cert).map_err(|e| bad(msg!("has an unreadable subject: {e}")))?;
    if names.common_names != [user.to_string()] {
        return Err(bad(msg!(
            "has CN={} instead of CN={user}",
            names.common_names.join(",")
        )));
    }
    let mut got = names.organizations.clone();
    let mut want = groups.to_vec();
    got.sort();
    want.sort();
    if got != want {
        return Err(bad(msg!(
            "has groups O={} instead of O={}",
            names.organizations.join(","),
            groups.join(",")
        )));
    }
    Ok(Issued {
        not_after: cert.validity().not_after.to_string(),
    })
}

/// CN and O values of a certificate's subject.
pub struct SubjectNames {
    pub common_names: Vec<String>,
    pub organizations: Vec<String>,
}

pub fn subject_names(cert: &X509Certificate<'_>) -> Result<SubjectNames, String> {
    let mut common_names = Vec::new();
    for attr in cert.subject().iter_common_name() {
        common_names.push(attr.as_str().map_err(|e| e.to_string())?.to_string());
    }
    let mut organizations = Vec::new();
    for attr in cert.subject().iter_organization() {
        organizations.push(attr.as_str().map_err(|e| e.to_string())?.to_string());
    }
    Ok(SubjectNames {
        common_names,
        organizations,
    })
}

/// The O= values (groups) of a PEM client certificate.
pub fn groups_of_certificate(cert_pem: &[u8]) -> Result<Vec<String>, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem).map_err(|e| e.to_string())?;
    let cert = pem.parse_x509().map_err(|e| e.to_string())?;
    Ok(subject_names(&cert)?.organizations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::certification_request::X509CertificationRequest;

    #[test]
    fn pem_has_lf_lines_of_64_and_round_trips() {
        let der: Vec<u8> = (0..=255).collect();
        let text = pem_encode("CERTIFICATE REQUEST", &der);
        assert!(!text.contains('\r'), "{text:?}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE REQUEST-----");
        assert_eq!(*lines.last().unwrap(), "-----END CERTIFICATE REQUEST-----");
        assert!(lines[1..lines.len() - 1].iter().all(|l| l.len() <= 64));
        assert_eq!(lines[1].len(), 64);
        assert_eq!(::pem::parse(&text).unwrap().contents(), der.as_slice());
    }

    #[test]
    fn request_carries_every_group_and_a_valid_signature() {
        let key = generate_key().unwrap();
        let groups = vec!["devs".to_string(), "k8s".to_string()];
        let pem = request_pem(&key, "alice", &groups).unwrap();
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        assert_eq!(parsed.label, "CERTIFICATE REQUEST");
        let (_, csr) = X509CertificationRequest::from_der(&parsed.contents).unwrap();
        let subject = &csr.certification_request_info.subject;
        let cns: Vec<_> = subject
            .iter_common_name()
            .map(|a| a.as_str().unwrap())
            .collect();
        let os: Vec<_> = subject
            .iter_organization()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(cns, ["alice"]);
        assert_eq!(os, ["devs", "k8s"]);
        assert_eq!(
            csr.certification_request_info.subject_pki.raw,
            key.subject_public_key_info().as_slice()
        );
        csr.verify_signature().expect("self-signature verifies");
    }

    #[test]
    fn openssl_accepts_the_request() {
        let key = generate_key().unwrap();
        let pem = request_pem(&key, "bob", &["g1".to_string()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csr");
        std::fs::write(&path, pem).unwrap();
        let Ok(out) = std::process::Command::new("openssl")
            .args(["req", "-noout", "-verify", "-subject", "-in"])
            .arg(&path)
            .output()
        else {
            panic!("openssl is needed for this test (Debian package openssl)");
        };
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains("CN = bob, O = g1") || text.contains("CN=bob, O=g1"),
            "{text}"
        );
    }
}
