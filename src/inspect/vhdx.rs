//! VHDX (Hyper-V): `vhdxfile` at 0, a region table at 192 KiB pointing to
//! the metadata region, whose table points to the metadata items.
//!
//! Read in the stream's order: at byte 256 KiB the region table (checked
//! like qemu: signature, CRC-32C, entry count) gives the metadata region;
//! at the end of its 64 KiB table the items are located, and the Virtual
//! Disk Size and File Parameters items (8 bytes each) are captured.
//!
//! Stricter than oslo: a VHDX whose region table or metadata table cannot be
//! read fails `structure` instead of being "safe with size 0"; a
//! differencing disk (File Parameters `HasParent`, or a Parent Locator item)
//! fails `backing_file`; an unknown region or metadata item marked required
//! fails `unknown_features`; the size no longer depends on the read size
//! (oslo lost it when the item arrived in the same chunk as the table).
//!
//! This module owns the VHDX table captures; it must not hold more than the
//! two 64 KiB tables and two 8-byte items.

use super::capture::{Region, le_u16, le_u32, le_u64};
use super::{Check, Format, Seen, Verdict};

const MAGIC: &[u8] = b"vhdxfile";
/// Decide about the magic once every format's magic is in.
const MAGIC_EVENT: u64 = 64;
const REGION_TABLE_AT: u64 = 192 * 1024;
const TABLE_LEN: usize = 64 * 1024;
/// The header section: regions may not start inside it.
const HEADER_SECTION: u64 = 1 << 20;
const REGION_SIGNATURE: u32 = 0x6967_6572; // "regi"
const METADATA_SIGNATURE: &[u8] = b"metadata";
const MAX_ENTRIES: u32 = 2047;
const ITEM_LEN: usize = 8;
/// The most this parser holds: a table, or two items.
pub(super) const MAX_HELD: usize = TABLE_LEN;
const HAS_PARENT: u32 = 1 << 1;
const REQUIRED_REGION: u32 = 1;
const REQUIRED_ITEM: u32 = 1 << 2;

/// A GUID as VHDX stores it (first three fields little-endian).
type Guid = [u8; 16];

const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

const METADATA_REGION: Guid = guid(
    0x8B7C_A206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);
const BAT_REGION: Guid = guid(
    0x2DC2_7766,
    0xF623,
    0x4200,
    [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08],
);
const FILE_PARAMETERS: Guid = guid(
    0xCAA1_6737,
    0xFA36,
    0x4D43,
    [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B],
);
const VIRTUAL_DISK_SIZE: Guid = guid(
    0x2FA5_4224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);
const PAGE_83_DATA: Guid = guid(
    0xBECA_12AB,
    0xB2E6,
    0x4523,
    [0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46],
);
const LOGICAL_SECTOR_SIZE: Guid = guid(
    0x8141_BF1D,
    0xA96F,
    0x4709,
    [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F],
);
const PHYSICAL_SECTOR_SIZE: Guid = guid(
    0xCDA3_48C7,
    0x445D,
    0x4471,
    [0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56],
);
const PARENT_LOCATOR: Guid = guid(
    0xA8D3_5F2D,
    0xB30B,
    0x454D,
    [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C],
);

/// Where the VHDX parser stands in the stream.
#[derive(Debug, Clone)]
enum Stage {
    /// Waiting for byte 64 to see the magic.
    Magic,
    /// Capturing the region table (192 KiB .. 256 KiB).
    RegionTable { table: Region },
    /// Capturing the metadata table at the start of the metadata region.
    MetadataTable { region_length: u64, table: Region },
    /// Capturing the items the verdict needs.
    Items {
        size: Option<Region>,
        parameters: Option<Region>,
    },
    /// The tables could not be read; the reason fails `structure`.
    Unreadable(String),
    /// Not a VHDX.
    NotVhdx,
}

