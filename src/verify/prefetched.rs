//! [`Prefetched`]: the certificates one verification needs, fetched before
//! it starts by an asynchronous key manager (`crate::key_manager`: a
//! directory read on the blocking pool, or Barbican over HTTP), served to
//! the synchronous [`super::Verifier::new`] from memory.
//!
//! The ids are known before any byte of the image: the signer's
//! (`img_signature_certificate_uuid`) and the trusted ones. Each id's
//! outcome (the certificate, or why not: not found, forbidden, not a
//! certificate, unparseable, unavailable with its cause) is recorded by
//! UUID and replayed under the id text the verifier asks with, so the
//! verifier reports it exactly as if it had read the store itself. An id
//! nobody fetched is unavailable (fail closed). This module must not parse
//! X.509, decide trust or do IO beyond [`Prefetched::from_directory`]'s
//! file reads (which its caller runs off the async runtime).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::keystore::{CertificateId, CertificateSource, DirKeyStore, SecretFormat, SourceError};

/// Certificates fetched ahead of a verification, by UUID; a
/// [`CertificateSource`] that does no IO.
#[derive(Debug, Clone, Default)]
pub struct Prefetched {
    entries: HashMap<uuid::Uuid, Result<Vec<u8>, Failure>>,
}

impl Prefetched {
    /// An empty source (every id unavailable).
    pub fn new() -> Prefetched {
        Prefetched::default()
    }

    /// Records what the key store answered for `id` (any spelling of its
    /// UUID answers the same afterwards).
    pub fn insert(&mut self, id: &CertificateId, outcome: Result<Vec<u8>, SourceError>) {
        self.entries
            .insert(id.uuid(), outcome.map_err(Failure::from));
    }

    /// Whether `id`'s UUID was recorded.
    pub fn contains(&self, id: &CertificateId) -> bool {
        self.entries.contains_key(&id.uuid())
    }

    /// Reads `ids` from the directory `dir` (each UUID once; ids that do
    /// not parse are left for the verifier to refuse). Blocking: run it on
    /// the blocking pool.
    ///
    /// Fails when the directory cannot be opened; a certificate that is
    /// missing or invalid is recorded and reported when asked for.
    pub fn from_directory(dir: &Path, ids: &[String]) -> std::io::Result<Prefetched> {
        let store = DirKeyStore::open(dir)?;
        let mut prefetched = Prefetched::new();
        for text in ids {
            // An id that does not parse is refused by the verifier with its
            // own error before it asks the source; nothing to fetch.
            let Ok(id) = CertificateId::parse(text) else {
                continue;
            };
            if !prefetched.contains(&id) {
                prefetched.insert(&id, store.certificate(&id));
            }
        }
        Ok(prefetched)
    }

    /// How many ids were recorded (found or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl CertificateSource for Prefetched {
    fn certificate(&self, id: &CertificateId) -> Result<Vec<u8>, SourceError> {
        match self.entries.get(&id.uuid()) {
            Some(Ok(der)) => Ok(der.clone()),
            Some(Err(failure)) => Err(failure.replay(id.to_string())),
            // Fail closed: an id nobody fetched is not silently "not found".
            None => Err(SourceError::Unavailable {
                id: id.to_string(),
                source: "it was not fetched from the key manager before verification".into(),
            }),
        }
    }
}

/// A [`SourceError`] without its id, kept so it can be reported again
/// (its cause shared).
#[derive(Debug, Clone)]
enum Failure {
    NotFound {
        location: Option<String>,
    },
    Unavailable {
        cause: Arc<dyn std::error::Error + Send + Sync>,
    },
    NotACertificate {
        format: SecretFormat,
        label: Option<String>,
        secret_type: Option<String>,
    },
    Forbidden {
        reason: String,
    },
    Unparseable {
        reason: String,
    },
}

impl From<SourceError> for Failure {
    fn from(err: SourceError) -> Failure {
        match err {
            SourceError::NotFound { location, .. } => Failure::NotFound { location },
            SourceError::Unavailable { source, .. } => Failure::Unavailable {
                cause: Arc::from(source),
            },
            SourceError::NotACertificate {
                format,
                label,
                secret_type,
                ..
            } => Failure::NotACertificate {
                format,
                label,
                secret_type,
            },
            SourceError::Forbidden { reason, .. } => Failure::Forbidden { reason },
            SourceError::Unparseable { reason, .. } => Failure::Unparseable { reason },
        }
    }
}

