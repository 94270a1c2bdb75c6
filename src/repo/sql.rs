//! The SQL backend: image records and members in SQLite (the embedded
//! default) or PostgreSQL (scale-out), one set of queries for both.
//!
//! It owns the schema (migrations/sqlite/, migrations/postgres/: the same
//! versions, types adjusted), the transactions, the state machine
//! ([`Status::can_become`] through each [`ChangeKind`]), the
//! compare-and-swap on the record's revision, Glance's `protected` rule, the
//! write sets of [`Change`]s (a last line of defence) and the evaluation of
//! [`QuotaCheck`](super::QuotaCheck)s inside the transaction that records a write. Who may do
//! what is the layers' business, so every method here ignores the request
//! context. It must not touch image data.
//!
//! Submodules: `engine` (the two drivers behind one interface), `records`
//! (images and their children), `list` (the list query), `members`, `usage`
//! (quota usage and checks).
//!
//! Portability choices: `$n` placeholders (both engines), BIGINT microsecond
//! timestamps, TEXT ids and enums (`COLLATE "C"` on PostgreSQL, so text
//! sorts byte-wise as in SQLite), BOOLEAN flags, and a compare-and-swap that
//! relies on `UPDATE … WHERE updated_at = $n AND status = $n` reporting zero
//! rows rather than on SQLite's write lock.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgConnection, PgPool, SqlitePool};
use time::OffsetDateTime;

mod deletions;
mod engine;
mod leases;
mod list;
mod members;
mod records;
mod usage;

pub use deletions::{PendingDeletion, PendingReason};
pub use usage::Usage;

use self::engine::{Session, Sql};
use self::records::{
    IMAGE_COLUMNS, db, from_micros, id_taken, images_from_rows, insert_image, load_image, micros,
    update_image,
};
use super::change::require_current;
use super::{
    Change, ChangeKind, Error, ImageRepo, ListQuery, MemberRepo, NewImage, NewMember,
    UploadAllowance, sealed,
};
use crate::clock::Clock;
use crate::context::RequestContext;
use crate::image::{Image, ImageId, Member, MemberStatus, Status};

mod ownership;

pub use ownership::ForeignDatabase;

/// The embedded migrations (migrations/sqlite/).
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The PostgreSQL migrations (migrations/postgres/): the same versions as
/// SQLite's, so both engines carry the same schema history.
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// How long a writer waits for another process's transaction before failing.
/// Generous: two processes ingesting into one data directory take turns on
/// short transactions, and a slow disk must not turn that into an error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a PostgreSQL pool waits for a free connection (or a server that
/// does not answer) before the operation fails.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections per PostgreSQL pool: a node's requests share them; each
/// transaction is short (no transaction spans an upload's data transfer).
const POSTGRES_MAX_CONNECTIONS: u32 = 8;

/// Image records in a SQL database.
#[derive(Clone)]
pub struct SqlRepo {
    db: Db,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqlRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlRepo")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// The database behind a [`SqlRepo`]: a closed set, dispatched by `match`.
#[derive(Debug, Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    async fn connection(&self) -> Result<Session, sqlx::Error> {
        match self {
            Db::Sqlite(pool) => Session::connection_sqlite(pool).await,
            Db::Postgres(pool) => Session::connection_postgres(pool).await,
        }
    }

    async fn read(&self) -> Result<Session, sqlx::Error> {
        match self {
            Db::Sqlite(pool) => Session::read_sqlite(pool).await,
            Db::Postgres(pool) => Session::read_postgres(pool).await,
        }
    }

    async fn write(&self) -> Result<Session, sqlx::Error> {
        match self {
            Db::Sqlite(pool) => Session::write_sqlite(pool).await,
            Db::Postgres(pool) => Session::write_postgres(pool).await,
        }
    }
}

impl SqlRepo {
    /// Opens the database a URL names and brings its schema up to date:
    /// `sqlite://PATH` (or `sqlite:PATH`; created when missing, see
    /// [`SqlRepo::open_sqlite`]) or `postgres://…` / `postgresql://…` (an
    /// existing database, see [`SqlRepo::open_postgres`]).
    ///
    /// Fails with [`Error::UnsupportedUrl`] for any other scheme, and as the
    /// engine's opener does.
    pub async fn open(url: &str, clock: Arc<dyn Clock>) -> Result<SqlRepo, Error> {
        let sqlite_path = match url.strip_prefix("sqlite://") {
            Some(path) => Some(path),
            None => url.strip_prefix("sqlite:"),
        };
        if let Some(path) = sqlite_path.filter(|path| !path.is_empty()) {
            return SqlRepo::open_sqlite(Path::new(path), clock).await;
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return SqlRepo::open_postgres(url, clock).await;
        }
        Err(Error::UnsupportedUrl {
            url: redact_url(url),
        })
    }