/// The VHDX parser's streaming state.
#[derive(Debug, Clone)]
pub(super) struct Stream {
    stage: Stage,
    /// Failures found in the tables (parents, unknown required entries).
    findings: Vec<(Check, String)>,
}

impl Stream {
    pub(super) fn new() -> Stream {
        Stream {
            stage: Stage::Magic,
            findings: Vec::new(),
        }
    }

    /// The next stream position at which this parser decides something.
    pub(super) fn next_event(&self) -> Option<u64> {
        match &self.stage {
            Stage::Magic => Some(MAGIC_EVENT),
            Stage::RegionTable { table } | Stage::MetadataTable { table, .. } => Some(table.end()),
            _ => None,
        }
    }

    /// Parses what is complete once the stream reaches `position`.
    pub(super) fn at_position(&mut self, position: u64, head: &Region) {
        let stage = std::mem::replace(&mut self.stage, Stage::NotVhdx);
        self.stage = match stage {
            Stage::Magic if position >= MAGIC_EVENT => {
                if head.data().starts_with(MAGIC) {
                    Stage::RegionTable {
                        table: Region::new(REGION_TABLE_AT, TABLE_LEN),
                    }
                } else {
                    Stage::NotVhdx
                }
            }
            Stage::RegionTable { table } if position >= table.end() => self
                .metadata_table(&table)
                .unwrap_or_else(Stage::Unreadable),
            Stage::MetadataTable {
                region_length,
                table,
            } if position >= table.end() => self
                .items(&table, region_length, position)
                .unwrap_or_else(Stage::Unreadable),
            other => other,
        };
    }

    /// Copies table and item bytes out of the stream.
    pub(super) fn feed(&mut self, position: u64, bytes: &[u8]) {
        for region in self.regions_mut() {
            region.feed(position, bytes);
        }
    }

    /// The stream position up to which a table or item still wants bytes.
    pub(super) fn wants_until(&self) -> u64 {
        self.regions().map(Region::wants_until).max().unwrap_or(0)
    }

    /// Bytes held in memory.
    pub(super) fn held(&self) -> usize {
        self.regions().map(Region::held).sum()
    }

    fn regions(&self) -> impl Iterator<Item = &Region> {
        let (first, second) = match &self.stage {
            Stage::RegionTable { table } | Stage::MetadataTable { table, .. } => {
                (Some(table), None)
            }
            Stage::Items { size, parameters } => (size.as_ref(), parameters.as_ref()),
            _ => (None, None),
        };
        first.into_iter().chain(second)
    }

    fn regions_mut(&mut self) -> impl Iterator<Item = &mut Region> {
        let (first, second) = match &mut self.stage {
            Stage::RegionTable { table } | Stage::MetadataTable { table, .. } => {
                (Some(table), None)
            }
            Stage::Items { size, parameters } => (size.as_mut(), parameters.as_mut()),
            _ => (None, None),
        };
        first.into_iter().chain(second)
    }

