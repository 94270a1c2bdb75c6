//! `portcullis images`: placeholder until its issue lands.

use super::Exit;

/// Arguments of `portcullis images`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImagesArgs {}

pub(crate) fn run(_args: ImagesArgs) -> Exit {
    eprintln!("error: portcullis images is not built yet");
    Exit::Error
}