    /// Opens (creating when missing) the SQLite database at `path` and brings
    /// its schema up to date. WAL journal, `synchronous = FULL`, foreign keys
    /// on, and a busy timeout long enough for several processes to share the
    /// file. `clock` stamps `updated_at` and `deleted_at`.
    ///
    /// Opens only a new or empty file or a portcullis database: another
    /// program's database, a file that is not SQLite, or a schema newer than
    /// this binary's is left untouched.
    ///
    /// Fails with [`Error::ForeignDatabase`] for those, and otherwise when
    /// the file cannot be opened or created, or a migration fails.
    pub async fn open_sqlite(path: &Path, clock: Arc<dyn Clock>) -> Result<SqlRepo, Error> {
        ownership::check(path).await?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .after_release(|conn, _| Box::pin(discard_if_still_in_transaction(conn)))
            .connect_with(options)
            .await
            .map_err(|source| Error::Database {
                operation: "opening the database",
                source,
            })?;
        migrate_sqlite(&pool, path).await?;
        Ok(SqlRepo {
            db: Db::Sqlite(pool),
            clock,
        })
    }

    /// Connects to the existing PostgreSQL database `url` names and brings
    /// its schema up to date (the migrator holds PostgreSQL's advisory lock,
    /// so several nodes starting at once migrate once). `clock` stamps
    /// `updated_at` and `deleted_at`.
    ///
    /// Fails when the URL does not parse, the server cannot be reached, the
    /// credentials are refused, or a migration fails (at once: no retries at
    /// startup). Error messages show the URL without its password. Later,
    /// an operation waits up to 30 s for a pooled connection.
    pub async fn open_postgres(url: &str, clock: Arc<dyn Clock>) -> Result<SqlRepo, Error> {
        let options = PgConnectOptions::from_str(url).map_err(|source| Error::Database {
            operation: "reading the PostgreSQL URL",
            source,
        })?;
        // One direct connection first, to migrate on and to fail at once
        // with the real cause (refused, bad password, no such database): a
        // pool would retry a refused connection until its timeout and then
        // report only that it timed out.
        let mut first = PgConnection::connect_with(&options)
            .await
            .map_err(|source| Error::Database {
                operation: "connecting to PostgreSQL",
                source,
            })?;
        let migrated = POSTGRES_MIGRATIONS.run(&mut first).await;
        // Closing is a courtesy to the server; the outcome that matters is the migration's.
        let _ = first.close().await;
        migrated.map_err(|source| Error::Migrate {
            path: PathBuf::from(redact_url(url)),
            source,
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_MAX_CONNECTIONS)
            .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(SqlRepo {
            db: Db::Postgres(pool),
            clock,
        })
    }

    /// Closes the connection pool, waiting for connections in use.
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }

    /// What `project` currently uses: image count, stored bytes, uploads in flight.
    ///
    /// Fails on a database error.
    pub async fn usage(&self, project: &str) -> Result<Usage, Error> {
        let mut session = self
            .db
            .connection()
            .await
            .map_err(db("computing quota usage"))?;
        usage::usage(&mut session, project, None).await
    }

    /// Every live image in `status`, whoever owns it and hidden or not,
    /// oldest first: what crash recovery scans for (`saving` images whose
    /// upload died). Bypasses the layers on purpose: recovery is the
    /// system's own housekeeping, not a caller's request.
    ///
    /// Fails on a database error or an unreadable row.
    pub async fn images_with_status(&self, status: Status) -> Result<Vec<Image>, Error> {
        let mut session = self
            .db
            .read()
            .await
            .map_err(db("listing images by status"))?;
        let mut query = Sql::new(format!(
            "SELECT {IMAGE_COLUMNS} FROM images WHERE status = "
        ));
        query
            .bind(status.as_str())
            .push(" AND status <> 'deleted' ORDER BY created_at, id");
        let rows = session
            .fetch_all(&query)
            .await
            .map_err(db("listing images by status"))?;
        let images = images_from_rows(&mut session, &rows).await?;
        session
            .commit()
            .await
            .map_err(db("listing images by status"))?;
        Ok(images)
    }

