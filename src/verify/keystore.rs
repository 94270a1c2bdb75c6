//! Where signing certificates come from: the [`CertificateSource`] trait,
//! Barbican-style certificate ids, [`DirKeyStore`], a directory that
//! mimics Barbican as castellan sees it (what an asynchronous key manager
//! fetched before the synchronous verifier runs is `super::Prefetched`).
//!
//! This module owns id syntax and secret-type semantics (castellan's
//! mapping of Barbican secret types and of PEM payloads); it must not
//! parse X.509 (the verifier does), do network IO or decide trust.

use std::fmt;
use std::path::{Path, PathBuf};

use super::pem;

/// A certificate id as Glance stores it in `img_signature_certificate_uuid`:
/// a UUID, or a Barbican secret href whose last `/`-separated piece is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateId {
    text: String,
    uuid: uuid::Uuid,
}

/// An id that is not a UUID nor a Barbican href ending in one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadCertificateId {
    /// The id is empty.
    #[error(
        "the certificate id is empty; set img_signature_certificate_uuid to the key manager's certificate id"
    )]
    Empty,
    /// The last `/`-separated piece is not a UUID.
    #[error(
        "certificate id {id:?} is not a UUID or a Barbican secret href ending in one (as https://kms/v1/secrets/6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55)"
    )]
    NotAUuid {
        /// The rejected id.
        id: String,
    },
}

impl CertificateId {
    /// Parses an id with barbicanclient's rules: the last `/`-separated
    /// piece, once `urn:` and `uuid:` are removed, surrounding braces
    /// stripped and hyphens dropped, must be 32 hex digits (either case).
    ///
    /// Fails when the id is empty or its last piece is not a UUID.
    /// (Python's `int()` would also take `_` separators and a sign there;
    /// portcullis rejects those.)
    pub fn parse(text: &str) -> Result<CertificateId, BadCertificateId> {
        if text.is_empty() {
            return Err(BadCertificateId::Empty);
        }
        let not_a_uuid = || BadCertificateId::NotAUuid {
            id: text.to_owned(),
        };
        let last = text.rsplit('/').next().unwrap_or(text);
        let without_prefixes = last.replace("urn:", "").replace("uuid:", "");
        let hex: String = without_prefixes
            .trim_matches(|c| c == '{' || c == '}')
            .chars()
            .filter(|&c| c != '-')
            .collect();
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_a_uuid());
        }
        let value = u128::from_str_radix(&hex, 16).map_err(|_| not_a_uuid())?;
        Ok(CertificateId {
            text: text.to_owned(),
            uuid: uuid::Uuid::from_u128(value),
        })
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The UUID it names.
    pub fn uuid(&self) -> uuid::Uuid {
        self.uuid
    }
}

impl fmt::Display for CertificateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What kind of secret a key store holds under an id, in castellan's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretFormat {
    /// A private key (`PKCS8`).
    Pkcs8,
    /// A public key (`SubjectPublicKeyInfo`).
    SubjectPublicKeyInfo,
    /// Anything else (`Opaque`).
    Opaque,
    /// A symmetric key or passphrase (`RAW`).
    Raw,
}

impl fmt::Display for SecretFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretFormat::Pkcs8 => "PKCS8",
            SecretFormat::SubjectPublicKeyInfo => "SubjectPublicKeyInfo",
            SecretFormat::Opaque => "Opaque",
            SecretFormat::Raw => "RAW",
        })
    }
}

