//! One staged write to S3: a multipart upload fed from the caller's chunks.
//!
//! It owns part assembly and backpressure: chunks are held by reference (a
//! `Bytes` is split, never copied, at part boundaries) until a part is full,
//! the part uploads on a task of its own while the next one fills, and a
//! write waits whenever `parts_in_flight` parts are held, so memory stays at
//! most `part_size × parts_in_flight`. It must not write anything locally,
//! and its `Drop` does no I/O (it cancels its own part tasks; the multipart
//! upload is left for whoever aborts the intent).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use object_store::PutPayload;
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use tokio::task::JoinHandle;

use super::super::config::{S3_MAX_PARTS, S3Config};
use super::super::{Error, StagingIntent};
use crate::image::Location;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Failed,
    Done,
}

/// A part being uploaded, and how many bytes it holds.
#[derive(Debug)]
struct InFlight {
    task: JoinHandle<Result<PartId, object_store::Error>>,
    len: u64,
}

/// A staged write to S3 (see [`crate::store::Staged`]).
#[derive(Debug)]
pub(crate) struct S3Staged {
    client: Arc<AmazonS3>,
    intent: StagingIntent,
    path: ObjectPath,
    upload_id: String,
    /// `s3://bucket/key`, for error messages.
    target: String,
    location: Location,
    part_size: u64,
    parts_in_flight: usize,
    /// The part being filled: references to the caller's chunks.
    filling: Vec<Bytes>,
    filling_len: u64,
    /// Parts uploading, oldest first (they complete into `parts` in order).
    uploading: VecDeque<InFlight>,
    parts: Vec<PartId>,
    next_part: usize,
    n_bytes: u64,
    held: u64,
    peak_held: u64,
    state: State,
}

/// Aborts a multipart upload; one that is already gone is success.
pub(super) async fn abort_upload(
    client: &AmazonS3,
    path: &ObjectPath,
    upload_id: &str,
) -> Result<(), object_store::Error> {
    match client.abort_multipart(path, &upload_id.to_owned()).await {
        // AWS answers 404 NoSuchUpload for an upload already aborted or
        // completed; SeaweedFS answers 204.
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(err) => Err(err),
    }
}

impl S3Staged {
    pub(super) fn new(
        client: Arc<AmazonS3>,
        intent: StagingIntent,
        path: ObjectPath,
        upload_id: String,
        target: String,
        location: Location,
        config: &S3Config,
    ) -> S3Staged {
        S3Staged {
            client,
            intent,
            path,
            upload_id,
            target,
            location,
            part_size: config.part_size,
            parts_in_flight: config.parts_in_flight.max(1),
            filling: Vec::new(),
            filling_len: 0,
            uploading: VecDeque::new(),
            parts: Vec::new(),
            next_part: 0,
            n_bytes: 0,
            held: 0,
            peak_held: 0,
            state: State::Open,
        }
    }

    pub(crate) fn intent(&self) -> &StagingIntent {
        &self.intent
    }

    pub(crate) fn bytes_written(&self) -> u64 {
        self.n_bytes
    }

    pub(crate) fn peak_held_bytes(&self) -> u64 {
        self.peak_held
    }

    fn failed(&self) -> Error {
        Error::Failed {
            id: self.intent.image_id(),
        }
    }

    pub(crate) async fn write(&mut self, mut data: Bytes) -> Result<(), Error> {
        if self.state != State::Open {
            return Err(self.failed());
        }
        while !data.is_empty() {
            // Backpressure: the part being filled is one of the parts held,
            // so filling may go on only while fewer than `parts_in_flight`
            // parts upload.
            while self.uploading.len() >= self.parts_in_flight {
                self.finish_oldest().await?;
            }
            let room = self.part_size - self.filling_len;
            let piece = if data.len() as u64 <= room {
                std::mem::take(&mut data)
            } else {
                // `room` < data.len(), which is a usize.
                data.split_to(room as usize)
            };
            let len = piece.len() as u64;
            self.filling.push(piece);
            self.filling_len += len;
            self.n_bytes += len;
            self.held += len;
            self.peak_held = self.peak_held.max(self.held);
            if self.filling_len == self.part_size {
                self.launch_part()?;
            }
        }
        Ok(())
    }