    /// The next `updated_at` of a record last written at `previous`: now, or
    /// one microsecond later than `previous` when the clock has not moved
    /// past it (a pinned clock, a clock stepped back), so the revision
    /// always changes.
    fn next_revision(&self, previous: OffsetDateTime) -> Result<OffsetDateTime, Error> {
        let next = micros(self.clock.now()).max(micros(previous).saturating_add(1));
        from_micros("revision", next)
    }

    async fn read(&self, operation: &'static str) -> Result<Session, Error> {
        self.db.read().await.map_err(db(operation))
    }

    async fn write(&self, operation: &'static str) -> Result<Session, Error> {
        self.db.write().await.map_err(db(operation))
    }
}

/// Whether a connection coming back to the pool may be reused: not when it
/// is still inside a transaction once the rollback its dropped
/// `Transaction` queued has run (the `ping` runs it first). That happens
/// after a `COMMIT` failed with `SQLITE_FULL` (disk full): SQLite rolls the
/// transaction back itself, sqlx's `ROLLBACK` then fails ("no transaction is
/// active") and its depth count stays at 1, so every later `BEGIN` on the
/// connection failed with `InvalidSavePointStatement`, including the upload's
/// rollback to `queued` (issue 8, item 8). Closed, it is replaced by a fresh one.
async fn discard_if_still_in_transaction(
    conn: &mut sqlx::SqliteConnection,
) -> Result<bool, sqlx::Error> {
    use sqlx::Connection as _;
    conn.ping().await?;
    Ok(!conn.is_in_transaction())
}

/// `url` without its password, for messages and logs.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // A URL with a password has a host, so this cannot fail.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(an unparseable URL)".to_owned(),
    }
}

