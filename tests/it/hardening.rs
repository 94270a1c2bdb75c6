//! Regressions of issue 8 (hardening) in the engines, through the real
//! binary: properties files, trusted lists, opening a database another
//! program made, messages a user can act on, and `verify --format json`.
//! Each test failed before its fix.

// Helpers here are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use serde_json::Value;

use crate::ingest::{Env, json_of};
use crate::support::{FIXTURE_NOW, cert_id, portcullis, signature_b64, testdata};

/// The sample's four properties, as (name, value) pairs in file order.
fn sample_properties() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(testdata().join("sample/properties.json")).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// A JSON object written by hand, so keys can repeat.
fn object(members: &[(String, String)]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}: {}", Value::from(k.as_str()), Value::from(v.as_str())))
        .collect();
    format!("{{{}}}", members.join(", "))
}

/// The sample's properties with a bogus `img_signature` given first: a
/// last-wins parser verifies the sample with it.
fn duplicated_signature() -> String {
    let mut members = vec![("img_signature".to_owned(), "QUJD".to_owned())];
    members.extend(sample_properties());
    object(&members)
}

/// `verify` of the sample with `properties` (a path), JSON output.
fn verify_sample(properties: &Path) -> (i32, Value) {
    let output = portcullis()
        .current_dir(testdata())
        .args(["verify", "sample/sample.qcow2", "--cert-dir", "certs"])
        .arg("--properties")
        .arg(properties)
        .args(["--format", "json"])
        .output()
        .unwrap();
    (output.status.code().unwrap(), json_of(&output))
}

/// Asserts that `output` exited with `code` and printed a JSON error of
/// `kind` whose message holds every one of `parts`; returns the document.
pub(crate) fn assert_error(
    output: &std::process::Output,
    code: i32,
    kind: &str,
    parts: &[&str],
) -> Value {
    assert_eq!(output.status.code(), Some(code), "{output:?}");
    let report = json_of(output);
    assert_eq!(report["error"]["kind"], kind, "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    for part in parts {
        assert!(message.contains(part), "{part} not in {message}");
    }
    report
}

/// Every image id in the data directory's database.
fn image_ids(env: &Env) -> Vec<String> {
    let (code, page) = {
        let output = env
            .cmd()
            .args(["images", "list", "--format", "json"])
            .output()
            .unwrap();
        (output.status.code().unwrap(), json_of(&output))
    };
    assert_eq!(code, 0, "{page}");
    page["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["id"].as_str().unwrap().to_owned())
        .collect()
}

// --- item 6: properties files -----------------------------------------------

#[test]
fn verify_refuses_a_properties_file_with_a_duplicate_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dup.json");
    std::fs::write(&path, duplicated_signature()).unwrap();
    let (code, report) = verify_sample(&path);
    assert_eq!(code, 2, "{report}");
    assert_eq!(report["verified"], false);
    assert_eq!(report["error"]["kind"], "bad_properties_file", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"img_signature\""), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");

    // Twice inside the nested `properties` of `openstack image show -f json`.
    let nested = format!(r#"{{"id": "x", "properties": {}}}"#, duplicated_signature());
    std::fs::write(&path, nested).unwrap();
    let (code, report) = verify_sample(&path);
    assert_eq!(code, 2, "{report}");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"properties\""),
        "{report}"
    );
}

#[test]
fn verify_refuses_a_properties_file_over_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    let mut members = sample_properties();
    members.push(("padding".to_owned(), "x".repeat(2 << 20)));
    let text = object(&members);
    std::fs::write(&path, &text).unwrap();
    let (code, report) = verify_sample(&path);
    assert_eq!(code, 2, "{report}");
    assert_eq!(report["error"]["kind"], "bad_properties_file", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    for part in [
        path.display().to_string(),
        format!("{} bytes", text.len()),
        "1048576".to_owned(),
    ] {
        assert!(message.contains(&part), "{part} not in {message}");
    }
}

