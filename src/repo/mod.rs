//! The image repository: the [`ImageRepo`] and [`MemberRepo`] traits, the
//! SQL backend (SQLite or PostgreSQL) and the Glance-style layers around it,
//! assembled once by [`stack`].
//!
//! Glance wraps its repository in proxies (gateway.py); portcullis does the
//! same with one trait and one type per concern, tower style: each layer
//! holds an inner repository, does its one job and delegates. Outermost
//! first: authorization → notifier → policy → quota → property protection →
//! location → SQL.
//!
//! Reads go down and come back up through every layer. Writes are read once:
//! the caller hands in the record it read (a [`Change`], the image to remove,
//! the image to upload to or share), the outermost layer loads the stored
//! record once, refuses a stale read with [`Error::Conflict`], and hands the
//! stored record down, so every layer judges the same version and the SQL
//! backend writes it as a compare-and-swap on that version.
//!
//! This module owns the records (metadata) of images and their members. It
//! must not touch image data except through [`location`], which owns
//! `locations` and deletes data from the store when an image is removed.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::Clock;
use crate::context::RequestContext;
use crate::image::{Image, ImageId, Member, MemberStatus, Status};
use crate::store::Store;

pub mod authz;
mod change;
mod lease;
pub mod location;
pub mod notify;
mod options;
pub mod policy;
pub mod property_protection;
mod query;
pub mod quota;
pub mod sql;

pub use authz::AuthzRepo;
pub use change::{Change, ChangeKind, NewImage, NewMember, QuotaCheck, UploadedData};
pub use lease::{LeaseCheck, LeaseHolder, LeaseRecord, Liveness, NewLease, ProcessId};
pub use location::LocationRepo;
pub use notify::NotifyRepo;
pub use options::{
    EffectiveLimits, Limit, NotificationOptions, PolicyOptions, ProjectLimits, QuotaOptions,
    RepoOptions,
};
pub use policy::PolicyRepo;
pub use property_protection::PropertyProtectionRepo;
pub use query::{
    AnyOf, BadFilter, BadSort, Comparison, ListQuery, ListScope, MemberStatusFilter, SortBy,
    SortDir, SortKey, TimeFilter, VisibilityFilter, parse_isotime, parse_sort,
};
pub use quota::QuotaRepo;
pub use sql::{PendingDeletion, PendingReason, SqlRepo};

/// A repository of image records.
///
/// Every method takes the caller's [`RequestContext`] first; layers use it to
/// decide, the SQL backend ignores it. The futures are `Send` so a server can
/// spawn them. Methods acting on an existing image take the record the
/// caller read (from [`ImageRepo::get`] or an earlier write): the outermost
/// layer checks it is still current.
pub trait ImageRepo: sealed::Stored + Send + Sync {
    /// The image `id`.
    ///
    /// Fails with [`Error::NotFound`] when it does not exist, is deleted, or
    /// the caller may not see it (as Glance: never Forbidden on reads).
    fn get(
        &self,
        ctx: &RequestContext,
        id: ImageId,
    ) -> impl Future<Output = Result<Image, Error>> + Send;

    /// One page of images matching `query`, in its sort order.
    ///
    /// Fails with [`Error::MarkerNotFound`] when the marker is not a visible image.
    fn list(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
    ) -> impl Future<Output = Result<Vec<Image>, Error>> + Send;

    /// Records a new image, which must be `queued`, and returns it as stored.
    ///
    /// Fails with [`Error::AlreadyExists`] when the id is taken, or when a
    /// layer refuses (Forbidden, quota: checked in the inserting transaction).
    fn add(
        &self,
        ctx: &RequestContext,
        new: &NewImage,
    ) -> impl Future<Output = Result<Image, Error>> + Send;

    /// Writes `change` in one transaction and returns the record as stored
    /// (with a new `updated_at`).
    ///
    /// The write is a compare-and-swap on the record `change.before` was
    /// read as: when the stored record changed since (another upload claimed
    /// it, someone renamed it), nothing is written and the result is
    /// [`Error::Conflict`] (an upload's commit and rollback are re-applied
    /// to the newer record instead, see [`ChangeKind::rebases`]). A
    /// transition the read record's status does not allow is
    /// [`Error::InvalidTransition`]; an attribute outside the kind's write
    /// set is [`Error::ReadOnly`].
    fn save(
        &self,
        ctx: &RequestContext,
        change: &Change,
    ) -> impl Future<Output = Result<Image, Error>> + Send;

