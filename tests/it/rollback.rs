//! Regressions of issue 8 items 8 and 9, through the real binary: an upload
//! stopped by SIGINT or SIGTERM, and a disk that fills up during the final
//! database commit, both leave the image `queued` with no data and say so.
//! Each test failed before its fix.

// Helpers here are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ingest::{Env, NOW, data, db_row, store_files_in};

/// Polls `ready` every 20 ms for up to 60 s; panics with `what` on timeout.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `portcullis ARGS` reading the image data from a pipe this test
/// holds open, writes `first` bytes into it and waits until the upload is
/// under way (the image `saving`, its staged file in `staging/`).
///
/// Returns the child and the open pipe (keep it: closing it would end the
/// upload by end of input instead of by the signal).
fn slow_upload(env: &Env, args: &[&str], first: usize) -> (Child, std::process::ChildStdin) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("portcullis"))
        .env("PORTCULLIS_DATA_DIR", env.data_dir())
        .env("PORTCULLIS_NOW", NOW)
        .env_remove("PORTCULLIS_LOG")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&data(first, 61)).unwrap();
    stdin.flush().unwrap();
    let data_dir = env.data_dir();
    wait_for("the staged file", || {
        store_files_in(&data_dir)
            .iter()
            .any(|file| file.starts_with("staging/"))
    });
    (child, stdin)
}

/// Sends `signal` (`INT`, `TERM`) to the child and waits for it, the data
/// pipe still open.
fn signal_and_wait(child: Child, signal: &str, stdin: std::process::ChildStdin) -> Output {
    let status = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {signal} failed");
    let output = child.wait_with_output().unwrap();
    drop(stdin);
    output
}

/// Asserts the image is `queued` with no data and nothing is left in the store.
fn assert_rolled_back(env: &Env, id: &str) {
    let row = db_row(&env.data_dir(), id).unwrap();
    assert_eq!(row.status, "queued", "{row:?}");
    assert_eq!(row.size, None, "{row:?}");
    assert_eq!(store_files_in(&env.data_dir()), Vec::<String>::new());
}

// --- item 9: SIGINT / SIGTERM during an upload ---------------------------------

#[test]
fn sigint_during_ingest_rolls_back_and_exits_130() {
    let env = Env::new();
    let (child, stdin) = slow_upload(
        &env,
        &[
            "ingest",
            "-",
            "--name",
            "slow",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "--format",
            "json",
        ],
        1 << 20,
    );
    let output = signal_and_wait(child, "INT", stdin);
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["error"]["kind"], "interrupted", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("SIGINT"), "{message}");
    assert!(message.contains("queued again"), "{message}");
    let id = report["image_id"].as_str().unwrap();
    assert_rolled_back(&env, id);
}

#[test]
fn sigterm_during_images_upload_rolls_back_and_exits_143() {
    let env = Env::new();
    let output = env
        .cmd()
        .args(["images", "create", "--name", "slow", "--disk-format", "raw"])
        .args(["--container-format", "bare", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let (child, stdin) = slow_upload(&env, &["images", "upload", &id, "-"], 3 << 20);
    let output = signal_and_wait(child, "TERM", stdin);
    assert_eq!(output.status.code(), Some(143), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert!(stderr.contains(&id), "{stderr}");
    assert!(output.stdout.is_empty(), "{output:?}");
    assert_rolled_back(&env, &id);
    // The image takes a new upload afterwards.
    let file = env.file("after.raw", &data(5000, 62));
    let output = env
        .cmd()
        .args(["images", "upload", &id])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}