#[test]
fn ingest_and_images_create_refuse_duplicate_keys_and_oversized_files_before_creating() {
    let env = Env::new();
    let dup = env.file("dup.json", duplicated_signature().as_bytes());
    let big = env.file(
        "big.json",
        object(&[("padding".to_owned(), "x".repeat(2 << 20))]).as_bytes(),
    );
    let image = testdata().join("sample/sample.qcow2");
    for (file, expected) in [(&dup, "\"img_signature\""), (&big, "1048576")] {
        let output = env
            .cmd()
            .arg("ingest")
            .arg(&image)
            .args(["--name", "s", "--disk-format", "qcow2"])
            .args(["--container-format", "bare", "--cert-dir"])
            .arg(testdata().join("certs"))
            .arg("--properties")
            .arg(file)
            .args(["--format", "json"])
            .output()
            .unwrap();
        let path = file.display().to_string();
        assert_error(&output, 2, "usage", &[expected, &path]);

        let output = env
            .cmd()
            .args(["images", "create", "--name", "s", "--disk-format", "raw"])
            .args(["--container-format", "bare", "--properties"])
            .arg(file)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
    assert_eq!(image_ids(&env), Vec::<String>::new(), "nothing was created");
}

// --- item 7: trusted lists with duplicate entries ---------------------------

/// `verify` of data.bin signed by the chain key, certificate `leaf`, with
/// `trusted` as the trusted list (one id per line).
fn verify_chain(leaf: &str, trusted: &[String], compat: bool) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("trusted.txt");
    std::fs::write(&list, trusted.join("\n")).unwrap();
    let mut cmd = portcullis();
    cmd.env("PORTCULLIS_NOW", FIXTURE_NOW)
        .arg("verify")
        .arg(testdata().join("signatures/data.bin"))
        .arg("--cert-dir")
        .arg(testdata().join("certs"))
        .args(["--signature", &signature_b64("chainleaf.sha256")])
        .args(["--hash-method", "SHA-256", "--key-type", "RSA-PSS"])
        .args(["--cert-uuid", &cert_id(leaf)])
        .arg("--trusted-list")
        .arg(&list)
        .args(["--format", "json"]);
    if compat {
        cmd.args(["--compat", "cursive"]);
    }
    let output = cmd.output().unwrap();
    (output.status.code().unwrap(), json_of(&output))
}

fn copies(name: &str, n: usize) -> Vec<String> {
    vec![cert_id(name); n]
}

#[test]
fn eleven_hundred_copies_of_one_id_do_not_hide_the_right_chain() {
    let mut trusted = copies("inter-bt-orphan", 1100);
    trusted.extend([cert_id("inter-bt"), cert_id("root-bt")]);
    let (code, report) = verify_chain("chain-leaf-bt", &trusted, false);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["chain"].as_array().unwrap().len(), 3);
    // cursive takes the first namesake and never backtracks, as before; the
    // message stays short.
    let (code, report) = verify_chain("chain-leaf-bt", &trusted, true);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["error"]["kind"], "untrusted_chain");
    assert!(
        report["error"]["message"].as_str().unwrap().len() < 1000,
        "{report}"
    );
}

#[test]
fn rejected_candidates_are_counted_not_listed() {
    // 1100 copies of an expired CA with the right name: each was listed.
    let mut trusted = copies("inter-expired", 1100);
    trusted.push(cert_id("root-ca"));
    for compat in [false, true] {
        let (code, report) = verify_chain("chain-leaf-under-expired", &trusted, compat);
        assert_eq!(code, 1, "{report}");
        assert_eq!(report["error"]["kind"], "untrusted_chain");
        let message = report["error"]["message"].as_str().unwrap();
        assert!(message.len() < 1000, "{} bytes: {message}", message.len());
        assert!(message.contains("expired"), "{message}");
    }
}

#[test]
fn a_duplicated_loop_is_a_loop() {
    let mut trusted = copies("loop-a", 1100);
    trusted.push(cert_id("loop-b"));
    trusted.push(cert_id("loop-a").to_uppercase());
    for compat in [false, true] {
        let (code, report) = verify_chain("chain-leaf-loop", &trusted, compat);
        assert_eq!(code, 1, "{report}");
        assert_eq!(report["error"]["kind"], "chain_loop", "{report}");
    }
}

// --- item 14: verify --format json --------------------------------------------

#[test]
fn verify_json_reports_bytes_read_and_the_signer_of_a_refused_signature() {
    // key_type_mismatch happens after the certificate is read and before
    // any image byte: the signer is known, nothing was read.
    let output = portcullis()
        .env("PORTCULLIS_NOW", FIXTURE_NOW)
        .arg("verify")
        .arg(testdata().join("signatures/data.bin"))
        .arg("--cert-dir")
        .arg(testdata().join("certs"))
        .args(["--signature", &signature_b64("rsa2048.sha256")])
        .args(["--hash-method", "SHA-256", "--key-type", "ECC_SECP384R1"])
        .args(["--cert-uuid", &cert_id("cert-rsa2048")])
        .args(["--format", "json"])
        .output()
        .unwrap();
    let report = assert_error(&output, 1, "key_type_mismatch", &[]);
    assert_eq!(report["image_size"], Value::Null, "{report}");
    assert_eq!(report["signer"]["id"], cert_id("cert-rsa2048"), "{report}");
    assert_eq!(
        report["signer"]["subject"],
        "O=portcullis tests,CN=signer rsa2048"
    );

    // A bad signature over stdin: every byte was read.
    let data = std::fs::read(testdata().join("signatures/data.bin")).unwrap();
    let output = portcullis()
        .env("PORTCULLIS_NOW", FIXTURE_NOW)
        .args(["verify", "-", "--cert-dir"])
        .arg(testdata().join("certs"))
        .args(["--signature", &signature_b64("rsa2048.sha256")])
        .args(["--hash-method", "SHA-512", "--key-type", "RSA-PSS"])
        .args(["--cert-uuid", &cert_id("cert-rsa2048")])
        .args(["--format", "json"])
        .write_stdin(data.clone())
        .output()
        .unwrap();
    let report = json_of(&output);
    assert_eq!(report["error"]["kind"], "bad_signature", "{report}");
    assert_eq!(report["image_size"], data.len() as u64, "{report}");
    assert!(report["signer"].is_object(), "{report}");
}

