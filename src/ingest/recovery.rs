//! Crash recovery: images left `saving` by an upload that no longer runs
//! (kill -9, power loss) go back to `queued`, and their staged data goes.
//!
//! Liveness is the upload lock (see `lock`): an image is recovered only when
//! its lock can be taken, so a live upload in another process is never
//! touched. Every command that opens a data directory runs this first. It
//! must not touch images in any other status.

use crate::clock::Clock;
use crate::context::RequestContext;
use crate::image::{ImageId, Status};
use crate::repo::{Error as RepoError, ImageRepo, SqlRepo};
use crate::store::Store;

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
pub async fn recover(
    repo: &SqlRepo,
    store: &Store,
    clock: &dyn Clock,
) -> Result<Vec<ImageId>, RecoveryError> {
    let ctx = RequestContext::local_admin();
    let stuck = repo
        .images_with_status(Status::Saving)
        .await
        .map_err(RecoveryError::Repo)?;
    let mut recovered = Vec::new();
    for mut image in stuck {
        let id = image.id;
        let Some(lock) = store
            .try_lock_upload(id)
            .map_err(|source| RecoveryError::Store { id, source })?
        else {
            // A live upload holds it.
            continue;
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
        image.status = Status::Queued;
        image.updated_at = clock.now();
        match repo.save(&ctx, &image, Some(Status::Saving)).await {
            Ok(_) => {
                tracing::warn!(
                    image = %id,
                    staged_files = removed.len(),
                    staged_bytes = removed.iter().map(|staged| staged.len).sum::<u64>(),
                    "recovered an interrupted upload: its data was removed and the image is queued again"
                );
                recovered.push(id);
            }
            // Someone else recovered it between our list and our save.
            Err(RepoError::Conflict { .. }) => {}
            Err(err) => return Err(RecoveryError::Repo(err)),
        }
        drop(lock);
    }
    Ok(recovered)
}
