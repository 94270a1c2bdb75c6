//! OpenStack identity and key manager: client-side authentication with
//! Keystone v3 (the settings users already have from openstackclient:
//! flags, `OS_*`, clouds.yaml), Keystone token validation for a service (as
//! keystonemiddleware does), and Barbican as the certificate store cursive
//! reads through castellan.
//!
//! - [`ClientSettings::load`] merges `--os-*` flags > `OS_*` > clouds.yaml.
//! - [`Session`] authenticates (`POST /v3/auth/tokens`) and re-authenticates
//!   before expiry; its token's [`Identity`] carries roles and the catalog.
//! - [`TokenValidator::validate`] turns a user's token into an [`Identity`],
//!   or says whether it was rejected (401) or Keystone was unavailable (503).
//! - [`Barbican::fetch_certificates`] reads certificates with a caller's
//!   token into a [`crate::verify::Prefetched`] for the synchronous verifier;
//!   [`Barbican::store_certificate`] stores one.
//!
//! This module owns every HTTP exchange with Keystone and Barbican. It must
//! not verify signatures or decide policy, and no password, secret or
//! token leaves it in a log line, a `Debug` string or an error message
//! ([`Secret`]).

mod barbican;
mod cache;
mod catalog;
mod clouds;
mod env;
mod http;
mod keystone;
mod secret;
mod settings;
mod validator;

pub use barbican::{
    Barbican, BarbicanError, BarbicanOptions, Caller, FetchError, SERVICE_TYPE, StoreError,
    StoredSecret,
};
pub use catalog::{Catalog, CatalogError, Interface, barbican_v1};
pub use env::Environment;
/// The HTTP client settings every OpenStack call uses, for the Glance client (`crate::glance`).
pub(crate) use http::builder as client_builder;
pub use keystone::{AuthError, AuthToken, Identity, Session};
pub use secret::Secret;
pub(crate) use secret::scrub;
pub use settings::{
    ClientSettings, Credentials, DomainRef, ProjectRef, RawSettings, Scope, SettingsError,
    TlsSettings, UserRef,
};
pub use validator::{
    KeystoneUnavailable, TokenRejected, TokenValidator, ValidateError, ValidatorOptions,
};

#[cfg(test)]
mod tests {
    //! No password, secret or token in any `Debug` or `Display` of the
    //! settings, the clients or any error, even when a server echoes one.

    use std::sync::Arc;

    use super::*;
    use crate::clock::SystemClock;
    use crate::verify::SourceError;

    const PASSWORD: &str = "PW-unit-5c1e";
    const APP_SECRET: &str = "AC-unit-77d0";
    const TOKEN: &str = "gAAAAA-TOK-unit-91b2";

    fn secrets() -> [Secret; 3] {
        [
            Secret::new(PASSWORD),
            Secret::new(APP_SECRET),
            Secret::new(TOKEN),
        ]
    }

    /// A server message that echoes every secret (as a schema error might).
    fn echo() -> String {
        let [password, app, token] = secrets();
        http::error_message(
            format!(
                "{{\"error\": {{\"message\": \"Invalid input for field 'password': '{PASSWORD}' / {APP_SECRET} / {TOKEN}\"}}}}"
            )
            .as_bytes(),
            &[&password, &app, &token],
        )
    }

    fn assert_clean(text: &str) {
        for secret in [PASSWORD, APP_SECRET, TOKEN] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }

    fn check(error: &(dyn std::error::Error + 'static)) {
        let mut text = format!("{error} {error:?}");
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(&format!(" {cause} {cause:?}"));
            source = cause.source();
        }
        assert_clean(&text);
    }

    async fn transport_error() -> reqwest::Error {
        // A real transport error from reqwest (nothing listens on port 1).
        reqwest::Client::new()
            .get("http://127.0.0.1:1/v3")
            .header("X-Auth-Token", TOKEN)
            .send()
            .await
            .expect_err("nothing listens on port 1")
    }

