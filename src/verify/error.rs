//! Why a signature was not verified: one error enum per verification stage,
//! wrapped by [`Error`].
//!
//! Every variant has a stable snake_case [`Error::kind`] (documented in
//! README.md) and, where cursive has one, the reason cursive reports
//! ([`Error::cursive_message`]). Messages are lowercase, name the property,
//! id or certificate involved, and say what to do. This module must not
//! decide anything; it only describes.

use time::OffsetDateTime;

use super::algorithm::{Curve, KeyType};
use super::base64::Base64Error;
use super::cert::CertificateSummary;
use super::dersig::DerSignatureError;
use super::keystore::{BadCertificateId, SourceError};
use crate::hash::HashAlgorithm;

/// Why an image's signature was not verified.
///
/// Failures after the signing certificate was read ([`Error::Key`],
/// [`Error::Chain`], [`Error::Signature`]) carry that certificate's summary
/// ([`Error::signer`]), so a report can say who signed even when the
/// signature was refused (rustls-style typed context, not a string).
#[derive(Debug)]
pub enum Error {
    /// The `img_signature*` properties are missing or invalid.
    Params(ParamsError),
    /// The signing certificate could not be fetched or read.
    Certificate(CertificateError),
    /// The certificate's key does not fit the key type or the policy.
    Key {
        /// What is wrong with the key.
        error: KeyError,
        /// The signing certificate.
        signer: Box<CertificateSummary>,
    },
    /// Certificate-chain validation rejected the signing certificate.
    Chain {
        /// Where and why the chain breaks (boxed: the most context).
        error: Box<ChainError>,
        /// The signing certificate.
        signer: Box<CertificateSummary>,
    },
    /// The signature itself is malformed or does not match the data.
    Signature {
        /// What is wrong with the signature.
        error: SignatureError,
        /// The signing certificate.
        signer: Box<CertificateSummary>,
    },
}

impl From<ParamsError> for Error {
    fn from(error: ParamsError) -> Error {
        Error::Params(error)
    }
}

impl From<CertificateError> for Error {
    fn from(error: CertificateError) -> Error {
        Error::Certificate(error)
    }
}

impl Error {
    /// The inner error, for `Display` and `source` (as `#[error(transparent)]`).
    fn inner(&self) -> &(dyn std::error::Error + 'static) {
        match self {
            Error::Params(error) => error,
            Error::Certificate(error) => error,
            Error::Key { error, .. } => error,
            Error::Chain { error, .. } => error.as_ref(),
            Error::Signature { error, .. } => error,
        }
    }

    /// The signing certificate, when the failure came after it was read.
    pub fn signer(&self) -> Option<&CertificateSummary> {
        match self {
            Error::Params(_) | Error::Certificate(_) => None,
            Error::Key { signer, .. }
            | Error::Chain { signer, .. }
            | Error::Signature { signer, .. } => Some(signer),
        }
    }

    /// A stable snake_case name for the failure (`bad_signature`,
    /// `certificate_not_found`, ...), for scripts and JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Params(error) => error.kind(),
            Error::Certificate(error) => error.kind(),
            Error::Key { error, .. } => error.kind(),
            Error::Chain { error, .. } => error.kind(),
            Error::Signature { error, .. } => error.kind(),
        }
    }

    /// The reason cursive 0.3.1 reports for the same input, when it
    /// reports one (`None` where it crashes, hangs or has no such check).
    pub fn cursive_message(&self) -> Option<String> {
        match self {
            Error::Params(error) => error.cursive_message(),
            Error::Certificate(error) => error.cursive_message(),
            Error::Key { error, .. } => error.cursive_message(),
            Error::Chain { error, .. } => error.cursive_message(),
            Error::Signature { error, .. } => error.cursive_message(),
        }
    }

    /// Whether the failure is an environment problem (the key store could
    /// not be read) rather than a verdict on the image.
    pub fn is_environmental(&self) -> bool {
        matches!(
            self,
            Error::Certificate(CertificateError::Source(SourceError::Unavailable { .. }))
        )
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.inner(), f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner().source()
    }
}

