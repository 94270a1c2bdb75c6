//! `portcullis serve`: Glance's image API v2 over HTTP, so `glance`,
//! `openstack image` and curl work unchanged (issue 11).
//!
//! [`app`] builds the whole HTTP application as an axum [`Router`] (tested
//! with `tower::ServiceExt::oneshot`, no port); [`server`] runs it on a
//! socket with graceful shutdown. Layers, outermost first: request id and
//! access log → error-body negotiation → `/healthcheck` | version
//! negotiation → authentication → the `/v2` routes.
//!
//! This module owns the HTTP surface: routing, request parsing, status codes,
//! headers and error bodies. It must not implement use cases: a handler
//! parses, calls one method of the library facade, and maps the result;
//! the JSON of images is `wire`'s.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get};

use crate::app::App;
use crate::context::RequestContext;

pub mod auth;
pub mod body;
mod error;
mod health;
mod images;
mod info;
pub mod lifecycle;
mod members;
pub mod negotiate;
pub mod options;
pub mod query;
pub mod range;
mod render;
pub mod request_id;
mod schemas;
pub mod server;
pub mod upload;
pub mod versions;

pub use auth::Authenticator;
pub use error::{ApiError, Operation};
pub use lifecycle::Lifecycle;
pub use options::{AuthMode, OptionsError, ServerOptions};
pub use query::ListParams;
pub use request_id::RequestId;
pub use versions::BaseUrl;

/// What every handler shares: the facade, the settings, the authenticator,
/// the shutdown lifecycle.
#[derive(Clone, Debug)]
pub struct ApiState {
    inner: Arc<StateInner>,
}

#[derive(Debug)]
struct StateInner {
    app: Arc<App>,
    options: ServerOptions,
    authenticator: Authenticator,
    lifecycle: Lifecycle,
}

impl ApiState {
    /// The state for a server over `app` with these settings.
    pub fn new(
        app: Arc<App>,
        options: ServerOptions,
        authenticator: Authenticator,
        lifecycle: Lifecycle,
    ) -> ApiState {
        ApiState {
            inner: Arc::new(StateInner {
                app,
                options,
                authenticator,
                lifecycle,
            }),
        }
    }

    /// The application facade.
    pub fn app(&self) -> &App {
        &self.inner.app
    }

    /// The `[server]` settings.
    pub fn options(&self) -> &ServerOptions {
        &self.inner.options
    }

    /// How requests are authenticated.
    pub fn authenticator(&self) -> &Authenticator {
        &self.inner.authenticator
    }

    /// The shutdown signal long transfers run under.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.inner.lifecycle
    }
}

/// The whole HTTP application.
pub fn app(state: ApiState) -> Router {
    let v2 = Router::new()
        .route("/v2", any(v2_redirect))
        .merge(schema_routes())
        .merge(images::routes())
        .merge(members::routes())
        .route("/v2/info/stores", resource("GET", get(info::stores)))
        .route("/v2/info/import", resource("GET", get(info::import)))
        .fallback(unknown_resource)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state.clone());
    let versioned = tower::ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(
            state.clone(),
            negotiate_version,
        ))
        .service(v2);
    Router::new()
        .route("/healthcheck", any(health::healthcheck))
        .fallback_service(versioned)
        .layer(middleware::from_fn(render::negotiate_errors))
        .layer(middleware::from_fn(request_id::request_id))
        .with_state(state)
}

/// `GET /v2/schemas/*`: the documents glanceclient needs.
fn schema_routes() -> Router<ApiState> {
    let mut router = Router::new();
    for name in schemas::names() {
        router = router.route(
            &format!("/v2/schemas/{name}"),
            resource("GET", get(move || async move { schemas::response(name) })),
        );
    }
    router
}

/// A route whose other methods get Glance's 405 with `Allow: allow`
/// (HEAD included: Glance routes HEAD nowhere in v2).
fn resource(allow: &'static str, router: MethodRouter<ApiState>) -> MethodRouter<ApiState> {
    let reject = move |method: Method| async move { ApiError::MethodNotAllowed { method, allow } };
    router.head(reject).fallback(reject)
}

/// `/v2` → 302 to `/v2/` (which is a 404), as Glance.
async fn v2_redirect(State(state): State<ApiState>, request: Request) -> Response {
    let location = BaseUrl::from_request(request.headers(), state.options()).join("/v2/");
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf8"),
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(LOCATION, value);
    }
    response
}

async fn unknown_resource() -> ApiError {
    ApiError::UnknownResource
}

/// Middleware: version discovery and `/v2.x/…` → `/v2/…`.
async fn negotiate_version(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    match versions::negotiate(request.uri(), request.headers()) {
        versions::Negotiated::V2(uri) => {
            let mut request = request;
            *request.uri_mut() = uri;
            next.run(request).await
        }
        versions::Negotiated::Explicit => {
            versions::response(StatusCode::OK, request.headers(), state.options())
        }
        versions::Negotiated::Choices => versions::response(
            StatusCode::MULTIPLE_CHOICES,
            request.headers(),
            state.options(),
        ),
    }
}

/// Middleware: the caller's [`RequestContext`] into the request's
/// extensions, or a 401.
async fn authenticate(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    match state.authenticator().authenticate(request.headers()).await {
        Ok(context) => {
            let span = tracing::Span::current();
            if let Some(project) = &context.project_id {
                span.record("project", project.as_str());
            }
            if let Some(user) = &context.user_id {
                span.record("user", user.as_str());
            }
            request.extensions_mut().insert(context);
            next.run(request).await
        }
        Err(reason) => {
            let www_authenticate_uri = state
                .options()
                .www_authenticate_uri
                .clone()
                .or_else(|| state.authenticator().www_authenticate_uri())
                .unwrap_or_else(|| {
                    BaseUrl::from_request(request.headers(), state.options()).join("")
                });
            ApiError::Unauthenticated {
                reason,
                www_authenticate_uri,
            }
            .into_response()
        }
    }
}

/// The authenticated caller of a `/v2` request (extractor).
#[derive(Debug, Clone)]
pub struct Caller(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| ApiError::internal(MissingContext))
    }
}

/// A handler asked for the caller outside the authenticated routes: a
/// routing bug, reported as a 500.
#[derive(Debug, thiserror::Error)]
#[error("no request context: the route is not behind the authentication layer")]
struct MissingContext;

/// Helpers shared by the unit tests of this module's files.
#[cfg(test)]
pub(crate) mod test_support {
    use axum::http::{HeaderMap, HeaderValue};

    /// A header map from `(name, value)` pairs (names may repeat).
    pub(crate) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                *name,
                HeaderValue::from_str(value).expect("a valid header value"),
            );
        }
        map
    }
}
