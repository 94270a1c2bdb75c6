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

use crate::app;
use crate::image::ImageId;
use crate::ingest;
use crate::ingest::download::Error as DownloadError;
use crate::ingest::limit::LimitKind;
use crate::repo;
use crate::store;
use crate::wire;

use super::auth::AuthError;
use super::body::{ACCEPT_PATCH, BodyError};
use super::query::QueryError;
use super::range::{self, RangeError};
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
    /// A member request body Glance refuses (400).
    #[error("bad member request body")]
    MemberBody(#[from] wire::MemberBodyError),
    /// An import request body Glance refuses (400).
    #[error("bad import request body")]
    ImportBody(#[from] wire::ImportBodyError),
    /// An image id in the path that is not a UUID: Glance looks it up and
    /// finds nothing (404, never 400: openstacksdk tries names as ids).
    #[error("{id:?} is not an image id")]
    NoSuchImage {
        /// What the request was doing (decides Glance's message).
        op: Operation,
        /// The path segment.
        id: String,
    },
    /// The facade refused or failed.
    #[error("{op} failed")]
    App {
        /// What the request was doing (decides some of Glance's messages).
        op: Operation,
        /// Why.
        #[source]
        source: app::Error,
    },
    /// The server is shutting down and cancelled the request (503).
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Anything the client cannot fix (500); the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The image operation a request performs: Glance words some refusals
/// (an unknown image above all) differently per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /v2/images`
    Create,
    /// `GET /v2/images/{id}`
    Show,
    /// `GET /v2/images`
    List,
    /// `PATCH /v2/images/{id}`
    Update,
    /// `DELETE /v2/images/{id}`
    Delete,
    /// `POST …/actions/deactivate`
    Deactivate,
    /// `POST …/actions/reactivate`
    Reactivate,
    /// `PUT …/file`
    Upload,
    /// `GET …/file`
    Download,
    /// `PUT …/stage`
    Stage,
    /// `POST …/import`
    Import,
    /// `PUT …/tags/{tag}`
    AddTag,
    /// `DELETE …/tags/{tag}`
    RemoveTag,
    /// `GET …/members`
    ListMembers,
    /// `POST …/members`
    AddMember,
    /// `GET …/members/{member_id}`
    ShowMember,
    /// `PUT …/members/{member_id}`
    UpdateMember,
    /// `DELETE …/members/{member_id}`
    RemoveMember,
}

impl Operation {
    /// The status this operation moves an image to, for Glance's
    /// "transition from X to Y" message when another request won the race.
    fn target_status(self) -> Option<crate::image::Status> {
        use crate::image::Status;
        match self {
            Operation::Upload | Operation::Import => Some(Status::Saving),
            Operation::Stage => Some(Status::Uploading),
            Operation::Deactivate => Some(Status::Deactivated),
            Operation::Reactivate => Some(Status::Active),
            Operation::Delete => Some(Status::Deleted),
            Operation::Create
            | Operation::Show
            | Operation::List
            | Operation::Update
            | Operation::Download
            | Operation::AddTag
            | Operation::RemoveTag
            | Operation::ListMembers
            | Operation::AddMember
            | Operation::ShowMember
            | Operation::UpdateMember
            | Operation::RemoveMember => None,
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Create => "create",
            Operation::Show => "show",
            Operation::List => "list",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Deactivate => "deactivate",
            Operation::Reactivate => "reactivate",
            Operation::Upload => "upload",
            Operation::Stage => "stage",
            Operation::Import => "import",
            Operation::Download => "download",
            Operation::AddTag => "add tag",
            Operation::RemoveTag => "remove tag",
            Operation::ListMembers => "list members",
            Operation::AddMember => "add member",
            Operation::ShowMember => "show member",
            Operation::UpdateMember => "update member",
            Operation::RemoveMember => "remove member",
        })
    }
}

