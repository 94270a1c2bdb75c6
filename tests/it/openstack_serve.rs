//! `portcullis serve --auth keystone --key-manager barbican` and `ingest
//! --key-manager barbican` against the real Keystone 30 and Barbican 23
//! that `.ci/openstack.sh up` started (issue 9): tokens validated as
//! keystonemiddleware does, the token's project as the owner, certificates
//! read with each caller's own token, and every failure closed (401, 503,
//! 400 with the image still `queued`).

// Helpers outside #[test] functions unwrap too: a failure is the test's.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::openstack::{
    Fixture, SignedImage, cli, exclusive, fixture, revoke, shared, shared_blocking, text, token_of,
};
use crate::serve::Server;

/// A `serve --auth keystone --key-manager barbican` as the fixture's
/// service user, with its log kept for the no-secret checks.
struct KeystoneServer {
    server: Server,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl KeystoneServer {
    fn start(env: &[(String, String)]) -> KeystoneServer {
        KeystoneServer::start_configured(env, "")
    }

    /// [`KeystoneServer::start`] with `config` as the data directory's portcullis.toml.
    fn start_configured(env: &[(String, String)], config: &str) -> KeystoneServer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/portcullis.toml"), config).unwrap();
        let log = dir.path().join("serve.log");
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let server = Server::start_logging(
            &dir.path().join("data"),
            &["--auth", "keystone", "--key-manager", "barbican", "-vv"],
            &env,
            &log,
        );
        KeystoneServer {
            server,
            log,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

/// One answer: status, `WWW-Authenticate` (if any), body.
struct Answer {
    status: u16,
    www_authenticate: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.body))
    }
}

async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> Answer {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.header("X-Auth-Token", token);
    }
    if let Some((content_type, bytes)) = body {
        request = request.header("Content-Type", content_type).body(bytes);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let www_authenticate = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    Answer {
        status,
        www_authenticate,
        body,
    }
}

async fn create(server: &KeystoneServer, token: &str, properties: &Value) -> Answer {
    let mut body = json!({"name": "signed", "disk_format": "raw", "container_format": "bare"});
    for (name, value) in properties.as_object().into_iter().flatten() {
        body[name] = value.clone();
    }
    call(
        reqwest::Method::POST,
        &server.url("/v2/images"),
        Some(token),
        Some(("application/json", body.to_string().into_bytes())),
    )
    .await
}

async fn upload(server: &KeystoneServer, token: &str, id: &str, data: &Path) -> Answer {
    call(
        reqwest::Method::PUT,
        &server.url(&format!("/v2/images/{id}/file")),
        Some(token),
        Some(("application/octet-stream", std::fs::read(data).unwrap())),
    )
    .await
}

