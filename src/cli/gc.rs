//! `portcullis gc [--dry-run]`: collect what no live record references in
//! the configured store (dead uploads, stale leases, data deleted images
//! left, unreferenced objects, orphan staging, stale lock files) and print
//! what was removed.
//!
//! Thin: opens the backends (which also recovers dead uploads of this node),
//! calls `App::sweep` once, prints the report (text or one JSON document).
//! It must not decide what is collectable. Exit 0 when the sweep finished
//! (whatever it found), 2 when it could not open or failed part-way.

use clap::Args;

use super::args::RepoArgs;
use super::report::error_chain;
use super::session::Session;
use super::stdio;
use super::{Exit, OutputFormat};
use crate::app::SweepReport;
use crate::image::ImageId;
use crate::repo::PendingReason;
use crate::text::escape_control;

/// Arguments of `portcullis gc`.
#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Only report what would be removed.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    repo: RepoArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

/// Runs one sweep.
pub(crate) fn run(args: GcArgs) -> Exit {
    // Its own sweep covers everything, and a dry run removes nothing.
    let session = match Session::start(&args.repo, None, args.format, false) {
        Ok(session) => session,
        Err(exit) => return exit,
    };
    match session.block_on(session.app.sweep(args.dry_run)) {
        Ok(report) => {
            // Opening recovered dead uploads already (every command does,
            // --dry-run or not): reported apart from the sweep's own.
            let at_open = session.app.recovered_at_open();
            let printed = match args.format {
                OutputFormat::Text => stdio::lines(&text(&report, at_open)),
                OutputFormat::Json => stdio::json(&json(&report, at_open)),
            };
            // What was removed is gone whether or not the report is read.
            let done = (!report.dry_run && !report.is_empty()).then_some("the sweep removed data");
            stdio::settle(Exit::Success, printed, done)
        }
        Err(err) => {
            let message = error_chain(&err);
            let printed = match args.format {
                OutputFormat::Text => {
                    stdio::eline(&format!("error: {message}"));
                    Ok(())
                }
                OutputFormat::Json => stdio::json(
                    &serde_json::json!({"error": {"kind": err.kind(), "message": message}}),
                ),
            };
            stdio::settle(Exit::Error, printed, None)
        }
    }
}

/// The text report: one line per item, then a summary.
fn text(report: &SweepReport, at_open: &[ImageId]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for id in at_open {
        let _ = writeln!(
            out,
            "recovered dead upload of image {id} while opening (back to queued)"
        );
    }
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for id in &report.recovered {
        let _ = writeln!(out, "{verb} dead upload of image {id} (back to queued)");
    }
    for id in &report.stale_leases {
        let _ = writeln!(out, "{verb} stale upload lease of image {id}");
    }
    for object in &report.objects {
        let _ = writeln!(
            out,
            "{verb} object {} ({} bytes, {})",
            escape_control(&object.url),
            object.bytes,
            object.reason
        );
    }
    for staged in &report.staging {
        let _ = writeln!(
            out,
            "{verb} staged data of image {} ({} s old)",
            staged.image_id, staged.age_seconds
        );
    }
    for pending in &report.deleted_data {
        let _ = writeln!(
            out,
            "{verb} data of image {} left by {} ({})",
            pending.image_id,
            match pending.reason {
                PendingReason::DeletedImage => "its delete",
                PendingReason::StageObject => "its import or delete (the staged data)",
            },
            escape_control(&pending.url)
        );
    }
    for lock in &report.stale_locks {
        let _ = writeln!(
            out,
            "{verb} upload lock file of image {} nobody held ({} s old)",
            lock.image_id,
            lock.age.as_secs()
        );
    }
    let bytes: u64 = report.objects.iter().map(|object| object.bytes).sum();
    let _ = writeln!(
        out,
        "{}: {} dead upload(s), {} stale lease(s), {} pending deletion(s), {} object(s) ({bytes} bytes), {} staged write(s), {} lock file(s)",
        if report.dry_run { "dry run" } else { "swept" },
        report.recovered.len() + at_open.len(),
        report.stale_leases.len(),
        report.deleted_data.len(),
        report.objects.len(),
        report.staging.len(),
        report.stale_locks.len()
    );
    out
}

fn json(report: &SweepReport, at_open: &[ImageId]) -> serde_json::Value {
    serde_json::json!({
        "dry_run": report.dry_run,
        "recovered_at_open": at_open.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "recovered": report.recovered.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "stale_leases": report.stale_leases.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "objects": report.objects.iter().map(|object| serde_json::json!({
            "image_id": object.image_id.to_string(),
            "url": object.url,
            "bytes": object.bytes,
            "reason": object.reason,
        })).collect::<Vec<_>>(),
        "staging": report.staging.iter().map(|staged| serde_json::json!({
            "image_id": staged.image_id.to_string(),
            "intent": staged.intent.to_string(),
            "age_seconds": staged.age_seconds,
        })).collect::<Vec<_>>(),
        "deleted_data": report.deleted_data.iter().map(|pending| serde_json::json!({
            "image_id": pending.image_id.to_string(),
            "url": pending.url,
            "reason": pending.reason.as_str(),
        })).collect::<Vec<_>>(),
        "stale_locks": report.stale_locks.iter().map(|lock| serde_json::json!({
            "image_id": lock.image_id.to_string(),
            "age_seconds": lock.age.as_secs(),
        })).collect::<Vec<_>>(),
    })
}
