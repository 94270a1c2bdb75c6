//! `glance upload`: publish one image file to any Glance, checked before
//! anything is sent and cleaned up when the server refuses it.
//!
//! The steps:
//! 1. the file is read once locally through the one-pass pump: the format
//!    inspector (an unsafe image, or data that is not the declared
//!    `disk_format`, is refused by Glance's upload policy before anything
//!    is sent; bare containers only, as Glance), md5 and sha512 (to compare
//!    with what the server records), and the signing digest;
//! 2. with a key, the four `img_signature*` properties, as `portcullis
//!    sign` makes them;
//! 3. `POST /v2/images` with the properties;
//! 4. `PUT /v2/images/{id}/file`, the file streamed again with its length
//!    declared (a file whose length changed since step 1 is not sent);
//! 5. `GET /v2/images/{id}`: `active`, with the size and checksum of step
//!    1 (and its sha512 when the server's os_hash is sha512), so a file
//!    changed between the two reads, or data altered on the way, fails.
//!
//! Any failure after step 3 deletes the image (`DELETE`, as openstacksdk
//! does after a failed upload) unless the caller keeps it. This module must
//! not print, and must not leave an image behind that it did not say it left.

use std::io;
use std::path::PathBuf;

use futures_util::StreamExt;

use super::client::{Client, ClientError};
use super::pass::read_once;
use crate::hash::HashAlgorithm;
use crate::image::{ContainerFormat, DiskFormat, Properties};
use crate::ingest::pump::PumpError;
use crate::ingest::source;
use crate::ingest::workers::{HashPlan, HashPool};
use crate::inspect::Inspector;
use crate::inspect::policy::{Accepted, FormatPolicy, Rejection};
use crate::verify::HashMethod;
use crate::verify::sign::{SignError, SigningKey, signature_properties};
use crate::wire::{self, ServedImage};

/// What signs the image.
#[derive(Debug)]
pub struct Signing {
    /// The private key.
    pub key: SigningKey,
    /// `img_signature_certificate_uuid`: the certificate holding its public key.
    pub certificate_id: String,
    /// `img_signature_hash_method`.
    pub hash_method: HashMethod,
}

/// One upload.
#[derive(Debug)]
pub struct UploadRequest {
    /// The image file.
    pub file: PathBuf,
    /// The image's name.
    pub name: String,
    /// The declared disk format.
    pub disk_format: DiskFormat,
    /// The declared container format.
    pub container_format: ContainerFormat,
    /// `visibility`, when not the server's default.
    pub visibility: Option<String>,
    /// Additional properties (checked by the caller with Glance's rules).
    pub properties: Properties,
    /// Sign with this key.
    pub signing: Option<Signing>,
    /// Leave the image on the server when its upload fails.
    pub keep_on_failure: bool,
    /// The format policy of the local check (Glance's default).
    pub format_policy: FormatPolicy,
}

/// What the local read found.
#[derive(Debug, Clone)]
pub struct LocalPass {
    /// The file's length.
    pub n_bytes: u64,
    /// Its md5 (Glance's `checksum`).
    pub md5: String,
    /// Its sha512 (Glance's default `os_hash_value`).
    pub sha512: String,
    /// The format policy's acceptance (`None`: not a bare container, not inspected).
    pub accepted: Option<Accepted>,
}

/// A successful upload.
#[derive(Debug)]
pub struct Uploaded {
    /// The image as the server shows it, `active`.
    pub image: ServedImage,
    /// The local read.
    pub local: LocalPass,
    /// Whether the upload carried a signature made here.
    pub signed: bool,
}

/// Which part of the upload a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Step 1, the local read.
    Inspecting,
    /// Step 4, the upload.
    Uploading,
}

/// Told how the upload goes (a progress bar); every method is a no-op by default.
pub trait UploadProgress: Sync {
    /// A phase of `total` bytes starts.
    fn phase(&self, _phase: Phase, _total: u64) {}
    /// `n` more bytes of the phase went through.
    fn advance(&self, _n: u64) {}
}

/// What became of the image after a failure.
#[derive(Debug)]
pub enum Cleanup {
    /// Deleted from the server.
    Deleted,
    /// Left on the server, as asked.
    Kept,
    /// The delete failed: the image is still there.
    DeleteFailed(Box<ClientError>),
}

impl std::fmt::Display for Cleanup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cleanup::Deleted => f.write_str("the image was deleted"),
            Cleanup::Kept => f.write_str("the image was kept (--keep-on-failure)"),
            Cleanup::DeleteFailed(error) => write!(
                f,
                "deleting the image failed, it is still on the server: {}",
                crate::verify::with_causes(error.as_ref())
            ),
        }
    }
}

