//! Glance's upload format policy: given the inspector's [`Report`], the
//! declared `disk_format` and the byte count, accept the upload (with the
//! `virtual_size` the image records) or reject it (Glance answers 415 and
//! returns the image to `queued`).
//!
//! This module owns the decision table of Glance 2025.1+ (master) and its two
//! knobs; it must not inspect bytes itself and must not know about stores,
//! HTTP or images beyond their `disk_format`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{Check, Format, Report, Verdict};
use crate::image::DiskFormat;

/// The `[image_format]` knobs of Glance's upload check.
///
/// Deserialises from a config table with every key optional; unknown keys
/// are refused (a misspelt security setting must not be ignored).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FormatPolicy {
    /// Reject uploads whose data is not the declared `disk_format` (Glance
    /// default: on). When off, a mismatch or several matching formats only
    /// warn, and, as in Glance, the safety checks are then skipped; safety
    /// failures of a matching (or raw-declared) upload stay fatal.
    pub require_image_format_match: bool,
    /// gpt safety checks whose failures only warn (Glance master default:
    /// none; Glance 30.0.0–32.0.0 used `["mbr"]`).
    pub gpt_safety_checks_nonfatal: BTreeSet<Check>,
}

impl Default for FormatPolicy {
    fn default() -> Self {
        FormatPolicy {
            require_image_format_match: true,
            gpt_safety_checks_nonfatal: BTreeSet::new(),
        }
    }
}

/// An accepted upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The format the data was taken as (`None` only when several formats
    /// matched and `require_image_format_match` is off).
    pub detected: Option<Format>,
    /// The `virtual_size` to record on the image (`None`: leave it unset).
    pub virtual_size: Option<u64>,
    /// What Glance would log as warnings (downgraded checks, raw declared
    /// for a richer format, mismatches let through).
    pub warnings: Vec<String>,
}

/// Why an upload is rejected. Glance answers each with 415 Unsupported
/// Media Type and puts the image back to `queued`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Several formats match the data (a polyglot), other than ISO + gpt.
    #[error("multiple formats detected: {}", names(formats))]
    MultipleFormats {
        /// The matching formats.
        formats: Vec<Format>,
    },
    /// The data is not what `disk_format` declares.
    #[error("image disk_format {declared} does not match stream data {detected}")]
    FormatMismatch {
        /// The declared `disk_format`.
        declared: DiskFormat,
        /// What the data is.
        detected: Format,
    },
    /// The detected format's safety checks failed.
    #[error("image failed safety checks: {}", render(failures))]
    SafetyCheckFailed {
        /// The format whose checks ran.
        format: Format,
        /// Failed checks with their reasons.
        failures: BTreeMap<Check, String>,
    },
}

impl Rejection {
    /// A stable snake_case name for the rejection.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::MultipleFormats { .. } => "multiple_formats",
            Rejection::FormatMismatch { .. } => "format_mismatch",
            Rejection::SafetyCheckFailed { .. } => "safety_check_failed",
        }
    }
}