    /// Reads the region table; returns the stage capturing the metadata table.
    fn metadata_table(&mut self, table: &Region) -> Result<Stage, String> {
        let bytes = complete(table, "region table")?;
        if le_u32(bytes, 0) != Some(REGION_SIGNATURE) {
            return Err("region table at 192 KiB has no 'regi' signature".to_owned());
        }
        let stored = le_u32(bytes, 4).unwrap_or(0);
        let mut zeroed = bytes.to_vec();
        zeroed[4..8].fill(0);
        let computed = crc32c(&zeroed);
        if stored != computed {
            return Err(format!(
                "region table checksum {stored:#010x} does not match its contents ({computed:#010x})"
            ));
        }
        let count = le_u32(bytes, 8).unwrap_or(0);
        if count > MAX_ENTRIES {
            return Err(format!(
                "region table has {count} entries (at most {MAX_ENTRIES})"
            ));
        }
        let mut metadata = None;
        for index in 0..count as usize {
            let entry = bytes
                .get(16 + 32 * index..16 + 32 * (index + 1))
                .ok_or("region table entry runs past the table")?;
            let id = &entry[..16];
            let offset = le_u64(entry, 16).unwrap_or(0);
            let length = le_u32(entry, 24).unwrap_or(0);
            let required = le_u32(entry, 28).unwrap_or(0) & REQUIRED_REGION != 0;
            if id == METADATA_REGION {
                metadata = Some((offset, length));
            } else if id != BAT_REGION && required {
                self.findings.push((
                    Check::UnknownFeatures,
                    format!("region {} is marked required but unknown", render(id)),
                ));
            }
        }
        let (offset, length) = metadata.ok_or("region table has no metadata region")?;
        if offset < HEADER_SECTION {
            return Err(format!(
                "metadata region at offset {offset} overlaps the 1 MiB header section"
            ));
        }
        if u64::from(length) < TABLE_LEN as u64 {
            return Err(format!(
                "metadata region of {length} bytes cannot hold its table"
            ));
        }
        Ok(Stage::MetadataTable {
            region_length: u64::from(length),
            table: Region::new(offset, TABLE_LEN),
        })
    }

    /// Reads the metadata table; returns the stage capturing the items.
    fn items(
        &mut self,
        table: &Region,
        region_length: u64,
        position: u64,
    ) -> Result<Stage, String> {
        let bytes = complete(table, "metadata table")?;
        if !bytes.starts_with(METADATA_SIGNATURE) {
            return Err(format!(
                "metadata table at offset {} has no 'metadata' signature",
                table.offset()
            ));
        }
        let count = u32::from(le_u16(bytes, 10).unwrap_or(0));
        if count > MAX_ENTRIES {
            return Err(format!(
                "metadata table has {count} entries (at most {MAX_ENTRIES})"
            ));
        }
        let mut size = None;
        let mut parameters = None;
        for index in 0..count as usize {
            let entry = bytes
                .get(32 + 32 * index..32 + 32 * (index + 1))
                .ok_or("metadata table entry runs past the table")?;
            let id: &[u8] = &entry[..16];
            let offset = u64::from(le_u32(entry, 16).unwrap_or(0));
            let length = u64::from(le_u32(entry, 20).unwrap_or(0));
            let flags = le_u32(entry, 24).unwrap_or(0);
            let wanted = if id == VIRTUAL_DISK_SIZE {
                Some(&mut size)
            } else if id == FILE_PARAMETERS {
                Some(&mut parameters)
            } else {
                if id == PARENT_LOCATOR {
                    self.findings.push((
                        Check::BackingFile,
                        "vhdx has a parent locator: it is a differencing disk".to_owned(),
                    ));
                } else if flags & REQUIRED_ITEM != 0
                    && ![PAGE_83_DATA, LOGICAL_SECTOR_SIZE, PHYSICAL_SECTOR_SIZE]
                        .iter()
                        .any(|g| g == id)
                {
                    self.findings.push((
                        Check::UnknownFeatures,
                        format!(
                            "metadata item {} is marked required but unknown",
                            render(id)
                        ),
                    ));
                }
                None
            };
            if let Some(slot) = wanted {
                if length < ITEM_LEN as u64 || offset.saturating_add(length) > region_length {
                    return Err(format!(
                        "metadata item {} at offset {offset} (length {length}) lies outside the \
                         {region_length}-byte metadata region",
                        render(id)
                    ));
                }
                let at = table.offset().saturating_add(offset);
                *slot = Some(Region::starting_at(at, ITEM_LEN, position, table));
            }
        }
        Ok(Stage::Items { size, parameters })
    }

