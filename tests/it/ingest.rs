//! `portcullis ingest` and the upload pipeline end to end: real binary, real
//! SQLite files, real store directories, real signatures made by `openssl`.
//!
//! Every failure case asserts the database row (status back to `queued`, no
//! size or checksum recorded) and the store (nothing in `images/` or
//! `staging/`), so a test fails if anything is left behind.

// Helpers here are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::portcullis;

/// A data directory plus signing material, all in one temporary directory.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
}

/// The SQLite database inside a data directory.
pub(crate) const DB_FILE_NAME: &str = "portcullis.db";

/// The fixed clock of every test: inside the validity of the test
/// certificate, which `openssl req -days 36500` makes valid from the day the
/// tests run for a century (openssl 3.0 cannot set a fixed start date).
pub(crate) const NOW: &str = "2090-01-01T00:00:00Z";

/// The signing certificate id every test uses.
pub(crate) const CERT_ID: &str = "3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";

impl Env {
    pub(crate) fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        let (key, cert) = signing_material();
        std::fs::copy(cert, certs.join(format!("{CERT_ID}.pem"))).unwrap();
        std::fs::copy(key, dir.path().join("key.pem")).unwrap();
        Env { dir }
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `data` to a file named `name` and returns its path.
    pub(crate) fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, data).unwrap();
        path
    }

    /// Signs `data` with the test key (RSA-PSS, maximum salt) and writes a
    /// properties file with the four img_signature* properties.
    pub(crate) fn signed_properties(&self, name: &str, data: &[u8], hash_method: &str) -> PathBuf {
        let input = self.file(&format!("{name}.to-sign"), data);
        let digest_flag = format!("-{}", hash_method.to_ascii_lowercase().replace('-', ""));
        let output = Command::new("openssl")
            .args(["dgst", &digest_flag, "-sigopt", "rsa_padding_mode:pss"])
            .args(["-sigopt", "rsa_pss_saltlen:-2", "-sign"])
            .arg(self.path("key.pem"))
            .arg(&input)
            .output()
            .unwrap();
        assert!(output.status.success(), "openssl dgst failed: {output:?}");
        let signature = base64(&output.stdout);
        let properties = serde_json::json!({
            "img_signature": signature,
            "img_signature_hash_method": hash_method,
            "img_signature_key_type": "RSA-PSS",
            "img_signature_certificate_uuid": CERT_ID,
        });
        let path = self.path(&format!("{name}.properties.json"));
        std::fs::write(&path, properties.to_string()).unwrap();
        path
    }

    /// `portcullis` with `--data-dir` pointing here and a fixed clock.
    pub(crate) fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = portcullis();
        cmd.env("PORTCULLIS_DATA_DIR", self.data_dir())
            .env("PORTCULLIS_NOW", NOW);
        cmd
    }

    /// `portcullis ingest FILE --name NAME --disk-format raw --container-format bare`.
    pub(crate) fn ingest(&self, file: &Path, name: &str) -> assert_cmd::Command {
        let mut cmd = self.cmd();
        cmd.arg("ingest")
            .arg(file)
            .args([
                "--name",
                name,
                "--disk-format",
                "raw",
                "--container-format",
                "bare",
            ])
            .arg("--cert-dir")
            .arg(self.cert_dir());
        cmd
    }

    /// Files left in the store's `images/` and `staging/` directories (lock files aside).
    pub(crate) fn store_files(&self) -> Vec<String> {
        store_files_in(&self.data_dir())
    }

    /// The image's row in the SQLite database, as the columns the tests check.
    pub(crate) fn row(&self, id: &str) -> Option<Row> {
        db_row(&self.data_dir(), id)
    }
}

/// Files in the store of `data_dir`: `images/<id>` and `staging/<name>`,
/// sorted, lock files aside.
pub(crate) fn store_files_in(data_dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for sub in ["images", "staging"] {
        let Ok(entries) = std::fs::read_dir(data_dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if !name.ends_with(".lock") {
                files.push(format!("{sub}/{name}"));
            }
        }
    }
    files.sort();
    files
}

/// The columns of an image row the tests assert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) status: String,
    pub(crate) size: Option<i64>,
    pub(crate) checksum: Option<String>,
    pub(crate) os_hash_value: Option<String>,
}

