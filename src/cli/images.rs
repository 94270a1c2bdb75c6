//! `portcullis images`: manage images in the local repository (create,
//! upload, list, show, update, download, delete, deactivate, reactivate),
//! and the argument groups `ingest` shares with it.
//!
//! Thin: parses, builds the settings and the request context, calls the
//! library, prints (text or Glance's JSON). It must not decide anything.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};

use super::ingest::IngestArgs;
use super::{Exit, OutputFormat};
use crate::clock::Clock;
use crate::config::{Compat, Config, Overrides};
use crate::context::RequestContext;
use crate::image::{ContainerFormat, DiskFormat, Image, ImageId, Properties, Status, Visibility};
use crate::ingest::download::{self, Output};
use crate::ingest::{self, DataDir, UploadData};
use crate::repo::{ImageRepo, ListQuery, VisibilityFilter};

/// Where the repository is and who is asking.
#[derive(Debug, Clone, Args)]
pub(crate) struct RepoArgs {
    /// The data directory (SQLite database, image store, locks, portcullis.toml).
    #[arg(long, global = true, env = "PORTCULLIS_DATA_DIR", default_value = crate::config::DEFAULT_DATA_DIR)]
    pub(crate) data_dir: PathBuf,
    /// Config file (default: <data-dir>/portcullis.toml when it exists).
    #[arg(long, global = true)]
    pub(crate) config: Option<PathBuf>,
    /// Act as this project instead of the local administrator.
    #[arg(long, global = true)]
    pub(crate) project: Option<String>,
    /// Roles of the caller, comma separated (default with --project: member).
    #[arg(long, global = true, value_delimiter = ',')]
    pub(crate) roles: Vec<String>,
}

/// `--compat` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CompatArg {
    /// portcullis's strict checks (default).
    Strict,
    /// Reproduce OpenStack cursive exactly.
    Cursive,
}

/// Settings of an upload.
#[derive(Debug, Clone, Args)]
pub(crate) struct UploadArgs {
    /// Directory of signing certificates (`<uuid>.pem` or DER), as Barbican would serve them.
    #[arg(long)]
    pub(crate) cert_dir: Option<PathBuf>,
    /// File of trusted certificate ids, one per line: validates the signer's chain.
    #[arg(long)]
    pub(crate) trusted_list: Option<PathBuf>,
    /// Refuse images without a complete img_signature* property set.
    #[arg(long)]
    pub(crate) require_signature: bool,
    /// Largest image accepted, in bytes (default 1 TiB, config image_size_cap).
    #[arg(long, value_name = "BYTES")]
    pub(crate) size_cap: Option<u64>,
    /// Signature-checking mode.
    #[arg(long, value_enum)]
    pub(crate) compat: Option<CompatArg>,
    /// The size the data must have, in bytes (as `x-openstack-image-size`);
    /// a file's own length otherwise.
    #[arg(long, value_name = "BYTES")]
    pub(crate) size: Option<u64>,
}

/// The fields of a new image.
#[derive(Debug, Clone, Args)]
pub(crate) struct ImageFields {
    /// Image name.
    #[arg(long)]
    pub(crate) name: String,
    /// Disk format (ami, ari, aki, vhd, vhdx, vmdk, raw, qcow2, vdi, iso, ploop).
    #[arg(long)]
    pub(crate) disk_format: String,
    /// Container format (ami, ari, aki, bare, ovf, ova, docker, compressed).
    #[arg(long)]
    pub(crate) container_format: String,
    /// An extra property K=V (repeatable); overrides --properties.
    #[arg(long = "property", value_name = "K=V")]
    pub(crate) properties: Vec<String>,
    /// Properties from a JSON file: a flat object or `glance image-show -f json` output.
    #[arg(long = "properties", value_name = "FILE.json")]
    pub(crate) properties_file: Option<PathBuf>,
    /// Visibility (public, private, shared, community; default shared).
    #[arg(long)]
    pub(crate) visibility: Option<String>,
    /// A tag (repeatable).
    #[arg(long = "tag")]
    pub(crate) tags: Vec<String>,
    /// Minimum disk in GiB.
    #[arg(long)]
    pub(crate) min_disk: Option<u32>,
    /// Minimum RAM in MiB.
    #[arg(long)]
    pub(crate) min_ram: Option<u32>,
    /// Protect the image from deletion.
    #[arg(long)]
    pub(crate) protected: bool,
}

