//! The two base64 decoders for `img_signature`, and an encoder for `sign`.
//!
//! [`decode_strict`] is the default: standard alphabet, padding required,
//! whitespace (space, tab, CR, LF) allowed anywhere because wrapped base64
//! is common, and every other deviation an error naming its offset.
//! [`decode_cursive`] reproduces CPython 3.11's non-strict
//! `base64.b64decode` (what cursive calls), byte for byte, except that
//! non-ASCII text is an error here instead of an uncaught `ValueError`.
//! Every text [`decode_strict`] accepts, [`decode_cursive`] decodes to the
//! same bytes.
//!
//! This module must not know about signatures or properties.

/// Why a text is not base64 (offsets are byte offsets from 0 into the text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    /// A character outside ASCII; cursive crashes on these.
    #[error("non-ASCII character {character:?} at offset {offset}")]
    NonAscii {
        /// Byte offset of the character.
        offset: usize,
        /// The character.
        character: char,
    },
    /// A character outside the standard alphabet, `=` and whitespace.
    #[error(
        "character {character:?} at offset {offset} is not in the standard base64 alphabet (A-Z a-z 0-9 + /)"
    )]
    InvalidCharacter {
        /// Byte offset of the character.
        offset: usize,
        /// The character.
        character: char,
    },
    /// `=` where padding cannot start (a group with fewer than two characters).
    #[error("padding '=' at offset {offset} where no padding can start")]
    MisplacedPadding {
        /// Byte offset of the `=`.
        offset: usize,
    },
    /// An `=` after the padding was already complete.
    #[error("extra padding '=' at offset {offset}")]
    ExtraPadding {
        /// Byte offset of the `=`.
        offset: usize,
    },
    /// Data after the final (or an incomplete) padding.
    #[error("data after the padding at offset {offset}")]
    DataAfterPadding {
        /// Byte offset of the first such character.
        offset: usize,
    },
    /// The text ends inside a group: missing characters or missing padding.
    #[error(
        "the text ends inside a group at offset {offset} ({data_chars} data character(s) and {pads} '=' in the last group; a group needs 4)"
    )]
    Truncated {
        /// Byte offset of the end of the text.
        offset: usize,
        /// Data characters in the unfinished group.
        data_chars: usize,
        /// `=` characters in the unfinished group.
        pads: usize,
    },
}

