//! Barbican as castellan's Barbican backend reads it for cursive: a
//! certificate id names a secret; its metadata (`GET /v1/secrets/{uuid}`)
//! says whether it is a certificate, its payload
//! (`GET /v1/secrets/{uuid}/payload`) holds the PEM; both are read with the
//! requesting user's token. Also stores a certificate the way
//! `openstack secret store --secret-type certificate` does.
//!
//! Certificates are fetched asynchronously before verification into a
//! [`Prefetched`], which the synchronous verifier then reads; a bounded
//! cache keyed by (user, project, secret) with a short TTL spares Barbican
//! repeated fetches of one certificate.
//!
//! This module owns the Barbican HTTP exchanges and the mapping of their
//! outcomes onto [`SourceError`] (404 not found, 403 forbidden, other
//! secret types not a certificate, anything else unavailable: fail
//! closed). It must not decide what a valid certificate is (the verifier
//! does), and it never follows a secret href to another host: only the
//! UUID of an id is used, under the catalog's (or configured) Barbican URL,
//! so an image property cannot send a user's token elsewhere.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::cache::TtlCache;
use super::catalog::{CatalogError, Interface, barbican_v1};
use super::http::{self, BodyError};
use super::keystone::{AuthError, AuthToken, Identity, Session};
use super::secret::Secret;
use super::settings::{SettingsError, TlsSettings};
use crate::clock::Clock;
use crate::verify::{
    CertificateId, Prefetched, SourceError, barbican_secret_format, castellan_certificate,
};

/// Barbican's service type in the catalog.
pub const SERVICE_TYPE: &str = "key-manager";
/// A certificate secret is a few KiB; nothing larger is read.
const MAX_PAYLOAD: usize = 1024 * 1024;
const MAX_METADATA: usize = 64 * 1024;

/// Where Barbican is and how fetched certificates are cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarbicanOptions {
    /// Barbican's URL, instead of the token's catalog (with or without `/v1`).
    pub endpoint: Option<String>,
    /// Catalog interface; default: the client settings' (`OS_INTERFACE`), else public.
    pub interface: Option<Interface>,
    /// Catalog region; default: the client settings' (`OS_REGION_NAME`), else any.
    pub region_name: Option<String>,
    /// How long a fetched certificate is reused for the same user and project.
    pub cache_ttl: Duration,
    /// How many certificates are kept; 0 turns the cache off.
    pub cache_capacity: usize,
    /// How HTTPS to Barbican is checked: the front end copies its client
    /// settings' (`OS_CACERT`, `--insecure`), for a key manager that
    /// `app::App::open` builds (default: the system's CA roots).
    pub tls: TlsSettings,
}

impl Default for BarbicanOptions {
    fn default() -> BarbicanOptions {
        BarbicanOptions {
            endpoint: None,
            interface: None,
            region_name: None,
            // Short: a secret whose ACL changes is refused within a minute.
            cache_ttl: Duration::from_secs(60),
            cache_capacity: 1000,
            tls: TlsSettings::default(),
        }
    }
}

impl BarbicanOptions {
    /// Takes what `[barbican]` leaves unset from the client settings of the
    /// process (TLS always; interface and region when not configured), so
    /// that Barbican is reached as Keystone is.
    pub fn inherit(&mut self, settings: &super::ClientSettings) {
        self.tls = settings.tls.clone();
        self.interface = self.interface.or(Some(settings.interface));
        if self.region_name.is_none() {
            self.region_name = settings.region_name.clone();
        }
    }
}

/// Whose token Barbican sees.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// The command line: its own session, which re-authenticates when
    /// Barbican rejects its token.
    Session(&'a Session),
    /// The server: a request's token, already validated into `identity`
    /// (whose catalog names Barbican).
    Token {
        /// The request's `X-Auth-Token`.
        token: &'a Secret,
        /// What validation returned for it.
        identity: &'a Identity,
    },
}

