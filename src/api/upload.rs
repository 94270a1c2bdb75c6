//! `PUT /v2/images/{id}/file` request parsing: the media type, the declared
//! size, and the body as a stream of chunks.
//!
//! This module owns Glance's upload request rules (glance/api/v2/image_data.py
//! `RequestDeserializer.upload`). It must not buffer the body beyond one
//! pipeline chunk: the stream it returns gathers hyper's frames (Content-Length
//! or chunked) into chunks of the pipeline's size, and the upload pipeline
//! reads them once.

use std::io;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_util::{StreamExt, TryStreamExt};

use crate::ingest::source::CHUNK_SIZE;

/// The header glanceclient and openstacksdk announce the image size in.
pub const IMAGE_SIZE_HEADER: &str = "x-openstack-image-size";

/// An upload request Glance refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadHeaderError {
    /// The body is not `application/octet-stream` (415).
    #[error("image data must be sent as Content-Type: application/octet-stream, not {}", .content_type.as_deref().unwrap_or("no Content-Type"))]
    ContentType {
        /// The request's `Content-Type`, if any.
        content_type: Option<String>,
    },
    /// `x-openstack-image-size` is not a byte count (400).
    #[error("x-openstack-image-size {value:?} is not a byte count")]
    Size {
        /// The header as sent.
        value: String,
    },
}

impl UploadHeaderError {
    /// Glance's message (the detail of its 415, the explanation of its 400).
    pub fn glance_message(&self) -> String {
        match self {
            UploadHeaderError::ContentType { content_type } => format!(
                "Invalid content type {}",
                content_type
                    .as_deref()
                    .map_or("None", |value| media_type(value))
            ),
            UploadHeaderError::Size { .. } => {
                "Invalid or missing image size in request headers.".to_owned()
            }
        }
    }
}

/// The media type of a `Content-Type` value: the part before `;`, trimmed
/// (webob's `content_type`).
pub(crate) fn media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

/// The request's `Content-Type` as text, if it has one.
pub(crate) fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// Checks an upload's headers and returns the declared size: the
/// `x-openstack-image-size` header, else a non-zero `Content-Length`, else
/// none (chunked without the header: the size is whatever arrives), as Glance.
///
/// Fails when the media type is not `application/octet-stream` (any case,
/// parameters allowed) or the size header is not a non-negative integer
/// (Glance takes `-5` and then fails the upload with "Size exceeds").
pub fn declared_size(headers: &HeaderMap) -> Result<Option<u64>, UploadHeaderError> {
    let content_type = content_type(headers);
    let is_octet_stream = content_type
        .as_deref()
        .is_some_and(|value| media_type(value).eq_ignore_ascii_case("application/octet-stream"));
    if !is_octet_stream {
        return Err(UploadHeaderError::ContentType { content_type });
    }
    if let Some(value) = headers.get(IMAGE_SIZE_HEADER) {
        let text = String::from_utf8_lossy(value.as_bytes());
        let size = text
            .trim()
            .parse::<u64>()
            .map_err(|_| UploadHeaderError::Size {
                value: text.clone().into_owned(),
            })?;
        return Ok(Some(size));
    }
    // hyper has already refused a malformed Content-Length; 0 means
    // "unknown" to Glance (`request.content_length or None`).
    let length = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|length| *length > 0);
    Ok(length)
}

/// The request body as the stream of chunks the upload pipeline takes.
///
/// A client that disconnects or sends a broken chunked encoding ends the
/// stream with an error, which fails the upload (the image goes back to
/// `queued`, nothing stored).
pub fn body_stream(body: Body) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + Unpin {
    gather(
        body.into_data_stream().map_err(io::Error::other),
        CHUNK_SIZE,
    )
}

