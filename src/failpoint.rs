//! Pause points for crash tests: a debug build started with
//! `PORTCULLIS_PAUSE_AT=<name>` stops for good at the point of that name,
//! after printing `portcullis: paused at <name>` to stderr, so a test can
//! `kill -9` the process exactly between two steps that no timing could
//! separate (a delete's commit and its store delete, a stage's commit and
//! its lock release).
//!
//! Release builds compile every point to nothing and never read the
//! variable. It owns nothing else and must not change behaviour when the
//! variable is unset.

/// Stops this thread for good when `PORTCULLIS_PAUSE_AT` names `point`
/// (debug builds only).
#[inline]
pub(crate) fn pause(point: &'static str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("PORTCULLIS_PAUSE_AT").is_some_and(|wanted| wanted == point) {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "portcullis: paused at {point}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}
