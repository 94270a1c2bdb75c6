//! The one-pass upload pipeline, its commit protocol, verified downloads,
//! and crash recovery.
//!
//! [`Uploader`] runs one upload of any async stream of chunks (a file, stdin
//! or an HTTP body) through [`pump`] and commits it; [`download`] streams
//! stored data back out, verified; [`recovery`] returns uploads a dead
//! process left `saving` to `queued`. The data directory is opened (and
//! recovered) by `app::App::open`, the one opener. This module must not
//! read image data twice, and only [`commit`] moves an image from `saving`
//! to `active`.

pub mod commit;
pub mod download;
mod error;
mod lease;
pub mod limit;
pub mod properties;
pub mod pump;
pub mod recovery;
pub mod source;
pub mod stage;
pub mod sweep;
pub mod workers;

pub use commit::{Progress, UploadData, Uploader};
pub use error::{Error, repo_is_rejection};
pub use lease::Leases;
pub use workers::HashPool;
