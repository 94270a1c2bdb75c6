//! The client side of the image pipeline: check and publish images in any
//! Glance image API v2 (the real OpenStack Glance, or `portcullis serve`).
//!
//! - [`connect`] resolves the endpoint and token as openstackclient does
//!   (`--os-image-url`/`OS_IMAGE_URL`, `--os-token`, or Keystone's catalog).
//! - [`Client`] speaks the image API (show, list, create, upload,
//!   download, delete) with timeouts, retries of transient failures and the
//!   server's reason in every error.
//! - [`Checker`] checks one image: its data streamed once through the same
//!   one-pass pump an upload uses (signature, md5, os_hash, size, format
//!   inspector), nothing written to disk.
//! - [`audit()`] and [`verify_ids`] check many, N at a time, and
//!   [`report`] renders the outcome as text, JSON or JUnit XML.
//! - [`upload()`] publishes one file: inspected and signed locally, then
//!   created and uploaded, cleaned up when refused.
//!
//! This module must not print (the CLI does) and never counts a check it
//! could not finish as passed.

mod audit;
mod check;
mod client;
mod connect;
mod pass;
mod reason;
pub mod report;
mod upload;

pub use audit::{Audit, AuditQuery, Observer, Summary, Verdict, audit, verify_ids};
pub use check::{
    Category, CheckFailure, CheckOptions, Checker, DigestCheck, FormatCheck, ImageCheck,
    NoProgress, Progress, SignatureCheck, SizeCheck,
};
pub use client::{
    Auth, Client, ClientError, ClientOptions, ConnectError, DataStream, Download, PAGE_SIZE,
    RetryPolicy,
};
pub use connect::{ConnectOptions, Connection, IMAGE_SERVICE_TYPE, connect};
pub use upload::{
    Cleanup, LocalPass, Phase, Signing, UploadError, UploadProgress, UploadRequest, Uploaded,
    upload,
};
