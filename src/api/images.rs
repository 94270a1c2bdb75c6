//! The image endpoints of Glance's API v2: create, list, show, update,
//! delete, deactivate/reactivate, tags, and the data (`PUT`/`GET …/file`).
//!
//! Each handler parses the request (path id, query, headers, body), calls
//! one method of the facade [`crate::app::App`] and maps the result to
//! Glance's status, headers and JSON (`wire`). This module must not decide
//! anything the facade decides, and must not buffer image data: uploads
//! reach the facade as a stream of the request's chunks, downloads leave as
//! a stream of the store's.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RANGE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures_util::StreamExt;

use crate::app::{self, UploadData};
use crate::image::{ImageId, Status};
use crate::wire::{self, ImageJson, ImagesPage};

use super::body::{self, PatchMediaType};
use super::error::{ApiError, Operation};
use super::query::ListParams;
use super::range;
use super::upload;
use super::{ApiState, BaseUrl, Caller, resource};

/// Glance's `OpenStack-image-store-ids` header (the configured stores).
const STORE_IDS_HEADER: HeaderName = HeaderName::from_static("openstack-image-store-ids");

/// Glance's `OpenStack-image-import-methods` header (the enabled methods).
const IMPORT_METHODS_HEADER: HeaderName = HeaderName::from_static("openstack-image-import-methods");

/// The `/v2/images…` routes.
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/images", resource("GET, POST", get(list).post(create)))
        .route(
            "/v2/images/{id}",
            resource("GET, PATCH, DELETE", get(show).patch(update).delete(remove)),
        )
        .route(
            "/v2/images/{id}/file",
            resource("GET, PUT", get(download).put(upload)),
        )
        .route("/v2/images/{id}/stage", resource("PUT", put(stage)))
        .route("/v2/images/{id}/import", resource("POST", post(import)))
        .route(
            "/v2/images/{id}/actions/deactivate",
            resource("POST", post(deactivate)),
        )
        .route(
            "/v2/images/{id}/actions/reactivate",
            resource("POST", post(reactivate)),
        )
        .route(
            "/v2/images/{id}/tags/{tag}",
            resource("PUT, DELETE", put(add_tag).delete(remove_tag)),
        )
}

/// The path's image id; anything but a UUID is Glance's 404 for `op`.
pub(crate) fn image_id(op: Operation, text: &str) -> Result<ImageId, ApiError> {
    text.parse().map_err(|_| ApiError::NoSuchImage {
        op,
        id: text.to_owned(),
    })
}

pub(crate) fn failed(op: Operation) -> impl FnOnce(app::Error) -> ApiError {
    move |source| ApiError::App { op, source }
}

/// `200` (or `status`) with an image document.
fn image_response(status: StatusCode, image: &crate::image::Image) -> Response {
    json_response(status, serde_json::to_string(&ImageJson(image)))
}

pub(crate) fn json_response(
    status: StatusCode,
    body: Result<String, serde_json::Error>,
) -> Response {
    match body {
        Ok(body) => (
            status,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response(),
        Err(err) => ApiError::internal(err).into_response(),
    }
}

/// Glance's empty success: 204 with `Content-Type: text/html; charset=UTF-8`
/// and no body (what its WSGI stack sends for uploads, tags, actions).
fn no_content() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=UTF-8"),
        )],
    )
        .into_response()
}

/// `POST /v2/images` → 201, `Location`, the store and import headers, the queued image.
async fn create(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let op = Operation::Create;
    let bytes = body::read_limited(&headers, body, state.options().max_json_body_size).await?;
    let request = wire::parse_create(&bytes).map_err(|err| failed(op)(app::Error::Request(err)))?;
    let image = state
        .app()
        .create(&ctx, request)
        .await
        .map_err(failed(op))?;
    let mut response = image_response(StatusCode::CREATED, &image);
    let location =
        BaseUrl::from_request(&headers, state.options()).join(&wire::image_path(image.id));
    let settings = state.app().settings();
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response_headers.insert(LOCATION, value);
    }
    let methods = state.app().import_methods();
    if !methods.is_empty()
        && let Ok(value) = HeaderValue::from_str(&methods.join(","))
    {
        response_headers.insert(IMPORT_METHODS_HEADER, value);
    }
    if let Ok(value) = HeaderValue::from_str(settings.store_id) {
        response_headers.insert(STORE_IDS_HEADER, value);
    }
    Ok(response)
}

