//! One `ingest` or `images` run: the clock (`PORTCULLIS_NOW`), the config
//! (file + flags), the caller, the async runtime and the opened
//! `app::App`; and how the run's failure is reported (text on stderr, or
//! one JSON document) with its exit code.
//!
//! It must not decide anything about images: it opens, runs one future,
//! and reports.

use std::sync::Arc;

use super::args::{RepoArgs, UploadArgs};
use super::output::{Done, print_done};
use super::{Exit, OutputFormat};
use crate::app::{self, App, OpenError};
use crate::clock::Clock;
use crate::config::{Config, Overrides};
use crate::context::RequestContext;

/// One command's opened data directory, runtime and caller.
pub(crate) struct Session {
    runtime: tokio::runtime::Runtime,
    pub(crate) app: App,
    pub(crate) ctx: RequestContext,
    format: OutputFormat,
    /// The command writes image data to stdout: reports go to stderr.
    pub(crate) stdout_carries_data: bool,
}

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
}

impl CliError {
    fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) | CliError::Open(_) => Exit::Error,
            CliError::App(err) if err.is_rejection() => Exit::Rejected,
            CliError::App(_) => Exit::Error,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            CliError::Usage(_) => "usage",
            CliError::App(err) => err.kind(),
            CliError::Open(_) => "open_failed",
        }
    }

    /// The image an upload or download failed for, for the report.
    fn image_id(&self) -> Option<String> {
        match self {
            CliError::App(err) => err.transfer_image().map(|id| id.to_string()),
            CliError::Usage(_) | CliError::Open(_) => None,
        }
    }
}

impl Session {
    /// Loads the config, builds the caller, starts the runtime and opens
    /// the data directory (which runs crash recovery).
    ///
    /// Fails, after reporting, with the exit code to use.
    pub(crate) fn start(
        repo: &RepoArgs,
        upload: Option<&UploadArgs>,
        format: OutputFormat,
    ) -> Result<Session, Exit> {
        let fail = |err: CliError| report(Channel::Stdout, format, &err);
        let clock: Arc<dyn Clock> = match super::clock_from_env() {
            Ok(clock) => Arc::from(clock),
            Err(message) => return Err(fail(CliError::Usage(message))),
        };
        let mut overrides = Overrides {
            config_file: repo.config.clone(),
            ..Overrides::default()
        };
        if let Some(upload) = upload {
            upload.apply_to(&mut overrides);
        }
        let config = match Config::load(&repo.data_dir, &overrides) {
            Ok(config) => config,
            Err(err) => return Err(fail(CliError::Usage(error_chain(&err)))),
        };
        let ctx = match repo.context() {
            Ok(ctx) => ctx,
            Err(message) => return Err(fail(CliError::Usage(message))),
        };
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(err) => {
                return Err(fail(CliError::Usage(format!(
                    "cannot start the async runtime: {err}"
                ))));
            }
        };
        let app = match runtime.block_on(App::open(&config, clock)) {
            Ok(app) => app,
            Err(err) => return Err(fail(CliError::Open(err))),
        };
        Ok(Session {
            runtime,
            app,
            ctx,
            format,
            stdout_carries_data: false,
        })
    }

    /// Runs the command's future to completion.
    pub(crate) fn block_on<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// Prints the outcome and returns the exit code.
    pub(crate) fn finish(self, result: Result<Done, CliError>) -> Exit {
        match result {
            Ok(done) => {
                print_done(self.format, done);
                Exit::Success
            }
            Err(err) if self.stdout_carries_data => report(Channel::Stderr, self.format, &err),
            Err(err) => report(Channel::Stdout, self.format, &err),
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
enum Channel {
    /// Standard output (the one JSON document of `--format json`).
    Stdout,
    /// Standard error (when standard output carries image data).
    Stderr,
}

/// Reports a failure: stderr text, or one JSON document on `channel`; the
/// image id is included when an upload or download failed for one.
fn report(channel: Channel, format: OutputFormat, err: &CliError) -> Exit {
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
