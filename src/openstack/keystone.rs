//! Keystone v3 as a client: authenticate with `POST /v3/auth/tokens`
//! (methods password, application_credential, token; project or domain
//! scope), keep the token and re-authenticate before it expires, and read
//! Keystone's token document ([`Identity`]: user, project, roles, expiry,
//! catalog), which validation (`GET /v3/auth/tokens`) returns too.
//!
//! This module owns the auth request body and the token document. It must
//! not log request bodies or token headers, and no error it returns holds
//! a password, secret or token (server messages are scrubbed).

use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::catalog::Catalog;
use super::http::{self, BodyError};
use super::secret::Secret;
use super::settings::{
    ClientSettings, Credentials, DomainRef, ProjectRef, Scope, SettingsError, UserRef,
};
use crate::clock::{Clock, SystemClock};
use crate::context::RequestContext;

/// keystoneauth's `MIN_TOKEN_LIFE_SECONDS`: a token closer than this to its
/// expiry is replaced before use, so a request never starts with a token
/// that dies on the way.
const MIN_TOKEN_LIFE: time::Duration = time::Duration::seconds(120);

/// A token document is a few KiB (the catalog is the large part).
const MAX_TOKEN_DOCUMENT: usize = 4 * 1024 * 1024;

/// Who a token belongs to and what it allows: Keystone's token document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
    /// The user's domain id.
    pub user_domain_id: Option<String>,
    /// The user's domain name.
    pub user_domain_name: Option<String>,
    /// The project the token is scoped to.
    pub project_id: Option<String>,
    /// Its name.
    pub project_name: Option<String>,
    /// Its domain id.
    pub project_domain_id: Option<String>,
    /// The domain the token is scoped to (domain-scoped tokens).
    pub domain_id: Option<String>,
    /// Its name.
    pub domain_name: Option<String>,
    /// Whether the token is system-scoped.
    pub system_scope: bool,
    /// Role names (Keystone includes implied roles: member ⇒ reader).
    pub roles: Vec<String>,
    /// When the token stops being valid.
    pub expires_at: OffsetDateTime,
    /// The auth methods that made it (`password`, `token`, `application_credential`).
    pub methods: Vec<String>,
    /// The service catalog (empty for unscoped tokens or `?nocatalog`).
    pub catalog: Catalog,
}

impl Identity {
    /// The repository's request context for this identity: project, user,
    /// role names in lower case, domain (the token's domain scope, else its
    /// project's domain). It carries no token: see
    /// [`AuthToken::request_context`] for one that does.
    pub fn request_context(&self) -> RequestContext {
        RequestContext {
            project_id: self.project_id.clone(),
            user_id: Some(self.user_id.clone()),
            roles: self
                .roles
                .iter()
                .map(|role| role.to_ascii_lowercase())
                .collect(),
            domain_id: self
                .domain_id
                .clone()
                .or_else(|| self.project_domain_id.clone()),
            keystone: None,
        }
    }