/// A failed exchange with Barbican (the cause of an unavailable certificate
/// or a failed store).
#[derive(Debug, thiserror::Error)]
pub enum BarbicanError {
    /// No connection.
    #[error("cannot reach Barbican at {url}")]
    Unreachable {
        /// Where.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// Barbican rejected the token (401).
    #[error("Barbican at {url} rejected the token (401): {message}")]
    Unauthorized {
        /// Where.
        url: String,
        /// Barbican's message.
        message: String,
    },
    /// Barbican failed or answered an unexpected status.
    #[error("Barbican at {url} answered {status}: {message}")]
    Status {
        /// Where.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Barbican's message.
        message: String,
    },
    /// A response that cannot be read.
    #[error("Barbican at {url} sent an unusable response: {reason}")]
    BadResponse {
        /// Where.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// Certificates could not be fetched at all: nothing may be verified.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Barbican is the key manager but the request carries no token.
    #[error(
        "the Barbican key manager reads certificates with the caller's Keystone token, and there is none (use Keystone authentication, or the directory key manager)"
    )]
    NoToken,
    /// The command line's own Keystone authentication failed.
    #[error("cannot authenticate with Keystone to read certificates from Barbican")]
    Auth(#[source] AuthError),
    /// The token's catalog names no Barbican.
    #[error(transparent)]
    Catalog(CatalogError),
    /// Barbican could not be read for a certificate (always
    /// [`SourceError::Unavailable`]): fail closed.
    #[error(transparent)]
    Unavailable(SourceError),
}

impl FetchError {
    /// A stable snake_case name (`keystone_auth_failed`, `keystone_unavailable`,
    /// `key_manager_not_in_catalog`, `certificate_unavailable`).
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::NoToken => "no_token",
            FetchError::Auth(error) if error.is_unavailable() => "keystone_unavailable",
            FetchError::Auth(_) => "keystone_auth_failed",
            FetchError::Catalog(_) => "key_manager_not_in_catalog",
            FetchError::Unavailable(error) => error.kind(),
        }
    }

    /// The same failure as the verifier would report it for `id` (the
    /// signer's certificate): certificate unavailable, so an upload fails
    /// closed with cursive's "Unable to retrieve certificate" reason.
    pub fn into_source_error(self, id: &str) -> SourceError {
        match self {
            FetchError::Unavailable(error) => error,
            FetchError::NoToken => SourceError::Unavailable {
                id: id.to_owned(),
                source: Box::new(FetchError::NoToken),
            },
            FetchError::Auth(error) => SourceError::Unavailable {
                id: id.to_owned(),
                source: Box::new(error),
            },
            FetchError::Catalog(error) => SourceError::Unavailable {
                id: id.to_owned(),
                source: Box::new(error),
            },
        }
    }
}

/// A certificate could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The command line's own Keystone authentication failed.
    #[error("cannot authenticate with Keystone to store the certificate in Barbican")]
    Auth(#[source] AuthError),
    /// The token's catalog names no Barbican.
    #[error(transparent)]
    Catalog(CatalogError),
    /// Barbican refused (403): the user may not create secrets.
    #[error(
        "Barbican at {url} does not let this user store secrets: {message}; the user needs the member (or creator) role in its project"
    )]
    Forbidden {
        /// Where.
        url: String,
        /// Barbican's message.
        message: String,
    },
    /// Any other failure.
    #[error("cannot store the certificate in Barbican")]
    Barbican(#[source] BarbicanError),
}

/// A secret Barbican created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// Its href (`secret_ref`), as `openstack secret store` prints it.
    pub href: String,
    /// Its UUID, what `img_signature_certificate_uuid` usually holds.
    pub uuid: uuid::Uuid,
}

/// The token and the Barbican URL of one caller, resolved.
struct Access {
    token: Secret,
    /// The session token it came from, to invalidate after a 401.
    session_token: Option<Arc<AuthToken>>,
    /// Barbican's `/v1` root.
    base: String,
    /// Cache partition: user and scope, never the token.
    who: String,
}

/// One certificate's fetch, before it is recorded.
enum Fetched {
    Outcome(Result<Vec<u8>, SourceError>),
    Unauthorized(BarbicanError),
}

/// DER by (user and scope, secret UUID).
type CertificateCache = TtlCache<(String, uuid::Uuid), Arc<Vec<u8>>>;

