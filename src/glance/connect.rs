//! Which Glance to talk to and with what token, from the settings
//! openstackclient users already have:
//! 1. `--os-image-url` (or `OS_IMAGE_URL`) names the endpoint; with
//!    `--os-token`/`OS_TOKEN` that token is sent as is (glanceclient's
//!    `--os-auth-token`, openstackclient's admin_token), with Keystone
//!    settings (`OS_CLOUD`, `OS_AUTH_URL`, …) a Keystone token is, and with
//!    neither no token is (a Glance without Keystone);
//! 2. otherwise Keystone is asked (`OS_CLOUD` + clouds.yaml or `OS_*`), and
//!    the token's catalog names the `image` endpoint for the interface and
//!    region.
//!
//! A Keystone session is also what Barbican needs (`--key-manager
//! barbican`): it is made whenever Keystone settings are present or it is
//! needed. This module owns that resolution; it must not send anything to
//! Glance, nor put a token in an error.

use std::sync::Arc;

use super::client::{Auth, Client, ClientOptions, ConnectError};
use crate::openstack::{ClientSettings, Environment, RawSettings, Session, TlsSettings};

/// The catalog's service type for Glance.
pub const IMAGE_SERVICE_TYPE: &str = "image";

/// What the command line says about the connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `--os-image-url`; `OS_IMAGE_URL` when absent.
    pub image_url: Option<String>,
    /// The `--os-*` flags (the top layer over `OS_*` and clouds.yaml).
    pub flags: RawSettings,
    /// `--os-cloud`.
    pub cloud: Option<String>,
    /// A Keystone session is required whatever the endpoint (Barbican).
    pub need_session: bool,
    /// Timeouts and retries (`tls` is filled from the settings).
    pub client: ClientOptions,
}

/// A resolved connection.
#[derive(Debug)]
pub struct Connection {
    /// The Glance client.
    pub client: Arc<Client>,
    /// The Keystone session, when Keystone settings were given or needed.
    pub session: Option<Arc<Session>>,
}

/// Resolves `options` in `env` into a client (and a session), asking
/// Keystone for a token and the catalog only when no endpoint was given.
///
/// Fails when the settings are incomplete, Keystone refuses or cannot be
/// reached, or the catalog has no image endpoint.
pub async fn connect(
    options: ConnectOptions,
    env: &Environment,
) -> Result<Connection, ConnectError> {
    let from_env = env.raw_settings().map_err(ConnectError::Settings)?;
    let explicit = options.flags.clone().over(from_env);
    let cloud_named = options.cloud.is_some() || env.var("OS_CLOUD").is_some();
    let image_url = options
        .image_url
        .clone()
        .or_else(|| env.var("OS_IMAGE_URL"));
    let keystone_settings = || {
        ClientSettings::load(options.flags.clone(), options.cloud.as_deref(), env)
            .map_err(ConnectError::Settings)
    };
    let session = |settings: ClientSettings| {
        Session::new(settings)
            .map(Arc::new)
            .map_err(ConnectError::Settings)
    };
    match image_url {
        Some(url) => {
            let direct_token = explicit.token.clone().filter(|_| !options.need_session);
            let wants_keystone = options.need_session
                || cloud_named
                || (direct_token.is_none() && explicit.has_auth());
            let (auth, tls, session) = if wants_keystone {
                let settings = keystone_settings()?;
                let tls = settings.tls.clone();
                let session = session(settings)?;
                let auth = match direct_token {
                    Some(token) => Auth::Token(token),
                    None => Auth::Session(session.clone()),
                };
                (auth, tls, Some(session))
            } else {
                let tls = TlsSettings {
                    cacert: explicit.cacert.clone(),
                    insecure: explicit.insecure.unwrap_or(false),
                };
                let auth = match direct_token {
                    Some(token) => Auth::Token(token),
                    None => Auth::None,
                };
                (auth, tls, None)
            };
            connection(&url, auth, tls, options.client, session)
        }
        None => {
            let settings = keystone_settings()?;
            let tls = settings.tls.clone();
            let interface = settings.interface;
            let region = settings.region_name.clone();
            let session = session(settings)?;
            let token = session.token().await.map_err(ConnectError::Auth)?;
            let endpoint = token
                .identity()
                .catalog
                .endpoint(IMAGE_SERVICE_TYPE, interface, region.as_deref())
                .map_err(|source| ConnectError::Catalog { source })?
                .to_owned();
            tracing::debug!(%endpoint, "image endpoint from the catalog");
            connection(
                &endpoint,
                Auth::Session(session.clone()),
                tls,
                options.client,
                Some(session),
            )
        }
    }
}

fn connection(
    endpoint: &str,
    auth: Auth,
    tls: TlsSettings,
    options: ClientOptions,
    session: Option<Arc<Session>>,
) -> Result<Connection, ConnectError> {
    let client = Client::new(endpoint, auth, ClientOptions { tls, ..options })?;
    Ok(Connection {
        client: Arc::new(client),
        session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Environment {
        Environment::new(vars.iter().copied(), "/nonexistent").with_site_config_dir("/nonexistent")
    }

    #[tokio::test]
    async fn an_image_url_without_keystone_needs_no_token() {
        let connection = connect(
            ConnectOptions {
                image_url: Some("http://127.0.0.1:1/v2".into()),
                ..ConnectOptions::default()
            },
            &env(&[]),
        )
        .await
        .unwrap();
        assert_eq!(connection.client.endpoint(), "http://127.0.0.1:1");
        assert!(connection.session.is_none());
    }

    #[tokio::test]
    async fn os_image_url_and_os_token_come_from_the_environment() {
        let connection = connect(
            ConnectOptions::default(),
            &env(&[
                ("OS_IMAGE_URL", "http://127.0.0.1:1"),
                ("OS_TOKEN", "tok-secret-1"),
            ]),
        )
        .await
        .unwrap();
        assert!(connection.session.is_none());
        let debug = format!("{:?}", connection.client);
        assert!(!debug.contains("tok-secret-1"), "{debug}");
    }

    #[tokio::test]
    async fn without_an_endpoint_keystone_settings_are_required() {
        let err = connect(ConnectOptions::default(), &env(&[]))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "openstack_settings", "{err}");
        assert!(err.to_string().contains("OS_AUTH_URL"), "{err}");
    }

    #[tokio::test]
    async fn keystone_unreachable_is_named() {
        let err = connect(
            ConnectOptions::default(),
            &env(&[
                ("OS_AUTH_URL", "http://127.0.0.1:1/v3"),
                ("OS_USERNAME", "alice"),
                ("OS_PASSWORD", "pw-secret-2"),
                ("OS_PROJECT_NAME", "demo"),
            ]),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), "keystone_unavailable", "{err}");
        assert!(!format!("{err:?}").contains("pw-secret-2"));
    }
}