/// Arguments of `portcullis images`.
#[derive(Debug, Args)]
pub(crate) struct ImagesArgs {
    #[command(subcommand)]
    command: ImagesCommand,
    #[command(flatten)]
    repo: RepoArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t, global = true)]
    format: OutputFormat,
}

#[derive(Debug, Subcommand)]
enum ImagesCommand {
    /// Create a queued image (no data).
    Create(ImageFields),
    /// Upload data to a queued image (one pass, verified before it becomes active).
    Upload {
        /// Image id.
        id: String,
        /// The data: a file, or `-` for standard input.
        file: PathBuf,
        #[command(flatten)]
        upload: UploadArgs,
    },
    /// List images.
    List {
        /// Only images with this status.
        #[arg(long)]
        status: Option<String>,
        /// Only images with this name.
        #[arg(long)]
        name: Option<String>,
        /// Only images owned by this project.
        #[arg(long)]
        owner: Option<String>,
        /// Only images with this visibility.
        #[arg(long)]
        visibility: Option<String>,
        /// Only images with this tag (repeatable: all must match).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// At most this many images.
        #[arg(long)]
        limit: Option<u32>,
        /// Start after this image id (the last id of the previous page).
        #[arg(long)]
        marker: Option<String>,
    },
    /// Show one image.
    Show {
        /// Image id.
        id: String,
    },
    /// Change an image's name or properties.
    Update {
        /// Image id.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// Set a property K=V (repeatable).
        #[arg(long = "property", value_name = "K=V")]
        properties: Vec<String>,
        /// Remove a property (repeatable).
        #[arg(long = "remove-property", value_name = "K")]
        remove_properties: Vec<String>,
    },
    /// Write an image's data to a file, re-checking checksum and os_hash.
    Download {
        /// Image id.
        id: String,
        /// Output file (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Delete an image and its data.
    Delete {
        /// Image id.
        id: String,
    },
    /// Refuse downloads of an active image until reactivated.
    Deactivate {
        /// Image id.
        id: String,
    },
    /// Make a deactivated image active again.
    Reactivate {
        /// Image id.
        id: String,
    },
}

pub(crate) fn run(args: ImagesArgs) -> Exit {
    let ImagesArgs {
        command,
        repo,
        format,
    } = args;
    let upload = match &command {
        ImagesCommand::Upload { upload, .. } => Some(upload.clone()),
        _ => None,
    };
    // A download to standard output owns stdout: a failure reported after
    // (part of) the data must not be appended to it.
    let stdout_carries_data = matches!(
        &command,
        ImagesCommand::Download { output, .. }
            if output.as_deref().is_none_or(|path| path == Path::new("-"))
    );
    let mut session = match Session::start(&repo, upload.as_ref(), format) {
        Ok(session) => session,
        Err(exit) => return exit,
    };
    session.stdout_carries_data = stdout_carries_data;
    let result = session.block_on(images_command(&session, command));
    session.finish(result, None)
}

pub(crate) fn run_ingest(args: IngestArgs) -> Exit {
    let session = match Session::start(&args.repo, Some(&args.upload), args.format) {
        Ok(session) => session,
        Err(exit) => return exit,
    };
    let mut created = None;
    let result = session.block_on(async {
        let image = new_image(&args.fields, &session.ctx, session.clock.as_ref())?;
        let source = Source::open(&args.file, args.upload.size)?;
        // A signed image needs certificates: say so before creating anything.
        if crate::verify::Presence::of(&image.properties) == crate::verify::Presence::Complete
            && session.data.uploader.settings.cert_dir.is_none()
        {
            return Err(CliError::Usage(
                "the image is signed but no certificate directory is configured (--cert-dir or cert_dir)"
                    .to_owned(),
            ));
        }
        let repo = &session.data.uploader.repo;
        let image = repo.add(&session.ctx, &image).await?;
        created = Some(image.id);
        upload(&session, &image.id, source).await
    });
    session.finish(result, created)
}

/// One command's opened data directory, runtime and caller.
struct Session {
    runtime: tokio::runtime::Runtime,
    data: DataDir,
    ctx: RequestContext,
    clock: Arc<dyn Clock>,
    format: OutputFormat,
    /// The command writes image data to stdout: reports go to stderr.
    stdout_carries_data: bool,
}

/// What a command has to print on success.
enum Done {
    /// One image.
    Image(Box<Image>),
    /// A page of images, with the query that asked for it.
    Images {
        /// The page.
        images: Vec<Image>,
        /// The filters as query parameters (for Glance's `first`/`next` links).
        params: Vec<(String, String)>,
        /// The page size asked for (`None`: everything).
        limit: Option<u32>,
    },
    /// Data written somewhere (download).
    Downloaded {
        /// The JSON summary.
        summary: serde_json::Value,
        /// The text-mode line.
        line: String,
        /// Whether the data itself went to stdout (the summary then goes to stderr).
        to_stdout: bool,
    },
}

impl Session {
    fn start(
        repo: &RepoArgs,
        upload: Option<&UploadArgs>,
        format: OutputFormat,
    ) -> Result<Session, Exit> {
        let fail = |message: String| {
            report(format, &CliError::Usage(message), None);
            Exit::Error
        };
        let clock: Arc<dyn Clock> = match super::clock_from_env() {
            Ok(clock) => Arc::from(clock),
            Err(message) => return Err(fail(message)),
        };
        let mut overrides = Overrides {
            config_file: repo.config.clone(),
            ..Overrides::default()
        };
        if let Some(upload) = upload {
            overrides.image_size_cap = upload.size_cap;
            overrides.require_signature = upload.require_signature;
            overrides.cert_dir = upload.cert_dir.clone();
            overrides.trusted_list = upload.trusted_list.clone();
            overrides.compat = upload.compat.map(|compat| match compat {
                CompatArg::Strict => Compat::Strict,
                CompatArg::Cursive => Compat::Cursive,
            });
        }
        let config = match Config::load(&repo.data_dir, &overrides) {
            Ok(config) => config,
            Err(err) => return Err(fail(error_chain(&err))),
        };
        // Until uploads read Barbican (through the app facade), refuse rather
        // than silently verify against cert_dir instead.
        if config.ingest.key_manager == crate::config::KeyManagerKind::Barbican {
            return Err(fail(
                "key_manager = \"barbican\" is not supported by ingest and images upload yet; use the directory key manager (cert_dir), or check with verify --key-manager barbican"
                    .to_owned(),
            ));
        }
        let ctx = match &repo.project {
            // An empty id would become a project of its own that owns images.
            Some(project) if project.trim().is_empty() => {
                return Err(fail(
                    "--project must name a project id (it is empty); omit it to act as the local administrator"
                        .to_owned(),
                ));
            }
            Some(project) => {
                let roles: Vec<&str> = if repo.roles.is_empty() {
                    vec!["member", "reader"]
                } else {
                    repo.roles.iter().map(String::as_str).collect()
                };
                RequestContext::for_project(project.clone(), &roles)
            }
            None if repo.roles.is_empty() => RequestContext::local_admin(),
            None => RequestContext {
                project_id: None,
                user_id: None,
                roles: repo
                    .roles
                    .iter()
                    .map(|role| role.to_ascii_lowercase())
                    .collect(),
            },
        };
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(err) => return Err(fail(format!("cannot start the async runtime: {err}"))),
        };
        let data = match runtime.block_on(ingest::open(&config, clock.clone())) {
            Ok(data) => data,
            Err(err) => {
                report(format, &CliError::Open(err), None);
                return Err(Exit::Error);
            }
        };
        Ok(Session {
            runtime,
            data,
            ctx,
            clock,
            format,
            stdout_carries_data: false,
        })
    }

