//! Image data at rest: staged writes (stage → write → commit or abort), the
//! staging intent that lets any process or node abort a dead upload, ranged
//! reads, idempotent deletes, and the listings a sweeper works from.
//!
//! [`Store`] is an enum over backends (a local directory, an S3 bucket): a
//! closed set chosen by configuration ([`StoreConfig`]), dispatched with a
//! `match` rather than a trait object. This module must not know about image
//! metadata (names, status, properties): it stores bytes under an
//! [`ImageId`] and hands back a [`Location`]. Only `ingest` (writes) and
//! `repo::location` (deletes) use it; a sweeper (`gc`) may use the listings.
//!
//! The seam is the same for every backend, with no special case:
//! 1. [`Store::stage`] starts a staged write and returns at once its
//!    [`StagingIntent`] ([`Staged::intent`]): serialisable, so the caller
//!    records it (with its upload lease) before writing the first byte.
//! 2. [`Staged::write`] takes the caller's [`Bytes`] without copying them.
//! 3. [`Staged::commit`] publishes atomically (filesystem: fsync, rename,
//!    fsync the directory; S3: complete the multipart upload); call it only
//!    after verification and inspection passed.
//! 4. [`Staged::abort`] (async, explicit) removes what was staged. Dropping a
//!    [`Staged`] does no I/O: whoever finds the upload dead aborts it with
//!    [`Store::abort`] from the recorded intent, in any process, idempotently;
//!    a leftover whose intent was never recorded shows in
//!    [`Store::list_staged`].
//!
//! A commit that was dropped before it returned (a cancelled task) may or may
//! not have published: the caller then aborts the intent and deletes
//! [`Store::location_of`] the image, both idempotent.

use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};

use crate::image::{ImageId, Location};

mod config;
mod fs;
mod intent;
mod range;
mod s3;

pub use config::{
    Addressing, ConfigError, DEFAULT_PART_SIZE, DEFAULT_PARTS_IN_FLIGHT, S3Config, S3Credentials,
    StoreConfig,
};
pub use fs::FsStore;
pub use intent::{BadIntent, StagedData, StagingIntent, StaleLock, StoredObject};
pub use range::ByteRange;
pub use s3::S3Store;

/// The store id Glance reports in an image's `stores` field and in each
/// location's `metadata.store`, for the filesystem store.
pub const FS_STORE_ID: &str = "fs";
/// The store id of the S3 store.
pub const S3_STORE_ID: &str = "s3";

/// Where image data lives: one backend, chosen by configuration.
#[derive(Debug, Clone)]
pub enum Store {
    /// A local directory with `images/` and `staging/` beneath it.
    Fs(FsStore),
    /// An S3 bucket (objects `PREFIX/<id>`, staging as multipart uploads).
    S3(S3Store),
}

/// How much image data one staged write holds in memory at most, beyond the
/// chunk the caller is handing in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferBound {
    /// The filesystem: the previous chunk, while a blocking thread writes it
    /// (so the next chunk is hashed while the last one is written).
    OneChunk,
    /// S3: at most `parts_in_flight` parts of `part_size` bytes (uploading,
    /// or being filled).
    Parts {
        /// Parts held at most.
        parts_in_flight: usize,
        /// Bytes per part.
        part_size: u64,
    },
}

impl BufferBound {
    /// The bound in bytes when the caller's chunks are at most `max_chunk` bytes.
    pub fn bytes(&self, max_chunk: u64) -> u64 {
        match *self {
            BufferBound::OneChunk => max_chunk,
            BufferBound::Parts {
                parts_in_flight,
                part_size,
            } => part_size.saturating_mul(parts_in_flight as u64),
        }
    }
}

impl Store {
    /// A filesystem store rooted at `root` (created with `images/` and
    /// `staging/` beneath it when missing).
    ///
    /// Fails when the directories cannot be created or the root cannot be
    /// made absolute.
    pub fn filesystem(root: impl Into<PathBuf>) -> Result<Store, Error> {
        FsStore::open(root.into()).map(Store::Fs)
    }