impl Operation {
    /// Glance's 404 message for image `id` in this operation.
    fn not_found(self, id: &str) -> String {
        match self {
            Operation::Delete => format!("Failed to find image {id} to delete"),
            Operation::AddTag
            | Operation::RemoveTag
            | Operation::ListMembers
            | Operation::AddMember
            | Operation::ShowMember
            | Operation::UpdateMember
            | Operation::RemoveMember => format!("Image {id} not found."),
            Operation::Create
            | Operation::Show
            | Operation::List
            | Operation::Update
            | Operation::Deactivate
            | Operation::Reactivate
            | Operation::Upload
            | Operation::Stage
            | Operation::Import
            | Operation::Download => format!("No image found with ID {id}"),
        }
    }
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
            // Keystone unavailable: 503 (keystonemiddleware's), never a guess.
            ApiError::Unauthenticated { reason, .. } if reason.is_unavailable() => {
                Failure::standard(StatusCode::SERVICE_UNAVAILABLE, reason.glance_message())
            }
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
                    RangeError::Invalid { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
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
            ApiError::MemberBody(err) => {
                Failure::standard(StatusCode::BAD_REQUEST, &err.glance_message())
            }
            ApiError::ImportBody(err) => {
                Failure::standard(StatusCode::BAD_REQUEST, &err.glance_message())
            }
            ApiError::NoSuchImage { op, id } => {
                Failure::standard(StatusCode::NOT_FOUND, &op.not_found(id))
            }
            ApiError::App { op, source } => app_failure(*op, source),
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
            ApiError::Unauthenticated { reason, .. } if reason.is_unavailable() => Vec::new(),
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
            | ApiError::MemberBody(_)
            | ApiError::ImportBody(_)
            | ApiError::NoSuchImage { .. }
            | ApiError::App { .. }
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

/// A message that starts with a capital letter, as Glance's do.
fn sentence(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// Glance's answer to a member operation on an image that is not `shared`:
/// 404 for show (Glance hides it there), 403 naming the operation otherwise
/// (Glance gives the reason only when listing; portcullis always does).
fn not_shared(op: Operation, id: ImageId) -> Failure {
    const REASON: &str = "Only shared images have members.";
    let verb = match op {
        Operation::ListMembers => "list",
        Operation::AddMember => "create",
        Operation::UpdateMember => "update",
        Operation::RemoveMember => "delete",
        Operation::ShowMember
        | Operation::Create
        | Operation::Show
        | Operation::List
        | Operation::Update
        | Operation::Delete
        | Operation::Deactivate
        | Operation::Reactivate
        | Operation::Upload
        | Operation::Stage
        | Operation::Import
        | Operation::Download
        | Operation::AddTag
        | Operation::RemoveTag => return Failure::standard(StatusCode::NOT_FOUND, REASON),
    };
    Failure::standard(
        StatusCode::FORBIDDEN,
        &format!("Not allowed to {verb} members for image {id}: {REASON}"),
    )
}

/// Glance's 416 for data of `size` bytes.
fn range_failure(size: u64) -> Failure {
    Failure::detailed(
        StatusCode::RANGE_NOT_SATISFIABLE,
        range::RANGE_EXPLANATION,
        range::unsatisfiable_message(size),
    )
}

fn app_failure(op: Operation, err: &app::Error) -> Failure {
    match err {
        app::Error::Request(err) => wire_failure(err),
        app::Error::NotRemovable { attribute, .. } => Failure::standard(
            StatusCode::FORBIDDEN,
            &format!("Property {attribute} may not be removed."),
        ),
        app::Error::NoSuchProperty { property, .. } => Failure::standard(
            StatusCode::CONFLICT,
            &format!("Property {property} does not exist."),
        ),
        app::Error::QueuedOnly { attribute, .. } => Failure::standard(
            StatusCode::FORBIDDEN,
            &format!("Attribute {attribute} can be only replaced for a queued image."),
        ),
        app::Error::OwnerAdminOnly { id } => Failure::standard(
            StatusCode::FORBIDDEN,
            &format!("Only an administrator may change the owner of image {id}."),
        ),
        app::Error::StatusNotAllowed { action, status, .. } => Failure::standard(
            StatusCode::FORBIDDEN,
            &format!("Not allowed to {action} image in status '{status}'"),
        ),
        app::Error::NoVerifiedData { .. } => {
            Failure::standard(StatusCode::CONFLICT, &sentence(&err.to_string()))
        }
        app::Error::TagNotFound { .. } => Failure::standard(StatusCode::NOT_FOUND, NOT_FOUND),
        app::Error::NotShared { id, .. } => not_shared(op, *id),
        app::Error::RangeNotSatisfiable { size, .. } => range_failure(*size),
        app::Error::NoKeyManager => Failure::standard(
            StatusCode::BAD_REQUEST,
            "Signature verification failed: the image is signed, but this server has no certificate directory (cert_dir) to verify it with.",
        ),
        app::Error::ImportMethod { method } => Failure::standard(
            StatusCode::BAD_REQUEST,
            &format!("Unknown import method name '{method}'."),
        ),
        app::Error::Repo(err) => repo_failure(op, err),
        app::Error::Upload(err) => upload_failure(op, err),
        app::Error::Download(err) => download_failure(err),
    }
}

fn wire_failure(err: &wire::Error) -> Failure {
    let status = match err {
        wire::Error::ReadOnly { .. }
        | wire::Error::Reserved { .. }
        | wire::Error::NotAProperty { .. } => StatusCode::FORBIDDEN,
        wire::Error::Json(_)
        | wire::Error::NotAnObject
        | wire::Error::Schema { .. }
        | wire::Error::NotAList
        | wire::Error::BadOperation { .. }
        | wire::Error::BadPointer { .. } => StatusCode::BAD_REQUEST,
    };
    Failure::standard(status, &err.glance_message())
}

fn repo_failure(op: Operation, err: &repo::Error) -> Failure {
    match err {
        repo::Error::NotFound { id } => {
            Failure::standard(StatusCode::NOT_FOUND, &op.not_found(&id.to_string()))
        }
        repo::Error::AlreadyExists { id } => Failure::standard(
            StatusCode::CONFLICT,
            &format!("Image with identifier {id} already exists!"),
        ),
        repo::Error::Conflict { id, actual, .. } => match op.target_status() {
            Some(wanted) => transition(*actual, wanted),
            None => Failure::standard(
                StatusCode::CONFLICT,
                &format!(
                    "Image {id} was changed by another request (it is now {actual}); read it again and retry."
                ),
            ),
        },
        repo::Error::InvalidTransition { from, to, .. } => transition(*from, *to),
        repo::Error::MemberLimit { id, limit } => Failure::standard(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "Image member limit exceeded for image {id}: The limit has been exceeded on the number of allowed image members for this image. Attempted: {}, Maximum: {limit}:",
                limit.saturating_add(1)
            ),
        ),
        repo::Error::MemberNotFound { id, member_id } => Failure::standard(
            StatusCode::NOT_FOUND,
            &format!("{member_id} not found in the member list of the image {id}."),
        ),
        repo::Error::MemberExists { id, member_id } => Failure::standard(
            StatusCode::CONFLICT,
            &format!("Member {member_id} is duplicated for image {id}"),
        ),
        repo::Error::InvalidMember { .. } => {
            Failure::standard(StatusCode::BAD_REQUEST, &sentence(&err.to_string()))
        }
        repo::Error::Forbidden { action, image } => {
            let message = match (op, image) {
                (Operation::Upload | Operation::Stage | Operation::Import, Some(id)) => {
                    format!("Not allowed to upload image data for image {id}")
                }
                // Glance's words per member operation, then why (Glance
                // gives the reason only when listing).
                (Operation::ListMembers, Some(id)) => {
                    format!(
                        "Not allowed to list members for image {id}: not authorized to {action}."
                    )
                }
                (Operation::AddMember, Some(id)) => {
                    format!(
                        "Not allowed to create members for image {id}: not authorized to {action}."
                    )
                }
                (Operation::UpdateMember, Some(id)) => {
                    format!(
                        "Not allowed to update members for image {id}: not authorized to {action}."
                    )
                }
                (Operation::RemoveMember, Some(id)) => {
                    format!(
                        "Not allowed to delete members for image {id}: not authorized to {action}."
                    )
                }
                _ => format!("You are not authorized to complete {action} action."),
            };
            Failure::standard(StatusCode::FORBIDDEN, &message)
        }
        repo::Error::ReadOnly { attribute, .. } => Failure::standard(
            StatusCode::FORBIDDEN,
            &format!("Attribute '{attribute}' is read-only."),
        ),
        repo::Error::Protected { id } => Failure::standard(
            StatusCode::FORBIDDEN,
            &format!("Image {id} is protected and cannot be deleted."),
        ),
        repo::Error::QuotaExceeded { .. } => {
            Failure::standard(StatusCode::PAYLOAD_TOO_LARGE, &sentence(&err.to_string()))
        }
        repo::Error::NoData { .. } => no_content(),
        repo::Error::MarkerNotFound { id } => Failure::standard(
            StatusCode::BAD_REQUEST,
            &format!("No image found with ID {id}"),
        ),
        repo::Error::NotQueued { .. }
        | repo::Error::ForeignLocation { .. }
        | repo::Error::Database { .. }
        | repo::Error::Migrate { .. }
        | repo::Error::ForeignDatabase { .. }
        | repo::Error::UnsupportedUrl { .. }
        | repo::Error::Corrupt { .. }
        | repo::Error::Store(_)
        | repo::Error::Options(_) => internal(),
    }
}

/// Glance's 409 for a status change that cannot happen now.
fn transition(from: crate::image::Status, to: crate::image::Status) -> Failure {
    Failure::standard(
        StatusCode::CONFLICT,
        &format!("Image status transition from {from} to {to} is not allowed"),
    )
}

/// An image without data: 204 and no body (Glance's answer to a download).
fn no_content() -> Failure {
    Failure::standard(StatusCode::NO_CONTENT, "")
}

/// The status an upload-like operation moves a queued image to (`saving`;
/// `uploading` for a stage).
fn upload_target(op: Operation) -> crate::image::Status {
    op.target_status().unwrap_or(crate::image::Status::Saving)
}

fn upload_failure(op: Operation, err: &ingest::Error) -> Failure {
    let signature = |id: &ImageId, reason: &str| {
        Failure::standard(
            StatusCode::BAD_REQUEST,
            &format!("Signature verification failed for image {id}: {reason}"),
        )
    };
    let too_large = |kind: &LimitKind| match kind {
        LimitKind::SizeCap | LimitKind::DeclaredOverSizeCap { .. } => Failure::standard(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The incoming image is too large: The provided image is too large.",
        ),
        LimitKind::Quota | LimitKind::DeclaredOverQuota { .. } => Failure::standard(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("Image exceeds the storage quota: {err}"),
        ),
        LimitKind::Declared => {
            Failure::standard(StatusCode::BAD_REQUEST, &sentence(&err.to_string()))
        }
    };
    match err {
        ingest::Error::NotQueued { status, .. } => transition(*status, upload_target(op)),
        ingest::Error::Conflict { .. } => {
            transition(crate::image::Status::Saving, upload_target(op))
        }
        ingest::Error::NotStaged { .. } => Failure::standard(
            StatusCode::CONFLICT,
            "Image needs to be staged before 'glance-direct' method can be used",
        ),
        ingest::Error::SignatureRequired { id } => signature(
            id,
            "the image has no img_signature properties and this server requires signed images",
        ),
        ingest::Error::Signature { id, source } => signature(id, &source.to_string()),
        ingest::Error::NoCertDir { id } => signature(
            id,
            "the image is signed, but this server has no certificate directory (cert_dir) to verify it with",
        ),
        ingest::Error::TooLarge { kind, .. } | ingest::Error::DeclaredTooLarge { kind, .. } => {
            too_large(kind)
        }
        ingest::Error::SizeExceedsDeclared {
            declared, received, ..
        } => Failure::standard(
            StatusCode::BAD_REQUEST,
            &format!("Size exceeds: expected {declared} bytes, got {received} bytes"),
        ),
        ingest::Error::SizeMismatch {
            declared, received, ..
        } => Failure::standard(
            StatusCode::BAD_REQUEST,
            &format!("Size mismatch: expected {declared} bytes, got {received} bytes"),
        ),
        // The request had to be application/octet-stream to get this far.
        ingest::Error::Format { source, .. } => Failure::media_type(
            Some("application/octet-stream".to_owned()),
            sentence(&source.to_string()),
        ),
        ingest::Error::FormatsUnset { .. } => Failure::standard(
            StatusCode::BAD_REQUEST,
            "Properties disk_format, container_format must be set prior to saving data.",
        ),
        ingest::Error::Stream { received, .. } => Failure::detailed(
            StatusCode::BAD_REQUEST,
            BAD_REQUEST,
            format!("The image data stopped after {received} bytes; the image is queued again."),
        ),
        ingest::Error::Store { source, .. } => store_failure(source),
        ingest::Error::Repo { source, .. } => repo_failure(op, source),
        ingest::Error::CertDir { .. }
        | ingest::Error::KeyManager { .. }
        | ingest::Error::Worker { .. } => internal(),
    }
}

fn store_failure(err: &store::Error) -> Failure {
    match err {
        // Glance: 413 "Image storage media is full"; the path stays in the log.
        store::Error::DiskFull { .. } => Failure::standard(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Image storage media is full.",
        ),
        store::Error::RangeNotSatisfiable { len, .. } => range_failure(*len),
        store::Error::Io { .. }
        | store::Error::S3 { .. }
        | store::Error::S3Setup { .. }
        | store::Error::Config(_)
        | store::Error::ForeignLocation { .. }
        | store::Error::ForeignIntent { .. }
        | store::Error::Missing { .. }
        | store::Error::Failed { .. } => internal(),
    }
}

fn download_failure(err: &DownloadError) -> Failure {
    match err {
        DownloadError::NotActive { status, .. } => Failure::standard(
            StatusCode::FORBIDDEN,
            &format!("The requested image is {status}. Image data download is forbidden."),
        ),
        DownloadError::NoData { .. } => no_content(),
        DownloadError::Corrupted { .. }
        | DownloadError::Store { .. }
        | DownloadError::Io { .. }
        | DownloadError::Worker { .. } => internal(),
    }
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
        if status == StatusCode::NO_CONTENT {
            // Glance's download of an image without data: no body, no Content-Type.
            return status.into_response();
        }
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
