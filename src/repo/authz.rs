//! The authorization layer (outermost): who may see and who may change an
//! image and its members, by ownership, visibility and membership, as
//! Glance's visibility rules (glance/db/utils.py `is_image_visible`, the
//! member queries of glance/db/sqlalchemy/api.py) and its member API.
//!
//! - Reads follow visibility: public and community images are visible to
//!   everyone; private images to their owner and administrators; shared
//!   images also to every project that is a member, whatever the member's
//!   status. An image the caller may not see is [`Error::NotFound`], never
//!   Forbidden, so its existence does not leak; a policy refusal on a read
//!   is reported the same way (Glance's `show` does so).
//! - Listing: the scope (what may be listed at all) is chosen here; a
//!   member's shared images are listed by `member_status` (default
//!   `accepted`), see [`super::ListScope`].
//! - Changes (save, remove, upload) need the owner's project or the admin
//!   role; a visible image the caller may not change is [`Error::Forbidden`].
//!   Only administrators create images for another project, or change owners.
//! - Members exist only on `shared` images. The owner (or an administrator)
//!   adds and removes them; only the member itself (or an administrator)
//!   accepts or rejects; the owner sees every membership, a member only its
//!   own (another project's membership is [`Error::MemberNotFound`]).
//!
//! As the outermost layer it is also the one that reads a write's record:
//! it loads the stored record once, refuses a stale read with
//! [`Error::Conflict`] (an upload's commit or rollback is re-applied to the
//! newer record instead), and hands the stored record down in the change.
//!
//! It must not evaluate policy rules (the policy layer) or properties.

use super::change::require_current;
use super::{
    Change, Error, ImageRepo, ListQuery, ListScope, MemberRepo, NewImage, NewMember,
    UploadAllowance, delegate_stored,
};
use crate::context::RequestContext;
use crate::image::{Image, ImageId, Member, MemberStatus, Visibility};

/// How often an upload's commit or rollback is re-applied to a newer record
/// (someone edited the image meanwhile) before its conflict is reported.
const REBASE_ATTEMPTS: usize = 3;

/// The authorization layer.
#[derive(Debug, Clone)]
pub struct AuthzRepo<R> {
    inner: R,
}

impl<R> AuthzRepo<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> AuthzRepo<R> {
        AuthzRepo { inner }
    }

    /// The wrapped repository.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

delegate_stored!(AuthzRepo);

fn owns(ctx: &RequestContext, image: &Image) -> bool {
    ctx.project_id.is_some() && image.owner == ctx.project_id
}

/// Whether `ctx` may see `image`, given the caller's `membership` of it (any
/// status counts: a pending or rejected member still sees the image by id).
pub fn is_visible(ctx: &RequestContext, image: &Image, membership: Option<&Member>) -> bool {
    ctx.is_admin()
        || matches!(image.visibility, Visibility::Public | Visibility::Community)
        || owns(ctx, image)
        || (image.visibility == Visibility::Shared
            && membership.is_some_and(|member| Some(&member.member_id) == ctx.project_id.as_ref()))
}

/// Whether `ctx` may change `image`.
pub fn is_mutable(ctx: &RequestContext, image: &Image) -> bool {
    ctx.is_admin() || owns(ctx, image)
}

/// Reads hide what the caller may not see: Forbidden becomes NotFound.
fn hidden(id: ImageId) -> impl FnOnce(Error) -> Error {
    move |err| match err {
        Error::Forbidden { .. } => Error::NotFound { id },
        other => other,
    }
}

fn owner_of(image: &Image) -> &str {
    image.owner.as_deref().unwrap_or("no project")
}

impl<R: ImageRepo> AuthzRepo<R> {
    /// Whether `ctx` may see `image` (looking up its membership only when
    /// that decides).
    async fn visible(&self, ctx: &RequestContext, image: &Image) -> Result<bool, Error> {
        if is_visible(ctx, image, None) {
            return Ok(true);
        }
        match (&ctx.project_id, image.visibility) {
            (Some(project), Visibility::Shared) => {
                let membership = self.inner.membership(image.id, project).await?;
                Ok(is_visible(ctx, image, membership.as_ref()))
            }
            _ => Ok(false),
        }
    }

