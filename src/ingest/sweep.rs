//! The sweeper (`portcullis gc`, `serve` at start and periodically) and its
//! bounded form run by every opener ([`sweep_at_open`]): collects what no
//! live record references, on any store.
//!
//! The full sweep, in this order (each step reads the store before the
//! database, so that anything written between the two reads is seen as
//! referenced):
//! 1. dead uploads: `saving` images whose lease expired (or whose process on
//!    this node is gone) are recovered (see [`super::recovery`]);
//! 2. stale leases: a lease row whose image is neither `saving` nor
//!    `uploading` (an image deleted mid-upload, a rollback that could not be
//!    written) has its staging intent aborted and goes;
//! 3. pending deletions: data of deleted images that a delete queued but did
//!    not finish removing (killed, or the store failed), and stage objects
//!    an import queued and did not remove (older than the grace period,
//!    their image neither `uploading` nor `saving`);
//! 4. objects no image references: data of deleted or missing images, or
//!    committed data whose database commit never happened, older than the
//!    grace period and not belonging to a `saving` image (whose upload may
//!    be committing right now);
//! 5. staging no live lease names, older than the grace period (a live
//!    upload records its intent within milliseconds of creating it);
//! 6. lock files older than the grace period that nobody holds (filesystem;
//!    left by versions whose glance-direct stages took a file lock).
//!
//! At open, steps 3, 5 and 6 run with at most [`AT_OPEN_LIMIT`] items each
//! (step 1 is recovery, which every opener runs anyway; 2 and 4 read every
//! lease or list every object, so they stay the full sweep's). With nothing
//! to collect that is one indexed query and two listings of the staging
//! area (leases are read only when old staging is found): 0.5 ms of a 15 ms
//! command, measured by benches/open.sh against opening without it.
//!
//! It owns these rules and the report; it must not touch a live upload, an
//! object a live image references, or anything younger than the grace
//! period (a deleted image's data has none: its id is never reused, and
//! deleting twice is harmless). With `dry_run` it only reports.

use std::collections::HashSet;
use std::time::Duration;

use time::OffsetDateTime;

use crate::image::{ImageId, Status};
use crate::repo::location::{CollectError, collect_pending};
use crate::repo::{PendingDeletion, SqlRepo};
use crate::store::{StagedData, StagingIntent, StaleLock, Store};

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
    /// Data that a delete or an import left (pending deletions), removed.
    pub deleted_data: Vec<PendingDeletion>,
    /// Old lock files nobody held, removed (filesystem only).
    pub stale_locks: Vec<StaleLock>,
}

