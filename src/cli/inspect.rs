//! `portcullis inspect FILE|- [--format text|json] [--disk-format DECLARED]`:
//! stream a file (or standard input) through the disk-format inspector and
//! print its report; with `--disk-format`, also Glance's upload decision.
//!
//! This file owns the command's arguments and output; it must not inspect
//! anything itself (that is `crate::inspect`) and must not run qemu-img.
//! Exit 0: safe (and accepted, when `--disk-format` is given); 1: unsafe or
//! rejected; 2: usage or I/O error.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::{Exit, OutputFormat, stdio};
use crate::image::DiskFormat;
use crate::inspect::policy::{Accepted, FormatPolicy, Rejection};
use crate::inspect::{Inspector, Report};

/// Read size: the filesystem store's chunk size (the verdict does not depend on it).
const CHUNK: usize = 64 * 1024;

/// Arguments of `portcullis inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// The image file to inspect, or `-` for standard input.
    file: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,

    /// Also decide Glance's upload check (container_format=bare) for this
    /// declared disk_format: ami, ari, aki, vhd, vhdx, vmdk, raw, qcow2, vdi,
    /// iso or ploop.
    #[arg(long, value_name = "DECLARED")]
    disk_format: Option<DiskFormat>,
}

pub(crate) fn run(args: InspectArgs) -> Exit {
    let report = match inspect(&args.file) {
        Ok(report) => report,
        Err(message) => {
            // `--format json` prints one document on stdout, failures included.
            let printed = match args.format {
                OutputFormat::Text => {
                    stdio::eline(&format!("error: {message}"));
                    Ok(())
                }
                OutputFormat::Json => {
                    stdio::json(&json!({ "error": { "kind": "io", "message": message } }))
                }
            };
            return stdio::settle(Exit::Error, printed, None);
        }
    };
    let decision = args.disk_format.map(|declared| {
        (
            declared,
            FormatPolicy::default().decide(&report, declared, report.n_bytes()),
        )
    });
    let printed = match args.format {
        OutputFormat::Text => print_text(&report, decision.as_ref()),
        OutputFormat::Json => stdio::json(&to_json(&report, decision.as_ref())),
    };
    let passed = match &decision {
        // Glance's decision already includes the detected format's checks
        // (and resolves hybrid ISOs, which the bare report calls unsafe).
        Some((_, outcome)) => outcome.is_ok(),
        None => report.is_safe(),
    };
    let exit = if passed {
        Exit::Success
    } else {
        Exit::Rejected
    };
    stdio::settle(exit, printed, None)
}

/// Streams the file through a fresh inspector.
fn inspect(path: &Path) -> Result<Report, String> {
    let stdin = path.as_os_str() == "-";
    let mut source: Box<dyn Read> = if stdin {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path)
            .map_err(|err| format!("cannot open {}: {err}", path.display()))?;
        Box::new(file)
    };
    let name = if stdin {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    };
    let mut inspector = Inspector::new();
    let mut buffer = vec![0u8; CHUNK];
    loop {
        match source.read(&mut buffer) {
            Ok(0) => return Ok(inspector.finish()),
            Ok(n) => inspector.update(&buffer[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => {
                return Err(format!(
                    "cannot read {name} after {} bytes: {err}",
                    inspector.n_bytes()
                ));
            }
        }
    }
}

type Decision = (DiskFormat, Result<Accepted, Rejection>);

/// The report as text lines, each escaped (reasons quote names read from
/// the image: backing files, extents).
fn print_text(report: &Report, decision: Option<&Decision>) -> stdio::Printed {
    let formats: Vec<&str> = report.formats().iter().map(|f| f.as_str()).collect();
    let mut lines = Vec::new();
    match report.format() {
        Some(format) => lines.push(format!("format: {format}")),
        None => lines.push("format: none (several formats match)".to_owned()),
    }
    lines.push(format!("formats: {}", formats.join(", ")));
    match report.virtual_size() {
        Some(size) => lines.push(format!("virtual_size: {size}")),
        None => lines.push("virtual_size: unknown".to_owned()),
    }
    lines.push(format!(
        "safe: {}",
        if report.is_safe() { "yes" } else { "no" }
    ));
    for (check, reason) in report.failures() {
        lines.push(format!("failure {check}: {reason}"));
    }
    if report.format().is_none() {
        for verdict in report.verdicts() {
            for (check, reason) in verdict.failures() {
                lines.push(format!("failure {check} ({}): {reason}", verdict.format()));
            }
        }
    }
    if let Some((declared, outcome)) = decision {
        match outcome {
            Ok(accepted) => {
                let size = accepted
                    .virtual_size
                    .map_or_else(|| "unset".to_owned(), |size| size.to_string());
                lines.push(format!(
                    "disk_format {declared}: accepted (virtual_size {size})"
                ));
                for warning in &accepted.warnings {
                    lines.push(format!("warning: {warning}"));
                }
            }
            Err(rejection) => lines.push(format!(
                "disk_format {declared}: rejected ({}): {rejection}",
                rejection.kind()
            )),
        }
    }
    lines.iter().try_for_each(|text| stdio::line(text))
}

fn to_json(report: &Report, decision: Option<&Decision>) -> Value {
    let failures: Map<String, Value> = report
        .failures()
        .iter()
        .map(|(check, reason)| (check.as_str().to_owned(), Value::from(reason.as_str())))
        .collect();
    let mut document = json!({
        "format": report.format().map(|f| f.as_str()),
        "formats": report.formats().iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        "virtual_size": report.virtual_size(),
        "safe": report.is_safe(),
        "failures": failures,
    });
    if let (Some((_, outcome)), Some(object)) = (decision, document.as_object_mut()) {
        match outcome {
            Ok(accepted) => {
                object.insert("accepted".into(), true.into());
                object.insert("reason".into(), Value::Null);
                object.insert("virtual_size".into(), accepted.virtual_size.into());
                object.insert("warnings".into(), accepted.warnings.clone().into());
            }
            Err(rejection) => {
                object.insert("accepted".into(), false.into());
                object.insert("reason".into(), rejection.to_string().into());
                object.insert("rejection".into(), rejection.kind().into());
                object.insert("virtual_size".into(), Value::Null);
                object.insert("warnings".into(), Vec::<String>::new().into());
            }
        }
    }
    document
}
