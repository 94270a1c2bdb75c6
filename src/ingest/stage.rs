//! Interoperable import with `glance-direct`: staging data for a `queued`
//! image (`PUT …/stage`), and importing it (`POST …/import`) through the
//! same one pass as an upload.
//!
//! Staged data is a committed store object under [`stage_key`] of the image
//! id (the staging seam: `Store::stage` → write → commit), so it outlives the
//! request and any process; the image is `uploading` while it exists.
//! A stage owns its image through the image's upload lease while it writes,
//! as an upload does: taken in the `queued → uploading` transaction, renewed
//! by the heartbeat, the staged write's intent recorded in it before the
//! first byte, released once the data is committed (an `uploading` image
//! without a lease is a finished stage waiting for its import), or released
//! by the `uploading → queued` of a failed stage.
//! Import: the stage object queued for deletion, `uploading → queued`
//! provided no live lease is held (a stage still writing would;
//! `LeaseCheck::Free`), then [`Uploader::upload`] over a
//! stream of the staged object (signature, checksum, os_hash, size cap,
//! format inspection), then the staged object is deleted whatever the outcome.
//!
//! Crash rules (recovery, see `recovery`): an `uploading` image whose lease
//! is dead (expired, or its process on this node gone) died mid-stage when
//! its staged object does not exist: its staging is aborted and it goes back
//! to `queued`; with the object it is a finished stage whose release was
//! lost, and is kept. A `saving` image recovered also loses its staged
//! object (an import died mid-pass). An import queues its stage object for
//! deletion before it unstages the image, so one killed anywhere after
//! (between the unstage and its claim, or after its pass) leaves an object
//! that the next opener removes once older than the lease.
//!
//! This module must not read the staged data twice, nor set `active` (the
//! upload's commit does).

use std::io;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;

use crate::context::RequestContext;
use crate::image::{Image, ImageId, Status};
use crate::repo::Error as RepoError;
use crate::repo::location::collect_pending;
use crate::repo::{Change, ImageRepo, LeaseCheck, PendingDeletion, PendingReason};
use crate::store::{Error as StoreError, Staged};

use super::commit::{UploadData, Uploader};
use super::error::Error;
use super::lease::HeldLease;
use super::limit::{Exceeded, Limit, LimitKind};

/// The id under which the store keeps the staged data of image `id`: the
/// same UUID with its version nibble set to 8 (RFC 9562's custom UUIDs).
/// Image ids are always random v4 UUIDs (a create request cannot choose
/// one: `id` is read-only), so a stage key never names an image's data.
pub fn stage_key(id: ImageId) -> ImageId {
    let mut bytes = *id.as_uuid().as_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    ImageId::from(uuid::Uuid::from_bytes(bytes))
}

/// Whether `id` is a stage key ([`stage_key`]), for listings and sweepers.
pub fn is_stage_key(id: ImageId) -> bool {
    id.as_uuid().get_version_num() == 8
}

/// The image whose staged data a store object named `key` is, or `None`
/// when `key` is not a stage key: a sweeper keeps the object while that
/// image is `uploading` (a finished stage waiting for its import). Image ids
/// are v4, so the version nibble goes back to 4.
pub fn staged_image(key: ImageId) -> Option<ImageId> {
    if !is_stage_key(key) {
        return None;
    }
    let mut bytes = *key.as_uuid().as_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    Some(ImageId::from(uuid::Uuid::from_bytes(bytes)))
}

