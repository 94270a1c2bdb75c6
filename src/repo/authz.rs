//! The authorization layer (outermost): who may see and who may change an
//! image, by ownership and visibility, as Glance's authorization proxy and
//! database visibility rules.
//!
//! - Reads follow visibility: public and community images are visible to
//!   everyone; private and shared images to their owner and administrators
//!   (portcullis has no image members yet, so "shared" is owner-only). An
//!   image the caller may not see is [`Error::NotFound`], never Forbidden,
//!   so its existence does not leak; a policy refusal on a read is reported
//!   the same way (Glance's `show` does so).
//! - Changes (save, remove, upload) need the owner's project or the admin
//!   role; a visible image the caller may not change is [`Error::Forbidden`].
//! - Only administrators create images for another project, or change owners.
//!
//! It must not evaluate policy rules (the policy layer) or properties.

use super::{Error, ImageRepo, ListQuery, ListScope, UploadAllowance};
use crate::context::RequestContext;
use crate::image::{Image, ImageId, Status, Visibility};

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

fn owns(ctx: &RequestContext, image: &Image) -> bool {
    ctx.project_id.is_some() && image.owner == ctx.project_id
}

/// Whether `ctx` may see `image` at all.
pub fn is_visible(ctx: &RequestContext, image: &Image) -> bool {
    ctx.is_admin()
        || matches!(image.visibility, Visibility::Public | Visibility::Community)
        || owns(ctx, image)
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

impl<R: ImageRepo> AuthzRepo<R> {
    /// The stored image, if `ctx` may change it.
    async fn mutable(
        &self,
        ctx: &RequestContext,
        id: ImageId,
        action: &str,
    ) -> Result<Image, Error> {
        let stored = self.inner.get(ctx, id).await.map_err(hidden(id))?;
        if !is_visible(ctx, &stored) {
            return Err(Error::NotFound { id });
        }
        if !is_mutable(ctx, &stored) {
            let owner = stored.owner.as_deref().unwrap_or("no project");
            return Err(Error::forbidden(
                format!("{action} an image owned by {owner}"),
                Some(id),
            ));
        }
        Ok(stored)
    }
}

impl<R: ImageRepo> ImageRepo for AuthzRepo<R> {
    async fn get(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        let image = self.inner.get(ctx, id).await.map_err(hidden(id))?;
        if is_visible(ctx, &image) {
            Ok(image)
        } else {
            Err(Error::NotFound { id })
        }
    }

    async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> Result<Vec<Image>, Error> {
        let mut scoped = query.clone();
        scoped.scope = if ctx.is_admin() {
            ListScope::Everything
        } else {
            ListScope::VisibleTo {
                project: ctx.project_id.clone(),
            }
        };
        self.inner.list(ctx, &scoped).await
    }

    async fn add(&self, ctx: &RequestContext, image: &Image) -> Result<Image, Error> {
        if !ctx.is_admin() && (ctx.project_id.is_none() || image.owner != ctx.project_id) {
            let owner = image.owner.as_deref().unwrap_or("no project");
            return Err(Error::forbidden(
                format!("create images owned by {owner}"),
                Some(image.id),
            ));
        }
        self.inner.add(ctx, image).await
    }

    async fn save(
        &self,
        ctx: &RequestContext,
        image: &Image,
        from: Option<Status>,
    ) -> Result<Image, Error> {
        let stored = self.mutable(ctx, image.id, "modify").await?;
        if image.owner != stored.owner && !ctx.is_admin() {
            return Err(Error::forbidden(
                "change the owner of an image",
                Some(image.id),
            ));
        }
        self.inner.save(ctx, image, from).await
    }

    async fn remove(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        self.mutable(ctx, id, "delete").await?;
        self.inner.remove(ctx, id).await
    }

    async fn prepare_upload(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> Result<UploadAllowance, Error> {
        // The stored record, not the caller's copy, says whose image it is.
        let stored = self.mutable(ctx, image.id, "upload data to").await?;
        self.inner.prepare_upload(ctx, &stored).await
    }

    async fn prepare_download(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        // Visibility first, on the stored record, so that a refusal further
        // in (a deactivated image) cannot reveal an image the caller may not see.
        let stored = self.inner.get(ctx, id).await.map_err(hidden(id))?;
        if !is_visible(ctx, &stored) {
            return Err(Error::NotFound { id });
        }
        self.inner.prepare_download(ctx, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::test_support::*;

    #[tokio::test]
    async fn reads_follow_visibility_and_hidden_images_are_not_found() {
        let repo = temp_repo().await;
        let authz = AuthzRepo::new(repo.sql.clone());
        let mut ids = Vec::new();
        for visibility in Visibility::ALL {
            let mut image = queued(Some("p1"));
            image.visibility = *visibility;
            ids.push((
                *visibility,
                repo.sql.add(&admin(), &image).await.unwrap().id,
            ));
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
        // when asking for them; the owner sees all four; admin sees all.
        let names = |images: Vec<Image>| {
            let mut v: Vec<Visibility> = images.iter().map(|i| i.visibility).collect();
            v.sort();
            v
        };
        let list = authz.list(&other, &ListQuery::default()).await.unwrap();
        assert_eq!(names(list), [Visibility::Public]);
        let query = ListQuery {
            visibility: Some(crate::repo::VisibilityFilter::Only(Visibility::Community)),
            ..ListQuery::default()
        };
        assert_eq!(
            names(authz.list(&other, &query).await.unwrap()),
            [Visibility::Community]
        );
        let query = ListQuery {
            visibility: Some(crate::repo::VisibilityFilter::Only(Visibility::Private)),
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
            authz
                .list(&admin(), &ListQuery::default())
                .await
                .unwrap()
                .len(),
            4
        );
        // A caller cannot widen its scope by asking for everything.
        let sneaky = ListQuery {
            scope: ListScope::Everything,
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
        assert_eq!(
            authz
                .add(&other, &queued(Some("p1")))
                .await
                .unwrap_err()
                .kind(),
            "forbidden"
        );
        assert_eq!(
            authz.add(&other, &queued(None)).await.unwrap_err().kind(),
            "forbidden"
        );
        let mut public = queued(Some("p1"));
        public.visibility = Visibility::Public;
        let public = authz.add(&admin(), &public).await.unwrap();
        let private = authz.add(&owner, &queued(Some("p1"))).await.unwrap();

        // A visible image the caller does not own: Forbidden; an invisible one: NotFound.
        let mut renamed = public.clone();
        renamed.name = Some("mine now".into());
        let err = authz.save(&other, &renamed, None).await.unwrap_err();
        assert!(err.to_string().contains("owned by p1"), "{err}");
        let mut renamed = private.clone();
        renamed.name = Some("mine now".into());
        assert!(matches!(
            authz.save(&other, &renamed, None).await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            authz.remove(&other, private.id).await,
            Err(Error::NotFound { .. })
        ));
        assert_eq!(
            authz.remove(&other, public.id).await.unwrap_err().kind(),
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
        // Forging the owner in the record changes nothing: the stored owner counts.
        let mut forged = public.clone();
        forged.owner = Some("p2".into());
        assert_eq!(
            authz.save(&other, &forged, None).await.unwrap_err().kind(),
            "forbidden"
        );
        // The owner may change but not give away; an admin may give away.
        assert!(authz.save(&owner, &renamed, None).await.is_ok());
        let mut given = authz.get(&owner, private.id).await.unwrap();
        given.owner = Some("p2".into());
        assert_eq!(
            authz.save(&owner, &given, None).await.unwrap_err().kind(),
            "forbidden"
        );
        assert_eq!(
            authz
                .save(&admin(), &given, None)
                .await
                .unwrap()
                .owner
                .as_deref(),
            Some("p2")
        );
        assert!(authz.prepare_upload(&other, &given).await.is_ok());
        assert!(authz.remove(&other, given.id).await.is_ok());
    }

    #[tokio::test]
    async fn downloads_of_invisible_images_are_not_found() {
        let repo = temp_repo().await;
        let authz = AuthzRepo::new(repo.sql.clone());
        let image = repo.sql.add(&admin(), &queued(Some("p1"))).await.unwrap();
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
}
