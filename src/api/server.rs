//! The server loop: bind, serve [`super::app`] until SIGTERM/SIGINT, then
//! shut down gracefully.
//!
//! Shutdown, step by step:
//! 1. the first signal stops accepting connections; idle keep-alive
//!    connections close, requests in progress continue;
//! 2. running uploads and downloads get `[server] shutdown_timeout` seconds
//!    to finish (a second signal ends the wait at once);
//! 3. then the [`Lifecycle`] cancels them: an upload's future is dropped
//!    (the facade's drop guard rolls its image back to `queued` and removes
//!    the staged data), its handler waits until the rollback is visible and
//!    answers 503; a download's body ends with an error;
//! 4. the loop returns once every connection has closed, or after
//!    [`CLEANUP_LIMIT`] more, reporting what it abandoned (crash recovery at
//!    the next start covers an unfinished rollback).
//!
//! This module owns sockets, signals and the shutdown order. It must not
//! handle requests.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use futures_core::Stream;
use futures_util::StreamExt;
use tokio::net::TcpListener;

use super::lifecycle::Lifecycle;

/// How long step 4 waits for cancelled transfers to roll back and their
/// connections to close: a rollback is one file removal and one database
/// write, milliseconds in practice.
pub const CLEANUP_LIMIT: Duration = Duration::from_secs(10);

/// How the server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every connection closed; every cancelled upload was rolled back.
    Clean,
    /// Some connections were still open after the cleanup limit;
    /// `transfers` uploads/downloads among them had not finished their rollback.
    Abandoned {
        /// Transfers still counted as running.
        transfers: usize,
    },
}

/// The server could not start or failed while running.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address cannot be bound (in use, no permission, not local).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The signal handlers cannot be installed.
    #[error("cannot install the SIGTERM/SIGINT handlers")]
    Signals(#[source] std::io::Error),
    /// The accept loop failed.
    #[error("the server stopped unexpectedly")]
    Serve(#[source] std::io::Error),
}

/// Binds `addr` (port 0: any free port; [`TcpListener::local_addr`] says which).
///
/// Fails when the address cannot be bound.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// SIGTERM and SIGINT as a stream of shutdown requests.
///
/// Fails when the handlers cannot be installed.
pub fn signals() -> Result<impl Stream<Item = ()> + Unpin + Send, ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let interrupt = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    Ok(Box::pin(futures_util::stream::unfold(
        (terminate, interrupt),
        |(mut terminate, mut interrupt)| async move {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM received"),
                _ = interrupt.recv() => tracing::info!("SIGINT received"),
            }
            Some(((), (terminate, interrupt)))
        },
    )))
}

/// Serves `router` on `listener` until `shutdown` yields, then shuts down
/// as the module documentation says, waiting `grace` for transfers.
///
/// Fails when the accept loop fails.
pub async fn run<S>(
    listener: TcpListener,
    router: Router,
    lifecycle: Lifecycle,
    grace: Duration,
    mut shutdown: S,
) -> Result<Outcome, ServeError>
where
    S: Stream<Item = ()> + Unpin,
{
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
        let _ = stopped.await;
    });
    let mut serving = tokio::spawn(std::future::IntoFuture::into_future(serve));

    // Step 1.
    tokio::select! {
        result = &mut serving => return finished(result).map(|()| Outcome::Clean),
        _ = shutdown.next() => {}
    }
    tracing::info!(
        transfers = lifecycle.in_flight(),
        grace_secs = grace.as_secs(),
        "shutting down: no new connections, running transfers may finish"
    );
    let _ = stop.send(());

    // Step 2.
    tokio::select! {
        result = &mut serving => {
            tracing::info!("every connection closed");
            return finished(result).map(|()| Outcome::Clean);
        }
        () = tokio::time::sleep(grace) => {
            tracing::warn!(transfers = lifecycle.in_flight(), "grace period over: cancelling running transfers");
        }
        _ = shutdown.next() => {
            tracing::warn!(transfers = lifecycle.in_flight(), "second signal: cancelling running transfers now");
        }
    }

    // Step 3.
    lifecycle.cancel();

    // Step 4.
    tokio::select! {
        result = &mut serving => {
            tracing::info!("every connection closed after cancelling");
            finished(result).map(|()| Outcome::Clean)
        }
        () = tokio::time::sleep(CLEANUP_LIMIT) => {
            serving.abort();
            let transfers = lifecycle.in_flight();
            tracing::error!(transfers, "connections still open after the cleanup limit; abandoning them (recovery at the next start finishes any rollback)");
            Ok(Outcome::Abandoned { transfers })
        }
    }
}

