//! Signing an image digest as Glance expects (`portcullis sign`): the key
//! type follows from the private key, RSA signs RSASSA-PSS with MGF1 over
//! the message hash and the maximum salt (what OpenSSL and the Glance docs
//! do, and what every cursive version accepts), ECDSA and DSA produce DER.
//!
//! Keys are read from unencrypted PEM: PKCS#8 (`PRIVATE KEY`), PKCS#1
//! (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) and OpenSSL's traditional
//! `DSA PRIVATE KEY`. This module must not hash image data (it signs a
//! [`Digest`]) nor log key material.

use std::collections::BTreeMap;

use ecdsa::signature::hazmat::{PrehashSigner, RandomizedPrehashSigner};
use rsa::BoxedUint;

use super::algorithm::{Curve, HashMethod, KeyType};
use super::params::{CERTIFICATE_UUID, HASH_METHOD, KEY_TYPE, SIGNATURE};
use super::{base64, dersig, pem, tlv};
use crate::hash::Digest;

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const DSA: &str = "1.2.840.10040.4.1";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const ED25519: &str = "1.3.101.112";

/// Why a key cannot sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// No private-key PEM block in the file.
    #[error(
        "no PEM private key found (expected a block labelled PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY or DSA PRIVATE KEY)"
    )]
    NoKey,
    /// The key is encrypted.
    #[error("the private key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN.pem)")]
    Encrypted,
    /// A key with no Glance key type.
    #[error(
        "{what} keys cannot sign Glance images (key types are RSA-PSS, DSA, ECC_SECP384R1, ECC_SECP521R1 and the ECC_SECT* binary curves)"
    )]
    NoKeyType {
        /// What the key is.
        what: String,
    },
    /// A binary-curve key in a build without OpenSSL.
    #[error(
        "{curve} keys need the cargo feature binary-curves, which this build of portcullis lacks"
    )]
    NotBuilt {
        /// The curve.
        curve: Curve,
    },
    /// The key file is malformed.
    #[error("the private key is malformed: {0}")]
    Malformed(String),
    /// Signing failed (bad key parameters, RNG failure).
    #[error("signing failed: {0}")]
    Signing(String),
    /// The digest's algorithm is not a Glance hash method.
    #[error("digest algorithm {0} is not a Glance hash method")]
    Digest(crate::hash::HashAlgorithm),
}

enum Inner {
    Rsa(Box<rsa::PrivateKey>),
    P384(p384::ecdsa::SigningKey),
    P521(Box<p521::ecdsa::SigningKey>),
    Dsa(Box<dsa::SigningKey>),
    #[cfg(feature = "binary-curves")]
    OpenSsl(super::openssl_ec::OpenSslSigningKey, Curve),
}

/// A private key that can sign image digests.
pub struct SigningKey {
    inner: Inner,
}

impl std::fmt::Debug for SigningKey {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_type", &self.key_type())
            .finish_non_exhaustive()
    }
}

fn malformed(what: impl std::fmt::Display) -> SignError {
    SignError::Malformed(what.to_string())
}

fn read_oid(input: &[u8]) -> Result<(String, &[u8]), SignError> {
    let (oid, rest) = tlv::expect(input, tlv::OID).map_err(malformed)?;
    let text = tlv::oid_to_string(oid.value).ok_or_else(|| malformed("bad OID"))?;
    Ok((text, rest))
}

fn integer(input: &[u8]) -> Result<(&[u8], &[u8]), SignError> {
    let (element, rest) = tlv::expect(input, tlv::INTEGER).map_err(malformed)?;
    let magnitude = dersig::positive_integer(element.value)
        .map_err(|_| malformed("INTEGER is not a minimal positive integer"))?;
    Ok((magnitude, rest))
}

