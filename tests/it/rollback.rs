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

// --- item 8: disk full during the final database commit ------------------------

#[test]
fn disk_full_at_the_final_database_commit_is_disk_full_and_leaves_the_image_queued() {
    // A 4 MiB tmpfs as the data directory, in a private mount namespace.
    // The upload's data (1 MiB, from a FIFO held open) reaches its staged
    // file; then a filler file takes every free byte, and only then does
    // the data end: the store commit (a rename) needs no space, the
    // database commit (new WAL frames) finds none.
    let env = Env::new();
    let data_dir = env.path("small-disk");
    std::fs::create_dir_all(&data_dir).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("portcullis");
    let n_bytes = 1 << 20;
    let input = env.file("input.raw", &data(n_bytes, 63));
    let script = format!(
        r#"set -e
mount -t tmpfs -o size=4m tmpfs '{dir}'
'{bin}' images create --data-dir '{dir}' --name full --disk-format raw --container-format bare --format json > '{out}/create.json'
id=$(sed -n 's/^  "id": "\([^"]*\)".*/\1/p' '{out}/create.json')
mkfifo '{out}/fifo'
'{bin}' images upload "$id" - --data-dir '{dir}' --format json < '{out}/fifo' > '{out}/upload.json' 2> '{out}/upload.err' &
pid=$!
exec 3> '{out}/fifo'
cat '{input}' >&3
tries=0
until [ "$(cat '{dir}'/staging/*.part 2>/dev/null | wc -c)" -ge {n_bytes} ]; do
  tries=$((tries + 1)); [ $tries -lt 1200 ] || {{ echo 'the staged file never filled' >&2; exit 1; }}
  sleep 0.05
done
dd if=/dev/zero of='{dir}/filler' bs=4096 2>/dev/null || true
[ "$(df --output=avail '{dir}' | tail -1 | tr -d ' ')" -eq 0 ]
exec 3>&-
set +e
wait $pid
echo $? > '{out}/upload.code'
mkdir -p '{out}/db-copy' && cp '{dir}'/portcullis.db* '{out}/db-copy/'
(cd '{dir}' && ls -A images staging | grep -v '.lock$' | grep -v '^images:$' | grep -v '^staging:$' | grep -v '^$' || true) > '{out}/files.txt'
"#,
        dir = data_dir.display(),
        bin = bin.display(),
        input = input.display(),
        out = env.dir.path().display(),
    );
    let output = Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the mount namespace script failed: {output:?}"
    );
    let read = |name: &str| std::fs::read_to_string(env.path(name)).unwrap();
    assert_eq!(
        read("upload.code").trim(),
        "2",
        "stderr: {}",
        read("upload.err")
    );
    let report: Value = serde_json::from_str(&read("upload.json")).unwrap();
    assert_eq!(report["error"]["kind"], "disk_full", "{report}");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disk is full"),
        "{report}"
    );
    // Returning the image to queued worked in the failing process itself:
    // its database (copied out before the tmpfs vanished, and read without
    // portcullis, whose opening would run crash recovery) says queued.
    let id = report["image_id"].as_str().unwrap();
    let row = db_row(&env.path("db-copy"), id).unwrap();
    assert_eq!(row.status, "queued", "stderr: {}", read("upload.err"));
    assert_eq!(row.size, None, "{row:?}");
    assert!(
        !read("upload.err").contains("cannot return the image to queued"),
        "{}",
        read("upload.err")
    );
    assert_eq!(read("files.txt").trim(), "");
}
