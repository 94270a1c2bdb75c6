//! Untrusted text made safe to print on one line: image names, property
//! values, reasons and file names come from users and servers, and a raw
//! newline in one adds a forged row or line to a report, an ESC or C1
//! control drives the terminal (issue 8, item 2).
//!
//! It owns the escaping rule; it must not print (the CLI's `stdio` applies
//! it to every text line, reports apply it to fields they put on one line).

use std::borrow::Cow;

/// `text` with every control character escaped: C0 (newline, carriage
/// return, tab, ESC, …), DEL and C1 (U+0080–U+009F, which some terminals
/// read as CSI), and the Unicode line and paragraph separators. Newline,
/// carriage return and tab become `\n`, `\r`, `\t`; the rest `\u{1b}`
/// (Rust's escape syntax). Everything else, backslashes included, is kept,
/// so ordinary text and non-ASCII names print unchanged and escaping twice
/// changes nothing; JSON output is the exact channel.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if needs_escape(c) => escaped.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_control("plain name ü \\ x"), "plain name ü \\ x");
        assert!(matches!(escape_control("plain"), Cow::Borrowed(_)));
        let escaped = escape_control("a\nb\rc\td\u{1b}[31me\u{7f}f\u{85}g\u{9b}h\u{0}i\u{2028}");
        assert_eq!(
            escaped,
            "a\\nb\\rc\\td\\u{1b}[31me\\u{7f}f\\u{85}g\\u{9b}h\\u{0}i\\u{2028}"
        );
        assert_eq!(escape_control(&escaped), escaped, "idempotent");
    }
}
