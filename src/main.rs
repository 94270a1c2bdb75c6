//! The `portcullis` binary: parse arguments, run one command, exit with its code.
//!
//! Everything else lives in the library; see `portcullis::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    portcullis::cli::main()
}
