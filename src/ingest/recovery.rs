//! Crash recovery: images left `saving` by an upload that no longer runs
//! (kill -9, power loss, a node that died) go back to `queued`, and their
//! staged data goes; likewise `uploading` images whose glance-direct stage
//! died before its data was committed.
//!
//! Liveness is the upload's lease (`repo::LeaseCheck`): an upload is dead
//! when its lease expired (on the database's clock; any node may recover
//! it), when it is this node's and its process is gone (recovered at once,
//! see `repo::ProcessId`), or when a `saving` image has no lease at all. A
//! live upload in another process or on another node is never touched.
//! Recovery first takes the dead lease over (so nobody else claims or
//! recovers the image while it cleans up), aborts the recorded staging
//! intent and any other staging of the image, deletes committed but
//! unrecorded data, and ends with a rollback that releases its lease. Every
//! opener runs it at start; `serve` also runs it periodically (the sweeper).
//! It must not touch images in any other status.

use std::collections::HashMap;

use crate::context::RequestContext;
use crate::image::{ImageId, Status};
use crate::repo::{
    Change, Error as RepoError, ImageRepo, LeaseCheck, LeaseRecord, Liveness, SqlRepo,
};
use crate::store::Store;

use super::lease::Leases;
use super::stage::stage_key;

/// Why recovery could not finish; it stops at the first failure so a later
/// start can retry.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The repository failed.
    #[error("crash recovery: repository")]
    Repo(#[source] crate::repo::Error),
    /// The staged or committed data of an image cannot be removed.
    #[error("crash recovery: store, image {id}")]
    Store {
        /// The image.
        id: ImageId,
        /// The store's error.
        #[source]
        source: crate::store::Error,
    },
}

/// Why an upload counts as dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Death {
    /// `saving` without a lease row (written by a version without leases).
    NoLease,
    /// Its lease expired.
    Expired,
    /// This node's, and its process is gone.
    ProcessGone,
}

impl Death {
    fn as_str(self) -> &'static str {
        match self {
            Death::NoLease => "no upload lease",
            Death::Expired => "its upload lease expired",
            Death::ProcessGone => "the process that held its lease on this node is gone",
        }
    }
}

/// A `saving` image whose upload is dead, and why.
#[derive(Debug, Clone)]
pub struct DeadUpload {
    /// The image.
    pub image_id: ImageId,
    /// Its lease as read (`None`: it had none).
    lease: Option<LeaseRecord>,
    death: Death,
}

impl DeadUpload {
    /// Why it counts as dead, in words.
    pub fn reason(&self) -> &'static str {
        self.death.as_str()
    }

    /// The node that held it, when it had a lease.
    pub fn node_id(&self) -> Option<&str> {
        self.lease.as_ref().map(|lease| lease.node_id.as_str())
    }
}

/// Every `saving` image whose upload is dead, without touching anything
/// (what [`recover`] would recover; `gc --dry-run` reports it).
///
/// Fails on a repository error.
pub async fn dead_uploads(
    repo: &SqlRepo,
    leases: &Leases,
) -> Result<Vec<DeadUpload>, RecoveryError> {
    dead_in(repo, leases, Status::Saving).await
}

/// Every image in `status` whose owner (an upload when `saving`, a
/// glance-direct stage when `uploading`) may be dead: its lease expired,
/// its process on this node is gone, or it has no lease at all. For
/// `uploading`, no lease also means a finished stage: [`recover_stage`]
/// tells the two apart by the data.
async fn dead_in(
    repo: &SqlRepo,
    leases: &Leases,
    status: Status,
) -> Result<Vec<DeadUpload>, RecoveryError> {
    let stuck = repo
        .images_with_status(status)
        .await
        .map_err(RecoveryError::Repo)?;
    if stuck.is_empty() {
        return Ok(Vec::new());
    }
    let mut held: HashMap<ImageId, LeaseRecord> = repo
        .leases()
        .await
        .map_err(RecoveryError::Repo)?
        .into_iter()
        .map(|(lease, _)| (lease.image_id, lease))
        .collect();
    let mut dead = Vec::new();
    for image in stuck {
        let lease = held.remove(&image.id);
        let death = match &lease {
            None => Death::NoLease,
            Some(lease) => match lease_death(lease, leases) {
                Some(death) => death,
                // Alive, or another node's and not expired yet.
                None => continue,
            },
        };
        dead.push(DeadUpload {
            image_id: image.id,
            lease,
            death,
        });
    }
    Ok(dead)
}

/// Why `lease` is dead, or `None` while it lives.
fn lease_death(lease: &LeaseRecord, leases: &Leases) -> Option<Death> {
    if lease.expired {
        Some(Death::Expired)
    } else if lease.node_id == leases.holder.node_id && lease.process.liveness() == Liveness::Dead {
        Some(Death::ProcessGone)
    } else {
        None
    }
}

