//! The one opener of a data directory: [`App::open`] creates what is
//! missing, opens the database and the store, runs crash recovery, builds
//! the repository stack, starts the shared hash pool and sets up the key
//! manager.
//!
//! Every front end (each CLI command, the server) opens through here, so
//! recovery always runs before anything else touches the data. This module
//! must not serve requests.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::ingest::recovery::{self, RecoveryError};
use crate::ingest::workers::WorkerError;
use crate::ingest::{HashPool, Uploader};
use crate::key_manager::KeyManager;
use crate::repo::{self, DATABASE_FILE, SqlRepo};
use crate::store::Store;

use super::{App, Settings};

/// Opening a data directory failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data directory path names something that is not a directory.
    #[error(
        "the data directory {path} exists but is not a directory (point --data-dir or PORTCULLIS_DATA_DIR at a directory)"
    )]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
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
    Recovery(#[from] RecoveryError),
    /// The hash pool's threads cannot be started.
    #[error("cannot start the hashing threads")]
    HashPool(#[source] WorkerError),
    /// The key manager cannot be set up (Barbican's TLS settings).
    #[error("cannot set up the key manager")]
    KeyManager(#[source] crate::openstack::SettingsError),
}

impl OpenError {
    /// A stable snake_case name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            OpenError::NotADirectory { .. } => "not_a_directory",
            OpenError::CreateDir { .. } => "create_dir_failed",
            OpenError::Repo { source, .. } => source.kind(),
            OpenError::Store { source, .. } => source.kind(),
            OpenError::Recovery(_) => "recovery_failed",
            OpenError::HashPool(_) => "hashing_failed",
            OpenError::KeyManager(_) => "openstack_settings",
        }
    }
}

impl App {
    /// Opens (creating on first use) the data directory of `config`, runs
    /// crash recovery on it (uploads a dead process left `saving` go back to
    /// `queued`, their data removed), and returns the service.
    ///
    /// Fails when the directory, database or store cannot be opened, a rule
    /// file named in the config is bad, recovery fails, or the hashing
    /// threads cannot start.
    pub async fn open(config: &Config, clock: Arc<dyn Clock>) -> Result<App, OpenError> {
        let path = config.data_dir.clone();
        let keys = KeyManager::from_settings(&config.ingest, clock.clone())
            .map_err(OpenError::KeyManager)?;
        if std::fs::metadata(&path).is_ok_and(|metadata| !metadata.is_dir()) {
            return Err(OpenError::NotADirectory { path });
        }
        std::fs::create_dir_all(&path).map_err(|source| OpenError::CreateDir {
            path: path.clone(),
            source,
        })?;
        let sql = SqlRepo::open_sqlite(&path.join(DATABASE_FILE), clock.clone())
            .await
            .map_err(|source| OpenError::Repo {
                path: path.clone(),
                source,
            })?;
        let store = Store::filesystem(&path).map_err(|source| OpenError::Store {
            path: path.clone(),
            source,
        })?;
        recovery::recover(&sql, &store).await?;
        let stack =
            repo::stack(sql, store.clone(), &config.repo, clock.clone()).map_err(|source| {
                OpenError::Repo {
                    path: path.clone(),
                    source,
                }
            })?;
        let pool = HashPool::per_core().map_err(OpenError::HashPool)?;
        let settings = Settings {
            data_dir: path,
            ingest: config.ingest.clone(),
            repo: config.repo.clone(),
            store_id: store.id(),
            hash_threads: pool.n_threads(),
        };
        Ok(App {
            uploader: Uploader {
                repo: Arc::new(stack),
                store,
                settings: config.ingest.clone(),
                clock,
                pool,
                keys,
            },
            settings,
        })
    }
}
