//! HTTP tests of `portcullis serve`'s application, driven through
//! `tower::ServiceExt::oneshot` on `api::app()` (no port): every endpoint
//! that exists and every error status, compared with what real Glance 33
//! answered (../shared/reference/glance-wire.md and glance-schemas/).

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use portcullis::api::{self, ApiState, AuthMode, Authenticator, Lifecycle, ServerOptions};
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

fn state(options: ServerOptions) -> ApiState {
    let authenticator = Authenticator::from_options(&options).expect("authenticator");
    ApiState::new(options, authenticator, Lifecycle::new())
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("ASCII header"))
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {}", self.body))
    }
}

async fn send_to(state: ApiState, request: Request<Body>) -> Answer {
    let response = api::app(state).oneshot(request).await.expect("infallible");
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
        body: String::from_utf8(bytes.to_vec()).expect("UTF-8 body"),
    }
}

async fn send(method: Method, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:9292");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send_to(
        state(ServerOptions::default()),
        request.body(Body::empty()).expect("a request"),
    )
    .await
}

async fn get(path: &str) -> Answer {
    send(Method::GET, path, &[]).await
}

fn is_request_id(value: Option<&str>) -> bool {
    value.is_some_and(|id| {
        id.len() == 40 && id.starts_with("req-") && uuid::Uuid::parse_str(&id[4..]).is_ok()
    })
}

