//! `portcullis serve`: Glance's image API v2 on 127.0.0.1:9292 (by default)
//! over the embedded data directory.
//!
//! Thin: loads the settings, opens the data directory (crash recovery runs
//! there), builds the authenticator (with `--auth keystone`, a token
//! validator authenticating as the service user of this process's
//! OpenStack client settings), binds, prints `listening on <url>` on
//! stdout, and runs the server loop until SIGTERM/SIGINT. It must not
//! handle requests (the library's `api` does).
//!
//! Exit codes: 0 after a signal once every connection closed (uploads cut
//! by the shutdown timeout were rolled back to `queued`); 1 when the
//! shutdown had to abandon transfers whose rollback it could not confirm
//! (the next start recovers them); 2 when the server cannot start (config,
//! token file, data directory, address in use) or its accept loop fails.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::openstack::{KeyManagerArg, OpenStackArgs};
use super::report::error_chain;
use super::{Exit, stdio};
use crate::api::server::{self, Outcome};
use crate::api::{self, ApiState, AuthMode, Authenticator, Lifecycle};
use crate::app::App;
use crate::clock::Clock;
use crate::config::{Config, KeyManagerKind, Overrides};
use crate::openstack::{Session, TokenValidator, ValidatorOptions};

/// Arguments of `portcullis serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:9292, or [server] bind); port 0 picks a free port.
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// The data directory (SQLite database, image store, locks, portcullis.toml).
    #[arg(long, env = "PORTCULLIS_DATA_DIR", default_value = crate::config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Directory of signing certificates (`<uuid>.pem` or DER), as Barbican would serve them.
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// Config file (default: <data-dir>/portcullis.toml when it exists).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The metadata database: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB
    /// (default: <data-dir>/portcullis.db; config `database`).
    #[arg(
        long,
        env = "PORTCULLIS_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database: Option<String>,
    /// The image store: file:///DIR or s3://BUCKET[/PREFIX]?endpoint=URL&region=R
    /// (default: the data directory; config `store`).
    #[arg(long, env = "PORTCULLIS_STORE_URL", value_name = "URL")]
    store: Option<String>,
    /// This node's id in upload leases and logs (default: config `node_id`, else host name + machine id).
    #[arg(long, env = "PORTCULLIS_NODE_ID", value_name = "ID")]
    node_id: Option<String>,
    /// How requests are authenticated (default: [server] auth, else noauth);
    /// keystone validates X-Auth-Token as the service user of the OpenStack client settings.
    #[arg(long, value_enum)]
    auth: Option<AuthMode>,
    /// Where signing certificates come from: barbican reads them with each request's own token (needs --auth keystone).
    #[arg(long, value_enum)]
    key_manager: Option<KeyManagerArg>,
    #[command(flatten)]
    openstack: OpenStackArgs,
}

/// Runs the server until a signal stops it.
pub(crate) fn run(args: ServeArgs) -> Exit {
    match serve(args) {
        Ok(Outcome::Clean) => Exit::Success,
        Ok(Outcome::Abandoned { transfers }) => {
            stdio::eline(&format!(
                "error: shutdown abandoned {transfers} transfer(s) before their rollback finished; the next start recovers them"
            ));
            Exit::Rejected
        }
        Err(message) => {
            stdio::eline(&format!("error: {message}"));
            Exit::Error
        }
    }
}

fn serve(args: ServeArgs) -> Result<Outcome, String> {
    let clock: Arc<dyn Clock> = Arc::from(super::clock_from_env()?);
    let overrides = Overrides {
        config_file: args.config.clone(),
        cert_dir: args.cert_dir.clone(),
        database: args.database.clone(),
        store: args.store.clone(),
        node_id: args.node_id.clone(),
        key_manager: args.key_manager.map(KeyManagerKind::from),
        ..Overrides::default()
    };
    let mut config = Config::load(&args.data_dir, &overrides).map_err(|err| error_chain(&err))?;
    let mut options = config.server.clone();
    if let Some(bind) = args.bind {
        options.bind = bind;
    }
    if let Some(auth) = args.auth {
        options.auth = auth;
    }
    let validator = match options.auth {
        AuthMode::Keystone => {
            let settings = args
                .openstack
                .settings()
                .map_err(|err| format!("[server] auth = \"keystone\": {}", error_chain(&err)))?;
            // Barbican is reached with each request's token, but over the
            // TLS settings, interface and region of the service's own.
            config.ingest.barbican.inherit(&settings);
            let session =
                Session::with_clock(settings, clock.clone()).map_err(|err| error_chain(&err))?;
            let validator_options = ValidatorOptions {
                cache_ttl: std::time::Duration::from_secs(options.token_cache_time),
                ..ValidatorOptions::default()
            };
            Some(TokenValidator::new(
                Arc::new(session),
                validator_options,
                clock.clone(),
            ))
        }
        AuthMode::Noauth | AuthMode::Tokens => None,
    };
    if config.ingest.key_manager == KeyManagerKind::Barbican && options.auth != AuthMode::Keystone {
        return Err(
            "key_manager = \"barbican\" reads certificates with each request's Keystone token: it needs --auth keystone ([server] auth = \"keystone\")"
                .to_owned(),
        );
    }
    let authenticator =
        Authenticator::from_options(&options, validator).map_err(|err| error_chain(&err))?;
    if options.auth == AuthMode::Noauth && !options.bind.ip().is_loopback() {
        tracing::warn!(
            bind = %options.bind,
            "auth = \"noauth\" on a non-loopback address: anyone who can connect acts as an administrator"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the async runtime: {err}"))?;
    runtime.block_on(async move {
        // Opening runs crash recovery: images left `saving` by a killed
        // server go back to `queued` before anything is served.
        let app = App::open(&config, clock)
            .await
            .map_err(|err| error_chain(&err))?;
        let listener = server::bind(options.bind)
            .await
            .map_err(|err| error_chain(&err))?;
        let local = listener
            .local_addr()
            .map_err(|err| format!("cannot read the bound address: {err}"))?;
        let signals = server::signals().map_err(|err| error_chain(&err))?;
        let grace = options.shutdown_grace();
        let app = Arc::new(app);
        // Housekeeping: a sweep now and every sweep_interval_seconds, dead
        // uploads of any node recovered every half lease.
        let sweeper = app.spawn_sweeper(config.backends.sweep_interval);
        tracing::info!(
            address = %local,
            auth = authenticator.mode(),
            node = %app.settings().node_id,
            database = %app.settings().database,
            store = %app.settings().store,
            "portcullis serve started"
        );
        // A supervisor that stopped reading our stdout must not stop the
        // server: the address is in the log line above too.
        let _ = stdio::line(&format!("listening on http://{local}"));
        let lifecycle = Lifecycle::new();
        let state = ApiState::new(app, options, authenticator, lifecycle.clone());
        let outcome = server::run(listener, api::app(state), lifecycle, grace, signals)
            .await
            .map_err(|err| error_chain(&err));
        sweeper.abort();
        outcome
    })
}