/// A Barbican client with a certificate cache.
pub struct Barbican {
    http: reqwest::Client,
    options: BarbicanOptions,
    cache: Mutex<CertificateCache>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Barbican {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barbican")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Barbican {
    /// A client trusting `tls`, caching by `clock`. Does no IO.
    ///
    /// Fails when the TLS settings cannot be used.
    pub fn new(
        tls: &TlsSettings,
        options: BarbicanOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Barbican, SettingsError> {
        Ok(Barbican {
            http: http::client(tls)?,
            cache: Mutex::new(TtlCache::new(options.cache_capacity)),
            options,
            clock,
        })
    }

    /// The options.
    pub fn options(&self) -> &BarbicanOptions {
        &self.options
    }

    /// Resolves the caller's token and Barbican's URL.
    async fn resolve(&self, caller: &Caller<'_>) -> Result<Access, AccessError> {
        let (token, session_token, identity_owner);
        let identity: &Identity = match caller {
            Caller::Session(session) => {
                let current = session.token().await.map_err(AccessError::Auth)?;
                token = current.secret().clone();
                session_token = Some(current.clone());
                identity_owner = current;
                identity_owner.identity()
            }
            Caller::Token {
                token: given,
                identity,
            } => {
                token = (*given).clone();
                session_token = None;
                identity
            }
        };
        let (interface, region) = match caller {
            Caller::Session(session) => (
                self.options
                    .interface
                    .unwrap_or(session.settings().interface),
                self.options
                    .region_name
                    .clone()
                    .or_else(|| session.settings().region_name.clone()),
            ),
            Caller::Token { .. } => (
                self.options.interface.unwrap_or_default(),
                self.options.region_name.clone(),
            ),
        };
        let base = match &self.options.endpoint {
            Some(endpoint) => barbican_v1(endpoint),
            None => barbican_v1(
                identity
                    .catalog
                    .endpoint(SERVICE_TYPE, interface, region.as_deref())
                    .map_err(AccessError::Catalog)?,
            ),
        };
        let scope = identity
            .project_id
            .as_deref()
            .or(identity.domain_id.as_deref())
            .unwrap_or("-");
        Ok(Access {
            token,
            session_token,
            base,
            who: format!("{}/{scope}", identity.user_id),
        })
    }

    /// Fetches every certificate `ids` names (the signer's id and the
    /// trusted ids of chain validation) with the caller's token, so that
    /// the synchronous verifier can run on the result.
    ///
    /// 1. Ids that do not parse are skipped (the verifier reports them).
    /// 2. A cached certificate for the same user, scope and secret is reused.
    /// 3. Metadata: 404 → not found, 403 → forbidden, a secret type other
    ///    than `certificate` → not a certificate (castellan's format name).
    /// 4. Payload: the first PEM CERTIFICATE block (castellan's reading).
    /// 5. A 401 makes a session caller re-authenticate once and start over.
    ///
    /// Fails when the caller cannot authenticate, the catalog names no
    /// Barbican, or Barbican cannot be read for any id (unreachable, 5xx,
    /// 401): then nothing may be verified (fail closed).
    pub async fn fetch_certificates(
        &self,
        caller: &Caller<'_>,
        ids: &[&str],
    ) -> Result<Prefetched, FetchError> {
        // 1. Distinct parseable ids.
        let mut wanted: Vec<CertificateId> = Vec::new();
        for id in ids {
            if let Ok(parsed) = CertificateId::parse(id)
                && !wanted.iter().any(|seen| seen.uuid() == parsed.uuid())
            {
                wanted.push(parsed);
            }
        }
        if wanted.is_empty() {
            // Nothing to ask: the verifier reports the unparseable ids.
            return Ok(Prefetched::new());
        }
        let mut retried = false;
        'attempt: loop {
            let access = self
                .resolve(caller)
                .await
                .map_err(AccessError::into_fetch)?;
            let fetches = wanted.iter().map(|id| self.fetch_one(&access, id));
            let results = futures_util::future::join_all(fetches).await;
            let mut source = Prefetched::new();
            for (id, result) in wanted.iter().zip(results) {
                match result {
                    Fetched::Outcome(Err(error @ SourceError::Unavailable { .. })) => {
                        return Err(FetchError::Unavailable(error));
                    }
                    Fetched::Outcome(outcome) => source.insert(id, outcome),
                    Fetched::Unauthorized(error) => {
                        // 5. A stale session token: once more with a fresh one.
                        if let (Caller::Session(session), Some(stale), false) =
                            (caller, &access.session_token, retried)
                        {
                            session.invalidate(stale).await;
                            retried = true;
                            continue 'attempt;
                        }
                        return Err(FetchError::Unavailable(SourceError::Unavailable {
                            id: id.to_string(),
                            source: Box::new(error),
                        }));
                    }
                }
            }
            return Ok(source);
        }
    }

    async fn fetch_one(&self, access: &Access, id: &CertificateId) -> Fetched {
        let key = (access.who.clone(), id.uuid());
        // 2. Cache.
        if let Some(der) = self
            .cache
            .lock()
            .ok()
            .and_then(|mut cache| cache.get(&key, self.clock.now()))
        {
            tracing::debug!(id = %id, "certificate from the cache");
            return Fetched::Outcome(Ok((*der).clone()));
        }
        let url = format!("{}/secrets/{}", access.base, id.uuid().hyphenated());
        let unavailable = |source: BarbicanError| {
            Fetched::Outcome(Err(SourceError::Unavailable {
                id: id.to_string(),
                source: Box::new(source),
            }))
        };
        // 3. Metadata.
        let metadata = match self
            .get(access, &url, "application/json", MAX_METADATA)
            .await
        {
            Ok(body) => body,
            Err(failure) => return self.failure(id, failure, &access.base),
        };
        let secret_type = match serde_json::from_slice::<serde_json::Value>(&metadata) {
            Ok(json) => json
                .get("secret_type")
                .and_then(|value| value.as_str())
                .unwrap_or("opaque")
                .to_owned(),
            Err(err) => {
                return unavailable(BarbicanError::BadResponse {
                    url,
                    reason: format!("the secret's metadata is not JSON ({err})"),
                });
            }
        };
        if let Some(format) = barbican_secret_format(&secret_type) {
            return Fetched::Outcome(Err(SourceError::NotACertificate {
                id: id.to_string(),
                format,
                label: None,
                secret_type: Some(secret_type),
            }));
        }
        // 4. Payload.
        let payload_url = format!("{url}/payload");
        let payload = match self
            .get(
                access,
                &payload_url,
                "application/octet-stream",
                MAX_PAYLOAD,
            )
            .await
        {
            Ok(body) => body,
            Err(failure) => return self.failure(id, failure, &access.base),
        };
        let outcome = castellan_certificate(id, &payload);
        if let Ok(der) = &outcome
            && let Ok(mut cache) = self.cache.lock()
        {
            let now = self.clock.now();
            let ttl =
                time::Duration::try_from(self.options.cache_ttl).unwrap_or(time::Duration::MAX);
            cache.insert(key, Arc::new(der.clone()), now.saturating_add(ttl), now);
        }
        tracing::debug!(id = %id, ok = outcome.is_ok(), "certificate fetched from Barbican");
        Fetched::Outcome(outcome)
    }

    fn failure(&self, id: &CertificateId, failure: Failure, base: &str) -> Fetched {
        let id_text = id.to_string();
        match failure {
            Failure::Status { status: 404, .. } => Fetched::Outcome(Err(SourceError::NotFound {
                id: id_text,
                location: Some(format!("Barbican at {base}")),
            })),
            Failure::Status {
                status: 403,
                message,
                ..
            } => Fetched::Outcome(Err(SourceError::Forbidden {
                id: id_text,
                reason: format!("Barbican says: {message}"),
            })),
            Failure::Status {
                status: 401,
                url,
                message,
            } => Fetched::Unauthorized(BarbicanError::Unauthorized { url, message }),
            Failure::Status {
                status,
                url,
                message,
            } => Fetched::Outcome(Err(SourceError::Unavailable {
                id: id_text,
                source: Box::new(BarbicanError::Status {
                    url,
                    status,
                    message,
                }),
            })),
            Failure::Other(error) => Fetched::Outcome(Err(SourceError::Unavailable {
                id: id_text,
                source: Box::new(error),
            })),
        }
    }

    async fn get(
        &self,
        access: &Access,
        url: &str,
        accept: &str,
        limit: usize,
    ) -> Result<Vec<u8>, Failure> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, accept)
            .header(
                "X-Auth-Token",
                sensitive(&access.token, url).map_err(Failure::Other)?,
            )
            .send()
            .await
            .map_err(|source| {
                Failure::Other(BarbicanError::Unreachable {
                    url: url.to_owned(),
                    source,
                })
            })?;
        let status = response.status().as_u16();
        let body = read(response, url, limit).await.map_err(Failure::Other)?;
        tracing::debug!(%url, status, "Barbican");
        if status == 200 {
            return Ok(body);
        }
        Err(Failure::Status {
            status,
            url: url.to_owned(),
            message: http::error_message(&body, &[&access.token]),
        })
    }

    /// Stores `der` as a certificate secret named `name`, as castellan's
    /// `store()` and `openstack secret store --secret-type certificate
    /// --payload-content-type application/octet-stream
    /// --payload-content-encoding base64` do: the PEM, base64 on the wire.
    ///
    /// Fails when the caller cannot authenticate, the catalog names no
    /// Barbican, Barbican refuses (403) or fails.
    pub async fn store_certificate(
        &self,
        caller: &Caller<'_>,
        name: &str,
        der: &[u8],
    ) -> Result<StoredSecret, StoreError> {
        let pem = pem_certificate(der);
        let body = json!({
            "name": name,
            "secret_type": "certificate",
            "payload": crate::verify::base64::encode(pem.as_bytes()),
            "payload_content_type": "application/octet-stream",
            "payload_content_encoding": "base64",
        });
        let mut retried = false;
        loop {
            let access = self
                .resolve(caller)
                .await
                .map_err(AccessError::into_store)?;
            let url = format!("{}/secrets", access.base);
            let barbican = StoreError::Barbican;
            let response = self
                .http
                .post(&url)
                .header(reqwest::header::ACCEPT, "application/json")
                .header(
                    "X-Auth-Token",
                    sensitive(&access.token, &url).map_err(barbican)?,
                )
                .json(&body)
                .send()
                .await
                .map_err(|source| {
                    barbican(BarbicanError::Unreachable {
                        url: url.clone(),
                        source,
                    })
                })?;
            let status = response.status().as_u16();
            let reply = read(response, &url, MAX_METADATA).await.map_err(barbican)?;
            let message = || http::error_message(&reply, &[&access.token]);
            match status {
                201 | 200 => {}
                401 => {
                    if let (Caller::Session(session), Some(stale), false) =
                        (caller, &access.session_token, retried)
                    {
                        session.invalidate(stale).await;
                        retried = true;
                        continue;
                    }
                    return Err(barbican(BarbicanError::Unauthorized {
                        url,
                        message: message(),
                    }));
                }
                403 => {
                    return Err(StoreError::Forbidden {
                        url,
                        message: message(),
                    });
                }
                status => {
                    return Err(barbican(BarbicanError::Status {
                        url,
                        status,
                        message: message(),
                    }));
                }
            }
            let bad = |reason: &str| {
                barbican(BarbicanError::BadResponse {
                    url: url.clone(),
                    reason: reason.to_owned(),
                })
            };
            let href = serde_json::from_slice::<serde_json::Value>(&reply)
                .ok()
                .and_then(|json| json.get("secret_ref")?.as_str().map(str::to_owned))
                .ok_or_else(|| bad("no secret_ref in the reply"))?;
            let uuid = CertificateId::parse(&href)
                .map_err(|_| bad("the secret_ref does not end in a UUID"))?
                .uuid();
            tracing::info!(%href, "stored the certificate in Barbican");
            return Ok(StoredSecret { href, uuid });
        }
    }
}

