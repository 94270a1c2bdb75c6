//! The integration-test binary: every test that drives the real `portcullis`
//! binary or a real database, store or server lives in a module here.

mod hardening;
mod images;
mod ingest;
mod inspect;
mod openstack;
mod output;
mod repo;
mod rollback;
mod scenario;
mod sign;
mod store;
mod support;
mod verify;
