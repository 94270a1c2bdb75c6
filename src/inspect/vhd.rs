//! VHD (Virtual PC / Hyper-V, qemu's `vpc`): dynamic and differencing disks
//! carry a copy of their 512-byte footer at offset 0; fixed disks carry it
//! only as the last 512 bytes.
//!
//! Stricter than oslo: a fixed VHD is recognised by its trailing footer
//! (oslo called it raw, so Glance refused it as `vhd`); the virtual size is
//! the footer's current size (oslo used the original size, which stays
//! behind after a resize); a differencing disk (disk type 4, with a parent)
//! fails `backing_file`; a footer too short to read fails `structure`.
//!
//! This module reads only the captured head and tail.

use super::capture::{be_u32, be_u64};
use super::{Check, Format, Seen, Verdict};

const COOKIE: &[u8] = b"conectix";
const FOOTER_LEN: usize = 512;
const CURRENT_SIZE_AT: usize = 48;
const DISK_TYPE_AT: usize = 60;
const FIXED: u32 = 2;
const DYNAMIC: u32 = 3;
const DIFFERENCING: u32 = 4;

/// The VHD verdict, when the stream starts with a VHD footer copy or ends
/// with a VHD footer.
pub(super) fn inspect(seen: &Seen<'_>) -> Option<Verdict> {
    let footer: &[u8] = if seen.head.starts_with(COOKIE) {
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
    match be_u32(footer, DISK_TYPE_AT) {
        Some(FIXED | DYNAMIC) => {}
        Some(DIFFERENCING) => verdict.fail(
            Check::BackingFile,
            "vhd is a differencing disk (disk type 4): it reads from a parent image",
        ),
        Some(other) => verdict.fail(Check::Structure, format!("unknown vhd disk type {other}")),
        None => verdict.fail(
            Check::Structure,
            format!(
                "vhd footer is truncated: the file ends at byte {} of {FOOTER_LEN}",
                seen.n_bytes
            ),
        ),
    }
    if let Some(size) = be_u64(footer, CURRENT_SIZE_AT) {
        verdict.set_virtual_size(size);
    }
    Some(verdict)
}

#[cfg(test)]
mod tests {
    use crate::inspect::tests::inspect;
    use crate::inspect::{Check, Format};

    fn footer(disk_type: u32, original: u64, current: u64) -> Vec<u8> {
        let mut f = vec![0u8; 512];
        f[..8].copy_from_slice(b"conectix");
        f[40..48].copy_from_slice(&original.to_be_bytes());
        f[48..56].copy_from_slice(&current.to_be_bytes());
        f[60..64].copy_from_slice(&disk_type.to_be_bytes());
        f
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
        let mut image = footer(3, 1 << 20, 2 << 20);
        image.resize(4096, 0);
        assert_eq!(inspect(&image).virtual_size(), Some(2 << 20));
    }

    #[test]
    fn differencing_vhd_is_unsafe() {
        let mut image = footer(4, 1 << 20, 1 << 20);
        image.resize(4096, 0);
        let report = inspect(&image);
        assert!(report.failures().contains_key(&Check::BackingFile));
    }

    #[test]
    fn bare_cookie_is_vhd_and_unsafe() {
        let report = inspect(b"conectix");
        assert_eq!(report.format(), Some(Format::Vhd));
        assert!(report.failures().contains_key(&Check::Structure));
    }
}
