//! Image-signature verification, compatible with OpenStack cursive (what
//! Glance runs on upload and Nova before boot), strict by default.
//!
//! The flow, in cursive's order so the first failure matches:
//! 1. [`SignatureParams`] parses the four `img_signature*` properties once
//!    (missing properties, base64, hash method, key type).
//! 2. [`Verifier::new`] fetches the signing certificate from a
//!    [`CertificateSource`], checks its key against the key type (and, in
//!    strict mode, the curve and a 2048-bit floor), rejects an empty
//!    signature, validates the certificate chain when trusted certificate
//!    ids are given, and decodes the signature. All of this happens before
//!    any image byte is read.
//! 3. [`Verifier::update`] hashes the image stream; [`Verifier::finish`]
//!    (or [`Verifier::finish_with_digest`], when the caller already hashed
//!    the data) checks the signature over the digest.
//!
//! [`Mode::CompatCursive`] reproduces cursive's deterministic behaviour;
//! [`Mode::Strict`] fixes what is weak (see README.md, "strict mode").
//! This module must not read the system clock (it takes a [`Clock`]) nor
//! read image data itself (callers feed it).

mod algorithm;
pub mod base64;
mod cert;
mod chain;
pub mod dersig;
mod error;
mod inputs;
mod issuer;
mod key;
mod keystore;
#[cfg(feature = "binary-curves")]
mod openssl_ec;
mod params;
mod pem;
mod prefetched;
pub mod sign;
mod tlv;

use std::fmt;

use time::OffsetDateTime;

pub use algorithm::{Curve, HashMethod, KeyFamily, KeyType};
pub use cert::CertificateSummary;
pub use error::{
    CertificateError, ChainError, Error, KeyError, ParamsError, SignatureError, with_causes,
};
pub use inputs::{
    MAX_PROPERTIES_FILE_BYTES, PropertiesFileError, properties_from_json, read_properties_file,
    trusted_ids_from_text,
};
pub use keystore::{
    BadCertificateId, CertificateId, CertificateSource, DirKeyStore, EntryError, SecretFormat,
    SourceError,
};
pub(crate) use keystore::{barbican_secret_format, castellan_certificate};
pub use params::{
    CERTIFICATE_UUID, HASH_METHOD, KEY_TYPE, PROPERTIES, Presence, RawSignatureProperties,
    SIGNATURE, SignatureParams,
};
pub use prefetched::Prefetched;
pub use tlv::{ExpectError, TlvError};

use crate::clock::Clock;
use crate::hash::{Digest, HashAlgorithm, Hasher};
use cert::{Cert, Validity};
use key::{KeyPolicy, PreparedSignature, PublicKey};

/// Which behaviour to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// cursive's behaviour with its weaknesses fixed (README.md lists each change).
    #[default]
    Strict,
    /// cursive 0.3.1's deterministic behaviour, exactly; rejects where cursive
    /// crashes or hangs, and accepts binary curves when the build has them.
    CompatCursive,
}

impl Mode {
    /// `strict` or `cursive`, as on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::CompatCursive => "cursive",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Settings for one verification.
#[derive(Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// Strict or cursive-compatible.
    pub mode: Mode,
    /// Trusted certificate ids (Nova's `trusted_image_certificates`).
    /// `Some` switches chain validation on; `Some(&[])` means "validate,
    /// nothing trusted" and rejects.
    pub trusted_certificate_ids: Option<&'a [String]>,
    /// The time certificates are checked at.
    pub clock: &'a dyn Clock,
}

impl fmt::Debug for VerifyOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("mode", &self.mode)
            .field("trusted_certificate_ids", &self.trusted_certificate_ids)
            .field("now", &self.clock.now())
            .finish()
    }
}

/// Something worth telling the user that did not reject the image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// The signing certificate had expired at verification time (only
    /// chain validation enforces dates, as in cursive).
    #[error(
        "signing certificate {id} expired at {} (verification time {}); cursive does not check dates outside chain validation",
        rfc3339(*.not_after),
        rfc3339(*.at)
    )]
    CertificateExpired {
        /// The certificate id.
        id: String,
        /// End of validity.
        not_after: OffsetDateTime,
        /// Verification time.
        at: OffsetDateTime,
    },
    /// The signing certificate was not yet valid at verification time.
    #[error(
        "signing certificate {id} is not valid before {} (verification time {}); cursive does not check dates outside chain validation",
        rfc3339(*.not_before),
        rfc3339(*.at)
    )]
    CertificateNotYetValid {
        /// The certificate id.
        id: String,
        /// Start of validity.
        not_before: OffsetDateTime,
        /// Verification time.
        at: OffsetDateTime,
    },
    /// Strict mode skipped an unreadable entry of the trusted list.
    #[error("trusted certificate {id} was skipped: {reason}")]
    TrustedCertificateSkipped {
        /// The trusted entry's id.
        id: String,
        /// Why it could not be used.
        reason: String,
    },
}

