//! The location layer: it owns an image's `locations` and the store data
//! they point at.
//!
//! Locations are set exactly once, by the upload commit (`saving → active`),
//! and only to the image's own data inside the configured store; an ordinary save cannot add,
//! change or drop them. Removing an image deletes its data from the store
//! after the record is marked deleted, so a failure can leave unreferenced
//! bytes behind (logged) but never an active record without data. It must
//! not write image data (ingest does) nor decide who may do what.

use super::{
    Change, ChangeKind, Error, ImageRepo, ListQuery, NewImage, UploadAllowance, delegate_members,
    delegate_stored,
};
use crate::context::RequestContext;
use crate::image::{Image, ImageId, Status};
use crate::store::Store;

/// The location layer.
#[derive(Debug, Clone)]
pub struct LocationRepo<R> {
    inner: R,
    store: Store,
}

impl<R> LocationRepo<R> {
    /// Wraps `inner`; `store` holds the data the locations point at.
    pub fn new(inner: R, store: Store) -> LocationRepo<R> {
        LocationRepo { inner, store }
    }

    /// The wrapped repository.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The store this layer deletes from.
    pub fn store(&self) -> &Store {
        &self.store
    }
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
        for location in &removed.locations {
            // The record is already deleted: failing now would report a
            // delete that happened as failed. The leftover is logged instead.
            if let Err(err) = self.store.delete(location).await {
                tracing::warn!(
                    image = %removed.id,
                    url = %location.url,
                    error = %err,
                    "image deleted but its data could not be removed from the store"
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

    #[tokio::test]
    async fn removing_an_image_deletes_its_data() {
        let repo = temp_repo().await;
        let layer = LocationRepo::new(repo.sql.clone(), repo.store.clone());
        let image = layer
            .add(&admin(), &queued(Some("p1")).into())
            .await
            .unwrap();
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
    }

    #[tokio::test]
    async fn locations_are_set_only_by_the_upload_commit_and_only_in_the_store() {
        let repo = temp_repo().await;
        let layer = LocationRepo::new(repo.sql.clone(), repo.store.clone());
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
