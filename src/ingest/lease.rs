//! An upload's lease, seen from the upload: taken with the claim, renewed by
//! a heartbeat task while the data streams (however slowly the client sends
//! it), watched by the data stream so that an upload whose lease was lost
//! stops at its next chunk, and released by its commit or rollback.
//!
//! It owns the heartbeat and its interval (a third of the lease, see
//! `config::DEFAULT_UPLOAD_LEASE`); it must not write the image record
//! (commit and recovery do, with [`LeaseCheck::Held`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;

use crate::image::ImageId;
use crate::repo::{LeaseCheck, LeaseHolder, NewLease, SqlRepo};

/// Everything uploads need to hold leases: the database, this node and
/// process, and the lease length.
#[derive(Debug, Clone)]
pub struct Leases {
    /// The SQL backend the lease rows live in (beside the image records).
    pub sql: SqlRepo,
    /// This node and process.
    pub holder: LeaseHolder,
    /// How long a lease lasts without renewal.
    pub ttl: Duration,
}

impl Leases {
    /// A new lease for one upload (a random token).
    pub fn new_lease(&self) -> NewLease {
        NewLease {
            token: uuid::Uuid::new_v4().simple().to_string(),
            holder: self.holder.clone(),
            ttl: self.ttl,
        }
    }

    /// How often a held lease is renewed: a third of its length, so two
    /// renewals can fail in a row before it expires.
    pub fn heartbeat_interval(&self) -> Duration {
        (self.ttl / 3).max(Duration::from_millis(100))
    }

    /// Starts renewing the lease `lease` the claim took on image `id`,
    /// until the returned [`HeldLease`] is dropped.
    pub(crate) fn hold(&self, id: ImageId, lease: &NewLease) -> HeldLease {
        let lost = Arc::new(AtomicBool::new(false));
        let (sql, token, ttl, interval) = (
            self.sql.clone(),
            lease.token.clone(),
            self.ttl,
            self.heartbeat_interval(),
        );
        let flag = lost.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate: the claim just took it
            loop {
                ticks.tick().await;
                match sql.renew_lease(id, &token, ttl).await {
                    Ok(true) => tracing::trace!(image = %id, "upload lease renewed"),
                    Ok(false) => {
                        tracing::error!(
                            image = %id,
                            "the upload's lease expired or was taken over (this node could not renew it in time); the upload stops"
                        );
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                    // Transient: the next tick tries again; expiry decides.
                    Err(err) => {
                        tracing::warn!(image = %id, error = %err, "cannot renew the upload lease")
                    }
                }
            }
        });
        HeldLease {
            token: lease.token.clone(),
            lost,
            task,
        }
    }
}

/// A lease this upload holds; the heartbeat stops when it is dropped.
#[derive(Debug)]
pub(crate) struct HeldLease {
    token: String,
    lost: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl HeldLease {
    /// The condition for this upload's commit or rollback.
    pub(crate) fn check(&self) -> LeaseCheck {
        LeaseCheck::Held {
            token: self.token.clone(),
        }
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Whether the heartbeat found the lease lost.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// `stream`, ending with an error at the first chunk after the lease was lost.
    pub(crate) fn watch<S>(&self, stream: S) -> Watched<S> {
        Watched {
            inner: stream,
            lost: self.lost.clone(),
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A data stream that fails once its upload's lease is lost.
pub(crate) struct Watched<S> {
    inner: S,
    lost: Arc<AtomicBool>,
}

impl<S: Stream<Item = Result<Bytes, io::Error>> + Unpin> Stream for Watched<S> {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.lost.load(Ordering::SeqCst) {
            return Poll::Ready(Some(Err(io::Error::other(
                "the upload's lease was lost (the node could not renew it in time); another node may recover the image",
            ))));
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}
