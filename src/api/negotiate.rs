//! `Accept` negotiation as webob does it (`Accept.acceptable_offers`), which
//! decides the format of every Glance error body and of `/healthcheck`.
//!
//! This module owns the parsing of `Accept` and the choice among offers. It
//! must not render anything.
//!
//! webob's rules, reproduced because clients see the result:
//! - no `Accept` header, or one that does not parse, accepts every offer
//!   (the first offer wins: html for errors);
//! - an empty `Accept` header accepts nothing (plain text for errors);
//! - otherwise each offer takes the q-value of the most specific range that
//!   matches it (`type/subtype` > `type/*` > `*/*`; among equally specific
//!   ranges the first); offers with q = 0 drop out; the highest q wins, ties
//!   going to the earlier offer;
//! - a range with media-type parameters (`application/json; charset=utf-8`)
//!   matches no parameterless offer.

use axum::http::HeaderMap;
use axum::http::header::ACCEPT;

/// Index into `offers` of the offer webob would pick for the request's
/// `Accept` header(s), or `None` when the header accepts none of them.
///
/// Several `Accept` headers are joined with `,` as WSGI servers do.
pub(crate) fn best_offer(headers: &HeaderMap, offers: &[&str]) -> Option<usize> {
    let mut values = headers.get_all(ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return (!offers.is_empty()).then_some(0);
    }
    let mut joined = String::new();
    for (index, value) in values.enumerate() {
        let Ok(text) = value.to_str() else {
            // Not visible ASCII: webob would see an invalid header.
            return (!offers.is_empty()).then_some(0);
        };
        if index > 0 {
            joined.push_str(", ");
        }
        joined.push_str(text);
    }
    best_offer_for(&joined, offers)
}

/// [`best_offer`] for one header value.
pub(crate) fn best_offer_for(accept: &str, offers: &[&str]) -> Option<usize> {
    let Some(ranges) = parse(accept) else {
        // AcceptInvalidHeader: every offer is acceptable.
        return (!offers.is_empty()).then_some(0);
    };
    // Per offer: (q in thousandths, specificity) of the best-fitting range.
    let mut best: Option<(usize, u16)> = None;
    for (offer_index, offer) in offers.iter().enumerate() {
        let offer = offer.to_ascii_lowercase();
        let Some((offer_type, offer_subtype)) = offer.split_once('/') else {
            continue;
        };
        let mut matched: Option<(u16, u8)> = None;
        for range in &ranges {
            let specificity = if range.kind == offer_type && range.subtype == offer_subtype {
                if !range.has_params {
                    3
                } else {
                    continue;
                }
            } else if range.subtype == "*" && range.kind == offer_type {
                2
            } else if range.kind == "*" && range.subtype == "*" {
                1
            } else {
                continue;
            };
            if matched.is_some_and(|(_, seen)| specificity <= seen) {
                continue;
            }
            matched = Some((range.q, specificity));
        }
        if let Some((q, _)) = matched
            && q > 0
            && best.is_none_or(|(_, best_q)| q > best_q)
        {
            best = Some((offer_index, q));
        }
    }
    best.map(|(index, _)| index)
}

/// One media range of a valid `Accept` header.
#[derive(Debug, PartialEq, Eq)]
struct Range {
    kind: String,
    subtype: String,
    /// Media-type parameters (before `q`) are present.
    has_params: bool,
    /// The q-value in thousandths (1000 = 1.0).
    q: u16,
}

/// Parses a whole header; `None` when webob would call it invalid.
fn parse(accept: &str) -> Option<Vec<Range>> {
    let mut ranges = Vec::new();
    for element in split_outside_quotes(accept, ',') {
        let element = element.trim_matches([' ', '\t']);
        if element.is_empty() {
            continue;
        }
        ranges.push(parse_range(element)?);
    }
    Some(ranges)
}

