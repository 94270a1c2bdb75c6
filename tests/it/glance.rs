//! `portcullis glance verify | audit | upload` (issue 10) against a real
//! `portcullis serve` started by each test on 127.0.0.1 (a free port, a
//! temporary data directory, killed on drop).
//!
//! The cloud of [`Cloud::populated`] holds one image of every kind an
//! audit must tell apart: two good signed images (one signed by `glance
//! upload --sign-key`, one with the openssl-made sample signature), a
//! signed image whose stored data was altered behind the server's back, a
//! partially signed image, an unsigned image, a qcow2 with a backing file
//! recorded as bare/raw, and an image whose data file was removed. What the
//! server's API refuses to make (a partial signature set, a backing-file
//! qcow2 as raw) is made the way it happens in a real cloud: behind the
//! API's back, in the database.

// Helpers outside #[test] functions unwrap too: a failure is the test's.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use super::hardening::{assert_error, with_sqlite};
use super::openstack::{Fixture, fixture as openstack_fixture, shared_blocking};
use super::serve::{Server, exchange};
use super::support::{cert_id, portcullis, testdata};

/// The OpenStack variables a developer's shell may hold: none may leak into
/// a test's command.
const OS_VARIABLES: &[&str] = &[
    "OS_CLOUD",
    "OS_AUTH_URL",
    "OS_AUTH_TYPE",
    "OS_USERNAME",
    "OS_USER_ID",
    "OS_PASSWORD",
    "OS_PROJECT_NAME",
    "OS_PROJECT_ID",
    "OS_TOKEN",
    "OS_IMAGE_URL",
    "OS_APPLICATION_CREDENTIAL_ID",
    "OS_APPLICATION_CREDENTIAL_SECRET",
    "OS_CACERT",
    "OS_INSECURE",
    "OS_CLIENT_CONFIG_FILE",
];

/// A running `portcullis serve` and a work directory for image files.
struct Cloud {
    dir: tempfile::TempDir,
    server: Server,
}

/// The ids of the images of [`Cloud::populated`], by kind.
struct Images {
    signed: String,
    sample: String,
    tampered: String,
    partial: String,
    unsigned: String,
    backing: String,
    no_data: String,
}

impl Images {
    /// Each id with the category an audit must give it.
    fn expected(&self) -> BTreeMap<String, &'static str> {
        BTreeMap::from([
            (self.signed.clone(), "verified"),
            (self.sample.clone(), "verified"),
            (self.tampered.clone(), "checksum_mismatch"),
            (self.partial.clone(), "partially_signed"),
            (self.unsigned.clone(), "unsigned"),
            (self.backing.clone(), "unsafe_format"),
            (self.no_data.clone(), "error"),
        ])
    }
}

/// `len` bytes that are no disk format (raw), different per `seed`.
fn raw_data(len: usize, seed: u8) -> Vec<u8> {
    let mut state = 0x9e37_79b9u32 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 8) as u8
        })
        .collect()
}

