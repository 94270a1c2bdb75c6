//! `Range` on `GET /v2/images/{id}/file`, as Glance serves it
//! (glance/common/wsgi.py `get_range_from_request`, glance/api/v2/image_data.py
//! `download`): one range `bytes=a-b`, `bytes=a-` or a suffix `bytes=-n`; a
//! list of ranges is a 400; a range that does not fit the image is a 416.
//!
//! This module owns the parsing (before the image is known) and the
//! resolution against the image's size (after). It must not read data.
//!
//! Deliberate differences from Glance, all towards RFC 9110: trailing text
//! after the range (`bytes=3-4xyz`, accepted by Glance's unanchored regex)
//! and the empty suffix `bytes=-0` (Glance: the whole image as a 206) are
//! 416 "Invalid Range header."; a suffix on an empty image is a 416 (Glance:
//! a 206 with `Content-Range: bytes 0--1/0`).

/// A syntactically valid single range, not yet applied to an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// `bytes=first-last` (inclusive).
    FromTo {
        /// First byte.
        first: u64,
        /// Last byte, inclusive; may lie past the end (clamped).
        last: u64,
    },
    /// `bytes=first-`.
    From {
        /// First byte.
        first: u64,
    },
    /// `bytes=-length`: the last `length` bytes (the whole image when longer).
    Suffix {
        /// How many bytes from the end; never 0.
        length: u64,
    },
}

/// The bytes a range selects from an image of a known size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedRange {
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive.
    pub end: u64,
    /// The image's size (for `Content-Range`).
    pub size: u64,
}

impl ResolvedRange {
    /// How many bytes the range holds.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never true: a resolved range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` header value: `bytes start-end/size`.
    pub fn content_range(&self) -> String {
        format!("bytes {}-{}/{}", self.start, self.end, self.size)
    }
}

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
    /// The first byte lies at or past the end of the image: 416.
    #[error("the range starts at byte {first}, past the image's last byte {}", *.size as i128 - 1)]
    StartPastEnd {
        /// The requested first byte.
        first: u64,
        /// The image's size.
        size: u64,
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
            RangeError::StartPastEnd { size, .. } => (
                Some(RANGE_EXPLANATION),
                format!(
                    "Invalid start position in Range header. Start position MUST be in the inclusive range [0, {}].",
                    i128::from(*size) - 1
                ),
            ),
        }
    }
}

/// webob's explanation for 416.
const RANGE_EXPLANATION: &str = "The Range requested is not available.";

/// Parses a `Range` header value.
///
/// Fails with [`RangeError::Multiple`] for a list and
/// [`RangeError::Invalid`] for anything else that is not one byte range.
pub fn parse(value: &str) -> Result<RangeRequest, RangeError> {
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
            length => Ok(RangeRequest::Suffix { length }),
        },
        (false, true) => Ok(RangeRequest::From {
            first: number(first)?,
        }),
        (false, false) => {
            let (first, last) = (number(first)?, number(last)?);
            if first > last {
                return Err(invalid());
            }
            Ok(RangeRequest::FromTo { first, last })
        }
    }
}

impl RangeRequest {
    /// The bytes this range selects from an image of `size` bytes: the end
    /// is clamped to the last byte, a suffix longer than the image is the
    /// whole image (as Glance).
    ///
    /// Fails with [`RangeError::StartPastEnd`] when nothing of the image is
    /// selected (every range of an empty image).
    pub fn resolve(self, size: u64) -> Result<ResolvedRange, RangeError> {
        let past_end = |first| RangeError::StartPastEnd { first, size };
        let last_byte = size
            .checked_sub(1)
            .ok_or_else(|| past_end(self.first_or_zero()))?;
        let (start, end) = match self {
            RangeRequest::FromTo { first, last } => (first, last.min(last_byte)),
            RangeRequest::From { first } => (first, last_byte),
            RangeRequest::Suffix { length } => (size.saturating_sub(length), last_byte),
        };
        if start > last_byte {
            return Err(past_end(start));
        }
        Ok(ResolvedRange { start, end, size })
    }

    fn first_or_zero(self) -> u64 {
        match self {
            RangeRequest::FromTo { first, .. } | RangeRequest::From { first } => first,
            RangeRequest::Suffix { .. } => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(header: &str, size: u64) -> Result<String, String> {
        parse(header)
            .and_then(|range| range.resolve(size))
            .map(|range| range.content_range())
            .map_err(|err| err.glance_message().1)
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
        assert_eq!(range.len(), 10);
    }
}