async fn status_of(server: &KeystoneServer, token: &str, id: &str) -> String {
    let answer = call(
        reqwest::Method::GET,
        &server.url(&format!("/v2/images/{id}")),
        Some(token),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["status"].as_str().unwrap().to_owned()
}

fn properties(signed: &SignedImage) -> Value {
    serde_json::from_slice(&std::fs::read(&signed.properties).unwrap()).unwrap()
}

fn keystone_header(fixture: &Fixture) -> Option<String> {
    Some(format!(
        "Keystone uri=\"{}\"",
        fixture.str("/www_authenticate_uri")
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keystone_takes_project_and_roles_from_the_token_and_refuses_bad_tokens() {
    let Some(fixture) = fixture() else { return };
    let _servers = shared().await;
    let server = KeystoneServer::start(&fixture.os_env("service"));
    let images = server.url("/v2/images");

    // 1. No token, a garbage token: 401 pointing at Keystone.
    for token in [None, Some("gAAAAABgarbage-garbage-garbage")] {
        let answer = call(reqwest::Method::GET, &images, token, None).await;
        assert_eq!(answer.status, 401, "{token:?}: {}", answer.body);
        assert_eq!(answer.www_authenticate, keystone_header(&fixture));
    }

    // 2. alice's token: her project owns what she creates.
    let alice = token_of(&fixture.session("alice")).await;
    let answer = create(&server, alice.expose(), &json!({})).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let image = answer.json();
    assert_eq!(image["owner"], fixture.str("/alice/project_id"));
    let id = image["id"].as_str().unwrap().to_owned();
    let listed = call(reqwest::Method::GET, &images, Some(alice.expose()), None).await;
    assert_eq!(listed.status, 200);
    assert!(listed.body.contains(&id), "{}", listed.body);

    // 3. Her roles: a member cannot publicize (Glance's publicize_image: admin).
    let answer = call(
        reqwest::Method::PATCH,
        &server.url(&format!("/v2/images/{id}")),
        Some(alice.expose()),
        Some((
            "application/openstack-images-v2.1-json-patch",
            br#"[{"op": "replace", "path": "/visibility", "value": "public"}]"#.to_vec(),
        )),
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.body);

    // 4. bob's token is his project's: alice's image is not his to see.
    let bob = token_of(&fixture.session("bob")).await;
    let answer = call(
        reqwest::Method::GET,
        &server.url(&format!("/v2/images/{id}")),
        Some(bob.expose()),
        None,
    )
    .await;
    assert_eq!(answer.status, 404, "{}", answer.body);

    // 5. A token revoked in Keystone before this server saw it: 401.
    let revoked = token_of(&fixture.session("alice")).await;
    revoke(&fixture, &revoked).await;
    let answer = call(reqwest::Method::GET, &images, Some(revoked.expose()), None).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.www_authenticate, keystone_header(&fixture));

    // 6. Nothing secret in the server's log (-vv), only fingerprints.
    let log = server.log();
    assert!(log.contains("status=401"), "{log}");
    for secret in [
        alice.expose().to_owned(),
        bob.expose().to_owned(),
        revoked.expose().to_owned(),
        fixture.str("/service/password"),
    ] {
        assert!(!log.contains(&secret), "a secret is in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keystone_answers_503_when_keystone_cannot_be_asked() {
    let Some(fixture) = fixture() else { return };
    // A port nobody listens on: Keystone "stopped" for this server only.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let env: Vec<(String, String)> = fixture
        .os_env("service")
        .into_iter()
        .map(|(name, value)| match name.as_str() {
            "OS_AUTH_URL" => (name, format!("http://127.0.0.1:{closed}/v3")),
            _ => (name, value),
        })
        .collect();
    let server = KeystoneServer::start(&env);
    let images = server.url("/v2/images");
    let answer = call(
        reqwest::Method::GET,
        &images,
        Some("gAAAAABany-token-at-all"),
        None,
    )
    .await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.www_authenticate, None, "a 503 is no challenge");
    // Without a token there is nothing to ask: still a 401.
    let answer = call(reqwest::Method::GET, &images, None, None).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(
        answer.www_authenticate,
        Some(format!("Keystone uri=\"http://127.0.0.1:{closed}\""))
    );
    let log = server.log();
    assert!(log.contains("cannot reach Keystone"), "{log}");
    assert!(!log.contains("gAAAAABany-token-at-all"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_uploads_verify_against_barbican_with_each_callers_own_token() {
    let Some(fixture) = fixture() else { return };
    let _servers = shared().await;
    let server = KeystoneServer::start(&fixture.os_env("service"));
    let signed = SignedImage::new(&fixture);
    let certificate = fixture.certificate_uuid();

    // alice may read her certificate: the upload verifies and goes active.
    let alice = token_of(&fixture.session("alice")).await;
    let answer = create(&server, alice.expose(), &properties(&signed)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    let answer = upload(&server, alice.expose(), &id, &signed.image).await;
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_eq!(status_of(&server, alice.expose(), &id).await, "active");

    // bob may not: 400 naming the certificate, his image stays queued.
    let bob = token_of(&fixture.session("bob")).await;
    let answer = create(&server, bob.expose(), &properties(&signed)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    let answer = upload(&server, bob.expose(), &id, &signed.image).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains(&certificate), "{}", answer.body);
    assert!(answer.body.contains("not allowed"), "{}", answer.body);
    assert_eq!(status_of(&server, bob.expose(), &id).await, "queued");

    // A secret that is not a certificate (alice's private key): refused as
    // cursive refuses it, the image queued.
    let private_key = fixture.str("/private_key_href");
    let mut props = properties(&signed);
    props["img_signature_certificate_uuid"] = json!(private_key);
    let answer = create(&server, alice.expose(), &props).await;
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    let answer = upload(&server, alice.expose(), &id, &signed.image).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("PKCS8"), "{}", answer.body);
    assert!(answer.body.contains(&private_key), "{}", answer.body);
    assert_eq!(status_of(&server, alice.expose(), &id).await, "queued");
    assert!(!server.log().contains(alice.expose()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_trusted_certificates_may_be_barbican_secrets_read_as_the_uploader() {
    let Some(fixture) = fixture() else { return };
    let _servers = shared().await;
    let signed = SignedImage::new(&fixture);
    let alice = token_of(&fixture.session("alice")).await;
    // A server trusting `trusted` (a Barbican secret href); alice's upload.
    let upload_trusting = |trusted: String| {
        let signed = &signed;
        let alice = &alice;
        let fixture = &fixture;
        async move {
            let config = format!("trusted_certificates = [\"{trusted}\"]\n");
            let server = KeystoneServer::start_configured(&fixture.os_env("service"), &config);
            let created = create(&server, alice.expose(), &properties(signed)).await;
            let id = created.json()["id"].as_str().unwrap().to_owned();
            let answer = upload(&server, alice.expose(), &id, &signed.image).await;
            (answer, status_of(&server, alice.expose(), &id).await)
        }
    };
    // alice's self-signed certificate is its own trust anchor, by its href.
    let (answer, status) = upload_trusting(fixture.str("/certificate_href")).await;
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_eq!(status, "active");
    // A trusted id that is no certificate (the private key): the chain
    // cannot be validated, the upload is refused and the image queued.
    let (answer, status) = upload_trusting(fixture.str("/private_key_href")).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(status, "queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_uploads_fail_closed_while_barbican_is_down_and_recover() {
    let Some(fixture) = fixture() else { return };
    let _servers = exclusive().await;
    // A fresh server: no certificate cached yet.
    let server = KeystoneServer::start(&fixture.os_env("service"));
    let signed = SignedImage::new(&fixture);
    let alice = token_of(&fixture.session("alice")).await;
    let answer = create(&server, alice.expose(), &properties(&signed)).await;
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    // Validated now, while Keystone is up (the validation is cached).
    assert_eq!(status_of(&server, alice.expose(), &id).await, "queued");
    {
        let _down = fixture.stopped("barbican");
        let answer = upload(&server, alice.expose(), &id, &signed.image).await;
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(
            answer.body.contains(&fixture.certificate_uuid()),
            "{}",
            answer.body
        );
        assert_eq!(status_of(&server, alice.expose(), &id).await, "queued");
    }
    let answer = upload(&server, alice.expose(), &id, &signed.image).await;
    assert_eq!(answer.status, 204, "after the restart: {}", answer.body);
    assert_eq!(status_of(&server, alice.expose(), &id).await, "active");

    // Fetched once for alice (her user and project): her next upload is
    // answered by the per-user cache even with Barbican down; bob, never
    // cached, is refused (fail closed) and his image stays queued.
    let bob = token_of(&fixture.session("bob")).await;
    let again = create(&server, alice.expose(), &properties(&signed)).await;
    let again = again.json()["id"].as_str().unwrap().to_owned();
    let his = create(&server, bob.expose(), &properties(&signed)).await;
    let his = his.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(status_of(&server, bob.expose(), &his).await, "queued");
    {
        let _down = fixture.stopped("barbican");
        let answer = upload(&server, alice.expose(), &again, &signed.image).await;
        assert_eq!(answer.status, 204, "from the cache: {}", answer.body);
        let answer = upload(&server, bob.expose(), &his, &signed.image).await;
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert_eq!(status_of(&server, bob.expose(), &his).await, "queued");
    }
}

#[test]
fn ingest_with_the_barbican_key_manager_reads_the_certificate_as_the_os_user() {
    let Some(fixture) = fixture() else { return };
    let _servers = shared_blocking();
    let signed = SignedImage::new(&fixture);
    let data = signed.dir.path().join("data");
    let ingest = |env: &[(String, String)]| {
        cli(signed.dir.path(), env)
            .arg("ingest")
            .arg(&signed.image)
            .arg("--properties")
            .arg(&signed.properties)
            .args(["--name", "n", "--disk-format", "raw"])
            .args(["--container-format", "bare", "--key-manager", "barbican"])
            .arg("--data-dir")
            .arg(&data)
            .args(["--format", "json"])
            .output()
            .unwrap()
    };
    let output = ingest(&fixture.os_env("alice"));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let image: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(image["status"], "active", "{image}");

    // bob cannot read alice's certificate: exit 1 naming it, image queued.
    let output = ingest(&fixture.os_env("bob"));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["error"]["kind"], "certificate_forbidden", "{report}");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&fixture.certificate_uuid()),
        "{report}"
    );
    let id = report["image_id"].as_str().unwrap();
    let output = cli(signed.dir.path(), &[])
        .args(["images", "show", id, "--format", "json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let image: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(image["status"], "queued");

    // Keystone not reachable: exit 2 before anything is created.
    let nowhere: Vec<(String, String)> = fixture
        .os_env("alice")
        .into_iter()
        .map(|(name, value)| match name.as_str() {
            "OS_AUTH_URL" => (name, "http://127.0.0.1:1/v3".to_owned()),
            _ => (name, value),
        })
        .collect();
    let output = ingest(&nowhere);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["error"]["kind"], "keystone_unavailable", "{report}");
    let output = cli(signed.dir.path(), &[])
        .args(["images", "list", "--format", "json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let page: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(page["images"].as_array().unwrap().len(), 2, "{page}");
}

#[test]
fn serve_refuses_barbican_without_keystone_and_keystone_without_settings() {
    // No server needed: both refusals come before anything listens.
    let dir = tempfile::tempdir().unwrap();
    let serve = |args: &[&str]| {
        cli(dir.path(), &[])
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(args)
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .unwrap()
    };
    // Barbican reads with each request's token: noauth has none.
    let output = serve(&["--key-manager", "barbican"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--auth keystone"), "{stderr}");
    // Keystone mode needs the service's own client settings.
    let output = serve(&["--auth", "keystone"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("auth = \"keystone\""), "{stderr}");
    assert!(stderr.contains("OS_AUTH_URL"), "{stderr}");
}
