//! A certificate's public key: parsed from the SubjectPublicKeyInfo, checked
//! against the image's key type, and used to verify a precomputed digest.
//!
//! RSA-PSS, DSA and ECDSA on P-256/P-384/P-521 use RustCrypto; binary
//! curves (and other named curves) use OpenSSL behind feature
//! `binary-curves`. Nothing here hashes image data: every check takes a
//! digest computed elsewhere. This module must not fetch certificates.

use ecdsa::elliptic_curve;
use ecdsa::elliptic_curve::array::typenum::Unsigned as _;
use ecdsa::signature;
use ecdsa::signature::hazmat::PrehashVerifier;
use rsa::BoxedUint;

use super::algorithm::{Curve, HashMethod, KeyFamily, KeyType};
use super::dersig;
use super::error::{KeyError, SignatureError};
use super::tlv;

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const DSA: &str = "1.2.840.10040.4.1";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const ED25519: &str = "1.3.101.112";
const ED448: &str = "1.3.101.113";
const X25519: &str = "1.3.101.110";
const X448: &str = "1.3.101.111";

/// Strict mode's floor for RSA moduli and DSA primes (bits).
pub(crate) const MIN_STRICT_BITS: usize = 2048;

/// An elliptic-curve verifying key, by backend.
#[derive(Debug, Clone)]
pub(crate) enum EcKey {
    /// P-256 (RustCrypto).
    P256(p256::ecdsa::VerifyingKey),
    /// P-384 (RustCrypto).
    P384(p384::ecdsa::VerifyingKey),
    /// P-521 (RustCrypto).
    P521(p521::ecdsa::VerifyingKey),
    /// Any other named curve OpenSSL can load (binary curves among them).
    #[cfg(feature = "binary-curves")]
    OpenSsl(super::openssl_ec::OpenSslEcKey),
    /// A binary curve in a build without OpenSSL.
    #[cfg(not(feature = "binary-curves"))]
    NotBuilt(Curve),
    /// A curve portcullis cannot use (unknown OID, explicit parameters).
    Unsupported(String),
}

/// A certificate's public key.
#[derive(Debug, Clone)]
pub(crate) enum PublicKey {
    /// RSA (from rsaEncryption or RSASSA-PSS SPKI; both treated alike, as cursive).
    Rsa(rsa::PublicKey),
    /// DSA, with the size of p.
    Dsa {
        /// The key.
        key: dsa::VerifyingKey,
        /// Bits in p.
        p_bits: usize,
    },
    /// ECDSA on a named curve.
    Ec {
        /// The curve, when portcullis knows its name.
        curve: Option<Curve>,
        /// The curve's OID, dotted.
        curve_oid: String,
        /// The key.
        key: EcKey,
    },
    /// Ed25519 (certificate issuers only; never an image key type).
    Ed25519(ed25519_dalek::VerifyingKey),
    /// Anything else (Ed448, X25519, unknown algorithms).
    Other(String),
}

/// Reads a BIT STRING's contents, which must have no unused bits.
fn bit_string_bytes(value: &[u8]) -> Result<&[u8], String> {
    match value.split_first() {
        Some((0, rest)) => Ok(rest),
        Some((unused, _)) => Err(format!("BIT STRING has {unused} unused bits")),
        None => Err("empty BIT STRING".to_owned()),
    }
}

/// Reads a DER INTEGER that must be positive; returns its magnitude.
fn positive_integer(input: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (element, rest) = tlv::expect(input, tlv::INTEGER).map_err(|err| err.to_string())?;
    let magnitude = dersig::positive_integer(element.value)
        .map_err(|problem| format!("INTEGER is not a minimal positive integer ({problem:?})"))?;
    Ok((magnitude, rest))
}

fn boxed(magnitude: &[u8]) -> BoxedUint {
    BoxedUint::from_be_slice_vartime(magnitude)
}

/// Compares two minimal big-endian magnitudes (no leading zero bytes).
fn less_than(a: &[u8], b: &[u8]) -> bool {
    (a.len(), a) < (b.len(), b)
}

