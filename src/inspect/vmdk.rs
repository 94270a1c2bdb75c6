//! VMDK: hosted sparse extents (`KDMV` header, embedded text descriptor at
//! sector 1, optionally a stream-optimized footer at the end) and text-only
//! descriptor files.
//!
//! The `descriptor` check is oslo's: the create type must be
//! monolithicSparse or streamOptimized (this is what refuses flat and
//! split extents that name host files, CVE-2022-47951), every line must be a
//! comment, a `ddb` line, a `key=value` header field or an extent line, no
//! extent may contain `/`, and there must be at least one extent. The
//! `footer` check is oslo's too (the footer repeats the header's magic,
//! version and descriptor location; valid markers), plus the footer's
//! capacity must equal the header's, because qemu takes it from the footer.
//!
//! Stricter than oslo:
//! - a text descriptor file is always unsafe: flat types as in oslo, and
//!   sparse types too (qemu refuses them, oslo called them safe and then
//!   failed to size them);
//! - a descriptor with `parentFileNameHint` fails `backing_file`: qemu opens
//!   that path as a backing VMDK even for monolithicSparse images, which
//!   oslo's line check lets through;
//! - text detection reads up to 1 MiB − 1 of the stream, not "the first
//!   chunk", so it no longer depends on the read size;
//! - a sparse header with a bad version or descriptor location matches
//!   vmdk and fails `descriptor` (oslo dropped the inspector mid-stream);
//! - a sparse extent shorter than its metadata (the header's `overHead`)
//!   fails `structure`, as qemu refuses it.
//!
//! This module owns the VMDK descriptor capture; it must not keep more than
//! one descriptor (1 MiB − 1).

use super::capture::{Region, le_u32, le_u64, quote};
use super::{Check, Format, Seen, Verdict};

const MAGIC: &[u8] = b"KDMV";
/// Bytes of the sparse header the descriptor location depends on.
const SPARSE_HEADER_LEN: u64 = 64;
/// Where the text probe looks: the first 512 bytes must be text.
const TEXT_PROBE_LEN: u64 = 512;
/// Files shorter than this are never text descriptors (as oslo).
const TEXT_MIN_LEN: usize = 64;
/// qemu's (and oslo's) descriptor cap.
const DESCRIPTOR_MAX: usize = (1 << 20) - 1;
/// The most this parser holds: one descriptor.
pub(super) const MAX_HELD: usize = DESCRIPTOR_MAX;
const DESCRIPTOR_AT: u64 = 512;
/// `overHead`: the sector where grains start, u64 LE after the 64 bytes above.
const GRAIN_OFFSET_AT: usize = 64;
const GD_AT_END: u64 = u64::MAX;
const SECTOR: usize = 512;
const FOOTER_LEN: usize = 3 * SECTOR;
const MARKER_EOS: u32 = 0;
const MARKER_FOOTER: u32 = 3;
const SPARSE_TYPES: [&str; 2] = ["monolithicsparse", "streamoptimized"];
const EXTENT_ACCESS: [&str; 3] = ["rw", "rdonly", "noaccess"];

/// The fields of a hosted sparse extent header that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SparseHeader {
    version: u32,
    capacity: u64,
    descriptor_sector: u64,
    descriptor_sectors: u64,
    gd_offset: u64,
}

impl SparseHeader {
    /// Parses the 64 header bytes at the start of `bytes`.
    fn parse(bytes: &[u8]) -> Option<SparseHeader> {
        Some(SparseHeader {
            version: le_u32(bytes, 4)?,
            capacity: le_u64(bytes, 12)?,
            descriptor_sector: le_u64(bytes, 28)?,
            descriptor_sectors: le_u64(bytes, 36)?,
            gd_offset: le_u64(bytes, 56)?,
        })
    }
}

/// Where the VMDK parser stands in the stream.
#[derive(Debug, Clone)]
enum Stage {
    /// Waiting for byte 64, when a sparse header is complete.
    Header,
    /// No sparse magic: waiting for byte 512 to see whether the file is text.
    TextProbe,
    /// A sparse header; its descriptor is captured (or its location was
    /// refused, with the reason).
    Sparse {
        header: SparseHeader,
        descriptor: Result<Region, String>,
    },
    /// The file starts with text: it may be a descriptor file.
    Text { descriptor: Region },
    /// Neither sparse nor text.
    NotVmdk,
}

