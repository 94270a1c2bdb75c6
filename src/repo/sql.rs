//! The SQL backend: image records in SQLite (the embedded default), in tables
//! and queries written so PostgreSQL can join behind the same type.
//!
//! It owns the schema (migrations/sqlite/), the transactions and the status
//! compare-and-swap. It enforces the state machine ([`Status::can_become`])
//! and Glance's `protected` rule, and nothing else: who may do what is the
//! layers' business, so every method here ignores the request context. It
//! must not touch image data.
//!
//! Portability choices: `$n` placeholders (SQLite and PostgreSQL both accept
//! them), BIGINT microsecond timestamps, TEXT ids and enums, BOOLEAN flags,
//! dynamic queries built with `QueryBuilder` (which emits each database's
//! placeholders), and a compare-and-swap that relies on
//! `UPDATE … WHERE status = $n` reporting zero rows rather than on SQLite's
//! write lock. PostgreSQL becomes a second variant of the private `Db` enum.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use time::OffsetDateTime;

use super::{
    Error, ImageRepo, ListQuery, ListScope, SortBy, SortDir, SortKey, UploadAllowance,
    VisibilityFilter,
};
use crate::clock::Clock;
use crate::context::RequestContext;
use crate::image::{Image, ImageId, Location, Properties, Status};

mod ownership;

pub use ownership::ForeignDatabase;

/// The embedded migrations (migrations/sqlite/).
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a writer waits for another process's transaction before failing.
/// Generous: two processes ingesting into one data directory take turns on
/// short transactions, and a slow disk must not turn that into an error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// How many ids go into one `IN (…)` list when loading child rows.
const IN_LIST_CHUNK: usize = 500;

const IMAGE_COLUMNS: &str = "id, name, status, visibility, protected, os_hidden, owner, \
     disk_format, container_format, min_disk, min_ram, size, virtual_size, checksum, \
     os_hash_algo, os_hash_value, created_at, updated_at";

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
}

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

impl SqlRepo {
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

    /// Closes the connection pool, waiting for connections in use.
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(pool) => pool.close().await,
        }
    }

    /// What `project` currently uses: image count, stored bytes, uploads in flight.
    ///
    /// Fails on a database error.
    pub async fn usage(&self, project: &str) -> Result<Usage, Error> {
        let Db::Sqlite(pool) = &self.db;
        let row = sqlx::query(
            "SELECT COUNT(*) AS image_count, \
                    COALESCE(SUM(size), 0) AS stored_bytes, \
                    COALESCE(SUM(CASE WHEN status IN ('saving', 'uploading', 'importing') THEN 1 ELSE 0 END), 0) AS uploading \
             FROM images WHERE owner = $1 AND status <> 'deleted'",
        )
        .bind(project)
        .fetch_one(pool)
        .await
        .map_err(db("computing quota usage"))?;
        let count = |column: &str| -> Result<u64, Error> {
            let value: i64 = row.try_get(column).map_err(db("computing quota usage"))?;
            Ok(u64::try_from(value).unwrap_or(0))
        };
        Ok(Usage {
            image_count: count("image_count")?,
            stored_bytes: count("stored_bytes")?,
            uploading: count("uploading")?,
        })
    }

    /// Every live image in `status`, whoever owns it and hidden or not,
    /// oldest first: what crash recovery scans for (`saving` images whose
    /// upload died). Bypasses the layers on purpose: recovery is the
    /// system's own housekeeping, not a caller's request.
    ///
    /// Fails on a database error or an unreadable row.
    pub async fn images_with_status(&self, status: Status) -> Result<Vec<Image>, Error> {
        let Db::Sqlite(pool) = &self.db;
        let mut conn = pool
            .acquire()
            .await
            .map_err(db("listing images by status"))?;
        let sql = format!(
            "SELECT {IMAGE_COLUMNS} FROM images WHERE status = $1 AND status <> 'deleted' \
             ORDER BY created_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(status.as_str())
            .fetch_all(&mut *conn)
            .await
            .map_err(db("listing images by status"))?;
        images_from_rows(&mut conn, &rows).await
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
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

fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| Error::Database { operation, source }
}

fn micros(at: OffsetDateTime) -> i64 {
    // i64 microseconds cover ±292,000 years; clamp rather than fail beyond.
    i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

fn from_micros(id: &str, value: i64) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value) * 1000).map_err(|err| {
        Error::Corrupt {
            id: id.to_owned(),
            reason: format!("timestamp {value} is out of range: {err}"),
        }
    })
}

