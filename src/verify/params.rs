//! The four `img_signature*` properties, parsed once into a checked
//! [`SignatureParams`].
//!
//! Parsing follows cursive's order so the first failure matches what cursive
//! reports: missing properties, then the signature's base64, then the hash
//! method, then the key type. Extra properties are ignored. This module
//! must not fetch certificates or touch image data.

use super::Mode;
use super::algorithm::{HashMethod, KeyType};
use super::base64;
use super::error::ParamsError;
use crate::image::Properties;

/// `img_signature`: base64 of the signature.
pub const SIGNATURE: &str = "img_signature";
/// `img_signature_hash_method`: `SHA-224`, `SHA-256`, `SHA-384` or `SHA-512`.
pub const HASH_METHOD: &str = "img_signature_hash_method";
/// `img_signature_key_type`: `RSA-PSS`, `DSA`, `ECC_*`.
pub const KEY_TYPE: &str = "img_signature_key_type";
/// `img_signature_certificate_uuid`: the key manager's certificate id.
pub const CERTIFICATE_UUID: &str = "img_signature_certificate_uuid";

/// The four properties, in the order cursive checks them for presence.
pub const PROPERTIES: [&str; 4] = [CERTIFICATE_UUID, HASH_METHOD, SIGNATURE, KEY_TYPE];

/// Which of the four properties an image carries; cheap, reads nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// None of the four: the image is unsigned.
    Unsigned,
    /// Some but not all: an error (never a silent skip).
    Partial {
        /// The absent ones, in cursive's checking order.
        missing: Vec<&'static str>,
    },
    /// All four.
    Complete,
}

impl Presence {
    /// Looks at which of the four properties `properties` holds.
    pub fn of(properties: &Properties) -> Presence {
        let missing: Vec<&'static str> = PROPERTIES
            .iter()
            .copied()
            .filter(|name| !properties.contains_key(*name))
            .collect();
        match missing.len() {
            0 => Presence::Complete,
            n if n == PROPERTIES.len() => Presence::Unsigned,
            _ => Presence::Partial { missing },
        }
    }
}

/// The four raw property values, before checking (for callers that get them
/// from flags rather than a property map).
#[derive(Debug, Clone, Copy)]
pub struct RawSignatureProperties<'a> {
    /// `img_signature`.
    pub signature: &'a str,
    /// `img_signature_hash_method`.
    pub hash_method: &'a str,
    /// `img_signature_key_type`.
    pub key_type: &'a str,
    /// `img_signature_certificate_uuid`.
    pub certificate_uuid: &'a str,
}

/// The checked `img_signature*` properties of one image.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureParams {
    signature: Vec<u8>,
    hash_method: HashMethod,
    key_type: KeyType,
    certificate_id: String,
    mode: Mode,
}

impl std::fmt::Debug for SignatureParams {
    // The signature is not secret, but it is long and useless in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureParams")
            .field("signature_len", &self.signature.len())
            .field("hash_method", &self.hash_method)
            .field("key_type", &self.key_type)
            .field("certificate_id", &self.certificate_id)
            .field("mode", &self.mode)
            .finish()
    }
}

impl SignatureParams {
    /// Parses an image's properties in `mode`: `Ok(None)` when the image is
    /// unsigned (none of the four properties), `Ok(Some(_))` for a full, valid set.
    ///
    /// Fails with [`ParamsError::MissingProperties`] naming every absent
    /// property when only some are present, and otherwise as
    /// [`SignatureParams::from_raw`].
    pub fn from_properties(
        properties: &Properties,
        mode: Mode,
    ) -> Result<Option<SignatureParams>, ParamsError> {
        match Presence::of(properties) {
            Presence::Unsigned => Ok(None),
            Presence::Partial { missing } => Err(ParamsError::MissingProperties { missing }),
            Presence::Complete => {
                let value = |name: &str| properties.get(name).map(String::as_str).unwrap_or("");
                SignatureParams::from_raw(
                    RawSignatureProperties {
                        signature: value(SIGNATURE),
                        hash_method: value(HASH_METHOD),
                        key_type: value(KEY_TYPE),
                        certificate_uuid: value(CERTIFICATE_UUID),
                    },
                    mode,
                )
                .map(Some)
            }
        }
    }

    /// Checks the four values in cursive's order: the signature's base64
    /// (strictly, or cursive's lenient decoder in [`Mode::CompatCursive`]),
    /// the hash method, the key type.
    ///
    /// Fails with [`ParamsError::BadEncoding`], [`ParamsError::UnsupportedHashMethod`],
    /// [`ParamsError::UnsupportedKeyType`] or, for a binary-curve key type in
    /// a build without them, [`ParamsError::KeyTypeNotBuilt`]. An empty
    /// signature is not an error here: cursive reports it only after
    /// fetching the certificate, and so does the verifier.
    pub fn from_raw(
        raw: RawSignatureProperties<'_>,
        mode: Mode,
    ) -> Result<SignatureParams, ParamsError> {
        let signature = match mode {
            Mode::Strict => base64::decode_strict(raw.signature),
            Mode::CompatCursive => base64::decode_cursive(raw.signature),
        }
        .map_err(|source| ParamsError::BadEncoding { source })?;
        let hash_method = HashMethod::from_name(raw.hash_method).ok_or_else(|| {
            ParamsError::UnsupportedHashMethod {
                value: raw.hash_method.to_owned(),
            }
        })?;
        let key_type =
            KeyType::from_name(raw.key_type).ok_or_else(|| ParamsError::UnsupportedKeyType {
                value: raw.key_type.to_owned(),
            })?;
        if !key_type.supported_by_build() {
            return Err(ParamsError::KeyTypeNotBuilt { key_type });
        }
        Ok(SignatureParams {
            signature,
            hash_method,
            key_type,
            certificate_id: raw.certificate_uuid.to_owned(),
            mode,
        })
    }