impl Failure {
    fn replay(&self, id: String) -> SourceError {
        match self {
            Failure::NotFound { location } => SourceError::NotFound {
                id,
                location: location.clone(),
            },
            Failure::Unavailable { cause } => SourceError::Unavailable {
                id,
                source: Box::new(SharedCause(cause.clone())),
            },
            Failure::NotACertificate {
                format,
                label,
                secret_type,
            } => SourceError::NotACertificate {
                id,
                format: *format,
                label: label.clone(),
                secret_type: secret_type.clone(),
            },
            Failure::Forbidden { reason } => SourceError::Forbidden {
                id,
                reason: reason.clone(),
            },
            Failure::Unparseable { reason } => SourceError::Unparseable {
                id,
                reason: reason.clone(),
            },
        }
    }
}

/// A shared cause, shown and chained exactly as the original.
#[derive(Debug)]
struct SharedCause(Arc<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for SharedCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const SIGNER: &str = "e77879f6-911d-4b90-a2a3-026c00c6ec31";

    fn certs() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/certs")
    }

    #[test]
    fn directory_certificates_and_failures_replay_as_the_directory_reports_them() {
        let dir = tempfile::tempdir().unwrap();
        let der = std::fs::read(certs().join(format!("{SIGNER}.pem"))).unwrap();
        std::fs::write(dir.path().join(format!("{SIGNER}.pem")), &der).unwrap();
        let directory_entry = "0b6a1c62-3f6e-4f0a-9d55-2d9c1f7e8a11";
        std::fs::create_dir(dir.path().join(format!("{directory_entry}.pem"))).unwrap();
        let missing = "11111111-2222-4333-8444-555555555555";
        let prefetched = Prefetched::from_directory(
            dir.path(),
            &[
                SIGNER.to_owned(),
                missing.to_owned(),
                directory_entry.to_owned(),
                SIGNER.to_uppercase(),
                "not-a-uuid".to_owned(),
            ],
        )
        .unwrap();
        assert_eq!(prefetched.len(), 3);

        let direct = DirKeyStore::open(dir.path()).unwrap();
        for id in [SIGNER, missing, directory_entry] {
            let id = CertificateId::parse(id).unwrap();
            let expected = direct.certificate(&id);
            let got = prefetched.certificate(&id);
            match (expected, got) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(a), Err(b)) => {
                    assert_eq!(a.kind(), b.kind());
                    assert_eq!(a.to_string(), b.to_string());
                    assert_eq!(
                        std::error::Error::source(&a).map(ToString::to_string),
                        std::error::Error::source(&b).map(ToString::to_string)
                    );
                }
                (a, b) => panic!("{id}: directory {a:?}, prefetched {b:?}"),
            }
        }
        // Anything not fetched fails closed.
        let other = CertificateId::parse("99999999-2222-4333-8444-555555555555").unwrap();
        assert_eq!(
            prefetched.certificate(&other).unwrap_err().kind(),
            "certificate_unavailable"
        );
    }

    #[test]
    fn a_missing_directory_fails_as_a_whole() {
        let err = Prefetched::from_directory(
            Path::new("/nonexistent/portcullis-certs"),
            &[SIGNER.to_owned()],
        )
        .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    }

    #[test]
    fn memory_source_replays_each_answer_under_the_asked_id() {
        let plain = CertificateId::parse("6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55").unwrap();
        let href =
            CertificateId::parse("https://kms/v1/secrets/6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55")
                .unwrap();
        let other = CertificateId::parse("00000000-0000-4000-8000-000000000001").unwrap();
        let mut source = Prefetched::new();
        source.insert(&plain, Ok(vec![0x30, 0x00]));
        assert_eq!(source.certificate(&href).unwrap(), vec![0x30, 0x00]);
        source.insert(
            &other,
            Err(SourceError::Forbidden {
                id: other.to_string(),
                reason: "Secret retrieval attempt not allowed".into(),
            }),
        );
        for _ in 0..2 {
            let err = source.certificate(&other).unwrap_err();
            assert_eq!(err.kind(), "certificate_forbidden");
            assert!(err.to_string().contains("not allowed"), "{err}");
        }
        let missing = CertificateId::parse("00000000-0000-4000-8000-000000000002").unwrap();
        let err = source.certificate(&missing).unwrap_err();
        assert_eq!(err.kind(), "certificate_unavailable");
        let unavailable = SourceError::Unavailable {
            id: missing.to_string(),
            source: Box::new(std::io::Error::other("connection refused")),
        };
        source.insert(&missing, Err(unavailable));
        let err = source.certificate(&missing).unwrap_err();
        let source_text = std::error::Error::source(&err).unwrap().to_string();
        assert_eq!(source_text, "connection refused");
    }
}