/// Runs `query` (with one text parameter) on the SQLite database of a data
/// directory, straight through sqlx, not through portcullis; `None` when the
/// database does not exist yet or the schema is not migrated yet.
fn db_rows(
    db: &Path,
    query: &'static str,
    parameter: &str,
) -> Option<Vec<sqlx::sqlite::SqliteRow>> {
    let parameter = parameter.to_owned();
    if !db.exists() {
        return None;
    }
    let db = db.to_owned();
    // On a thread of its own, so async tests can call it too.
    std::thread::spawn(move || db_rows_blocking(&db, query, &parameter))
        .join()
        .unwrap()
}

fn db_rows_blocking(
    db: &Path,
    query: &'static str,
    parameter: &str,
) -> Option<Vec<sqlx::sqlite::SqliteRow>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::ConnectOptions;
        let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .busy_timeout(Duration::from_secs(10))
            .connect()
            .await
            .unwrap();
        let rows = sqlx::query(query)
            .bind(parameter)
            .fetch_all(&mut connection)
            .await
            .ok();
        let _ = sqlx::Connection::close(connection).await;
        rows
    })
}

/// Reads an image row straight from `<data_dir>/portcullis.db`.
pub(crate) fn db_row(data_dir: &Path, id: &str) -> Option<Row> {
    db_row_in(&data_dir.join(DB_FILE_NAME), id)
}

fn db_row_in(db: &Path, id: &str) -> Option<Row> {
    use sqlx::Row as _;
    let rows = db_rows(
        db,
        "SELECT status, size, checksum, os_hash_value FROM images WHERE id = ?",
        id,
    )?;
    let row = rows.first()?;
    Some(Row {
        status: row.get(0),
        size: row.get(1),
        checksum: row.get(2),
        os_hash_value: row.get(3),
    })
}

fn base64(bytes: &[u8]) -> String {
    let mut child = Command::new("base64")
        .arg("-w0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8(output.stdout).unwrap()
}

/// One RSA-3072 key and self-signed certificate per test run, made by `openssl`.
fn signing_material() -> (PathBuf, PathBuf) {
    static MATERIAL: std::sync::OnceLock<(tempfile::TempDir, PathBuf, PathBuf)> =
        std::sync::OnceLock::new();
    let (_, key, cert) = MATERIAL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-days", "36500",
            ])
            .args(["-subj", "/CN=portcullis ingest tests", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        (dir, key, cert)
    });
    (key.clone(), cert.clone())
}

/// Deterministic test data.
pub(crate) fn data(n_bytes: usize, seed: u8) -> Vec<u8> {
    (0..n_bytes)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32 % 31) as u8
                ^ seed
        })
        .collect()
}

pub(crate) fn md5_hex(data: &[u8]) -> String {
    digest_hex(portcullis::hash::HashAlgorithm::Md5, data)
}

pub(crate) fn sha512_hex(data: &[u8]) -> String {
    digest_hex(portcullis::hash::HashAlgorithm::Sha512, data)
}

fn digest_hex(algorithm: portcullis::hash::HashAlgorithm, data: &[u8]) -> String {
    let mut hasher = algorithm.hasher();
    hasher.update(data);
    hasher.finish().to_hex()
}

/// Parses the one JSON document a `--format json` run printed.
pub(crate) fn json_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}): {output:?}"))
}

/// The image id a rejected run printed (text mode: on stderr).
fn rejected_id(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let start = stderr
        .find("image ")
        .unwrap_or_else(|| panic!("no image id in {stderr}"))
        + "image ".len();
    stderr[start..start + 36].to_owned()
}

/// Asserts the image is `queued` with no data recorded and the store holds nothing.
fn assert_rolled_back(env: &Env, id: &str) {
    let row = env.row(id).expect("the image row exists");
    assert_eq!(
        row,
        Row {
            status: "queued".to_owned(),
            size: None,
            checksum: None,
            os_hash_value: None,
        }
    );
    assert_eq!(env.store_files(), Vec::<String>::new());
}

