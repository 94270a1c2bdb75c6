//! The one-pass upload pipeline, its commit protocol, verified downloads,
//! and crash recovery.
//!
//! [`open`] opens the embedded default (SQLite + filesystem store in one data
//! directory), runs crash recovery and returns an [`Uploader`]; every command
//! that touches a data directory goes through it. The pipeline itself
//! ([`pump`]) takes any async stream of chunks: a file, stdin or an HTTP body.
//! This module must not read image data twice, and only [`commit`] sets
//! `Status::Active`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::repo::{self, SqlRepo, Stack};
use crate::store::Store;

pub mod commit;
pub mod download;
mod error;
pub mod limit;
pub mod properties;
pub mod pump;
pub mod recovery;
pub mod source;
pub mod workers;

pub use commit::{UploadData, Uploader};
pub use error::{Error, repo_is_rejection};

/// The SQLite database file inside a data directory.
pub const DB_FILE_NAME: &str = "portcullis.db";

/// An opened data directory: the repository stack and the raw SQL backend.
pub struct DataDir {
    /// Uploads (and through it the repository stack and the store).
    pub uploader: Uploader<Stack>,
    /// The SQL backend without layers (recovery, tests).
    pub sql: SqlRepo,
}

/// Opening a data directory failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The directory cannot be created.
    #[error("cannot create the data directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The database cannot be opened or migrated, or the layers' rule files are bad.
    #[error("cannot open the image repository in {path}")]
    Repo {
        /// The data directory.
        path: PathBuf,
        /// The repository's error.
        #[source]
        source: repo::Error,
    },
    /// The store's directories cannot be created.
    #[error("cannot open the image store in {path}")]
    Store {
        /// The data directory.
        path: PathBuf,
        /// The store's error.
        #[source]
        source: crate::store::Error,
    },
    /// Crash recovery failed.
    #[error(transparent)]
    Recovery(#[from] recovery::RecoveryError),
}

/// Opens (creating on first use) the data directory of `config`, runs crash
/// recovery on it, and returns it ready for uploads.
///
/// Fails when the directory, database or store cannot be opened, a rule file
/// named in the config is bad, or recovery fails.
pub async fn open(config: &Config, clock: Arc<dyn Clock>) -> Result<DataDir, OpenError> {
    let path = config.data_dir.clone();
    std::fs::create_dir_all(&path).map_err(|source| OpenError::CreateDir {
        path: path.clone(),
        source,
    })?;
    let sql = SqlRepo::open_sqlite(&path.join(DB_FILE_NAME), clock.clone())
        .await
        .map_err(|source| OpenError::Repo {
            path: path.clone(),
            source,
        })?;
    let store = Store::filesystem(&path).map_err(|source| OpenError::Store {
        path: path.clone(),
        source,
    })?;
    recovery::recover(&sql, &store, clock.as_ref()).await?;
    let stack =
        repo::stack(sql.clone(), store.clone(), &config.repo, clock.clone()).map_err(|source| {
            OpenError::Repo {
                path: path.clone(),
                source,
            }
        })?;
    Ok(DataDir {
        uploader: Uploader {
            repo: Arc::new(stack),
            store,
            settings: config.ingest.clone(),
            clock,
        },
        sql,
    })
}
