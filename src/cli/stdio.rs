//! Every byte the command line writes to standard output and standard error
//! goes through here: text lines with control characters escaped (so an
//! image name, a property value, a reason or a file name cannot forge a row,
//! a second `status:` line or a terminal escape sequence), JSON documents as
//! serialized (exact: `serde_json` escapes control characters in strings
//! itself), and what a failed write means for the exit code.
//!
//! It owns the rules "a closed pipe ends the command quietly with its own
//! exit code" and "any other write error on standard output is exit 2 with a
//! message"; it must not decide what a command prints or whether it succeeded.
//!
//! Why not `println!`: it panics when standard output cannot be written
//! (exit 101 with a backtrace on `> /dev/full` or `| head -1`), because the
//! Rust runtime ignores SIGPIPE and a write to a closed pipe is an `EPIPE`
//! error instead of the signal that ends a C program quietly. ripgrep 14
//! handles the same error by exiting 0 without a word (`main.rs`: "a broken
//! pipe error ... exit gracefully with a success exit code"; ripgrep 13, as
//! Debian ships it, also stops quietly but exits with its no-match code 1;
//! both exit 2 with "No space left on device" on `> /dev/full`). portcullis
//! keeps the command's own exit code instead of 0: a rejected verification
//! piped into `head -0` still exits 1, so a closed pipe never turns a refusal
//! into a success.

use std::borrow::Cow;
use std::io::{self, Write};

use super::Exit;

/// A write to standard output failed.
#[derive(Debug)]
pub(crate) struct StdoutFailed(io::Error);

impl StdoutFailed {
    /// The reader went away (`EPIPE`: `| head -1`): not an error of ours.
    pub(crate) fn is_closed_pipe(&self) -> bool {
        self.0.kind() == io::ErrorKind::BrokenPipe
    }
}

impl std::fmt::Display for StdoutFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write to standard output: {}", self.0)
    }
}

/// What printing a command's output came to.
pub(crate) type Printed = Result<(), StdoutFailed>;

/// Writes `text` and a newline to standard output, control characters
/// escaped, and flushes (so the error, if any, is seen here and not lost at exit).
pub(crate) fn line(text: &str) -> Printed {
    let mut bytes = escape(text).into_owned().into_bytes();
    bytes.push(b'\n');
    raw(&bytes)
}

/// Writes `document` as pretty JSON and a newline to standard output.
pub(crate) fn json(document: &impl serde::Serialize) -> Printed {
    match serde_json::to_vec_pretty(document) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            raw(&bytes)
        }
        // Serializing our own documents (strings, numbers, maps with
        // string keys) cannot fail; say so if it ever does.
        Err(err) => {
            eline(&format!("error: cannot render JSON: {err}"));
            Ok(())
        }
    }
}

/// Writes a report of several lines (each `\n`-terminated line escaped on
/// its own, so the report's own line breaks stay and nothing else adds one).
pub(crate) fn lines(text: &str) -> Printed {
    text.lines().try_for_each(line)
}

fn raw(bytes: &[u8]) -> Printed {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(StdoutFailed)
}

/// Writes `text` and a newline to standard error, control characters
/// escaped. A failure is ignored: there is nowhere left to report it.
pub(crate) fn eline(text: &str) {
    let mut bytes = escape(text).into_owned().into_bytes();
    bytes.push(b'\n');
    let mut stderr = io::stderr().lock();
    let _ = stderr.write_all(&bytes).and_then(|()| stderr.flush());
}

/// Writes `document` as pretty JSON to standard error (reports of commands
/// whose standard output carries image data). Failures are ignored.
pub(crate) fn ejson(document: &impl serde::Serialize) {
    if let Ok(mut bytes) = serde_json::to_vec_pretty(document) {
        bytes.push(b'\n');
        let mut stderr = io::stderr().lock();
        let _ = stderr.write_all(&bytes).and_then(|()| stderr.flush());
    }
}

/// The exit code of a command that ended with `exit` and whose output came
/// to `printed`:
/// - written: `exit`;
/// - a closed pipe: `exit`, quietly (the reader took what it wanted);
/// - any other failure (`/dev/full`, an I/O error): a message on standard
///   error and exit 2, unless the command already failed with its own code.
///
/// `committed` names what the command changed before printing (`image <id>
/// is active`): a caller that sees no output must learn it was done, or it
/// retries into a duplicate; it is said on standard error in both failure cases.
pub(crate) fn settle(exit: Exit, printed: Printed, committed: Option<&str>) -> Exit {
    let Err(failed) = printed else {
        return exit;
    };
    if let Some(done) = committed {
        eline(&format!(
            "note: {done}, but its output could not be written ({}): do not retry",
            failed.0
        ));
    }
    if !failed.is_closed_pipe() {
        eline(&format!("error: {failed}"));
    }
    exit_after(exit, &failed)
}

/// The exit code of a command that ended with `exit` but could not print.
fn exit_after(exit: Exit, failed: &StdoutFailed) -> Exit {
    match exit {
        Exit::Success if !failed.is_closed_pipe() => Exit::Error,
        Exit::Success | Exit::Rejected | Exit::Error | Exit::Interrupted(_) => exit,
    }
}

/// `text` with every control character escaped (see [`crate::text::escape_control`]).
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    crate::text::escape_control(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_keeps_a_failure_code_and_fails_a_success() {
        let closed = StdoutFailed(io::ErrorKind::BrokenPipe.into());
        let full = StdoutFailed(io::Error::from_raw_os_error(28));
        assert_eq!(settle(Exit::Success, Ok(()), None), Exit::Success);
        assert_eq!(exit_after(Exit::Success, &closed), Exit::Success);
        assert_eq!(exit_after(Exit::Rejected, &closed), Exit::Rejected);
        assert_eq!(exit_after(Exit::Success, &full), Exit::Error);
        assert_eq!(exit_after(Exit::Rejected, &full), Exit::Rejected);
    }
}
