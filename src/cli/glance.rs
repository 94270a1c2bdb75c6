//! `portcullis glance verify | audit | upload`: the client side of the
//! pipeline against any Glance image API v2.
//!
//! This file parses arguments, lowers them to [`crate::glance`] calls,
//! draws the progress bars and prints the report. It must not check,
//! sign or talk HTTP itself. Exit codes: 0 every image passed (upload:
//! active and matching the file), 1 an image failed or was refused, 2 usage,
//! settings or connection errors.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Subcommand, ValueEnum};

use super::openstack::{KeyManagerArg, OpenStackArgs};
use super::report::error_chain;
use super::{Exit, stdio};
use crate::glance::{
    self, Audit, AuditQuery, CheckOptions, Checker, ConnectOptions, Connection, ImageCheck,
    Observer, Phase, Progress, RetryPolicy, Signing, UploadProgress, UploadRequest, Verdict,
    report,
};
use crate::image::{ContainerFormat, DiskFormat, ImageId, Properties};
use crate::ingest::HashPool;
use crate::inspect::policy::FormatPolicy;
use crate::key_manager::KeyManager;
use crate::openstack::{Barbican, BarbicanOptions, Environment};
use crate::verify::sign::SigningKey;
use crate::verify::{self, CertificateId, DirKeyStore, HashMethod, Mode};
use crate::wire::ServedImage;

/// Arguments of `portcullis glance`.
#[derive(Debug, clap::Args)]
pub(crate) struct GlanceArgs {
    #[command(subcommand)]
    command: GlanceCommand,
}

#[derive(Debug, Subcommand)]
enum GlanceCommand {
    /// Check images by id: each image's data streamed once through the
    /// signature verifier, md5, the os_hash, the size and the format inspector.
    Verify(VerifyArgs),
    /// Check every active image a listing returns, N at a time, with a summary.
    Audit(AuditArgs),
    /// Inspect (and sign) a file locally, then create and upload the image.
    Upload(UploadArgs),
}

/// Where Glance is and how to authenticate.
#[derive(Debug, clap::Args)]
struct ConnectionArgs {
    /// Glance's endpoint (its root, `http://glance:9292`); default: the
    /// Keystone catalog's image endpoint [env: OS_IMAGE_URL].
    #[arg(long, value_name = "URL")]
    os_image_url: Option<String>,
    #[command(flatten)]
    openstack: OpenStackArgs,
}

/// `--compat` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompatArg {
    /// OpenStack cursive 0.3.1, exactly.
    Cursive,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
enum ReportFormat {
    /// One line per image and a summary.
    #[default]
    Text,
    /// One JSON document.
    Json,
    /// JUnit XML, one testcase per image.
    Junit,
}

/// What verify and audit share.
#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Directory of signing certificates named `<uuid>.pem` (or `.der`).
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// Where certificates come from: `directory` (`--cert-dir`) or
    /// `barbican` (the Keystone catalog's key manager, with the OpenStack
    /// client settings).
    #[arg(long, value_enum, value_name = "KIND")]
    key_manager: Option<KeyManagerArg>,
    /// File of trusted certificate ids, one per line; switches chain validation on.
    #[arg(long, value_name = "FILE")]
    trusted_list: Option<PathBuf>,
    /// A trusted certificate id (repeatable); switches chain validation on.
    #[arg(long = "trusted-cert", value_name = "ID")]
    trusted_certs: Vec<String>,
    /// Reproduce cursive's signature rules instead of strict mode.
    #[arg(long, value_enum)]
    compat: Option<CompatArg>,
    /// Unsigned images fail.
    #[arg(long)]
    require_signature: bool,
    /// Report format (on stdout).
    #[arg(long, value_enum, default_value_t)]
    format: ReportFormat,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// Arguments of `portcullis glance verify`.
#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// Image ids.
    #[arg(required = true, value_name = "IMAGE_ID")]
    ids: Vec<String>,
    #[command(flatten)]
    check: CheckArgs,
}

/// Arguments of `portcullis glance audit`.
#[derive(Debug, clap::Args)]
struct AuditArgs {
    /// Only this project's images (`owner=`).
    #[arg(long, value_name = "PROJECT", conflicts_with = "all_projects")]
    project: Option<String>,
    /// Only images of this visibility: public, private, shared, community, all.
    #[arg(long, value_name = "V")]
    visibility: Option<String>,
    /// Only images with this tag (repeatable: every tag).
    #[arg(long = "tag", value_name = "T")]
    tags: Vec<String>,
    /// Every image the caller may see, community images included
    /// (`visibility=all`; an administrator sees every project's).
    #[arg(long)]
    all_projects: bool,
    /// Images checked at once.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    #[command(flatten)]
    check: CheckArgs,
}

