//! A client of any Glance image API v2 (the real OpenStack Glance, or
//! `portcullis serve`) over reqwest with rustls: show, list (following
//! `next` links), create, upload (streamed, with `Content-Length` and
//! `x-openstack-image-size`), download (streamed) and delete, as
//! glanceclient and openstacksdk send them (glance-wire.md).
//!
//! This module owns the HTTP exchanges, their timeouts, the retries of
//! transient failures (a connection that fails, is reset or times out; 502,
//! 503, 504) with exponential backoff for idempotent requests only (and for
//! a create only when the connection failed before it was sent), one
//! re-authentication after a 401 with a Keystone session, and errors that
//! carry the server's reason whatever the body's form. It must not judge
//! images, log tokens or headers, or hold a whole image in memory.

use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::reason::server_reason;
use crate::openstack::{AuthError, AuthToken, Secret, Session, SettingsError, TlsSettings};
use crate::wire::{self, DocumentError, ServedImage};

/// Glance's declared-size header (glanceclient and openstacksdk send it).
const IMAGE_SIZE_HEADER: HeaderName = HeaderName::from_static("x-openstack-image-size");
/// The token header of every OpenStack API.
const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-auth-token");
/// An image document or a list page is a few KiB per image; 200 images of
/// 128 properties each still fit.
const MAX_DOCUMENT: usize = 16 * 1024 * 1024;
/// An error body is read only for its reason.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// glanceclient's page size is 20, openstackclient's Glance's default 25;
/// larger pages mean fewer round trips (Glance caps it at `api_limit_max`, 1000).
pub const PAGE_SIZE: u32 = 200;

/// How requests prove who sends them.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No token: a Glance without Keystone (`portcullis serve`'s `noauth`,
    /// Glance's unauthenticated pipeline).
    None,
    /// A token used as given (`--os-token` with `--os-image-url`, as
    /// glanceclient's `--os-auth-token`).
    Token(Secret),
    /// A Keystone session's token: renewed before it expires, and once more
    /// when Glance answers 401.
    Session(Arc<Session>),
}

/// Retries of transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: no retry).
    pub attempts: u32,
    /// The wait before the second attempt; doubled for each further one.
    pub first_delay: Duration,
    /// The longest wait, also for a server's `Retry-After`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, waiting 0.5, 1 and 2 s: a restarting Glance behind a
    /// load balancer answers 503 for a few seconds, and a reset connection
    /// is back at once.
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// TLS trust (`--os-cacert`, `--insecure`).
    pub tls: TlsSettings,
    /// The longest wait for a JSON answer (show, list, create, delete).
    pub request_timeout: Duration,
    /// The longest silence while a download or an upload's answer streams
    /// (an image takes as long as it takes; a stalled server does not).
    pub read_timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            tls: TlsSettings::default(),
            request_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
        }
    }
}

