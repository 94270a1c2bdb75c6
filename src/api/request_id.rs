//! One request id per request (`x-openstack-request-id: req-<uuid>` on every
//! response, as Glance sends it), the tracing span that carries it, and the
//! one log line per request.
//!
//! An incoming `x-openstack-request-id` is kept when it is exactly
//! `req-<uuid>` (so a caller can follow its id through our logs); anything
//! else is replaced, so no caller can put arbitrary text into our logs.
//! This module owns the id and the access log; it must not log request
//! bodies or headers (tokens travel in headers).

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header Glance answers every request with.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-openstack-request-id");

/// This request's id (`req-<uuid>`), in the request's extensions for handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// The incoming id when well-formed, else a fresh `req-<uuid4>`.
    pub fn for_request(incoming: Option<&HeaderValue>) -> RequestId {
        incoming
            .and_then(|value| value.to_str().ok())
            .filter(|text| is_well_formed(text))
            .map(|text| RequestId(text.to_ascii_lowercase()))
            .unwrap_or_else(|| RequestId(format!("req-{}", uuid::Uuid::new_v4())))
    }
}

/// `req-` followed by a hyphenated UUID (oslo.middleware's rule for a
/// global request id).
fn is_well_formed(text: &str) -> bool {
    text.strip_prefix("req-").is_some_and(|uuid| {
        uuid.len() == 36
            && uuid.char_indices().all(|(index, character)| match index {
                8 | 13 | 18 | 23 => character == '-',
                _ => character.is_ascii_hexdigit(),
            })
    })
}

/// Middleware: assigns the id, runs the request inside a span that carries
/// it (and the caller, once known), sets the response header, and logs one
/// line per request.
pub(crate) async fn request_id(mut request: Request, next: Next) -> Response {
    let id = RequestId::for_request(request.headers().get(&REQUEST_ID_HEADER));
    let span = tracing::info_span!(
        "request",
        id = %id.0,
        method = %request.method(),
        path = %request.uri().path(),
        project = tracing::field::Empty,
        user = tracing::field::Empty,
    );
    request.extensions_mut().insert(id.clone());
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request handled"
        );
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_are_kept() {
        let keep = "req-6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55";
        let kept = RequestId::for_request(Some(&HeaderValue::from_static(keep)));
        assert_eq!(kept.0, keep);
        for bad in [
            "req-nope",
            "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55",
            "req-6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55\nforged log line",
            "req-6f1b3c2e9d5a4c478f0e2b7d1a9c3e55abcd",
        ] {
            let Ok(value) = HeaderValue::from_str(bad) else {
                continue;
            };
            let fresh = RequestId::for_request(Some(&value));
            assert_ne!(fresh.0, bad);
            assert!(is_well_formed(&fresh.0), "{}", fresh.0);
        }
        assert!(is_well_formed(&RequestId::for_request(None).0));
    }
}
