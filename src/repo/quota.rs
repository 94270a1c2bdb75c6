//! The quota layer: per-project limits, as Glance's unified limits
//! (`image_count_total`, `image_size_total` in MiB, `image_count_uploading`),
//! configured per project with a default, and Glance's per-image
//! `image_member_quota`.
//!
//! It decides which limits a write must respect and attaches them to it as
//! [`QuotaCheck`]s; the SQL backend evaluates them inside the transaction
//! that records the write, after locking the project (SQLite: the write
//! transaction excludes every other writer; PostgreSQL: the project's row
//! `FOR UPDATE`), so two processes, or two nodes, cannot both pass a limit:
//! - creating an image (and an administrator giving one to another
//!   project): `image_count_total` (and the image's size against
//!   `image_size_total`);
//! - an upload's claim (`queued → saving`): `image_count_uploading`, and no
//!   room left in `image_size_total` means no upload;
//! - an upload's commit (`saving → active`): `image_size_total` with the
//!   real size, so parallel uploads of one project cannot together pass it;
//! - adding a member: `image_member_quota` members per image.
//!
//! [`ImageRepo::prepare_upload`] also returns the bytes the owner has left,
//! read outside any transaction: an early stop for ingest, not the guarantee
//! (the commit's check is). Images without an owner count against nobody.
//! It must not decide who may do what (authorization, policy).

use super::options::{EffectiveLimits, Limit, QuotaOptions};
use super::sql::SqlRepo;
use super::{
    Change, ChangeKind, Error, ImageRepo, ListQuery, MemberRepo, NewImage, NewMember, QuotaCheck,
    QuotaResource, UploadAllowance, delegate_stored,
};
use crate::context::RequestContext;
use crate::image::{Image, ImageId, Member, MemberStatus};

const MIB: u64 = 1024 * 1024;

/// Glance's default `image_member_quota`.
pub const DEFAULT_IMAGE_MEMBER_QUOTA: u64 = 128;

/// The quota layer.
#[derive(Debug, Clone)]
pub struct QuotaRepo<R> {
    inner: R,
    options: QuotaOptions,
    usage: SqlRepo,
}

impl<R> QuotaRepo<R> {
    /// Wraps `inner`, enforcing `options`; `usage` answers "how much does
    /// this project use" for upload allowances (the same database the stack
    /// ends in).
    pub fn new(inner: R, options: QuotaOptions, usage: SqlRepo) -> QuotaRepo<R> {
        QuotaRepo {
            inner,
            options,
            usage,
        }
    }

    /// The wrapped repository.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// A check of `resource` for `project`, unless its limit is unlimited.
    fn check(&self, project: &str, resource: QuotaResource, requested: u64) -> Option<QuotaCheck> {
        let limits = self.options.limits_for(project);
        match limit_of(&limits, resource) {
            Limit::Max(limit) => Some(QuotaCheck::Project {
                project: project.to_owned(),
                resource,
                limit,
                requested,
            }),
            Limit::Unlimited => None,
        }
    }

    /// The checks a change needs.
    fn checks_for(&self, change: &Change) -> Vec<QuotaCheck> {
        let Some(project) = change.after.owner.as_deref() else {
            return Vec::new();
        };
        let wanted: Vec<(QuotaResource, u64)> = match change.kind {
            // prepare_upload checked these too, but another upload of the
            // project may have started since: the limits hold here.
            ChangeKind::ClaimUpload | ChangeKind::Stage => vec![
                (QuotaResource::ImageCountUploading, 1),
                (QuotaResource::ImageSizeTotal, 0),
            ],
            // The stored record of an image being committed has no size
            // yet, so the usage leaves it out; the real size is requested.
            ChangeKind::CommitUpload => vec![(
                QuotaResource::ImageSizeTotal,
                change.after.size.unwrap_or(0),
            )],
            // An image changing hands brings its count and stored size along.
            ChangeKind::Update if change.after.owner != change.before.owner => vec![
                (QuotaResource::ImageCountTotal, 1),
                (
                    QuotaResource::ImageSizeTotal,
                    change.before.size.unwrap_or(0),
                ),
            ],
            ChangeKind::Update
            | ChangeKind::RollbackUpload
            | ChangeKind::Deactivate
            | ChangeKind::Reactivate
            | ChangeKind::Unstage => Vec::new(),
        };
        wanted
            .into_iter()
            .filter_map(|(resource, requested)| self.check(project, resource, requested))
            .collect()
    }
}