/// A request to Glance failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: the connection failed, was reset or timed out (after the retries).
    #[error("{method} {url} failed after {attempts} attempt(s)")]
    Unreachable {
        /// The method.
        method: Method,
        /// The URL (never holds a token).
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The transport's error.
        #[source]
        source: reqwest::Error,
    },
    /// Glance answered with an error status; `reason` is its message.
    #[error("{method} {url}: {status}{}", if .reason.is_empty() { String::new() } else { format!(": {}", .reason) })]
    Status {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The server's reason (HTML, JSON or plain text read out).
        reason: String,
    },
    /// The image has no data (Glance answers 204 to the download).
    #[error("image {id} has no data to download (GET {url}: 204 No Content)")]
    NoData {
        /// The image.
        id: String,
        /// The URL.
        url: String,
    },
    /// The answer is not the document Glance sends.
    #[error("{method} {url}: unexpected answer")]
    BadAnswer {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// What is wrong with it.
        #[source]
        source: DocumentError,
    },
    /// The answer is larger than any Glance document.
    #[error("{method} {url}: the answer is larger than {limit} bytes")]
    TooLarge {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// A list page's `next` link does not stay under `/v2/images` on this
    /// endpoint, or repeats a page already read.
    #[error("the images list gave a `next` link that {problem}: {link:?}")]
    BadNextLink {
        /// The link.
        link: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// Keystone did not give a token.
    #[error("cannot get a Keystone token for Glance")]
    Auth(#[source] AuthError),
}

impl ClientError {
    /// A stable snake_case name (`unreachable`, `timeout`, `not_found`,
    /// `forbidden`, `no_data`, `server_error`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Unreachable { source, .. } if source.is_timeout() => "timeout",
            ClientError::Unreachable { .. } => "unreachable",
            ClientError::Status { status, .. } => status_kind(*status),
            ClientError::NoData { .. } => "no_data",
            ClientError::BadAnswer { .. } | ClientError::TooLarge { .. } => "bad_answer",
            ClientError::BadNextLink { .. } => "bad_next_link",
            ClientError::Auth(error) if error.is_unavailable() => "keystone_unavailable",
            ClientError::Auth(_) => "keystone_auth_failed",
        }
    }

    /// The HTTP status Glance answered, if it answered with an error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            ClientError::Unreachable { .. }
            | ClientError::NoData { .. }
            | ClientError::BadAnswer { .. }
            | ClientError::TooLarge { .. }
            | ClientError::BadNextLink { .. }
            | ClientError::Auth(_) => None,
        }
    }

    /// Whether this says nothing about the image but about the connection,
    /// the credentials or the service (exit 2): no answer, 401, 502–504, an
    /// answer that is not Glance's, Keystone. A refusal or failure about
    /// the image (400, 403, 404, 409, 413, 415, 500, no data) is not.
    pub fn is_connection(&self) -> bool {
        match self {
            ClientError::Unreachable { .. }
            | ClientError::BadAnswer { .. }
            | ClientError::TooLarge { .. }
            | ClientError::BadNextLink { .. }
            | ClientError::Auth(_) => true,
            // 401: the credentials; 502–504: the service (after the
            // retries). A 500 for one image is that image's failure.
            ClientError::Status { status, .. } => {
                matches!(status.as_u16(), 401 | 502..=504)
            }
            ClientError::NoData { .. } => false,
        }
    }
}

fn status_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        413 => "too_large",
        415 => "unsupported_media_type",
        416 => "range_not_satisfiable",
        503 => "unavailable",
        code if code >= 500 => "server_error",
        _ => "refused",
    }
}

/// Whether a request may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// GET, DELETE: again after any transient failure.
    Idempotent,
    /// POST: again only when the connection failed before the request went out.
    OnlyUnsent,
}

/// A Glance image API v2 endpoint and how to talk to it; cheap to share
/// behind an `Arc`.
pub struct Client {
    http: reqwest::Client,
    /// The endpoint without a trailing slash or version (`http://glance:9292`).
    root: String,
    auth: Auth,
    options: ClientOptions,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("root", &self.root)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The token a request carries.
enum Token {
    None,
    Plain(Secret),
    Session(Arc<AuthToken>),
}

impl Token {
    fn secret(&self) -> Option<&Secret> {
        match self {
            Token::None => None,
            Token::Plain(secret) => Some(secret),
            Token::Session(token) => Some(token.secret()),
        }
    }
}

impl Client {
    /// A client of the Glance at `endpoint` (its root, as the catalog or
    /// `--os-image-url` gives it; a trailing `/v2` is dropped as
    /// glanceclient does).
    ///
    /// Fails when the endpoint is not an http(s) URL or the TLS settings
    /// cannot be used.
    pub fn new(endpoint: &str, auth: Auth, options: ClientOptions) -> Result<Client, ConnectError> {
        let root = endpoint_root(endpoint)?;
        let http = crate::openstack::client_builder(&options.tls)
            .map_err(ConnectError::Settings)?
            .read_timeout(options.read_timeout)
            .build()
            .map_err(|source| ConnectError::Settings(SettingsError::HttpClient { source }))?;
        Ok(Client {
            http,
            root,
            auth,
            options,
        })
    }