impl SweepReport {
    /// Whether the sweep found nothing to collect.
    pub fn is_empty(&self) -> bool {
        self.recovered.is_empty()
            && self.stale_leases.is_empty()
            && self.objects.is_empty()
            && self.staging.is_empty()
            && self.deleted_data.is_empty()
            && self.stale_locks.is_empty()
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

impl From<CollectError> for SweepError {
    fn from(err: CollectError) -> SweepError {
        match err {
            CollectError::Store(source) => SweepError::Store(source),
            CollectError::Repo(source) => SweepError::Repo(source),
        }
    }
}

/// How many items each bounded step collects at open: enough to drain what
/// one killed command leaves, few enough that a backlog (a store that was
/// down) costs each command at most a few dozen store calls; `gc` or the
/// server's sweeper drain the rest.
pub const AT_OPEN_LIMIT: usize = 16;

/// The bounded sweep every opener runs after recovery: at most
/// [`AT_OPEN_LIMIT`] pending deletions, orphan staged writes and stale lock
/// files (steps 3, 5 and 6 of the full sweep).
///
/// Fails on the first repository or store error (what was removed stays
/// removed).
pub async fn sweep_at_open(
    repo: &SqlRepo,
    store: &Store,
    grace: Duration,
) -> Result<SweepReport, SweepError> {
    let mut report = SweepReport::default();
    collect_deletions(repo, store, grace, AT_OPEN_LIMIT, false, &mut report).await?;
    let staged = store.list_staged().await.map_err(SweepError::Store)?;
    collect_staging(
        repo,
        store,
        staged,
        grace,
        AT_OPEN_LIMIT,
        false,
        &mut report,
    )
    .await?;
    collect_locks(store, grace, AT_OPEN_LIMIT, false, &mut report).await?;
    Ok(report)
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
        // An upload's (`saving`) or a glance-direct stage's (`uploading`):
        // recovery's when dead.
        if matches!(status, Some(Status::Saving | Status::Uploading)) {
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

    // 3. Pending deletions.
    collect_deletions(repo, store, grace, usize::MAX, dry_run, &mut report).await?;
    let pending: HashSet<&str> = report
        .deleted_data
        .iter()
        .map(|pending| pending.url.as_str())
        .collect();

    // 4. Objects no image references: the store first, then the records.
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
    let uploading = uploading_images(repo).await?;
    let deleted = repo.deleted_ids().await.map_err(SweepError::Repo)?;
    let now = OffsetDateTime::now_utc();
    for object in objects {
        let age: Duration = (now - object.modified).try_into().unwrap_or(Duration::ZERO);
        if age < grace
            || saving.contains(&object.image_id)
            || is_live_stage(&uploading, object.image_id)
            || pending.contains(object.location.url.as_str())
        {
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

    // 5. Staging no live lease names (read after the listing).
    collect_staging(repo, store, staged, grace, usize::MAX, dry_run, &mut report).await?;
    // 6. Lock files nobody holds.
    collect_locks(store, grace, usize::MAX, dry_run, &mut report).await?;
    Ok(report)
}

/// Step 3: removes the data of at most `limit` pending deletions that may
/// go now (a deleted image's at once; an import's stage object after
/// `grace`, unless its image is `uploading` or `saving`), oldest first
/// (with `dry_run`, lists them).
async fn collect_deletions(
    repo: &SqlRepo,
    store: &Store,
    grace: Duration,
    limit: usize,
    dry_run: bool,
    report: &mut SweepReport,
) -> Result<(), SweepError> {
    for pending in repo
        .pending_deletions(limit, grace)
        .await
        .map_err(SweepError::Repo)?
    {
        if !dry_run {
            collect_pending(store, repo, &pending).await?;
        }
        tracing::warn!(
            image = %pending.image_id,
            url = %pending.url,
            reason = pending.reason.as_str(),
            dry_run,
            "sweep: data left by a delete or an import that did not finish"
        );
        report.deleted_data.push(pending);
    }
    Ok(())
}

/// Step 5: aborts at most `limit` of the `staged` writes (listed before this
/// reads the leases) that no live upload owns and that are older than
/// `grace`.
async fn collect_staging(
    repo: &SqlRepo,
    store: &Store,
    staged: Vec<StagedData>,
    grace: Duration,
    limit: usize,
    dry_run: bool,
    report: &mut SweepReport,
) -> Result<(), SweepError> {
    let now = OffsetDateTime::now_utc();
    let old: Vec<StagedData> = staged
        .into_iter()
        .filter(|data| data.age(now) >= grace)
        .collect();
    if old.is_empty() {
        return Ok(());
    }
    let live: HashSet<StagingIntent> = repo
        .leases()
        .await
        .map_err(SweepError::Repo)?
        .into_iter()
        .filter(|(lease, status)| {
            !lease.expired && matches!(status, Some(Status::Saving | Status::Uploading))
        })
        .filter_map(|(lease, _)| lease.intent)
        .collect();
    let uploading = uploading_images(repo).await?;
    let mut collected = 0;
    for data in old {
        if collected == limit {
            break;
        }
        if live.contains(&data.intent) || is_live_stage(&uploading, data.image_id) {
            continue;
        }
        let age = data.age(now);
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
        collected += 1;
    }
    Ok(())
}

/// Step 6: removes at most `limit` upload lock files older than `grace`
/// that nobody holds.
async fn collect_locks(
    store: &Store,
    grace: Duration,
    limit: usize,
    dry_run: bool,
    report: &mut SweepReport,
) -> Result<(), SweepError> {
    let stale = store
        .collect_stale_locks(grace, limit, dry_run)
        .await
        .map_err(SweepError::Store)?;
    for lock in &stale {
        tracing::warn!(
            image = %lock.image_id,
            age_seconds = lock.age.as_secs(),
            dry_run,
            "sweep: upload lock file nobody holds"
        );
    }
    report.stale_locks.extend(stale);
    Ok(())
}

/// The images that are `uploading`: a glance-direct stage lives under its
/// image's stage key meanwhile (finished, waiting for its import, or being
/// written), so neither its object nor its staging is collected; a dead
/// stage is recovery's (its lease expired).
async fn uploading_images(repo: &SqlRepo) -> Result<HashSet<ImageId>, SweepError> {
    Ok(repo
        .images_with_status(Status::Uploading)
        .await
        .map_err(SweepError::Repo)?
        .into_iter()
        .map(|image| image.id)
        .collect())
}

/// Whether store key `key` is the stage key of an `uploading` image.
fn is_live_stage(uploading: &HashSet<ImageId>, key: ImageId) -> bool {
    super::stage::staged_image(key).is_some_and(|id| uploading.contains(&id))
}
