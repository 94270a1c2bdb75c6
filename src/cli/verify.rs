//! `portcullis verify`: check an image against its `img_signature*`
//! properties, as Glance does on upload and Nova before boot.
//!
//! This file parses arguments, reads the image and the input files, calls
//! [`crate::verify`], and prints one line (or one JSON document). It must
//! not verify anything itself. Exit 0 verified, 1 rejected, 2 usage or I/O.

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::Serialize;

use super::openstack::{KeyManagerArg, OpenStackArgs};
use super::report::error_chain;
use super::stdio;
use super::{Exit, OutputFormat};
use crate::clock::SystemClock;
use crate::hash::{Digest, HashAlgorithm};
use crate::image::Properties;
use crate::key_manager::KeyManager;
use crate::openstack::{Barbican, BarbicanOptions, Caller, Session};
use crate::verify::{
    self, CertificateSummary, DirKeyStore, Mode, Prefetched, SignatureParams, Verifier,
    VerifyOptions, rfc3339,
};

/// Images larger than this get a progress bar when stderr is a terminal.
const PROGRESS_THRESHOLD: u64 = 64 * 1024 * 1024;
/// Read size. Small enough that each chunk is still in the L2 cache when it
/// is hashed right after the copy out of the page cache (measured: 64 KiB
/// reads beat 1 MiB reads by ~30%, and a separate reading thread was slower
/// still because the data then crosses cores); large enough that syscalls
/// cost nothing.
const CHUNK: usize = 64 * 1024;

/// Behaviour to reproduce instead of strict mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Compat {
    /// OpenStack cursive 0.3.1, exactly (rejects where cursive crashes or hangs).
    Cursive,
}

/// Arguments of `portcullis verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The image file, or `-` for standard input.
    image: PathBuf,
    /// JSON file with the image properties: a flat object, or the output of
    /// `glance image-show -f json` / `openstack image show -f json`.
    #[arg(long, value_name = "PROPS.json")]
    properties: Option<PathBuf>,
    /// Directory of signing certificates named `<uuid>.pem` (or `.der`);
    /// required unless `--key-manager barbican`.
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// Where certificates come from: `directory` (`--cert-dir`, the
    /// default) or `barbican` (the Keystone catalog's key manager, read
    /// with the OpenStack client settings: OS_CLOUD or OS_*).
    #[arg(long, value_enum, value_name = "KIND")]
    key_manager: Option<KeyManagerArg>,
    #[command(flatten)]
    openstack: OpenStackArgs,
    /// File of trusted certificate ids, one per line; switches chain
    /// validation on (an empty file trusts nothing and rejects).
    #[arg(long, value_name = "FILE")]
    trusted_list: Option<PathBuf>,
    /// A trusted certificate id (repeatable); switches chain validation on.
    #[arg(long = "trusted-cert", value_name = "ID")]
    trusted_certs: Vec<String>,
    /// Reproduce another implementation's behaviour instead of strict mode.
    #[arg(long, value_enum)]
    compat: Option<Compat>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
    /// Overrides `img_signature`.
    #[arg(long)]
    signature: Option<String>,
    /// Overrides `img_signature_hash_method`.
    #[arg(long)]
    hash_method: Option<String>,
    /// Overrides `img_signature_key_type`.
    #[arg(long)]
    key_type: Option<String>,
    /// Overrides `img_signature_certificate_uuid`.
    #[arg(long)]
    cert_uuid: Option<String>,
}

/// A certificate in JSON output.
#[derive(Debug, Serialize)]
struct CertificateJson {
    id: String,
    subject: String,
    issuer: String,
    serial: String,
    not_before: String,
    not_after: String,
    sha256_fingerprint: String,
}