    /// The endpoint's root (`http://glance:9292`).
    pub fn endpoint(&self) -> &str {
        &self.root
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }

    fn image_path(id: &str) -> String {
        // An id is a path segment: anything but unreserved characters is escaped.
        let mut escaped = String::with_capacity(id.len());
        for byte in id.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    escaped.push(char::from(byte));
                }
                other => escaped.push_str(&format!("%{other:02X}")),
            }
        }
        format!("/v2/images/{escaped}")
    }

    async fn token(&self) -> Result<Token, ClientError> {
        match &self.auth {
            Auth::None => Ok(Token::None),
            Auth::Token(secret) => Ok(Token::Plain(secret.clone())),
            Auth::Session(session) => session
                .token()
                .await
                .map(Token::Session)
                .map_err(ClientError::Auth),
        }
    }

    fn secrets<'a>(&'a self, token: &'a Token) -> Vec<&'a Secret> {
        let mut secrets: Vec<&Secret> = token.secret().into_iter().collect();
        if let Auth::Session(session) = &self.auth {
            secrets.extend(session.settings().secrets());
        }
        secrets
    }

    fn with_token(request: reqwest::RequestBuilder, token: &Token) -> reqwest::RequestBuilder {
        match token
            .secret()
            .and_then(|secret| HeaderValue::from_str(secret.expose()).ok())
        {
            Some(mut value) => {
                value.set_sensitive(true);
                request.header(TOKEN_HEADER, value)
            }
            None => request,
        }
    }

    /// Sends a request built by `build` (called again for each attempt),
    /// retrying as `retry` allows, and returns a successful (2xx) answer.
    async fn send(
        &self,
        method: Method,
        url: &str,
        retry: Retry,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let mut attempt = 1;
        let mut reauthenticated = false;
        loop {
            let token = self.token().await?;
            let request = Self::with_token(build(self.http.request(method.clone(), url)), &token);
            let response = match request.send().await {
                Ok(response) => response,
                Err(source) => {
                    let again = match retry {
                        Retry::Idempotent => is_transient(&source),
                        Retry::OnlyUnsent => source.is_connect(),
                    };
                    if again && attempt < self.options.retry.attempts {
                        tracing::warn!(%method, %url, attempt, error = %source, "retrying");
                        tokio::time::sleep(self.options.retry.delay(attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(ClientError::Unreachable {
                        method,
                        url: url.to_owned(),
                        attempts: attempt,
                        source,
                    });
                }
            };
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status == StatusCode::UNAUTHORIZED
                && !reauthenticated
                && let (Auth::Session(session), Token::Session(stale)) = (&self.auth, &token)
            {
                // The session's token was revoked or expired early: once more with a new one.
                session.invalidate(stale).await;
                reauthenticated = true;
                continue;
            }
            let transient = matches!(status.as_u16(), 502..=504);
            if transient && retry == Retry::Idempotent && attempt < self.options.retry.attempts {
                let wait = retry_after(&response)
                    .unwrap_or_else(|| self.options.retry.delay(attempt))
                    .min(self.options.retry.max_delay);
                tracing::warn!(%method, %url, attempt, %status, "retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return Err(self.status_error(method, url, response, &token).await);
        }
    }

    async fn status_error(
        &self,
        method: Method,
        url: &str,
        response: reqwest::Response,
        token: &Token,
    ) -> ClientError {
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        // The reason is a courtesy: a body that fails to arrive leaves it empty.
        let body = read_bounded(response, MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        let reason = crate::openstack::scrub(
            &server_reason(content_type.as_deref(), &body),
            &self.secrets(token),
        );
        ClientError::Status {
            method,
            url: url.to_owned(),
            status,
            reason,
        }
    }

    async fn document(
        &self,
        method: Method,
        url: &str,
        response: reqwest::Response,
    ) -> Result<Vec<u8>, ClientError> {
        read_bounded(response, MAX_DOCUMENT)
            .await
            .map_err(|err| match err {
                BoundedError::Transfer(source) => ClientError::Unreachable {
                    method: method.clone(),
                    url: url.to_owned(),
                    attempts: 1,
                    source,
                },
                BoundedError::TooLarge => ClientError::TooLarge {
                    method: method.clone(),
                    url: url.to_owned(),
                    limit: MAX_DOCUMENT,
                },
            })
    }

    /// `GET /v2/images/{id}`.
    ///
    /// Fails with the server's refusal (404 for an unknown or invisible
    /// image) or a connection error after the retries.
    pub async fn show(&self, id: &str) -> Result<ServedImage, ClientError> {
        let url = self.url(&Self::image_path(id));
        let timeout = self.options.request_timeout;
        let response = self
            .send(Method::GET, &url, Retry::Idempotent, |request| {
                request.header(ACCEPT, "application/json").timeout(timeout)
            })
            .await?;
        let body = self.document(Method::GET, &url, response).await?;
        wire::parse_image(&body).map_err(|source| ClientError::BadAnswer {
            method: Method::GET,
            url,
            source,
        })
    }

    /// `GET /v2/images?<params>`, following `next` links to the last page;
    /// `on_page` is told the number of images read so far.
    ///
    /// Fails on the first page that fails (after its retries), and on a
    /// `next` link that leaves `/v2/images` or repeats one already followed.
    pub async fn list(
        &self,
        params: &[(String, String)],
        on_page: &mut (dyn FnMut(usize) + Send),
    ) -> Result<Vec<ServedImage>, ClientError> {
        let query = wire::urlencode(params.iter());
        let mut path = if query.is_empty() {
            "/v2/images".to_owned()
        } else {
            format!("/v2/images?{query}")
        };
        let mut seen = HashSet::new();
        let mut images = Vec::new();
        let timeout = self.options.request_timeout;
        loop {
            let url = self.url(&path);
            let response = self
                .send(Method::GET, &url, Retry::Idempotent, |request| {
                    request.header(ACCEPT, "application/json").timeout(timeout)
                })
                .await?;
            let body = self.document(Method::GET, &url, response).await?;
            let page = wire::parse_page(&body).map_err(|source| ClientError::BadAnswer {
                method: Method::GET,
                url: url.clone(),
                source,
            })?;
            images.extend(page.images);
            on_page(images.len());
            match page.next {
                None => return Ok(images),
                Some(next) => {
                    // Glance's `next` is a path under the API root; a link
                    // elsewhere would send the token to another host.
                    if !(next == "/v2/images" || next.starts_with("/v2/images?")) {
                        return Err(ClientError::BadNextLink {
                            link: next,
                            problem: "is not a /v2/images path",
                        });
                    }
                    if !seen.insert(next.clone()) {
                        return Err(ClientError::BadNextLink {
                            link: next,
                            problem: "repeats a page already read",
                        });
                    }
                    path = next;
                }
            }
        }
    }

    /// `POST /v2/images` with `body` (see [`wire::create_body`]); the new,
    /// queued image.
    ///
    /// Fails with the server's refusal (400 schema, 403 read-only or
    /// policy, 409 duplicate id, 413 quota) or a connection error; sent again
    /// only when the connection failed before the request went out (a
    /// create is not idempotent).
    pub async fn create(&self, body: &Value) -> Result<ServedImage, ClientError> {
        let url = self.url("/v2/images");
        let timeout = self.options.request_timeout;
        let response = self
            .send(Method::POST, &url, Retry::OnlyUnsent, |request| {
                request
                    .header(ACCEPT, "application/json")
                    .json(body)
                    .timeout(timeout)
            })
            .await?;
        let body = self.document(Method::POST, &url, response).await?;
        wire::parse_image(&body).map_err(|source| ClientError::BadAnswer {
            method: Method::POST,
            url,
            source,
        })
    }

    /// `PUT /v2/images/{id}/file` with `data` streamed as the body of
    /// exactly `size` bytes (`Content-Length` and `x-openstack-image-size`,
    /// as openstacksdk sends it). Sent once: the stream cannot be replayed.
    ///
    /// Fails with the server's refusal and its reason (400 signature or
    /// size, 409 not queued, 413 too large, 415 format) or a connection error.
    pub async fn upload<S>(&self, id: &str, data: S, size: u64) -> Result<(), ClientError>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Send + 'static,
    {
        let url = self.url(&format!("{}/file", Self::image_path(id)));
        let token = self.token().await?;
        let request = self
            .http
            .put(&url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .header(IMAGE_SIZE_HEADER, size)
            .body(reqwest::Body::wrap_stream(data));
        let response = Self::with_token(request, &token)
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                method: Method::PUT,
                url: url.clone(),
                attempts: 1,
                source,
            })?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(self.status_error(Method::PUT, &url, response, &token).await)
    }

    /// `GET /v2/images/{id}/file`: the data as a stream, not yet read.
    ///
    /// Fails with [`ClientError::NoData`] for Glance's 204 (no data, or the
    /// store lost it), the server's refusal (403, 404), or a connection
    /// error after the retries (which end once the answer's head arrived).
    pub async fn download(&self, id: &str) -> Result<Download, ClientError> {
        let url = self.url(&format!("{}/file", Self::image_path(id)));
        let response = self
            .send(Method::GET, &url, Retry::Idempotent, |request| request)
            .await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Err(ClientError::NoData {
                id: id.to_owned(),
                url,
            });
        }
        Ok(Download {
            content_length: response.content_length(),
            response,
        })
    }

    /// `DELETE /v2/images/{id}`; an image already gone (404) counts as deleted.
    ///
    /// Fails with the server's refusal (403 protected or not the owner) or
    /// a connection error after the retries.
    pub async fn delete(&self, id: &str) -> Result<(), ClientError> {
        let url = self.url(&Self::image_path(id));
        let timeout = self.options.request_timeout;
        match self
            .send(Method::DELETE, &url, Retry::Idempotent, |request| {
                request.timeout(timeout)
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(ClientError::Status { status, .. }) if status == StatusCode::NOT_FOUND => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// A download whose head arrived: the data follows as a stream.
pub struct Download {
    /// The announced length, if any.
    pub content_length: Option<u64>,
    response: reqwest::Response,
}

/// A download's chunks as the pump reads them.
pub type DataStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

impl Download {
    /// The body as a stream of chunks. A transfer that breaks off is an
    /// error item (`TimedOut` for a stalled server, `ConnectionAborted`
    /// otherwise), never a clean end.
    pub fn into_stream(self) -> DataStream {
        Box::pin(futures_util::stream::unfold(
            Some(self.response),
            |response| async move {
                let mut response = response?;
                match response.chunk().await {
                    Ok(Some(chunk)) => Some((Ok(chunk), Some(response))),
                    Ok(None) => None,
                    Err(err) => {
                        let kind = if err.is_timeout() {
                            io::ErrorKind::TimedOut
                        } else {
                            io::ErrorKind::ConnectionAborted
                        };
                        Some((Err(io::Error::new(kind, err)), None))
                    }
                }
            },
        ))
    }
}

/// Whether a transport failure may pass if tried again: no connection, a
/// connection reset or cut mid-answer, a timeout. A request that could
/// not even be built, or a redirect, will not.
fn is_transient(err: &reqwest::Error) -> bool {
    !(err.is_builder() || err.is_redirect() || err.is_status())
}

/// `Retry-After: <seconds>` (the HTTP-date form is not worth a parser here).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

enum BoundedError {
    Transfer(reqwest::Error),
    TooLarge,
}

async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BoundedError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BoundedError::Transfer)? {
        if body.len() + chunk.len() > limit {
            return Err(BoundedError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The endpoint's root: scheme and host, any path prefix (a catalog URL
/// such as `https://cloud/image`), without a trailing slash or a trailing
/// version segment (`/v2`, `/v2.1`), as glanceclient's `strip_version`.
fn endpoint_root(endpoint: &str) -> Result<String, ConnectError> {
    let bad = |reason: &'static str| ConnectError::BadEndpoint {
        url: endpoint.to_owned(),
        reason,
    };
    let parsed = url::Url::parse(endpoint.trim()).map_err(|_| bad("is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("is not an http or https URL"));
    }
    if parsed.host_str().is_none() {
        return Err(bad("has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("has a query or fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "holds credentials (give the token with --os-token instead)",
        ));
    }
    let mut url = parsed;
    let mut segments: Vec<String> = url
        .path_segments()
        .map(|segments| {
            segments
                .filter(|segment| !segment.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let is_version = |segment: &str| {
        segment.strip_prefix('v').is_some_and(|number| {
            number
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
        })
    };
    if segments.last().is_some_and(|last| is_version(last)) {
        segments.pop();
    }
    url.set_path(&segments.join("/"));
    let root = url.as_str().trim_end_matches('/').to_owned();
    Ok(root)
}

/// Glance cannot be reached with these settings (before any request).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The image endpoint is unusable.
    #[error("image endpoint {url:?} {reason}")]
    BadEndpoint {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The OpenStack client settings are incomplete or invalid.
    #[error(transparent)]
    Settings(SettingsError),
    /// Keystone refused the credentials or could not be reached.
    #[error("cannot authenticate with Keystone to find the image endpoint")]
    Auth(#[source] AuthError),
    /// The token's catalog has no image endpoint for the interface and region.
    #[error("{source}; or give the endpoint with --os-image-url / OS_IMAGE_URL")]
    Catalog {
        /// The catalog's answer.
        #[source]
        source: crate::openstack::CatalogError,
    },
}

impl ConnectError {
    /// A stable snake_case name.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectError::BadEndpoint { .. } => "bad_endpoint",
            ConnectError::Settings(_) => "openstack_settings",
            ConnectError::Auth(error) if error.is_unavailable() => "keystone_unavailable",
            ConnectError::Auth(_) => "keystone_auth_failed",
            ConnectError::Catalog { .. } => "image_not_in_catalog",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_lose_their_version_and_slash_but_keep_a_prefix() {
        for (given, root) in [
            ("http://127.0.0.1:9292", "http://127.0.0.1:9292"),
            ("http://127.0.0.1:9292/", "http://127.0.0.1:9292"),
            ("http://127.0.0.1:9292/v2", "http://127.0.0.1:9292"),
            ("http://127.0.0.1:9292/v2/", "http://127.0.0.1:9292"),
            (
                "https://cloud.example/image/v2.1",
                "https://cloud.example/image",
            ),
            ("https://cloud.example/image", "https://cloud.example/image"),
            ("https://cloud.example/v2x", "https://cloud.example/v2x"),
        ] {
            assert_eq!(endpoint_root(given).unwrap(), root, "{given}");
        }
        for bad in [
            "ftp://x",
            "not a url",
            "http://u:p@h/",
            "http://h/?a=1",
            "/v2",
        ] {
            assert!(endpoint_root(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(1), Duration::from_millis(500));
        assert_eq!(policy.delay(2), Duration::from_secs(1));
        assert_eq!(policy.delay(3), Duration::from_secs(2));
        assert_eq!(policy.delay(40), Duration::from_secs(10));
    }

    #[test]
    fn image_ids_are_one_escaped_path_segment() {
        assert_eq!(
            Client::image_path("1f2e-AB"),
            "/v2/images/1f2e-AB".to_owned()
        );
        assert_eq!(Client::image_path("../x y"), "/v2/images/..%2Fx%20y");
    }

    #[test]
    fn refusals_about_an_image_are_not_connection_errors() {
        let status = |code: u16| ClientError::Status {
            method: Method::GET,
            url: "u".into(),
            status: StatusCode::from_u16(code).unwrap(),
            reason: String::new(),
        };
        for code in [400, 403, 404, 409, 413, 415, 500] {
            assert!(!status(code).is_connection(), "{code}");
        }
        for code in [401, 502, 503, 504] {
            assert!(status(code).is_connection(), "{code}");
        }
        assert_eq!(status(404).kind(), "not_found");
        assert_eq!(status(503).kind(), "unavailable");
        assert_eq!(
            status(403).to_string(),
            "GET u: 403 Forbidden",
            "no empty reason suffix"
        );
    }
}
