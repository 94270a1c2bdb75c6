//! VHD (Virtual PC / Hyper-V, qemu's `vpc`): dynamic and differencing disks
//! carry a copy of their 512-byte footer at offset 0, then a 1024-byte
//! dynamic disk header and the block allocation table; fixed disks carry the
//! footer only as the last 512 bytes.
//!
//! Stricter than oslo: a fixed VHD is recognised by its trailing footer
//! (oslo called it raw, so Glance refused it as `vhd`); the virtual size is
//! the footer's current size (oslo used the original size, which stays
//! behind after a resize); a differencing disk (disk type 4, with a parent)
//! fails `backing_file`. A stream that ends inside the footer, the dynamic
//! disk header or the block allocation table fails `structure`: oslo calls an
//! incomplete footer unsafe, and qemu refuses the other two ("Invalid header
//! magic", "free_data_block_offset points after the end of file"), where
//! portcullis used to call the first 511 bytes of a dynamic VHD safe.
//!
//! This module reads only the captured head and tail, and the stream length.

use super::capture::{be_u32, be_u64};
use super::{Check, Format, Seen, Verdict};

const COOKIE: &[u8] = b"conectix";
const FOOTER_LEN: usize = 512;
const DATA_OFFSET_AT: usize = 16;
const CURRENT_SIZE_AT: usize = 48;
const DISK_TYPE_AT: usize = 60;
const FIXED: u32 = 2;
const DYNAMIC: u32 = 3;
const DIFFERENCING: u32 = 4;
/// The dynamic disk header: cookie, then (big-endian) the table offset at
/// 16 and the number of table entries at 28.
const DYNAMIC_COOKIE: &[u8] = b"cxsparse";
const DYNAMIC_HEADER_LEN: u64 = 1024;
const TABLE_OFFSET_AT: usize = 16;
const MAX_TABLE_ENTRIES_AT: usize = 28;
const SECTOR: u64 = 512;

/// The VHD verdict, when the stream starts with a VHD footer copy or ends
/// with a VHD footer.
pub(super) fn inspect(seen: &Seen<'_>) -> Option<Verdict> {
    let at_head = seen.head.starts_with(COOKIE);
    let footer: &[u8] = if at_head {
        seen.head.get(..FOOTER_LEN).unwrap_or(seen.head)
    } else {
        let start = seen.tail.len().checked_sub(FOOTER_LEN)?;
        let trailing = seen.tail.get(start..)?;
        if !trailing.starts_with(COOKIE) {
            return None;
        }
        trailing
    };
    let mut verdict = Verdict::new(Format::Vhd);
    if footer.len() < FOOTER_LEN {
        verdict.truncated("vhd footer", FOOTER_LEN as u64, seen.n_bytes);
    }
    let disk_type = be_u32(footer, DISK_TYPE_AT);
    match disk_type {
        Some(FIXED | DYNAMIC) => {}
        Some(DIFFERENCING) => verdict.fail(
            Check::BackingFile,
            "vhd is a differencing disk (disk type 4): it reads from a parent image",
        ),
        Some(other) => verdict.fail(Check::Structure, format!("unknown vhd disk type {other}")),
        None => {} // the footer is truncated: `structure` already failed
    }
    // Dynamic and differencing disks keep a footer copy at 0, then their
    // dynamic disk header and block allocation table.
    if at_head && footer.len() == FOOTER_LEN && matches!(disk_type, Some(DYNAMIC | DIFFERENCING)) {
        check_dynamic_header(seen, footer, &mut verdict);
    }
    if let Some(size) = be_u64(footer, CURRENT_SIZE_AT) {
        verdict.set_virtual_size(size);
    }
    Some(verdict)
}

