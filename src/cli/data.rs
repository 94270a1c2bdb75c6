//! Image data at the command line's edge: opening an upload's file or
//! standard input as a stream before anything is created, and the progress
//! bar uploads and downloads show on a terminal.
//!
//! It must not decide anything about images.

use std::io::IsTerminal;
use std::path::Path;

use super::interrupt;
use super::report::CliError;
use crate::ingest::UploadData;
use crate::ingest::source::{self, ChunkStream};

/// The data of an upload, opened before anything is created or changed, so
/// that a missing file is a usage error that leaves nothing behind.
pub(crate) struct Source {
    stream: ChunkStream,
    /// The size to enforce: `--size`, else a file's length.
    declared: Option<u64>,
    /// The size for the progress bar (0: unknown).
    pub(crate) expected: u64,
}

impl Source {
    /// Opens `file` (`-`: standard input) with the declared size `declared`.
    /// From here on SIGINT and SIGTERM stop the upload instead of the
    /// process (see `interrupt`). Must be called inside the async runtime.
    ///
    /// Fails (usage) when the file cannot be opened or is not a regular file.
    pub(crate) fn open(file: &Path, declared: Option<u64>) -> Result<Source, CliError> {
        let interruptible = |stream| {
            interrupt::interruptible(stream).map_err(|err| {
                CliError::Usage(format!("cannot install the SIGINT/SIGTERM handlers: {err}"))
            })
        };
        if file == Path::new("-") {
            let stream = source::stdin_stream().map_err(|err| {
                CliError::Usage(format!("cannot start reading standard input: {err}"))
            })?;
            let stream = interruptible(stream)?;
            return Ok(Source {
                stream,
                declared,
                expected: declared.unwrap_or(0),
            });
        }
        let (stream, len) = source::file_stream(file).map_err(|err| {
            let hint = if err.kind() == std::io::ErrorKind::InvalidInput {
                // A FIFO, a device or a socket: its length is not its data.
                " (to upload from a pipe or device, give `-` and redirect it to standard input)"
            } else {
                ""
            };
            CliError::Usage(format!("cannot read {}: {err}{hint}", file.display()))
        })?;
        let stream = interruptible(stream)?;
        Ok(Source {
            stream,
            declared: Some(declared.unwrap_or(len)),
            expected: len,
        })
    }

    /// The stream and its declared size, for `app::App::upload`.
    pub(crate) fn into_upload(self) -> UploadData<ChunkStream> {
        UploadData {
            stream: self.stream,
            declared_size: self.declared,
        }
    }
}

/// A progress bar on stderr, only when it is a terminal and the data is large.
pub(crate) struct ProgressBar(Option<indicatif::ProgressBar>);

/// Below this size an upload or download is quick enough to need no bar.
const PROGRESS_MIN_BYTES: u64 = 64 * 1024 * 1024;

impl ProgressBar {
    /// A bar for `len` bytes (hidden when small or not on a terminal).
    pub(crate) fn new(len: u64) -> ProgressBar {
        if len < PROGRESS_MIN_BYTES || !std::io::stderr().is_terminal() {
            return ProgressBar(None);
        }
        let bar = indicatif::ProgressBar::new(len);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        ) {
            bar.set_style(style);
        }
        ProgressBar(Some(bar))
    }

    /// Moves the bar to `n_bytes`.
    pub(crate) fn set(&mut self, n_bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(n_bytes);
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}
