//! One image of a Glance, checked once: its record, then its data streamed
//! from `GET /v2/images/{id}/file` exactly once through the same one-pass
//! machinery an upload uses (`ingest::pump`: md5 and the os_hash on the
//! shared hash pool, the signature digest shared with the os_hash when the
//! algorithms agree, the format inspector watching the chunks), into no
//! sink: nothing is written to disk and memory stays bounded whatever the
//! image size.
//!
//! The steps, for an image the listing or `show` returned:
//! 1. only `active` (and `deactivated`, for those allowed to read it)
//!    images have data; others are an error;
//! 2. the `img_signature*` properties: none (unsigned), some (partially
//!    signed, strict as `portcullis verify`), or all four, parsed in the
//!    chosen mode; the verifier is built before any byte is read (the
//!    certificate fetched through the key manager, the chain validated on
//!    the blocking pool);
//! 3. one pass over the data, bounded by the recorded `size` (more bytes
//!    stop the pass); a transfer that breaks off restarts the whole check
//!    from the first byte with fresh hashers, so a retry never counts
//!    half a check;
//! 4. the signature against the digest of the pass;
//! 5. md5 against `checksum`, the os_hash against `os_hash_value` with
//!    `os_hash_algo`, the byte count against `size`;
//! 6. the inspector's report against the declared `disk_format` with
//!    Glance's upload policy (bare containers only, as Glance).
//!
//! The outcome is an [`ImageCheck`] whose [`Category`] says what failed
//! first in the order a user fixes things. This module must not print,
//! and a check it could not finish never passes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{Client, ClientError, RetryPolicy};
use super::pass::read_once;
use crate::clock::Clock;
use crate::hash::HashAlgorithm;
use crate::image::{ContainerFormat, DiskFormat};
use crate::ingest::limit::LimitKind;
use crate::ingest::pump::{Pass, PumpError};
use crate::ingest::workers::{HashPlan, HashPool};
use crate::inspect::Inspector;
use crate::inspect::policy::{Accepted, FormatPolicy, Rejection};
use crate::key_manager::KeyManager;
use crate::openstack::{Caller, Session};
use crate::verify::{self, Mode, Presence, SignatureParams, Verification, Verifier};
use crate::wire::ServedImage;

/// What an image's check concluded, in the order a category wins when
/// several apply (an error first, then the data differing from its record,
/// then the signature, then the format, then the signature's absence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// The check could not finish (unreachable, forbidden, no data, not active).
    Error,
    /// The byte count differs from `size`.
    SizeMismatch,
    /// md5 or the os_hash differs from the record (or the record has neither).
    ChecksumMismatch,
    /// The signature properties are complete and do not verify.
    BadSignature,
    /// The data is unsafe or not the declared `disk_format`.
    UnsafeFormat,
    /// Some but not all of the four `img_signature*` properties.
    PartiallySigned,
    /// No signature properties; the data matches its record.
    Unsigned,
    /// Signed, verified, and the data matches its record.
    Verified,
}

impl Category {
    /// Every category, in report order.
    pub const ALL: [Category; 8] = [
        Category::Verified,
        Category::Unsigned,
        Category::PartiallySigned,
        Category::BadSignature,
        Category::ChecksumMismatch,
        Category::SizeMismatch,
        Category::UnsafeFormat,
        Category::Error,
    ];

    /// A stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Category::Verified => "verified",
            Category::Unsigned => "unsigned",
            Category::PartiallySigned => "partially_signed",
            Category::BadSignature => "bad_signature",
            Category::ChecksumMismatch => "checksum_mismatch",
            Category::SizeMismatch => "size_mismatch",
            Category::UnsafeFormat => "unsafe_format",
            Category::Error => "error",
        }
    }

    /// Whether an image of this category passes: verified ones do, unsigned
    /// ones unless a signature is required, nothing else.
    pub fn passes(self, require_signature: bool) -> bool {
        match self {
            Category::Verified => true,
            Category::Unsigned => !require_signature,
            Category::PartiallySigned
            | Category::BadSignature
            | Category::ChecksumMismatch
            | Category::SizeMismatch
            | Category::UnsafeFormat
            | Category::Error => false,
        }
    }
}

