//! The image repository: the [`ImageRepo`] trait, its SQL backend and the
//! Glance-style layers around it, assembled once by [`stack`].
//!
//! Glance wraps its repository in proxies (gateway.py); portcullis does the
//! same with one trait and one type per concern, tower style: each layer
//! holds an inner repository, does its one job and delegates. Outermost
//! first: authorization → notifier → policy → quota → property protection →
//! location → SQL.
//!
//! This module owns the records (metadata) of images. It must not touch
//! image data except through [`location`], which owns `locations` and
//! deletes data from the store when an image is removed.

use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::clock::Clock;
use crate::context::RequestContext;
use crate::image::{ContainerFormat, DiskFormat, Image, ImageId, Properties, Status, Visibility};
use crate::store::Store;

pub mod authz;
pub mod location;
pub mod notify;
mod options;
pub mod policy;
pub mod property_protection;
pub mod quota;
pub mod sql;

pub use authz::AuthzRepo;
pub use location::LocationRepo;
pub use notify::NotifyRepo;
pub use options::{
    EffectiveLimits, Limit, NotificationOptions, PolicyOptions, ProjectLimits, QuotaOptions,
    RepoOptions,
};
pub use policy::PolicyRepo;
pub use property_protection::PropertyProtectionRepo;
pub use quota::QuotaRepo;
pub use sql::SqlRepo;

/// A repository of image records.
///
/// Every method takes the caller's [`RequestContext`] first; layers use it to
/// decide, the SQL backend ignores it. The futures are `Send` so a server can
/// spawn them.
pub trait ImageRepo: Send + Sync {
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
    /// layer refuses (Forbidden, quota).
    fn add(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> impl Future<Output = Result<Image, Error>> + Send;

    /// Writes the whole record in one transaction and returns it as stored
    /// (with a new `updated_at`).
    ///
    /// With `from`, the write is a compare-and-swap on `status`
    /// (`UPDATE … WHERE id = ? AND status = from`): when the stored status is
    /// no longer `from`, nothing is written and the result is
    /// [`Error::Conflict`]. A status change must be legal
    /// ([`Status::can_become`]), else [`Error::InvalidTransition`].
    fn save(
        &self,
        ctx: &RequestContext,
        image: &Image,
        from: Option<Status>,
    ) -> impl Future<Output = Result<Image, Error>> + Send;

    /// Marks the image deleted and (in the location layer) deletes its data;
    /// returns the record as it was, with status `deleted`.
    ///
    /// Fails with [`Error::NotFound`] when it does not exist (or is already
    /// deleted) and [`Error::Protected`] when it is protected.
    fn remove(
        &self,
        ctx: &RequestContext,
        id: ImageId,
    ) -> impl Future<Output = Result<Image, Error>> + Send;

    /// Asks every layer whether an upload of data to `image` may start, and
    /// how many bytes it may bring (the smallest limit wins).
    ///
    /// Fails when a layer vetoes: the image is not `queued`
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

/// A shared repository is a repository: an `Arc<Stack>` can be handed to
/// anything generic over [`ImageRepo`] (a server's handlers, ingest).
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
        image: &Image,
    ) -> impl Future<Output = Result<Image, Error>> + Send {
        (**self).add(ctx, image)
    }

    fn save(
        &self,
        ctx: &RequestContext,
        image: &Image,
        from: Option<Status>,
    ) -> impl Future<Output = Result<Image, Error>> + Send {
        (**self).save(ctx, image, from)
    }

    fn remove(
        &self,
        ctx: &RequestContext,
        id: ImageId,
    ) -> impl Future<Output = Result<Image, Error>> + Send {
        (**self).remove(ctx, id)
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

/// Filters, sort and paging for [`ImageRepo::list`], as Glance's `GET /v2/images`.
///
/// `Default` is Glance's default listing: every image the caller may see
/// except community images of other projects and hidden images, newest
/// first, no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only images in this status.
    pub status: Option<Status>,
    /// Only images with exactly this name.
    pub name: Option<String>,
    /// Only images of this owner.
    pub owner: Option<String>,
    /// Visibility filter; `None` is Glance's default (no community images of
    /// other projects).
    pub visibility: Option<VisibilityFilter>,
    /// Only images carrying every one of these tags.
    pub tags: Vec<String>,
    /// Only hidden (`true`) or only not hidden (`false`) images; `None` is
    /// Glance's default, which hides them.
    pub os_hidden: Option<bool>,
    /// Only images with this disk format.
    pub disk_format: Option<DiskFormat>,
    /// Only images with this container format.
    pub container_format: Option<ContainerFormat>,
    /// Only images with every one of these properties set to these values.
    pub properties: Properties,
    /// At most this many images; `None` means all.
    pub limit: Option<u32>,
    /// Start after this image (the last id of the previous page).
    pub marker: Option<ImageId>,
    /// Sort keys, most significant first; empty means Glance's default
    /// (`created_at` desc, `id` desc). `id` is always appended as the final
    /// tie-breaker so pages never overlap.
    pub sort: Vec<SortBy>,
    /// Which images the caller may see at all. Set by the authorization
    /// layer; callers leave it at the default.
    pub scope: ListScope,
}

/// The `visibility` list filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityFilter {
    /// Only images with this visibility.
    Only(Visibility),
    /// Every visibility the caller may see, community included (Glance's `all`).
    All,
}

