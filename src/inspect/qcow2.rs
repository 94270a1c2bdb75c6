//! qcow2 (versions 2 and 3) and legacy QCOW version 1, both reported as
//! `qcow2` as Glance does.
//!
//! Checks, with oslo's names: `backing_file` (a backing file offset, in any
//! version), `data_file` (the external-data-file feature bit, and, stricter
//! than oslo, a data-file header extension without the bit),
//! `unknown_features` (version 3 incompatible features beyond bits 0..3;
//! any version other than 2 or 3). Stricter than oslo: the magic alone makes
//! the file qcow2, however short (oslo needed 512 bytes, so a 511-byte qcow2
//! with a backing file was "raw" to it while qemu followed the backing
//! file); a header too short to check fails `structure`.
//!
//! This module reads only the captured head; it must not trust any offset
//! it has not bounds-checked.

use super::capture::{be_u32, be_u64, quote};
use super::{Check, Format, Seen, Verdict};

const MAGIC: &[u8] = b"QFI\xfb";
const BACKING_OFFSET_AT: usize = 8;
const BACKING_SIZE_AT: usize = 16;
const CLUSTER_BITS_AT: usize = 20;
const SIZE_AT: usize = 24;
const INCOMPATIBLE_AT: usize = 72;
const HEADER_LENGTH_AT: usize = 100;
/// Incompatible feature bits oslo (and we) accept: dirty, corrupt,
/// external data file (checked by `data_file`), compression type.
const KNOWN_INCOMPATIBLE: u64 = 0b1111;
const INCOMPATIBLE_DATA_FILE: u64 = 1 << 2;
/// Header extension types.
const EXT_END: u32 = 0;
const EXT_DATA_FILE: u32 = 0x4441_5441;
/// The largest header length qemu accepts: the largest cluster (2 MiB).
const MAX_HEADER_LENGTH: usize = 1 << 21;
/// qemu reads at most this much of a backing file name.
const MAX_BACKING_NAME: usize = 1023;

/// The qcow2 verdict, when the stream starts with the qcow2/QCOW magic.
pub(super) fn inspect(seen: &Seen<'_>) -> Option<Verdict> {
    if !seen.head.starts_with(MAGIC) {
        return None;
    }
    let mut verdict = Verdict::new(Format::Qcow2);
    let head = seen.head;
    let Some(version) = be_u32(head, 4) else {
        verdict.fail(
            Check::Structure,
            format!(
                "qcow2 header is truncated: the file ends at byte {} before the version field",
                seen.n_bytes
            ),
        );
        return Some(verdict);
    };
    // Version 3 states its header length (104 or more, e.g. 112 with the
    // compression type): a file that ends inside it is incomplete. Lengths
    // out of range are reported by the extension walk.
    let needed = match version {
        1 => 48,
        2 => 72,
        _ => be_u32(head, HEADER_LENGTH_AT)
            .and_then(|length| usize::try_from(length).ok())
            .filter(|length| (104..=MAX_HEADER_LENGTH).contains(length))
            .unwrap_or(104),
    };
    if head.len() < needed {
        verdict.fail(
            Check::Structure,
            format!(
                "qcow2 version {version} header is truncated: the file ends at byte {} of {needed}",
                seen.n_bytes
            ),
        );
    }

    // 1. Backing file: the offset field sits at 8 in every version.
    let backing_offset = be_u64(head, BACKING_OFFSET_AT);
    if let Some(offset) = backing_offset.filter(|&offset| offset != 0) {
        verdict.fail(Check::BackingFile, backing_reason(head, offset));
    }

    // 2. Incompatible features and version.
    let incompatible = be_u64(head, INCOMPATIBLE_AT);
    match (version, incompatible) {
        (2, _) => {}
        (3, Some(bits)) => {
            if bits & INCOMPATIBLE_DATA_FILE != 0 {
                verdict.fail(
                    Check::DataFile,
                    "image has an external data file (incompatible feature bit 2)",
                );
            }
            let unknown = bits & !KNOWN_INCOMPATIBLE;
            if unknown != 0 {
                verdict.fail(
                    Check::UnknownFeatures,
                    format!("unknown incompatible features {unknown:#x}"),
                );
            }
        }
        (3, None) => {} // truncated: `structure` already failed
        (other, _) => verdict.fail(
            Check::UnknownFeatures,
            format!("unsupported qcow2 version {other}"),
        ),
    }

    // 3. Header extensions (versions 2 and 3): a data-file name without the
    //    feature bit still fails, so no reading of the header can reach a
    //    host file.
    if matches!(version, 2 | 3) && head.len() >= needed {
        check_extensions(seen, version, backing_offset.unwrap_or(0), &mut verdict);
    }

    if let Some(size) = be_u64(head, SIZE_AT) {
        verdict.set_virtual_size(size);
    }
    Some(verdict)
}