impl<R: ImageRepo + 'static> Uploader<R> {
    /// Stages `data` for the queued image `id` (`glance-direct`): the image
    /// becomes `uploading` with the data in the store under [`stage_key`].
    ///
    /// Fails with [`Error::NotQueued`] (another status), [`Error::Conflict`]
    /// (an upload or stage runs), the size cap or the declared size, the
    /// stream or the store; the image is then `queued` again with nothing
    /// staged.
    pub async fn stage<S>(
        &self,
        ctx: &RequestContext,
        id: &ImageId,
        data: UploadData<S>,
    ) -> Result<Image, Error>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
    {
        let repo_error = |source| Error::Repo { id: *id, source };
        // 1. The image must be queued; authorization, policy and quota as an upload.
        let queued = self.queued(ctx, id).await?;
        let allowance = self.allowance(ctx, &queued).await?;
        // 2. queued → uploading, taking the image's lease in the same
        //    transaction (a concurrent upload or stage loses here).
        let lease = self.leases.new_lease();
        let change = Change::stage(queued).with_lease(LeaseCheck::Take(lease.clone()));
        let uploading = match self.repo.save(ctx, &change).await {
            Ok(uploading) => uploading,
            Err(RepoError::Conflict { .. }) => return Err(Error::Conflict { id: *id }),
            Err(err) => return Err(repo_error(err)),
        };
        let held = self.leases.hold(*id, &lease);
        // 3. The data into a staged write, committed under the stage key.
        if let Err(err) = self.write_stage(id, data, allowance, &held).await {
            // 4. Failed: nothing is left (write_stage removed it); queued
            //    again, releasing the lease in the same transaction.
            let back = Change::unstage(uploading).with_lease(held.check());
            if let Err(back) = self.repo.save(ctx, &back).await {
                tracing::error!(image = %id, error = %back, "cannot return the image to queued after a failed stage; recovery does once its lease expires");
            }
            return Err(err);
        }
        // 5. Finished: the lease goes, the image stays `uploading` for the
        //    import. Should this fail, the lease expires and recovery, finding
        //    the staged data, keeps the stage.
        // The heartbeat stops first, so it cannot find the lease gone and
        // report it lost.
        let token = held.token().to_owned();
        drop(held);
        if let Err(err) = self.leases.sql.release_lease(*id, &token).await {
            tracing::warn!(image = %id, error = %err, "cannot release the stage's lease; it expires instead");
        }
        Ok(uploading)
    }

    /// Imports the staged data of image `id` (`glance-direct`) through the
    /// one pass of [`Uploader::upload`], then deletes the staged data
    /// whatever the outcome.
    ///
    /// Fails with [`Error::NotStaged`] when the image is not `uploading`,
    /// and otherwise as an upload does; the image is then `queued` with
    /// nothing stored or staged.
    pub async fn import(&self, ctx: &RequestContext, id: &ImageId) -> Result<Image, Error> {
        let repo_error = |source| Error::Repo { id: *id, source };
        let uploading = self.repo.get(ctx, *id).await.map_err(repo_error)?;
        if uploading.status != Status::Uploading {
            return Err(Error::NotStaged {
                id: *id,
                status: uploading.status,
            });
        }
        // 1. The stage object is queued for deletion first: from the
        //    unstage on, whatever stops this import, it goes (an opener
        //    collects it once older than the lease, unless the image is
        //    `uploading` or `saving` again).
        let stage = self.queue_stage_removal(id).await?;
        let location = self.store.location_of(stage_key(*id));
        // 2. uploading → queued, so the pass can claim it as an upload,
        //    provided no stage of this image is still writing (its live
        //    lease makes this a conflict).
        let unstage = Change::unstage(uploading).with_lease(LeaseCheck::Free);
        match self.repo.save(ctx, &unstage).await {
            Ok(_) => {}
            Err(RepoError::Conflict { .. }) => return Err(Error::Conflict { id: *id }),
            Err(err) => return Err(repo_error(err)),
        }
        crate::failpoint::pause("import-after-unstage");
        // 3. The one pass over the staged object.
        let outcome = match self.store.open(&location, None).await {
            Ok(reader) => {
                let declared_size = Some(reader.len());
                let stream = tokio_util::io::ReaderStream::with_capacity(reader, CHUNK);
                let data = UploadData {
                    stream,
                    declared_size,
                };
                let mut progress = |_: u64| {};
                self.upload(ctx, id, data, &mut progress).await
            }
            Err(source) => Err(Error::Store { id: *id, source }),
        };
        // 4. The staged data goes, whatever the outcome (else the next
        //    opener's sweep removes it).
        self.remove_stage(&stage).await;
        outcome
    }

    /// Queues the stage object of image `id` for deletion, before the step
    /// that ends the stage (an import's unstage, the image's delete): from
    /// then on, whatever stops that step, an opener removes it once older
    /// than the lease and while the image is neither `uploading` nor
    /// `saving`. Carry it out with [`Uploader::remove_stage`].
    ///
    /// Fails on a database error.
    pub async fn queue_stage_removal(&self, id: &ImageId) -> Result<PendingDeletion, Error> {
        let url = self.store.location_of(stage_key(*id)).url;
        self.leases
            .sql
            .queue_stage_deletion(*id, &url)
            .await
            .map_err(|source| Error::Repo { id: *id, source })?;
        Ok(PendingDeletion {
            image_id: *id,
            url,
            reason: PendingReason::StageObject,
        })
    }

    /// Deletes a stage object queued by [`Uploader::queue_stage_removal`]
    /// and forgets it; a failure is logged and leaves it to the next
    /// opener's sweep.
    pub async fn remove_stage(&self, stage: &PendingDeletion) {
        if let Err(err) = collect_pending(&self.store, &self.leases.sql, stage).await {
            tracing::error!(image = %stage.image_id, error = %err, "cannot remove the staged data now; the next command does");
        }
    }

    /// Writes `data` to a staged write under the stage key (its intent
    /// recorded in the stage's lease first) and commits it; on failure
    /// nothing of it is left.
    async fn write_stage<S>(
        &self,
        id: &ImageId,
        data: UploadData<S>,
        allowance: Option<u64>,
        held: &HeldLease,
    ) -> Result<(), Error>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
    {
        let store_error = |source| Error::Store { id: *id, source };
        let key = stage_key(*id);
        let mut staged = self.store.stage(key).await.map_err(store_error)?;
        // The intent goes into the lease before the first byte, so whoever
        // finds this stage dead can abort it from any node.
        let recorded = self
            .leases
            .sql
            .record_intent(*id, held.token(), staged.intent())
            .await;
        if !matches!(recorded, Ok(true)) {
            if let Err(abort) = staged.abort().await {
                tracing::error!(image = %id, error = %abort, "cannot remove staged data");
            }
            return Err(match recorded {
                Err(source) => Error::Repo { id: *id, source },
                Ok(_) => Error::Conflict { id: *id },
            });
        }
        let mut stream = held.watch(data.stream);
        let mut limit = Limit::new(self.settings.image_size_cap, allowance, data.declared_size);
        let written = copy(id, &mut stream, &mut limit, &mut staged).await;
        if let Err(err) = written {
            if let Err(abort) = staged.abort().await {
                tracing::error!(image = %id, error = %abort, "cannot remove staged data");
            }
            return Err(err);
        }
        let intent = staged.intent().clone();
        if let Err(source) = staged.commit().await {
            // Unknown outcome: undo both ways (idempotent).
            let location = self.store.location_of(key);
            for undo in [
                self.store.abort(&intent).await,
                self.store.delete(&location).await,
            ] {
                if let Err(err) = undo {
                    tracing::error!(image = %id, error = %err, "cannot remove staged data");
                }
            }
            return Err(store_error(source));
        }
        Ok(())
    }
}