/// An error's message followed by its causes (`message: cause: cause`), for
/// reports that are one line of text (JSON `message`, warnings).
pub fn with_causes(error: &dyn std::error::Error) -> String {
    std::iter::successors(Some(error), |error| error.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

fn cursive_reason(reason: &str) -> String {
    format!("Signature verification for the image failed: {reason}.")
}

/// The `img_signature*` properties are missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// Some of the four properties are absent.
    #[error(
        "{} missing: a signed image needs all of img_signature, img_signature_hash_method, img_signature_key_type and img_signature_certificate_uuid",
        list_missing(.missing)
    )]
    MissingProperties {
        /// The absent property names, in cursive's checking order.
        missing: Vec<&'static str>,
    },
    /// `img_signature` is not base64.
    #[error("img_signature is not valid base64")]
    BadEncoding {
        /// Where the text goes wrong.
        #[source]
        source: Base64Error,
    },
    /// `img_signature_hash_method` is not one of the four names.
    #[error(
        "img_signature_hash_method {value:?} is not supported (expected exactly one of SHA-224, SHA-256, SHA-384, SHA-512)"
    )]
    UnsupportedHashMethod {
        /// The rejected value.
        value: String,
    },
    /// `img_signature_key_type` is not a known name.
    #[error(
        "img_signature_key_type {value:?} is not supported (expected exactly one of RSA-PSS, DSA, ECC_SECP384R1, ECC_SECP521R1, ECC_SECT409K1, ECC_SECT409R1, ECC_SECT571K1, ECC_SECT571R1)"
    )]
    UnsupportedKeyType {
        /// The rejected value.
        value: String,
    },
    /// A binary-curve key type in a build without feature `binary-curves`.
    #[error(
        "img_signature_key_type {key_type} is not supported by this build of portcullis (binary curves need the cargo feature binary-curves, which links OpenSSL)"
    )]
    KeyTypeNotBuilt {
        /// The key type named.
        key_type: KeyType,
    },
}

fn list_missing(missing: &[&'static str]) -> String {
    match missing {
        [one] => format!("image property {one} is"),
        _ => format!("image properties {} are", missing.join(", ")),
    }
}

impl ParamsError {
    /// See [`Error::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            ParamsError::MissingProperties { .. } => "missing_property",
            ParamsError::BadEncoding { .. } => "bad_encoding",
            ParamsError::UnsupportedHashMethod { .. } => "unsupported_hash_method",
            ParamsError::UnsupportedKeyType { .. } => "unsupported_key_type",
            ParamsError::KeyTypeNotBuilt { .. } => "unsupported_by_build",
        }
    }

    fn cursive_message(&self) -> Option<String> {
        match self {
            ParamsError::MissingProperties { missing } => {
                // cursive names only the first missing one, and calls the
                // certificate property `img_signature_uuid`.
                let first = missing.first()?;
                let name = if *first == super::params::CERTIFICATE_UUID {
                    "img_signature_uuid"
                } else {
                    first
                };
                Some(cursive_reason(&format!(
                    "Required image properties for signature verification do not exist. Cannot verify signature. Missing property: {name}"
                )))
            }
            ParamsError::BadEncoding { source } => match source {
                Base64Error::NonAscii { .. } => None,
                _ => Some(cursive_reason(
                    "The signature data was not properly encoded using base64",
                )),
            },
            ParamsError::UnsupportedHashMethod { value } => Some(cursive_reason(&format!(
                "Invalid signature hash method: {value}"
            ))),
            ParamsError::UnsupportedKeyType { value } => Some(cursive_reason(&format!(
                "Invalid signature key type: {value}"
            ))),
            ParamsError::KeyTypeNotBuilt { key_type } => Some(cursive_reason(&format!(
                "Invalid signature key type: {key_type}"
            ))),
        }
    }
}

/// The signing certificate could not be fetched or read.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// `img_signature_certificate_uuid` is not a UUID or a Barbican href ending in one.
    #[error(transparent)]
    InvalidId(#[from] BadCertificateId),
    /// The key store could not supply it.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The key store supplied bytes that are not an X.509 certificate.
    #[error("certificate {id} is not a valid X.509 certificate: {reason}")]
    Malformed {
        /// The certificate id.
        id: String,
        /// What the parser found.
        reason: String,
    },
}

impl CertificateError {
    /// See [`Error::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            CertificateError::InvalidId(_) => "invalid_certificate_id",
            CertificateError::Source(error) => error.kind(),
            CertificateError::Malformed { .. } => "invalid_certificate",
        }
    }

    fn cursive_message(&self) -> Option<String> {
        match self {
            CertificateError::InvalidId(BadCertificateId::Empty) => {
                Some(cursive_reason("Unable to retrieve certificate with ID: "))
            }
            CertificateError::InvalidId(BadCertificateId::NotAUuid { .. }) => None,
            CertificateError::Source(error) => error.cursive_message().map(|m| cursive_reason(&m)),
            CertificateError::Malformed { .. } => None,
        }
    }
}

