//! Pending deletions in SQL (`pending_deletions`, migrations 0004): data
//! that must go once the step that queued it is over, between that step's
//! commit and the store's confirmed delete.
//!
//! It owns the statements: queue a deleted image's data (inside the
//! delete's transaction), queue a stage object, read what is
//! collectable (bounded; the rule below is evaluated in the one query, so
//! rows that must wait never crowd out those that can go), forget one once
//! its data is gone. It must not touch the store (the location layer, the
//! import and the sweeper do).

use std::time::Duration;

use super::engine::{Session, Sql};
use super::records::db;
use super::{Error, SqlRepo};
use crate::image::ImageId;

/// Why data waits for deletion, and so when it may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingReason {
    /// The data of a deleted image: at once (its id is never reused).
    DeletedImage,
    /// A glance-direct stage object, queued by its import before it unstages
    /// the image, or by the delete of its `uploading` image: once older than
    /// the grace period, while the image is neither `uploading` (staged
    /// again, or the import never unstaged it) nor `saving` (an import's
    /// pass reads it).
    StageObject,
}

impl PendingReason {
    /// The stored (and reported) name.
    pub fn as_str(self) -> &'static str {
        match self {
            PendingReason::DeletedImage => "deleted_image",
            PendingReason::StageObject => "stage_object",
        }
    }

    fn parse(text: &str) -> Option<PendingReason> {
        [PendingReason::DeletedImage, PendingReason::StageObject]
            .into_iter()
            .find(|reason| reason.as_str() == text)
    }
}

/// Data that the store may still hold and that must go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDeletion {
    /// The image it belonged to.
    pub image_id: ImageId,
    /// Its location URL.
    pub url: String,
    /// Why it goes.
    pub reason: PendingReason,
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// Queues every location of image `id` for deletion, in the transaction
/// that marks it deleted (before its location rows go).
pub(super) async fn queue(session: &mut Session, id: ImageId) -> Result<(), Error> {
    let now = session.now_micros();
    let mut insert = Sql::new(format!(
        "INSERT INTO pending_deletions (url, image_id, reason, queued_at) \
         SELECT url, image_id, 'deleted_image', {now} FROM image_locations WHERE image_id = "
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
    /// Queues the stage object at `url` of image `id`, before its import
    /// unstages the image or its image is deleted: from then on, whatever
    /// stops the import or the delete, the object goes (see
    /// [`PendingReason::StageObject`]). Queueing again restarts its wait.
    ///
    /// Fails on a database error.
    pub async fn queue_stage_deletion(&self, id: ImageId, url: &str) -> Result<(), Error> {
        let operation = "queueing an import's stage object";
        let mut session = self.write(operation).await?;
        let now = session.now_micros();
        let mut insert =
            Sql::new("INSERT INTO pending_deletions (url, image_id, reason, queued_at) VALUES (");
        insert
            .bind(url)
            .push(", ")
            .bind(id.to_string())
            .push(", 'stage_object', ")
            .push(now)
            .push(
                ") ON CONFLICT (url) DO UPDATE SET image_id = excluded.image_id, \
                 reason = excluded.reason, queued_at = excluded.queued_at",
            );
        session.execute(&insert).await.map_err(db(operation))?;
        session.commit().await.map_err(db(operation))?;
        Ok(())
    }

    /// At most `limit` pending deletions that may be carried out now, the
    /// oldest first: every deleted image's, and the stage objects older
    /// than `grace` (database clock) whose image is neither `uploading` nor
    /// `saving`.
    ///
    /// Fails on a database error or an unreadable row.
    pub async fn pending_deletions(
        &self,
        limit: usize,
        grace: Duration,
    ) -> Result<Vec<PendingDeletion>, Error> {
        let operation = "reading pending deletions";
        let mut session = self.read(operation).await?;
        let now = session.now_micros();
        let mut query = Sql::new(format!(
            "SELECT p.url AS url, p.image_id AS image_id, p.reason AS reason \
             FROM pending_deletions p LEFT JOIN images i ON i.id = p.image_id \
             WHERE p.reason = 'deleted_image' \
                OR (p.queued_at <= {now} - "
        ));
        query
            .bind(micros(grace))
            .push(
                " AND (i.status IS NULL OR i.status NOT IN ('uploading', 'saving'))) \
                 ORDER BY p.queued_at, p.url LIMIT ",
            )
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = session.fetch_all(&query).await.map_err(db(operation))?;
        session.commit().await.map_err(db(operation))?;
        let mut pending = Vec::with_capacity(rows.len());
        for row in rows {
            let text = |column: &str| -> Result<String, Error> {
                Ok(row.text(column).map_err(db(operation))?.unwrap_or_default())
            };
            let (url, image_id, reason) = (text("url")?, text("image_id")?, text("reason")?);
            let corrupt = |reason: String| Error::Corrupt {
                id: image_id.clone(),
                reason,
            };
            let id = image_id
                .parse::<ImageId>()
                .map_err(|err| corrupt(format!("pending deletion of {url}: {err}")))?;
            let reason = PendingReason::parse(&reason)
                .ok_or_else(|| corrupt(format!("pending deletion of {url}: reason {reason:?}")))?;
            pending.push(PendingDeletion {
                image_id: id,
                url,
                reason,
            });
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
