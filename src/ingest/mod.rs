//! The one-pass upload pipeline and its commit protocol, and crash recovery.
//!
//! (commit protocol being built)

pub mod limit;
pub mod pump;
pub mod source;
pub mod workers;