    /// The decoded signature bytes (possibly empty; the verifier rejects that).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The hash method.
    pub fn hash_method(&self) -> HashMethod {
        self.hash_method
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The certificate id, as given (checked when the certificate is fetched).
    pub fn certificate_id(&self) -> &str {
        &self.certificate_id
    }

    /// The mode the signature text was decoded in.
    pub fn mode(&self) -> Mode {
        self.mode
    }
}

/// Strict parsing of a full set: an unsigned image is an error here too
/// (naming all four properties). Use [`SignatureParams::from_properties`] to tell
/// unsigned images apart.
impl TryFrom<&Properties> for SignatureParams {
    type Error = ParamsError;

    fn try_from(properties: &Properties) -> Result<SignatureParams, ParamsError> {
        SignatureParams::from_properties(properties, Mode::Strict)?.ok_or_else(|| {
            ParamsError::MissingProperties {
                missing: PROPERTIES.to_vec(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Properties {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn full() -> Properties {
        props(&[
            (SIGNATURE, "QUJD"),
            (HASH_METHOD, "SHA-256"),
            (KEY_TYPE, "RSA-PSS"),
            (CERTIFICATE_UUID, "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55"),
            ("os_distro", "cirros"),
        ])
    }

    #[test]
    fn three_cases_are_told_apart() {
        assert_eq!(
            SignatureParams::from_properties(&props(&[("os_distro", "x")]), Mode::Strict),
            Ok(None)
        );
        let params = SignatureParams::from_properties(&full(), Mode::Strict)
            .unwrap()
            .unwrap();
        assert_eq!(params.signature(), b"ABC");
        assert_eq!(params.hash_method(), HashMethod::Sha256);
        assert_eq!(params.key_type(), KeyType::RsaPss);
        let partial = props(&[(SIGNATURE, "QUJD"), (HASH_METHOD, "SHA-256")]);
        let err = SignatureParams::from_properties(&partial, Mode::Strict).unwrap_err();
        assert_eq!(
            err,
            ParamsError::MissingProperties {
                missing: vec![CERTIFICATE_UUID, KEY_TYPE]
            }
        );
        assert!(
            err.to_string()
                .contains("img_signature_certificate_uuid, img_signature_key_type"),
            "{err}"
        );
        assert_eq!(err.kind(), "missing_property");
        let unsigned = SignatureParams::try_from(&props(&[])).unwrap_err();
        assert_eq!(unsigned.kind(), "missing_property");
    }

    #[test]
    fn empty_values_count_as_present() {
        let mut p = full();
        p.insert(SIGNATURE.to_owned(), String::new());
        let params = SignatureParams::try_from(&p).unwrap();
        assert!(params.signature().is_empty());
        p.insert(HASH_METHOD.to_owned(), String::new());
        assert_eq!(
            SignatureParams::try_from(&p).unwrap_err().kind(),
            "unsupported_hash_method"
        );
    }

    #[test]
    fn cursive_order_and_modes() {
        let mut p = full();
        p.insert(SIGNATURE.to_owned(), "QUJD!".to_owned());
        p.insert(HASH_METHOD.to_owned(), "sha256".to_owned());
        // Bad base64 wins over a bad hash method in strict mode...
        assert_eq!(
            SignatureParams::try_from(&p).unwrap_err().kind(),
            "bad_encoding"
        );
        // ...while cursive's decoder skips the '!' and reaches the hash method.
        assert_eq!(
            SignatureParams::from_properties(&p, Mode::CompatCursive)
                .unwrap_err()
                .kind(),
            "unsupported_hash_method"
        );
        p.insert(HASH_METHOD.to_owned(), "SHA-512".to_owned());
        p.insert(KEY_TYPE.to_owned(), "rsa-pss".to_owned());
        assert_eq!(
            SignatureParams::from_properties(&p, Mode::CompatCursive)
                .unwrap_err()
                .kind(),
            "unsupported_key_type"
        );
        p.insert(KEY_TYPE.to_owned(), "ECC_SECT571K1".to_owned());
        let result = SignatureParams::from_properties(&p, Mode::CompatCursive);
        if cfg!(feature = "binary-curves") {
            assert_eq!(result.unwrap().unwrap().key_type(), KeyType::EccSect571k1);
        } else {
            assert_eq!(result.unwrap_err().kind(), "unsupported_by_build");
        }
    }
}