/// A dynamic or differencing disk needs its dynamic disk header (at the
/// footer's data offset) and its whole block allocation table, as qemu's
/// `vpc` driver does before it opens the image.
fn check_dynamic_header(seen: &Seen<'_>, footer: &[u8], verdict: &mut Verdict) {
    let Some(offset) = be_u64(footer, DATA_OFFSET_AT) else {
        return;
    };
    let Some(end) = offset.checked_add(DYNAMIC_HEADER_LEN) else {
        verdict.fail(
            Check::Structure,
            format!("vhd dynamic disk header offset {offset} is out of range"),
        );
        return;
    };
    if end > seen.n_bytes {
        verdict.truncated("vhd dynamic disk header", end, seen.n_bytes);
        return;
    }
    // Writers put the header right after the footer copy (offset 512); one
    // beyond the captured head cannot be checked, so it fails closed.
    let header = usize::try_from(offset)
        .ok()
        .and_then(|start| seen.head.get(start..start + DYNAMIC_HEADER_LEN as usize));
    let Some(header) = header else {
        verdict.fail(
            Check::Structure,
            format!(
                "vhd dynamic disk header at byte {offset} lies beyond the first {} bytes the inspector reads",
                seen.head.len()
            ),
        );
        return;
    };
    if !header.starts_with(DYNAMIC_COOKIE) {
        verdict.fail(
            Check::Structure,
            format!("vhd dynamic disk header at byte {offset} has no cxsparse cookie"),
        );
        return;
    }
    let table_offset = be_u64(header, TABLE_OFFSET_AT).unwrap_or(0);
    let entries = u64::from(be_u32(header, MAX_TABLE_ENTRIES_AT).unwrap_or(0));
    // qemu: free_data_block_offset = ROUND_UP(bat_offset + entries * 4, 512)
    // must lie within the file.
    let table_end = entries
        .checked_mul(4)
        .and_then(|len| table_offset.checked_add(len))
        .and_then(|end| end.checked_next_multiple_of(SECTOR));
    match table_end {
        Some(end) if end <= seen.n_bytes => {}
        Some(end) => verdict.truncated("vhd block allocation table", end, seen.n_bytes),
        None => verdict.fail(
            Check::Structure,
            format!(
                "vhd block allocation table ({entries} entries at byte {table_offset}) is out of range"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::inspect::tests::inspect;
    use crate::inspect::{Check, Format};

    fn footer(disk_type: u32, original: u64, current: u64) -> Vec<u8> {
        let mut f = vec![0u8; 512];
        f[..8].copy_from_slice(b"conectix");
        f[16..24].copy_from_slice(&512u64.to_be_bytes());
        f[40..48].copy_from_slice(&original.to_be_bytes());
        f[48..56].copy_from_slice(&current.to_be_bytes());
        f[60..64].copy_from_slice(&disk_type.to_be_bytes());
        f
    }

    /// A dynamic (or differencing) disk as qemu lays it out: footer copy,
    /// dynamic disk header at 512, a one-entry table at 1536, footer.
    fn dynamic(disk_type: u32, original: u64, current: u64) -> Vec<u8> {
        let mut image = footer(disk_type, original, current);
        let mut header = vec![0u8; 1024];
        header[..8].copy_from_slice(b"cxsparse");
        header[16..24].copy_from_slice(&1536u64.to_be_bytes());
        header[28..32].copy_from_slice(&1u32.to_be_bytes());
        image.extend(header);
        image.extend([0xFF; 4]);
        image.resize(2048, 0);
        image.extend(footer(disk_type, original, current));
        image
    }

    #[test]
    fn fixed_vhd_is_found_by_its_trailing_footer() {
        let mut image = vec![0u8; 4096];
        image.extend(footer(2, 4096, 4096));
        let report = inspect(&image);
        assert_eq!(report.format(), Some(Format::Vhd));
        assert_eq!(report.virtual_size(), Some(4096));
        assert!(report.is_safe());
    }

    #[test]
    fn size_is_the_current_size() {
        let report = inspect(&dynamic(3, 1 << 20, 2 << 20));
        assert_eq!(report.virtual_size(), Some(2 << 20));
        assert!(report.is_safe(), "{:?}", report.failures());
    }

    #[test]
    fn differencing_vhd_is_unsafe() {
        let report = inspect(&dynamic(4, 1 << 20, 1 << 20));
        assert!(report.failures().contains_key(&Check::BackingFile));
        assert!(!report.failures().contains_key(&Check::Structure));
    }

    #[test]
    fn bare_cookie_is_vhd_and_unsafe() {
        let report = inspect(b"conectix");
        assert_eq!(report.format(), Some(Format::Vhd));
        assert!(report.failures().contains_key(&Check::Structure));
    }

    #[test]
    fn a_truncated_dynamic_vhd_is_never_safe() {
        // issue 8: the first 511 bytes of a dynamic VHD were "safe".
        let image = dynamic(3, 1 << 20, 1 << 20);
        for cut in [64, 511, 512, 1000, 1535, 1536, 1537] {
            let report = inspect(&image[..cut]);
            assert_eq!(report.format(), Some(Format::Vhd), "cut {cut}");
            let reason = report.failures().get(&Check::Structure);
            assert!(
                reason.is_some_and(|r| r.contains("truncated")),
                "cut {cut}: {:?}",
                report.failures()
            );
        }
        // The table ends at 1540, rounded up to the sector: 2048 bytes suffice.
        assert!(inspect(&image[..2048]).is_safe());
    }

    #[test]
    fn a_dynamic_header_without_its_cookie_fails_structure() {
        let mut image = dynamic(3, 1 << 20, 1 << 20);
        image[512..520].copy_from_slice(b"xxxxxxxx");
        let report = inspect(&image);
        assert!(report.failures()[&Check::Structure].contains("cxsparse"));
        let mut far = dynamic(3, 1 << 20, 1 << 20);
        far[16..24].copy_from_slice(&(1u64 << 20).to_be_bytes());
        far.resize(2 << 20, 0);
        let report = inspect(&far);
        assert!(report.failures()[&Check::Structure].contains("beyond"));
    }
}
