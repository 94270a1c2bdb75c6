//! How an `ingest` or `images` failure is reported: [`CliError`] (usage,
//! the library's `app::Error`, or opening the data directory), its kind and
//! exit code, and the report itself (text on stderr, or one JSON document
//! with the kind, the message and the image an upload or download failed for).
//!
//! It must not decide anything: it classifies what the library says.

use super::interrupt::Signal;
use super::stdio;
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
    /// SIGINT or SIGTERM stopped an upload (exit 130 or 143); the upload
    /// rolled back as any failed upload does.
    #[error(
        "interrupted by {signal}: the upload stopped; its data was removed and the image is queued again"
    )]
    Interrupted {
        /// The signal.
        signal: Signal,
        /// The upload's failure (the stream ended with the signal).
        #[source]
        source: app::Error,
    },
}

impl CliError {
    fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) | CliError::Open(_) | CliError::OpenStack { .. } => Exit::Error,
            CliError::App(err) if err.is_rejection() => Exit::Rejected,
            CliError::App(_) => Exit::Error,
            CliError::Interrupted { signal, .. } => Exit::Interrupted(*signal),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            CliError::Usage(_) => "usage",
            CliError::App(err) => err.kind(),
            CliError::Open(_) => "open_failed",
            CliError::OpenStack { kind, .. } => kind,
            CliError::Interrupted { .. } => "interrupted",
        }
    }

    /// The image an upload or download failed for, for the report.
    fn image_id(&self) -> Option<String> {
        match self {
            CliError::App(err) | CliError::Interrupted { source: err, .. } => {
                err.transfer_image().map(|id| id.to_string())
            }
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
    let text = || match &image_id {
        Some(id) if !message.contains(id.as_str()) => {
            stdio::eline(&format!("error: image {id}: {message}"))
        }
        _ => stdio::eline(&format!("error: {message}")),
    };
    match format {
        OutputFormat::Text => text(),
        OutputFormat::Json => {
            let document = serde_json::json!({
                "error": { "kind": err.kind(), "message": message },
                "image_id": image_id,
            });
            match channel {
                // The command failed already, so its exit code stands; but
                // the report may name an image left `queued`: when stdout
                // cannot take it, it goes to stderr as text.
                Channel::Stdout => {
                    if stdio::json(&document).is_err() {
                        text();
                    }
                }
                Channel::Stderr => stdio::ejson(&document),
            }
        }
    }
    err.exit()
}
