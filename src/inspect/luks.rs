//! LUKS encrypted volumes: the `LUKS\xba\xbe` magic, version at 6, payload
//! offset (in 512-byte sectors) at 104, all big-endian.
//!
//! The `version` check is oslo's: only LUKS1 passes. The virtual size is the
//! stream's length minus the payload offset; unlike oslo it is unknown (not
//! negative or garbage) when the payload offset lies beyond the end of the
//! stream or the version is not 1 (LUKS2 has another layout).
//!
//! This module reads only the captured head; it decrypts nothing.

use super::capture::{be_u16, be_u32};
use super::{Check, Format, Seen, Verdict};

const MAGIC: &[u8] = b"LUKS\xba\xbe";
const VERSION_AT: usize = 6;
const PAYLOAD_OFFSET_AT: usize = 104;

/// The LUKS verdict, when the stream starts with the LUKS magic.
pub(super) fn inspect(seen: &Seen<'_>) -> Option<Verdict> {
    if !seen.head.starts_with(MAGIC) {
        return None;
    }
    let mut verdict = Verdict::new(Format::Luks);
    match be_u16(seen.head, VERSION_AT) {
        Some(1) => {
            let payload = be_u32(seen.head, PAYLOAD_OFFSET_AT).map(|s| u64::from(s) * 512);
            if let Some(size) = payload.and_then(|p| seen.n_bytes.checked_sub(p)) {
                verdict.set_virtual_size(size);
            }
        }
        Some(other) => verdict.fail(
            Check::Version,
            format!("luks version {other} is not supported (only version 1)"),
        ),
        None => verdict.fail(
            Check::Version,
            "luks header is truncated before its version field",
        ),
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
    fn payload_beyond_the_end_has_no_size() {
        let report = inspect(&header(1, 4096));
        assert_eq!(report.virtual_size(), None);
        assert!(report.is_safe());
    }

    #[test]
    fn luks2_fails_version() {
        let report = inspect(&header(2, 0));
        assert!(report.failures().contains_key(&Check::Version));
        assert_eq!(report.virtual_size(), None);
    }
}