/// Output formats of `upload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
enum UploadFormat {
    /// A few lines.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

/// Arguments of `portcullis glance upload`.
#[derive(Debug, clap::Args)]
struct UploadArgs {
    /// The image file.
    file: PathBuf,
    /// The image's name.
    #[arg(long)]
    name: String,
    /// Disk format: ami, ari, aki, vhd, vhdx, vmdk, raw, qcow2, vdi, iso, ploop.
    #[arg(long, value_name = "F")]
    disk_format: String,
    /// Container format: ami, ari, aki, bare, ovf, ova, docker, compressed.
    #[arg(long, value_name = "C")]
    container_format: String,
    /// An additional property (repeatable).
    #[arg(long = "property", value_name = "K=V")]
    properties: Vec<String>,
    /// Visibility: public, private, shared, community (default: the server's).
    #[arg(long, value_name = "V")]
    visibility: Option<String>,
    /// Sign the image with this unencrypted PEM private key.
    #[arg(long, value_name = "KEY.pem", requires = "cert_uuid")]
    sign_key: Option<PathBuf>,
    /// Key-manager id of the certificate holding the signing key's public key.
    #[arg(long, value_name = "ID", requires = "sign_key")]
    cert_uuid: Option<String>,
    /// Signature hash method: SHA-224, SHA-256, SHA-384 or SHA-512.
    #[arg(long, default_value = "SHA-256", requires = "sign_key")]
    hash_method: String,
    /// Leave the image on the server when the upload fails (default: delete it).
    #[arg(long)]
    keep_on_failure: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: UploadFormat,
    #[command(flatten)]
    connection: ConnectionArgs,
}

pub(crate) fn run(args: GlanceArgs) -> Exit {
    match args.command {
        GlanceCommand::Verify(args) => run_checks(&args.check, Run::Verify(args.ids.clone())),
        GlanceCommand::Audit(args) => {
            let query = AuditQuery {
                owner: args.project.clone(),
                visibility: args.visibility.clone(),
                tags: args.tags.clone(),
                all_projects: args.all_projects,
            };
            run_checks(
                &args.check,
                Run::Audit {
                    query,
                    concurrency: usize::from(args.concurrency),
                },
            )
        }
        GlanceCommand::Upload(args) => run_upload(&args),
    }
}

/// A failure before any image was checked or uploaded (exit 2 unless said).
struct Failure {
    kind: &'static str,
    message: String,
    exit: Exit,
    /// The image an upload created before it failed (deleted or kept).
    image_id: Option<String>,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        kind: "usage",
        message: message.into(),
        exit: Exit::Error,
        image_id: None,
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure {
            kind: "io_error",
            message: format!("cannot start the async runtime: {err}"),
            exit: Exit::Error,
            image_id: None,
        })
}

fn connect_options(args: &ConnectionArgs, need_session: bool) -> ConnectOptions {
    ConnectOptions {
        image_url: args.os_image_url.clone(),
        flags: args.openstack.raw(),
        cloud: args.openstack.cloud().map(str::to_owned),
        need_session,
        client: glance::ClientOptions::default(),
    }
}

async fn connect(args: &ConnectionArgs, need_session: bool) -> Result<Connection, Failure> {
    glance::connect(
        connect_options(args, need_session),
        &Environment::from_process(),
    )
    .await
    .map_err(|err| Failure {
        kind: err.kind(),
        message: error_chain(&err),
        exit: Exit::Error,
        image_id: None,
    })
}

enum Run {
    Verify(Vec<String>),
    Audit {
        query: AuditQuery,
        concurrency: usize,
    },
}

