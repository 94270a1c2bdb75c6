//! Checking that a candidate issuer's key signed a certificate, in the two
//! ways portcullis knows.
//!
//! [`IssuerPolicy::Cursive`] does what cursive does: the issuer's key class
//! picks the scheme (RSA → always PKCS#1 v1.5, EC → ECDSA, anything else →
//! the DSA path), with the hash named by the certificate, SHA-1 included;
//! issuers it cannot handle (Ed25519) are a crash there and an error here.
//! [`IssuerPolicy::Strict`] follows the certificate's signatureAlgorithm:
//! PKCS#1 v1.5, RSASSA-PSS (with its parameters), ECDSA, DSA, Ed25519;
//! SHA-1 and MD5 signatures are rejected. This module must not build chains.

use ecdsa::signature::hazmat::PrehashVerifier;
use sha2::Digest as _;

use super::cert::Cert;
use super::dersig;
use super::key::{self, EcKey, PublicKey};
use super::tlv;

/// How issuer signatures are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IssuerPolicy {
    /// cursive's class-based checks.
    Cursive,
    /// Algorithm-driven checks, SHA-1 and MD5 rejected.
    Strict,
}

/// Why a candidate issuer did not sign a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EdgeFailure {
    /// The signature does not verify with this key.
    DoesNotVerify(String),
    /// Strict: the signature uses a hash portcullis no longer trusts.
    WeakAlgorithm(String),
    /// Strict: an algorithm portcullis cannot check.
    Unsupported(String),
    /// Cursive: cursive crashes on this issuer (Ed25519 key, unknown algorithm).
    Crash(String),
}

impl std::fmt::Display for EdgeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EdgeFailure::DoesNotVerify(why)
            | EdgeFailure::WeakAlgorithm(why)
            | EdgeFailure::Unsupported(why)
            | EdgeFailure::Crash(why) => f.write_str(why),
        }
    }
}

/// A hash used in certificate signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CertHash {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl CertHash {
    fn from_oid(oid: &str) -> Option<CertHash> {
        Some(match oid {
            "1.2.840.113549.2.5" => CertHash::Md5,
            "1.3.14.3.2.26" => CertHash::Sha1,
            "2.16.840.1.101.3.4.2.4" => CertHash::Sha224,
            "2.16.840.1.101.3.4.2.1" => CertHash::Sha256,
            "2.16.840.1.101.3.4.2.2" => CertHash::Sha384,
            "2.16.840.1.101.3.4.2.3" => CertHash::Sha512,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            CertHash::Md5 => "MD5",
            CertHash::Sha1 => "SHA-1",
            CertHash::Sha224 => "SHA-224",
            CertHash::Sha256 => "SHA-256",
            CertHash::Sha384 => "SHA-384",
            CertHash::Sha512 => "SHA-512",
        }
    }

    fn is_weak(self) -> bool {
        matches!(self, CertHash::Md5 | CertHash::Sha1)
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            CertHash::Md5 => md5::Md5::digest(data).to_vec(),
            CertHash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            CertHash::Sha224 => sha2::Sha224::digest(data).to_vec(),
            CertHash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            CertHash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            CertHash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// RSASSA-PSS parameters from a signatureAlgorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PssParams {
    hash: CertHash,
    mgf1_hash: CertHash,
    salt_len: usize,
}

/// A certificate signatureAlgorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SignatureAlgorithm {
    RsaPkcs1(CertHash),
    RsaPss(Result<PssParams, String>),
    Ecdsa(CertHash),
    Dsa(CertHash),
    Ed25519,
    Unknown(String),
}

