//! The command-line front end: parse arguments, lower them to library calls, print.
//!
//! This module owns argument syntax, output formatting (text and JSON) and
//! exit codes. It must not do the work itself: every subcommand is a thin
//! wrapper over a library function (`ingest` and `images` over one
//! `app::App` method each; `args`, `session`, `report`, `data` and `output` hold what
//! they share, so no command file imports another). Exit codes are the same everywhere:
//! 0 success, 1 verification or policy rejected the input, 2 usage or I/O error,
//! 130/143 an upload stopped by SIGINT/SIGTERM. Everything printed goes
//! through `stdio` (escaped text, exact JSON, write failures classified).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::clock::{Clock, FixedClock, SystemClock};

mod args;
mod data;
mod gc;
mod glance;
mod images;
mod ingest;
mod inspect;
mod interrupt;
mod members;
mod openstack;
mod output;
mod report;
mod serve;
mod session;
mod sign;
mod stdio;
mod verify;

/// Verify, inspect and store signed virtual-machine images (OpenStack Glance / cursive compatible).
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); `PORTCULLIS_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify an image against its img_signature* properties, as Glance and Nova do.
    Verify(verify::VerifyArgs),
    /// Sign an image and print the four img_signature* properties.
    Sign(sign::SignArgs),
    /// Inspect an image's disk format, virtual size and safety, without running qemu-img.
    Inspect(inspect::InspectArgs),
    /// Create an image in the local repository and upload data to it in one pass.
    Ingest(ingest::IngestArgs),
    /// Manage images in the local repository.
    Images(images::ImagesArgs),
    /// Serve Glance's image API v2 over the data directory (glance, openstack and curl work unchanged).
    Serve(serve::ServeArgs),
    /// Check and publish images in any Glance (real OpenStack Glance or portcullis serve).
    Glance(glance::GlanceArgs),
    /// Remove image data and staging no image references (dead uploads, deleted images' data).
    Gc(gc::GcArgs),
}

/// How a command ended; mapped to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: the command did what was asked (verified, stored, listed...).
    Success,
    /// 1: the input was rejected (bad signature, untrusted certificate, unsafe image, policy).
    Rejected,
    /// 2: usage or I/O error (missing file, unreadable directory, bad arguments).
    Error,
    /// 130 (SIGINT) or 143 (SIGTERM): a signal stopped an upload, which rolled back.
    Interrupted(interrupt::Signal),
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        match exit {
            Exit::Success => ExitCode::SUCCESS,
            Exit::Rejected => ExitCode::from(1),
            Exit::Error => ExitCode::from(2),
            Exit::Interrupted(signal) => ExitCode::from(signal.exit_code()),
        }
    }
}

/// Output format shared by every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum OutputFormat {
    /// One human-readable line per outcome.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// The clock every command uses: `PORTCULLIS_NOW` (RFC 3339) pins it, for
/// tests and for reproducing a past decision; otherwise the system clock.
///
/// Fails when `PORTCULLIS_NOW` is set but not RFC 3339.
pub(crate) fn clock_from_env() -> Result<Box<dyn Clock>, String> {
    match std::env::var("PORTCULLIS_NOW") {
        Ok(text) => crate::clock::parse_rfc3339(&text)
            .map(|at| Box::new(FixedClock(at)) as Box<dyn Clock>)
            .map_err(|err| format!("PORTCULLIS_NOW={text:?} is not an RFC 3339 time: {err}")),
        Err(_) => Ok(Box::new(SystemClock)),
    }
}

/// Logs go to stderr; colour only on a terminal and never with `NO_COLOR`
/// set (no-color.org). `serve` logs at info by default (one line per request).
fn init_logging(verbose: u8, server: bool) {
    let default = match (verbose, server) {
        (0, false) => "warn",
        (0, true) | (1, _) => "info",
        (2, _) => "debug",
        _ => "trace",
    };
    let colour = log_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .try_init();
}

/// Log lines carry colour codes only on a terminal, and not when `NO_COLOR`
/// is set to anything but the empty string (<https://no-color.org>): in a
/// file or a CI log, escape codes are noise.
fn log_colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Whether the command line asks for JSON output, read from the raw
/// arguments because clap refused them: the last `--format X` or
/// `--format=X` before `--`, else the subcommand's default (`sign` prints
/// JSON unless told otherwise).
fn wants_json(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    let mut subcommand: Option<String> = None;
    let mut format: Option<String> = None;
    let mut format_value_next = false;
    for arg in args {
        let arg = arg.to_string_lossy();
        if format_value_next {
            format = Some(arg.into_owned());
            format_value_next = false;
        } else if arg == "--" {
            break;
        } else if arg == "--format" {
            format_value_next = true;
        } else if let Some(value) = arg.strip_prefix("--format=") {
            format = Some(value.to_owned());
        } else if subcommand.is_none() && !arg.starts_with('-') {
            subcommand = Some(arg.into_owned());
        }
    }
    match format {
        Some(format) => format == "json",
        None => subcommand.as_deref() == Some("sign"),
    }
}

/// clap refused the arguments (or was asked for help or the version).
/// Help and version print as clap prints them; an error prints clap's text
/// on stderr, or, when the command line asks for JSON, one error document
/// (`{"error": {"kind": "usage", "message": …}}`) on stdout, with clap's
/// exit code (2) either way.
fn arguments_refused(err: clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    let informational = matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    );
    if informational || !json {
        err.exit();
    }
    let message = if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        "a subcommand is required (see --help)".to_owned()
    } else {
        let rendered = err.render().to_string();
        let text = rendered.trim_start_matches("error: ");
        // The first paragraph is the error; the rest is a usage line and "try --help".
        text.split("\n\n").next().unwrap_or(text).trim().to_owned()
    };
    let document = serde_json::json!({ "error": { "kind": "usage", "message": message } });
    let _ = stdio::json(&document);
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
}

/// Runs the command line of this process and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return arguments_refused(err, wants_json(std::env::args_os().skip(1))),
    };
    init_logging(cli.verbose, matches!(cli.command, Command::Serve(_)));
    let exit = match cli.command {
        Command::Verify(args) => verify::run(args),
        Command::Sign(args) => sign::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Ingest(args) => ingest::run(args),
        Command::Images(args) => images::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Glance(args) => glance::run(args),
        Command::Gc(args) => gc::run(args),
    };
    exit.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<std::ffi::OsString> {
        line.split_whitespace().map(Into::into).collect()
    }

    #[test]
    fn json_is_read_from_the_arguments_clap_refused() {
        assert!(wants_json(args("images list --limit -1 --format json")));
        assert!(wants_json(args("images --format=json list --bogus")));
        assert!(wants_json(args("sign x --key k --bogus")));
        assert!(!wants_json(args("sign x --format glance-args --bogus")));
        assert!(!wants_json(args("inspect x --format text --bogus")));
        assert!(!wants_json(args("inspect x --bogus")));
        assert!(!wants_json(args("images list -- --format json")));
        assert!(wants_json(args("-v verify x --format text --format json")));
    }

    #[test]
    fn log_colour_only_on_a_terminal_without_no_color() {
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some("".into())));
        assert!(!log_colour(true, Some("1".into())));
        assert!(!log_colour(false, None));
    }
}