    /// The VHDX verdict at the end of the stream, when the stream is one.
    pub(super) fn verdict(&self, seen: &Seen<'_>) -> Option<Verdict> {
        if !seen.head.starts_with(MAGIC) {
            return None;
        }
        let mut verdict = Verdict::new(Format::Vhdx);
        for (check, reason) in &self.findings {
            verdict.fail(*check, reason.clone());
        }
        let ends = |what: &str, at: u64| {
            format!(
                "the file ends at byte {} before the {what} at offset {at}",
                seen.n_bytes
            )
        };
        match &self.stage {
            Stage::Magic | Stage::NotVhdx => {
                verdict.fail(Check::Structure, ends("region table", REGION_TABLE_AT));
            }
            Stage::RegionTable { table } => {
                verdict.fail(Check::Structure, ends("region table", table.offset()));
            }
            Stage::MetadataTable { table, .. } => {
                verdict.fail(Check::Structure, ends("metadata table", table.offset()));
            }
            Stage::Unreadable(reason) => verdict.fail(Check::Structure, reason.clone()),
            Stage::Items { size, parameters } => {
                match parameters.as_ref().map(|r| (r, item(r))) {
                    Some((_, Some(bytes))) => {
                        if le_u32(bytes, 4).unwrap_or(0) & HAS_PARENT != 0 {
                            verdict.fail(
                                Check::BackingFile,
                                "vhdx file parameters have HasParent set: it is a differencing disk",
                            );
                        }
                    }
                    Some((region, None)) => {
                        verdict.fail(
                            Check::Structure,
                            ends("file parameters item", region.offset()),
                        );
                    }
                    None => verdict.fail(
                        Check::Structure,
                        "metadata table has no file parameters item; cannot rule out a parent",
                    ),
                }
                match size.as_ref().map(|r| (r, item(r))) {
                    Some((_, Some(bytes))) => {
                        if let Some(bytes) = le_u64(bytes, 0) {
                            verdict.set_virtual_size(bytes);
                        }
                    }
                    Some((region, None)) => {
                        verdict.fail(
                            Check::Structure,
                            ends("virtual disk size item", region.offset()),
                        );
                    }
                    None => verdict.fail(
                        Check::Structure,
                        "metadata table has no virtual disk size item",
                    ),
                }
            }
        }
        Some(verdict)
    }
}

/// A complete table's bytes, or why it is not complete.
fn complete<'a>(table: &'a Region, what: &str) -> Result<&'a [u8], String> {
    if table.is_complete() {
        Ok(table.data())
    } else {
        Err(format!(
            "{what} at offset {} could not be captured",
            table.offset()
        ))
    }
}

/// A complete item's bytes.
fn item(region: &Region) -> Option<&[u8]> {
    region.is_complete().then(|| region.data())
}

/// Renders a stored GUID the usual way (for reasons).
fn render(id: &[u8]) -> String {
    let d1 = le_u32(id, 0).unwrap_or(0);
    let d2 = le_u16(id, 4).unwrap_or(0);
    let d3 = le_u16(id, 6).unwrap_or(0);
    let rest: String = id
        .get(8..16)
        .unwrap_or_default()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    format!(
        "{d1:08X}-{d2:04X}-{d3:04X}-{}-{}",
        &rest[..4.min(rest.len())],
        rest.get(4..).unwrap_or_default()
    )
}

