//! The compatibility suite: the real python-glanceclient (`glance`) and
//! python-openstackclient (`openstack`) against one real `portcullis serve`
//! that .ci/run starts for the whole suite (.ci/compat.sh). Each scenario
//! runs the real commands and asserts their output and the server's state.
//!
//! Variables (set by .ci/run, or by `source .ci/compat.sh && compat_install
//! && compat_start`): `PORTCULLIS_SERVE_URL`, `PORTCULLIS_SERVE_DATA_DIR`,
//! `PORTCULLIS_CLIENTS_VENV`. Without them a scenario fails saying so,
//! unless `PORTCULLIS_SKIP_SERVER_TESTS=1` (then it prints that it skipped).
//!
//! Scenarios are independent (their own `HOME`, so glanceclient's schema
//! cache starts cold; their own image names), since tests run in parallel
//! against the one server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The server and clients of the suite, plus a fresh `HOME` for this scenario.
struct Clients {
    venv: PathBuf,
    url: String,
    home: tempfile::TempDir,
}

const HOW_TO_START: &str = "the compatibility suite needs a running portcullis serve and the OpenStack clients: \
     run `source .ci/compat.sh && compat_install && compat_start` (it exports PORTCULLIS_SERVE_URL, \
     PORTCULLIS_SERVE_DATA_DIR and PORTCULLIS_CLIENTS_VENV), or .ci/run; \
     set PORTCULLIS_SKIP_SERVER_TESTS=1 to skip these tests";

/// The suite's environment, or `None` when the developer opted out.
fn clients() -> Option<Clients> {
    let url = std::env::var("PORTCULLIS_SERVE_URL").ok();
    let venv = std::env::var_os("PORTCULLIS_CLIENTS_VENV").map(PathBuf::from);
    let (Some(url), Some(venv)) = (url, venv) else {
        if std::env::var("PORTCULLIS_SKIP_SERVER_TESTS").as_deref() == Ok("1") {
            eprintln!("skipped: PORTCULLIS_SKIP_SERVER_TESTS=1 ({HOW_TO_START})");
            return None;
        }
        panic!("{HOW_TO_START}");
    };
    for client in ["glance", "openstack"] {
        assert!(
            venv.join("bin").join(client).is_file(),
            "{client} is not in {}: {HOW_TO_START}",
            venv.display()
        );
    }
    Some(Clients {
        venv,
        url,
        home: tempfile::tempdir().expect("a HOME for the clients"),
    })
}

/// What a client command did.
struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            status: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

