//! `Range` on `GET /v2/images/{id}/file`, as Glance serves it
//! (glance/common/wsgi.py `get_range_from_request`, glance/api/v2/image_data.py
//! `download`): one range `bytes=a-b`, `bytes=a-` or a suffix `bytes=-n`; a
//! list of ranges is a 400; a range that does not fit the image is a 416.
//!
//! This module owns the parsing (before the image is known) and Glance's
//! messages; the facade resolves the range against the image's size
//! (`app::ByteRange::resolve`). It must not read data.
//!
//! Deliberate differences from Glance, all towards RFC 9110: trailing text
//! after the range (`bytes=3-4xyz`, accepted by Glance's unanchored regex)
//! and the empty suffix `bytes=-0` (Glance: the whole image as a 206) are
//! 416 "Invalid Range header."; a suffix on an empty image is a 416 (Glance:
//! a 206 with `Content-Range: bytes 0--1/0`).

use crate::app::ByteRange;

/// A `Range` header Glance refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Several ranges (any `,`): 400.
    #[error("the Range header asks for several ranges; ask for one range per request")]
    Multiple,
    /// Not `bytes=a-b`, `bytes=a-` or `bytes=-n`, or `a > b`: 416.
    #[error("the Range header {value:?} is not bytes=FIRST-LAST, bytes=FIRST- or bytes=-LENGTH")]
    Invalid {
        /// The header as sent.
        value: String,
    },
}

impl RangeError {
    /// The (explanation, detail) of Glance's error body: the 400 has its
    /// message as the explanation, the 416s keep webob's explanation and put
    /// the message in the detail.
    pub fn glance_message(&self) -> (Option<&'static str>, String) {
        match self {
            RangeError::Multiple => (
                None,
                "Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead.".to_owned(),
            ),
            RangeError::Invalid { .. } => (
                Some(RANGE_EXPLANATION),
                "Invalid Range header.".to_owned(),
            ),
        }
    }
}

/// webob's explanation for 416.
pub const RANGE_EXPLANATION: &str = "The Range requested is not available.";

/// Glance's 416 detail when a range selects nothing of an image of `size`
/// bytes (the facade's [`crate::app::Error::RangeNotSatisfiable`]).
pub fn unsatisfiable_message(size: u64) -> String {
    format!(
        "Invalid start position in Range header. Start position MUST be in the inclusive range [0, {}].",
        i128::from(size) - 1
    )
}

/// Parses a `Range` header value into the facade's byte range (which the
/// facade resolves against the image's size: the end clamped to the last
/// byte, a suffix longer than the image is the whole image, as Glance).
///
/// Fails with [`RangeError::Multiple`] for a list and
/// [`RangeError::Invalid`] for anything else that is not one byte range.
pub fn parse(value: &str) -> Result<ByteRange, RangeError> {
    if value.contains(',') {
        return Err(RangeError::Multiple);
    }
    let invalid = || RangeError::Invalid {
        value: value.to_owned(),
    };
    // webob: `bytes *= *(\d*) *- *(\d*)`, case-insensitive, here anchored at both ends.
    let unit = value
        .get(..5)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes"));
    let rest = unit
        .map(|_| value[5..].trim_start_matches(' '))
        .ok_or_else(invalid)?;
    let spec = rest.strip_prefix('=').ok_or_else(invalid)?;
    let (first, last) = spec.split_once('-').ok_or_else(invalid)?;
    let (first, last) = (first.trim_matches(' '), last.trim_matches(' '));
    let number = |text: &str| -> Result<u64, RangeError> {
        if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(invalid());
        }
        // Past u64: certainly past the end of any image.
        Ok(text.parse().unwrap_or(u64::MAX))
    };
    match (first.is_empty(), last.is_empty()) {
        (true, true) => Err(invalid()),
        (true, false) => match number(last)? {
            0 => Err(invalid()),
            length => Ok(ByteRange::Suffix(length)),
        },
        (false, true) => Ok(ByteRange::From(number(first)?)),
        (false, false) => {
            let (first, last) = (number(first)?, number(last)?);
            if first > last {
                return Err(invalid());
            }
            Ok(ByteRange::FromTo { first, last })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Glance serves: the parse here, then the facade's resolution.
    fn served(header: &str, size: u64) -> Result<String, String> {
        let range = parse(header).map_err(|err| err.glance_message().1)?;
        crate::app::ResolvedRange::new(range, size)
            .map(|resolved| resolved.content_range())
            .ok_or_else(|| unsatisfiable_message(size))
    }

    /// Each case was recorded from real Glance 33 on a 100-byte image.
    #[test]
    fn ranges_as_glance_serves_them() {
        let ok = |header: &str, expected: &str| {
            assert_eq!(served(header, 100).as_deref(), Ok(expected), "{header}");
        };
        ok("bytes=0-15", "bytes 0-15/100");
        ok("bytes=90-", "bytes 90-99/100");
        ok("bytes=-10", "bytes 90-99/100");
        ok("bytes=-200", "bytes 0-99/100");
        ok("bytes=0-1000", "bytes 0-99/100");
        ok("bytes=0-99", "bytes 0-99/100");
        ok("bytes = 3 - 4", "bytes 3-4/100");
        ok("BYTES=3-4", "bytes 3-4/100");
        let refused = |header: &str, expected: &str| {
            assert_eq!(served(header, 100), Err(expected.to_owned()), "{header}");
        };
        refused(
            "bytes=100-",
            "Invalid start position in Range header. Start position MUST be in the inclusive range [0, 99].",
        );
        refused("bytes=5-2", "Invalid Range header.");
        refused("foo", "Invalid Range header.");
        refused("bytes=-", "Invalid Range header.");
        refused(
            "bytes=0-1,3-4",
            "Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead.",
        );
    }

    #[test]
    fn empty_images_have_no_byte_to_serve() {
        // Recorded from real Glance 33 (glance-wire.md §9).
        assert_eq!(
            served("bytes=0-15", 0),
            Err("Invalid start position in Range header. Start position MUST be in the inclusive range [0, -1].".to_owned())
        );
        assert!(served("bytes=-5", 0).is_err());
    }

    #[test]
    fn stricter_than_glance() {
        assert_eq!(
            parse("bytes=3-4xyz"),
            Err(RangeError::Invalid {
                value: "bytes=3-4xyz".into()
            })
        );
        assert_eq!(
            parse("bytes=-0"),
            Err(RangeError::Invalid {
                value: "bytes=-0".into()
            })
        );
        assert!(matches!(parse("bits=1-2"), Err(RangeError::Invalid { .. })));
        assert!(matches!(
            parse("bytés=1-2"),
            Err(RangeError::Invalid { .. })
        ));
    }

    #[test]
    fn huge_numbers_saturate() {
        assert_eq!(
            served("bytes=0-99999999999999999999999", 100).as_deref(),
            Ok("bytes 0-99/100")
        );
        assert!(served("bytes=99999999999999999999999-", 100).is_err());
        assert_eq!(
            served("bytes=-99999999999999999999999", 100).as_deref(),
            Ok("bytes 0-99/100")
        );
        let range = parse("bytes=10-19").unwrap().resolve(100).unwrap();
        assert_eq!(range, 10..20);
        assert_eq!(parse("bytes=7-"), Ok(ByteRange::From(7)));
    }
}