impl FromStr for VisibilityFilter {
    type Err = crate::image::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "all" {
            Ok(VisibilityFilter::All)
        } else {
            s.parse().map(VisibilityFilter::Only)
        }
    }
}

/// Which images a listing may return at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ListScope {
    /// Every image (administrators; the bare SQL backend).
    #[default]
    Everything,
    /// Public and community images, plus every image owned by `project`.
    VisibleTo {
        /// The caller's project, if any.
        project: Option<String>,
    },
}

impl ListScope {
    /// Whether `image` is inside this scope.
    pub fn admits(&self, image: &Image) -> bool {
        match self {
            ListScope::Everything => true,
            ListScope::VisibleTo { project } => {
                matches!(image.visibility, Visibility::Public | Visibility::Community)
                    || (project.is_some() && image.owner == *project)
            }
        }
    }
}

/// One sort key and its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortBy {
    /// The attribute.
    pub key: SortKey,
    /// Ascending or descending.
    pub dir: SortDir,
}

/// Sort direction (Glance's `sort_dir`, default `desc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortDir {
    /// Smallest first (null before any value).
    Asc,
    /// Largest first (null after any value).
    #[default]
    Desc,
}

impl FromStr for SortDir {
    type Err = BadSort;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "asc" => Ok(SortDir::Asc),
            "desc" => Ok(SortDir::Desc),
            other => Err(BadSort::Dir(other.to_owned())),
        }
    }
}

/// The attributes images can be sorted by (Glance's `sort_key` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// `name`
    Name,
    /// `status`
    Status,
    /// `container_format`
    ContainerFormat,
    /// `disk_format`
    DiskFormat,
    /// `size`
    Size,
    /// `virtual_size`
    VirtualSize,
    /// `id`
    Id,
    /// `created_at`
    CreatedAt,
    /// `updated_at`
    UpdatedAt,
    /// `visibility`
    Visibility,
    /// `owner`
    Owner,
    /// `min_disk`
    MinDisk,
    /// `min_ram`
    MinRam,
}

impl SortKey {
    /// Every key, with its Glance name.
    pub const ALL: &'static [(SortKey, &'static str)] = &[
        (SortKey::Name, "name"),
        (SortKey::Status, "status"),
        (SortKey::ContainerFormat, "container_format"),
        (SortKey::DiskFormat, "disk_format"),
        (SortKey::Size, "size"),
        (SortKey::VirtualSize, "virtual_size"),
        (SortKey::Id, "id"),
        (SortKey::CreatedAt, "created_at"),
        (SortKey::UpdatedAt, "updated_at"),
        (SortKey::Visibility, "visibility"),
        (SortKey::Owner, "owner"),
        (SortKey::MinDisk, "min_disk"),
        (SortKey::MinRam, "min_ram"),
    ];

    /// Glance's name for this key.
    pub fn as_str(self) -> &'static str {
        SortKey::ALL
            .iter()
            .find(|(key, _)| *key == self)
            .map_or("id", |(_, name)| name)
    }
}

impl FromStr for SortKey {
    type Err = BadSort;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SortKey::ALL
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(key, _)| *key)
            .ok_or_else(|| BadSort::Key(s.to_owned()))
    }
}

/// A `sort_key` or `sort_dir` Glance does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSort {
    /// Unknown sort key.
    #[error(
        "{0:?} is not a sort key (expected one of: name, status, container_format, disk_format, size, virtual_size, id, created_at, updated_at, visibility, owner, min_disk, min_ram)"
    )]
    Key(String),
    /// Unknown direction.
    #[error("{0:?} is not a sort direction (expected asc or desc)")]
    Dir(String),
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
    /// A compare-and-swap lost: the image is no longer in the expected status.
    #[error(
        "image {id} is {actual}, not {expected}: another operation changed it first (status transition from {actual} to {wanted} is not allowed)"
    )]
    Conflict {
        /// The image.
        id: ImageId,
        /// The status the caller expected (`from`).
        expected: Status,
        /// The status found.
        actual: Status,
        /// The status the caller wanted to set.
        wanted: Status,
    },
    /// A status change the state machine does not allow.
    #[error("image {id}: status transition from {from} to {to} is not allowed")]
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
    #[error("attribute {attribute:?} of image {id} is read-only")]
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
        /// The database file.
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

fn on_image(image: &Option<ImageId>) -> String {
    image.map(|id| format!(" (image {id})")).unwrap_or_default()
}

impl Error {
    /// A stable snake_case name for the kind of failure (JSON output, logs,
    /// and the HTTP status mapping later).
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
            Error::NoData { .. } => "no_data",
            Error::MarkerNotFound { .. } => "marker_not_found",
            Error::ForeignLocation { .. } => "foreign_location",
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
    let location = LocationRepo::new(sql.clone(), store);
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
    fn sort_keys_use_glance_names() {
        for (key, name) in SortKey::ALL {
            assert_eq!(name.parse::<SortKey>().unwrap(), *key);
            assert_eq!(key.as_str(), *name);
        }
        assert!(matches!("colour".parse::<SortKey>(), Err(BadSort::Key(_))));
        assert_eq!("asc".parse::<SortDir>().unwrap(), SortDir::Asc);
        assert!("up".parse::<SortDir>().is_err());
        assert_eq!(
            "all".parse::<VisibilityFilter>().unwrap(),
            VisibilityFilter::All
        );
        assert_eq!(
            "community".parse::<VisibilityFilter>().unwrap(),
            VisibilityFilter::Only(Visibility::Community)
        );
    }
}
