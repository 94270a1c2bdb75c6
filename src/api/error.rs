//! [`ApiError`]: every way a request can fail, mapped to Glance's status,
//! message and headers in one exhaustive `match` per question.
//!
//! This module owns the status of each failure and what its body says.
//! Internal details (the `#[source]` chain of a 5xx) never reach the body:
//! they are logged once, here, with the request's id from the span. The
//! body's form (html / JSON / plain) is chosen later per request
//! ([`super::render::negotiate_errors`]).

use axum::http::header::{ALLOW, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::AuthError;
use super::body::{ACCEPT_PATCH, BodyError};
use super::query::QueryError;
use super::range::RangeError;
use super::render::{ErrorBody, ErrorReport, Form};
use super::upload::UploadHeaderError;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No route matches the path (webob's default 404).
    #[error("no such resource")]
    UnknownResource,
    /// The path exists, the method does not (405 with `Allow`).
    #[error("method {method} is not allowed here (allowed: {allow})")]
    MethodNotAllowed {
        /// The request's method.
        method: Method,
        /// The `Allow` header value, in Glance's order.
        allow: &'static str,
    },
    /// Not authenticated (401 with `WWW-Authenticate`).
    #[error("not authenticated")]
    Unauthenticated {
        /// Why.
        #[source]
        reason: AuthError,
        /// The `uri` of `WWW-Authenticate: Keystone uri="…"`.
        www_authenticate_uri: String,
    },
    /// A list query Glance refuses.
    #[error("bad list query")]
    Query(#[from] QueryError),
    /// A `Range` header Glance refuses.
    #[error("bad Range header")]
    Range(#[from] RangeError),
    /// Upload headers Glance refuses.
    #[error("bad upload request")]
    Upload(#[from] UploadHeaderError),
    /// A JSON body that cannot be taken, or a PATCH with the wrong media type.
    #[error("bad request body")]
    Body(#[from] BodyError),
    /// The server is shutting down and cancelled the request (503).
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Anything the client cannot fix (500); the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// webob's explanation for 400.
const BAD_REQUEST: &str = "The server could not comply with the request since\r\nit is either malformed or otherwise incorrect.\r\n";
/// webob's explanation for 404.
const NOT_FOUND: &str = "The resource could not be found.";
/// webob's explanation for 413.
const TOO_LARGE: &str = "The body of your request was too large for this server.";
/// webob's explanation for 500.
const INTERNAL: &str =
    "The server has either erred or is incapable of performing the requested operation.";
/// webob's explanation for 501.
const NOT_IMPLEMENTED: &str = "The server has not been programmed to respond to this request.";
/// webob's explanation for 503.
const UNAVAILABLE: &str = "The server is currently unavailable. Please try again at a later time.";

impl ApiError {
    /// A 500 for `source`, which is logged (never sent) when the response is made.
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::Internal(Box::new(source))
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.classify().status
    }

    /// The status and what the body says, in one exhaustive match per
    /// error type (nested into the facade's layers where they decide).
    fn classify(&self) -> Failure {
        match self {
            ApiError::UnknownResource => Failure::standard(StatusCode::NOT_FOUND, NOT_FOUND),
            ApiError::MethodNotAllowed { method, .. } => Failure {
                status: StatusCode::METHOD_NOT_ALLOWED,
                body: ErrorBody::MethodNotAllowed {
                    method: method.to_string(),
                },
            },
            ApiError::Unauthenticated { reason, .. } => {
                Failure::standard(StatusCode::UNAUTHORIZED, reason.glance_message())
            }
            ApiError::Query(err) => match err {
                QueryError::Unsupported { .. } => Failure::detailed(
                    StatusCode::NOT_IMPLEMENTED,
                    NOT_IMPLEMENTED,
                    err.glance_message(),
                ),
                QueryError::LimitNotInteger { .. }
                | QueryError::LimitNegative { .. }
                | QueryError::Marker { .. }
                | QueryError::SortKey { .. }
                | QueryError::SortDir { .. }
                | QueryError::SortSyntaxMixed
                | QueryError::SortDirCount { .. }
                | QueryError::Visibility { .. }
                | QueryError::MemberStatus { .. }
                | QueryError::Boolean { .. }
                | QueryError::RangeValue { .. }
                | QueryError::Timestamp { .. }
                | QueryError::TimeOperator { .. }
                | QueryError::Operator { .. }
                | QueryError::Quotes { .. }
                | QueryError::Enum { .. }
                | QueryError::ChangesSince => {
                    Failure::standard(StatusCode::BAD_REQUEST, &err.glance_message())
                }
            },
            ApiError::Range(err) => {
                let (explanation, message) = err.glance_message();
                let status = match err {
                    RangeError::Multiple => StatusCode::BAD_REQUEST,
                    RangeError::Invalid { .. } | RangeError::StartPastEnd { .. } => {
                        StatusCode::RANGE_NOT_SATISFIABLE
                    }
                };
                match explanation {
                    Some(explanation) => Failure::detailed(status, explanation, message),
                    None => Failure::standard(status, &message),
                }
            }
            ApiError::Upload(err) => match err {
                UploadHeaderError::ContentType { content_type } => {
                    Failure::media_type(content_type.clone(), err.glance_message())
                }
                UploadHeaderError::Size { .. } => {
                    Failure::standard(StatusCode::BAD_REQUEST, &err.glance_message())
                }
            },
            ApiError::Body(err) => match err {
                BodyError::TooLarge { .. } => Failure::detailed(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    TOO_LARGE,
                    err.glance_message(),
                ),
                BodyError::Unreadable(_) => {
                    Failure::detailed(StatusCode::BAD_REQUEST, BAD_REQUEST, err.glance_message())
                }
                BodyError::PatchMediaType { content_type } => {
                    Failure::media_type(content_type.clone(), err.glance_message())
                }
            },
            ApiError::ShuttingDown => {
                Failure::standard(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE)
            }
            ApiError::Internal(_) => internal(),
        }
    }

    /// Headers the status needs besides the body's.
    fn extra_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        match self {
            ApiError::MethodNotAllowed { allow, .. } => {
                vec![(ALLOW, HeaderValue::from_static(allow))]
            }
            ApiError::Unauthenticated {
                www_authenticate_uri,
                ..
            } => {
                let value = format!(
                    "Keystone uri=\"{}\"",
                    www_authenticate_uri.replace('"', "%22")
                );
                HeaderValue::from_str(&value)
                    .map(|value| vec![(WWW_AUTHENTICATE, value)])
                    .unwrap_or_else(|_| {
                        vec![(
                            WWW_AUTHENTICATE,
                            HeaderValue::from_static("Keystone uri=\"\""),
                        )]
                    })
            }
            ApiError::Body(BodyError::PatchMediaType { .. }) => {
                vec![(
                    HeaderName::from_static("accept-patch"),
                    HeaderValue::from_static(ACCEPT_PATCH),
                )]
            }
            ApiError::UnknownResource
            | ApiError::Query(_)
            | ApiError::Range(_)
            | ApiError::Upload(_)
            | ApiError::Body(BodyError::TooLarge { .. } | BodyError::Unreadable(_))
            | ApiError::ShuttingDown
            | ApiError::Internal(_) => Vec::new(),
        }
    }

    /// Logs what the client will not see: the cause of a 5xx (error), an
    /// authentication failure (info), anything else at debug.
    fn log(&self) {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %ErrorChain(self), "request failed");
        } else if matches!(self, ApiError::Unauthenticated { .. }) {
            tracing::info!(status = status.as_u16(), error = %ErrorChain(self), "request not authenticated");
        } else {
            tracing::debug!(status = status.as_u16(), error = %ErrorChain(self), "request refused");
        }
    }
}

/// A status and what the body says.
struct Failure {
    status: StatusCode,
    body: ErrorBody,
}

impl Failure {
    /// Glance's message as the explanation (`HTTPxxx(explanation=msg)`).
    fn standard(status: StatusCode, explanation: &str) -> Failure {
        Failure {
            status,
            body: ErrorBody::Standard {
                explanation: explanation.to_owned(),
                detail: None,
            },
        }
    }

    /// webob's default explanation plus Glance's message as the detail.
    fn detailed(status: StatusCode, explanation: &str, detail: String) -> Failure {
        Failure {
            status,
            body: ErrorBody::Standard {
                explanation: explanation.to_owned(),
                detail: Some(detail),
            },
        }
    }

    /// 415 with webob's media-type template.
    fn media_type(content_type: Option<String>, detail: String) -> Failure {
        Failure {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            body: ErrorBody::UnsupportedMediaType {
                content_type,
                detail,
            },
        }
    }
}

/// A 500: the body says nothing about the cause.
fn internal() -> Failure {
    Failure::standard(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL)
}

/// An error with its `source()` chain, `: `-separated.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let Failure { status, body } = self.classify();
        let report = ErrorReport { status, body };
        let (content_type, body) = report.render(Form::Html);
        let mut response = (report.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        for (name, value) in self.extra_headers() {
            headers.insert(name, value);
        }
        response.extensions_mut().insert(report);
        response
    }
}