/// CRC-32C (Castagnoli), as VHDX checksums its headers and region tables.
fn crc32c(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = i as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &byte in bytes {
        crc = TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::tests::inspect;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn guids_render_as_written() {
        assert_eq!(
            render(&METADATA_REGION),
            "8B7CA206-4790-4B9A-B8FE-575F050F886E"
        );
    }

    const META_AT: usize = 1 << 20;

    /// A minimal VHDX: region table with a metadata region at 1 MiB, whose
    /// table lists file parameters (flags) and virtual disk size items.
    fn vhdx(flags: u32, size: u64, extra: &[(Guid, u32)]) -> Vec<u8> {
        let mut image = vec![0u8; META_AT + 256 * 1024];
        image[..8].copy_from_slice(b"vhdxfile");
        let rt = 192 * 1024;
        image[rt..rt + 4].copy_from_slice(b"regi");
        image[rt + 8..rt + 12].copy_from_slice(&1u32.to_le_bytes());
        image[rt + 16..rt + 32].copy_from_slice(&METADATA_REGION);
        image[rt + 32..rt + 40].copy_from_slice(&(META_AT as u64).to_le_bytes());
        image[rt + 40..rt + 44].copy_from_slice(&(1u32 << 20).to_le_bytes());
        image[rt + 44..rt + 48].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c(&image[rt..rt + 65536]);
        image[rt + 4..rt + 8].copy_from_slice(&crc.to_le_bytes());
        let mt = META_AT;
        image[mt..mt + 8].copy_from_slice(b"metadata");
        let mut entries = vec![(FILE_PARAMETERS, 0u32), (VIRTUAL_DISK_SIZE, 0)];
        entries.extend_from_slice(extra);
        image[mt + 10..mt + 12].copy_from_slice(&(entries.len() as u16).to_le_bytes());
        for (index, (id, item_flags)) in entries.iter().enumerate() {
            let e = mt + 32 + 32 * index;
            image[e..e + 16].copy_from_slice(id);
            let offset = 65536 + 8 * index as u32;
            image[e + 16..e + 20].copy_from_slice(&offset.to_le_bytes());
            image[e + 20..e + 24].copy_from_slice(&8u32.to_le_bytes());
            image[e + 24..e + 28].copy_from_slice(&item_flags.to_le_bytes());
        }
        image[mt + 65536 + 4..mt + 65536 + 8].copy_from_slice(&flags.to_le_bytes());
        image[mt + 65544..mt + 65552].copy_from_slice(&size.to_le_bytes());
        image
    }

    #[test]
    fn minimal_vhdx_is_safe_with_its_size() {
        let report = inspect(&vhdx(0, 1 << 30, &[]));
        assert_eq!(report.format(), Some(Format::Vhdx));
        assert_eq!(report.virtual_size(), Some(1 << 30));
        assert!(report.is_safe(), "{:?}", report.failures());
    }

    #[test]
    fn differencing_vhdx_is_unsafe() {
        let report = inspect(&vhdx(HAS_PARENT, 1 << 30, &[]));
        assert!(report.failures()[&Check::BackingFile].contains("HasParent"));
        let report = inspect(&vhdx(0, 1 << 30, &[(PARENT_LOCATOR, 0)]));
        assert!(report.failures()[&Check::BackingFile].contains("parent locator"));
    }

    #[test]
    fn unknown_required_item_is_an_unknown_feature() {
        let odd = guid(1, 2, 3, [4; 8]);
        let report = inspect(&vhdx(0, 1 << 30, &[(odd, REQUIRED_ITEM)]));
        assert!(report.failures().contains_key(&Check::UnknownFeatures));
        assert!(inspect(&vhdx(0, 1 << 30, &[(odd, 0)])).is_safe());
    }

    #[test]
    fn destroyed_region_table_is_unsafe_not_size_zero() {
        let mut image = vhdx(0, 1 << 30, &[]);
        image[192 * 1024..192 * 1024 + 4].copy_from_slice(b"XXXX");
        let report = inspect(&image);
        assert_eq!(report.format(), Some(Format::Vhdx));
        assert_eq!(report.virtual_size(), None);
        assert!(report.failures()[&Check::Structure].contains("regi"));
        let mut bad_crc = vhdx(0, 1 << 30, &[]);
        bad_crc[192 * 1024 + 40] ^= 1;
        assert!(inspect(&bad_crc).failures()[&Check::Structure].contains("checksum"));
    }

    #[test]
    fn truncated_vhdx_is_unsafe() {
        let image = vhdx(0, 1 << 30, &[]);
        for cut in [8, 100_000, 300_000, META_AT + 1000, META_AT + 65540] {
            let report = inspect(&image[..cut]);
            assert_eq!(report.format(), Some(Format::Vhdx), "{cut}");
            assert!(report.failures().contains_key(&Check::Structure), "{cut}");
        }
    }
}
