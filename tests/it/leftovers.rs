//! What a command killed between two of its steps leaves, and the next
//! command collecting it (issue 8, item 11): the data of an image whose
//! delete was killed after its commit, an import killed between unstaging
//! and its claim, and the lock files older versions' stages left. The kill lands exactly between the two
//! steps through the debug build's pause points (`PORTCULLIS_PAUSE_AT`),
//! then a real SIGKILL.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::ingest::{Env, data, json_of};
use super::serve::{Server, http_with_body, json_body};

/// Waits (at most 30 s) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `portcullis ARGS` on the data directory; asserts exit 0; returns stderr.
fn run_ok(env: &Env, args: &[&str]) -> String {
    let output = env.cmd().args(args).env("NO_COLOR", "1").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write_config(data_dir: &Path, text: &str) {
    std::fs::create_dir_all(data_dir).unwrap();
    std::fs::write(data_dir.join("portcullis.toml"), text).unwrap();
}

#[test]
fn a_delete_killed_after_its_commit_leaves_data_that_the_next_command_removes() {
    let env = Env::new();
    let file = env.file("doomed.raw", &data(300_000, 21));
    let ingested = env
        .ingest(&file, "doomed")
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(ingested.status.code(), Some(0), "{ingested:?}");
    let id = json_of(&ingested)["id"].as_str().unwrap().to_owned();
    let object = env.data_dir().join("images").join(&id);
    assert!(object.exists());

    // `images delete`, killed between its commit and the store delete.
    let mut delete = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["images", "delete", &id])
        .env("PORTCULLIS_DATA_DIR", env.data_dir())
        .env("PORTCULLIS_PAUSE_AT", "after-delete-commit")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(delete.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("paused at after-delete-commit") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the delete ended without reaching its pause point"
        );
    }
    delete.kill().unwrap(); // SIGKILL
    delete.wait().unwrap();
    assert_eq!(env.row(&id).unwrap().status, "deleted");
    assert!(object.exists(), "the kill landed before the store delete");

    // With the sweep at open turned off, it stays; `gc --dry-run` names it.
    write_config(&env.data_dir(), "sweep_at_open = false\n");
    run_ok(&env, &["images", "list"]);
    assert!(object.exists());
    let report = env
        .cmd()
        .args(["gc", "--dry-run", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(0), "{report:?}");
    let report = json_of(&report);
    assert_eq!(
        report["deleted_data"][0]["image_id"],
        id.as_str(),
        "{report}"
    );
    assert!(object.exists(), "a dry run removed the data");

    // The next ordinary command finishes the delete, at once (no grace:
    // a deleted image's id is never reused).
    std::fs::remove_file(env.data_dir().join("portcullis.toml")).unwrap();
    let stderr = run_ok(&env, &["images", "list"]);
    assert!(!object.exists(), "the next command left the data: {stderr}");
    assert!(stderr.contains(&id), "the collection is logged: {stderr}");
    // Nothing is left for gc.
    let report = json_of(&env.cmd().args(["gc", "--format", "json"]).output().unwrap());
    assert_eq!(report["deleted_data"], serde_json::json!([]), "{report}");
    assert_eq!(report["objects"], serde_json::json!([]), "{report}");
}

/// An import killed between its `uploading → queued` and its claim leaves
/// a `queued` image (honest: it takes a new upload) and its staged object,
/// which it queued for deletion: the next command older than the lease
/// removes it. It takes no lock file any more; the lock files older versions
/// left are collected by the next command once old.
#[test]
fn an_import_killed_after_unstaging_leaves_a_queued_image_and_old_lock_files_go() {
    let env = Env::new();
    let data_dir = env.data_dir();
    write_config(&data_dir, "upload_lease_seconds = 2\n");
    let log = env.path("serve.log");
    let mut server = Server::start_logging(
        &data_dir,
        &[],
        &[("PORTCULLIS_PAUSE_AT", "import-after-unstage")],
        &log,
    );
    let created = http_with_body(
        &server.addr,
        "POST /v2/images HTTP/1.1",
        "application/json",
        r#"{"name": "staged", "disk_format": "raw", "container_format": "bare"}"#,
    );
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let id = json_body(&created)["id"].as_str().unwrap().to_owned();
    let staged = http_with_body(
        &server.addr,
        &format!("PUT /v2/images/{id}/stage HTTP/1.1"),
        "application/octet-stream",
        "staged bytes",
    );
    assert!(staged.starts_with("HTTP/1.1 204"), "{staged}");
    // The import never answers: it pauses, and the server is killed.
    let addr = server.addr.clone();
    let request = format!("POST /v2/images/{id}/import HTTP/1.1");
    let import = std::thread::spawn(move || {
        let _ = std::panic::catch_unwind(|| {
            http_with_body(
                &addr,
                &request,
                "application/json",
                r#"{"method": {"name": "glance-direct"}}"#,
            )
        });
    });
    wait_until("the import to reach its pause point", || {
        std::fs::read_to_string(&log)
            .is_ok_and(|text| text.contains("paused at import-after-unstage"))
    });
    server.kill();
    let _ = import.join();
    assert_eq!(env.row(&id).unwrap().status, "queued");
    let staging = data_dir.join("staging");
    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&staging),
        Vec::<String>::new(),
        "no lock file, no staging"
    );

    // Lock files as older versions left them: one old, one young.
    let old = staging.join(format!("{id}.lock"));
    let young = staging.join(format!("{}.lock", portcullis::image::ImageId::new_random()));
    std::fs::File::create(&old)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    std::fs::File::create(&young).unwrap();
    let stderr = run_ok(&env, &["images", "list"]);
    assert!(
        !old.exists(),
        "the next command left the old lock file: {stderr}"
    );
    assert!(stderr.contains(&id), "the collection is logged: {stderr}");
    assert!(
        young.exists(),
        "a lock file younger than the lease was removed"
    );

    // The staged object of the now queued image: queued for deletion by
    // the import, so the next command after the lease removes it.
    let objects = || std::fs::read_dir(data_dir.join("images")).unwrap().count();
    assert_eq!(objects(), 1, "the kill landed before the stage object went");
    assert!(
        !stderr.contains("stage_object"),
        "a stage object younger than the lease was collected: {stderr}"
    );
    std::thread::sleep(Duration::from_millis(2200));
    let stderr = run_ok(&env, &["images", "list"]);
    assert_eq!(
        objects(),
        0,
        "the next command left the stage object: {stderr}"
    );
    assert!(stderr.contains("stage_object"), "{stderr}");
    let report = json_of(&env.cmd().args(["gc", "--format", "json"]).output().unwrap());
    assert!(report["objects"].as_array().unwrap().is_empty(), "{report}");
    assert!(
        report["deleted_data"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(
        super::ingest::store_files_in(&data_dir),
        Vec::<String>::new()
    );
    // The image takes a new upload.
    let file = env.file("again.raw", b"uploaded again");
    let output = env
        .cmd()
        .args(["images", "upload", &id])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(env.row(&id).unwrap().status, "active");
}
