//! The one opener of a data directory or configured backends: [`App::open`]
//! creates what is missing, opens the database (`database`: SQLite in the
//! data directory by default, or PostgreSQL) and the store (`store`: the
//! data directory by default, or S3), checks that the two belong together
//! (the store binding), runs crash recovery and the bounded sweep of
//! leftovers (`sweep_at_open`), builds the repository stack,
//! starts the shared hash pool and sets up the key manager and this node's
//! upload leases.
//!
//! Every front end (each CLI command, the server) opens through here, so
//! recovery always runs before anything else touches the data. This module
//! must not serve requests.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::ingest::recovery::{self, RecoveryError};
use crate::ingest::sweep::{self, SweepReport};
use crate::ingest::workers::WorkerError;
use crate::ingest::{HashPool, Leases, Uploader};
use crate::key_manager::KeyManager;
use crate::repo::{self, DATABASE_FILE, LeaseHolder, ProcessId, SqlRepo};
use crate::store::{Store, StoreConfig};

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
    /// The configured database cannot be opened (`--database`).
    #[error("cannot open the database {url}")]
    Database {
        /// The URL, without its password.
        url: String,
        /// The repository's error (boxed: it is large).
        #[source]
        source: Box<repo::Error>,
    },
    /// The configured store cannot be opened or reached (`--store`).
    #[error("cannot open the image store {url}")]
    ConfiguredStore {
        /// The store URL (never with credentials).
        url: String,
        /// The store's error (boxed: it is large).
        #[source]
        source: Box<crate::store::Error>,
    },
    /// The database's images live in another store: opening it with this
    /// one would make every image's data missing, and a sweep would delete
    /// the other database's objects.
    #[error(
        "the database {database} belongs to the store {bound}, not to {configured}: give --store (or `store`) the store this database was created with, or --database a database of its own for this store"
    )]
    ForeignStore {
        /// The database URL, without its password.
        database: String,
        /// The store recorded in the database.
        bound: Box<str>,
        /// The store configured now.
        configured: Box<str>,
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
            OpenError::Database { source, .. } => source.kind(),
            OpenError::ConfiguredStore { source, .. } => source.kind(),
            OpenError::ForeignStore { .. } => "foreign_store",
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
        let backends = &config.backends;
        let keys = KeyManager::from_settings(&config.ingest, clock.clone())
            .map_err(OpenError::KeyManager)?;
        // The data directory holds the embedded database and store; with
        // both configured elsewhere it need not exist (a serve node).
        let embedded = backends.database.is_none() || backends.store.is_none();
        if std::fs::metadata(&path).is_ok_and(|metadata| !metadata.is_dir()) {
            return Err(OpenError::NotADirectory { path });
        }
        if embedded {
            std::fs::create_dir_all(&path).map_err(|source| OpenError::CreateDir {
                path: path.clone(),
                source,
            })?;
        }
        let (sql, database) = match &backends.database {
            None => {
                let sql = SqlRepo::open_sqlite(&path.join(DATABASE_FILE), clock.clone())
                    .await
                    .map_err(|source| OpenError::Repo {
                        path: path.clone(),
                        source,
                    })?;
                (sql, path.join(DATABASE_FILE).display().to_string())
            }
            Some(url) => {
                let shown = repo::sql::redact_url(url);
                let sql = SqlRepo::open(url, clock.clone()).await.map_err(|source| {
                    OpenError::Database {
                        url: shown.clone(),
                        source: Box::new(source),
                    }
                })?;
                (sql, shown)
            }
        };
        let (store, identity) = match &backends.store {
            None => {
                let store = Store::filesystem(&path).map_err(|source| OpenError::Store {
                    path: path.clone(),
                    source,
                })?;
                // The embedded store is bound by role, not by path, so a
                // data directory can be moved.
                (store, "data-dir".to_owned())
            }
            Some(configured) => {
                let fail = |source| OpenError::ConfiguredStore {
                    url: configured.to_string(),
                    source: Box::new(source),
                };
                let store = Store::from_config(configured).map_err(fail)?;
                store.check().await.map_err(fail)?;
                (store, store_identity(configured, &path))
            }
        };
        let bound = sql
            .bind_store(&identity)
            .await
            .map_err(|source| OpenError::Database {
                url: database.clone(),
                source: Box::new(source),
            })?;
        if bound != identity {
            return Err(OpenError::ForeignStore {
                database,
                bound: bound.into(),
                configured: identity.into(),
            });
        }
        let leases = Leases {
            sql: sql.clone(),
            holder: LeaseHolder {
                node_id: backends.node_id.clone(),
                process: ProcessId::current(),
            },
            ttl: backends.upload_lease,
        };
        let recovered = recovery::recover(&sql, &store, &leases).await?;
        // The bounded sweep: what a killed delete, import or upload left.
        // A failure here is a warning, never fatal: the next opener retries.
        let swept = if backends.sweep_at_open {
            let started = std::time::Instant::now();
            let swept = sweep::sweep_at_open(&sql, &store, backends.upload_lease).await;
            tracing::debug!(
                elapsed_us = started.elapsed().as_micros() as u64,
                "sweep at open done"
            );
            swept.unwrap_or_else(|err| {
                let cause = std::error::Error::source(&err)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                tracing::warn!(error = %err, %cause, kind = err.kind(), "collecting leftovers at open failed; the next command or `portcullis gc` retries");
                SweepReport::default()
            })
        } else {
            SweepReport::default()
        };
        let at_open = SweepReport { recovered, ..swept };
        // Notifications name the node, as Glance's `image.<host>` does,
        // unless the config names a publisher itself.
        let mut repo_options = config.repo.clone();
        if repo_options.notifications.publisher_id
            == repo::NotificationOptions::default().publisher_id
        {
            repo_options.notifications.publisher_id = format!("image.{}", backends.node_id);
        }
        let stack =
            repo::stack(sql, store.clone(), &repo_options, clock.clone()).map_err(|source| {
                OpenError::Repo {
                    path: path.clone(),
                    source,
                }
            })?;
        let pool = HashPool::per_core().map_err(OpenError::HashPool)?;
        let settings = Settings {
            data_dir: path,
            ingest: config.ingest.clone(),
            repo: repo_options,
            store_id: store.id(),
            hash_threads: pool.n_threads(),
            node_id: backends.node_id.clone(),
            database,
            store: identity,
            upload_lease: backends.upload_lease,
        };
        Ok(App {
            uploader: Uploader {
                repo: Arc::new(stack),
                store,
                settings: config.ingest.clone(),
                clock,
                pool,
                keys,
                leases,
            },
            settings,
            at_open,
        })
    }
}

/// What the store binding records for a configured store: `s3://BUCKET/PREFIX`
/// (not the endpoint, which differs between nodes behind different
/// addresses), or the store directory: `data-dir` when it is the data
/// directory (as the default), else its absolute path.
fn store_identity(config: &StoreConfig, data_dir: &std::path::Path) -> String {
    match config {
        StoreConfig::S3(s3) if s3.prefix.is_empty() => format!("s3://{}", s3.bucket),
        StoreConfig::S3(s3) => format!("s3://{}/{}", s3.bucket, s3.prefix),
        StoreConfig::Fs { root } => {
            let canonical = |path: &std::path::Path| std::fs::canonicalize(path).ok();
            match (canonical(root), canonical(data_dir)) {
                (Some(root), Some(data)) if root == data => "data-dir".to_owned(),
                (Some(root), _) => format!("file://{}", root.display()),
                (None, _) => format!("file://{}", root.display()),
            }
        }
    }
}
