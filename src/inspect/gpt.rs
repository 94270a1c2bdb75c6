//! gpt: any disk whose first sector ends in the MBR signature 0x55AA (a
//! classic MBR or a GPT protective MBR), as oslo names it.
//!
//! The `mbr` check is oslo's: boot flags 0x00/0x80, at least one partition,
//! and a protective (0xEE) entry must start at CHS 0/0/2, LBA 1 and be the
//! only partition (no hybrid MBR). Virtual size is the stream's length.
//!
//! FAT file systems end their boot sector in 0x55AA too. oslo excludes them
//! only with exactly two FATs and media byte 0xF8; we exclude any plausible
//! FAT volume boot record (a jump, a valid sector size, one or two FATs, a
//! valid media byte), so a one-FAT or floppy-media FAT image is raw rather
//! than a "gpt" refused for its garbage partition table.
//!
//! This module reads only the captured head; it does not read the GPT
//! header or partition array.

use super::capture::{le_u16, le_u32};
use super::{Check, Format, Seen, Verdict};

const SECTOR: usize = 512;
const PARTITIONS_AT: usize = 446;
const PROTECTIVE: u8 = 0xEE;

/// The gpt verdict, when the first sector carries the MBR signature and is
/// not a FAT boot sector.
pub(super) fn inspect(seen: &Seen<'_>) -> Option<Verdict> {
    let sector = seen.head.get(..SECTOR)?;
    if sector.get(510..512) != Some(&[0x55, 0xAA][..]) || is_fat_boot_sector(sector) {
        return None;
    }
    let mut verdict = Verdict::new(Format::Gpt);
    if let Err(reason) = check_partitions(sector) {
        verdict.fail(Check::Mbr, reason);
    }
    verdict.set_virtual_size(seen.n_bytes);
    Some(verdict)
}

/// Whether the sector looks like a FAT volume boot record (BIOS parameter
/// block) rather than a master boot record.
fn is_fat_boot_sector(sector: &[u8]) -> bool {
    let jump = matches!(sector, [0xEB, _, 0x90, ..] | [0xE9, ..]);
    let bytes_per_sector = le_u16(sector, 11).unwrap_or(0);
    let sectors_per_cluster = sector.get(13).copied().unwrap_or(0);
    let reserved_sectors = le_u16(sector, 14).unwrap_or(0);
    let fats = sector.get(16).copied().unwrap_or(0);
    let media = sector.get(21).copied().unwrap_or(0);
    jump && matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        && sectors_per_cluster.is_power_of_two()
        && reserved_sectors >= 1
        && matches!(fats, 1 | 2)
        && (media == 0xF0 || media >= 0xF8)
}

/// oslo's partition-table check; the first failure wins.
fn check_partitions(sector: &[u8]) -> Result<(), String> {
    let mut partitions = Vec::new();
    let mut protective = false;
    for index in 0..4 {
        let at = PARTITIONS_AT + 16 * index;
        let entry = sector
            .get(at..at + 16)
            .ok_or("partition table is truncated")?;
        let boot = entry[0];
        let start_chs = &entry[1..4];
        let kind = entry[4];
        let start_lba = le_u32(entry, 8).unwrap_or(0);
        if boot != 0x00 && boot != 0x80 {
            return Err(format!(
                "partition {index} has invalid boot flag {boot:#04x}"
            ));
        }
        if kind != 0 {
            partitions.push(index);
        }
        if kind == PROTECTIVE {
            protective = true;
            if start_chs != [0x00, 0x02, 0x00] {
                return Err(format!(
                    "protective partition {index} has invalid start CHS"
                ));
            }
            if start_lba != 1 {
                return Err(format!(
                    "protective partition {index} starts at LBA {start_lba}, not 1"
                ));
            }
        }
    }
    if protective && partitions != [0] {
        return Err("protective MBR defines other partitions (hybrid MBR)".to_owned());
    }
    if partitions.is_empty() {
        return Err("MBR defines no partitions".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::inspect::tests::inspect;
    use crate::inspect::{Check, Format};

    fn mbr(entries: &[(usize, [u8; 16])]) -> Vec<u8> {
        let mut s = vec![0u8; 4096];
        for (index, entry) in entries {
            s[446 + 16 * index..446 + 16 * index + 16].copy_from_slice(entry);
        }
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    const PROTECTIVE: [u8; 16] = [
        0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0, 0xFF, 0x0F, 0, 0,
    ];
    const LINUX: [u8; 16] = [
        0x80, 0, 0x21, 0, 0x83, 0xFE, 0xFF, 0xFF, 0, 8, 0, 0, 0, 0x10, 0, 0,
    ];

    #[test]
    fn protective_mbr_is_safe_gpt() {
        let report = inspect(&mbr(&[(0, PROTECTIVE)]));
        assert_eq!(report.format(), Some(Format::Gpt));
        assert_eq!(report.virtual_size(), Some(4096));
        assert!(report.is_safe(), "{:?}", report.failures());
        assert!(inspect(&mbr(&[(0, LINUX)])).is_safe());
    }

    #[test]
    fn hybrid_and_empty_mbrs_fail() {
        let hybrid = inspect(&mbr(&[(0, PROTECTIVE), (1, LINUX)]));
        assert!(hybrid.failures()[&Check::Mbr].contains("hybrid"));
        assert!(inspect(&mbr(&[])).failures().contains_key(&Check::Mbr));
        let mut bad_boot = LINUX;
        bad_boot[0] = 0x01;
        assert!(
            inspect(&mbr(&[(0, bad_boot)]))
                .failures()
                .contains_key(&Check::Mbr)
        );
    }

    #[test]
    fn fat_boot_sectors_are_not_gpt() {
        for (fats, media) in [(2u8, 0xF8u8), (1, 0xF8), (1, 0xF0), (2, 0xF0)] {
            let mut s = mbr(&[]);
            s[..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
            s[11..13].copy_from_slice(&512u16.to_le_bytes());
            s[13] = 4;
            s[14..16].copy_from_slice(&1u16.to_le_bytes());
            s[16] = fats;
            s[21] = media;
            assert_eq!(inspect(&s).format(), Some(Format::Raw), "{fats} {media:#x}");
        }
    }
}