/// Names the backing file when the head holds its name.
fn backing_reason(head: &[u8], offset: u64) -> String {
    let length = be_u32(head, BACKING_SIZE_AT).unwrap_or(0) as usize;
    let name = usize::try_from(offset)
        .ok()
        .and_then(|at| head.get(at..at.checked_add(length.min(MAX_BACKING_NAME))?));
    match name {
        Some(name) if !name.is_empty() => format!("image has a backing file {}", quote(name)),
        _ => format!("image has a backing file (name at offset {offset})"),
    }
}

/// Walks the header extensions as qemu does (from the header's end to the
/// backing file name or the end of the first cluster).
fn check_extensions(seen: &Seen<'_>, version: u32, backing_offset: u64, verdict: &mut Verdict) {
    let head = seen.head;
    let Some(cluster_bits) = be_u32(head, CLUSTER_BITS_AT) else {
        return;
    };
    if !(9..=21).contains(&cluster_bits) {
        verdict.fail(
            Check::Structure,
            format!("cluster_bits {cluster_bits} is outside 9..=21"),
        );
        return;
    }
    let cluster_size = 1u64 << cluster_bits;
    let start = if version == 2 {
        72
    } else {
        match be_u32(head, HEADER_LENGTH_AT) {
            Some(length) if (104..=cluster_size).contains(&u64::from(length)) => u64::from(length),
            Some(length) => {
                verdict.fail(
                    Check::Structure,
                    format!("header_length {length} is outside 104..={cluster_size}"),
                );
                return;
            }
            None => return,
        }
    };
    let end = if backing_offset == 0 {
        cluster_size
    } else if backing_offset > cluster_size {
        verdict.fail(
            Check::Structure,
            format!("backing file offset {backing_offset} is beyond the first cluster"),
        );
        return;
    } else {
        backing_offset
    };

    let mut at = start;
    while at < end {
        let Some(header) = read_padded(seen, at, 8) else {
            verdict.fail(
                Check::DataFile,
                format!(
                    "header extensions continue past the first {} bytes; \
                     cannot rule out an external data file",
                    head.len()
                ),
            );
            return;
        };
        let kind = be_u32(&header, 0).unwrap_or(EXT_END);
        let length = u64::from(be_u32(&header, 4).unwrap_or(0));
        at += 8;
        if at > end || length > end - at {
            verdict.fail(
                Check::Structure,
                format!(
                    "header extension {kind:#x} at offset {} runs past byte {end}",
                    at - 8
                ),
            );
            return;
        }
        match kind {
            EXT_END => return,
            EXT_DATA_FILE => {
                let name = read_padded(seen, at, usize::try_from(length).unwrap_or(0).min(1023))
                    .unwrap_or_default();
                verdict.fail(
                    Check::DataFile,
                    format!("image names an external data file {}", quote(&name)),
                );
            }
            _ => {}
        }
        at += length.div_ceil(8) * 8;
    }
}

