//! The location layer: it owns an image's `locations` and the store data
//! they point at.
//!
//! Locations are set exactly once, by the upload commit (`saving → active`),
//! and only to the image's own data inside the configured store; an ordinary save cannot add,
//! change or drop them. Removing an image deletes its data from the store
//! after the record is marked deleted, never before, so there is never a
//! live record without data. The delete's transaction queued that data as
//! a pending deletion (`repo::sql::deletions`); this layer forgets it once
//! the store confirmed, and `collect_pending` finishes what a failed or
//! killed delete left (every opener runs it, bounded). It must not write
//! image data (ingest does) nor decide who may do what.

use super::{
    Change, ChangeKind, Error, ImageRepo, ListQuery, NewImage, UploadAllowance, delegate_members,
    delegate_stored,
};
use crate::context::RequestContext;
use crate::image::{Image, ImageId, Location, Properties, Status};
use crate::repo::{PendingDeletion, PendingReason, SqlRepo};
use crate::store::Store;

/// The location layer.
#[derive(Debug, Clone)]
pub struct LocationRepo<R> {
    inner: R,
    store: Store,
    /// Where a delete's data is queued (the same database as `inner`'s
    /// bottom layer): forgotten here once the store confirmed.
    journal: SqlRepo,
}

impl<R> LocationRepo<R> {
    /// Wraps `inner`; `store` holds the data the locations point at and
    /// `journal` the pending deletions of that data.
    pub fn new(inner: R, store: Store, journal: SqlRepo) -> LocationRepo<R> {
        LocationRepo {
            inner,
            store,
            journal,
        }
    }
}

/// Deletes the data of one pending deletion (a deleted image's, or an
/// import's stage object) and forgets it. Already gone
/// counts as deleted. A URL outside the store is never deleted: it is
/// forgotten with an error logged (nothing here may touch foreign data).
///
/// Fails when the store or the database fails (the row stays, for the
/// next attempt).
pub(crate) async fn collect_pending(
    store: &Store,
    journal: &SqlRepo,
    pending: &PendingDeletion,
) -> Result<(), CollectError> {
    let location = Location {
        url: pending.url.clone(),
        metadata: Properties::new(),
    };
    if store.owns(&location) {
        store.delete(&location).await.map_err(CollectError::Store)?;
    } else {
        tracing::error!(
            image = %pending.image_id,
            url = %pending.url,
            "a pending deletion names data outside this store; forgotten without deleting it"
        );
    }
    journal
        .forget_deletion(&pending.url)
        .await
        .map_err(CollectError::Repo)
}