/// Why a key store did not return a certificate.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Nothing is stored under the id (Barbican 404).
    #[error("certificate {id} was not found in the key store{}", where_looked(.location))]
    NotFound {
        /// The id asked for.
        id: String,
        /// Where the store looked, when it can say.
        location: Option<String>,
    },
    /// The store could not be read (I/O, auth, 5xx).
    #[error("certificate {id} could not be retrieved from the key store")]
    Unavailable {
        /// The id asked for.
        id: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The key store refused the caller access to the secret (Barbican
    /// 403): a verdict on this caller and certificate, not an outage.
    #[error(
        "certificate {id} cannot be read with the caller's credentials: {reason}; ask the secret's owner for access (a Barbican ACL) or use a certificate your project holds"
    )]
    Forbidden {
        /// The id asked for.
        id: String,
        /// What the key store said.
        reason: String,
    },
    /// The secret under the id is not a certificate.
    #[error(
        "key store entry {id} is not a certificate but a {format} secret{}{}; store the signing certificate under this id (PEM label CERTIFICATE; in Barbican, secret type certificate)",
        label_note(.label),
        secret_type_note(.secret_type)
    )]
    NotACertificate {
        /// The id asked for.
        id: String,
        /// castellan's name for what is stored.
        format: SecretFormat,
        /// The PEM label found, if any.
        label: Option<String>,
        /// Barbican's `secret_type`, when the store is Barbican.
        secret_type: Option<String>,
    },
    /// The secret claims to be a certificate but cannot be parsed.
    #[error("key store entry {id} cannot be parsed as a certificate: {reason}")]
    Unparseable {
        /// The id asked for.
        id: String,
        /// What is wrong.
        reason: String,
    },
}

fn where_looked(location: &Option<String>) -> String {
    location
        .as_ref()
        .map(|place| format!(" (looked for {place})"))
        .unwrap_or_default()
}

fn secret_type_note(secret_type: &Option<String>) -> String {
    secret_type
        .as_ref()
        .map(|secret_type| format!(" (Barbican secret type {secret_type:?})"))
        .unwrap_or_default()
}

fn label_note(label: &Option<String>) -> String {
    label
        .as_ref()
        .map(|label| format!(" (PEM label {label:?})"))
        .unwrap_or_default()
}

impl SourceError {
    /// See [`crate::verify::Error::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            SourceError::NotFound { .. } => "certificate_not_found",
            SourceError::Forbidden { .. } => "certificate_forbidden",
            SourceError::Unavailable { .. } => "certificate_unavailable",
            SourceError::NotACertificate { .. } | SourceError::Unparseable { .. } => {
                "invalid_certificate"
            }
        }
    }

    /// cursive's reason for the same failure (without its prefix), if it reports one.
    pub(crate) fn cursive_message(&self) -> Option<String> {
        match self {
            SourceError::NotFound { id, .. } => {
                Some(format!("Certificate not found with ID: {id}"))
            }
            // castellan raises KeyManagerError for a 403 as for any other
            // Barbican failure.
            SourceError::Unavailable { id, .. } | SourceError::Forbidden { id, .. } => {
                Some(format!("Unable to retrieve certificate with ID: {id}"))
            }
            SourceError::NotACertificate { format, .. } => {
                Some(format!("Invalid certificate format: {format}"))
            }
            // castellan raises an uncaught ValueError here.
            SourceError::Unparseable { .. } => None,
        }
    }
}

/// A store of signing certificates, looked up by id (Barbican, a directory,
/// the server's own store).
pub trait CertificateSource: Send + Sync {
    /// Returns the DER of the certificate stored under `id`.
    ///
    /// Fails with [`SourceError::NotFound`] when nothing is stored,
    /// [`SourceError::NotACertificate`] for another kind of secret,
    /// [`SourceError::Unparseable`] for a certificate that cannot be
    /// decoded and [`SourceError::Unavailable`] when the store cannot be read.
    fn certificate(&self, id: &CertificateId) -> Result<Vec<u8>, SourceError>;
}

/// A directory of certificates named `<uuid>.pem` (or `<uuid>.der`), with
/// Barbican's semantics: the PEM label of the first block gives the secret
/// type, text before it is ignored, and in a bundle only the first
/// certificate counts.
#[derive(Debug, Clone)]
pub struct DirKeyStore {
    dir: PathBuf,
}