/// The VMDK parser's streaming state.
#[derive(Debug, Clone)]
pub(super) struct Stream {
    stage: Stage,
}

impl Stream {
    pub(super) fn new() -> Stream {
        Stream {
            stage: Stage::Header,
        }
    }

    /// The next stream position at which this parser decides something.
    pub(super) fn next_event(&self) -> Option<u64> {
        match self.stage {
            Stage::Header => Some(SPARSE_HEADER_LEN),
            Stage::TextProbe => Some(TEXT_PROBE_LEN),
            _ => None,
        }
    }

    /// Decides what to capture once the stream reaches `position`.
    pub(super) fn at_position(&mut self, position: u64, head: &Region) {
        match self.stage {
            Stage::Header if position >= SPARSE_HEADER_LEN => {
                self.stage = if head.data().starts_with(MAGIC) {
                    match SparseHeader::parse(head.data()) {
                        Some(header) => Stage::Sparse {
                            header,
                            descriptor: descriptor_region(&header),
                        },
                        None => Stage::NotVmdk, // unreachable: 64 bytes are held
                    }
                } else {
                    Stage::TextProbe
                };
            }
            Stage::TextProbe if position >= TEXT_PROBE_LEN => {
                let probe = head
                    .data()
                    .get(..TEXT_PROBE_LEN as usize)
                    .unwrap_or_default();
                self.stage = if is_text(probe) {
                    Stage::Text {
                        descriptor: Region::starting_at(0, DESCRIPTOR_MAX, position, head),
                    }
                } else {
                    Stage::NotVmdk
                };
            }
            _ => {}
        }
    }

    /// Copies descriptor bytes out of the stream.
    pub(super) fn feed(&mut self, position: u64, bytes: &[u8]) {
        if let Some(region) = self.region_mut() {
            region.feed(position, bytes);
        }
    }

    /// The stream position up to which the descriptor still wants bytes.
    pub(super) fn wants_until(&self) -> u64 {
        self.region().map_or(0, Region::wants_until)
    }

    /// Bytes held in memory.
    pub(super) fn held(&self) -> usize {
        self.region().map_or(0, Region::held)
    }

    fn region(&self) -> Option<&Region> {
        match &self.stage {
            Stage::Sparse {
                descriptor: Ok(region),
                ..
            }
            | Stage::Text { descriptor: region } => Some(region),
            _ => None,
        }
    }

    fn region_mut(&mut self) -> Option<&mut Region> {
        match &mut self.stage {
            Stage::Sparse {
                descriptor: Ok(region),
                ..
            }
            | Stage::Text { descriptor: region } => Some(region),
            _ => None,
        }
    }

    /// The VMDK verdict at the end of the stream, when the stream is one.
    pub(super) fn verdict(&self, seen: &Seen<'_>) -> Option<Verdict> {
        match &self.stage {
            Stage::Header => {
                // The stream ended before byte 64.
                if !seen.head.starts_with(MAGIC) {
                    return None;
                }
                let mut verdict = Verdict::new(Format::Vmdk);
                verdict.fail(
                    Check::Descriptor,
                    format!(
                        "no descriptor: the sparse header is truncated at byte {} of 64",
                        seen.n_bytes
                    ),
                );
                Some(verdict)
            }
            Stage::TextProbe => {
                // The stream ended before byte 512: the whole file is the probe.
                (seen.head.len() >= TEXT_MIN_LEN && is_text(seen.head))
                    .then(|| text_verdict(seen.head))
                    .flatten()
            }
            Stage::Text { descriptor } => text_verdict(descriptor.data()),
            Stage::Sparse { header, descriptor } => {
                Some(sparse_verdict(header, descriptor.as_ref(), seen))
            }
            Stage::NotVmdk => None,
        }
    }
}