/// The signature's part of a check.
#[derive(Debug)]
pub enum SignatureCheck {
    /// None of the four properties.
    Unsigned,
    /// Some of them; `missing` names the others (cursive's order).
    Partial {
        /// The absent properties.
        missing: Vec<&'static str>,
    },
    /// Verified over the data.
    Verified(Box<Verification>),
    /// Refused, by `portcullis verify`'s rules and errors.
    Rejected(Box<verify::Error>),
    /// Not decided: the check stopped before (an error, the data's size).
    NotChecked,
}

/// A digest's part of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestCheck {
    /// The data's digest is the recorded one.
    Match {
        /// The value.
        value: String,
    },
    /// It is not.
    Mismatch {
        /// The record's value.
        expected: String,
        /// The data's.
        actual: String,
    },
    /// The record has no value to compare with.
    NotRecorded,
    /// `os_hash_algo` names an algorithm portcullis does not compute.
    Unsupported {
        /// The algorithm's name.
        algorithm: String,
    },
    /// The data was not read whole.
    NotChecked,
}

/// The byte count's part of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeCheck {
    /// As recorded.
    Match {
        /// The size.
        bytes: u64,
    },
    /// Not as recorded.
    Mismatch {
        /// The record's `size` (`None`: an active image without one).
        recorded: Option<u64>,
        /// The bytes served.
        served: u64,
        /// More were coming when reading stopped at the recorded size.
        more: bool,
    },
    /// The data was not read whole.
    NotChecked,
}

/// The format inspector's part of a check.
#[derive(Debug)]
pub enum FormatCheck {
    /// Glance's upload policy accepts the data as the declared format.
    Accepted(Accepted),
    /// It refuses it.
    Rejected(Rejection),
    /// Not inspected, and why (a container other than bare, no or an unknown disk_format).
    NotInspected {
        /// Why.
        reason: String,
    },
    /// The data was not read whole.
    NotChecked,
}

/// Why a check could not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    /// A stable snake_case name (`not_found`, `forbidden`, `no_data`,
    /// `unreachable`, `download_failed`, `certificate_unavailable`, ...).
    pub kind: &'static str,
    /// What happened, with its causes.
    pub message: String,
    /// Whether it is about the connection or the settings (unreachable,
    /// credentials, a key manager that cannot be read) rather than the image.
    pub connection: bool,
}

/// One image's check.
#[derive(Debug)]
pub struct ImageCheck {
    /// The image id asked for or listed.
    pub id: String,
    /// Its record (`None` when it could not be read).
    pub record: Option<ServedImage>,
    /// Bytes read in the last attempt.
    pub n_bytes: u64,
    /// The signature.
    pub signature: SignatureCheck,
    /// md5 against `checksum`.
    pub checksum: DigestCheck,
    /// The os_hash against `os_hash_value`.
    pub os_hash: DigestCheck,
    /// The byte count against `size`.
    pub size: SizeCheck,
    /// The inspector against `disk_format`.
    pub format: FormatCheck,
    /// Why the check stopped, if it did.
    pub error: Option<CheckFailure>,
    /// Downloads started (more than one after a transfer broke off).
    pub attempts: u32,
    /// Wall time of the check.
    pub elapsed: Duration,
}

impl ImageCheck {
    pub(crate) fn new(id: String, record: Option<ServedImage>) -> ImageCheck {
        ImageCheck {
            id,
            record,
            n_bytes: 0,
            signature: SignatureCheck::NotChecked,
            checksum: DigestCheck::NotChecked,
            os_hash: DigestCheck::NotChecked,
            size: SizeCheck::NotChecked,
            format: FormatCheck::NotChecked,
            error: None,
            attempts: 0,
            elapsed: Duration::ZERO,
        }
    }

    /// The image's name, if its record was read and has one.
    pub fn name(&self) -> Option<&str> {
        self.record
            .as_ref()
            .and_then(|record| record.name.as_deref())
    }

