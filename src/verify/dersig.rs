//! Strict DER for ECDSA and DSA signatures: `SEQUENCE { INTEGER r, INTEGER s }`.
//!
//! OpenSSL (and so cursive) re-encodes the signature and compares, so only
//! the one DER encoding of a pair is accepted: no trailing bytes, minimal
//! lengths, minimal positive integers. Raw `r || s` (P1363) is rejected.
//! This module parses and encodes; it must not check ranges against a curve
//! or group order (the verifier does).

use super::tlv::{self, TlvError};

/// The two integers of a DER signature, as minimal big-endian magnitudes
/// (no sign octet; zero is the empty slice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DerSignature<'a> {
    /// `r`.
    pub r: &'a [u8],
    /// `s`.
    pub s: &'a [u8],
}

/// Which integer of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The first integer.
    R,
    /// The second integer.
    S,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::R => "r",
            Part::S => "s",
        })
    }
}

/// Why bytes are not a strict-DER `SEQUENCE { r, s }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DerSignatureError {
    /// The outer element is not DER.
    #[error("the signature is not a DER element: {0}")]
    Outer(TlvError),
    /// The outer element is not a SEQUENCE (for example raw `r || s`).
    #[error(
        "the signature is not a DER SEQUENCE (tag 0x{0:02x}); raw r||s signatures are not accepted"
    )]
    NotASequence(u8),
    /// Bytes follow the SEQUENCE.
    #[error("{0} byte(s) follow the DER SEQUENCE")]
    TrailingBytes(usize),
    /// An integer is missing or is not DER.
    #[error("integer {part} is missing or malformed: {error}")]
    Integer {
        /// Which integer.
        part: Part,
        /// What is wrong with it.
        error: TlvError,
    },
    /// An element of another type where an INTEGER belongs.
    #[error("element {part} has tag 0x{tag:02x}, not INTEGER")]
    NotAnInteger {
        /// Which integer.
        part: Part,
        /// The tag found.
        tag: u8,
    },
    /// An INTEGER with no content octets.
    #[error("integer {0} is empty")]
    EmptyInteger(Part),
    /// An INTEGER with a redundant leading 0x00 or 0xff octet.
    #[error("integer {0} is not minimally encoded (redundant leading octet)")]
    NonMinimalInteger(Part),
    /// A negative INTEGER.
    #[error("integer {0} is negative")]
    NegativeInteger(Part),
    /// Elements follow `s` inside the SEQUENCE.
    #[error("{0} byte(s) follow s inside the SEQUENCE")]
    ExtraElements(usize),
}

/// Parses a strict-DER ECDSA/DSA signature.
///
/// Fails with the first deviation from DER found (see [`DerSignatureError`]).
pub fn parse(bytes: &[u8]) -> Result<DerSignature<'_>, DerSignatureError> {
    let (outer, rest) = tlv::read(bytes).map_err(DerSignatureError::Outer)?;
    if outer.tag != tlv::SEQUENCE {
        return Err(DerSignatureError::NotASequence(outer.tag));
    }
    if !rest.is_empty() {
        return Err(DerSignatureError::TrailingBytes(rest.len()));
    }
    let (r, inner) = integer(outer.value, Part::R)?;
    let (s, inner) = integer(inner, Part::S)?;
    if !inner.is_empty() {
        return Err(DerSignatureError::ExtraElements(inner.len()));
    }
    Ok(DerSignature { r, s })
}

fn integer(input: &[u8], part: Part) -> Result<(&[u8], &[u8]), DerSignatureError> {
    let (element, rest) =
        tlv::read(input).map_err(|error| DerSignatureError::Integer { part, error })?;
    if element.tag != tlv::INTEGER {
        return Err(DerSignatureError::NotAnInteger {
            part,
            tag: element.tag,
        });
    }
    let magnitude = positive_integer(element.value).map_err(|problem| problem.for_part(part))?;
    Ok((magnitude, rest))
}

/// What is wrong with an INTEGER's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntegerProblem {
    Empty,
    NonMinimal,
    Negative,
}

impl IntegerProblem {
    fn for_part(self, part: Part) -> DerSignatureError {
        match self {
            IntegerProblem::Empty => DerSignatureError::EmptyInteger(part),
            IntegerProblem::NonMinimal => DerSignatureError::NonMinimalInteger(part),
            IntegerProblem::Negative => DerSignatureError::NegativeInteger(part),
        }
    }
}

/// Checks the contents of a DER INTEGER are minimal and non-negative and
/// returns the magnitude without the sign octet.
pub(crate) fn positive_integer(value: &[u8]) -> Result<&[u8], IntegerProblem> {
    match value {
        [] => Err(IntegerProblem::Empty),
        [0x00, next, ..] if *next < 0x80 => Err(IntegerProblem::NonMinimal),
        [0xff, next, ..] if *next >= 0x80 => Err(IntegerProblem::NonMinimal),
        [first, ..] if *first >= 0x80 => Err(IntegerProblem::Negative),
        [0x00, rest @ ..] => Ok(rest),
        _ => Ok(value),
    }
}

