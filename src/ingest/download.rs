//! Downloads: an image's stored data as a stream of chunks, verified on the
//! way out.
//!
//! The whole image ([`open_verified`]) re-computes its size, checksum (md5)
//! and os_hash on the shared hash pool while it streams, and ends with an
//! error item instead of the end of the stream when any differs from the
//! record (corruption at rest), so an HTTP server can abort the response and
//! a file writer can refuse to keep the file. Data beyond the recorded size
//! is refused before it is yielded. One byte range ([`open_range`]) cannot be
//! checked against whole-image digests; it is checked for length only, as
//! Glance does. This module must not change the image record or write
//! anywhere: writing a file or standard output is the caller's.

use std::io;
use std::pin::Pin;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use tokio_util::io::ReaderStream;

use crate::hash::HashAlgorithm;
use crate::image::{Image, ImageId, Location, Status};
use crate::store::{Reader, Store};

use super::source::CHUNK_SIZE;
use super::workers::{HashPlan, HashPool, HashWorkers, WorkerError};

/// A download's chunks; the last item is an error when the data is not
/// what the record says.
pub type DataStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// A download that failed or did not match.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Only active (and, for those allowed, deactivated) images have complete data.
    #[error("image {id} is {status}: only active images can be downloaded")]
    NotActive {
        /// The image.
        id: ImageId,
        /// Its status.
        status: Status,
    },
    /// The record has no location, or hashes portcullis cannot check.
    #[error("image {id} has no data to download ({what})")]
    NoData {
        /// The image.
        id: ImageId,
        /// What is missing.
        what: &'static str,
    },
    /// The stored data does not match the record.
    #[error(
        "image {id} is corrupted in the store: {field} is {actual} but the image record says {expected}"
    )]
    Corrupted {
        /// The image.
        id: ImageId,
        /// `size`, `checksum` or `os_hash_value`.
        field: &'static str,
        /// Recorded value.
        expected: String,
        /// Value of the data read.
        actual: String,
    },
    /// The store cannot open or read the data.
    #[error("image {id}: reading the stored data failed")]
    Store {
        /// The image.
        id: ImageId,
        /// The store's error.
        #[source]
        source: crate::store::Error,
    },
    /// Reading the stored data or writing the output failed.
    #[error("image {id}: {operation} {path} failed")]
    Io {
        /// The image.
        id: ImageId,
        /// What was being done.
        operation: &'static str,
        /// The file involved (`-` for standard output, the location for the store).
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A hashing thread failed.
    #[error("image {id}: hashing failed")]
    Worker {
        /// The image.
        id: ImageId,
        /// What went wrong.
        #[source]
        source: WorkerError,
    },
}

impl Error {
    /// The image the failed download was of (every failure concerns one),
    /// so a report can name it (`image_id` in JSON) without parsing text.
    pub fn image_id(&self) -> ImageId {
        match self {
            Error::NotActive { id, .. }
            | Error::NoData { id, .. }
            | Error::Corrupted { id, .. }
            | Error::Store { id, .. }
            | Error::Io { id, .. }
            | Error::Worker { id, .. } => *id,
        }
    }

    /// A stable snake_case name.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotActive { .. } => "not_active",
            Error::NoData { .. } => "no_data",
            Error::Corrupted { .. } => "corrupted",
            Error::Store { source, .. } => source.kind(),
            Error::Io { .. } => "io",
            Error::Worker { .. } => "hashing_failed",
        }
    }

    /// Whether this is a refusal or a failed check (exit 1) rather than an I/O failure (exit 2).
    pub fn is_rejection(&self) -> bool {
        match self {
            Error::NotActive { .. } | Error::NoData { .. } | Error::Corrupted { .. } => true,
            Error::Store { .. } | Error::Io { .. } | Error::Worker { .. } => false,
        }
    }
}