/// Chunks read from a staged object during import (the pipeline's size).
const CHUNK: usize = 256 * 1024;

/// Copies the stream into the staged write under the limit.
async fn copy<S>(
    id: &ImageId,
    stream: &mut S,
    limit: &mut Limit,
    staged: &mut Staged,
) -> Result<(), Error>
where
    S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
{
    limit
        .check_declared()
        .map_err(|exceeded| declared_too_large(id, exceeded))?;
    while let Some(next) = stream.next().await {
        let chunk = next.map_err(|source| Error::Stream {
            id: *id,
            received: limit.n_bytes(),
            source,
        })?;
        limit
            .take(chunk.len())
            .map_err(|exceeded| too_large(id, exceeded))?;
        staged
            .write(chunk)
            .await
            .map_err(|source: StoreError| Error::Store { id: *id, source })?;
    }
    limit.finish().map_err(|declared| Error::SizeMismatch {
        id: *id,
        declared,
        received: limit.n_bytes(),
    })?;
    Ok(())
}

fn declared_too_large(id: &ImageId, exceeded: Exceeded) -> Error {
    Error::DeclaredTooLarge {
        id: *id,
        kind: exceeded.kind,
        limit: exceeded.limit,
        declared: exceeded.attempted,
    }
}

fn too_large(id: &ImageId, exceeded: Exceeded) -> Error {
    if exceeded.kind == LimitKind::Declared {
        return Error::SizeExceedsDeclared {
            id: *id,
            declared: exceeded.limit,
            received: exceeded.attempted,
        };
    }
    Error::TooLarge {
        id: *id,
        kind: exceeded.kind,
        limit: exceeded.limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_keys_are_distinct_from_image_ids() {
        let id = ImageId::new_random();
        let key = stage_key(id);
        assert_ne!(key, id);
        assert!(is_stage_key(key));
        assert!(!is_stage_key(id));
        assert_eq!(stage_key(id), key, "derived, not random");
        assert_eq!(staged_image(key), Some(id));
        assert_eq!(staged_image(id), None);
    }
}
