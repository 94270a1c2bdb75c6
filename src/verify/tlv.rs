//! A minimal, strict DER tag-length-value reader.
//!
//! Used where portcullis must see the exact bytes (ECDSA/DSA signature
//! values, the to-be-signed part of a certificate, RSASSA-PSS parameters,
//! key containers) rather than a re-encoding. It only accepts DER: one-byte
//! tags, definite minimal lengths. It must not interpret what it reads.

/// One DER element: its tag byte, its contents and its whole encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet (class, constructed bit and tag number < 31).
    pub(crate) tag: u8,
    /// The contents octets.
    pub(crate) value: &'a [u8],
    /// Identifier, length and contents octets together.
    pub(crate) encoded: &'a [u8],
}

/// DER tag of INTEGER.
pub(crate) const INTEGER: u8 = 0x02;
/// DER tag of BIT STRING.
pub(crate) const BIT_STRING: u8 = 0x03;
/// DER tag of OCTET STRING.
pub(crate) const OCTET_STRING: u8 = 0x04;
/// DER tag of OBJECT IDENTIFIER.
pub(crate) const OID: u8 = 0x06;
/// DER tag of SEQUENCE (constructed).
pub(crate) const SEQUENCE: u8 = 0x30;

/// Why bytes are not one DER element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    /// No bytes where an element should start.
    #[error("no data where an element should start")]
    Empty,
    /// A multi-byte (high) tag number, never used by these structures.
    #[error("multi-byte tag 0x{0:02x}")]
    HighTag(u8),
    /// The length octets are missing or cut short.
    #[error("length octets are cut short")]
    TruncatedLength,
    /// BER indefinite length (0x80).
    #[error("indefinite length (BER, not DER)")]
    IndefiniteLength,
    /// A long-form length that DER would encode shorter.
    #[error("length is not minimally encoded")]
    NonMinimalLength,
    /// A length that does not fit (more than four length octets).
    #[error("length is too large")]
    LengthTooLarge,
    /// The element claims more content bytes than remain.
    #[error("element claims {claimed} content bytes but only {available} remain")]
    TruncatedValue {
        /// Content length from the length octets.
        claimed: usize,
        /// Bytes actually left.
        available: usize,
    },
}

/// Reads one element from the front of `input`; returns it and the rest.
///
/// Fails on anything that is not strict DER (see [`TlvError`]).
pub(crate) fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (&tag, rest) = input.split_first().ok_or(TlvError::Empty)?;
    if tag & 0x1f == 0x1f {
        return Err(TlvError::HighTag(tag));
    }
    let (&first, mut rest) = rest.split_first().ok_or(TlvError::TruncatedLength)?;
    let length = if first < 0x80 {
        usize::from(first)
    } else if first == 0x80 {
        return Err(TlvError::IndefiniteLength);
    } else {
        let n_octets = usize::from(first & 0x7f);
        if n_octets > 4 {
            return Err(TlvError::LengthTooLarge);
        }
        if rest.len() < n_octets {
            return Err(TlvError::TruncatedLength);
        }
        let (octets, after) = rest.split_at(n_octets);
        rest = after;
        if octets[0] == 0 {
            return Err(TlvError::NonMinimalLength);
        }
        let length = octets
            .iter()
            .fold(0usize, |acc, &octet| (acc << 8) | usize::from(octet));
        if length < 0x80 {
            return Err(TlvError::NonMinimalLength);
        }
        length
    };
    if rest.len() < length {
        return Err(TlvError::TruncatedValue {
            claimed: length,
            available: rest.len(),
        });
    }
    let (value, after) = rest.split_at(length);
    let header_len = input.len() - rest.len();
    let encoded = &input[..header_len + length];
    Ok((
        Tlv {
            tag,
            value,
            encoded,
        },
        after,
    ))
}

/// Reads one element that must carry `tag`; returns it and the rest.
///
/// Fails like [`read`], or with [`ExpectError::WrongTag`] for another tag.
pub(crate) fn expect(input: &[u8], tag: u8) -> Result<(Tlv<'_>, &[u8]), ExpectError> {
    let (tlv, rest) = read(input)?;
    if tlv.tag != tag {
        return Err(ExpectError::WrongTag {
            expected: tag,
            found: tlv.tag,
        });
    }
    Ok((tlv, rest))
}