impl Cloud {
    /// A server whose data directory has `config` as portcullis.toml.
    fn start(config: &str) -> Cloud {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("portcullis.toml"), config).unwrap();
        let server = Server::start(&data, &[]);
        Cloud { dir, server }
    }

    /// A server that verifies signatures with the test certificates.
    fn new() -> Cloud {
        Cloud::start(&format!(
            "cert_dir = {:?}\n",
            testdata().join("certs").display().to_string()
        ))
    }

    /// A server that lets a disk_format mismatch through (Glance's
    /// `require_image_format_match = false`), so a qcow2 with a backing
    /// file can be stored declared as another format.
    fn lenient() -> Cloud {
        Cloud::start(&format!(
            "cert_dir = {:?}\n[image_format]\nrequire_image_format_match = false\n",
            testdata().join("certs").display().to_string()
        ))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        path
    }

    /// `portcullis glance <args> --os-image-url <this server>`.
    fn glance(&self, args: &[&str]) -> Output {
        glance_at(&self.server.url, args)
    }

    /// Uploads `file` with `glance upload` (plus `extra`); the new image's id.
    fn upload(&self, file: &Path, name: &str, disk_format: &str, extra: &[&str]) -> String {
        let file = file.to_str().unwrap();
        let mut args = vec![
            "upload",
            file,
            "--name",
            name,
            "--disk-format",
            disk_format,
            "--container-format",
            "bare",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let output = self.glance(&args);
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        let document = json(&output);
        assert_eq!(document["image"]["status"], "active", "{document}");
        document["image"]["id"].as_str().unwrap().to_owned()
    }

    /// Runs `statement` with `binds` on the server's database, as an
    /// operator (or an attacker) with access to it would.
    fn sql(&self, statement: &'static str, binds: &[&str]) {
        with_sqlite(
            &self.data().join("portcullis.db"),
            false,
            async |connection| {
                let mut query = sqlx::query(statement);
                for bind in binds {
                    query = query.bind(bind.to_string());
                }
                query.execute(&mut *connection).await.unwrap();
            },
        );
    }

    /// Creates and uploads an image with plain HTTP (POST, PUT), as any
    /// Glance client does; the new image's id.
    fn http_upload(&self, name: &str, disk_format: &str, data: &[u8]) -> String {
        let body = serde_json::json!({"name": name, "disk_format": disk_format, "container_format": "bare"});
        let (status, created) = exchange(
            &self.server.addr,
            "POST",
            "/v2/images",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&created));
        let id = serde_json::from_slice::<Value>(&created).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, answer) = exchange(
            &self.server.addr,
            "PUT",
            &format!("/v2/images/{id}/file"),
            &[("Content-Type", "application/octet-stream")],
            data,
        );
        assert_eq!(status, 204, "{}", String::from_utf8_lossy(&answer));
        id
    }

    fn stored(&self, id: &str) -> PathBuf {
        self.data().join("images").join(id)
    }

    /// The image records the server has (`GET /v2/images`, any status).
    fn listed(&self) -> Vec<Value> {
        let (status, body) = exchange(&self.server.addr, "GET", "/v2/images", &[], b"");
        assert_eq!(status, 200);
        let page: Value = serde_json::from_slice(&body).unwrap();
        page["images"].as_array().unwrap().clone()
    }

    /// The cloud with one image of every kind (see the module's header).
    fn populated() -> (Cloud, Images) {
        let cloud = Cloud::lenient();
        let key = testdata().join("keys/rsa2048.pem");
        let key = key.to_str().unwrap();
        let cert = cert_id("cert-rsa2048");

        // Good: signed here, with `glance upload --sign-key`.
        let signed = cloud.file("signed.raw", &raw_data(300_000, 1));
        let signed = cloud.upload(
            &signed,
            "signed",
            "raw",
            &["--sign-key", key, "--cert-uuid", &cert],
        );
        // Good: the sample qcow2 with its openssl-made signature (testdata/sample).
        let properties: BTreeMap<String, String> = serde_json::from_str(
            &std::fs::read_to_string(testdata().join("sample/properties.json")).unwrap(),
        )
        .unwrap();
        let property_args: Vec<String> = properties
            .iter()
            .flat_map(|(name, value)| ["--property".to_owned(), format!("{name}={value}")])
            .collect();
        let property_args: Vec<&str> = property_args.iter().map(String::as_str).collect();
        let sample = cloud.upload(
            &testdata().join("sample/sample.qcow2"),
            "sample",
            "qcow2",
            &property_args,
        );
        // Tampered: signed, then bytes changed in the store behind the server's back.
        let tampered = cloud.file("tampered.raw", &raw_data(200_000, 2));
        let tampered = cloud.upload(
            &tampered,
            "tampered",
            "raw",
            &["--sign-key", key, "--cert-uuid", &cert],
        );
        let mut stored = std::fs::read(cloud.stored(&tampered)).unwrap();
        stored[100_000] ^= 0xff;
        std::fs::write(cloud.stored(&tampered), stored).unwrap();
        // Partially signed: one img_signature* property set in the database.
        let partial = cloud.file("partial.raw", &raw_data(100_000, 3));
        let partial = cloud.upload(&partial, "partial", "raw", &[]);
        // Unsigned.
        let unsigned = cloud.file("unsigned.raw", &raw_data(150_000, 4));
        let unsigned = cloud.upload(&unsigned, "unsigned", "raw", &[]);
        // A qcow2 whose backing file is /etc/hosts: through the lenient
        // format policy declared as vmdk, then recorded as raw.
        // (`glance upload` itself refuses it locally, so plain HTTP, as any client.)
        let backing = cloud.http_upload(
            "backing",
            "vmdk",
            &std::fs::read(testdata().join("images/qcow2-backing-abs.qcow2")).unwrap(),
        );
        // Data removed from the store.
        let no_data = cloud.file("no-data.raw", &raw_data(50_000, 5));
        let no_data = cloud.upload(&no_data, "no-data", "raw", &[]);
        std::fs::remove_file(cloud.stored(&no_data)).unwrap();
        cloud.sql(
            "INSERT INTO image_properties (image_id, name, value) VALUES (?1, 'img_signature_hash_method', 'SHA-256')",
            &[&partial],
        );
        cloud.sql(
            "UPDATE images SET disk_format = 'raw' WHERE id = ?1",
            &[&backing],
        );
        let images = Images {
            signed,
            sample,
            tampered,
            partial,
            unsigned,
            backing,
            no_data,
        };
        (cloud, images)
    }
}