    /// What the check concluded (see [`Category`] for the order).
    pub fn category(&self) -> Category {
        if self.error.is_some() {
            return Category::Error;
        }
        if matches!(self.size, SizeCheck::Mismatch { .. }) {
            return Category::SizeMismatch;
        }
        let digest_failed = |check: &DigestCheck| matches!(check, DigestCheck::Mismatch { .. });
        let neither_recorded = matches!(
            (&self.checksum, &self.os_hash),
            (
                DigestCheck::NotRecorded,
                DigestCheck::NotRecorded | DigestCheck::Unsupported { .. }
            )
        );
        if digest_failed(&self.checksum) || digest_failed(&self.os_hash) || neither_recorded {
            return Category::ChecksumMismatch;
        }
        match (&self.signature, &self.format) {
            (SignatureCheck::Rejected(_), _) => Category::BadSignature,
            (_, FormatCheck::Rejected(_)) => Category::UnsafeFormat,
            (SignatureCheck::Partial { .. }, _) => Category::PartiallySigned,
            (SignatureCheck::Unsigned, _) => Category::Unsigned,
            (SignatureCheck::Verified(_), _) => Category::Verified,
            // Without an error the pass ran and the signature was decided;
            // should it not have been, the check fails closed.
            (SignatureCheck::NotChecked, _) => Category::Error,
        }
    }

    /// Whether the image passes (see [`Category::passes`]).
    pub fn passed(&self, require_signature: bool) -> bool {
        self.category().passes(require_signature)
    }

    /// One line saying why the image is in its category.
    pub fn reason(&self) -> String {
        let category = self.category();
        match category {
            Category::Error => self.error.as_ref().map_or_else(
                || "the signature was not decided".to_owned(),
                |failure| failure.message.clone(),
            ),
            Category::SizeMismatch => match &self.size {
                SizeCheck::Mismatch {
                    recorded,
                    served,
                    more,
                } => match recorded {
                    Some(recorded) if *more => format!(
                        "the server sent more than the recorded size of {recorded} bytes; reading stopped there"
                    ),
                    Some(recorded) => {
                        format!("the server sent {served} bytes but the record says {recorded}")
                    }
                    None => {
                        format!("the record of an active image has no size ({served} bytes served)")
                    }
                },
                SizeCheck::Match { .. } | SizeCheck::NotChecked => String::new(),
            },
            Category::ChecksumMismatch => {
                let mut parts = Vec::new();
                for (field, check) in [
                    ("checksum (md5)", &self.checksum),
                    ("os_hash_value", &self.os_hash),
                ] {
                    if let DigestCheck::Mismatch { expected, actual } = check {
                        parts.push(format!(
                            "{field} of the data is {actual} but the record says {expected}"
                        ));
                    }
                }
                if parts.is_empty() {
                    "the record has neither checksum nor a usable os_hash_value: the data cannot be compared with anything".to_owned()
                } else {
                    parts.join("; ")
                }
            }
            Category::BadSignature => match &self.signature {
                SignatureCheck::Rejected(error) => {
                    format!("{} [{}]", verify::with_causes(error.as_ref()), error.kind())
                }
                SignatureCheck::Unsigned
                | SignatureCheck::Partial { .. }
                | SignatureCheck::Verified(_)
                | SignatureCheck::NotChecked => String::new(),
            },
            Category::UnsafeFormat => match &self.format {
                FormatCheck::Rejected(rejection) => {
                    format!("{rejection} [{}]", rejection.kind())
                }
                FormatCheck::Accepted(_)
                | FormatCheck::NotInspected { .. }
                | FormatCheck::NotChecked => String::new(),
            },
            Category::PartiallySigned => match &self.signature {
                SignatureCheck::Partial { missing } => format!(
                    "only some img_signature* properties are set; missing: {}",
                    missing.join(", ")
                ),
                SignatureCheck::Unsigned
                | SignatureCheck::Verified(_)
                | SignatureCheck::Rejected(_)
                | SignatureCheck::NotChecked => String::new(),
            },
            Category::Unsigned => {
                "no img_signature* properties; the data matches its record".to_owned()
            }
            Category::Verified => match &self.signature {
                SignatureCheck::Verified(verification) => format!(
                    "{} {} signature by certificate {} ({}); the data matches its record",
                    verification.key_type.name(),
                    verification.hash_method.name(),
                    verification.signer.id,
                    verification.signer.subject
                ),
                SignatureCheck::Unsigned
                | SignatureCheck::Partial { .. }
                | SignatureCheck::Rejected(_)
                | SignatureCheck::NotChecked => String::new(),
            },
        }
    }
}