    /// An S3 store. Credentials come from `config.credentials`, else from
    /// the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, web identity or container credentials).
    ///
    /// Makes no request (see [`Store::check`]). Fails with
    /// [`Error::S3Setup`] when no credentials are found or the client cannot
    /// be built.
    pub fn s3(config: S3Config) -> Result<Store, Error> {
        S3Store::connect(config).map(Store::S3)
    }

    /// Opens the store `config` names: the one constructor the application
    /// needs for `--store`.
    ///
    /// Fails as [`Store::filesystem`] or [`Store::s3`] do.
    pub fn from_config(config: &StoreConfig) -> Result<Store, Error> {
        match config {
            StoreConfig::Fs { root } => Store::filesystem(root.clone()),
            StoreConfig::S3(s3) => Store::s3(s3.clone()),
        }
    }

    /// Parses a `--store` URL ([`StoreConfig`]) and opens it.
    ///
    /// Fails with [`Error::Config`] on a bad URL, otherwise as
    /// [`Store::from_config`].
    pub fn open_url(url: &str) -> Result<Store, Error> {
        let config: StoreConfig = url.parse()?;
        Store::from_config(&config)
    }

    /// Checks that the store can be used now: the directories exist (fs), or
    /// the bucket answers a listing with these credentials (S3). For a clear
    /// error at start rather than at the first upload.
    ///
    /// Fails with the backend's error (for S3: unreachable endpoint, unknown
    /// bucket, refused credentials).
    pub async fn check(&self) -> Result<(), Error> {
        match self {
            Store::Fs(fs) => fs.check().await,
            Store::S3(s3) => s3.check().await,
        }
    }