fn run_checks(args: &CheckArgs, what: Run) -> Exit {
    let command = match what {
        Run::Verify(_) => "glance verify",
        Run::Audit { .. } => "glance audit",
    };
    let mode = match args.compat {
        Some(CompatArg::Cursive) => Mode::CompatCursive,
        None => Mode::Strict,
    };
    let context = report::ReportContext {
        command,
        mode: mode.name(),
        require_signature: args.require_signature,
    };
    let outcome = runtime().and_then(|runtime| runtime.block_on(checks(args, what, mode)));
    let (exit, printed) = match outcome {
        Ok(audit) => {
            let printed = match args.format {
                ReportFormat::Text => stdio::lines(&report::text(&audit, context)),
                ReportFormat::Json => stdio::json(&report::json(&audit, context)),
                ReportFormat::Junit => stdio::lines(&report::junit(&audit, context)),
            };
            let exit = match audit.verdict(args.require_signature) {
                Verdict::Passed => Exit::Success,
                Verdict::Failed => Exit::Rejected,
                Verdict::ConnectionError => Exit::Error,
            };
            (exit, printed)
        }
        Err(failure) => {
            let printed = match args.format {
                ReportFormat::Json => stdio::json(&serde_json::json!({
                    "command": command,
                    "error": {"kind": failure.kind, "message": failure.message},
                })),
                ReportFormat::Text | ReportFormat::Junit => {
                    stdio::eline(&format!("error: {} [{}]", failure.message, failure.kind));
                    Ok(())
                }
            };
            (failure.exit, printed)
        }
    };
    stdio::settle(exit, printed, None)
}

async fn checks(args: &CheckArgs, what: Run, mode: Mode) -> Result<Audit, Failure> {
    let clock: Arc<dyn crate::clock::Clock> = Arc::from(super::clock_from_env().map_err(usage)?);
    let trusted = trusted_ids(args)?;
    if let Run::Verify(ids) = &what
        && let Some(bad) = ids.iter().find(|id| id.parse::<ImageId>().is_err())
    {
        return Err(usage(format!(
            "{bad:?} is not an image id (Glance image ids are UUIDs)"
        )));
    }
    let barbican = match (args.key_manager, &args.cert_dir) {
        (Some(KeyManagerArg::Barbican), Some(_)) => {
            return Err(usage(
                "--cert-dir and --key-manager barbican exclude each other: certificates come from one key manager",
            ));
        }
        (Some(KeyManagerArg::Barbican), None) => true,
        (Some(KeyManagerArg::Directory), None) => {
            return Err(usage("--key-manager directory needs --cert-dir DIR"));
        }
        (Some(KeyManagerArg::Directory) | None, _) => false,
    };
    let keys = match &args.cert_dir {
        Some(dir) => {
            // Opened now so that an unusable directory is a usage error
            // before anything is asked; read again at each check.
            DirKeyStore::open(dir).map_err(|err| Failure {
                kind: "io_error",
                message: format!(
                    "cannot open the certificate directory {}: {err}",
                    dir.display()
                ),
                exit: Exit::Error,
                image_id: None,
            })?;
            Some(KeyManager::Directory(dir.clone()))
        }
        None => None,
    };
    let connection = connect(&args.connection, barbican).await?;
    let keys = match (keys, &connection.session) {
        (Some(keys), _) => Some(keys),
        (None, Some(session)) if barbican => Some(KeyManager::Barbican(Arc::new(
            Barbican::new(
                &session.settings().tls,
                BarbicanOptions::default(),
                clock.clone(),
            )
            .map_err(|err| Failure {
                kind: "openstack_settings",
                message: error_chain(&err),
                exit: Exit::Error,
                image_id: None,
            })?,
        ))),
        (None, _) => None,
    };
    let pool = HashPool::per_core().map_err(|err| Failure {
        kind: "io_error",
        message: error_chain(&err),
        exit: Exit::Error,
        image_id: None,
    })?;
    let checker = Checker::new(
        connection.client.clone(),
        pool,
        CheckOptions {
            mode,
            trusted,
            keys,
            session: connection.session.clone(),
            clock,
            format_policy: FormatPolicy::default(),
            retry: RetryPolicy::default(),
        },
    );
    let bars = Bars::new();
    match what {
        Run::Verify(ids) => Ok(glance::verify_ids(&checker, &ids, 1, &bars).await),
        Run::Audit { query, concurrency } => {
            let audit = glance::audit(&checker, &query, concurrency, &bars)
                .await
                .map_err(|err| Failure {
                    kind: err.kind(),
                    message: format!("listing the images failed: {}", error_chain(&err)),
                    exit: Exit::Error,
                    image_id: None,
                });
            bars.finish();
            audit
        }
    }
}

