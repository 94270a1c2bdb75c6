//! The closed sets of names Glance accepts in `img_signature_hash_method` and
//! `img_signature_key_type`, as one static table each (rustls style).
//!
//! This module owns the name ↔ value mapping and what each key type needs
//! from a certificate's key (family, curve, whether this build can check
//! it). It must not parse keys or verify anything: `key` does that.

use std::fmt;

use crate::hash::HashAlgorithm;

/// A value of `img_signature_hash_method` (exact, case-sensitive names, as cursive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashMethod {
    /// `SHA-224`.
    Sha224,
    /// `SHA-256`.
    Sha256,
    /// `SHA-384`.
    Sha384,
    /// `SHA-512`.
    Sha512,
}

/// Every hash method, with its Glance name and the hash it runs.
const HASH_METHODS: &[(HashMethod, &str, HashAlgorithm)] = &[
    (HashMethod::Sha224, "SHA-224", HashAlgorithm::Sha224),
    (HashMethod::Sha256, "SHA-256", HashAlgorithm::Sha256),
    (HashMethod::Sha384, "SHA-384", HashAlgorithm::Sha384),
    (HashMethod::Sha512, "SHA-512", HashAlgorithm::Sha512),
];

impl HashMethod {
    /// Every hash method, in table order.
    pub const ALL: &'static [HashMethod] = &[
        HashMethod::Sha224,
        HashMethod::Sha256,
        HashMethod::Sha384,
        HashMethod::Sha512,
    ];

    /// Looks up a Glance name exactly (no case folding, no trimming).
    ///
    /// Returns `None` for anything else (`sha256`, `SHA256`, `SHA-1`, `"SHA-256 "`).
    pub fn from_name(name: &str) -> Option<HashMethod> {
        HASH_METHODS
            .iter()
            .find(|(_, text, _)| *text == name)
            .map(|(method, _, _)| *method)
    }

    /// The Glance name (`SHA-256`).
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// The hash computed over the image.
    pub fn algorithm(self) -> HashAlgorithm {
        self.entry().2
    }

    /// The hash method computing `algorithm`, if Glance has one (MD5 has none).
    pub fn from_algorithm(algorithm: HashAlgorithm) -> Option<HashMethod> {
        HASH_METHODS
            .iter()
            .find(|(_, _, a)| *a == algorithm)
            .map(|(method, _, _)| *method)
    }

    fn entry(self) -> &'static (HashMethod, &'static str, HashAlgorithm) {
        HASH_METHODS
            .iter()
            .find(|(method, _, _)| *method == self)
            .expect("every HashMethod has a row in HASH_METHODS")
    }
}

impl fmt::Display for HashMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A named elliptic curve a certificate key may sit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (secp256r1); not a Glance key type, but cursive verifies
    /// it under any `ECC_*` name.
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
    /// sect409k1 (binary, Koblitz).
    Sect409k1,
    /// sect409r1 (binary, random).
    Sect409r1,
    /// sect571k1 (binary, Koblitz).
    Sect571k1,
    /// sect571r1 (binary, random).
    Sect571r1,
}

/// Every curve: value, OID, display name, whether it is a binary curve.
const CURVES: &[(Curve, &str, &str, bool)] = &[
    (Curve::P256, "1.2.840.10045.3.1.7", "P-256", false),
    (Curve::P384, "1.3.132.0.34", "P-384", false),
    (Curve::P521, "1.3.132.0.35", "P-521", false),
    (Curve::Sect409k1, "1.3.132.0.36", "sect409k1", true),
    (Curve::Sect409r1, "1.3.132.0.37", "sect409r1", true),
    (Curve::Sect571k1, "1.3.132.0.38", "sect571k1", true),
    (Curve::Sect571r1, "1.3.132.0.39", "sect571r1", true),
];

impl Curve {
    /// The curve named by a dotted OID, if portcullis knows it.
    pub fn from_oid(oid: &str) -> Option<Curve> {
        CURVES
            .iter()
            .find(|(_, o, _, _)| *o == oid)
            .map(|(curve, _, _, _)| *curve)
    }

    /// The curve's usual name (`P-384`, `sect571k1`).
    pub fn name(self) -> &'static str {
        self.entry().2
    }

    /// The curve's dotted OID.
    pub fn oid(self) -> &'static str {
        self.entry().1
    }

    /// Whether this is one of the binary (characteristic-2) curves, which
    /// need OpenSSL (feature `binary-curves`).
    pub fn is_binary(self) -> bool {
        self.entry().3
    }

    /// Whether this build can verify signatures on this curve.
    pub fn supported_by_build(self) -> bool {
        !self.is_binary() || cfg!(feature = "binary-curves")
    }

    fn entry(self) -> &'static (Curve, &'static str, &'static str, bool) {
        CURVES
            .iter()
            .find(|(curve, _, _, _)| *curve == self)
            .expect("every Curve has a row in CURVES")
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of public key a key type needs (cursive checks only this class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// An RSA key (rsaEncryption or RSASSA-PSS SPKI).
    Rsa,
    /// A DSA key.
    Dsa,
    /// An elliptic-curve key on the given curve.
    Ec(Curve),
}