#[test]
fn an_unsigned_image_becomes_active_with_its_hashes() {
    let env = Env::new();
    let bytes = data(3 * 1024 * 1024 + 17, 1);
    let file = env.file("plain.raw", &bytes);
    let output = env
        .ingest(&file, "plain")
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let image = json_of(&output);
    let id = image["id"].as_str().unwrap();
    assert_eq!(image["status"], "active");
    assert_eq!(image["name"], "plain");
    assert_eq!(image["size"], bytes.len() as u64);
    assert_eq!(image["virtual_size"], bytes.len() as u64);
    assert_eq!(image["checksum"], md5_hex(&bytes));
    assert_eq!(image["os_hash_algo"], "sha512");
    assert_eq!(image["os_hash_value"], sha512_hex(&bytes));
    assert_eq!(image["disk_format"], "raw");
    assert_eq!(image["visibility"], "shared");
    assert_eq!(
        env.row(id).unwrap(),
        Row {
            status: "active".to_owned(),
            size: Some(bytes.len() as i64),
            checksum: Some(md5_hex(&bytes)),
            os_hash_value: Some(sha512_hex(&bytes)),
        }
    );
    assert_eq!(env.store_files(), vec![format!("images/{id}")]);
    assert_eq!(
        std::fs::read(env.data_dir().join("images").join(id)).unwrap(),
        bytes
    );
}

