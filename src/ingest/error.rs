//! `ingest::Error`: why an upload did not make an image active.
//!
//! Each variant names the image and what to do; causes sit in `#[source]`.
//! [`Error::kind`] is a stable snake_case name for JSON output and the API,
//! and [`Error::is_rejection`] tells a refusal of the data or the request
//! (exit 1; the image stays `queued`) from an I/O or internal failure (exit 2).

use crate::image::{ImageId, Status};

use super::limit::LimitKind;

/// An upload failed; whatever it had stored was removed and the image is
/// `queued` again (unless the error says the upload never started).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image is not `queued` (already active, or another upload owns it).
    #[error("image {id} is {status}, not queued: it cannot take an upload now")]
    NotQueued {
        /// The image.
        id: ImageId,
        /// Its status.
        status: Status,
    },
    /// Another upload took the image first (lost compare-and-swap or lock).
    #[error("image {id} is being uploaded by another upload")]
    Conflict {
        /// The image.
        id: ImageId,
    },
    /// `require_signature` is on and the image has no `img_signature*` property.
    #[error(
        "image {id} has no img_signature* properties but a signature is required (require_signature)"
    )]
    SignatureRequired {
        /// The image.
        id: ImageId,
    },
    /// The signature properties are partial or malformed, the certificate is
    /// missing or invalid, the chain is untrusted, or the signature does not match.
    #[error("signature verification failed for image {id}")]
    Signature {
        /// The image.
        id: ImageId,
        /// What the verifier found.
        #[source]
        source: crate::verify::Error,
    },
    /// The image has signature properties but no certificate directory was given.
    #[error(
        "image {id} is signed but no certificate directory is configured (--cert-dir or cert_dir)"
    )]
    NoCertDir {
        /// The image.
        id: ImageId,
    },
    /// The certificate directory cannot be opened.
    #[error("image {id}: cannot open the certificate directory {path}")]
    CertDir {
        /// The image.
        id: ImageId,
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Fetching the certificates or building the verifier stopped (a
    /// panicked or cancelled task); nothing was read.
    #[error("image {id}: preparing the signature verification failed")]
    KeyManager {
        /// The image.
        id: ImageId,
        /// What went wrong.
        #[source]
        source: crate::key_manager::KeyManagerError,
    },
    /// More data than `image_size_cap`, the quota or the declared size allows.
    #[error("image {id}: {}", limit_text(*kind, *limit))]
    TooLarge {
        /// The image.
        id: ImageId,
        /// Which limit.
        kind: LimitKind,
        /// The limit in bytes.
        limit: u64,
    },
    /// The declared size is beyond `image_size_cap` or the quota: refused
    /// before any byte was read.
    #[error(
        "image {id}: the declared size of {declared} bytes is over {}; nothing was read or stored",
        declared_limit_text(*kind, *limit)
    )]
    DeclaredTooLarge {
        /// The image.
        id: ImageId,
        /// Which limit (`SizeCap` or `Quota`).
        kind: LimitKind,
        /// The limit in bytes.
        limit: u64,
        /// The declared size.
        declared: u64,
    },
    /// More bytes arrived than were declared; the upload stopped at the declared size.
    #[error("image {id}: size exceeds: expected {declared} bytes, got at least {received} bytes")]
    SizeExceedsDeclared {
        /// The image.
        id: ImageId,
        /// Declared size.
        declared: u64,
        /// Bytes received when the upload stopped.
        received: u64,
    },
    /// Fewer bytes arrived than were declared.
    #[error("image {id}: size mismatch: expected {declared} bytes, got {received} bytes")]
    SizeMismatch {
        /// The image.
        id: ImageId,
        /// Declared size.
        declared: u64,
        /// Bytes received.
        received: u64,
    },
    /// The disk-format inspector refused the data (Glance answers 415).
    #[error("image {id}: the data was refused by the disk format policy")]
    Format {
        /// The image.
        id: ImageId,
        /// Why, as the format policy says it.
        #[source]
        source: crate::inspect::policy::Rejection,
    },
    /// `disk_format` or `container_format` is not set (Glance answers 400).
    #[error("image {id}: disk_format and container_format must be set before uploading data")]
    FormatsUnset {
        /// The image.
        id: ImageId,
    },
    /// The input stream failed or ended early (client gone, read error).
    #[error("image {id}: reading the image data failed after {received} bytes")]
    Stream {
        /// The image.
        id: ImageId,
        /// Bytes received before the failure.
        received: u64,
        /// The stream's error.
        #[source]
        source: std::io::Error,
    },
    /// The store failed (disk full, I/O).
    #[error("image {id}: storing the image data failed")]
    Store {
        /// The image.
        id: ImageId,
        /// The store's error.
        #[source]
        source: crate::store::Error,
    },
    /// The repository refused or failed (not found, forbidden, quota, database).
    #[error("upload to image {id}")]
    Repo {
        /// The image.
        id: ImageId,
        /// The repository's error.
        #[source]
        source: crate::repo::Error,
    },
    /// A hashing thread failed.
    #[error("image {id}: hashing failed")]
    Worker {
        /// The image.
        id: ImageId,
        /// What went wrong.
        #[source]
        source: super::workers::WorkerError,
    },
}

