//! The quota layer: per-project limits, as Glance's unified limits
//! (`image_count_total`, `image_size_total` in MiB, `image_count_uploading`),
//! configured per project with a default.
//!
//! It owns the checks and the upload allowance: [`ImageRepo::prepare_upload`]
//! returns the bytes the owner has left, so ingest stops reading at the
//! limit; the `saving → active` commit is checked again with the real size,
//! so two concurrent uploads of one project cannot both slip under the
//! limit; likewise `queued → saving` re-checks `image_count_uploading`,
//! which `prepare_upload` checked before. Usage comes straight from the
//! SQL backend ([`SqlRepo::usage`]);
//! because reading it and writing the record are two transactions, every
//! check that precedes a write (add, upload start, commit, owner change) holds one gate
//! shared by all clones of the layer until the write is done. That covers
//! every caller in one process (a server); two processes sharing a data
//! directory can still race between the check and the write.
//! Images without an owner count against nobody. It must not decide who
//! may do what (authorization, policy).

use std::sync::Arc;

use super::options::{EffectiveLimits, Limit, QuotaOptions};
use super::sql::{SqlRepo, Usage};
use super::{Error, ImageRepo, ListQuery, QuotaResource, UploadAllowance};
use crate::context::RequestContext;
use crate::image::{Image, ImageId, Status};

const MIB: u64 = 1024 * 1024;

