//! Hashing on a shared, bounded pool of threads: md5 in one lane, the SHA-2
//! digests (os_hash, and the signature digest when its algorithm differs) in
//! another, each lane fed the same `Bytes` chunks in order.
//!
//! [`HashPool`] is created once per process (by `app::App::open`) with one
//! thread per core and shared by every upload and download: a server with
//! many uploads never starts threads per upload, and hashing never runs on
//! the async runtime's threads. A lane is a queue with its own hasher; the
//! pool runs a lane's queued chunks on whichever pool thread is free, one
//! lane at most on one thread at a time (so chunks are hashed in order) and
//! the two lanes of one upload on two threads at once (so md5 and SHA-512
//! still run in parallel with each other and with reading and storing).
//! A lane gives its thread up after [`BATCH`] chunks when other lanes are
//! waiting, so many uploads share the pool fairly, and keeps it otherwise,
//! so one upload's hashers stay on their threads (and caches). Each lane
//! holds at most [`CHANNEL_DEPTH`] waiting chunks besides the one being
//! hashed; a slow hash slows its feeder down instead of queueing data, so
//! memory stays bounded. Workers must not do IO or see anything but chunks.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::{Semaphore, oneshot};

use crate::hash::{Digest, HashAlgorithm, Hasher};

/// How many chunks may wait in each lane (besides the one being hashed).
pub const CHANNEL_DEPTH: usize = 4;

/// How many chunks a lane hashes before it lets a waiting lane have the thread.
pub const BATCH: usize = 8;

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

/// A hashing thread could not be started, or a lane died.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The OS refused a thread (only when the pool is created).
    #[error("cannot start a hashing thread")]
    Spawn(#[source] std::io::Error),
    /// A lane ended without a result (its hasher panicked).
    #[error("a hashing thread stopped unexpectedly")]
    Died,
}

/// The process's hashing threads; cheap to clone (one shared pool).
///
/// The threads end when the last clone and the last lane fed by the pool are gone.
#[derive(Clone)]
pub struct HashPool {
    shared: Arc<PoolShared>,
}

struct PoolShared {
    jobs: std::sync::mpsc::Sender<Arc<Lane>>,
    /// Lanes submitted and not yet taken by a thread.
    waiting: AtomicUsize,
    n_threads: usize,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("n_threads", &self.shared.n_threads)
            .finish()
    }
}

impl HashPool {
    /// Starts `n_threads` hashing threads (at least one), named `portcullis-hash`.
    ///
    /// Fails when the OS refuses a thread.
    pub fn new(n_threads: usize) -> Result<HashPool, WorkerError> {
        HashPool::with_name(n_threads, "portcullis-hash")
    }

    /// One thread per core, as `std::thread::available_parallelism` counts them
    /// (two when it cannot tell).
    ///
    /// Fails when the OS refuses a thread.
    pub fn per_core() -> Result<HashPool, WorkerError> {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        HashPool::new(cores)
    }

