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
use super::{Exit, OutputFormat, interrupt, stdio};
use crate::app::App;
use crate::clock::Clock;
use crate::config::{Config, KeyManagerKind, Overrides};
use crate::context::RequestContext;
use crate::openstack::AuthToken;

/// The token Barbican sees for this run: the user of the OpenStack client
/// settings (`--os-*` > `OS_*` > clouds.yaml), authenticated once. The
/// settings' TLS, interface and region become Barbican's unless
/// `[barbican]` names them.
async fn barbican_caller(
    upload: &UploadArgs,
    config: &mut Config,
    clock: Arc<dyn Clock>,
) -> Result<Arc<AuthToken>, CliError> {
    let settings = upload
        .openstack
        .settings()
        .map_err(|err| CliError::OpenStack {
            kind: "openstack_settings",
            message: error_chain(&err),
        })?;
    config.ingest.barbican.inherit(&settings);
    let session = crate::openstack::Session::with_clock(settings, clock).map_err(|err| {
        CliError::OpenStack {
            kind: "openstack_settings",
            message: error_chain(&err),
        }
    })?;
    session.token().await.map_err(|err| CliError::OpenStack {
        kind: if err.is_unavailable() {
            "keystone_unavailable"
        } else {
            "keystone_auth_failed"
        },
        message: error_chain(&err),
    })
}

/// One command's opened data directory, runtime and caller.
pub(crate) struct Session {
    runtime: tokio::runtime::Runtime,
    pub(crate) app: App,
    pub(crate) ctx: RequestContext,
    format: OutputFormat,
    /// The command writes image data to stdout: reports go to stderr.
    pub(crate) stdout_carries_data: bool,
    /// The command creates an image or gives it data (`ingest`, `images
    /// create`, `images upload`): when its output cannot be written, stderr
    /// still says what was committed, so a caller does not retry into a duplicate.
    pub(crate) commits: bool,
}

impl Session {
    /// Loads the config, builds the caller, starts the runtime and opens
    /// the data directory (which runs crash recovery and, unless
    /// `sweep_at_open` is false, the bounded sweep of leftovers).
    ///
    /// Fails, after reporting, with the exit code to use.
    pub(crate) fn start(
        repo: &RepoArgs,
        upload: Option<&UploadArgs>,
        format: OutputFormat,
        sweep_at_open: bool,
    ) -> Result<Session, Exit> {
        let fail = |err: CliError| report(Channel::Stdout, format, &err);
        let clock: Arc<dyn Clock> = match super::clock_from_env() {
            Ok(clock) => Arc::from(clock),
            Err(message) => return Err(fail(CliError::Usage(message))),
        };
        let mut overrides = Overrides {
            config_file: repo.config.clone(),
            sweep_at_open: (!sweep_at_open).then_some(false),
            ..Overrides::default()
        };
        repo.apply_backends(&mut overrides);
        if let Some(upload) = upload {
            upload.apply_to(&mut overrides);
        }
        let mut config = match Config::load(&repo.data_dir, &overrides) {
            Ok(config) => config,
            Err(err) => return Err(fail(CliError::Usage(error_chain(&err)))),
        };
        let mut ctx = match repo.context() {
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
        // Barbican: certificates are read as the user of the OpenStack
        // client settings; authenticated now, before anything is created.
        if let Some(upload) = upload
            && config.ingest.key_manager == KeyManagerKind::Barbican
        {
            match runtime.block_on(barbican_caller(upload, &mut config, clock.clone())) {
                Ok(token) => ctx.keystone = Some(token),
                Err(err) => return Err(fail(err)),
            }
        }
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
            commits: false,
        })
    }

    /// Runs the command's future to completion.
    pub(crate) fn block_on<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// Prints the outcome and returns the exit code (see `stdio::settle`
    /// for output that cannot be written, `interrupt` for 130 and 143).
    pub(crate) fn finish(self, result: Result<Done, CliError>) -> Exit {
        let channel = if self.stdout_carries_data {
            Channel::Stderr
        } else {
            Channel::Stdout
        };
        match result {
            Ok(done) => {
                let printed = print_done(self.format, &done);
                let committed = match &done {
                    Done::Image(image) if self.commits => {
                        Some(format!("image {} is {}", image.id, image.status))
                    }
                    Done::Image(_)
                    | Done::Images { .. }
                    | Done::Downloaded { .. }
                    | Done::Member(_)
                    | Done::Members(_) => None,
                };
                stdio::settle(Exit::Success, printed, committed.as_deref())
            }
            // The upload failed because a signal ended its stream.
            Err(CliError::App(source)) => {
                let err = match interrupt::caught() {
                    Some(signal) => CliError::Interrupted { signal, source },
                    None => CliError::App(source),
                };
                report(channel, self.format, &err)
            }
            Err(err) => report(channel, self.format, &err),
        }
    }
}
