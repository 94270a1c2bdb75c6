//! Byte sources at the edge: a file or standard input as the same async
//! stream of chunks an HTTP body will be.
//!
//! A dedicated reader thread reads with blocking `read` straight into the
//! chunk it hands on (one copy, from the page cache), and a bounded channel
//! of [`SOURCE_DEPTH`] chunks keeps memory bounded. This is measurably
//! cheaper than `tokio::fs::File`, which hops to the blocking pool per read
//! and copies each chunk once more through its own buffer: on a 1 GiB ingest
//! that copy was ~4% of all CPU, on a machine where the hashes need both cores.
//! Only the CLI and tests use these; the pipeline itself takes any stream.

use std::io::{self, Read};
use std::path::Path;

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::mpsc;

/// Chunk size for files and stdin: 256 KiB. Measured on a 1 GiB ingest
/// (CPU seconds, user + sys, three runs each on a busy 2-core machine):
/// 1 MiB 3.87–4.07, 256 KiB 3.87–4.01, 128 KiB 3.95–4.07. Smaller chunks
/// stay in the hashing threads' caches (less user time) but cost more
/// syscalls and task hops (more system time); 256 KiB had the best wall
/// times and keeps the queues' memory at a few MiB.
pub const CHUNK_SIZE: usize = 1 << 18;

/// A boxed stream of chunks, whatever its source.
pub type ChunkStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// How many chunks may wait between the reader thread and the pipeline.
pub const SOURCE_DEPTH: usize = 2;

/// A path that is not a regular file, and what it is instead. A stream
/// (FIFO, character device, socket) has no length to declare and cannot be
/// opened without blocking, so the message points to `-` (standard input).
#[derive(Debug, thiserror::Error)]
#[error("it is {what}, not a regular file{}", if *.stream { STREAM_HINT } else { "" })]
pub struct NotARegularFile {
    /// `a FIFO (named pipe)`, `a directory`, ...
    pub what: &'static str,
    /// Whether it is a stream that standard input can carry.
    pub stream: bool,
}

const STREAM_HINT: &str = "; to upload from a pipe, give `-` and redirect it to standard input (`portcullis ingest - ... < FIFO` or `cat FIFO | portcullis ingest - ...`)";

fn not_a_regular_file(file_type: std::fs::FileType) -> io::Error {
    use std::os::unix::fs::FileTypeExt;
    let (what, stream) = if file_type.is_dir() {
        ("a directory", false)
    } else if file_type.is_fifo() {
        ("a FIFO (named pipe)", true)
    } else if file_type.is_char_device() {
        ("a character device", true)
    } else if file_type.is_socket() {
        ("a socket", true)
    } else if file_type.is_block_device() {
        ("a block device", false)
    } else {
        ("neither a file nor a directory", false)
    };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        NotARegularFile { what, stream },
    )
}

/// A file as a stream of chunks, with its length (the declared size).
///
/// Fails when the file cannot be opened or is not a regular file (a FIFO is
/// refused before it is opened, which would block until a writer appears,
/// with a hint to use `-`), or when the OS cannot start the reader thread.
pub fn file_stream(path: &Path) -> io::Result<(ChunkStream, u64)> {
    let before = std::fs::metadata(path)?;
    if !before.is_file() {
        return Err(not_a_regular_file(before.file_type()));
    }
    let file = std::fs::File::open(path)?;
    // What was opened may have been swapped in since the check.
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(not_a_regular_file(metadata.file_type()));
    }
    Ok((reader_stream(file)?, metadata.len()))
}

/// Standard input as a stream of chunks (size unknown).
///
/// Fails when the OS cannot start the reader thread.
pub fn stdin_stream() -> io::Result<ChunkStream> {
    reader_stream(io::stdin())
}

/// Reads `reader` on a thread of its own into [`CHUNK_SIZE`] chunks.
///
/// The thread stops at end of input, at the first read error (which it
/// passes on), or when the stream is dropped.
pub fn reader_stream<R: Read + Send + 'static>(mut reader: R) -> io::Result<ChunkStream> {
    let (sender, receiver) = mpsc::channel::<Result<Bytes, io::Error>>(SOURCE_DEPTH);
    std::thread::Builder::new()
        .name("portcullis-read".to_owned())
        .spawn(move || {
            loop {
                match read_chunk(&mut reader) {
                    Ok(Some(chunk)) => {
                        if sender.blocking_send(Ok(chunk)).is_err() {
                            return; // The pipeline stopped listening.
                        }
                    }
                    Ok(None) => return,
                    Err(err) => {
                        let _ = sender.blocking_send(Err(err));
                        return;
                    }
                }
            }
        })?;
    Ok(Box::pin(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
    )))
}

/// Fills one chunk (short only at end of input); `None` at end of input.
///
/// `read_to_end` on a `take` reads into the vector's spare capacity without
/// zeroing it first (std tracks the initialised part), which saves a memset
/// of the whole image.
fn read_chunk<R: Read>(reader: &mut R) -> io::Result<Option<Bytes>> {
    let mut chunk = Vec::with_capacity(CHUNK_SIZE);
    reader
        .by_ref()
        .take(CHUNK_SIZE as u64)
        .read_to_end(&mut chunk)?;
    if chunk.is_empty() {
        return Ok(None);
    }
    Ok(Some(Bytes::from(chunk)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn chunks_cover_the_input_exactly() {
        let data: Vec<u8> = (0..(CHUNK_SIZE * 2 + 123))
            .map(|i| (i % 241) as u8)
            .collect();
        let mut stream = reader_stream(io::Cursor::new(data.clone())).unwrap();
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            sizes.push(chunk.len());
            seen.extend_from_slice(&chunk);
        }
        assert_eq!(seen, data);
        assert_eq!(sizes, vec![CHUNK_SIZE, CHUNK_SIZE, 123]);
    }

    #[test]
    fn a_fifo_is_refused_without_blocking_and_points_to_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // No writer: opening it would block forever.
        let err = file_stream(&fifo).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("FIFO"), "{err}");
        assert!(err.to_string().contains("`-`"), "{err}");
        let err = file_stream(dir.path()).err().unwrap();
        assert!(err.to_string().contains("directory"), "{err}");
        assert!(!err.to_string().contains("`-`"), "{err}");
    }

    #[tokio::test]
    async fn read_errors_are_passed_on() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"))
            }
        }
        let mut stream = reader_stream(Failing).unwrap();
        let first = stream.next().await.unwrap();
        assert_eq!(first.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        assert!(stream.next().await.is_none());
    }
}
