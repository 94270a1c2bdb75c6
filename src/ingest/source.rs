//! Byte sources at the edge: a file or standard input as the same async
//! stream of chunks an HTTP body will be.
//!
//! Only the CLI and tests use these; the pipeline itself takes any stream.

use std::io;
use std::path::Path;

use bytes::Bytes;
use futures_core::Stream;

/// Chunk size for files and stdin: 1 MiB, as glanceclient sends.
pub const CHUNK_SIZE: usize = 1 << 20;

/// A file as a stream of chunks, with its length (the declared size).
///
/// Fails when the file cannot be opened or is not a regular file.
pub async fn file_stream(
    path: &Path,
) -> io::Result<(
    impl Stream<Item = Result<Bytes, io::Error>> + Unpin + Send + use<>,
    u64,
)> {
    let file = tokio::fs::File::open(path).await?;
    let metadata = file.metadata().await?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok((
        tokio_util::io::ReaderStream::with_capacity(file, CHUNK_SIZE),
        metadata.len(),
    ))
}

/// Standard input as a stream of chunks (size unknown).
pub fn stdin_stream() -> impl Stream<Item = Result<Bytes, io::Error>> + Unpin + Send {
    tokio_util::io::ReaderStream::with_capacity(tokio::io::stdin(), CHUNK_SIZE)
}
