//! Where the certificates of a verification come from: a directory
//! (`--cert-dir`, the default) or Barbican (`--key-manager barbican`,
//! `key_manager = "barbican"`), and the one asynchronous step that gets
//! them before the synchronous verifier runs.
//!
//! The verifier (`verify::Verifier::new`) is synchronous and asks a
//! `CertificateSource`; Barbican is a network service. The ids a
//! verification needs are known up front (the signer's id and the trusted
//! ids of chain validation), so [`KeyManager::certificates`] fetches them
//! all first and hands the verifier a source that answers from memory.
//!
//! This module owns that choice and that step. It must not verify, decide
//! trust or talk HTTP itself (`crate::openstack::Barbican` does).

use crate::openstack::{Barbican, Caller, FetchError};
use crate::verify::{CertificateId, CertificateSource, DirKeyStore, MemorySource, SourceError};

/// A store of signing certificates.
#[derive(Debug)]
pub enum KeyManager {
    /// `<uuid>.pem` / `<uuid>.der` files in a directory.
    Directory(DirKeyStore),
    /// Barbican, read with each caller's token.
    Barbican(Barbican),
}

/// The certificates of one verification, ready for the verifier.
#[derive(Debug, Clone)]
pub enum Certificates {
    /// Read from the directory as the verifier asks.
    Directory(DirKeyStore),
    /// Fetched from Barbican beforehand.
    Fetched(MemorySource),
}

impl CertificateSource for Certificates {
    fn certificate(&self, id: &CertificateId) -> Result<Vec<u8>, SourceError> {
        match self {
            Certificates::Directory(store) => store.certificate(id),
            Certificates::Fetched(source) => source.certificate(id),
        }
    }
}

impl KeyManager {
    /// The certificates `signer_id` and `trusted_ids` name, for a verifier
    /// about to run on behalf of `caller` (whose token Barbican sees; the
    /// directory ignores it).
    ///
    /// Outcomes per id (found, not found, forbidden, not a certificate) are
    /// kept for the verifier to report by its usual rules and errors, in
    /// strict and compat modes alike.
    ///
    /// Fails when Barbican cannot be read at all (no caller token, Keystone
    /// or Barbican unreachable, no key-manager in the catalog): nothing may
    /// be verified then.
    pub async fn certificates(
        &self,
        caller: Option<&Caller<'_>>,
        signer_id: &str,
        trusted_ids: Option<&[String]>,
    ) -> Result<Certificates, FetchError> {
        match self {
            KeyManager::Directory(store) => Ok(Certificates::Directory(store.clone())),
            KeyManager::Barbican(barbican) => {
                let caller = caller.ok_or(FetchError::NoToken)?;
                let mut ids = vec![signer_id];
                ids.extend(trusted_ids.into_iter().flatten().map(String::as_str));
                let fetched = barbican.fetch_certificates(caller, &ids).await?;
                Ok(Certificates::Fetched(fetched))
            }
        }
    }
}