    /// The stored record of image `id`, the one read of a write, if `ctx`
    /// may see it ([`Error::NotFound`] otherwise).
    async fn load_visible(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        let stored = self.inner.load(id).await?;
        if self.visible(ctx, &stored).await? {
            Ok(stored)
        } else {
            Err(Error::NotFound { id })
        }
    }

    /// Fails with [`Error::Forbidden`] unless `ctx` may change `stored`.
    fn require_mutable(ctx: &RequestContext, stored: &Image, action: &str) -> Result<(), Error> {
        if is_mutable(ctx, stored) {
            Ok(())
        } else {
            Err(Error::forbidden(
                format!("{action} an image owned by {}", owner_of(stored)),
                Some(stored.id),
            ))
        }
    }

    /// The stored record for a member operation: visible, and `shared`
    /// (else `not_shared`, which show turns into not found as Glance does).
    async fn shared(
        &self,
        ctx: &RequestContext,
        image: &Image,
        not_shared: impl FnOnce(&Image) -> Error,
    ) -> Result<Image, Error> {
        let stored = self.load_visible(ctx, image.id).await?;
        if stored.visibility == Visibility::Shared {
            Ok(stored)
        } else {
            Err(not_shared(&stored))
        }
    }
}

/// Whether `ctx` may see the membership of `member_id` in `image`: the
/// owner and administrators see all, a member only its own.
fn sees_membership(ctx: &RequestContext, image: &Image, member_id: &str) -> bool {
    is_mutable(ctx, image) || ctx.project_id.as_deref() == Some(member_id)
}

fn not_shared(action: &'static str) -> impl FnOnce(&Image) -> Error {
    move |image| {
        Error::forbidden(
            format!(
                "{action} of an image that is {} (only shared images have members)",
                image.visibility
            ),
            Some(image.id),
        )
    }
}

impl<R: ImageRepo> ImageRepo for AuthzRepo<R> {
    async fn get(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        let image = self.inner.get(ctx, id).await.map_err(hidden(id))?;
        if self.visible(ctx, &image).await? {
            Ok(image)
        } else {
            Err(Error::NotFound { id })
        }
    }

    async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> Result<Vec<Image>, Error> {
        let mut scoped = query.clone();
        let project = ctx.project_id.clone();
        scoped.scope = if ctx.is_admin() {
            ListScope::Everything { project }
        } else {
            ListScope::VisibleTo { project }
        };
        self.inner.list(ctx, &scoped).await
    }

    async fn add(&self, ctx: &RequestContext, new: &NewImage) -> Result<Image, Error> {
        let image = &new.image;
        if !ctx.is_admin() && (ctx.project_id.is_none() || image.owner != ctx.project_id) {
            return Err(Error::forbidden(
                format!("create images owned by {}", owner_of(image)),
                Some(image.id),
            ));
        }
        self.inner.add(ctx, new).await
    }

