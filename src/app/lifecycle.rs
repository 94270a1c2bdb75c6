//! Deactivate and reactivate, with Glance's semantics and messages that say
//! what state the image is in and what is allowed.
//!
//! As Glance's domain model: deactivate takes `active` → `deactivated` and
//! is a no-op on an image that already is `deactivated`; reactivate takes
//! `deactivated` → `active` and is a no-op on an `active` image; any other
//! status is refused (Glance: 403 "Not allowed to deactivate image in
//! status 'queued'"). The change is a compare-and-swap on the status read;
//! when another request changed it in between, the decision is taken again
//! on the new status, so a concurrent double deactivate ends as "already
//! deactivated", never as a conflict.
//!
//! Invariant (ARCHITECTURE.md): `reactivate` is the only code besides
//! `ingest::commit` that writes `Status::Active`, and only to restore a
//! `deactivated` image whose record still has the data an upload verified
//! (size, checksum, os_hash, a location). This module must not touch data.

use std::fmt;

use crate::context::RequestContext;
use crate::image::{Image, ImageId, Status};
use crate::repo::{self, ImageRepo};

use super::{App, Error};

/// A status change a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusAction {
    /// `active` → `deactivated`.
    Deactivate,
    /// `deactivated` → `active`.
    Reactivate,
}

impl StatusAction {
    /// What the action allows, for messages.
    pub(super) fn allowed(self) -> &'static str {
        match self {
            StatusAction::Deactivate => {
                "only an active image can be deactivated (upload its data first; a deactivated image stays as it is)"
            }
            StatusAction::Reactivate => {
                "only a deactivated image can be reactivated (an active image stays as it is)"
            }
        }
    }

    /// The status the action leads to.
    fn target(self) -> Status {
        match self {
            StatusAction::Deactivate => Status::Deactivated,
            StatusAction::Reactivate => Status::Active,
        }
    }

    /// The status the action starts from.
    fn source(self) -> Status {
        match self {
            StatusAction::Deactivate => Status::Active,
            StatusAction::Reactivate => Status::Deactivated,
        }
    }
}

impl fmt::Display for StatusAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StatusAction::Deactivate => "deactivate",
            StatusAction::Reactivate => "reactivate",
        })
    }
}

/// Compare-and-swap attempts before giving up on a status that keeps changing.
const ATTEMPTS: usize = 3;

impl App {
    /// Makes an active image's data unavailable for download (except to
    /// administrators) until reactivated; a deactivated image is returned
    /// as it is.
    ///
    /// Fails with [`Error::StatusNotAllowed`] for any other status, and
    /// with the repository's refusals (`not_found`, `forbidden`).
    pub async fn deactivate(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        self.change_status(ctx, id, StatusAction::Deactivate).await
    }

    /// Makes a deactivated image active again; an active image is returned
    /// as it is.
    ///
    /// Fails with [`Error::StatusNotAllowed`] for any other status,
    /// [`Error::NoVerifiedData`] when the record lacks what its upload
    /// verified, and with the repository's refusals.
    pub async fn reactivate(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        self.change_status(ctx, id, StatusAction::Reactivate).await
    }

    async fn change_status(
        &self,
        ctx: &RequestContext,
        id: ImageId,
        action: StatusAction,
    ) -> Result<Image, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let image = self.repo().get(ctx, id).await?;
            let Some(changed) = transition(&image, action)? else {
                return Ok(image);
            };
            match self.store_change(ctx, &image, changed).await {
                // Another request changed the status in between: decide again.
                Err(Error::Repo(repo::Error::Conflict { .. })) if attempt < ATTEMPTS => continue,
                result => return result,
            }
        }
    }
}

/// The image after `action`, `None` when it is already there, or why not.
fn transition(image: &Image, action: StatusAction) -> Result<Option<Image>, Error> {
    if image.status == action.target() {
        return Ok(None);
    }
    if image.status != action.source() {
        return Err(Error::StatusNotAllowed {
            id: image.id,
            action,
            status: image.status,
        });
    }
    if action == StatusAction::Reactivate && !has_verified_data(image) {
        return Err(Error::NoVerifiedData { id: image.id });
    }
    let mut changed = image.clone();
    changed.status = action.target();
    Ok(Some(changed))
}

/// Whether the record carries what an upload's commit wrote after the data
/// was verified: the only images that may be `active`.
fn has_verified_data(image: &Image) -> bool {
    image.size.is_some()
        && image.checksum.is_some()
        && image.os_hash_algo.is_some()
        && image.os_hash_value.is_some()
        && !image.locations.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Location;

    fn image(status: Status, with_data: bool) -> Image {
        let at = crate::clock::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let mut image = Image::new_queued(ImageId::new_random(), None, at);
        image.status = status;
        if with_data {
            image.size = Some(3);
            image.checksum = Some("c".into());
            image.os_hash_algo = Some("sha512".into());
            image.os_hash_value = Some("h".into());
            image.locations.push(Location {
                url: "file:///x".into(),
                metadata: Default::default(),
            });
        }
        image
    }

    #[test]
    fn status_changes_follow_glance() {
        use StatusAction::{Deactivate, Reactivate};
        /// (status, action, expected: Ok(Some(new status)) / Ok(None) no-op / Err(kind))
        type Case = (Status, StatusAction, Result<Option<Status>, &'static str>);
        let cases: &[Case] = &[
            (Status::Active, Deactivate, Ok(Some(Status::Deactivated))),
            (Status::Deactivated, Deactivate, Ok(None)),
            (Status::Queued, Deactivate, Err("status_not_allowed")),
            (Status::Saving, Deactivate, Err("status_not_allowed")),
            (Status::Deactivated, Reactivate, Ok(Some(Status::Active))),
            (Status::Active, Reactivate, Ok(None)),
            (Status::Queued, Reactivate, Err("status_not_allowed")),
            (Status::Saving, Reactivate, Err("status_not_allowed")),
        ];
        for (status, action, expect) in cases {
            let got = transition(&image(*status, true), *action)
                .map(|image| image.map(|image| image.status))
                .map_err(|err| err.kind());
            assert_eq!(got, *expect, "{action} {status}");
        }
        let err = transition(&image(Status::Queued, false), Deactivate).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("is queued"), "{message}");
        assert!(
            message.contains("only an active image can be deactivated"),
            "{message}"
        );
        assert!(!message.contains("read-only"), "{message}");
    }

    #[test]
    fn reactivate_needs_the_data_an_upload_verified() {
        let err =
            transition(&image(Status::Deactivated, false), StatusAction::Reactivate).unwrap_err();
        assert_eq!(err.kind(), "no_verified_data");
        assert!(err.is_rejection());
    }
}
