//! SIGINT and SIGTERM during an upload (`ingest`, `images upload`): the
//! signal ends the upload's data stream with an error, so the upload fails
//! the way any broken stream fails (its guard removes the staged data and
//! returns the image to `queued`, awaited, in this process), and the command
//! then exits 130 (SIGINT) or 143 (SIGTERM), 128 + the signal number as a
//! shell reports a process the signal killed.
//!
//! Why through the stream rather than by dropping the upload future: a
//! dropped upload rolls back in a task spawned from its guard's `Drop`,
//! which the process would have to wait for separately, and the command
//! would not learn the image id; a stream error takes the ordinary,
//! awaited rollback path and the error names the image.
//!
//! It owns the signal handlers and the record of which signal arrived; it
//! must not roll anything back itself.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use tokio::signal::unix::{Signal as Handler, SignalKind, signal};

use crate::ingest::source::ChunkStream;

/// A signal that stops an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGINT (Ctrl-C): exit 130.
    Int,
    /// SIGTERM (`kill`, a service manager stopping us): exit 143.
    Term,
}

impl Signal {
    /// 128 + the signal number, the shell's convention.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Signal::Int => 130,
            Signal::Term => 143,
        }
    }

    fn from_code(code: u8) -> Option<Signal> {
        match code {
            130 => Some(Signal::Int),
            143 => Some(Signal::Term),
            _ => None,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
        })
    }
}

/// The signal that stopped this process's upload (its exit code), 0 for none.
/// One per process, as signals are.
static CAUGHT: AtomicU8 = AtomicU8::new(0);

/// The signal that stopped the upload, if one did.
pub(crate) fn caught() -> Option<Signal> {
    Signal::from_code(CAUGHT.load(Ordering::SeqCst))
}

/// `stream`, ended by the first SIGINT or SIGTERM with an error naming the
/// signal. From this call on, neither signal kills the process: the upload
/// decides when to stop. Must be called inside the async runtime.
///
/// Fails when the signal handlers cannot be installed.
pub(crate) fn interruptible(stream: ChunkStream) -> io::Result<ChunkStream> {
    Ok(Box::pin(Interruptible {
        inner: stream,
        int: signal(SignalKind::interrupt())?,
        term: signal(SignalKind::terminate())?,
        stopped: false,
    }))
}

struct Interruptible {
    inner: ChunkStream,
    int: Handler,
    term: Handler,
    /// The signal was passed on: the stream is over.
    stopped: bool,
}

impl Stream for Interruptible {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.stopped {
            return Poll::Ready(None);
        }
        // Both handlers are polled first, so a signal wins over data that is
        // ready at the same time, and both register the waker.
        let int = self.int.poll_recv(cx).is_ready();
        let term = self.term.poll_recv(cx).is_ready();
        let signal = match (int, term) {
            (true, _) => Some(Signal::Int),
            (false, true) => Some(Signal::Term),
            (false, false) => None,
        };
        if let Some(signal) = signal {
            self.stopped = true;
            CAUGHT.store(signal.exit_code(), Ordering::SeqCst);
            return Poll::Ready(Some(Err(io::Error::other(format!("stopped by {signal}")))));
        }
        self.inner.as_mut().poll_next(cx)
    }
}
