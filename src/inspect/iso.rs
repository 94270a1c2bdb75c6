//! ISO 9660 / UDF optical discs: a volume descriptor at 32 KiB (sector 16
//! of 2048 bytes) whose identifier is `CD001`, `NSR02` or `NSR03`.
//!
//! Same rule as oslo: 34 KiB must be present; the virtual size is the
//! primary volume descriptor's volume space size × logical block size
//! (unknown for other descriptor types). ISO has no safety check; a qcow2
//! or VMDK header hidden in its system area makes a second match, which the
//! report turns into `polyglot`.
//!
//! This module reads only the captured head.

use super::capture::{le_u16, le_u32};
use super::{Format, Seen, Verdict};

const DESCRIPTOR_AT: usize = 32 * 1024;
const NEEDED: usize = DESCRIPTOR_AT + 2048;
const IDENTIFIERS: [&[u8]; 3] = [b"CD001", b"NSR02", b"NSR03"];
const PRIMARY_VOLUME_DESCRIPTOR: u8 = 1;

/// The ISO verdict, when the stream holds an ISO/UDF volume descriptor at
/// 32 KiB.
pub(super) fn inspect(seen: &Seen<'_>) -> Option<Verdict> {
    if seen.head.len() < NEEDED {
        return None;
    }
    let descriptor = seen.head.get(DESCRIPTOR_AT..NEEDED)?;
    let identifier = descriptor.get(1..6)?;
    if !IDENTIFIERS.contains(&identifier) {
        return None;
    }
    let mut verdict = Verdict::new(Format::Iso);
    if descriptor.first() == Some(&PRIMARY_VOLUME_DESCRIPTOR) {
        let blocks = le_u32(descriptor, 80).map(u64::from);
        let block_size = le_u16(descriptor, 128).map(u64::from);
        if let Some(size) = blocks
            .zip(block_size)
            .map(|(b, s)| b * s)
            .filter(|&s| s > 0)
        {
            verdict.set_virtual_size(size);
        }
    }
    Some(verdict)
}

#[cfg(test)]
mod tests {
    use crate::inspect::Format;
    use crate::inspect::tests::inspect;

    #[test]
    fn primary_volume_descriptor_gives_the_size() {
        let mut image = vec![0u8; 40 * 1024];
        let pvd = &mut image[32 * 1024..];
        pvd[0] = 1;
        pvd[1..6].copy_from_slice(b"CD001");
        pvd[80..84].copy_from_slice(&20u32.to_le_bytes());
        pvd[128..130].copy_from_slice(&2048u16.to_le_bytes());
        let report = inspect(&image);
        assert_eq!(report.format(), Some(Format::Iso));
        assert_eq!(report.virtual_size(), Some(40 * 1024));
        assert!(report.is_safe());
        assert_eq!(inspect(&image[..34 * 1024 - 1]).format(), Some(Format::Raw));
    }
}