    /// Marks `image` deleted and (in the location layer) deletes its data;
    /// returns the record as it was, with status `deleted`.
    ///
    /// Fails with [`Error::NotFound`] when it does not exist (or is already
    /// deleted), [`Error::Conflict`] when it changed since `image` was read,
    /// and [`Error::Protected`] when it is protected.
    fn remove(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> impl Future<Output = Result<Image, Error>> + Send;

    /// Asks every layer whether an upload of data to `image` may start, and
    /// how many bytes it may bring (the smallest limit wins). The claim
    /// ([`Change::claim_upload`]) checks the quota again, in its transaction.
    ///
    /// Fails when a layer vetoes: the image changed since it was read
    /// ([`Error::Conflict`]: another upload claimed it), it is not `queued`
    /// ([`Error::InvalidTransition`]), the caller may not upload
    /// ([`Error::Forbidden`]), or the owner has no quota left
    /// ([`Error::QuotaExceeded`]).
    fn prepare_upload(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> impl Future<Output = Result<UploadAllowance, Error>> + Send;

    /// Asks every layer whether the caller may download the data of image
    /// `id`; returns the record (with its locations) to read from.
    ///
    /// Fails with [`Error::NoData`] when the image has no stored data,
    /// [`Error::Forbidden`] when policy refuses (a deactivated image, for
    /// anyone but an admin), [`Error::NotFound`] when it is not visible.
    fn prepare_download(
        &self,
        ctx: &RequestContext,
        id: ImageId,
    ) -> impl Future<Output = Result<Image, Error>> + Send;
}

/// The members of shared images (Glance's image member repository): the
/// owner shares a `shared` image with other projects, each member accepts or
/// rejects it. Each method takes the image as the caller read it.
pub trait MemberRepo: ImageRepo {
    /// The members of `image` the caller may see: all of them for the owner
    /// and administrators, only its own membership for a member.
    ///
    /// Fails with [`Error::NotFound`] when the image is not visible and
    /// [`Error::Forbidden`] when it is not `shared`.
    fn members(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> impl Future<Output = Result<Vec<Member>, Error>> + Send;

    /// The membership of `member_id` in `image`.
    ///
    /// Fails with [`Error::MemberNotFound`] when there is none, the caller may
    /// not see it (a member sees only its own), or the image is not `shared`.
    fn member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
    ) -> impl Future<Output = Result<Member, Error>> + Send;

    /// Shares the image with a project (status `pending`).
    ///
    /// Fails with [`Error::Forbidden`] unless the caller owns the image (or
    /// is an administrator) and the image is `shared`, [`Error::MemberExists`]
    /// when the project already is a member, [`Error::MemberLimit`] past
    /// `image_member_quota`, [`Error::InvalidMember`] for an empty or too long id.
    fn add_member(
        &self,
        ctx: &RequestContext,
        new: &NewMember,
    ) -> impl Future<Output = Result<Member, Error>> + Send;

    /// Sets the membership's status: only the member itself (or an
    /// administrator) may.
    ///
    /// Fails with [`Error::MemberNotFound`] when the caller cannot see that
    /// membership and [`Error::Forbidden`] when it can but may not change it
    /// (the owner).
    fn update_member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
        status: MemberStatus,
    ) -> impl Future<Output = Result<Member, Error>> + Send;

    /// Ends a membership: only the owner (or an administrator) may. Returns
    /// the membership as it was.
    ///
    /// Fails as [`MemberRepo::update_member`], with the roles reversed.
    fn remove_member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
    ) -> impl Future<Output = Result<Member, Error>> + Send;
}

pub(crate) mod sealed {
    //! The raw reads the outermost layer builds a write from. Sealed: code
    //! outside the crate can neither call nor implement them, because they
    //! bypass visibility, policy and property protection.

    use std::future::Future;

    use super::Error;
    use crate::image::{Image, ImageId, Member};

    /// Raw reads of stored records; every layer passes them straight down.
    // Public inside a private module: the sealed-trait pattern.
    #[allow(unreachable_pub)]
    pub trait Stored {
        /// The stored record of the live image `id`, exactly as the database
        /// has it. Fails with [`Error::NotFound`].
        fn load(&self, id: ImageId) -> impl Future<Output = Result<Image, Error>> + Send;