/// Maps an ASCII byte to its 6-bit value, or `None` outside the standard alphabet.
fn sextet(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Appends the bytes of a group holding `n_chars` (2..=4) sextets.
fn flush_group(group: &[u8; 4], n_chars: usize, out: &mut Vec<u8>) {
    let bits = (u32::from(group[0]) << 18)
        | (u32::from(group[1]) << 12)
        | (u32::from(group[2]) << 6)
        | u32::from(group[3]);
    let bytes = bits.to_be_bytes();
    // Unused low bits of a short group are ignored, as in CPython.
    out.extend_from_slice(&bytes[1..n_chars]);
}

fn first_non_ascii(text: &str) -> Option<(usize, char)> {
    text.char_indices().find(|(_, c)| !c.is_ascii())
}

/// Decodes standard base64 strictly, allowing whitespace anywhere.
///
/// Fails on a non-ASCII character, a character outside the alphabet, `=`
/// where no padding can start, extra `=`, data after the padding, and a
/// text ending inside a group (missing padding); each error names the offset.
/// Unused low bits in the last group are ignored (as cursive does).
pub fn decode_strict(text: &str) -> Result<Vec<u8>, Base64Error> {
    if let Some((offset, character)) = first_non_ascii(text) {
        return Err(Base64Error::NonAscii { offset, character });
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut group = [0u8; 4];
    let mut n_chars = 0usize;
    let mut pads = 0usize;
    let mut complete = false;
    for (offset, &byte) in text.as_bytes().iter().enumerate() {
        match byte {
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            b'=' => {
                if complete {
                    return Err(Base64Error::ExtraPadding { offset });
                }
                if pads == 0 && n_chars < 2 {
                    return Err(Base64Error::MisplacedPadding { offset });
                }
                pads += 1;
                if n_chars + pads == 4 {
                    complete = true;
                    flush_group(&group, n_chars, &mut out);
                }
            }
            _ => {
                let Some(value) = sextet(byte) else {
                    return Err(Base64Error::InvalidCharacter {
                        offset,
                        character: char::from(byte),
                    });
                };
                if complete || pads > 0 {
                    return Err(Base64Error::DataAfterPadding { offset });
                }
                group[n_chars] = value;
                n_chars += 1;
                if n_chars == 4 {
                    flush_group(&group, 4, &mut out);
                    group = [0; 4];
                    n_chars = 0;
                }
            }
        }
    }
    if !complete && (n_chars > 0 || pads > 0) {
        return Err(Base64Error::Truncated {
            offset: text.len(),
            data_chars: n_chars,
            pads,
        });
    }
    Ok(out)
}

/// Decodes base64 exactly as cursive does (CPython 3.11 non-strict
/// `binascii.a2b_base64`).
///
/// Every byte outside the standard alphabet is skipped (including `-`,
/// `_`, `!`, NUL); an `=` that completes a group of at least two
/// characters ends decoding and the rest of the text is ignored; an `=`
/// that does not is skipped. Fails on non-ASCII text (cursive crashes
/// there) and when the text ends inside a group (cursive's "not properly
/// encoded using base64").
pub fn decode_cursive(text: &str) -> Result<Vec<u8>, Base64Error> {
    if let Some((offset, character)) = first_non_ascii(text) {
        return Err(Base64Error::NonAscii { offset, character });
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut group = [0u8; 4];
    let mut quad_pos = 0usize;
    let mut pads = 0usize;
    for &byte in text.as_bytes() {
        if byte == b'=' {
            // CPython only counts pads once the group holds two characters
            // (`quad_pos >= 2 && quad_pos + ++pads >= 4`).
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    flush_group(&group, quad_pos, &mut out);
                    return Ok(out);
                }
            }
            continue;
        }
        let Some(value) = sextet(byte) else {
            continue;
        };
        pads = 0;
        group[quad_pos] = value;
        quad_pos += 1;
        if quad_pos == 4 {
            flush_group(&group, 4, &mut out);
            group = [0; 4];
            quad_pos = 0;
        }
    }
    if quad_pos != 0 {
        return Err(Base64Error::Truncated {
            offset: text.len(),
            data_chars: quad_pos,
            pads,
        });
    }
    Ok(out)
}

/// Encodes bytes as standard, padded base64 on one line.
pub fn encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let bits = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let index = (bits >> (18 - 6 * i)) & 0x3f;
                out.push(char::from(ALPHABET[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cursive_examples_from_the_reference() {
        let cases: &[(&str, Option<&[u8]>)] = &[
            ("QUJD", Some(b"ABC")),
            ("QQ==anything", Some(b"A")),
            ("QU=JD", Some(b"ABC")),
            ("QUJD====QUJD", Some(b"ABCABC")),
            ("QQ===", Some(b"A")),
            ("Q U\tJ\r\nD", Some(b"ABC")),
            ("QU!J*D.", Some(b"ABC")),
            ("QUJ\0D", Some(b"ABC")),
            ("", Some(b"")),
            ("   ", Some(b"")),
            ("====", Some(b"")),
            ("Q", None),
            ("QQ", None),
            ("QUJ", None),
            ("QQ=", None),
            // URL-safe characters are skipped, which changes the length.
            ("-_-_", Some(b"")),
            ("QUJD-", Some(b"ABC")),
            ("QUJ-", None),
        ];
        for (text, expect) in cases {
            let got = decode_cursive(text).ok();
            assert_eq!(got.as_deref(), *expect, "{text:?}");
        }
    }

    #[test]
    fn strict_examples() {
        assert_eq!(decode_strict("QUJD").unwrap(), b"ABC");
        assert_eq!(decode_strict(" QU\nJD \r\n\t").unwrap(), b"ABC");
        assert_eq!(decode_strict("QQ==").unwrap(), b"A");
        assert_eq!(decode_strict("QUI=").unwrap(), b"AB");
        assert_eq!(decode_strict("QQ==\n").unwrap(), b"A");
        // Non-canonical trailing bits are ignored, as cursive does.
        assert_eq!(decode_strict("QR==").unwrap(), b"A");
        assert_eq!(decode_strict("").unwrap(), b"");
        let check = |text: &str, expect: Base64Error| assert_eq!(decode_strict(text), Err(expect));
        check(
            "QU!JD",
            Base64Error::InvalidCharacter {
                offset: 2,
                character: '!',
            },
        );
        check(
            "QUJD-",
            Base64Error::InvalidCharacter {
                offset: 4,
                character: '-',
            },
        );
        check("QQ==anything", Base64Error::DataAfterPadding { offset: 4 });
        check("QQ===", Base64Error::ExtraPadding { offset: 4 });
        check("QU=JD", Base64Error::DataAfterPadding { offset: 3 });
        check("====", Base64Error::MisplacedPadding { offset: 0 });
        check("Q===", Base64Error::MisplacedPadding { offset: 1 });
        check(
            "QQ",
            Base64Error::Truncated {
                offset: 2,
                data_chars: 2,
                pads: 0,
            },
        );
        check(
            "QQ=",
            Base64Error::Truncated {
                offset: 3,
                data_chars: 2,
                pads: 1,
            },
        );
        check(
            "QUJ\u{e9}",
            Base64Error::NonAscii {
                offset: 3,
                character: '\u{e9}',
            },
        );
        check(
            "QUJ\u{a0}D",
            Base64Error::NonAscii {
                offset: 3,
                character: '\u{a0}',
            },
        );
        assert!(matches!(
            decode_cursive("QUJ\u{e9}D"),
            Err(Base64Error::NonAscii { offset: 3, .. })
        ));
    }

    #[test]
    fn encode_known_answers() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"A"), "QQ==");
        assert_eq!(encode(b"AB"), "QUI=");
        assert_eq!(encode(b"ABC"), "QUJD");
        assert_eq!(encode(&[0xfb, 0xff]), "+/8=");
    }

    /// Inserts whitespace (from `ws`) before the byte positions in `at`.
    fn sprinkle(text: &str, at: &[(usize, u8)]) -> String {
        let mut out = text.as_bytes().to_vec();
        let mut positions: Vec<(usize, u8)> = at
            .iter()
            .map(|(pos, w)| (pos % (out.len() + 1), *w))
            .collect();
        positions.sort_by_key(|p| std::cmp::Reverse(p.0));
        for (pos, w) in positions {
            let ch = [b' ', b'\t', b'\r', b'\n'][usize::from(w % 4)];
            out.insert(pos, ch);
        }
        String::from_utf8(out).unwrap()
    }

    proptest! {
        #[test]
        fn both_decoders_invert_encode(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let text = encode(&bytes);
            prop_assert_eq!(decode_strict(&text).unwrap(), bytes.clone());
            prop_assert_eq!(decode_cursive(&text).unwrap(), bytes);
        }

        #[test]
        fn whitespace_anywhere_is_accepted(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            at in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..20),
        ) {
            let text = sprinkle(&encode(&bytes), &at);
            prop_assert_eq!(decode_strict(&text).unwrap(), bytes.clone());
            prop_assert_eq!(decode_cursive(&text).unwrap(), bytes);
        }

        #[test]
        fn strict_is_a_subset_of_cursive(text in "[A-Za-z0-9+/= \t\r\n!_-]{0,40}") {
            if let Ok(bytes) = decode_strict(&text) {
                prop_assert_eq!(decode_cursive(&text).unwrap(), bytes);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = decode_strict(&text);
            let _ = decode_cursive(&text);
        }

        #[test]
        fn strict_names_the_offending_character(
            bytes in proptest::collection::vec(any::<u8>(), 1..200),
            pos in any::<usize>(),
            bad in prop::sample::select(vec!['!', '-', '_', '.', '*', '\0', '@']),
        ) {
            let mut text = encode(&bytes);
            let pos = pos % (text.len() + 1);
            text.insert(pos, bad);
            prop_assert_eq!(
                decode_strict(&text),
                Err(Base64Error::InvalidCharacter { offset: pos, character: bad })
            );
        }

        #[test]
        fn strict_rejects_data_after_padding(bytes in proptest::collection::vec(any::<u8>(), 1..100), tail in "[A-Za-z0-9+/]{1,8}") {
            let text = encode(&bytes);
            prop_assume!(text.ends_with('='));
            let with_tail = format!("{text}{tail}");
            prop_assert_eq!(
                decode_strict(&with_tail),
                Err(Base64Error::DataAfterPadding { offset: text.len() })
            );
            // cursive ignores what follows the padding.
            prop_assert_eq!(decode_cursive(&with_tail).unwrap(), bytes);
        }
    }
}
