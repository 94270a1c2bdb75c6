//! Byte capture for the streaming inspector: fixed regions copied out of the
//! stream as it passes, the last bytes of the stream, and bounds-checked
//! field readers.
//!
//! This module owns the only copies of image bytes the inspector keeps. It
//! must not seek, and must not hold more than the regions ask for: a
//! region's buffer grows only with bytes that lie inside it.

/// A byte range `[offset, offset + len)` of the stream, copied as the stream
/// passes.
///
/// A region requested late (after some of its bytes already passed) is
/// seeded from a region that still holds them, or marked as missed: it can
/// then never complete, whatever the chunking, which keeps verdicts
/// independent of chunk sizes.
#[derive(Debug, Clone)]
pub(super) struct Region {
    offset: u64,
    len: usize,
    data: Vec<u8>,
    missed: bool,
}

impl Region {
    /// A region that starts empty; it must be created before the stream
    /// reaches `offset`, or seeded with [`Region::starting_at`].
    pub(super) fn new(offset: u64, len: usize) -> Region {
        Region {
            offset,
            len,
            data: Vec::new(),
            missed: false,
        }
    }

    /// A region requested when the stream is at `position`: the bytes
    /// before `position` are copied from `seed` when it holds all of them,
    /// otherwise the region is missed.
    pub(super) fn starting_at(offset: u64, len: usize, position: u64, seed: &Region) -> Region {
        let mut region = Region::new(offset, len);
        if offset >= position || len == 0 {
            return region;
        }
        let passed_end = position.min(region.end());
        match seed.bytes_at(offset, span(offset, passed_end)) {
            Some(bytes) => region.data.extend_from_slice(bytes),
            None => region.missed = true,
        }
        region
    }

    /// Copies the part of `bytes` (which sit at `position` in the stream)
    /// that falls inside the region.
    pub(super) fn feed(&mut self, position: u64, bytes: &[u8]) {
        if self.missed || self.is_complete() {
            return;
        }
        let wanted = self.offset + self.data.len() as u64;
        let bytes_end = position + bytes.len() as u64;
        if bytes_end <= wanted {
            return;
        }
        if position > wanted {
            // The bytes we needed went by before the region existed.
            self.missed = true;
            return;
        }
        let start = span(position, wanted);
        let stop = span(position, bytes_end.min(self.end()));
        if let Some(part) = bytes.get(start..stop) {
            // Grow geometrically but never past the region's length, so the
            // memory bound holds for any chunking.
            let needed = self.data.len() + part.len();
            if needed > self.data.capacity() {
                let target = (self.data.capacity() * 2).max(needed).min(self.len);
                self.data.reserve_exact(target - self.data.len());
            }
            self.data.extend_from_slice(part);
        }
    }

    /// Whether every byte of the region has been copied.
    pub(super) fn is_complete(&self) -> bool {
        self.data.len() == self.len
    }

    /// Whether bytes of the region went by before it existed.
    #[cfg(test)]
    pub(super) fn is_missed(&self) -> bool {
        self.missed
    }

    /// The bytes copied so far, from the region's start.
    pub(super) fn data(&self) -> &[u8] {
        &self.data
    }

    /// Where the region starts in the stream.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// Where the region ends in the stream (exclusive).
    pub(super) fn end(&self) -> u64 {
        self.offset.saturating_add(self.len as u64)
    }

    /// The stream position up to which this region still wants bytes (its
    /// start when nothing more can arrive).
    pub(super) fn wants_until(&self) -> u64 {
        if self.missed || self.is_complete() {
            0
        } else {
            self.end()
        }
    }

    /// `n` bytes at absolute stream offset `at`, when the region holds them.
    pub(super) fn bytes_at(&self, at: u64, n: usize) -> Option<&[u8]> {
        let start = usize::try_from(at.checked_sub(self.offset)?).ok()?;
        self.data.get(start..start.checked_add(n)?)
    }

    /// Bytes held in memory.
    pub(super) fn held(&self) -> usize {
        self.data.capacity()
    }
}

/// `to - from` as a length; callers guarantee the difference fits (it is
/// bounded by a region or a chunk length).
fn span(from: u64, to: u64) -> usize {
    usize::try_from(to.saturating_sub(from)).unwrap_or(usize::MAX)
}

/// The last `N` bytes of the stream, kept in a ring so that any chunking
/// costs O(chunk) to record.
#[derive(Debug, Clone)]
pub(super) struct Tail {
    ring: Vec<u8>,
    /// Where the next byte goes.
    next: usize,
    /// How many bytes of the ring are valid (≤ ring length).
    filled: usize,
}

impl Tail {
    /// A tail keeping the last `capacity` bytes.
    pub(super) fn new(capacity: usize) -> Tail {
        Tail {
            ring: vec![0; capacity],
            next: 0,
            filled: 0,
        }
    }

    /// Records `bytes` as the newest bytes of the stream.
    pub(super) fn push(&mut self, bytes: &[u8]) {
        let capacity = self.ring.len();
        if capacity == 0 {
            return;
        }
        if bytes.len() >= capacity {
            let newest = &bytes[bytes.len() - capacity..];
            self.ring.copy_from_slice(newest);
            self.next = 0;
            self.filled = capacity;
            return;
        }
        let first = bytes.len().min(capacity - self.next);
        let (head, wrapped) = bytes.split_at(first);
        self.ring[self.next..self.next + first].copy_from_slice(head);
        self.ring[..wrapped.len()].copy_from_slice(wrapped);
        self.next = (self.next + bytes.len()) % capacity;
        self.filled = (self.filled + bytes.len()).min(capacity);
    }