    fn block_on<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    fn finish(self, result: Result<Done, CliError>, image: Option<ImageId>) -> Exit {
        match result {
            Ok(done) => {
                print_done(self.format, done);
                Exit::Success
            }
            Err(err) if self.stdout_carries_data => {
                report_to(Channel::Stderr, self.format, &err, image.as_ref())
            }
            Err(err) => report(self.format, &err, image.as_ref()),
        }
    }
}

async fn images_command(session: &Session, command: ImagesCommand) -> Result<Done, CliError> {
    let repo = session.data.uploader.repo.as_ref();
    let ctx = &session.ctx;
    match command {
        ImagesCommand::Create(fields) => {
            let image = new_image(&fields, ctx, session.clock.as_ref())?;
            Ok(Done::Image(Box::new(repo.add(ctx, &image).await?)))
        }
        ImagesCommand::Upload {
            id,
            file,
            upload: upload_args,
            ..
        } => {
            let id = parse_id(&id)?;
            upload(session, &id, Source::open(&file, upload_args.size)?).await
        }
        ImagesCommand::List {
            status,
            name,
            owner,
            visibility,
            tags,
            limit,
            marker,
        } => {
            // The query as Glance's `GET /v2/images` would carry it, for the
            // page's `first` and `next` links.
            let mut params: Vec<(String, String)> = Vec::new();
            let mut param = |key: &str, value: Option<&String>| {
                if let Some(value) = value {
                    params.push((key.to_owned(), value.clone()));
                }
            };
            param("status", status.as_ref());
            param("name", name.as_ref());
            param("owner", owner.as_ref());
            param("visibility", visibility.as_ref());
            for tag in &tags {
                param("tag", Some(tag));
            }
            param("limit", limit.map(|limit| limit.to_string()).as_ref());
            param("marker", marker.as_ref());
            let query = ListQuery {
                status: status
                    .map(|status| status.parse::<Status>())
                    .transpose()
                    .map_err(usage)?,
                name,
                owner,
                visibility: visibility
                    .map(|visibility| visibility.parse::<VisibilityFilter>())
                    .transpose()
                    .map_err(usage)?,
                tags,
                limit,
                marker: marker.map(|marker| parse_id(&marker)).transpose()?,
                ..ListQuery::default()
            };
            Ok(Done::Images {
                images: repo.list(ctx, &query).await?,
                params,
                limit,
            })
        }
        ImagesCommand::Show { id } => {
            Ok(Done::Image(Box::new(repo.get(ctx, parse_id(&id)?).await?)))
        }
        ImagesCommand::Update {
            id,
            name,
            properties,
            remove_properties,
        } => {
            let mut image = repo.get(ctx, parse_id(&id)?).await?;
            if let Some(name) = name {
                image.name = Some(name);
            }
            for (key, value) in parse_key_values(&properties)? {
                image.properties.insert(key, value);
            }
            for key in remove_properties {
                if image.properties.remove(&key).is_none() {
                    return Err(CliError::Usage(format!(
                        "image {} has no property {key:?} to remove",
                        image.id
                    )));
                }
            }
            image.updated_at = session.clock.now();
            // Compare-and-swap on the status read above: an upload that
            // started or rolled back meanwhile makes this a conflict instead
            // of writing a stale status back.
            let status = image.status;
            Ok(Done::Image(Box::new(
                repo.save(ctx, &image, Some(status)).await?,
            )))
        }
        ImagesCommand::Download { id, output } => {
            let image = repo.prepare_download(ctx, parse_id(&id)?).await?;
            let output = match output {
                Some(path) if path != Path::new("-") => Output::File(path),
                _ => Output::Stdout,
            };
            let mut bar = ProgressBar::new(image.size.unwrap_or(0));
            let n_bytes =
                download::download(&session.data.uploader.store, &image, &output, &mut |n| {
                    bar.set(n)
                })
                .await?;
            bar.finish();
            let target = match &output {
                Output::File(path) => path.display().to_string(),
                Output::Stdout => "-".to_owned(),
            };
            let line = format!(
                "image {} downloaded to {target}: {n_bytes} bytes, checksum and os_hash verified",
                image.id
            );
            Ok(Done::Downloaded {
                summary: serde_json::json!({
                    "id": image.id.to_string(),
                    "output": target,
                    "size": n_bytes,
                    "checksum": image.checksum,
                    "os_hash_algo": image.os_hash_algo,
                    "os_hash_value": image.os_hash_value,
                    "verified": true,
                }),
                line,
                to_stdout: output == Output::Stdout,
            })
        }
        ImagesCommand::Delete { id } => Ok(Done::Image(Box::new(
            repo.remove(ctx, parse_id(&id)?).await?,
        ))),
        ImagesCommand::Deactivate { id } => {
            set_status(session, &id, Status::Active, Status::Deactivated).await
        }
        ImagesCommand::Reactivate { id } => {
            set_status(session, &id, Status::Deactivated, Status::Active).await
        }
    }
}

