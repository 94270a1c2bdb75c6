//! LUKS encrypted volumes: the `LUKS\xba\xbe` magic, version at 6, payload
//! offset (in 512-byte sectors) at 104, all big-endian; the LUKS1 header
//! with its eight key slots is 592 bytes.
//!
//! The `version` check is oslo's: only LUKS1 passes. The virtual size is the
//! stream's length minus the payload offset; unlike oslo it is unknown (not
//! negative or garbage) when the version is not 1 (LUKS2 has another layout).
//! A stream that ends inside the 592-byte header or before the payload
//! starts fails `structure`: oslo calls an incomplete header unsafe, qemu
//! refuses both ("LUKS payload is overlapping with the header"), and
//! portcullis used to call an 8-byte file with the magic and version safe.
//!
//! This module reads only the captured head; it decrypts nothing.

use super::capture::{be_u16, be_u32};
use super::{Check, Format, Seen, Verdict};

const MAGIC: &[u8] = b"LUKS\xba\xbe";
const VERSION_AT: usize = 6;
const PAYLOAD_OFFSET_AT: usize = 104;
/// `>6sH32s32s32sII20s32sI` plus 8 key slots of 48 bytes (oslo's region).
const HEADER_LEN: usize = 592;

/// The LUKS verdict, when the stream starts with the LUKS magic.
pub(super) fn inspect(seen: &Seen<'_>) -> Option<Verdict> {
    if !seen.head.starts_with(MAGIC) {
        return None;
    }
    let mut verdict = Verdict::new(Format::Luks);
    if seen.head.len() < HEADER_LEN {
        verdict.truncated("luks header", HEADER_LEN as u64, seen.n_bytes);
    }
    match be_u16(seen.head, VERSION_AT) {
        Some(1) => {
            let payload = be_u32(seen.head, PAYLOAD_OFFSET_AT).map(|s| u64::from(s) * 512);
            match payload.map(|p| (p, seen.n_bytes.checked_sub(p))) {
                Some((_, Some(size))) => verdict.set_virtual_size(size),
                Some((payload, None)) => verdict.fail(
                    Check::Structure,
                    format!(
                        "luks payload starts at byte {payload}, past the end of the file at byte {}: the key material or the payload is truncated",
                        seen.n_bytes
                    ),
                ),
                None => {} // the header is truncated: `structure` already failed
            }
        }
        Some(other) => verdict.fail(
            Check::Version,
            format!("luks version {other} is not supported (only version 1)"),
        ),
        None => {} // the header is truncated: `structure` already failed
    }
    Some(verdict)
}

#[cfg(test)]
mod tests {
    use crate::inspect::tests::inspect;
    use crate::inspect::{Check, Format};

    fn header(version: u16, payload_sectors: u32) -> Vec<u8> {
        let mut h = vec![0u8; 4096];
        h[..6].copy_from_slice(b"LUKS\xba\xbe");
        h[6..8].copy_from_slice(&version.to_be_bytes());
        h[104..108].copy_from_slice(&payload_sectors.to_be_bytes());
        h
    }

    #[test]
    fn luks1_size_is_past_the_payload_offset() {
        let report = inspect(&header(1, 4));
        assert_eq!(report.format(), Some(Format::Luks));
        assert_eq!(report.virtual_size(), Some(4096 - 2048));
        assert!(report.is_safe());
    }

    #[test]
    fn payload_beyond_the_end_is_truncated() {
        let report = inspect(&header(1, 4096));
        assert_eq!(report.virtual_size(), None);
        assert!(report.failures()[&Check::Structure].contains("truncated"));
    }

    #[test]
    fn a_truncated_header_is_never_safe() {
        // issue 8: 8 bytes of magic and version were "safe".
        for cut in [6, 8, 105, 591] {
            let report = inspect(&header(1, 0)[..cut]);
            assert_eq!(report.format(), Some(Format::Luks), "cut {cut}");
            assert!(
                report.failures()[&Check::Structure].contains("of 592"),
                "cut {cut}: {:?}",
                report.failures()
            );
        }
        assert!(inspect(&header(1, 0)[..592]).is_safe());
    }

    #[test]
    fn luks2_fails_version() {
        let report = inspect(&header(2, 0));
        assert!(report.failures().contains_key(&Check::Version));
        assert_eq!(report.virtual_size(), None);
    }
}
