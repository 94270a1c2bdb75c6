//! `portcullis sign`: placeholder until its issue lands.

use super::Exit;

/// Arguments of `portcullis sign`.
#[derive(Debug, clap::Args)]
pub(crate) struct SignArgs {}

pub(crate) fn run(_args: SignArgs) -> Exit {
    eprintln!("error: portcullis sign is not built yet");
    Exit::Error
}