    /// The store id (`fs`, `s3`), as Glance reports it in `stores`.
    pub fn id(&self) -> &'static str {
        match self {
            Store::Fs(_) => FS_STORE_ID,
            Store::S3(_) => S3_STORE_ID,
        }
    }

    /// How much one staged write holds in memory at most.
    pub fn buffer_bound(&self) -> BufferBound {
        match self {
            Store::Fs(_) => BufferBound::OneChunk,
            Store::S3(s3) => s3.buffer_bound(),
        }
    }

    /// Starts a staged write of the data for image `id`.
    ///
    /// Nothing is visible under the image's final location until
    /// [`Staged::commit`] succeeds. Record [`Staged::intent`] before the
    /// first write. Several staged writes for one id may exist at once (each
    /// has its own intent); making one upload own an image is the caller's
    /// job (the upload lease).
    ///
    /// Fails when the staging file or the multipart upload cannot be created
    /// (disk full is [`Error::DiskFull`]).
    pub async fn stage(&self, id: ImageId) -> Result<Staged, Error> {
        let inner = match self {
            Store::Fs(fs) => StagedBackend::Fs(fs.stage(id).await?),
            Store::S3(s3) => StagedBackend::S3(s3.stage(id).await?),
        };
        Ok(Staged {
            inner,
            finished: false,
        })
    }

    /// Aborts the staged write `intent` names, from any process or node: the
    /// staging file is removed, or the multipart upload aborted (its parts
    /// freed). Already gone (committed, aborted, never created) is success.
    ///
    /// It does not touch committed data: after a commit whose outcome is
    /// unknown, also [`Store::delete`] the image's [`Store::location_of`].
    /// Fails with [`Error::ForeignIntent`] (and touches nothing) when the
    /// intent belongs to another kind of store or another bucket/prefix, or
    /// on an I/O or S3 error.
    pub async fn abort(&self, intent: &StagingIntent) -> Result<(), Error> {
        match self {
            Store::Fs(fs) => fs.abort(intent).await,
            Store::S3(s3) => s3.abort(intent).await,
        }
    }

    /// Opens committed data for reading: all of it, or `range` of it.
    ///
    /// The reader yields exactly the selected bytes ([`Reader::range`]) and
    /// knows the stored length ([`Reader::len`]). Fails with
    /// [`Error::Missing`] when nothing is stored there,
    /// [`Error::RangeNotSatisfiable`] when `range` selects nothing (HTTP
    /// 416), and [`Error::ForeignLocation`] when the location does not belong
    /// to this store.
    pub async fn open(
        &self,
        location: &Location,
        range: Option<ByteRange>,
    ) -> Result<Reader, Error> {
        match self {
            Store::Fs(fs) => fs.open_data(location, range).await,
            Store::S3(s3) => s3.open_data(location, range).await,
        }
    }

    /// Deletes committed data. Deleting what is already gone succeeds.
    ///
    /// Fails with [`Error::ForeignLocation`] (and deletes nothing) when the
    /// location does not belong to this store, or on an I/O or S3 error.
    pub async fn delete(&self, location: &Location) -> Result<(), Error> {
        match self {
            Store::Fs(fs) => fs.delete(location).await,
            Store::S3(s3) => s3.delete(location).await,
        }
    }

    /// Whether `location` names data inside this store (used to refuse
    /// recording or deleting anything else).
    pub fn owns(&self, location: &Location) -> bool {
        match self {
            Store::Fs(fs) => fs.path_of(location).is_ok(),
            Store::S3(s3) => s3.key_of_location(location).is_ok(),
        }
    }

    /// The location a commit of image `id` lands on.
    ///
    /// Crash recovery uses it to remove data that was committed to the store
    /// but never recorded in the database (the process died between the two).
    pub fn location_of(&self, id: ImageId) -> Location {
        match self {
            Store::Fs(fs) => fs.location_of(id),
            Store::S3(s3) => s3.location_of(id),
        }
    }

    /// Every committed object in the store (named after an image id), for a
    /// sweeper that removes objects no image references.
    ///
    /// Fails on an I/O or S3 error.
    pub async fn list_objects(&self) -> Result<Vec<StoredObject>, Error> {
        match self {
            Store::Fs(fs) => fs.list_objects().await,
            Store::S3(s3) => s3.list_objects().await,
        }
    }

    /// Every staged (uncommitted) write in the store, live or dead, with its
    /// intent and age, for a sweeper that aborts expired staging.
    ///
    /// Fails on an I/O or S3 error.
    pub async fn list_staged(&self) -> Result<Vec<StagedData>, Error> {
        match self {
            Store::Fs(fs) => fs.list_staged(None).await,
            Store::S3(s3) => s3.list_staged(None).await,
        }
    }

    /// Removes at most `limit` upload lock files (`staging/<id>.lock`, taken
    /// by the glance-direct stages and imports of portcullis before 2026-11-29,
    /// which held a per-image `flock` instead of the upload lease) older than
    /// `older_than` that no process holds (with `dry_run`, only finds them),
    /// oldest first. S3 never had any: always empty there.
    ///
    /// Fails on an I/O error.
    pub async fn collect_stale_locks(
        &self,
        older_than: std::time::Duration,
        limit: usize,
        dry_run: bool,
    ) -> Result<Vec<StaleLock>, Error> {
        match self {
            Store::Fs(fs) => fs.collect_stale_locks(older_than, limit, dry_run).await,
            Store::S3(_) => Ok(Vec::new()),
        }
    }

    /// Aborts every staged write of image `id` and returns what was aborted.
    ///
    /// Only call it when no upload of `id` can be alive (its lease is held
    /// by the caller): a live upload's staging would go too.
    ///
    /// Fails on an I/O or S3 error; what was aborted before it stays aborted.
    pub async fn remove_staged(&self, id: ImageId) -> Result<Vec<StagedData>, Error> {
        let staged = match self {
            Store::Fs(fs) => fs.list_staged(Some(id)).await?,
            Store::S3(s3) => s3.list_staged(Some(id)).await?,
        };
        for data in &staged {
            self.abort(&data.intent).await?;
        }
        Ok(staged)
    }
}