impl Clients {
    fn command(&self, client: &str) -> Command {
        let mut command = Command::new(self.venv.join("bin").join(client));
        // Only what the scenario says: no cloud from the developer's environment.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("OS_") {
                command.env_remove(key);
            }
        }
        command
            .env("HOME", self.home.path())
            .env("PYTHONWARNINGS", "ignore")
            .stdin(std::process::Stdio::null());
        command
    }

    /// `glance --os-image-url URL --os-auth-token T <args>` (no Keystone).
    fn glance(&self, args: &[&str]) -> Run {
        let output = self
            .command("glance")
            .args([
                "--os-image-url",
                &self.url,
                "--os-auth-token",
                "compat-token",
            ])
            .args(args)
            .output()
            .expect("glance runs");
        Run::from(output)
    }

    /// `openstack --os-auth-type none --os-endpoint URL <args>`.
    fn openstack(&self, args: &[&str]) -> Run {
        let output = self
            .command("openstack")
            .args(["--os-auth-type", "none", "--os-endpoint", &self.url])
            .args(args)
            .output()
            .expect("openstack runs");
        Run::from(output)
    }

    fn cached_schema(&self, name: &str) -> serde_json::Value {
        let path = self
            .home
            .path()
            .join(".glanceclient")
            .join(format!("{name}_schema.json"));
        read_json(&path)
    }

    /// A schema document as the server serves it.
    fn served(&self, path: &str) -> serde_json::Value {
        let addr = self.url.trim_start_matches("http://");
        let response = super::serve::http(addr, &format!("GET {path} HTTP/1.1"));
        let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        serde_json::from_str(body).unwrap_or_else(|err| panic!("{path}: {err}: {body}"))
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// glanceclient on a cold cache: `GET /versions`, then the image schema and
/// both metadefs schemas, written to ~/.glanceclient exactly as served
/// (`image-create` needs the image schema before it sends anything).
#[test]
fn glanceclient_caches_our_schemas_on_a_cold_cache() {
    let Some(clients) = clients() else { return };
    let run = clients.glance(&[
        "image-create",
        "--name",
        "compat-cold",
        "--disk-format",
        "qcow3",
    ]);
    assert_eq!(run.status, Some(1), "{}", run.describe());
    for (cache, path) in [
        ("image", "/v2/schemas/image"),
        ("namespace", "/v2/schemas/metadefs/namespace"),
        ("resource_type", "/v2/schemas/metadefs/resource_type"),
    ] {
        assert_eq!(
            clients.cached_schema(cache),
            clients.served(path),
            "{cache}"
        );
    }
}

/// glanceclient validates a new image against our schema before sending it:
/// a disk format outside the enum and a kernel_id that is not a UUID are
/// refused with the schema's words, and no `POST /v2/images` is made.
#[test]
fn glanceclient_refuses_what_our_schema_refuses_without_posting() {
    let Some(clients) = clients() else { return };
    let cases: [(&[&str], &str); 2] = [
        (
            &["--disk-format", "qcow3", "--container-format", "bare"],
            "Unable to set 'disk_format' to 'qcow3'",
        ),
        (
            &[
                "--disk-format",
                "raw",
                "--container-format",
                "bare",
                "--property",
                "kernel_id=not-a-uuid",
            ],
            "Unable to set 'kernel_id' to 'not-a-uuid'",
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["--debug", "image-create", "--name", "compat-refused"];
        full.extend_from_slice(args);
        let run = clients.glance(&full);
        assert_eq!(run.status, Some(1), "{}", run.describe());
        assert!(
            run.stderr.contains(expected) || run.stdout.contains(expected),
            "{}",
            run.describe()
        );
        assert!(
            run.stderr.contains("GET /v2/schemas/image")
                || run.stderr.contains("/v2/schemas/image"),
            "{}",
            run.describe()
        );
        assert!(
            !run.stderr.contains("-X POST"),
            "nothing is sent: {}",
            run.describe()
        );
    }
}

/// openstacksdk discovers the image API from `GET /` (300) and talks to the
/// `CURRENT` version's href, `<url>/v2/`.
#[test]
fn openstacksdk_discovers_v2_from_the_root() {
    let Some(clients) = clients() else { return };
    let run = clients.openstack(&["--debug", "image", "list", "-f", "json"]);
    let discovery = "\"GET / HTTP/1.1\" 300";
    assert!(run.stderr.contains(discovery), "{}", run.describe());
    let next = format!("GET {}/v2/images", clients.url);
    assert!(
        run.stderr.contains(&next),
        "the SDK follows the CURRENT href: {}",
        run.describe()
    );
}

// ---- image scenarios ---------------------------------------------------------

/// A name no other scenario (or earlier run against the same server) uses.
fn unique(scenario: &str) -> String {
    format!(
        "compat-{scenario}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// `size` bytes of random data in a file of its own.
fn random_file(dir: &Path, name: &str, size: usize) -> PathBuf {
    let path = dir.join(name);
    let mut data = vec![0u8; size];
    getrandom::fill(&mut data).expect("random bytes");
    std::fs::write(&path, &data).expect("written");
    path
}

fn md5sum(path: &Path) -> String {
    let output = Command::new("md5sum")
        .arg(path)
        .output()
        .expect("md5sum runs");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A row `| key | value |` of glanceclient's table output.
fn table_value(output: &str, key: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        (cells.len() >= 3 && cells[1] == key).then(|| cells[2].to_owned())
    })
}

impl Clients {
    /// `glance image-create --name NAME --disk-format FORMAT --container-format bare EXTRA…`.
    fn glance_create(&self, name: &str, disk_format: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            "image-create",
            "--name",
            name,
            "--disk-format",
            disk_format,
            "--container-format",
            "bare",
        ];
        args.extend_from_slice(extra);
        self.glance(&args)
    }

    /// The image called `name` is `queued` and nothing of it is stored
    /// (what every refused upload must leave).
    fn assert_queued_with_nothing_stored(&self, name: &str) {
        let record = self.image_named(name);
        assert_eq!(record["status"], "queued", "{record}");
        assert_eq!(record["checksum"], serde_json::Value::Null, "{record}");
        let id = record["id"].as_str().expect("an id");
        assert_eq!(self.stored(id), Vec::<PathBuf>::new());
    }

    /// Image `id` is gone: no record, no data.
    fn assert_gone(&self, id: &str) {
        assert!(self.image(id).is_none(), "image {id} still exists");
        assert_eq!(self.stored(id), Vec::<PathBuf>::new());
    }

    fn glance_with_stdin(&self, args: &[&str], stdin: &Path) -> Run {
        let file = std::fs::File::open(stdin).expect("stdin file");
        let output = self
            .command("glance")
            .args([
                "--os-image-url",
                &self.url,
                "--os-auth-token",
                "compat-token",
            ])
            .args(args)
            .stdin(file)
            .output()
            .expect("glance runs");
        Run::from(output)
    }

    /// `GET <path>` on the server: (status code, body).
    fn api_get(&self, path: &str) -> (u16, String) {
        let addr = self.url.trim_start_matches("http://");
        let response = super::serve::http(addr, &format!("GET {path} HTTP/1.1"));
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        (status, body.to_owned())
    }

    /// The image record as the server has it, or `None` (404).
    fn image(&self, id: &str) -> Option<serde_json::Value> {
        let (status, body) = self.api_get(&format!("/v2/images/{id}"));
        match status {
            200 => Some(serde_json::from_str(&body).expect("image JSON")),
            404 => None,
            other => panic!("GET /v2/images/{id}: {other} {body}"),
        }
    }

    /// The one image called `name`.
    fn image_named(&self, name: &str) -> serde_json::Value {
        let (status, body) = self.api_get(&format!("/v2/images?name={name}"));
        assert_eq!(status, 200, "{body}");
        let page: serde_json::Value = serde_json::from_str(&body).expect("page JSON");
        let images = page["images"].as_array().expect("images");
        assert_eq!(images.len(), 1, "one image called {name}: {body}");
        images[0].clone()
    }

    /// Whether the server's data directory holds anything for image `id`
    /// (staged or committed data).
    fn stored(&self, id: &str) -> Vec<PathBuf> {
        let data = std::env::var_os("PORTCULLIS_SERVE_DATA_DIR")
            .map(PathBuf::from)
            .expect(HOW_TO_START);
        let mut found = Vec::new();
        for dir in ["staging", "images"] {
            let Ok(entries) = std::fs::read_dir(data.join(dir)) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.contains(id) && !name.ends_with(".lock") {
                    found.push(entry.path());
                }
            }
        }
        found
    }
}

/// glanceclient's whole life cycle of an image with data: create with a
/// property and `--file` (chunked, `x-openstack-image-size`), show,
/// download and compare bytes, delete.
#[test]
fn glanceclient_creates_uploads_downloads_and_deletes() {
    let Some(clients) = clients() else { return };
    let work = tempfile::tempdir().unwrap();
    let file = random_file(work.path(), "data.raw", 3_000_000);
    let name = unique("g-life");
    let created = clients.glance_create(
        &name,
        "raw",
        &[
            "--property",
            "os_distro=compat",
            "--file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(created.status, Some(0), "{}", created.describe());
    assert_eq!(
        table_value(&created.stdout, "status").as_deref(),
        Some("active"),
        "{}",
        created.describe()
    );
    assert_eq!(
        table_value(&created.stdout, "checksum"),
        Some(md5sum(&file))
    );
    assert_eq!(
        table_value(&created.stdout, "os_distro").as_deref(),
        Some("compat")
    );
    let id = table_value(&created.stdout, "id").expect("an id");
    let record = clients.image(&id).expect("the image exists");
    assert_eq!(
        (record["status"].as_str(), record["size"].as_u64()),
        (Some("active"), Some(3_000_000))
    );

    let shown = clients.glance(&["image-show", &id]);
    assert_eq!(shown.status, Some(0), "{}", shown.describe());
    assert_eq!(table_value(&shown.stdout, "name"), Some(name.clone()));

    let out = work.path().join("out.raw");
    let downloaded = clients.glance(&["image-download", "--file", out.to_str().unwrap(), &id]);
    assert_eq!(downloaded.status, Some(0), "{}", downloaded.describe());
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&file).unwrap());

    let deleted = clients.glance(&["image-delete", &id]);
    assert_eq!(deleted.status, Some(0), "{}", deleted.describe());
    clients.assert_gone(&id);
}

/// Without `--file`, glanceclient uploads standard input when it is not a
/// terminal (glance-wire.md §5, the stdin trap): here a real file.
#[test]
fn glanceclient_uploads_from_stdin() {
    let Some(clients) = clients() else { return };
    let work = tempfile::tempdir().unwrap();
    let file = random_file(work.path(), "stdin.raw", 1_500_000);
    let name = unique("g-stdin");
    let created = clients.glance_with_stdin(
        &[
            "image-create",
            "--name",
            &name,
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
        ],
        &file,
    );
    assert_eq!(created.status, Some(0), "{}", created.describe());
    let record = clients.image_named(&name);
    assert_eq!(record["status"], "active");
    assert_eq!(record["size"].as_u64(), Some(1_500_000));
    assert_eq!(record["checksum"].as_str(), Some(md5sum(&file).as_str()));
}

/// Listing with filters and paging: glanceclient follows `next` one image
/// per page; openstackclient lists with a property filter and a tag.
#[test]
fn lists_filter_and_page_like_glance() {
    let Some(clients) = clients() else { return };
    let group = unique("group");
    let mut ids = Vec::new();
    let property = format!("compat_group={group}");
    for index in 0..3 {
        let name = format!("{group}-{index}");
        let mut extra = vec!["--property", property.as_str()];
        // The first two are tagged.
        if index < 2 {
            extra.extend(["--tag", "listed"]);
        }
        let created = clients.glance_create(&name, "raw", &extra);
        assert_eq!(created.status, Some(0), "{}", created.describe());
        ids.push(table_value(&created.stdout, "id").expect("an id"));
    }
    let filter = format!("compat_group={group}");
    let paged = clients.glance(&[
        "image-list",
        "--page-size",
        "1",
        "--property-filter",
        &filter,
    ]);
    assert_eq!(paged.status, Some(0), "{}", paged.describe());
    for id in &ids {
        assert!(
            paged.stdout.contains(id.as_str()),
            "{id} listed: {}",
            paged.describe()
        );
    }
    let tagged = clients.glance(&[
        "image-list",
        "--property-filter",
        &filter,
        "--tag",
        "listed",
    ]);
    assert_eq!(tagged.status, Some(0), "{}", tagged.describe());
    assert!(tagged.stdout.contains(ids[0].as_str()) && tagged.stdout.contains(ids[1].as_str()));
    assert!(
        !tagged.stdout.contains(ids[2].as_str()),
        "{}",
        tagged.describe()
    );

    let listed = clients.openstack(&["image", "list", "--property", &filter, "-f", "json"]);
    assert_eq!(listed.status, Some(0), "{}", listed.describe());
    let rows: serde_json::Value = serde_json::from_str(&listed.stdout).expect("JSON list");
    let mut found: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["ID"].as_str().unwrap().to_owned())
        .collect();
    found.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(found, expected);
}