fn to_i64(id: ImageId, attribute: &str, value: u64) -> Result<i64, Error> {
    i64::try_from(value).map_err(|_| Error::Corrupt {
        id: id.to_string(),
        reason: format!("{attribute} {value} is larger than the database can store"),
    })
}

fn parse_column<T: FromStr>(id: &str, column: &str, text: &str) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|err| Error::Corrupt {
        id: id.to_owned(),
        reason: format!("column {column}: {err}"),
    })
}

fn unsigned(id: &str, column: &str, value: i64) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::Corrupt {
        id: id.to_owned(),
        reason: format!("column {column} is negative ({value})"),
    })
}

/// Decodes one `images` row (children not yet attached).
fn image_from_row(row: &SqliteRow) -> Result<Image, Error> {
    let read = db("reading an image row");
    let id_text: String = row.try_get("id").map_err(read)?;
    let get_text = |column: &str| -> Result<Option<String>, Error> {
        row.try_get::<Option<String>, _>(column)
            .map_err(db("reading an image row"))
    };
    let get_int = |column: &str| -> Result<Option<i64>, Error> {
        row.try_get::<Option<i64>, _>(column)
            .map_err(db("reading an image row"))
    };
    let get_bool = |column: &str| -> Result<bool, Error> {
        row.try_get::<bool, _>(column)
            .map_err(db("reading an image row"))
    };
    let required_text = |column: &str| -> Result<String, Error> {
        get_text(column)?.ok_or_else(|| Error::Corrupt {
            id: id_text.clone(),
            reason: format!("column {column} is null"),
        })
    };
    let required_int = |column: &str| -> Result<i64, Error> {
        get_int(column)?.ok_or_else(|| Error::Corrupt {
            id: id_text.clone(),
            reason: format!("column {column} is null"),
        })
    };
    let optional_u64 = |column: &str| -> Result<Option<u64>, Error> {
        get_int(column)?
            .map(|value| unsigned(&id_text, column, value))
            .transpose()
    };
    let small = |column: &str| -> Result<u32, Error> {
        let value = required_int(column)?;
        u32::try_from(value).map_err(|_| Error::Corrupt {
            id: id_text.clone(),
            reason: format!("column {column} is out of range ({value})"),
        })
    };
    let id: ImageId = parse_column(&id_text, "id", &id_text)?;
    Ok(Image {
        id,
        name: get_text("name")?,
        status: parse_column(&id_text, "status", &required_text("status")?)?,
        visibility: parse_column(&id_text, "visibility", &required_text("visibility")?)?,
        protected: get_bool("protected")?,
        os_hidden: get_bool("os_hidden")?,
        owner: get_text("owner")?,
        disk_format: get_text("disk_format")?
            .map(|text| parse_column(&id_text, "disk_format", &text))
            .transpose()?,
        container_format: get_text("container_format")?
            .map(|text| parse_column(&id_text, "container_format", &text))
            .transpose()?,
        min_disk: small("min_disk")?,
        min_ram: small("min_ram")?,
        size: optional_u64("size")?,
        virtual_size: optional_u64("virtual_size")?,
        checksum: get_text("checksum")?,
        os_hash_algo: get_text("os_hash_algo")?,
        os_hash_value: get_text("os_hash_value")?,
        tags: Default::default(),
        created_at: from_micros(&id_text, required_int("created_at")?)?,
        updated_at: from_micros(&id_text, required_int("updated_at")?)?,
        locations: Vec::new(),
        properties: Properties::new(),
    })
}

