//! `portcullis images …` end to end: real binary, real SQLite file, real
//! store directory. Lifecycle, listing filters and paging, updates, verified
//! downloads (including corruption at rest), status changes, deletion.

// Helpers here are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::ingest::{Env, Row, data, json_of, md5_hex, sha512_hex};

/// Runs `portcullis images ARGS… --format json` and returns (exit code, JSON).
pub(crate) fn images(env: &Env, args: &[&str]) -> (i32, Value) {
    let output = env
        .cmd()
        .arg("images")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let code = output.status.code().unwrap();
    (code, json_of(&output))
}

/// Ingests `bytes` with `extra` arguments and returns the image id.
fn ingest_bytes(env: &Env, name: &str, bytes: &[u8], extra: &[&str]) -> String {
    let file = env.file(&format!("{name}.raw"), bytes);
    let output = env
        .ingest(&file, name)
        .args(extra)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    json_of(&output)["id"].as_str().unwrap().to_owned()
}

#[test]
fn create_then_upload_makes_an_image_active() {
    let env = Env::new();
    let (code, created) = images(
        &env,
        &[
            "create",
            "--name",
            "two-step",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "--property",
            "os_distro=cirros",
        ],
    );
    assert_eq!(code, 0, "{created}");
    assert_eq!(created["status"], "queued");
    assert_eq!(created["os_distro"], "cirros");
    assert_eq!(created["size"], Value::Null);
    let id = created["id"].as_str().unwrap();
    assert_eq!(env.row(id).unwrap().status, "queued");

    let bytes = data(300_000, 20);
    let file = env.file("two-step.raw", &bytes);
    let (code, uploaded) = images(&env, &["upload", id, file.to_str().unwrap()]);
    assert_eq!(code, 0, "{uploaded}");
    assert_eq!(uploaded["status"], "active");
    assert_eq!(
        env.row(id).unwrap(),
        Row {
            status: "active".to_owned(),
            size: Some(bytes.len() as i64),
            checksum: Some(md5_hex(&bytes)),
            os_hash_value: Some(sha512_hex(&bytes)),
        }
    );

    // A second upload to an active image is a conflict (Glance: 409), and changes nothing.
    let (code, report) = images(&env, &["upload", id, file.to_str().unwrap()]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["error"]["kind"], "not_queued", "{report}");
    assert_eq!(env.row(id).unwrap().status, "active");
    assert_eq!(env.store_files(), vec![format!("images/{id}")]);
}