async fn set_status(
    session: &Session,
    id: &str,
    from: Status,
    to: Status,
) -> Result<Done, CliError> {
    let repo = session.data.uploader.repo.as_ref();
    let mut image = repo.get(&session.ctx, parse_id(id)?).await?;
    image.status = to;
    image.updated_at = session.clock.now();
    Ok(Done::Image(Box::new(
        repo.save(&session.ctx, &image, Some(from)).await?,
    )))
}

/// Uploads a file or stdin to the queued image `id`.
/// The data of an upload, opened before anything is created or changed, so
/// that a missing file is a usage error that leaves nothing behind.
struct Source {
    stream: ingest::source::ChunkStream,
    /// The size to enforce: `--size`, else a file's length.
    declared: Option<u64>,
    /// The size for the progress bar (0: unknown).
    expected: u64,
}

impl Source {
    fn open(file: &Path, declared: Option<u64>) -> Result<Source, CliError> {
        if file == Path::new("-") {
            let stream = ingest::source::stdin_stream().map_err(|err| {
                CliError::Usage(format!("cannot start reading standard input: {err}"))
            })?;
            return Ok(Source {
                stream,
                declared,
                expected: declared.unwrap_or(0),
            });
        }
        let (stream, len) = ingest::source::file_stream(file)
            .map_err(|err| CliError::Usage(format!("cannot read {}: {err}", file.display())))?;
        Ok(Source {
            stream,
            declared: Some(declared.unwrap_or(len)),
            expected: len,
        })
    }
}