fn bit_length(magnitude: &[u8]) -> usize {
    match magnitude.first() {
        None => 0,
        Some(&first) => magnitude.len() * 8 - first.leading_zeros() as usize,
    }
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo.
    ///
    /// Fails with a reason when the structure is malformed; algorithms or
    /// curves portcullis cannot use parse to [`PublicKey::Other`] or
    /// [`EcKey::Unsupported`]/[`EcKey::NotBuilt`] so that the key-type
    /// check can report them precisely.
    pub(crate) fn from_spki(spki: &[u8]) -> Result<PublicKey, String> {
        let err = |e: tlv::ExpectError| e.to_string();
        let (outer, _) = tlv::expect(spki, tlv::SEQUENCE).map_err(err)?;
        let (algorithm, rest) = tlv::expect(outer.value, tlv::SEQUENCE).map_err(err)?;
        let (bits, _) = tlv::expect(rest, tlv::BIT_STRING).map_err(err)?;
        let key_bytes = bit_string_bytes(bits.value)?;
        let (oid, params) = tlv::expect(algorithm.value, tlv::OID).map_err(err)?;
        let oid = tlv::oid_to_string(oid.value).ok_or("malformed algorithm OID")?;
        match oid.as_str() {
            RSA_ENCRYPTION | RSASSA_PSS => Self::rsa(key_bytes),
            DSA => Self::dsa(params, key_bytes),
            EC_PUBLIC_KEY => Self::ec(spki, params, key_bytes),
            ED25519 => {
                let bytes: [u8; 32] = key_bytes
                    .try_into()
                    .map_err(|_| "Ed25519 key is not 32 bytes".to_owned())?;
                ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map(PublicKey::Ed25519)
                    .map_err(|err| format!("invalid Ed25519 key: {err}"))
            }
            ED448 => Ok(PublicKey::Other("an Ed448".to_owned())),
            X25519 => Ok(PublicKey::Other("an X25519".to_owned())),
            X448 => Ok(PublicKey::Other("an X448".to_owned())),
            other => Ok(PublicKey::Other(format!("a {other}"))),
        }
    }

    fn rsa(key_bytes: &[u8]) -> Result<PublicKey, String> {
        let (sequence, _) = tlv::expect(key_bytes, tlv::SEQUENCE).map_err(|err| err.to_string())?;
        let (n, rest) = positive_integer(sequence.value)?;
        let (e, _) = positive_integer(rest)?;
        // No floor here: cursive verifies RSA-512; strict mode's floor is a
        // policy applied by `check_key_type`.
        rsa::PublicKey::new_with_size_limits(boxed(n), boxed(e), 256..=16384)
            .map(PublicKey::Rsa)
            .map_err(|err| format!("invalid RSA key: {err}"))
    }

    fn dsa(params: &[u8], key_bytes: &[u8]) -> Result<PublicKey, String> {
        let (sequence, _) = tlv::expect(params, tlv::SEQUENCE)
            .map_err(|err| format!("DSA key without explicit parameters: {err}"))?;
        let (p, rest) = positive_integer(sequence.value)?;
        let (q, rest) = positive_integer(rest)?;
        let (g, _) = positive_integer(rest)?;
        let (y, _) = positive_integer(key_bytes)?;
        // OpenSSL (and so cursive) only verifies with q of 160, 224 or 256
        // bits and p up to 10000 bits; other sizes are refused here too,
        // which also keeps degenerate parameters away from the arithmetic.
        let (p_bits, q_bits) = (bit_length(p), bit_length(q));
        if ![160, 224, 256].contains(&q_bits) || !(512..=10_000).contains(&p_bits) {
            return Err(format!(
                "DSA parameters with a {p_bits}-bit p and a {q_bits}-bit q are not supported (q must have 160, 224 or 256 bits)"
            ));
        }
        // g and y are residues mod p: anything else is not a DSA key, and
        // the modular arithmetic below needs them at p's precision (a
        // narrower or wider integer trips crypto-bigint's precision checks).
        if !less_than(g, p) || !less_than(y, p) {
            return Err("invalid DSA key: g and y must be smaller than p".to_owned());
        }
        let p = boxed(p);
        let at_p_precision = |magnitude: &[u8]| {
            BoxedUint::from_be_slice(magnitude, p.bits_precision())
                .map_err(|_| "invalid DSA key: a component is wider than p".to_owned())
        };
        let components =
            dsa::Components::from_components_unchecked(p.clone(), boxed(q), at_p_precision(g)?)
                .map_err(|_| "invalid DSA parameters".to_owned())?;
        let key = dsa::VerifyingKey::from_components(components, at_p_precision(y)?)
            .map_err(|_| "invalid DSA public key".to_owned())?;
        Ok(PublicKey::Dsa { key, p_bits })
    }

    fn ec(spki: &[u8], params: &[u8], point: &[u8]) -> Result<PublicKey, String> {
        let Ok((curve_oid, _)) = tlv::expect(params, tlv::OID) else {
            return Ok(PublicKey::Ec {
                curve: None,
                curve_oid: String::new(),
                key: EcKey::Unsupported("an EC key with explicit curve parameters".to_owned()),
            });
        };
        let curve_oid = tlv::oid_to_string(curve_oid.value).ok_or("malformed curve OID")?;
        let curve = Curve::from_oid(&curve_oid);
        let bad_point = |err: signature::Error| format!("invalid EC point: {err}");
        let key = match curve {
            Some(Curve::P256) => {
                EcKey::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad_point)?)
            }
            Some(Curve::P384) => {
                EcKey::P384(p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad_point)?)
            }
            Some(Curve::P521) => {
                EcKey::P521(p521::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad_point)?)
            }
            _ => Self::other_curve(spki, curve, &curve_oid)?,
        };
        Ok(PublicKey::Ec {
            curve,
            curve_oid,
            key,
        })
    }

    #[cfg(feature = "binary-curves")]
    fn other_curve(spki: &[u8], curve: Option<Curve>, curve_oid: &str) -> Result<EcKey, String> {
        match super::openssl_ec::OpenSslEcKey::from_spki(spki) {
            Ok(key) => Ok(EcKey::OpenSsl(key)),
            Err(reason) if curve.is_none() => Ok(EcKey::Unsupported(format!(
                "an EC key on curve {curve_oid} ({reason})"
            ))),
            Err(reason) => Err(format!("invalid EC key: {reason}")),
        }
    }

    #[cfg(not(feature = "binary-curves"))]
    fn other_curve(_spki: &[u8], curve: Option<Curve>, curve_oid: &str) -> Result<EcKey, String> {
        Ok(match curve {
            Some(curve) => EcKey::NotBuilt(curve),
            None => EcKey::Unsupported(format!("an EC key on curve {curve_oid}")),
        })
    }

    /// "an RSA", "a DSA", "an EC (P-256)": for messages.
    pub(crate) fn description(&self) -> String {
        match self {
            PublicKey::Rsa(_) => "an RSA".to_owned(),
            PublicKey::Dsa { .. } => "a DSA".to_owned(),
            PublicKey::Ec {
                curve, curve_oid, ..
            } => match curve {
                Some(curve) => format!("an EC ({curve})"),
                None => format!("an EC ({curve_oid})"),
            },
            PublicKey::Ed25519(_) => "an Ed25519".to_owned(),
            PublicKey::Other(what) => what.clone(),
        }
    }

    /// The key's size in bits (RSA modulus, DSA p), when it has one.
    pub(crate) fn bits(&self) -> Option<usize> {
        match self {
            PublicKey::Rsa(key) => Some(rsa_bits(key)),
            PublicKey::Dsa { p_bits, .. } => Some(*p_bits),
            PublicKey::Ec { .. } | PublicKey::Ed25519(_) | PublicKey::Other(_) => None,
        }
    }
}