/// A staged write that is not visible until committed.
///
/// End it with [`Staged::commit`] or [`Staged::abort`]. Dropping it instead
/// does no I/O (it logs a warning): the staged data stays until someone
/// aborts its [`Staged::intent`] ([`Store::abort`]) or a sweeper finds it in
/// [`Store::list_staged`].
#[derive(Debug)]
pub struct Staged {
    inner: StagedBackend,
    finished: bool,
}

#[derive(Debug)]
enum StagedBackend {
    Fs(fs::FsStaged),
    S3(s3::S3Staged),
}

impl Staged {
    /// The image this data belongs to.
    pub fn image_id(&self) -> ImageId {
        self.intent().image_id()
    }

    /// What to record so that any process or node can abort this write.
    pub fn intent(&self) -> &StagingIntent {
        match &self.inner {
            StagedBackend::Fs(staged) => staged.intent(),
            StagedBackend::S3(staged) => staged.intent(),
        }
    }

    /// Bytes accepted so far.
    pub fn bytes_written(&self) -> u64 {
        match &self.inner {
            StagedBackend::Fs(staged) => staged.bytes_written(),
            StagedBackend::S3(staged) => staged.bytes_written(),
        }
    }

    /// The most image data this write held in memory at once so far (bytes
    /// of the caller's chunks still referenced: being written, or buffered
    /// in parts). It stays within [`Store::buffer_bound`].
    pub fn peak_held_bytes(&self) -> u64 {
        match &self.inner {
            StagedBackend::Fs(staged) => staged.peak_held_bytes(),
            StagedBackend::S3(staged) => staged.peak_held_bytes(),
        }
    }

    /// Appends `data`, keeping a reference to it rather than a copy.
    ///
    /// It may return before the data reached the store (the filesystem
    /// writes the chunk on a blocking thread while the caller goes on; S3
    /// uploads a part while the next one fills), so a failure may be
    /// reported by a later `write` or by `commit`. When the store holds as
    /// much as [`Store::buffer_bound`] allows, it waits (backpressure).
    ///
    /// Fails with [`Error::DiskFull`] when the device is full; after any
    /// failure the staged data was removed (best effort: the intent stays
    /// abortable) and every further `write` or `commit` fails with
    /// [`Error::Failed`].
    pub async fn write(&mut self, data: Bytes) -> Result<(), Error> {
        match &mut self.inner {
            StagedBackend::Fs(staged) => staged.write(data).await,
            StagedBackend::S3(staged) => staged.write(data).await,
        }
    }

    /// Publishes the data at [`Store::location_of`] its image, atomically.
    ///
    /// Fails (leaving nothing behind, neither staged nor final, best effort)
    /// when flushing, syncing, renaming or completing fails; disk full is
    /// [`Error::DiskFull`]. A commit dropped before it returns may or may not
    /// have published (see the module documentation).
    pub async fn commit(mut self) -> Result<Location, Error> {
        self.finished = true;
        match &mut self.inner {
            StagedBackend::Fs(staged) => staged.commit().await,
            StagedBackend::S3(staged) => staged.commit().await,
        }
    }

    /// Gives the write up without any I/O and returns its intent, for a
    /// caller that cannot await now (a drop guard) and aborts it later with
    /// [`Store::abort`]. Writes still in flight finish or are cancelled on
    /// their own.
    pub fn into_intent(mut self) -> StagingIntent {
        self.finished = true;
        self.intent().clone()
    }

