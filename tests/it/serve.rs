//! The real `portcullis serve` process: start on a free port, answer,
//! stop on SIGTERM with exit 0; refuse to start (exit 2) on bad settings.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::ingest::store_files_in;
use super::scenario::{Action, Driver, Outcome, run_scenario};

/// A running `portcullis serve`, killed when dropped whatever happened.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    /// `127.0.0.1:<port>`.
    pub(crate) addr: String,
}

impl Server {
    /// Starts `portcullis serve --bind 127.0.0.1:0 --data-dir DATA` plus
    /// `args`, and waits for its `listening on` line.
    pub(crate) fn start(data_dir: &Path, args: &[&str]) -> Server {
        Server::start_with(data_dir, args, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub(crate) fn start_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(data_dir, args, env, Stdio::null())
    }

    /// [`Server::start_with`] with the server's stderr (its log) in `log`.
    pub(crate) fn start_logging(
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Server {
        let file = std::fs::File::create(log).expect("create the log file");
        Server::spawn(data_dir, args, env, Stdio::from(file))
    }

    fn spawn(data_dir: &Path, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env_remove("PORTCULLIS_DATA_DIR")
            .env_remove("PORTCULLIS_NOW")
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("portcullis serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("portcullis serve did not start: first stdout line {line:?}")
            })
            .to_owned();
        let addr = url.trim_start_matches("http://").to_owned();
        Server { child, url, addr }
    }

    /// Sends SIGKILL and reaps the process.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Sends SIGTERM and waits (at most `limit`) for the exit status.
    pub(crate) fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "portcullis serve did not stop within {limit:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A plain HTTP/1.1 exchange (no client library needed for a smoke test).
pub(crate) fn http(addr: &str, request_head: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .write_all(
            format!("{request_head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("receive");
    response
}

#[test]
fn serve_starts_answers_and_stops_on_sigterm_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let versions = http(&server.addr, "GET /versions HTTP/1.1");
    assert!(versions.starts_with("HTTP/1.1 200 OK"), "{versions}");
    assert!(
        versions.contains(&format!("\"href\": \"{}/v2/\"", server.url)),
        "{versions}"
    );
    assert!(
        versions
            .to_ascii_lowercase()
            .contains("x-openstack-request-id: req-")
    );
    // The embedded default was opened: the database exists.
    assert!(dir.path().join("portcullis.db").exists());
    let status = server.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

/// `portcullis serve --bind BIND --data-dir DATA`, run to its end.
fn serve_output(data_dir: &Path, bind: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--bind", bind, "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("portcullis serve runs")
}

#[test]
fn serve_refuses_to_start_on_bad_settings_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[server]\nauth = \"tokens\"\n",
    )
    .unwrap();
    let output = serve_output(dir.path(), "127.0.0.1:0");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("token_file"), "{stderr}");
    assert!(output.stdout.is_empty());

    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[server]\nauth = \"tokens\"\ntoken_file = \"missing.toml\"\n",
    )
    .unwrap();
    let output = serve_output(dir.path(), "127.0.0.1:0");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read token file") && stderr.contains("missing.toml"),
        "{stderr}"
    );
}

#[test]
fn a_port_in_use_is_exit_2_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = serve_output(dir.path(), &addr);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

/// A request with a body (`Content-Length` set from it).
pub(crate) fn http_with_body(
    addr: &str,
    request_line: &str,
    content_type: &str,
    body: &str,
) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let request = format!(
        "{request_line}\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("receive");
    response
}

pub(crate) fn json_body(response: &str) -> serde_json::Value {
    let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    serde_json::from_str(body).unwrap_or_else(|err| panic!("{err}: {response}"))
}