/// Updating and removing properties and tags with both clients (their
/// different JSON-patch styles, glance-wire.md §7).
#[test]
fn properties_and_tags_change_with_both_clients() {
    let Some(clients) = clients() else { return };
    let name = unique("update");
    let created = clients.glance_create(&name, "raw", &[]);
    assert_eq!(created.status, Some(0), "{}", created.describe());
    let id = table_value(&created.stdout, "id").expect("an id");

    let updated = clients.glance(&[
        "image-update",
        "--property",
        "foo=bar",
        "--min-disk",
        "1",
        &id,
    ]);
    assert_eq!(updated.status, Some(0), "{}", updated.describe());
    let record = clients.image(&id).unwrap();
    assert_eq!(
        (record["foo"].as_str(), record["min_disk"].as_u64()),
        (Some("bar"), Some(1))
    );
    let removed = clients.glance(&["image-update", "--remove-property", "foo", &id]);
    assert_eq!(removed.status, Some(0), "{}", removed.describe());
    assert!(clients.image(&id).unwrap().get("foo").is_none());

    let set = clients.openstack(&[
        "image",
        "set",
        "--property",
        "osc=yes",
        "--tag",
        "osc-tag",
        "--min-disk",
        "2",
        &id,
    ]);
    assert_eq!(set.status, Some(0), "{}", set.describe());
    let record = clients.image(&id).unwrap();
    assert_eq!(
        (record["osc"].as_str(), record["min_disk"].as_u64()),
        (Some("yes"), Some(2))
    );
    assert_eq!(record["tags"], serde_json::json!(["osc-tag"]));
    let unset = clients.openstack(&["image", "unset", "--property", "osc", &id]);
    assert_eq!(unset.status, Some(0), "{}", unset.describe());
    assert!(clients.image(&id).unwrap().get("osc").is_none());

    let tagged = clients.glance(&["image-tag-update", &id, "glance-tag"]);
    assert_eq!(tagged.status, Some(0), "{}", tagged.describe());
    let untagged = clients.glance(&["image-tag-delete", &id, "osc-tag"]);
    assert_eq!(untagged.status, Some(0), "{}", untagged.describe());
    assert_eq!(
        clients.image(&id).unwrap()["tags"],
        serde_json::json!(["glance-tag"])
    );
}

