//! Upload leases and the store binding in SQL (`upload_leases`,
//! `store_binding`; migrations 0003).
//!
//! It owns the lease statements: taken, checked and released inside the
//! transaction of an upload's or a stage's status change ([`apply`]),
//! renewed by the heartbeat, the staging intent recorded before the first
//! byte, released by a finished stage, read back for recovery and the
//! sweeper. Expiry is always compared on the database
//! server's clock ([`Session::now_micros`]). It must not decide whether an
//! upload is dead (recovery does) nor touch image data.

use std::collections::HashMap;
use std::time::Duration;

use super::engine::{Session, Sql};
use super::records::db;
use super::{Error, SqlRepo};
use crate::image::{ImageId, Status};
use crate::repo::{LeaseCheck, LeaseRecord, NewLease, ProcessId};
use crate::store::StagingIntent;

fn ttl_micros(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX)
}

/// Appends a new lease row's values for image `id`, without parentheses:
/// `id, node, holder, token, NULL, now, now + ttl` (the columns of
/// [`LEASE_COLUMNS`]).
fn push_lease_values(sql: &mut Sql, id: ImageId, new: &NewLease, now: &str) {
    sql.bind(id.to_string())
        .push(", ")
        .bind(new.holder.node_id.as_str())
        .push(", ")
        .bind(new.holder.process.as_str())
        .push(", ")
        .bind(new.token.as_str())
        .push(", NULL, ")
        .push(now)
        .push(", ")
        .push(now)
        .push(" + ")
        .bind(ttl_micros(new.ttl));
}

/// The columns [`push_lease_values`] fills, in its order.
const LEASE_COLUMNS: &str =
    "upload_leases (image_id, node_id, holder, token, intent, acquired_at, expires_at)";

/// ` WHERE image_id = … AND token = … AND expires_at > now`: the row of a
/// lease that is still `token`'s and alive.
fn where_live(sql: &mut Sql, id: ImageId, token: &str, now: &str) {
    sql.push(" WHERE image_id = ")
        .bind(id.to_string())
        .push(" AND token = ")
        .bind(token)
        .push(" AND expires_at > ")
        .push(now);
}

fn lost(id: ImageId) -> Error {
    // A lost lease is a lost race: the upload no longer owns `saving`.
    Error::Conflict {
        id,
        expected: Status::Saving,
        actual: Status::Saving,
    }
}

/// Applies `check` to image `id`'s lease row, in the transaction that writes
/// the status change (after its compare-and-swap on the image).
///
/// Fails with [`Error::Conflict`] when the row is not what `check` requires
/// (the transaction must then be dropped, which rolls the change back).
pub(crate) async fn apply(
    session: &mut Session,
    id: ImageId,
    check: &LeaseCheck,
) -> Result<(), Error> {
    let now = session.now_micros();
    let failed = db("writing an upload lease");
    match check {
        LeaseCheck::Take(new) => {
            // The image was `queued` (the compare-and-swap said so): any row
            // left for it belongs to no live upload.
            let mut stale = Sql::new("DELETE FROM upload_leases WHERE image_id = ");
            stale.bind(id.to_string());
            session
                .execute(&stale)
                .await
                .map_err(db("writing an upload lease"))?;
            let mut insert = Sql::new(format!("INSERT INTO {LEASE_COLUMNS} VALUES ("));
            push_lease_values(&mut insert, id, new, now);
            insert.push(")");
            session.execute(&insert).await.map_err(failed)?;
            Ok(())
        }
        LeaseCheck::Held { token } => {
            let mut release = Sql::new("DELETE FROM upload_leases");
            where_live(&mut release, id, token, now);
            match session.execute(&release).await.map_err(failed)? {
                0 => Err(lost(id)),
                _ => Ok(()),
            }
        }
        LeaseCheck::Free => {
            let mut expired = Sql::new("DELETE FROM upload_leases WHERE image_id = ");
            expired
                .bind(id.to_string())
                .push(" AND expires_at <= ")
                .push(now);
            session
                .execute(&expired)
                .await
                .map_err(db("writing an upload lease"))?;
            let mut live = Sql::new("SELECT image_id FROM upload_leases WHERE image_id = ");
            live.bind(id.to_string());
            match session.fetch_optional(&live).await.map_err(failed)? {
                // A stage still writes the image's data: a lost race.
                Some(_) => Err(Error::Conflict {
                    id,
                    expected: Status::Uploading,
                    actual: Status::Uploading,
                }),
                None => Ok(()),
            }
        }
    }
}