delegate_stored!(QuotaRepo);

fn limit_of(limits: &EffectiveLimits, resource: QuotaResource) -> Limit {
    match resource {
        QuotaResource::ImageCountTotal => limits.image_count_total,
        QuotaResource::ImageCountUploading => limits.image_count_uploading,
        QuotaResource::ImageSizeTotal => match limits.image_size_total_mib {
            Limit::Max(mib) => Limit::Max(mib.saturating_mul(MIB)),
            Limit::Unlimited => Limit::Unlimited,
        },
    }
}

/// Fails when `usage + requested` would pass `limit` (the advisory check of
/// [`ImageRepo::prepare_upload`]).
fn precheck(
    project: &str,
    resource: QuotaResource,
    limit: Limit,
    usage: u64,
    requested: u64,
) -> Result<(), Error> {
    match limit {
        Limit::Max(max) if usage.saturating_add(requested) > max => Err(Error::QuotaExceeded {
            project: project.to_owned(),
            resource,
            limit: max,
            usage,
            requested,
        }),
        Limit::Max(_) | Limit::Unlimited => Ok(()),
    }
}

impl<R: ImageRepo> ImageRepo for QuotaRepo<R> {
    async fn get(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        self.inner.get(ctx, id).await
    }

    async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> Result<Vec<Image>, Error> {
        self.inner.list(ctx, query).await
    }

    async fn add(&self, ctx: &RequestContext, new: &NewImage) -> Result<Image, Error> {
        let mut new = new.clone();
        if let Some(project) = new.image.owner.as_deref()
            && let Some(check) = self.check(project, QuotaResource::ImageCountTotal, 1)
        {
            new.quota.push(check);
        }
        self.inner.add(ctx, &new).await
    }

    async fn save(&self, ctx: &RequestContext, change: &Change) -> Result<Image, Error> {
        let checks = self.checks_for(change);
        if checks.is_empty() {
            return self.inner.save(ctx, change).await;
        }
        let mut change = change.clone();
        change.quota.extend(checks);
        self.inner.save(ctx, &change).await
    }

    async fn remove(&self, ctx: &RequestContext, image: &Image) -> Result<Image, Error> {
        self.inner.remove(ctx, image).await
    }

    async fn prepare_upload(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> Result<UploadAllowance, Error> {
        let Some(project) = &image.owner else {
            return self.inner.prepare_upload(ctx, image).await;
        };
        let limits = self.options.limits_for(project);
        let usage = self.usage.usage(project).await?;
        precheck(
            project,
            QuotaResource::ImageCountUploading,
            limits.image_count_uploading,
            usage.uploading,
            1,
        )?;
        let size_limit = limit_of(&limits, QuotaResource::ImageSizeTotal);
        precheck(
            project,
            QuotaResource::ImageSizeTotal,
            size_limit,
            usage.stored_bytes,
            0,
        )?;
        let allowance = self.inner.prepare_upload(ctx, image).await?;
        Ok(match size_limit {
            Limit::Max(max) => allowance.at_most(max.saturating_sub(usage.stored_bytes)),
            Limit::Unlimited => allowance,
        })
    }

    async fn prepare_download(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        self.inner.prepare_download(ctx, id).await
    }
}

impl<R: MemberRepo> MemberRepo for QuotaRepo<R> {
    async fn members(&self, ctx: &RequestContext, image: &Image) -> Result<Vec<Member>, Error> {
        self.inner.members(ctx, image).await
    }

    async fn member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
    ) -> Result<Member, Error> {
        self.inner.member(ctx, image, member_id).await
    }

    async fn add_member(&self, ctx: &RequestContext, new: &NewMember) -> Result<Member, Error> {
        let limit = self
            .options
            .image_member_quota
            .unwrap_or(Limit::Max(DEFAULT_IMAGE_MEMBER_QUOTA));
        match limit {
            Limit::Max(limit) => {
                let mut new = new.clone();
                new.quota.push(QuotaCheck::Members { limit });
                self.inner.add_member(ctx, &new).await
            }
            Limit::Unlimited => self.inner.add_member(ctx, new).await,
        }
    }