/// The descriptor region a sparse header points to, or why it is refused.
fn descriptor_region(header: &SparseHeader) -> Result<Region, String> {
    if !(1..=3).contains(&header.version) {
        return Err(format!(
            "no descriptor: unsupported sparse header version {}",
            header.version
        ));
    }
    if header.descriptor_sector != 1 {
        return Err(format!(
            "no descriptor: the descriptor is at sector {}, not sector 1",
            header.descriptor_sector
        ));
    }
    let length = usize::try_from(header.descriptor_sectors.saturating_mul(512))
        .unwrap_or(usize::MAX)
        .min(DESCRIPTOR_MAX);
    Ok(Region::new(DESCRIPTOR_AT, length))
}

/// Whether `bytes` are all printable ASCII or ASCII whitespace (Python's
/// `isprintable() or isspace()`, as oslo tests them).
fn is_text(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| {
        (0x20..=0x7E).contains(&b) || matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | 0x1C..=0x1F)
    })
}

/// The descriptor text: up to the first NUL (descriptors are NUL-padded).
fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes, |end| &bytes[..end])
}

/// The lower-cased create type, when a `createType="..."` of 1..=63
/// characters is present.
fn create_type(lower: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"createtype=\"";
    let start = lower.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = lower.get(start..)?;
    let length = rest.iter().position(|&b| b == b'"')?;
    if length == 0 || length >= 64 {
        return None;
    }
    Some(String::from_utf8_lossy(&rest[..length]).into_owned())
}

/// The verdict for a text-only descriptor file, when it names a create type.
fn text_verdict(bytes: &[u8]) -> Option<Verdict> {
    let text = until_nul(bytes);
    let lower = text.to_ascii_lowercase();
    let kind = create_type(&lower)?;
    let mut verdict = Verdict::new(Format::Vmdk);
    if !text.is_ascii() {
        verdict.fail(Check::Descriptor, "descriptor is not ASCII text");
        return Some(verdict);
    }
    let lower = String::from_utf8_lossy(&lower);
    if SPARSE_TYPES.contains(&kind.as_str()) {
        verdict.fail(
            Check::Descriptor,
            format!(
                "text descriptor claims create type {}, which only a binary sparse vmdk may have",
                quote(kind.as_bytes())
            ),
        );
    } else {
        verdict.fail(Check::Descriptor, unsupported_type(&kind));
    }
    check_parent(&lower, &mut verdict);
    if let Some(size) = extents_size(&lower) {
        verdict.set_virtual_size(size);
    }
    Some(verdict)
}

fn unsupported_type(kind: &str) -> String {
    format!(
        "unsupported create type {} (only monolithicSparse and streamOptimized are allowed)",
        quote(kind.as_bytes())
    )
}

/// The verdict for a hosted sparse extent.
fn sparse_verdict(
    header: &SparseHeader,
    descriptor: Result<&Region, &String>,
    seen: &Seen<'_>,
) -> Verdict {
    let mut verdict = Verdict::new(Format::Vmdk);
    let mut capacity = header.capacity;
    // The metadata (descriptor, grain directory and tables) ends where the
    // grains start: qemu refuses a file shorter than that ("File truncated").
    if let Some(overhead) = le_u64(seen.head, GRAIN_OFFSET_AT).and_then(|s| s.checked_mul(512))
        && overhead > seen.n_bytes
    {
        verdict.truncated("vmdk metadata", overhead, seen.n_bytes);
    }
    if header.gd_offset == GD_AT_END {
        match check_footer(header, seen) {
            Ok(footer) => capacity = footer.capacity,
            Err(reason) => verdict.fail(Check::Footer, reason),
        }
    }
    let descriptor = match descriptor {
        Ok(region) if region.is_complete() => until_nul(region.data()),
        Ok(region) => {
            verdict.fail(
                Check::Descriptor,
                format!(
                    "no descriptor: the file ends at byte {} inside the descriptor (bytes {}..{})",
                    seen.n_bytes,
                    region.offset(),
                    region.end()
                ),
            );
            return verdict;
        }
        Err(reason) => {
            verdict.fail(Check::Descriptor, reason.clone());
            return verdict;
        }
    };
    if !descriptor.is_ascii() {
        verdict.fail(
            Check::Descriptor,
            "no descriptor: the descriptor is not ASCII text",
        );
        return verdict;
    }
    let lower = String::from_utf8_lossy(descriptor).to_ascii_lowercase();
    let kind = create_type(lower.as_bytes());
    match kind.as_deref() {
        Some(kind) if SPARSE_TYPES.contains(&kind) => {
            if let Err(reason) = check_lines(&lower) {
                verdict.fail(Check::Descriptor, reason);
            }
            match capacity.checked_mul(512) {
                Some(size) => verdict.set_virtual_size(size),
                None => verdict.fail(
                    Check::Structure,
                    format!("capacity of {capacity} sectors overflows a byte count"),
                ),
            }
        }
        Some(other) => verdict.fail(Check::Descriptor, unsupported_type(other)),
        None => verdict.fail(Check::Descriptor, "descriptor has no createType"),
    }
    check_parent(&lower, &mut verdict);
    verdict
}

