//! How an `ingest` or `images` failure is reported: [`CliError`] (usage,
//! the library's `app::Error`, or opening the data directory), its kind and
//! exit code, and the report itself (text on stderr, or one JSON document
//! with the kind, the message and the image an upload or download failed for).
//!
//! It must not decide anything: it classifies what the library says.

use super::{Exit, OutputFormat};
use crate::app::{self, OpenError};

/// Why a command stopped before or after the library call.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad arguments or unreadable input files (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The library refused or failed.
    #[error(transparent)]
    App(#[from] app::Error),
    /// Opening the data directory failed (exit 2).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The OpenStack client settings or Keystone authentication failed
    /// before anything was created (exit 2).
    #[error("{message}")]
    OpenStack {
        /// `openstack_settings`, `keystone_auth_failed`, `keystone_unavailable`.
        kind: &'static str,
        /// What went wrong, with its causes (no secret: `openstack::Secret`).
        message: String,
    },
}

impl CliError {
    fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) | CliError::Open(_) | CliError::OpenStack { .. } => Exit::Error,
            CliError::App(err) if err.is_rejection() => Exit::Rejected,
            CliError::App(_) => Exit::Error,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            CliError::Usage(_) => "usage",
            CliError::App(err) => err.kind(),
            CliError::Open(_) => "open_failed",
            CliError::OpenStack { kind, .. } => kind,
        }
    }

    /// The image an upload or download failed for, for the report.
    fn image_id(&self) -> Option<String> {
        match self {
            CliError::App(err) => err.transfer_image().map(|id| id.to_string()),
            CliError::Usage(_) | CliError::Open(_) | CliError::OpenStack { .. } => None,
        }
    }
}

/// `{err:#}`-style text: the error and its causes, colon separated.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Where a JSON error document goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    /// Standard output (the one JSON document of `--format json`).
    Stdout,
    /// Standard error (when standard output carries image data).
    Stderr,
}

/// Reports a failure: stderr text, or one JSON document on `channel`; the
/// image id is included when an upload or download failed for one.
pub(crate) fn report(channel: Channel, format: OutputFormat, err: &CliError) -> Exit {
    let message = error_chain(err);
    let image_id = err.image_id();
    match format {
        OutputFormat::Text => match &image_id {
            Some(id) if !message.contains(id.as_str()) => {
                eprintln!("error: image {id}: {message}")
            }
            _ => eprintln!("error: {message}"),
        },
        OutputFormat::Json => {
            let document = serde_json::json!({
                "error": { "kind": err.kind(), "message": message },
                "image_id": image_id,
            });
            match channel {
                Channel::Stdout => println!("{document:#}"),
                Channel::Stderr => eprintln!("{document:#}"),
            }
        }
    }
    err.exit()
}