/// `GET /v2/images` → one page with `first`, `schema` and `next` links.
async fn list(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = ListParams::parse(query.as_deref(), state.options())?;
    let list_query = params.to_list_query()?;
    let page = state
        .app()
        .list(&ctx, list_query)
        .await
        .map_err(failed(Operation::List))?;
    let body = ImagesPage::new(&page.images, &params.pairs, params.limit);
    Ok(json_response(StatusCode::OK, serde_json::to_string(&body)))
}

/// `GET /v2/images/{id}`.
async fn show(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let op = Operation::Show;
    let id = image_id(op, &id)?;
    let image = state.app().show(&ctx, id).await.map_err(failed(op))?;
    Ok(image_response(StatusCode::OK, &image))
}

/// `PATCH /v2/images/{id}` (json-patch media types only).
async fn update(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let op = Operation::Update;
    let dialect = body::patch_media_type(&headers)?;
    let id = image_id(op, &id)?;
    let bytes = body::read_limited(&headers, body, state.options().max_json_body_size).await?;
    let patch = match dialect {
        PatchMediaType::V2_1 => wire::parse_patch(&bytes),
        PatchMediaType::V2_0 => wire::parse_patch_v2_0(&bytes),
    }
    .map_err(|err| failed(op)(app::Error::Request(err)))?;
    let image = state
        .app()
        .update(&ctx, id, &patch)
        .await
        .map_err(failed(op))?;
    Ok(image_response(StatusCode::OK, &image))
}

