//! HTTP tests of `portcullis serve`'s application, driven through
//! `tower::ServiceExt::oneshot` on `api::app()` (no port): every endpoint
//! that exists and every error status, compared with what real Glance 33
//! answered (../shared/reference/glance-wire.md and glance-schemas/).

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;

use portcullis::api::{self, ApiState, AuthMode, Authenticator, Lifecycle, ServerOptions};
use portcullis::app::App;
use portcullis::clock::{Clock, SystemClock};
use portcullis::config::{Config, Overrides};
use tower::ServiceExt;

/// The reference material beside the checkout (`../shared`, or two levels
/// up from a worktree), or `PORTCULLIS_SHARED_DIR`.
fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PORTCULLIS_SHARED_DIR") {
        return PathBuf::from(dir);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join("shared"))
        .find(|dir| dir.join("reference/glance-schemas").is_dir())
        .unwrap_or_else(|| {
            panic!(
                "the reference documents are missing: expected ../shared/reference/glance-schemas beside the checkout \
                 ({}), as in CI; or set PORTCULLIS_SHARED_DIR to the shared/ directory",
                manifest.display()
            )
        })
}

fn reference(name: &str) -> serde_json::Value {
    let path = shared_dir().join("reference/glance-schemas").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read reference {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The HTTP application over a real data directory (SQLite file,
/// filesystem store) in a temporary directory.
pub(crate) struct TestApi {
    pub(crate) state: ApiState,
    pub(crate) dir: tempfile::TempDir,
}

impl TestApi {
    pub(crate) async fn new() -> TestApi {
        TestApi::with(ServerOptions::default()).await
    }

    pub(crate) async fn with(options: ServerOptions) -> TestApi {
        TestApi::with_config(options, "").await
    }

    /// With `portcullis.toml` in the data directory holding `config`.
    pub(crate) async fn with_config(options: ServerOptions, config: &str) -> TestApi {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data directory");
        std::fs::write(data.join("portcullis.toml"), config).expect("config written");
        let config = Config::load(&data, &Overrides::default()).expect("config");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let app = App::open(&config, clock)
            .await
            .expect("the data directory opens");
        let authenticator = Authenticator::from_options(&options, None).expect("authenticator");
        let state = ApiState::new(Arc::new(app), options, authenticator, Lifecycle::new());
        TestApi { state, dir }
    }

    /// The data directory.
    pub(crate) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) async fn request(&self, request: Request<Body>) -> Answer {
        let response = api::app(self.state.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Answer {
            status,
            headers,
            bytes: bytes.to_vec(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.send_body(method, path, headers, Body::empty()).await
    }

    pub(crate) async fn send_body(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1:9292");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.request(request.body(body).expect("a request")).await
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[]).await
    }
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) bytes: Vec<u8>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("ASCII header"))
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {}", self.body))
    }

    /// The `message` of a JSON error body, without webob's trailer.
    pub(crate) fn message(&self) -> String {
        let message = self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        message.trim_end_matches("<br /><br />\n\n\n").to_owned()
    }
}

fn is_request_id(value: Option<&str>) -> bool {
    value.is_some_and(|id| {
        id.len() == 40 && id.starts_with("req-") && uuid::Uuid::parse_str(&id[4..]).is_ok()
    })
}

#[tokio::test]
async fn version_discovery_is_glances() {
    let api = TestApi::new().await;
    // Recorded from Glance on 127.0.0.1:9292: the same Host gives the same document.
    let expected = reference("versions.json");
    let root = api.get("/").await;
    assert_eq!(root.status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(root.header("content-type"), Some("application/json"));
    assert_eq!(root.json(), expected);
    let versions = api.get("/versions").await;
    assert_eq!(versions.status, StatusCode::OK);
    assert_eq!(versions.json(), expected);
    // Any unversioned path and any method: the choices (Glance's version negotiation).
    for path in ["/v1/images", "/foo", "/v3"] {
        assert_eq!(
            api.get(path).await.status,
            StatusCode::MULTIPLE_CHOICES,
            "{path}"
        );
    }
    assert_eq!(
        api.send(Method::POST, "/versions", &[]).await.status,
        StatusCode::OK
    );
    // The href follows the Host the client used.
    let proxied = api.send(Method::GET, "/", &[]).await;
    assert!(
        proxied
            .body
            .contains("\"href\": \"http://127.0.0.1:9292/v2/\"")
    );
}

#[tokio::test]
async fn v2_redirects_and_v2_slash_is_not_found() {
    let api = TestApi::new().await;
    let redirect = api.get("/v2").await;
    assert_eq!(redirect.status, StatusCode::FOUND);
    assert_eq!(
        redirect.header("location"),
        Some("http://127.0.0.1:9292/v2/")
    );
    let slash = api.get("/v2/").await;
    assert_eq!(slash.status, StatusCode::NOT_FOUND);
    assert_eq!(
        slash.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    assert_eq!(
        slash.body,
        "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  The resource could not be found.<br /><br />\n\n\n\n </body>\n</html>"
    );
    // Versioned aliases reach the same routes.
    assert_eq!(api.get("/v2.17/schemas/image").await.status, StatusCode::OK);
    assert_eq!(
        api.get("/v2.0/schemas/members").await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.get("/v2/no-such-thing").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn schemas_are_glances() {
    let api = TestApi::new().await;
    for (path, file) in [
        ("/v2/schemas/image", "image.json"),
        ("/v2/schemas/images", "images.json"),
        ("/v2/schemas/member", "member.json"),
        ("/v2/schemas/members", "members.json"),
        ("/v2/schemas/metadefs/namespace", "metadefs_namespace.json"),
        (
            "/v2/schemas/metadefs/resource_type",
            "metadefs_resource_type.json",
        ),
    ] {
        let answer = api.get(path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(
            answer.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        assert_eq!(answer.json(), reference(file), "{path} differs from {file}");
    }
}

#[tokio::test]
async fn wrong_methods_get_405_with_allow() {
    let api = TestApi::new().await;
    // Recorded: DELETE on a schema, HEAD anywhere in v2.
    let delete = api.send(Method::DELETE, "/v2/schemas/image", &[]).await;
    assert_eq!(delete.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(delete.header("allow"), Some("GET"));
    assert_eq!(delete.body.len(), 190);
    assert!(
        delete
            .body
            .contains("The method DELETE is not allowed for this resource. <br /><br />")
    );
    let head = api.send(Method::HEAD, "/v2/schemas/image", &[]).await;
    assert_eq!(head.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(head.header("allow"), Some("GET"));
    let json = api
        .send(
            Method::POST,
            "/v2/schemas/members",
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(
        json.body,
        "{\"message\": \"The method POST is not allowed for this resource. <br /><br />\\n\", \"code\": \"405 Method Not Allowed\", \"title\": \"Method Not Allowed\"}"
    );
}

#[tokio::test]
async fn error_bodies_follow_accept() {
    let api = TestApi::new().await;
    let cases = [
        (None, "text/html; charset=UTF-8"),
        (Some("*/*"), "text/html; charset=UTF-8"),
        (Some("application/json"), "application/json"),
        (Some(""), "text/plain; charset=UTF-8"),
        (Some("text/plain"), "text/plain; charset=UTF-8"),
        (
            Some("application/json, text/html"),
            "text/html; charset=UTF-8",
        ),
    ];
    for (accept, content_type) in cases {
        let headers: Vec<(&str, &str)> = accept.iter().map(|value| ("accept", *value)).collect();
        let answer = api.send(Method::GET, "/v2/nothing", &headers).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(
            answer.header("content-type"),
            Some(content_type),
            "Accept: {accept:?}"
        );
    }
    let json = api
        .send(
            Method::GET,
            "/v2/nothing",
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(
        json.json(),
        serde_json::json!({"message": "The resource could not be found.<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"})
    );
    let plain = api
        .send(Method::GET, "/v2/nothing", &[("accept", "")])
        .await;
    assert_eq!(
        plain.body,
        "404 Not Found\n\nThe resource could not be found.\n\n   "
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let api = TestApi::new().await;
    for path in [
        "/",
        "/versions",
        "/v2",
        "/v2/",
        "/v2/schemas/image",
        "/healthcheck",
    ] {
        let answer = api.get(path).await;
        assert!(
            is_request_id(answer.header("x-openstack-request-id")),
            "{path}: {:?}",
            answer.header("x-openstack-request-id")
        );
    }
    let mine = "req-6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55";
    let echoed = api
        .send(
            Method::GET,
            "/v2/schemas/image",
            &[("x-openstack-request-id", mine)],
        )
        .await;
    assert_eq!(echoed.header("x-openstack-request-id"), Some(mine));
    let replaced = api
        .send(
            Method::GET,
            "/v2/schemas/image",
            &[("x-openstack-request-id", "my own words")],
        )
        .await;
    let id = replaced.header("x-openstack-request-id");
    assert!(is_request_id(id) && id != Some("my own words"));
}

#[tokio::test]
async fn healthcheck_is_oslo_middlewares() {
    let api = TestApi::new().await;
    let plain = api.get("/healthcheck").await;
    assert_eq!((plain.status, plain.body.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    let json = api
        .send(
            Method::GET,
            "/healthcheck",
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(
        json.body,
        "{\n    \"detailed\": false,\n    \"reasons\": [\n        \"OK\"\n    ]\n}"
    );
    let html = api
        .send(Method::GET, "/healthcheck", &[("accept", "text/html")])
        .await;
    assert!(html.body.contains("<TD>OK</TD>"));
    let head = api.send(Method::HEAD, "/healthcheck", &[]).await;
    assert_eq!(
        (head.status, head.body.as_str()),
        (StatusCode::NO_CONTENT, "")
    );
    assert_eq!(
        api.send(Method::POST, "/healthcheck", &[]).await.status,
        StatusCode::OK
    );

    let flags = tempfile::tempdir().unwrap();
    let flag = flags.path().join("healthcheck_disable");
    let api = TestApi::with(ServerOptions {
        healthcheck_disable_file: Some(flag.clone()),
        ..ServerOptions::default()
    })
    .await;
    assert_eq!(api.get("/healthcheck").await.status, StatusCode::OK);
    std::fs::write(&flag, "").unwrap();
    let drained = api.get("/healthcheck").await;
    assert_eq!(
        (drained.status, drained.body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "DISABLED BY FILE")
    );
}

async fn tokens_api(dir: &Path) -> TestApi {
    let file = dir.join("tokens.toml");
    std::fs::write(
        &file,
        "[[tokens]]\ntoken = \"alice-token\"\nproject = \"p1\"\nuser = \"alice\"\nroles = [\"member\", \"reader\"]\n",
    )
    .expect("token file written");
    TestApi::with(ServerOptions {
        auth: AuthMode::Tokens,
        token_file: Some(file),
        www_authenticate_uri: Some("http://keystone.example:5000".to_owned()),
        ..ServerOptions::default()
    })
    .await
}

#[tokio::test]
async fn tokens_mode_answers_401_as_keystonemiddleware_and_glance() {
    let dir = tempfile::tempdir().unwrap();
    let api = tokens_api(dir.path()).await;
    let api = &api;
    let get = |path: &'static str, token: Option<&'static str>, accept: &'static str| {
        let mut headers = vec![("accept", accept)];
        headers.extend(token.map(|token| ("x-auth-token", token)));
        async move { api.send(Method::GET, path, &headers).await }
    };
    for token in [None, Some("wrong-token")] {
        let answer = get("/v2/schemas/image", token, "application/json").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(
            answer.header("www-authenticate"),
            Some("Keystone uri=\"http://keystone.example:5000\"")
        );
        assert_eq!(answer.json()["title"], "Unauthorized");
        assert!(
            answer
                .message()
                .starts_with("This server could not verify that you are authorized")
        );
        assert!(!answer.body.contains("wrong-token"));
    }
    // Unknown v2 paths are behind authentication too (authtoken runs before routing).
    assert_eq!(
        get("/v2/nothing", None, "*/*").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Discovery and health need no token, as in Glance's pipeline.
    assert_eq!(
        get("/", None, "*/*").await.status,
        StatusCode::MULTIPLE_CHOICES
    );
    assert_eq!(
        get("/healthcheck", None, "*/*").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get("/v2/schemas/image", Some("alice-token"), "*/*")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn without_a_configured_uri_www_authenticate_names_this_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.json");
    std::fs::write(&file, r#"{"tokens": []}"#).unwrap();
    let api = TestApi::with(ServerOptions {
        auth: AuthMode::Tokens,
        token_file: Some(file),
        ..ServerOptions::default()
    })
    .await;
    let request = Request::get("/v2/schemas/image")
        .header("host", "images.example:9292")
        .header("x-auth-token", "t")
        .body(Body::empty())
        .unwrap();
    let answer = api.request(request).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Keystone uri=\"http://images.example:9292\"")
    );
    assert_eq!(
        answer.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
}