/// Why the data of a deleted image could not be collected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CollectError {
    /// The store refused or failed the delete.
    #[error("cannot delete the data of a deleted image: {0}")]
    Store(#[source] crate::store::Error),
    /// The pending deletion cannot be forgotten.
    #[error("cannot forget a pending deletion: {0}")]
    Repo(#[source] Error),
}

delegate_stored!(LocationRepo);

impl<R: ImageRepo> ImageRepo for LocationRepo<R> {
    async fn get(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        self.inner.get(ctx, id).await
    }

    async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> Result<Vec<Image>, Error> {
        self.inner.list(ctx, query).await
    }

    async fn add(&self, ctx: &RequestContext, new: &NewImage) -> Result<Image, Error> {
        if !new.image.locations.is_empty() {
            return Err(Error::forbidden(
                "create an image with locations (data is added by uploading it)",
                Some(new.image.id),
            ));
        }
        self.inner.add(ctx, new).await
    }

    async fn save(&self, ctx: &RequestContext, change: &Change) -> Result<Image, Error> {
        let (before, after) = (&change.before, &change.after);
        match change.kind {
            ChangeKind::CommitUpload => {
                // An active image must have data; refusing here keeps that
                // true whatever the caller forgot.
                if after.locations.is_empty() {
                    return Err(Error::NoData {
                        id: after.id,
                        status: after.status,
                    });
                }
                // Only this image's own data: a location naming another
                // image's file would make removing this image delete that one's.
                let own = self.store.location_of(after.id);
                if let Some(foreign) = after
                    .locations
                    .iter()
                    .find(|location| !self.store.owns(location) || location.url != own.url)
                {
                    return Err(Error::ForeignLocation {
                        id: after.id,
                        url: foreign.url.clone(),
                    });
                }
            }
            ChangeKind::RollbackUpload => {}
            ChangeKind::Update
            | ChangeKind::ClaimUpload
            | ChangeKind::Deactivate
            | ChangeKind::Reactivate
            | ChangeKind::Stage
            | ChangeKind::Unstage => {
                if after.locations != before.locations {
                    return Err(Error::forbidden(
                        "change the locations of an image (only an upload sets them)",
                        Some(after.id),
                    ));
                }
            }
        }
        self.inner.save(ctx, change).await
    }

    async fn remove(&self, ctx: &RequestContext, image: &Image) -> Result<Image, Error> {
        let removed = self.inner.remove(ctx, image).await?;
        crate::failpoint::pause("after-delete-commit");
        for location in &removed.locations {
            // The record is already deleted: failing now would report a
            // delete that happened as failed. The leftover stays queued and
            // is collected by the next opener.
            let pending = PendingDeletion {
                image_id: removed.id,
                url: location.url.clone(),
                reason: PendingReason::DeletedImage,
            };
            if let Err(err) = collect_pending(&self.store, &self.journal, &pending).await {
                tracing::warn!(
                    image = %removed.id,
                    url = %location.url,
                    error = %err,
                    "image deleted but its data could not be removed yet; the next command collects it"
                );
            }
        }
        Ok(removed)
    }

    async fn prepare_upload(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> Result<UploadAllowance, Error> {
        self.inner.prepare_upload(ctx, image).await
    }

    async fn prepare_download(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        let image = self.inner.prepare_download(ctx, id).await?;
        let has_data = matches!(image.status, Status::Active | Status::Deactivated)
            && !image.locations.is_empty();
        if !has_data {
            return Err(Error::NoData {
                id,
                status: image.status,
            });
        }
        Ok(image)
    }
}

// Members need nothing from the store (Glance's location layer would set
// store ACLs for them; a filesystem or S3 store read by portcullis alone has
// none to set).
delegate_members!(LocationRepo);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::test_support::*;

    async fn upload(
        layer: &LocationRepo<crate::repo::SqlRepo>,
        store: &Store,
        image: &Image,
    ) -> Image {
        let saving = layer
            .save(&admin(), &Change::claim_upload(image.clone()))
            .await
            .unwrap();
        let mut staged = store.stage(image.id).await.unwrap();
        staged
            .write(bytes::Bytes::from_static(b"image data"))
            .await
            .unwrap();
        let location = staged.commit().await.unwrap();
        let mut data = uploaded(image.id, 10);
        data.location = location;
        layer
            .save(&admin(), &Change::commit_upload(saving, data))
            .await
            .unwrap()
    }

    /// A repository, the layer over it, and one queued image of project p1.
    async fn with_queued_image() -> (TempRepo, LocationRepo<SqlRepo>, Image) {
        let repo = temp_repo().await;
        let layer = LocationRepo::new(repo.sql.clone(), repo.store.clone(), repo.sql.clone());
        let image = layer
            .add(&admin(), &queued(Some("p1")).into())
            .await
            .unwrap();
        (repo, layer, image)
    }

    /// What may be collected now (no grace).
    async fn pending_now(repo: &TempRepo) -> Vec<PendingDeletion> {
        repo.sql
            .pending_deletions(10, std::time::Duration::ZERO)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn removing_an_image_deletes_its_data() {
        let (repo, layer, image) = with_queued_image().await;
        let active = upload(&layer, &repo.store, &image).await;
        let path = repo.store_path(&active);
        assert!(path.exists());
        let downloadable = layer.prepare_download(&admin(), image.id).await.unwrap();
        assert_eq!(downloadable.locations, active.locations);

        let removed = layer.remove(&admin(), &active).await.unwrap();
        assert_eq!(removed.status, Status::Deleted);
        assert!(!path.exists(), "data left at {}", path.display());
        assert!(matches!(
            layer.get(&admin(), image.id).await,
            Err(Error::NotFound { .. })
        ));
        // Removing again: not found, nothing else happens.
        assert!(matches!(
            layer.remove(&admin(), &active).await,
            Err(Error::NotFound { .. })
        ));
        assert_eq!(pending_now(&repo).await, vec![]);
    }

    /// The delete's transaction queues the data; a delete that stops after
    /// it (here: the bottom layer alone, as a process killed between the
    /// two steps) leaves the row, and `collect_pending` finishes it.
    #[tokio::test]
    async fn a_delete_queues_its_data_until_the_store_confirms() {
        let (repo, layer, image) = with_queued_image().await;
        let active = upload(&layer, &repo.store, &image).await;
        let path = repo.store_path(&active);
        let removed = repo.sql.remove(&admin(), &active).await.unwrap();
        assert_eq!(removed.status, Status::Deleted);
        assert!(path.exists());
        let pending = pending_now(&repo).await;
        assert_eq!(
            pending,
            vec![PendingDeletion {
                image_id: image.id,
                url: active.locations[0].url.clone(),
                reason: PendingReason::DeletedImage,
            }]
        );
        collect_pending(&repo.store, &repo.sql, &pending[0])
            .await
            .unwrap();
        assert!(!path.exists());
        assert_eq!(pending_now(&repo).await, vec![]);
        // Collecting again (another process got there first) is harmless.
        collect_pending(&repo.store, &repo.sql, &pending[0])
            .await
            .unwrap();
    }

    /// An import's stage object waits for the grace period, and for its
    /// image to be neither `uploading` nor `saving`; queueing it again
    /// restarts the wait.
    #[tokio::test]
    async fn an_imports_stage_object_waits_for_the_grace_and_its_image() {
        let (repo, layer, image) = with_queued_image().await;
        let url = "file:///nowhere/stage";
        repo.sql.queue_stage_deletion(image.id, url).await.unwrap();
        let hour = std::time::Duration::from_secs(3600);
        let now = std::time::Duration::ZERO;
        assert_eq!(repo.sql.pending_deletions(10, hour).await.unwrap(), vec![]);
        let found = repo.sql.pending_deletions(10, now).await.unwrap();
        assert_eq!(
            found,
            vec![PendingDeletion {
                image_id: image.id,
                url: url.to_owned(),
                reason: PendingReason::StageObject,
            }]
        );
        // Staged again: its object is live.
        let uploading = layer
            .save(&admin(), &Change::stage(image.clone()))
            .await
            .unwrap();
        assert_eq!(repo.sql.pending_deletions(10, now).await.unwrap(), vec![]);
        layer
            .save(&admin(), &Change::unstage(uploading))
            .await
            .unwrap();
        assert_eq!(repo.sql.pending_deletions(10, now).await.unwrap().len(), 1);
        repo.sql.forget_deletion(url).await.unwrap();
        assert_eq!(repo.sql.pending_deletions(10, now).await.unwrap(), vec![]);
    }

    /// A queued URL outside the store is forgotten, never deleted.
    #[tokio::test]
    async fn a_pending_deletion_outside_the_store_deletes_nothing() {
        let repo = temp_repo().await;
        let outside = repo.dir.path().join("outside");
        std::fs::write(&outside, b"not the store's").unwrap();
        let pending = PendingDeletion {
            image_id: ImageId::new_random(),
            url: url::Url::from_file_path(&outside).unwrap().to_string(),
            reason: PendingReason::DeletedImage,
        };
        collect_pending(&repo.store, &repo.sql, &pending)
            .await
            .unwrap();
        assert!(outside.exists());
    }

    #[tokio::test]
    async fn locations_are_set_only_by_the_upload_commit_and_only_in_the_store() {
        let repo = temp_repo().await;
        let layer = LocationRepo::new(repo.sql.clone(), repo.store.clone(), repo.sql.clone());
        let mut with_location = queued(Some("p1"));
        with_location.locations = vec![repo.store.location_of(with_location.id)];
        assert_eq!(
            layer
                .add(&admin(), &with_location.into())
                .await
                .unwrap_err()
                .kind(),
            "forbidden"
        );

        let image = layer
            .add(&admin(), &queued(Some("p1")).into())
            .await
            .unwrap();
        assert!(matches!(
            layer.prepare_download(&admin(), image.id).await,
            Err(Error::NoData {
                status: Status::Queued,
                ..
            })
        ));
        let saving = layer
            .save(&admin(), &Change::claim_upload(image.clone()))
            .await
            .unwrap();
        let commit = |url: &str| {
            let mut data = uploaded(image.id, 1);
            data.location.url = url.to_owned();
            Change::commit_upload(saving.clone(), data)
        };

        // Not in the store: refused.
        let err = layer
            .save(&admin(), &commit("file:///etc/passwd"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "foreign_location", "{err}");
        // Another image's data, though inside the store: refused too
        // (removing this image would delete it).
        let other = layer
            .add(&admin(), &queued(Some("p1")).into())
            .await
            .unwrap();
        let other = upload(&layer, &repo.store, &other).await;
        let err = layer
            .save(&admin(), &commit(&other.locations[0].url))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "foreign_location", "{err}");
        assert!(repo.store_path(&other).exists());
        // Active without data: refused.
        let mut empty = commit("unused");
        empty.after.locations.clear();
        assert_eq!(
            layer.save(&admin(), &empty).await.unwrap_err().kind(),
            "no_data"
        );

        let active = {
            let queued_again = layer
                .save(&admin(), &Change::rollback_upload(saving.clone()))
                .await
                .unwrap();
            upload(&layer, &repo.store, &queued_again).await
        };
        // An ordinary save cannot drop or change them.
        let mut dropped = active.clone();
        dropped.locations.clear();
        assert_eq!(
            layer
                .save(&admin(), &Change::update(active.clone(), dropped))
                .await
                .unwrap_err()
                .kind(),
            "forbidden"
        );
        let mut renamed = active.clone();
        renamed.name = Some("still has data".into());
        let saved = layer
            .save(&admin(), &Change::update(active.clone(), renamed))
            .await
            .unwrap();
        assert_eq!(saved.locations, active.locations);
    }
}
