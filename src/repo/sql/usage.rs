//! Quota usage in SQL: what a project uses, and the [`QuotaCheck`]s of a
//! write evaluated inside the transaction that records it.
//!
//! It owns the usage queries and the order in which the checks lock
//! (projects sorted, before any image row is written); the limits themselves
//! come from the quota layer. It must not decide which checks a write needs.

use super::engine::{Session, Sql};
use super::records::db;
use crate::image::ImageId;
use crate::repo::{Error, QuotaCheck, QuotaResource};

/// What a project currently uses, for quotas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Images owned (not deleted).
    pub image_count: u64,
    /// Bytes stored by those images.
    pub stored_bytes: u64,
    /// Images being uploaded (`saving`, `uploading`, `importing`).
    pub uploading: u64,
}

impl Usage {
    fn of(&self, resource: QuotaResource) -> u64 {
        match resource {
            QuotaResource::ImageCountTotal => self.image_count,
            QuotaResource::ImageSizeTotal => self.stored_bytes,
            QuotaResource::ImageCountUploading => self.uploading,
        }
    }
}

/// What `project` uses, leaving out image `excluding` (the one being written).
pub(crate) async fn usage(
    session: &mut Session,
    project: &str,
    excluding: Option<ImageId>,
) -> Result<Usage, Error> {
    // CASTs: PostgreSQL sums BIGINTs into NUMERIC.
    let mut query = Sql::new(
        "SELECT CAST(COUNT(*) AS BIGINT) AS image_count, \
                CAST(COALESCE(SUM(size), 0) AS BIGINT) AS stored_bytes, \
                CAST(COALESCE(SUM(CASE WHEN status IN ('saving', 'uploading', 'importing') \
                     THEN 1 ELSE 0 END), 0) AS BIGINT) AS uploading \
         FROM images WHERE status <> 'deleted' AND owner = ",
    );
    query.bind(project);
    if let Some(id) = excluding {
        query.push(" AND id <> ").bind(id.to_string());
    }
    let read = || db("computing quota usage");
    let row = session
        .fetch_optional(&query)
        .await
        .map_err(read())?
        .ok_or_else(|| Error::Database {
            operation: "computing quota usage",
            source: sqlx::Error::RowNotFound,
        })?;
    let count = |column: &str| -> Result<u64, Error> {
        let value = row.int(column).map_err(read())?.unwrap_or(0);
        Ok(u64::try_from(value).unwrap_or(0))
    };
    Ok(Usage {
        image_count: count("image_count")?,
        stored_bytes: count("stored_bytes")?,
        uploading: count("uploading")?,
    })
}

/// How many members image `id` has.
pub(crate) async fn member_count(session: &mut Session, id: ImageId) -> Result<u64, Error> {
    let mut query =
        Sql::new("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM image_members WHERE image_id = ");
    query.bind(id.to_string());
    let read = || db("counting image members");
    let row = session.fetch_optional(&query).await.map_err(read())?;
    let value = match row {
        Some(row) => row.int("n").map_err(read())?.unwrap_or(0),
        None => 0,
    };
    Ok(u64::try_from(value).unwrap_or(0))
}

/// Evaluates `checks` for a write of image `id`, inside the write's
/// transaction: 1. lock every project concerned (sorted, so two writes
/// cannot deadlock) and, for a member limit, the image row; 2. read the
/// usage, now stable until the transaction ends; 3. fail on the first limit
/// the write would pass.
///
/// Fails with [`Error::QuotaExceeded`] or [`Error::MemberLimit`].
pub(crate) async fn enforce(
    session: &mut Session,
    id: ImageId,
    checks: &[QuotaCheck],
) -> Result<(), Error> {
    // 1. Locks.
    let mut projects: Vec<&str> = checks
        .iter()
        .filter_map(|check| match check {
            QuotaCheck::Project { project, .. } => Some(project.as_str()),
            QuotaCheck::Members { .. } => None,
        })
        .collect();
    projects.sort_unstable();
    projects.dedup();
    for project in &projects {
        session
            .lock_project(project)
            .await
            .map_err(db("locking a project for its quota"))?;
    }
    if checks
        .iter()
        .any(|check| matches!(check, QuotaCheck::Members { .. }))
    {
        session
            .lock_image(&id.to_string())
            .await
            .map_err(db("locking an image for its member quota"))?;
    }
    // 2. and 3. Usage and limits.
    for check in checks {
        match check {
            QuotaCheck::Project {
                project,
                resource,
                limit,
                requested,
            } => {
                let used = usage(session, project, Some(id)).await?.of(*resource);
                if used.saturating_add(*requested) > *limit {
                    return Err(Error::QuotaExceeded {
                        project: project.clone(),
                        resource: *resource,
                        limit: *limit,
                        usage: used,
                        requested: *requested,
                    });
                }
            }
            QuotaCheck::Members { limit } => {
                if member_count(session, id).await?.saturating_add(1) > *limit {
                    return Err(Error::MemberLimit { id, limit: *limit });
                }
            }
        }
    }
    Ok(())
}
