//! Downloads: [`App::download`] hands out the stored data as a stream (the
//! whole image verified on the way out, or one byte range), and
//! [`Download::write_to`] writes such a stream to a file (under a temporary
//! name, renamed only when every check passed) or to standard output.
//!
//! The stream's last item is an error when the data is not what the record
//! says, so an HTTP server aborts its response and a file is never left
//! under the requested name. This module must not change the record.

use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::context::RequestContext;
use crate::image::{Image, ImageId};
use crate::ingest::Progress;
use crate::ingest::download::{self as data, Error as DownloadError};
use crate::repo::ImageRepo;

use super::{App, Error};

/// A download's chunks; the last item is an error when the stored data does
/// not match the record (or cannot be read).
pub type DownloadStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// One HTTP-style byte range (`Range: bytes=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `first-last`, both inclusive (`last` beyond the end means the end).
    FromTo {
        /// First byte.
        first: u64,
        /// Last byte.
        last: u64,
    },
    /// `first-`: from `first` to the end.
    From(u64),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ByteRange::FromTo { first, last } => write!(f, "bytes={first}-{last}"),
            ByteRange::From(first) => write!(f, "bytes={first}-"),
            ByteRange::Suffix(n) => write!(f, "bytes=-{n}"),
        }
    }
}

impl ByteRange {
    /// The bytes this range selects in data of `size` bytes, as HTTP says
    /// (RFC 9110 §14.1.2): `None` when none can be served (416).
    pub fn resolve(self, size: u64) -> Option<ResolvedRange> {
        let last_byte = size.checked_sub(1)?;
        let (first, last) = match self {
            ByteRange::FromTo { first, last } if first <= last => (first, last.min(last_byte)),
            ByteRange::FromTo { .. } => return None,
            ByteRange::From(first) => (first, last_byte),
            ByteRange::Suffix(0) => return None,
            ByteRange::Suffix(n) => (size.saturating_sub(n), last_byte),
        };
        (first <= last_byte).then_some(ResolvedRange { first, last, size })
    }
}

/// The bytes a range download serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedRange {
    /// First byte served.
    pub first: u64,
    /// Last byte served (inclusive).
    pub last: u64,
    /// The whole image's size.
    pub size: u64,
}

impl ResolvedRange {
    /// How many bytes are served.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true: a resolved range has at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` header value: `bytes first-last/size`.
    pub fn content_range(&self) -> String {
        format!("bytes {}-{}/{}", self.first, self.last, self.size)
    }
}

/// A download ready to stream.
pub struct Download {
    /// The image record (for `Content-MD5`: its `checksum`, of the whole image).
    pub image: Image,
    /// The range served; `None` for the whole image.
    pub range: Option<ResolvedRange>,
    /// Bytes the stream yields when the data is intact (`Content-Length`).
    pub len: u64,
    /// The data.
    pub stream: DownloadStream,
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download")
            .field("image", &self.image.id)
            .field("range", &self.range)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Where [`Download::write_to`] puts the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A file: written as `.<name>.partial-<random>` beside it, synced, and
    /// renamed to it only when the whole stream ended without an error.
    File(PathBuf),
    /// Standard output (a failure cannot take back what was written).
    Stdout,
}

impl Output {
    /// How messages name the output (`-` for standard output).
    pub fn name(&self) -> String {
        match self {
            Output::File(path) => path.display().to_string(),
            Output::Stdout => "-".to_owned(),
        }
    }
}

impl App {
    /// The stored data of image `id`: the whole image, verified on the way
    /// out (size, md5, os_hash; the stream ends with `corrupted` instead of
    /// ending when they differ), or the bytes of `range` (checked for length).
    ///
    /// Fails before streaming with the repository's refusals (`not_found`;
    /// `no_data` when the image has no data, where Glance answers 204;
    /// `forbidden`, e.g. a deactivated image for a non-administrator),
    /// [`Error::RangeNotSatisfiable`] (416), or when the record cannot vouch
    /// for the data or the store cannot open it.
    pub async fn download(
        &self,
        ctx: &RequestContext,
        id: ImageId,
        range: Option<ByteRange>,
    ) -> Result<Download, Error> {
        let image = self.repo().prepare_download(ctx, id).await?;
        let store = &self.uploader.store;
        let (stream, range, len) = match range {
            None => {
                let len = data::downloadable_size(&image)?;
                let stream = data::open_verified(store, &self.uploader.pool, &image).await?;
                (stream, None, len)
            }
            Some(asked) => {
                let size = data::downloadable_size(&image)?;
                let resolved = asked.resolve(size).ok_or(Error::RangeNotSatisfiable {
                    id,
                    range: asked,
                    size,
                })?;
                let stream = data::open_range(store, &image, resolved.first, resolved.last).await?;
                (stream, Some(resolved), resolved.len())
            }
        };
        Ok(Download {
            image,
            range,
            len,
            stream: Box::pin(stream.map(|item| item.map_err(Error::Download))),
        })
    }
}