/// Runs the migrations with the database's directory locked, so that two
/// processes starting on a fresh data directory do not both create the schema
/// (SQLite's migrator takes no lock of its own).
async fn migrate_sqlite(pool: &SqlitePool, path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let lock_dir = dir.clone();
    let lock = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let handle = std::fs::File::open(&lock_dir)?;
        handle.lock()?;
        Ok(handle)
    })
    .await
    .unwrap_or_else(|join| Err(std::io::Error::other(join)))
    .map_err(|source| Error::Migrate {
        path: path.to_path_buf(),
        source: sqlx::migrate::MigrateError::Execute(sqlx::Error::Io(source)),
    })?;
    let result = SQLITE_MIGRATIONS.run(pool).await;
    drop(lock);
    result.map_err(|source| Error::Migrate {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether a `kind` change finds the image owned by another upload: a claim
/// of a `saving` image (Glance answers 409 as for any conflict).
fn uploading_elsewhere(kind: ChangeKind, status: Status) -> bool {
    kind == ChangeKind::ClaimUpload && status == Status::Saving
}

impl sealed::Stored for SqlRepo {
    async fn load(&self, id: ImageId) -> Result<Image, Error> {
        let mut session = self.read("reading an image").await?;
        let image = load_image(&mut session, id)
            .await?
            .ok_or(Error::NotFound { id })?;
        session.commit().await.map_err(db("reading an image"))?;
        Ok(image)
    }

    async fn membership(&self, id: ImageId, member_id: &str) -> Result<Option<Member>, Error> {
        let mut session = self
            .db
            .connection()
            .await
            .map_err(db("reading an image member"))?;
        members::find(&mut session, id, member_id).await
    }
}

impl ImageRepo for SqlRepo {
    async fn get(&self, _ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        sealed::Stored::load(self, id).await
    }

    async fn list(&self, _ctx: &RequestContext, query: &ListQuery) -> Result<Vec<Image>, Error> {
        let mut session = self.read("listing images").await?;
        let images = list::list(&mut session, query).await?;
        session.commit().await.map_err(db("listing images"))?;
        Ok(images)
    }

    async fn add(&self, _ctx: &RequestContext, new: &NewImage) -> Result<Image, Error> {
        let image = &new.image;
        if image.status != Status::Queued {
            return Err(Error::NotQueued {
                id: image.id,
                status: image.status,
            });
        }
        let mut tx = self.write("adding an image").await?;
        // Deleted rows keep their id: Glance never reuses an image id.
        if id_taken(&mut tx, image.id).await? {
            return Err(Error::AlreadyExists { id: image.id });
        }
        usage::enforce(&mut tx, image.id, &new.quota).await?;
        insert_image(&mut tx, image).await?;
        let stored = load_image(&mut tx, image.id)
            .await?
            .ok_or(Error::NotFound { id: image.id })?;
        tx.commit().await.map_err(db("committing a new image"))?;
        Ok(stored)
    }

    async fn save(&self, _ctx: &RequestContext, change: &Change) -> Result<Image, Error> {
        let id = change.id();
        let mut tx = self.write("saving an image").await?;
        // 1. The record as stored: the change must have been computed from it.
        let stored = load_image(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { id })?;
        require_current(&stored, &change.before)?;
        // 2. The state machine, from the (current) status read. Claiming an
        //    image another upload owns is a lost race, not a wrong state.
        if let Some((from, to)) = change.kind.transition()
            && (stored.status != from || !stored.status.can_become(to))
        {
            if uploading_elsewhere(change.kind, stored.status) {
                return Err(Error::Conflict {
                    id,
                    expected: from,
                    actual: stored.status,
                });
            }
            return Err(Error::InvalidTransition {
                id,
                from: stored.status,
                to,
            });
        }
        // 3. The kind's write set.
        if let Some(attribute) = change.stray_attribute() {
            return Err(Error::ReadOnly { id, attribute });
        }
        // 4. Quotas, with the project(s) locked until commit.
        usage::enforce(&mut tx, id, &change.quota).await?;
        // 5. The compare-and-swap itself; on PostgreSQL another transaction
        //    may have committed since step 1.
        let updated_at = self.next_revision(stored.updated_at)?;
        if !update_image(&mut tx, change, updated_at).await? {
            let actual = load_image(&mut tx, id)
                .await?
                .map_or(Status::Deleted, |image| image.status);
            return Err(Error::Conflict {
                id,
                expected: change.before.status,
                actual,
            });
        }
        // 6. The upload's lease, in the same transaction: taken by a claim,
        //    required (and released) by a commit, rollback or recovery.
        if let Some(check) = &change.lease {
            leases::apply(&mut tx, id, check).await?;
        }
        let saved = load_image(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { id })?;
        tx.commit().await.map_err(db("committing an image"))?;
        Ok(saved)
    }

    async fn remove(&self, _ctx: &RequestContext, image: &Image) -> Result<Image, Error> {
        let id = image.id;
        let mut tx = self.write("deleting an image").await?;
        let mut stored = load_image(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { id })?;
        require_current(&stored, image)?;
        if stored.protected {
            return Err(Error::Protected { id });
        }
        let deleted_at = self.next_revision(stored.updated_at)?;
        let mut update = Sql::new("UPDATE images SET status = 'deleted', deleted_at = ");
        update
            .bind(micros(deleted_at))
            .push(", updated_at = ")
            .bind(micros(deleted_at))
            .push(" WHERE id = ")
            .bind(id.to_string())
            .push(" AND updated_at = ")
            .bind(micros(stored.updated_at))
            .push(" AND status = ")
            .bind(stored.status.as_str());
        let matched = tx.execute(&update).await.map_err(db("deleting an image"))?;
        if matched == 0 {
            let actual = load_image(&mut tx, id)
                .await?
                .map_or(Status::Deleted, |image| image.status);
            return Err(Error::Conflict {
                id,
                expected: image.status,
                actual,
            });
        }
        // Glance deletes an image's memberships with it; the location rows
        // go, but the record handed up keeps them for the location layer,
        // which deletes the data they point at. The same transaction queues
        // that data (`pending_deletions`), so a process killed before the
        // store delete leaves a row the next opener collects, never an
        // object nothing names.
        deletions::queue(&mut tx, id).await?;
        records::delete_children(&mut tx, id, &["image_locations", "image_members"]).await?;
        tx.commit().await.map_err(db("committing a delete"))?;
        stored.status = Status::Deleted;
        stored.updated_at = deleted_at;
        Ok(stored)
    }

    async fn prepare_upload(
        &self,
        _ctx: &RequestContext,
        image: &Image,
    ) -> Result<UploadAllowance, Error> {
        let stored = sealed::Stored::load(self, image.id).await?;
        require_current(&stored, image)?;
        if uploading_elsewhere(ChangeKind::ClaimUpload, stored.status) {
            return Err(Error::Conflict {
                id: image.id,
                expected: Status::Queued,
                actual: stored.status,
            });
        }
        if stored.status != Status::Queued {
            return Err(Error::InvalidTransition {
                id: image.id,
                from: stored.status,
                to: Status::Saving,
            });
        }
        Ok(UploadAllowance::unlimited())
    }

    async fn prepare_download(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        self.get(ctx, id).await
    }
}

impl SqlRepo {
    /// A write transaction on the live image `id`; NotFound when it is gone.
    async fn write_on(&self, id: ImageId, operation: &'static str) -> Result<Session, Error> {
        let mut tx = self.write(operation).await?;
        if !records::is_live(&mut tx, id).await? {
            return Err(Error::NotFound { id });
        }
        Ok(tx)
    }
}

impl MemberRepo for SqlRepo {
    async fn members(&self, _ctx: &RequestContext, image: &Image) -> Result<Vec<Member>, Error> {
        let mut session = self.read("listing image members").await?;
        if !records::is_live(&mut session, image.id).await? {
            return Err(Error::NotFound { id: image.id });
        }
        let members = members::list(&mut session, image.id).await?;
        session
            .commit()
            .await
            .map_err(db("listing image members"))?;
        Ok(members)
    }

    async fn member(
        &self,
        _ctx: &RequestContext,
        image: &Image,
        member_id: &str,
    ) -> Result<Member, Error> {
        sealed::Stored::membership(self, image.id, member_id)
            .await?
            .ok_or_else(|| Error::MemberNotFound {
                id: image.id,
                member_id: member_id.to_owned(),
            })
    }

    async fn add_member(&self, _ctx: &RequestContext, new: &NewMember) -> Result<Member, Error> {
        let id = new.image.id;
        members::validate_member_id(&new.member_id)?;
        let mut tx = self.write_on(id, "adding an image member").await?;
        usage::enforce(&mut tx, id, &new.quota).await?;
        let member = members::insert(&mut tx, id, &new.member_id, self.clock.now()).await?;
        tx.commit()
            .await
            .map_err(db("committing an image member"))?;
        Ok(member)
    }

    async fn update_member(
        &self,
        _ctx: &RequestContext,
        image: &Image,
        member_id: &str,
        status: MemberStatus,
    ) -> Result<Member, Error> {
        let mut tx = self.write_on(image.id, "updating an image member").await?;
        let member =
            members::set_status(&mut tx, image.id, member_id, status, self.clock.now()).await?;
        tx.commit()
            .await
            .map_err(db("committing an image member"))?;
        Ok(member)
    }

    async fn remove_member(
        &self,
        _ctx: &RequestContext,
        image: &Image,
        member_id: &str,
    ) -> Result<Member, Error> {
        let mut tx = self.write_on(image.id, "removing an image member").await?;
        let member = members::delete(&mut tx, image.id, member_id).await?;
        tx.commit()
            .await
            .map_err(db("committing an image member"))?;
        Ok(member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password_in_messages() {
        assert_eq!(
            redact_url("postgres://portcullis:s3cret@db.example:5432/images"),
            "postgres://portcullis:***@db.example:5432/images"
        );
        assert_eq!(
            redact_url("postgres://portcullis@127.0.0.1/images"),
            "postgres://portcullis@127.0.0.1/images"
        );
        assert!(!redact_url("mysql://u:pw@h/d").contains("pw"));
    }

    #[tokio::test]
    async fn unsupported_urls_are_refused_by_name() {
        let clock = crate::repo::test_support::clock();
        for url in ["mysql://u:pw@localhost/glance", "sqlite://", "/tmp/x.db"] {
            let err = SqlRepo::open(url, clock.clone()).await.unwrap_err();
            assert_eq!(err.kind(), "unsupported_url", "{url}: {err}");
            assert!(!err.to_string().contains("pw"), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("x.db").display());
        let repo = SqlRepo::open(&url, clock).await.unwrap();
        assert!(dir.path().join("x.db").is_file());
        repo.close().await;
    }
}