/// Decodes `images` rows and attaches their children.
async fn images_from_rows(
    conn: &mut SqliteConnection,
    rows: &[SqliteRow],
) -> Result<Vec<Image>, Error> {
    let mut images = rows
        .iter()
        .map(image_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    load_children(conn, &mut images).await?;
    Ok(images)
}

/// Attaches properties, tags and locations to `images` (by id).
async fn load_children(conn: &mut SqliteConnection, images: &mut [Image]) -> Result<(), Error> {
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (position, image) in images.iter().enumerate() {
        index.insert(image.id.to_string(), position);
    }
    let ids: Vec<String> = index.keys().cloned().collect();
    for chunk in ids.chunks(IN_LIST_CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT image_id, name, value FROM image_properties WHERE image_id IN (",
        );
        push_in_list(&mut query, chunk);
        for row in query
            .build()
            .fetch_all(&mut *conn)
            .await
            .map_err(db("reading image properties"))?
        {
            let (image_id, name, value): (String, String, String) = (
                row.try_get("image_id")
                    .map_err(db("reading image properties"))?,
                row.try_get("name")
                    .map_err(db("reading image properties"))?,
                row.try_get("value")
                    .map_err(db("reading image properties"))?,
            );
            if let Some(&position) = index.get(&image_id) {
                images[position].properties.insert(name, value);
            }
        }

        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT image_id, value FROM image_tags WHERE image_id IN (",
        );
        push_in_list(&mut query, chunk);
        for row in query
            .build()
            .fetch_all(&mut *conn)
            .await
            .map_err(db("reading image tags"))?
        {
            let image_id: String = row.try_get("image_id").map_err(db("reading image tags"))?;
            let value: String = row.try_get("value").map_err(db("reading image tags"))?;
            if let Some(&position) = index.get(&image_id) {
                images[position].tags.insert(value);
            }
        }

        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT image_id, url, metadata FROM image_locations WHERE image_id IN (",
        );
        push_in_list(&mut query, chunk);
        query.push(" ORDER BY image_id, position");
        for row in query
            .build()
            .fetch_all(&mut *conn)
            .await
            .map_err(db("reading image locations"))?
        {
            let image_id: String = row
                .try_get("image_id")
                .map_err(db("reading image locations"))?;
            let url: String = row.try_get("url").map_err(db("reading image locations"))?;
            let metadata_json: String = row
                .try_get("metadata")
                .map_err(db("reading image locations"))?;
            let metadata: Properties =
                serde_json::from_str(&metadata_json).map_err(|err| Error::Corrupt {
                    id: image_id.clone(),
                    reason: format!("location metadata is not a JSON object of strings: {err}"),
                })?;
            if let Some(&position) = index.get(&image_id) {
                images[position].locations.push(Location { url, metadata });
            }
        }
    }
    Ok(())
}

fn push_in_list(query: &mut QueryBuilder<Sqlite>, ids: &[String]) {
    let mut separated = query.separated(", ");
    for id in ids {
        separated.push_bind(id.clone());
    }
    query.push(")");
}

/// The live (not deleted) image `id`, with its children.
async fn load_image(conn: &mut SqliteConnection, id: ImageId) -> Result<Option<Image>, Error> {
    let sql = format!("SELECT {IMAGE_COLUMNS} FROM images WHERE id = $1 AND status <> 'deleted'");
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db("reading an image"))?
    else {
        return Ok(None);
    };
    let mut images = [image_from_row(&row)?];
    load_children(conn, &mut images).await?;
    let [image] = images;
    Ok(Some(image))
}

/// The stored status of the live image `id`.
async fn load_status(conn: &mut SqliteConnection, id: ImageId) -> Result<Option<Status>, Error> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM images WHERE id = $1 AND status <> 'deleted'")
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db("reading an image status"))?;
    status
        .map(|text| parse_column(&id.to_string(), "status", &text))
        .transpose()
}