/// What the record vouches for; checked before a byte goes out, so a
/// record that cannot vouch for its data fails before a response starts.
struct Recorded {
    location: Location,
    size: u64,
    checksum: String,
    os_hash_algo: HashAlgorithm,
    os_hash_value: String,
}

fn recorded(image: &Image) -> Result<Recorded, Error> {
    let id = image.id;
    // The repository's prepare_download decided who may read a deactivated
    // image (admins, as in Glance); anything else has no complete data.
    if !matches!(image.status, Status::Active | Status::Deactivated) {
        return Err(Error::NotActive {
            id,
            status: image.status,
        });
    }
    let location = image.locations.first().cloned().ok_or(Error::NoData {
        id,
        what: "no location",
    })?;
    let os_hash_algo = match image.os_hash_algo.as_deref() {
        Some(name) => name.parse::<HashAlgorithm>().map_err(|_| Error::NoData {
            id,
            what: "unknown os_hash_algo",
        })?,
        None => HashAlgorithm::Sha512,
    };
    // A record without the values cannot vouch for the data: refuse.
    let (Some(size), Some(checksum), Some(os_hash_value)) = (
        image.size,
        image.checksum.clone(),
        image.os_hash_value.clone(),
    ) else {
        return Err(Error::NoData {
            id,
            what: "the record has no size, checksum or os_hash_value",
        });
    };
    Ok(Recorded {
        location,
        size,
        checksum,
        os_hash_algo,
        os_hash_value,
    })
}

async fn open_reader(store: &Store, id: ImageId, location: &Location) -> Result<Reader, Error> {
    store
        .open(location)
        .await
        .map_err(|source| Error::Store { id, source })
}

fn read_error(id: ImageId, source: io::Error) -> Error {
    Error::Io {
        id,
        operation: "read",
        path: "the stored data".to_owned(),
        source,
    }
}

/// The recorded size of an image that can be downloaded (for a range's bounds).
///
/// Fails as [`open_verified`] does before reading.
pub fn downloadable_size(image: &Image) -> Result<u64, Error> {
    recorded(image).map(|recorded| recorded.size)
}

/// Opens the whole data of `image` as a stream that re-computes size, md5
/// and os_hash on `pool` and ends with [`Error::Corrupted`] (naming the
/// field and both values) instead of ending normally when any differs from
/// the record; more bytes than recorded fail before they are yielded.
///
/// Fails before streaming when the image is not active (or deactivated),
/// its record lacks a location, size, checksum or os_hash, or the store
/// cannot open the data.
pub async fn open_verified(
    store: &Store,
    pool: &HashPool,
    image: &Image,
) -> Result<DataStream, Error> {
    let recorded = recorded(image)?;
    let reader = open_reader(store, image.id, &recorded.location).await?;
    let workers = HashWorkers::start(
        pool,
        HashPlan {
            os_hash: recorded.os_hash_algo,
            signature: None,
        },
    );
    let state = Verifying {
        id: image.id,
        chunks: ReaderStream::with_capacity(reader, CHUNK_SIZE),
        workers: Some(workers),
        n_bytes: 0,
        recorded,
    };
    Ok(Box::pin(futures_util::stream::unfold(
        state,
        Verifying::next,
    )))
}

/// The state of a verified download between two chunks.
struct Verifying {
    id: ImageId,
    chunks: ReaderStream<Reader>,
    /// `None` once the stream has ended (normally or with its error).
    workers: Option<HashWorkers>,
    n_bytes: u64,
    recorded: Recorded,
}

