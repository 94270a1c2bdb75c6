//! Finding PEM blocks in text the way castellan/cryptography read a
//! Barbican secret: text before the first block is ignored, and the first
//! block decides.
//!
//! This module only splits and decodes; it must not interpret the DER.

use super::base64;

/// One `-----BEGIN <label>-----` … `-----END <label>-----` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PemBlock<'a> {
    /// The label (`CERTIFICATE`, `PRIVATE KEY`...).
    pub(crate) label: &'a str,
    /// The base64 body, with any RFC 1421 headers removed.
    pub(crate) body: &'a str,
}

/// Why a PEM block cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PemError {
    /// A BEGIN line without its END line.
    #[error("PEM block {label:?} has no matching END line")]
    Unterminated {
        /// The block's label.
        label: String,
    },
    /// The body is not base64.
    #[error("PEM block {label:?} is not valid base64: {source}")]
    Body {
        /// The block's label.
        label: String,
        /// Where the base64 goes wrong.
        #[source]
        source: base64::Base64Error,
    },
}

const BEGIN: &str = "-----BEGIN ";
const DASHES: &str = "-----";

/// Returns every PEM block in `text`, in order, stopping at the first
/// malformed one.
pub(crate) fn blocks(text: &str) -> Vec<Result<PemBlock<'_>, PemError>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after_begin = &rest[start + BEGIN.len()..];
        let Some(label_end) = after_begin.find(DASHES) else {
            break;
        };
        let label = &after_begin[..label_end];
        if label.contains('\n') {
            rest = after_begin;
            continue;
        }
        let body_start = &after_begin[label_end + DASHES.len()..];
        let end_marker = format!("-----END {label}-----");
        let Some(body_end) = body_start.find(&end_marker) else {
            out.push(Err(PemError::Unterminated {
                label: label.to_owned(),
            }));
            break;
        };
        let body = strip_headers(&body_start[..body_end]);
        out.push(Ok(PemBlock { label, body }));
        rest = &body_start[body_end + end_marker.len()..];
    }
    out
}

/// Drops RFC 1421 headers (`Proc-Type: ...`), which end at the first blank line.
fn strip_headers(body: &str) -> &str {
    if body.contains(':')
        && let Some(blank) = body.find("\n\n").or_else(|| body.find("\r\n\r\n"))
    {
        return &body[blank..];
    }
    body
}

impl PemBlock<'_> {
    /// Decodes the body to DER.
    ///
    /// Fails when the body is not base64 (whitespace is allowed).
    pub(crate) fn decode(&self) -> Result<Vec<u8>, PemError> {
        base64::decode_strict(self.body).map_err(|source| PemError::Body {
            label: self.label.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_blocks_after_leading_text() {
        let text = "Bag Attributes\nsubject=CN=x\n-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nQQ==\n-----END PRIVATE KEY-----\n";
        let found = blocks(text);
        assert_eq!(found.len(), 2);
        let first = found[0].as_ref().unwrap();
        assert_eq!(first.label, "CERTIFICATE");
        assert_eq!(first.decode().unwrap(), b"ABC");
        assert_eq!(found[1].as_ref().unwrap().label, "PRIVATE KEY");
    }

    #[test]
    fn reports_unterminated_and_bad_bodies() {
        assert!(matches!(
            blocks("-----BEGIN CERTIFICATE-----\nQUJD\n")[0],
            Err(PemError::Unterminated { .. })
        ));
        let bad = blocks("-----BEGIN CERTIFICATE-----\nQU!JD\n-----END CERTIFICATE-----");
        assert!(bad[0].as_ref().unwrap().decode().is_err());
        assert!(blocks("no pem here").is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Text made of PEM fragments (markers, labels, base64, headers,
        /// multi-byte characters) never panics the splitter or the decoder.
        #[test]
        fn any_text_splits_and_decodes_cleanly(
            pieces in proptest::collection::vec(
                "(-----BEGIN |-----END |-----|CERTIFICATE|PRIVATE KEY|Proc-Type: 4|\\n\\n|\\r\\n|\\n|[A-Za-z0-9+/=]{0,8}|:|é|\\PC{0,3})",
                0..24,
            )
        ) {
            let text = pieces.concat();
            for block in blocks(&text).into_iter().flatten() {
                let _ = block.decode();
            }
        }
    }
}