/// `frames` regrouped into chunks of at least `size` bytes (the last one may
/// be shorter); a frame that is already that large passes through uncopied.
///
/// Why: hyper hands a body over in the frames it read from the socket (tens
/// of KiB), and every chunk costs the pipeline a fixed amount whatever its
/// size (a hand-off to each hash lane, a write on the blocking pool), so the
/// frames are gathered into the 256 KiB chunks a file upload uses. Measured
/// in benches/serve.sh (README, Benchmarks). The copy costs one memcpy per
/// byte; memory per upload grows by one chunk.
///
/// An error from `frames` comes after the bytes gathered before it, so the
/// pipeline counts every byte the client sent.
fn gather<S>(frames: S, size: usize) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + Unpin
where
    S: Stream<Item = Result<Bytes, io::Error>> + Send + Unpin,
{
    struct State<S> {
        frames: S,
        held: BytesMut,
        pending_error: Option<io::Error>,
        ended: bool,
    }
    let state = State {
        frames,
        held: BytesMut::new(),
        pending_error: None,
        ended: false,
    };
    Box::pin(futures_util::stream::unfold(
        state,
        move |mut state| async move {
            if let Some(err) = state.pending_error.take() {
                state.ended = true;
                return Some((Err(err), state));
            }
            if state.ended {
                return None;
            }
            loop {
                match state.frames.next().await {
                    Some(Ok(frame)) if state.held.is_empty() && frame.len() >= size => {
                        return Some((Ok(frame), state));
                    }
                    Some(Ok(frame)) => {
                        if state.held.capacity() == 0 {
                            state.held.reserve(size.max(frame.len()));
                        }
                        state.held.extend_from_slice(&frame);
                        if state.held.len() >= size {
                            let chunk = state.held.split().freeze();
                            return Some((Ok(chunk), state));
                        }
                    }
                    Some(Err(err)) if state.held.is_empty() => {
                        state.ended = true;
                        return Some((Err(err), state));
                    }
                    Some(Err(err)) => {
                        state.pending_error = Some(err);
                        let chunk = state.held.split().freeze();
                        return Some((Ok(chunk), state));
                    }
                    None => {
                        state.ended = true;
                        if state.held.is_empty() {
                            return None;
                        }
                        let chunk = state.held.split().freeze();
                        return Some((Ok(chunk), state));
                    }
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::test_support::headers;
    use futures_util::StreamExt;

    #[test]
    fn the_size_comes_from_the_header_then_content_length() {
        let octet = ("content-type", "application/octet-stream");
        // glanceclient: chunked with the size header (also 0 for empty data).
        assert_eq!(
            declared_size(&headers(&[octet, (IMAGE_SIZE_HEADER, "1048576")])),
            Ok(Some(1_048_576))
        );
        assert_eq!(
            declared_size(&headers(&[octet, (IMAGE_SIZE_HEADER, "0")])),
            Ok(Some(0))
        );
        // openstacksdk: both; the header wins.
        assert_eq!(
            declared_size(&headers(&[
                octet,
                ("content-length", "10"),
                ("X-OpenStack-Image-Size", "12")
            ])),
            Ok(Some(12))
        );
        // curl -T: Content-Length only; an empty body is "unknown", as Glance.
        assert_eq!(
            declared_size(&headers(&[octet, ("content-length", "10")])),
            Ok(Some(10))
        );
        assert_eq!(
            declared_size(&headers(&[octet, ("content-length", "0")])),
            Ok(None)
        );
        assert_eq!(declared_size(&headers(&[octet])), Ok(None));
        assert_eq!(
            declared_size(&headers(&[(
                "content-type",
                "Application/Octet-Stream; x=y"
            )])),
            Ok(None)
        );
    }

    /// Messages recorded from real Glance 33.
    #[test]
    fn refusals_name_the_header() {
        let err = declared_size(&headers(&[("content-type", "text/plain")])).unwrap_err();
        assert_eq!(err.glance_message(), "Invalid content type text/plain");
        let err = declared_size(&headers(&[])).unwrap_err();
        assert_eq!(err, UploadHeaderError::ContentType { content_type: None });
        assert_eq!(err.glance_message(), "Invalid content type None");
        for bad in ["abc", "-5", "1.5", ""] {
            let err = declared_size(&headers(&[
                ("content-type", "application/octet-stream"),
                (IMAGE_SIZE_HEADER, bad),
            ]))
            .unwrap_err();
            assert_eq!(
                err.glance_message(),
                "Invalid or missing image size in request headers."
            );
        }
    }

    #[tokio::test]
    async fn the_body_is_gathered_into_pipeline_chunks() {
        let frames = |sizes: &[usize]| -> Vec<Result<Bytes, io::Error>> {
            sizes
                .iter()
                .map(|n| Ok(Bytes::from(vec![7u8; *n])))
                .collect()
        };
        let sizes = |body: Body| async move {
            body_stream(body)
                .map(|chunk| chunk.unwrap().len())
                .collect::<Vec<usize>>()
                .await
        };
        // Small frames are gathered; the rest comes at the end.
        let small = frames(&[100_000, 100_000, 100_000, 10]);
        assert_eq!(
            sizes(Body::from_stream(futures_util::stream::iter(small))).await,
            vec![300_000, 10]
        );
        // A frame of a whole chunk or more passes as it is.
        let large = frames(&[CHUNK_SIZE + 1, 3]);
        assert_eq!(
            sizes(Body::from_stream(futures_util::stream::iter(large))).await,
            vec![CHUNK_SIZE + 1, 3]
        );

        // A failure comes after the bytes received before it.
        let failing: Vec<Result<Bytes, io::Error>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Err(io::Error::other("connection reset")),
            Ok(Bytes::from_static(b"never read")),
        ];
        let mut stream = body_stream(Body::from_stream(futures_util::stream::iter(failing)));
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            Bytes::from_static(b"abc")
        );
        assert!(stream.next().await.unwrap().is_err());
        assert!(stream.next().await.is_none());
    }
}