/// Uploads `source` to the queued image `id`.
async fn upload(session: &Session, id: &ImageId, source: Source) -> Result<Done, CliError> {
    let data = UploadData {
        stream: source.stream,
        declared_size: source.declared,
    };
    let mut bar = ProgressBar::new(source.expected);
    let image = session
        .data
        .uploader
        .upload(&session.ctx, id, data, &mut |n| bar.set(n))
        .await;
    bar.finish();
    Ok(Done::Image(Box::new(image?)))
}

/// A progress bar on stderr, only when it is a terminal and the data is large.
struct ProgressBar(Option<indicatif::ProgressBar>);

/// Below this size an upload or download is quick enough to need no bar.
const PROGRESS_MIN_BYTES: u64 = 64 * 1024 * 1024;

impl ProgressBar {
    fn new(len: u64) -> ProgressBar {
        if len < PROGRESS_MIN_BYTES || !std::io::stderr().is_terminal() {
            return ProgressBar(None);
        }
        let bar = indicatif::ProgressBar::new(len);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        ) {
            bar.set_style(style);
        }
        ProgressBar(Some(bar))
    }

    fn set(&mut self, n_bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(n_bytes);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// Builds the queued image from the command-line fields.
fn new_image(
    fields: &ImageFields,
    ctx: &RequestContext,
    clock: &dyn Clock,
) -> Result<Image, CliError> {
    let mut image = Image::new_queued(ImageId::new_random(), ctx.project_id.clone(), clock.now());
    image.name = Some(fields.name.clone());
    image.disk_format = Some(fields.disk_format.parse::<DiskFormat>().map_err(usage)?);
    image.container_format = Some(
        fields
            .container_format
            .parse::<ContainerFormat>()
            .map_err(usage)?,
    );
    if let Some(visibility) = &fields.visibility {
        image.visibility = visibility.parse::<Visibility>().map_err(usage)?;
    }
    image.tags = fields.tags.iter().cloned().collect();
    image.min_disk = fields.min_disk.unwrap_or(0);
    image.min_ram = fields.min_ram.unwrap_or(0);
    image.protected = fields.protected;
    if let Some(path) = &fields.properties_file {
        image.properties = read_properties_file(path)?;
    }
    for (key, value) in parse_key_values(&fields.properties)? {
        image.properties.insert(key, value);
    }
    Ok(image)
}

fn read_properties_file(path: &Path) -> Result<Properties, CliError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        CliError::Usage(format!(
            "cannot read properties file {}: {err}",
            path.display()
        ))
    })?;
    crate::ingest::properties::from_json(&text).map_err(|err| {
        CliError::Usage(format!(
            "properties file {}: {}",
            path.display(),
            error_chain(&err)
        ))
    })
}

