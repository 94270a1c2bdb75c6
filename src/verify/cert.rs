//! One X.509 certificate as verification sees it: parsed once, with its
//! exact to-be-signed bytes, validity at an injected time, the extensions
//! chain validation reads, name comparison, and a printable summary.
//!
//! This module must not fetch certificates or decide trust; it must not
//! read the clock (times are passed in).

use der::{Decode, Encode, Tagged};
use sha2::Digest as _;
use time::OffsetDateTime;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::name::Name;

use super::tlv;

/// A certificate's identity and validity, for reports and JSON output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// The key-store id it was fetched under.
    pub id: String,
    /// Subject, RFC 4514.
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// SHA-256 of the DER, lower-case hex.
    pub sha256_fingerprint: String,
}

/// Where a time falls relative to a certificate's validity (inclusive bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validity {
    /// Within [notBefore, notAfter].
    Valid,
    /// Before notBefore.
    NotYetValid,
    /// After notAfter.
    Expired,
}

/// A parsed certificate with its key-store id.
#[derive(Debug, Clone)]
pub(crate) struct Cert {
    id: String,
    der: Vec<u8>,
    tbs: std::ops::Range<usize>,
    parsed: x509_cert::Certificate,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

fn to_offset(time: x509_cert::time::Time) -> Result<OffsetDateTime, String> {
    let seconds = i64::try_from(time.to_unix_duration().as_secs())
        .map_err(|_| "validity date out of range".to_owned())?;
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|err| err.to_string())
}

impl Cert {
    /// Parses DER.
    ///
    /// Fails with a reason when the bytes are not one DER X.509 certificate.
    pub(crate) fn parse(id: &str, der: Vec<u8>) -> Result<Cert, String> {
        let parsed = x509_cert::Certificate::from_der(&der).map_err(|err| err.to_string())?;
        let (outer, _) = tlv::read(&der).map_err(|err| err.to_string())?;
        let (tbs, _) = tlv::read(outer.value).map_err(|err| err.to_string())?;
        // The TBS is the first element inside the outer SEQUENCE, so it
        // starts right after the outer header.
        let start = outer.encoded.len() - outer.value.len();
        let tbs = start..start + tbs.encoded.len();
        let validity = parsed.tbs_certificate().validity();
        let not_before = to_offset(validity.not_before)?;
        let not_after = to_offset(validity.not_after)?;
        Ok(Cert {
            id: id.to_owned(),
            der,
            tbs,
            parsed,
            not_before,
            not_after,
        })
    }

    /// The key-store id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The whole DER.
    pub(crate) fn der(&self) -> &[u8] {
        &self.der
    }

    /// The exact to-be-signed bytes the issuer signed.
    pub(crate) fn tbs(&self) -> &[u8] {
        &self.der[self.tbs.clone()]
    }

    /// The subject name.
    pub(crate) fn subject(&self) -> &Name {
        self.parsed.tbs_certificate().subject()
    }

    /// The issuer name.
    pub(crate) fn issuer(&self) -> &Name {
        self.parsed.tbs_certificate().issuer()
    }

    /// The subject, RFC 4514.
    pub(crate) fn subject_text(&self) -> String {
        self.subject().to_string()
    }

    /// The issuer, RFC 4514.
    pub(crate) fn issuer_text(&self) -> String {
        self.issuer().to_string()
    }

    /// Start of validity.
    pub(crate) fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of validity.
    pub(crate) fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Where `at` falls relative to the validity period (bounds inclusive, as cursive).
    pub(crate) fn validity_at(&self, at: OffsetDateTime) -> Validity {
        if at < self.not_before {
            Validity::NotYetValid
        } else if at > self.not_after {
            Validity::Expired
        } else {
            Validity::Valid
        }
    }

    /// The basicConstraints extension, if present.
    ///
    /// Fails when it is present but malformed or repeated.
    pub(crate) fn basic_constraints(&self) -> Result<Option<BasicConstraints>, String> {
        self.parsed
            .tbs_certificate()
            .get_extension::<BasicConstraints>()
            .map(|found| found.map(|(_, ext)| ext))
            .map_err(|err| err.to_string())
    }