/// A value of `img_signature_key_type` (exact, case-sensitive names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `RSA-PSS`: RSASSA-PSS, MGF1 with the message hash, any salt length.
    RsaPss,
    /// `DSA`.
    Dsa,
    /// `ECC_SECP384R1`: ECDSA on P-384.
    EccSecp384r1,
    /// `ECC_SECP521R1`: ECDSA on P-521.
    EccSecp521r1,
    /// `ECC_SECT409K1` (binary curve; feature `binary-curves`).
    EccSect409k1,
    /// `ECC_SECT409R1` (binary curve; feature `binary-curves`).
    EccSect409r1,
    /// `ECC_SECT571K1` (binary curve; feature `binary-curves`).
    EccSect571k1,
    /// `ECC_SECT571R1` (binary curve; feature `binary-curves`).
    EccSect571r1,
}

/// Every key type, with its Glance name and the key family it needs.
const KEY_TYPES: &[(KeyType, &str, KeyFamily)] = &[
    (KeyType::RsaPss, "RSA-PSS", KeyFamily::Rsa),
    (KeyType::Dsa, "DSA", KeyFamily::Dsa),
    (
        KeyType::EccSecp384r1,
        "ECC_SECP384R1",
        KeyFamily::Ec(Curve::P384),
    ),
    (
        KeyType::EccSecp521r1,
        "ECC_SECP521R1",
        KeyFamily::Ec(Curve::P521),
    ),
    (
        KeyType::EccSect409k1,
        "ECC_SECT409K1",
        KeyFamily::Ec(Curve::Sect409k1),
    ),
    (
        KeyType::EccSect409r1,
        "ECC_SECT409R1",
        KeyFamily::Ec(Curve::Sect409r1),
    ),
    (
        KeyType::EccSect571k1,
        "ECC_SECT571K1",
        KeyFamily::Ec(Curve::Sect571k1),
    ),
    (
        KeyType::EccSect571r1,
        "ECC_SECT571R1",
        KeyFamily::Ec(Curve::Sect571r1),
    ),
];

impl KeyType {
    /// Every key type, in table order.
    pub const ALL: &'static [KeyType] = &[
        KeyType::RsaPss,
        KeyType::Dsa,
        KeyType::EccSecp384r1,
        KeyType::EccSecp521r1,
        KeyType::EccSect409k1,
        KeyType::EccSect409r1,
        KeyType::EccSect571k1,
        KeyType::EccSect571r1,
    ];

    /// Looks up a Glance name exactly (no case folding, no trimming).
    ///
    /// Returns `None` for anything else (`RSA`, `rsa-pss`, `ECC_SECP256R1`).
    /// Binary-curve names are found even when this build cannot check them;
    /// see [`KeyType::supported_by_build`].
    pub fn from_name(name: &str) -> Option<KeyType> {
        KEY_TYPES
            .iter()
            .find(|(_, text, _)| *text == name)
            .map(|(key_type, _, _)| *key_type)
    }

    /// The Glance name (`RSA-PSS`).
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// The key family (and, for ECC, the curve) this key type names.
    pub fn family(self) -> KeyFamily {
        self.entry().2
    }

    /// Whether this build can verify signatures of this key type
    /// (binary curves need feature `binary-curves`).
    pub fn supported_by_build(self) -> bool {
        match self.family() {
            KeyFamily::Ec(curve) => curve.supported_by_build(),
            KeyFamily::Rsa | KeyFamily::Dsa => true,
        }
    }

    /// The key type for an ECC key on `curve`, if Glance has one (P-256 has none).
    pub fn for_curve(curve: Curve) -> Option<KeyType> {
        KEY_TYPES
            .iter()
            .find(|(_, _, family)| *family == KeyFamily::Ec(curve))
            .map(|(key_type, _, _)| *key_type)
    }

    fn entry(self) -> &'static (KeyType, &'static str, KeyFamily) {
        KEY_TYPES
            .iter()
            .find(|(key_type, _, _)| *key_type == self)
            .expect("every KeyType has a row in KEY_TYPES")
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_exactly() {
        for method in HashMethod::ALL {
            assert_eq!(HashMethod::from_name(method.name()), Some(*method));
            assert_eq!(
                HashMethod::from_algorithm(method.algorithm()),
                Some(*method)
            );
        }
        for key_type in KeyType::ALL {
            assert_eq!(KeyType::from_name(key_type.name()), Some(*key_type));
        }
        for bad in [
            "sha256", "SHA256", "SHA-1", "MD5", "SHA3-256", "SHA-256 ", "",
        ] {
            assert_eq!(HashMethod::from_name(bad), None, "{bad:?}");
        }
        for bad in [
            "RSA",
            "rsa-pss",
            "RSA_PSS",
            "RSASSA-PSS",
            "ECDSA",
            "ECC_secp384r1",
            "RSA-PSS ",
            "",
            "ECC_SECP256R1",
        ] {
            assert_eq!(KeyType::from_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn binary_curves_follow_the_feature() {
        assert!(KeyType::RsaPss.supported_by_build());
        assert!(KeyType::EccSecp521r1.supported_by_build());
        assert_eq!(
            KeyType::EccSect571k1.supported_by_build(),
            cfg!(feature = "binary-curves")
        );
        assert_eq!(KeyType::for_curve(Curve::P256), None);
        assert_eq!(KeyType::for_curve(Curve::P384), Some(KeyType::EccSecp384r1));
        assert_eq!(Curve::from_oid("1.3.132.0.38"), Some(Curve::Sect571k1));
    }
}