/// Deactivate and reactivate an active image with glanceclient.
#[test]
fn deactivate_and_reactivate() {
    let Some(clients) = clients() else { return };
    let work = tempfile::tempdir().unwrap();
    let file = random_file(work.path(), "d.raw", 100_000);
    let name = unique("deact");
    let created = clients.glance_create(&name, "raw", &["--file", file.to_str().unwrap()]);
    assert_eq!(created.status, Some(0), "{}", created.describe());
    let id = table_value(&created.stdout, "id").expect("an id");
    let deactivated = clients.glance(&["image-deactivate", &id]);
    assert_eq!(deactivated.status, Some(0), "{}", deactivated.describe());
    assert_eq!(clients.image(&id).unwrap()["status"], "deactivated");
    let reactivated = clients.glance(&["image-reactivate", &id]);
    assert_eq!(reactivated.status, Some(0), "{}", reactivated.describe());
    assert_eq!(clients.image(&id).unwrap()["status"], "active");
}

/// openstackclient: `image create --file` (a Content-Length upload), `image
/// save`, `image delete`.
#[test]
fn openstackclient_creates_saves_and_deletes() {
    let Some(clients) = clients() else { return };
    let work = tempfile::tempdir().unwrap();
    let file = random_file(work.path(), "o.raw", 2_000_000);
    let name = unique("osc");
    let created = clients.openstack(&[
        "image",
        "create",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--file",
        file.to_str().unwrap(),
        &name,
        "-f",
        "json",
    ]);
    assert_eq!(created.status, Some(0), "{}", created.describe());
    let shown: serde_json::Value = serde_json::from_str(&created.stdout).expect("JSON image");
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["checksum"].as_str(), Some(md5sum(&file).as_str()));
    let id = shown["id"].as_str().unwrap().to_owned();
    let out = work.path().join("saved.raw");
    let saved = clients.openstack(&["image", "save", "--file", out.to_str().unwrap(), &name]);
    assert_eq!(saved.status, Some(0), "{}", saved.describe());
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&file).unwrap());
    let deleted = clients.openstack(&["image", "delete", &name]);
    assert_eq!(deleted.status, Some(0), "{}", deleted.describe());
    clients.assert_gone(&id);
}