/// Replaces the properties, tags and locations of `image`.
async fn write_children(conn: &mut SqliteConnection, image: &Image) -> Result<(), Error> {
    let id = image.id.to_string();
    for table in ["image_properties", "image_tags", "image_locations"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE image_id = $1"
        )))
        .bind(&id)
        .execute(&mut *conn)
        .await
        .map_err(db("replacing image children"))?;
    }
    for (name, value) in &image.properties {
        sqlx::query("INSERT INTO image_properties (image_id, name, value) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(name)
            .bind(value)
            .execute(&mut *conn)
            .await
            .map_err(db("writing image properties"))?;
    }
    for tag in &image.tags {
        sqlx::query("INSERT INTO image_tags (image_id, value) VALUES ($1, $2)")
            .bind(&id)
            .bind(tag)
            .execute(&mut *conn)
            .await
            .map_err(db("writing image tags"))?;
    }
    for (position, location) in image.locations.iter().enumerate() {
        let metadata = serde_json::to_string(&location.metadata).map_err(|err| Error::Corrupt {
            id: id.clone(),
            reason: format!("location metadata cannot be encoded: {err}"),
        })?;
        sqlx::query(
            "INSERT INTO image_locations (image_id, position, url, metadata) VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(&location.url)
        .bind(metadata)
        .execute(&mut *conn)
        .await
        .map_err(db("writing image locations"))?;
    }
    Ok(())
}

/// A query under construction on SQLite.
type ImageQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds the fields `add` and `save` both write, as `$1`..`$15` in this
/// order: name, status, visibility, protected, os_hidden, owner,
/// disk_format, container_format, min_disk, min_ram, size, virtual_size,
/// checksum, os_hash_algo, os_hash_value.
fn bind_fields<'q>(query: ImageQuery<'q>, image: &'q Image) -> Result<ImageQuery<'q>, Error> {
    let size = image
        .size
        .map(|value| to_i64(image.id, "size", value))
        .transpose()?;
    let virtual_size = image
        .virtual_size
        .map(|value| to_i64(image.id, "virtual_size", value))
        .transpose()?;
    Ok(query
        .bind(&image.name)
        .bind(image.status.as_str())
        .bind(image.visibility.as_str())
        .bind(image.protected)
        .bind(image.os_hidden)
        .bind(&image.owner)
        .bind(image.disk_format.map(|format| format.as_str()))
        .bind(image.container_format.map(|format| format.as_str()))
        .bind(i64::from(image.min_disk))
        .bind(i64::from(image.min_ram))
        .bind(size)
        .bind(virtual_size)
        .bind(&image.checksum)
        .bind(&image.os_hash_algo)
        .bind(&image.os_hash_value))
}

impl SqlRepo {
    async fn begin(&self) -> Result<sqlx::Transaction<'static, Sqlite>, Error> {
        let Db::Sqlite(pool) = &self.db;
        // IMMEDIATE takes the write lock up front: a deferred transaction that
        // reads and then writes can fail with SQLITE_BUSY without waiting when
        // another process writes in between.
        pool.begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("starting a transaction"))
    }
}

impl ImageRepo for SqlRepo {
    async fn get(&self, _ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        let Db::Sqlite(pool) = &self.db;
        let mut conn = pool.acquire().await.map_err(db("reading an image"))?;
        load_image(&mut conn, id)
            .await?
            .ok_or(Error::NotFound { id })
    }

