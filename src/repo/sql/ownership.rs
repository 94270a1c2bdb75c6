//! Whose database is this file? Before [`super::SqlRepo::open_sqlite`]
//! switches a file to WAL and migrates it, it checks that the file is new,
//! empty, or a portcullis database (the `_sqlx_migrations` history holds
//! our migrations as a prefix), so that a database another program made is
//! never altered with our tables (issue 8).
//!
//! This module must not write to the file: it reads the header bytes and
//! looks at the schema through a read-only connection.

use std::io::Read;
use std::path::Path;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

use super::{BUSY_TIMEOUT, SQLITE_MIGRATIONS};
use crate::repo::Error;

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The table that records applied migrations (sqlx's name).
const HISTORY_TABLE: &str = "_sqlx_migrations";

/// Why a database file is not one portcullis may open and migrate.
#[derive(Debug, thiserror::Error)]
pub enum ForeignDatabase {
    /// The file is not an SQLite database at all.
    #[error(
        "it is not an SQLite database (it starts with {start:?}); move it away or give --data-dir a directory of its own"
    )]
    NotSqlite {
        /// Its first bytes, as text.
        start: String,
    },
    /// Another program's tables, and no portcullis history.
    #[error(
        "it is another program's database: it holds {} that portcullis did not create, and no portcullis migration history; portcullis would add its tables to it, so it leaves it alone: move it away or give --data-dir a directory of its own",
        name_some(.objects)
    )]
    ForeignObjects {
        /// The schema objects found (`table customers`, ...).
        objects: Vec<String>,
    },
    /// A migration history, but not portcullis's.
    #[error(
        "its migration history is another program's (migration {version} {description:?} is not one of portcullis's); move it away or give --data-dir a directory of its own"
    )]
    ForeignHistory {
        /// The first applied migration that is not ours.
        version: i64,
        /// Its description.
        description: String,
    },
    /// Our history, followed by migrations this binary does not know.
    #[error(
        "it was migrated by a newer portcullis (schema version {found}; this binary knows versions up to {known}); open it with that portcullis or a newer one"
    )]
    Newer {
        /// The newest applied version.
        found: i64,
        /// The newest version this binary has.
        known: i64,
    },
}

/// Names the first three schema objects and counts the rest.
fn name_some(objects: &[String]) -> String {
    match objects {
        [] => "nothing".to_owned(),
        [a] => a.clone(),
        [a, b] => format!("{a} and {b}"),
        [a, b, c] => format!("{a}, {b} and {c}"),
        [a, b, c, rest @ ..] => format!("{a}, {b}, {c} and {} more", rest.len()),
    }
}

/// Checks that `path` is absent, empty, or a portcullis database.
///
/// Fails with [`Error::ForeignDatabase`] naming the file and what to do, or
/// with [`Error::Database`] when the file cannot be read.
pub(super) async fn check(path: &Path) -> Result<(), Error> {
    let foreign = |reason| Error::ForeignDatabase {
        path: path.to_owned(),
        reason,
    };
    let read_error = |source: std::io::Error| Error::Database {
        operation: "checking the database file before opening it",
        source: sqlx::Error::Io(source),
    };
    // 1. The header: an existing, non-empty file must be SQLite. (A 0-byte
    //    file is an empty database; its schema may still sit in a -wal file,
    //    which step 2 reads.)
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(read_error(err)),
    };
    let mut header = Vec::with_capacity(SQLITE_HEADER.len());
    (&mut file)
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut header)
        .map_err(read_error)?;
    if !header.is_empty() && header != SQLITE_HEADER {
        return Err(foreign(ForeignDatabase::NotSqlite {
            start: String::from_utf8_lossy(&header).into_owned(),
        }));
    }
    drop(file);

    // 2. The schema, through a read-only connection (no journal-mode change).
    let inspect = |source| Error::Database {
        operation: "inspecting the database before opening it",
        source,
    };
    let mut connection = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(BUSY_TIMEOUT)
        .connect()
        .await
        .map_err(inspect)?;
    let result = inspect_schema(&mut connection).await;
    let _ = connection.close().await;
    let verdict = result.map_err(inspect)?;
    verdict.map_err(foreign)
}

/// Reads the schema and the migration history; the verdict is `Err` for a
/// database that is not ours.
async fn inspect_schema(
    connection: &mut sqlx::SqliteConnection,
) -> Result<Result<(), ForeignDatabase>, sqlx::Error> {
    let objects: Vec<(String, String)> = sqlx::query_as(
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY rowid",
    )
    .fetch_all(&mut *connection)
    .await?;
    let has_history = objects
        .iter()
        .any(|(kind, name)| kind == "table" && name == HISTORY_TABLE);
    if !has_history {
        if objects.is_empty() {
            return Ok(Ok(()));
        }
        return Ok(Err(ForeignDatabase::ForeignObjects {
            objects: objects
                .iter()
                .map(|(kind, name)| format!("{kind} {name}"))
                .collect(),
        }));
    }
    let applied =
        sqlx::query("SELECT version, description, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut *connection)
            .await?;
    if applied.is_empty() {
        // sqlx creates the history table before the first migration's
        // transaction: alone, it is a first run that stopped there.
        let others: Vec<String> = objects
            .iter()
            .filter(|(_, name)| !name.starts_with(HISTORY_TABLE))
            .map(|(kind, name)| format!("{kind} {name}"))
            .collect();
        return Ok(if others.is_empty() {
            Ok(())
        } else {
            Err(ForeignDatabase::ForeignObjects { objects: others })
        });
    }
    let ours: Vec<&sqlx::migrate::Migration> = SQLITE_MIGRATIONS
        .iter()
        .filter(|migration| migration.migration_type.is_up_migration())
        .collect();
    let known = ours.last().map_or(0, |migration| migration.version);
    for (index, row) in applied.iter().enumerate() {
        let version: i64 = row.try_get("version")?;
        let description: String = row.try_get("description")?;
        let checksum: Vec<u8> = row.try_get("checksum")?;
        match ours.get(index) {
            Some(migration) if migration.version == version && *migration.checksum == *checksum => {
            }
            // Every one of ours is applied and more follow: a newer binary's.
            None => {
                let found: i64 = applied
                    .last()
                    .map(|row| row.try_get("version"))
                    .transpose()?
                    .unwrap_or(version);
                return Ok(Err(ForeignDatabase::Newer { found, known }));
            }
            Some(_) => {
                return Ok(Err(ForeignDatabase::ForeignHistory {
                    version,
                    description,
                }));
            }
        }
    }
    Ok(Ok(()))
}
