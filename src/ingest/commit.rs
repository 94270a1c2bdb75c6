//! The commit protocol of one upload: from a `queued` image and a stream of
//! bytes to an `active` image, or back to `queued` with nothing stored.
//!
//! Order (every failure after step 4 goes through the drop guard (`Guard`), which removes
//! the staged data and returns the image to `queued`):
//! 1. the image must be `queued` (`saving`: another upload owns it, a
//!    conflict like every lost race); signature policy (a partial `img_signature*`
//!    set is refused, `require_signature` refuses unsigned images);
//! 2. the verifier is built (certificates fetched through the key manager off
//!    the async runtime, chain checked on the blocking pool) before any byte;
//! 3. `prepare_upload` (authorization, policy, quota allowance);
//! 4. the compare-and-swap `queued → saving`, taking the upload's lease in
//!    the same transaction (renewed by a heartbeat from then on), then the
//!    staged write, whose intent is recorded with the lease before the
//!    first byte;
//! 5. one pass: limit → hashes → inspector → staged write;
//! 6. verify the signature against the shared digest, then the inspector's verdict;
//! 7. commit the store write;
//! 8. one database transaction: size, checksum, os_hash, virtual_size,
//!    locations, `active`, written only while the lease is still this
//!    upload's and unexpired (then released).
//!
//! This module must not read the data twice; it is the only place that sets
//! `Status::Active`.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_core::Stream;

use crate::clock::Clock;
use crate::config::{Compat, IngestSettings};
use crate::context::RequestContext;
use crate::image::ContainerFormat;
use crate::image::{Image, ImageId, Location, Status};
use crate::inspect::Inspector;
use crate::key_manager::{KeyManager, KeyManagerError};
use crate::repo::Error as RepoError;
use crate::repo::{Change, ImageRepo, LeaseCheck, UploadedData};
use crate::store::{Staged, StagingIntent, Store};
use crate::verify::{self, SignatureParams, Verifier};

use super::error::Error;
use super::lease::{HeldLease, Leases};
use super::limit::{Limit, LimitKind};
use super::pump::{ChunkSink, Observe, PumpError, pump};
use super::workers::{HashPlan, HashPool, WorkerError};

/// Everything the uploads into one data directory share.
pub struct Uploader<R> {
    /// The repository stack.
    pub repo: Arc<R>,
    /// The data store.
    pub store: Store,
    /// Upload settings.
    pub settings: IngestSettings,
    /// The clock for certificate checks and timestamps.
    pub clock: Arc<dyn Clock>,
    /// The process's hashing threads, shared by every upload.
    pub pool: HashPool,
    /// Where signing certificates come from; `None` refuses signed images.
    pub keys: Option<KeyManager>,
    /// Upload leases: this node's identity and the lease rows' database.
    pub leases: Leases,
}

/// The data of one upload.
pub struct UploadData<S> {
    /// The bytes, in chunks.
    pub stream: S,
    /// The size the client announced (`x-openstack-image-size`, a file's
    /// length); enforced exactly when given.
    pub declared_size: Option<u64>,
}

/// Progress callback: told the byte count after each chunk.
pub type Progress<'a> = &'a mut (dyn FnMut(u64) + Send);

