//! `GET /v2/info/stores` and `GET /v2/info/import`: what glanceclient's
//! `stores-info` and `import-info` show.
//!
//! This module owns those two small documents. It must not claim what the
//! server cannot do: it lists only the import methods `app` runs.

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

/// Glance's import-methods document, with the methods this server runs.
pub(crate) async fn import(State(state): State<ApiState>) -> Response {
    let methods: Vec<String> = state
        .app()
        .import_methods()
        .iter()
        .map(|method| python_json_string(method))
        .collect();
    json(format!(
        "{{\"import-methods\": {{\"description\": \"Import methods available.\", \"type\": \"array\", \"value\": [{}]}}}}",
        methods.join(", ")
    ))
}

fn json(body: String) -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}