fn parse_key_values(pairs: &[String]) -> Result<Vec<(String, String)>, CliError> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(CliError::Usage(format!("--property {pair:?} is not K=V"))),
        })
        .collect()
}

fn parse_id(text: &str) -> Result<ImageId, CliError> {
    text.parse::<ImageId>().map_err(usage)
}

fn usage(err: impl std::error::Error) -> CliError {
    CliError::Usage(error_chain(&err))
}

fn print_done(format: OutputFormat, done: Done) {
    match (format, done) {
        (OutputFormat::Json, Done::Image(image)) => print_json(&crate::wire::ImageJson(&image)),
        (
            OutputFormat::Json,
            Done::Images {
                images,
                params,
                limit,
            },
        ) => print_json(&crate::wire::ImagesPage::new(
            &images,
            &params,
            limit.unwrap_or(u32::MAX),
        )),
        // The data itself went to stdout: the summary goes to stderr.
        (
            OutputFormat::Json,
            Done::Downloaded {
                summary,
                to_stdout: true,
                ..
            },
        ) => {
            eprintln!("{summary:#}")
        }
        (
            OutputFormat::Text,
            Done::Downloaded {
                line,
                to_stdout: true,
                ..
            },
        ) => eprintln!("{line}"),
        (
            OutputFormat::Json,
            Done::Downloaded {
                summary,
                to_stdout: false,
                ..
            },
        ) => {
            println!("{summary:#}")
        }
        (OutputFormat::Text, Done::Image(image)) => print_image_text(&image),
        (OutputFormat::Text, Done::Images { images, .. }) => {
            for image in &images {
                println!(
                    "{}  {:<12} {:>12}  {}",
                    image.id,
                    image.status,
                    image
                        .size
                        .map(|size| size.to_string())
                        .unwrap_or_else(|| "-".to_owned()),
                    image.name.as_deref().unwrap_or("")
                );
            }
        }
        (
            OutputFormat::Text,
            Done::Downloaded {
                line,
                to_stdout: false,
                ..
            },
        ) => println!("{line}"),
    }
}

fn print_json(document: &impl serde::Serialize) {
    match serde_json::to_string_pretty(document) {
        Ok(text) => println!("{text}"),
        Err(err) => eprintln!("error: cannot render JSON: {err}"),
    }
}