impl<R: ImageRepo + 'static> Uploader<R> {
    /// Uploads `data` to the queued image `id` and makes it `active`.
    ///
    /// On any failure the image is left `queued` (or untouched when the
    /// failure came before step 4) and nothing it wrote remains in the store.
    pub async fn upload<S>(
        &self,
        ctx: &RequestContext,
        id: &ImageId,
        data: UploadData<S>,
        progress: Progress<'_>,
    ) -> Result<Image, Error>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
    {
        let repo_error = |source| Error::Repo { id: *id, source };

        // 1. The image and the signature policy.
        let queued = self.queued(ctx, id).await?;
        let Some(disk_format) = queued
            .disk_format
            .filter(|_| queued.container_format.is_some())
        else {
            return Err(Error::FormatsUnset { id: *id });
        };
        let params = self.signature_params(&queued)?;
        if params.is_none() && self.settings.require_signature {
            return Err(Error::SignatureRequired { id: *id });
        }

        // 2. The verifier, before any byte: a missing certificate fails here.
        let verifier = match params {
            Some(params) => Some(self.verifier(ctx, id, params).await?),
            None => None,
        };

        // 3. Authorization, policy and quota, and how many bytes may come.
        let allowance = self.allowance(ctx, &queued).await?;

        // 4. queued → saving, taking the lease (liveness for every node's
        //    recovery) in the same transaction.
        let lease = self.leases.new_lease();
        let claim =
            Change::claim_upload(queued.clone()).with_lease(LeaseCheck::Take(lease.clone()));
        let saving = match self.repo.save(ctx, &claim).await {
            Ok(saving) => saving,
            Err(RepoError::Conflict { .. }) => return Err(Error::Conflict { id: *id }),
            Err(err) => return Err(repo_error(err)),
        };
        let held = self.leases.hold(*id, &lease);
        // From here on the guard owns the upload: a failure or a cancelled
        // future (even while the staged write is being created) returns the
        // image to `queued`.
        let mut guard = Guard::new(self, ctx, saving.clone(), None, held);
        match self.store.stage(*id).await {
            Ok(staged) => guard.staged = Some(staged),
            Err(source) => {
                guard.rollback().await;
                return Err(Error::Store { id: *id, source });
            }
        }
        // The intent goes into the lease row before the first byte, so that
        // whoever finds this upload dead can abort it from any node.
        let intent = guard.staged_mut().intent().clone();
        match self
            .leases
            .sql
            .record_intent(*id, guard.token(), &intent)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                guard.rollback().await;
                return Err(Error::Conflict { id: *id });
            }
            Err(err) => {
                guard.rollback().await;
                return Err(repo_error(err));
            }
        }

        // 5. One pass over the data.
        let plan = HashPlan {
            os_hash: self.settings.os_hash_algo,
            signature: verifier.as_ref().map(Verifier::hash_algorithm),
        };
        let limit = Limit::new(self.settings.image_size_cap, allowance, data.declared_size);
        // Glance inspects bare containers only; the inspector watches the
        // chunk path and decides after the pass.
        let mut inspector =
            (queued.container_format == Some(ContainerFormat::Bare)).then(Inspector::new);
        let mut observers: Vec<&mut dyn Observe> = Vec::new();
        if let Some(inspector) = inspector.as_mut() {
            observers.push(inspector);
        }
        let stream = guard.watch(data.stream);
        let mut sink = StagedSink(guard.staged_mut());
        let pass = match pump(
            stream,
            limit,
            &self.pool,
            plan,
            &mut observers,
            &mut sink,
            progress,
        )
        .await
        {
            Ok(pass) => pass,
            Err(err) => {
                guard.rollback().await;
                return Err(pump_error(id, err));
            }
        };

        // 6. The signature, against the digest computed once in the pass.
        //    Fail closed: a signed image without its digest is not verified.
        if let Some(verifier) = verifier {
            let verdict = match pass.digests.signature.as_ref() {
                Some(digest) => verifier
                    .finish_with_digest(digest)
                    .map_err(|source| Error::Signature { id: *id, source }),
                None => Err(Error::Worker {
                    id: *id,
                    source: WorkerError::Died,
                }),
            };
            if let Err(err) = verdict {
                guard.rollback().await;
                return Err(err);
            }
        }
        // 6b. The format inspector's verdict (Glance's upload policy), before anything is committed.
        let virtual_size = match inspector {
            Some(inspector) => {
                let report = inspector.finish();
                match self
                    .settings
                    .format
                    .decide(&report, disk_format, pass.n_bytes)
                {
                    Ok(accepted) => {
                        for warning in &accepted.warnings {
                            tracing::warn!(image = %id, "{warning}");
                        }
                        accepted.virtual_size
                    }
                    Err(source) => {
                        guard.rollback().await;
                        return Err(Error::Format { id: *id, source });
                    }
                }
            }
            None => None,
        };

        // 7. The store write becomes the image's data (not when the lease was
        //    lost meanwhile: another node may be recovering the image).
        if guard.lease_lost() {
            guard.rollback().await;
            return Err(Error::Conflict { id: *id });
        }
        let location = match guard.commit_store().await {
            Ok(location) => location,
            Err(source) => {
                guard.rollback().await;
                return Err(Error::Store { id: *id, source });
            }
        };

        // 8. One transaction: the data fields and `active`, from `saving`.
        let commit = Change::commit_upload(
            saving,
            UploadedData {
                size: pass.n_bytes,
                virtual_size,
                checksum: pass.digests.checksum.to_hex(),
                os_hash_algo: pass.digests.os_hash.algorithm().hashlib_name().to_owned(),
                os_hash_value: pass.digests.os_hash.to_hex(),
                location,
            },
        )
        .with_lease(guard.lease_check());
        match self.repo.save(ctx, &commit).await {
            Ok(active) => {
                guard.disarm();
                Ok(active)
            }
            Err(err) => {
                guard.rollback().await;
                Err(repo_error(err))
            }
        }
    }

    /// The image `id`, which must be `queued` (`saving`: another upload
    /// owns it, a conflict like every lost race).
    pub(super) async fn queued(&self, ctx: &RequestContext, id: &ImageId) -> Result<Image, Error> {
        let queued = self
            .repo
            .get(ctx, *id)
            .await
            .map_err(|source| Error::Repo { id: *id, source })?;
        match queued.status {
            Status::Queued => Ok(queued),
            Status::Saving => Err(Error::Conflict { id: *id }),
            status => Err(Error::NotQueued { id: *id, status }),
        }
    }

    /// Authorization, policy and quota for data to `queued`: how many bytes may come.
    pub(super) async fn allowance(
        &self,
        ctx: &RequestContext,
        queued: &Image,
    ) -> Result<Option<u64>, Error> {
        match self.repo.prepare_upload(ctx, queued).await {
            Ok(allowance) => Ok(allowance.max_bytes),
            Err(RepoError::Conflict { .. }) => Err(Error::Conflict { id: queued.id }),
            Err(source) => Err(Error::Repo {
                id: queued.id,
                source,
            }),
        }
    }

    /// Parses the signature properties: `None` for an unsigned image.
    fn signature_params(&self, image: &Image) -> Result<Option<SignatureParams>, Error> {
        SignatureParams::from_properties(&image.properties, self.mode()).map_err(|source| {
            Error::Signature {
                id: image.id,
                source: source.into(),
            }
        })
    }

    fn mode(&self) -> verify::Mode {
        match self.settings.compat {
            Compat::Strict => verify::Mode::Strict,
            Compat::Cursive => verify::Mode::CompatCursive,
        }
    }

    /// Builds the verifier without blocking the async runtime:
    /// 1. the key manager fetches the signer's and every trusted certificate
    ///    (ids known up front) off the runtime into memory, Barbican with the
    ///    caller's own Keystone token (`ctx.keystone`);
    /// 2. Barbican unreadable as a whole fails closed as the signer's
    ///    certificate being unavailable (the image is untouched: `queued`);
    /// 3. `Verifier::new` (certificate parsing, key checks, chain
    ///    validation, which may check many issuer signatures) runs on the
    ///    blocking pool against that in-memory source.
    async fn verifier(
        &self,
        ctx: &RequestContext,
        id: &ImageId,
        params: SignatureParams,
    ) -> Result<Verifier, Error> {
        let keys = self.keys.as_ref().ok_or(Error::NoCertDir { id: *id })?;
        let trusted = self.settings.trusted_certificates.clone();
        let mut wanted = vec![params.certificate_id().to_owned()];
        wanted.extend(trusted.iter().flatten().cloned());
        // 1. Fetch, as the caller.
        let caller = ctx
            .keystone
            .as_deref()
            .map(crate::openstack::AuthToken::caller);
        let source = match keys.prefetch(caller.as_ref(), wanted).await {
            Ok(source) => source,
            Err(KeyManagerError::OpenDirectory { path, source }) => {
                return Err(Error::CertDir {
                    id: *id,
                    path,
                    source,
                });
            }
            // 2. Fail closed, naming the certificate.
            Err(KeyManagerError::Barbican(fetch)) => {
                let unavailable = fetch.into_source_error(params.certificate_id());
                return Err(Error::Signature {
                    id: *id,
                    source: verify::Error::Certificate(verify::CertificateError::Source(
                        unavailable,
                    )),
                });
            }
            Err(err @ KeyManagerError::Interrupted(_)) => {
                return Err(Error::KeyManager {
                    id: *id,
                    source: err,
                });
            }
        };
        // 3. Build on the blocking pool.
        let mode = self.mode();
        let clock = self.clock.clone();
        let built = tokio::task::spawn_blocking(move || {
            let options = verify::VerifyOptions {
                mode,
                trusted_certificate_ids: trusted.as_deref(),
                clock: clock.as_ref(),
            };
            Verifier::new(&params, &source, &options)
        })
        .await
        .map_err(|join| Error::KeyManager {
            id: *id,
            source: KeyManagerError::Interrupted(join),
        })?;
        built.map_err(|source| Error::Signature { id: *id, source })
    }
}