/// Returns every `saving` image whose upload is dead to `queued`, removing
/// its staged data; logs each one at warn level (with the node that held it).
/// Returns the ids recovered.
///
/// Fails on the first repository or store error.
pub async fn recover(
    repo: &SqlRepo,
    store: &Store,
    leases: &Leases,
) -> Result<Vec<ImageId>, RecoveryError> {
    let ctx = RequestContext::local_admin();
    let mut recovered = Vec::new();
    for dead in dead_uploads(repo, leases).await? {
        let id = dead.image_id;
        if recover_one(
            repo,
            store,
            leases,
            &ctx,
            id,
            dead.lease.as_ref(),
            dead.death,
        )
        .await?
        {
            recovered.push(id);
        }
    }
    for dead in dead_in(repo, leases, Status::Uploading).await? {
        if recover_stage(repo, store, leases, &ctx, &dead).await? {
            recovered.push(dead.image_id);
        }
    }
    Ok(recovered)
}

/// Recovers one `uploading` image whose stage is `dead`: its lease expired
/// or its process on this node is gone (no lease: a finished stage, or a
/// stage of an older portcullis that died). With its staged object it is a
/// finished stage (whose lease release was lost, if it had one): kept, the
/// lease dropped. Without, its staging is aborted and it is `queued` again.
/// Returns whether it went back to `queued`.
async fn recover_stage(
    repo: &SqlRepo,
    store: &Store,
    leases: &Leases,
    ctx: &RequestContext,
    dead: &DeadUpload,
) -> Result<bool, RecoveryError> {
    let id = dead.image_id;
    let store_error = |source| RecoveryError::Store { id, source };
    let dead = dead.lease.as_ref().map(|lease| (lease, dead.death));
    // 1. Take the dead lease over (nobody else recovers it meanwhile).
    let ours = leases.new_lease();
    if let Some((lease, death)) = dead
        && !repo
            .take_over_lease(id, Some(&lease.token), death == Death::Expired, &ours)
            .await
            .map_err(RecoveryError::Repo)?
    {
        return Ok(false);
    }
    // 2. Still `uploading`, and the stage's data?
    let image = match repo.get(ctx, id).await {
        Ok(image) if image.status == Status::Uploading => Some(image),
        Ok(_) | Err(RepoError::NotFound { .. }) => None,
        Err(err) => return Err(RecoveryError::Repo(err)),
    };
    let key = stage_key(id);
    let finished = match store.open(&store.location_of(key), None).await {
        Ok(_) => true,
        Err(crate::store::Error::Missing { .. }) => false,
        Err(source) => return Err(store_error(source)),
    };
    let Some(image) = image.filter(|_| !finished) else {
        // Finished (the import may come) or no longer staging: only the
        // lease we took over goes.
        if dead.is_some() {
            repo.release_lease(id, &ours.token)
                .await
                .map_err(RecoveryError::Repo)?;
        }
        return Ok(false);
    };
    // 3. The staging: the recorded intent and any other of the stage key.
    if let Some(intent) = dead.and_then(|(lease, _)| lease.intent.as_ref()) {
        store.abort(intent).await.map_err(store_error)?;
    }
    let removed = store.remove_staged(key).await.map_err(store_error)?;
    // 4. Back to queued, releasing our lease in the same transaction (or,
    //    without one, provided nobody took one since).
    let check = match dead {
        Some(_) => LeaseCheck::Held { token: ours.token },
        None => LeaseCheck::Free,
    };
    match repo
        .save(ctx, &Change::unstage(image).with_lease(check))
        .await
    {
        Ok(_) => {
            tracing::warn!(
                image = %id,
                node = %leases.holder.node_id,
                lease_node = dead.map_or("", |(lease, _)| lease.node_id.as_str()),
                reason = dead.map_or(Death::NoLease, |(_, death)| death).as_str(),
                staged_files = removed.len(),
                "recovered an interrupted stage: its data was removed and the image is queued again"
            );
            Ok(true)
        }
        Err(RepoError::Conflict { .. }) => Ok(false),
        Err(err) => Err(RecoveryError::Repo(err)),
    }
}

