//! `portcullis ingest`: create an image in the local repository and upload a
//! file (or stdin) to it in one pass, as Glance's image-create + upload.
//!
//! Thin: parses, builds the settings, calls `crate::ingest`, prints the image.
//! Exit 0 active, 1 rejected (the image id and reason are printed; the image
//! stays `queued`), 2 usage or I/O error.

use std::path::PathBuf;

use super::Exit;
use super::OutputFormat;
use super::images::{ImageFields, RepoArgs, UploadArgs};

/// Arguments of `portcullis ingest`.
#[derive(Debug, clap::Args)]
pub(crate) struct IngestArgs {
    /// The image data: a file, or `-` for standard input.
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) fields: ImageFields,
    #[command(flatten)]
    pub(crate) upload: UploadArgs,
    #[command(flatten)]
    pub(crate) repo: RepoArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: OutputFormat,
}

pub(crate) fn run(args: IngestArgs) -> Exit {
    super::images::run_ingest(args)
}