/// Told how many bytes the checks read (for a progress bar).
pub trait Progress: Sync {
    /// `n` more bytes were read.
    fn advance(&self, n: u64);
    /// `n` bytes read before a transfer broke off will be read again.
    fn rewind(&self, n: u64);
}

/// No progress to show.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _n: u64) {}
    fn rewind(&self, _n: u64) {}
}

/// Everything the checks of one run share.
pub struct CheckOptions {
    /// Strict or cursive-compatible signature rules.
    pub mode: Mode,
    /// Trusted certificate ids: chain validation when `Some`.
    pub trusted: Option<Vec<String>>,
    /// Where certificates come from; `None` cannot check signed images.
    pub keys: Option<KeyManager>,
    /// The Keystone session whose token Barbican sees.
    pub session: Option<Arc<Session>>,
    /// The time certificates are checked at.
    pub clock: Arc<dyn Clock>,
    /// Glance's upload format policy.
    pub format_policy: FormatPolicy,
    /// Whole-check attempts when a transfer breaks off.
    pub retry: RetryPolicy,
}

/// Checks images of one Glance.
pub struct Checker {
    client: Arc<Client>,
    pool: HashPool,
    options: CheckOptions,
}

impl Checker {
    /// A checker of `client`'s images, hashing on `pool`.
    pub fn new(client: Arc<Client>, pool: HashPool, options: CheckOptions) -> Checker {
        Checker {
            client,
            pool,
            options,
        }
    }

    /// The Glance client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Reads image `id`'s record, then checks it.
    pub async fn check_id(&self, id: &str, progress: &dyn Progress) -> ImageCheck {
        let started = Instant::now();
        match self.client.show(id).await {
            Ok(record) => self.check(record, progress).await,
            Err(err) => {
                let mut check = ImageCheck::new(id.to_owned(), None);
                check.error = Some(client_failure(&err));
                check.elapsed = started.elapsed();
                check
            }
        }
    }

    /// Checks the image of `record` (see the module's steps).
    pub async fn check(&self, record: ServedImage, progress: &dyn Progress) -> ImageCheck {
        let started = Instant::now();
        let mut check = ImageCheck::new(record.id.clone(), Some(record.clone()));
        self.run(&record, &mut check, progress).await;
        check.elapsed = started.elapsed();
        check
    }