    /// Starts uploading the part being filled, on a task of its own so it
    /// progresses while the caller hashes the next chunks.
    fn launch_part(&mut self) -> Result<(), Error> {
        if self.next_part as u64 >= S3_MAX_PARTS {
            self.state = State::Failed;
            return Err(Error::S3 {
                operation: "upload part",
                target: self.target.clone(),
                source: Box::new(object_store::Error::Generic {
                    store: "S3",
                    source: format!(
                        "the image is larger than S3's {S3_MAX_PARTS} parts of {} bytes: configure a larger part_size",
                        self.part_size
                    )
                    .into(),
                }),
            });
        }
        let payload: PutPayload = self.filling.drain(..).collect();
        let len = std::mem::take(&mut self.filling_len);
        let client = self.client.clone();
        let path = self.path.clone();
        let upload_id = self.upload_id.clone();
        let part_idx = self.next_part;
        self.next_part += 1;
        let task =
            tokio::spawn(
                async move { client.put_part(&path, &upload_id, part_idx, payload).await },
            );
        self.uploading.push_back(InFlight { task, len });
        Ok(())
    }

    /// Waits for the oldest part in flight; on failure the upload is aborted.
    ///
    /// Cancel-safe: the part leaves the queue only once its task finished.
    async fn finish_oldest(&mut self) -> Result<(), Error> {
        let Some(oldest) = self.uploading.front_mut() else {
            return Ok(());
        };
        let result = (&mut oldest.task).await;
        let in_flight = self
            .uploading
            .pop_front()
            .expect("the part awaited is still first");
        self.held -= in_flight.len;
        match result {
            Ok(Ok(part)) => {
                self.parts.push(part);
                Ok(())
            }
            Ok(Err(source)) => Err(self.fail("upload part", source).await),
            Err(join) => Err(self
                .fail(
                    "upload part",
                    object_store::Error::Generic {
                        store: "S3",
                        source: Box::new(join),
                    },
                )
                .await),
        }
    }

    pub(crate) async fn commit(&mut self) -> Result<Location, Error> {
        if self.state != State::Open {
            return Err(self.failed());
        }
        if self.filling_len > 0 {
            // The last part may be shorter than S3's 5 MiB minimum.
            self.launch_part()?;
        }
        while !self.uploading.is_empty() {
            self.finish_oldest().await?;
        }
        // Completing the upload is the commit point: the object appears
        // whole, at once. An upload without parts gets one empty part from
        // object_store, so empty images commit too.
        let parts = std::mem::take(&mut self.parts);
        match self
            .client
            .complete_multipart(&self.path, &self.upload_id, parts)
            .await
        {
            Ok(_) => {
                self.state = State::Done;
                Ok(self.location.clone())
            }
            Err(source) => Err(self.fail("complete multipart upload", source).await),
        }
    }

    pub(crate) async fn abort(&mut self) -> Result<(), Error> {
        self.state = State::Done;
        self.drain().await;
        abort_upload(&self.client, &self.path, &self.upload_id)
            .await
            .map_err(|source| Error::S3 {
                operation: "abort multipart upload",
                target: self.target.clone(),
                source: Box::new(source),
            })
    }

    /// Lets the parts in flight finish (whatever their outcome), so that no
    /// part lands after an abort, and releases what they and the filling
    /// part hold.
    async fn drain(&mut self) {
        while let Some(in_flight) = self.uploading.pop_front() {
            let _ = in_flight.task.await;
            self.held -= in_flight.len;
        }
        self.filling.clear();
        self.held -= std::mem::take(&mut self.filling_len);
    }

    /// Marks the write failed and aborts the multipart upload (best effort:
    /// the intent stays abortable).
    async fn fail(&mut self, operation: &'static str, source: object_store::Error) -> Error {
        self.state = State::Failed;
        self.drain().await;
        if let Err(cleanup) = abort_upload(&self.client, &self.path, &self.upload_id).await {
            tracing::warn!(
                image = %self.intent.image_id(),
                error = %cleanup,
                "could not abort the multipart upload after a failed {operation}; its intent stays abortable"
            );
        }
        Error::S3 {
            operation,
            target: self.target.clone(),
            source: Box::new(source),
        }
    }
}

impl Drop for S3Staged {
    fn drop(&mut self) {
        // Cancel our own part uploads (no request is made here): their
        // memory goes at once; the multipart upload waits for its abort.
        for in_flight in &self.uploading {
            in_flight.task.abort();
        }
    }
}
