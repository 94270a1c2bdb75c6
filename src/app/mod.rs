//! The application facade: [`App`], the use cases of an image service as
//! methods (create, show, list, update, delete, deactivate, reactivate,
//! tags, upload, download, stage/import, members), which the CLI commands and the HTTP handlers
//! adapt in a few lines each (parse, call one method, map the result).
//!
//! This module owns the decisions those front ends must not make: Glance's
//! rules for a change set ([`PatchOp`]), which status changes are allowed
//! and what to say when they are not, that a signed image needs a key
//! manager, that a reactivated image must have verified data. It must not
//! know JSON (that is `wire`'s), print, parse arguments or know HTTP. Every
//! record it writes goes through two calls, one `repo.add` (create) and one
//! `repo.save` (`App::store_change`, a typed `repo::Change` built from the
//! record the repository returned, written as a compare-and-swap on that
//! record's revision); deletes go through `repo.remove` with the record
//! read, and uploads write through `ingest`.
//!
//! Files: `open` (the one opener of a data directory, [`App::open`]), `error`, `records`
//! (create, show, list, delete, tags, the save funnel), `update` (the change
//! set and its rules), `lifecycle` (deactivate, reactivate), `upload`, `import` (glance-direct),
//! `download`, `members` (image sharing).

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::IngestSettings;
use crate::ingest::Uploader;
use crate::repo::{RepoOptions, Stack};

mod download;
mod error;
mod import;
mod lifecycle;
mod members;
mod open;
mod records;
mod sweep;
mod update;
mod upload;

pub use crate::context::RequestContext;
pub use crate::ingest::sweep::{SweepError, SweepReport, SweptObject, SweptStaging};
pub use crate::ingest::{Progress, UploadData};
pub use crate::repo::ListQuery;
pub use crate::store::ByteRange;
pub use crate::wire::{Attribute, CreateRequest, PatchOp};
pub use download::{Download, DownloadStream, Output, ResolvedRange};
pub use error::Error;
pub use lifecycle::StatusAction;
pub use open::OpenError;
pub use records::Page;

/// An opened image service: the repository stack, the store, the uploader
/// with its shared hash pool and key manager, the clock and the settings.
///
/// Open it once ([`App::open`]) and share it (`Arc<App>`): every method
/// takes `&self` and the caller's [`RequestContext`].
pub struct App {
    /// Uploads; also holds the repository stack, the store, the clock,
    /// the hash pool and the key manager every other use case shares.
    uploader: Uploader<Stack>,
    settings: Settings,
    /// What [`App::open`] collected: the dead uploads it recovered, and
    /// what the bounded sweep at open removed.
    at_open: SweepReport,
}

/// The effective settings of an opened [`App`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The data directory (database, store, locks).
    pub data_dir: PathBuf,
    /// Upload settings (size cap, os_hash algorithm, signature policy,
    /// certificate directory, trusted certificates, format policy).
    pub ingest: IngestSettings,
    /// The repository layers' settings (`[repo]`).
    pub repo: RepoOptions,
    /// The store id Glance reports in `stores` (`fs`).
    pub store_id: &'static str,
    /// Threads in the shared hash pool (one per core).
    pub hash_threads: usize,
    /// This node's id in upload leases (and logs).
    pub node_id: String,
    /// The database (a path, or a URL without its password).
    pub database: String,
    /// The store as the database binds it (`data-dir`, `file:///…`, `s3://BUCKET/PREFIX`).
    pub store: String,
    /// How long an upload lease lasts without renewal.
    pub upload_lease: std::time::Duration,
}

impl App {
    /// The effective settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The dead uploads opening recovered (returned to `queued`, data removed).
    pub fn recovered_at_open(&self) -> &[crate::image::ImageId] {
        &self.at_open.recovered
    }

    /// Everything opening collected: recovered dead uploads, and what the
    /// bounded sweep at open removed (`sweep_at_open`).
    pub fn swept_at_open(&self) -> &SweepReport {
        &self.at_open
    }

    fn repo(&self) -> &Arc<Stack> {
        &self.uploader.repo
    }

    fn clock(&self) -> &dyn Clock {
        self.uploader.clock.as_ref()
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