#[test]
fn a_second_concurrent_upload_to_one_image_gets_a_conflict() {
    let env = Env::new();
    let (_, created) = images(
        &env,
        &[
            "create",
            "--name",
            "contested",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
        ],
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let bytes = data(2 * 1024 * 1024, 21);

    let mut first = Command::new(assert_cmd::cargo::cargo_bin("portcullis"))
        .env("PORTCULLIS_DATA_DIR", env.data_dir())
        .args(["images", "upload", &id, "-", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_in = first.stdin.take().unwrap();
    first_in.write_all(&bytes[..1024 * 1024]).unwrap();
    let started = std::time::Instant::now();
    while env.row(&id).unwrap().status != "saving" {
        assert!(
            started.elapsed().as_secs() < 30,
            "the first upload never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // Issue 8 item 10: every lost race is a conflict (it used to be
    // `not_queued` here and sometimes `invalid_transition`).
    let other = env.file("other.raw", &data(1000, 22));
    let (code, report) = images(&env, &["upload", &id, other.to_str().unwrap()]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["error"]["kind"], "conflict", "{report}");
    assert_eq!(report["image_id"], id.as_str(), "{report}");

    first_in.write_all(&bytes[1024 * 1024..]).unwrap();
    drop(first_in);
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    assert_eq!(env.row(&id).unwrap().checksum, Some(md5_hex(&bytes)));
}

#[test]
fn list_filters_and_pages() {
    let env = Env::new();
    let a = ingest_bytes(
        &env,
        "alpha",
        &data(1000, 23),
        &["--tag", "t1", "--visibility", "public"],
    );
    let b = ingest_bytes(
        &env,
        "beta",
        &data(1000, 24),
        &["--tag", "t1", "--tag", "t2"],
    );
    let (_, queued) = images(
        &env,
        &[
            "create",
            "--name",
            "gamma",
            "--disk-format",
            "qcow2",
            "--container-format",
            "bare",
        ],
    );
    let c = queued["id"].as_str().unwrap().to_owned();

    let ids = |document: &Value| -> Vec<String> {
        let mut ids: Vec<String> = document["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|image| image["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };

    let (code, all) = images(&env, &["list"]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(ids(&all), sorted(vec![a.clone(), b.clone(), c.clone()]));
    assert_eq!(
        ids(&images(&env, &["list", "--status", "queued"]).1),
        vec![c.clone()]
    );
    assert_eq!(
        ids(&images(&env, &["list", "--status", "active"]).1),
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        ids(&images(&env, &["list", "--name", "beta"]).1),
        vec![b.clone()]
    );
    assert_eq!(
        ids(&images(&env, &["list", "--visibility", "public"]).1),
        vec![a.clone()]
    );
    assert_eq!(
        ids(&images(&env, &["list", "--tag", "t1"]).1),
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        ids(&images(&env, &["list", "--tag", "t1", "--tag", "t2"]).1),
        vec![b.clone()]
    );
    assert_eq!(
        ids(&images(&env, &["list", "--owner", "nobody"]).1),
        Vec::<String>::new()
    );

    // Pages of two, following the last id as the marker, cover everything once.
    let (_, first_page) = images(&env, &["list", "--limit", "2"]);
    let first_ids: Vec<String> = first_page["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(first_ids.len(), 2);
    // Glance's page shape: first, schema, and next while the page is full.
    assert_eq!(first_page["first"], "/v2/images?limit=2");
    assert_eq!(first_page["schema"], "/v2/schemas/images");
    assert_eq!(
        first_page["next"],
        format!("/v2/images?limit=2&marker={}", first_ids[1])
    );
    let (_, second_page) = images(&env, &["list", "--limit", "2", "--marker", &first_ids[1]]);
    assert!(second_page.get("next").is_none(), "{second_page}");
    let mut seen = first_ids.clone();
    seen.extend(ids(&second_page));
    assert_eq!(sorted(seen), sorted(vec![a, b, c]));

    let (code, report) = images(&env, &["list", "--status", "sleeping"]);
    assert_eq!(code, 2, "{report}");
}

#[test]
fn show_update_and_remove_properties() {
    let env = Env::new();
    let id = ingest_bytes(
        &env,
        "props",
        &data(1000, 25),
        &["--property", "os_distro=cirros"],
    );
    let (code, shown) = images(&env, &["show", &id]);
    assert_eq!(code, 0, "{shown}");
    assert_eq!(shown["os_distro"], "cirros");

    let (code, updated) = images(
        &env,
        &[
            "update",
            &id,
            "--name",
            "renamed",
            "--property",
            "os_version=0.6",
            "--remove-property",
            "os_distro",
        ],
    );
    assert_eq!(code, 0, "{updated}");
    assert_eq!(updated["name"], "renamed");
    assert_eq!(updated["os_version"], "0.6");
    assert!(updated.get("os_distro").is_none(), "{updated}");
    let (_, shown) = images(&env, &["show", &id]);
    assert_eq!(shown["name"], "renamed");

    let (code, report) = images(&env, &["show", "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["error"]["kind"], "not_found");
    let (code, _) = images(&env, &["show", "not-a-uuid"]);
    assert_eq!(code, 2);
}

#[test]
fn download_verifies_and_writes_only_matching_data() {
    let env = Env::new();
    let bytes = data(3 * 1024 * 1024 + 3, 26);
    let id = ingest_bytes(&env, "dl", &bytes, &[]);
    let target = env.path("out.raw");
    let (code, report) = images(&env, &["download", &id, "-o", target.to_str().unwrap()]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["verified"], true);
    assert_eq!(std::fs::read(&target).unwrap(), bytes);

    // Standard output gets the same bytes.
    let output = env
        .cmd()
        .args(["images", "download", &id])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stdout == bytes,
        "stdout has {} bytes, not the image",
        output.stdout.len()
    );

    // Flip one byte at rest: the download fails loudly and leaves no file.
    let stored = env.data_dir().join("images").join(&id);
    let mut corrupted = bytes.clone();
    corrupted[1_000_000] ^= 0x40;
    std::fs::write(&stored, &corrupted).unwrap();
    let bad_target = env.path("bad.raw");
    let (code, report) = images(&env, &["download", &id, "-o", bad_target.to_str().unwrap()]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["error"]["kind"], "corrupted", "{report}");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("checksum"),
        "{report}"
    );
    assert!(!bad_target.exists());
    let leftovers: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("partial"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());

    // A truncated file is caught by its size.
    std::fs::write(&stored, &bytes[..1000]).unwrap();
    let (code, report) = images(&env, &["download", &id, "-o", bad_target.to_str().unwrap()]);
    assert_eq!(code, 1, "{report}");
    assert!(!bad_target.exists());
}

#[test]
fn deactivate_reactivate_and_delete() {
    let env = Env::new();
    let id = ingest_bytes(&env, "life", &data(5000, 27), &[]);
    let (code, image) = images(&env, &["deactivate", &id]);
    assert_eq!(code, 0, "{image}");
    assert_eq!(image["status"], "deactivated");
    assert_eq!(env.row(&id).unwrap().status, "deactivated");
    // Issue 8 item 13: deactivating twice is Glance's no-op, not "another
    // operation changed it first".
    let (code, image) = images(&env, &["deactivate", &id]);
    assert_eq!(code, 0, "{image}");
    assert_eq!(image["status"], "deactivated");

    let (code, image) = images(&env, &["reactivate", &id]);
    assert_eq!(code, 0, "{image}");
    assert_eq!(image["status"], "active");

    let (code, _) = images(&env, &["delete", &id]);
    assert_eq!(code, 0);
    assert_eq!(env.store_files(), Vec::<String>::new());
    let row = env.row(&id);
    assert!(row.is_none() || row.unwrap().status == "deleted");
    let (code, report) = images(&env, &["show", &id]);
    assert_eq!(code, 1, "{report}");
}

#[test]
fn download_stops_at_the_recorded_size_when_the_stored_data_grew() {
    let env = Env::new();
    let bytes = data(600 * 1024, 28);
    let id = ingest_bytes(&env, "grown", &bytes, &[]);
    // Data appended at rest: the record's size no longer matches.
    let stored = env.data_dir().join("images").join(&id);
    let mut grown = bytes.clone();
    grown.extend_from_slice(&data(2 * 1024 * 1024, 29));
    std::fs::write(&stored, &grown).unwrap();

    let output = env
        .cmd()
        .args(["images", "download", &id])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    // Nothing past the recorded size reached standard output.
    assert!(
        output.stdout.len() <= bytes.len(),
        "stdout got {} bytes, the record says {}",
        output.stdout.len(),
        bytes.len()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("corrupted") && stderr.contains("size"),
        "{stderr}"
    );
}

#[test]
fn a_failed_json_download_to_stdout_reports_on_stderr_not_in_the_data() {
    let env = Env::new();
    let bytes = data(300 * 1024, 30);
    let id = ingest_bytes(&env, "piped", &bytes, &[]);
    let stored = env.data_dir().join("images").join(&id);
    let mut corrupted = bytes.clone();
    corrupted[200_000] ^= 0x01;
    std::fs::write(&stored, &corrupted).unwrap();

    let output = env
        .cmd()
        .args(["images", "download", &id, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    // Standard output holds the data only; the error document is on stderr.
    assert!(
        output.stdout == corrupted,
        "stdout has {} bytes, not just the data",
        output.stdout.len()
    );
    let report: Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(report["error"]["kind"], "corrupted", "{report}");
}

#[test]
fn an_empty_project_is_a_usage_error_and_creates_nothing() {
    let env = Env::new();
    let (code, report) = images(
        &env,
        &[
            "create",
            "--name",
            "e",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "--project",
            "",
        ],
    );
    assert_eq!(code, 2, "{report}");
    assert_eq!(report["error"]["kind"], "usage", "{report}");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--project"),
        "{report}"
    );
    let (code, list) = images(&env, &["list"]);
    assert_eq!(code, 0, "{list}");
    assert_eq!(list["images"], serde_json::json!([]), "{list}");
}

#[test]
fn issue_8_13_status_changes_say_what_state_the_image_is_in_and_what_is_allowed() {
    let env = Env::new();
    let (_, created) = images(
        &env,
        &[
            "create",
            "--name",
            "q",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
        ],
    );
    let id = created["id"].as_str().unwrap();
    for (action, allowed) in [
        ("deactivate", "only an active image can be deactivated"),
        ("reactivate", "only a deactivated image can be reactivated"),
    ] {
        let (code, report) = images(&env, &[action, id]);
        assert_eq!(code, 1, "{report}");
        assert_eq!(report["error"]["kind"], "status_not_allowed", "{report}");
        let message = report["error"]["message"].as_str().unwrap();
        assert!(message.contains("is queued"), "{message}");
        assert!(message.contains(allowed), "{message}");
        assert!(!message.contains("read-only"), "{message}");
        assert_eq!(env.row(id).unwrap().status, "queued");
    }
    // Reactivating an active image is a no-op too (Glance).
    let active = ingest_bytes(&env, "a", &data(100, 31), &[]);
    let (code, image) = images(&env, &["reactivate", &active]);
    assert_eq!(code, 0, "{image}");
    assert_eq!(image["status"], "active");
}

#[test]
fn issue_8_13_a_corrupted_download_names_the_image() {
    let env = Env::new();
    let bytes = data(10_000, 32);
    let id = ingest_bytes(&env, "c", &bytes, &[]);
    let stored = env.data_dir().join("images").join(&id);
    let mut corrupted = bytes.clone();
    corrupted[5] ^= 1;
    std::fs::write(&stored, &corrupted).unwrap();
    let target = env.path("c.raw");
    let (code, report) = images(&env, &["download", &id, "-o", target.to_str().unwrap()]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["error"]["kind"], "corrupted", "{report}");
    assert_eq!(report["image_id"], id.as_str(), "{report}");
}

#[test]
fn issue_8_13_a_data_dir_that_is_a_file_says_so() {
    let env = Env::new();
    let file = env.file("not-a-dir", b"x");
    let output = env
        .cmd()
        .args(["images", "list", "--format", "json"])
        .env("PORTCULLIS_DATA_DIR", &file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let report = json_of(&output);
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("is not a directory"), "{message}");
    assert!(!message.contains("config file"), "{message}");
}

/// `images create --name NAME …` with `extra` arguments: (exit code, JSON).
fn create_with(env: &Env, name: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec![
        "create",
        "--name",
        name,
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
    ];
    args.extend_from_slice(extra);
    images(env, &args)
}

#[test]
fn issue_8_5_reserved_and_read_only_attributes_are_refused_in_every_path() {
    let env = Env::new();
    let long_name = "n".repeat(256);
    let long_key = format!("{}=v", "k".repeat(256));
    // (name, extra arguments, exit code, kind, what the message must name)
    let cases: Vec<(&str, Vec<&str>, i32, &str, &str)> = vec![
        (
            "p",
            vec!["--property", "status=active"],
            1,
            "read_only",
            "status",
        ),
        (
            "p",
            vec!["--property", "checksum=deadbeef"],
            1,
            "read_only",
            "checksum",
        ),
        (
            "p",
            vec!["--property", "os_hash_value=x"],
            1,
            "read_only",
            "os_hash_value",
        ),
        (
            "p",
            vec!["--property", "owner=p2"],
            1,
            "base_attribute",
            "owner",
        ),
        (
            "p",
            vec!["--property", "visibility=public"],
            1,
            "base_attribute",
            "visibility",
        ),
        (
            "p",
            vec!["--property", "os_glance_import_task=x"],
            1,
            "reserved",
            "os_glance_import_task",
        ),
        (
            "p",
            vec!["--property", "locations=x"],
            1,
            "reserved",
            "locations",
        ),
        (long_name.as_str(), vec![], 2, "schema", "name"),
        (
            "p",
            vec!["--property", long_key.as_str()],
            2,
            "schema",
            "kkkk",
        ),
        ("p", vec!["--tag", long_name.as_str()], 2, "schema", "tags"),
    ];
    for (name, extra, exit, kind, attribute) in &cases {
        let (code, report) = create_with(&env, name, extra);
        assert_eq!(code, *exit, "{extra:?}: {report}");
        assert_eq!(report["error"]["kind"], *kind, "{extra:?}: {report}");
        let message = report["error"]["message"].as_str().unwrap();
        assert!(message.contains(attribute), "{extra:?}: {message}");
    }
    let (_, list) = images(&env, &["list"]);
    assert_eq!(
        list["images"],
        serde_json::json!([]),
        "nothing was created: {list}"
    );

    // Ingest: refused before anything is created or read.
    let file = env.file("x.raw", b"data");
    let output = env
        .ingest(&file, "x")
        .args(["--property", "status=active", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(json_of(&output)["error"]["kind"], "read_only");
    // A properties file: base attributes are skipped (show output feeds
    // back), reserved names are refused.
    let properties = env.file(
        "props.json",
        br#"{"id": "x", "status": "active", "os_glance_import_task": "t"}"#,
    );
    let output = env
        .ingest(&file, "x")
        .arg("--properties")
        .arg(&properties)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(json_of(&output)["error"]["kind"], "reserved");
    let (_, list) = images(&env, &["list"]);
    assert_eq!(
        list["images"],
        serde_json::json!([]),
        "nothing was created: {list}"
    );

    // Update: the same rules.
    let id = ingest_bytes(&env, "u", &data(100, 33), &[]);
    for (extra, kind) in [
        (["--property", "status=active"], "read_only"),
        (["--property", "owner=p2"], "base_attribute"),
        (["--property", "os_glance_x=1"], "reserved"),
        (["--remove-property", "name"], "not_removable"),
        (["--remove-property", "nope"], "no_such_property"),
    ] {
        let mut args = vec!["update", id.as_str()];
        args.extend_from_slice(&extra);
        let (code, report) = images(&env, &args);
        assert_eq!(code, 1, "{extra:?}: {report}");
        assert_eq!(report["error"]["kind"], kind, "{extra:?}: {report}");
    }
    let (_, shown) = images(&env, &["show", &id]);
    assert_eq!(shown["status"], "active", "{shown}");
    assert!(shown.get("os_glance_x").is_none(), "{shown}");
}