fn rsa_bits(key: &rsa::PublicKey) -> usize {
    use rsa::traits::PublicKeyParts;
    key.n().bit_width_vartime() as usize
}

/// Which checks `check_key_type` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyPolicy {
    /// Require the EC curve to be the one the key type names.
    pub(crate) curve_must_match: bool,
    /// Reject RSA and DSA keys under [`MIN_STRICT_BITS`].
    pub(crate) minimum_bits: Option<usize>,
}

/// Checks a certificate key against the image's key type, in cursive's
/// order: key class first, then (strict) curve and size, then whether this
/// build can use the key.
///
/// Fails with [`KeyError::Mismatch`], [`KeyError::CurveMismatch`],
/// [`KeyError::Weak`], [`KeyError::CurveNotBuilt`] or [`KeyError::Unsupported`].
pub(crate) fn check_key_type(
    id: &str,
    key: &PublicKey,
    key_type: KeyType,
    policy: KeyPolicy,
) -> Result<(), KeyError> {
    let mismatch = || KeyError::Mismatch {
        id: id.to_owned(),
        key_type,
        found: key.description(),
    };
    match (key_type.family(), key) {
        (KeyFamily::Rsa, PublicKey::Rsa(_)) | (KeyFamily::Dsa, PublicKey::Dsa { .. }) => {
            if let (Some(minimum), Some(bits)) = (policy.minimum_bits, key.bits())
                && bits < minimum
            {
                return Err(KeyError::Weak {
                    id: id.to_owned(),
                    algorithm: if matches!(key, PublicKey::Rsa(_)) {
                        "RSA"
                    } else {
                        "DSA"
                    },
                    bits,
                    minimum,
                });
            }
            Ok(())
        }
        (KeyFamily::Ec(wanted), PublicKey::Ec { curve, key: ec, .. }) => {
            if policy.curve_must_match && *curve != Some(wanted) {
                return match curve {
                    Some(curve) => Err(KeyError::CurveMismatch {
                        id: id.to_owned(),
                        key_type,
                        curve: *curve,
                    }),
                    None => Err(KeyError::Unsupported {
                        id: id.to_owned(),
                        what: key.description(),
                    }),
                };
            }
            match ec {
                #[cfg(not(feature = "binary-curves"))]
                EcKey::NotBuilt(curve) => Err(KeyError::CurveNotBuilt {
                    id: id.to_owned(),
                    curve: *curve,
                }),
                EcKey::Unsupported(what) => Err(KeyError::Unsupported {
                    id: id.to_owned(),
                    what: what.clone(),
                }),
                _ => Ok(()),
            }
        }
        _ => Err(mismatch()),
    }
}