impl Verifying {
    async fn next(mut self) -> Option<(Result<Bytes, Error>, Verifying)> {
        let workers = self.workers.as_ref()?;
        let id = self.id;
        match self.chunks.next().await {
            Some(Ok(chunk)) => {
                // More bytes than the record's size is corruption already:
                // stop before they reach the output, which may not be able
                // to take them back (standard output, an HTTP response).
                let received = self.n_bytes.saturating_add(chunk.len() as u64);
                if received > self.recorded.size {
                    self.workers = None;
                    let err = Error::Corrupted {
                        id,
                        field: "size",
                        expected: self.recorded.size.to_string(),
                        actual: format!("at least {received}"),
                    };
                    return Some((Err(err), self));
                }
                if let Err(source) = workers.feed(&chunk).await {
                    self.workers = None;
                    return Some((Err(Error::Worker { id, source }), self));
                }
                self.n_bytes = received;
                Some((Ok(chunk), self))
            }
            Some(Err(source)) => {
                self.workers = None;
                Some((Err(read_error(id, source)), self))
            }
            None => {
                let workers = self.workers.take()?;
                match self.check(workers).await {
                    Ok(()) => None,
                    Err(err) => Some((Err(err), self)),
                }
            }
        }
    }

    /// The end of the data: size, then checksum, then os_hash against the record.
    async fn check(&self, workers: HashWorkers) -> Result<(), Error> {
        let id = self.id;
        let digests = workers
            .finish()
            .await
            .map_err(|source| Error::Worker { id, source })?;
        let checks = [
            (
                "size",
                self.recorded.size.to_string(),
                self.n_bytes.to_string(),
            ),
            (
                "checksum",
                self.recorded.checksum.clone(),
                digests.checksum.to_hex(),
            ),
            (
                "os_hash_value",
                self.recorded.os_hash_value.clone(),
                digests.os_hash.to_hex(),
            ),
        ];
        for (field, expected, actual) in checks {
            if !expected.eq_ignore_ascii_case(&actual) {
                return Err(Error::Corrupted {
                    id,
                    field,
                    expected,
                    actual,
                });
            }
        }
        Ok(())
    }
}

/// Opens bytes `first..=last` of `image`'s data (within its recorded size).
/// A part cannot be checked against whole-image digests: the range is
/// checked for length only, and ends with [`Error::Corrupted`] (`size`)
/// when the stored data is shorter than the record says.
///
/// The store reads from the start and skips to `first` (the filesystem
/// store has no ranged read yet), so a range costs a read of the bytes before it.
///
/// Fails as [`open_verified`] does before streaming.
pub async fn open_range(
    store: &Store,
    image: &Image,
    first: u64,
    last: u64,
) -> Result<DataStream, Error> {
    let recorded = recorded(image)?;
    let reader = open_reader(store, image.id, &recorded.location).await?;
    let state = Ranged {
        id: image.id,
        chunks: ReaderStream::with_capacity(reader, CHUNK_SIZE),
        position: 0,
        first,
        last,
        size: recorded.size,
        done: false,
    };
    Ok(Box::pin(futures_util::stream::unfold(state, Ranged::next)))
}

/// The state of a range download between two chunks.
struct Ranged {
    id: ImageId,
    chunks: ReaderStream<Reader>,
    /// Offset of the next byte the reader yields.
    position: u64,
    first: u64,
    last: u64,
    size: u64,
    done: bool,
}

impl Ranged {
    async fn next(mut self) -> Option<(Result<Bytes, Error>, Ranged)> {
        while !self.done {
            let Some(next) = self.chunks.next().await else {
                self.done = true;
                let err = Error::Corrupted {
                    id: self.id,
                    field: "size",
                    expected: self.size.to_string(),
                    actual: format!("only {}", self.position),
                };
                return Some((Err(err), self));
            };
            let chunk = match next {
                Ok(chunk) => chunk,
                Err(source) => {
                    self.done = true;
                    return Some((Err(read_error(self.id, source)), self));
                }
            };
            let start = self.position;
            let end = start + chunk.len() as u64; // exclusive
            self.position = end;
            if end <= self.first {
                continue;
            }
            let from = self.first.saturating_sub(start);
            let to = (self.last + 1).min(end) - start;
            if end > self.last {
                self.done = true;
            }
            let (Ok(from), Ok(to)) = (usize::try_from(from), usize::try_from(to)) else {
                continue;
            };
            return Some((Ok(chunk.slice(from..to)), self));
        }
        None
    }
}