fn pump_error(id: &ImageId, err: PumpError<crate::store::Error>) -> Error {
    match err {
        PumpError::Exceeded(exceeded) if exceeded.kind == LimitKind::Declared => {
            Error::SizeExceedsDeclared {
                id: *id,
                declared: exceeded.limit,
                received: exceeded.attempted,
            }
        }
        PumpError::DeclaredOverLimit(exceeded) => Error::DeclaredTooLarge {
            id: *id,
            kind: exceeded.kind,
            limit: exceeded.limit,
            declared: exceeded.attempted,
        },
        PumpError::Exceeded(exceeded) => Error::TooLarge {
            id: *id,
            kind: exceeded.kind,
            limit: exceeded.limit,
        },
        PumpError::Short { declared, received } => Error::SizeMismatch {
            id: *id,
            declared,
            received,
        },
        PumpError::Stream { received, source } => Error::Stream {
            id: *id,
            received,
            source,
        },
        PumpError::Sink(source) => Error::Store { id: *id, source },
        PumpError::Worker(source) => Error::Worker { id: *id, source },
    }
}

impl Observe for Inspector {
    fn update(&mut self, chunk: &[u8]) {
        Inspector::update(self, chunk);
    }
}

/// The staged write as the pump's sink.
struct StagedSink<'a>(&'a mut Staged);

