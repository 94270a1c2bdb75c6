//! Keystone token validation for a service, as keystonemiddleware's
//! auth_token does it: `GET /v3/auth/tokens` with the user's token in
//! `X-Subject-Token`, authenticated with the service's own token, and a
//! bounded cache of the answers.
//!
//! This module owns the difference between "the token is no good" (the
//! server answers 401 with [`TokenValidator::www_authenticate`]) and
//! "Keystone cannot tell us" (503): the two are separate variants of
//! [`ValidateError`], so no caller can turn an outage into a guess. It
//! must not hold tokens anywhere but in the request it sends (the cache is
//! keyed by the token's SHA-256) and never logs them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use super::cache::TtlCache;
use super::http::{self, BodyError};
use super::keystone::{AuthError, Identity, Session};
use super::secret::Secret;
use crate::clock::Clock;

/// A token longer than this is not a token (fernet tokens are ~200 bytes,
/// Keystone's own limit is 8 KiB).
const MAX_TOKEN_BYTES: usize = 8192;
const MAX_TOKEN_DOCUMENT: usize = 4 * 1024 * 1024;

/// How validations are cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatorOptions {
    /// How long a validation is reused (never beyond the token's own
    /// expiry). keystonemiddleware's `token_cache_time` default: 300 s. A
    /// token revoked in Keystone keeps working here for at most this long,
    /// as with keystonemiddleware.
    pub cache_ttl: Duration,
    /// How many validations are kept; 0 turns the cache off.
    pub cache_capacity: usize,
}

impl Default for ValidatorOptions {
    fn default() -> ValidatorOptions {
        ValidatorOptions {
            cache_ttl: Duration::from_secs(300),
            cache_capacity: 10_000,
        }
    }
}

/// The token is no good: answer 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejected {
    /// The request carries no token.
    #[error("the request has no X-Auth-Token; authenticate with Keystone and send the token")]
    Missing,
    /// The header cannot be a token (too long, control characters).
    #[error("the X-Auth-Token header is not a token: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Keystone does not know the token: invalid, expired or revoked (404).
    #[error("Keystone does not recognize the token (invalid, expired or revoked): {message}")]
    NotRecognized {
        /// Keystone's message.
        message: String,
    },
    /// The token's `expires_at` has passed.
    #[error("the token expired at {}; authenticate again", crate::verify::rfc3339(*.expired_at))]
    Expired {
        /// When it expired.
        expired_at: OffsetDateTime,
    },
}

