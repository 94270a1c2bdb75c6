//! `portcullis inspect` and the inspector library, over every image in
//! testdata/images/: the expected verdict for each (through the real
//! binary), agreement with `qemu-img info` where qemu can read the image,
//! identical verdicts at every chunk size, and Glance's upload decision.

use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis::inspect::{Inspector, MAX_HELD_BYTES, Report};
use serde_json::Value;

use crate::support::{portcullis, testdata};

/// How an image compares with qemu.
#[derive(Debug, Clone, Copy)]
enum Qemu {
    /// `qemu-img info` probes the same format and size.
    Probe,
    /// qemu's probe disagrees on purpose (it says raw); with `-f DRIVER` it
    /// reports the same size.
    Forced(&'static str),
    /// qemu's probe picks DRIVER but cannot open the (truncated) image: its
    /// error is the same as with `-f DRIVER`. portcullis names the same
    /// format and fails `structure`.
    ProbeFails(&'static str),
    /// Not compared: qemu refuses the image, or the image is a deliberate
    /// disagreement (polyglots, truncated headers, text-then-binary).
    No,
}

/// One image and its expected report.
struct Case {
    file: &'static str,
    qemu: Qemu,
    /// Expected format (`None`: several formats match).
    format: Option<&'static str>,
    formats: &'static [&'static str],
    virtual_size: Option<u64>,
    /// Failed checks (empty: safe).
    failures: &'static [&'static str],
}

const MIB: u64 = 1 << 20;

const fn case(
    file: &'static str,
    qemu: Qemu,
    format: &'static str,
    virtual_size: Option<u64>,
    failures: &'static [&'static str],
) -> Case {
    Case {
        file,
        qemu,
        format: Some(format),
        formats: &[],
        virtual_size,
        failures,
    }
}

