//! Interoperable import (`glance-direct`): stage data for a queued image,
//! then import it through the same one pass as an upload.
//!
//! This module owns which import methods run (only `glance-direct`; Glance's
//! others, `web-download`, `copy-image` and `glance-download`, are refused as
//! Glance refuses a method that is not enabled) and that the import answers
//! its outcome synchronously, so a refusal's reason reaches the client. The
//! staging and the pass are `ingest::stage`'s; it must not read data itself.

use std::io;

use bytes::Bytes;
use futures_core::Stream;

use crate::context::RequestContext;
use crate::image::{Image, ImageId};
use crate::ingest::UploadData;

use super::{App, Error};

/// The import methods this service runs, in the order Glance lists them.
const IMPORT_METHODS: &[&str] = &["glance-direct"];

impl App {
    /// The import methods this service runs: `glance-direct`, on every
    /// store (a stage is owned through the image's upload lease, which
    /// every node sees).
    pub fn import_methods(&self) -> &'static [&'static str] {
        IMPORT_METHODS
    }

    /// Stages `data` for the queued image `id`: it becomes `uploading`, the
    /// data waiting in the store for [`App::import`].
    ///
    /// Fails with [`Error::Upload`] (not queued, a conflict, the size cap,
    /// the stream, the store); the image is then `queued` with nothing staged.
    pub async fn stage<S>(
        &self,
        ctx: &RequestContext,
        id: ImageId,
        data: UploadData<S>,
    ) -> Result<Image, Error>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Send + Unpin,
    {
        if !self.import_methods().contains(&"glance-direct") {
            return Err(Error::ImportMethod {
                method: "glance-direct".to_owned(),
            });
        }
        Ok(self.uploader.stage(ctx, &id, data).await?)
    }

    /// Imports the staged data of image `id` with `method` (only
    /// `glance-direct`) and returns the active image.
    ///
    /// Fails with [`Error::ImportMethod`] for any other method (before
    /// anything is read), and with [`Error::Upload`] as an upload does, or
    /// `not_staged` when nothing was staged; after a failed pass the image is
    /// `queued` with nothing stored, and the staged data is gone either way.
    pub async fn import(
        &self,
        ctx: &RequestContext,
        id: ImageId,
        method: &str,
    ) -> Result<Image, Error> {
        if !self.import_methods().contains(&method) {
            return Err(Error::ImportMethod {
                method: method.to_owned(),
            });
        }
        Ok(self.uploader.import(ctx, &id).await?)
    }
}
