//! `app::Error`: why a use case did not happen, as one enum that wraps the
//! lower layers' errors (`wire`, `repo`, `ingest`, downloads) and adds the
//! application's own refusals.
//!
//! Front ends classify it by exhaustive `match` on the variants (the HTTP
//! server to a status, nested into `wire`, `repo`, `ingest` and download
//! errors where those decide), or with [`Error::kind`] (a stable snake_case
//! name) and [`Error::is_rejection`] (the CLI's exit 1 versus 2). This
//! module must not print or know HTTP.

use crate::image::{ImageId, Status, Visibility};
use crate::ingest;
use crate::ingest::download;
use crate::repo;
use crate::wire;

use super::lifecycle::StatusAction;
use crate::store::ByteRange;

/// Why an [`super::App`] method did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is refused by Glance's image schema: a read-only,
    /// reserved or base-attribute name (Glance: 403), or a malformed body
    /// or a value of the wrong type, range or length (Glance: 400).
    #[error(transparent)]
    Request(#[from] wire::Error),
    /// A change set removes a base attribute (Glance: 403 "Property x may not be removed.").
    #[error("image {id}: attribute {attribute:?} cannot be removed (replace its value instead)")]
    NotRemovable {
        /// The image.
        id: ImageId,
        /// The attribute.
        attribute: String,
    },
    /// A change set replaces or removes a property the image does not have
    /// (Glance: 409 "Property x does not exist.").
    #[error("image {id} has no property {property:?} (use add to create it)")]
    NoSuchProperty {
        /// The image.
        id: ImageId,
        /// The property.
        property: String,
    },
    /// `disk_format` or `container_format` changed after data was uploaded
    /// (Glance: 403 "Attribute x can be only replaced for a queued image.").
    #[error(
        "image {id} is {status}: its {attribute} can be changed only while it is queued (before data is uploaded)"
    )]
    QueuedOnly {
        /// The image.
        id: ImageId,
        /// `disk_format` or `container_format`.
        attribute: &'static str,
        /// Its status.
        status: Status,
    },
    /// A non-administrator changes `owner` (Glance: 403).
    #[error("image {id}: only an administrator may change its owner")]
    OwnerAdminOnly {
        /// The image.
        id: ImageId,
    },
    /// Deactivate or reactivate in a status that does not allow it
    /// (Glance: 403 "Not allowed to deactivate image in status 'queued'").
    #[error("image {id} is {status}: {}", .action.allowed())]
    StatusNotAllowed {
        /// The image.
        id: ImageId,
        /// What was asked.
        action: StatusAction,
        /// The status it is in.
        status: Status,
    },
    /// Reactivating a record without the data an upload verified; never
    /// happens to an image deactivated by portcullis (fail closed).
    #[error(
        "image {id} has no verified data (size, checksum, os_hash and a location from an upload), so it cannot become active"
    )]
    NoVerifiedData {
        /// The image.
        id: ImageId,
    },
    /// Removing a tag the image does not have (Glance: 404).
    #[error("image {id} has no tag {tag:?}")]
    TagNotFound {
        /// The image.
        id: ImageId,
        /// The tag.
        tag: String,
    },
    /// A member operation on an image that is not `shared` (Glance: 403
    /// "… Only shared images have members.", 404 for show).
    #[error(
        "image {id} is {visibility}: only shared images have members (set its visibility to shared first)"
    )]
    NotShared {
        /// The image.
        id: ImageId,
        /// Its visibility.
        visibility: Visibility,
    },
    /// A byte range outside the data (Glance: 416).
    #[error("image {id}: range {range} is outside its {size} bytes")]
    RangeNotSatisfiable {
        /// The image.
        id: ImageId,
        /// The range asked for.
        range: ByteRange,
        /// The image's size.
        size: u64,
    },
    /// A signed image cannot be verified: no key manager (certificate
    /// directory) is configured. Refused before anything is created.
    #[error(
        "the image is signed but no certificate directory is configured (--cert-dir or cert_dir)"
    )]
    NoKeyManager,
    /// The repository refused or failed (not found, forbidden, protected,
    /// quota, a lost compare-and-swap, database).
    #[error(transparent)]
    Repo(#[from] repo::Error),
    /// An upload did not make the image active (the image is `queued` again).
    #[error(transparent)]
    Upload(#[from] ingest::Error),
    /// A download could not start, failed, or found the data corrupted.
    #[error(transparent)]
    Download(#[from] download::Error),
}

impl Error {
    /// A stable snake_case name for the failure (JSON output, logs); the
    /// wrapped layers' names are kept (`not_found`, `bad_signature`,
    /// `corrupted`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Request(err) => err.kind(),
            Error::NotRemovable { .. } => "not_removable",
            Error::NoSuchProperty { .. } => "no_such_property",
            Error::QueuedOnly { .. } => "queued_only",
            Error::OwnerAdminOnly { .. } => "forbidden",
            Error::StatusNotAllowed { .. } => "status_not_allowed",
            Error::NoVerifiedData { .. } => "no_verified_data",
            Error::TagNotFound { .. } => "tag_not_found",
            Error::NotShared { .. } => "not_shared",
            Error::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Error::NoKeyManager => "no_cert_dir",
            Error::Repo(err) => err.kind(),
            Error::Upload(err) => err.kind(),
            Error::Download(err) => err.kind(),
        }
    }

    /// Whether the request or the data was refused by a rule, a check or
    /// the image's state (CLI exit 1), rather than malformed (a schema
    /// violation, like a usage error) or failed for an operational reason
    /// (I/O, database, configuration) (exit 2).
    pub fn is_rejection(&self) -> bool {
        match self {
            Error::Request(err) => err.is_forbidden(),
            Error::NotRemovable { .. }
            | Error::NoSuchProperty { .. }
            | Error::QueuedOnly { .. }
            | Error::OwnerAdminOnly { .. }
            | Error::StatusNotAllowed { .. }
            | Error::NoVerifiedData { .. }
            | Error::TagNotFound { .. }
            | Error::NotShared { .. }
            | Error::RangeNotSatisfiable { .. } => true,
            Error::NoKeyManager => false,
            Error::Repo(err) => ingest::repo_is_rejection(err),
            Error::Upload(err) => err.is_rejection(),
            Error::Download(err) => err.is_rejection(),
        }
    }

    /// The image an upload or download failed for (for an upload: `queued`
    /// again, or untouched when it never started), so a caller can name it.
    /// `None` for every other failure.
    pub fn transfer_image(&self) -> Option<ImageId> {
        match self {
            Error::Upload(err) => Some(err.image_id()),
            Error::Download(err) => Some(err.image_id()),
            Error::Request(_)
            | Error::NotRemovable { .. }
            | Error::NoSuchProperty { .. }
            | Error::QueuedOnly { .. }
            | Error::OwnerAdminOnly { .. }
            | Error::StatusNotAllowed { .. }
            | Error::NoVerifiedData { .. }
            | Error::TagNotFound { .. }
            | Error::NotShared { .. }
            | Error::RangeNotSatisfiable { .. }
            | Error::NoKeyManager
            | Error::Repo(_) => None,
        }
    }
}