const fn polyglot(file: &'static str, formats: &'static [&'static str]) -> Case {
    Case {
        file,
        qemu: Qemu::No,
        format: None,
        formats,
        virtual_size: None,
        failures: &["polyglot"],
    }
}

/// Every image in testdata/images/ with its expected verdict.
#[rustfmt::skip]
const CASES: &[Case] = &[
    case("empty.raw", Qemu::Probe, "raw", Some(0), &[]),
    case("raw-1m.raw", Qemu::Probe, "raw", Some(MIB), &[]),
    case("text-then-binary.img", Qemu::No, "raw", Some(1600), &[]),
    case("fat-two-fats.img", Qemu::Probe, "raw", Some(MIB), &[]),
    case("fat-one-fat.img", Qemu::Probe, "raw", Some(MIB), &[]),
    case("gpt-protective.img", Qemu::No, "gpt", Some(MIB), &[]),
    case("mbr-linux.img", Qemu::No, "gpt", Some(MIB), &[]),
    case("mbr-hybrid.img", Qemu::No, "gpt", Some(MIB), &["mbr"]),
    case("mbr-no-partitions.img", Qemu::No, "gpt", Some(MIB), &["mbr"]),
    case("iso-pvd.iso", Qemu::No, "iso", Some(131_072), &[]),
    polyglot("iso-hybrid-mbr.iso", &["gpt", "iso"]),
    polyglot("polyglot-iso-qcow2.iso", &["iso", "qcow2"]),
    polyglot("polyglot-iso-vmdk.iso", &["iso", "vmdk"]),
    polyglot("polyglot-qcow2-mbr.qcow2", &["gpt", "qcow2"]),
    case("qcow2-v3.qcow2", Qemu::Probe, "qcow2", Some(MIB), &[]),
    case("qcow2-v2.qcow2", Qemu::Probe, "qcow2", Some(MIB), &[]),
    case("qcow2-zstd.qcow2", Qemu::Probe, "qcow2", Some(MIB), &[]),
    case("qcow2-extended-l2.qcow2", Qemu::Probe, "qcow2", Some(MIB), &["unknown_features"]),
    case("qcow2-backing-abs.qcow2", Qemu::Probe, "qcow2", Some(MIB), &["backing_file"]),
    case("qcow2-v2-backing-abs.qcow2", Qemu::Probe, "qcow2", Some(MIB), &["backing_file"]),
    case("qcow2-backing-trunc-511.qcow2", Qemu::Probe, "qcow2", Some(MIB), &["backing_file"]),
    case("qcow2-data-file-abs.qcow2", Qemu::Probe, "qcow2", Some(MIB), &["data_file"]),
    case("qcow2-data-file-ext-no-bit.qcow2", Qemu::Probe, "qcow2", Some(MIB), &["data_file"]),
    case("qcow2-size-above-i64.qcow2", Qemu::No, "qcow2", None, &["structure"]),
    case("qcow2-trunc-20.qcow2", Qemu::No, "qcow2", None, &["structure"]),
    case("qcow-v1.qcow", Qemu::Probe, "qcow2", Some(MIB), &["unknown_features"]),
    case("qcow-v1-backing-abs.qcow", Qemu::Probe, "qcow2", Some(MIB), &["backing_file", "unknown_features"]),
    case("qcow-v1-backing-trunc-100.qcow", Qemu::Probe, "qcow2", Some(MIB), &["backing_file", "unknown_features"]),
    case("qed.qed", Qemu::Probe, "qed", Some(MIB), &["banned"]),
    case("vdi-dynamic.vdi", Qemu::Probe, "vdi", Some(MIB), &[]),
    case("vdi-static.vdi", Qemu::Probe, "vdi", Some(MIB), &[]),
    case("luks1.luks", Qemu::Probe, "luks", Some(MIB), &[]),
    case("luks2-header.luks", Qemu::No, "luks", None, &["version"]),
    case("vhd-dynamic.vhd", Qemu::Probe, "vhd", Some(1_079_296), &[]),
    case("vhd-fixed.vhd", Qemu::Forced("vpc"), "vhd", Some(1_079_296), &[]),
    case("vhd-resized.vhd", Qemu::Probe, "vhd", Some(MIB), &[]),
    case("vhd-differencing.vhd", Qemu::Probe, "vhd", Some(1_079_296), &["backing_file"]),
    case("vhd-cookie-only.vhd", Qemu::No, "vhd", None, &["structure"]),
    case("vhdx-dynamic.vhdx", Qemu::Probe, "vhdx", Some(MIB), &[]),
    case("vhdx-fixed.vhdx", Qemu::Probe, "vhdx", Some(MIB), &[]),
    case("vhdx-differencing.vhdx", Qemu::No, "vhdx", Some(MIB), &["backing_file"]),
    case("vhdx-region-table-destroyed.vhdx", Qemu::No, "vhdx", None, &["structure"]),
    case("vhdx-truncated-200k.vhdx", Qemu::No, "vhdx", None, &["structure"]),
    case("vmdk-sparse.vmdk", Qemu::Probe, "vmdk", Some(MIB), &[]),
    case("vmdk-stream.vmdk", Qemu::Probe, "vmdk", Some(MIB), &[]),
    case("vmdk-stream-footer.vmdk", Qemu::Probe, "vmdk", Some(MIB), &[]),
    case("vmdk-stream-bad-footer.vmdk", Qemu::No, "vmdk", Some(MIB), &["footer"]),
    case("vmdk-sparse-extent-path.vmdk", Qemu::Probe, "vmdk", Some(MIB), &["descriptor"]),
    case("vmdk-sparse-parent-hint.vmdk", Qemu::Probe, "vmdk", Some(MIB), &["backing_file"]),
    case("vmdk-bad-descriptor-offset.vmdk", Qemu::No, "vmdk", None, &["descriptor"]),
    case("vmdk-magic-only.vmdk", Qemu::No, "vmdk", None, &["descriptor"]),
    case("vmdk-flat.vmdk", Qemu::Probe, "vmdk", Some(MIB), &["descriptor"]),
    case("vmdk-flat-flat.vmdk", Qemu::Probe, "raw", Some(MIB), &[]),
    case("vmdk-flat-abs-extent.vmdk", Qemu::No, "vmdk", Some(MIB), &["descriptor"]),
    case("vmdk-text-claims-sparse.vmdk", Qemu::No, "vmdk", Some(MIB), &["descriptor"]),
    case("vmdk-text-createtype-late.vmdk", Qemu::Forced("vmdk"), "vmdk", Some(MIB), &["descriptor"]),
    // issue 8: a header (or the metadata it points to) cut by the end of the file.
    case("vhd-dynamic-trunc-511.vhd", Qemu::ProbeFails("vpc"), "vhd", Some(1_079_296), &["structure"]),
    case("vhd-dynamic-trunc-1536.vhd", Qemu::ProbeFails("vpc"), "vhd", Some(1_079_296), &["structure"]),
    case("vdi-dynamic-trunc-400.vdi", Qemu::Probe, "vdi", Some(MIB), &["structure"]),
    case("luks1-trunc-8.luks", Qemu::ProbeFails("luks"), "luks", None, &["structure"]),
    case("luks1-trunc-4096.luks", Qemu::ProbeFails("luks"), "luks", None, &["structure"]),
    case("vmdk-sparse-trunc-32k.vmdk", Qemu::ProbeFails("vmdk"), "vmdk", Some(MIB), &["structure"]),
    case("qcow2-v3-trunc-104.qcow2", Qemu::Probe, "qcow2", Some(MIB), &["structure"]),
    case("qed-trunc-3.qed", Qemu::ProbeFails("qed"), "qed", None, &["banned"]),
];

fn images() -> PathBuf {
    testdata().join("images")
}

fn image_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(images())
        .expect("testdata/images/ is readable")
        .map(|entry| {
            let entry = entry.expect("testdata/images/ entries are readable");
            entry.file_name().to_string_lossy().into_owned()
        })
        .filter(|name| !["README.md", "generate.py", "compare-oslo.py"].contains(&name.as_str()))
        .collect();
    names.sort();
    names
}

