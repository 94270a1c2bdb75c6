//! The sweeper (`portcullis gc`, and `serve` at start and periodically):
//! collects what no live record references, on any store.
//!
//! In this order (each step reads the store before the database, so that
//! anything written between the two reads is seen as referenced):
//! 1. dead uploads: `saving` images whose lease expired (or whose process on
//!    this node is gone) are recovered (see [`super::recovery`]);
//! 2. stale leases: a lease row whose image is not `saving` (an image
//!    deleted mid-upload, a rollback that could not be written) has its
//!    staging intent aborted and goes;
//! 3. objects no image references: data of deleted or missing images, or
//!    committed data whose database commit never happened, older than the
//!    grace period and not belonging to a `saving` image (whose upload may
//!    be committing right now);
//! 4. staging no live lease names, older than the grace period (a live
//!    upload records its intent within milliseconds of creating it).
//!
//! It owns these rules and the report; it must not touch a live upload, an
//! object a live image references, or anything younger than the grace
//! period. With `dry_run` it only reports.

use std::collections::HashSet;
use std::time::Duration;

use time::OffsetDateTime;

use crate::image::{ImageId, Status};
use crate::repo::SqlRepo;
use crate::store::{StagingIntent, Store};

use super::lease::Leases;
use super::recovery::{self, RecoveryError};

/// What one sweep removed (or, with `dry_run`, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Whether anything was actually removed.
    pub dry_run: bool,
    /// Dead uploads returned to `queued` (their data removed).
    pub recovered: Vec<ImageId>,
    /// Lease rows of images no longer `saving`, released (their intents aborted).
    pub stale_leases: Vec<ImageId>,
    /// Committed objects no image references, deleted.
    pub objects: Vec<SweptObject>,
    /// Staged writes no live upload owns, aborted.
    pub staging: Vec<SweptStaging>,
}

impl SweepReport {
    /// Whether the sweep found nothing to collect.
    pub fn is_empty(&self) -> bool {
        self.recovered.is_empty()
            && self.stale_leases.is_empty()
            && self.objects.is_empty()
            && self.staging.is_empty()
    }
}

/// A committed object the sweep collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweptObject {
    /// The image it is named after.
    pub image_id: ImageId,
    /// Its location URL.
    pub url: String,
    /// Its length in bytes.
    pub bytes: u64,
    /// Why: `deleted_image`, `no_such_image`, `not_referenced`.
    pub reason: &'static str,
}

/// A staged write the sweep collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweptStaging {
    /// The image it was for.
    pub image_id: ImageId,
    /// Its intent (what was aborted).
    pub intent: StagingIntent,
    /// Its age in seconds when found.
    pub age_seconds: u64,
}

/// A sweep that could not finish; what it removed before stays removed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Recovering a dead upload failed.
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    /// The database could not be read or written.
    #[error("sweep: repository")]
    Repo(#[source] crate::repo::Error),
    /// The store could not be listed, or something could not be removed.
    #[error("sweep: store")]
    Store(#[source] crate::store::Error),
}

impl SweepError {
    /// A stable snake_case name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            SweepError::Recovery(_) => "recovery_failed",
            SweepError::Repo(source) => source.kind(),
            SweepError::Store(source) => source.kind(),
        }
    }
}

/// Sweeps `store` against the records in `repo`.
///
/// `grace`: nothing younger is collected (default: the lease length; a
/// committed object or a staging file that new is possibly an upload
/// between two of its steps). `now` is the system time (object times are
/// the store's).
///
/// Fails on the first repository or store error.
pub async fn sweep(
    repo: &SqlRepo,
    store: &Store,
    leases: &Leases,
    grace: Duration,
    dry_run: bool,
) -> Result<SweepReport, SweepError> {
    let mut report = SweepReport {
        dry_run,
        ..SweepReport::default()
    };
    // 1. Dead uploads.
    report.recovered = if dry_run {
        recovery::dead_uploads(repo, leases)
            .await?
            .into_iter()
            .map(|dead| dead.image_id)
            .collect()
    } else {
        recovery::recover(repo, store, leases).await?
    };

    // 2. Stale leases.
    for (lease, status) in repo.leases().await.map_err(SweepError::Repo)? {
        if status == Some(Status::Saving) {
            continue;
        }
        if !dry_run {
            if let Some(intent) = &lease.intent {
                store.abort(intent).await.map_err(SweepError::Store)?;
            }
            if !repo
                .release_stale_lease(lease.image_id, &lease.token)
                .await
                .map_err(SweepError::Repo)?
            {
                continue;
            }
        }
        report.stale_leases.push(lease.image_id);
    }

    // 3. Objects no image references: the store first, then the records.
    let objects = store.list_objects().await.map_err(SweepError::Store)?;
    let staged = store.list_staged().await.map_err(SweepError::Store)?;
    let referenced = repo
        .referenced_locations()
        .await
        .map_err(SweepError::Repo)?;
    let saving: HashSet<ImageId> = repo
        .images_with_status(Status::Saving)
        .await
        .map_err(SweepError::Repo)?
        .into_iter()
        .map(|image| image.id)
        .collect();
    // A glance-direct stage lives under its image's stage key while the
    // image is `uploading` (finished, waiting for its import, or being
    // written): neither its object nor its staging is collected then; a
    // dead stage is recovery's (`recovery::recover_stage`).
    let uploading: HashSet<ImageId> = repo
        .images_with_status(Status::Uploading)
        .await
        .map_err(SweepError::Repo)?
        .into_iter()
        .map(|image| image.id)
        .collect();
    let is_live_stage =
        |key: ImageId| super::stage::staged_image(key).is_some_and(|id| uploading.contains(&id));
    let deleted = repo.deleted_ids().await.map_err(SweepError::Repo)?;
    let now = OffsetDateTime::now_utc();
    for object in objects {
        let age: Duration = (now - object.modified).try_into().unwrap_or(Duration::ZERO);
        if age < grace || saving.contains(&object.image_id) || is_live_stage(object.image_id) {
            continue;
        }
        let reason = match referenced.get(&object.image_id) {
            Some(urls) if urls.contains(&object.location.url) => continue,
            Some(_) => "not_referenced",
            None if deleted.contains(&object.image_id) => "deleted_image",
            None => "no_such_image",
        };
        if !dry_run {
            store
                .delete(&object.location)
                .await
                .map_err(SweepError::Store)?;
        }
        tracing::warn!(
            image = %object.image_id,
            url = %object.location.url,
            bytes = object.len,
            reason,
            dry_run,
            "sweep: image data no record references"
        );
        report.objects.push(SweptObject {
            image_id: object.image_id,
            url: object.location.url,
            bytes: object.len,
            reason,
        });
    }

    // 4. Staging no live lease names (read after the listing).
    let live: HashSet<StagingIntent> = repo
        .leases()
        .await
        .map_err(SweepError::Repo)?
        .into_iter()
        .filter(|(lease, status)| !lease.expired && *status == Some(Status::Saving))
        .filter_map(|(lease, _)| lease.intent)
        .collect();
    for data in staged {
        let age = data.age(now);
        if age < grace || live.contains(&data.intent) || is_live_stage(data.image_id) {
            continue;
        }
        if !dry_run {
            store.abort(&data.intent).await.map_err(SweepError::Store)?;
        }
        tracing::warn!(
            image = %data.image_id,
            intent = %data.intent,
            age_seconds = age.as_secs(),
            dry_run,
            "sweep: staged data no live upload owns"
        );
        report.staging.push(SweptStaging {
            image_id: data.image_id,
            intent: data.intent,
            age_seconds: age.as_secs(),
        });
    }
    Ok(report)
}