    pub(crate) fn with_name(n_threads: usize, name: &str) -> Result<HashPool, WorkerError> {
        let n_threads = n_threads.max(1);
        let (jobs, inbox) = std::sync::mpsc::channel::<Arc<Lane>>();
        let inbox = Arc::new(Mutex::new(inbox));
        for _ in 0..n_threads {
            let inbox = inbox.clone();
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || {
                    loop {
                        // Only the wait for a job holds the lock; hashing does not.
                        let next = lock(&inbox).recv();
                        let Ok(lane) = next else {
                            return; // Every sender is gone: the pool is dropped.
                        };
                        lane.pool.shared.waiting.fetch_sub(1, Ordering::Relaxed);
                        lane.run();
                    }
                })
                .map_err(WorkerError::Spawn)?;
        }
        Ok(HashPool {
            shared: Arc::new(PoolShared {
                jobs,
                waiting: AtomicUsize::new(0),
                n_threads,
            }),
        })
    }

    /// How many threads the pool runs.
    pub fn n_threads(&self) -> usize {
        self.shared.n_threads
    }

    fn submit(&self, lane: Arc<Lane>) {
        self.shared.waiting.fetch_add(1, Ordering::Relaxed);
        // The pool's threads live as long as any sender (this one) does.
        let _ = self.shared.jobs.send(lane);
    }

    /// Whether a lane waits for a thread (a hint: it may change at once).
    fn has_waiting(&self) -> bool {
        self.shared.waiting.load(Ordering::Relaxed) > 0
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while a lock was held only ever happens in a hasher, and that
    // lane is marked dead (its result dropped); the queue itself stays valid.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One sequence of chunks and the hashers that digest it, in order.
struct Lane {
    pool: HashPool,
    state: Mutex<LaneState>,
    /// Touched only by the one pool thread running the lane, and by
    /// `finish` once the lane is idle: never contended.
    hashers: Mutex<Vec<Hasher>>,
    /// Free places in the queue: taken by the feeder, given back when a
    /// chunk leaves the queue; closed when the lane dies, waking the feeder.
    space: Semaphore,
}

struct LaneState {
    queue: VecDeque<Bytes>,
    /// A pool thread runs the lane or has it queued.
    scheduled: bool,
    /// No more chunks will come: the result goes out when the queue is empty.
    closed: bool,
    /// The feeder gave up: drop what is queued, hash nothing more.
    cancelled: bool,
    reply: Option<oneshot::Sender<Vec<Digest>>>,
}

impl Lane {
    fn new(
        pool: &HashPool,
        algorithms: Vec<HashAlgorithm>,
    ) -> (Arc<Lane>, oneshot::Receiver<Vec<Digest>>) {
        let (reply, result) = oneshot::channel();
        let lane = Arc::new(Lane {
            pool: pool.clone(),
            state: Mutex::new(LaneState {
                queue: VecDeque::with_capacity(CHANNEL_DEPTH),
                scheduled: false,
                closed: false,
                cancelled: false,
                reply: Some(reply),
            }),
            hashers: Mutex::new(algorithms.into_iter().map(Hasher::new).collect()),
            space: Semaphore::new(CHANNEL_DEPTH),
        });
        (lane, result)
    }

    /// Queues a chunk, waiting while the lane is full.
    async fn feed(self: &Arc<Lane>, chunk: Bytes) -> Result<(), WorkerError> {
        self.space
            .acquire()
            .await
            .map_err(|_| WorkerError::Died)?
            .forget();
        let schedule = {
            let mut state = lock(&self.state);
            if state.reply.is_none() {
                return Err(WorkerError::Died);
            }
            state.queue.push_back(chunk);
            !std::mem::replace(&mut state.scheduled, true)
        };
        if schedule {
            self.pool.submit(self.clone());
        }
        Ok(())
    }

    /// No more chunks; the digests arrive once the queue is hashed.
    fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        if !state.scheduled {
            self.reply(&mut state);
        }
    }

    /// The feeder is gone: forget the queue (nothing waits for the result).
    fn cancel(&self) {
        let mut state = lock(&self.state);
        state.cancelled = true;
        state.queue.clear();
        state.reply = None;
    }

    /// Sends the digests; the lane must be idle (not scheduled).
    fn reply(&self, state: &mut LaneState) {
        if let Some(reply) = state.reply.take() {
            let hashers = std::mem::take(&mut *lock(&self.hashers));
            let _ = reply.send(hashers.into_iter().map(Hasher::finish).collect());
        }
    }

    /// On a pool thread: hashes up to [`BATCH`] queued chunks, then either
    /// goes idle (queue empty) or queues itself behind the other lanes.
    fn run(self: Arc<Lane>) {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.hash_batch()));
        match outcome {
            Ok(true) => self.pool.submit(self.clone()),
            Ok(false) => {}
            Err(_) => {
                // A hasher panicked: the lane is dead. Dropping the reply
                // makes `finish` fail, closing the semaphore wakes a feeder.
                let mut state = lock(&self.state);
                state.reply = None;
                state.queue.clear();
                state.scheduled = false;
                self.space.close();
            }
        }
    }

    /// Returns whether the lane still has chunks and must be run again
    /// (after the lanes waiting for a thread).
    fn hash_batch(&self) -> bool {
        let mut hashed = 0;
        loop {
            if hashed >= BATCH && self.pool.has_waiting() {
                break;
            }
            hashed += 1;
            let chunk = {
                let mut state = lock(&self.state);
                match state.queue.pop_front() {
                    Some(chunk) if !state.cancelled => chunk,
                    Some(_) | None => {
                        state.scheduled = false;
                        if state.closed {
                            self.reply(&mut state);
                        }
                        return false;
                    }
                }
            };
            // The place is free once the chunk left the queue: the feeder
            // refills it while this one is hashed (at most CHANNEL_DEPTH
            // waiting plus the one in hand, as a channel to a thread).
            self.space.add_permits(1);
            for hasher in lock(&self.hashers).iter_mut() {
                hasher.update(&chunk);
            }
        }
        let mut state = lock(&self.state);
        if state.queue.is_empty() || state.cancelled {
            state.scheduled = false;
            if state.closed {
                self.reply(&mut state);
            }
            return false;
        }
        true
    }
}