/// An upload that did not end with an active image matching the file.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The file cannot be read (nothing was sent).
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The local inspection refuses the data (nothing was sent).
    #[error("{}: refused before anything was sent: {rejection}", .path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Glance's policy's reason.
        rejection: Rejection,
    },
    /// Signing failed (nothing was sent).
    #[error("cannot sign {}", .path.display())]
    Sign {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: SignError,
    },
    /// The server refused to create the image, or could not be reached.
    #[error("creating the image failed")]
    Create(#[source] ClientError),
    /// The data upload failed (the server's refusal carries its reason).
    #[error("uploading the data of image {id} failed; {cleanup}")]
    Upload {
        /// The image.
        id: String,
        /// The failure.
        #[source]
        source: ClientError,
        /// What became of the image.
        cleanup: Cleanup,
    },
    /// The image could not be read back after its upload.
    #[error("reading image {id} back after its upload failed; {cleanup}")]
    Show {
        /// The image.
        id: String,
        /// The failure.
        #[source]
        source: ClientError,
        /// What became of the image.
        cleanup: Cleanup,
    },
    /// The server accepted the data but the image is not active.
    #[error("image {id} is {status} after its upload, not active; {cleanup}")]
    NotActive {
        /// The image.
        id: String,
        /// Its status.
        status: String,
        /// What became of the image.
        cleanup: Cleanup,
    },
    /// The server recorded another size or digest than the file's.
    #[error(
        "image {id}: the server recorded {field} {served:?} but the file's is {local}: the file changed while it was sent, or the data was altered on the way; {cleanup}"
    )]
    Mismatch {
        /// The image.
        id: String,
        /// `size`, `checksum` or `os_hash_value`.
        field: &'static str,
        /// The server's value.
        served: Option<String>,
        /// The file's.
        local: String,
        /// What became of the image.
        cleanup: Cleanup,
    },
}

impl UploadError {
    /// A stable snake_case name.
    pub fn kind(&self) -> &'static str {
        match self {
            UploadError::Read { .. } => "io_error",
            UploadError::Format { rejection, .. } => rejection.kind(),
            UploadError::Sign { .. } => "sign_failed",
            UploadError::Create(source)
            | UploadError::Upload { source, .. }
            | UploadError::Show { source, .. } => source.kind(),
            UploadError::NotActive { .. } => "not_active",
            UploadError::Mismatch { .. } => "mismatch",
        }
    }

    /// Whether the image was refused (exit 1) rather than the upload being
    /// impossible (exit 2: the file, the key, the connection).
    pub fn is_rejection(&self) -> bool {
        match self {
            UploadError::Read { .. } | UploadError::Sign { .. } => false,
            UploadError::Format { .. }
            | UploadError::NotActive { .. }
            | UploadError::Mismatch { .. } => true,
            UploadError::Create(source)
            | UploadError::Upload { source, .. }
            | UploadError::Show { source, .. } => !source.is_connection(),
        }
    }

    /// The image id, once one was created.
    pub fn image_id(&self) -> Option<&str> {
        match self {
            UploadError::Read { .. }
            | UploadError::Format { .. }
            | UploadError::Sign { .. }
            | UploadError::Create(_) => None,
            UploadError::Upload { id, .. }
            | UploadError::Show { id, .. }
            | UploadError::NotActive { id, .. }
            | UploadError::Mismatch { id, .. } => Some(id),
        }
    }
}

