//! Shutdown as running requests see it: uploads and downloads run under a
//! [`Lifecycle`] that the server loop cancels when the grace period after
//! SIGTERM/SIGINT has passed.
//!
//! This module owns the cancellation signal and the count of transfers in
//! flight. It must not know what a transfer does: a cancelled upload future
//! is dropped (the facade's drop guard starts the rollback), then the
//! handler's own `after_cancel` waits until that rollback is visible, so the
//! process exits only once the image is `queued` again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::error::ApiError;

/// Cancellation of long transfers at shutdown, shared by every request.
#[derive(Clone, Default)]
pub struct Lifecycle {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancel: CancellationToken,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("cancelled", &self.inner.cancel.is_cancelled())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// Counts one transfer while it lives.
struct InFlight(Arc<Inner>);

impl InFlight {
    fn new(inner: &Arc<Inner>) -> InFlight {
        inner.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(inner.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Lifecycle {
    /// A lifecycle nobody has cancelled yet.
    pub fn new() -> Lifecycle {
        Lifecycle::default()
    }

    /// Runs an upload to completion, unless [`Lifecycle::cancel`] comes
    /// first: then `work` is dropped (cancelling it), `after_cancel` runs to
    /// completion (it waits for the rollback the drop started), and the
    /// result is [`ApiError::ShuttingDown`] (503).
    ///
    /// Fails only with [`ApiError::ShuttingDown`].
    pub async fn run<W, A>(&self, work: W, after_cancel: A) -> Result<W::Output, ApiError>
    where
        W: Future,
        A: Future<Output = ()>,
    {
        let _counted = InFlight::new(&self.inner);
        tokio::select! {
            biased;
            output = work => return Ok(output),
            () = self.inner.cancel.cancelled() => {}
        }
        // `work` was dropped when select! returned.
        tracing::warn!("transfer cancelled by shutdown; waiting for its rollback");
        after_cancel.await;
        Err(ApiError::ShuttingDown)
    }

    /// A response body that ends with an error when the lifecycle is
    /// cancelled (a download cut at shutdown); counted as in flight until it
    /// ends or is dropped.
    pub fn cancellable<S>(&self, stream: S) -> Cancellable<S>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>>,
    {
        Cancellable {
            stream,
            cancelled: Box::pin(self.inner.cancel.clone().cancelled_owned()),
            _counted: InFlight::new(&self.inner),
        }
    }

    /// Cancels every transfer running now or started later.
    pub fn cancel(&self) {
        self.inner.cancel.cancel();
    }

    /// Whether [`Lifecycle::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// How many transfers are running.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Resolves when no transfer is running.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// See [`Lifecycle::cancellable`].
pub struct Cancellable<S> {
    stream: S,
    cancelled: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    _counted: InFlight,
}

impl<S> Stream for Cancellable<S>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.cancelled.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(std::io::Error::other(
                "the server is shutting down",
            ))));
        }
        Pin::new(&mut self.stream).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    #[tokio::test]
    async fn work_that_finishes_is_returned() {
        let lifecycle = Lifecycle::new();
        let result = lifecycle.run(async { 7 }, async {}).await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(lifecycle.in_flight(), 0);
    }

    #[tokio::test]
    async fn cancel_drops_the_work_then_waits_for_the_rollback() {
        let lifecycle = Lifecycle::new();
        let dropped = Arc::new(AtomicBool::new(false));
        let rolled_back = Arc::new(AtomicBool::new(false));

        struct DropFlag(Arc<AtomicBool>);
        impl Drop for DropFlag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }

        let work = {
            let flag = DropFlag(dropped.clone());
            async move {
                let _flag = flag;
                std::future::pending::<()>().await;
            }
        };
        let after = {
            let dropped = dropped.clone();
            let rolled_back = rolled_back.clone();
            async move {
                // The work is gone before the rollback wait starts.
                assert!(dropped.load(Ordering::SeqCst));
                tokio::time::sleep(Duration::from_millis(20)).await;
                rolled_back.store(true, Ordering::SeqCst);
            }
        };
        let task = {
            let lifecycle = lifecycle.clone();
            tokio::spawn(async move { lifecycle.run(work, after).await })
        };
        while lifecycle.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        lifecycle.cancel();
        let result = task.await.unwrap();
        assert!(matches!(result, Err(ApiError::ShuttingDown)));
        assert!(rolled_back.load(Ordering::SeqCst));
        lifecycle.idle().await;
        assert_eq!(lifecycle.in_flight(), 0);
    }

    #[tokio::test]
    async fn cancelled_downloads_end_with_an_error() {
        let lifecycle = Lifecycle::new();
        let chunks = futures_util::stream::iter(vec![Ok(Bytes::from_static(b"a"))])
            .chain(futures_util::stream::pending());
        let mut body = lifecycle.cancellable(Box::pin(chunks));
        assert_eq!(
            body.next().await.unwrap().unwrap(),
            Bytes::from_static(b"a")
        );
        assert_eq!(lifecycle.in_flight(), 1);
        lifecycle.cancel();
        assert!(body.next().await.unwrap().is_err());
        drop(body);
        assert_eq!(lifecycle.in_flight(), 0);
    }
}