impl Warning {
    /// A stable snake_case name for the warning.
    pub fn kind(&self) -> &'static str {
        match self {
            Warning::CertificateExpired { .. } => "certificate_expired",
            Warning::CertificateNotYetValid { .. } => "certificate_not_yet_valid",
            Warning::TrustedCertificateSkipped { .. } => "trusted_certificate_skipped",
        }
    }
}

/// Formats a time as RFC 3339 (`2026-06-01T00:00:00Z`) for messages and output.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// A successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The mode used.
    pub mode: Mode,
    /// The hash method.
    pub hash_method: HashMethod,
    /// The key type.
    pub key_type: KeyType,
    /// The digest of the image the signature was checked over.
    pub digest: Digest,
    /// The signing certificate.
    pub signer: CertificateSummary,
    /// The validated chain, signer first, root last (when validated).
    pub chain: Option<Vec<CertificateSummary>>,
    /// Warnings that did not reject the image.
    pub warnings: Vec<Warning>,
}

/// One image's signature check: built from its properties before any data
/// is read, fed the data, then finished.
#[derive(Debug)]
pub struct Verifier {
    mode: Mode,
    hash_method: HashMethod,
    key_type: KeyType,
    hasher: Hasher,
    prepared: PreparedSignature,
    signer: CertificateSummary,
    chain: Option<Vec<CertificateSummary>>,
    warnings: Vec<Warning>,
}

impl Verifier {
    /// Fetches the signing certificate and checks everything that does not
    /// need the image data.
    ///
    /// Fails, in this order, with: [`CertificateError`] (bad id, not found,
    /// not a certificate, unreadable store), [`KeyError`] (key class, and in
    /// strict mode curve and size; key types this build cannot check),
    /// [`SignatureError::Empty`], [`ChainError`] (when trusted ids are
    /// given), then [`SignatureError`] for a signature that cannot be
    /// decoded against the key. Every failure after the certificate was
    /// read carries its summary ([`Error::signer`]).
    pub fn new(
        params: &SignatureParams,
        source: &dyn CertificateSource,
        options: &VerifyOptions<'_>,
    ) -> Result<Verifier, Error> {
        let mode = options.mode;
        let key_type = params.key_type();

        // 1. The certificate id must be a UUID or a Barbican href.
        let id = CertificateId::parse(params.certificate_id()).map_err(CertificateError::from)?;
        tracing::debug!(id = %id, "step 1: certificate id parsed");

        // 2. Fetch and parse the certificate. From here on every failure
        //    carries its summary (who signed), see `Error::signer`.
        let der = source.certificate(&id).map_err(CertificateError::from)?;
        let cert = Cert::parse(id.as_str(), der).map_err(|reason| CertificateError::Malformed {
            id: id.to_string(),
            reason,
        })?;
        tracing::debug!(subject = %cert.subject_text(), "step 2: certificate fetched");
        let summary = cert.summary();
        let key_error = |error: KeyError| Error::Key {
            error,
            signer: Box::new(summary.clone()),
        };
        let signature_error = |error: SignatureError| Error::Signature {
            error,
            signer: Box::new(summary.clone()),
        };

        // 3. Its key must fit the key type.
        let key = cert
            .spki_der()
            .and_then(|spki| PublicKey::from_spki(&spki))
            .map_err(|reason| {
                key_error(KeyError::Malformed {
                    id: id.to_string(),
                    reason,
                })
            })?;
        let policy = match mode {
            Mode::Strict => KeyPolicy {
                curve_must_match: true,
                minimum_bits: Some(key::MIN_STRICT_BITS),
            },
            Mode::CompatCursive => KeyPolicy {
                curve_must_match: false,
                minimum_bits: None,
            },
        };
        key::check_key_type(id.as_str(), &key, key_type, policy).map_err(key_error)?;
        tracing::debug!(key = %key.description(), "step 3: key matches {key_type}");

        // 4. An empty signature fails only now, after the certificate (as cursive).
        if params.signature().is_empty() {
            return Err(signature_error(SignatureError::Empty));
        }

        // 5. Chain validation, when trusted certificates are given.
        let now = options.clock.now();
        let mut warnings = Vec::new();
        let chain = match options.trusted_certificate_ids {
            Some(trusted) => Some(
                chain::validate(
                    &cert,
                    trusted,
                    source,
                    mode,
                    now,
                    &mut warnings,
                    chain::LIMITS,
                )
                .map_err(|error| Error::Chain {
                    error: Box::new(error),
                    signer: Box::new(summary.clone()),
                })?,
            ),
            None => None,
        };
        tracing::debug!(validated = chain.is_some(), "step 5: chain");

        // 6. Dates outside chain validation only warn, as cursive does not check them.
        if chain.is_none() {
            match cert.validity_at(now) {
                Validity::Valid => {}
                Validity::Expired => warnings.push(Warning::CertificateExpired {
                    id: id.to_string(),
                    not_after: cert.not_after(),
                    at: now,
                }),
                Validity::NotYetValid => warnings.push(Warning::CertificateNotYetValid {
                    id: id.to_string(),
                    not_before: cert.not_before(),
                    at: now,
                }),
            }
        }

        // 7. Decode the signature against the key.
        let prepared = PreparedSignature::new(id.as_str(), &key, key_type, params.signature())
            .map_err(signature_error)?;
        tracing::debug!("step 7: signature decoded; ready for data");

        Ok(Verifier {
            mode,
            hash_method: params.hash_method(),
            key_type,
            hasher: params.hash_method().algorithm().hasher(),
            prepared,
            signer: summary,
            chain,
            warnings,
        })
    }