fn trusted_ids(args: &CheckArgs) -> Result<Option<Vec<String>>, Failure> {
    let mut ids = match &args.trusted_list {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|err| Failure {
                kind: "io_error",
                message: format!("cannot read the trusted list {}: {err}", path.display()),
                exit: Exit::Error,
                image_id: None,
            })?;
            Some(verify::trusted_ids_from_text(&text))
        }
        None => None,
    };
    if !args.trusted_certs.is_empty() {
        ids.get_or_insert_with(Vec::new)
            .extend(args.trusted_certs.iter().cloned());
    }
    Ok(ids)
}

/// The progress bars of a run on a terminal: images, and bytes.
struct Bars {
    images: Option<indicatif::ProgressBar>,
    bytes: Option<indicatif::ProgressBar>,
}

impl Bars {
    fn new() -> Bars {
        if !std::io::stderr().is_terminal() {
            return Bars {
                images: None,
                bytes: None,
            };
        }
        let multi = indicatif::MultiProgress::new();
        let images = multi.add(indicatif::ProgressBar::new(0));
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} images") {
            images.set_style(style);
        }
        let bytes = multi.add(indicatif::ProgressBar::new(0));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        ) {
            bytes.set_style(style);
        }
        Bars {
            images: Some(images),
            bytes: Some(bytes),
        }
    }

    fn finish(&self) {
        for bar in [&self.images, &self.bytes].into_iter().flatten() {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Bars {
    fn advance(&self, n: u64) {
        if let Some(bar) = &self.bytes {
            bar.inc(n);
        }
    }
    fn rewind(&self, n: u64) {
        if let Some(bar) = &self.bytes {
            bar.set_position(bar.position().saturating_sub(n));
        }
    }
}

impl Observer for Bars {
    fn listed(&self, images: usize, bytes: u64) {
        if let Some(bar) = &self.images {
            bar.set_length(images as u64);
        }
        if let Some(bar) = &self.bytes {
            bar.set_length(bytes);
        }
    }
    fn checked(&self, _check: &ImageCheck) {
        if let Some(bar) = &self.images {
            bar.inc(1);
        }
        // `verify` does not know the sizes up front: the total grows with what was read.
        if let Some(bar) = &self.bytes
            && bar.length().is_some_and(|length| length < bar.position())
        {
            bar.set_length(bar.position());
        }
    }
}

/// The upload's bar: the local read, then the upload.
struct UploadBar(Option<indicatif::ProgressBar>);

impl UploadProgress for UploadBar {
    fn phase(&self, phase: Phase, total: u64) {
        if let Some(bar) = &self.0 {
            bar.reset();
            bar.set_length(total);
            bar.set_message(match phase {
                Phase::Inspecting => "inspecting",
                Phase::Uploading => "uploading",
            });
        }
    }
    fn advance(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }
}

fn run_upload(args: &UploadArgs) -> Exit {
    let outcome = runtime().and_then(|runtime| runtime.block_on(upload(args)));
    match (outcome, args.format) {
        (Ok(uploaded), UploadFormat::Text) => {
            let image = &uploaded.image;
            let printed = stdio::line(&format!(
                "active: {} {:?} {} bytes, checksum {}, {} {}{}",
                image.id,
                image.name.as_deref().unwrap_or(""),
                image.size.unwrap_or(0),
                image.checksum.as_deref().unwrap_or("-"),
                image.os_hash_algo.as_deref().unwrap_or("os_hash"),
                image.os_hash_value.as_deref().unwrap_or("-"),
                if uploaded.signed {
                    format!(
                        ", signed (certificate {})",
                        image
                            .properties
                            .get(verify::CERTIFICATE_UUID)
                            .map_or("?", String::as_str)
                    )
                } else {
                    String::new()
                }
            ));
            for warning in uploaded
                .local
                .accepted
                .iter()
                .flat_map(|accepted| &accepted.warnings)
            {
                stdio::eline(&format!("warning: {warning}"));
            }
            stdio::settle(Exit::Success, printed, Some(&committed(image)))
        }
        (Ok(uploaded), UploadFormat::Json) => {
            let printed = stdio::json(&serde_json::json!({
                "image": image_json(&uploaded.image),
                "signed": uploaded.signed,
                "local": {
                    "size": uploaded.local.n_bytes,
                    "checksum": uploaded.local.md5,
                    "sha512": uploaded.local.sha512,
                    "format": uploaded.local.accepted.as_ref().map(|accepted| serde_json::json!({
                        "detected": accepted.detected.map(|format| format.as_str()),
                        "virtual_size": accepted.virtual_size,
                        "warnings": accepted.warnings,
                    })),
                },
                "error": null,
            }));
            stdio::settle(Exit::Success, printed, Some(&committed(&uploaded.image)))
        }
        (Err(failure), format) => {
            let printed = match format {
                UploadFormat::Text => {
                    stdio::eline(&format!("error: {} [{}]", failure.message, failure.kind));
                    Ok(())
                }
                UploadFormat::Json => stdio::json(&serde_json::json!({
                    "error": {"kind": failure.kind, "message": failure.message},
                    "image_id": failure.image_id,
                })),
            };
            stdio::settle(failure.exit, printed, None)
        }
    }
}

/// What a successful upload committed, for when its output is lost.
fn committed(image: &ServedImage) -> String {
    format!("image {} is active on the Glance server", image.id)
}

fn image_json(image: &ServedImage) -> serde_json::Value {
    serde_json::json!({
        "id": image.id,
        "name": image.name,
        "status": image.status,
        "visibility": image.visibility,
        "owner": image.owner,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "checksum": image.checksum,
        "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value,
        "tags": image.tags,
        "properties": image.properties,
    })
}

async fn upload(args: &UploadArgs) -> Result<glance::Uploaded, Failure> {
    let disk_format: DiskFormat = args
        .disk_format
        .parse()
        .map_err(|err| usage(format!("--disk-format: {err}")))?;
    let container_format: ContainerFormat = args
        .container_format
        .parse()
        .map_err(|err| usage(format!("--container-format: {err}")))?;
    let mut properties = Properties::new();
    for pair in &args.properties {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| usage(format!("--property {pair:?} is not K=V")))?;
        crate::wire::check_property(name, value)
            .map_err(|err| usage(format!("--property {name}: {err}")))?;
        if args.sign_key.is_some() && verify::PROPERTIES.contains(&name) {
            return Err(usage(format!(
                "--property {name} and --sign-key exclude each other: the signature properties are made from the key"
            )));
        }
        if properties
            .insert(name.to_owned(), value.to_owned())
            .is_some()
        {
            return Err(usage(format!("--property {name} is given twice")));
        }
    }
    let signing = match (&args.sign_key, &args.cert_uuid) {
        (Some(key_path), Some(certificate_id)) => {
            CertificateId::parse(certificate_id)
                .map_err(|err| usage(format!("--cert-uuid: {err}")))?;
            let hash_method = HashMethod::from_name(&args.hash_method).ok_or_else(|| {
                usage(format!(
                    "--hash-method {:?} is not supported (expected exactly one of SHA-224, SHA-256, SHA-384, SHA-512)",
                    args.hash_method
                ))
            })?;
            let pem = std::fs::read_to_string(key_path)
                .map_err(|err| usage(format!("cannot read key {}: {err}", key_path.display())))?;
            let key = SigningKey::from_pem(&pem)
                .map_err(|err| usage(format!("{}: {err}", key_path.display())))?;
            Some(Signing {
                key,
                certificate_id: certificate_id.clone(),
                hash_method,
            })
        }
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            return Err(usage("--sign-key and --cert-uuid go together"));
        }
    };
    // The file is checked before anyone is asked anything.
    match std::fs::metadata(&args.file) {
        Ok(metadata) if metadata.is_file() => {}
        Ok(_) => {
            return Err(usage(format!(
                "{} is not a regular file",
                args.file.display()
            )));
        }
        Err(err) => {
            return Err(usage(format!("cannot read {}: {err}", args.file.display())));
        }
    }
    let connection = connect(&args.connection, false).await?;
    let pool = HashPool::per_core().map_err(|err| Failure {
        kind: "io_error",
        message: error_chain(&err),
        exit: Exit::Error,
        image_id: None,
    })?;
    let bar = UploadBar(std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:10} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    }));
    let request = UploadRequest {
        file: args.file.clone(),
        name: args.name.clone(),
        disk_format,
        container_format,
        visibility: args.visibility.clone(),
        properties,
        signing,
        keep_on_failure: args.keep_on_failure,
        format_policy: FormatPolicy::default(),
    };
    let outcome = glance::upload(&connection.client, &pool, request, &bar).await;
    if let Some(bar) = &bar.0 {
        bar.finish_and_clear();
    }
    outcome.map_err(|err| Failure {
        kind: err.kind(),
        message: error_chain(&err),
        exit: if err.is_rejection() {
            Exit::Rejected
        } else {
            Exit::Error
        },
        image_id: err.image_id().map(str::to_owned),
    })
}