/// Encodes `SEQUENCE { r, s }` from big-endian magnitudes (leading zeros allowed).
pub fn encode(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut inner = Vec::with_capacity(r.len() + s.len() + 8);
    encode_integer(r, &mut inner);
    encode_integer(s, &mut inner);
    let mut out = Vec::with_capacity(inner.len() + 4);
    tlv::encode(tlv::SEQUENCE, &inner, &mut out);
    out
}

fn encode_integer(magnitude: &[u8], out: &mut Vec<u8>) {
    let skip = magnitude.iter().take_while(|&&b| b == 0).count();
    let trimmed = &magnitude[skip..];
    let mut value = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|&b| b >= 0x80) {
        value.push(0);
    }
    value.extend_from_slice(trimmed);
    tlv::encode(tlv::INTEGER, &value, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn trim(bytes: &[u8]) -> &[u8] {
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        &bytes[skip..]
    }

    #[test]
    fn known_encodings() {
        assert_eq!(encode(&[1], &[2]), vec![0x30, 6, 2, 1, 1, 2, 1, 2]);
        assert_eq!(encode(&[0x80], &[0]), vec![0x30, 7, 2, 2, 0, 0x80, 2, 1, 0]);
        let sig = parse(&[0x30, 7, 2, 2, 0, 0x80, 2, 1, 0]).unwrap();
        assert_eq!(sig.r, &[0x80]);
        assert_eq!(sig.s, &[] as &[u8]);
    }

    #[test]
    fn rejects_what_openssl_rejects() {
        use DerSignatureError as E;
        let ok = encode(&[0x11; 48], &[0x22; 48]);
        assert!(parse(&ok).is_ok());
        let mut trailing = ok.clone();
        trailing.push(0);
        assert_eq!(parse(&trailing), Err(E::TrailingBytes(1)));
        // Redundant leading 0x00 in r.
        assert_eq!(
            parse(&[0x30, 7, 2, 2, 0, 0x11, 2, 1, 1]),
            Err(E::NonMinimalInteger(Part::R))
        );
        // Long-form length for a short SEQUENCE.
        assert_eq!(
            parse(&[0x30, 0x81, 6, 2, 1, 1, 2, 1, 1]),
            Err(E::Outer(TlvError::NonMinimalLength))
        );
        assert_eq!(
            parse(&[0x30, 6, 2, 1, 0x81, 2, 1, 1]),
            Err(E::NegativeInteger(Part::R))
        );
        assert_eq!(
            parse(&[0x30, 5, 2, 0, 2, 1, 1]),
            Err(E::EmptyInteger(Part::R))
        );
        assert_eq!(
            parse(&[0x30, 9, 2, 1, 1, 2, 1, 1, 5, 0, 0][..11]),
            Err(E::ExtraElements(3))
        );
        assert_eq!(parse(&[0x04, 2, 1, 1]), Err(E::NotASequence(0x04)));
        assert_eq!(parse(&[0x11; 96]), Err(E::NotASequence(0x11)));
        assert_eq!(parse(&[]), Err(E::Outer(TlvError::Empty)));
        assert!(matches!(
            parse(&[0x30, 3, 4, 1, 1]),
            Err(E::NotAnInteger {
                part: Part::R,
                tag: 4
            })
        ));
        assert!(matches!(
            parse(&[0x30, 3, 2, 1, 1]),
            Err(E::Integer { part: Part::S, .. })
        ));
    }

    proptest! {
        #[test]
        fn encode_then_parse_round_trips(
            r in proptest::collection::vec(any::<u8>(), 0..140),
            s in proptest::collection::vec(any::<u8>(), 0..140),
        ) {
            let der = encode(&r, &s);
            let sig = parse(&der).unwrap();
            prop_assert_eq!(sig.r, trim(&r));
            prop_assert_eq!(sig.s, trim(&s));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(sig) = parse(&bytes) {
                // Whatever parses is exactly the canonical encoding.
                prop_assert_eq!(encode(sig.r, sig.s), bytes);
            }
        }

        #[test]
        fn any_appended_byte_is_rejected(
            r in proptest::collection::vec(1u8..=255, 1..70),
            s in proptest::collection::vec(1u8..=255, 1..70),
            extra in proptest::collection::vec(any::<u8>(), 1..4),
        ) {
            let mut der = encode(&r, &s);
            der.extend_from_slice(&extra);
            prop_assert_eq!(parse(&der), Err(DerSignatureError::TrailingBytes(extra.len())));
        }

        #[test]
        fn single_byte_mutations_are_either_rejected_or_canonical(
            r in proptest::collection::vec(any::<u8>(), 1..70),
            s in proptest::collection::vec(any::<u8>(), 1..70),
            pos in any::<usize>(),
            byte in any::<u8>(),
        ) {
            let mut der = encode(&r, &s);
            let pos = pos % der.len();
            der[pos] = byte;
            if let Ok(sig) = parse(&der) {
                prop_assert_eq!(encode(sig.r, sig.s), der);
            }
        }
    }
}