impl DirKeyStore {
    /// Opens a directory key store.
    ///
    /// Fails when `dir` does not exist, is not a directory or cannot be listed.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<DirKeyStore> {
        let dir = dir.into();
        let metadata = std::fs::metadata(&dir)?;
        if !metadata.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is not a directory", dir.display()),
            ));
        }
        std::fs::read_dir(&dir)?;
        Ok(DirKeyStore { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn candidates(&self, id: &CertificateId) -> [PathBuf; 2] {
        let name = id.uuid().hyphenated().to_string();
        [
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.der")),
        ]
    }
}

/// Entries larger than this are not certificates (and are not read whole).
const MAX_ENTRY_BYTES: u64 = 1024 * 1024;

/// Why a [`DirKeyStore`] entry could not be read: the cause inside
/// [`SourceError::Unavailable`], naming the file.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The entry exists but is not a regular file (a directory, a FIFO, a
    /// device): it is not read, since a FIFO blocks and a device never ends.
    #[error("{} is {what}, not a certificate file", .path.display())]
    NotAFile {
        /// The entry.
        path: PathBuf,
        /// What it is (`a directory`, `a FIFO`, ...).
        what: &'static str,
    },
    /// The entry cannot be opened or read (a symlink loop, no permission...).
    #[error("cannot read {}", .path.display())]
    Io {
        /// The entry.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

fn file_type_name(file_type: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Reads an entry, at most [`MAX_ENTRY_BYTES`] + 1 bytes; `Ok(None)` when it
/// is larger. A missing entry is `Io` with `NotFound`.
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, EntryError> {
    use std::io::Read;
    let io = |source| EntryError::Io {
        path: path.to_owned(),
        source,
    };
    // Opening a FIFO blocks until a writer appears, and a device never
    // ends: only regular files (symlinks followed) are read.
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_file() {
        return Err(EntryError::NotAFile {
            path: path.to_owned(),
            what: file_type_name(metadata.file_type()),
        });
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_ENTRY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok((bytes.len() as u64 <= MAX_ENTRY_BYTES).then_some(bytes))
}

impl CertificateSource for DirKeyStore {
    fn certificate(&self, id: &CertificateId) -> Result<Vec<u8>, SourceError> {
        let candidates = self.candidates(id);
        for path in &candidates {
            match read_bounded(path) {
                Ok(None) => {
                    return Err(SourceError::Unparseable {
                        id: id.to_string(),
                        reason: format!(
                            "{} is larger than {MAX_ENTRY_BYTES} bytes, too large for a certificate",
                            path.display()
                        ),
                    });
                }
                Ok(Some(bytes)) => return classify(id, &bytes),
                Err(EntryError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue;
                }
                Err(err) => {
                    tracing::debug!(id = %id, error = %err, "key store entry unreadable");
                    return Err(SourceError::Unavailable {
                        id: id.to_string(),
                        source: Box::new(err),
                    });
                }
            }
        }
        Err(SourceError::NotFound {
            id: id.to_string(),
            location: Some(format!(
                "{} or {}",
                candidates[0].display(),
                candidates[1].display()
            )),
        })
    }
}

/// Applies castellan's secret-type rules to the bytes of one entry.
fn classify(id: &CertificateId, bytes: &[u8]) -> Result<Vec<u8>, SourceError> {
    let unparseable = |reason: String| SourceError::Unparseable {
        id: id.to_string(),
        reason,
    };
    // A PEM file is text; a DER certificate starts with a SEQUENCE tag.
    let text = String::from_utf8_lossy(bytes);
    if let Some(first) = pem::blocks(&text).into_iter().next() {
        let block = first.map_err(|err| unparseable(err.to_string()))?;
        let format = match block.label {
            "CERTIFICATE" => None,
            label if label.ends_with("PRIVATE KEY") => Some(SecretFormat::Pkcs8),
            label if label.ends_with("PUBLIC KEY") => Some(SecretFormat::SubjectPublicKeyInfo),
            _ => Some(SecretFormat::Opaque),
        };
        if let Some(format) = format {
            return Err(SourceError::NotACertificate {
                id: id.to_string(),
                format,
                label: Some(block.label.to_owned()),
                secret_type: None,
            });
        }
        return block.decode().map_err(|err| unparseable(err.to_string()));
    }
    if bytes.first() == Some(&0x30) {
        return Ok(bytes.to_vec());
    }
    if bytes.is_empty() {
        return Err(unparseable("the file is empty".to_owned()));
    }
    Err(unparseable(
        "it holds neither a PEM block nor DER".to_owned(),
    ))
}

/// castellan's object format for a Barbican `secret_type`; `None` for
/// `certificate` (an X.509 object), anything unknown is opaque data.
pub(crate) fn barbican_secret_format(secret_type: &str) -> Option<SecretFormat> {
    match secret_type {
        "certificate" => None,
        "private" => Some(SecretFormat::Pkcs8),
        "public" => Some(SecretFormat::SubjectPublicKeyInfo),
        "symmetric" | "passphrase" => Some(SecretFormat::Raw),
        _ => Some(SecretFormat::Opaque),
    }
}

/// The DER of a Barbican `certificate` secret's payload, read as castellan
/// reads it (cryptography's `load_pem_x509_certificate`): the first PEM
/// block labelled `CERTIFICATE` or `X509 CERTIFICATE`, wherever it is.
/// castellan does not read DER payloads, so neither does this.
pub(crate) fn castellan_certificate(
    id: &CertificateId,
    payload: &[u8],
) -> Result<Vec<u8>, SourceError> {
    let unparseable = |reason: String| SourceError::Unparseable {
        id: id.to_string(),
        reason,
    };
    let text = String::from_utf8_lossy(payload);
    for block in pem::blocks(&text) {
        let block = block.map_err(|err| unparseable(err.to_string()))?;
        if block.label == "CERTIFICATE" || block.label == "X509 CERTIFICATE" {
            return block.decode().map_err(|err| unparseable(err.to_string()));
        }
    }
    Err(unparseable(
        "the certificate secret holds no PEM CERTIFICATE block (castellan reads certificate secrets as PEM; store the PEM, not DER)"
            .to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn castellan_reads_the_first_certificate_block_of_a_certificate_secret() {
        let id = CertificateId::parse("6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55").unwrap();
        let pem = |label: &str| format!("-----BEGIN {label}-----\nQUJD\n-----END {label}-----\n");
        let key_then_cert = format!("{}{}", pem("PRIVATE KEY"), pem("CERTIFICATE"));
        assert_eq!(
            castellan_certificate(&id, key_then_cert.as_bytes()).unwrap(),
            b"ABC"
        );
        assert_eq!(
            castellan_certificate(&id, pem("X509 CERTIFICATE").as_bytes()).unwrap(),
            b"ABC"
        );
        for payload in [
            pem("PRIVATE KEY").into_bytes(),
            vec![0x30, 0x03, 1, 2, 3],
            Vec::new(),
        ] {
            let err = castellan_certificate(&id, &payload).unwrap_err();
            assert!(matches!(err, SourceError::Unparseable { .. }), "{err:?}");
        }
        assert_eq!(barbican_secret_format("certificate"), None);
        assert_eq!(barbican_secret_format("private"), Some(SecretFormat::Pkcs8));
        assert_eq!(
            barbican_secret_format("public"),
            Some(SecretFormat::SubjectPublicKeyInfo)
        );
        assert_eq!(
            barbican_secret_format("passphrase"),
            Some(SecretFormat::Raw)
        );
        assert_eq!(barbican_secret_format("symmetric"), Some(SecretFormat::Raw));
        assert_eq!(barbican_secret_format("opaque"), Some(SecretFormat::Opaque));
        assert_eq!(
            barbican_secret_format("something-new"),
            Some(SecretFormat::Opaque)
        );
    }

    #[test]
    fn ids_follow_barbican() {
        let plain = "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55";
        let expected = uuid::Uuid::parse_str(plain).unwrap();
        for text in [
            plain,
            "6F1B3C2E-9D5A-4C47-8F0E-2B7D1A9C3E55",
            "6f1b3c2e9d5a4c478f0e2b7d1a9c3e55",
            "{6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55}",
            "urn:uuid:6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55",
            "https://kms.example/v1/secrets/6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55",
            "6f1b-3c2e-9d5a-4c47-8f0e-2b7d-1a9c-3e55",
        ] {
            assert_eq!(
                CertificateId::parse(text).unwrap().uuid(),
                expected,
                "{text}"
            );
        }
        assert_eq!(CertificateId::parse(""), Err(BadCertificateId::Empty));
        for bad in [
            "not-a-uuid",
            "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e5",
            "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55/",
            "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e5g",
            "../6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e5",
            "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55é",
        ] {
            assert!(CertificateId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let id = CertificateId::parse("6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55").unwrap();
        let fifo = dir.path().join(format!("{}.pem", id.uuid().hyphenated()));
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let store = DirKeyStore::open(dir.path()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(
                store
                    .certificate(&id)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            );
        });
        let outcome = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading a FIFO in the key store blocked");
        let message = outcome.unwrap_err();
        assert!(message.contains("could not be retrieved"), "{message}");
    }

    #[test]
    fn classify_follows_castellan() {
        let id = CertificateId::parse("6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55").unwrap();
        let pem = |label: &str| format!("-----BEGIN {label}-----\nQUJD\n-----END {label}-----\n");
        assert_eq!(
            classify(&id, pem("CERTIFICATE").as_bytes()).unwrap(),
            b"ABC"
        );
        let with_text = format!("subject=CN=x\n{}{}", pem("CERTIFICATE"), pem("PRIVATE KEY"));
        assert_eq!(classify(&id, with_text.as_bytes()).unwrap(), b"ABC");
        for (label, format) in [
            ("PRIVATE KEY", SecretFormat::Pkcs8),
            ("RSA PRIVATE KEY", SecretFormat::Pkcs8),
            ("PUBLIC KEY", SecretFormat::SubjectPublicKeyInfo),
            ("EC PARAMETERS", SecretFormat::Opaque),
            ("X509 CRL", SecretFormat::Opaque),
        ] {
            match classify(&id, pem(label).as_bytes()) {
                Err(SourceError::NotACertificate { format: found, .. }) => {
                    assert_eq!(found, format, "{label}")
                }
                other => panic!("{label}: {other:?}"),
            }
        }
        assert_eq!(classify(&id, &[0x30, 0x00]).unwrap(), vec![0x30, 0x00]);
        assert!(matches!(
            classify(&id, b""),
            Err(SourceError::Unparseable { .. })
        ));
        assert!(matches!(
            classify(&id, b"garbage"),
            Err(SourceError::Unparseable { .. })
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Ids (hrefs, braces, prefixes, multi-byte text) parse or fail
        /// cleanly, and a parsed id always names a UUID file inside the store.
        #[test]
        fn any_id_parses_or_fails_cleanly(
            text in "(https://kms/v1/secrets/|\\.\\./|urn:|uuid:|\\{|\\}|/|-|[0-9a-fA-F]{0,32}|é|\\PC{0,4}){0,8}"
        ) {
            if let Ok(id) = CertificateId::parse(&text) {
                let store = DirKeyStore { dir: PathBuf::from("/keys") };
                for path in store.candidates(&id) {
                    proptest::prop_assert_eq!(path.parent(), Some(Path::new("/keys")));
                }
            }
        }

        /// Entry bytes of any shape classify without panicking.
        #[test]
        fn any_entry_classifies_cleanly(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96)) {
            let id = CertificateId::parse("6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55").unwrap();
            let _ = classify(&id, &bytes);
        }
    }
}