    /// Removes the staged data (waiting for writes in flight first, so
    /// nothing lands after it).
    ///
    /// Fails only on an I/O or S3 error other than "already gone"; the
    /// intent can then be aborted again later.
    pub async fn abort(mut self) -> Result<(), Error> {
        self.finished = true;
        match &mut self.inner {
            StagedBackend::Fs(staged) => staged.abort().await,
            StagedBackend::S3(staged) => staged.abort().await,
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.finished {
            // No I/O here: an S3 multipart upload cannot be aborted without
            // awaiting, and the filesystem behaves the same so that callers
            // have one rule. The intent is the way back to the data.
            tracing::warn!(
                image = %self.image_id(),
                intent = %self.intent(),
                "staged image data dropped without commit or abort; it stays until its intent is aborted"
            );
        }
    }
}

/// Committed data being read back: an [`AsyncRead`] of exactly the requested
/// range, that knows the stored length.
pub struct Reader {
    len: u64,
    range: Range<u64>,
    inner: ReaderBackend,
}

enum ReaderBackend {
    Fs(tokio::io::Take<tokio::fs::File>),
    S3(s3::ObjectReader),
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("len", &self.len)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Total bytes stored (the object's length, whatever the range).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the stored data is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The offsets this reader yields (all of them without a range), for
    /// `Content-Range` and `Content-Length`.
    pub fn range(&self) -> Range<u64> {
        self.range.clone()
    }
}

impl AsyncRead for Reader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            ReaderBackend::Fs(file) => Pin::new(file).poll_read(cx, buf),
            ReaderBackend::S3(object) => Pin::new(object).poll_read(cx, buf),
        }
    }
}

/// What can go wrong storing or reading image data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The device holding the store is full; the partial data was removed.
    #[error(
        "no space left on the device holding {path} (the partial data was removed; free space or configure a larger store)"
    )]
    DiskFull {
        /// The file being written.
        path: PathBuf,
        /// The underlying error (ENOSPC or EDQUOT).
        #[source]
        source: io::Error,
    },
    /// Any other I/O failure.
    #[error("{operation} {path} failed")]
    Io {
        /// What was being done ("write", "rename", ...).
        operation: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An S3 request failed (after object_store's retries).
    #[error("s3 {operation} of {target} failed")]
    S3 {
        /// What was being done ("upload part", "complete upload", ...).
        operation: &'static str,
        /// The `s3://bucket/key` involved.
        target: String,
        /// The client's error (status and S3's message; never credentials),
        /// boxed: it is large and every `Result` of the crate carries it.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The S3 client could not be set up from the configuration.
    #[error("s3 store for bucket {bucket:?}: {problem}")]
    S3Setup {
        /// The bucket configured.
        bucket: String,
        /// What is wrong and what to do.
        problem: String,
        /// The client's error, when it has one.
        #[source]
        source: Option<Box<object_store::Error>>,
    },
    /// The `--store` value is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The location is not a URL this store produced.
    #[error("location {url:?} does not belong to this store (expected {expected})")]
    ForeignLocation {
        /// The rejected URL.
        url: String,
        /// What this store's locations look like.
        expected: String,
    },
    /// The intent was made by another store (kind, directory, bucket or prefix).
    #[error("staging intent {intent} does not belong to this store (expected {expected})")]
    ForeignIntent {
        /// The rejected intent.
        intent: String,
        /// What this store's intents look like.
        expected: String,
    },
    /// Nothing is stored at the location.
    #[error("no image data at {url} (the stored data is missing)")]
    Missing {
        /// The location URL.
        url: String,
    },
    /// The requested range selects no byte of the stored data.
    #[error("range {range} of {url} selects nothing: {len} bytes are stored")]
    RangeNotSatisfiable {
        /// The location URL.
        url: String,
        /// The range asked for.
        range: ByteRange,
        /// Bytes stored (for `Content-Range: bytes */LEN`).
        len: u64,
    },
    /// An earlier write or commit of this staged data failed; abort it.
    #[error("staged data for image {id} is unusable after an earlier failure")]
    Failed {
        /// The image whose staged write failed.
        id: ImageId,
    },
}

impl Error {
    /// A stable snake_case name for the kind of failure (for JSON output and logs).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::DiskFull { .. } => "disk_full",
            Error::Io { .. } => "io",
            Error::S3 { .. } => "s3",
            Error::S3Setup { .. } => "s3_setup",
            Error::Config(_) => "store_config",
            Error::ForeignLocation { .. } => "foreign_location",
            Error::ForeignIntent { .. } => "foreign_intent",
            Error::Missing { .. } => "missing_data",
            Error::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Error::Failed { .. } => "staged_write_failed",
        }
    }
}