#[test]
fn signed_images_become_active_whether_or_not_the_digest_is_shared() {
    let env = Env::new();
    for (hash_method, compat) in [
        ("SHA-512", "strict"),
        ("SHA-256", "strict"),
        ("SHA-384", "cursive"),
    ] {
        let bytes = data(2 * 1024 * 1024 + 5, 2);
        let file = env.file(&format!("signed-{hash_method}.raw"), &bytes);
        let properties = env.signed_properties(hash_method, &bytes, hash_method);
        let output = env
            .ingest(&file, "signed")
            .arg("--properties")
            .arg(&properties)
            .args([
                "--format",
                "json",
                "--require-signature",
                "--compat",
                compat,
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{hash_method}: {output:?}");
        let image = json_of(&output);
        assert_eq!(image["status"], "active");
        assert_eq!(image["img_signature_hash_method"], hash_method);
        assert_eq!(image["os_hash_value"], sha512_hex(&bytes));
    }
}

#[test]
fn a_bad_signature_leaves_the_image_queued_and_no_data() {
    let env = Env::new();
    let bytes = data(1024 * 1024, 3);
    let properties = env.signed_properties("other", &data(1024 * 1024, 4), "SHA-512");
    let file = env.file("image.raw", &bytes);
    let output = env
        .ingest(&file, "tampered")
        .arg("--properties")
        .arg(&properties)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("signature verification failed"), "{stderr}");
    assert_rolled_back(&env, &rejected_id(&output));
}

#[test]
fn json_rejections_carry_the_id_and_the_kind() {
    let env = Env::new();
    let bytes = data(4096, 5);
    let properties = env.signed_properties("other", b"something else", "SHA-256");
    let file = env.file("image.raw", &bytes);
    let output = env
        .ingest(&file, "tampered")
        .arg("--properties")
        .arg(&properties)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let report = json_of(&output);
    assert_eq!(report["error"]["kind"], "bad_signature", "{report}");
    let id = report["image_id"].as_str().unwrap();
    assert_rolled_back(&env, id);
}

#[test]
fn a_partial_signature_set_is_refused_before_any_byte() {
    let env = Env::new();
    let file = env.file("image.raw", &data(8192, 6));
    let output = env
        .ingest(&file, "partial")
        .args([
            "--property",
            "img_signature=AAAA",
            "--property",
            "img_signature_key_type=RSA-PSS",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("img_signature_hash_method"), "{stderr}");
    assert!(
        stderr.contains("img_signature_certificate_uuid"),
        "{stderr}"
    );
    assert_rolled_back(&env, &rejected_id(&output));
}

#[test]
fn require_signature_refuses_unsigned_images() {
    let env = Env::new();
    let file = env.file("image.raw", &data(8192, 7));
    let output = env
        .ingest(&file, "unsigned")
        .arg("--require-signature")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("require_signature"));
    assert_rolled_back(&env, &rejected_id(&output));

    // The same policy from the config file.
    std::fs::write(
        env.data_dir().join("portcullis.toml"),
        "require_signature = true\n",
    )
    .unwrap();
    let output = env.ingest(&file, "unsigned").output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
}

#[test]
fn an_unknown_certificate_is_refused_before_any_byte() {
    let env = Env::new();
    let bytes = data(8192, 8);
    let properties = env.signed_properties("signed", &bytes, "SHA-256");
    let file = env.file("image.raw", &bytes);
    let empty_certs = env.path("no-certs");
    std::fs::create_dir_all(&empty_certs).unwrap();
    let mut cmd = env.cmd();
    let output = cmd
        .arg("ingest")
        .arg(&file)
        .args([
            "--name",
            "x",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
        ])
        .arg("--properties")
        .arg(&properties)
        .arg("--cert-dir")
        .arg(&empty_certs)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_rolled_back(&env, &rejected_id(&output));
}

#[test]
fn trusted_certificates_validate_the_chain_at_upload() {
    let env = Env::new();
    let bytes = data(64 * 1024, 9);
    let properties = env.signed_properties("signed", &bytes, "SHA-256");
    let file = env.file("image.raw", &bytes);

    // An empty trusted list: chain validation requested, nothing trusted.
    let nothing = env.file("nothing-trusted.txt", b"");
    let output = env
        .ingest(&file, "x")
        .arg("--properties")
        .arg(&properties)
        .arg("--trusted-list")
        .arg(&nothing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_rolled_back(&env, &rejected_id(&output));

    // The self-signed signing certificate trusted as its own root.
    let trusted = env.file("trusted.txt", format!("{CERT_ID}\n").as_bytes());
    let output = env
        .ingest(&file, "x")
        .arg("--properties")
        .arg(&properties)
        .arg("--trusted-list")
        .arg(&trusted)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(json_of(&output)["status"], "active");
}

#[test]
fn the_size_cap_stops_the_upload_and_removes_the_partial_data() {
    let env = Env::new();
    let file = env.file("big.raw", &data(5 * 1024 * 1024, 10));
    let output = env
        .ingest(&file, "big")
        .args(["--size-cap", "3000000"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("image_size_cap"), "{stderr}");
    assert_rolled_back(&env, &rejected_id(&output));

    // The same cap from the config file; the flag still wins.
    std::fs::write(
        env.data_dir().join("portcullis.toml"),
        "image_size_cap = 3000000\n",
    )
    .unwrap();
    let output = env.ingest(&file, "big").output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let output = env
        .ingest(&file, "big")
        .args(["--size-cap", "6000000"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn a_declared_size_must_match_the_bytes() {
    let env = Env::new();
    let bytes = data(100_000, 11);
    for declared in ["99999", "100001"] {
        let output = env
            .cmd()
            .args([
                "ingest",
                "-",
                "--name",
                "s",
                "--disk-format",
                "raw",
                "--container-format",
                "bare",
            ])
            .args(["--size", declared])
            .write_stdin(bytes.clone())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{declared}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("expected"), "{stderr}");
        assert_rolled_back(&env, &rejected_id(&output));
    }
    let output = env
        .cmd()
        .args([
            "ingest",
            "-",
            "--name",
            "s",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
        ])
        .args(["--size", "100000", "--format", "json"])
        .write_stdin(bytes.clone())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(json_of(&output)["checksum"], md5_hex(&bytes));
}

/// Waits until `condition` holds, failing after 30 s.
fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The ids of the images in the database with `status`.
fn ids_with_status(data_dir: &Path, status: &str) -> Vec<String> {
    use sqlx::Row as _;
    db_rows(
        &data_dir.join(DB_FILE_NAME),
        "SELECT id FROM images WHERE status = ? ORDER BY id",
        status,
    )
    .unwrap_or_default()
    .iter()
    .map(|row| row.get(0))
    .collect()
}

/// Starts `portcullis ingest -` reading from a pipe the test writes to.
fn spawn_stdin_ingest(env: &Env, name: &str) -> std::process::Child {
    Command::new(assert_cmd::cargo::cargo_bin("portcullis"))
        .env_remove("PORTCULLIS_LOG")
        .env("PORTCULLIS_DATA_DIR", env.data_dir())
        .env("PORTCULLIS_NOW", NOW)
        .args([
            "ingest",
            "-",
            "--name",
            name,
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "--format",
            "json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_killed_upload_is_recovered_by_the_next_command() {
    let env = Env::new();
    let mut child = spawn_stdin_ingest(&env, "doomed");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&data(3 * 1024 * 1024, 12)).unwrap();
    stdin.flush().unwrap();
    wait_for("the upload to be saving with staged data", || {
        ids_with_status(&env.data_dir(), "saving").len() == 1
            && env
                .store_files()
                .iter()
                .any(|file| file.starts_with("staging/"))
    });
    let id = ids_with_status(&env.data_dir(), "saving").remove(0);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(stdin);
    // Still saving, data still staged: nobody has looked yet.
    assert_eq!(env.row(&id).unwrap().status, "saving");
    assert!(!env.store_files().is_empty());

    // Any command on the data directory recovers it, and says so.
    let output = env
        .cmd()
        .args(["images", "list", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("recovered") && stderr.contains(&id),
        "{stderr}"
    );
    assert_rolled_back(&env, &id);
}

#[test]
fn recovery_leaves_a_live_upload_alone_and_two_processes_both_succeed() {
    let env = Env::new();
    let first_bytes = data(2 * 1024 * 1024, 13);
    let second_bytes = data(2 * 1024 * 1024 + 1, 14);
    let mut first = spawn_stdin_ingest(&env, "first");
    let mut second = spawn_stdin_ingest(&env, "second");
    let mut first_in = first.stdin.take().unwrap();
    let mut second_in = second.stdin.take().unwrap();
    // Interleave the two uploads so both are saving at the same time.
    first_in.write_all(&first_bytes[..1024 * 1024]).unwrap();
    second_in.write_all(&second_bytes[..1024 * 1024]).unwrap();
    wait_for("both uploads to be saving", || {
        ids_with_status(&env.data_dir(), "saving").len() == 2
    });

    // A third process starting meanwhile must not "recover" the live uploads.
    let output = env
        .cmd()
        .args(["images", "list", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(ids_with_status(&env.data_dir(), "saving").len(), 2);

    first_in.write_all(&first_bytes[1024 * 1024..]).unwrap();
    second_in.write_all(&second_bytes[1024 * 1024..]).unwrap();
    drop(first_in);
    drop(second_in);
    let first = first.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    let first_id = json_of(&first)["id"].as_str().unwrap().to_owned();
    let second_id = json_of(&second)["id"].as_str().unwrap().to_owned();
    assert_eq!(
        env.row(&first_id).unwrap().checksum,
        Some(md5_hex(&first_bytes))
    );
    assert_eq!(
        env.row(&second_id).unwrap().checksum,
        Some(md5_hex(&second_bytes))
    );
    assert_eq!(ids_with_status(&env.data_dir(), "active").len(), 2);
    assert_eq!(env.store_files(), {
        let mut expected = vec![format!("images/{first_id}"), format!("images/{second_id}")];
        expected.sort();
        expected
    });
}

#[test]
fn a_stream_that_ends_early_leaves_nothing() {
    // stdin closed after part of the declared size: the client went away.
    let env = Env::new();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("portcullis"))
        .env("PORTCULLIS_DATA_DIR", env.data_dir())
        .args([
            "ingest",
            "-",
            "--name",
            "cut",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
        ])
        .args(["--size", "4194304"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&data(1024 * 1024, 15)).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_rolled_back(&env, &rejected_id(&output));
}

#[test]
fn disk_full_is_a_clear_error_and_leaves_nothing() {
    // A 6 MiB tmpfs as the data directory, in a private mount namespace, and
    // an 8 MiB image: the store hits ENOSPC part-way through the upload.
    let env = Env::new();
    let file = env.file("big.raw", &data(8 * 1024 * 1024, 16));
    let data_dir = env.path("small-disk");
    std::fs::create_dir_all(&data_dir).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("portcullis");
    let script = format!(
        "set -e; mount -t tmpfs -o size=6m tmpfs '{dir}'; \
         set +e; '{bin}' ingest '{file}' --data-dir '{dir}' --name full --disk-format raw --container-format bare --format json > '{out}/ingest.json' 2> '{out}/ingest.err'; \
         echo $? > '{out}/ingest.code'; \
         mkdir -p '{out}/db-copy' && cp '{dir}'/{db}* '{out}/db-copy/'; \
         (cd '{dir}' && ls -A images staging | grep -v '.lock$' | grep -v '^images:$' | grep -v '^staging:$' | grep -v '^$' || true) > '{out}/files.txt'",
        dir = data_dir.display(),
        bin = bin.display(),
        file = file.display(),
        out = env.dir.path().display(),
        db = DB_FILE_NAME,
    );
    let status = Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .status()
        .unwrap();
    assert!(status.success(), "the mount namespace script failed");
    let read = |name: &str| std::fs::read_to_string(env.path(name)).unwrap();
    assert_eq!(
        read("ingest.code").trim(),
        "2",
        "stderr: {}",
        read("ingest.err")
    );
    let report: Value = serde_json::from_str(&read("ingest.json")).unwrap();
    assert_eq!(report["error"]["kind"], "disk_full", "{report}");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no space left"),
        "{report}"
    );
    // The database, copied out of the namespace before its tmpfs vanished.
    let id = report["image_id"].as_str().unwrap();
    let row = db_row_in(&env.path("db-copy").join(DB_FILE_NAME), id).unwrap();
    assert_eq!(
        row,
        Row {
            status: "queued".to_owned(),
            size: None,
            checksum: None,
            os_hash_value: None,
        }
    );
    assert_eq!(read("files.txt").trim(), "");
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    let output = env.ingest(&env.path("missing.raw"), "x").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    // The file is opened before the image is created: nothing is left behind.
    assert_eq!(
        ids_with_status(&env.data_dir(), "queued"),
        Vec::<String>::new()
    );
    let output = env
        .cmd()
        .args([
            "ingest",
            "-",
            "--name",
            "x",
            "--disk-format",
            "qcow3",
            "--container-format",
            "bare",
        ])
        .write_stdin("x")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("qcow3"));
    std::fs::create_dir_all(env.data_dir()).unwrap();
    std::fs::write(
        env.data_dir().join("portcullis.toml"),
        "image_size_kap = 1\n",
    )
    .unwrap();
    let output = env.ingest(&env.file("x.raw", b"x"), "x").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("image_size_kap"));
}

#[test]
fn the_owners_storage_quota_stops_the_upload() {
    let env = Env::new();
    std::fs::create_dir_all(env.data_dir()).unwrap();
    std::fs::write(
        env.data_dir().join("portcullis.toml"),
        "[repo.quota.default]\nimage_size_total = 1\n",
    )
    .unwrap();
    let file = env.file("big.raw", &data(2 * 1024 * 1024, 30));
    let output = env
        .ingest(&file, "over")
        .args(["--project", "p1", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let report = json_of(&output);
    assert_eq!(report["error"]["kind"], "quota_exceeded", "{report}");
    assert_rolled_back(&env, report["image_id"].as_str().unwrap());

    // Within the quota the same project succeeds.
    let small = env.file("small.raw", &data(1000, 31));
    let output = env
        .ingest(&small, "under")
        .args(["--project", "p1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

/// Ingests a test image from testdata/images with a declared disk format.
fn ingest_testdata_image(env: &Env, name: &str, disk_format: &str) -> std::process::Output {
    env.cmd()
        .arg("ingest")
        .arg(crate::support::testdata().join("images").join(name))
        .args([
            "--name",
            name,
            "--disk-format",
            disk_format,
            "--container-format",
            "bare",
        ])
        .args(["--format", "json"])
        .output()
        .unwrap()
}

#[test]
fn a_qcow2_with_a_backing_file_is_refused_whatever_it_is_declared_as() {
    let env = Env::new();
    for declared in ["qcow2", "raw"] {
        let output = ingest_testdata_image(&env, "qcow2-backing-abs.qcow2", declared);
        assert_eq!(output.status.code(), Some(1), "{declared}: {output:?}");
        let report = json_of(&output);
        assert_eq!(report["error"]["kind"], "safety_check_failed", "{report}");
        assert!(
            report["error"]["message"]
                .as_str()
                .unwrap()
                .contains("backing_file"),
            "{report}"
        );
        assert_rolled_back(&env, report["image_id"].as_str().unwrap());
    }
    // Declared as another format entirely: a mismatch.
    let output = ingest_testdata_image(&env, "qcow2-v3.qcow2", "vmdk");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let report = json_of(&output);
    assert_eq!(report["error"]["kind"], "format_mismatch", "{report}");
    assert_rolled_back(&env, report["image_id"].as_str().unwrap());
}

#[test]
fn a_good_qcow2_becomes_active_with_its_virtual_size() {
    let env = Env::new();
    let output = ingest_testdata_image(&env, "qcow2-v3.qcow2", "qcow2");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let image = json_of(&output);
    assert_eq!(image["status"], "active");
    // `qemu-img info` says 1048576 for this file; the size is the file's.
    assert_eq!(image["virtual_size"], 1_048_576);
    let bytes = std::fs::read(crate::support::testdata().join("images/qcow2-v3.qcow2")).unwrap();
    assert_eq!(image["size"], bytes.len() as u64);

    // Other container formats are not inspected (as Glance): no virtual_size.
    let output = env
        .cmd()
        .arg("ingest")
        .arg(crate::support::testdata().join("images/qcow2-backing-abs.qcow2"))
        .args([
            "--name",
            "ova",
            "--disk-format",
            "qcow2",
            "--container-format",
            "ova",
        ])
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(json_of(&output)["virtual_size"], Value::Null);
}

mod library {
    //! The pipeline through the library facade, for what the binary cannot
    //! show: a stream that fails part-way and an upload cancelled mid-stream.

    use std::sync::Arc;

    use bytes::Bytes;
    use portcullis::app::{App, CreateRequest, UploadData};
    use portcullis::clock::{Clock, FixedClock};
    use portcullis::config::{Config, Overrides};
    use portcullis::context::RequestContext;
    use portcullis::image::{ContainerFormat, DiskFormat, Image};

    use super::{Env, data};

    async fn open(env: &Env) -> (Arc<App>, Image) {
        let clock: Arc<dyn Clock> = Arc::new(FixedClock(
            portcullis::clock::parse_rfc3339(super::NOW).unwrap(),
        ));
        let config = Config::load(&env.data_dir(), &Overrides::default()).unwrap();
        let app = App::open(&config, clock.clone()).await.unwrap();
        let request = CreateRequest {
            name: Some("library".to_owned()),
            disk_format: Some(DiskFormat::Raw),
            container_format: Some(ContainerFormat::Bare),
            ..CreateRequest::default()
        };
        let image = app
            .create(&RequestContext::local_admin(), request)
            .await
            .unwrap();
        (Arc::new(app), image)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_error_part_way_leaves_nothing() {
        let env = Env::new();
        let (app, image) = open(&env).await;
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from(data(1 << 20, 40))),
            Ok(Bytes::from(data(1 << 20, 41))),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "client went away",
            )),
            Ok(Bytes::from(data(1 << 20, 42))),
        ];
        let err = app
            .upload(
                &RequestContext::local_admin(),
                image.id,
                UploadData {
                    stream: futures_util::stream::iter(chunks),
                    declared_size: None,
                },
                &mut |_| {},
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "stream_failed", "{err:?}");
        assert!(!err.is_rejection());
        super::assert_rolled_back(&env, &image.id.to_string());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_upload_is_cleaned_up_by_its_drop_guard() {
        let env = Env::new();
        let (app, image) = open(&env).await;
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let task = {
            let app = app.clone();
            let id = image.id;
            tokio::spawn(async move {
                let stream = tokio_stream_from(receiver);
                app.upload(
                    &RequestContext::local_admin(),
                    id,
                    UploadData {
                        stream,
                        declared_size: None,
                    },
                    &mut |_| {},
                )
                .await
            })
        };
        sender
            .send(Ok(Bytes::from(data(1 << 20, 43))))
            .await
            .unwrap();
        let id = image.id.to_string();
        let started = std::time::Instant::now();
        while !(env.row(&id).unwrap().status == "saving"
            && env.store_files().iter().any(|f| f.starts_with("staging/")))
        {
            assert!(started.elapsed().as_secs() < 30, "the upload never started");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // The upload future is dropped while it waits for more data.
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        let started = std::time::Instant::now();
        while env.row(&id).unwrap().status != "queued" {
            assert!(
                started.elapsed().as_secs() < 30,
                "the guard never reset the status"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        super::assert_rolled_back(&env, &id);
        drop(sender);
    }

    /// A receiver as a `Stream` (tokio-stream is not a dependency).
    fn tokio_stream_from(
        receiver: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    ) -> impl futures_core::Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin {
        Box::pin(futures_util::stream::unfold(
            receiver,
            |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
        ))
    }
}

#[test]
fn the_readme_sample_ingests_into_a_fresh_data_directory() {
    // README's first command, with the working directory as the data
    // directory's parent (the default ./portcullis-data).
    let env = Env::new();
    let sample = crate::support::testdata().join("sample");
    let output = portcullis()
        .current_dir(env.dir.path())
        .arg("ingest")
        .arg(sample.join("sample.qcow2"))
        .arg("--properties")
        .arg(sample.join("properties.json"))
        .arg("--cert-dir")
        .arg(crate::support::testdata().join("certs"))
        .args([
            "--name",
            "sample",
            "--disk-format",
            "qcow2",
            "--container-format",
            "bare",
        ])
        .args(["--format", "json", "--require-signature"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let image = json_of(&output);
    assert_eq!(image["status"], "active");
    assert_eq!(image["virtual_size"], 64 * 1024 * 1024);
    assert_eq!(image["img_signature_key_type"], "RSA-PSS");
    let id = image["id"].as_str().unwrap();
    let default_dir = env.path("portcullis-data");
    assert_eq!(db_row(&default_dir, id).unwrap().status, "active");
    assert!(default_dir.join("images").join(id).is_file());
}

mod recovery {
    //! Recovery of a death between the store commit and the database
    //! transaction: the image is `saving` and its data sits, committed but
    //! unrecorded, under its final name.

    use std::sync::Arc;

    use portcullis::clock::{Clock, FixedClock};
    use portcullis::config::{Config, Overrides};
    use portcullis::context::RequestContext;
    use portcullis::image::{ContainerFormat, DiskFormat, Image, ImageId, Status};
    use portcullis::repo::{ImageRepo, SqlRepo};
    use portcullis::store::Store;

    use super::{DB_FILE_NAME, Env, data};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn committed_but_unrecorded_data_is_removed() {
        let env = Env::new();
        let clock: Arc<dyn Clock> = Arc::new(FixedClock(
            portcullis::clock::parse_rfc3339(super::NOW).unwrap(),
        ));
        std::fs::create_dir_all(env.data_dir()).unwrap();
        let sql = SqlRepo::open_sqlite(&env.data_dir().join(DB_FILE_NAME), clock.clone())
            .await
            .unwrap();
        let store = Store::filesystem(env.data_dir()).unwrap();
        let ctx = RequestContext::local_admin();
        let mut image = Image::new_queued(ImageId::new_random(), None, clock.now());
        image.disk_format = Some(DiskFormat::Raw);
        image.container_format = Some(ContainerFormat::Bare);
        let image = sql.add(&ctx, &image).await.unwrap();
        let mut saving = image.clone();
        saving.status = Status::Saving;
        sql.save(&ctx, &saving, Some(Status::Queued)).await.unwrap();
        // The dead upload got as far as committing its data.
        let mut staged = store.stage(image.id).await.unwrap();
        staged.write(&data(10_000, 50)).await.unwrap();
        staged.commit().await.unwrap();
        // And left a second, uncommitted staging file from an earlier try.
        let mut leftover = store.stage(image.id).await.unwrap();
        leftover.write(&data(5_000, 51)).await.unwrap();
        std::mem::forget(leftover); // as if the process died: no Drop cleanup
        let id = image.id.to_string();
        assert_eq!(env.store_files().len(), 2, "{:?}", env.store_files());
        sql.close().await;

        let config = Config::load(&env.data_dir(), &Overrides::default()).unwrap();
        let _opened = portcullis::app::App::open(&config, clock).await.unwrap();
        super::assert_rolled_back(&env, &id);
    }
}