fn limit_text(kind: LimitKind, limit: u64) -> String {
    match kind {
        LimitKind::SizeCap => {
            format!("upload stopped at {limit} bytes: the image is larger than image_size_cap")
        }
        LimitKind::Quota => {
            format!("upload stopped at {limit} bytes: the owner's storage quota is exhausted")
        }
        LimitKind::Declared => {
            format!("upload stopped at {limit} bytes: more data than the declared size")
        }
        LimitKind::DeclaredOverSizeCap { declared } => format!(
            "the declared size of {declared} bytes is larger than image_size_cap ({limit} bytes); nothing was read"
        ),
        LimitKind::DeclaredOverQuota { declared } => format!(
            "the declared size of {declared} bytes is more than the owner's remaining storage quota ({limit} bytes); nothing was read"
        ),
    }
}

fn declared_limit_text(kind: LimitKind, limit: u64) -> String {
    match kind {
        LimitKind::SizeCap | LimitKind::DeclaredOverSizeCap { .. } => {
            format!("image_size_cap ({limit} bytes)")
        }
        LimitKind::Quota | LimitKind::DeclaredOverQuota { .. } => {
            format!("what the owner's storage quota has left ({limit} bytes)")
        }
        LimitKind::Declared => format!("the declared size ({limit} bytes)"),
    }
}

impl Error {
    /// The image the upload was for: `queued` again (or untouched when the
    /// upload never started).
    pub fn image_id(&self) -> ImageId {
        match self {
            Error::NotQueued { id, .. }
            | Error::Conflict { id }
            | Error::SignatureRequired { id }
            | Error::Signature { id, .. }
            | Error::NoCertDir { id }
            | Error::CertDir { id, .. }
            | Error::KeyManager { id, .. }
            | Error::TooLarge { id, .. }
            | Error::DeclaredTooLarge { id, .. }
            | Error::SizeExceedsDeclared { id, .. }
            | Error::SizeMismatch { id, .. }
            | Error::Format { id, .. }
            | Error::FormatsUnset { id }
            | Error::Stream { id, .. }
            | Error::Store { id, .. }
            | Error::Repo { id, .. }
            | Error::Worker { id, .. } => *id,
        }
    }

    /// A stable snake_case name for this failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotQueued { .. } => "not_queued",
            Error::Conflict { .. } => "conflict",
            Error::SignatureRequired { .. } => "signature_required",
            Error::Signature { source, .. } => source.kind(),
            Error::NoCertDir { .. } => "no_cert_dir",
            Error::CertDir { .. } => "cert_dir_unreadable",
            Error::KeyManager { .. } => "key_manager_failed",
            Error::TooLarge {
                kind: LimitKind::SizeCap | LimitKind::DeclaredOverSizeCap { .. },
                ..
            }
            | Error::DeclaredTooLarge {
                kind: LimitKind::SizeCap | LimitKind::DeclaredOverSizeCap { .. },
                ..
            } => "size_cap_exceeded",
            Error::TooLarge {
                kind: LimitKind::Quota | LimitKind::DeclaredOverQuota { .. },
                ..
            }
            | Error::DeclaredTooLarge {
                kind: LimitKind::Quota | LimitKind::DeclaredOverQuota { .. },
                ..
            } => "quota_exceeded",
            Error::TooLarge {
                kind: LimitKind::Declared,
                ..
            }
            | Error::DeclaredTooLarge {
                kind: LimitKind::Declared,
                ..
            }
            | Error::SizeExceedsDeclared { .. }
            | Error::SizeMismatch { .. } => "size_mismatch",
            Error::Format { source, .. } => source.kind(),
            Error::FormatsUnset { .. } => "formats_unset",
            Error::Stream { .. } => "stream_failed",
            Error::Store { source, .. } => source.kind(),
            Error::Repo { source, .. } => source.kind(),
            Error::Worker { .. } => "hashing_failed",
        }
    }

    /// Whether the data or the request was refused (exit 1) rather than an
    /// I/O or internal failure (exit 2).
    pub fn is_rejection(&self) -> bool {
        match self {
            Error::NotQueued { .. }
            | Error::Conflict { .. }
            | Error::SignatureRequired { .. }
            | Error::TooLarge { .. }
            | Error::DeclaredTooLarge { .. }
            | Error::SizeMismatch { .. }
            | Error::SizeExceedsDeclared { .. }
            | Error::Format { .. }
            | Error::FormatsUnset { .. } => true,
            Error::Signature { source, .. } => !source.is_environmental(),
            Error::Repo { source, .. } => repo_is_rejection(source),
            Error::NoCertDir { .. }
            | Error::CertDir { .. }
            | Error::KeyManager { .. }
            | Error::Stream { .. }
            | Error::Store { .. }
            | Error::Worker { .. } => false,
        }
    }
}

/// Whether a repository error refuses the request (exit 1, Glance 4xx)
/// rather than failing internally (exit 2, Glance 5xx).
pub fn repo_is_rejection(err: &crate::repo::Error) -> bool {
    use crate::repo::Error as E;
    match err {
        E::NotFound { .. }
        | E::AlreadyExists { .. }
        | E::Conflict { .. }
        | E::InvalidTransition { .. }
        | E::NotQueued { .. }
        | E::Forbidden { .. }
        | E::ReadOnly { .. }
        | E::Protected { .. }
        | E::QuotaExceeded { .. }
        | E::MemberLimit { .. }
        | E::MemberNotFound { .. }
        | E::MemberExists { .. }
        | E::InvalidMember { .. }
        | E::NoData { .. }
        | E::MarkerNotFound { .. }
        | E::ForeignLocation { .. } => true,
        E::UnsupportedUrl { .. }
        | E::Database { .. }
        | E::Migrate { .. }
        | E::ForeignDatabase { .. }
        | E::Corrupt { .. }
        | E::Store(_)
        | E::Options(_) => false,
    }
}
