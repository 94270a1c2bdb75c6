//! VDI (VirtualBox): a 512-byte little-endian header with the signature at
//! 0x40 and the disk size at 0x170.
//!
//! Match rule as qemu's probe, not oslo's: the signature alone makes the
//! file VDI. oslo needs the complete 512-byte header and called a shorter
//! one raw, while qemu (which reads zeros past the end of a file) probes and
//! opens it as VDI; a header shorter than 512 bytes is reported as VDI and
//! fails `structure` (incomplete, as oslo says). Stricter than oslo: undo
//! and differencing images (image types 3 and 4, which read from a parent)
//! fail `backing_file`, and unknown image types fail `structure`.
//!
//! This module reads only the captured head.

use super::capture::{le_u32, le_u64};
use super::{Check, Format, Seen, Verdict};

const HEADER_LEN: usize = 512;
const SIGNATURE_AT: usize = 0x40;
const SIGNATURE: u32 = 0xBEDA_107F;
const IMAGE_TYPE_AT: usize = 0x4C;
const DISK_SIZE_AT: usize = 0x170;

/// The VDI verdict, when the stream holds the VDI signature at 0x40.
pub(super) fn inspect(seen: &Seen<'_>) -> Option<Verdict> {
    if le_u32(seen.head, SIGNATURE_AT) != Some(SIGNATURE) {
        return None;
    }
    let mut verdict = Verdict::new(Format::Vdi);
    if seen.head.len() < HEADER_LEN {
        verdict.truncated("vdi header", HEADER_LEN as u64, seen.n_bytes);
    }
    match le_u32(seen.head, IMAGE_TYPE_AT) {
        Some(1 | 2) => {}
        Some(kind @ (3 | 4)) => verdict.fail(
            Check::BackingFile,
            format!("vdi image type {kind} (undo or differencing) reads from a parent image"),
        ),
        Some(other) => verdict.fail(Check::Structure, format!("unknown vdi image type {other}")),
        None => {} // the header is truncated: `structure` already failed
    }
    if let Some(size) = le_u64(seen.head, DISK_SIZE_AT) {
        verdict.set_virtual_size(size);
    }
    Some(verdict)
}

#[cfg(test)]
mod tests {
    use crate::inspect::tests::inspect;
    use crate::inspect::{Check, Format};

    fn header(kind: u32) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[0x40..0x44].copy_from_slice(&0xBEDA_107Fu32.to_le_bytes());
        h[0x4C..0x50].copy_from_slice(&kind.to_le_bytes());
        h[0x170..0x178].copy_from_slice(&(1u64 << 30).to_le_bytes());
        h
    }

    #[test]
    fn dynamic_vdi_is_safe_with_its_size() {
        let report = inspect(&header(1));
        assert_eq!(report.format(), Some(Format::Vdi));
        assert_eq!(report.virtual_size(), Some(1 << 30));
        assert!(report.is_safe());
    }

    #[test]
    fn differencing_vdi_is_unsafe() {
        assert!(
            inspect(&header(4))
                .failures()
                .contains_key(&Check::BackingFile)
        );
    }

    #[test]
    fn a_short_vdi_header_is_vdi_and_incomplete() {
        // issue 8: qemu probes and opens the first 511 bytes as VDI; oslo
        // (and portcullis before) called them raw and safe.
        let report = inspect(&header(1)[..511]);
        assert_eq!(report.format(), Some(Format::Vdi));
        assert_eq!(report.virtual_size(), Some(1 << 30));
        assert!(report.failures()[&Check::Structure].contains("truncated"));
        let report = inspect(&header(1)[..0x44]);
        assert_eq!(report.format(), Some(Format::Vdi));
        assert_eq!(report.virtual_size(), None);
        assert!(report.failures().contains_key(&Check::Structure));
        // Without the whole signature it is not VDI.
        assert_eq!(inspect(&header(1)[..0x43]).format(), Some(Format::Raw));
    }
}