/// The certificate's public key does not fit the key type or the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key's class does not match the key type (cursive's only check).
    #[error(
        "certificate {id} holds {found} key, which cannot make {key_type} signatures; check img_signature_key_type or img_signature_certificate_uuid"
    )]
    Mismatch {
        /// The certificate id.
        id: String,
        /// The key type named by the image.
        key_type: KeyType,
        /// What the certificate holds ("an RSA", "an Ed25519").
        found: String,
    },
    /// Strict mode: an EC key on another curve than the key type names.
    #[error(
        "certificate {id} holds an EC key on {curve}, but img_signature_key_type {key_type} names another curve (strict mode checks the curve; --compat cursive does not)"
    )]
    CurveMismatch {
        /// The certificate id.
        id: String,
        /// The key type named by the image.
        key_type: KeyType,
        /// The curve of the certificate's key.
        curve: Curve,
    },
    /// Strict mode: an RSA or DSA key under 2048 bits.
    #[error(
        "certificate {id} holds a {bits}-bit {algorithm} key; strict mode requires at least {minimum} bits (--compat cursive has no floor)"
    )]
    Weak {
        /// The certificate id.
        id: String,
        /// `RSA` or `DSA`.
        algorithm: &'static str,
        /// The modulus (RSA) or prime p (DSA) size.
        bits: usize,
        /// The floor.
        minimum: usize,
    },
    /// A binary-curve key in a build without feature `binary-curves`.
    #[error(
        "certificate {id} holds an EC key on {curve}, which this build of portcullis cannot check (binary curves need the cargo feature binary-curves)"
    )]
    CurveNotBuilt {
        /// The certificate id.
        id: String,
        /// The curve.
        curve: Curve,
    },
    /// A key portcullis cannot use (unknown curve, explicit curve parameters...).
    #[error("certificate {id} holds a key portcullis cannot use: {what}")]
    Unsupported {
        /// The certificate id.
        id: String,
        /// What the key is.
        what: String,
    },
    /// The key bytes inside the certificate are malformed.
    #[error("certificate {id} holds a malformed public key: {reason}")]
    Malformed {
        /// The certificate id.
        id: String,
        /// What is wrong.
        reason: String,
    },
}

impl KeyError {
    /// See [`Error::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            KeyError::Mismatch { .. } | KeyError::CurveMismatch { .. } => "key_type_mismatch",
            KeyError::Weak { .. } => "weak_key",
            KeyError::CurveNotBuilt { .. } => "unsupported_by_build",
            KeyError::Unsupported { .. } => "unsupported_key",
            KeyError::Malformed { .. } => "invalid_certificate",
        }
    }

    fn cursive_message(&self) -> Option<String> {
        match self {
            KeyError::Mismatch { key_type, .. } => Some(cursive_reason(&format!(
                "Invalid public key type for signature key type: {key_type}"
            ))),
            _ => None,
        }
    }
}