    /// The hash the image must be digested with (to share a digest computed
    /// elsewhere, see [`Verifier::finish_with_digest`]).
    pub fn hash_algorithm(&self) -> HashAlgorithm {
        self.hash_method.algorithm()
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The hash method.
    pub fn hash_method(&self) -> HashMethod {
        self.hash_method
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The signing certificate.
    pub fn signer(&self) -> &CertificateSummary {
        &self.signer
    }

    /// The validated chain (signer first), when trusted ids were given.
    pub fn chain(&self) -> Option<&[CertificateSummary]> {
        self.chain.as_deref()
    }

    /// Warnings so far.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Feeds image bytes, in any chunking.
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    /// Finishes hashing what [`Verifier::update`] was fed and checks the signature.
    ///
    /// Fails with [`SignatureError::Mismatch`] when it does not verify.
    pub fn finish(mut self) -> Result<Verification, Error> {
        let fresh = self.hash_algorithm().hasher();
        let digest = std::mem::replace(&mut self.hasher, fresh).finish();
        self.finish_with_digest(&digest)
    }

    /// Checks the signature over a digest of the image computed elsewhere
    /// (data fed to [`Verifier::update`] is ignored).
    ///
    /// Fails with [`SignatureError::DigestAlgorithm`] when `digest` was
    /// computed with another hash, and [`SignatureError::Mismatch`] when
    /// the signature does not verify.
    pub fn finish_with_digest(self, digest: &Digest) -> Result<Verification, Error> {
        let expected = self.hash_algorithm();
        if digest.algorithm() != expected {
            return Err(Error::Signature {
                error: SignatureError::DigestAlgorithm {
                    expected,
                    got: digest.algorithm(),
                },
                signer: Box::new(self.signer),
            });
        }
        if !self.prepared.verify(self.hash_method, digest.as_bytes()) {
            return Err(Error::Signature {
                error: SignatureError::Mismatch {
                    id: self.signer.id.clone(),
                    key_type: self.key_type,
                    hash_method: self.hash_method.name(),
                },
                signer: Box::new(self.signer),
            });
        }
        tracing::debug!("step 8: signature verified");
        Ok(Verification {
            mode: self.mode,
            hash_method: self.hash_method,
            key_type: self.key_type,
            digest: digest.clone(),
            signer: self.signer,
            chain: self.chain,
            warnings: self.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn verifier_crosses_threads() {
        // Ingest holds a Verifier across `.await` points.
        assert_send::<Verifier>();
        assert_send::<Verification>();
        assert_send::<Error>();
    }
}