    /// The kept bytes, oldest first.
    pub(super) fn to_vec(&self) -> Vec<u8> {
        if self.filled < self.ring.len() {
            // Never wrapped: the bytes sit at the start, in order.
            return self.ring[..self.filled].to_vec();
        }
        let mut out = Vec::with_capacity(self.ring.len());
        out.extend_from_slice(&self.ring[self.next..]);
        out.extend_from_slice(&self.ring[..self.next]);
        out
    }

    /// Bytes held in memory.
    pub(super) fn held(&self) -> usize {
        self.ring.len()
    }
}

/// `N` bytes at `at`, when `buf` holds them.
fn array<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Big-endian u16 at `at`.
pub(super) fn be_u16(buf: &[u8], at: usize) -> Option<u16> {
    array(buf, at).map(u16::from_be_bytes)
}

/// Big-endian u32 at `at`.
pub(super) fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    array(buf, at).map(u32::from_be_bytes)
}

/// Big-endian u64 at `at`.
pub(super) fn be_u64(buf: &[u8], at: usize) -> Option<u64> {
    array(buf, at).map(u64::from_be_bytes)
}

/// Little-endian u16 at `at`.
pub(super) fn le_u16(buf: &[u8], at: usize) -> Option<u16> {
    array(buf, at).map(u16::from_le_bytes)
}

/// Little-endian u32 at `at`.
pub(super) fn le_u32(buf: &[u8], at: usize) -> Option<u32> {
    array(buf, at).map(u32::from_le_bytes)
}

/// Little-endian u64 at `at`.
pub(super) fn le_u64(buf: &[u8], at: usize) -> Option<u64> {
    array(buf, at).map(u64::from_le_bytes)
}

/// Renders untrusted text (a file name, a type) for a failure reason:
/// quoted, escaped, and cut to a few dozen characters so a hostile image
/// cannot flood logs.
pub(super) fn quote(bytes: &[u8]) -> String {
    const LIMIT: usize = 64;
    let shown = &bytes[..bytes.len().min(LIMIT)];
    let mut text = format!("{:?}", String::from_utf8_lossy(shown));
    if bytes.len() > LIMIT {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_collects_across_any_chunking() {
        let stream: Vec<u8> = (0..=255u8).cycle().take(4000).collect();
        for chunk in [1, 3, 7, 512, 4000] {
            let mut region = Region::new(1000, 600);
            let mut position = 0u64;
            for piece in stream.chunks(chunk) {
                region.feed(position, piece);
                position += piece.len() as u64;
            }
            assert!(region.is_complete(), "chunk {chunk}");
            assert_eq!(region.data(), &stream[1000..1600], "chunk {chunk}");
        }
    }

    #[test]
    fn late_region_is_seeded_or_missed() {
        let stream: Vec<u8> = (0..=255u8).cycle().take(2000).collect();
        let mut head = Region::new(0, 1024);
        head.feed(0, &stream[..1500]);
        let seeded = Region::starting_at(100, 50, 1500, &head);
        assert_eq!(seeded.data(), &stream[100..150]);
        assert!(seeded.is_complete());
        let mut straddling = Region::starting_at(1000, 100, 1500, &head);
        assert!(straddling.is_missed(), "bytes 1024..1100 are gone");
        straddling.feed(1500, &stream[1500..]);
        assert!(!straddling.is_complete());
        let mut ahead = Region::starting_at(1600, 10, 1500, &head);
        ahead.feed(1500, &stream[1500..]);
        assert_eq!(ahead.data(), &stream[1600..1610]);
    }

    #[test]
    fn region_fed_after_a_gap_is_missed() {
        let mut region = Region::new(10, 10);
        region.feed(0, &[0; 5]);
        region.feed(15, &[1; 10]);
        assert!(region.is_missed());
        assert!(!region.is_complete());
    }

    #[test]
    fn tail_keeps_the_last_bytes_for_any_chunking() {
        let stream: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        for chunk in [1, 2, 511, 1536, 1537, 5000] {
            let mut tail = Tail::new(1536);
            for piece in stream.chunks(chunk) {
                tail.push(piece);
            }
            assert_eq!(tail.to_vec(), &stream[5000 - 1536..], "chunk {chunk}");
        }
        let mut short = Tail::new(1536);
        short.push(&stream[..100]);
        short.push(&stream[100..300]);
        assert_eq!(short.to_vec(), &stream[..300]);
    }

    #[test]
    fn readers_refuse_short_buffers() {
        assert_eq!(be_u32(&[0, 0, 1, 2], 0), Some(258));
        assert_eq!(be_u32(&[0, 0, 1], 0), None);
        assert_eq!(le_u64(&[1, 0, 0, 0, 0, 0, 0, 0], 0), Some(1));
        assert_eq!(le_u16(&[1, 2], usize::MAX), None);
        assert_eq!(quote(b"/etc/hosts"), "\"/etc/hosts\"");
        assert!(quote(&[b'a'; 100]).ends_with('…'));
    }
}
