//! The integration-test binary: every test that drives the real `portcullis`
//! binary or a real database, store or server lives in a module here.

mod api;
mod api_images;
mod api_import;
mod api_members;
mod compat;
mod glance;
mod hardening;
mod images;
mod ingest;
mod inspect;
mod leftovers;
mod members_cli;
mod openstack;
mod openstack_serve;
mod output;
mod repo;
mod rollback;
mod scale;
mod scenario;
mod serve;
mod sign;
mod store;
mod support;
mod verify;