/// Uploads `request` to `client`'s Glance (see the module's steps).
///
/// Fails with what went wrong; once the image exists, the error says
/// whether it was deleted or kept.
pub async fn upload(
    client: &Client,
    pool: &HashPool,
    mut request: UploadRequest,
    progress: &dyn UploadProgress,
) -> Result<Uploaded, UploadError> {
    let path = request.file.clone();
    let read_error = |source: io::Error| UploadError::Read {
        path: path.clone(),
        source,
    };

    // 1. The local read: inspector, md5, sha512, the signing digest.
    let (stream, length) = source::file_stream(&path).map_err(read_error)?;
    progress.phase(Phase::Inspecting, length);
    let signing_algorithm = request
        .signing
        .as_ref()
        .map(|signing| signing.hash_method.algorithm());
    let inspect = request.container_format == ContainerFormat::Bare;
    let mut inspector = inspect.then(Inspector::new);
    let pass = read_once(
        stream,
        Some(length),
        pool,
        HashPlan {
            os_hash: HashAlgorithm::Sha512,
            signature: signing_algorithm,
        },
        inspector.as_mut(),
        &|n| progress.advance(n),
    )
    .await
    .map_err(|err| read_error(pump_io_error(err)))?;
    let accepted = match inspector {
        Some(inspector) => Some(
            request
                .format_policy
                .decide(&inspector.finish(), request.disk_format, pass.n_bytes)
                .map_err(|rejection| UploadError::Format {
                    path: path.clone(),
                    rejection,
                })?,
        ),
        None => None,
    };
    let local = LocalPass {
        n_bytes: pass.n_bytes,
        md5: pass.digests.checksum.to_hex(),
        sha512: pass.digests.os_hash.to_hex(),
        accepted,
    };

    // 2. The signature properties.
    let signed = request.signing.is_some();
    if let Some(signing) = &request.signing {
        let digest = pass
            .digests
            .signature
            .as_ref()
            .ok_or_else(|| UploadError::Sign {
                path: path.clone(),
                source: SignError::Signing("the signing digest was not computed".to_owned()),
            })?;
        let signature = signing
            .key
            .sign_digest(digest)
            .map_err(|source| UploadError::Sign {
                path: path.clone(),
                source,
            })?;
        request.properties.extend(signature_properties(
            &signature,
            signing.hash_method,
            signing.key.key_type(),
            &signing.certificate_id,
        ));
    }

    // The second read is opened before anything is created: a file that is
    // gone or changed length is refused with nothing left on the server.
    let (data, length_now) = source::file_stream(&path).map_err(read_error)?;
    if length_now != local.n_bytes {
        return Err(read_error(io::Error::other(format!(
            "the file changed length while it was read ({} then {length_now} bytes)",
            local.n_bytes
        ))));
    }

    // 3. The image record.
    let body = wire::create_body(
        &request.name,
        request.disk_format.as_str(),
        request.container_format.as_str(),
        request.visibility.as_deref(),
        &request.properties,
    );
    let created = client.create(&body).await.map_err(UploadError::Create)?;
    let id = created.id.clone();
    let keep = request.keep_on_failure;

    // 4. The data.
    progress.phase(Phase::Uploading, local.n_bytes);
    let uploaded = {
        // The body's stream must be 'static: it counts into an atomic that
        // this task reads for the progress while the request runs.
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = counter.clone();
        let counted = data.map(move |chunk| {
            if let Ok(chunk) = &chunk {
                seen.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            chunk
        });
        let request = client.upload(&id, counted, local.n_bytes);
        tokio::pin!(request);
        let mut reported = 0u64;
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        loop {
            tokio::select! {
                outcome = &mut request => {
                    let total = counter.load(std::sync::atomic::Ordering::Relaxed);
                    progress.advance(total - reported);
                    break outcome;
                }
                _ = tick.tick() => {
                    let total = counter.load(std::sync::atomic::Ordering::Relaxed);
                    progress.advance(total - reported);
                    reported = total;
                }
            }
        }
    };
    if let Err(source) = uploaded {
        let cleanup = cleanup(client, &id, keep).await;
        return Err(UploadError::Upload {
            id,
            source,
            cleanup,
        });
    }

    // 5. What the server made of it.
    let image = match client.show(&id).await {
        Ok(image) => image,
        Err(source) => {
            let cleanup = cleanup(client, &id, keep).await;
            return Err(UploadError::Show {
                id,
                source,
                cleanup,
            });
        }
    };
    if image.status != "active" {
        let cleanup = cleanup(client, &id, keep).await;
        return Err(UploadError::NotActive {
            id,
            status: image.status,
            cleanup,
        });
    }
    if let Some((field, served, local_value)) = served_mismatch(&image, &local) {
        let cleanup = cleanup(client, &id, keep).await;
        return Err(UploadError::Mismatch {
            id,
            field,
            served,
            local: local_value,
            cleanup,
        });
    }
    Ok(Uploaded {
        image,
        local,
        signed,
    })
}

/// The first of size, checksum, os_hash (sha512 only) where the server's
/// record differs from the file.
fn served_mismatch(
    image: &ServedImage,
    local: &LocalPass,
) -> Option<(&'static str, Option<String>, String)> {
    if image.size != Some(local.n_bytes) {
        return Some((
            "size",
            image.size.map(|size| size.to_string()),
            local.n_bytes.to_string(),
        ));
    }
    let differs = |served: &Option<String>, local: &str| {
        !served
            .as_deref()
            .is_some_and(|served| served.eq_ignore_ascii_case(local))
    };
    if differs(&image.checksum, &local.md5) {
        return Some(("checksum", image.checksum.clone(), local.md5.clone()));
    }
    // Another os_hash_algo cannot be compared with the local sha512; the
    // md5 above still was.
    if image.os_hash_algo.as_deref() == Some("sha512")
        && differs(&image.os_hash_value, &local.sha512)
    {
        return Some((
            "os_hash_value",
            image.os_hash_value.clone(),
            local.sha512.clone(),
        ));
    }
    None
}

async fn cleanup(client: &Client, id: &str, keep: bool) -> Cleanup {
    if keep {
        return Cleanup::Kept;
    }
    match client.delete(id).await {
        Ok(()) => Cleanup::Deleted,
        Err(error) => Cleanup::DeleteFailed(Box::new(error)),
    }
}

fn pump_io_error(err: PumpError<std::convert::Infallible>) -> io::Error {
    match err {
        PumpError::Stream { source, .. } => source,
        PumpError::Short { declared, received } => io::Error::other(format!(
            "the file ended after {received} of its {declared} bytes (it changed while it was read)"
        )),
        PumpError::Exceeded(_) | PumpError::DeclaredOverLimit(_) => {
            io::Error::other("the file grew while it was read")
        }
        PumpError::Worker(source) => io::Error::other(source),
        PumpError::Sink(never) => match never {},
    }
}