impl Download {
    /// Writes the stream to `output` and returns the bytes written;
    /// `progress` is told the count after each chunk. A file output exists
    /// under its name only when every byte arrived and every check passed
    /// (the data is synced before the rename).
    ///
    /// Fails with the stream's error (`corrupted`, read errors) or an output
    /// error (`io`, naming the file); a file output is then removed.
    pub async fn write_to(self, output: &Output, progress: Progress<'_>) -> Result<u64, Error> {
        let id = self.image.id;
        match output {
            Output::Stdout => {
                let mut stdout = tokio::io::stdout();
                let n_bytes = copy(self.stream, &mut stdout, id, "-", progress).await?;
                flush(&mut stdout, id, "-").await?;
                Ok(n_bytes)
            }
            Output::File(target) => {
                let partial = partial_path(target);
                let result = write_file(self.stream, &partial, target, id, progress).await;
                if result.is_err() {
                    let _ = tokio::fs::remove_file(&partial).await;
                }
                result
            }
        }
    }
}

async fn write_file(
    stream: DownloadStream,
    partial: &Path,
    target: &Path,
    id: ImageId,
    progress: Progress<'_>,
) -> Result<u64, Error> {
    let io_error = |operation, path: &Path, source| {
        Error::Download(DownloadError::Io {
            id,
            operation,
            path: path.display().to_string(),
            source,
        })
    };
    let mut file = tokio::fs::File::create(partial)
        .await
        .map_err(|source| io_error("create", partial, source))?;
    let name = partial.display().to_string();
    let n_bytes = copy(stream, &mut file, id, &name, progress).await?;
    flush(&mut file, id, &name).await?;
    // The data reaches the disk before the requested name exists, so a
    // power loss cannot leave a short file under that name.
    file.sync_all()
        .await
        .map_err(|source| io_error("sync", partial, source))?;
    drop(file);
    tokio::fs::rename(partial, target)
        .await
        .map_err(|source| io_error("rename", target, source))?;
    Ok(n_bytes)
}

async fn copy(
    mut stream: DownloadStream,
    sink: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    id: ImageId,
    name: &str,
    progress: Progress<'_>,
) -> Result<u64, Error> {
    let mut n_bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        sink.write_all(&chunk).await.map_err(|source| {
            Error::Download(DownloadError::Io {
                id,
                operation: "write",
                path: name.to_owned(),
                source,
            })
        })?;
        n_bytes += chunk.len() as u64;
        progress(n_bytes);
    }
    Ok(n_bytes)
}

async fn flush(
    sink: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    id: ImageId,
    name: &str,
) -> Result<(), Error> {
    sink.flush().await.map_err(|source| {
        Error::Download(DownloadError::Io {
            id,
            operation: "write",
            path: name.to_owned(),
            source,
        })
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_as_http_says() {
        /// (range, size, the first and last byte served; `None`: 416)
        type Case = (ByteRange, u64, Option<(u64, u64)>);
        let cases: &[Case] = &[
            (
                ByteRange::FromTo { first: 0, last: 15 },
                1_048_576,
                Some((0, 15)),
            ),
            (
                ByteRange::From(1_048_570),
                1_048_576,
                Some((1_048_570, 1_048_575)),
            ),
            (
                ByteRange::FromTo {
                    first: 10,
                    last: 99,
                },
                20,
                Some((10, 19)),
            ),
            (ByteRange::Suffix(5), 20, Some((15, 19))),
            (ByteRange::Suffix(50), 20, Some((0, 19))),
            (ByteRange::Suffix(0), 20, None),
            (ByteRange::From(20), 20, None),
            (ByteRange::FromTo { first: 5, last: 4 }, 20, None),
            // Glance: any range on a 0-byte image is 416.
            (ByteRange::FromTo { first: 0, last: 0 }, 0, None),
            (ByteRange::Suffix(1), 0, None),
        ];
        for (range, size, expect) in cases {
            let got = range.resolve(*size).map(|r| (r.first, r.last));
            assert_eq!(got, *expect, "{range} of {size}");
        }
        let resolved = ByteRange::FromTo { first: 0, last: 15 }
            .resolve(1_048_576)
            .unwrap();
        assert_eq!(resolved.content_range(), "bytes 0-15/1048576");
        assert_eq!(resolved.len(), 16);
    }
}