/// An image signature decoded against its key, ready to check a digest.
#[derive(Debug, Clone)]
pub(crate) enum PreparedSignature {
    /// RSASSA-PSS, signature left-padded to the modulus length.
    RsaPss {
        /// The key.
        key: rsa::PublicKey,
        /// The signature, exactly `k` bytes.
        signature: Vec<u8>,
    },
    /// DSA.
    Dsa {
        /// The key.
        key: Box<dsa::VerifyingKey>,
        /// `(r, s)`.
        signature: dsa::Signature,
    },
    /// ECDSA on P-256 (cursive accepts it under any `ECC_*` name).
    P256(p256::ecdsa::VerifyingKey, p256::ecdsa::Signature),
    /// ECDSA on P-384.
    P384(p384::ecdsa::VerifyingKey, p384::ecdsa::Signature),
    /// ECDSA on P-521.
    P521(Box<p521::ecdsa::VerifyingKey>, p521::ecdsa::Signature),
    /// ECDSA through OpenSSL.
    #[cfg(feature = "binary-curves")]
    OpenSsl(
        super::openssl_ec::OpenSslEcKey,
        super::openssl_ec::OpenSslSignature,
    ),
}

fn left_pad(magnitude: &[u8], len: usize) -> Option<Vec<u8>> {
    if magnitude.len() > len {
        return None;
    }
    let mut out = vec![0u8; len - magnitude.len()];
    out.extend_from_slice(magnitude);
    Some(out)
}

/// Builds an ECDSA signature from DER magnitudes for a RustCrypto curve;
/// `None` when r or s is zero or not below the group order.
pub(crate) fn ecdsa_signature<C>(r: &[u8], s: &[u8]) -> Option<ecdsa::Signature<C>>
where
    C: ecdsa::EcdsaCurve + elliptic_curve::CurveArithmetic,
{
    let size = <C as elliptic_curve::Curve>::FieldBytesSize::USIZE;
    let mut bytes = left_pad(r, size)?;
    bytes.extend_from_slice(&left_pad(s, size)?);
    ecdsa::Signature::<C>::from_slice(&bytes).ok()
}