/// `DELETE /v2/images/{id}` → 204.
async fn remove(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let op = Operation::Delete;
    let id = image_id(op, &id)?;
    state.app().delete(&ctx, id).await.map_err(failed(op))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v2/images/{id}/actions/deactivate` → 204.
async fn deactivate(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let op = Operation::Deactivate;
    let id = image_id(op, &id)?;
    state.app().deactivate(&ctx, id).await.map_err(failed(op))?;
    Ok(no_content())
}

/// `POST /v2/images/{id}/actions/reactivate` → 204.
async fn reactivate(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let op = Operation::Reactivate;
    let id = image_id(op, &id)?;
    state.app().reactivate(&ctx, id).await.map_err(failed(op))?;
    Ok(no_content())
}

/// `PUT /v2/images/{id}/tags/{tag}` → 204.
async fn add_tag(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let op = Operation::AddTag;
    let id = image_id(op, &id)?;
    state
        .app()
        .add_tag(&ctx, id, &tag)
        .await
        .map_err(failed(op))?;
    Ok(no_content())
}

/// `DELETE /v2/images/{id}/tags/{tag}` → 204.
async fn remove_tag(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let op = Operation::RemoveTag;
    let id = image_id(op, &id)?;
    state
        .app()
        .remove_tag(&ctx, id, &tag)
        .await
        .map_err(failed(op))?;
    Ok(no_content())
}

/// `PUT /v2/images/{id}/file` → 204 once the image is active.
///
/// The body streams into the facade chunk by chunk. A client that goes
/// away ends the stream with an error (the upload fails, the image is
/// `queued` with nothing stored); a shutdown past its grace period drops
/// the upload (the facade's drop guard rolls it back) and waits until the
/// image has left `saving` before answering 503.
async fn upload(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let op = Operation::Upload;
    let id = image_id(op, &id)?;
    let data = upload_data(request)?;
    let app = state.app();
    let work = async {
        let mut progress = |_: u64| {};
        app.upload(&ctx, id, data, &mut progress).await
    };
    let rolled_back = wait_until_not_saving(&state, &ctx, id);
    state
        .lifecycle()
        .run(work, rolled_back)
        .await?
        .map_err(failed(op))?;
    Ok(no_content())
}

/// `PUT /v2/images/{id}/stage` → 204 once the data is staged (`uploading`).
///
/// The body streams into the staged write as an upload's does; a failure
/// leaves the image `queued` with nothing staged. A shutdown past its grace
/// period drops the stage: the next start's recovery returns the image to
/// `queued` and removes the partial staging.
async fn stage(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let op = Operation::Stage;
    let id = image_id(op, &id)?;
    let data = upload_data(request)?;
    let work = state.app().stage(&ctx, id, data);
    state
        .lifecycle()
        .run(work, std::future::ready(()))
        .await?
        .map_err(failed(op))?;
    Ok(no_content())
}

/// `POST /v2/images/{id}/import` with `{"method": {"name": "glance-direct"}}`
/// → 202 once the staged data went through the one pass and the image is
/// `active`; a refusal answers as the upload's would (400 signature, 413,
/// 415, …) with the image `queued` again. Glance answers 202 at once and
/// runs a task; answering after the pass lets the reason reach the client.
async fn import(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let op = Operation::Import;
    let id = image_id(op, &id)?;
    let bytes = body::read_limited(&headers, body, state.options().max_json_body_size).await?;
    let method = wire::parse_import_method(&bytes)?;
    let app = state.app();
    let work = app.import(&ctx, id, &method);
    let rolled_back = wait_until_not_saving(&state, &ctx, id);
    state
        .lifecycle()
        .run(work, rolled_back)
        .await?
        .map_err(failed(op))?;
    Ok((
        StatusCode::ACCEPTED,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        "{}",
    )
        .into_response())
}

/// The request's body as image data, with its declared size.
fn upload_data(
    request: Request,
) -> Result<
    UploadData<
        impl futures_core::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + Unpin,
    >,
    ApiError,
> {
    let declared_size = upload::declared_size(request.headers())?;
    Ok(UploadData {
        stream: upload::body_stream(request.into_body()),
        declared_size,
    })
}

/// After a cancelled upload: polls the image until the drop guard's
/// rollback is visible (status no longer `saving`), for at most the
/// server's cleanup limit.
async fn wait_until_not_saving(state: &ApiState, ctx: &app::RequestContext, id: ImageId) {
    let deadline = tokio::time::Instant::now() + super::server::CLEANUP_LIMIT;
    loop {
        match state.app().show(ctx, id).await {
            Ok(image) if image.status == Status::Saving => {}
            Ok(_) => return,
            Err(err) => {
                tracing::warn!(image = %id, error = %err, "cannot read the image back after cancelling its upload");
                return;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::error!(image = %id, "the cancelled upload's rollback did not finish in time; recovery at the next start finishes it");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `GET /v2/images/{id}/file` → 200 (whole image, verified while it
/// streams), 206 (`Range`), or 204 (no data).
async fn download(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let op = Operation::Download;
    let id = image_id(op, &id)?;
    let range = match headers.get(RANGE) {
        Some(value) => Some(range::parse(&String::from_utf8_lossy(value.as_bytes()))?),
        None => None,
    };
    let download = state
        .app()
        .download(&ctx, id, range)
        .await
        .map_err(failed(op))?;
    let status = if download.range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let stream = download.stream.map(move |item| {
        item.map_err(|err| {
            // Headers are gone: the only way left to say "bad data" is to
            // cut the response short, which every client notices.
            tracing::error!(image = %id, error = %err, "download aborted");
            std::io::Error::other(err.to_string())
        })
    });
    let body = Body::from_stream(state.lifecycle().cancellable(Box::pin(stream)));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let response_headers = response.headers_mut();
    response_headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response_headers.insert(CONTENT_LENGTH, HeaderValue::from(download.len));
    if let Some(resolved) = download.range
        && let Ok(value) = HeaderValue::from_str(&resolved.content_range())
    {
        response_headers.insert(HeaderName::from_static("content-range"), value);
    }
    // Glance sends the md5 hex of the whole image, also with a range.
    if let Some(checksum) = &download.image.checksum
        && let Ok(value) = HeaderValue::from_str(checksum)
    {
        response_headers.insert(HeaderName::from_static("content-md5"), value);
    }
    Ok(response)
}