        /// The membership of `member_id` in image `id`, if any.
        fn membership(
            &self,
            id: ImageId,
            member_id: &str,
        ) -> impl Future<Output = Result<Option<Member>, Error>> + Send;
    }
}

/// Implements the sealed raw reads of a layer `$layer<R>` by delegating to
/// `self.inner`: no layer changes them.
macro_rules! delegate_stored {
    ($layer:ident) => {
        impl<R: $crate::repo::ImageRepo> $crate::repo::sealed::Stored for $layer<R> {
            fn load(
                &self,
                id: $crate::image::ImageId,
            ) -> impl ::std::future::Future<
                Output = Result<$crate::image::Image, $crate::repo::Error>,
            > + Send {
                self.inner.load(id)
            }

            fn membership(
                &self,
                id: $crate::image::ImageId,
                member_id: &str,
            ) -> impl ::std::future::Future<
                Output = Result<Option<$crate::image::Member>, $crate::repo::Error>,
            > + Send {
                self.inner.membership(id, member_id)
            }
        }
    };
}
pub(crate) use delegate_stored;

/// Implements [`MemberRepo`] for a layer `$layer<R>` that leaves members to
/// `self.inner` entirely.
macro_rules! delegate_members {
    ($layer:ident) => {
        impl<R: $crate::repo::MemberRepo> $crate::repo::MemberRepo for $layer<R> {
            fn members(
                &self,
                ctx: &$crate::context::RequestContext,
                image: &$crate::image::Image,
            ) -> impl ::std::future::Future<
                Output = Result<Vec<$crate::image::Member>, $crate::repo::Error>,
            > + Send {
                self.inner.members(ctx, image)
            }

            fn member(
                &self,
                ctx: &$crate::context::RequestContext,
                image: &$crate::image::Image,
                member_id: &str,
            ) -> impl ::std::future::Future<
                Output = Result<$crate::image::Member, $crate::repo::Error>,
            > + Send {
                self.inner.member(ctx, image, member_id)
            }

            fn add_member(
                &self,
                ctx: &$crate::context::RequestContext,
                new: &$crate::repo::NewMember,
            ) -> impl ::std::future::Future<
                Output = Result<$crate::image::Member, $crate::repo::Error>,
            > + Send {
                self.inner.add_member(ctx, new)
            }

            fn update_member(
                &self,
                ctx: &$crate::context::RequestContext,
                image: &$crate::image::Image,
                member_id: &str,
                status: $crate::image::MemberStatus,
            ) -> impl ::std::future::Future<
                Output = Result<$crate::image::Member, $crate::repo::Error>,
            > + Send {
                self.inner.update_member(ctx, image, member_id, status)
            }

            fn remove_member(
                &self,
                ctx: &$crate::context::RequestContext,
                image: &$crate::image::Image,
                member_id: &str,
            ) -> impl ::std::future::Future<
                Output = Result<$crate::image::Member, $crate::repo::Error>,
            > + Send {
                self.inner.remove_member(ctx, image, member_id)
            }
        }
    };
}
pub(crate) use delegate_members;

/// A shared repository is a repository: an `Arc<Stack>` can be handed to
/// anything generic over [`ImageRepo`] (a server's handlers, ingest).
impl<R: ImageRepo> sealed::Stored for Arc<R> {
    fn load(&self, id: ImageId) -> impl Future<Output = Result<Image, Error>> + Send {
        (**self).load(id)
    }

    fn membership(
        &self,
        id: ImageId,
        member_id: &str,
    ) -> impl Future<Output = Result<Option<Member>, Error>> + Send {
        (**self).membership(id, member_id)
    }
}

impl<R: ImageRepo> ImageRepo for Arc<R> {
    fn get(
        &self,
        ctx: &RequestContext,
        id: ImageId,
    ) -> impl Future<Output = Result<Image, Error>> + Send {
        (**self).get(ctx, id)
    }

    fn list(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
    ) -> impl Future<Output = Result<Vec<Image>, Error>> + Send {
        (**self).list(ctx, query)
    }

