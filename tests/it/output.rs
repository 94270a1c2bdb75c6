//! Regressions of issue 8 items 1–4, through the real binary: standard
//! output that cannot be written (a closed pipe, `/dev/full`), control
//! characters in text output, one JSON error document for every failure
//! with `--format json` (clap's argument errors and `sign` included), and
//! log colour only on a terminal. Each test failed before its fix.

// Helpers here are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::ingest::{Env, NOW, json_of};
use crate::support::testdata;

/// The real binary as a plain `std::process::Command` (its stdout can be
/// any file descriptor), on the data directory of `env`.
fn bin(env: &Env) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("portcullis"));
    cmd.env("PORTCULLIS_DATA_DIR", env.data_dir())
        .env("PORTCULLIS_NOW", NOW)
        .env_remove("PORTCULLIS_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// A pipe whose reading end is already closed: every write to it is EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

/// `/dev/full`: every write to it is ENOSPC.
fn dev_full() -> Stdio {
    std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .unwrap()
        .into()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the process ended by itself, without a panic.
fn assert_no_panic(output: &Output) {
    let stderr = stderr_of(output);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "{stderr}");
}

/// Creates `n` queued images; returns their ids.
fn create_images(env: &Env, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let output = env
                .cmd()
                .args(["images", "create", "--name", &format!("image-{i}")])
                .args(["--disk-format", "raw", "--container-format", "bare"])
                .args(["--format", "json"])
                .output()
                .unwrap();
            assert_eq!(output.status.code(), Some(0), "{output:?}");
            json_of(&output)["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// `verify` of the signed sample from testdata/, with extra arguments.
fn verify_sample(extra: &[&str]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("portcullis"));
    cmd.current_dir(testdata())
        .env_remove("PORTCULLIS_NOW")
        .env_remove("PORTCULLIS_LOG")
        .args(["verify", "sample/sample.qcow2", "--cert-dir", "certs"])
        .args(["--properties", "sample/properties.json"])
        .args(extra)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Every image's status in the data directory, by id.
fn statuses(env: &Env) -> Vec<(String, String)> {
    let output = env
        .cmd()
        .args(["images", "list", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    json_of(&output)["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| {
            (
                image["id"].as_str().unwrap().to_owned(),
                image["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The ids of the `queued` images.
fn queued(env: &Env) -> Vec<String> {
    statuses(env)
        .into_iter()
        .filter(|(_, status)| status == "queued")
        .map(|(id, _)| id)
        .collect()
}

// --- item 1: standard output that cannot be written ------------------------

#[test]
fn a_closed_pipe_ends_quietly_with_the_commands_own_exit_code() {
    let env = Env::new();
    create_images(&env, 5);
    // `images list | head -0`, text and JSON: exit 0, nothing on stderr.
    for format in ["text", "json"] {
        let output = bin(&env)
            .args(["images", "list", "--format", format])
            .stdout(closed_pipe())
            .output()
            .unwrap();
        assert_no_panic(&output);
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        assert_eq!(stderr_of(&output), "");
    }
    // A verified image: 0, quietly.
    let output = verify_sample(&[]).stdout(closed_pipe()).output().unwrap();
    assert_no_panic(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(stderr_of(&output), "");
    // A rejected one keeps exit 1: a closed pipe never turns a refusal into a success.
    let output = verify_sample(&["--signature", "QUJD", "--format", "json"])
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert_no_panic(&output);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    // inspect, the other reading command.
    let output = bin(&env)
        .current_dir(testdata())
        .args(["inspect", "sample/sample.qcow2"])
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert_no_panic(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
}

#[test]
fn a_commit_whose_output_is_lost_is_still_reported_on_stderr() {
    let env = Env::new();
    let file = env.file("data.raw", b"some image data");
    for stdout in [closed_pipe(), dev_full()] {
        let before = statuses(&env);
        let output = bin(&env)
            .arg("ingest")
            .arg(&file)
            .args(["--name", "lost", "--disk-format", "raw"])
            .args(["--container-format", "bare"])
            .stdout(stdout)
            .output()
            .unwrap();
        assert_no_panic(&output);
        let stderr = stderr_of(&output);
        let mut images = statuses(&env);
        images.retain(|image| !before.contains(image));
        assert_eq!(images.len(), 1, "{images:?}");
        let (id, status) = &images[0];
        assert_eq!(status, "active");
        assert!(
            stderr.contains(&format!("image {id} is active")),
            "{stderr}"
        );
        assert!(stderr.contains("do not retry"), "{stderr}");
    }
    // A failed ingest's JSON report names the image it left queued: when
    // stdout cannot take it, stderr says it, and the exit code stays 1.
    let output = bin(&env)
        .arg("ingest")
        .arg(&file)
        .args(["--name", "short", "--disk-format", "raw"])
        .args(["--container-format", "bare", "--size", "999999"])
        .args(["--format", "json"])
        .stdout(dev_full())
        .output()
        .unwrap();
    assert_no_panic(&output);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("size mismatch"),
        "{stderr}"
    );
    let short = queued(&env);
    assert_eq!(short.len(), 1, "{short:?}");
    assert!(stderr.contains(&short[0]), "{stderr}");
    // `images create` likewise: the id of the queued image is on stderr.
    let output = bin(&env)
        .args(["images", "create", "--name", "lost", "--disk-format", "raw"])
        .args(["--container-format", "bare"])
        .stdout(dev_full())
        .output()
        .unwrap();
    assert_no_panic(&output);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let mut created = queued(&env);
    created.retain(|id| !short.contains(id));
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(
        stderr_of(&output).contains(&format!("image {} is queued", created[0])),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn a_full_device_on_stdout_is_exit_2_with_a_message() {
    let env = Env::new();
    create_images(&env, 2);
    let runs: Vec<Command> = vec![
        {
            let mut cmd = bin(&env);
            cmd.args(["images", "list"]);
            cmd
        },
        {
            let mut cmd = bin(&env);
            cmd.args(["images", "list", "--format", "json"]);
            cmd
        },
        verify_sample(&[]),
        verify_sample(&["--format", "json"]),
        {
            let mut cmd = bin(&env);
            cmd.current_dir(testdata()).args([
                "inspect",
                "sample/sample.qcow2",
                "--format",
                "json",
            ]);
            cmd
        },
    ];
    for mut cmd in runs {
        let output = cmd.stdout(dev_full()).output().unwrap();
        assert_no_panic(&output);
        assert_eq!(output.status.code(), Some(2), "{cmd:?}: {output:?}");
        let stderr = stderr_of(&output);
        assert!(
            stderr.contains("cannot write to standard output")
                && stderr.contains("No space left on device"),
            "{cmd:?}: {stderr}"
        );
    }
    // A failure keeps its own code when its report cannot be written either.
    let output = verify_sample(&["--signature", "QUJD", "--format", "json"])
        .stdout(dev_full())
        .output()
        .unwrap();
    assert_no_panic(&output);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
}

// --- item 2: control characters cannot forge output ---------------------

/// A name that, printed raw, adds a fake active row to `images list`.
const FORGED_ROW: &str = "x\n00000000-0000-4000-8000-000000000000  active            1  forged";
/// A property value that, printed raw, adds a second `status:` line and
/// switches the terminal to red.
const FORGED_STATUS: &str = "x\nstatus:           active\u{1b}[31m\u{9b}31m\u{7f}\r";

#[test]
fn control_characters_in_names_and_properties_cannot_forge_rows_or_lines() {
    let env = Env::new();
    create_images(&env, 1);
    let output = env
        .cmd()
        .args(["images", "create", "--name", FORGED_ROW])
        .args(["--property", &format!("note={FORGED_STATUS}")])
        .args(["--disk-format", "raw", "--container-format", "bare"])
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let created = json_of(&output);
    let id = created["id"].as_str().unwrap().to_owned();
    // JSON stays exact.
    assert_eq!(created["name"], FORGED_ROW);
    assert_eq!(created["note"], FORGED_STATUS);

    let list = env.cmd().args(["images", "list"]).output().unwrap();
    let text = String::from_utf8(list.stdout).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.lines()
            .all(|line| !line.starts_with("00000000-0000-4000")),
        "{text}"
    );

    let show = env.cmd().args(["images", "show", &id]).output().unwrap();
    let text = String::from_utf8(show.stdout).unwrap();
    let status_lines = text.lines().filter(|l| l.starts_with("status:")).count();
    assert_eq!(status_lines, 1, "{text}");
    assert!(
        text.contains("note: x\\nstatus:           active\\u{1b}[31m\\u{9b}31m\\u{7f}\\r"),
        "{text}"
    );
    for raw in ['\u{1b}', '\u{9b}', '\u{7f}', '\r'] {
        assert!(!text.contains(raw), "{raw:?} in {text}");
    }
}

#[test]
fn control_characters_in_file_names_and_messages_are_escaped() {
    let env = Env::new();
    let sample = testdata().join("sample");
    // A copy of the signed sample under a name with a newline and an escape.
    let name = "sample\nverified: forged.qcow2\u{1b}[2J";
    let image = env.path(name);
    std::fs::copy(sample.join("sample.qcow2"), &image).unwrap();
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("portcullis"));
    let output = cmd
        .current_dir(testdata())
        .env_remove("PORTCULLIS_NOW")
        .arg("verify")
        .arg(&image)
        .args([
            "--cert-dir",
            "certs",
            "--properties",
            "sample/properties.json",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("sample\\nverified: forged.qcow2\\u{1b}[2J"),
        "{text}"
    );

    // A message on stderr that quotes the name: one line, no raw escape.
    let missing = env.path("missing\nerror: forged\u{1b}[2J");
    let output = Command::new(assert_cmd::cargo::cargo_bin("portcullis"))
        .arg("inspect")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

// --- item 3: one JSON error document for every failure ------------------

/// Asserts `output` exited 2 with one JSON error document of `kind` on
/// stdout whose message holds `part`.
fn assert_json_error(output: &Output, kind: &str, part: &str) -> Value {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let document = json_of(output);
    assert_eq!(document["error"]["kind"], kind, "{document}");
    let message = document["error"]["message"].as_str().unwrap();
    assert!(message.contains(part), "{part} not in {message}");
    document
}

#[test]
fn argument_errors_print_one_json_document_with_format_json() {
    let env = Env::new();
    let runs: [(&[&str], &str); 6] = [
        (
            &["images", "list", "--limit", "-1", "--format", "json"],
            "-1",
        ),
        (&["images", "list", "--limit=-1", "--format=json"], "-1"),
        (
            &["inspect", "x", "--disk-format", "foo", "--format", "json"],
            "foo",
        ),
        (
            &["images", "--format", "json", "list", "--bogus"],
            "--bogus",
        ),
        (
            &["verify", "x", "--format", "json", "--no-such-flag"],
            "--no-such-flag",
        ),
        (&["images", "--format", "json"], "subcommand"),
    ];
    for (args, part) in runs {
        let output = env.cmd().args(args).output().unwrap();
        assert_json_error(&output, "usage", part);
    }
    // Text mode keeps clap's own message on stderr and nothing on stdout.
    let output = env
        .cmd()
        .args(["images", "list", "--limit", "-1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    assert!(stderr_of(&output).contains("-1"), "{output:?}");
}

#[test]
fn sign_failures_print_one_json_document_unless_glance_args() {
    let env = Env::new();
    let image = env.file("data.raw", b"data");
    let key = env.path("key.pem");
    let uuid = "3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
    let sign = |extra: &[&str]| {
        let mut cmd = env.cmd();
        cmd.arg("sign").arg(&image).args(extra);
        cmd.output().unwrap()
    };
    // JSON is sign's default format.
    let output = sign(&["--key", "/nonexistent/key.pem", "--cert-uuid", uuid]);
    assert_json_error(&output, "io_error", "/nonexistent/key.pem");
    let output = sign(&[
        "--key",
        key.to_str().unwrap(),
        "--cert-uuid",
        uuid,
        "--hash-method",
        "MD5",
    ]);
    assert_json_error(&output, "unsupported_hash_method", "MD5");
    let output = sign(&["--key", key.to_str().unwrap(), "--cert-uuid", "not-a-uuid"]);
    assert_json_error(&output, "invalid_certificate_id", "--cert-uuid");
    let not_a_key = env.file("not-a-key.pem", b"hello");
    let output = sign(&["--key", not_a_key.to_str().unwrap(), "--cert-uuid", uuid]);
    assert_json_error(&output, "invalid_key", "not-a-key.pem");
    // A clap error of sign: JSON too.
    let output = sign(&["--cert-uuid", uuid]);
    assert_json_error(&output, "usage", "--key");
    // glance-args: text on stderr, stdout empty.
    let output = sign(&[
        "--key",
        "/nonexistent/key.pem",
        "--cert-uuid",
        uuid,
        "--format",
        "glance-args",
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    assert!(
        stderr_of(&output).starts_with("error: cannot read key"),
        "{output:?}"
    );
    // And a success still prints the properties.
    let output = sign(&["--key", key.to_str().unwrap(), "--cert-uuid", uuid]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(json_of(&output)["img_signature_certificate_uuid"], uuid);
}

// --- item 4: log colour only on a terminal ------------------------------

/// `images list -vv` (sqlx logs its statements at debug) with stderr on a
/// pseudo-terminal made by `script`; returns what the terminal received.
fn on_a_terminal(env: &Env, no_color: Option<&str>) -> String {
    let bin = assert_cmd::cargo::cargo_bin("portcullis");
    let mut cmd = Command::new("script");
    cmd.arg("-qec")
        .arg(format!(
            "'{}' images list -vv --data-dir '{}'",
            bin.display(),
            env.data_dir().display()
        ))
        .arg("/dev/null")
        .env_remove("PORTCULLIS_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    if let Some(value) = no_color {
        cmd.env("NO_COLOR", value);
    }
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "script failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn logs_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    let env = Env::new();
    create_images(&env, 1);
    let output = bin(&env).args(["images", "list", "-vv"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = stderr_of(&output);
    assert!(stderr.contains("DEBUG"), "no log lines to check: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a pipe: {stderr:?}"
    );

    let terminal = on_a_terminal(&env, None);
    assert!(terminal.contains("DEBUG"), "{terminal}");
    assert!(
        terminal.contains("\u{1b}["),
        "no colour on a terminal: {terminal:?}"
    );
    let terminal = on_a_terminal(&env, Some("1"));
    assert!(terminal.contains("DEBUG"), "{terminal}");
    assert!(
        !terminal.contains('\u{1b}'),
        "colour despite NO_COLOR: {terminal:?}"
    );
}
