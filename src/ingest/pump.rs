//! The one pass: read a stream of chunks once and push every chunk, in
//! order, through the size limit → the hashing workers (md5; os_hash and the
//! signature digest) → the observers (the format inspector) → the sink (the
//! staged store write).
//!
//! The pump owns the only loop over the data; it must not buffer more than
//! the chunk in hand (plus the workers' bounded queues) and must not decide
//! anything about the image: it returns the byte count and digests, and the
//! commit protocol in `ingest` decides.

use std::future::Future;
use std::io;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;

use super::limit::{Exceeded, Limit};
use super::workers::{Digests, HashPlan, HashPool, HashWorkers, WorkerError};

/// Something that watches every chunk in the chunk path without changing it
/// (the format inspector's slot). It never fails: it reports at the end.
pub trait Observe: Send {
    /// Sees the next chunk.
    fn update(&mut self, chunk: &[u8]);
}

/// Where the chunks go after they were checked and hashed: the staged write.
pub trait ChunkSink {
    /// The sink's failure (a store error: disk full, I/O).
    type Error;
    /// Stores the next chunk.
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// What one pass produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Bytes read and stored.
    pub n_bytes: u64,
    /// Their digests.
    pub digests: Digests,
}

/// Why a pass stopped early. Nothing is cleaned up here: the caller aborts
/// the staged write.
#[derive(Debug, thiserror::Error)]
pub enum PumpError<E> {
    /// A limit (size cap, quota, declared size) would have been crossed; the
    /// stream was not read further.
    #[error("upload crossed a limit: {0:?}")]
    Exceeded(Exceeded),
    /// The declared size is beyond the size cap or the quota; nothing was read.
    #[error("the declared size is over a limit: {0:?}")]
    DeclaredOverLimit(Exceeded),
    /// The stream ended before the declared size was reached.
    #[error("upload ended after {received} bytes but {declared} were declared")]
    Short {
        /// Declared size.
        declared: u64,
        /// Bytes received.
        received: u64,
    },
    /// The input stream failed (client gone, read error).
    #[error("reading the image data failed after {received} bytes")]
    Stream {
        /// Bytes received before the failure.
        received: u64,
        /// The stream's error.
        #[source]
        source: io::Error,
    },
    /// The sink failed.
    #[error("storing the image data failed")]
    Sink(#[source] E),
    /// A hashing worker failed.
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

/// Runs one pass of `stream` into `sink`, hashing on `pool`.
///
/// `progress` is told the byte count after each chunk. Fails on the first
/// limit, stream, worker or sink error, without reading further.
pub async fn pump<S, K>(
    mut stream: S,
    mut limit: Limit,
    pool: &HashPool,
    plan: HashPlan,
    observers: &mut [&mut dyn Observe],
    sink: &mut K,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Pass, PumpError<K::Error>>
where
    S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
    K: ChunkSink,
{
    // 0. A declared size beyond the limits is refused before any byte.
    limit
        .check_declared()
        .map_err(PumpError::DeclaredOverLimit)?;
    let workers = HashWorkers::start(pool, plan);
    while let Some(next) = stream.next().await {
        let chunk = next.map_err(|source| PumpError::Stream {
            received: limit.n_bytes(),
            source,
        })?;
        if chunk.is_empty() {
            continue;
        }
        // 1. The limit first: nothing past it is hashed, inspected or stored.
        limit.take(chunk.len()).map_err(PumpError::Exceeded)?;
        // 2. The hashes, on the pool's threads.
        workers.feed(&chunk).await?;
        // 3. The observers (format inspector), on this thread.
        for observer in observers.iter_mut() {
            observer.update(&chunk);
        }
        // 4. The staged write.
        sink.write(chunk).await.map_err(PumpError::Sink)?;
        progress(limit.n_bytes());
    }
    let n_bytes = limit.finish().map_err(|declared| PumpError::Short {
        declared,
        received: limit.n_bytes(),
    })?;
    let digests = workers.finish().await?;
    Ok(Pass { n_bytes, digests })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::HashAlgorithm;
    use crate::ingest::limit::LimitKind;

    #[derive(Default)]
    struct VecSink(Vec<u8>);

    impl ChunkSink for VecSink {
        type Error = io::Error;
        async fn write(&mut self, chunk: Bytes) -> Result<(), io::Error> {
            self.0.extend_from_slice(&chunk);
            Ok(())
        }
    }

    #[derive(Default)]
    struct Count(u64);

    impl Observe for Count {
        fn update(&mut self, chunk: &[u8]) {
            self.0 += chunk.len() as u64;
        }
    }

    const PLAN: HashPlan = HashPlan {
        os_hash: HashAlgorithm::Sha512,
        signature: None,
    };

    fn pool() -> HashPool {
        HashPool::new(2).unwrap()
    }

    fn chunks(data: &[u8], size: usize) -> Vec<Result<Bytes, io::Error>> {
        data.chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect()
    }

    #[tokio::test]
    async fn every_chunk_reaches_hashes_observers_and_sink() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut sink = VecSink::default();
        let mut count = Count::default();
        let mut seen = Vec::new();
        let pass = pump(
            futures_util::stream::iter(chunks(&data, 4096)),
            Limit::new(1 << 20, None, Some(data.len() as u64)),
            &pool(),
            PLAN,
            &mut [&mut count],
            &mut sink,
            &mut |n| seen.push(n),
        )
        .await
        .unwrap();
        assert_eq!(pass.n_bytes, data.len() as u64);
        assert_eq!(sink.0, data);
        assert_eq!(count.0, data.len() as u64);
        assert_eq!(seen.last(), Some(&(data.len() as u64)));
        let mut md5 = HashAlgorithm::Md5.hasher();
        md5.update(&data);
        assert_eq!(pass.digests.checksum, md5.finish());
    }

    #[tokio::test]
    async fn stops_at_the_limit_without_storing_past_it() {
        let data = vec![1u8; 10_000];
        let mut sink = VecSink::default();
        let err = pump(
            futures_util::stream::iter(chunks(&data, 1000)),
            Limit::new(4500, None, None),
            &pool(),
            PLAN,
            &mut [],
            &mut sink,
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(err, PumpError::Exceeded(e) if e.kind == LimitKind::SizeCap));
        assert_eq!(sink.0.len(), 4000);
    }

    #[tokio::test]
    async fn a_declared_size_beyond_the_limits_is_refused_before_any_byte() {
        let data = vec![1u8; 10_000];
        for (limit, kind) in [
            (
                Limit::new(4500, None, Some(10_000)),
                LimitKind::DeclaredOverSizeCap { declared: 10_000 },
            ),
            (
                Limit::new(1 << 20, Some(4500), Some(10_000)),
                LimitKind::DeclaredOverQuota { declared: 10_000 },
            ),
        ] {
            let mut sink = VecSink::default();
            let mut count = Count::default();
            let err = pump(
                futures_util::stream::iter(chunks(&data, 1000)),
                limit,
                &pool(),
                PLAN,
                &mut [&mut count],
                &mut sink,
                &mut |_| {},
            )
            .await
            .unwrap_err();
            assert!(
                matches!(err, PumpError::DeclaredOverLimit(e) if e.kind == kind && e.attempted == 10_000),
                "{err:?}"
            );
            assert_eq!(sink.0.len(), 0, "nothing may be stored");
            assert_eq!(count.0, 0, "nothing may be inspected");
        }
    }

    #[tokio::test]
    async fn stream_errors_and_short_streams_fail() {
        let mut items = chunks(&[2u8; 3000], 1000);
        items.insert(
            2,
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "client gone",
            )),
        );
        let err = pump(
            futures_util::stream::iter(items),
            Limit::new(1 << 20, None, None),
            &pool(),
            PLAN,
            &mut [],
            &mut VecSink::default(),
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, PumpError::Stream { received: 2000, .. }),
            "{err:?}"
        );

        let err = pump(
            futures_util::stream::iter(chunks(&[2u8; 3000], 1000)),
            Limit::new(1 << 20, None, Some(5000)),
            &pool(),
            PLAN,
            &mut [],
            &mut VecSink::default(),
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                PumpError::Short {
                    declared: 5000,
                    received: 3000
                }
            ),
            "{err:?}"
        );
    }
}