/// A signed image made by `portcullis sign` becomes active; the same
/// image with one byte changed is refused with the reason in glanceclient's
/// output, and stays `queued` with nothing stored.
#[test]
fn a_signed_image_is_verified_and_a_tampered_copy_refused() {
    let Some(clients) = clients() else { return };
    let work = tempfile::tempdir().unwrap();
    let file = random_file(work.path(), "signed.raw", 1_048_576);
    let key = super::support::testdata().join("keys/rsa2048.pem");
    let signed = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("sign")
        .arg(&file)
        .arg("--key")
        .arg(&key)
        .args([
            "--cert-uuid",
            &super::support::cert_id("cert-rsa2048"),
            "--format",
            "glance-args",
        ])
        .output()
        .expect("portcullis sign runs");
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let properties = String::from_utf8(signed.stdout).unwrap();
    let properties: Vec<&str> = properties.split_whitespace().collect();
    assert_eq!(
        properties.len(),
        8,
        "four --property k=v pairs: {properties:?}"
    );

    let create = |name: &str, data: &Path| {
        let mut extra = properties.clone();
        extra.extend(["--file", data.to_str().expect("a UTF-8 path")]);
        clients.glance_create(name, "raw", &extra)
    };
    let good = unique("signed");
    let accepted = create(&good, &file);
    assert_eq!(accepted.status, Some(0), "{}", accepted.describe());
    assert_eq!(
        table_value(&accepted.stdout, "status").as_deref(),
        Some("active")
    );

    let mut tampered = std::fs::read(&file).unwrap();
    tampered[500_000] ^= 0x01;
    let tampered_file = work.path().join("tampered.raw");
    std::fs::write(&tampered_file, &tampered).unwrap();
    let bad = unique("tampered");
    let refused = create(&bad, &tampered_file);
    assert_eq!(refused.status, Some(1), "{}", refused.describe());
    assert!(
        refused.stderr.contains("HTTP 400")
            && refused.stderr.contains("Signature verification failed"),
        "{}",
        refused.describe()
    );
    clients.assert_queued_with_nothing_stored(&bad);
}

