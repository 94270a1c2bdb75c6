//! `portcullis ingest`: create an image in the local repository and upload a
//! file (or stdin) to it in one pass, as Glance's image-create + upload.
//!
//! Thin: parses, opens the data first (a missing file creates nothing),
//! calls `app::App::ingest`, prints the image. Exit 0 active, 1 rejected
//! (the image id and reason are printed; the image stays `queued`), 2 usage
//! or I/O error.

use std::path::PathBuf;

use super::args::{ImageFields, RepoArgs, UploadArgs};
use super::data::{ProgressBar, Source};
use super::output::Done;
use super::report::CliError;
use super::session::Session;
use super::{Exit, OutputFormat};

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
    let mut session = match Session::start(&args.repo, Some(&args.upload), args.format, true) {
        Ok(session) => session,
        Err(exit) => return exit,
    };
    session.commits = true;
    let result = session.block_on(async {
        let request = args.fields.request()?;
        let source = Source::open(&args.file, args.upload.size)?;
        let mut bar = ProgressBar::new(source.expected);
        let image = session
            .app
            .ingest(&session.ctx, request, source.into_upload(), &mut |n| {
                bar.set(n)
            })
            .await;
        bar.finish();
        Ok::<_, CliError>(Done::Image(Box::new(image?)))
    });
    session.finish(result)
}
