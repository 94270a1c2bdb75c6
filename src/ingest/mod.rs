//! The one-pass upload pipeline, its commit protocol, verified downloads,
//! and crash recovery.
//!
//! commit.rs, download.rs, error.rs and recovery.rs join the build when the
//! repository and verification modules they use have landed.

pub mod limit;
pub mod properties;
pub mod pump;
pub mod source;
pub mod workers;