    /// Parses Keystone's `{"token": {...}}`.
    ///
    /// Fails naming the field that is missing or malformed.
    pub(crate) fn from_document(body: &[u8]) -> Result<Identity, String> {
        let document: Value =
            serde_json::from_slice(body).map_err(|err| format!("not JSON ({err})"))?;
        let token = document
            .get("token")
            .ok_or("no `token` object in the document")?;
        let text = |pointer: &str| {
            token
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let expires_at = text("/expires_at").ok_or("no token.expires_at")?;
        let expires_at = crate::clock::parse_rfc3339(&expires_at)
            .map_err(|err| format!("token.expires_at {expires_at:?} is not a time ({err})"))?;
        let roles = match token.get("roles") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(roles)) => roles
                .iter()
                .map(|role| {
                    role.get("name")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or("a token.roles entry has no name")
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("token.roles is not a list".to_owned()),
        };
        let catalog = match token.get("catalog") {
            None | Some(Value::Null) => Catalog::default(),
            Some(catalog) => Catalog::from_json(catalog.clone())
                .map_err(|err| format!("token.catalog is not a catalog ({err})"))?,
        };
        Ok(Identity {
            user_id: text("/user/id").ok_or("no token.user.id")?,
            user_name: text("/user/name").unwrap_or_default(),
            user_domain_id: text("/user/domain/id"),
            user_domain_name: text("/user/domain/name"),
            project_id: text("/project/id"),
            project_name: text("/project/name"),
            project_domain_id: text("/project/domain/id"),
            domain_id: text("/domain/id"),
            domain_name: text("/domain/name"),
            system_scope: token.get("system").is_some(),
            roles,
            expires_at,
            methods: token
                .get("methods")
                .and_then(Value::as_array)
                .map(|methods| {
                    methods
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            catalog,
        })
    }
}

/// A token with its document: one this process obtained, or a caller's
/// token a [`super::TokenValidator`] validated.
#[derive(Debug, PartialEq, Eq)]
pub struct AuthToken {
    token: Secret,
    identity: Identity,
}

impl AuthToken {
    /// Pairs a token with the document Keystone returned for it.
    pub fn new(token: Secret, identity: Identity) -> AuthToken {
        AuthToken { token, identity }
    }

    /// The request context of the token's owner, carrying the token for
    /// the services called on its behalf (Barbican).
    pub fn request_context(self: &Arc<AuthToken>) -> RequestContext {
        RequestContext {
            keystone: Some(self.clone()),
            ..self.identity.request_context()
        }
    }

    /// The token and the catalog it came with, for a call to Barbican on
    /// its owner's behalf.
    pub fn caller(&self) -> super::Caller<'_> {
        super::Caller::Token {
            token: &self.token,
            identity: &self.identity,
        }
    }

    /// The token, for an `X-Auth-Token` header.
    pub fn secret(&self) -> &Secret {
        &self.token
    }

    /// Whose it is and what it allows.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
}

/// Authentication with Keystone failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No connection (refused, DNS, TLS, timeout).
    #[error("cannot reach Keystone at {url}")]
    Unreachable {
        /// Where.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// 401: the credentials or the scope were refused.
    #[error(
        "Keystone at {url} refused the credentials ({origin}): {message}; check the user, its password, application credential or token, and the project"
    )]
    Rejected {
        /// Where.
        url: String,
        /// Where the settings came from.
        origin: String,
        /// Keystone's message, scrubbed.
        message: String,
    },
    /// Another 4xx: the request itself was refused.
    #[error(
        "Keystone at {url} refused the authentication request with {status} ({origin}): {message}"
    )]
    Refused {
        /// Where.
        url: String,
        /// Where the settings came from.
        origin: String,
        /// The HTTP status.
        status: u16,
        /// Keystone's message, scrubbed.
        message: String,
    },
    /// 5xx: Keystone is failing.
    #[error("Keystone at {url} failed with {status}: {message}")]
    ServerError {
        /// Where.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Keystone's message, scrubbed.
        message: String,
    },
    /// A 201 without a token, or a document that cannot be read.
    #[error("Keystone at {url} sent an unusable response: {reason}")]
    BadResponse {
        /// Where.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

impl AuthError {
    /// Whether Keystone could not answer (unreachable, 5xx, garbage), as
    /// opposed to refusing the credentials: the first is "try later" (503),
    /// the second "fix the settings".
    pub fn is_unavailable(&self) -> bool {
        match self {
            AuthError::Unreachable { .. }
            | AuthError::ServerError { .. }
            | AuthError::BadResponse { .. } => true,
            AuthError::Rejected { .. } | AuthError::Refused { .. } => false,
        }
    }
}

fn domain_json(domain: &DomainRef) -> Value {
    match domain {
        DomainRef::Id(id) => json!({ "id": id }),
        DomainRef::Name(name) => json!({ "name": name }),
    }
}

fn user_json(user: &UserRef) -> Value {
    match user {
        UserRef::Id(id) => json!({ "id": id }),
        UserRef::Name { name, domain } => json!({ "name": name, "domain": domain_json(domain) }),
    }
}

/// The `POST /v3/auth/tokens` body. It holds the secret: never log it.
fn auth_body(credentials: &Credentials, scope: &Scope) -> Value {
    let identity = match credentials {
        Credentials::Password { user, password } => {
            let mut user = user_json(user);
            user["password"] = json!(password.expose());
            json!({ "methods": ["password"], "password": { "user": user } })
        }
        Credentials::Token { token } => {
            json!({ "methods": ["token"], "token": { "id": token.expose() } })
        }
        Credentials::ApplicationCredential {
            id,
            name,
            user,
            secret,
        } => {
            let mut credential = json!({ "secret": secret.expose() });
            match (id, name, user) {
                (Some(id), _, _) => credential["id"] = json!(id),
                (None, Some(name), Some(user)) => {
                    credential["name"] = json!(name);
                    credential["user"] = user_json(user);
                }
                // resolve() refuses these; Keystone would answer 400.
                (None, _, _) => {}
            }
            json!({ "methods": ["application_credential"], "application_credential": credential })
        }
    };
    let mut auth = json!({ "identity": identity });
    match scope {
        Scope::Unscoped => {}
        Scope::Project(ProjectRef::Id(id)) => auth["scope"] = json!({ "project": { "id": id } }),
        Scope::Project(ProjectRef::Name { name, domain }) => {
            auth["scope"] = json!({ "project": { "name": name, "domain": domain_json(domain) } });
        }
        Scope::Domain(domain) => auth["scope"] = json!({ "domain": domain_json(domain) }),
    }
    json!({ "auth": auth })
}

/// An authenticated client: the settings, one HTTP client, and the current
/// token, renewed two minutes before it expires or when a service
/// rejected it. Cheap to share (`Arc<Session>`); concurrent callers wait
/// for one re-authentication instead of each making their own.
pub struct Session {
    http: reqwest::Client,
    settings: ClientSettings,
    current: tokio::sync::Mutex<Option<Arc<AuthToken>>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for `settings` on the system clock. Does no IO yet.
    ///
    /// Fails when the TLS settings cannot be used (unreadable CA bundle).
    pub fn new(settings: ClientSettings) -> Result<Session, SettingsError> {
        Session::with_clock(settings, Arc::new(SystemClock))
    }

    /// A session whose token expiry is judged by `clock`.
    ///
    /// Fails when the TLS settings cannot be used.
    pub fn with_clock(
        settings: ClientSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Session, SettingsError> {
        Ok(Session {
            http: http::client(&settings.tls)?,
            settings,
            current: tokio::sync::Mutex::new(None),
            clock,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A token with at least two minutes left: the current one, or a new
    /// one from Keystone.
    ///
    /// Fails when Keystone refuses the credentials or cannot be reached.
    pub async fn token(&self) -> Result<Arc<AuthToken>, AuthError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && token.identity.expires_at - self.clock.now() > MIN_TOKEN_LIFE
        {
            return Ok(token.clone());
        }
        let fresh = Arc::new(self.authenticate().await?);
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets `stale` (a service answered 401 to it), so the next
    /// [`Session::token`] authenticates again. A token another caller
    /// already replaced is left alone.
    pub async fn invalidate(&self, stale: &AuthToken) {
        let mut current = self.current.lock().await;
        if current
            .as_ref()
            .is_some_and(|token| token.token == stale.token)
        {
            *current = None;
        }
    }

    async fn authenticate(&self) -> Result<AuthToken, AuthError> {
        let url = format!("{}/auth/tokens", self.settings.auth_url);
        tracing::debug!(%url, origin = %self.settings.origin, "authenticating with Keystone");
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&auth_body(&self.settings.credentials, &self.settings.scope))
            .send()
            .await
            .map_err(|source| AuthError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        let subject = response
            .headers()
            .get("x-subject-token")
            .and_then(|value| value.to_str().ok())
            .map(Secret::new);
        let body = http::read_bounded(response, MAX_TOKEN_DOCUMENT)
            .await
            .map_err(|err| match err {
                BodyError::Transfer(source) => AuthError::Unreachable {
                    url: url.clone(),
                    source,
                },
                BodyError::TooLarge { .. } => AuthError::BadResponse {
                    url: url.clone(),
                    reason: err.to_string(),
                },
            })?;
        let secrets = self.settings.secrets();
        let message = || http::error_message(&body, &secrets);
        let origin = self.settings.origin.clone();
        match status.as_u16() {
            201 | 200 => {}
            401 => {
                return Err(AuthError::Rejected {
                    url,
                    origin,
                    message: message(),
                });
            }
            code @ 400..=499 => {
                return Err(AuthError::Refused {
                    url,
                    origin,
                    status: code,
                    message: message(),
                });
            }
            code => {
                return Err(AuthError::ServerError {
                    url,
                    status: code,
                    message: message(),
                });
            }
        }
        let token = subject.ok_or_else(|| AuthError::BadResponse {
            url: url.clone(),
            reason: "no X-Subject-Token header".to_owned(),
        })?;
        let identity = Identity::from_document(&body).map_err(|reason| AuthError::BadResponse {
            url: url.clone(),
            reason,
        })?;
        tracing::debug!(
            user = %identity.user_name,
            project = identity.project_name.as_deref().unwrap_or("-"),
            expires_at = %crate::verify::rfc3339(identity.expires_at),
            "authenticated with Keystone"
        );
        Ok(AuthToken { token, identity })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_bodies_follow_keystone_v3() {
        let password = Credentials::Password {
            user: UserRef::Name {
                name: "alice".into(),
                domain: DomainRef::Name("Default".into()),
            },
            password: Secret::new("pw"),
        };
        let scope = Scope::Project(ProjectRef::Name {
            name: "demo".into(),
            domain: DomainRef::Id("default".into()),
        });
        assert_eq!(
            auth_body(&password, &scope),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
                {"name": "alice", "domain": {"name": "Default"}, "password": "pw"}}},
                "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}})
        );
        let token = Credentials::Token {
            token: Secret::new("t"),
        };
        assert_eq!(
            auth_body(&token, &Scope::Domain(DomainRef::Id("d1".into()))),
            json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "t"}},
                "scope": {"domain": {"id": "d1"}}}})
        );
        let by_name = Credentials::ApplicationCredential {
            id: None,
            name: Some("ci".into()),
            user: Some(UserRef::Id("u1".into())),
            secret: Secret::new("s"),
        };
        assert_eq!(
            auth_body(&by_name, &Scope::Unscoped),
            json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"secret": "s", "name": "ci", "user": {"id": "u1"}}}}})
        );
    }

    #[test]
    fn token_documents_parse() {
        let body = br#"{"token":{"methods":["password"],"user":{"domain":{"id":"default","name":"Default"},"id":"u1","name":"alice","password_expires_at":null},
            "audit_ids":["x"],"expires_at":"2026-11-28T18:44:18.000000Z","issued_at":"2026-11-28T17:44:18.000000Z",
            "project":{"domain":{"id":"default","name":"Default"},"id":"p1","name":"demo"},"is_domain":false,
            "roles":[{"id":"r1","name":"reader"},{"id":"r2","name":"Member"}],
            "catalog":[{"endpoints":[{"id":"e","interface":"public","region":"RegionOne","region_id":"RegionOne","url":"http://kms:9311"}],"id":"s","name":"barbican","type":"key-manager"}]}}"#;
        let identity = Identity::from_document(body).unwrap();
        assert_eq!(identity.user_id, "u1");
        assert_eq!(identity.project_id.as_deref(), Some("p1"));
        assert_eq!(identity.roles, ["reader", "Member"]);
        assert_eq!(identity.expires_at.unix_timestamp(), 1_795_891_458);
        assert!(!identity.catalog.is_empty());
        let context = identity.request_context();
        assert_eq!(context.project_id.as_deref(), Some("p1"));
        assert!(context.has_role("member"));
        assert_eq!(context.roles, ["reader", "member"]);

        for (bad, says) in [
            (&b"[]"[..], "token"),
            (br#"{"token":{"user":{"id":"u"}}}"#, "expires_at"),
            (
                br#"{"token":{"expires_at":"soon","user":{"id":"u"}}}"#,
                "soon",
            ),
            (
                br#"{"token":{"expires_at":"2026-11-28T18:44:18Z"}}"#,
                "user.id",
            ),
        ] {
            let err = Identity::from_document(bad).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }
}
