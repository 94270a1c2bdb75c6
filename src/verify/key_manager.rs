//! Where an upload gets its certificates from without blocking the async
//! runtime: [`KeyManager`] (a directory now; Barbican later) fetches every
//! certificate one verification may need, up front, into [`Prefetched`], an
//! in-memory [`CertificateSource`] that the synchronous [`super::Verifier::new`]
//! then reads.
//!
//! The ids are known before any byte of the image: the signer's
//! (`img_signature_certificate_uuid`) and the trusted ones. A directory is
//! read on tokio's blocking pool (file reads would stall a runtime thread
//! that serves other requests); a Barbican client will fetch the same ids
//! with async HTTP and fill the same [`Prefetched`]. Failures are recorded
//! per id and replayed when the verifier asks, so the verifier reports them
//! exactly as if it had read the store itself (not found, not a
//! certificate, unavailable with its cause). This module must not parse
//! X.509 or decide trust.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::keystore::{CertificateId, CertificateSource, DirKeyStore, SourceError};

/// A source of signing certificates, chosen by configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyManager {
    /// `<uuid>.pem` / `<uuid>.der` files in a directory ([`DirKeyStore`]),
    /// opened and read on the blocking pool for each upload, so a directory
    /// created or fixed while a server runs is seen at the next upload.
    Directory(PathBuf),
}

/// Fetching certificates failed as a whole (one missing certificate is not
/// this: it is recorded in [`Prefetched`] and reported by the verifier).
#[derive(Debug, thiserror::Error)]
pub enum KeyManagerError {
    /// The certificate directory does not exist, is not a directory or cannot be listed.
    #[error("cannot open the certificate directory {path}")]
    OpenDirectory {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The fetching task panicked or was cancelled.
    #[error("fetching certificates stopped unexpectedly")]
    Interrupted(#[source] tokio::task::JoinError),
}

impl KeyManager {
    /// Fetches the certificates stored under `ids` (duplicates fetched
    /// once; ids that are not certificate ids are left for the verifier to
    /// refuse), without blocking the calling async task's thread.
    ///
    /// Fails only when the store as a whole cannot be used; a certificate
    /// that is missing or invalid is recorded and reported when asked for.
    pub async fn prefetch(&self, ids: Vec<String>) -> Result<Prefetched, KeyManagerError> {
        match self {
            KeyManager::Directory(dir) => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || prefetch_directory(dir, ids))
                    .await
                    .map_err(KeyManagerError::Interrupted)?
            }
        }
    }
}

fn prefetch_directory(dir: PathBuf, ids: Vec<String>) -> Result<Prefetched, KeyManagerError> {
    let store = DirKeyStore::open(&dir)
        .map_err(|source| KeyManagerError::OpenDirectory { path: dir, source })?;
    let mut prefetched = Prefetched::default();
    for text in ids {
        if prefetched.entries.contains_key(&text) {
            continue;
        }
        // An id that does not parse is refused by the verifier with its own
        // error before it asks the source; nothing to fetch.
        let Ok(id) = CertificateId::parse(&text) else {
            continue;
        };
        let entry = match store.certificate(&id) {
            Ok(der) => Ok(der),
            Err(err) => Err(Failure::from(err)),
        };
        prefetched.entries.insert(text, entry);
    }
    Ok(prefetched)
}

/// Certificates fetched ahead of a verification, by id as given; a
/// [`CertificateSource`] that does no IO.
#[derive(Debug, Default)]
pub struct Prefetched {
    entries: HashMap<String, Result<Vec<u8>, Failure>>,
}

impl Prefetched {
    /// How many ids were fetched (found or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was fetched.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl CertificateSource for Prefetched {
    fn certificate(&self, id: &CertificateId) -> Result<Vec<u8>, SourceError> {
        match self.entries.get(id.as_str()) {
            Some(Ok(der)) => Ok(der.clone()),
            Some(Err(failure)) => Err(failure.replay()),
            // Fail closed: an id nobody fetched is not silently "not found".
            None => Err(SourceError::Unavailable {
                id: id.to_string(),
                source: "the certificate was not fetched before the verification".into(),
            }),
        }
    }
}

/// A [`SourceError`] kept so it can be reported again (its cause shared).
#[derive(Debug)]
enum Failure {
    NotFound {
        id: String,
        location: Option<String>,
    },
    Unavailable {
        id: String,
        cause: Arc<dyn std::error::Error + Send + Sync>,
    },
    NotACertificate {
        id: String,
        format: super::keystore::SecretFormat,
        label: Option<String>,
        secret_type: Option<String>,
    },
    Forbidden {
        id: String,
        reason: String,
    },
    Unparseable {
        id: String,
        reason: String,
    },
}

impl From<SourceError> for Failure {
    fn from(err: SourceError) -> Failure {
        match err {
            SourceError::NotFound { id, location } => Failure::NotFound { id, location },
            SourceError::Unavailable { id, source } => Failure::Unavailable {
                id,
                cause: Arc::from(source),
            },
            SourceError::NotACertificate {
                id,
                format,
                label,
                secret_type,
            } => Failure::NotACertificate {
                id,
                format,
                label,
                secret_type,
            },
            SourceError::Forbidden { id, reason } => Failure::Forbidden { id, reason },
            SourceError::Unparseable { id, reason } => Failure::Unparseable { id, reason },
        }
    }
}

impl Failure {
    fn replay(&self) -> SourceError {
        match self {
            Failure::NotFound { id, location } => SourceError::NotFound {
                id: id.clone(),
                location: location.clone(),
            },
            Failure::Unavailable { id, cause } => SourceError::Unavailable {
                id: id.clone(),
                source: Box::new(SharedCause(cause.clone())),
            },
            Failure::NotACertificate {
                id,
                format,
                label,
                secret_type,
            } => SourceError::NotACertificate {
                id: id.clone(),
                format: *format,
                label: label.clone(),
                secret_type: secret_type.clone(),
            },
            Failure::Forbidden { id, reason } => SourceError::Forbidden {
                id: id.clone(),
                reason: reason.clone(),
            },
            Failure::Unparseable { id, reason } => SourceError::Unparseable {
                id: id.clone(),
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
    use super::*;

    const SIGNER: &str = "e77879f6-911d-4b90-a2a3-026c00c6ec31";

    fn certs() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/certs")
    }

    #[tokio::test]
    async fn fetched_certificates_and_failures_replay_as_the_directory_reports_them() {
        let dir = tempfile::tempdir().unwrap();
        let der = std::fs::read(certs().join(format!("{SIGNER}.pem"))).unwrap();
        std::fs::write(dir.path().join(format!("{SIGNER}.pem")), &der).unwrap();
        let directory_entry = "0b6a1c62-3f6e-4f0a-9d55-2d9c1f7e8a11";
        std::fs::create_dir(dir.path().join(format!("{directory_entry}.pem"))).unwrap();
        let missing = "11111111-2222-4333-8444-555555555555";
        let keys = KeyManager::Directory(dir.path().to_owned());
        let prefetched = keys
            .prefetch(vec![
                SIGNER.to_owned(),
                missing.to_owned(),
                directory_entry.to_owned(),
                SIGNER.to_owned(),
                "not-a-uuid".to_owned(),
            ])
            .await
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

    #[tokio::test]
    async fn a_missing_directory_fails_as_a_whole() {
        let keys = KeyManager::Directory(PathBuf::from("/nonexistent/portcullis-certs"));
        let err = keys.prefetch(vec![SIGNER.to_owned()]).await.unwrap_err();
        assert!(
            matches!(err, KeyManagerError::OpenDirectory { .. }),
            "{err}"
        );
    }
}
