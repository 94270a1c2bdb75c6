//! Where the certificates of a verification come from: a directory
//! (`--cert-dir`, the default) or Barbican (`--key-manager barbican`,
//! `key_manager = "barbican"`), and the one asynchronous step that gets
//! them before the synchronous verifier runs, for every front end alike
//! (`verify`, uploads through `ingest` and `serve`, `glance verify|audit`).
//!
//! The verifier (`verify::Verifier::new`) is synchronous and asks a
//! `CertificateSource`; a directory is file IO and Barbican is a network
//! service. The ids a verification needs are known up front (the signer's
//! id and the trusted ids of chain validation), so [`KeyManager::prefetch`]
//! fetches them all first, without blocking the async runtime (the
//! directory on the blocking pool, Barbican with async HTTP), into a
//! [`Prefetched`] that answers from memory.
//!
//! This module owns that choice and that step, and whose token Barbican
//! sees: the caller's (a request's validated token, or the command line's
//! own session), never the server's. It must not verify, decide trust or
//! talk HTTP itself (`crate::openstack::Barbican` does).

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{IngestSettings, KeyManagerKind};
use crate::openstack::{Barbican, Caller, FetchError, SettingsError};
use crate::verify::Prefetched;

/// A store of signing certificates.
#[derive(Debug, Clone)]
pub enum KeyManager {
    /// `<uuid>.pem` / `<uuid>.der` files in a directory, opened and read on
    /// the blocking pool at each prefetch, so a directory created or fixed
    /// while a server runs is seen at the next upload.
    Directory(PathBuf),
    /// Barbican, read with each caller's token (its certificate cache is
    /// per user and scope).
    Barbican(Arc<Barbican>),
}

/// Fetching certificates failed as a whole (one missing or unreadable
/// certificate is not this: it is recorded in [`Prefetched`] and reported
/// by the verifier).
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
    /// Barbican could not be read (no caller token, Keystone or Barbican
    /// unreachable, no key-manager in the catalog): nothing may be verified.
    #[error(transparent)]
    Barbican(#[from] FetchError),
    /// The fetching task panicked or was cancelled.
    #[error("fetching certificates stopped unexpectedly")]
    Interrupted(#[source] tokio::task::JoinError),
}

impl KeyManager {
    /// The key manager `settings` configure (`key_manager`, `cert_dir`,
    /// `[barbican]`): `None` when it is the directory and no `cert_dir` is
    /// set (signed images are then refused). Does no IO.
    ///
    /// Fails when Barbican's TLS settings cannot be used.
    pub fn from_settings(
        settings: &IngestSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<KeyManager>, SettingsError> {
        match settings.key_manager {
            KeyManagerKind::Directory => Ok(settings.cert_dir.clone().map(KeyManager::Directory)),
            KeyManagerKind::Barbican => {
                let options = settings.barbican.clone();
                let barbican = Barbican::new(&options.tls.clone(), options, clock)?;
                Ok(Some(KeyManager::Barbican(Arc::new(barbican))))
            }
        }
    }

    /// Its name, for messages (`directory`, `barbican`).
    pub fn name(&self) -> &'static str {
        match self {
            KeyManager::Directory(_) => "directory",
            KeyManager::Barbican(_) => "barbican",
        }
    }

    /// Fetches the certificates `ids` name (the signer's id first, then the
    /// trusted ids; each UUID once; ids that are not certificate ids are
    /// left for the verifier to refuse) for a verifier about to run on
    /// behalf of `caller` (whose token Barbican sees; the directory ignores
    /// it), without blocking the calling task's thread.
    ///
    /// Outcomes per id (found, not found, forbidden, not a certificate) are
    /// kept for the verifier to report by its usual rules and errors, in
    /// strict and compat modes alike.
    ///
    /// Fails when the store as a whole cannot be used: the directory cannot
    /// be opened, or Barbican cannot be read at all (no caller token,
    /// Keystone or Barbican unreachable, no key-manager in the catalog).
    pub async fn prefetch(
        &self,
        caller: Option<&Caller<'_>>,
        ids: Vec<String>,
    ) -> Result<Prefetched, KeyManagerError> {
        match self {
            KeyManager::Directory(dir) => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || {
                    Prefetched::from_directory(&dir, &ids)
                        .map_err(|source| KeyManagerError::OpenDirectory { path: dir, source })
                })
                .await
                .map_err(KeyManagerError::Interrupted)?
            }
            KeyManager::Barbican(barbican) => {
                let caller = caller.ok_or(FetchError::NoToken)?;
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                Ok(barbican.fetch_certificates(caller, &ids).await?)
            }
        }
    }
}

impl KeyManagerError {
    /// A stable snake_case name (`cert_dir_unreadable`, Barbican's
    /// [`FetchError::kind`], `key_manager_failed`).
    pub fn kind(&self) -> &'static str {
        match self {
            KeyManagerError::OpenDirectory { .. } => "cert_dir_unreadable",
            KeyManagerError::Barbican(error) => error.kind(),
            KeyManagerError::Interrupted(_) => "key_manager_failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{CertificateId, CertificateSource};

    const SIGNER: &str = "e77879f6-911d-4b90-a2a3-026c00c6ec31";

    #[tokio::test]
    async fn the_directory_is_read_off_the_runtime_and_a_missing_one_fails_as_a_whole() {
        let certs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/certs");
        let keys = KeyManager::Directory(certs);
        let prefetched = keys.prefetch(None, vec![SIGNER.to_owned()]).await.unwrap();
        let id = CertificateId::parse(SIGNER).unwrap();
        assert!(prefetched.certificate(&id).is_ok());

        let keys = KeyManager::Directory(PathBuf::from("/nonexistent/portcullis-certs"));
        let err = keys
            .prefetch(None, vec![SIGNER.to_owned()])
            .await
            .unwrap_err();
        assert!(
            matches!(err, KeyManagerError::OpenDirectory { .. }),
            "{err}"
        );
        assert_eq!(err.kind(), "cert_dir_unreadable");
    }

    #[tokio::test]
    async fn barbican_without_a_caller_token_fails_closed() {
        let barbican = Barbican::new(
            &Default::default(),
            crate::openstack::BarbicanOptions::default(),
            Arc::new(crate::clock::SystemClock),
        )
        .unwrap();
        let keys = KeyManager::Barbican(Arc::new(barbican));
        let err = keys
            .prefetch(None, vec![SIGNER.to_owned()])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "no_token", "{err}");
    }
}
