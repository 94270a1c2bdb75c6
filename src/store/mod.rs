//! Image data at rest: staged writes (write → commit or abort), reads,
//! idempotent deletes, and the per-image upload lock crash recovery relies on.
//!
//! [`Store`] is an enum over backends (the filesystem now, S3 later): a closed
//! set chosen by configuration, dispatched with a `match` rather than a trait
//! object. This module must not know about image metadata (names, status,
//! properties): it stores bytes under an [`ImageId`] and hands back a
//! [`Location`]. Only `ingest` (writes) and `repo::location` (deletes) use it.
//!
//! The commit protocol is the same for every backend: data goes to a staging
//! name, is made durable, and only then appears under its final name in one
//! atomic step. Whatever goes wrong before that step leaves no data behind.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::image::{ImageId, Location};

mod fs;

pub use fs::FsStore;

/// The store id Glance reports in an image's `stores` field and in each
/// location's `metadata.store`.
pub const FS_STORE_ID: &str = "fs";

/// Where image data lives: one backend, chosen by configuration.
#[derive(Debug, Clone)]
pub enum Store {
    /// A local directory with `images/` and `staging/` beneath it.
    Fs(FsStore),
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

    /// The store id (`fs`), as Glance reports it in `stores`.
    pub fn id(&self) -> &'static str {
        match self {
            Store::Fs(_) => FS_STORE_ID,
        }
    }

    /// Starts a staged write of the data for image `id`.
    ///
    /// Nothing is visible under the image's final location until
    /// [`Staged::commit`] succeeds. Several staged writes for one id may exist
    /// at once (each has its own staging name); the upload lock
    /// ([`Store::try_lock_upload`]) is what makes one upload own an image.
    ///
    /// Fails when the staging file cannot be created (disk full is
    /// [`Error::DiskFull`]).
    pub async fn stage(&self, id: ImageId) -> Result<Staged, Error> {
        match self {
            Store::Fs(fs) => fs.stage(id).await.map(|staged| Staged {
                inner: StagedBackend::Fs(staged),
            }),
        }
    }

    /// Opens committed data for reading.
    ///
    /// Fails with [`Error::Missing`] when nothing is stored there and with
    /// [`Error::ForeignLocation`] when the location does not belong to this
    /// store.
    pub async fn open(&self, location: &Location) -> Result<Reader, Error> {
        match self {
            Store::Fs(fs) => fs.open_data(location).await,
        }
    }

    /// Deletes committed data. Deleting what is already gone succeeds.
    ///
    /// Fails with [`Error::ForeignLocation`] (and deletes nothing) when the
    /// location does not belong to this store, or on an I/O error.
    pub async fn delete(&self, location: &Location) -> Result<(), Error> {
        match self {
            Store::Fs(fs) => fs.delete(location).await,
        }
    }

    /// Whether `location` names data inside this store (used to refuse
    /// recording or deleting anything else).
    pub fn owns(&self, location: &Location) -> bool {
        match self {
            Store::Fs(fs) => fs.path_of(location).is_ok(),
        }
    }

    /// The location a commit of image `id` lands on.
    ///
    /// Crash recovery uses it to remove data that was committed to the store
    /// but never recorded in the database (the process died between the two).
    pub fn location_of(&self, id: ImageId) -> Location {
        match self {
            Store::Fs(fs) => fs.location_of(id),
        }
    }

    /// Staged (uncommitted) data currently in the store, for every image.
    ///
    /// Fails on an I/O error reading the staging area.
    pub async fn list_staged(&self) -> Result<Vec<StagedData>, Error> {
        match self {
            Store::Fs(fs) => fs.list_staged(None).await,
        }
    }

    /// Removes every staged (uncommitted) write of image `id` and returns
    /// what was removed.
    ///
    /// Only call it while holding the image's [`UploadLock`]: a live upload
    /// holds that lock for as long as its staged data exists.
    ///
    /// Fails on an I/O error; what was removed before the error stays removed.
    pub async fn remove_staged(&self, id: ImageId) -> Result<Vec<StagedData>, Error> {
        match self {
            Store::Fs(fs) => fs.remove_staged(id).await,
        }
    }

    /// Tries to take the upload lock of image `id` without waiting.
    ///
    /// `Ok(None)` means another upload (in this or another process) holds it.
    /// The lock is released when the returned guard is dropped, and by the
    /// kernel when its process dies, so a lock that can be taken means no
    /// upload of that image is alive.
    ///
    /// Fails on an I/O error creating the lock file.
    pub fn try_lock_upload(&self, id: ImageId) -> Result<Option<UploadLock>, Error> {
        match self {
            Store::Fs(fs) => fs.try_lock_upload(id),
        }
    }
}