    async fn run(&self, record: &ServedImage, check: &mut ImageCheck, progress: &dyn Progress) {
        // 1. Only images with data can be checked.
        if !matches!(record.status.as_str(), "active" | "deactivated") {
            check.error = Some(CheckFailure {
                kind: "not_active",
                message: format!(
                    "image {} is {}: only active images have data to check",
                    record.id, record.status
                ),
                connection: false,
            });
            return;
        }

        // 2. The signature properties, and the verifier before any byte.
        let verifier = match Presence::of(&record.properties) {
            Presence::Unsigned => {
                check.signature = SignatureCheck::Unsigned;
                None
            }
            Presence::Partial { missing } => {
                check.signature = SignatureCheck::Partial { missing };
                None
            }
            Presence::Complete => {
                match SignatureParams::from_properties(&record.properties, self.options.mode) {
                    Ok(Some(params)) => match self.verifier(params).await {
                        Ok(Ok(verifier)) => Some(verifier),
                        Ok(Err(rejected)) => {
                            check.signature = SignatureCheck::Rejected(Box::new(rejected));
                            None
                        }
                        Err(failure) => {
                            check.error = Some(failure);
                            return;
                        }
                    },
                    Ok(None) => {
                        check.signature = SignatureCheck::Unsigned;
                        None
                    }
                    Err(err) => {
                        check.signature = SignatureCheck::Rejected(Box::new(err.into()));
                        None
                    }
                }
            }
        };

        // 3. One pass over the data (restarted from its first byte when the transfer breaks off).
        let os_hash_algo = record
            .os_hash_algo
            .as_deref()
            .map(str::parse::<HashAlgorithm>);
        let plan = HashPlan {
            os_hash: match &os_hash_algo {
                Some(Ok(algorithm)) => *algorithm,
                Some(Err(_)) | None => HashAlgorithm::Sha512,
            },
            signature: verifier.as_ref().map(Verifier::hash_algorithm),
        };
        let inspected = self.inspection(record);
        let (pass, report) = loop {
            check.attempts += 1;
            let mut inspector = inspected.as_ref().ok().map(|_| Inspector::new());
            match self
                .pass(record, plan, inspector.as_mut(), check, progress)
                .await
            {
                Ok(pass) => break (pass, inspector.map(Inspector::finish)),
                Err(Stop::Retry { n_bytes, failure })
                    if check.attempts < self.options.retry.attempts =>
                {
                    tracing::warn!(image = %record.id, attempt = check.attempts, error = %failure.message, "download broke off; checking again from the first byte");
                    progress.rewind(n_bytes);
                    tokio::time::sleep(self.options.retry.delay(check.attempts)).await;
                }
                Err(Stop::Retry { failure, .. } | Stop::Failed(failure)) => {
                    check.error = Some(failure);
                    return;
                }
                Err(Stop::Size(size)) => {
                    check.size = size;
                    return;
                }
            }
        };
        check.n_bytes = pass.n_bytes;

        // 4. The signature, over the digest of the pass (fail closed without one).
        if let Some(verifier) = verifier {
            check.signature = match pass.digests.signature.as_ref() {
                Some(digest) => match verifier.finish_with_digest(digest) {
                    Ok(verification) => SignatureCheck::Verified(Box::new(verification)),
                    Err(error) => SignatureCheck::Rejected(Box::new(error)),
                },
                None => {
                    check.error = Some(CheckFailure {
                        kind: "hashing_failed",
                        message: "the signature digest was not computed".to_owned(),
                        connection: false,
                    });
                    return;
                }
            };
        }

        // 5. The data against its record.
        check.size = match record.size {
            Some(size) if size == pass.n_bytes => SizeCheck::Match { bytes: size },
            recorded => SizeCheck::Mismatch {
                recorded,
                served: pass.n_bytes,
                more: false,
            },
        };
        check.checksum = compare(record.checksum.as_deref(), &pass.digests.checksum.to_hex());
        check.os_hash = match (os_hash_algo, record.os_hash_value.as_deref()) {
            (_, None) => DigestCheck::NotRecorded,
            (Some(Err(_)), Some(_)) => DigestCheck::Unsupported {
                algorithm: record.os_hash_algo.clone().unwrap_or_default(),
            },
            // Glance names the algorithm whenever it records a value; a
            // value without one was made with Glance's default, sha512.
            (Some(Ok(_)) | None, Some(expected)) => {
                compare(Some(expected), &pass.digests.os_hash.to_hex())
            }
        };

        // 6. The format, as Glance's upload policy judges it.
        check.format = match (inspected, report) {
            (Ok(declared), Some(report)) => {
                match self
                    .options
                    .format_policy
                    .decide(&report, declared, pass.n_bytes)
                {
                    Ok(accepted) => FormatCheck::Accepted(accepted),
                    Err(rejection) => FormatCheck::Rejected(rejection),
                }
            }
            (Err(reason), _) => FormatCheck::NotInspected { reason },
            (Ok(_), None) => FormatCheck::NotChecked,
        };
    }

    /// The declared disk format when Glance would inspect this image
    /// (container `bare`), or why it is not inspected.
    fn inspection(&self, record: &ServedImage) -> Result<DiskFormat, String> {
        let container = record.container_format.as_deref().unwrap_or("");
        if !matches!(
            container.parse::<ContainerFormat>(),
            Ok(ContainerFormat::Bare)
        ) {
            return Err(format!(
                "container_format {container:?}: Glance inspects bare containers only"
            ));
        }
        match record.disk_format.as_deref() {
            None => Err("no disk_format recorded".to_owned()),
            Some(name) => name
                .parse::<DiskFormat>()
                .map_err(|_| format!("disk_format {name:?} is not one Glance 33 knows")),
        }
    }