/// `portcullis glance <args> --os-image-url <url>` with no OpenStack settings from the shell.
fn glance_at(url: &str, args: &[&str]) -> Output {
    let mut command = portcullis();
    command
        .arg("glance")
        .args(args)
        .args(["--os-image-url", url]);
    for name in OS_VARIABLES {
        command.env_remove(name);
    }
    command.env("NO_COLOR", "1");
    command.output().unwrap()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", describe(output)))
}

fn certs() -> String {
    testdata().join("certs").display().to_string()
}

/// `{id: category}` of a JSON report.
fn categories(report: &Value) -> BTreeMap<String, String> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| {
            (
                image["id"].as_str().unwrap().to_owned(),
                image["category"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn audit_tells_every_kind_of_image_apart_in_json() {
    let (cloud, images) = Cloud::populated();
    let output = cloud.glance(&["audit", "--cert-dir", &certs(), "--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let report = json(&output);
    let expected: BTreeMap<String, String> = images
        .expected()
        .into_iter()
        .map(|(id, category)| (id, category.to_owned()))
        .collect();
    assert_eq!(categories(&report), expected, "{report:#}");
    assert_eq!(report["command"], "glance audit");
    assert_eq!(report["passed"], false);
    let summary = &report["summary"];
    for (key, count) in [
        ("images", 7),
        ("verified", 2),
        ("unsigned", 1),
        ("partially_signed", 1),
        ("bad_signature", 0),
        ("checksum_mismatch", 1),
        ("size_mismatch", 0),
        ("unsafe_format", 1),
        ("error", 1),
        ("passed", 3),
        ("failed", 4),
    ] {
        assert_eq!(summary[key], count, "summary {key}: {summary}");
    }
    // Every byte of every image with data was read once.
    let bytes: u64 = 300_000 + 196_616 + 200_000 + 100_000 + 150_000 + 196_616;
    assert_eq!(summary["bytes"], bytes, "{summary}");

    let by_id = |id: &str| {
        report["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|image| image["id"] == id)
            .unwrap()
            .clone()
    };
    let signed = by_id(&images.signed);
    assert_eq!(signed["signature"]["result"], "verified");
    assert_eq!(signed["signature"]["key_type"], "RSA-PSS");
    assert_eq!(signed["signature"]["signer"]["id"], cert_id("cert-rsa2048"));
    assert_eq!(signed["checksum"]["result"], "match");
    assert_eq!(signed["os_hash"]["result"], "match");
    assert_eq!(signed["os_hash"]["algorithm"], "sha512");
    assert_eq!(signed["size_check"]["result"], "match");
    assert_eq!(signed["format"]["result"], "accepted");
    assert_eq!(signed["passed"], true);
    let sample = by_id(&images.sample);
    assert_eq!(sample["format"]["detected"], "qcow2");
    assert_eq!(sample["format"]["virtual_size"], 64 << 20);
    // The altered data fails md5, the os_hash and the signature alike.
    let tampered = by_id(&images.tampered);
    assert_eq!(tampered["checksum"]["result"], "mismatch");
    assert_eq!(tampered["os_hash"]["result"], "mismatch");
    assert_eq!(tampered["signature"]["result"], "rejected");
    assert_eq!(tampered["signature"]["kind"], "bad_signature");
    assert_eq!(tampered["bytes_read"], 200_000);
    let partial = by_id(&images.partial);
    assert_eq!(
        partial["signature"]["missing"],
        serde_json::json!([
            "img_signature_certificate_uuid",
            "img_signature",
            "img_signature_key_type"
        ])
    );
    let backing = by_id(&images.backing);
    assert_eq!(backing["disk_format"], "raw");
    assert_eq!(backing["format"]["result"], "rejected");
    assert_eq!(backing["format"]["kind"], "safety_check_failed");
    assert!(
        backing["reason"].as_str().unwrap().contains("/etc/hosts"),
        "{backing}"
    );
    let no_data = by_id(&images.no_data);
    assert_eq!(no_data["error"]["kind"], "server_error", "{no_data}");
    assert_eq!(no_data["passed"], false);
    assert_eq!(by_id(&images.unsigned)["passed"], true);
}

#[test]
fn audit_junit_has_one_testcase_per_image_and_text_a_summary() {
    let (cloud, images) = Cloud::populated();
    let output = cloud.glance(&["audit", "--cert-dir", &certs(), "--format", "junit"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let xml = String::from_utf8(output.stdout.clone()).unwrap();
    let document = roxmltree::Document::parse(&xml).unwrap_or_else(|err| panic!("{err}: {xml}"));
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suite = root
        .children()
        .find(|node| node.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("tests"), Some("7"));
    assert_eq!(suite.attribute("failures"), Some("3"));
    assert_eq!(suite.attribute("errors"), Some("1"));
    let cases: Vec<roxmltree::Node<'_, '_>> = suite
        .children()
        .filter(|node| node.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 7);
    let names = [
        (&images.signed, "signed"),
        (&images.sample, "sample"),
        (&images.tampered, "tampered"),
        (&images.partial, "partial"),
        (&images.unsigned, "unsigned"),
        (&images.backing, "backing"),
        (&images.no_data, "no-data"),
    ];
    for (id, name) in names {
        let case_name = format!("{id} ({name})");
        let case = cases
            .iter()
            .find(|case| case.attribute("name") == Some(case_name.as_str()))
            .unwrap_or_else(|| panic!("no testcase {case_name}: {xml}"));
        let failure = case.children().find(|node| node.has_tag_name("failure"));
        let error = case.children().find(|node| node.has_tag_name("error"));
        let expected = images.expected()[id];
        match expected {
            "verified" | "unsigned" => {
                assert!(failure.is_none() && error.is_none(), "{case_name}: {xml}");
            }
            "error" => {
                let error = error.unwrap_or_else(|| panic!("{case_name} has no error: {xml}"));
                assert_eq!(error.attribute("type"), Some("server_error"));
            }
            category => {
                let failure =
                    failure.unwrap_or_else(|| panic!("{case_name} has no failure: {xml}"));
                assert_eq!(failure.attribute("type"), Some(category), "{xml}");
                assert!(!failure.attribute("message").unwrap_or("").is_empty());
            }
        }
    }

    let output = cloud.glance(&["audit", "--cert-dir", &certs()]);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("7 images")
            && text.contains("2 verified, 1 unsigned, 1 partially signed, 0 bad signature, 1 checksum or size mismatch, 1 unsafe or mismatched format, 1 errors"),
        "{text}"
    );
    assert!(text.contains("3 passed, 4 failed"), "{text}");
    assert!(
        text.contains(&format!("FAIL checksum_mismatch {}", images.tampered)),
        "{text}"
    );
}

#[test]
fn audit_filters_concurrency_and_require_signature() {
    let (cloud, images) = Cloud::populated();
    // A hidden image (Glance's default listing leaves it out) is audited too.
    let (status, answer) = exchange(
        &cloud.server.addr,
        "PATCH",
        &format!("/v2/images/{}", images.unsigned),
        &[(
            "Content-Type",
            "application/openstack-images-v2.1-json-patch",
        )],
        br#"[{"op": "replace", "path": "/os_hidden", "value": true}]"#,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    // Tags select the good images only: every one passes, exit 0.
    for id in [&images.signed, &images.sample, &images.unsigned] {
        let (status, _) = exchange(
            &cloud.server.addr,
            "PUT",
            &format!("/v2/images/{id}/tags/good"),
            &[],
            b"",
        );
        assert_eq!(status, 204);
    }
    let output = cloud.glance(&[
        "audit",
        "--tag",
        "good",
        "--cert-dir",
        &certs(),
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = json(&output);
    assert_eq!(report["summary"]["images"], 3);
    assert_eq!(report["passed"], true);
    // Unsigned images fail when a signature is required.
    let output = cloud.glance(&[
        "audit",
        "--tag",
        "good",
        "--cert-dir",
        &certs(),
        "--require-signature",
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let report = json(&output);
    assert_eq!(report["summary"]["failed"], 1);
    assert_eq!(report["require_signature"], true);
    // The same verdicts one at a time and four at a time.
    let one = json(&cloud.glance(&[
        "audit",
        "--concurrency",
        "1",
        "--cert-dir",
        &certs(),
        "--format",
        "json",
    ]));
    let four = json(&cloud.glance(&[
        "audit",
        "--concurrency",
        "4",
        "--cert-dir",
        &certs(),
        "--format",
        "json",
    ]));
    assert_eq!(categories(&one), categories(&four));
    assert_eq!(categories(&one).len(), 7);
    // A visibility nobody has: nothing to check, and that passes.
    let output = cloud.glance(&["audit", "--visibility", "community", "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(json(&output)["summary"]["images"], 0);
}

#[test]
fn verify_checks_each_id_with_its_own_exit_code() {
    let (cloud, images) = Cloud::populated();
    let certs = certs();
    for (id, category, code) in [
        (&images.signed, "verified", 0),
        (&images.sample, "verified", 0),
        (&images.unsigned, "unsigned", 0),
        (&images.tampered, "checksum_mismatch", 1),
        (&images.partial, "partially_signed", 1),
        (&images.backing, "unsafe_format", 1),
        (&images.no_data, "error", 1),
    ] {
        let output = cloud.glance(&["verify", id, "--cert-dir", &certs, "--format", "json"]);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{id}: {}",
            describe(&output)
        );
        let report = json(&output);
        assert_eq!(report["command"], "glance verify");
        assert_eq!(report["images"][0]["id"], id.as_str());
        assert_eq!(report["images"][0]["category"], category, "{report:#}");
    }
    // Several ids at once, in the order given; one failure fails the run.
    let output = cloud.glance(&[
        "verify",
        &images.signed,
        &images.tampered,
        "--cert-dir",
        &certs,
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["images"][0]["id"], images.signed.as_str());
    assert_eq!(report["images"][1]["category"], "checksum_mismatch");
    // An unsigned image fails with --require-signature.
    let output = cloud.glance(&["verify", &images.unsigned, "--require-signature"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("FAIL unsigned"));
    // --compat cursive verifies the same good signature.
    let output = cloud.glance(&[
        "verify",
        &images.signed,
        "--cert-dir",
        &certs,
        "--compat",
        "cursive",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    // An unknown image is that image's failure (404 with Glance's reason).
    let unknown = "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55";
    let output = cloud.glance(&["verify", unknown, "--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let report = json(&output);
    assert_eq!(report["images"][0]["error"]["kind"], "not_found");
    assert!(
        report["images"][0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("No image found with ID {unknown}")),
        "{report:#}"
    );
}

#[test]
fn verify_and_audit_refuse_what_they_cannot_judge_with_exit_2() {
    let (cloud, images) = Cloud::populated();
    // A signed image and no certificates: nothing can be said about it.
    let output = cloud.glance(&["verify", &images.signed, "--format", "json"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert_eq!(
        json(&output)["images"][0]["error"]["kind"],
        "no_key_manager"
    );
    // Not an image id.
    let output = cloud.glance(&["verify", "../etc", "--cert-dir", &certs()]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not an image id"));
    // Both key managers.
    let output = cloud.glance(&["audit", "--cert-dir", &certs(), "--key-manager", "barbican"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    // Nobody listening: the listing fails after its retries, exit 2, as JSON too.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let output = glance_at(&url, &["audit", "--format", "json"]);
    assert_error(&output, 2, "unreachable", &["4 attempt(s)"]);
}

#[test]
fn upload_of_a_signed_image_ends_active_and_verifies() {
    let cloud = Cloud::new();
    let file = cloud.file("good.raw", &raw_data(1_000_000, 7));
    let key = testdata().join("keys/p384.pem");
    let cert = cert_id("cert-p384");
    let output = cloud.glance(&[
        "upload",
        file.to_str().unwrap(),
        "--name",
        "good",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--property",
        "os_distro=cirros",
        "--sign-key",
        key.to_str().unwrap(),
        "--cert-uuid",
        &cert,
        "--hash-method",
        "SHA-384",
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let document = json(&output);
    let image = &document["image"];
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], 1_000_000);
    assert_eq!(image["checksum"], document["local"]["checksum"]);
    assert_eq!(image["properties"]["os_distro"], "cirros");
    assert_eq!(
        image["properties"]["img_signature_key_type"],
        "ECC_SECP384R1"
    );
    assert_eq!(image["properties"]["img_signature_hash_method"], "SHA-384");
    assert_eq!(document["signed"], true);
    let id = image["id"].as_str().unwrap();
    let output = cloud.glance(&["verify", id, "--cert-dir", &certs()]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("pass verified"));
}

/// The properties `portcullis sign` makes for `file`, as `--property` arguments.
fn signed_properties(file: &Path) -> Vec<String> {
    let output = portcullis()
        .arg("sign")
        .arg(file)
        .arg("--key")
        .arg(testdata().join("keys/rsa2048.pem"))
        .args(["--cert-uuid", &cert_id("cert-rsa2048")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let properties: BTreeMap<String, String> = serde_json::from_slice(&output.stdout).unwrap();
    properties
        .iter()
        .flat_map(|(name, value)| ["--property".to_owned(), format!("{name}={value}")])
        .collect()
}

#[test]
fn upload_of_a_tampered_image_is_refused_and_cleaned_up_unless_kept() {
    let cloud = Cloud::new();
    let original = raw_data(400_000, 8);
    let signed_file = cloud.file("original.raw", &original);
    let mut tampered = original.clone();
    tampered[123_456] ^= 1;
    let tampered_file = cloud.file("tampered.raw", &tampered);
    let properties = signed_properties(&signed_file);
    let upload = |extra: &[&str]| {
        let mut args = vec![
            "upload",
            tampered_file.to_str().unwrap(),
            "--name",
            "tampered",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
        ];
        args.extend(properties.iter().map(String::as_str));
        args.extend_from_slice(extra);
        cloud.glance(&args)
    };
    // Refused by the server with its reason, and the queued image deleted.
    let output = upload(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("400 Bad Request") && stderr.contains("Signature verification failed"),
        "{stderr}"
    );
    assert!(stderr.contains("the image was deleted"), "{stderr}");
    assert!(cloud.listed().is_empty(), "{:?}", cloud.listed());
    // Kept on request: queued, no data.
    let output = upload(&["--keep-on-failure", "--format", "json"]);
    let document = assert_error(&output, 1, "bad_request", &["kept (--keep-on-failure)"]);
    let listed = cloud.listed();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], document["image_id"]);
    assert_eq!(listed[0]["status"], "queued");
    assert_eq!(listed[0]["size"], Value::Null);
    // The untampered file with the same properties ends active.
    let mut args = vec![
        "upload",
        signed_file.to_str().unwrap(),
        "--name",
        "original",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
    ];
    args.extend(properties.iter().map(String::as_str));
    let output = cloud.glance(&args);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("active: "));
}

#[test]
fn upload_refuses_an_unsafe_or_mismatched_file_before_sending_anything() {
    let cloud = Cloud::new();
    for (file, disk_format, kind) in [
        (
            testdata().join("images/qcow2-backing-abs.qcow2"),
            "raw",
            "safety_check_failed",
        ),
        (
            testdata().join("images/qcow2-backing-abs.qcow2"),
            "qcow2",
            "safety_check_failed",
        ),
        (
            testdata().join("images/raw-1m.raw"),
            "qcow2",
            "format_mismatch",
        ),
    ] {
        let output = cloud.glance(&[
            "upload",
            file.to_str().unwrap(),
            "--name",
            "refused",
            "--disk-format",
            disk_format,
            "--container-format",
            "bare",
            "--format",
            "json",
        ]);
        assert_error(&output, 1, kind, &["refused before anything was sent"]);
    }
    assert!(cloud.listed().is_empty());
    // Usage errors: exit 2, nothing created either.
    let small = cloud.file("small.raw", &raw_data(1000, 9));
    let small = small.to_str().unwrap();
    let upload = |file: &str, disk_format: &str, extra: &[&str]| {
        let mut args = vec!["upload", file, "--name", "x", "--disk-format", disk_format];
        args.extend_from_slice(&["--container-format", "bare"]);
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<String>>()
    };
    for args in [
        upload("/nonexistent", "raw", &[]),
        upload("/dev/null", "raw", &[]),
        upload(small, "qcow3", &[]),
        upload(small, "raw", &["--property", "status=active"]),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = cloud.glance(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            describe(&output)
        );
    }
    assert!(cloud.listed().is_empty());
}

/// An `image` service with a public endpoint at `url`, registered in the
/// real Keystone as an operator would (`openstack service create image`,
/// `openstack endpoint create`), and removed (with its endpoint) on drop.
struct CatalogEntry {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    services: String,
    token: String,
    service_id: String,
}

/// The name of the test's image service, so a run that died leaves
/// nothing the next run trips over.
const TEST_SERVICE: &str = "portcullis-glance-test";

impl CatalogEntry {
    fn register(fixture: &Fixture, url: &str) -> CatalogEntry {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let session = fixture.session("admin");
        let token = runtime
            .block_on(session.token())
            .unwrap()
            .secret()
            .expose()
            .to_owned();
        let auth_url = fixture.str("/auth_url");
        let http = reqwest::Client::new();
        let services = format!("{}/services", auth_url.trim_end_matches('/'));
        let endpoints = format!("{}/endpoints", auth_url.trim_end_matches('/'));
        let region = fixture.str("/region");
        let service_id = runtime.block_on(async {
            let listed: Value = http
                .get(format!("{services}?type=image"))
                .header("X-Auth-Token", &token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for stale in listed["services"].as_array().unwrap() {
                if stale["name"] == TEST_SERVICE {
                    let id = stale["id"].as_str().unwrap();
                    http.delete(format!("{services}/{id}"))
                        .header("X-Auth-Token", &token)
                        .send()
                        .await
                        .unwrap();
                }
            }
            let created: Value = http
                .post(&services)
                .header("X-Auth-Token", &token)
                .json(&serde_json::json!({"service": {"type": "image", "name": TEST_SERVICE}}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let service_id = created["service"]["id"].as_str().unwrap().to_owned();
            let response = http
                .post(&endpoints)
                .header("X-Auth-Token", &token)
                .json(&serde_json::json!({"endpoint": {
                    "service_id": service_id, "interface": "public", "url": url, "region_id": region,
                }}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 201);
            service_id
        });
        CatalogEntry {
            runtime,
            http,
            services,
            token,
            service_id,
        }
    }
}

impl Drop for CatalogEntry {
    fn drop(&mut self) {
        // Deleting the service deletes its endpoints.
        let _ = self.runtime.block_on(
            self.http
                .delete(format!("{}/{}", self.services, self.service_id))
                .header("X-Auth-Token", &self.token)
                .send(),
        );
    }
}

/// `portcullis glance <args>` as `user` of the Keystone fixture (its `OS_*`
/// variables, no `--os-image-url`), plus `extra` variables.
fn glance_as(fixture: &Fixture, user: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut command = portcullis();
    command.arg("glance").args(args);
    for name in OS_VARIABLES {
        command.env_remove(name);
    }
    command
        .envs(fixture.os_env(user))
        .envs(extra.iter().copied());
    command.output().unwrap()
}

#[test]
fn the_image_endpoint_comes_from_the_keystone_catalog_and_certificates_from_barbican() {
    let Some(fixture) = openstack_fixture() else {
        return;
    };
    let _servers = shared_blocking();
    // The server verifies alice's uploads with her certificate (as a file);
    // the commands read it from Barbican with each user's token.
    let certificate = fixture.certificate_uuid();
    let cloud = Cloud::new();
    let cert_dir = cloud.dir.path().join("certs");
    std::fs::create_dir(&cert_dir).unwrap();
    std::fs::copy(
        fixture.str("/certificate_path"),
        cert_dir.join(format!("{certificate}.pem")),
    )
    .unwrap();
    let cloud = Cloud {
        server: Server::start(&cloud.data(), &["--cert-dir", cert_dir.to_str().unwrap()]),
        ..cloud
    };
    let _entry = CatalogEntry::register(&fixture, &cloud.server.url);

    let file = cloud.file("alice.raw", &raw_data(500_000, 11));
    let key = fixture.str("/key_path");
    let output = glance_as(
        &fixture,
        "alice",
        &[
            "upload",
            file.to_str().unwrap(),
            "--name",
            "alice-signed",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "--sign-key",
            &key,
            "--cert-uuid",
            &certificate,
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let id = json(&output)["image"]["id"].as_str().unwrap().to_owned();

    let verify_as = |user: &str, code: i32| {
        let output = glance_as(
            &fixture,
            user,
            &[
                "verify",
                &id,
                "--key-manager",
                "barbican",
                "--format",
                "json",
            ],
            &[],
        );
        assert_eq!(output.status.code(), Some(code), "{}", describe(&output));
        json(&output)
    };
    // alice may read her certificate in Barbican: verified.
    let report = verify_as("alice", 0);
    assert_eq!(report["endpoint"], cloud.server.url.as_str());
    assert_eq!(report["images"][0]["category"], "verified");
    assert_eq!(
        report["images"][0]["signature"]["signer"]["id"],
        certificate.as_str()
    );
    let output = glance_as(
        &fixture,
        "alice",
        &["audit", "--key-manager", "barbican"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    // bob may not: a rejection naming the certificate, not a pass.
    let report = verify_as("bob", 1);
    assert_eq!(report["images"][0]["category"], "bad_signature");
    assert_eq!(
        report["images"][0]["signature"]["kind"],
        "certificate_forbidden"
    );
    // An interface the catalog does not list: exit 2, saying what to set.
    let output = glance_as(
        &fixture,
        "alice",
        &["audit", "--format", "json"],
        &[("OS_INTERFACE", "internal")],
    );
    assert_error(&output, 2, "image_not_in_catalog", &["--os-image-url"]);
    // No password in what was printed.
    let password = fixture.str("/alice/password");
    assert!(!String::from_utf8_lossy(&output.stdout).contains(&password));
    assert!(!String::from_utf8_lossy(&output.stderr).contains(&password));
}

#[test]
fn a_token_is_sent_as_given_with_the_image_url_and_a_refused_one_is_exit_2() {
    // A server that checks tokens (its `tokens` mode answers 401 as
    // keystonemiddleware does).
    let tokens = tempfile::tempdir().unwrap();
    let token_file = tokens.path().join("tokens.toml");
    std::fs::write(
        &token_file,
        "[[tokens]]\ntoken = \"tok-glance-7f3a\"\nroles = [\"admin\"]\n",
    )
    .unwrap();
    let cloud = Cloud::start(&format!(
        "cert_dir = {:?}\n[server]\nauth = \"tokens\"\ntoken_file = {:?}\n",
        testdata().join("certs").display().to_string(),
        token_file.display().to_string()
    ));
    let file = cloud.file("t.raw", &raw_data(10_000, 12));
    let output = cloud.glance(&[
        "upload",
        file.to_str().unwrap(),
        "--name",
        "t",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--os-token",
        "tok-glance-7f3a",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    // OS_TOKEN works as --os-token does.
    let mut command = portcullis();
    command.args(["glance", "audit", "--os-image-url", &cloud.server.url]);
    for name in OS_VARIABLES {
        command.env_remove(name);
    }
    let output = command.env("OS_TOKEN", "tok-glance-7f3a").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 images"));
    // A token the server does not know: 401 with its reason, exit 2, and
    // the token is nowhere in what is printed.
    let output = cloud.glance(&["audit", "--os-token", "tok-wrong-91c2", "--format", "json"]);
    assert_error(
        &output,
        2,
        "unauthorized",
        &["401 Unauthorized", "could not verify"],
    );
    assert!(!describe(&output).contains("tok-wrong-91c2"));
    // No token at all.
    let output = cloud.glance(&["audit", "--format", "json"]);
    assert_error(&output, 2, "unauthorized", &[]);
}

/// A `portcullis serve` on a fixed address, killed on drop.
struct FixedServer(std::process::Child);

impl Drop for FixedServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_server_that_comes_up_during_the_retries_is_audited() {
    let cloud = Cloud::new();
    let file = cloud.file("r.raw", &raw_data(20_000, 13));
    cloud.upload(&file, "r", "raw", &[]);
    let data = cloud.data();
    let Cloud { dir, server } = cloud;
    drop(server);
    // A free port, then nobody listening on it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let audit = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "glance",
            "audit",
            "--os-image-url",
            &url,
            "--format",
            "json",
        ])
        .env_remove("OS_TOKEN")
        .env_remove("OS_CLOUD")
        .env_remove("OS_AUTH_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first attempt is refused; the server is up before the retries
    // (0.5, 1 and 2 s apart) run out.
    std::thread::sleep(std::time::Duration::from_millis(700));
    let _server = FixedServer(
        std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args([
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let output = audit.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = json(&output);
    assert_eq!(report["summary"]["images"], 1);
    assert_eq!(report["summary"]["unsigned"], 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("retrying"), "{stderr}");
    drop(dir);
}
