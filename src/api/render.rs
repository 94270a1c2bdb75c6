//! webob's error bodies, byte for byte: the html, JSON and plain-text forms
//! a Glance error takes depending on the request's `Accept`
//! (glance-wire.md §10; webob/exc.py `WSGIHTTPException`).
//!
//! This module owns the templates, the escaping and the middleware that
//! picks the form per request. It must not decide statuses or messages
//! (error.rs does).

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::negotiate;

/// The body of one error, before it takes a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ErrorBody {
    /// webob's default template: `explanation<br /><br />\ndetail\n\n`.
    Standard {
        /// Glance's message (or webob's default explanation for the status).
        explanation: String,
        /// An extra line (Glance passes some messages as `detail`).
        detail: Option<String>,
    },
    /// 405's own template, which names the method.
    MethodNotAllowed {
        /// The request method.
        method: String,
    },
    /// 415's own template, which names the request's media type.
    UnsupportedMediaType {
        /// The request's `Content-Type`, when it had one.
        content_type: Option<String>,
        /// Glance's message.
        detail: String,
    },
}

/// What an error response carries until the [`negotiate_errors`] middleware
/// gives it the form the request accepts.
#[derive(Debug, Clone)]
pub(crate) struct ErrorReport {
    pub(crate) status: StatusCode,
    pub(crate) body: ErrorBody,
}

/// The three forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Html,
    Json,
    Plain,
}

impl Form {
    /// The form webob picks for these request headers: html and JSON are
    /// offered (in that order), plain text when neither is acceptable.
    pub(crate) fn for_request(headers: &axum::http::HeaderMap) -> Form {
        match negotiate::best_offer(headers, &["text/html", "application/json"]) {
            Some(0) => Form::Html,
            Some(_) => Form::Json,
            None => Form::Plain,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Form::Html => "text/html; charset=UTF-8",
            Form::Json => "application/json",
            Form::Plain => "text/plain; charset=UTF-8",
        }
    }
}

/// webob's title for a status (`code.title`), which differs from the
/// IANA reason phrase for 413 and 416.
pub(crate) fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Request Range Not Satisfiable",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

impl ErrorReport {
    /// The `Content-Type` and body of this error in `form`.
    pub(crate) fn render(&self, form: Form) -> (&'static str, String) {
        let status = format!("{} {}", self.status.as_u16(), title(self.status));
        let body = match form {
            Form::Html => {
                let inner = self.body.text(html_escape);
                format!(
                    "<html>\n <head>\n  <title>{status}</title>\n </head>\n <body>\n  <h1>{status}</h1>\n  {inner}\n </body>\n</html>"
                )
            }
            Form::Json => {
                let inner = self.body.text(str::to_owned);
                format!(
                    "{{\"message\": {}, \"code\": {}, \"title\": {}}}",
                    python_json_string(&inner),
                    python_json_string(&status),
                    python_json_string(title(self.status)),
                )
            }
            Form::Plain => {
                let inner = strip_tags(&self.body.text(str::to_owned));
                format!("{status}\n\n{inner}")
            }
        };
        (form.content_type(), body)
    }
}

impl ErrorBody {
    /// webob's `_make_body`: the template filled with escaped values.
    fn text(&self, escape: fn(&str) -> String) -> String {
        match self {
            ErrorBody::Standard {
                explanation,
                detail,
            } => format!(
                "{}<br /><br />\n{}\n\n",
                escape(explanation),
                escape(detail.as_deref().unwrap_or(""))
            ),
            ErrorBody::MethodNotAllowed { method } => format!(
                "The method {} is not allowed for this resource. <br /><br />\n",
                escape(method)
            ),
            // Glance prints `${CONTENT_TYPE}` when the request has none (the
            // template variable stays unexpanded); portcullis says "(none)".
            ErrorBody::UnsupportedMediaType {
                content_type,
                detail,
            } => format!(
                "The request media type {} is not supported by this server.\n<br /><br />\n{}",
                escape(content_type.as_deref().unwrap_or("(none)")),
                escape(detail)
            ),
        }
    }
}

/// Middleware: gives every error response the form its request accepts.
/// Error responses leave [`super::error::ApiError`] in html (webob's form
/// for `*/*`) with an [`ErrorReport`] attached; this re-renders the others.
pub(crate) async fn negotiate_errors(request: Request, next: Next) -> Response {
    let form = Form::for_request(request.headers());
    let mut response = next.run(request).await;
    if form == Form::Html {
        return response;
    }
    if let Some(report) = response.extensions().get::<ErrorReport>().cloned() {
        let (content_type, body) = report.render(form);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.remove(CONTENT_LENGTH);
        *response.body_mut() = Body::from(body);
    }
    response
}

/// Python's `html.escape(text, quote=True)`.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            other => out.push(other),
        }
    }
    out
}

