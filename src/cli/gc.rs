//! `portcullis gc [--dry-run]`: collect what no live record references in
//! the configured store (dead uploads, stale leases, unreferenced objects,
//! orphan staging) and print what was removed.
//!
//! Thin: opens the backends (which also recovers dead uploads of this node),
//! calls `App::sweep` once, prints the report (text or one JSON document).
//! It must not decide what is collectable. Exit 0 when the sweep finished
//! (whatever it found), 2 when it could not open or failed part-way.

use clap::Args;

use super::args::RepoArgs;
use super::report::error_chain;
use super::session::Session;
use super::{Exit, OutputFormat};
use crate::app::SweepReport;
use crate::image::ImageId;

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
    let session = match Session::start(&args.repo, None, args.format) {
        Ok(session) => session,
        Err(exit) => return exit,
    };
    match session.block_on(session.app.sweep(args.dry_run)) {
        Ok(report) => {
            // Opening recovered dead uploads already (every command does,
            // --dry-run or not): reported apart from the sweep's own.
            let at_open = session.app.recovered_at_open();
            match args.format {
                OutputFormat::Text => print_text(&report, at_open),
                OutputFormat::Json => println!("{:#}", json(&report, at_open)),
            }
            Exit::Success
        }
        Err(err) => {
            let message = error_chain(&err);
            match args.format {
                OutputFormat::Text => eprintln!("error: {message}"),
                OutputFormat::Json => println!(
                    "{:#}",
                    serde_json::json!({"error": {"kind": err.kind(), "message": message}})
                ),
            }
            Exit::Error
        }
    }
}

fn print_text(report: &SweepReport, at_open: &[ImageId]) {
    for id in at_open {
        println!("recovered dead upload of image {id} while opening (back to queued)");
    }
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for id in &report.recovered {
        println!("{verb} dead upload of image {id} (back to queued)");
    }
    for id in &report.stale_leases {
        println!("{verb} stale upload lease of image {id}");
    }
    for object in &report.objects {
        println!(
            "{verb} object {} ({} bytes, {})",
            object.url, object.bytes, object.reason
        );
    }
    for staged in &report.staging {
        println!(
            "{verb} staged data of image {} ({} s old)",
            staged.image_id, staged.age_seconds
        );
    }
    let bytes: u64 = report.objects.iter().map(|object| object.bytes).sum();
    println!(
        "{}: {} dead upload(s), {} stale lease(s), {} object(s) ({bytes} bytes), {} staged write(s)",
        if report.dry_run { "dry run" } else { "swept" },
        report.recovered.len(),
        report.stale_leases.len(),
        report.objects.len(),
        report.staging.len()
    );
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
    })
}