/// oslo's line-by-line descriptor check; the first problem wins.
fn check_lines(lower: &str) -> Result<(), String> {
    let mut extents = Vec::new();
    for line in lower.split('\n').map(trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with("ddb") {
            continue;
        }
        if line
            .split('=')
            .next()
            .is_some_and(|key| line.contains('=') && !key.contains(' '))
        {
            continue;
        }
        if EXTENT_ACCESS.contains(&line.split(' ').next().unwrap_or_default()) {
            extents.push(line);
            continue;
        }
        return Err(format!(
            "invalid descriptor line {}",
            quote(line.as_bytes())
        ));
    }
    if let Some(extent) = extents.iter().find(|line| line.contains('/')) {
        return Err(format!("extent names a path: {}", quote(extent.as_bytes())));
    }
    if extents.is_empty() {
        return Err("descriptor has no extents".to_owned());
    }
    Ok(())
}

/// Python's `str.strip()` for ASCII text.
fn trim(line: &str) -> &str {
    line.trim_matches(|c: char| {
        c == ' ' || ('\t'..='\r').contains(&c) || ('\x1c'..='\x1f').contains(&c)
    })
}

/// qemu opens `parentFileNameHint` as a backing VMDK, whatever the create
/// type: a descriptor naming a parent fails `backing_file`.
fn check_parent(lower: &str, verdict: &mut Verdict) {
    for line in lower.split('\n').map(trim) {
        if let Some((key, value)) = line.split_once('=')
            && trim(key) == "parentfilenamehint"
        {
            verdict.fail(
                Check::BackingFile,
                format!(
                    "descriptor names a parent image {}",
                    quote(trim(value).trim_matches('"').as_bytes())
                ),
            );
        }
    }
}

/// The sum of the extents' sizes, for text descriptors (qemu's size).
fn extents_size(lower: &str) -> Option<u64> {
    let mut total: Option<u64> = None;
    for line in lower.split('\n').map(trim) {
        let mut words = line.split_ascii_whitespace();
        if !words.next().is_some_and(|w| EXTENT_ACCESS.contains(&w)) {
            continue;
        }
        let sectors: u64 = words.next()?.parse().ok()?;
        total = Some(total.unwrap_or(0).checked_add(sectors.checked_mul(512)?)?);
    }
    total
}

/// oslo's footer check (plus capacity); returns the footer's header.
fn check_footer(header: &SparseHeader, seen: &Seen<'_>) -> Result<SparseHeader, String> {
    let start = seen
        .tail
        .len()
        .checked_sub(FOOTER_LEN)
        .filter(|_| seen.n_bytes >= (FOOTER_LEN + SECTOR) as u64)
        .ok_or("the header announces a footer but the file is too short to hold one")?;
    let tail = &seen.tail[start..];
    let (marker, rest) = tail.split_at(SECTOR);
    let (footer_sector, eos) = rest.split_at(SECTOR);
    let footer = SparseHeader::parse(footer_sector).ok_or("footer is truncated")?;
    if !footer_sector.starts_with(MAGIC) {
        return Err("header and footer signatures do not match".to_owned());
    }
    if footer.version != header.version {
        return Err("header and footer versions do not match".to_owned());
    }
    if (footer.descriptor_sector, footer.descriptor_sectors)
        != (header.descriptor_sector, header.descriptor_sectors)
    {
        return Err("footer names a different descriptor than the header".to_owned());
    }
    if footer.gd_offset == GD_AT_END {
        return Err("footer announces another footer".to_owned());
    }
    if footer.capacity != header.capacity {
        return Err(format!(
            "footer capacity {} differs from header capacity {}",
            footer.capacity, header.capacity
        ));
    }
    let marker_ok = le_u32(marker, 8) == Some(0)
        && le_u32(marker, 12) == Some(MARKER_FOOTER)
        && marker[16..].iter().all(|&b| b == 0);
    if !marker_ok {
        return Err("footer marker is invalid".to_owned());
    }
    let eos_ok = le_u64(eos, 0) == Some(0)
        && le_u32(eos, 8) == Some(0)
        && le_u32(eos, 12) == Some(MARKER_EOS)
        && eos[16..].iter().all(|&b| b == 0);
    if !eos_ok {
        return Err("end-of-stream marker is invalid".to_owned());
    }
    Ok(footer)
}