/// Data over the server's `image_size_cap` (4 MiB here) is a 413; data a
/// `bare`/`qcow2` image refuses (a backing file) is a 415; both leave the
/// image `queued` with nothing stored.
#[test]
fn size_cap_and_unsafe_images_are_refused_with_glances_statuses() {
    let Some(clients) = clients() else { return };
    let cap: usize = std::env::var("PORTCULLIS_SERVE_SIZE_CAP")
        .ok()
        .and_then(|cap| cap.parse().ok())
        .expect(HOW_TO_START);
    let work = tempfile::tempdir().unwrap();
    let big = random_file(work.path(), "big.raw", cap + 1_048_576);
    let name = unique("cap");
    let refused = clients.glance_create(&name, "raw", &["--file", big.to_str().unwrap()]);
    assert_eq!(refused.status, Some(1), "{}", refused.describe());
    assert!(refused.stderr.contains("413"), "{}", refused.describe());
    clients.assert_queued_with_nothing_stored(&name);

    let backing = super::support::testdata().join("images/qcow2-backing-abs.qcow2");
    let name = unique("backing");
    let refused = clients.glance_create(&name, "qcow2", &["--file", backing.to_str().unwrap()]);
    assert_eq!(refused.status, Some(1), "{}", refused.describe());
    assert!(refused.stderr.contains("415"), "{}", refused.describe());
    clients.assert_queued_with_nothing_stored(&name);
}

// ---- image members -------------------------------------------------------------

