//! The image member endpoints of Glance's API v2 (image sharing):
//! `GET`/`POST /v2/images/{id}/members` and
//! `GET`/`PUT`/`DELETE /v2/images/{id}/members/{member_id}`.
//!
//! Each handler parses the path and body, calls one member method of the
//! facade and answers as Glance does: 200 with the member document (also
//! for a create), 200 with the list, 204 for a delete. This module must
//! not decide who may share or answer (the repository's authorization
//! layer does), and it owns no JSON shape (`wire::member` does).

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::image::Member;
use crate::wire::{self, MemberJson, MembersJson};

use super::body;
use super::error::{ApiError, Operation};
use super::images::{failed, image_id, json_response};
use super::{ApiState, Caller, resource};

/// The `/v2/images/{id}/members…` routes.
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/v2/images/{id}/members",
            resource("GET, POST", get(list).post(add)),
        )
        .route(
            "/v2/images/{id}/members/{member_id}",
            resource("GET, PUT, DELETE", get(show).put(update).delete(remove)),
        )
}

/// 200 with Glance's member document.
fn member_response(member: &Member) -> Response {
    json_response(StatusCode::OK, serde_json::to_string(&MemberJson(member)))
}

/// `GET /v2/images/{id}/members` → 200 `{"members": [...], "schema": ...}`.
async fn list(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let op = Operation::ListMembers;
    let id = image_id(op, &id)?;
    let members = state
        .app()
        .list_members(&ctx, id)
        .await
        .map_err(failed(op))?;
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_string(&MembersJson(&members)),
    ))
}

/// `POST /v2/images/{id}/members` with `{"member": "<project>"}` → 200 and
/// the new (pending) membership, as Glance answers (not 201).
async fn add(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let op = Operation::AddMember;
    let id = image_id(op, &id)?;
    let bytes = body::read_limited(&headers, body, state.options().max_json_body_size).await?;
    let member_id = wire::parse_add_member(&bytes)?;
    let member = state
        .app()
        .add_member(&ctx, id, &member_id)
        .await
        .map_err(failed(op))?;
    Ok(member_response(&member))
}

/// `GET /v2/images/{id}/members/{member_id}` → 200 and the membership.
async fn show(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let op = Operation::ShowMember;
    let id = image_id(op, &id)?;
    let member = state
        .app()
        .show_member(&ctx, id, &member_id)
        .await
        .map_err(failed(op))?;
    Ok(member_response(&member))
}

/// `PUT /v2/images/{id}/members/{member_id}` with `{"status": "accepted"}`
/// → 200 and the membership as changed.
async fn update(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path((id, member_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let op = Operation::UpdateMember;
    let id = image_id(op, &id)?;
    let bytes = body::read_limited(&headers, body, state.options().max_json_body_size).await?;
    let status = wire::parse_member_status(&bytes)?;
    let member = state
        .app()
        .update_member(&ctx, id, &member_id, status)
        .await
        .map_err(failed(op))?;
    Ok(member_response(&member))
}

/// `DELETE /v2/images/{id}/members/{member_id}` → 204.
async fn remove(
    State(state): State<ApiState>,
    Caller(ctx): Caller,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let op = Operation::RemoveMember;
    let id = image_id(op, &id)?;
    state
        .app()
        .delete_member(&ctx, id, &member_id)
        .await
        .map_err(failed(op))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