    async fn save(&self, ctx: &RequestContext, change: &Change) -> Result<Image, Error> {
        let mut attempt = 1;
        loop {
            // The one read of this write.
            let stored = self.load_visible(ctx, change.id()).await?;
            Self::require_mutable(ctx, &stored, "modify")?;
            let rebase = change.kind.rebases() && stored.status == change.before.status;
            if !rebase {
                require_current(&stored, &change.before)?;
            }
            let fresh = change.on(stored);
            if fresh.after.owner != fresh.before.owner && !ctx.is_admin() {
                return Err(Error::forbidden(
                    "change the owner of an image",
                    Some(fresh.id()),
                ));
            }
            match self.inner.save(ctx, &fresh).await {
                Err(Error::Conflict { .. }) if rebase && attempt < REBASE_ATTEMPTS => {
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn remove(&self, ctx: &RequestContext, image: &Image) -> Result<Image, Error> {
        let stored = self.load_visible(ctx, image.id).await?;
        require_current(&stored, image)?;
        Self::require_mutable(ctx, &stored, "delete")?;
        self.inner.remove(ctx, &stored).await
    }

    async fn prepare_upload(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> Result<UploadAllowance, Error> {
        // The stored record, not the caller's copy, says whose image it is,
        // and a read another upload overtook is a conflict, not a wrong state.
        let stored = self.load_visible(ctx, image.id).await?;
        require_current(&stored, image)?;
        Self::require_mutable(ctx, &stored, "upload data to")?;
        self.inner.prepare_upload(ctx, &stored).await
    }

    async fn prepare_download(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        // Visibility first, on the stored record, so that a refusal further
        // in (a deactivated image) cannot reveal an image the caller may not see.
        self.load_visible(ctx, id).await?;
        self.inner.prepare_download(ctx, id).await
    }
}

impl<R: MemberRepo> MemberRepo for AuthzRepo<R> {
    async fn members(&self, ctx: &RequestContext, image: &Image) -> Result<Vec<Member>, Error> {
        let stored = self
            .shared(ctx, image, not_shared("list the members"))
            .await?;
        let mut members = self.inner.members(ctx, &stored).await?;
        members.retain(|member| sees_membership(ctx, &stored, &member.member_id));
        Ok(members)
    }

    async fn member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
    ) -> Result<Member, Error> {
        let not_found = |image: &Image| Error::MemberNotFound {
            id: image.id,
            member_id: member_id.to_owned(),
        };
        let stored = self.shared(ctx, image, not_found).await?;
        if !sees_membership(ctx, &stored, member_id) {
            return Err(not_found(&stored));
        }
        self.inner.member(ctx, &stored, member_id).await
    }

    async fn add_member(&self, ctx: &RequestContext, new: &NewMember) -> Result<Member, Error> {
        let stored = self
            .shared(ctx, &new.image, not_shared("add members"))
            .await?;
        Self::require_mutable(ctx, &stored, "add members to")?;
        let new = NewMember {
            image: stored,
            ..new.clone()
        };
        self.inner.add_member(ctx, &new).await
    }

    async fn update_member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
        status: MemberStatus,
    ) -> Result<Member, Error> {
        let stored = self
            .shared(ctx, image, not_shared("change a member"))
            .await?;
        if !sees_membership(ctx, &stored, member_id) {
            return Err(Error::MemberNotFound {
                id: stored.id,
                member_id: member_id.to_owned(),
            });
        }
        if !ctx.is_admin() && ctx.project_id.as_deref() != Some(member_id) {
            return Err(Error::forbidden(
                format!(
                    "set the status of project {member_id}'s membership (only the member itself accepts or rejects an image)"
                ),
                Some(stored.id),
            ));
        }
        self.inner
            .update_member(ctx, &stored, member_id, status)
            .await
    }

    async fn remove_member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
    ) -> Result<Member, Error> {
        let stored = self
            .shared(ctx, image, not_shared("remove a member"))
            .await?;
        if !sees_membership(ctx, &stored, member_id) {
            return Err(Error::MemberNotFound {
                id: stored.id,
                member_id: member_id.to_owned(),
            });
        }
        Self::require_mutable(ctx, &stored, "remove members of")?;
        self.inner.remove_member(ctx, &stored, member_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Status;
    use crate::repo::test_support::*;
    use crate::repo::{MemberStatusFilter, VisibilityFilter};

    fn names(images: Vec<Image>) -> Vec<Visibility> {
        let mut v: Vec<Visibility> = images.iter().map(|i| i.visibility).collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn reads_follow_visibility_and_hidden_images_are_not_found() {
        let repo = temp_repo().await;
        let authz = AuthzRepo::new(repo.sql.clone());
        let mut ids = Vec::new();
        for visibility in Visibility::ALL {
            let mut image = queued(Some("p1"));
            image.visibility = *visibility;
            ids.push((*visibility, added(&repo.sql, image).await.id));
        }
        let owner = member("p1");
        let other = member("p2");
        for (visibility, id) in &ids {
            assert!(authz.get(&owner, *id).await.is_ok());
            assert!(authz.get(&admin(), *id).await.is_ok());
            let seen = authz.get(&other, *id).await;
            match visibility {
                Visibility::Public | Visibility::Community => assert!(seen.is_ok()),
                Visibility::Private | Visibility::Shared => {
                    assert!(
                        matches!(seen, Err(Error::NotFound { .. })),
                        "{visibility}: {seen:?}"
                    )
                }
            }
        }
        // Listing: other projects see public images, and community ones only
        // when asking for them; the owner sees all four; an admin sees all
        // but other projects' community images by default (as Glance).
        let list = authz.list(&other, &ListQuery::default()).await.unwrap();
        assert_eq!(names(list), [Visibility::Public]);
        let query = ListQuery {
            visibility: Some(VisibilityFilter::Only(Visibility::Community)),
            ..ListQuery::default()
        };
        assert_eq!(
            names(authz.list(&other, &query).await.unwrap()),
            [Visibility::Community]
        );
        let query = ListQuery {
            visibility: Some(VisibilityFilter::Only(Visibility::Private)),
            ..ListQuery::default()
        };
        assert!(authz.list(&other, &query).await.unwrap().is_empty());
        assert_eq!(
            authz
                .list(&owner, &ListQuery::default())
                .await
                .unwrap()
                .len(),
            4
        );
        assert_eq!(
            names(authz.list(&admin(), &ListQuery::default()).await.unwrap()),
            [Visibility::Public, Visibility::Private, Visibility::Shared]
        );
        let all = ListQuery {
            visibility: Some(VisibilityFilter::All),
            ..ListQuery::default()
        };
        assert_eq!(authz.list(&admin(), &all).await.unwrap().len(), 4);
        // A caller cannot widen its scope by asking for everything.
        let sneaky = ListQuery {
            scope: ListScope::Everything { project: None },
            ..ListQuery::default()
        };
        assert_eq!(authz.list(&other, &sneaky).await.unwrap().len(), 1);
        // A marker the caller cannot see is refused like an unknown one.
        let private = ids
            .iter()
            .find(|(v, _)| *v == Visibility::Private)
            .unwrap()
            .1;
        let query = ListQuery {
            marker: Some(private),
            ..ListQuery::default()
        };
        assert!(matches!(
            authz.list(&other, &query).await,
            Err(Error::MarkerNotFound { .. })
        ));
    }

    #[tokio::test]
    async fn only_the_owner_or_an_admin_changes_an_image() {
        let repo = temp_repo().await;
        let authz = AuthzRepo::new(repo.sql.clone());
        let owner = member("p1");
        let other = member("p2");

        // Creating for another project: admins only.
        for image in [queued(Some("p1")), queued(None)] {
            assert_eq!(
                authz
                    .add(&other, &NewImage::new(image))
                    .await
                    .unwrap_err()
                    .kind(),
                "forbidden"
            );
        }
        let mut public = queued(Some("p1"));
        public.visibility = Visibility::Public;
        let public = authz.add(&admin(), &public.into()).await.unwrap();
        let private = authz.add(&owner, &queued(Some("p1")).into()).await.unwrap();

        // A visible image the caller does not own: Forbidden; an invisible one: NotFound.
        let rename = |image: &Image| {
            let mut renamed = image.clone();
            renamed.name = Some("mine now".into());
            Change::update(image.clone(), renamed)
        };
        let err = authz.save(&other, &rename(&public)).await.unwrap_err();
        assert!(err.to_string().contains("owned by p1"), "{err}");
        assert!(matches!(
            authz.save(&other, &rename(&private)).await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            authz.remove(&other, &private).await,
            Err(Error::NotFound { .. })
        ));
        assert_eq!(
            authz.remove(&other, &public).await.unwrap_err().kind(),
            "forbidden"
        );
        assert_eq!(
            authz
                .prepare_upload(&other, &public)
                .await
                .unwrap_err()
                .kind(),
            "forbidden"
        );
        // Forging the owner in the caller's copy changes nothing: the stored owner counts.
        let mut forged = public.clone();
        forged.owner = Some("p2".into());
        assert_eq!(
            authz
                .save(&other, &Change::update(forged.clone(), forged))
                .await
                .unwrap_err()
                .kind(),
            "forbidden"
        );
        // The owner may change but not give away; an admin may give away.
        let renamed = authz.save(&owner, &rename(&private)).await.unwrap();
        let mut given = renamed.clone();
        given.owner = Some("p2".into());
        let give = Change::update(renamed.clone(), given);
        assert_eq!(
            authz.save(&owner, &give).await.unwrap_err().kind(),
            "forbidden"
        );
        let given = authz.save(&admin(), &give).await.unwrap();
        assert_eq!(given.owner.as_deref(), Some("p2"));
        assert!(authz.prepare_upload(&other, &given).await.is_ok());
        assert!(authz.remove(&other, &given).await.is_ok());
    }

    #[tokio::test]
    async fn a_write_computed_from_a_stale_read_is_a_conflict() {
        let repo = temp_repo().await;
        let authz = AuthzRepo::new(repo.sql.clone());
        let owner = member("p1");
        let read = authz.add(&owner, &queued(Some("p1")).into()).await.unwrap();
        // Someone else renames it after our read.
        let mut theirs = read.clone();
        theirs.name = Some("theirs".into());
        let theirs = authz
            .save(&owner, &Change::update(read.clone(), theirs))
            .await
            .unwrap();
        // Our edit, computed from the old read, writes nothing.
        let mut ours = read.clone();
        ours.min_ram = 512;
        let err = authz
            .save(&owner, &Change::update(read.clone(), ours))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err}");
        assert_eq!(authz.get(&owner, read.id).await.unwrap(), theirs);
        // So are a delete, an upload's preparation and its claim.
        for err in [
            authz.remove(&owner, &read).await.unwrap_err(),
            authz.prepare_upload(&owner, &read).await.unwrap_err(),
            authz
                .save(&owner, &Change::claim_upload(read.clone()))
                .await
                .unwrap_err(),
        ] {
            assert_eq!(err.kind(), "conflict", "{err}");
        }
        // An upload's commit is re-applied to the renamed record instead:
        // the upload owns the saving status and its inputs are frozen.
        let saving = authz
            .save(&owner, &Change::claim_upload(theirs))
            .await
            .unwrap();
        let mut renamed = saving.clone();
        renamed.name = Some("renamed while uploading".into());
        let renamed = authz
            .save(&owner, &Change::update(saving.clone(), renamed))
            .await
            .unwrap();
        let active = authz
            .save(
                &owner,
                &Change::commit_upload(saving, uploaded(read.id, 10)),
            )
            .await
            .unwrap();
        assert_eq!(active.status, Status::Active);
        assert_eq!(active.name, renamed.name);
        assert_eq!(active.size, Some(10));
    }

    #[tokio::test]
    async fn downloads_of_invisible_images_are_not_found() {
        let repo = temp_repo().await;
        let authz = AuthzRepo::new(repo.sql.clone());
        let image = added(&repo.sql, queued(Some("p1"))).await;
        assert!(matches!(
            authz.prepare_download(&member("p2"), image.id).await,
            Err(Error::NotFound { .. })
        ));
        assert!(
            authz
                .prepare_download(&member("p1"), image.id)
                .await
                .is_ok()
        );
    }

    /// Each rule as the real Glance 33 answered it (secure-RBAC defaults,
    /// projects from headers): see README, Image members.
    #[tokio::test]
    async fn members_follow_glance() {
        let repo = temp_repo().await;
        let authz = AuthzRepo::new(repo.sql.clone());
        let (p1, p2, p3, p9) = (member("p1"), member("p2"), member("p3"), member("p9"));
        let mut shared = queued(Some("p1"));
        shared.visibility = Visibility::Shared;
        let shared = added(&repo.sql, shared).await;
        let mut private = queued(Some("p1"));
        private.visibility = Visibility::Private;
        let private = added(&repo.sql, private).await;
        let kind =
            |result: Result<Member, Error>| result.map(|m| m.member_id).map_err(|e| e.kind());

        // Before: p2 cannot see the shared image.
        assert_eq!(
            authz.get(&p2, shared.id).await.unwrap_err().kind(),
            "not_found"
        );
        assert_eq!(
            authz.members(&p2, &shared).await.unwrap_err().kind(),
            "not_found"
        );
        // The owner adds p2 and p3; only shared images have members.
        for project in ["p2", "p3"] {
            let added = authz
                .add_member(&p1, &NewMember::new(shared.clone(), project))
                .await
                .unwrap();
            assert_eq!(added.status, MemberStatus::Pending);
        }
        assert_eq!(
            kind(
                authz
                    .add_member(&p1, &NewMember::new(shared.clone(), "p2"))
                    .await
            ),
            Err("member_exists")
        );
        assert_eq!(
            kind(
                authz
                    .add_member(&p1, &NewMember::new(private.clone(), "p2"))
                    .await
            ),
            Err("forbidden")
        );
        assert_eq!(
            authz.members(&p1, &private).await.unwrap_err().kind(),
            "forbidden"
        );
        assert_eq!(
            kind(authz.member(&p1, &private, "p2").await),
            Err("member_not_found")
        );
        // A pending member sees the image by id, not in its default list.
        assert!(authz.get(&p2, shared.id).await.is_ok());
        assert!(
            authz
                .list(&p2, &ListQuery::default())
                .await
                .unwrap()
                .is_empty()
        );
        let pending = ListQuery {
            member_status: MemberStatusFilter::Only(MemberStatus::Pending),
            ..ListQuery::default()
        };
        assert_eq!(authz.list(&p2, &pending).await.unwrap().len(), 1);
        // A member sees only its own membership; the owner sees all.
        let ids =
            |members: Vec<Member>| members.into_iter().map(|m| m.member_id).collect::<Vec<_>>();
        assert_eq!(ids(authz.members(&p2, &shared).await.unwrap()), ["p2"]);
        assert_eq!(
            ids(authz.members(&p1, &shared).await.unwrap()),
            ["p2", "p3"]
        );
        assert_eq!(
            kind(authz.member(&p2, &shared, "p3").await),
            Err("member_not_found")
        );
        assert_eq!(
            kind(authz.member(&p2, &shared, "p2").await),
            Ok("p2".into())
        );
        assert_eq!(
            kind(authz.member(&p9, &shared, "p2").await),
            Err("not_found")
        );
        // Only the member itself answers.
        let accept = |ctx: &RequestContext, who: &str| {
            let (authz, shared, ctx, who) = (&authz, &shared, ctx.clone(), who.to_owned());
            async move {
                kind(
                    authz
                        .update_member(&ctx, shared, &who, MemberStatus::Accepted)
                        .await,
                )
            }
        };
        assert_eq!(accept(&p1, "p2").await, Err("forbidden"));
        assert_eq!(accept(&p3, "p2").await, Err("member_not_found"));
        assert_eq!(accept(&p9, "p2").await, Err("not_found"));
        assert_eq!(accept(&p2, "p2").await, Ok("p2".into()));
        assert_eq!(
            authz.list(&p2, &ListQuery::default()).await.unwrap().len(),
            1
        );
        let shared_only = ListQuery {
            visibility: Some(VisibilityFilter::Only(Visibility::Shared)),
            ..ListQuery::default()
        };
        assert_eq!(authz.list(&p2, &shared_only).await.unwrap().len(), 1);
        // Only the owner removes: not the member itself, not another member.
        assert_eq!(
            kind(authz.remove_member(&p2, &shared, "p2").await),
            Err("forbidden")
        );
        assert_eq!(
            kind(authz.remove_member(&p2, &shared, "p3").await),
            Err("member_not_found")
        );
        assert_eq!(
            kind(
                authz
                    .add_member(&p2, &NewMember::new(shared.clone(), "p4"))
                    .await
            ),
            Err("forbidden")
        );
        assert_eq!(
            kind(authz.remove_member(&p1, &shared, "p3").await),
            Ok("p3".into())
        );
        assert_eq!(
            kind(authz.remove_member(&p1, &shared, "p3").await),
            Err("member_not_found")
        );
        // Administrators do everything.
        assert_eq!(
            kind(
                authz
                    .update_member(&admin(), &shared, "p2", MemberStatus::Rejected)
                    .await
            ),
            Ok("p2".into())
        );
        // A rejected member still sees the image by id; it leaves the default list.
        assert!(authz.get(&p2, shared.id).await.is_ok());
        assert!(
            authz
                .list(&p2, &ListQuery::default())
                .await
                .unwrap()
                .is_empty()
        );
        // Once the image is no longer shared, the membership shows nothing.
        let mut unshared = authz.get(&p1, shared.id).await.unwrap();
        unshared.visibility = Visibility::Private;
        let read = authz.get(&p1, shared.id).await.unwrap();
        authz
            .save(&p1, &Change::update(read, unshared))
            .await
            .unwrap();
        assert_eq!(
            authz.get(&p2, shared.id).await.unwrap_err().kind(),
            "not_found"
        );
    }
}