    /// The keyUsage extension, if present.
    ///
    /// Fails when it is present but malformed or repeated.
    pub(crate) fn key_usage(&self) -> Result<Option<KeyUsage>, String> {
        self.parsed
            .tbs_certificate()
            .get_extension::<KeyUsage>()
            .map(|found| found.map(|(_, ext)| ext))
            .map_err(|err| err.to_string())
    }

    /// The SubjectPublicKeyInfo, DER.
    ///
    /// Fails only if re-encoding a parsed structure fails (it does not for
    /// anything that parsed).
    pub(crate) fn spki_der(&self) -> Result<Vec<u8>, String> {
        self.parsed
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|err| err.to_string())
    }

    /// The outer signatureAlgorithm: dotted OID and DER parameters (if any).
    pub(crate) fn signature_algorithm(&self) -> (String, Option<Vec<u8>>) {
        let algorithm = self.parsed.signature_algorithm();
        let params = algorithm
            .parameters
            .as_ref()
            .and_then(|any| any.to_der().ok());
        (algorithm.oid.to_string(), params)
    }

    /// The issuer's signature bytes (the BIT STRING contents).
    pub(crate) fn signature_bytes(&self) -> &[u8] {
        self.parsed.signature().raw_bytes()
    }

    /// Whether the signatureAlgorithm inside the TBS equals the outer one
    /// (RFC 5280 requires it; a mismatch means a tampered certificate).
    pub(crate) fn algorithms_agree(&self) -> bool {
        self.parsed.signature_algorithm() == self.parsed.tbs_certificate().signature()
    }

    /// Identity and validity, for output.
    pub(crate) fn summary(&self) -> CertificateSummary {
        CertificateSummary {
            id: self.id.clone(),
            subject: self.subject_text(),
            issuer: self.issuer_text(),
            serial: hex::encode(self.parsed.tbs_certificate().serial_number().as_bytes()),
            not_before: self.not_before,
            not_after: self.not_after,
            sha256_fingerprint: hex::encode(sha2::Sha256::digest(&self.der)),
        }
    }
}

/// One attribute value as cryptography's `Name.__eq__` compares it: string
/// types by their text (Printable vs UTF8 ignored), anything else by tag
/// and bytes.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum AttributeValue {
    Text(String),
    Raw(String, Vec<u8>),
}

fn normalise(any: &der::asn1::Any) -> AttributeValue {
    let bytes = any.value();
    let text = match any.tag() {
        der::Tag::Utf8String
        | der::Tag::PrintableString
        | der::Tag::Ia5String
        | der::Tag::VisibleString
        | der::Tag::NumericString => std::str::from_utf8(bytes).ok().map(str::to_owned),
        // T.61 text is read as Latin-1, like cryptography does.
        der::Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        der::Tag::BmpString => {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|pair| u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    };
    match text {
        Some(text) => AttributeValue::Text(text),
        None => AttributeValue::Raw(format!("{:?}", any.tag()), bytes.to_vec()),
    }
}

/// Compares two names as cursive does (cryptography's `Name.__eq__`): the
/// same RDNs in the same order, each the same set of (type, value); values
/// compared exactly (case matters) but ignoring the ASN.1 string type.
pub(crate) fn names_equal(a: &Name, b: &Name) -> bool {
    let rdns_a: Vec<_> = a.iter_rdn().collect();
    let rdns_b: Vec<_> = b.iter_rdn().collect();
    if rdns_a.len() != rdns_b.len() {
        return false;
    }
    rdns_a.iter().zip(&rdns_b).all(|(x, y)| {
        let mut set_x: Vec<_> = x
            .iter()
            .map(|atv| (atv.oid.to_string(), normalise(&atv.value)))
            .collect();
        let mut set_y: Vec<_> = y
            .iter()
            .map(|atv| (atv.oid.to_string(), normalise(&atv.value)))
            .collect();
        set_x.sort();
        set_y.sort();
        set_x == set_y
    })
}