impl SigningKey {
    /// Reads the first private key in a PEM file.
    ///
    /// Fails with [`SignError::NoKey`], [`SignError::Encrypted`],
    /// [`SignError::NoKeyType`] (P-256, Ed25519...), [`SignError::NotBuilt`]
    /// or [`SignError::Malformed`].
    pub fn from_pem(text: &str) -> Result<SigningKey, SignError> {
        let block = pem::blocks(text)
            .into_iter()
            .filter_map(Result::ok)
            .find(|block| block.label.ends_with("PRIVATE KEY"))
            .ok_or(SignError::NoKey)?;
        if block.label == "ENCRYPTED PRIVATE KEY" || text.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(SignError::Encrypted);
        }
        let der = block.decode().map_err(malformed)?;
        let inner = match block.label {
            "PRIVATE KEY" => Self::pkcs8(text, &der)?,
            "RSA PRIVATE KEY" => Self::rsa_pkcs1(&der)?,
            "EC PRIVATE KEY" => Self::sec1(text, &der, None)?,
            "DSA PRIVATE KEY" => Self::dsa_traditional(&der)?,
            other => {
                return Err(SignError::NoKeyType {
                    what: format!("PEM {other:?}"),
                });
            }
        };
        Ok(SigningKey { inner })
    }

    fn pkcs8(text: &str, der: &[u8]) -> Result<Inner, SignError> {
        let (outer, _) = tlv::expect(der, tlv::SEQUENCE).map_err(malformed)?;
        let (_version, rest) = integer(outer.value)?;
        let (algorithm, rest) = tlv::expect(rest, tlv::SEQUENCE).map_err(malformed)?;
        let (private_key, _) = tlv::expect(rest, tlv::OCTET_STRING).map_err(malformed)?;
        let (oid, params) = read_oid(algorithm.value)?;
        match oid.as_str() {
            RSA_ENCRYPTION | RSASSA_PSS => Self::rsa_pkcs1(private_key.value),
            EC_PUBLIC_KEY => {
                let (curve_oid, _) = read_oid(params)?;
                Self::sec1(text, private_key.value, Some(curve_oid))
            }
            DSA => {
                use rsa::pkcs8::DecodePrivateKey;
                dsa::SigningKey::from_pkcs8_der(der)
                    .map(|key| Inner::Dsa(Box::new(key)))
                    .map_err(malformed)
            }
            ED25519 => Err(SignError::NoKeyType {
                what: "Ed25519".to_owned(),
            }),
            other => Err(SignError::NoKeyType {
                what: format!("algorithm {other}"),
            }),
        }
    }

    fn rsa_pkcs1(der: &[u8]) -> Result<Inner, SignError> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        rsa::PrivateKey::from_pkcs1_der(der)
            .map(|key| Inner::Rsa(Box::new(key)))
            .map_err(malformed)
    }

    /// SEC1 `ECPrivateKey`; the curve comes from PKCS#8 or the [0] field.
    fn sec1(text: &str, der: &[u8], curve_oid: Option<String>) -> Result<Inner, SignError> {
        let curve_oid = match curve_oid {
            Some(oid) => oid,
            None => {
                let (outer, _) = tlv::expect(der, tlv::SEQUENCE).map_err(malformed)?;
                let (_version, rest) = integer(outer.value)?;
                let (_key, mut rest) = tlv::expect(rest, tlv::OCTET_STRING).map_err(malformed)?;
                let mut found = None;
                while !rest.is_empty() {
                    let (field, after) = tlv::read(rest).map_err(malformed)?;
                    rest = after;
                    if field.tag == 0xa0 {
                        found = Some(read_oid(field.value)?.0);
                    }
                }
                found.ok_or_else(|| malformed("EC key without a named curve"))?
            }
        };
        let curve = Curve::from_oid(&curve_oid).ok_or_else(|| SignError::NoKeyType {
            what: format!("EC curve {curve_oid}"),
        })?;
        match curve {
            Curve::P384 => p384::SecretKey::from_sec1_der(der)
                .map(|secret| Inner::P384(p384::ecdsa::SigningKey::from(secret)))
                .map_err(malformed),
            Curve::P521 => p521::SecretKey::from_sec1_der(der)
                .map(|secret| Inner::P521(Box::new(p521::ecdsa::SigningKey::from(secret))))
                .map_err(malformed),
            Curve::P256 => Err(SignError::NoKeyType {
                what: "P-256".to_owned(),
            }),
            binary => Self::binary(text, binary),
        }
    }

    #[cfg(feature = "binary-curves")]
    fn binary(text: &str, curve: Curve) -> Result<Inner, SignError> {
        let key =
            super::openssl_ec::OpenSslSigningKey::from_pem(text.as_bytes()).map_err(malformed)?;
        if key.curve() != Some(curve) {
            return Err(malformed("OpenSSL read another curve than the PEM names"));
        }
        Ok(Inner::OpenSsl(key, curve))
    }

    #[cfg(not(feature = "binary-curves"))]
    fn binary(_text: &str, curve: Curve) -> Result<Inner, SignError> {
        Err(SignError::NotBuilt { curve })
    }

    /// OpenSSL's `DSA PRIVATE KEY`: SEQUENCE { 0, p, q, g, y, x }.
    fn dsa_traditional(der: &[u8]) -> Result<Inner, SignError> {
        let (outer, _) = tlv::expect(der, tlv::SEQUENCE).map_err(malformed)?;
        let (_version, rest) = tlv::expect(outer.value, tlv::INTEGER).map_err(malformed)?;
        let (p, rest) = integer(rest)?;
        let (q, rest) = integer(rest)?;
        let (g, rest) = integer(rest)?;
        let (y, rest) = integer(rest)?;
        let (x, _) = integer(rest)?;
        let boxed = BoxedUint::from_be_slice_vartime;
        let components = dsa::Components::from_components(boxed(p), boxed(q), boxed(g))
            .map_err(|_| malformed("DSA parameters of a size portcullis cannot sign with"))?;
        let verifying = dsa::VerifyingKey::from_components(components, boxed(y))
            .map_err(|_| malformed("invalid DSA public key"))?;
        dsa::SigningKey::from_components(verifying, boxed(x))
            .map(|key| Inner::Dsa(Box::new(key)))
            .map_err(|_| malformed("invalid DSA private key"))
    }

    /// The Glance key type this key signs as.
    pub fn key_type(&self) -> KeyType {
        match &self.inner {
            Inner::Rsa(_) => KeyType::RsaPss,
            Inner::P384(_) => KeyType::EccSecp384r1,
            Inner::P521(_) => KeyType::EccSecp521r1,
            Inner::Dsa(_) => KeyType::Dsa,
            #[cfg(feature = "binary-curves")]
            Inner::OpenSsl(_, curve) => KeyType::for_curve(*curve).unwrap_or(KeyType::EccSecp521r1),
        }
    }

    /// Signs a digest of the image; returns the raw signature bytes.
    ///
    /// Fails with [`SignError::Digest`] for an MD5 digest and
    /// [`SignError::Signing`] when the key cannot sign.
    pub fn sign_digest(&self, digest: &Digest) -> Result<Vec<u8>, SignError> {
        let method = HashMethod::from_algorithm(digest.algorithm())
            .ok_or(SignError::Digest(digest.algorithm()))?;
        let prehash = digest.as_bytes();
        let failed = |err: ecdsa::signature::Error| SignError::Signing(err.to_string());
        match &self.inner {
            Inner::Rsa(key) => sign_pss_max_salt(key, method, prehash),
            Inner::P384(key) => {
                let sig: p384::ecdsa::Signature = key.sign_prehash(prehash).map_err(failed)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            Inner::P521(key) => {
                let sig: p521::ecdsa::Signature = key.sign_prehash(prehash).map_err(failed)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            Inner::Dsa(key) => {
                let sig = match method {
                    HashMethod::Sha224 => key.sign_prehashed_rfc6979::<sha2::Sha224>(prehash),
                    HashMethod::Sha256 => key.sign_prehashed_rfc6979::<sha2::Sha256>(prehash),
                    HashMethod::Sha384 => key.sign_prehashed_rfc6979::<sha2::Sha384>(prehash),
                    HashMethod::Sha512 => key.sign_prehashed_rfc6979::<sha2::Sha512>(prehash),
                }
                .map_err(failed)?;
                Ok(dersig::encode(
                    &sig.r().to_be_bytes(),
                    &sig.s().to_be_bytes(),
                ))
            }
            #[cfg(feature = "binary-curves")]
            Inner::OpenSsl(key, _) => {
                let (r, s) = key.sign_prehash(prehash).map_err(SignError::Signing)?;
                Ok(dersig::encode(&r, &s))
            }
        }
    }
}

/// RSASSA-PSS, MGF1 over the message hash, salt of the maximum length
/// `emLen - hLen - 2` (OpenSSL's default; the only length legacy cursive accepts).
fn sign_pss_max_salt(
    key: &rsa::PrivateKey,
    method: HashMethod,
    prehash: &[u8],
) -> Result<Vec<u8>, SignError> {
    fn sign<D>(key: &rsa::PrivateKey, prehash: &[u8]) -> Result<Vec<u8>, SignError>
    where
        D: digest::Digest + digest::FixedOutputReset,
    {
        use ecdsa::signature::SignatureEncoding as _;
        use rsa::traits::PublicKeyParts;
        let mod_bits = key.n().bit_width_vartime() as usize;
        let em_len = (mod_bits - 1).div_ceil(8);
        let h_len = <D as digest::Digest>::output_size();
        let salt_len = em_len.checked_sub(h_len + 2).ok_or_else(|| {
            SignError::Signing("the RSA key is too small for this hash".to_owned())
        })?;
        let signer = rsa::pss::SigningKey::<D>::new_with_salt_len(key.clone(), salt_len);
        let mut rng = getrandom::SysRng;
        let signature = signer
            .sign_prehash_with_rng(&mut rng, prehash)
            .map_err(|err| SignError::Signing(err.to_string()))?;
        Ok(signature.to_vec())
    }
    match method {
        HashMethod::Sha224 => sign::<sha2::Sha224>(key, prehash),
        HashMethod::Sha256 => sign::<sha2::Sha256>(key, prehash),
        HashMethod::Sha384 => sign::<sha2::Sha384>(key, prehash),
        HashMethod::Sha512 => sign::<sha2::Sha512>(key, prehash),
    }
}

/// The four `img_signature*` properties for a signature.
pub fn signature_properties(
    signature: &[u8],
    hash_method: HashMethod,
    key_type: KeyType,
    certificate_id: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (SIGNATURE.to_owned(), base64::encode(signature)),
        (HASH_METHOD.to_owned(), hash_method.name().to_owned()),
        (KEY_TYPE.to_owned(), key_type.name().to_owned()),
        (CERTIFICATE_UUID.to_owned(), certificate_id.to_owned()),
    ])
}