// --- item 13 (b): unreadable key-store entries say why ------------------------

#[test]
fn an_unreadable_key_store_entry_names_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("certs");
    std::fs::create_dir(&store).unwrap();
    let as_directory = "11111111-2222-4333-8444-555555555555";
    std::fs::create_dir(store.join(format!("{as_directory}.pem"))).unwrap();
    let as_loop = "22222222-2222-4333-8444-555555555555";
    std::os::unix::fs::symlink("loop", store.join(format!("{as_loop}.pem"))).unwrap();
    std::os::unix::fs::symlink(format!("{as_loop}.pem"), store.join("loop")).unwrap();
    for (id, cause) in [
        (as_directory, "is a directory"),
        (as_loop, "symbolic links"),
    ] {
        let run = |format: &str| {
            portcullis()
                .arg("verify")
                .arg(testdata().join("signatures/data.bin"))
                .arg("--cert-dir")
                .arg(&store)
                .args(["--signature", "QUJD", "--hash-method", "SHA-256"])
                .args(["--key-type", "RSA-PSS", "--cert-uuid", id])
                .args(["--format", format])
                .output()
                .unwrap()
        };
        let entry = format!("{id}.pem");
        assert_error(&run("json"), 2, "certificate_unavailable", &[cause, &entry]);
        let stderr = String::from_utf8(run("text").stderr).unwrap();
        assert!(stderr.contains(cause), "{stderr}");
    }
}

// --- item 13: messages a user can act on --------------------------------------

#[test]
fn a_declared_size_over_a_limit_says_what_limit_and_that_nothing_was_read() {
    let env = Env::new();
    let file = env.file("big.raw", &crate::ingest::data(5 * 1024 * 1024, 40));
    let output = env
        .ingest(&file, "big")
        .args(["--size-cap", "3000000", "--format", "json"])
        .output()
        .unwrap();
    let parts = ["5242880", "image_size_cap", "3000000", "nothing was read"];
    let report = assert_error(&output, 1, "size_cap_exceeded", &parts);
    assert!(
        !report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stopped at")
    );

    // Over the owner's quota (1 MiB), declared with --size on standard input.
    std::fs::write(
        env.data_dir().join("portcullis.toml"),
        "[repo.quota.default]\nimage_size_total = 1\n",
    )
    .unwrap();
    let output = env
        .cmd()
        .args(["ingest", "-", "--name", "q", "--disk-format", "raw"])
        .args(["--container-format", "bare", "--project", "p1"])
        .args(["--size", "2000000", "--format", "json"])
        .write_stdin(vec![0u8; 2_000_000])
        .output()
        .unwrap();
    let parts = ["2000000", "quota", "1048576", "nothing was read"];
    assert_error(&output, 1, "quota_exceeded", &parts);
}

#[test]
fn a_data_directory_that_is_a_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, "not a directory").unwrap();
    let output = portcullis()
        .args(["images", "list", "--data-dir"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "data directory {} is not a directory",
            file.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("config file"), "{stderr}");
}

#[test]
fn a_corrupted_download_names_its_image() {
    let env = Env::new();
    let file = env.file("d.raw", &crate::ingest::data(100_000, 41));
    let output = env
        .ingest(&file, "d")
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let id = json_of(&output)["id"].as_str().unwrap().to_owned();
    std::fs::write(env.data_dir().join("images").join(&id), b"changed at rest").unwrap();
    let target = env.path("out.raw");
    let output = env
        .cmd()
        .args(["images", "download", &id, "-o"])
        .arg(&target)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let report = assert_error(&output, 1, "corrupted", &[]);
    assert_eq!(report["image_id"], id.as_str(), "{report}");
}