/// Certificate-chain validation (Nova's `trusted_image_certificates`) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The trusted list is empty or every entry in it was unusable.
    #[error(
        "certificate chain validation was requested but no trusted certificate is usable ({n_listed} listed); add the root that issued certificate {id} to the trusted list"
    )]
    NothingTrusted {
        /// The signing certificate id.
        id: String,
        /// How many ids the trusted list held.
        n_listed: usize,
    },
    /// `--compat cursive`: a trusted entry that makes cursive crash
    /// (non-UUID id or unparseable PEM) aborts the whole validation.
    #[error(
        "trusted certificate {id} cannot be read ({reason}); cursive aborts the whole validation on such an entry (strict mode skips it with a warning)"
    )]
    TrustedEntryUnreadable {
        /// The trusted entry's id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The signing certificate's validity ended before the verification time.
    #[error(
        "signing certificate {id} expired at {} (verification time {})",
        super::rfc3339(*.not_after),
        super::rfc3339(*.at)
    )]
    SignerExpired {
        /// The certificate id.
        id: String,
        /// End of validity.
        not_after: OffsetDateTime,
        /// The verification time.
        at: OffsetDateTime,
    },
    /// The signing certificate's validity starts after the verification time.
    #[error(
        "signing certificate {id} is not valid before {} (verification time {})",
        super::rfc3339(*.not_before),
        super::rfc3339(*.at)
    )]
    SignerNotYetValid {
        /// The certificate id.
        id: String,
        /// Start of validity.
        not_before: OffsetDateTime,
        /// The verification time.
        at: OffsetDateTime,
    },
    /// Strict mode: the signing certificate has keyUsage without digitalSignature.
    #[error(
        "signing certificate {id} has a keyUsage extension without digitalSignature, so it may not sign images"
    )]
    SignerKeyUsage {
        /// The certificate id.
        id: String,
    },
    /// No trusted issuer could be found for a certificate in the chain.
    #[error(
        "no trusted certificate issued {subject:?} (issuer {issuer:?}){}; the chain from certificate {id} does not reach a trusted self-signed root",
        describe_rejections(.rejected)
    )]
    NoIssuer {
        /// The signing certificate id.
        id: String,
        /// Subject of the certificate the builder got stuck at.
        subject: String,
        /// The issuer name it needed.
        issuer: String,
        /// Whether the builder got stuck at the signing certificate itself.
        at_signer: bool,
        /// Key-store id of the certificate the builder got stuck at.
        stuck_id: String,
        /// Candidates with the right name that were rejected, and why.
        rejected: Vec<String>,
    },
    /// Strict mode: several paths were tried and each failed.
    #[error(
        "no path from certificate {id} to a trusted self-signed root; tried: {}",
        first_few(.dead_ends, "; ")
    )]
    NoPath {
        /// The signing certificate id.
        id: String,
        /// Why each path failed.
        dead_ends: Vec<String>,
    },
    /// The issuers form a loop (cursive hangs here).
    #[error(
        "the certificate chain from certificate {id} loops back to {subject:?}; rejecting (cursive would loop forever)"
    )]
    Loop {
        /// The signing certificate id.
        id: String,
        /// The certificate met twice.
        subject: String,
    },
    /// Chain building gave up: too many issuer-signature checks or too long a
    /// chain (a trusted list of many same-named CAs). A path may exist past
    /// the limit, so this rejects (fails closed) with a kind of its own.
    #[error(
        "chain validation from certificate {id} stopped after {edge_checks} issuer signature checks at chain length {depth} (limits: {max_edge_checks} checks, {max_depth} certificates): the trusted list holds too many candidate issuers with the same names; trust fewer certificates"
    )]
    SearchLimit {
        /// The signing certificate id.
        id: String,
        /// Issuer-signature checks made.
        edge_checks: usize,
        /// Length of the chain being built when it stopped.
        depth: usize,
        /// The check limit.
        max_edge_checks: usize,
        /// The length limit.
        max_depth: usize,
    },
    /// A CA's pathLenConstraint is too small for the chain below it.
    #[error(
        "trusted certificate {ca_id} ({subject:?}) allows {path_len} intermediate CA(s) below it but the chain has {needed}"
    )]
    PathLength {
        /// The signing certificate id.
        id: String,
        /// The CA's id.
        ca_id: String,
        /// The CA's subject.
        subject: String,
        /// Its pathLenConstraint.
        path_len: u8,
        /// Intermediate CAs below it.
        needed: usize,
    },
    /// `--compat cursive`: an issuer that makes cursive crash.
    #[error(
        "trusted certificate {ca_id} ({subject:?}) cannot be checked the way cursive checks issuers: {reason}; rejecting (cursive crashes here)"
    )]
    IssuerCrash {
        /// The signing certificate id.
        id: String,
        /// The issuer candidate's id.
        ca_id: String,
        /// The issuer candidate's subject.
        subject: String,
        /// Why cursive cannot check it.
        reason: String,
    },
    /// A certificate in the chain has an extension that cannot be decoded.
    #[error("certificate {id} has a malformed {extension} extension: {reason}")]
    BadExtension {
        /// The certificate id.
        id: String,
        /// The extension name.
        extension: &'static str,
        /// What the decoder said.
        reason: String,
    },
}

fn describe_rejections(rejected: &[String]) -> String {
    if rejected.is_empty() {
        String::new()
    } else {
        format!(" (candidates rejected: {})", first_few(rejected, "; "))
    }
}

/// How many items of a list a message names before it only counts the rest.
const NAMED_IN_MESSAGES: usize = 3;

/// The first few `items` joined with `separator`, then how many more there
/// are: a message stays short however long the trusted list (issue 8: 1100
/// copies of one id made a 73 KB message).
pub(crate) fn first_few(items: &[String], separator: &str) -> String {
    let named = items.len().min(NAMED_IN_MESSAGES);
    let mut text = items[..named].join(separator);
    if items.len() > named {
        text.push_str(&format!("{separator}and {} more", items.len() - named));
    }
    text
}