    fn add(
        &self,
        ctx: &RequestContext,
        new: &NewImage,
    ) -> impl Future<Output = Result<Image, Error>> + Send {
        (**self).add(ctx, new)
    }

    fn save(
        &self,
        ctx: &RequestContext,
        change: &Change,
    ) -> impl Future<Output = Result<Image, Error>> + Send {
        (**self).save(ctx, change)
    }

    fn remove(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> impl Future<Output = Result<Image, Error>> + Send {
        (**self).remove(ctx, image)
    }

    fn prepare_upload(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> impl Future<Output = Result<UploadAllowance, Error>> + Send {
        (**self).prepare_upload(ctx, image)
    }

    fn prepare_download(
        &self,
        ctx: &RequestContext,
        id: ImageId,
    ) -> impl Future<Output = Result<Image, Error>> + Send {
        (**self).prepare_download(ctx, id)
    }
}

impl<R: MemberRepo> MemberRepo for Arc<R> {
    fn members(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> impl Future<Output = Result<Vec<Member>, Error>> + Send {
        (**self).members(ctx, image)
    }

    fn member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
    ) -> impl Future<Output = Result<Member, Error>> + Send {
        (**self).member(ctx, image, member_id)
    }

    fn add_member(
        &self,
        ctx: &RequestContext,
        new: &NewMember,
    ) -> impl Future<Output = Result<Member, Error>> + Send {
        (**self).add_member(ctx, new)
    }

    fn update_member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
        status: MemberStatus,
    ) -> impl Future<Output = Result<Member, Error>> + Send {
        (**self).update_member(ctx, image, member_id, status)
    }

    fn remove_member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
    ) -> impl Future<Output = Result<Member, Error>> + Send {
        (**self).remove_member(ctx, image, member_id)
    }
}

/// How much data an upload may bring, as decided by every layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadAllowance {
    /// The most bytes the upload may store; `None` when no layer limits it.
    pub max_bytes: Option<u64>,
}

impl UploadAllowance {
    /// No limit from the repository (the ingest size cap still applies).
    pub fn unlimited() -> UploadAllowance {
        UploadAllowance { max_bytes: None }
    }

    /// This allowance, lowered to at most `bytes`.
    pub fn at_most(self, bytes: u64) -> UploadAllowance {
        UploadAllowance {
            max_bytes: Some(self.max_bytes.map_or(bytes, |current| current.min(bytes))),
        }
    }
}

/// The quota-limited resources (Glance's unified-limits names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaResource {
    /// Number of images a project owns (`image_count_total`).
    ImageCountTotal,
    /// Total stored bytes of a project's images (`image_size_total`, configured in MiB).
    ImageSizeTotal,
    /// Number of a project's images being uploaded at once (`image_count_uploading`).
    ImageCountUploading,
}

impl QuotaResource {
    /// The unit usage and limits are counted in (`image_size_total` is
    /// configured in MiB but checked in bytes).
    pub fn unit(self) -> &'static str {
        match self {
            QuotaResource::ImageCountTotal | QuotaResource::ImageCountUploading => "images",
            QuotaResource::ImageSizeTotal => "bytes",
        }
    }

    /// Glance's limit name.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaResource::ImageCountTotal => "image_count_total",
            QuotaResource::ImageSizeTotal => "image_size_total",
            QuotaResource::ImageCountUploading => "image_count_uploading",
        }
    }
}