#[test]
fn ingesting_a_fifo_points_to_standard_input_without_blocking() {
    let env = Env::new();
    let fifo = env.path("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    // Nobody writes to the FIFO: opening it would block forever.
    let output = env
        .ingest(&fifo, "f")
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FIFO"), "{stderr}");
    assert!(stderr.contains("ingest - "), "{stderr}");
    assert_eq!(image_ids(&env), Vec::<String>::new(), "nothing was created");
}

// --- item 12: a database another program made is left alone -------------------

/// Runs `work` on a connection to the SQLite file `db`, as another program
/// would (created if missing, unless `read_only`), on a runtime of its own.
pub(crate) fn with_sqlite<T>(
    db: &Path,
    read_only: bool,
    work: impl AsyncFnOnce(&mut sqlx::SqliteConnection) -> T,
) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::ConnectOptions;
        let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .create_if_missing(!read_only)
            .read_only(read_only)
            .connect()
            .await
            .unwrap();
        let result = work(&mut connection).await;
        sqlx::Connection::close(connection).await.unwrap();
        result
    })
}

/// Runs `statements` on the SQLite file `db` through sqlx.
fn sqlite(db: &Path, statements: &[&'static str]) {
    with_sqlite(db, false, async |connection| {
        for statement in statements {
            sqlx::query(*statement)
                .execute(&mut *connection)
                .await
                .unwrap();
        }
    });
}

/// The schema objects of `db` and its journal mode, read through sqlx.
fn schema_of(db: &Path) -> (Vec<String>, String) {
    with_sqlite(db, true, async |connection| {
        let names: Vec<(String,)> = sqlx::query_as("SELECT name FROM sqlite_master ORDER BY name")
            .fetch_all(&mut *connection)
            .await
            .unwrap();
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
        (names.into_iter().map(|(name,)| name).collect(), mode)
    })
}

/// `images list` on `data_dir`: exit code and the JSON document.
fn list_in(data_dir: &Path) -> (i32, Value) {
    let output = portcullis()
        .args(["images", "list", "--format", "json", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    (output.status.code().unwrap(), json_of(&output))
}

#[test]
fn another_programs_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db = data.join("portcullis.db");
    sqlite(
        &db,
        &[
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)",
            "INSERT INTO customers (name) VALUES ('alice')",
        ],
    );
    let before = schema_of(&db);
    let (code, report) = list_in(&data);
    assert_eq!(code, 2, "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    for part in [
        db.display().to_string(),
        "another program's database".to_owned(),
        "table customers".to_owned(),
        "--data-dir".to_owned(),
    ] {
        assert!(message.contains(&part), "{part} not in {message}");
    }
    assert_eq!(schema_of(&db), before, "the database was changed");
    assert_eq!(before.1, "delete");

    // ingest refuses it too, before creating anything.
    let output = portcullis()
        .arg("ingest")
        .arg(testdata().join("images/raw-1m.raw"))
        .args([
            "--name",
            "x",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
        ])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(schema_of(&db), before, "the database was changed");
}

#[test]
fn another_programs_migration_history_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portcullis.db");
    sqlite(
        &db,
        &[
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
             checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (1, 'accounts', TRUE, x'0011', 1)",
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY)",
        ],
    );
    let before = schema_of(&db);
    let (code, report) = list_in(dir.path());
    assert_eq!(code, 2, "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("migration history is another program's"),
        "{message}"
    );
    assert!(message.contains("\"accounts\""), "{message}");
    assert_eq!(schema_of(&db), before);
}

#[test]
fn a_text_file_named_like_the_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portcullis.db");
    std::fs::write(&db, "these are my notes, not a database\n").unwrap();
    let (code, report) = list_in(dir.path());
    assert_eq!(code, 2, "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("not an SQLite database"), "{message}");
    assert!(message.contains(&db.display().to_string()), "{message}");
    assert_eq!(
        std::fs::read_to_string(&db).unwrap(),
        "these are my notes, not a database\n"
    );
}

#[test]
fn a_newer_schema_is_refused_and_ours_or_an_empty_file_opens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portcullis.db");
    // An empty file is an empty database: portcullis takes it.
    std::fs::write(&db, "").unwrap();
    assert_eq!(list_in(dir.path()).0, 0);
    // Its own database opens again.
    assert_eq!(list_in(dir.path()).0, 0);
    // A migration this binary does not know: a newer portcullis's.
    sqlite(
        &db,
        &[
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
           VALUES (99990101000000, 'from the future', TRUE, x'00', 1)",
        ],
    );
    let (code, report) = list_in(dir.path());
    assert_eq!(code, 2, "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("newer portcullis"), "{message}");
    assert!(message.contains("99990101000000"), "{message}");
}