fn classify(oid: &str, params: Option<&[u8]>) -> SignatureAlgorithm {
    use SignatureAlgorithm as A;
    match oid {
        "1.2.840.113549.1.1.4" => A::RsaPkcs1(CertHash::Md5),
        "1.2.840.113549.1.1.5" => A::RsaPkcs1(CertHash::Sha1),
        "1.2.840.113549.1.1.14" => A::RsaPkcs1(CertHash::Sha224),
        "1.2.840.113549.1.1.11" => A::RsaPkcs1(CertHash::Sha256),
        "1.2.840.113549.1.1.12" => A::RsaPkcs1(CertHash::Sha384),
        "1.2.840.113549.1.1.13" => A::RsaPkcs1(CertHash::Sha512),
        "1.2.840.113549.1.1.10" => A::RsaPss(pss_params(params.unwrap_or(&[]))),
        "1.2.840.10045.4.1" => A::Ecdsa(CertHash::Sha1),
        "1.2.840.10045.4.3.1" => A::Ecdsa(CertHash::Sha224),
        "1.2.840.10045.4.3.2" => A::Ecdsa(CertHash::Sha256),
        "1.2.840.10045.4.3.3" => A::Ecdsa(CertHash::Sha384),
        "1.2.840.10045.4.3.4" => A::Ecdsa(CertHash::Sha512),
        "1.2.840.10040.4.3" => A::Dsa(CertHash::Sha1),
        "2.16.840.1.101.3.4.3.1" => A::Dsa(CertHash::Sha224),
        "2.16.840.1.101.3.4.3.2" => A::Dsa(CertHash::Sha256),
        "2.16.840.1.101.3.4.3.3" => A::Dsa(CertHash::Sha384),
        "2.16.840.1.101.3.4.3.4" => A::Dsa(CertHash::Sha512),
        "1.3.101.112" => A::Ed25519,
        other => A::Unknown(other.to_owned()),
    }
}

/// Reads the hash OID out of an AlgorithmIdentifier.
fn hash_of_algorithm_identifier(der: &[u8]) -> Result<CertHash, String> {
    let (sequence, _) = tlv::expect(der, tlv::SEQUENCE).map_err(|e| e.to_string())?;
    let (oid, _) = tlv::expect(sequence.value, tlv::OID).map_err(|e| e.to_string())?;
    let oid = tlv::oid_to_string(oid.value).ok_or("malformed hash OID")?;
    CertHash::from_oid(&oid).ok_or_else(|| format!("unknown hash {oid}"))
}

/// Parses RSASSA-PSS-params (RFC 4055), with its SHA-1 defaults.
fn pss_params(der: &[u8]) -> Result<PssParams, String> {
    let (sequence, _) = tlv::expect(der, tlv::SEQUENCE).map_err(|e| e.to_string())?;
    let mut params = PssParams {
        hash: CertHash::Sha1,
        mgf1_hash: CertHash::Sha1,
        salt_len: 20,
    };
    let mut rest = sequence.value;
    while !rest.is_empty() {
        let (field, after) = tlv::read(rest).map_err(|e| e.to_string())?;
        rest = after;
        match field.tag {
            0xa0 => params.hash = hash_of_algorithm_identifier(field.value)?,
            0xa1 => {
                let (mgf, _) =
                    tlv::expect(field.value, tlv::SEQUENCE).map_err(|e| e.to_string())?;
                let (oid, mgf_params) =
                    tlv::expect(mgf.value, tlv::OID).map_err(|e| e.to_string())?;
                if tlv::oid_to_string(oid.value).as_deref() != Some("1.2.840.113549.1.1.8") {
                    return Err("mask generation function is not MGF1".to_owned());
                }
                params.mgf1_hash = hash_of_algorithm_identifier(mgf_params)?;
            }
            0xa2 => {
                let (salt, _) =
                    tlv::expect(field.value, tlv::INTEGER).map_err(|e| e.to_string())?;
                let magnitude = dersig::positive_integer(salt.value)
                    .map_err(|_| "malformed salt length".to_owned())?;
                if magnitude.len() > 4 {
                    return Err("salt length too large".to_owned());
                }
                params.salt_len = magnitude
                    .iter()
                    .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            }
            0xa3 => {
                let (trailer, _) =
                    tlv::expect(field.value, tlv::INTEGER).map_err(|e| e.to_string())?;
                if trailer.value != [1] {
                    return Err("trailer field is not 1 (0xBC)".to_owned());
                }
            }
            tag => return Err(format!("unexpected RSASSA-PSS parameter tag 0x{tag:02x}")),
        }
    }
    Ok(params)
}