/// The quota layer.
#[derive(Debug, Clone)]
pub struct QuotaRepo<R> {
    inner: R,
    options: QuotaOptions,
    usage: SqlRepo,
    /// Held from a usage check to the end of the write it allows.
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl<R> QuotaRepo<R> {
    /// Wraps `inner`, enforcing `options`; `usage` answers "how much does
    /// this project use" (the same database the stack ends in).
    pub fn new(inner: R, options: QuotaOptions, usage: SqlRepo) -> QuotaRepo<R> {
        QuotaRepo {
            inner,
            options,
            usage,
            gate: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The wrapped repository.
    pub fn into_inner(self) -> R {
        self.inner
    }

    async fn usage_of(&self, project: &str) -> Result<(EffectiveLimits, Usage), Error> {
        Ok((
            self.options.limits_for(project),
            self.usage.usage(project).await?,
        ))
    }
}

fn exceeded(
    project: &str,
    resource: QuotaResource,
    limit: u64,
    usage: u64,
    requested: u64,
) -> Error {
    Error::QuotaExceeded {
        project: project.to_owned(),
        resource,
        limit,
        usage,
        requested,
    }
}

/// Fails when `usage + requested` would pass `limit`.
fn check(
    project: &str,
    resource: QuotaResource,
    limit: Limit,
    usage: u64,
    requested: u64,
) -> Result<(), Error> {
    match limit {
        Limit::Max(max) if usage.saturating_add(requested) > max => {
            Err(exceeded(project, resource, max, usage, requested))
        }
        Limit::Max(_) | Limit::Unlimited => Ok(()),
    }
}

/// Fails when `project` cannot own one more image (`image_count_total`).
fn check_one_more_image(
    project: &str,
    limits: &EffectiveLimits,
    usage: &Usage,
) -> Result<(), Error> {
    check(
        project,
        QuotaResource::ImageCountTotal,
        limits.image_count_total,
        usage.image_count,
        1,
    )
}

fn size_limit_bytes(limits: &EffectiveLimits) -> Limit {
    match limits.image_size_total_mib {
        Limit::Max(mib) => Limit::Max(mib.saturating_mul(MIB)),
        Limit::Unlimited => Limit::Unlimited,
    }
}

impl<R: ImageRepo> ImageRepo for QuotaRepo<R> {
    async fn get(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        self.inner.get(ctx, id).await
    }

    async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> Result<Vec<Image>, Error> {
        self.inner.list(ctx, query).await
    }

    async fn add(&self, ctx: &RequestContext, image: &Image) -> Result<Image, Error> {
        let _gate = if image.owner.is_some() {
            Some(self.gate.lock().await)
        } else {
            None
        };
        if let Some(project) = &image.owner {
            let (limits, usage) = self.usage_of(project).await?;
            check_one_more_image(project, &limits, &usage)?;
        }
        self.inner.add(ctx, image).await
    }

    async fn save(
        &self,
        ctx: &RequestContext,
        image: &Image,
        from: Option<Status>,
    ) -> Result<Image, Error> {
        let stored = self.inner.get(ctx, image.id).await?;
        let starting = from == Some(Status::Queued) && image.status == Status::Saving;
        let committing = from == Some(Status::Saving) && image.status == Status::Active;
        let changing_owner = image.owner != stored.owner;
        let checked = image.owner.is_some() && (starting || committing || changing_owner);
        let _gate = if checked {
            Some(self.gate.lock().await)
        } else {
            None
        };
        if let Some(project) = &image.owner
            && checked
        {
            let (limits, usage) = self.usage_of(project).await?;
            if starting {
                // `prepare_upload` checked this too, but another upload of
                // the project may have started since: the limit holds here.
                check(
                    project,
                    QuotaResource::ImageCountUploading,
                    limits.image_count_uploading,
                    usage.uploading,
                    1,
                )?;
            }
            if changing_owner {
                check_one_more_image(project, &limits, &usage)?;
            }
            if committing || changing_owner {
                // The stored record of an image being committed has no size
                // yet, so `usage` excludes it; an image changing hands brings
                // its stored size along.
                let requested = image.size.unwrap_or(0);
                check(
                    project,
                    QuotaResource::ImageSizeTotal,
                    size_limit_bytes(&limits),
                    usage.stored_bytes,
                    requested,
                )?;
            }
        }
        self.inner.save(ctx, image, from).await
    }

    async fn remove(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        self.inner.remove(ctx, id).await
    }

    async fn prepare_upload(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> Result<UploadAllowance, Error> {
        let stored = self.inner.get(ctx, image.id).await?;
        let Some(project) = &stored.owner else {
            return self.inner.prepare_upload(ctx, image).await;
        };
        let (limits, usage) = self.usage_of(project).await?;
        check(
            project,
            QuotaResource::ImageCountUploading,
            limits.image_count_uploading,
            usage.uploading,
            1,
        )?;
        let size_limit = size_limit_bytes(&limits);
        check(
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

    async fn activate(repo: &SqlRepo, image: &Image, size: u64) -> Image {
        let mut image = image.clone();
        image.status = Status::Saving;
        let mut image = repo
            .save(&admin(), &image, Some(Status::Queued))
            .await
            .unwrap();
        image.status = Status::Active;
        image.size = Some(size);
        repo.save(&admin(), &image, Some(Status::Saving))
            .await
            .unwrap()
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
        quota.add(&ctx, &queued(Some("p1"))).await.unwrap();
        let second = quota.add(&ctx, &queued(Some("p1"))).await.unwrap();
        let err = quota.add(&ctx, &queued(Some("p1"))).await.unwrap_err();
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
        quota.add(&ctx, &queued(Some("p2"))).await.unwrap();
        for _ in 0..3 {
            quota.add(&ctx, &queued(Some("big"))).await.unwrap();
        }
        // Deleted images no longer count.
        repo.sql.remove(&admin(), second.id).await.unwrap();
        quota.add(&ctx, &queued(Some("p1"))).await.unwrap();
        // Ownerless images are not counted against anyone.
        for _ in 0..3 {
            quota.add(&admin(), &queued(None)).await.unwrap();
        }
    }

    #[tokio::test]
    async fn upload_allowance_is_the_remaining_size_and_commits_are_rechecked() {
        let repo = temp_repo().await;
        let quota = QuotaRepo::new(repo.sql.clone(), options(-1, 1, -1), repo.sql.clone());
        let ctx = member("p1");
        let first = quota.add(&ctx, &queued(Some("p1"))).await.unwrap();
        let allowance = quota.prepare_upload(&ctx, &first).await.unwrap();
        assert_eq!(allowance.max_bytes, Some(MIB));
        activate(&repo.sql, &first, 600 * 1024).await;

        let second = quota.add(&ctx, &queued(Some("p1"))).await.unwrap();
        let allowance = quota.prepare_upload(&ctx, &second).await.unwrap();
        assert_eq!(allowance.max_bytes, Some(MIB - 600 * 1024));

        // Committing more than is left fails, even if the upload started
        // when there was room (another upload of the project finished first).
        let mut saving = second.clone();
        saving.status = Status::Saving;
        let saving = quota
            .save(&ctx, &saving, Some(Status::Queued))
            .await
            .unwrap();
        let mut active = saving.clone();
        active.status = Status::Active;
        active.size = Some(500 * 1024);
        let err = quota
            .save(&ctx, &active, Some(Status::Saving))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::QuotaExceeded { resource: QuotaResource::ImageSizeTotal, limit, usage, requested, .. }
                if limit == MIB && usage == 600 * 1024 && requested == 500 * 1024),
            "{err}"
        );
        assert_eq!(
            repo.sql.get(&ctx, second.id).await.unwrap().status,
            Status::Saving
        );
        active.size = Some(400 * 1024);
        quota
            .save(&ctx, &active, Some(Status::Saving))
            .await
            .unwrap();

        // Over the limit: nothing may start.
        let third = quota.add(&ctx, &queued(Some("p1"))).await.unwrap();
        let allowance = quota.prepare_upload(&ctx, &third).await.unwrap();
        assert_eq!(allowance.max_bytes, Some(MIB - 1000 * 1024));
        activate(&repo.sql, &third, 100 * 1024).await;
        let fourth = quota.add(&ctx, &queued(Some("p1"))).await.unwrap();
        let err = quota.prepare_upload(&ctx, &fourth).await.unwrap_err();
        assert_eq!(err.kind(), "quota_exceeded");
    }

    #[tokio::test]
    async fn image_count_uploading_limits_concurrent_uploads() {
        let repo = temp_repo().await;
        let quota = QuotaRepo::new(repo.sql.clone(), options(-1, -1, 1), repo.sql.clone());
        let ctx = member("p1");
        let a = quota.add(&ctx, &queued(Some("p1"))).await.unwrap();
        let b = quota.add(&ctx, &queued(Some("p1"))).await.unwrap();
        // Both may prepare while nothing is uploading...
        for image in [&a, &b] {
            assert_eq!(
                quota.prepare_upload(&ctx, image).await.unwrap().max_bytes,
                None
            );
        }
        let mut saving = a.clone();
        saving.status = Status::Saving;
        quota
            .save(&ctx, &saving, Some(Status::Queued))
            .await
            .unwrap();
        // ...but once one has started, the other can neither prepare nor
        // start (the start is re-checked: it may have prepared earlier).
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
        let mut saving = b.clone();
        saving.status = Status::Saving;
        let err = quota
            .save(&ctx, &saving, Some(Status::Queued))
            .await
            .unwrap_err();
        assert!(is_uploading_quota(&err), "{err}");
        assert_eq!(
            repo.sql.get(&ctx, b.id).await.unwrap().status,
            Status::Queued
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_cannot_both_slip_under_the_size_limit() {
        // Each commit fits alone (600 KiB of 1 MiB) but not both together.
        // The usage check and the write are separate statements, so two
        // commits racing used to both see the other's size as zero.
        for _ in 0..8 {
            let repo = temp_repo().await;
            let quota = QuotaRepo::new(repo.sql.clone(), options(-1, 1, -1), repo.sql.clone());
            let ctx = member("p1");
            let mut commits = Vec::new();
            for _ in 0..2 {
                let image = quota.add(&ctx, &queued(Some("p1"))).await.unwrap();
                let mut saving = image.clone();
                saving.status = Status::Saving;
                let mut active = quota
                    .save(&ctx, &saving, Some(Status::Queued))
                    .await
                    .unwrap();
                active.status = Status::Active;
                active.size = Some(600 * 1024);
                commits.push(active);
            }
            let (a, b) = tokio::join!(
                quota.save(&ctx, &commits[0], Some(Status::Saving)),
                quota.save(&ctx, &commits[1], Some(Status::Saving)),
            );
            let n_active = [&a, &b].iter().filter(|result| result.is_ok()).count();
            assert_eq!(n_active, 1, "{a:?} / {b:?}");
            let usage = repo.sql.usage("p1").await.unwrap();
            assert_eq!(usage.stored_bytes, 600 * 1024);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_adds_cannot_both_slip_under_the_count_limit() {
        for _ in 0..8 {
            let repo = temp_repo().await;
            let quota = QuotaRepo::new(repo.sql.clone(), options(1, -1, -1), repo.sql.clone());
            let ctx = member("p1");
            let (first, second) = (queued(Some("p1")), queued(Some("p1")));
            let (a, b) = tokio::join!(quota.add(&ctx, &first), quota.add(&ctx, &second));
            let n_added = [&a, &b].iter().filter(|result| result.is_ok()).count();
            assert_eq!(n_added, 1, "{a:?} / {b:?}");
            assert_eq!(repo.sql.usage("p1").await.unwrap().image_count, 1);
        }
    }
}