#[cfg(test)]
mod tests {
    use crate::inspect::tests::inspect;
    use crate::inspect::{Check, Format};

    const DESCRIPTOR: &str = "# Disk DescriptorFile\nversion=1\nCID=12345678\n\
        parentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n\
        RW 2048 SPARSE \"disk.vmdk\"\n\nddb.adapterType = \"ide\"\n";

    /// A sparse header (capacity 2048 sectors, descriptor at sector 1 of
    /// `desc_sectors` sectors) followed by `descriptor`.
    fn sparse(descriptor: &str, desc_sectors: u64, gd_offset: u64) -> Vec<u8> {
        let mut image = vec![0u8; 512];
        image[..4].copy_from_slice(b"KDMV");
        image[4..8].copy_from_slice(&1u32.to_le_bytes());
        image[12..20].copy_from_slice(&2048u64.to_le_bytes());
        image[28..36].copy_from_slice(&1u64.to_le_bytes());
        image[36..44].copy_from_slice(&desc_sectors.to_le_bytes());
        image[56..64].copy_from_slice(&gd_offset.to_le_bytes());
        image.extend_from_slice(descriptor.as_bytes());
        image.resize(512 + desc_sectors as usize * 512 + 4096, 0);
        image
    }

    #[test]
    fn monolithic_sparse_is_safe() {
        let report = inspect(&sparse(DESCRIPTOR, 2, 20));
        assert_eq!(report.format(), Some(Format::Vmdk));
        assert_eq!(report.virtual_size(), Some(2048 * 512));
        assert!(report.is_safe(), "{:?}", report.failures());
    }

    #[test]
    fn extent_with_a_path_fails() {
        let text = DESCRIPTOR.replace("\"disk.vmdk\"", "\"/etc/hosts\"");
        let report = inspect(&sparse(&text, 2, 20));
        assert!(report.failures()[&Check::Descriptor].contains("path"));
    }

    #[test]
    fn flat_create_type_fails() {
        let text = DESCRIPTOR.replace("monolithicSparse", "monolithicFlat");
        let report = inspect(&sparse(&text, 2, 20));
        assert!(report.failures()[&Check::Descriptor].contains("unsupported create type"));
    }

    #[test]
    fn parent_file_name_hint_fails_backing_file() {
        let text = DESCRIPTOR.replace(
            "parentCID=ffffffff",
            "parentCID=ffffffff\nparentFileNameHint=\"/var/lib/glance/images/x\"",
        );
        let report = inspect(&sparse(&text, 2, 20));
        assert!(report.failures()[&Check::BackingFile].contains("/var/lib/glance"));
    }

    #[test]
    fn unknown_lines_fail() {
        let text = DESCRIPTOR.replace("version=1", "version =1");
        let report = inspect(&sparse(&text, 2, 20));
        assert!(report.failures()[&Check::Descriptor].contains("invalid descriptor line"));
    }

    #[test]
    fn wrong_descriptor_location_still_matches_and_fails() {
        let mut image = sparse(DESCRIPTOR, 2, 20);
        image[28..36].copy_from_slice(&2u64.to_le_bytes());
        let report = inspect(&image);
        assert_eq!(report.format(), Some(Format::Vmdk));
        assert!(report.failures()[&Check::Descriptor].contains("sector 2"));
    }

    #[test]
    fn truncated_magic_is_vmdk_without_descriptor() {
        let report = inspect(b"KDMV");
        assert_eq!(report.format(), Some(Format::Vmdk));
        assert!(report.failures().contains_key(&Check::Descriptor));
    }

