//! Byte ranges of stored data, with HTTP's meaning (RFC 9110 §14.1.2):
//! `bytes=a-b`, `bytes=a-` and `bytes=-n`, resolved against the stored
//! length.
//!
//! It owns the resolution rules only (clamping, what is unsatisfiable); it
//! must not parse HTTP headers (the HTTP layer turns a `Range` header into a
//! [`ByteRange`]) nor do I/O.

use std::ops::Range;

/// A requested byte range of an object, as HTTP's `Range: bytes=…` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last`: both inclusive; a `last` past the end is clamped.
    FromTo {
        /// First byte offset.
        first: u64,
        /// Last byte offset, inclusive (at least `first`).
        last: u64,
    },
    /// `bytes=first-`: from `first` to the end.
    From(u64),
    /// `bytes=-n`: the last `n` bytes (all of them when the object is shorter).
    Suffix(u64),
}

impl std::fmt::Display for ByteRange {
    /// As a `Range` header says it: `bytes=2-5`, `bytes=2-`, `bytes=-5`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ByteRange::FromTo { first, last } => write!(f, "bytes={first}-{last}"),
            ByteRange::From(first) => write!(f, "bytes={first}-"),
            ByteRange::Suffix(n) => write!(f, "bytes=-{n}"),
        }
    }
}

impl ByteRange {
    /// The half-open range of offsets this request selects in an object of
    /// `len` bytes, or `None` when it is unsatisfiable (HTTP 416): a start at
    /// or past the end, an empty suffix, `last < first`, or any range of an
    /// empty object.
    pub fn resolve(&self, len: u64) -> Option<Range<u64>> {
        let range = match *self {
            ByteRange::FromTo { first, last } if last >= first => {
                first..last.saturating_add(1).min(len)
            }
            ByteRange::FromTo { .. } => return None,
            ByteRange::From(first) => first..len,
            ByteRange::Suffix(n) => len.saturating_sub(n)..len,
        };
        (range.start < range.end).then_some(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_as_http_says() {
        let cases: [(ByteRange, u64, Option<Range<u64>>); 14] = [
            (ByteRange::FromTo { first: 0, last: 0 }, 10, Some(0..1)),
            (ByteRange::FromTo { first: 2, last: 5 }, 10, Some(2..6)),
            (ByteRange::FromTo { first: 2, last: 99 }, 10, Some(2..10)),
            (
                ByteRange::FromTo {
                    first: 0,
                    last: u64::MAX,
                },
                10,
                Some(0..10),
            ),
            (
                ByteRange::FromTo {
                    first: 10,
                    last: 12,
                },
                10,
                None,
            ),
            (ByteRange::FromTo { first: 5, last: 4 }, 10, None),
            (ByteRange::From(9), 10, Some(9..10)),
            (ByteRange::From(10), 10, None),
            (ByteRange::From(0), 0, None),
            (ByteRange::Suffix(3), 10, Some(7..10)),
            (ByteRange::Suffix(30), 10, Some(0..10)),
            (ByteRange::Suffix(0), 10, None),
            (ByteRange::Suffix(5), 0, None),
            (ByteRange::FromTo { first: 0, last: 5 }, 0, None),
        ];
        for (range, len, expected) in cases {
            assert_eq!(range.resolve(len), expected, "{range:?} of {len}");
        }
    }
}
