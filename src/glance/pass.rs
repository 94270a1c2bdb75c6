//! One read of image data through the upload's one-pass pump (`ingest::pump`:
//! md5 and the os_hash on the hash pool, the signature digest, the format
//! inspector as observer) into no sink, for a check of served data and for
//! the local read before an upload.
//!
//! This file owns wiring those two reads to the pump; it must not decide
//! anything about what was read, and never writes data anywhere.

use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use futures_core::Stream;

use crate::ingest::limit::Limit;
use crate::ingest::pump::{ChunkSink, Observe, Pass, PumpError, pump};
use crate::ingest::workers::{HashPlan, HashPool};
use crate::inspect::Inspector;

/// The data goes nowhere: reading is all these passes do.
struct Discard;

impl ChunkSink for Discard {
    type Error = Infallible;
    async fn write(&mut self, _chunk: Bytes) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Reads `stream` once: bounded by `declared` (more bytes stop the read,
/// fewer are an error), hashed as `plan` says on `pool`, watched by
/// `inspector`; `advance` is told each chunk's length.
///
/// Fails as the pump does (a stream error, a size other than declared, a
/// hashing thread that died).
pub(crate) async fn read_once<S>(
    stream: S,
    declared: Option<u64>,
    pool: &HashPool,
    plan: HashPlan,
    inspector: Option<&mut Inspector>,
    advance: &(dyn Fn(u64) + Sync),
) -> Result<Pass, PumpError<Infallible>>
where
    S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
{
    let mut observers: Vec<&mut dyn Observe> = Vec::new();
    if let Some(inspector) = inspector {
        observers.push(inspector);
    }
    let mut last = 0u64;
    let mut report = |n_bytes: u64| {
        advance(n_bytes - last);
        last = n_bytes;
    };
    pump(
        stream,
        Limit::new(u64::MAX, None, declared),
        pool,
        plan,
        &mut observers,
        &mut Discard,
        &mut report,
    )
    .await
}