    /// One download, streamed through the pump.
    async fn pass(
        &self,
        record: &ServedImage,
        plan: HashPlan,
        inspector: Option<&mut Inspector>,
        check: &mut ImageCheck,
        progress: &dyn Progress,
    ) -> Result<Pass, Stop> {
        let download = self
            .client
            .download(&record.id)
            .await
            .map_err(|err| Stop::Failed(client_failure(&err)))?;
        let announced = download.content_length;
        let declared = record.size.or(announced);
        let outcome = read_once(
            download.into_stream(),
            declared,
            &self.pool,
            plan,
            inspector,
            &|n| progress.advance(n),
        )
        .await;
        match outcome {
            Ok(pass) => Ok(pass),
            Err(PumpError::Exceeded(exceeded)) => match exceeded.kind {
                LimitKind::Declared => {
                    check.n_bytes = exceeded.limit;
                    Err(Stop::Size(SizeCheck::Mismatch {
                        recorded: record.size,
                        served: exceeded.attempted,
                        more: true,
                    }))
                }
                LimitKind::SizeCap
                | LimitKind::Quota
                | LimitKind::DeclaredOverSizeCap { .. }
                | LimitKind::DeclaredOverQuota { .. } => Err(Stop::Failed(CheckFailure {
                    kind: "size_limit",
                    message: format!("reading image {} crossed a limit: {exceeded:?}", record.id),
                    connection: false,
                })),
            },
            Err(PumpError::DeclaredOverLimit(exceeded)) => Err(Stop::Failed(CheckFailure {
                kind: "size_limit",
                message: format!(
                    "image {} declares more than can be read: {exceeded:?}",
                    record.id
                ),
                connection: false,
            })),
            Err(PumpError::Short { declared, received }) => match (record.size, announced) {
                // The record and the answer agree and the body ended early: a
                // transfer cut short (a server that noticed corruption cuts it too).
                (Some(size), Some(length)) if size == length => Err(Stop::Retry {
                    n_bytes: received,
                    failure: CheckFailure {
                        kind: "download_failed",
                        message: format!(
                            "the download of image {} ended after {received} of {declared} bytes",
                            record.id
                        ),
                        connection: false,
                    },
                }),
                (recorded, _) => {
                    check.n_bytes = received;
                    Err(Stop::Size(SizeCheck::Mismatch {
                        recorded,
                        served: received,
                        more: false,
                    }))
                }
            },
            Err(PumpError::Stream { received, source }) => Err(Stop::Retry {
                n_bytes: received,
                failure: CheckFailure {
                    kind: if source.kind() == std::io::ErrorKind::TimedOut {
                        "timeout"
                    } else {
                        "download_failed"
                    },
                    message: format!(
                        "the download of image {} broke off after {received}{} bytes: {}",
                        record.id,
                        announced.map(|n| format!(" of {n}")).unwrap_or_default(),
                        verify::with_causes(&source)
                    ),
                    connection: false,
                },
            }),
            Err(PumpError::Sink(never)) => match never {},
            Err(PumpError::Worker(source)) => Err(Stop::Failed(CheckFailure {
                kind: "hashing_failed",
                message: format!("image {}: {}", record.id, verify::with_causes(&source)),
                connection: false,
            })),
        }
    }

    /// Builds the verifier, or the signature's rejection (`Ok(Err)`), or
    /// the reason nothing can be said (`Err`): no key manager, or one that
    /// cannot be read (fail closed, never a verdict).
    async fn verifier(
        &self,
        params: SignatureParams,
    ) -> Result<Result<Verifier, verify::Error>, CheckFailure> {
        let Some(keys) = &self.options.keys else {
            return Err(CheckFailure {
                kind: "no_key_manager",
                message: "the image is signed but no certificates were given: use --cert-dir DIR or --key-manager barbican".to_owned(),
                connection: true,
            });
        };
        let caller = self.options.session.as_deref().map(Caller::Session);
        let mut ids = vec![params.certificate_id().to_owned()];
        ids.extend(self.options.trusted.iter().flatten().cloned());
        let certificates =
            keys.prefetch(caller.as_ref(), ids)
                .await
                .map_err(|err| CheckFailure {
                    kind: err.kind(),
                    message: verify::with_causes(&err),
                    connection: true,
                })?;
        let trusted = self.options.trusted.clone();
        let clock = self.options.clock.clone();
        let mode = self.options.mode;
        let built = tokio::task::spawn_blocking(move || {
            let options = verify::VerifyOptions {
                mode,
                trusted_certificate_ids: trusted.as_deref(),
                clock: clock.as_ref(),
            };
            Verifier::new(&params, &certificates, &options)
        })
        .await
        .map_err(|join| CheckFailure {
            kind: "internal",
            message: format!("building the verifier failed: {join}"),
            connection: false,
        })?;
        match built {
            Err(error) if error.is_environmental() => Err(CheckFailure {
                kind: error.kind(),
                message: verify::with_causes(&error),
                connection: true,
            }),
            other => Ok(other),
        }
    }
}