fn parse_range(element: &str) -> Option<Range> {
    let mut parts = split_outside_quotes(element, ';').into_iter();
    let media = parts.next()?.trim_matches([' ', '\t']).to_ascii_lowercase();
    let (kind, subtype) = media.split_once('/')?;
    if !is_token(kind) || !is_token(subtype) || (kind == "*" && subtype != "*") {
        return None;
    }
    let mut has_params = false;
    let mut q = 1000;
    for parameter in parts {
        let parameter = parameter.trim_matches([' ', '\t']);
        let (name, value) = parameter.split_once('=')?;
        if !is_token(name) || !(is_token(value) || is_quoted(value)) {
            return None;
        }
        if name.eq_ignore_ascii_case("q") {
            q = parse_qvalue(value)?;
            // Everything after q is an accept-extension, not a media-type parameter.
            break;
        }
        has_params = true;
    }
    Some(Range {
        kind: kind.to_owned(),
        subtype: subtype.to_owned(),
        has_params,
        q,
    })
}

/// RFC 7231 qvalue: `0[.ddd]` or `1[.000]`, in thousandths.
fn parse_qvalue(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

fn is_quoted(text: &str) -> bool {
    text.len() >= 2 && text.starts_with('"') && text.ends_with('"')
}

/// Splits at `separator` except inside double quotes (with `\` escapes).
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (index, character) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && character == '\\' {
            escaped = true;
        } else if character == '"' {
            quoted = !quoted;
        } else if character == separator && !quoted {
            parts.push(&text[start..index]);
            start = index + character.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    const ERRORS: &[&str] = &["text/html", "application/json"];
    const HEALTH: &[&str] = &["text/plain", "text/html", "application/json"];

    fn pick(accept: Option<&str>, offers: &[&'static str]) -> Option<&'static str> {
        let mut headers = HeaderMap::new();
        if let Some(accept) = accept {
            headers.insert(ACCEPT, accept.parse().unwrap());
        }
        best_offer(&headers, offers).map(|index| offers[index])
    }

    /// Each case was checked against real Glance 33 (webob 1.8) on this machine.
    #[test]
    fn error_bodies_follow_webob() {
        let cases: &[(Option<&str>, Option<&str>)] = &[
            (None, Some("text/html")),
            (Some("*/*"), Some("text/html")),
            (Some(""), None),
            (Some("text/plain"), None),
            (Some("application/json"), Some("application/json")),
            (Some("application/json; charset=utf-8"), None),
            (Some("garbage"), Some("text/html")),
            (Some("application/json, text/html"), Some("text/html")),
            (Some("text/*"), Some("text/html")),
            (Some("application/*"), Some("application/json")),
            (
                Some("application/json, */*;q=0.1"),
                Some("application/json"),
            ),
            (
                Some("text/html;q=0, application/json;q=0.5"),
                Some("application/json"),
            ),
            (Some("text/html;q=0"), None),
            (Some("*/*;q=2"), Some("text/html")),
            (Some("APPLICATION/JSON"), Some("application/json")),
            (Some(" , application/json ,"), Some("application/json")),
        ];
        for (accept, expected) in cases {
            assert_eq!(pick(*accept, ERRORS), *expected, "Accept: {accept:?}");
        }
    }

    #[test]
    fn more_specific_ranges_override_wildcards() {
        // text/html gets q=0 from its exact range even though */* comes first.
        assert_eq!(
            pick(Some("*/*, text/html;q=0"), ERRORS),
            Some("application/json")
        );
        // The first of two equally specific ranges counts.
        assert_eq!(
            pick(
                Some("application/json;q=0.2, application/json, text/html;q=0.5"),
                ERRORS
            ),
            Some("text/html")
        );
    }

    #[test]
    fn healthcheck_offers_plain_first() {
        assert_eq!(pick(Some("*/*"), HEALTH), Some("text/plain"));
        assert_eq!(
            pick(Some("application/json, text/html"), HEALTH),
            Some("text/html")
        );
        assert_eq!(pick(Some("foo"), HEALTH), Some("text/plain"));
        assert_eq!(
            pick(Some("application/json"), HEALTH),
            Some("application/json")
        );
    }

    #[test]
    fn quoted_parameters_may_hold_separators() {
        assert_eq!(
            pick(Some("application/json;q=0.9;ext=\"a,b;c\""), ERRORS),
            Some("application/json")
        );
        assert_eq!(pick(Some("text/html;level=\"1\""), ERRORS), None);
    }

    #[test]
    fn invalid_headers_accept_everything() {
        for accept in [
            "*/json",
            "text/html;q=1.5",
            "text/html;q",
            "a b/c",
            "text/html;q=0.1234",
        ] {
            assert_eq!(pick(Some(accept), ERRORS), Some("text/html"), "{accept}");
        }
    }
}