/// Why one GET failed, before it is mapped.
enum Failure {
    Status {
        status: u16,
        url: String,
        message: String,
    },
    Other(BarbicanError),
}

enum AccessError {
    Auth(AuthError),
    Catalog(CatalogError),
}

impl AccessError {
    fn into_fetch(self) -> FetchError {
        match self {
            AccessError::Auth(error) => FetchError::Auth(error),
            AccessError::Catalog(error) => FetchError::Catalog(error),
        }
    }

    fn into_store(self) -> StoreError {
        match self {
            AccessError::Auth(error) => StoreError::Auth(error),
            AccessError::Catalog(error) => StoreError::Catalog(error),
        }
    }
}

/// The token as a header value that HTTP libraries never print.
fn sensitive(token: &Secret, url: &str) -> Result<reqwest::header::HeaderValue, BarbicanError> {
    let mut value = reqwest::header::HeaderValue::from_str(token.expose()).map_err(|_| {
        BarbicanError::BadResponse {
            url: url.to_owned(),
            reason: "the token is not a valid header value".to_owned(),
        }
    })?;
    value.set_sensitive(true);
    Ok(value)
}

async fn read(
    response: reqwest::Response,
    url: &str,
    limit: usize,
) -> Result<Vec<u8>, BarbicanError> {
    http::read_bounded(response, limit)
        .await
        .map_err(|err| match err {
            BodyError::Transfer(source) => BarbicanError::Unreachable {
                url: url.to_owned(),
                source,
            },
            BodyError::TooLarge { .. } => BarbicanError::BadResponse {
                url: url.to_owned(),
                reason: err.to_string(),
            },
        })
}

/// The canonical PEM of a certificate (64-column base64), as castellan
/// stores an X509 object.
pub(crate) fn pem_certificate(der: &[u8]) -> String {
    let body = crate::verify::base64::encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}