impl ChainError {
    /// See [`Error::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            ChainError::NothingTrusted { .. }
            | ChainError::NoIssuer { .. }
            | ChainError::NoPath { .. } => "untrusted_chain",
            ChainError::TrustedEntryUnreadable { .. } => "invalid_trusted_certificate",
            ChainError::SignerExpired { .. } => "certificate_expired",
            ChainError::SignerNotYetValid { .. } => "certificate_not_yet_valid",
            ChainError::SignerKeyUsage { .. } => "invalid_key_usage",
            ChainError::Loop { .. } => "chain_loop",
            ChainError::SearchLimit { .. } => "chain_search_limit",
            ChainError::PathLength { .. } => "path_length_exceeded",
            ChainError::IssuerCrash { .. } => "unsupported_chain_algorithm",
            ChainError::BadExtension { .. } => "invalid_certificate",
        }
    }

    fn cursive_message(&self) -> Option<String> {
        match self {
            ChainError::NothingTrusted { .. } => Some(
                "Certificate chain building failed. Could not locate the signing certificate for the base certificate in the set of trusted certificates."
                    .to_owned(),
            ),
            // Above the signer, cursive's message is truncated to the id of
            // the certificate it got stuck at (an operator-precedence bug).
            ChainError::NoIssuer {
                at_signer,
                stuck_id,
                ..
            } => Some(if *at_signer {
                "Certificate chain building failed. Could not locate the signing certificate for the base certificate in the set of trusted certificates.".to_owned()
            } else {
                format!("certificate '{stuck_id}'")
            }),
            ChainError::SignerExpired { .. } | ChainError::SignerNotYetValid { .. } => {
                Some("The certificate is outside its valid date range.".to_owned())
            }
            ChainError::PathLength { ca_id, .. } => Some(format!(
                "Certificate validation failed. The signing certificate '{ca_id}' is not configured to support certificate chains of sufficient length."
            )),
            ChainError::TrustedEntryUnreadable { .. }
            | ChainError::SignerKeyUsage { .. }
            | ChainError::NoPath { .. }
            | ChainError::Loop { .. }
            | ChainError::SearchLimit { .. }
            | ChainError::IssuerCrash { .. }
            | ChainError::BadExtension { .. } => None,
        }
    }
}

/// The signature is malformed or does not match the data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `img_signature` decodes to zero bytes.
    #[error("img_signature is empty once decoded; sign the image and set img_signature")]
    Empty,
    /// An ECDSA/DSA signature that is not strict DER.
    #[error("img_signature is not a valid {key_type} signature")]
    Malformed {
        /// The key type.
        key_type: KeyType,
        /// What is wrong with the DER.
        #[source]
        source: DerSignatureError,
    },
    /// r or s is zero or too large for the key's group.
    #[error(
        "img_signature is not a valid {key_type} signature: r or s is out of range for the key"
    )]
    OutOfRange {
        /// The key type.
        key_type: KeyType,
    },
    /// An RSA signature longer than the modulus.
    #[error(
        "img_signature is {len} bytes, longer than the {modulus_len}-byte RSA modulus of certificate {id}"
    )]
    TooLong {
        /// The certificate id.
        id: String,
        /// Signature length.
        len: usize,
        /// Modulus length.
        modulus_len: usize,
    },
    /// The signature does not verify over the data.
    #[error(
        "the signature does not match the image data ({key_type} with {hash_method}, certificate {id}): the image was altered, or it was signed with another key, hash or padding"
    )]
    Mismatch {
        /// The certificate id.
        id: String,
        /// The key type.
        key_type: KeyType,
        /// The hash method's name.
        hash_method: &'static str,
    },
    /// `finish_with_digest` got a digest of another algorithm.
    #[error(
        "the digest given was computed with {got}, but img_signature_hash_method needs {expected}"
    )]
    DigestAlgorithm {
        /// What the signature needs.
        expected: HashAlgorithm,
        /// What was given.
        got: HashAlgorithm,
    },
}

impl SignatureError {
    /// See [`Error::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            SignatureError::Empty => "empty_signature",
            SignatureError::Malformed { .. }
            | SignatureError::OutOfRange { .. }
            | SignatureError::TooLong { .. }
            | SignatureError::Mismatch { .. } => "bad_signature",
            SignatureError::DigestAlgorithm { .. } => "wrong_digest_algorithm",
        }
    }

    fn cursive_message(&self) -> Option<String> {
        match self {
            SignatureError::Empty => {
                Some(cursive_reason("Error occurred while creating the verifier"))
            }
            SignatureError::Malformed { .. }
            | SignatureError::OutOfRange { .. }
            | SignatureError::TooLong { .. }
            | SignatureError::Mismatch { .. } => Some("Signature verification failed".to_owned()),
            SignatureError::DigestAlgorithm { .. } => None,
        }
    }
}
