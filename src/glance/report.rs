//! The report of a `glance verify` or `glance audit` run: text (one line
//! per image, then the summary), one JSON document, or JUnit XML (one
//! testcase per image, named by its id and name, so CI systems show the
//! run as a test report).
//!
//! This module owns the three shapes; it must not decide anything (the
//! categories and the verdict are `check`'s and `audit`'s) nor print.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::audit::{Audit, Summary};
use super::check::{
    Category, CheckFailure, DigestCheck, FormatCheck, ImageCheck, SignatureCheck, SizeCheck,
};
use crate::text::escape_control;
use crate::verify::{self, CertificateSummary, rfc3339};

/// What the run was asked, for the report's header.
#[derive(Debug, Clone, Copy)]
pub struct ReportContext<'a> {
    /// `glance verify` or `glance audit`.
    pub command: &'a str,
    /// Signature mode name (`strict`, `cursive`).
    pub mode: &'a str,
    /// Whether unsigned images fail.
    pub require_signature: bool,
}

/// One line per image and the summary.
pub fn text(audit: &Audit, context: ReportContext<'_>) -> String {
    let mut out = String::new();
    for check in &audit.checks {
        let category = check.category();
        let verdict = if category.passes(context.require_signature) {
            "pass"
        } else {
            "FAIL"
        };
        let _ = writeln!(
            out,
            "{verdict} {:<17} {} {:?} {}: {}",
            category.name(),
            // The server's id and messages: one line each, whatever they hold.
            escape_control(&check.id),
            check.name().unwrap_or(""),
            human_bytes(check.n_bytes),
            escape_control(&check.reason())
        );
        for warning in warnings(check) {
            let _ = writeln!(out, "     warning: {}", escape_control(&warning));
        }
    }
    let summary = audit.summary(context.require_signature);
    let seconds = audit.elapsed.as_secs_f64();
    let _ = writeln!(
        out,
        "{} images, {} read in {seconds:.1} s ({}): {} verified, {} unsigned, {} partially signed, {} bad signature, {} checksum or size mismatch, {} unsafe or mismatched format, {} errors",
        summary.images,
        human_bytes(summary.bytes),
        rate(summary.bytes, seconds),
        summary.count(Category::Verified),
        summary.count(Category::Unsigned),
        summary.count(Category::PartiallySigned),
        summary.count(Category::BadSignature),
        summary.count(Category::ChecksumMismatch) + summary.count(Category::SizeMismatch),
        summary.count(Category::UnsafeFormat),
        summary.count(Category::Error),
    );
    let _ = writeln!(
        out,
        "{} passed, {} failed{}",
        summary.passed,
        summary.failed,
        if context.require_signature {
            " (--require-signature: unsigned images fail)"
        } else {
            ""
        }
    );
    out
}

/// One JSON document: the run, each image's checks, the summary.
pub fn json(audit: &Audit, context: ReportContext<'_>) -> Value {
    let summary = audit.summary(context.require_signature);
    json!({
        "command": context.command,
        "endpoint": audit.endpoint,
        "mode": context.mode,
        "require_signature": context.require_signature,
        "passed": audit.checks.iter().all(|check| check.passed(context.require_signature)),
        "images": audit.checks.iter().map(|check| image_json(check, context)).collect::<Vec<_>>(),
        "summary": summary_json(&summary, audit.elapsed.as_secs_f64()),
    })
}

fn summary_json(summary: &Summary, seconds: f64) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("images".into(), json!(summary.images));
    object.insert("bytes".into(), json!(summary.bytes));
    object.insert("seconds".into(), json!(seconds));
    for category in Category::ALL {
        object.insert(category.name().into(), json!(summary.count(category)));
    }
    object.insert("passed".into(), json!(summary.passed));
    object.insert("failed".into(), json!(summary.failed));
    Value::Object(object)
}

fn image_json(check: &ImageCheck, context: ReportContext<'_>) -> Value {
    let record = check.record.as_ref();
    let category = check.category();
    json!({
        "id": check.id,
        "name": check.name(),
        "status": record.map(|record| record.status.as_str()),
        "disk_format": record.and_then(|record| record.disk_format.as_deref()),
        "container_format": record.and_then(|record| record.container_format.as_deref()),
        "size": record.and_then(|record| record.size),
        "bytes_read": check.n_bytes,
        "category": category.name(),
        "passed": category.passes(context.require_signature),
        "reason": check.reason(),
        "signature": signature_json(&check.signature),
        "checksum": digest_json(&check.checksum, Some("md5")),
        "os_hash": digest_json(&check.os_hash, record.and_then(|record| record.os_hash_algo.as_deref())),
        "size_check": size_json(&check.size),
        "format": format_json(&check.format),
        "error": check.error.as_ref().map(failure_json),
        "warnings": warnings(check),
        "attempts": check.attempts,
        "seconds": check.elapsed.as_secs_f64(),
    })
}