/// `n` bytes at `at`, with zeros past the end of the file (qemu reads them
/// so); `None` when they lie beyond the captured head while the file goes on.
fn read_padded(seen: &Seen<'_>, at: u64, n: usize) -> Option<Vec<u8>> {
    let start = usize::try_from(at).ok()?;
    let stop = start.checked_add(n)?;
    if let Some(bytes) = seen.head.get(start..stop) {
        return Some(bytes.to_vec());
    }
    if seen.head.len() as u64 != seen.n_bytes {
        return None;
    }
    let mut bytes = seen.head.get(start..).unwrap_or_default().to_vec();
    bytes.resize(n, 0);
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use crate::inspect::tests::inspect;
    use crate::inspect::{Check, Format};

    /// A version-3 header of 112 bytes, cluster_bits 16, size 1 MiB.
    fn v3_header() -> Vec<u8> {
        let mut h = vec![0u8; 112];
        h[..4].copy_from_slice(b"QFI\xfb");
        h[4..8].copy_from_slice(&3u32.to_be_bytes());
        h[20..24].copy_from_slice(&16u32.to_be_bytes());
        h[24..32].copy_from_slice(&(1u64 << 20).to_be_bytes());
        h[100..104].copy_from_slice(&112u32.to_be_bytes());
        h
    }

    #[test]
    fn clean_v3_header_is_safe() {
        let report = inspect(&v3_header());
        assert_eq!(report.format(), Some(Format::Qcow2));
        assert_eq!(report.virtual_size(), Some(1 << 20));
        assert!(report.is_safe(), "{:?}", report.failures());
    }

    #[test]
    fn magic_alone_is_qcow2_and_unsafe() {
        let report = inspect(b"QFI\xfb");
        assert_eq!(report.format(), Some(Format::Qcow2));
        assert!(report.failures().contains_key(&Check::Structure));
    }

    #[test]
    fn a_file_ending_inside_the_stated_header_length_is_incomplete() {
        let report = inspect(&v3_header()[..108]);
        assert_eq!(report.format(), Some(Format::Qcow2));
        assert!(report.failures()[&Check::Structure].contains("of 112"));
    }

    #[test]
    fn short_header_with_backing_file_is_caught() {
        let mut h = v3_header();
        h.resize(300, 0);
        h[8..16].copy_from_slice(&200u64.to_be_bytes());
        h[16..20].copy_from_slice(&10u32.to_be_bytes());
        h[200..210].copy_from_slice(b"/etc/hosts");
        let report = inspect(&h);
        assert_eq!(report.format(), Some(Format::Qcow2));
        let reason = &report.failures()[&Check::BackingFile];
        assert!(reason.contains("/etc/hosts"), "{reason}");
    }

    #[test]
    fn data_file_extension_without_the_bit_fails() {
        let mut h = v3_header();
        h.extend_from_slice(&0x4441_5441u32.to_be_bytes());
        h.extend_from_slice(&10u32.to_be_bytes());
        h.extend_from_slice(b"/etc/hosts\0\0\0\0\0\0");
        h.extend_from_slice(&[0; 8]);
        let report = inspect(&h);
        let reason = &report.failures()[&Check::DataFile];
        assert!(reason.contains("/etc/hosts"), "{reason}");
    }

    #[test]
    fn extended_l2_is_an_unknown_feature() {
        let mut h = v3_header();
        h[79] = 0x10;
        let report = inspect(&h);
        assert!(report.failures().contains_key(&Check::UnknownFeatures));
        let mut zstd = v3_header();
        zstd[79] = 0x08;
        assert!(inspect(&zstd).is_safe());
    }

    #[test]
    fn other_versions_are_unknown_features() {
        for version in [1u32, 4] {
            let mut h = v3_header();
            h[4..8].copy_from_slice(&version.to_be_bytes());
            let report = inspect(&h);
            assert!(
                report.failures()[&Check::UnknownFeatures].contains("version"),
                "{version}"
            );
        }
    }

    #[test]
    fn huge_size_is_invalid() {
        let mut h = v3_header();
        h[24..32].copy_from_slice(&u64::MAX.to_be_bytes());
        let report = inspect(&h);
        assert_eq!(report.virtual_size(), None);
        assert!(report.failures().contains_key(&Check::Structure));
    }

    #[test]
    fn extensions_past_the_head_fail_closed() {
        // cluster_bits 21: the extension area may run to 2 MiB; fill it with
        // a long run of unknown extensions that cross the 64 KiB head.
        let mut h = v3_header();
        h[20..24].copy_from_slice(&21u32.to_be_bytes());
        while h.len() < 70_000 {
            h.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            h.extend_from_slice(&1000u32.to_be_bytes());
            h.extend_from_slice(&[0; 1000]);
        }
        let report = inspect(&h);
        assert!(report.failures()[&Check::DataFile].contains("cannot rule out"));
    }
}