    async fn update_member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
        status: MemberStatus,
    ) -> Result<Member, Error> {
        self.inner
            .update_member(ctx, image, member_id, status)
            .await
    }

    async fn remove_member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
    ) -> Result<Member, Error> {
        self.inner.remove_member(ctx, image, member_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::options::ProjectLimits;
    use crate::repo::test_support::*;

    fn options(count: i64, size_mib: i64, uploading: i64) -> QuotaOptions {
        QuotaOptions {
            default: ProjectLimits {
                image_count_total: Some(Limit::try_from(count).unwrap()),
                image_size_total: Some(Limit::try_from(size_mib).unwrap()),
                image_count_uploading: Some(Limit::try_from(uploading).unwrap()),
            },
            ..QuotaOptions::default()
        }
    }

    #[tokio::test]
    async fn image_count_total_limits_add_per_project() {
        let repo = temp_repo().await;
        let mut opts = options(2, -1, -1);
        opts.projects.insert(
            "big".into(),
            ProjectLimits {
                image_count_total: Some(Limit::Unlimited),
                ..ProjectLimits::default()
            },
        );
        let quota = QuotaRepo::new(repo.sql.clone(), opts, repo.sql.clone());
        let ctx = member("p1");
        let add = |image: Image| {
            let quota = &quota;
            let ctx = ctx.clone();
            async move { quota.add(&ctx, &image.into()).await }
        };
        add(queued(Some("p1"))).await.unwrap();
        let second = add(queued(Some("p1"))).await.unwrap();
        let err = add(queued(Some("p1"))).await.unwrap_err();
        match &err {
            Error::QuotaExceeded {
                project,
                resource,
                limit,
                usage,
                requested,
            } => {
                assert_eq!(
                    (project.as_str(), *resource, *limit, *usage, *requested),
                    ("p1", QuotaResource::ImageCountTotal, 2, 2, 1)
                );
            }
            other => panic!("expected a quota error, got {other}"),
        }
        assert_eq!(
            err.to_string(),
            "project p1 is over its image_count_total quota: 2 images in use, 1 more requested, limit 2 images"
        );
        // Other projects and per-project overrides have their own counts.
        add(queued(Some("p2"))).await.unwrap();
        for _ in 0..3 {
            add(queued(Some("big"))).await.unwrap();
        }
        // Deleted images no longer count.
        repo.sql.remove(&admin(), &second).await.unwrap();
        add(queued(Some("p1"))).await.unwrap();
        // Ownerless images are not counted against anyone.
        for _ in 0..3 {
            quota.add(&admin(), &queued(None).into()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn upload_allowance_is_the_remaining_size_and_commits_are_rechecked() {
        let repo = temp_repo().await;
        let quota = QuotaRepo::new(repo.sql.clone(), options(-1, 1, -1), repo.sql.clone());
        let ctx = member("p1");
        let first = quota.add(&ctx, &queued(Some("p1")).into()).await.unwrap();
        let allowance = quota.prepare_upload(&ctx, &first).await.unwrap();
        assert_eq!(allowance.max_bytes, Some(MIB));
        activated(&repo.sql, &first, 600 * 1024).await;

        let second = quota.add(&ctx, &queued(Some("p1")).into()).await.unwrap();
        let allowance = quota.prepare_upload(&ctx, &second).await.unwrap();
        assert_eq!(allowance.max_bytes, Some(MIB - 600 * 1024));

        // Committing more than is left fails, even if the upload started
        // when there was room (another upload of the project finished first).
        let saving = quota
            .save(&ctx, &Change::claim_upload(second.clone()))
            .await
            .unwrap();
        let err = quota
            .save(
                &ctx,
                &Change::commit_upload(saving.clone(), uploaded(second.id, 500 * 1024)),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::QuotaExceeded { resource: QuotaResource::ImageSizeTotal, limit, usage, requested, .. }
                if limit == MIB && usage == 600 * 1024 && requested == 500 * 1024),
            "{err}"
        );
        assert_eq!(
            repo.sql.get(&ctx, second.id).await.unwrap().status,
            crate::image::Status::Saving
        );
        quota
            .save(
                &ctx,
                &Change::commit_upload(saving, uploaded(second.id, 400 * 1024)),
            )
            .await
            .unwrap();

        // Over the limit: nothing may start.
        let third = quota.add(&ctx, &queued(Some("p1")).into()).await.unwrap();
        let allowance = quota.prepare_upload(&ctx, &third).await.unwrap();
        assert_eq!(allowance.max_bytes, Some(MIB - 1000 * 1024));
        activated(&repo.sql, &third, 100 * 1024).await;
        let fourth = quota.add(&ctx, &queued(Some("p1")).into()).await.unwrap();
        let err = quota.prepare_upload(&ctx, &fourth).await.unwrap_err();
        assert_eq!(err.kind(), "quota_exceeded");
        let err = quota
            .save(&ctx, &Change::claim_upload(fourth))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "quota_exceeded");
    }

    #[tokio::test]
    async fn image_count_uploading_limits_concurrent_uploads() {
        let repo = temp_repo().await;
        let quota = QuotaRepo::new(repo.sql.clone(), options(-1, -1, 1), repo.sql.clone());
        let ctx = member("p1");
        let a = quota.add(&ctx, &queued(Some("p1")).into()).await.unwrap();
        let b = quota.add(&ctx, &queued(Some("p1")).into()).await.unwrap();
        // Both may prepare while nothing is uploading...
        for image in [&a, &b] {
            assert_eq!(
                quota.prepare_upload(&ctx, image).await.unwrap().max_bytes,
                None
            );
        }
        quota.save(&ctx, &Change::claim_upload(a)).await.unwrap();
        // ...but once one has started, the other can neither prepare nor
        // start (the start is checked in its transaction: it may have
        // prepared earlier).
        let is_uploading_quota = |err: &Error| {
            matches!(
                err,
                Error::QuotaExceeded {
                    resource: QuotaResource::ImageCountUploading,
                    usage: 1,
                    ..
                }
            )
        };
        let err = quota.prepare_upload(&ctx, &b).await.unwrap_err();
        assert!(is_uploading_quota(&err), "{err}");
        let err = quota
            .save(&ctx, &Change::claim_upload(b.clone()))
            .await
            .unwrap_err();
        assert!(is_uploading_quota(&err), "{err}");
        assert_eq!(
            repo.sql.get(&ctx, b.id).await.unwrap().status,
            crate::image::Status::Queued
        );
    }

    #[tokio::test]
    async fn giving_an_image_away_counts_against_the_new_owner() {
        let repo = temp_repo().await;
        let quota = QuotaRepo::new(repo.sql.clone(), options(1, 1, -1), repo.sql.clone());
        added(&repo.sql, queued(Some("p2"))).await;
        let image = added(&repo.sql, queued(Some("p1"))).await;
        let image = activated(&repo.sql, &image, 10).await;
        let mut given = image.clone();
        given.owner = Some("p2".into());
        let err = quota
            .save(&admin(), &Change::update(image.clone(), given.clone()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::QuotaExceeded { ref project, resource: QuotaResource::ImageCountTotal, .. } if project == "p2"),
            "{err}"
        );
        given.owner = Some("p3".into());
        let saved = quota
            .save(&admin(), &Change::update(image, given))
            .await
            .unwrap();
        assert_eq!(saved.owner.as_deref(), Some("p3"));
    }

    #[tokio::test]
    async fn image_member_quota_limits_members_per_image() {
        let repo = temp_repo().await;
        let opts = QuotaOptions {
            image_member_quota: Some(Limit::Max(2)),
            ..QuotaOptions::default()
        };
        let quota = QuotaRepo::new(repo.sql.clone(), opts, repo.sql.clone());
        let image = added(&repo.sql, queued(Some("p1"))).await;
        for project in ["p2", "p3"] {
            quota
                .add_member(&admin(), &NewMember::new(image.clone(), project))
                .await
                .unwrap();
        }
        let err = quota
            .add_member(&admin(), &NewMember::new(image.clone(), "p4"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::MemberLimit { limit: 2, .. }), "{err}");
        quota.remove_member(&admin(), &image, "p2").await.unwrap();
        quota
            .add_member(&admin(), &NewMember::new(image, "p4"))
            .await
            .unwrap();
    }
}