/// The two hashing lanes of one upload (or verified download).
///
/// Dropping it without [`HashWorkers::finish`] drops whatever is still
/// queued; nothing is leaked and the pool's threads go on.
pub struct HashWorkers {
    md5: Arc<Lane>,
    md5_result: Option<oneshot::Receiver<Vec<Digest>>>,
    sha: Arc<Lane>,
    sha_result: Option<oneshot::Receiver<Vec<Digest>>>,
    plan: HashPlan,
}

impl HashWorkers {
    /// Opens the two lanes for `plan` on `pool`.
    pub fn start(pool: &HashPool, plan: HashPlan) -> HashWorkers {
        let (md5, md5_result) = Lane::new(pool, vec![HashAlgorithm::Md5]);
        let mut sha_algorithms = vec![plan.os_hash];
        if let Some(signature) = plan
            .signature
            .filter(|algorithm| *algorithm != plan.os_hash)
        {
            sha_algorithms.push(signature);
        }
        let (sha, sha_result) = Lane::new(pool, sha_algorithms);
        HashWorkers {
            md5,
            md5_result: Some(md5_result),
            sha,
            sha_result: Some(sha_result),
            plan,
        }
    }

    /// Hands a chunk to both lanes (a reference-count increment, no copy),
    /// waiting while either is full.
    ///
    /// Fails when a lane died.
    pub async fn feed(&self, chunk: &Bytes) -> Result<(), WorkerError> {
        self.md5.feed(chunk.clone()).await?;
        self.sha.feed(chunk.clone()).await
    }

    /// Closes the lanes and collects the digests.
    ///
    /// Fails when a lane died.
    pub async fn finish(mut self) -> Result<Digests, WorkerError> {
        self.md5.close();
        self.sha.close();
        let md5_result = self.md5_result.take().ok_or(WorkerError::Died)?;
        let sha_result = self.sha_result.take().ok_or(WorkerError::Died)?;
        let mut md5_digests = md5_result.await.map_err(|_| WorkerError::Died)?.into_iter();
        let mut sha_digests = sha_result.await.map_err(|_| WorkerError::Died)?.into_iter();
        let checksum = md5_digests.next().ok_or(WorkerError::Died)?;
        let os_hash = sha_digests.next().ok_or(WorkerError::Died)?;
        let signature = match self.plan.signature {
            None => None,
            Some(algorithm) if algorithm == self.plan.os_hash => Some(os_hash.clone()),
            Some(_) => Some(sha_digests.next().ok_or(WorkerError::Died)?),
        };
        Ok(Digests {
            checksum,
            os_hash,
            signature,
        })
    }
}

