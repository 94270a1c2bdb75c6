//! `/healthcheck` as Glance serves it (oslo.middleware's `Healthcheck` with
//! the `disable_by_file` backend): any method; `OK` in plain text, html or
//! JSON by `Accept` (plain text first); `HEAD` → 204 without a body; 503
//! `DISABLED BY FILE` while `[server] healthcheck_disable_file` exists.
//!
//! This module owns the health answer. It must not touch the repository:
//! like Glance's, the check says the process serves requests, nothing more.

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::negotiate;

/// The handler for every method on `/healthcheck`.
pub(crate) async fn healthcheck(State(state): State<ApiState>, request: Request) -> Response {
    let disabled = state
        .options()
        .healthcheck_disable_file
        .as_deref()
        .is_some_and(|path| path.exists());
    let reason = if disabled { "DISABLED BY FILE" } else { "OK" };
    if request.method() == Method::HEAD {
        let status = if disabled {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::NO_CONTENT
        };
        return status.into_response();
    }
    let status = if disabled {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let offers = ["text/plain", "text/html", "application/json"];
    let (content_type, body) = match negotiate::best_offer(request.headers(), &offers) {
        Some(1) => ("text/html; charset=UTF-8", html(reason)),
        // Python's json.dumps(indent=4, sort_keys=True).
        Some(2) => (
            "application/json",
            format!(
                "{{\n    \"detailed\": false,\n    \"reasons\": [\n        \"{reason}\"\n    ]\n}}"
            ),
        ),
        _ => ("text/plain; charset=UTF-8", reason.to_owned()),
    };
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// oslo.middleware's html page for a non-detailed check.
fn html(reason: &str) -> String {
    format!(
        "<HTML>\n<HEAD><TITLE>Healthcheck Status</TITLE></HEAD>\n<BODY>\n\n<H2>Result of 1 checks:</H2>\n<TABLE bgcolor=\"#ffffff\" border=\"1\">\n<TBODY>\n<TR>\n\n<TH>\nReason\n</TH>\n</TR>\n<TR>\n\n    <TD>{reason}</TD>\n\n</TR>\n</TBODY>\n</TABLE>\n<HR></HR>\n\n</BODY>\n</HTML>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_html_page_is_glances() {
        // Recorded from real Glance 33: 239 bytes.
        assert_eq!(html("OK").len(), 239);
    }
}