fn finished(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), ServeError> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(ServeError::Serve(err)),
        Err(join) => Err(ServeError::Serve(std::io::Error::other(join))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    fn shutdown_channel() -> (mpsc::Sender<()>, impl Stream<Item = ()> + Unpin) {
        let (sender, receiver) = mpsc::channel(4);
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|()| ((), receiver))
        });
        (sender, Box::pin(stream))
    }

    async fn get_raw(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    /// Serves `router` on a free port with `grace`, GETs `path` from a
    /// client, sends the shutdown signal once the transfer runs, and returns
    /// the client's response, the server's outcome and the address.
    async fn shutdown_during(
        router: Router,
        lifecycle: &Lifecycle,
        grace: Duration,
        path: &'static str,
    ) -> (String, Outcome, SocketAddr) {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (signal, shutdown) = shutdown_channel();
        let server = tokio::spawn(run(listener, router, lifecycle.clone(), grace, shutdown));
        let client = tokio::spawn(get_raw(addr, path));
        while lifecycle.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        signal.send(()).await.unwrap();
        let response = client.await.unwrap();
        let outcome = server.await.unwrap().unwrap();
        (response, outcome, addr)
    }

    /// A slow "upload" under the lifecycle: finishes within the grace period.
    #[tokio::test]
    async fn running_transfers_finish_within_the_grace_period() {
        let lifecycle = Lifecycle::new();
        let handler_lifecycle = lifecycle.clone();
        let router = Router::new().route(
            "/slow",
            get(move || {
                let lifecycle = handler_lifecycle.clone();
                async move {
                    let work = async {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        "done"
                    };
                    lifecycle.run(work, async {}).await.unwrap_or("cancelled")
                }
            }),
        );
        let (response, outcome, addr) =
            shutdown_during(router, &lifecycle, Duration::from_secs(5), "/slow").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("done"), "{response}");
        assert_eq!(outcome, Outcome::Clean);
        // No new connections after the signal.
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    /// A transfer that outlives the grace period is cancelled, rolled back, answered 503.
    #[tokio::test]
    async fn transfers_past_the_grace_period_are_cancelled_and_rolled_back() {
        let lifecycle = Lifecycle::new();
        let rolled_back = Arc::new(AtomicBool::new(false));
        let (handler_lifecycle, handler_flag) = (lifecycle.clone(), rolled_back.clone());
        let router = Router::new().route(
            "/stuck",
            get(move || {
                let (lifecycle, flag) = (handler_lifecycle.clone(), handler_flag.clone());
                async move {
                    let after_cancel = async move { flag.store(true, Ordering::SeqCst) };
                    match lifecycle
                        .run(std::future::pending::<()>(), after_cancel)
                        .await
                    {
                        Ok(()) => "finished".to_owned(),
                        Err(err) => format!("{err}"),
                    }
                }
            }),
        );
        let (response, outcome, _) =
            shutdown_during(router, &lifecycle, Duration::from_millis(200), "/stuck").await;
        assert!(
            response.ends_with("the server is shutting down"),
            "{response}"
        );
        assert!(rolled_back.load(Ordering::SeqCst));
        assert_eq!(outcome, Outcome::Clean);
    }

    #[tokio::test]
    async fn a_taken_port_is_named() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let err = bind(addr).await.unwrap_err();
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