impl PreparedSignature {
    /// Decodes `signature` for `key` (which `check_key_type` accepted).
    ///
    /// Fails with [`SignatureError::TooLong`] for an RSA signature longer
    /// than the modulus, [`SignatureError::Malformed`] for ECDSA/DSA
    /// signatures that are not strict DER and [`SignatureError::OutOfRange`]
    /// when r or s cannot be a signature on the key's group.
    pub(crate) fn new(
        id: &str,
        key: &PublicKey,
        key_type: KeyType,
        signature: &[u8],
    ) -> Result<PreparedSignature, SignatureError> {
        let out_of_range = || SignatureError::OutOfRange { key_type };
        if let PublicKey::Rsa(rsa_key) = key {
            use rsa::traits::PublicKeyParts;
            let modulus_len = rsa_key.size();
            // cursive accepts signatures shorter than the modulus (a leading
            // zero stripped) and rejects longer ones, even with leading zeros.
            let padded =
                left_pad(signature, modulus_len).ok_or_else(|| SignatureError::TooLong {
                    id: id.to_owned(),
                    len: signature.len(),
                    modulus_len,
                })?;
            return Ok(PreparedSignature::RsaPss {
                key: rsa_key.clone(),
                signature: padded,
            });
        }
        let der = dersig::parse(signature)
            .map_err(|source| SignatureError::Malformed { key_type, source })?;
        match key {
            PublicKey::Dsa { key, .. } => {
                let signature = dsa::Signature::from_components(boxed(der.r), boxed(der.s))
                    .ok_or_else(out_of_range)?;
                Ok(PreparedSignature::Dsa {
                    key: Box::new(key.clone()),
                    signature,
                })
            }
            PublicKey::Ec { key: ec, .. } => match ec {
                EcKey::P256(key) => Ok(PreparedSignature::P256(
                    *key,
                    ecdsa_signature(der.r, der.s).ok_or_else(out_of_range)?,
                )),
                EcKey::P384(key) => Ok(PreparedSignature::P384(
                    *key,
                    ecdsa_signature(der.r, der.s).ok_or_else(out_of_range)?,
                )),
                EcKey::P521(key) => Ok(PreparedSignature::P521(
                    Box::new(*key),
                    ecdsa_signature(der.r, der.s).ok_or_else(out_of_range)?,
                )),
                #[cfg(feature = "binary-curves")]
                EcKey::OpenSsl(key) => Ok(PreparedSignature::OpenSsl(
                    key.clone(),
                    super::openssl_ec::OpenSslSignature::from_magnitudes(der.r, der.s)
                        .ok_or_else(out_of_range)?,
                )),
                #[cfg(not(feature = "binary-curves"))]
                EcKey::NotBuilt(_) => Err(out_of_range()),
                EcKey::Unsupported(_) => Err(out_of_range()),
            },
            PublicKey::Rsa(_) | PublicKey::Ed25519(_) | PublicKey::Other(_) => Err(out_of_range()),
        }
    }

    /// Whether the signature verifies over `digest` (a `hash_method` digest
    /// of the image). Never re-hashes the data.
    pub(crate) fn verify(&self, hash_method: HashMethod, digest: &[u8]) -> bool {
        match self {
            PreparedSignature::RsaPss { key, signature } => {
                verify_pss_auto_salt(key, hash_method, digest, signature)
            }
            PreparedSignature::Dsa { key, signature } => {
                key.verify_prehash(digest, signature).is_ok()
            }
            PreparedSignature::P256(key, signature) => {
                key.verify_prehash(digest, signature).is_ok()
            }
            PreparedSignature::P384(key, signature) => {
                key.verify_prehash(digest, signature).is_ok()
            }
            PreparedSignature::P521(key, signature) => {
                key.verify_prehash(digest, signature).is_ok()
            }
            #[cfg(feature = "binary-curves")]
            PreparedSignature::OpenSsl(key, signature) => key.verify_prehash(digest, signature),
        }
    }
}

/// RSASSA-PSS with MGF1 over the message hash, trailer 0xBC, salt length
/// recovered from the signature (any length from 0 to the maximum).
fn verify_pss_auto_salt(
    key: &rsa::PublicKey,
    hash_method: HashMethod,
    digest: &[u8],
    signature: &[u8],
) -> bool {
    match hash_method {
        HashMethod::Sha224 => verify_pss::<sha2::Sha224>(key, None, digest, signature),
        HashMethod::Sha256 => verify_pss::<sha2::Sha256>(key, None, digest, signature),
        HashMethod::Sha384 => verify_pss::<sha2::Sha384>(key, None, digest, signature),
        HashMethod::Sha512 => verify_pss::<sha2::Sha512>(key, None, digest, signature),
    }
}

