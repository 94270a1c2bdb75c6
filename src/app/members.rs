//! Image members (sharing): list, add, show, update status, delete, over
//! the repository's `MemberRepo`.
//!
//! Glance's rules are the repository's (authorization layer): members exist
//! only on `shared` images; only the owner (or an administrator) adds and
//! removes them; only the member itself (or an administrator) accepts or
//! rejects; the owner sees every membership, a member only its own; an
//! image the caller cannot see is not found. This module reads the image
//! once and hands that record to the one member call; it says "not shared"
//! first with its own error ([`Error::NotShared`], whose message Glance
//! words per operation), the repository enforcing it again on the stored
//! record. It must not decide the other rules, nor change the image record.

use crate::context::RequestContext;
use crate::image::{Image, ImageId, Member, MemberStatus, Visibility};
use crate::repo::{ImageRepo, MemberRepo, NewMember};

use super::{App, Error};

impl App {
    /// The memberships of image `id` the caller may see (all for the
    /// owner, only its own for a member).
    ///
    /// Fails with `repo::Error::NotFound` when the image is not visible and
    /// [`Error::NotShared`] when it is not `shared`.
    pub async fn list_members(
        &self,
        ctx: &RequestContext,
        id: ImageId,
    ) -> Result<Vec<Member>, Error> {
        let image = self.shared_image(ctx, id).await?;
        Ok(self.repo().members(ctx, &image).await?)
    }

    /// Shares image `id` with project `member_id` (status `pending`).
    ///
    /// Fails with [`Error::NotShared`], `repo::Error::Forbidden` unless the
    /// caller owns the image (or is an administrator), `MemberExists`,
    /// `MemberLimit` past `image_member_quota`, `InvalidMember` for an
    /// empty or over-long id, `NotFound` when the image is not visible.
    pub async fn add_member(
        &self,
        ctx: &RequestContext,
        id: ImageId,
        member_id: &str,
    ) -> Result<Member, Error> {
        let image = self.shared_image(ctx, id).await?;
        Ok(self
            .repo()
            .add_member(ctx, &NewMember::new(image, member_id))
            .await?)
    }

    /// The membership of `member_id` in image `id`.
    ///
    /// Fails with `repo::Error::MemberNotFound` when there is none or the
    /// caller may not see it, [`Error::NotShared`], `NotFound` when the
    /// image is not visible.
    pub async fn show_member(
        &self,
        ctx: &RequestContext,
        id: ImageId,
        member_id: &str,
    ) -> Result<Member, Error> {
        let image = self.shared_image(ctx, id).await?;
        Ok(self.repo().member(ctx, &image, member_id).await?)
    }

    /// Sets the membership's status: the member's answer.
    ///
    /// Fails with `repo::Error::Forbidden` when the caller is not the member
    /// (the owner cannot answer for it), [`Error::NotShared`],
    /// `MemberNotFound` when the caller cannot see that membership.
    pub async fn update_member(
        &self,
        ctx: &RequestContext,
        id: ImageId,
        member_id: &str,
        status: MemberStatus,
    ) -> Result<Member, Error> {
        let image = self.shared_image(ctx, id).await?;
        Ok(self
            .repo()
            .update_member(ctx, &image, member_id, status)
            .await?)
    }

    /// Ends the membership of `member_id`; returns it as it was.
    ///
    /// Fails with `repo::Error::Forbidden` unless the caller owns the image
    /// (a member cannot remove itself, as in Glance), [`Error::NotShared`],
    /// `MemberNotFound` when there is no such membership the caller can see.
    pub async fn delete_member(
        &self,
        ctx: &RequestContext,
        id: ImageId,
        member_id: &str,
    ) -> Result<Member, Error> {
        let image = self.shared_image(ctx, id).await?;
        Ok(self.repo().remove_member(ctx, &image, member_id).await?)
    }

    /// The image `id` as the caller sees it, if it is `shared`.
    ///
    /// Fails with `repo::Error::NotFound` when it is not visible and
    /// [`Error::NotShared`] when it is not `shared`.
    async fn shared_image(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        let image = self.repo().get(ctx, id).await?;
        if image.visibility == Visibility::Shared {
            Ok(image)
        } else {
            Err(Error::NotShared {
                id,
                visibility: image.visibility,
            })
        }
    }
}
