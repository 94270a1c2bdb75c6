//! ECDSA through OpenSSL, for the binary curves (ECC_SECT*) no pure-Rust
//! crate implements, and for other named curves OpenSSL knows.
//!
//! Compiled only with feature `binary-curves`. Like the RustCrypto paths it
//! verifies and signs precomputed digests (OpenSSL truncates them to the
//! group order as FIPS 186-4 says). This module must not parse DER
//! signatures itself (`dersig` does, strictly) nor hash image data.

use openssl::bn::BigNum;
use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};

use super::algorithm::Curve;

/// An EC public key held by OpenSSL.
#[derive(Debug, Clone)]
pub(crate) struct OpenSslEcKey(EcKey<Public>);

/// `(r, s)` as big-endian magnitudes, checked non-zero.
#[derive(Debug, Clone)]
pub(crate) struct OpenSslSignature {
    r: Vec<u8>,
    s: Vec<u8>,
}

impl OpenSslSignature {
    /// Wraps DER magnitudes; `None` when r or s is zero.
    pub(crate) fn from_magnitudes(r: &[u8], s: &[u8]) -> Option<OpenSslSignature> {
        let nonzero = |bytes: &[u8]| bytes.iter().any(|&b| b != 0);
        (nonzero(r) && nonzero(s)).then(|| OpenSslSignature {
            r: r.to_vec(),
            s: s.to_vec(),
        })
    }
}

impl OpenSslEcKey {
    /// Loads an EC key from a DER SubjectPublicKeyInfo.
    ///
    /// Fails with OpenSSL's reason when the key or curve cannot be loaded.
    pub(crate) fn from_spki(spki: &[u8]) -> Result<OpenSslEcKey, String> {
        let pkey = PKey::public_key_from_der(spki).map_err(|err| err.to_string())?;
        let key = pkey.ec_key().map_err(|err| err.to_string())?;
        key.check_key().map_err(|err| err.to_string())?;
        Ok(OpenSslEcKey(key))
    }

    /// Whether `signature` verifies over the precomputed `digest`.
    pub(crate) fn verify_prehash(&self, digest: &[u8], signature: &OpenSslSignature) -> bool {
        let Ok(r) = BigNum::from_slice(&signature.r) else {
            return false;
        };
        let Ok(s) = BigNum::from_slice(&signature.s) else {
            return false;
        };
        let Ok(sig) = EcdsaSig::from_private_components(r, s) else {
            return false;
        };
        sig.verify(digest, &self.0).unwrap_or(false)
    }
}

/// Maps an OpenSSL curve name to the curves portcullis names.
pub(crate) fn curve_of(nid: Nid) -> Option<Curve> {
    [
        (Nid::X9_62_PRIME256V1, Curve::P256),
        (Nid::SECP384R1, Curve::P384),
        (Nid::SECP521R1, Curve::P521),
        (Nid::SECT409K1, Curve::Sect409k1),
        (Nid::SECT409R1, Curve::Sect409r1),
        (Nid::SECT571K1, Curve::Sect571k1),
        (Nid::SECT571R1, Curve::Sect571r1),
    ]
    .into_iter()
    .find(|(candidate, _)| *candidate == nid)
    .map(|(_, curve)| curve)
}

/// An EC private key held by OpenSSL (for `portcullis sign` on binary curves).
pub(crate) struct OpenSslSigningKey(EcKey<Private>);

impl std::fmt::Debug for OpenSslSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenSslSigningKey(..)")
    }
}

impl OpenSslSigningKey {
    /// Loads an EC private key from PEM (SEC1 or PKCS#8, unencrypted).
    ///
    /// Fails with OpenSSL's reason when the key cannot be loaded.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<OpenSslSigningKey, String> {
        let pkey = PKey::private_key_from_pem(pem).map_err(|err| err.to_string())?;
        let key = pkey.ec_key().map_err(|err| err.to_string())?;
        Ok(OpenSslSigningKey(key))
    }

    /// The key's curve, if portcullis names it.
    pub(crate) fn curve(&self) -> Option<Curve> {
        self.0.group().curve_name().and_then(curve_of)
    }

    /// Signs a precomputed digest; returns `(r, s)` magnitudes.
    ///
    /// Fails with OpenSSL's reason.
    pub(crate) fn sign_prehash(&self, digest: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
        let sig = EcdsaSig::sign(digest, &self.0).map_err(|err| err.to_string())?;
        Ok((sig.r().to_vec(), sig.s().to_vec()))
    }
}