impl From<&CertificateSummary> for CertificateJson {
    fn from(summary: &CertificateSummary) -> Self {
        CertificateJson {
            id: summary.id.clone(),
            subject: summary.subject.clone(),
            issuer: summary.issuer.clone(),
            serial: summary.serial.clone(),
            not_before: rfc3339(summary.not_before),
            not_after: rfc3339(summary.not_after),
            sha256_fingerprint: summary.sha256_fingerprint.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct MessageJson {
    kind: String,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursive_message: Option<String>,
}

/// The one JSON document `verify --format json` prints.
#[derive(Debug, Serialize)]
struct Report {
    verified: bool,
    mode: &'static str,
    image: String,
    image_size: Option<u64>,
    hash_method: Option<&'static str>,
    key_type: Option<&'static str>,
    digest: Option<String>,
    signer: Option<CertificateJson>,
    chain: Option<Vec<CertificateJson>>,
    warnings: Vec<MessageJson>,
    error: Option<MessageJson>,
}

/// How a run ended, before printing.
enum Failure {
    /// Exit 1.
    Rejected(Box<verify::Error>),
    /// Exit 2, with a kind for JSON.
    Usage { kind: &'static str, message: String },
}

fn usage(kind: &'static str, message: impl Into<String>) -> Failure {
    Failure::Usage {
        kind,
        message: message.into(),
    }
}

/// Reads a whole input file (properties, trusted list).
fn read_text(path: &Path, what: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|err| {
        usage(
            "io_error",
            format!("cannot read the {what} {}: {err}", path.display()),
        )
    })
}

/// An open image: a file or standard input, and its size when known.
pub(super) struct ImageInput {
    reader: Box<dyn Read>,
    size: Option<u64>,
}

/// Opens `path`, or standard input for `-`.
///
/// Fails with a message naming the path.
pub(super) fn open_image(path: &Path) -> Result<ImageInput, String> {
    if path == Path::new("-") {
        return Ok(ImageInput {
            reader: Box::new(std::io::stdin()),
            size: None,
        });
    }
    let file =
        File::open(path).map_err(|err| format!("cannot open image {}: {err}", path.display()))?;
    let metadata = file
        .metadata()
        .map_err(|err| format!("cannot read image {}: {err}", path.display()))?;
    if metadata.is_dir() {
        return Err(format!("image {} is a directory", path.display()));
    }
    Ok(ImageInput {
        reader: Box::new(file),
        size: Some(metadata.len()),
    })
}

/// Hashes the whole image once with `algorithm`; returns the digest and the
/// byte count. Shows a progress bar on a terminal for large images.
///
/// Fails with a message when reading fails.
pub(super) fn hash_image(
    image: &mut ImageInput,
    algorithm: HashAlgorithm,
    label: &Path,
) -> Result<(Digest, u64), String> {
    let (digest, n_bytes) = hash_counting(image, algorithm, label);
    Ok((digest?, n_bytes))
}

/// [`hash_image`], returning the bytes read also when reading fails part-way.
fn hash_counting(
    image: &mut ImageInput,
    algorithm: HashAlgorithm,
    label: &Path,
) -> (Result<Digest, String>, u64) {
    let mut hasher = algorithm.hasher();
    let mut buffer = vec![0u8; CHUNK];
    let mut n_bytes = 0u64;
    let progress = match image.size {
        Some(size) if size > PROGRESS_THRESHOLD && std::io::stderr().is_terminal() => {
            let bar = indicatif::ProgressBar::new(size);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style);
            }
            Some(bar)
        }
        _ => None,
    };
    loop {
        let n = match image.reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => {
                let message = format!(
                    "cannot read image {} after {n_bytes} bytes: {err}",
                    label.display()
                );
                return (Err(message), n_bytes);
            }
        };
        hasher.update(&buffer[..n]);
        n_bytes += n as u64;
        if let Some(bar) = &progress {
            bar.set_position(n_bytes);
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    (Ok(hasher.finish()), n_bytes)
}

/// Gathers properties from the file and the override flags.
fn gather_properties(args: &VerifyArgs) -> Result<Properties, Failure> {
    let mut properties = match &args.properties {
        Some(path) => verify::read_properties_file(path).map_err(|err| match err {
            verify::PropertiesFileError::Read(err) => usage(
                "io_error",
                format!("cannot read the properties file {}: {err}", path.display()),
            ),
            other => usage(
                "bad_properties_file",
                format!("{}: {}", path.display(), verify::with_causes(&other)),
            ),
        })?,
        None => Properties::new(),
    };
    for (name, value) in [
        (verify::SIGNATURE, &args.signature),
        (verify::HASH_METHOD, &args.hash_method),
        (verify::KEY_TYPE, &args.key_type),
        (verify::CERTIFICATE_UUID, &args.cert_uuid),
    ] {
        if let Some(value) = value {
            properties.insert(name.to_owned(), value.clone());
        }
    }
    Ok(properties)
}

fn trusted_ids(args: &VerifyArgs) -> Result<Option<Vec<String>>, Failure> {
    let mut ids = match &args.trusted_list {
        Some(path) => Some(verify::trusted_ids_from_text(&read_text(
            path,
            "trusted list",
        )?)),
        None => None,
    };
    if !args.trusted_certs.is_empty() {
        ids.get_or_insert_with(Vec::new)
            .extend(args.trusted_certs.iter().cloned());
    }
    Ok(ids)
}

pub(crate) fn run(args: VerifyArgs) -> Exit {
    let mode = match args.compat {
        Some(Compat::Cursive) => Mode::CompatCursive,
        None => Mode::Strict,
    };
    let mut report = Report {
        verified: false,
        mode: mode.name(),
        image: args.image.display().to_string(),
        image_size: None,
        hash_method: None,
        key_type: None,
        digest: None,
        signer: None,
        chain: None,
        warnings: Vec::new(),
        error: None,
    };
    let outcome = verify_image(&args, mode, &mut report);
    let exit = match &outcome {
        Ok(()) => Exit::Success,
        Err(Failure::Rejected(error)) if error.is_environmental() => Exit::Error,
        Err(Failure::Rejected(_)) => Exit::Rejected,
        Err(Failure::Usage { .. }) => Exit::Error,
    };
    if let Err(failure) = &outcome {
        report.error = Some(match failure {
            Failure::Rejected(error) => MessageJson {
                kind: error.kind().to_owned(),
                // With its causes: the I/O error behind an unreadable
                // key-store entry, the base64 position, the DER problem.
                message: verify::with_causes(error.as_ref()),
                cursive_message: if mode == Mode::CompatCursive {
                    error.cursive_message()
                } else {
                    None
                },
            },
            Failure::Usage { kind, message } => MessageJson {
                kind: (*kind).to_owned(),
                message: message.clone(),
                cursive_message: None,
            },
        });
    }
    let printed = print(&args, &report, exit);
    super::stdio::settle(exit, printed, None)
}

/// Prints the outcome: one JSON document, or text lines (escaped: the
/// image name, certificate subjects and messages come from outside).
fn print(args: &VerifyArgs, report: &Report, exit: Exit) -> stdio::Printed {
    if args.format == OutputFormat::Json {
        return stdio::json(report);
    }
    for warning in &report.warnings {
        stdio::eline(&format!("warning: {}", warning.message));
    }
    match (&report.error, exit) {
        (None, _) => {
            let signer = report.signer.as_ref();
            let chain = report
                .chain
                .as_ref()
                .map(|chain| {
                    let names: Vec<&str> = chain.iter().map(|c| c.subject.as_str()).collect();
                    format!("; chain: {}", names.join(" <- "))
                })
                .unwrap_or_default();
            stdio::line(&format!(
                "verified: {} ({}, {}) signed by certificate {} ({}){chain}",
                report.image,
                report.key_type.unwrap_or("?"),
                report.hash_method.unwrap_or("?"),
                signer.map(|s| s.id.as_str()).unwrap_or("?"),
                signer.map(|s| s.subject.as_str()).unwrap_or("?"),
            ))
        }
        (Some(error), Exit::Rejected) => {
            let cursive = error
                .cursive_message
                .as_ref()
                .map(|message| format!(" (cursive reports: {message:?})"))
                .unwrap_or_default();
            stdio::eline(&format!(
                "rejected: {} [{}]{cursive}",
                error.message, error.kind
            ));
            Ok(())
        }
        (Some(error), _) => {
            stdio::eline(&format!("error: {} [{}]", error.message, error.kind));
            Ok(())
        }
    }
}

fn verify_image(args: &VerifyArgs, mode: Mode, report: &mut Report) -> Result<(), Failure> {
    let clock = super::clock_from_env().map_err(|message| usage("usage", message))?;
    let properties = gather_properties(args)?;
    let trusted = trusted_ids(args)?;
    let key_manager = open_key_manager(args)?;
    // Open the image before judging the properties, so a missing file is a
    // usage error (exit 2) whatever the properties say. `image_size` stays
    // null until bytes are read: it reports what was read, not the file size.
    let mut image = open_image(&args.image).map_err(|message| usage("io_error", message))?;
    let params = SignatureParams::from_properties(&properties, mode)
        .map_err(|err| Failure::Rejected(Box::new(err.into())))?
        .ok_or_else(|| {
            Failure::Rejected(Box::new(
                verify::ParamsError::MissingProperties {
                    missing: verify::PROPERTIES.to_vec(),
                }
                .into(),
            ))
        })?;
    report.hash_method = Some(params.hash_method().name());
    report.key_type = Some(params.key_type().name());

    let store = key_manager.certificates(&params, trusted.as_deref())?;
    let options = VerifyOptions {
        mode,
        trusted_certificate_ids: trusted.as_deref(),
        clock: clock.as_ref(),
    };
    let verifier = Verifier::new(&params, &store, &options).map_err(|err| {
        // A failure after the certificate was read still says who signed.
        report.signer = err.signer().map(CertificateJson::from);
        Failure::Rejected(Box::new(err))
    })?;
    report.signer = Some(verifier.signer().into());
    report.chain = verifier
        .chain()
        .map(|chain| chain.iter().map(CertificateJson::from).collect());
    report.warnings = verifier
        .warnings()
        .iter()
        .map(|warning| MessageJson {
            kind: warning.kind().to_owned(),
            message: warning.to_string(),
            cursive_message: None,
        })
        .collect();

    let (digest, n_bytes) = hash_counting(&mut image, verifier.hash_algorithm(), &args.image);
    report.image_size = Some(n_bytes);
    let digest = digest.map_err(|message| usage("io_error", message))?;
    report.digest = Some(digest.to_hex());
    verifier
        .finish_with_digest(&digest)
        .map_err(|err| Failure::Rejected(Box::new(err)))?;
    report.verified = true;
    Ok(())
}

/// The key manager of one `verify` run: the directory, or Barbican with the
/// session of this process's OpenStack client settings, and the runtime
/// its prefetch runs on.
struct CliKeyManager {
    key_manager: KeyManager,
    session: Option<Session>,
    runtime: tokio::runtime::Runtime,
}

/// Checks the key-manager options and, for Barbican, the client settings
/// (no network yet: properties are judged before anyone is asked).
fn open_key_manager(args: &VerifyArgs) -> Result<CliKeyManager, Failure> {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| usage("io_error", format!("cannot start the async runtime: {err}")))
    };
    match (args.key_manager, &args.cert_dir) {
        (Some(KeyManagerArg::Barbican), Some(_)) => Err(usage(
            "usage",
            "--cert-dir and --key-manager barbican exclude each other: certificates come from one key manager",
        )),
        (Some(KeyManagerArg::Barbican), None) => {
            let settings_error =
                |err: &dyn std::error::Error| usage("openstack_settings", error_chain(err));
            let settings = args
                .openstack
                .settings()
                .map_err(|err| settings_error(&err))?;
            let barbican = Barbican::new(
                &settings.tls,
                BarbicanOptions::default(),
                std::sync::Arc::new(SystemClock),
            )
            .map_err(|err| settings_error(&err))?;
            let session = Session::new(settings).map_err(|err| settings_error(&err))?;
            Ok(CliKeyManager {
                key_manager: KeyManager::Barbican(std::sync::Arc::new(barbican)),
                session: Some(session),
                runtime: runtime()?,
            })
        }
        (Some(KeyManagerArg::Directory) | None, Some(dir)) => {
            // Opened now so that an unusable directory is reported before
            // the image is read; read again (off the runtime) at prefetch.
            DirKeyStore::open(dir).map_err(|err| {
                usage(
                    "io_error",
                    format!(
                        "cannot open the certificate directory {}: {err}",
                        dir.display()
                    ),
                )
            })?;
            Ok(CliKeyManager {
                key_manager: KeyManager::Directory(dir.clone()),
                session: None,
                runtime: runtime()?,
            })
        }
        (Some(KeyManagerArg::Directory) | None, None) => Err(usage(
            "usage",
            "--cert-dir DIR is required (or --key-manager barbican to read certificates from Barbican)",
        )),
    }
}

impl CliKeyManager {
    /// The certificates this verification needs, fetched before it starts.
    fn certificates(
        &self,
        params: &SignatureParams,
        trusted: Option<&[String]>,
    ) -> Result<Prefetched, Failure> {
        let caller = self.session.as_ref().map(Caller::Session);
        let mut ids = vec![params.certificate_id().to_owned()];
        ids.extend(trusted.into_iter().flatten().cloned());
        self.runtime
            .block_on(self.key_manager.prefetch(caller.as_ref(), ids))
            .map_err(|err| usage(err.kind(), error_chain(&err)))
    }
}