/// Sends glanceclient's kind of `PUT` (chunked, with the size header) with
/// one 64 KiB chunk and then nothing, and waits until image `id` shows
/// `status`; returns the open connection.
fn start_chunked_put(server: &Server, path: &str, id: &str, status: &str) -> TcpStream {
    let mut upload = TcpStream::connect(&server.addr).expect("connect");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nx-openstack-image-size: 10485760\r\n\r\n",
        server.addr
    );
    upload.write_all(head.as_bytes()).expect("head sent");
    upload
        .write_all(format!("{:x}\r\n", 65536).as_bytes())
        .expect("chunk size sent");
    upload.write_all(&vec![7u8; 65536]).expect("chunk sent");
    upload.write_all(b"\r\n").expect("chunk end sent");
    upload.flush().expect("flushed");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = http(&server.addr, &format!("GET /v2/images/{id} HTTP/1.1"));
        if json_body(&shown)["status"] == status {
            return upload;
        }
        assert!(
            Instant::now() < deadline,
            "the transfer never started: {shown}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Killed with SIGKILL in the middle of a stage (`PUT …/stage`), the server
/// leaves the image `uploading` with a partial staging file; the next start
/// returns it to `queued` with nothing left. Killed after a finished stage,
/// the staged data survives the restart and the import makes the image active.
#[test]
fn a_server_killed_mid_stage_or_before_the_import_recovers_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let create = |server: &Server, name: &str| {
        let created = http_with_body(
            &server.addr,
            "POST /v2/images HTTP/1.1",
            "application/json",
            &format!(r#"{{"name": "{name}", "disk_format": "raw", "container_format": "bare"}}"#),
        );
        assert!(created.starts_with("HTTP/1.1 201"), "{created}");
        json_body(&created)["id"].as_str().unwrap().to_owned()
    };
    let dead = create(&server, "killed-stage");
    let done = create(&server, "staged-before-kill");
    let staged = http_with_body(
        &server.addr,
        &format!("PUT /v2/images/{done}/stage HTTP/1.1"),
        "application/octet-stream",
        "staged bytes",
    );
    assert!(staged.starts_with("HTTP/1.1 204"), "{staged}");
    let stage = start_chunked_put(
        &server,
        &format!("/v2/images/{dead}/stage"),
        &dead,
        "uploading",
    );
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    drop(stage);
    assert_eq!(
        store_files_in(dir.path()).len(),
        2,
        "a partial staging file and a finished stage object: {:?}",
        store_files_in(dir.path())
    );

    let server = Server::start(dir.path(), &[]);
    let status = |id: &str| {
        json_body(&http(
            &server.addr,
            &format!("GET /v2/images/{id} HTTP/1.1"),
        ))["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(status(&dead), "queued");
    assert_eq!(status(&done), "uploading");
    assert_eq!(
        store_files_in(dir.path()).len(),
        1,
        "only the finished stage"
    );
    let imported = http_with_body(
        &server.addr,
        &format!("POST /v2/images/{done}/import HTTP/1.1"),
        "application/json",
        r#"{"method": {"name": "glance-direct"}}"#,
    );
    assert!(imported.starts_with("HTTP/1.1 202"), "{imported}");
    let image = json_body(&http(
        &server.addr,
        &format!("GET /v2/images/{done} HTTP/1.1"),
    ));
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], 12);
    assert_eq!(store_files_in(dir.path()), vec![format!("images/{done}")]);
}

/// Killed with SIGKILL in the middle of an upload, the server leaves the
/// image `saving` with staged data; the next start recovers it: `queued`,
/// nothing left in the store.
#[test]
fn a_server_killed_mid_upload_recovers_the_image_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let created = http_with_body(
        &server.addr,
        "POST /v2/images HTTP/1.1",
        "application/json",
        r#"{"name": "killed", "disk_format": "raw", "container_format": "bare"}"#,
    );
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let id = json_body(&created)["id"].as_str().unwrap().to_owned();

    let upload = start_chunked_put(&server, &format!("/v2/images/{id}/file"), &id, "saving");
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    drop(upload);
    let staged = std::fs::read_dir(dir.path().join("staging"))
        .unwrap()
        .filter_map(Result::ok)
        .count();
    assert!(
        staged > 0,
        "the killed upload left staged data behind (recovery has work to do)"
    );

    let server = Server::start(dir.path(), &[]);
    let shown = http(&server.addr, &format!("GET /v2/images/{id} HTTP/1.1"));
    let image = json_body(&shown);
    assert_eq!(image["status"], "queued", "{shown}");
    assert_eq!(image["size"], serde_json::Value::Null);
    assert_eq!(store_files_in(dir.path()), Vec::<String>::new());
}

/// One HTTP/1.1 exchange with a body: (status, response body bytes).
pub(crate) fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(body).expect("send body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("receive");
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("an HTTP response");
    let status_line = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    (status, response[split + 4..].to_vec())
}

/// The scenario of tests/it/scenario.rs through a real `portcullis serve`
/// and plain HTTP, as glanceclient would send it.
struct HttpDriver {
    dir: tempfile::TempDir,
    server: Server,
}