fn failure_json(failure: &CheckFailure) -> Value {
    json!({"kind": failure.kind, "message": failure.message})
}

fn certificate_json(summary: &CertificateSummary) -> Value {
    json!({
        "id": summary.id,
        "subject": summary.subject,
        "issuer": summary.issuer,
        "serial": summary.serial,
        "not_before": rfc3339(summary.not_before),
        "not_after": rfc3339(summary.not_after),
        "sha256_fingerprint": summary.sha256_fingerprint,
    })
}

fn signature_json(check: &SignatureCheck) -> Value {
    match check {
        SignatureCheck::Unsigned => json!({"result": "unsigned"}),
        SignatureCheck::Partial { missing } => json!({"result": "partial", "missing": missing}),
        SignatureCheck::Verified(verification) => json!({
            "result": "verified",
            "hash_method": verification.hash_method.name(),
            "key_type": verification.key_type.name(),
            "digest": verification.digest.to_hex(),
            "signer": certificate_json(&verification.signer),
            "chain": verification.chain.as_ref().map(|chain| chain.iter().map(certificate_json).collect::<Vec<_>>()),
        }),
        SignatureCheck::Rejected(error) => json!({
            "result": "rejected",
            "kind": error.kind(),
            "message": verify::with_causes(error.as_ref()),
            "cursive_message": error.cursive_message(),
            "signer": error.signer().map(certificate_json),
        }),
        SignatureCheck::NotChecked => json!({"result": "not_checked"}),
    }
}

fn digest_json(check: &DigestCheck, algorithm: Option<&str>) -> Value {
    match check {
        DigestCheck::Match { value } => {
            json!({"result": "match", "algorithm": algorithm, "value": value})
        }
        DigestCheck::Mismatch { expected, actual } => json!({
            "result": "mismatch", "algorithm": algorithm, "expected": expected, "actual": actual,
        }),
        DigestCheck::NotRecorded => json!({"result": "not_recorded"}),
        DigestCheck::Unsupported { algorithm } => {
            json!({"result": "unsupported", "algorithm": algorithm})
        }
        DigestCheck::NotChecked => json!({"result": "not_checked"}),
    }
}

fn size_json(check: &SizeCheck) -> Value {
    match check {
        SizeCheck::Match { bytes } => json!({"result": "match", "bytes": bytes}),
        SizeCheck::Mismatch {
            recorded,
            served,
            more,
        } => json!({"result": "mismatch", "recorded": recorded, "served": served, "more": more}),
        SizeCheck::NotChecked => json!({"result": "not_checked"}),
    }
}

fn format_json(check: &FormatCheck) -> Value {
    match check {
        FormatCheck::Accepted(accepted) => json!({
            "result": "accepted",
            "detected": accepted.detected.map(|format| format.as_str()),
            "virtual_size": accepted.virtual_size,
        }),
        FormatCheck::Rejected(rejection) => json!({
            "result": "rejected", "kind": rejection.kind(), "message": rejection.to_string(),
        }),
        FormatCheck::NotInspected { reason } => {
            json!({"result": "not_inspected", "reason": reason})
        }
        FormatCheck::NotChecked => json!({"result": "not_checked"}),
    }
}

/// What did not fail the image but is worth a look.
fn warnings(check: &ImageCheck) -> Vec<String> {
    let mut warnings = Vec::new();
    if let SignatureCheck::Verified(verification) = &check.signature {
        warnings.extend(verification.warnings.iter().map(ToString::to_string));
    }
    if let FormatCheck::Accepted(accepted) = &check.format {
        warnings.extend(accepted.warnings.iter().cloned());
    }
    if let DigestCheck::Unsupported { algorithm } = &check.os_hash {
        warnings.push(format!(
            "os_hash_algo {algorithm:?} is not one portcullis computes; only the md5 checksum was compared"
        ));
    }
    if matches!(check.os_hash, DigestCheck::NotRecorded)
        && matches!(check.checksum, DigestCheck::Match { .. })
    {
        warnings.push("the record has no os_hash_value; only the md5 checksum was compared".into());
    }
    warnings
}