/// webob's `strip_tags`: newlines become spaces, `<br…>` becomes a newline,
/// comments and other tags go.
fn strip_tags(text: &str) -> String {
    let flat: String = text
        .chars()
        .filter(|character| *character != '\r')
        .map(|character| if character == '\n' { ' ' } else { character })
        .collect();
    let mut out = String::with_capacity(flat.len());
    let mut rest = flat.as_str();
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        if let Some(comment) = tag.strip_prefix("<!--") {
            match comment.find("-->") {
                Some(end) => rest = &comment[end + 3..],
                None => {
                    // No closing "-->": the generic tag rule applies.
                    match tag.find('>') {
                        Some(end) => rest = &tag[end + 1..],
                        None => {
                            out.push_str(tag);
                            rest = "";
                        }
                    }
                }
            }
            continue;
        }
        match tag.find('>') {
            Some(end) => {
                if tag.len() >= 3 && tag[1..3].eq_ignore_ascii_case("br") {
                    out.push('\n');
                }
                rest = &tag[end + 1..];
            }
            None => {
                out.push_str(tag);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A JSON string as Python's `json.dumps` writes it (`ensure_ascii=True`).
pub(crate) fn python_json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(character),
            other => {
                let mut units = [0u16; 2];
                for unit in other.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_found() -> ErrorReport {
        ErrorReport {
            status: StatusCode::NOT_FOUND,
            body: ErrorBody::Standard {
                explanation: "No image found with ID x".to_owned(),
                detail: None,
            },
        }
    }

    /// The three forms of glance-wire.md §10, exactly.
    #[test]
    fn the_three_forms_match_glance() {
        let report = not_found();
        assert_eq!(
            report.render(Form::Html),
            (
                "text/html; charset=UTF-8",
                "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  No image found with ID x<br /><br />\n\n\n\n </body>\n</html>".to_owned()
            )
        );
        assert_eq!(
            report.render(Form::Json).1,
            "{\"message\": \"No image found with ID x<br /><br />\\n\\n\\n\", \"code\": \"404 Not Found\", \"title\": \"Not Found\"}"
        );
        assert_eq!(
            report.render(Form::Plain),
            (
                "text/plain; charset=UTF-8",
                "404 Not Found\n\nNo image found with ID x\n\n   ".to_owned()
            )
        );
    }

    /// Recorded from real Glance 33: a read-only attribute on create.
    #[test]
    fn quotes_are_escaped_in_html_only() {
        let report = ErrorReport {
            status: StatusCode::FORBIDDEN,
            body: ErrorBody::Standard {
                explanation: "Attribute 'status' is read-only.".to_owned(),
                detail: None,
            },
        };
        let (_, html) = report.render(Form::Html);
        assert!(html.contains("Attribute &#x27;status&#x27; is read-only.<br /><br />"));
        assert_eq!(html.len(), 164);
        let (_, json) = report.render(Form::Json);
        assert_eq!(json.len(), 112);
        let (_, plain) = report.render(Form::Plain);
        assert_eq!(
            plain,
            "403 Forbidden\n\nAttribute 'status' is read-only.\n\n   "
        );
    }

    /// Recorded from real Glance 33: DELETE on a schema, and PATCH with the wrong media type.
    #[test]
    fn custom_templates() {
        let report = ErrorReport {
            status: StatusCode::METHOD_NOT_ALLOWED,
            body: ErrorBody::MethodNotAllowed {
                method: "DELETE".to_owned(),
            },
        };
        let (_, html) = report.render(Form::Html);
        assert_eq!(html.len(), 190);
        assert!(html.ends_with("  The method DELETE is not allowed for this resource. <br /><br />\n\n </body>\n</html>"));

        let report = ErrorReport {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            body: ErrorBody::UnsupportedMediaType {
                content_type: Some("application/json".to_owned()),
                detail: "Image PATCH expects Content-Type one of: application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch".to_owned(),
            },
        };
        assert_eq!(report.render(Form::Html).1.len(), 350);
        assert_eq!(report.render(Form::Json).1.len(), 307);
        assert_eq!(report.render(Form::Plain).1.len(), 235);
        assert_eq!(
            report.render(Form::Json).1,
            "{\"message\": \"The request media type application/json is not supported by this server.\\n<br /><br />\\nImage PATCH expects Content-Type one of: application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch\", \"code\": \"415 Unsupported Media Type\", \"title\": \"Unsupported Media Type\"}"
        );
    }

    /// Recorded from real Glance 33: `Range: bytes=100-` on a 100-byte image.
    #[test]
    fn detail_goes_after_the_explanation() {
        let report = ErrorReport {
            status: StatusCode::RANGE_NOT_SATISFIABLE,
            body: ErrorBody::Standard {
                explanation: "The Range requested is not available.".to_owned(),
                detail: Some("Invalid start position in Range header. Start position MUST be in the inclusive range [0, 99].".to_owned()),
            },
        };
        let (_, json) = report.render(Form::Json);
        assert_eq!(json.len(), 251);
        assert!(json.contains("\"code\": \"416 Request Range Not Satisfiable\""));
    }

    #[test]
    fn python_json_escapes() {
        assert_eq!(
            python_json_string("a\"b\\c\n\u{1}é😀"),
            "\"a\\\"b\\\\c\\n\\u0001\\u00e9\\ud83d\\ude00\""
        );
    }

    #[test]
    fn strip_tags_as_webob() {
        assert_eq!(
            strip_tags("a<br />b<BR>c<!-- x --><b>d</b>\r\n"),
            "a\nb\ncd "
        );
        assert_eq!(strip_tags("1 < 2"), "1 < 2");
    }
}
