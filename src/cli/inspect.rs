//! `portcullis inspect`: placeholder until its issue lands.

use super::Exit;

/// Arguments of `portcullis inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {}

pub(crate) fn run(_args: InspectArgs) -> Exit {
    eprintln!("error: portcullis inspect is not built yet");
    Exit::Error
}
