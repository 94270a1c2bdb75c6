//! Crash recovery: images left `saving` by an upload that no longer runs
//! (kill -9, power loss) go back to `queued`, and their staged data goes.
//!
//! Liveness is the upload lock (see `lock`): an image is recovered only when
//! its lock can be taken, so a live upload in another process is never
//! touched. Every command that opens a data directory runs this first. It
//! must not touch images in any other status.

use crate::context::RequestContext;
use crate::image::{ImageId, Status};
use crate::repo::{Change, Error as RepoError, ImageRepo, SqlRepo};
use crate::store::Store;

use super::stage::stage_key;

/// Why recovery could not finish; it stops at the first failure so a later
/// start can retry.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The repository failed.
    #[error("crash recovery: repository")]
    Repo(#[source] crate::repo::Error),
    /// The lock or the staged data of an image cannot be handled.
    #[error("crash recovery: store, image {id}")]
    Store {
        /// The image.
        id: ImageId,
        /// The store's error.
        #[source]
        source: crate::store::Error,
    },
}

/// Returns every `saving` image whose upload is gone to `queued`, removing
/// its staged data; logs each one at warn level. Returns the ids recovered.
///
/// Fails on the first repository, store or lock-file error.
pub async fn recover(repo: &SqlRepo, store: &Store) -> Result<Vec<ImageId>, RecoveryError> {
    let ctx = RequestContext::local_admin();
    let stuck = repo
        .images_with_status(Status::Saving)
        .await
        .map_err(RecoveryError::Repo)?;
    let mut recovered = Vec::new();
    for image in stuck {
        let id = image.id;
        if recover_one(repo, store, &ctx, id).await? {
            recovered.push(id);
        }
    }
    let staging = repo
        .images_with_status(Status::Uploading)
        .await
        .map_err(RecoveryError::Repo)?;
    for image in staging {
        let id = image.id;
        if recover_stage(repo, store, &ctx, id).await? {
            recovered.push(id);
        }
    }
    Ok(recovered)
}

/// Recovers one image listed as `uploading` whose stage died before its
/// data was committed under the stage key: its staging is aborted and it
/// is `queued` again. A finished stage (the staged object exists) waits
/// for its import and is kept. Returns whether it was recovered.
async fn recover_stage(
    repo: &SqlRepo,
    store: &Store,
    ctx: &RequestContext,
    id: ImageId,
) -> Result<bool, RecoveryError> {
    let store_error = |source| RecoveryError::Store { id, source };
    let Some(lock) = store.try_lock_upload(id).map_err(store_error)? else {
        // A live stage or import holds it.
        return Ok(false);
    };
    let image = match repo.get(ctx, id).await {
        Ok(image) if image.status == Status::Uploading => image,
        Ok(_) | Err(RepoError::NotFound { .. }) => return Ok(false),
        Err(err) => return Err(RecoveryError::Repo(err)),
    };
    let key = stage_key(id);
    match store.open(&store.location_of(key), None).await {
        // Staged completely: the import may come.
        Ok(_) => return Ok(false),
        Err(crate::store::Error::Missing { .. }) => {}
        Err(source) => return Err(store_error(source)),
    }
    let removed = store.remove_staged(key).await.map_err(store_error)?;
    let recovered = match repo.save(ctx, &Change::unstage(image)).await {
        Ok(_) => {
            tracing::warn!(
                image = %id,
                staged_files = removed.len(),
                "recovered an interrupted stage: its data was removed and the image is queued again"
            );
            true
        }
        Err(RepoError::Conflict { .. }) => false,
        Err(err) => return Err(RecoveryError::Repo(err)),
    };
    drop(lock);
    Ok(recovered)
}