/// Why an expected element is not there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExpectError {
    /// Not DER.
    #[error(transparent)]
    Tlv(#[from] TlvError),
    /// Another element than the one expected.
    #[error("expected tag 0x{expected:02x}, found 0x{found:02x}")]
    WrongTag {
        /// The tag wanted.
        expected: u8,
        /// The tag found.
        found: u8,
    },
}

/// Encodes a DER length.
pub(crate) fn encode_length(length: usize, out: &mut Vec<u8>) {
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Encodes one element.
pub(crate) fn encode(tag: u8, value: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    encode_length(value.len(), out);
    out.extend_from_slice(value);
}

/// Decodes the contents of an OBJECT IDENTIFIER as dotted text.
///
/// Returns `None` when the contents are not a valid OID encoding.
pub(crate) fn oid_to_string(value: &[u8]) -> Option<String> {
    let mut arcs: Vec<u128> = Vec::new();
    let mut current: u128 = 0;
    let mut in_arc = false;
    for &byte in value {
        if !in_arc && byte == 0x80 {
            return None; // non-minimal arc
        }
        current = current.checked_mul(128)? | u128::from(byte & 0x7f);
        in_arc = byte & 0x80 != 0;
        if !in_arc {
            arcs.push(current);
            current = 0;
        }
    }
    if in_arc || arcs.is_empty() {
        return None;
    }
    let first = arcs[0];
    let (a, b) = if first < 40 {
        (0, first)
    } else if first < 80 {
        (1, first - 40)
    } else {
        (2, first - 80)
    };
    let mut text = format!("{a}.{b}");
    for arc in &arcs[1..] {
        text.push('.');
        text.push_str(&arc.to_string());
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_forms() {
        let (tlv, rest) = read(&[0x04, 0x02, 0xaa, 0xbb, 0xcc]).unwrap();
        assert_eq!(
            (tlv.tag, tlv.value, rest),
            (0x04, &[0xaa, 0xbb][..], &[0xcc][..])
        );
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7, 0x80));
        let (tlv, rest) = read(&long).unwrap();
        assert_eq!(tlv.value.len(), 0x80);
        assert_eq!(tlv.encoded.len(), long.len());
        assert!(rest.is_empty());
    }

    #[test]
    fn rejects_non_der_lengths() {
        assert_eq!(read(&[]), Err(TlvError::Empty));
        assert_eq!(read(&[0x30]), Err(TlvError::TruncatedLength));
        assert_eq!(read(&[0x30, 0x80, 0, 0]), Err(TlvError::IndefiniteLength));
        assert_eq!(
            read(&[0x30, 0x81, 0x05, 1, 2, 3, 4, 5]),
            Err(TlvError::NonMinimalLength)
        );
        assert_eq!(
            read(&[0x30, 0x82, 0x00, 0x85]),
            Err(TlvError::NonMinimalLength)
        );
        assert_eq!(
            read(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            Err(TlvError::LengthTooLarge)
        );
        assert_eq!(
            read(&[0x30, 0x03, 1]),
            Err(TlvError::TruncatedValue {
                claimed: 3,
                available: 1
            })
        );
        assert_eq!(read(&[0x1f, 0x01, 0x00]), Err(TlvError::HighTag(0x1f)));
    }

    #[test]
    fn oids_decode() {
        assert_eq!(
            oid_to_string(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]).as_deref(),
            Some("1.2.840.10045.2.1")
        );
        assert_eq!(
            oid_to_string(&[0x2b, 0x81, 0x04, 0x00, 0x22]).as_deref(),
            Some("1.3.132.0.34")
        );
        assert_eq!(
            oid_to_string(&[0x2b, 0x65, 0x70]).as_deref(),
            Some("1.3.101.112")
        );
        assert_eq!(oid_to_string(&[]), None);
        assert_eq!(oid_to_string(&[0x2a, 0x86]), None);
    }
}