impl ChunkSink for StagedSink<'_> {
    type Error = crate::store::Error;
    async fn write(&mut self, chunk: Bytes) -> Result<(), Self::Error> {
        self.0.write(chunk).await
    }
}

/// Waits before the retries of a rollback's status write: a database that
/// failed (busy past its timeout, a full disk the removed data just freed)
/// gets two more chances within half a second before recovery at the next
/// start has to return the image to `queued`.
const ROLLBACK_RETRY_DELAYS: [std::time::Duration; 2] = [
    std::time::Duration::from_millis(100),
    std::time::Duration::from_millis(400),
];

/// Owns an upload from `saving` until it ends: on rollback (or drop, on any
/// early return or cancellation) it aborts the staged write, deletes a
/// committed-but-unrecorded location, and returns the image to `queued`.
struct Guard<'a, R: ImageRepo + 'static> {
    uploader: &'a Uploader<R>,
    ctx: &'a RequestContext,
    /// The image as it is while `saving`; rollback saves it back as `queued`.
    saving: Image,
    staged: Option<Staged>,
    /// A store commit was started and did not report success: it may or may
    /// not have published, so a rollback aborts this intent and deletes the
    /// image's location too (both idempotent).
    committing: Option<StagingIntent>,
    committed: Option<Location>,
    /// The upload's lease (its heartbeat runs while this is held).
    lease: Option<HeldLease>,
}