    async fn list(&self, _ctx: &RequestContext, query: &ListQuery) -> Result<Vec<Image>, Error> {
        let Db::Sqlite(pool) = &self.db;
        let mut conn = pool.acquire().await.map_err(db("listing images"))?;
        let marker = match query.marker {
            Some(id) => {
                let image = load_image(&mut conn, id).await?;
                match image {
                    Some(image) if query.scope.admits(&image) => Some(image),
                    _ => return Err(Error::MarkerNotFound { id }),
                }
            }
            None => None,
        };
        let sort = effective_sort(&query.sort);
        let mut builder = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {IMAGE_COLUMNS} FROM images WHERE status <> 'deleted'"
        ));
        push_filters(&mut builder, query);
        if let Some(marker) = &marker {
            builder.push(" AND ");
            push_after_marker(&mut builder, &sort, marker)?;
        }
        builder.push(" ORDER BY ");
        for (position, by) in sort.iter().enumerate() {
            if position > 0 {
                builder.push(", ");
            }
            let column = sort_column(by.key);
            let direction = match by.dir {
                SortDir::Asc => "ASC",
                SortDir::Desc => "DESC",
            };
            if sort_key_nullable(by.key) {
                // Null sorts as the smallest value on every database (SQLite
                // and PostgreSQL disagree by default), hence the explicit key.
                let nulls = match by.dir {
                    SortDir::Asc => "DESC",
                    SortDir::Desc => "ASC",
                };
                builder.push(format!("({column} IS NULL) {nulls}, "));
            }
            builder.push(format!("{column} {direction}"));
        }
        if let Some(limit) = query.limit {
            builder.push(" LIMIT ");
            builder.push_bind(i64::from(limit));
        }
        let rows = builder
            .build()
            .fetch_all(&mut *conn)
            .await
            .map_err(db("listing images"))?;
        images_from_rows(&mut conn, &rows).await
    }

    async fn add(&self, _ctx: &RequestContext, image: &Image) -> Result<Image, Error> {
        if image.status != Status::Queued {
            return Err(Error::NotQueued {
                id: image.id,
                status: image.status,
            });
        }
        let mut tx = self.begin().await?;
        // Deleted rows keep their id: Glance never reuses an image id.
        let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM images WHERE id = $1")
            .bind(image.id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("adding an image"))?;
        if taken.is_some() {
            return Err(Error::AlreadyExists { id: image.id });
        }
        let insert = sqlx::query(
            "INSERT INTO images (name, status, visibility, protected, os_hidden, owner, \
             disk_format, container_format, min_disk, min_ram, size, virtual_size, checksum, \
             os_hash_algo, os_hash_value, id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        );
        bind_fields(insert, image)?
            .bind(image.id.to_string())
            .bind(micros(image.created_at))
            .bind(micros(image.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(db("adding an image"))?;
        write_children(&mut tx, image).await?;
        let stored = load_image(&mut tx, image.id)
            .await?
            .ok_or(Error::NotFound { id: image.id })?;
        tx.commit().await.map_err(db("committing a new image"))?;
        Ok(stored)
    }

    async fn save(
        &self,
        _ctx: &RequestContext,
        image: &Image,
        from: Option<Status>,
    ) -> Result<Image, Error> {
        let id = image.id;
        let mut tx = self.begin().await?;
        let current = load_status(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { id })?;
        // 1. The compare-and-swap guard and the state machine.
        let expected = from.unwrap_or(current);
        if current != expected {
            return Err(Error::Conflict {
                id,
                expected,
                actual: current,
                wanted: image.status,
            });
        }
        if image.status == Status::Deleted
            || (image.status != current && !current.can_become(image.status))
        {
            return Err(Error::InvalidTransition {
                id,
                from: current,
                to: image.status,
            });
        }
        // 2. The whole record; `WHERE status = expected` keeps this a real
        //    compare-and-swap on databases without SQLite's write lock.
        let update = sqlx::query(
            "UPDATE images SET name = $1, status = $2, visibility = $3, protected = $4, \
             os_hidden = $5, owner = $6, disk_format = $7, container_format = $8, min_disk = $9, \
             min_ram = $10, size = $11, virtual_size = $12, checksum = $13, os_hash_algo = $14, \
             os_hash_value = $15, updated_at = $16 WHERE id = $17 AND status = $18",
        );
        let updated = bind_fields(update, image)?
            .bind(micros(self.now()))
            .bind(id.to_string())
            .bind(expected.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db("saving an image"))?;
        if updated.rows_affected() == 0 {
            let actual = load_status(&mut tx, id)
                .await?
                .ok_or(Error::NotFound { id })?;
            return Err(Error::Conflict {
                id,
                expected,
                actual,
                wanted: image.status,
            });
        }
        // 3. Children, in the same transaction.
        write_children(&mut tx, image).await?;
        let stored = load_image(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { id })?;
        tx.commit().await.map_err(db("committing an image"))?;
        Ok(stored)
    }

    async fn remove(&self, _ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut image = load_image(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { id })?;
        if image.protected {
            return Err(Error::Protected { id });
        }
        let updated = sqlx::query(
            "UPDATE images SET status = 'deleted', deleted_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = $3",
        )
        .bind(micros(now))
        .bind(id.to_string())
        .bind(image.status.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db("deleting an image"))?;
        if updated.rows_affected() == 0 {
            return Err(Error::NotFound { id });
        }
        sqlx::query("DELETE FROM image_locations WHERE image_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db("deleting an image"))?;
        tx.commit().await.map_err(db("committing a delete"))?;
        // The caller (the location layer) still needs the locations, to
        // delete the data they point at.
        image.status = Status::Deleted;
        image.updated_at = from_micros(&id.to_string(), micros(now))?;
        Ok(image)
    }

    async fn prepare_upload(
        &self,
        _ctx: &RequestContext,
        image: &Image,
    ) -> Result<UploadAllowance, Error> {
        let Db::Sqlite(pool) = &self.db;
        let mut conn = pool.acquire().await.map_err(db("preparing an upload"))?;
        let status = load_status(&mut conn, image.id)
            .await?
            .ok_or(Error::NotFound { id: image.id })?;
        if status != Status::Queued {
            return Err(Error::InvalidTransition {
                id: image.id,
                from: status,
                to: Status::Saving,
            });
        }
        Ok(UploadAllowance::unlimited())
    }

    async fn prepare_download(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        self.get(ctx, id).await
    }
}

/// The sort keys to apply: the caller's (without repeats), then Glance's
/// tie-breakers `created_at` and `id` (descending) when missing.
fn effective_sort(requested: &[SortBy]) -> Vec<SortBy> {
    let mut sort: Vec<SortBy> = Vec::new();
    for by in requested {
        if !sort.iter().any(|seen| seen.key == by.key) {
            sort.push(*by);
        }
    }
    for key in [SortKey::CreatedAt, SortKey::Id] {
        if !sort.iter().any(|seen| seen.key == key) {
            sort.push(SortBy {
                key,
                dir: SortDir::Desc,
            });
        }
    }
    sort
}

fn sort_column(key: SortKey) -> &'static str {
    // Column names are the Glance names; this table is the whitelist that
    // keeps caller input out of the SQL text.
    match key {
        SortKey::Name => "name",
        SortKey::Status => "status",
        SortKey::ContainerFormat => "container_format",
        SortKey::DiskFormat => "disk_format",
        SortKey::Size => "size",
        SortKey::VirtualSize => "virtual_size",
        SortKey::Id => "id",
        SortKey::CreatedAt => "created_at",
        SortKey::UpdatedAt => "updated_at",
        SortKey::Visibility => "visibility",
        SortKey::Owner => "owner",
        SortKey::MinDisk => "min_disk",
        SortKey::MinRam => "min_ram",
    }
}

fn sort_key_nullable(key: SortKey) -> bool {
    matches!(
        key,
        SortKey::Name
            | SortKey::ContainerFormat
            | SortKey::DiskFormat
            | SortKey::Size
            | SortKey::VirtualSize
            | SortKey::Owner
    )
}

/// A marker's value for one sort key.
enum KeyValue {
    Text(Option<String>),
    Int(Option<i64>),
}

fn marker_value(key: SortKey, marker: &Image) -> Result<KeyValue, Error> {
    let id = marker.id;
    Ok(match key {
        SortKey::Name => KeyValue::Text(marker.name.clone()),
        SortKey::Status => KeyValue::Text(Some(marker.status.as_str().to_owned())),
        SortKey::ContainerFormat => {
            KeyValue::Text(marker.container_format.map(|f| f.as_str().to_owned()))
        }
        SortKey::DiskFormat => KeyValue::Text(marker.disk_format.map(|f| f.as_str().to_owned())),
        SortKey::Size => KeyValue::Int(marker.size.map(|v| to_i64(id, "size", v)).transpose()?),
        SortKey::VirtualSize => KeyValue::Int(
            marker
                .virtual_size
                .map(|v| to_i64(id, "virtual_size", v))
                .transpose()?,
        ),
        SortKey::Id => KeyValue::Text(Some(marker.id.to_string())),
        SortKey::CreatedAt => KeyValue::Int(Some(micros(marker.created_at))),
        SortKey::UpdatedAt => KeyValue::Int(Some(micros(marker.updated_at))),
        SortKey::Visibility => KeyValue::Text(Some(marker.visibility.as_str().to_owned())),
        SortKey::Owner => KeyValue::Text(marker.owner.clone()),
        SortKey::MinDisk => KeyValue::Int(Some(i64::from(marker.min_disk))),
        SortKey::MinRam => KeyValue::Int(Some(i64::from(marker.min_ram))),
    })
}

fn push_value(builder: &mut QueryBuilder<Sqlite>, value: &KeyValue) {
    match value {
        KeyValue::Text(text) => builder.push_bind(text.clone()),
        KeyValue::Int(int) => builder.push_bind(*int),
    };
}

fn value_is_null(value: &KeyValue) -> bool {
    matches!(value, KeyValue::Text(None) | KeyValue::Int(None))
}

/// Keyset pagination: rows strictly after `marker` in `sort` order, null
/// being the smallest value. For keys k1..kn:
/// `after(k1) OR (equal(k1) AND (after(k2) OR (equal(k2) AND …)))`.
fn push_after_marker(
    builder: &mut QueryBuilder<Sqlite>,
    sort: &[SortBy],
    marker: &Image,
) -> Result<(), Error> {
    let Some((first, rest)) = sort.split_first() else {
        return Ok(());
    };
    let column = sort_column(first.key);
    let value = marker_value(first.key, marker)?;
    builder.push("(");
    match (first.dir, value_is_null(&value)) {
        (SortDir::Asc, true) => {
            builder.push(format!("{column} IS NOT NULL"));
        }
        (SortDir::Desc, true) => {
            builder.push("1 = 0");
        }
        (SortDir::Asc, false) => {
            builder.push(format!("{column} > "));
            push_value(builder, &value);
        }
        (SortDir::Desc, false) => {
            builder.push(format!("{column} < "));
            push_value(builder, &value);
            if sort_key_nullable(first.key) {
                builder.push(format!(" OR {column} IS NULL"));
            }
        }
    }
    if !rest.is_empty() {
        builder.push(" OR (");
        if value_is_null(&value) {
            builder.push(format!("{column} IS NULL"));
        } else {
            builder.push(format!("{column} = "));
            push_value(builder, &value);
        }
        builder.push(" AND ");
        push_after_marker(builder, rest, marker)?;
        builder.push(")");
    }
    builder.push(")");
    Ok(())
}

fn push_filters(builder: &mut QueryBuilder<Sqlite>, query: &ListQuery) {
    if let Some(status) = query.status {
        builder.push(" AND status = ");
        builder.push_bind(status.as_str());
    }
    if let Some(name) = &query.name {
        builder.push(" AND name = ");
        builder.push_bind(name.clone());
    }
    if let Some(owner) = &query.owner {
        builder.push(" AND owner = ");
        builder.push_bind(owner.clone());
    }
    if let Some(format) = query.disk_format {
        builder.push(" AND disk_format = ");
        builder.push_bind(format.as_str());
    }
    if let Some(format) = query.container_format {
        builder.push(" AND container_format = ");
        builder.push_bind(format.as_str());
    }
    // Who may see what (set by the authorization layer).
    let project = match &query.scope {
        ListScope::Everything => None,
        ListScope::VisibleTo { project } => {
            builder.push(" AND (visibility IN ('public', 'community')");
            if let Some(project) = project {
                builder.push(" OR owner = ");
                builder.push_bind(project.clone());
            }
            builder.push(")");
            project.as_ref()
        }
    };
    match query.visibility {
        Some(VisibilityFilter::Only(visibility)) => {
            builder.push(" AND visibility = ");
            builder.push_bind(visibility.as_str());
        }
        Some(VisibilityFilter::All) => {}
        // Glance's default listing leaves out other projects' community
        // images (and, for administrators, keeps everything).
        None => {
            if let ListScope::VisibleTo { .. } = query.scope {
                builder.push(" AND (visibility <> 'community'");
                if let Some(project) = project {
                    builder.push(" OR owner = ");
                    builder.push_bind(project.clone());
                }
                builder.push(")");
            }
        }
    }
    builder.push(" AND os_hidden = ");
    builder.push_bind(query.os_hidden.unwrap_or(false));
    for tag in &query.tags {
        builder.push(
            " AND EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.value = ",
        );
        builder.push_bind(tag.clone());
        builder.push(")");
    }
    for (name, value) in &query.properties {
        builder.push(
            " AND EXISTS (SELECT 1 FROM image_properties p WHERE p.image_id = images.id AND p.name = ",
        );
        builder.push_bind(name.clone());
        builder.push(" AND p.value = ");
        builder.push_bind(value.clone());
        builder.push(")");
    }
}
