//! Housekeeping as use cases: [`App::sweep`] (what `portcullis gc` runs and
//! `serve` runs at start and every `sweep_interval_seconds`),
//! [`App::recover`] (dead uploads only: cheap, what `serve` runs every half
//! lease, so another node's killed upload is back to `queued` within about
//! 1.5 lease lengths), and [`App::spawn_sweeper`], the hook `serve` starts.
//!
//! It must not decide what is collectable (that is `ingest::sweep`'s).

use std::sync::Arc;
use std::time::Duration;

use super::App;
use crate::image::ImageId;
use crate::ingest::recovery::{self, RecoveryError};
use crate::ingest::sweep::{self, SweepError, SweepReport};

impl App {
    /// Collects what no live record references (dead uploads, stale leases,
    /// unreferenced objects, orphan staging), or with `dry_run` only reports
    /// it. Nothing younger than the upload lease is collected.
    ///
    /// Fails on the first repository or store error (what was removed stays
    /// removed; a later sweep finishes the job).
    pub async fn sweep(&self, dry_run: bool) -> Result<SweepReport, SweepError> {
        let uploader = &self.uploader;
        sweep::sweep(
            &uploader.leases.sql,
            &uploader.store,
            &uploader.leases,
            self.settings.upload_lease,
            dry_run,
        )
        .await
    }

    /// Returns dead uploads (expired leases; this node's whose process is
    /// gone) to `queued`, removing their data. Returns the ids recovered.
    ///
    /// Fails on the first repository or store error.
    pub async fn recover(&self) -> Result<Vec<ImageId>, RecoveryError> {
        let uploader = &self.uploader;
        recovery::recover(&uploader.leases.sql, &uploader.store, &uploader.leases).await
    }

    /// Starts the server's housekeeping task: a full sweep now and every
    /// `sweep_every`, and recovery of dead uploads every half lease in
    /// between. Errors are logged and retried at the next tick. Abort the
    /// handle to stop it.
    pub fn spawn_sweeper(self: &Arc<App>, sweep_every: Duration) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            let recover_every = (app.settings.upload_lease / 2).max(Duration::from_millis(200));
            let mut ticks = tokio::time::interval(recover_every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut next_sweep = tokio::time::Instant::now();
            loop {
                ticks.tick().await;
                if tokio::time::Instant::now() >= next_sweep {
                    next_sweep = tokio::time::Instant::now() + sweep_every;
                    match app.sweep(false).await {
                        Ok(report) if report.is_empty() => {
                            tracing::debug!(node = %app.settings.node_id, "sweep: nothing to collect")
                        }
                        Ok(report) => tracing::info!(
                            node = %app.settings.node_id,
                            recovered = report.recovered.len(),
                            stale_leases = report.stale_leases.len(),
                            objects = report.objects.len(),
                            staging = report.staging.len(),
                            "sweep collected"
                        ),
                        Err(err) => {
                            tracing::error!(node = %app.settings.node_id, error = %err, "sweep failed; retrying at the next tick")
                        }
                    }
                } else if let Err(err) = app.recover().await {
                    tracing::error!(node = %app.settings.node_id, error = %err, "recovery of dead uploads failed; retrying at the next tick");
                }
            }
        })
    }
}
