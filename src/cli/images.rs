//! `portcullis images`: manage images in the local repository (create,
//! upload, list, show, update, download, delete, deactivate, reactivate,
//! members).
//!
//! Thin: each subcommand parses its arguments, calls one `app::App` method
//! and prints (text or Glance's JSON). It must not decide anything.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::args::{ImageFields, RepoArgs, UploadArgs, parse_key_values, usage};
use super::data::{ProgressBar, Source};
use super::members::{self, MembersCommand};
use super::output::Done;
use super::report::CliError;
use super::session::Session;
use super::{Exit, OutputFormat};
use crate::app::{Attribute, ListQuery, Output, PatchOp};
use crate::image::{ImageId, Status};
use crate::repo::{AnyOf, VisibilityFilter};

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
    /// Share an image with other projects (image members).
    Members {
        #[command(subcommand)]
        command: MembersCommand,
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
    let mut session = match Session::start(&repo, upload.as_ref(), format, true) {
        Ok(session) => session,
        Err(exit) => return exit,
    };
    // A download to standard output owns stdout: a failure reported after
    // (part of) the data must not be appended to it.
    session.stdout_carries_data = matches!(
        &command,
        ImagesCommand::Download { output, .. }
            if output.as_deref().is_none_or(|path| path == Path::new("-"))
    );
    session.commits = matches!(
        &command,
        ImagesCommand::Create(_) | ImagesCommand::Upload { .. }
    );
    let result = session.block_on(images_command(&session, command));
    session.finish(result)
}

async fn images_command(session: &Session, command: ImagesCommand) -> Result<Done, CliError> {
    let app = &session.app;
    let ctx = &session.ctx;
    let image = |image| Ok(Done::Image(Box::new(image)));
    match command {
        ImagesCommand::Create(fields) => image(app.create(ctx, fields.request()?).await?),
        ImagesCommand::Upload { id, file, upload } => {
            let id = parse_id(&id)?;
            let source = Source::open(&file, upload.size)?;
            let mut bar = ProgressBar::new(source.expected);
            let uploaded = app
                .upload(ctx, id, source.into_upload(), &mut |n| bar.set(n))
                .await;
            bar.finish();
            image(uploaded?)
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
                    .map(|status| {
                        status
                            .parse::<Status>()
                            .map(|status| AnyOf::one(status.as_str()))
                    })
                    .transpose()
                    .map_err(usage)?,
                name: name.map(AnyOf::one),
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
            let page = app.list(ctx, query).await?;
            Ok(Done::Images {
                images: page.images,
                params,
                limit,
            })
        }
        ImagesCommand::Show { id } => image(app.show(ctx, parse_id(&id)?).await?),
        ImagesCommand::Update {
            id,
            name,
            properties,
            remove_properties,
        } => {
            let id = parse_id(&id)?;
            let mut patch = Vec::new();
            if let Some(name) = name {
                patch.push(PatchOp::Replace(Attribute::Name(Some(name))));
            }
            for (name, value) in parse_key_values(&properties)? {
                patch.push(PatchOp::Add(Attribute::Property { name, value }));
            }
            patch.extend(remove_properties.into_iter().map(PatchOp::Remove));
            image(app.update(ctx, id, &patch).await?)
        }
        ImagesCommand::Download { id, output } => {
            let output = match output {
                Some(path) if path != Path::new("-") => Output::File(path),
                _ => Output::Stdout,
            };
            let download = app.download(ctx, parse_id(&id)?, None).await?;
            let downloaded = download.image.clone();
            let mut bar = ProgressBar::new(download.len);
            let written = download.write_to(&output, &mut |n| bar.set(n)).await;
            bar.finish();
            let n_bytes = written?;
            let target = output.name();
            Ok(Done::Downloaded {
                summary: serde_json::json!({
                    "id": downloaded.id.to_string(),
                    "output": target,
                    "size": n_bytes,
                    "checksum": downloaded.checksum,
                    "os_hash_algo": downloaded.os_hash_algo,
                    "os_hash_value": downloaded.os_hash_value,
                    "verified": true,
                }),
                line: format!(
                    "image {} downloaded to {target}: {n_bytes} bytes, checksum and os_hash verified",
                    downloaded.id
                ),
                to_stdout: output == Output::Stdout,
            })
        }
        ImagesCommand::Delete { id } => image(app.delete(ctx, parse_id(&id)?).await?),
        ImagesCommand::Deactivate { id } => image(app.deactivate(ctx, parse_id(&id)?).await?),
        ImagesCommand::Reactivate { id } => image(app.reactivate(ctx, parse_id(&id)?).await?),
        ImagesCommand::Members { command } => members::run(app, ctx, command).await,
    }
}

fn parse_id(text: &str) -> Result<ImageId, CliError> {
    text.parse::<ImageId>().map_err(usage)
}
