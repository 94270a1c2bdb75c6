//! `portcullis ingest`: placeholder until its issue lands.

use super::Exit;

/// Arguments of `portcullis ingest`.
#[derive(Debug, clap::Args)]
pub(crate) struct IngestArgs {}

pub(crate) fn run(_args: IngestArgs) -> Exit {
    eprintln!("error: portcullis ingest is not built yet");
    Exit::Error
}