/// Why a pass stopped.
enum Stop {
    /// The transfer broke off after `n_bytes`: worth another attempt.
    Retry { n_bytes: u64, failure: CheckFailure },
    /// Nothing more to learn.
    Failed(CheckFailure),
    /// The data is not the recorded size.
    Size(SizeCheck),
}

fn compare(recorded: Option<&str>, actual: &str) -> DigestCheck {
    match recorded {
        None => DigestCheck::NotRecorded,
        Some(expected) if expected.eq_ignore_ascii_case(actual) => DigestCheck::Match {
            value: actual.to_owned(),
        },
        Some(expected) => DigestCheck::Mismatch {
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        },
    }
}

/// A client error as a check's failure.
pub(crate) fn client_failure(err: &ClientError) -> CheckFailure {
    CheckFailure {
        kind: err.kind(),
        message: verify::with_causes(err),
        connection: err.is_connection(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        signature: SignatureCheck,
        checksum: DigestCheck,
        size: SizeCheck,
        format: FormatCheck,
    ) -> ImageCheck {
        let mut check = ImageCheck::new("id".into(), None);
        check.signature = signature;
        check.checksum = checksum;
        check.os_hash = DigestCheck::NotRecorded;
        check.size = size;
        check.format = format;
        check
    }

    fn good() -> DigestCheck {
        DigestCheck::Match { value: "a".into() }
    }

    fn inspected() -> FormatCheck {
        FormatCheck::NotInspected {
            reason: "ovf".into(),
        }
    }

    #[test]
    fn the_data_differing_from_its_record_wins_over_the_signature() {
        let tampered_signed = check(
            SignatureCheck::Rejected(Box::new(
                verify::ParamsError::MissingProperties { missing: vec![] }.into(),
            )),
            DigestCheck::Mismatch {
                expected: "a".into(),
                actual: "b".into(),
            },
            SizeCheck::Match { bytes: 1 },
            inspected(),
        );
        assert_eq!(tampered_signed.category(), Category::ChecksumMismatch);
        assert!(tampered_signed.reason().contains("record says a"));
        let short = check(
            SignatureCheck::Unsigned,
            DigestCheck::NotChecked,
            SizeCheck::Mismatch {
                recorded: Some(10),
                served: 4,
                more: false,
            },
            FormatCheck::NotChecked,
        );
        assert_eq!(short.category(), Category::SizeMismatch);
        assert!(
            short
                .reason()
                .contains("sent 4 bytes but the record says 10")
        );
    }

    #[test]
    fn unsigned_passes_unless_a_signature_is_required_and_partial_never_does() {
        let unsigned = check(
            SignatureCheck::Unsigned,
            good(),
            SizeCheck::Match { bytes: 1 },
            inspected(),
        );
        assert_eq!(unsigned.category(), Category::Unsigned);
        assert!(unsigned.passed(false));
        assert!(!unsigned.passed(true));
        let partial = check(
            SignatureCheck::Partial {
                missing: vec![verify::SIGNATURE],
            },
            good(),
            SizeCheck::Match { bytes: 1 },
            inspected(),
        );
        assert_eq!(partial.category(), Category::PartiallySigned);
        assert!(!partial.passed(false));
        assert!(partial.reason().contains("img_signature"));
    }

    #[test]
    fn no_recorded_digest_at_all_fails_and_an_undecided_signature_is_an_error() {
        let nothing = check(
            SignatureCheck::Unsigned,
            DigestCheck::NotRecorded,
            SizeCheck::Match { bytes: 1 },
            inspected(),
        );
        assert_eq!(nothing.category(), Category::ChecksumMismatch);
        let undecided = check(
            SignatureCheck::NotChecked,
            good(),
            SizeCheck::Match { bytes: 1 },
            inspected(),
        );
        assert_eq!(undecided.category(), Category::Error);
        assert!(!undecided.passed(false));
    }
}
