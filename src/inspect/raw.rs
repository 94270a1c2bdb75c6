//! raw: the fallback when no other format matches. Its virtual size is the
//! stream's length, and it has no safety check (oslo's `null`).
//!
//! It must not be reported beside another format: raw means "nothing else".

use super::{Format, Seen, Verdict};

/// The raw verdict for a stream nothing else matched.
pub(super) fn inspect(seen: &Seen<'_>) -> Verdict {
    let mut verdict = Verdict::new(Format::Raw);
    verdict.set_virtual_size(seen.n_bytes);
    verdict
}
