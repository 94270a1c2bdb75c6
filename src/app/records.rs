//! Image records: create, show, list (a page), delete, tags, and the one
//! place the application saves a changed record ([`App::store_change`]).
//!
//! A create request is validated as Glance validates `POST /v2/images`
//! (`wire::CreateRequest::validate`) whoever built it, so the CLI and the
//! server refuse the same names and values. Every save is a compare-and-swap
//! on the revision the change was computed from: a concurrent upload, status
//! change or edit makes it a `conflict` instead of writing a stale record
//! back.
//! This module must not touch image data or change `status`.

use crate::context::RequestContext;
use crate::image::{Image, ImageId};
use crate::repo::{Change, ImageRepo, ListQuery, NewImage};
use crate::wire::{self, CreateRequest};

use super::{App, Error};

/// One page of images, in the query's sort order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The images.
    pub images: Vec<Image>,
    /// The marker of the next page (the last image's id) while the page is
    /// full, as Glance links `next`; `None` when there is no limit or fewer
    /// images than the limit came back.
    pub next_marker: Option<ImageId>,
}

impl App {
    /// Creates a `queued` image owned by the request's `owner` or else the
    /// caller's project.
    ///
    /// Fails with [`Error::Request`] when the request breaks Glance's image
    /// schema (a read-only, reserved or base-attribute name among the
    /// properties, `os_glance*` included; a name, owner, tag or property
    /// name over 255 characters; a property value over
    /// [`wire::MAX_PROPERTY_VALUE`] bytes), and with [`Error::Repo`] when a
    /// layer refuses (policy, quota) or the database fails.
    pub async fn create(
        &self,
        ctx: &RequestContext,
        request: CreateRequest,
    ) -> Result<Image, Error> {
        request.validate()?;
        let image = request.into_image(
            ImageId::new_random(),
            ctx.project_id.clone(),
            self.clock().now(),
        );
        Ok(self.repo().add(ctx, &NewImage::new(image)).await?)
    }

    /// The image `id`.
    ///
    /// Fails with `repo::Error::NotFound` when it does not exist, is deleted
    /// or the caller may not see it.
    pub async fn show(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        Ok(self.repo().get(ctx, id).await?)
    }

    /// One page of the images the caller may see that match `query`.
    ///
    /// Fails with `repo::Error::MarkerNotFound` when the marker is not an
    /// image the caller can see.
    pub async fn list(&self, ctx: &RequestContext, query: ListQuery) -> Result<Page, Error> {
        let images = self.repo().list(ctx, &query).await?;
        let full = query
            .limit
            .is_some_and(|limit| !images.is_empty() && images.len() as u64 == u64::from(limit));
        let next_marker = images.last().filter(|_| full).map(|image| image.id);
        Ok(Page {
            images,
            next_marker,
        })
    }

    /// Deletes the image and its data; returns the record as it was, with
    /// status `deleted`.
    ///
    /// Fails with `repo::Error::NotFound` (also when already deleted),
    /// `Protected`, `Forbidden`, or `Conflict` when the image changed
    /// between the read and the delete (nothing is deleted then).
    pub async fn delete(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        let read = self.repo().get(ctx, id).await?;
        // A stage never imported: its staged data goes too, queued before
        // the delete so that a delete killed half-way leaves nothing an
        // opener would not collect.
        let stage = match read.status {
            crate::image::Status::Uploading => Some(self.uploader.queue_stage_removal(&id).await?),
            _ => None,
        };
        let removed = self.repo().remove(ctx, &read).await?;
        if let Some(stage) = &stage {
            self.uploader.remove_stage(stage).await;
        }
        Ok(removed)
    }

    /// Adds `tag` (already there: nothing changes, as Glance).
    ///
    /// Fails with [`Error::Request`] for a tag over 255 characters, and as
    /// [`App::update`] does otherwise.
    pub async fn add_tag(
        &self,
        ctx: &RequestContext,
        id: ImageId,
        tag: &str,
    ) -> Result<Image, Error> {
        wire::check_tag(tag)?;
        let image = self.repo().get(ctx, id).await?;
        if image.tags.contains(tag) {
            return Ok(image);
        }
        let mut changed = image.clone();
        changed.tags.insert(tag.to_owned());
        self.store_change(ctx, Change::update(image, changed)).await
    }

    /// Removes `tag`.
    ///
    /// Fails with [`Error::TagNotFound`] when the image does not have it,
    /// and as [`App::update`] does otherwise.
    pub async fn remove_tag(
        &self,
        ctx: &RequestContext,
        id: ImageId,
        tag: &str,
    ) -> Result<Image, Error> {
        let image = self.repo().get(ctx, id).await?;
        let mut changed = image.clone();
        if !changed.tags.remove(tag) {
            return Err(Error::TagNotFound {
                id,
                tag: tag.to_owned(),
            });
        }
        self.store_change(ctx, Change::update(image, changed)).await
    }

    /// Saves `change` (built with `Change::update`, `Change::deactivate` or
    /// `Change::reactivate` from a record the repository returned) in one
    /// transaction: a compare-and-swap on the revision it was read as
    /// (`updated_at` and `status`); the backend sets the new `updated_at`.
    /// Every record change the application makes (updates, tags,
    /// deactivate, reactivate) goes through here; uploads save through
    /// `ingest`.
    ///
    /// Fails with `repo::Error::Conflict` when the record changed since it
    /// was read (nothing is written), and with the layers' refusals.
    pub(super) async fn store_change(
        &self,
        ctx: &RequestContext,
        change: Change,
    ) -> Result<Image, Error> {
        Ok(self.repo().save(ctx, &change).await?)
    }
}