/// Checks that `issuer_key` signed `cert`.
///
/// Fails with an [`EdgeFailure`] saying why not.
pub(crate) fn check_issued_by(
    cert: &Cert,
    issuer_key: &PublicKey,
    policy: IssuerPolicy,
) -> Result<(), EdgeFailure> {
    let (oid, params) = cert.signature_algorithm();
    let algorithm = classify(&oid, params.as_deref());
    let tbs = cert.tbs();
    let signature = cert.signature_bytes();
    match policy {
        IssuerPolicy::Cursive => check_cursive(&algorithm, tbs, signature, issuer_key),
        IssuerPolicy::Strict => {
            if !cert.algorithms_agree() {
                return Err(EdgeFailure::DoesNotVerify(
                    "the certificate's inner and outer signature algorithms differ".to_owned(),
                ));
            }
            check_strict(&algorithm, tbs, signature, issuer_key)
        }
    }
}

fn does_not_verify(scheme: &str, key: &PublicKey) -> EdgeFailure {
    EdgeFailure::DoesNotVerify(format!(
        "its {scheme} signature does not verify with {} key",
        key.description()
    ))
}

fn check_cursive(
    algorithm: &SignatureAlgorithm,
    tbs: &[u8],
    signature: &[u8],
    key: &PublicKey,
) -> Result<(), EdgeFailure> {
    use SignatureAlgorithm as A;
    // cryptography's `signature_hash_algorithm`: None for EdDSA, an error
    // for algorithms it does not know.
    let hash = match algorithm {
        A::RsaPkcs1(hash) | A::Ecdsa(hash) | A::Dsa(hash) => Some(*hash),
        A::RsaPss(Ok(params)) => Some(params.hash),
        A::RsaPss(Err(reason)) => {
            return Err(EdgeFailure::Crash(format!(
                "its RSASSA-PSS parameters are malformed ({reason})"
            )));
        }
        A::Ed25519 => None,
        A::Unknown(oid) => {
            return Err(EdgeFailure::Crash(format!(
                "it is signed with algorithm {oid}, which cryptography does not know"
            )));
        }
    };
    let crash_no_hash = || {
        EdgeFailure::Crash(
            "it is signed with Ed25519, which has no separate hash, and cursive passes none"
                .to_owned(),
        )
    };
    if hash == Some(CertHash::Md5) {
        return Err(EdgeFailure::Crash(
            "portcullis does not check MD5 certificate signatures".to_owned(),
        ));
    }
    match key {
        // cursive always uses PKCS#1 v1.5 for RSA issuers, so a PSS-signed
        // certificate never verifies.
        PublicKey::Rsa(rsa_key) => {
            let hash = hash.ok_or_else(crash_no_hash)?;
            if verify_pkcs1(rsa_key, hash, tbs, signature) {
                Ok(())
            } else {
                Err(does_not_verify("PKCS#1 v1.5", key))
            }
        }
        PublicKey::Ec { key: ec, .. } => {
            let hash = hash.ok_or_else(crash_no_hash)?;
            verify_ecdsa(ec, &hash.digest(tbs), signature).map_err(|why| match why {
                EcdsaFailure::Unusable(reason) => EdgeFailure::Crash(reason),
                EcdsaFailure::Invalid => does_not_verify("ECDSA", key),
            })
        }
        PublicKey::Dsa { key: dsa_key, .. } => {
            let hash = hash.ok_or_else(crash_no_hash)?;
            if verify_dsa(dsa_key, &hash.digest(tbs), signature) {
                Ok(())
            } else {
                Err(does_not_verify("DSA", key))
            }
        }
        PublicKey::Ed25519(_) | PublicKey::Other(_) => Err(EdgeFailure::Crash(format!(
            "the issuer holds {} key, which cursive sends down its DSA path and crashes",
            key.description()
        ))),
    }
}