/// A staged write that is not visible until committed.
///
/// Dropping it without calling [`Staged::commit`] or [`Staged::abort`] (an
/// early return, a panic, a cancelled task) removes the staged data
/// synchronously, best effort; a leftover after a crash is removed by
/// [`Store::remove_staged`].
#[derive(Debug)]
pub struct Staged {
    inner: StagedBackend,
}

#[derive(Debug)]
enum StagedBackend {
    Fs(fs::FsStaged),
}

impl Staged {
    /// The image this data belongs to.
    pub fn image_id(&self) -> ImageId {
        match &self.inner {
            StagedBackend::Fs(staged) => staged.image_id(),
        }
    }

    /// Bytes accepted so far.
    pub fn bytes_written(&self) -> u64 {
        match &self.inner {
            StagedBackend::Fs(staged) => staged.bytes_written(),
        }
    }

    /// Appends `data`.
    ///
    /// Fails with [`Error::DiskFull`] when the device is full, after removing
    /// the staged data; after any failure every further `write` or `commit`
    /// fails with [`Error::Failed`].
    pub async fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        match &mut self.inner {
            StagedBackend::Fs(staged) => staged.write(data).await,
        }
    }

    /// Makes the data durable and moves it to its final location atomically.
    ///
    /// Fails (leaving nothing behind, neither staged nor final) when flushing,
    /// syncing or renaming fails; disk full is [`Error::DiskFull`]. A commit
    /// dropped before it returns (a cancelled task) leaves nothing either.
    pub async fn commit(self) -> Result<Location, Error> {
        match self.inner {
            StagedBackend::Fs(staged) => staged.commit().await,
        }
    }

    /// Removes the staged data.
    ///
    /// Fails only on an I/O error other than "already gone".
    pub async fn abort(self) -> Result<(), Error> {
        match self.inner {
            StagedBackend::Fs(staged) => staged.abort().await,
        }
    }
}

/// One staged (uncommitted) object found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedData {
    /// The image it belongs to.
    pub image_id: ImageId,
    /// Backend-specific name (the staging file path for the filesystem).
    pub name: String,
    /// Bytes staged.
    pub len: u64,
}

/// Proof that this process owns the upload of one image; released on drop.
#[derive(Debug)]
pub struct UploadLock {
    inner: fs::FsUploadLock,
}

impl UploadLock {
    /// The image whose upload this lock guards.
    pub fn image_id(&self) -> ImageId {
        self.inner.image_id()
    }
}

/// Committed data being read back; an [`AsyncRead`] that knows its length.
#[derive(Debug)]
pub struct Reader {
    len: u64,
    inner: ReaderBackend,
}

#[derive(Debug)]
enum ReaderBackend {
    Fs(tokio::fs::File),
}

impl Reader {
    /// Total bytes stored (for `Content-Length`, progress bars and the size check).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the stored data is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
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
    /// The location is not a URL this store produced.
    #[error("location {url:?} does not belong to this store (expected a file:// url under {root})")]
    ForeignLocation {
        /// The rejected URL.
        url: String,
        /// Where this store keeps committed data.
        root: PathBuf,
    },
    /// Nothing is stored at the location.
    #[error("no image data at {url} (the stored data is missing)")]
    Missing {
        /// The location URL.
        url: String,
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
            Error::ForeignLocation { .. } => "foreign_location",
            Error::Missing { .. } => "missing_data",
            Error::Failed { .. } => "staged_write_failed",
        }
    }
}
