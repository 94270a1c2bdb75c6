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