/// A `portcullis serve` of this scenario's own in `tokens` mode, so the
/// clients act as two projects (the suite's server is noauth: every caller
/// is the same administrator). Killed when dropped.
struct TwoProjects {
    server: super::serve::Server,
    _dir: tempfile::TempDir,
}

/// The owner's token (project `compat-owner`) and the member's (`compat-member`).
const OWNER_TOKEN: &str = "compat-owner-token";
const MEMBER_TOKEN: &str = "compat-member-token";

impl TwoProjects {
    fn start() -> TwoProjects {
        let dir = tempfile::tempdir().expect("a directory for the server");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data directory");
        let tokens = dir.path().join("tokens.toml");
        std::fs::write(
            &tokens,
            format!(
                "[[tokens]]\ntoken = \"{OWNER_TOKEN}\"\nproject = \"compat-owner\"\nroles = [\"member\", \"reader\"]\n\
                 [[tokens]]\ntoken = \"{MEMBER_TOKEN}\"\nproject = \"compat-member\"\nroles = [\"member\", \"reader\"]\n"
            ),
        )
        .expect("token file");
        std::fs::write(
            data.join("portcullis.toml"),
            format!(
                "[server]\nauth = \"tokens\"\ntoken_file = \"{}\"\n",
                tokens.display()
            ),
        )
        .expect("config");
        let server = super::serve::Server::start(&data, &[]);
        TwoProjects { server, _dir: dir }
    }

    /// `glance --os-image-url URL --os-auth-token TOKEN <args>`.
    fn glance(&self, clients: &Clients, token: &str, args: &[&str]) -> Run {
        let output = clients
            .command("glance")
            .args(["--os-image-url", &self.server.url, "--os-auth-token", token])
            .args(args)
            .output()
            .expect("glance runs");
        Run::from(output)
    }

    /// `openstack --os-auth-type admin_token --os-token TOKEN --os-endpoint URL/v2 <args>`
    /// (with a token, the SDK takes the endpoint as the versioned one).
    fn openstack(&self, clients: &Clients, token: &str, args: &[&str]) -> Run {
        let endpoint = format!("{}/v2", self.server.url);
        let output = clients
            .command("openstack")
            .args([
                "--os-auth-type",
                "admin_token",
                "--os-token",
                token,
                "--os-endpoint",
                &endpoint,
            ])
            .args(args)
            .output()
            .expect("openstack runs");
        Run::from(output)
    }
}

/// The `| image | member | status |` rows of a member table.
fn member_rows(output: &str) -> Vec<(String, String)> {
    output
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells.len() == 5 && cells[1].len() == 36 && cells[1] != "Image ID")
                .then(|| (cells[2].to_owned(), cells[3].to_owned()))
        })
        .collect()
}

