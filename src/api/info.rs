//! `GET /v2/info/stores` and `GET /v2/info/import`: what glanceclient's
//! `stores-info` and `import-info` show.
//!
//! This module owns those two small documents. It must not claim what the
//! server cannot do: no import method is listed until stage/import exists.

use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::render::python_json_string;

/// `{"stores": [{"id": "<store id>", "default": "true"}]}` (`default` is a
/// string in Glance).
pub(crate) async fn stores(State(state): State<ApiState>) -> Response {
    let id = python_json_string(state.app().settings().store_id);
    json(format!(
        "{{\"stores\": [{{\"id\": {id}, \"default\": \"true\"}}]}}"
    ))
}

/// Glance's import-methods document, with the methods this server runs (none yet).
pub(crate) async fn import() -> Response {
    json(
        "{\"import-methods\": {\"description\": \"Import methods available.\", \"type\": \"array\", \"value\": []}}"
            .to_owned(),
    )
}

fn json(body: String) -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}