fn check_strict(
    algorithm: &SignatureAlgorithm,
    tbs: &[u8],
    signature: &[u8],
    key: &PublicKey,
) -> Result<(), EdgeFailure> {
    use SignatureAlgorithm as A;
    let weak = |scheme: &str, hash: CertHash| {
        EdgeFailure::WeakAlgorithm(format!(
            "it is signed with {scheme} over {}, which strict mode rejects",
            hash.name()
        ))
    };
    let wrong_key = |scheme: &str| {
        EdgeFailure::DoesNotVerify(format!(
            "it is signed with {scheme} but the candidate issuer holds {} key",
            key.description()
        ))
    };
    match (algorithm, key) {
        (A::RsaPkcs1(hash), PublicKey::Rsa(rsa_key)) => {
            if hash.is_weak() {
                return Err(weak("RSA PKCS#1 v1.5", *hash));
            }
            if verify_pkcs1(rsa_key, *hash, tbs, signature) {
                Ok(())
            } else {
                Err(does_not_verify("PKCS#1 v1.5", key))
            }
        }
        (A::RsaPss(params), PublicKey::Rsa(rsa_key)) => {
            let params = params.as_ref().map_err(|reason| {
                EdgeFailure::Unsupported(format!(
                    "its RSASSA-PSS parameters are unusable ({reason})"
                ))
            })?;
            if params.hash.is_weak() {
                return Err(weak("RSASSA-PSS", params.hash));
            }
            if params.mgf1_hash != params.hash {
                return Err(EdgeFailure::Unsupported(format!(
                    "its RSASSA-PSS signature uses MGF1 with {} but hashes with {}",
                    params.mgf1_hash.name(),
                    params.hash.name()
                )));
            }
            if verify_pss(rsa_key, params, tbs, signature) {
                Ok(())
            } else {
                Err(does_not_verify("RSASSA-PSS", key))
            }
        }
        (A::Ecdsa(hash), PublicKey::Ec { key: ec, .. }) => {
            if hash.is_weak() {
                return Err(weak("ECDSA", *hash));
            }
            verify_ecdsa(ec, &hash.digest(tbs), signature).map_err(|why| match why {
                EcdsaFailure::Unusable(reason) => EdgeFailure::Unsupported(reason),
                EcdsaFailure::Invalid => does_not_verify("ECDSA", key),
            })
        }
        (A::Dsa(hash), PublicKey::Dsa { key: dsa_key, .. }) => {
            if hash.is_weak() {
                return Err(weak("DSA", *hash));
            }
            if verify_dsa(dsa_key, &hash.digest(tbs), signature) {
                Ok(())
            } else {
                Err(does_not_verify("DSA", key))
            }
        }
        (A::Ed25519, PublicKey::Ed25519(ed_key)) => {
            let ok = <[u8; 64]>::try_from(signature)
                .map(|bytes| ed25519_dalek::Signature::from_bytes(&bytes))
                .is_ok_and(|sig| ed_key.verify_strict(tbs, &sig).is_ok());
            if ok {
                Ok(())
            } else {
                Err(does_not_verify("Ed25519", key))
            }
        }
        (A::Unknown(oid), _) => Err(EdgeFailure::Unsupported(format!(
            "it is signed with algorithm {oid}, which portcullis does not check"
        ))),
        (A::RsaPkcs1(_), _) => Err(wrong_key("RSA PKCS#1 v1.5")),
        (A::RsaPss(_), _) => Err(wrong_key("RSASSA-PSS")),
        (A::Ecdsa(_), _) => Err(wrong_key("ECDSA")),
        (A::Dsa(_), _) => Err(wrong_key("DSA")),
        (A::Ed25519, _) => Err(wrong_key("Ed25519")),
    }
}

