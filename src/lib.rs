//! portcullis: verify, inspect and store signed virtual-machine images the way
//! OpenStack Glance and cursive do, natively and in one pass over the data.
//!
//! The modules are listed in reading order: the domain first, then the
//! single-purpose engines (hashing, signature verification, disk-format
//! inspection), then the storage and metadata layers, then the ingest
//! pipeline that ties them together, then the application facade [`app`]
//! whose methods are the use cases. The command-line front end lives in
//! [`cli`]; it only parses arguments, calls the facade and prints.
//!
//! See ARCHITECTURE.md for the map and the invariants.

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
mod failpoint;
pub mod glance;
pub mod hash;
pub mod image;
pub mod ingest;
pub mod inspect;
pub mod key_manager;
pub mod openstack;
pub mod repo;
pub mod store;
pub mod text;
pub mod verify;
pub mod wire;