/// Recovers one image found `saving` with a dead upload; returns whether it
/// was recovered (`false`: someone else got there first, or it finished).
async fn recover_one(
    repo: &SqlRepo,
    store: &Store,
    leases: &Leases,
    ctx: &RequestContext,
    id: ImageId,
    dead: Option<&LeaseRecord>,
    death: Death,
) -> Result<bool, RecoveryError> {
    // 1. Take the dead lease over: from here on nobody else claims,
    //    commits or recovers the image until this recovery ends.
    let ours = leases.new_lease();
    let taken = repo
        .take_over_lease(
            id,
            dead.map(|lease| lease.token.as_str()),
            death == Death::Expired,
            &ours,
        )
        .await
        .map_err(RecoveryError::Repo)?;
    if !taken {
        // Renewed, finished, or recovered by someone else since the scan.
        return Ok(false);
    }
    // 2. The record, read under our lease: still `saving` (else not ours).
    let image = match repo.get(ctx, id).await {
        Ok(image) if image.status == Status::Saving => image,
        Ok(_) | Err(RepoError::NotFound { .. }) => return Ok(false),
        Err(err) => return Err(RecoveryError::Repo(err)),
    };
    // 3. The data: the recorded intent (a multipart upload or a staging
    //    file), any other staging of the image (an intent never recorded),
    //    and data committed but never recorded (death between the two).
    let store_error = |source| RecoveryError::Store { id, source };
    if let Some(intent) = dead.and_then(|lease| lease.intent.as_ref()) {
        store.abort(intent).await.map_err(store_error)?;
    }
    let removed = store.remove_staged(id).await.map_err(store_error)?;
    store
        .delete(&store.location_of(id))
        .await
        .map_err(store_error)?;
    // An import that died mid-pass: its staged data goes too.
    store
        .delete(&store.location_of(stage_key(id)))
        .await
        .map_err(store_error)?;
    // 4. Back to queued, releasing our lease in the same transaction.
    let rollback = Change::rollback_upload(image).with_lease(LeaseCheck::Held {
        token: ours.token.clone(),
    });
    match repo.save(ctx, &rollback).await {
        Ok(_) => {
            tracing::warn!(
                image = %id,
                node = %leases.holder.node_id,
                lease_node = dead.map_or("", |lease| lease.node_id.as_str()),
                reason = death.as_str(),
                staged = removed.len() + usize::from(dead.is_some_and(|lease| lease.intent.is_some())),
                "recovered an interrupted upload: its data was removed and the image is queued again"
            );
            Ok(true)
        }
        Err(RepoError::Conflict { .. }) => Ok(false),
        Err(err) => Err(RecoveryError::Repo(err)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, FixedClock};
    use crate::image::{ContainerFormat, DiskFormat, Image};
    use crate::repo::{LeaseHolder, ProcessId};

    /// Regression (team note 07:05): an image listed as `saving` whose
    /// upload committed before recovery took its lease over keeps its data.
    #[tokio::test]
    async fn an_image_that_became_active_after_the_scan_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(FixedClock(
            crate::clock::parse_rfc3339("2026-01-01T00:00:00Z").unwrap(),
        ));
        let repo = SqlRepo::open_sqlite(&dir.path().join("db.sqlite"), clock.clone())
            .await
            .unwrap();
        let store = Store::filesystem(dir.path()).unwrap();
        let leases = Leases {
            sql: repo.clone(),
            holder: LeaseHolder {
                node_id: "n1".to_owned(),
                process: ProcessId::current(),
            },
            ttl: std::time::Duration::from_secs(30),
        };
        let ctx = RequestContext::local_admin();
        let mut image = Image::new_queued(ImageId::new_random(), None, clock.now());
        image.disk_format = Some(DiskFormat::Raw);
        image.container_format = Some(ContainerFormat::Bare);
        let image = repo.add(&ctx, &image.into()).await.unwrap();
        let lease = leases.new_lease();
        let saving = repo
            .save(
                &ctx,
                &Change::claim_upload(image.clone()).with_lease(LeaseCheck::Take(lease.clone())),
            )
            .await
            .unwrap();
        // Recovery's scan sees it saving, with a lease it judges dead ...
        let (scanned, status) = repo.leases().await.unwrap().remove(0);
        assert_eq!(status, Some(Status::Saving));
        // ... then the live upload commits and releases its lease.
        let mut staged = store.stage(image.id).await.unwrap();
        staged
            .write(bytes::Bytes::from_static(b"image data"))
            .await
            .unwrap();
        let location = staged.commit().await.unwrap();
        let data = crate::repo::UploadedData {
            size: 10,
            virtual_size: None,
            checksum: "0".repeat(32),
            os_hash_algo: "sha512".into(),
            os_hash_value: "0".repeat(128),
            location: location.clone(),
        };
        repo.save(
            &ctx,
            &Change::commit_upload(saving, data).with_lease(LeaseCheck::Held {
                token: lease.token.clone(),
            }),
        )
        .await
        .unwrap();
        assert!(
            repo.leases().await.unwrap().is_empty(),
            "the commit released the lease"
        );

        let recovered = recover_one(
            &repo,
            &store,
            &leases,
            &ctx,
            image.id,
            Some(&scanned),
            Death::ProcessGone,
        )
        .await
        .unwrap();
        assert!(!recovered);
        assert_eq!(
            repo.get(&ctx, image.id).await.unwrap().status,
            Status::Active
        );
        assert!(
            store.open(&location, None).await.is_ok(),
            "the active image's data was deleted"
        );
    }
}
