//! Hashing workers: md5 on one thread, the SHA-2 digests (os_hash, and the
//! signature digest when its algorithm differs) on another, fed the same
//! `Bytes` chunks through bounded channels.
//!
//! This is how one pass uses both cores: the pump hands each chunk to both
//! workers (a reference-count increment, no copy) and goes on storing it.
//! Channels hold at most [`CHANNEL_DEPTH`] chunks, so memory stays bounded
//! and a slow hash slows the reader down instead of queueing data. Workers
//! must not do IO or see anything but chunks.

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::hash::{Digest, HashAlgorithm, Hasher};

/// How many chunks may wait for each worker.
pub const CHANNEL_DEPTH: usize = 4;

/// Which digests one upload needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashPlan {
    /// The `os_hash_algo` (Glance's `hashing_algorithm`, sha512 by default).
    pub os_hash: HashAlgorithm,
    /// The signature's hash method, when the image is signed.
    pub signature: Option<HashAlgorithm>,
}

/// The digests of one upload, each computed exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// md5, for Glance's `checksum`.
    pub checksum: Digest,
    /// The `os_hash_value`.
    pub os_hash: Digest,
    /// The digest the signature is checked against: the os_hash digest
    /// itself when the algorithms agree (shared, not recomputed).
    pub signature: Option<Digest>,
}

/// A running worker thread: a channel in, a digest list out.
struct Worker {
    chunks: mpsc::Sender<Bytes>,
    result: oneshot::Receiver<Vec<Digest>>,
}

impl Worker {
    fn spawn(name: &str, algorithms: Vec<HashAlgorithm>) -> std::io::Result<Worker> {
        let (chunks, mut inbox) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
        let (reply, result) = oneshot::channel();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut hashers: Vec<Hasher> = algorithms.into_iter().map(Hasher::new).collect();
                while let Some(chunk) = inbox.blocking_recv() {
                    for hasher in &mut hashers {
                        hasher.update(&chunk);
                    }
                }
                // The pump may have given up (error path): nobody listens then.
                let _ = reply.send(hashers.into_iter().map(Hasher::finish).collect());
            })?;
        Ok(Worker { chunks, result })
    }
}

/// The two hashing workers of one upload.
///
/// Dropping it without [`HashWorkers::finish`] stops the threads once their
/// channels drain; nothing is leaked.
pub struct HashWorkers {
    md5: Worker,
    sha: Worker,
    plan: HashPlan,
}

/// A worker thread could not be started, or died.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The OS refused a thread.
    #[error("cannot start a hashing thread")]
    Spawn(#[source] std::io::Error),
    /// A worker ended without a result (it panicked).
    #[error("a hashing thread stopped unexpectedly")]
    Died,
}

impl HashWorkers {
    /// Starts the workers for `plan`.
    ///
    /// Fails when the OS cannot start a thread.
    pub fn start(plan: HashPlan) -> Result<HashWorkers, WorkerError> {
        let md5 = Worker::spawn("portcullis-md5", vec![HashAlgorithm::Md5])
            .map_err(WorkerError::Spawn)?;
        let mut sha_algorithms = vec![plan.os_hash];
        if let Some(signature) = plan
            .signature
            .filter(|algorithm| *algorithm != plan.os_hash)
        {
            sha_algorithms.push(signature);
        }
        let sha = Worker::spawn("portcullis-sha", sha_algorithms).map_err(WorkerError::Spawn)?;
        Ok(HashWorkers { md5, sha, plan })
    }

    /// Hands a chunk to both workers, waiting while their queues are full.
    ///
    /// Fails when a worker died.
    pub async fn feed(&self, chunk: &Bytes) -> Result<(), WorkerError> {
        self.md5
            .chunks
            .send(chunk.clone())
            .await
            .map_err(|_| WorkerError::Died)?;
        self.sha
            .chunks
            .send(chunk.clone())
            .await
            .map_err(|_| WorkerError::Died)?;
        Ok(())
    }

    /// Closes the channels and collects the digests.
    ///
    /// Fails when a worker died.
    pub async fn finish(self) -> Result<Digests, WorkerError> {
        let HashWorkers { md5, sha, plan } = self;
        drop(md5.chunks);
        drop(sha.chunks);
        let mut md5_digests = md5.result.await.map_err(|_| WorkerError::Died)?.into_iter();
        let mut sha_digests = sha.result.await.map_err(|_| WorkerError::Died)?.into_iter();
        let checksum = md5_digests.next().ok_or(WorkerError::Died)?;
        let os_hash = sha_digests.next().ok_or(WorkerError::Died)?;
        let signature = match plan.signature {
            None => None,
            Some(algorithm) if algorithm == plan.os_hash => Some(os_hash.clone()),
            Some(_) => Some(sha_digests.next().ok_or(WorkerError::Died)?),
        };
        Ok(Digests {
            checksum,
            os_hash,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(algorithm: HashAlgorithm, data: &[u8]) -> Digest {
        let mut hasher = algorithm.hasher();
        hasher.update(data);
        hasher.finish()
    }

    async fn run(plan: HashPlan, data: &[u8]) -> Digests {
        let workers = HashWorkers::start(plan).unwrap();
        for piece in data.chunks(1000) {
            workers.feed(&Bytes::copy_from_slice(piece)).await.unwrap();
        }
        workers.finish().await.unwrap()
    }

    #[tokio::test]
    async fn shares_the_os_hash_digest_with_the_signature() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let plan = HashPlan {
            os_hash: HashAlgorithm::Sha512,
            signature: Some(HashAlgorithm::Sha512),
        };
        let digests = run(plan, &data).await;
        assert_eq!(digests.checksum, digest_of(HashAlgorithm::Md5, &data));
        assert_eq!(digests.os_hash, digest_of(HashAlgorithm::Sha512, &data));
        assert_eq!(digests.signature, Some(digests.os_hash.clone()));
    }

    #[tokio::test]
    async fn computes_a_different_signature_hash_separately() {
        let data = vec![7u8; 4321];
        let plan = HashPlan {
            os_hash: HashAlgorithm::Sha512,
            signature: Some(HashAlgorithm::Sha256),
        };
        let digests = run(plan, &data).await;
        assert_eq!(
            digests.signature,
            Some(digest_of(HashAlgorithm::Sha256, &data))
        );
        let unsigned = run(
            HashPlan {
                os_hash: HashAlgorithm::Sha256,
                signature: None,
            },
            b"",
        )
        .await;
        assert_eq!(unsigned.signature, None);
        assert_eq!(
            unsigned.checksum.to_hex(),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
    }
}