impl HttpDriver {
    fn new() -> HttpDriver {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let certs = super::support::testdata().join("certs");
        let server = Server::start_with(
            &dir.path().join("data"),
            &["--cert-dir", certs.to_str().expect("a UTF-8 path")],
            &[("PORTCULLIS_NOW", super::support::FIXTURE_NOW)],
        );
        HttpDriver { dir, server }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        exchange(&self.server.addr, method, path, headers, body)
    }

    /// The scenario's error kinds, from Glance's statuses and messages.
    fn outcome(status: u16, body: &[u8]) -> Outcome {
        if (200..300).contains(&status) {
            return Outcome::Ok;
        }
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|error| error["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let kind = match status {
            403 if message.contains("is read-only.") => "read_only",
            400 if message.starts_with("Signature verification failed") => "bad_signature",
            _ => panic!("HTTP {status}: {message}"),
        };
        Outcome::Rejected(kind.to_owned())
    }
}

impl Driver for HttpDriver {
    fn run(&mut self, id: Option<&str>, action: &Action) -> (Outcome, Option<String>) {
        let image = || format!("/v2/images/{}", id.expect("the image exists"));
        let (status, body) = match action {
            Action::Create {
                name,
                disk_format,
                container_format,
                properties,
            } => {
                let mut document = serde_json::json!({
                    "name": name, "disk_format": disk_format, "container_format": container_format,
                });
                for (key, value) in properties {
                    document[key.as_str()] = serde_json::Value::String(value.clone());
                }
                let (status, body) = self.call(
                    "POST",
                    "/v2/images",
                    &[("Content-Type", "application/json")],
                    document.to_string().as_bytes(),
                );
                let created = (status == 201).then(|| {
                    let image: serde_json::Value =
                        serde_json::from_slice(&body).expect("an image document");
                    image["id"].as_str().expect("an id").to_owned()
                });
                return (HttpDriver::outcome(status, &body), created);
            }
            Action::Upload(data) => {
                let bytes = data.bytes();
                let size = bytes.len().to_string();
                self.call(
                    "PUT",
                    &format!("{}/file", image()),
                    &[
                        ("Content-Type", "application/octet-stream"),
                        ("x-openstack-image-size", &size),
                    ],
                    &bytes,
                )
            }
            Action::Update { name, set, remove } => {
                let mut patch = Vec::new();
                if let Some(name) = name {
                    patch
                        .push(serde_json::json!({"op": "replace", "path": "/name", "value": name}));
                }
                for (key, value) in set {
                    patch.push(
                        serde_json::json!({"op": "add", "path": format!("/{key}"), "value": value}),
                    );
                }
                for key in remove {
                    patch.push(serde_json::json!({"op": "remove", "path": format!("/{key}")}));
                }
                self.call(
                    "PATCH",
                    &image(),
                    &[(
                        "Content-Type",
                        "application/openstack-images-v2.1-json-patch",
                    )],
                    serde_json::Value::Array(patch).to_string().as_bytes(),
                )
            }
            Action::Download(expected) => {
                let (status, body) = self.call("GET", &format!("{}/file", image()), &[], b"");
                if status == 200 {
                    assert!(body == expected.bytes(), "the downloaded bytes differ");
                }
                (status, body)
            }
            Action::Deactivate => {
                self.call("POST", &format!("{}/actions/deactivate", image()), &[], b"")
            }
            Action::Reactivate => {
                self.call("POST", &format!("{}/actions/reactivate", image()), &[], b"")
            }
            Action::Delete => self.call("DELETE", &image(), &[], b""),
        };
        (HttpDriver::outcome(status, &body), None)
    }

    fn show(&mut self, id: &str) -> Option<serde_json::Value> {
        let (status, body) = self.call("GET", &format!("/v2/images/{id}"), &[], b"");
        match status {
            200 => Some(serde_json::from_slice(&body).expect("an image document")),
            404 => None,
            other => panic!("GET image {id}: {other}"),
        }
    }

    fn count(&mut self) -> usize {
        let (status, body) = self.call("GET", "/v2/images", &[], b"");
        assert_eq!(status, 200);
        let page: serde_json::Value = serde_json::from_slice(&body).expect("a page");
        page["images"].as_array().expect("images").len()
    }

    fn store_files(&mut self) -> Vec<String> {
        store_files_in(&self.dir.path().join("data"))
    }
}

/// The same scenario as `scenario::the_scenario_through_the_cli`, with the
/// same expected records after every step.
#[test]
fn the_scenario_through_http() {
    run_scenario(&mut HttpDriver::new());
}