/// JUnit XML: one testsuite, one testcase per image (`<id> (<name>)`);
/// an image in the error category is an `<error>`, any other failure a
/// `<failure>` whose type is the category.
pub fn junit(audit: &Audit, context: ReportContext<'_>) -> String {
    let summary = audit.summary(context.require_signature);
    let errors = summary.count(Category::Error);
    let failures = summary.failed - errors;
    let seconds = audit.elapsed.as_secs_f64();
    let suite = format!("portcullis {} {}", context.command, audit.endpoint);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{seconds:.3}\">",
        xml(&suite),
        summary.images
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{seconds:.3}\">",
        xml(&suite),
        summary.images
    );
    for check in &audit.checks {
        let category = check.category();
        let name = match check.name() {
            Some(name) => format!("{} ({name})", check.id),
            None => check.id.clone(),
        };
        let _ = write!(
            out,
            "    <testcase classname=\"glance.images\" name=\"{}\" time=\"{:.3}\"",
            xml(&name),
            check.elapsed.as_secs_f64()
        );
        let reason = check.reason();
        let body = match (category, category.passes(context.require_signature)) {
            (Category::Error, _) => {
                let kind = check.error.as_ref().map_or("error", |failure| failure.kind);
                format!(
                    "      <error type=\"{}\" message=\"{}\">{}</error>\n",
                    xml(kind),
                    xml(&reason),
                    xml(&reason)
                )
            }
            (_, false) => format!(
                "      <failure type=\"{}\" message=\"{}\">{}</failure>\n",
                category.name(),
                xml(&reason),
                xml(&details(check))
            ),
            (_, true) => String::new(),
        };
        let out_text = format!("{}: {reason}", category.name());
        let _ = write!(
            out,
            ">\n{body}      <system-out>{}</system-out>\n    </testcase>\n",
            xml(&out_text)
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The failure's text: the reason and each check's result.
fn details(check: &ImageCheck) -> String {
    let mut lines = vec![check.reason()];
    let digest = |check: &DigestCheck| match check {
        DigestCheck::Match { .. } => "match".to_owned(),
        DigestCheck::Mismatch { expected, actual } => {
            format!("mismatch (record {expected}, data {actual})")
        }
        DigestCheck::NotRecorded => "not recorded".to_owned(),
        DigestCheck::Unsupported { algorithm } => format!("{algorithm} not supported"),
        DigestCheck::NotChecked => "not checked".to_owned(),
    };
    lines.push(format!("checksum: {}", digest(&check.checksum)));
    lines.push(format!("os_hash: {}", digest(&check.os_hash)));
    lines.push(format!("bytes read: {}", check.n_bytes));
    lines.extend(warnings(check).into_iter().map(|w| format!("warning: {w}")));
    lines.join("\n")
}

/// Text as XML attribute or element content: the five entities escaped,
/// characters XML 1.0 forbids replaced.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn rate(bytes: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "-".to_owned();
    }
    format!("{:.0} MB/s", bytes as f64 / seconds / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped_and_control_characters_replaced() {
        assert_eq!(
            xml("a<b & \"c\" 'd'>\n\u{1}"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;&#10;\u{FFFD}"
        );
    }

    #[test]
    fn a_servers_id_and_message_stay_on_their_line_in_the_text_report() {
        // A hostile or broken server: an id and an error message that would
        // add a forged "pass" line and drive the terminal.
        let forged = "x\npass verified          00000000 \"ok\" 1 B: verified\u{1b}[2J";
        let mut check = ImageCheck::new(forged.to_owned(), None);
        check.error = Some(CheckFailure {
            kind: "glance_error",
            message: forged.to_owned(),
            connection: false,
        });
        let audit = Audit {
            endpoint: "http://127.0.0.1:9292".to_owned(),
            checks: vec![check],
            elapsed: std::time::Duration::ZERO,
        };
        let context = ReportContext {
            command: "glance audit",
            mode: "strict",
            require_signature: false,
        };
        let report = text(&audit, context);
        // One line for the image, two for the summary.
        assert_eq!(report.lines().count(), 3, "{report}");
        assert!(report.starts_with("FAIL "), "{report}");
        assert!(!report.contains('\u{1b}'), "{report}");
        assert!(report.contains("x\\npass verified"), "{report}");
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(128 << 20), "128.0 MiB");
    }
}