#[tokio::test]
async fn version_discovery_is_glances() {
    // Recorded from Glance on 127.0.0.1:9292: the same Host gives the same document.
    let expected = reference("versions.json");
    let root = get("/").await;
    assert_eq!(root.status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(root.header("content-type"), Some("application/json"));
    assert_eq!(root.json(), expected);
    let versions = get("/versions").await;
    assert_eq!(versions.status, StatusCode::OK);
    assert_eq!(versions.json(), expected);
    // Any unversioned path and any method: the choices (Glance's version negotiation).
    for path in ["/v1/images", "/foo", "/v3"] {
        assert_eq!(
            get(path).await.status,
            StatusCode::MULTIPLE_CHOICES,
            "{path}"
        );
    }
    assert_eq!(
        send(Method::POST, "/versions", &[]).await.status,
        StatusCode::OK
    );
    // The href follows the Host the client used.
    let proxied = send(Method::GET, "/", &[]).await;
    assert!(
        proxied
            .body
            .contains("\"href\": \"http://127.0.0.1:9292/v2/\"")
    );
}

#[tokio::test]
async fn v2_redirects_and_v2_slash_is_not_found() {
    let redirect = get("/v2").await;
    assert_eq!(redirect.status, StatusCode::FOUND);
    assert_eq!(
        redirect.header("location"),
        Some("http://127.0.0.1:9292/v2/")
    );
    let slash = get("/v2/").await;
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
    assert_eq!(get("/v2.17/schemas/image").await.status, StatusCode::OK);
    assert_eq!(get("/v2.0/schemas/members").await.status, StatusCode::OK);
    assert_eq!(get("/v2/no-such-thing").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn schemas_are_glances() {
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
        let answer = get(path).await;
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
    // Recorded: DELETE on a schema, HEAD anywhere in v2.
    let delete = send(Method::DELETE, "/v2/schemas/image", &[]).await;
    assert_eq!(delete.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(delete.header("allow"), Some("GET"));
    assert_eq!(delete.body.len(), 190);
    assert!(
        delete
            .body
            .contains("The method DELETE is not allowed for this resource. <br /><br />")
    );
    let head = send(Method::HEAD, "/v2/schemas/image", &[]).await;
    assert_eq!(head.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(head.header("allow"), Some("GET"));
    let json = send(
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
        let answer = send(Method::GET, "/v2/nothing", &headers).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(
            answer.header("content-type"),
            Some(content_type),
            "Accept: {accept:?}"
        );
    }
    let json = send(
        Method::GET,
        "/v2/nothing",
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(
        json.json(),
        serde_json::json!({"message": "The resource could not be found.<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"})
    );
    let plain = send(Method::GET, "/v2/nothing", &[("accept", "")]).await;
    assert_eq!(
        plain.body,
        "404 Not Found\n\nThe resource could not be found.\n\n   "
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    for path in [
        "/",
        "/versions",
        "/v2",
        "/v2/",
        "/v2/schemas/image",
        "/healthcheck",
    ] {
        let answer = get(path).await;
        assert!(
            is_request_id(answer.header("x-openstack-request-id")),
            "{path}: {:?}",
            answer.header("x-openstack-request-id")
        );
    }
    let mine = "req-6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55";
    let echoed = send(
        Method::GET,
        "/v2/schemas/image",
        &[("x-openstack-request-id", mine)],
    )
    .await;
    assert_eq!(echoed.header("x-openstack-request-id"), Some(mine));
    let replaced = send(
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
    let plain = get("/healthcheck").await;
    assert_eq!((plain.status, plain.body.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    let json = send(
        Method::GET,
        "/healthcheck",
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(
        json.body,
        "{\n    \"detailed\": false,\n    \"reasons\": [\n        \"OK\"\n    ]\n}"
    );
    let html = send(Method::GET, "/healthcheck", &[("accept", "text/html")]).await;
    assert!(html.body.contains("<TD>OK</TD>"));
    let head = send(Method::HEAD, "/healthcheck", &[]).await;
    assert_eq!(
        (head.status, head.body.as_str()),
        (StatusCode::NO_CONTENT, "")
    );
    assert_eq!(
        send(Method::POST, "/healthcheck", &[]).await.status,
        StatusCode::OK
    );

    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("healthcheck_disable");
    let options = ServerOptions {
        healthcheck_disable_file: Some(flag.clone()),
        ..ServerOptions::default()
    };
    let request = || Request::get("/healthcheck").body(Body::empty()).unwrap();
    assert_eq!(
        send_to(state(options.clone()), request()).await.status,
        StatusCode::OK
    );
    std::fs::write(&flag, "").unwrap();
    let drained = send_to(state(options), request()).await;
    assert_eq!(
        (drained.status, drained.body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "DISABLED BY FILE")
    );
}

fn tokens_state(dir: &Path) -> ApiState {
    let file = dir.join("tokens.toml");
    std::fs::write(
        &file,
        "[[tokens]]\ntoken = \"alice-token\"\nproject = \"p1\"\nuser = \"alice\"\nroles = [\"member\", \"reader\"]\n",
    )
    .expect("token file written");
    state(ServerOptions {
        auth: AuthMode::Tokens,
        token_file: Some(file),
        www_authenticate_uri: Some("http://keystone.example:5000".to_owned()),
        ..ServerOptions::default()
    })
}

#[tokio::test]
async fn tokens_mode_answers_401_as_keystonemiddleware_and_glance() {
    let dir = tempfile::tempdir().unwrap();
    let request = |path: &str, token: Option<&str>, accept: &str| {
        let mut builder = Request::get(path).header("accept", accept);
        if let Some(token) = token {
            builder = builder.header("x-auth-token", token);
        }
        builder.body(Body::empty()).unwrap()
    };
    for token in [None, Some("wrong-token")] {
        let answer = send_to(
            tokens_state(dir.path()),
            request("/v2/schemas/image", token, "application/json"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(
            answer.header("www-authenticate"),
            Some("Keystone uri=\"http://keystone.example:5000\"")
        );
        assert_eq!(answer.json()["title"], "Unauthorized");
        assert!(
            answer.json()["message"]
                .as_str()
                .unwrap()
                .starts_with("This server could not verify that you are authorized")
        );
        assert!(!answer.body.contains("wrong-token"));
    }
    // Unknown v2 paths are behind authentication too (authtoken runs before routing).
    let unknown = send_to(
        tokens_state(dir.path()),
        request("/v2/nothing", None, "*/*"),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    // Discovery and health need no token, as in Glance's pipeline.
    let discovery = send_to(tokens_state(dir.path()), request("/", None, "*/*")).await;
    assert_eq!(discovery.status, StatusCode::MULTIPLE_CHOICES);
    let health = send_to(
        tokens_state(dir.path()),
        request("/healthcheck", None, "*/*"),
    )
    .await;
    assert_eq!(health.status, StatusCode::OK);
    let allowed = send_to(
        tokens_state(dir.path()),
        request("/v2/schemas/image", Some("alice-token"), "*/*"),
    )
    .await;
    assert_eq!(allowed.status, StatusCode::OK);
}

#[tokio::test]
async fn without_a_configured_uri_www_authenticate_names_this_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.json");
    std::fs::write(&file, r#"{"tokens": []}"#).unwrap();
    let state = state(ServerOptions {
        auth: AuthMode::Tokens,
        token_file: Some(file),
        ..ServerOptions::default()
    });
    let request = Request::get("/v2/schemas/image")
        .header("host", "images.example:9292")
        .header("x-auth-token", "t")
        .body(Body::empty())
        .unwrap();
    let answer = send_to(state, request).await;
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