impl<'a, R: ImageRepo + 'static> Guard<'a, R> {
    fn new(
        uploader: &'a Uploader<R>,
        ctx: &'a RequestContext,
        saving: Image,
        staged: Option<Staged>,
        lease: HeldLease,
    ) -> Guard<'a, R> {
        Guard {
            uploader,
            ctx,
            saving,
            staged,
            committing: None,
            committed: None,
            lease: Some(lease),
        }
    }

    fn held(&self) -> &HeldLease {
        self.lease
            .as_ref()
            .expect("the guard holds the lease until it ends")
    }

    fn token(&self) -> &str {
        self.held().token()
    }

    fn lease_check(&self) -> LeaseCheck {
        self.held().check()
    }

    fn lease_lost(&self) -> bool {
        self.held().is_lost()
    }

    fn watch<S>(&self, stream: S) -> super::lease::Watched<S> {
        self.held().watch(stream)
    }

    fn staged_mut(&mut self) -> &mut Staged {
        self.staged
            .as_mut()
            .expect("the guard holds the staged write until commit")
    }

    async fn commit_store(&mut self) -> Result<Location, crate::store::Error> {
        let staged = self.staged.take().expect("the store is committed once");
        self.committing = Some(staged.intent().clone());
        let location = staged.commit().await?;
        self.committing = None;
        self.committed = Some(location.clone());
        Ok(location)
    }

    /// The first half of a rollback: the data goes.
    async fn remove_data(&mut self) {
        if let Some(staged) = self.staged.take()
            && let Err(err) = staged.abort().await
        {
            tracing::error!(image = %self.saving.id, error = %err, "cannot remove staged data");
        }
        if let Some(intent) = self.committing.take() {
            let store = &self.uploader.store;
            if let Err(err) = store.abort(&intent).await {
                tracing::error!(image = %self.saving.id, error = %err, "cannot remove staged data");
            }
            self.committed
                .get_or_insert_with(|| store.location_of(self.saving.id));
        }
        if let Some(location) = self.committed.take()
            && let Err(err) = self.uploader.store.delete(&location).await
        {
            tracing::error!(image = %self.saving.id, error = %err, "cannot remove stored data");
        }
    }

    /// Removes the data and returns the image to `queued` (releasing the
    /// lease in the same transaction), then stops the heartbeat.
    ///
    /// The data goes first: when the failure was a full disk (the final
    /// database commit included), removing it frees the space the status
    /// write needs. A database failure of that write is retried
    /// ([`ROLLBACK_RETRY_DELAYS`]) while the lease lives; a lost lease or
    /// any other refusal (a lost race) is final.
    async fn rollback(mut self) {
        self.remove_data().await;
        let mut rollback = Change::rollback_upload(self.saving.clone());
        rollback.lease = self.lease.as_ref().map(HeldLease::check);
        let mut delays = ROLLBACK_RETRY_DELAYS.iter();
        while let Err(err) = self.uploader.repo.save(self.ctx, &rollback).await {
            if let RepoError::Conflict { .. } = err {
                // The lease expired or was taken over: its recovery returns the image to queued.
                tracing::warn!(
                    image = %rollback.id(),
                    "the upload's lease is no longer its own; the node recovering it returns the image to queued"
                );
                break;
            }
            let retry = matches!(err, RepoError::Database { .. })
                .then(|| delays.next())
                .flatten();
            let Some(delay) = retry else {
                // Recovery returns it to queued once the lease expires or this process is gone.
                tracing::error!(image = %rollback.id(), error = %err, "cannot return the image to queued");
                break;
            };
            tracing::warn!(image = %rollback.id(), error = %err, "returning the image to queued failed; retrying");
            tokio::time::sleep(*delay).await;
        }
        self.lease.take();
    }

    /// The upload succeeded: nothing to undo.
    fn disarm(mut self) {
        self.staged = None;
        self.committing = None;
        self.committed = None;
        self.lease.take();
    }
}

impl<R: ImageRepo + 'static> Drop for Guard<'_, R> {
    fn drop(&mut self) {
        if self.staged.is_none()
            && self.committing.is_none()
            && self.committed.is_none()
            && self.lease.is_none()
        {
            return;
        }
        // Cancelled mid-upload (the future was dropped) or a panic: aborting
        // the staged write (by its intent), deleting a committed but
        // unrecorded write and the status reset all need awaiting, so they
        // run as a task that keeps the lease (and its heartbeat) until it is
        // done. Without a runtime, recovery does all three once the process
        // is gone or the lease expired.
        let mut abort = self.staged.take().map(Staged::into_intent);
        let mut committed = self.committed.take();
        if let Some(intent) = self.committing.take() {
            // Dropped while committing: it may or may not have published.
            abort = Some(intent);
            committed.get_or_insert_with(|| self.uploader.store.location_of(self.saving.id));
        }
        let lease = self.lease.take();
        let mut rollback = Change::rollback_upload(self.saving.clone());
        rollback.lease = lease.as_ref().map(HeldLease::check);
        let id = rollback.id();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let repo = self.uploader.repo.clone();
                let store = self.uploader.store.clone();
                let ctx = self.ctx.clone();
                runtime.spawn(async move {
                    if let Some(intent) = abort
                        && let Err(err) = store.abort(&intent).await
                    {
                        tracing::error!(image = %id, error = %err, "cannot remove staged data");
                    }
                    if let Some(location) = committed
                        && let Err(err) = store.delete(&location).await
                    {
                        tracing::error!(image = %id, error = %err, "cannot remove stored data");
                    }
                    if let Err(err) = repo.save(&ctx, &rollback).await {
                        tracing::error!(image = %id, error = %err, "cannot return the image to queued");
                    }
                    drop(lease);
                });
            }
            Err(_) => tracing::warn!(
                image = %id,
                "upload cancelled; the image stays saving until the next recovery returns it to queued"
            ),
        }
    }
}
