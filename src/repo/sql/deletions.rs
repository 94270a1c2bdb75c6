//! Pending deletions in SQL (`pending_deletions`, migrations 0004): the data
//! of deleted images between the delete's commit and the store's delete.
//!
//! It owns the three statements: queue (inside the delete's transaction),
//! read the oldest (bounded), forget one once its data is gone. It must not
//! touch the store (the location layer and the sweeper do) nor decide when
//! to collect.

use super::engine::{Session, Sql};
use super::records::db;
use super::{Error, SqlRepo};
use crate::image::ImageId;

/// Data of a deleted image that the store may still hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDeletion {
    /// The deleted image.
    pub image_id: ImageId,
    /// The location URL of its data.
    pub url: String,
}

/// Queues every location of image `id` for deletion, in the transaction
/// that marks it deleted (before its location rows go).
pub(super) async fn queue(session: &mut Session, id: ImageId) -> Result<(), Error> {
    let now = session.now_micros();
    let mut insert = Sql::new(format!(
        "INSERT INTO pending_deletions (url, image_id, queued_at) \
         SELECT url, image_id, {now} FROM image_locations WHERE image_id = "
    ));
    insert
        .bind(id.to_string())
        .push(" ON CONFLICT (url) DO NOTHING");
    session
        .execute(&insert)
        .await
        .map_err(db("queueing the data of a deleted image"))?;
    Ok(())
}

impl SqlRepo {
    /// The `limit` oldest pending deletions (data of deleted images whose
    /// store delete was not confirmed yet).
    ///
    /// Fails on a database error or an unreadable row.
    pub async fn pending_deletions(&self, limit: usize) -> Result<Vec<PendingDeletion>, Error> {
        let operation = "reading pending deletions";
        let mut session = self.read(operation).await?;
        let mut query =
            Sql::new("SELECT url, image_id FROM pending_deletions ORDER BY queued_at, url LIMIT ");
        query.bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = session.fetch_all(&query).await.map_err(db(operation))?;
        session.commit().await.map_err(db(operation))?;
        let mut pending = Vec::with_capacity(rows.len());
        for row in rows {
            let url = row.text("url").map_err(db(operation))?.unwrap_or_default();
            let image_id = row
                .text("image_id")
                .map_err(db(operation))?
                .unwrap_or_default();
            let image_id = image_id.parse::<ImageId>().map_err(|err| Error::Corrupt {
                id: image_id.clone(),
                reason: format!("pending deletion of {url}: {err}"),
            })?;
            pending.push(PendingDeletion { image_id, url });
        }
        Ok(pending)
    }

    /// Forgets the pending deletion of `url`, once the store confirmed its
    /// data is gone (already gone counts). Forgetting twice is harmless.
    ///
    /// Fails on a database error.
    pub async fn forget_deletion(&self, url: &str) -> Result<(), Error> {
        let operation = "forgetting a pending deletion";
        let mut session = self.write(operation).await?;
        let mut delete = Sql::new("DELETE FROM pending_deletions WHERE url = ");
        delete.bind(url);
        session.execute(&delete).await.map_err(db(operation))?;
        session.commit().await.map_err(db(operation))?;
        Ok(())
    }
}
