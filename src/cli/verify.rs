//! `portcullis verify`: placeholder until its issue lands.

use super::Exit;

/// Arguments of `portcullis verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {}

pub(crate) fn run(_args: VerifyArgs) -> Exit {
    eprintln!("error: portcullis verify is not built yet");
    Exit::Error
}