/// RSASSA-PSS over a precomputed `D` digest, MGF1 with `D`; `salt_len`
/// `None` recovers the salt length from the signature.
pub(crate) fn verify_pss<D>(
    key: &rsa::PublicKey,
    salt_len: Option<usize>,
    digest: &[u8],
    signature: &[u8],
) -> bool
where
    D: digest::Digest + digest::FixedOutputReset,
{
    let Ok(signature) = rsa::pss::Signature::from_bytes_with_max_len(signature, signature.len())
    else {
        return false;
    };
    let verifier = match salt_len {
        Some(salt_len) => rsa::pss::VerifyingKey::<D>::new_with_salt_len(key.clone(), salt_len),
        None => rsa::pss::VerifyingKey::<D>::new_with_auto_salt_len(key.clone()),
    };
    verifier.verify_prehash(digest, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::cert::Cert;
    use crate::verify::issuer::{IssuerPolicy, check_issued_by};
    use crate::verify::pem;
    use proptest::prelude::*;

    /// DER of every certificate fixture.
    fn fixture_certificates() -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/certs");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
            for block in pem::blocks(&text).into_iter().flatten() {
                if block.label == "CERTIFICATE"
                    && let Ok(der) = block.decode()
                {
                    out.push(der);
                }
            }
        }
        assert!(out.len() > 40, "fixtures missing");
        out
    }

    #[test]
    fn every_fixture_key_parses() {
        for der in fixture_certificates() {
            let Ok(cert) = Cert::parse("x", der) else {
                continue; // store-garbage
            };
            let key = PublicKey::from_spki(&cert.spki_der().unwrap()).unwrap();
            assert!(!key.description().is_empty());
        }
    }

    /// Regression: a DSA public value narrower or wider than p reached
    /// crypto-bigint's precision assertion (found by the mutation proptest).
    #[test]
    fn dsa_public_values_out_of_range_are_errors_not_panics() {
        let mut n_dsa = 0;
        for der in fixture_certificates() {
            let Ok(spki) = Cert::parse("x", der).and_then(|cert| cert.spki_der()) else {
                continue;
            };
            if !matches!(PublicKey::from_spki(&spki), Ok(PublicKey::Dsa { .. })) {
                continue;
            }
            n_dsa += 1;
            let (outer, _) = tlv::expect(&spki, tlv::SEQUENCE).unwrap();
            let (algorithm, _) = tlv::expect(outer.value, tlv::SEQUENCE).unwrap();
            let (params, _) = tlv::expect(algorithm.value, tlv::OID)
                .map(|(_, rest)| rest)
                .and_then(|rest| tlv::expect(rest, tlv::SEQUENCE))
                .unwrap();
            let (p, _) = positive_integer(params.value).unwrap();
            let mut too_wide = vec![0x01];
            too_wide.extend_from_slice(p);
            for y in [vec![0x05], vec![0x7f, 0xff], p.to_vec(), too_wide] {
                let mut integer = Vec::new();
                tlv::encode(tlv::INTEGER, &y, &mut integer);
                let mut bits = vec![0];
                bits.extend_from_slice(&integer);
                let mut body = Vec::new();
                tlv::encode(tlv::SEQUENCE, algorithm.value, &mut body);
                tlv::encode(tlv::BIT_STRING, &bits, &mut body);
                let mut mutated = Vec::new();
                tlv::encode(tlv::SEQUENCE, &body, &mut mutated);
                assert!(
                    PublicKey::from_spki(&mutated).is_err(),
                    "y = {y:02x?} accepted"
                );
            }
        }
        assert!(n_dsa >= 3, "DSA fixtures missing");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn mutated_certificates_never_panic(index in any::<prop::sample::Index>(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let all = fixture_certificates();
            let mut der = all[index.index(all.len())].clone();
            let at = pos.index(der.len());
            der[at] = byte;
            if let Ok(cert) = Cert::parse("x", der) {
                let _ = cert.basic_constraints();
                let _ = cert.key_usage();
                let _ = cert.summary();
                if let Ok(key) = cert.spki_der().and_then(|spki| PublicKey::from_spki(&spki)) {
                    // A self-check exercises the issuer-signature paths on damaged input.
                    let _ = check_issued_by(&cert, &key, IssuerPolicy::Strict);
                    let _ = check_issued_by(&cert, &key, IssuerPolicy::Cursive);
                    for key_type in KeyType::ALL {
                        let _ = PreparedSignature::new("x", &key, *key_type, &[0x30, 0x06, 2, 1, 1, 2, 1, 1]);
                    }
                }
            }
        }

        #[test]
        fn arbitrary_spki_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = PublicKey::from_spki(&bytes);
        }
    }
}