fn print_image_text(image: &Image) {
    let optional = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    println!("id:               {}", image.id);
    println!("name:             {}", optional(image.name.clone()));
    println!("status:           {}", image.status);
    println!("visibility:       {}", image.visibility);
    println!(
        "disk_format:      {}",
        optional(image.disk_format.map(|f| f.to_string()))
    );
    println!(
        "container_format: {}",
        optional(image.container_format.map(|f| f.to_string()))
    );
    println!(
        "size:             {}",
        optional(image.size.map(|s| s.to_string()))
    );
    println!(
        "virtual_size:     {}",
        optional(image.virtual_size.map(|s| s.to_string()))
    );
    println!("checksum:         {}", optional(image.checksum.clone()));
    println!("os_hash_algo:     {}", optional(image.os_hash_algo.clone()));
    println!(
        "os_hash_value:    {}",
        optional(image.os_hash_value.clone())
    );
    for (key, value) in &image.properties {
        // Signatures are long and sensitive to log in full: show the start.
        let shown = if key == "img_signature" && value.len() > 16 {
            format!(
                "{}…",
                &value[..value.char_indices().nth(16).map_or(value.len(), |(i, _)| i)]
            )
        } else {
            value.clone()
        };
        println!("{key}: {shown}");
    }
}

/// Why a command stopped before or after the library call.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// Bad arguments or unreadable input files (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The upload was refused or failed.
    #[error(transparent)]
    Ingest(#[from] crate::ingest::Error),
    /// The repository refused or failed.
    #[error(transparent)]
    Repo(#[from] crate::repo::Error),
    /// Opening the data directory failed.
    #[error(transparent)]
    Open(#[from] crate::ingest::OpenError),
    /// A download did not match its recorded hashes, or its output failed.
    #[error(transparent)]
    Download(#[from] crate::ingest::download::Error),
}

impl CliError {
    fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) | CliError::Open(_) => Exit::Error,
            CliError::Ingest(err) if err.is_rejection() => Exit::Rejected,
            CliError::Repo(err) if ingest::repo_is_rejection(err) => Exit::Rejected,
            CliError::Download(err) if err.is_rejection() => Exit::Rejected,
            CliError::Ingest(_) | CliError::Repo(_) | CliError::Download(_) => Exit::Error,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            CliError::Usage(_) => "usage",
            CliError::Ingest(err) => err.kind(),
            CliError::Repo(err) => err.kind(),
            CliError::Open(_) => "open_failed",
            CliError::Download(err) => err.kind(),
        }
    }
}

/// Prints `{err:#}`-style text: the error and its causes, colon separated.
pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reports a failure: stderr text, or one JSON document on stdout; the image
/// id is included when the failure concerns one.
fn report(format: OutputFormat, err: &CliError, image_id: Option<&ImageId>) -> Exit {
    report_to(Channel::Stdout, format, err, image_id)
}

/// Where a JSON error document goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// Standard output (the one JSON document of `--format json`).
    Stdout,
    /// Standard error (when standard output carries image data).
    Stderr,
}

/// [`report`], with the JSON document sent to `channel`.
fn report_to(
    channel: Channel,
    format: OutputFormat,
    err: &CliError,
    image_id: Option<&ImageId>,
) -> Exit {
    let message = error_chain(err);
    match format {
        OutputFormat::Text => match image_id {
            Some(id) if !message.contains(&id.to_string()) => {
                eprintln!("error: image {id}: {message}")
            }
            _ => eprintln!("error: {message}"),
        },
        OutputFormat::Json => {
            let document = serde_json::json!({
                "error": { "kind": err.kind(), "message": message },
                "image_id": image_id.map(ToString::to_string),
            });
            match channel {
                Channel::Stdout => println!("{document:#}"),
                Channel::Stderr => eprintln!("{document:#}"),
            }
        }
    }
    err.exit()
}