/// Sharing with the real clients, as two projects: the owner shares a
/// `shared` image (`glance member-create`), the member sees it pending
/// (`openstack image list --member-status pending`), not in its default
/// listing, accepts (`glance member-update`), then lists it
/// (`openstack image list --shared`); `glance member-list` and
/// `openstack image member list` show the membership; the owner cannot
/// answer for the member, the member cannot share further; removing the
/// member (`glance member-delete`) hides the image again. A private image
/// has no members (403 in the client's output).
#[test]
fn two_projects_share_an_image_with_both_clients() {
    let Some(clients) = clients() else { return };
    let projects = TwoProjects::start();
    let owner = |args: &[&str]| projects.glance(&clients, OWNER_TOKEN, args);
    let member = |args: &[&str]| projects.glance(&clients, MEMBER_TOKEN, args);
    let member_osc = |args: &[&str]| projects.openstack(&clients, MEMBER_TOKEN, args);
    let listed = |run: &Run| -> Vec<String> {
        assert_eq!(run.status, Some(0), "{}", run.describe());
        let rows: Vec<serde_json::Value> = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|err| panic!("{err}: {}", run.describe()));
        rows.iter()
            .map(|row| row["ID"].as_str().expect("ID").to_owned())
            .collect()
    };

    let name = unique("shared");
    let created = owner(&[
        "image-create",
        "--name",
        &name,
        "--visibility",
        "shared",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
    ]);
    assert_eq!(created.status, Some(0), "{}", created.describe());
    let id = table_value(&created.stdout, "id").expect("an id");
    assert_eq!(
        table_value(&created.stdout, "owner").as_deref(),
        Some("compat-owner")
    );

    // Not shared yet: the member cannot see it.
    let hidden = member(&["image-show", &id]);
    assert_eq!(hidden.status, Some(1), "{}", hidden.describe());
    assert!(hidden.stderr.contains("404"), "{}", hidden.describe());

    let added = owner(&["member-create", &id, "compat-member"]);
    assert_eq!(added.status, Some(0), "{}", added.describe());
    assert_eq!(
        member_rows(&added.stdout),
        [("compat-member".to_owned(), "pending".to_owned())]
    );

    // Pending: visible by id and with --member-status pending, not by default.
    assert_eq!(member(&["image-show", &id]).status, Some(0));
    assert!(!listed(&member_osc(&["image", "list", "-f", "json"])).contains(&id));
    assert_eq!(
        listed(&member_osc(&[
            "image",
            "list",
            "--member-status",
            "pending",
            "-f",
            "json"
        ])),
        std::slice::from_ref(&id)
    );

    // The owner cannot answer for the member; the member cannot share further.
    let by_owner = owner(&["member-update", &id, "compat-member", "accepted"]);
    assert_eq!(by_owner.status, Some(1), "{}", by_owner.describe());
    assert!(
        by_owner.stderr.contains("403")
            && by_owner.stderr.contains("Not allowed to update members"),
        "{}",
        by_owner.describe()
    );
    let by_member = member(&["member-create", &id, "compat-third"]);
    assert_eq!(by_member.status, Some(1), "{}", by_member.describe());
    assert!(by_member.stderr.contains("403"), "{}", by_member.describe());

    let accepted = member(&["member-update", &id, "compat-member", "accepted"]);
    assert_eq!(accepted.status, Some(0), "{}", accepted.describe());
    assert_eq!(
        member_rows(&accepted.stdout),
        [("compat-member".to_owned(), "accepted".to_owned())]
    );
    assert!(listed(&member_osc(&["image", "list", "-f", "json"])).contains(&id));
    assert_eq!(
        listed(&member_osc(&["image", "list", "--shared", "-f", "json"])),
        std::slice::from_ref(&id)
    );
    let members = owner(&["member-list", "--image-id", &id]);
    assert_eq!(members.status, Some(0), "{}", members.describe());
    assert_eq!(
        member_rows(&members.stdout),
        [("compat-member".to_owned(), "accepted".to_owned())]
    );
    let osc_members = projects.openstack(&clients, OWNER_TOKEN, &["image", "member", "list", &id]);
    assert_eq!(osc_members.status, Some(0), "{}", osc_members.describe());
    assert_eq!(
        member_rows(&osc_members.stdout),
        [("compat-member".to_owned(), "accepted".to_owned())]
    );

    // The owner ends the sharing: the member no longer sees the image.
    let removed = owner(&["member-delete", &id, "compat-member"]);
    assert_eq!(removed.status, Some(0), "{}", removed.describe());
    assert_eq!(member(&["image-show", &id]).status, Some(1));
    assert!(listed(&member_osc(&["image", "list", "--shared", "-f", "json"])).is_empty());

    // A private image has no members.
    let private = owner(&[
        "image-create",
        "--name",
        &unique("private"),
        "--visibility",
        "private",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
    ]);
    assert_eq!(private.status, Some(0), "{}", private.describe());
    let private_id = table_value(&private.stdout, "id").expect("an id");
    let refused = owner(&["member-create", &private_id, "compat-member"]);
    assert_eq!(refused.status, Some(1), "{}", refused.describe());
    assert!(
        refused.stderr.contains("403")
            && refused.stderr.contains("Only shared images have members."),
        "{}",
        refused.describe()
    );
}