fn verify_pkcs1(key: &rsa::PublicKey, hash: CertHash, tbs: &[u8], signature: &[u8]) -> bool {
    let scheme = match hash {
        CertHash::Md5 => return false,
        CertHash::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
        CertHash::Sha224 => rsa::Pkcs1v15Sign::new::<sha2::Sha224>(),
        CertHash::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
        CertHash::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
        CertHash::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
    };
    key.verify(scheme, &hash.digest(tbs), signature).is_ok()
}

fn verify_pss(key: &rsa::PublicKey, params: &PssParams, tbs: &[u8], signature: &[u8]) -> bool {
    let digest = params.hash.digest(tbs);
    let salt = Some(params.salt_len);
    match params.hash {
        CertHash::Md5 | CertHash::Sha1 => false,
        CertHash::Sha224 => key::verify_pss::<sha2::Sha224>(key, salt, &digest, signature),
        CertHash::Sha256 => key::verify_pss::<sha2::Sha256>(key, salt, &digest, signature),
        CertHash::Sha384 => key::verify_pss::<sha2::Sha384>(key, salt, &digest, signature),
        CertHash::Sha512 => key::verify_pss::<sha2::Sha512>(key, salt, &digest, signature),
    }
}

enum EcdsaFailure {
    /// The key cannot be used in this build.
    Unusable(String),
    /// The signature is malformed or does not verify.
    Invalid,
}

fn verify_ecdsa(key: &EcKey, digest: &[u8], signature: &[u8]) -> Result<(), EcdsaFailure> {
    fn rust_crypto<C>(
        key: &ecdsa::VerifyingKey<C>,
        digest: &[u8],
        r: &[u8],
        s: &[u8],
    ) -> Result<(), EcdsaFailure>
    where
        C: ecdsa::EcdsaCurve + ecdsa::elliptic_curve::CurveArithmetic,
    {
        let sig = key::ecdsa_signature::<C>(r, s).ok_or(EcdsaFailure::Invalid)?;
        key.verify_prehash(digest, &sig)
            .map_err(|_| EcdsaFailure::Invalid)
    }
    let der = dersig::parse(signature).map_err(|_| EcdsaFailure::Invalid)?;
    match key {
        EcKey::P256(key) => rust_crypto(key, digest, der.r, der.s),
        EcKey::P384(key) => rust_crypto(key, digest, der.r, der.s),
        EcKey::P521(key) => rust_crypto(key, digest, der.r, der.s),
        #[cfg(feature = "binary-curves")]
        EcKey::OpenSsl(key) => {
            let sig = super::openssl_ec::OpenSslSignature::from_magnitudes(der.r, der.s)
                .ok_or(EcdsaFailure::Invalid)?;
            if key.verify_prehash(digest, &sig) {
                Ok(())
            } else {
                Err(EcdsaFailure::Invalid)
            }
        }
        #[cfg(not(feature = "binary-curves"))]
        EcKey::NotBuilt(curve) => Err(EcdsaFailure::Unusable(format!(
            "the issuer's key is on {curve}, which this build cannot check (feature binary-curves)"
        ))),
        EcKey::Unsupported(what) => Err(EcdsaFailure::Unusable(format!(
            "the issuer holds {what}, which portcullis cannot check"
        ))),
    }
}

fn verify_dsa(key: &dsa::VerifyingKey, digest: &[u8], signature: &[u8]) -> bool {
    let Ok(der) = dersig::parse(signature) else {
        return false;
    };
    let Some(sig) = dsa::Signature::from_components(
        rsa::BoxedUint::from_be_slice_vartime(der.r),
        rsa::BoxedUint::from_be_slice_vartime(der.s),
    ) else {
        return false;
    };
    key.verify_prehash(digest, &sig).is_ok()
}