    #[test]
    fn descriptor_cut_by_end_of_file_fails() {
        let image = sparse(DESCRIPTOR, 2000, 20);
        let report = inspect(&image[..4096]);
        assert!(report.failures()[&Check::Descriptor].contains("inside the descriptor"));
    }

    #[test]
    fn a_sparse_extent_shorter_than_its_metadata_fails_structure() {
        // overHead at 64: grains start at sector 10 (byte 5120); qemu
        // refuses shorter files ("File truncated").
        let mut image = sparse(DESCRIPTOR, 2, 20);
        image[64..72].copy_from_slice(&10u64.to_le_bytes());
        image.resize(5120, 0);
        assert!(inspect(&image).is_safe());
        let report = inspect(&image[..5119]);
        assert_eq!(report.format(), Some(Format::Vmdk));
        assert!(report.failures()[&Check::Structure].contains("of 5120"));
    }

    #[test]
    fn footer_is_checked() {
        let text = DESCRIPTOR.replace("monolithicSparse", "streamOptimized");
        let mut image = sparse(&text, 2, u64::MAX);
        let mut marker = vec![0u8; 512];
        marker[12..16].copy_from_slice(&3u32.to_le_bytes());
        let mut footer = image[..512].to_vec();
        footer[56..64].copy_from_slice(&20u64.to_le_bytes());
        image.extend(&marker);
        image.extend(&footer);
        image.extend(vec![0u8; 512]);
        let report = inspect(&image);
        assert!(report.is_safe(), "{:?}", report.failures());
        assert_eq!(report.virtual_size(), Some(2048 * 512));

        let mut again = image.clone();
        let at = again.len() - 1024 + 56;
        again[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(inspect(&again).failures()[&Check::Footer].contains("another footer"));

        let mut bad_marker = image.clone();
        let at = bad_marker.len() - 1536 + 12;
        bad_marker[at] = 2;
        assert!(inspect(&bad_marker).failures().contains_key(&Check::Footer));

        let mut resized = image;
        let at = resized.len() - 1024 + 12;
        resized[at..at + 8].copy_from_slice(&4096u64.to_le_bytes());
        assert!(inspect(&resized).failures()[&Check::Footer].contains("capacity"));
    }

    #[test]
    fn text_descriptors_are_vmdk_and_unsafe() {
        let flat = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n\
            createType=\"monolithicFlat\"\n\nRW 2048 FLAT \"/etc/hosts\" 0\n";
        let report = inspect(flat.as_bytes());
        assert_eq!(report.format(), Some(Format::Vmdk));
        assert_eq!(report.virtual_size(), Some(2048 * 512));
        assert!(report.failures()[&Check::Descriptor].contains("monolithicflat"));

        let claims_sparse = DESCRIPTOR.to_owned();
        let report = inspect(claims_sparse.as_bytes());
        assert_eq!(report.format(), Some(Format::Vmdk));
        assert!(report.failures()[&Check::Descriptor].contains("claims create type"));
    }

    #[test]
    fn create_type_far_into_a_text_file_is_found_at_any_chunk_size() {
        let mut text = "# padding\n".repeat(1000);
        text.push_str("createType=\"monolithicFlat\"\nRW 8 FLAT \"x\" 0\n");
        let report = inspect(text.as_bytes());
        assert_eq!(report.format(), Some(Format::Vmdk));
    }

    #[test]
    fn text_then_binary_is_handled() {
        let mut bytes = "# just text\n".repeat(60).into_bytes();
        bytes.extend_from_slice(&[0xFF; 100]);
        assert_eq!(inspect(&bytes).format(), Some(Format::Raw));
        let mut claims = DESCRIPTOR.repeat(4).into_bytes();
        claims.extend_from_slice(&[0xFF; 100]);
        let report = inspect(&claims);
        assert_eq!(report.format(), Some(Format::Vmdk));
        assert!(report.failures()[&Check::Descriptor].contains("not ASCII"));
    }

    #[test]
    fn short_text_is_not_a_descriptor() {
        assert_eq!(
            inspect(b"createType=\"monolithicFlat\"").format(),
            Some(Format::Raw)
        );
    }
}
