//! Fuzz target: the disk-format inspector and Glance's upload policy.
//!
//! Input: `[mode][chunk: u16 LE][payload]`. Mode 0 inspects the payload
//! as is, in chunks of 1..=8192 bytes. Other modes spread the payload over
//! the offsets the deep parsers read (0, the VHDX region table at 192 KiB,
//! the first VHDX metadata region at 1 MiB) and, for odd modes, give the
//! region table a valid CRC-32C so the fuzzer gets past it; these images
//! are over 1 MiB, so their chunks are 16..=65536 bytes. Every input is
//! inspected in one chunk and in `chunk`-byte chunks: the reports must be
//! equal and the memory bound must hold; the policy must decide every
//! disk_format without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::image::DiskFormat;
use portcullis::inspect::policy::FormatPolicy;
use portcullis::inspect::{Inspector, MAX_HELD_BYTES};

const REGION_TABLE: usize = 192 * 1024;
const TABLE_LEN: usize = 64 * 1024;
const METADATA: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let [mode, low, high, payload @ ..] = data else {
        return;
    };
    let selector = usize::from(u16::from_le_bytes([*low, *high]));
    let (image, chunk) = if *mode == 0 {
        (payload.to_vec(), selector % 8192 + 1)
    } else {
        // Spread images are over 1 MiB: 16-byte steps keep runs fast.
        (spread(payload, *mode), (selector % 4096 + 1) * 16)
    };

    let mut whole = Inspector::new();
    whole.update(&image);
    let whole = whole.finish();

    let mut chunked = Inspector::new();
    for piece in image.chunks(chunk) {
        chunked.update(piece);
        assert!(chunked.held_bytes() <= MAX_HELD_BYTES);
    }
    let chunked = chunked.finish();
    assert_eq!(whole, chunked, "chunk size {chunk} changed the report");
    assert_eq!(whole.n_bytes(), image.len() as u64);
    if let Some(size) = whole.virtual_size() {
        assert!(i64::try_from(size).is_ok());
    }
    assert_eq!(whole.is_safe(), whole.failures().is_empty());

    for declared in DiskFormat::ALL {
        let _ = FormatPolicy::default().decide(&whole, *declared, whole.n_bytes());
    }
});

/// Lays the payload's thirds at 0, 192 KiB and 1 MiB, in an image long
/// enough to hold a metadata table and items at 1 MiB.
fn spread(payload: &[u8], mode: u8) -> Vec<u8> {
    let third = payload.len().div_ceil(3);
    let parts: Vec<&[u8]> = payload.chunks(third.max(1)).collect();
    let offsets = [0, REGION_TABLE, METADATA];
    let end = parts
        .iter()
        .zip(offsets)
        .map(|(part, at)| at + part.len())
        .max()
        .unwrap_or(0)
        .max(METADATA + 2 * TABLE_LEN);
    let mut image = vec![0u8; end + usize::from(mode & 2) * 32 * 1024];
    for (part, at) in parts.iter().zip(offsets) {
        image[at..at + part.len()].copy_from_slice(part);
    }
    if mode & 1 == 1 {
        let table = &mut image[REGION_TABLE..REGION_TABLE + TABLE_LEN];
        table[4..8].fill(0);
        let crc = crc32c(table);
        table[4..8].copy_from_slice(&crc.to_le_bytes());
    }
    image
}

fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}
