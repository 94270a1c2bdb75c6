//! Uploads: any stream of `Bytes` (a file, standard input, an HTTP body)
//! into a `queued` image in one pass, and `ingest` (create, then upload).
//!
//! The one-pass pipeline and its commit protocol are `ingest`'s; this
//! module decides what comes before it: a signed image needs a key manager
//! (a certificate directory), checked before anything is created. It must
//! not read the data itself.

use std::io;

use bytes::Bytes;
use futures_core::Stream;

use crate::context::RequestContext;
use crate::image::{Image, ImageId, Properties};
use crate::ingest::{Progress, UploadData};
use crate::verify::Presence;
use crate::wire::CreateRequest;

use super::{App, Error};

impl App {
    /// Uploads `data` to the queued image `id` in one pass (size limit, md5,
    /// os_hash, signature, format inspection, staged write) and makes it
    /// `active`. `progress` is told the byte count after each chunk.
    ///
    /// Fails with [`Error::Upload`]; the image is then `queued` again with
    /// nothing stored (or untouched, when the failure came before the
    /// upload claimed it: not queued, another upload running, signature
    /// policy, certificate, quota).
    pub async fn upload<S>(
        &self,
        ctx: &RequestContext,
        id: ImageId,
        data: UploadData<S>,
        progress: Progress<'_>,
    ) -> Result<Image, Error>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Send + Unpin,
    {
        Ok(self.uploader.upload(ctx, &id, data, progress).await?)
    }

    /// Creates an image from `request` and uploads `data` to it, as Glance's
    /// create followed by `PUT …/file`.
    ///
    /// Fails before anything is created with [`Error::Request`] (the request
    /// breaks Glance's schema) or [`Error::NoKeyManager`] (a complete
    /// `img_signature*` set but no certificate directory), or as
    /// [`App::create`] does; after the image exists, as [`App::upload`]
    /// does ([`Error::transfer_image`] names it: it stays `queued`).
    pub async fn ingest<S>(
        &self,
        ctx: &RequestContext,
        request: CreateRequest,
        data: UploadData<S>,
        progress: Progress<'_>,
    ) -> Result<Image, Error>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Send + Unpin,
    {
        request.validate()?;
        self.check_verifiable(&request.properties)?;
        let image = self.create(ctx, request).await?;
        self.upload(ctx, image.id, data, progress).await
    }

    /// A signed image can only become active with a key manager: say so
    /// before creating anything (the upload would refuse it anyway).
    fn check_verifiable(&self, properties: &Properties) -> Result<(), Error> {
        if Presence::of(properties) == Presence::Complete && self.uploader.keys.is_none() {
            return Err(Error::NoKeyManager);
        }
        Ok(())
    }
}