impl SqlRepo {
    /// Runs the one statement `build` makes (given the database clock's
    /// expression) in a write transaction; returns the rows it changed.
    async fn write_one(
        &self,
        operation: &'static str,
        build: impl FnOnce(&'static str) -> Sql,
    ) -> Result<u64, Error> {
        let mut session = self.write(operation).await?;
        let statement = build(session.now_micros());
        let changed = session.execute(&statement).await.map_err(db(operation))?;
        session.commit().await.map_err(db(operation))?;
        Ok(changed)
    }

    /// Renews the lease `token` of image `id` for `ttl` from now (database
    /// clock). Returns `false` when the lease is no longer this upload's or
    /// has expired: an expired lease is forfeit, the upload must stop.
    ///
    /// Fails on a database error (the heartbeat retries).
    pub async fn renew_lease(
        &self,
        id: ImageId,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, Error> {
        let renewed = self
            .write_one("renewing an upload lease", |now| {
                let mut renew = Sql::new("UPDATE upload_leases SET expires_at = ");
                renew.push(now).push(" + ").bind(ttl_micros(ttl));
                where_live(&mut renew, id, token, now);
                renew
            })
            .await?;
        Ok(renewed == 1)
    }

    /// Takes over the lease of a dead upload of image `id` for recovery:
    /// the row must still hold `old_token` (and, when `require_expired`,
    /// still be expired), or, with `old_token` `None`, there must be no row
    /// at all and the image must be `saving`. The row then names `new`'s
    /// holder and token (the recorded intent stays) and lasts `new.ttl`, so
    /// nobody else recovers or claims the image while recovery cleans up;
    /// recovery ends with a rollback carrying [`LeaseCheck::Held`] with the
    /// new token. Returns whether the lease was taken over.
    ///
    /// Fails on a database error.
    pub async fn take_over_lease(
        &self,
        id: ImageId,
        old_token: Option<&str>,
        require_expired: bool,
        new: &NewLease,
    ) -> Result<bool, Error> {
        let taken = self
            .write_one("taking over an upload lease", |now| match old_token {
                Some(old) => {
                    let mut take = Sql::new("UPDATE upload_leases SET node_id = ");
                    take.bind(new.holder.node_id.as_str())
                        .push(", holder = ")
                        .bind(new.holder.process.as_str())
                        .push(", token = ")
                        .bind(new.token.as_str())
                        .push(", acquired_at = ")
                        .push(now)
                        .push(", expires_at = ")
                        .push(now)
                        .push(" + ")
                        .bind(ttl_micros(new.ttl))
                        .push(" WHERE image_id = ")
                        .bind(id.to_string())
                        .push(" AND token = ")
                        .bind(old);
                    if require_expired {
                        take.push(" AND expires_at <= ").push(now);
                    }
                    take
                }
                None => {
                    let mut take = Sql::new(format!("INSERT INTO {LEASE_COLUMNS} SELECT "));
                    push_lease_values(&mut take, id, new, now);
                    take.push(" WHERE EXISTS (SELECT 1 FROM images WHERE id = ")
                        .bind(id.to_string())
                        .push(" AND status = 'saving') ON CONFLICT (image_id) DO NOTHING");
                    take
                }
            })
            .await?;
        Ok(taken == 1)
    }

    /// Releases the lease `token` of image `id` without a status change: a
    /// glance-direct stage whose data is committed (its image stays
    /// `uploading`, waiting for the import). Returns whether a row went.
    ///
    /// Fails on a database error (the lease then expires, and recovery,
    /// finding the stage's data, keeps the stage and drops the row).
    pub async fn release_lease(&self, id: ImageId, token: &str) -> Result<bool, Error> {
        let released = self
            .write_one("releasing an upload lease", |_| {
                let mut release = Sql::new("DELETE FROM upload_leases WHERE image_id = ");
                release
                    .bind(id.to_string())
                    .push(" AND token = ")
                    .bind(token);
                release
            })
            .await?;
        Ok(released == 1)
    }

    /// Records the staging intent of the upload holding lease `token` on
    /// image `id`, before its first byte is written. Returns `false` when the
    /// lease is no longer this upload's (or expired).
    ///
    /// Fails on a database error.
    pub async fn record_intent(
        &self,
        id: ImageId,
        token: &str,
        intent: &StagingIntent,
    ) -> Result<bool, Error> {
        let recorded = self
            .write_one("recording a staging intent", |now| {
                let mut record = Sql::new("UPDATE upload_leases SET intent = ");
                record.bind(intent.to_string());
                where_live(&mut record, id, token, now);
                record
            })
            .await?;
        Ok(recorded == 1)
    }

    /// Every lease row, with whether it had expired (database clock) and
    /// the status of its image (`None`: no such image), for recovery and the
    /// sweeper.
    ///
    /// Fails on a database error or an unreadable row.
    pub async fn leases(&self) -> Result<Vec<(LeaseRecord, Option<Status>)>, Error> {
        let mut session = self.read("reading upload leases").await?;
        let now = session.now_micros();
        let query = Sql::new(format!(
            "SELECT l.image_id AS image_id, l.node_id AS node_id, l.holder AS holder, \
                    l.token AS token, l.intent AS intent, \
                    CAST(CASE WHEN l.expires_at <= {now} THEN 1 ELSE 0 END AS BIGINT) AS expired, \
                    i.status AS status \
             FROM upload_leases l LEFT JOIN images i ON i.id = l.image_id \
             ORDER BY l.image_id"
        ));
        let rows = session
            .fetch_all(&query)
            .await
            .map_err(db("reading upload leases"))?;
        session
            .commit()
            .await
            .map_err(db("reading upload leases"))?;
        let mut leases = Vec::with_capacity(rows.len());
        for row in rows {
            let text = |column: &str| -> Result<String, Error> {
                row.text(column)
                    .map_err(db("reading upload leases"))?
                    .ok_or_else(|| Error::Corrupt {
                        id: "upload_leases".to_owned(),
                        reason: format!("{column} is NULL"),
                    })
            };
            let image_id = text("image_id")?;
            let corrupt = |reason: String| Error::Corrupt {
                id: image_id.clone(),
                reason,
            };
            let id = image_id
                .parse::<ImageId>()
                .map_err(|err| corrupt(format!("lease image id: {err}")))?;
            let intent = match row.text("intent").map_err(db("reading upload leases"))? {
                Some(text) => Some(
                    text.parse::<StagingIntent>()
                        .map_err(|err| corrupt(err.to_string()))?,
                ),
                None => None,
            };
            let status = match row.text("status").map_err(db("reading upload leases"))? {
                Some(text) => Some(
                    text.parse::<Status>()
                        .map_err(|_| corrupt(format!("status {text:?}")))?,
                ),
                None => None,
            };
            let expired = row
                .int("expired")
                .map_err(db("reading upload leases"))?
                .unwrap_or(0)
                == 1;
            leases.push((
                LeaseRecord {
                    image_id: id,
                    node_id: text("node_id")?,
                    process: ProcessId::from_stored(text("holder")?),
                    token: text("token")?,
                    intent,
                    expired,
                },
                status,
            ));
        }
        Ok(leases)
    }

    /// Deletes the lease `token` of image `id` when its image is neither
    /// `saving` nor `uploading` (a lease its commit or rollback could not
    /// release, or an image deleted mid-upload), after the sweeper aborted
    /// its intent. Returns whether a row went.
    ///
    /// Fails on a database error.
    pub async fn release_stale_lease(&self, id: ImageId, token: &str) -> Result<bool, Error> {
        let released = self
            .write_one("releasing a stale upload lease", |_| {
                let mut release = Sql::new("DELETE FROM upload_leases WHERE image_id = ");
                release
                    .bind(id.to_string())
                    .push(" AND token = ")
                    .bind(token)
                    .push(" AND NOT EXISTS (SELECT 1 FROM images WHERE id = ")
                    .bind(id.to_string())
                    .push(" AND status IN ('saving', 'uploading'))");
                release
            })
            .await?;
        Ok(released == 1)
    }

    /// The store this database is bound to: `identity` when it was unbound
    /// (it is recorded now), otherwise what was recorded first. The caller
    /// refuses to go on when the two differ.
    ///
    /// Fails on a database error.
    pub async fn bind_store(&self, identity: &str) -> Result<String, Error> {
        let mut session = self.write("binding the store").await?;
        let now = session.now_micros();
        let mut insert =
            Sql::new("INSERT INTO store_binding (singleton, store, bound_at) VALUES (1, ");
        insert
            .bind(identity)
            .push(", ")
            .push(now)
            .push(") ON CONFLICT (singleton) DO NOTHING");
        session
            .execute(&insert)
            .await
            .map_err(db("binding the store"))?;
        let query = Sql::new("SELECT store FROM store_binding WHERE singleton = 1");
        let bound = session
            .fetch_optional(&query)
            .await
            .map_err(db("binding the store"))?
            .and_then(|row| row.text("store").ok().flatten())
            .unwrap_or_else(|| identity.to_owned());
        session.commit().await.map_err(db("binding the store"))?;
        Ok(bound)
    }

    /// The ids of deleted images (their rows stay, for audit), for the
    /// sweeper's report.
    ///
    /// Fails on a database error.
    pub async fn deleted_ids(&self) -> Result<std::collections::HashSet<ImageId>, Error> {
        let operation = "listing deleted images";
        let mut session = self.read(operation).await?;
        let query = Sql::new("SELECT id FROM images WHERE status = 'deleted'");
        let rows = session.fetch_all(&query).await.map_err(db(operation))?;
        session.commit().await.map_err(db(operation))?;
        let mut ids = std::collections::HashSet::new();
        for row in rows {
            if let Some(id) = row.text("id").map_err(db(operation))?
                && let Ok(id) = id.parse::<ImageId>()
            {
                ids.insert(id);
            }
        }
        Ok(ids)
    }

    /// Every live image's id and locations' URLs, for the sweeper: what the
    /// store may keep.
    ///
    /// Fails on a database error.
    pub async fn referenced_locations(&self) -> Result<HashMap<ImageId, Vec<String>>, Error> {
        let mut session = self.read("listing image locations").await?;
        let query = Sql::new(
            "SELECT i.id AS id, l.url AS url FROM images i \
             LEFT JOIN image_locations l ON l.image_id = i.id \
             WHERE i.status <> 'deleted'",
        );
        let rows = session
            .fetch_all(&query)
            .await
            .map_err(db("listing image locations"))?;
        session
            .commit()
            .await
            .map_err(db("listing image locations"))?;
        let mut referenced: HashMap<ImageId, Vec<String>> = HashMap::new();
        for row in rows {
            let Some(id) = row.text("id").map_err(db("listing image locations"))? else {
                continue;
            };
            let id = id.parse::<ImageId>().map_err(|err| Error::Corrupt {
                id: id.clone(),
                reason: err.to_string(),
            })?;
            let urls = referenced.entry(id).or_default();
            if let Some(url) = row.text("url").map_err(db("listing image locations"))? {
                urls.push(url);
            }
        }
        Ok(referenced)
    }
}