fn names(formats: &[Format]) -> String {
    formats
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn render(failures: &BTreeMap<Check, String>) -> String {
    let mut text = String::new();
    for (index, (check, reason)) in failures.iter().enumerate() {
        let separator = if index == 0 { "" } else { "; " };
        let _ = write!(text, "{separator}{check}: {reason}");
    }
    text
}

/// Formats Glance never inspects: their uploads are accepted when the data
/// is raw.
const NOT_INSPECTABLE: [DiskFormat; 4] = [
    DiskFormat::Ami,
    DiskFormat::Ari,
    DiskFormat::Aki,
    DiskFormat::Ploop,
];

impl FormatPolicy {
    /// Decides an upload of `n_bytes` bytes declared as `declared`, from the
    /// inspector's report, as Glance does for `container_format=bare`.
    ///
    /// Only call this for bare containers: Glance does not inspect other
    /// container formats (ovf, ova, docker, compressed, ami/ari/aki
    /// containers), and neither should the caller; deciding that is the
    /// caller's job.
    ///
    /// The steps, in Glance's order:
    /// 1. the detected format: the single match, or `iso` for exactly
    ///    {gpt, iso} (hybrid installer ISOs); several others reject;
    /// 2. against the declaration: equal → the inspector's virtual size
    ///    (unset when 0); declared `raw` → the byte count, with a warning
    ///    when the data is richer; raw data declared ami/ari/aki/ploop → no
    ///    virtual size; anything else rejects;
    /// 3. the detected format's safety checks (for gpt, minus
    ///    `gpt_safety_checks_nonfatal`, which only warn).
    ///
    /// Fails with a [`Rejection`]; with `require_image_format_match` off,
    /// steps 1–2 only warn and step 3 is skipped when they fail.
    pub fn decide(
        &self,
        report: &Report,
        declared: DiskFormat,
        n_bytes: u64,
    ) -> Result<Accepted, Rejection> {
        let mut warnings = Vec::new();
        let matched = detect(report).and_then(|verdict| {
            compare(verdict, declared, n_bytes, &mut warnings).map(|size| (verdict, size))
        });
        let (verdict, virtual_size) = match matched {
            Ok(matched) => matched,
            Err(rejection) if !self.require_image_format_match => {
                warnings.push(format!(
                    "{rejection} (accepted: require_image_format_match is off, safety checks skipped)"
                ));
                let virtual_size = (declared == DiskFormat::Raw).then_some(n_bytes);
                return Ok(Accepted {
                    detected: report.format(),
                    virtual_size,
                    warnings,
                });
            }
            Err(rejection) => return Err(rejection),
        };
        let mut failures = verdict.failures().clone();
        if verdict.format() == Format::Gpt {
            for check in &self.gpt_safety_checks_nonfatal {
                if let Some(reason) = failures.remove(check) {
                    warnings.push(format!(
                        "gpt safety check {check} failed ({reason}); not fatal by gpt_safety_checks_nonfatal"
                    ));
                }
            }
        }
        if !failures.is_empty() {
            return Err(Rejection::SafetyCheckFailed {
                format: verdict.format(),
                failures,
            });
        }
        Ok(Accepted {
            detected: Some(verdict.format()),
            virtual_size,
            warnings,
        })
    }
}

/// Step 1: the one detected format's verdict.
fn detect(report: &Report) -> Result<&Verdict, Rejection> {
    match report.verdicts() {
        [only] => Ok(only),
        several => {
            let formats = report.formats();
            match report.verdict(Format::Iso) {
                Some(iso) if formats == [Format::Gpt, Format::Iso] => Ok(iso),
                _ => Err(Rejection::MultipleFormats {
                    formats: several.iter().map(Verdict::format).collect(),
                }),
            }
        }
    }
}

/// Step 2: the virtual size to record, or the mismatch.
fn compare(
    verdict: &Verdict,
    declared: DiskFormat,
    n_bytes: u64,
    warnings: &mut Vec<String>,
) -> Result<Option<u64>, Rejection> {
    let detected = verdict.format();
    if detected.disk_format() == Some(declared) {
        if declared == DiskFormat::Raw {
            return Ok(Some(n_bytes));
        }
        return Ok(verdict.virtual_size().filter(|&size| size > 0));
    }
    if declared == DiskFormat::Raw {
        warnings.push(format!(
            "disk_format raw declared for {detected} data; virtual_size is the byte count"
        ));
        return Ok(Some(n_bytes));
    }
    if detected == Format::Raw && NOT_INSPECTABLE.contains(&declared) {
        return Ok(None);
    }
    Err(Rejection::FormatMismatch { declared, detected })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(format: Format, size: Option<u64>, failures: &[(Check, &str)]) -> Verdict {
        let mut v = Verdict::new(format);
        if let Some(size) = size {
            v.set_virtual_size(size);
        }
        for (check, reason) in failures {
            v.fail(*check, *reason);
        }
        v
    }

    fn report(verdicts: Vec<Verdict>) -> Report {
        Report::new(verdicts, 1000)
    }

    fn decide(report: &Report, declared: DiskFormat) -> Result<Accepted, Rejection> {
        FormatPolicy::default().decide(report, declared, 1000)
    }

    #[test]
    fn declared_equals_detected_takes_the_inspector_size() {
        let r = report(vec![verdict(Format::Qcow2, Some(1 << 30), &[])]);
        let accepted = decide(&r, DiskFormat::Qcow2).unwrap();
        assert_eq!(accepted.virtual_size, Some(1 << 30));
        assert_eq!(accepted.detected, Some(Format::Qcow2));
        assert!(accepted.warnings.is_empty());
        let zero = report(vec![verdict(Format::Iso, Some(0), &[])]);
        assert_eq!(decide(&zero, DiskFormat::Iso).unwrap().virtual_size, None);
    }

    #[test]
    fn declared_raw_takes_bytes_but_keeps_safety_checks() {
        let clean = report(vec![verdict(Format::Qcow2, Some(1 << 30), &[])]);
        let accepted = decide(&clean, DiskFormat::Raw).unwrap();
        assert_eq!(accepted.virtual_size, Some(1000));
        assert_eq!(accepted.warnings.len(), 1);
        let backing = report(vec![verdict(
            Format::Qcow2,
            Some(1 << 30),
            &[(Check::BackingFile, "image has a backing file")],
        )]);
        let rejection = decide(&backing, DiskFormat::Raw).unwrap_err();
        assert_eq!(rejection.kind(), "safety_check_failed");
        assert!(
            rejection.to_string().contains("backing_file"),
            "{rejection}"
        );
        let raw = report(vec![verdict(Format::Raw, Some(1000), &[])]);
        assert!(decide(&raw, DiskFormat::Raw).unwrap().warnings.is_empty());
    }

    #[test]
    fn hybrid_iso_is_iso() {
        let hybrid = report(vec![
            verdict(Format::Gpt, Some(1000), &[(Check::Mbr, "bad")]),
            verdict(Format::Iso, Some(800), &[]),
        ]);
        assert!(!hybrid.is_safe());
        let accepted = decide(&hybrid, DiskFormat::Iso).unwrap();
        assert_eq!(accepted.detected, Some(Format::Iso));
        assert_eq!(accepted.virtual_size, Some(800));
        assert_eq!(
            decide(&hybrid, DiskFormat::Raw).unwrap().virtual_size,
            Some(1000)
        );
        let mismatch = decide(&hybrid, DiskFormat::Qcow2).unwrap_err();
        assert_eq!(mismatch.kind(), "format_mismatch");
    }

    #[test]
    fn other_multiple_matches_reject_whatever_is_declared() {
        let polyglot = report(vec![
            verdict(Format::Iso, Some(800), &[]),
            verdict(Format::Qcow2, Some(1 << 30), &[]),
        ]);
        for declared in [DiskFormat::Iso, DiskFormat::Qcow2, DiskFormat::Raw] {
            let rejection = decide(&polyglot, declared).unwrap_err();
            assert_eq!(
                rejection.to_string(),
                "multiple formats detected: iso, qcow2"
            );
        }
    }

    #[test]
    fn not_inspectable_formats_accept_raw_only() {
        let raw = report(vec![verdict(Format::Raw, Some(1000), &[])]);
        for declared in NOT_INSPECTABLE {
            assert_eq!(decide(&raw, declared).unwrap().virtual_size, None);
        }
        let qcow2 = report(vec![verdict(Format::Qcow2, Some(1), &[])]);
        assert_eq!(
            decide(&qcow2, DiskFormat::Ami).unwrap_err().to_string(),
            "image disk_format ami does not match stream data qcow2"
        );
        assert!(decide(&raw, DiskFormat::Qcow2).is_err());
    }

    #[test]
    fn gpt_nonfatal_checks_only_warn() {
        let gpt = report(vec![verdict(
            Format::Gpt,
            Some(1000),
            &[(Check::Mbr, "no partitions")],
        )]);
        assert!(decide(&gpt, DiskFormat::Raw).is_err());
        let lenient = FormatPolicy {
            gpt_safety_checks_nonfatal: [Check::Mbr].into(),
            ..FormatPolicy::default()
        };
        let accepted = lenient.decide(&gpt, DiskFormat::Raw, 1000).unwrap();
        assert!(
            accepted
                .warnings
                .iter()
                .any(|w| w.contains("no partitions"))
        );
        let qcow2 = report(vec![verdict(Format::Qcow2, None, &[(Check::Mbr, "x")])]);
        assert!(lenient.decide(&qcow2, DiskFormat::Qcow2, 1000).is_err());
    }

    #[test]
    fn format_match_off_only_warns_and_skips_safety_checks() {
        let policy = FormatPolicy {
            require_image_format_match: false,
            ..FormatPolicy::default()
        };
        let backing = report(vec![verdict(
            Format::Qcow2,
            Some(1 << 30),
            &[(Check::BackingFile, "x")],
        )]);
        let accepted = policy.decide(&backing, DiskFormat::Vmdk, 1000).unwrap();
        assert_eq!(accepted.virtual_size, None);
        assert!(accepted.warnings[0].contains("does not match"));
        assert!(policy.decide(&backing, DiskFormat::Qcow2, 1000).is_err());
        assert!(policy.decide(&backing, DiskFormat::Raw, 1000).is_err());
    }

    #[test]
    fn policy_deserialises_with_defaults_and_refuses_unknown_keys() {
        let empty: FormatPolicy = toml::from_str("").unwrap();
        assert_eq!(empty, FormatPolicy::default());
        let set: FormatPolicy = toml::from_str(
            "require_image_format_match = false\ngpt_safety_checks_nonfatal = [\"mbr\"]",
        )
        .unwrap();
        assert!(!set.require_image_format_match);
        assert!(set.gpt_safety_checks_nonfatal.contains(&Check::Mbr));
        assert!(toml::from_str::<FormatPolicy>("require_format_match = false").is_err());
        assert!(toml::from_str::<FormatPolicy>("gpt_safety_checks_nonfatal = [\"mbrr\"]").is_err());
    }
}
