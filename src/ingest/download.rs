//! Verified download: stream an active image's data out of the store while
//! re-computing its checksum (md5) and os_hash, and fail loudly when either
//! differs from the record (corruption at rest).
//!
//! A file output is written under a temporary name beside the target and
//! renamed only when both digests match, so a corrupted or interrupted
//! download never leaves a file under the requested name. Standard output
//! cannot be taken back: there the mismatch is reported after the data.
//! This module must not change the image record.

use std::io;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::hash::HashAlgorithm;
use crate::image::{Image, ImageId, Status};
use crate::store::Store;

use super::workers::{HashPlan, HashWorkers, WorkerError};

/// Where the data goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A file: written as `.<name>.partial-<random>` beside it, renamed at the end.
    File(PathBuf),
    /// Standard output.
    Stdout,
}

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

/// The temporary name a file download is written under.
fn partial_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".to_owned());
    let unique = uuid::Uuid::new_v4().simple().to_string();
    target.with_file_name(format!(".{name}.partial-{}", &unique[..8]))
}

/// Streams `image`'s data to `output`, checking size, checksum and os_hash.
///
/// `progress` is told the byte count after each chunk. Returns the bytes
/// written. Fails when the image is not active, the data is missing or
/// differs from the record, or on I/O errors; a file output then does not exist.
pub async fn download(
    store: &Store,
    image: &Image,
    output: &Output,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<u64, Error> {
    let id = image.id;
    // The repository's prepare_download decided who may read a deactivated
    // image (admins, as in Glance); anything else has no complete data.
    if !matches!(image.status, Status::Active | Status::Deactivated) {
        return Err(Error::NotActive {
            id,
            status: image.status,
        });
    }
    let location = image.locations.first().ok_or(Error::NoData {
        id,
        what: "no location",
    })?;
    let os_hash = match image.os_hash_algo.as_deref() {
        Some(name) => name.parse::<HashAlgorithm>().map_err(|_| Error::NoData {
            id,
            what: "unknown os_hash_algo",
        })?,
        None => HashAlgorithm::Sha512,
    };
    let reader = store
        .open(location, None)
        .await
        .map_err(|source| Error::Store { id, source })?;

    let (mut sink, partial): (
        Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
        Option<PathBuf>,
    ) = match output {
        Output::Stdout => (Box::new(tokio::io::stdout()), None),
        Output::File(target) => {
            let partial = partial_path(target);
            let file = tokio::fs::File::create(&partial)
                .await
                .map_err(|source| Error::Io {
                    id,
                    operation: "create",
                    path: partial.display().to_string(),
                    source,
                })?;
            (Box::new(file), Some(partial))
        }
    };
    let result = copy_and_check(image, os_hash, reader, &mut sink, progress).await;
    let result = match result {
        Ok(n_bytes) => sink
            .flush()
            .await
            .map(|()| n_bytes)
            .map_err(|source| Error::Io {
                id,
                operation: "write",
                path: output_name(output),
                source,
            }),
        Err(err) => Err(err),
    };
    drop(sink);
    match (result, partial, output) {
        (Ok(n_bytes), Some(partial), Output::File(target)) => {
            // The data reaches the disk before the requested name exists, so
            // a power loss cannot leave a short file under that name.
            let synced = match tokio::fs::File::open(&partial).await {
                Ok(file) => file.sync_all().await,
                Err(err) => Err(err),
            };
            if let Err(source) = synced {
                let _ = std::fs::remove_file(&partial);
                return Err(Error::Io {
                    id,
                    operation: "sync",
                    path: partial.display().to_string(),
                    source,
                });
            }
            tokio::fs::rename(&partial, target)
                .await
                .map_err(|source| {
                    let _ = std::fs::remove_file(&partial);
                    Error::Io {
                        id,
                        operation: "rename",
                        path: target.display().to_string(),
                        source,
                    }
                })?;
            Ok(n_bytes)
        }
        (Ok(n_bytes), _, _) => Ok(n_bytes),
        (Err(err), Some(partial), _) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(err)
        }
        (Err(err), None, _) => Err(err),
    }
}

fn output_name(output: &Output) -> String {
    match output {
        Output::File(path) => path.display().to_string(),
        Output::Stdout => "-".to_owned(),
    }
}

async fn copy_and_check(
    image: &Image,
    os_hash: HashAlgorithm,
    reader: crate::store::Reader,
    sink: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<u64, Error> {
    let id = image.id;
    let workers = HashWorkers::start(HashPlan {
        os_hash,
        signature: None,
    })
    .map_err(|source| Error::Worker { id, source })?;
    let mut chunks = tokio_util::io::ReaderStream::with_capacity(reader, super::source::CHUNK_SIZE);
    let mut n_bytes = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|source| Error::Io {
            id,
            operation: "read",
            path: "the stored data".to_owned(),
            source,
        })?;
        // More bytes than the record's size is corruption already: stop
        // before they reach the output (standard output cannot take them back).
        let received = n_bytes.saturating_add(chunk.len() as u64);
        if let Some(size) = image.size
            && received > size
        {
            return Err(Error::Corrupted {
                id,
                field: "size",
                expected: size.to_string(),
                actual: format!("at least {received}"),
            });
        }
        workers
            .feed(&chunk)
            .await
            .map_err(|source| Error::Worker { id, source })?;
        sink.write_all(&chunk).await.map_err(|source| Error::Io {
            id,
            operation: "write",
            path: "the output".to_owned(),
            source,
        })?;
        n_bytes += chunk.len() as u64;
        progress(n_bytes);
    }
    let digests = workers
        .finish()
        .await
        .map_err(|source| Error::Worker { id, source })?;
    let checks = [
        (
            "size",
            image.size.map(|size| size.to_string()),
            n_bytes.to_string(),
        ),
        (
            "checksum",
            image.checksum.clone(),
            digests.checksum.to_hex(),
        ),
        (
            "os_hash_value",
            image.os_hash_value.clone(),
            digests.os_hash.to_hex(),
        ),
    ];
    for (field, expected, actual) in checks {
        // A record without the value cannot vouch for the data: refuse.
        let Some(expected) = expected else {
            return Err(Error::NoData {
                id,
                what: "the record has no size, checksum or os_hash_value",
            });
        };
        if !expected.eq_ignore_ascii_case(&actual) {
            return Err(Error::Corrupted {
                id,
                field,
                expected,
                actual,
            });
        }
    }
    Ok(n_bytes)
}