/// Runs `portcullis inspect --format json` plus `args`; returns the exit
/// code and the JSON document.
fn inspect_json(file: &Path, args: &[&str]) -> (i32, Value) {
    let output = portcullis()
        .arg("inspect")
        .arg("--format")
        .arg("json")
        .args(args)
        .arg(file)
        .output()
        .expect("portcullis runs");
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "{}: not JSON ({err}): {}",
            file.display(),
            String::from_utf8_lossy(&output.stdout)
        )
    });
    (
        output.status.code().expect("portcullis exits, not killed"),
        json,
    )
}

#[test]
fn every_image_has_an_expected_verdict() {
    let mut listed: Vec<String> = CASES.iter().map(|c| c.file.to_owned()).collect();
    listed.sort();
    assert_eq!(
        listed,
        image_files(),
        "CASES must list every image exactly once"
    );
}

#[test]
fn binary_reports_the_expected_verdict_for_every_image() {
    for case in CASES {
        let (code, json) = inspect_json(&images().join(case.file), &[]);
        let name = case.file;
        assert_eq!(json["format"].as_str(), case.format, "{name}: {json}");
        let formats: Vec<&str> = json["formats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        let expected_formats = match case.format {
            Some(format) => vec![format],
            None => case.formats.to_vec(),
        };
        assert_eq!(formats, expected_formats, "{name}");
        assert_eq!(
            json["virtual_size"].as_u64(),
            case.virtual_size,
            "{name}: {json}"
        );
        let failures: Vec<&str> = json["failures"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(failures, case.failures, "{name}: {json}");
        for reason in json["failures"].as_object().unwrap().values() {
            assert!(!reason.as_str().unwrap().is_empty(), "{name}: empty reason");
        }
        assert_eq!(
            json["safe"].as_bool(),
            Some(case.failures.is_empty()),
            "{name}"
        );
        let expected_code = if case.failures.is_empty() { 0 } else { 1 };
        assert_eq!(code, expected_code, "{name}");
    }
}

/// qemu's driver name as a Glance disk_format name.
fn glance_name(qemu_format: &str) -> &str {
    match qemu_format {
        "vpc" => "vhd",
        "qcow" => "qcow2",
        other => other,
    }
}

/// `qemu-img info [--output=json] [-f DRIVER] FILE`.
fn run_qemu_info(file: &Path, driver: Option<&str>, json: bool) -> std::process::Output {
    let mut command = Command::new("qemu-img");
    command.arg("info");
    if json {
        command.arg("--output=json");
    }
    if let Some(driver) = driver {
        command.arg("-f").arg(driver);
    }
    command
        .arg(file)
        .output()
        .expect("qemu-img is installed (qemu-utils)")
}

fn qemu_info(file: &Path, driver: Option<&str>) -> Value {
    let output = run_qemu_info(file, driver, true);
    assert!(
        output.status.success(),
        "qemu-img info {}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("qemu-img info prints JSON")
}

/// Checks that qemu's probe chose `driver` for `file` and could not open it
/// (the probe's error is the forced driver's), and that portcullis names
/// the same format and refuses the file as incomplete.
fn check_probe_fails(file: &Path, driver: &str) {
    let run = |forced: Option<&str>| {
        let output = run_qemu_info(file, forced, false);
        assert!(
            !output.status.success(),
            "qemu-img opened {}",
            file.display()
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let probed = run(None);
    assert_eq!(
        probed,
        run(Some(driver)),
        "{}: qemu's probe did not pick {driver}",
        file.display()
    );
    let (_, ours) = inspect_json(file, &[]);
    assert_eq!(
        ours["format"].as_str(),
        Some(glance_name(driver)),
        "{}",
        file.display()
    );
    assert_eq!(ours["safe"], false, "{}", file.display());
}

#[test]
fn virtual_size_and_format_agree_with_qemu_img() {
    let mut compared = 0;
    for case in CASES {
        let file = images().join(case.file);
        let driver = match case.qemu {
            Qemu::No => continue,
            Qemu::Probe => None,
            Qemu::Forced(driver) => Some(driver),
            Qemu::ProbeFails(driver) => {
                check_probe_fails(&file, driver);
                compared += 1;
                continue;
            }
        };
        let info = qemu_info(&file, driver);
        let (_, ours) = inspect_json(&file, &[]);
        let qemu_format = glance_name(info["format"].as_str().unwrap());
        assert_eq!(Some(qemu_format), ours["format"].as_str(), "{}", case.file);
        assert_eq!(
            info["virtual-size"].as_u64(),
            ours["virtual_size"].as_u64(),
            "{}",
            case.file
        );
        if let Qemu::Forced(_) = case.qemu {
            // The documented disagreement: qemu's probe says raw.
            let probed = qemu_info(&file, None);
            assert_eq!(probed["format"], "raw", "{}", case.file);
        }
        compared += 1;
    }
    assert!(
        compared >= 30,
        "only {compared} images compared with qemu-img"
    );
}

/// The report for `bytes` fed in chunks of `chunk` bytes, checking the
/// memory bound after every chunk.
fn report_in_chunks(bytes: &[u8], chunk: usize) -> Report {
    let mut inspector = Inspector::new();
    for piece in bytes.chunks(chunk) {
        inspector.update(piece);
        assert!(inspector.held_bytes() <= MAX_HELD_BYTES);
    }
    inspector.finish()
}

#[test]
fn verdicts_do_not_depend_on_chunk_sizes() {
    for name in image_files() {
        let bytes = std::fs::read(images().join(&name)).unwrap();
        let reference = report_in_chunks(&bytes, 8 << 20);
        for chunk in [1, 512, 4096, 65536] {
            assert_eq!(
                report_in_chunks(&bytes, chunk),
                reference,
                "{name} at {chunk}-byte chunks"
            );
        }
    }
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let bytes = std::fs::read(images().join("qcow2-backing-abs.qcow2")).unwrap();
    let output = portcullis()
        .args(["inspect", "--format", "json", "-"])
        .write_stdin(bytes)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["format"], "qcow2");
    assert!(
        json["failures"]["backing_file"]
            .as_str()
            .unwrap()
            .contains("/etc/hosts")
    );
}

#[test]
fn text_output_names_format_size_and_failures() {
    let output = portcullis()
        .arg("inspect")
        .arg(images().join("vmdk-flat-abs-extent.vmdk"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("format: vmdk\n"), "{text}");
    assert!(text.contains("virtual_size: 1048576\n"), "{text}");
    assert!(text.contains("safe: no\n"), "{text}");
    assert!(
        text.contains("failure descriptor: unsupported create type"),
        "{text}"
    );
}

/// `--disk-format` applies Glance's upload decision: `Ok(virtual_size)`
/// when accepted, `Err(part of the reason)` when rejected.
#[test]
fn upload_decision_follows_glance() {
    type Expect = Result<Option<u64>, &'static str>;
    let uploads: &[(&str, &str, Expect)] = &[
        // declared equals detected: the inspector's size
        ("qcow2-v3.qcow2", "qcow2", Ok(Some(MIB))),
        ("vmdk-stream-footer.vmdk", "vmdk", Ok(Some(MIB))),
        // declared raw: the byte count, but the safety checks still apply
        ("qcow2-v3.qcow2", "raw", Ok(Some(196_616))),
        ("qcow2-backing-abs.qcow2", "qcow2", Err("backing_file")),
        ("qcow2-backing-abs.qcow2", "raw", Err("backing_file")),
        ("qcow2-backing-trunc-511.qcow2", "raw", Err("backing_file")),
        ("qcow2-data-file-abs.qcow2", "raw", Err("data_file")),
        // mismatches
        ("raw-1m.raw", "qcow2", Err("does not match stream data raw")),
        ("vmdk-sparse.vmdk", "qcow2", Err("does not match")),
        // hybrid ISO: iso; other polyglots: rejected whatever is declared
        ("iso-hybrid-mbr.iso", "iso", Ok(Some(131_072))),
        ("iso-hybrid-mbr.iso", "raw", Ok(Some(131_072))),
        (
            "polyglot-iso-qcow2.iso",
            "iso",
            Err("multiple formats detected: iso, qcow2"),
        ),
        (
            "polyglot-qcow2-mbr.qcow2",
            "qcow2",
            Err("multiple formats detected"),
        ),
        // not inspectable formats take raw data, without a virtual size
        ("raw-1m.raw", "ami", Ok(None)),
        // a bad MBR is refused even as raw (Glance master)
        ("mbr-hybrid.img", "raw", Err("mbr")),
        // fixed VHD is a vhd; a text VMDK claiming a sparse type is refused
        ("vhd-fixed.vhd", "vhd", Ok(Some(1_079_296))),
        (
            "vmdk-text-claims-sparse.vmdk",
            "vmdk",
            Err("claims create type"),
        ),
        // an inspector that errors part-way never wins
        ("vhdx-region-table-destroyed.vhdx", "vhdx", Err("regi")),
        ("vmdk-bad-descriptor-offset.vmdk", "vmdk", Err("sector 2")),
        ("qcow2-size-above-i64.qcow2", "qcow2", Err("i64::MAX")),
        // the parent hint qemu follows, declared as what it is or as raw
        ("vmdk-sparse-parent-hint.vmdk", "vmdk", Err("backing_file")),
        ("vmdk-sparse-parent-hint.vmdk", "raw", Err("backing_file")),
    ];
    for (file, declared, expect) in uploads {
        let name = format!("{file} declared {declared}");
        let (code, json) = inspect_json(&images().join(file), &["--disk-format", declared]);
        match expect {
            Ok(virtual_size) => {
                assert_eq!(json["accepted"], true, "{name}: {json}");
                assert!(json["reason"].is_null(), "{name}");
                assert_eq!(
                    json["virtual_size"].as_u64(),
                    *virtual_size,
                    "{name}: {json}"
                );
                assert_eq!(code, 0, "{name}");
            }
            Err(reason) => {
                assert_eq!(json["accepted"], false, "{name}: {json}");
                let text = json["reason"].as_str().unwrap();
                assert!(text.contains(reason), "{name}: {text}");
                assert!(json["virtual_size"].is_null(), "{name}");
                assert_eq!(code, 1, "{name}");
            }
        }
    }
}

#[test]
fn usage_and_io_errors_exit_2() {
    let missing = portcullis()
        .args(["inspect", "/nonexistent/image.qcow2"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8(missing.stderr).unwrap();
    assert!(
        stderr.contains("cannot open /nonexistent/image.qcow2"),
        "{stderr}"
    );

    let bad_format = portcullis()
        .args(["inspect", "--disk-format", "qcow3"])
        .arg(images().join("raw-1m.raw"))
        .output()
        .unwrap();
    assert_eq!(bad_format.status.code(), Some(2));
    let stderr = String::from_utf8(bad_format.stderr).unwrap();
    assert!(stderr.contains("qcow3"), "{stderr}");

    let directory = portcullis().arg("inspect").arg(images()).output().unwrap();
    assert_eq!(directory.status.code(), Some(2));
}

#[test]
fn a_missing_file_is_one_json_error_document_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.qcow2");
    let (code, json) = inspect_json(&missing, &[]);
    assert_eq!(code, 2, "{json}");
    assert_eq!(json["error"]["kind"], "io", "{json}");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("missing.qcow2"), "{message}");
}