    #[tokio::test]
    async fn no_secret_in_any_debug_or_error() {
        let env = Environment::new(
            [
                ("OS_AUTH_URL", "http://127.0.0.1:1/v3"),
                ("OS_USERNAME", "alice"),
                ("OS_PASSWORD", PASSWORD),
                ("OS_APPLICATION_CREDENTIAL_SECRET", APP_SECRET),
                ("OS_TOKEN", TOKEN),
            ],
            "/nonexistent",
        );
        let raw = env.raw_settings().unwrap();
        let settings = ClientSettings::resolve(raw.clone(), "test".into()).unwrap();
        let session = Arc::new(Session::new(settings.clone()).unwrap());
        let validator = TokenValidator::new(
            session.clone(),
            ValidatorOptions::default(),
            Arc::new(SystemClock),
        );
        let barbican = Barbican::new(
            &settings.tls,
            BarbicanOptions::default(),
            Arc::new(SystemClock),
        )
        .unwrap();
        assert_clean(&format!(
            "{env:?} {raw:?} {settings:?} {session:?} {validator:?} {barbican:?}"
        ));

        // Real failures through the real code paths (nothing listens).
        let auth = session.token().await.unwrap_err();
        assert!(auth.is_unavailable());
        check(&auth);
        check(&validator.validate(TOKEN).await.unwrap_err());
        let identity_json = br#"{"token":{"expires_at":"2030-01-01T00:00:00Z","user":{"id":"u"},
            "catalog":[{"type":"key-manager","endpoints":[{"interface":"public","url":"http://127.0.0.1:1"}]}]}}"#;
        let identity = keystone::Identity::from_document(identity_json).unwrap();
        let token = Secret::new(TOKEN);
        let caller = Caller::Token {
            token: &token,
            identity: &identity,
        };
        check(
            &barbican
                .fetch_certificates(&caller, &["6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55"])
                .await
                .unwrap_err(),
        );
        check(
            &barbican
                .store_certificate(&caller, "n", b"der")
                .await
                .unwrap_err(),
        );

        // Every variant, with a server message that echoed the secrets.
        let url = "http://127.0.0.1:1/v3".to_owned();
        let message = echo();
        assert!(message.contains("<redacted>"), "{message}");
        let errors: Vec<Box<dyn std::error::Error + 'static>> = vec![
            Box::new(AuthError::Unreachable {
                url: url.clone(),
                source: transport_error().await,
            }),
            Box::new(AuthError::Rejected {
                url: url.clone(),
                origin: "o".into(),
                message: message.clone(),
            }),
            Box::new(AuthError::Refused {
                url: url.clone(),
                origin: "o".into(),
                status: 400,
                message: message.clone(),
            }),
            Box::new(AuthError::ServerError {
                url: url.clone(),
                status: 500,
                message: message.clone(),
            }),
            Box::new(AuthError::BadResponse {
                url: url.clone(),
                reason: message.clone(),
            }),
            Box::new(ValidateError::from(TokenRejected::NotRecognized {
                message: message.clone(),
            })),
            Box::new(ValidateError::from(
                KeystoneUnavailable::ServiceTokenRejected {
                    url: url.clone(),
                    message: message.clone(),
                },
            )),
            Box::new(ValidateError::from(
                KeystoneUnavailable::ServiceNotAuthorized {
                    url: url.clone(),
                    message: message.clone(),
                },
            )),
            Box::new(ValidateError::from(KeystoneUnavailable::ServerError {
                url: url.clone(),
                status: 503,
                message: message.clone(),
            })),
            Box::new(BarbicanError::Unauthorized {
                url: url.clone(),
                message: message.clone(),
            }),
            Box::new(BarbicanError::Status {
                url: url.clone(),
                status: 500,
                message: message.clone(),
            }),
            Box::new(StoreError::Forbidden {
                url: url.clone(),
                message: message.clone(),
            }),
            Box::new(SourceError::Forbidden {
                id: "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55".into(),
                reason: message.clone(),
            }),
            Box::new(FetchError::NoToken),
        ];
        for error in &errors {
            check(error.as_ref());
        }

        // Settings errors, from settings full of secrets.
        for broken in [
            RawSettings {
                auth_url: None,
                ..raw.clone()
            },
            RawSettings {
                auth_type: Some("v3oidc".into()),
                ..raw.clone()
            },
            RawSettings {
                interface: Some("private".into()),
                ..raw.clone()
            },
            RawSettings {
                auth_url: Some("ftp://x".into()),
                ..raw.clone()
            },
            RawSettings {
                auth_type: Some("password".into()),
                username: None,
                ..raw.clone()
            },
        ] {
            check(&ClientSettings::resolve(broken, "test".into()).unwrap_err());
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("clouds.yaml"),
            format!("clouds:\n  a:\n    auth: {{password: {PASSWORD}\n"),
        )
        .unwrap();
        let env = Environment::new([("OS_CLOUD", "a")], dir.path());
        check(&ClientSettings::load(RawSettings::default(), None, &env).unwrap_err());
    }
}
