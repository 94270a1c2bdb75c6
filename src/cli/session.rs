//! One `ingest` or `images` run: the clock (`PORTCULLIS_NOW`), the config
//! (file + flags), the caller, the async runtime and the opened
//! `app::App`, and the run's end (printed through `output` or `report`).
//!
//! It must not decide anything about images: it opens, runs one future,
//! and hands the outcome on.

use std::sync::Arc;

use super::args::{RepoArgs, UploadArgs};
use super::output::{Done, print_done};
use super::report::{Channel, CliError, error_chain, report};
use super::{Exit, OutputFormat};
use crate::app::App;
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
        repo.apply_backends(&mut overrides);
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