impl std::fmt::Display for QuotaResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can go wrong in the repository.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such image, deleted, or not visible to the caller.
    #[error("no image found with id {id}")]
    NotFound {
        /// The requested id.
        id: ImageId,
    },
    /// `add` with an id that is already taken.
    #[error("image {id} already exists")]
    AlreadyExists {
        /// The duplicate id.
        id: ImageId,
    },
    /// The record changed after the caller read it (a concurrent upload,
    /// edit or delete won): nothing was written. Every lost race is this.
    #[error(
        "image {id} was changed by another operation after it was read (it was {expected}, it is now {actual}); nothing was written: read it again and retry"
    )]
    Conflict {
        /// The image.
        id: ImageId,
        /// The status the caller's read had.
        expected: Status,
        /// The status stored now.
        actual: Status,
    },
    /// A status change the state machine does not allow from the status the
    /// caller read (not a race: the read was current).
    #[error("image {id} is {from}, so it cannot become {to}{}", allowed_from(*.from))]
    InvalidTransition {
        /// The image.
        id: ImageId,
        /// Current status.
        from: Status,
        /// Requested status.
        to: Status,
    },
    /// `add` with a record that is not `queued`.
    #[error("new image {id} must be queued, not {status}")]
    NotQueued {
        /// The image.
        id: ImageId,
        /// The status it came with.
        status: Status,
    },
    /// The caller is not allowed to do this.
    #[error("not authorized to {action}{}", on_image(.image))]
    Forbidden {
        /// What was refused: a policy rule name (`publicize_image`) or a
        /// description (`modify image owned by project p1`).
        action: String,
        /// The image concerned, if any.
        image: Option<ImageId>,
    },
    /// A read-only attribute or property was changed (Glance: 403 "Attribute 'x' is read-only.").
    #[error("attribute {attribute:?} of image {id} is read-only{}", read_only_hint(.attribute))]
    ReadOnly {
        /// The image.
        id: ImageId,
        /// The attribute or property name.
        attribute: String,
    },
    /// Deleting a protected image.
    #[error("image {id} is protected and cannot be deleted (set protected to false first)")]
    Protected {
        /// The image.
        id: ImageId,
    },
    /// A quota limit would be exceeded.
    #[error(
        "project {project} is over its {resource} quota: {usage} {unit} in use, {requested} more requested, limit {limit} {unit}",
        unit = resource.unit()
    )]
    QuotaExceeded {
        /// The owning project.
        project: String,
        /// Which limit.
        resource: QuotaResource,
        /// The limit (images, or bytes for `image_size_total`).
        limit: u64,
        /// Current usage in the same unit.
        usage: u64,
        /// What the operation would add.
        requested: u64,
    },
    /// An image already has as many members as `image_member_quota` allows
    /// (Glance: 413).
    #[error("image {id} already has {limit} members, the most image_member_quota allows")]
    MemberLimit {
        /// The image.
        id: ImageId,
        /// The limit.
        limit: u64,
    },
    /// No such membership, or not one the caller may see.
    #[error("project {member_id} is not a member of image {id}")]
    MemberNotFound {
        /// The image.
        id: ImageId,
        /// The project asked about.
        member_id: String,
    },
    /// The project already is a member (Glance: 409).
    #[error("project {member_id} is already a member of image {id}")]
    MemberExists {
        /// The image.
        id: ImageId,
        /// The project.
        member_id: String,
    },
    /// A member id that cannot name a project.
    #[error("member id {member_id:?} is not a project id: {reason}")]
    InvalidMember {
        /// The id given.
        member_id: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The image has no stored data to download.
    #[error("image {id} has no data (status {status})")]
    NoData {
        /// The image.
        id: ImageId,
        /// Its status.
        status: Status,
    },
    /// A list marker that is not a visible image (Glance: 400 "marker not found").
    #[error("marker {id} does not name an image you can see")]
    MarkerNotFound {
        /// The marker.
        id: ImageId,
    },
    /// A location that is not the image's own data in the configured store.
    #[error("image {id}: location {url:?} is not this image's data in the configured store")]
    ForeignLocation {
        /// The image.
        id: ImageId,
        /// The refused URL.
        url: String,
    },
    /// A database URL that names no supported engine.
    #[error(
        "database URL {url} is not supported (expected sqlite://PATH or postgres://USER@HOST[:PORT]/DATABASE)"
    )]
    UnsupportedUrl {
        /// The URL, password removed.
        url: String,
    },
    /// The database failed.
    #[error("database error while {operation}")]
    Database {
        /// What was being done.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Migrating the database schema failed.
    #[error("could not migrate the database {path}")]
    Migrate {
        /// The database file (for PostgreSQL: its URL, password removed).
        path: PathBuf,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// The database file is not portcullis's (another program's, not SQLite,
    /// or migrated by a newer portcullis); it was left untouched.
    #[error("refusing to open the database {path}")]
    ForeignDatabase {
        /// The database file.
        path: PathBuf,
        /// Whose it is, and what to do.
        #[source]
        reason: sql::ForeignDatabase,
    },
    /// A stored row cannot be read back as an image.
    #[error("the database row of image {id} is invalid: {reason}")]
    Corrupt {
        /// The row's id column.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The image store failed (deleting data of a removed image).
    #[error("image store error")]
    Store(#[source] crate::store::Error),
    /// Loading a configured rule file failed.
    #[error(transparent)]
    Options(#[from] options::OptionsError),
}

/// Whether the database failed because its disk is full: SQLite's
/// `SQLITE_FULL` (13), PostgreSQL's `disk_full` (53100), or the I/O error
/// `ENOSPC`/`EDQUOT`. (`sqlx::Error` is non-exhaustive: anything else is not.)
fn is_disk_full(err: &sqlx::Error) -> bool {
    if let sqlx::Error::Database(database) = err {
        return matches!(database.code().as_deref(), Some("13" | "53100"));
    }
    if let sqlx::Error::Io(io) = err {
        return matches!(
            io.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        );
    }
    false
}

fn on_image(image: &Option<ImageId>) -> String {
    image.map(|id| format!(" (image {id})")).unwrap_or_default()
}

fn allowed_from(from: Status) -> String {
    let targets: Vec<&str> = Status::ALL
        .iter()
        .filter(|to| from.can_become(**to))
        .map(|to| to.as_str())
        .collect();
    if targets.is_empty() {
        format!(" (a {from} image cannot change status)")
    } else {
        format!(" (a {from} image can become: {})", targets.join(", "))
    }
}

fn read_only_hint(attribute: &str) -> &'static str {
    match attribute {
        "disk_format" | "container_format" => " once it has data (it can change only while queued)",
        _ if attribute.starts_with("img_signature") => {
            " once it has data (upload the image again as a new one to change its signature)"
        }
        _ => "",
    }
}

impl Error {
    /// A stable snake_case name for the kind of failure (JSON output, logs,
    /// and the HTTP status mapping).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::AlreadyExists { .. } => "already_exists",
            Error::Conflict { .. } => "conflict",
            Error::InvalidTransition { .. } => "invalid_transition",
            Error::NotQueued { .. } => "not_queued",
            Error::Forbidden { .. } => "forbidden",
            Error::ReadOnly { .. } => "read_only",
            Error::Protected { .. } => "protected",
            Error::QuotaExceeded { .. } => "quota_exceeded",
            Error::MemberLimit { .. } => "member_limit",
            Error::MemberNotFound { .. } => "member_not_found",
            Error::MemberExists { .. } => "member_exists",
            Error::InvalidMember { .. } => "invalid_member",
            Error::NoData { .. } => "no_data",
            Error::MarkerNotFound { .. } => "marker_not_found",
            Error::ForeignLocation { .. } => "foreign_location",
            Error::UnsupportedUrl { .. } => "unsupported_url",
            Error::Database { source, .. } if is_disk_full(source) => "disk_full",
            Error::Database { .. } => "database",
            Error::Migrate { .. } => "migrate",
            Error::ForeignDatabase { .. } => "foreign_database",
            Error::Corrupt { .. } => "corrupt_record",
            Error::Store(_) => "store",
            Error::Options(_) => "options",
        }
    }

    pub(crate) fn forbidden(action: impl Into<String>, image: Option<ImageId>) -> Error {
        Error::Forbidden {
            action: action.into(),
            image,
        }
    }
}

pub use options::OptionsError;

/// The assembled repository, outermost layer first.
pub type Stack =
    AuthzRepo<NotifyRepo<PolicyRepo<QuotaRepo<PropertyProtectionRepo<LocationRepo<SqlRepo>>>>>>;

/// Assembles the layers once, outermost first as in Glance's gateway:
/// authorization → notifier → policy → quota → property protection →
/// location → SQL.
///
/// Reads the policy and property-protection files named in `options`.
/// Fails with [`Error::Options`] when one of them cannot be read or parsed:
/// a broken rule file never means "no rules".
pub fn stack(
    sql: SqlRepo,
    store: Store,
    options: &RepoOptions,
    clock: Arc<dyn Clock>,
) -> Result<Stack, Error> {
    // Load every rule file before building anything: a broken file fails
    // the whole stack, never one layer silently.
    let protection_rules = options.load_property_protection()?;
    let policy_rules = options.policy.load()?;
    let location = LocationRepo::new(sql.clone(), store, sql.clone());
    let protection = PropertyProtectionRepo::new(location, protection_rules);
    let quota = QuotaRepo::new(protection, options.quota.clone(), sql);
    let policy = PolicyRepo::new(quota, policy_rules);
    let notify = NotifyRepo::new(policy, &options.notifications, clock);
    Ok(AuthzRepo::new(notify))
}

/// The database file inside a data directory (opened by `app::App::open`).
pub const DATABASE_FILE: &str = "portcullis.db";

#[cfg(test)]
pub(crate) mod test_support {
    //! A real SQLite repository in a temporary directory, for layer tests.

    use super::*;
    use crate::clock::FixedClock;

    pub(crate) const NOW: &str = "2026-01-02T03:04:05Z";

    pub(crate) fn clock() -> Arc<dyn Clock> {
        Arc::new(FixedClock(crate::clock::parse_rfc3339(NOW).unwrap()))
    }

    pub(crate) struct TempRepo {
        pub(crate) dir: tempfile::TempDir,
        pub(crate) sql: SqlRepo,
        pub(crate) store: Store,
    }

    impl TempRepo {
        /// Where the filesystem store keeps the committed data of `image`.
        pub(crate) fn store_path(&self, image: &Image) -> std::path::PathBuf {
            std::fs::canonicalize(self.dir.path())
                .unwrap()
                .join("images")
                .join(image.id.to_string())
        }
    }

    pub(crate) async fn temp_repo() -> TempRepo {
        let dir = tempfile::tempdir().unwrap();
        let sql = SqlRepo::open_sqlite(&dir.path().join("portcullis.db"), clock())
            .await
            .unwrap();
        let store = Store::filesystem(dir.path()).unwrap();
        TempRepo { dir, sql, store }
    }

    pub(crate) fn queued(owner: Option<&str>) -> Image {
        let mut image = Image::new_queued(
            ImageId::new_random(),
            owner.map(str::to_owned),
            clock().now(),
        );
        image.name = Some("test".to_owned());
        image
    }

    /// `image` added through `repo` (no layers above it).
    pub(crate) async fn added<R: ImageRepo>(repo: &R, image: Image) -> Image {
        repo.add(&admin(), &NewImage::new(image)).await.unwrap()
    }

    /// `image` (as stored) moved to `saving`, then `active` with `size`
    /// bytes at the store location of the image.
    pub(crate) async fn activated<R: ImageRepo>(repo: &R, image: &Image, size: u64) -> Image {
        let saving = repo
            .save(&admin(), &Change::claim_upload(image.clone()))
            .await
            .unwrap();
        repo.save(
            &admin(),
            &Change::commit_upload(saving, uploaded(image.id, size)),
        )
        .await
        .unwrap()
    }

    /// Upload data of `size` bytes at the filesystem store's location of `id`
    /// (the data itself need not exist for record-only tests).
    pub(crate) fn uploaded(id: ImageId, size: u64) -> UploadedData {
        UploadedData {
            size,
            virtual_size: Some(size),
            checksum: "0".repeat(32),
            os_hash_algo: "sha512".to_owned(),
            os_hash_value: "0".repeat(128),
            location: crate::image::Location {
                url: format!("file:///nonexistent/images/{id}"),
                metadata: Default::default(),
            },
        }
    }

    pub(crate) fn admin() -> RequestContext {
        RequestContext::local_admin()
    }

    pub(crate) fn member(project: &str) -> RequestContext {
        RequestContext::for_project(project, &["member", "reader"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowances_take_the_smallest_limit() {
        let allowance = UploadAllowance::unlimited().at_most(10).at_most(20);
        assert_eq!(allowance.max_bytes, Some(10));
        assert_eq!(UploadAllowance::unlimited().max_bytes, None);
    }

    #[test]
    fn transition_errors_say_what_is_allowed() {
        let id = ImageId::new_random();
        let err = Error::InvalidTransition {
            id,
            from: Status::Queued,
            to: Status::Deactivated,
        };
        assert_eq!(
            err.to_string(),
            format!(
                "image {id} is queued, so it cannot become deactivated (a queued image can become: saving, deleted, uploading)"
            )
        );
        let err = Error::Conflict {
            id,
            expected: Status::Queued,
            actual: Status::Saving,
        };
        assert!(!err.to_string().contains("not allowed"), "{err}");
        assert_eq!(err.kind(), "conflict");
    }
}
