//! Interoperable import with `glance-direct`: staging data for a `queued`
//! image (`PUT …/stage`), and importing it (`POST …/import`) through the
//! same one pass as an upload.
//!
//! Staged data is a committed store object under [`stage_key`] of the image
//! id (the staging seam: `Store::stage` → write → commit), so it outlives the
//! request and any process; the image is `uploading` while it exists.
//! Import: `uploading → queued` (under the upload lock), then
//! [`Uploader::upload`] over a stream of the staged object (signature,
//! checksum, os_hash, size cap, format inspection), then the staged object is
//! deleted whatever the outcome.
//!
//! Crash rules (recovery at the next start, see `recovery`): an `uploading`
//! image whose upload lock is free and whose staged object does not exist
//! died mid-stage: its staging is aborted and it goes back to `queued`; an
//! `uploading` image with its staged object is a finished stage waiting for
//! its import and is kept. A `saving` image recovered also loses its staged
//! object (an import died mid-pass). The one window left (between the
//! import's `uploading → queued` and its claim) leaves an object that no
//! image references, which the sweeper's unreferenced-object rule removes.
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
use crate::repo::{Change, ImageRepo};
use crate::store::{Error as StoreError, Staged};

use super::commit::{UploadData, Uploader};
use super::error::Error;
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
        // 2. The upload lock, then queued → uploading (a concurrent upload
        //    or stage loses here with a conflict).
        let lock = self.lock(id)?;
        let uploading = match self.repo.save(ctx, &Change::stage(queued)).await {
            Ok(uploading) => uploading,
            Err(RepoError::Conflict { .. }) => return Err(Error::Conflict { id: *id }),
            Err(err) => return Err(repo_error(err)),
        };
        // 3. The data into a staged write, committed under the stage key.
        let written = self.write_stage(id, data, allowance).await;
        if let Err(err) = written {
            // 4. Failed: nothing is left (write_stage removed it), queued again.
            if let Err(back) = self.repo.save(ctx, &Change::unstage(uploading)).await {
                tracing::error!(image = %id, error = %back, "cannot return the image to queued after a failed stage");
            }
            drop(lock);
            return Err(err);
        }
        drop(lock);
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
        let key = stage_key(*id);
        let location = self.store.location_of(key);
        // 1. Under the lock (no stage of this image is running):
        //    uploading → queued, so the pass can claim it as an upload.
        {
            let _lock = self.lock(id)?;
            match self.repo.save(ctx, &Change::unstage(uploading)).await {
                Ok(_) => {}
                Err(RepoError::Conflict { .. }) => return Err(Error::Conflict { id: *id }),
                Err(err) => return Err(repo_error(err)),
            }
        }
        // 2. The one pass over the staged object.
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
        // 3. The staged data goes, whatever the outcome.
        if let Err(err) = self.store.delete(&location).await {
            tracing::error!(image = %id, error = %err, "cannot remove the staged data after its import");
        }
        outcome
    }

    /// Deletes the staged data of image `id` (deleted while `uploading`);
    /// a failure is logged and leaves the object to the sweeper.
    pub async fn remove_stage(&self, id: &ImageId) {
        let location = self.store.location_of(stage_key(*id));
        if let Err(err) = self.store.delete(&location).await {
            tracing::error!(image = %id, error = %err, "cannot remove the staged data of a deleted image");
        }
    }

    /// Writes `data` to a staged write under the stage key and commits it;
    /// on failure nothing of it is left.
    async fn write_stage<S>(
        &self,
        id: &ImageId,
        mut data: UploadData<S>,
        allowance: Option<u64>,
    ) -> Result<(), Error>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
    {
        let store_error = |source| Error::Store { id: *id, source };
        let key = stage_key(*id);
        let mut staged = self.store.stage(key).await.map_err(store_error)?;
        let mut limit = Limit::new(self.settings.image_size_cap, allowance, data.declared_size);
        let written = copy(id, &mut data.stream, &mut limit, &mut staged).await;
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