impl Drop for HashWorkers {
    fn drop(&mut self) {
        // Still waiting for results: the caller gave up part-way.
        if self.md5_result.is_some() {
            self.md5.cancel();
            self.sha.cancel();
        }
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

    async fn run(pool: &HashPool, plan: HashPlan, data: &[u8]) -> Digests {
        let workers = HashWorkers::start(pool, plan);
        for piece in data.chunks(1000) {
            workers.feed(&Bytes::copy_from_slice(piece)).await.unwrap();
        }
        workers.finish().await.unwrap()
    }

    #[tokio::test]
    async fn shares_the_os_hash_digest_with_the_signature() {
        let pool = HashPool::new(2).unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let plan = HashPlan {
            os_hash: HashAlgorithm::Sha512,
            signature: Some(HashAlgorithm::Sha512),
        };
        let digests = run(&pool, plan, &data).await;
        assert_eq!(digests.checksum, digest_of(HashAlgorithm::Md5, &data));
        assert_eq!(digests.os_hash, digest_of(HashAlgorithm::Sha512, &data));
        assert_eq!(digests.signature, Some(digests.os_hash.clone()));
    }

    #[tokio::test]
    async fn computes_a_different_signature_hash_separately() {
        let pool = HashPool::new(1).unwrap();
        let data = vec![7u8; 4321];
        let plan = HashPlan {
            os_hash: HashAlgorithm::Sha512,
            signature: Some(HashAlgorithm::Sha256),
        };
        let digests = run(&pool, plan, &data).await;
        assert_eq!(
            digests.signature,
            Some(digest_of(HashAlgorithm::Sha256, &data))
        );
        let unsigned = run(
            &pool,
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

    /// The threads of this process whose name is `name` (Linux: /proc/self/task/*/comm).
    fn threads_named(name: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == name)
            .count()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_uploads_share_the_pool_threads_and_get_their_own_digests() {
        // A name no other test uses, so the thread count is this pool's.
        let pool = HashPool::with_name(2, "pc-hash-shared").unwrap();
        // A new thread names itself once it runs: wait for both.
        let started = std::time::Instant::now();
        while threads_named("pc-hash-shared") < 2 {
            assert!(
                started.elapsed().as_secs() < 10,
                "pool threads never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(threads_named("pc-hash-shared"), 2);
        let mut tasks = Vec::new();
        for seed in 0..24u8 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let data: Vec<u8> = (0..50_000u32).map(|i| (i as u8) ^ seed).collect();
                let digests = run(
                    &pool,
                    HashPlan {
                        os_hash: HashAlgorithm::Sha512,
                        signature: Some(HashAlgorithm::Sha256),
                    },
                    &data,
                )
                .await;
                assert_eq!(digests.checksum, digest_of(HashAlgorithm::Md5, &data));
                assert_eq!(digests.os_hash, digest_of(HashAlgorithm::Sha512, &data));
                assert_eq!(
                    digests.signature,
                    Some(digest_of(HashAlgorithm::Sha256, &data))
                );
                threads_named("pc-hash-shared")
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), 2, "no upload may start a thread");
        }
        // Abandoned uploads (dropped without finish) leave the pool usable.
        for _ in 0..3 {
            let workers = HashWorkers::start(
                &pool,
                HashPlan {
                    os_hash: HashAlgorithm::Sha512,
                    signature: None,
                },
            );
            workers
                .feed(&Bytes::from(vec![1u8; 100_000]))
                .await
                .unwrap();
            drop(workers);
        }
        let digests = run(
            &pool,
            HashPlan {
                os_hash: HashAlgorithm::Sha512,
                signature: None,
            },
            b"abc",
        )
        .await;
        assert_eq!(
            digests.checksum.to_hex(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        drop(pool);
        // The threads end with the pool.
        let started = std::time::Instant::now();
        while threads_named("pc-hash-shared") != 0 {
            assert!(
                started.elapsed().as_secs() < 10,
                "pool threads outlived the pool"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
