//! JSON request bodies (create, PATCH, members, import): read whole, up to
//! `[server] max_json_body_size`, and the PATCH media types.
//!
//! This module owns reading small bodies and checking their media type. It
//! must not parse JSON (`wire` does) and must never be used for image data,
//! which streams ([`super::upload`]).

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::upload::{content_type, media_type};

/// The JSON-patch dialects Glance accepts on `PATCH /v2/images/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchMediaType {
    /// `application/openstack-images-v2.0-json-patch` (draft-04 operations:
    /// `{"replace": "/name", "value": …}`).
    V2_0,
    /// `application/openstack-images-v2.1-json-patch` (RFC 6902:
    /// `{"op": "replace", "path": "/name", "value": …}`).
    V2_1,
}

/// Both media types, as Glance lists them in `Accept-Patch` and its 415.
pub const ACCEPT_PATCH: &str =
    "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch";

/// A request body that cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Larger than `max_json_body_size` (413).
    #[error("the request body is larger than {limit} bytes (max_json_body_size in [server])")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The client stopped sending or sent a broken encoding (400).
    #[error("the request body could not be read")]
    Unreadable(#[source] axum::Error),
    /// PATCH without one of the json-patch media types (415, with `Accept-Patch`).
    #[error("PATCH needs Content-Type {ACCEPT_PATCH}, not {}", .content_type.as_deref().unwrap_or("no Content-Type"))]
    PatchMediaType {
        /// The request's `Content-Type`, if any.
        content_type: Option<String>,
    },
}

impl BodyError {
    /// Glance's message (for the PATCH media type, the 415's detail).
    pub fn glance_message(&self) -> String {
        match self {
            BodyError::TooLarge { limit } => {
                format!("The request body is larger than the limit of {limit} bytes.")
            }
            BodyError::Unreadable(_) => "The request body could not be read.".to_owned(),
            BodyError::PatchMediaType { .. } => {
                format!("Image PATCH expects Content-Type one of: {ACCEPT_PATCH}")
            }
        }
    }
}

/// Reads a whole JSON request body of at most `limit` bytes.
///
/// Fails with [`BodyError::TooLarge`] as soon as the declared length or the
/// bytes received pass the limit (nothing more is read), and with
/// [`BodyError::Unreadable`] when the body breaks off.
pub async fn read_limited(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, cap).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(BodyError::TooLarge { limit }),
        Err(err) => Err(BodyError::Unreadable(axum::Error::new(err))),
    }
}

/// The dialect of a PATCH request, from its `Content-Type` (parameters such
/// as `charset` allowed, as Glance).
///
/// Fails with [`BodyError::PatchMediaType`] for any other media type.
pub fn patch_media_type(headers: &HeaderMap) -> Result<PatchMediaType, BodyError> {
    let content_type = content_type(headers);
    let dialect = content_type.as_deref().map(media_type).and_then(|media| {
        if media.eq_ignore_ascii_case("application/openstack-images-v2.1-json-patch") {
            Some(PatchMediaType::V2_1)
        } else if media.eq_ignore_ascii_case("application/openstack-images-v2.0-json-patch") {
            Some(PatchMediaType::V2_0)
        } else {
            None
        }
    });
    dialect.ok_or(BodyError::PatchMediaType { content_type })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_content_type(value: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert("content-type", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn patch_media_types() {
        assert_eq!(
            patch_media_type(&with_content_type(Some(
                "application/openstack-images-v2.1-json-patch"
            )))
            .unwrap(),
            PatchMediaType::V2_1
        );
        // Recorded: Glance 33 accepts a charset parameter.
        assert_eq!(
            patch_media_type(&with_content_type(Some(
                "application/openstack-images-v2.0-json-patch; charset=utf-8"
            )))
            .unwrap(),
            PatchMediaType::V2_0
        );
        let err = patch_media_type(&with_content_type(Some("application/json"))).unwrap_err();
        assert!(
            matches!(&err, BodyError::PatchMediaType { content_type: Some(value) } if value == "application/json")
        );
        assert_eq!(
            err.glance_message(),
            "Image PATCH expects Content-Type one of: application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch"
        );
        assert!(patch_media_type(&with_content_type(None)).is_err());
    }

    #[tokio::test]
    async fn bodies_are_limited() {
        let headers = HeaderMap::new();
        let body = read_limited(&headers, Body::from("{\"name\": \"x\"}"), 64)
            .await
            .unwrap();
        assert_eq!(&body[..], b"{\"name\": \"x\"}");
        let err = read_limited(&headers, Body::from(vec![b' '; 65]), 64)
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { limit: 64 }));
        // A declared length over the limit is refused before reading.
        let mut declared = HeaderMap::new();
        declared.insert(CONTENT_LENGTH, HeaderValue::from_static("1000000"));
        let err = read_limited(&declared, Body::from("{}"), 64)
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { .. }));
        let broken: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"{")),
            Err(std::io::Error::other("reset")),
        ];
        let err = read_limited(
            &headers,
            Body::from_stream(futures_util::stream::iter(broken)),
            64,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, BodyError::Unreadable(_)));
    }
}