/// Recovers one image listed as `saving`; returns whether it was recovered.
///
/// The list is a snapshot: between it and the lock, a live upload may have
/// committed (made the image `active`) and released its lock. So the image
/// is re-read under the lock and left alone unless it is still `saving`;
/// otherwise recovery would delete an active image's data.
async fn recover_one(
    repo: &SqlRepo,
    store: &Store,
    ctx: &RequestContext,
    id: ImageId,
) -> Result<bool, RecoveryError> {
    let Some(lock) = store
        .try_lock_upload(id)
        .map_err(|source| RecoveryError::Store { id, source })?
    else {
        // A live upload holds it.
        return Ok(false);
    };
    let image = match repo.get(ctx, id).await {
        Ok(image) if image.status == Status::Saving => image,
        // Finished, rolled back or deleted since the scan: not ours to touch.
        Ok(_) | Err(RepoError::NotFound { .. }) => return Ok(false),
        Err(err) => return Err(RecoveryError::Repo(err)),
    };
    let removed = store
        .remove_staged(id)
        .await
        .map_err(|source| RecoveryError::Store { id, source })?;
    // The upload may have died between the store commit and the
    // database transaction: that data is referenced by nothing.
    store
        .delete(&store.location_of(id))
        .await
        .map_err(|source| RecoveryError::Store { id, source })?;
    // An import that died mid-pass: its staged data goes too.
    store
        .delete(&store.location_of(stage_key(id)))
        .await
        .map_err(|source| RecoveryError::Store { id, source })?;
    // The record read under the lock: a change since is someone else's
    // recovery (a conflict), never ours to overwrite.
    let recovered = match repo.save(ctx, &Change::rollback_upload(image)).await {
        Ok(_) => {
            tracing::warn!(
                image = %id,
                staged_files = removed.len(),
                staged_bytes = removed.iter().filter_map(|staged| staged.len).sum::<u64>(),
                "recovered an interrupted upload: its data was removed and the image is queued again"
            );
            true
        }
        // Someone else recovered it between our read and our save.
        Err(RepoError::Conflict { .. }) => false,
        Err(err) => return Err(RecoveryError::Repo(err)),
    };
    drop(lock);
    Ok(recovered)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, FixedClock};
    use crate::image::{ContainerFormat, DiskFormat, Image};

    /// A repository and a filesystem store in a temporary directory.
    async fn fixture() -> (tempfile::TempDir, SqlRepo, Store) {
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(FixedClock(
            crate::clock::parse_rfc3339("2026-01-01T00:00:00Z").unwrap(),
        ));
        let repo = SqlRepo::open_sqlite(&dir.path().join("db.sqlite"), clock)
            .await
            .unwrap();
        let store = Store::filesystem(dir.path()).unwrap();
        (dir, repo, store)
    }

    /// A new queued raw/bare image.
    async fn queued_raw(repo: &SqlRepo) -> Image {
        let at = crate::clock::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let mut image = Image::new_queued(ImageId::new_random(), None, at);
        image.disk_format = Some(DiskFormat::Raw);
        image.container_format = Some(ContainerFormat::Bare);
        repo.add(&RequestContext::local_admin(), &image.into())
            .await
            .unwrap()
    }

    /// Regression (team note 07:05): an image listed as `saving` whose
    /// upload committed before recovery took the lock keeps its data.
    #[tokio::test]
    async fn an_image_that_became_active_after_the_scan_keeps_its_data() {
        let (_dir, repo, store) = fixture().await;
        let ctx = RequestContext::local_admin();
        let image = queued_raw(&repo).await;
        let saving = repo
            .save(&ctx, &Change::claim_upload(image.clone()))
            .await
            .unwrap();
        // Recovery's scan sees it saving ...
        let stuck = repo.images_with_status(Status::Saving).await.unwrap();
        assert_eq!(stuck.len(), 1);
        // ... then the live upload commits and releases its lock.
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
        repo.save(&ctx, &Change::commit_upload(saving, data))
            .await
            .unwrap();

        let recovered = recover_one(&repo, &store, &ctx, stuck[0].id).await.unwrap();
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

    /// A stage that died before its commit (staging file only) is undone:
    /// `queued`, nothing staged; a finished stage (its object exists) waits
    /// for its import and is kept.
    #[tokio::test]
    async fn dead_stages_are_undone_and_finished_ones_kept() {
        let (_dir, repo, store) = fixture().await;
        let ctx = RequestContext::local_admin();
        let mut staged_ids = Vec::new();
        for _ in 0..2 {
            let image = queued_raw(&repo).await;
            repo.save(&ctx, &Change::stage(image.clone()))
                .await
                .unwrap();
            let mut staged = store.stage(stage_key(image.id)).await.unwrap();
            staged
                .write(bytes::Bytes::from_static(b"staged data"))
                .await
                .unwrap();
            staged_ids.push((image.id, staged));
        }
        // The first stage died mid-write (a kill -9: the staging file stays);
        // the second finished.
        let (dead, dead_staged) = staged_ids.remove(0);
        drop(dead_staged);
        let (done, done_staged) = staged_ids.remove(0);
        let location = done_staged.commit().await.unwrap();

        let recovered = recover(&repo, &store).await.unwrap();
        assert_eq!(recovered, vec![dead]);
        assert_eq!(repo.get(&ctx, dead).await.unwrap().status, Status::Queued);
        assert!(store.list_staged().await.unwrap().is_empty());
        assert_eq!(
            repo.get(&ctx, done).await.unwrap().status,
            Status::Uploading
        );
        assert!(store.open(&location, None).await.is_ok());
    }
}
