//! The human reason in a Glance error answer, whatever form the server
//! chose (glance-wire.md §10): webob's HTML page (`Accept: */*`), its JSON
//! (`{"message", "code", "title"}`), its plain text (`404 Not Found\n\n…`),
//! keystonemiddleware's `{"error": {"message"}}`, or anything else.
//!
//! This file owns reading that text out; it must not decide what a status
//! means, and it never returns more than [`MAX_REASON`] characters.

use serde_json::Value;

/// A reason longer than this is cut (an HTML error page of a proxy, a stack trace).
pub(crate) const MAX_REASON: usize = 500;

/// The reason in `body`, an error answer with `content_type`; `""` when
/// the body says nothing.
pub(crate) fn server_reason(content_type: Option<&str>, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let media = content_type
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let looks_json = text.trim_start().starts_with('{');
    let reason = if media == "application/json" || looks_json {
        json_reason(&text).unwrap_or_else(|| plain_reason(&text))
    } else if media == "text/html" || text.trim_start().starts_with("<html") {
        html_reason(&text)
    } else {
        plain_reason(&text)
    };
    cut(&reason)
}

fn json_reason(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    let message = value
        .get("message")
        .or_else(|| value.pointer("/error/message"))
        .or_else(|| value.get("description"))
        .or_else(|| value.get("title"))
        .and_then(Value::as_str)?;
    // webob's JSON message carries the HTML line breaks of its template.
    Some(collapse(&unescape(&message.replace("<br />", "\n"))))
}

/// webob's page: the text between `</h1>` and `</body>`, tags removed.
fn html_reason(text: &str) -> String {
    let start = text.find("</h1>").map_or(0, |at| at + "</h1>".len());
    let end = text[start..]
        .find("</body>")
        .map_or(text.len(), |at| start + at);
    let mut out = String::new();
    let mut in_tag = false;
    for c in text[start..end].chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            _ => out.push(c),
        }
    }
    collapse(&unescape(&out))
}

/// webob's plain text repeats the status line first; the reason follows.
fn plain_reason(text: &str) -> String {
    let trimmed = text.trim();
    let mut lines = trimmed.lines();
    let first = lines.next().unwrap_or("");
    let is_status_line = first.len() > 4
        && first.as_bytes()[..3].iter().all(u8::is_ascii_digit)
        && first.as_bytes()[3] == b' ';
    let rest: Vec<&str> = lines.collect();
    if is_status_line && !rest.is_empty() {
        collapse(&rest.join("\n"))
    } else {
        collapse(trimmed)
    }
}

/// The HTML entities webob's escaping produces (`html.escape`).
fn unescape(text: &str) -> String {
    text.replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_REASON) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three forms of one 404 as real Glance 33 sends them (glance-wire.md §10).
    #[test]
    fn every_webob_form_gives_the_message() {
        let html = "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  No image found with ID 1f&#x27;x<br /><br />\n\n\n\n </body>\n</html>";
        let json = r#"{"message": "No image found with ID 1f'x<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}"#;
        let plain = "404 Not Found\n\nNo image found with ID 1f'x\n\n   ";
        for (content_type, body) in [
            (Some("text/html; charset=UTF-8"), html),
            (Some("application/json"), json),
            (Some("text/plain; charset=UTF-8"), plain),
            (None, html),
            (None, json),
            (None, plain),
        ] {
            assert_eq!(
                server_reason(content_type, body.as_bytes()),
                "No image found with ID 1f'x",
                "{content_type:?} {body:?}"
            );
        }
    }

    #[test]
    fn keystone_shapes_plain_text_and_long_pages() {
        let keystone = r#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#;
        assert_eq!(
            server_reason(Some("application/json"), keystone.as_bytes()),
            "The request you have made requires authentication."
        );
        assert_eq!(server_reason(None, b"backend down\n"), "backend down");
        assert_eq!(server_reason(None, b""), "");
        let long = "x".repeat(2000);
        let reason = server_reason(Some("text/plain"), long.as_bytes());
        assert_eq!(reason.chars().count(), MAX_REASON + 1);
    }
}