/// Keystone could not say whether the token is good: answer 503, never a
/// default identity.
#[derive(Debug, thiserror::Error)]
pub enum KeystoneUnavailable {
    /// No connection to Keystone.
    #[error("cannot reach Keystone at {url} to validate the token")]
    Unreachable {
        /// Where.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The service's own authentication failed.
    #[error("the service cannot authenticate with Keystone to validate tokens")]
    ServiceAuth {
        /// Why.
        #[source]
        source: AuthError,
    },
    /// Keystone refused the service's token even after re-authenticating.
    #[error("Keystone at {url} rejects the service's own token: {message}")]
    ServiceTokenRejected {
        /// Where.
        url: String,
        /// Keystone's message.
        message: String,
    },
    /// The service user may not validate tokens (Keystone's
    /// `identity:validate_token` wants the service or admin role).
    #[error(
        "Keystone at {url} does not let the service user validate tokens ({message}); give it the service role in its project"
    )]
    ServiceNotAuthorized {
        /// Where.
        url: String,
        /// Keystone's message.
        message: String,
    },
    /// Keystone failed (5xx) or answered with a status that means nothing here.
    #[error("Keystone at {url} answered {status} to a token validation: {message}")]
    ServerError {
        /// Where.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Keystone's message.
        message: String,
    },
    /// A 200 whose document cannot be read.
    #[error("Keystone at {url} sent an unusable token document: {reason}")]
    BadResponse {
        /// Where.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// Why a token did not validate.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The token is no good (HTTP 401 with `WWW-Authenticate`).
    #[error(transparent)]
    Rejected(#[from] TokenRejected),
    /// Keystone could not decide (HTTP 503).
    #[error(transparent)]
    Unavailable(#[from] KeystoneUnavailable),
}

impl ValidateError {
    /// A stable snake_case name, for logs and JSON error bodies.
    pub fn kind(&self) -> &'static str {
        match self {
            ValidateError::Rejected(TokenRejected::Missing) => "token_missing",
            ValidateError::Rejected(TokenRejected::Malformed { .. }) => "token_malformed",
            ValidateError::Rejected(TokenRejected::NotRecognized { .. }) => "token_not_recognized",
            ValidateError::Rejected(TokenRejected::Expired { .. }) => "token_expired",
            ValidateError::Unavailable(KeystoneUnavailable::Unreachable { .. }) => {
                "keystone_unreachable"
            }
            ValidateError::Unavailable(KeystoneUnavailable::ServiceAuth { .. }) => {
                "service_auth_failed"
            }
            ValidateError::Unavailable(KeystoneUnavailable::ServiceTokenRejected { .. }) => {
                "service_token_rejected"
            }
            ValidateError::Unavailable(KeystoneUnavailable::ServiceNotAuthorized { .. }) => {
                "service_not_authorized"
            }
            ValidateError::Unavailable(KeystoneUnavailable::ServerError { .. }) => "keystone_error",
            ValidateError::Unavailable(KeystoneUnavailable::BadResponse { .. }) => {
                "keystone_bad_response"
            }
        }
    }
}

/// Validates users' tokens with the service's own [`Session`].
pub struct TokenValidator {
    service: Arc<Session>,
    options: ValidatorOptions,
    cache: Mutex<TtlCache<[u8; 32], Arc<Identity>>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenValidator")
            .field("service", &self.service)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl TokenValidator {
    /// A validator authenticating as `service` (a user with the `service`
    /// or `admin` role), judging expiry by `clock`.
    pub fn new(
        service: Arc<Session>,
        options: ValidatorOptions,
        clock: Arc<dyn Clock>,
    ) -> TokenValidator {
        TokenValidator {
            service,
            cache: Mutex::new(TtlCache::new(options.cache_capacity)),
            options,
            clock,
        }
    }

    /// The `WWW-Authenticate` value of a 401, as keystonemiddleware sends
    /// it: `Keystone uri="<Keystone's URL without /v3>"`.
    pub fn www_authenticate(&self) -> String {
        self.service.settings().www_authenticate()
    }

    /// Keystone's URL without `/v3`, the `uri` of [`Self::www_authenticate`].
    pub fn keystone_uri(&self) -> String {
        self.service.settings().keystone_uri().to_owned()
    }

    /// Who `token` (the `X-Auth-Token` header; empty when the request has
    /// none) belongs to and what it allows.
    ///
    /// 1. A missing, empty, oversized or non-printable token is rejected without asking Keystone.
    /// 2. A cached validation is used while it is younger than the TTL and the token has not expired.
    /// 3. Keystone is asked with the service's token; a 401 to the service
    ///    token re-authenticates the service once and asks again.
    /// 4. Keystone's 404 rejects the token; an `expires_at` in the past rejects it too.
    /// 5. The answer is cached until the TTL or the token's expiry, whichever is first.
    ///
    /// Fails with [`ValidateError::Rejected`] when the token is no good,
    /// and with [`ValidateError::Unavailable`] when Keystone cannot be
    /// asked or answers anything else.
    pub async fn validate(&self, token: &str) -> Result<Identity, ValidateError> {
        // 1. Shape.
        if token.is_empty() {
            return Err(TokenRejected::Missing.into());
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRejected::Malformed {
                reason: "longer than 8 KiB",
            }
            .into());
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenRejected::Malformed {
                reason: "it holds spaces, control or non-ASCII characters",
            }
            .into());
        }
        let token = Secret::new(token);
        let key = token.digest();
        let now = self.clock.now();

        // 2. Cache (an entry never outlives its token's expires_at).
        if let Some(identity) = self.cached(&key, now) {
            return Ok((*identity).clone());
        }

        // 3. Keystone.
        let identity = self.ask_keystone(&token).await?;

        // 4. Expiry.
        if identity.expires_at <= now {
            return Err(TokenRejected::Expired {
                expired_at: identity.expires_at,
            }
            .into());
        }

        // 5. Cache until the TTL or the token's expiry.
        let ttl = time::Duration::try_from(self.options.cache_ttl).unwrap_or(time::Duration::MAX);
        let until = std::cmp::min(now.saturating_add(ttl), identity.expires_at);
        let identity = Arc::new(identity);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, identity.clone(), until, now);
        }
        Ok((*identity).clone())
    }

    fn cached(&self, key: &[u8; 32], now: OffsetDateTime) -> Option<Arc<Identity>> {
        self.cache.lock().ok()?.get(key, now)
    }

    async fn ask_keystone(&self, token: &Secret) -> Result<Identity, ValidateError> {
        let url = format!("{}/auth/tokens", self.service.settings().auth_url);
        let mut subject = reqwest::header::HeaderValue::from_str(token.expose()).map_err(|_| {
            TokenRejected::Malformed {
                reason: "not a valid header value",
            }
        })?;
        subject.set_sensitive(true);
        let mut retried = false;
        loop {
            let service = self
                .service
                .token()
                .await
                .map_err(|source| KeystoneUnavailable::ServiceAuth { source })?;
            let mut service_header = reqwest::header::HeaderValue::from_str(
                service.secret().expose(),
            )
            .map_err(|_| KeystoneUnavailable::BadResponse {
                url: url.clone(),
                reason: "the service token is not a valid header value".to_owned(),
            })?;
            service_header.set_sensitive(true);
            let response = self
                .service
                .http()
                .get(&url)
                .header(reqwest::header::ACCEPT, "application/json")
                .header("X-Auth-Token", service_header)
                .header("X-Subject-Token", subject.clone())
                .send()
                .await
                .map_err(|source| KeystoneUnavailable::Unreachable {
                    url: url.clone(),
                    source,
                })?;
            let status = response.status().as_u16();
            let body = http::read_bounded(response, MAX_TOKEN_DOCUMENT)
                .await
                .map_err(|err| match err {
                    BodyError::Transfer(source) => KeystoneUnavailable::Unreachable {
                        url: url.clone(),
                        source,
                    },
                    BodyError::TooLarge { .. } => KeystoneUnavailable::BadResponse {
                        url: url.clone(),
                        reason: err.to_string(),
                    },
                })?;
            let message = || http::error_message(&body, &[token, service.secret()]);
            tracing::debug!(%url, status, "token validation");
            match status {
                200 => {
                    return Identity::from_document(&body).map_err(|reason| {
                        KeystoneUnavailable::BadResponse {
                            url: url.clone(),
                            reason,
                        }
                        .into()
                    });
                }
                404 => {
                    return Err(TokenRejected::NotRecognized { message: message() }.into());
                }
                401 if !retried => {
                    tracing::info!("Keystone rejected the service token; re-authenticating");
                    self.service.invalidate(&service).await;
                    retried = true;
                }
                401 => {
                    return Err(KeystoneUnavailable::ServiceTokenRejected {
                        url,
                        message: message(),
                    }
                    .into());
                }
                403 => {
                    return Err(KeystoneUnavailable::ServiceNotAuthorized {
                        url,
                        message: message(),
                    }
                    .into());
                }
                status => {
                    return Err(KeystoneUnavailable::ServerError {
                        url,
                        status,
                        message: message(),
                    }
                    .into());
                }
            }
        }
    }
}
