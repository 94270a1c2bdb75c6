//! QED (QEMU enhanced disk): recognised so that it can be refused. Nothing
//! consumes it any more, and it has backing files of its own, so the
//! `banned` check always fails.
//!
//! Stricter than oslo: the magic alone makes the file QED, however short
//! (oslo needs 512 bytes, so a short QED header was "raw"), and the virtual
//! size is the header's image size, as qemu reports it, not the file length.

use super::capture::le_u64;
use super::{Check, Format, Seen, Verdict};

const MAGIC: &[u8] = b"QED\0";
/// `image_size`, u64 LE, in the QED header.
const IMAGE_SIZE_AT: usize = 48;

/// The QED verdict, when the stream starts with QED's magic. A 3-byte
/// `QED` counts: qemu reads zeros past the end of a file, so its probe sees
/// the magic's final NUL there and picks QED.
pub(super) fn inspect(seen: &Seen<'_>) -> Option<Verdict> {
    let n = seen.head.len().min(MAGIC.len());
    let padded_match =
        n > 0 && seen.head[..n] == MAGIC[..n] && MAGIC[n..].iter().all(|&byte| byte == 0);
    if !padded_match {
        return None;
    }
    let mut verdict = Verdict::new(Format::Qed);
    verdict.fail(Check::Banned, "qed images are not allowed");
    if let Some(size) = le_u64(seen.head, IMAGE_SIZE_AT) {
        verdict.set_virtual_size(size);
    }
    Some(verdict)
}

#[cfg(test)]
mod tests {
    use crate::inspect::tests::inspect;
    use crate::inspect::{Check, Format};

    #[test]
    fn short_qed_header_is_qed_and_banned() {
        let report = inspect(b"QED\0");
        assert_eq!(report.format(), Some(Format::Qed));
        assert!(report.failures().contains_key(&Check::Banned));
        assert_eq!(report.virtual_size(), None);
        assert_eq!(inspect(b"QED").format(), Some(Format::Qed));
        assert_eq!(inspect(b"QE").format(), Some(Format::Raw));
    }
}
