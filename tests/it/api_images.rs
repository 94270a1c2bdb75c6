//! HTTP tests of the image endpoints through `oneshot` on `api::app()`
//! over a real data directory: every endpoint and every error status, with
//! Glance 33's messages (recorded on this machine) where it has one.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use bytes::Bytes;
use futures_util::StreamExt;

use super::api::{Answer, TestApi};

const JSON: (&str, &str) = ("content-type", "application/json");
const ACCEPT_JSON: (&str, &str) = ("accept", "application/json");
const PATCH: (&str, &str) = (
    "content-type",
    "application/openstack-images-v2.1-json-patch",
);
const OCTETS: (&str, &str) = ("content-type", "application/octet-stream");

async fn create(api: &TestApi, body: &str) -> Answer {
    api.send_body(
        Method::POST,
        "/v2/images",
        &[JSON, ACCEPT_JSON],
        Body::from(body.to_owned()),
    )
    .await
}

/// A queued raw/bare image named `name`; its id.
async fn queued(api: &TestApi, name: &str) -> String {
    let created = create(
        api,
        &format!(r#"{{"name": "{name}", "disk_format": "raw", "container_format": "bare"}}"#),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.json()["id"].as_str().expect("an id").to_owned()
}

async fn put_file(api: &TestApi, id: &str, data: &'static [u8]) -> Answer {
    api.send_body(
        Method::PUT,
        &format!("/v2/images/{id}/file"),
        &[OCTETS, ACCEPT_JSON],
        Body::from(data),
    )
    .await
}

async fn status_of(api: &TestApi, id: &str) -> String {
    api.get(&format!("/v2/images/{id}")).await.json()["status"]
        .as_str()
        .expect("status")
        .to_owned()
}

/// Nothing in the store's staging or images directories.
fn store_is_empty(api: &TestApi) -> bool {
    ["staging", "images"].iter().all(|dir| {
        std::fs::read_dir(api.data().join(dir))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .all(|entry| entry.file_name().to_string_lossy().ends_with(".lock"))
            })
            .unwrap_or(true)
    })
}

const DATA: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// md5 of `data` by the system's `md5sum` (an independent implementation).
fn md5_of(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("md5sum runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("written");
    let output = child.wait_with_output().expect("md5sum output");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn create_answers_201_with_location_and_glances_headers() {
    let api = TestApi::new().await;
    let created = create(&api, r#"{"name": "c1", "disk_format": "raw", "container_format": "bare", "foo": "bar", "min_disk": 1}"#).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let image = created.json();
    let id = image["id"].as_str().unwrap();
    assert_eq!(
        created.header("location"),
        Some(format!("http://127.0.0.1:9292/v2/images/{id}").as_str())
    );
    assert_eq!(created.header("openstack-image-store-ids"), Some("fs"));
    // No import method runs here yet: Glance leaves the header out then.
    assert_eq!(created.header("openstack-image-import-methods"), None);
    assert_eq!(created.header("content-type"), Some("application/json"));
    assert_eq!(image["status"], "queued");
    assert_eq!(image["foo"], "bar");
    assert_eq!(image["min_disk"], 1);
    assert_eq!(image["size"], serde_json::Value::Null);
    assert_eq!(image["self"], format!("/v2/images/{id}"));
    assert!(image.get("stores").is_none());
}

#[tokio::test]
async fn create_refusals_are_glances() {
    let api = TestApi::new().await;
    let read_only = create(&api, r#"{"status": "active"}"#).await;
    assert_eq!(
        (read_only.status, read_only.message().as_str()),
        (StatusCode::FORBIDDEN, "Attribute 'status' is read-only.")
    );
    let schema = create(&api, r#"{"disk_format": "qcow3"}"#).await;
    assert_eq!(schema.status, StatusCode::BAD_REQUEST);
    assert!(
        schema
            .message()
            .starts_with("Provided object does not match schema 'image'"),
        "{}",
        schema.body
    );
    let malformed = create(&api, "{not json").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(
        malformed
            .message()
            .starts_with("Malformed JSON in request body."),
        "{}",
        malformed.body
    );
    let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(200_000));
    let too_large = create(&api, &huge).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn info_documents() {
    let api = TestApi::new().await;
    let stores = api.get("/v2/info/stores").await;
    assert_eq!(stores.status, StatusCode::OK);
    assert_eq!(
        stores.json(),
        serde_json::json!({"stores": [{"id": "fs", "default": "true"}]})
    );
    let import = api.get("/v2/info/import").await;
    assert_eq!(
        import.json()["import-methods"]["value"],
        serde_json::json!([])
    );
    let wrong = api.send(Method::POST, "/v2/info/import", &[]).await;
    assert_eq!(
        (wrong.status, wrong.header("allow")),
        (StatusCode::METHOD_NOT_ALLOWED, Some("GET"))
    );
}

#[tokio::test]
async fn show_finds_images_and_answers_404_for_anything_else() {
    let api = TestApi::new().await;
    let id = queued(&api, "s1").await;
    let shown = api.get(&format!("/v2/images/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.json()["name"], "s1");
    let missing = "ebc5bdb1-f39b-4daf-8363-50a2b24540c7";
    for (path, id) in [
        (format!("/v2/images/{missing}"), missing),
        ("/v2/images/notauuid".to_owned(), "notauuid"),
    ] {
        let answer = api.send(Method::GET, &path, &[ACCEPT_JSON]).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(answer.message(), format!("No image found with ID {id}"));
    }
}

#[tokio::test]
async fn list_pages_with_next_links_as_glance() {
    let api = TestApi::new().await;
    for name in ["l1", "l2", "l3"] {
        queued(&api, name).await;
    }
    let first = api
        .get("/v2/images?limit=2&sort_key=name&sort_dir=asc")
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let page = first.json();
    let names: Vec<&str> = page["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["l1", "l2"]);
    assert_eq!(
        page["first"],
        "/v2/images?limit=2&sort_key=name&sort_dir=asc"
    );
    assert_eq!(page["schema"], "/v2/schemas/images");
    let next = page["next"]
        .as_str()
        .expect("a next link while the page is full");
    let last_id = page["images"][1]["id"].as_str().unwrap();
    assert_eq!(
        next,
        format!("/v2/images?limit=2&sort_key=name&sort_dir=asc&marker={last_id}")
    );
    let second = api.get(next).await.json();
    assert_eq!(second["images"].as_array().unwrap().len(), 1);
    assert_eq!(second["images"][0]["name"], "l3");
    assert!(second.get("next").is_none());
    let filtered = api.get("/v2/images?name=l2").await.json();
    assert_eq!(filtered["images"].as_array().unwrap().len(), 1);
    // Glance's default page size is 25; no image, no next.
    assert_eq!(
        api.get("/v2/images?name=nothing").await.json()["images"],
        serde_json::json!([])
    );
}

/// The names of the images a listing returns, sorted.
async fn listed(api: &TestApi, query: &str) -> Vec<String> {
    let answer = api.get(&format!("/v2/images?{query}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.body);
    let mut names: Vec<String> = answer.json()["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|image| image["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn list_filters_as_glance() {
    let api = TestApi::new().await;
    let small = queued(&api, "small").await;
    let large = queued(&api, "large").await;
    queued(&api, "empty").await;
    assert_eq!(
        put_file(&api, &small, b"0123").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        put_file(&api, &large, DATA).await.status,
        StatusCode::NO_CONTENT
    );
    let created = api.get(&format!("/v2/images/{small}")).await.json()["created_at"]
        .as_str()
        .expect("created_at")
        .to_owned();

    assert_eq!(listed(&api, "size_min=5").await, ["large"]);
    assert_eq!(listed(&api, "size_max=4").await, ["small"]);
    assert_eq!(listed(&api, "size=4").await, ["small"]);
    assert_eq!(listed(&api, "size_max=-1").await, Vec::<String>::new());
    assert_eq!(listed(&api, "status=in:queued,saving").await, ["empty"]);
    assert_eq!(
        listed(&api, "name=in:small,%22large%22").await,
        ["large", "small"]
    );
    assert_eq!(
        listed(&api, &format!("id=in:{small},{large}")).await,
        ["large", "small"]
    );
    assert_eq!(
        listed(&api, &format!("checksum={}", md5_of(DATA))).await,
        ["large"]
    );
    assert_eq!(
        listed(&api, &format!("created_at=lte:{created}"))
            .await
            .len(),
        listed(&api, "").await.len()
            - listed(&api, &format!("created_at=gt:{created}"))
                .await
                .len()
    );
    assert_eq!(
        listed(&api, "created_at=gt:2999-01-01T00:00:00Z").await,
        Vec::<String>::new()
    );
    assert_eq!(listed(&api, "protected=false").await.len(), 3);
    assert_eq!(listed(&api, "protected=true").await, Vec::<String>::new());
    assert_eq!(listed(&api, "member_status=all").await.len(), 3);
}

#[tokio::test]
async fn list_refusals() {
    let api = TestApi::new().await;
    let bad = api
        .send(Method::GET, "/v2/images?limit=abc", &[ACCEPT_JSON])
        .await;
    assert_eq!(
        (bad.status, bad.message().as_str()),
        (StatusCode::BAD_REQUEST, "limit param must be an integer")
    );
    let marker = api
        .send(
            Method::GET,
            "/v2/images?marker=ebc5bdb1-f39b-4daf-8363-50a2b24540c7",
            &[ACCEPT_JSON],
        )
        .await;
    assert_eq!(
        (marker.status, marker.message().as_str()),
        (
            StatusCode::BAD_REQUEST,
            "No image found with ID ebc5bdb1-f39b-4daf-8363-50a2b24540c7"
        )
    );
    let unsupported = api
        .send(Method::GET, "/v2/images?min_disk_min=1", &[ACCEPT_JSON])
        .await;
    assert_eq!(unsupported.status, StatusCode::NOT_IMPLEMENTED);
    assert!(
        unsupported
            .body
            .contains("Filtering images by min_disk_min is not supported by this server yet.")
    );
    let wrong = api.send(Method::PUT, "/v2/images", &[]).await;
    assert_eq!(
        (wrong.status, wrong.header("allow")),
        (StatusCode::METHOD_NOT_ALLOWED, Some("GET, POST"))
    );
}

#[tokio::test]
async fn patch_needs_the_json_patch_media_type_and_applies_glances_rules() {
    let api = TestApi::new().await;
    let id = queued(&api, "p1").await;
    let path = format!("/v2/images/{id}");
    let wrong = api
        .send_body(Method::PATCH, &path, &[JSON, ACCEPT_JSON], Body::from("[]"))
        .await;
    assert_eq!(wrong.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        wrong.header("accept-patch"),
        Some(
            "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch"
        )
    );
    let body = r#"[{"op":"add","path":"/os_distro","value":"cirros"},{"op":"replace","path":"/name","value":"p1-renamed"}]"#;
    let changed = api
        .send_body(
            Method::PATCH,
            &path,
            &[PATCH, ACCEPT_JSON],
            Body::from(body),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        (
            changed.json()["name"].as_str(),
            changed.json()["os_distro"].as_str()
        ),
        (Some("p1-renamed"), Some("cirros"))
    );
    // The older dialect.
    let draft4 = api
        .send_body(
            Method::PATCH,
            &path,
            &[
                (
                    "content-type",
                    "application/openstack-images-v2.0-json-patch",
                ),
                ACCEPT_JSON,
            ],
            Body::from(r#"[{"remove": "/os_distro"}]"#),
        )
        .await;
    assert_eq!(draft4.status, StatusCode::OK, "{}", draft4.body);
    assert!(draft4.json().get("os_distro").is_none());
    let read_only = api
        .send_body(
            Method::PATCH,
            &path,
            &[PATCH, ACCEPT_JSON],
            Body::from(r#"[{"op":"replace","path":"/status","value":"active"}]"#),
        )
        .await;
    assert_eq!(
        (read_only.status, read_only.message().as_str()),
        (StatusCode::FORBIDDEN, "Attribute 'status' is read-only.")
    );
    let missing = api
        .send_body(
            Method::PATCH,
            &path,
            &[PATCH, ACCEPT_JSON],
            Body::from(r#"[{"op":"replace","path":"/nothere","value":"x"}]"#),
        )
        .await;
    assert_eq!(
        (missing.status, missing.message().as_str()),
        (StatusCode::CONFLICT, "Property nothere does not exist.")
    );
    let unknown = api
        .send_body(
            Method::PATCH,
            "/v2/images/ebc5bdb1-f39b-4daf-8363-50a2b24540c7",
            &[PATCH, ACCEPT_JSON],
            Body::from("[]"),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn upload_then_download_whole_and_in_ranges() {
    let api = TestApi::new().await;
    let id = queued(&api, "u1").await;
    let uploaded = put_file(&api, &id, DATA).await;
    assert_eq!(uploaded.status, StatusCode::NO_CONTENT, "{}", uploaded.body);
    assert_eq!(
        uploaded.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    let image = api.get(&format!("/v2/images/{id}")).await.json();
    assert_eq!(
        (image["status"].as_str(), image["size"].as_u64()),
        (Some("active"), Some(DATA.len() as u64))
    );
    let checksum = image["checksum"].as_str().unwrap().to_owned();
    assert_eq!(checksum, md5_of(DATA));
    assert_eq!(image["stores"], "fs");

    let file = format!("/v2/images/{id}/file");
    let whole = api.get(&file).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.bytes, DATA);
    assert_eq!(
        whole.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(whole.header("content-md5"), Some(checksum.as_str()));
    assert_eq!(whole.header("content-length"), Some("36"));

    let part = api
        .send(Method::GET, &file, &[("range", "bytes=0-9")])
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes, &DATA[..10]);
    assert_eq!(part.header("content-range"), Some("bytes 0-9/36"));
    assert_eq!(
        part.header("content-md5"),
        Some(checksum.as_str()),
        "the whole image's md5, as Glance"
    );
    let suffix = api.send(Method::GET, &file, &[("range", "bytes=-6")]).await;
    assert_eq!(
        (suffix.status, suffix.bytes.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &DATA[30..])
    );
    let past = api
        .send(Method::GET, &file, &[("range", "bytes=36-"), ACCEPT_JSON])
        .await;
    assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert!(past.body.contains("Invalid start position in Range header. Start position MUST be in the inclusive range [0, 35]."));
    let several = api
        .send(Method::GET, &file, &[("range", "bytes=0-1,3-4")])
        .await;
    assert_eq!(several.status, StatusCode::BAD_REQUEST);
    let head = api.send(Method::HEAD, &file, &[]).await;
    assert_eq!(
        (head.status, head.header("allow")),
        (StatusCode::METHOD_NOT_ALLOWED, Some("GET, PUT"))
    );

    // A second upload: Glance's 409.
    let again = put_file(&api, &id, DATA).await;
    assert_eq!(
        (again.status, again.message().as_str()),
        (
            StatusCode::CONFLICT,
            "Image status transition from active to saving is not allowed"
        )
    );
}

#[tokio::test]
async fn a_queued_image_downloads_as_204_without_a_content_type() {
    let api = TestApi::new().await;
    let id = queued(&api, "d1").await;
    let empty = api.get(&format!("/v2/images/{id}/file")).await;
    assert_eq!(empty.status, StatusCode::NO_CONTENT);
    assert_eq!(empty.header("content-type"), None);
    assert!(empty.bytes.is_empty());
}

#[tokio::test]
async fn upload_refusals_leave_the_image_queued_with_nothing_stored() {
    let api = TestApi::new().await;
    let id = queued(&api, "r1").await;
    let path = format!("/v2/images/{id}/file");
    let media = api
        .send_body(
            Method::PUT,
            &path,
            &[("content-type", "text/plain"), ACCEPT_JSON],
            Body::from(DATA),
        )
        .await;
    assert_eq!(media.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(media.message().contains("Invalid content type text/plain"));
    let size = api
        .send_body(
            Method::PUT,
            &path,
            &[OCTETS, ("x-openstack-image-size", "abc"), ACCEPT_JSON],
            Body::from(DATA),
        )
        .await;
    assert_eq!(
        (size.status, size.message().as_str()),
        (
            StatusCode::BAD_REQUEST,
            "Invalid or missing image size in request headers."
        )
    );
    let short = api
        .send_body(
            Method::PUT,
            &path,
            &[OCTETS, ("x-openstack-image-size", "100"), ACCEPT_JSON],
            Body::from(DATA),
        )
        .await;
    assert_eq!(
        (short.status, short.message().as_str()),
        (
            StatusCode::BAD_REQUEST,
            "Size mismatch: expected 100 bytes, got 36 bytes"
        )
    );
    let long = api
        .send_body(
            Method::PUT,
            &path,
            &[OCTETS, ("x-openstack-image-size", "10"), ACCEPT_JSON],
            Body::from(DATA),
        )
        .await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);
    assert!(
        long.message()
            .starts_with("Size exceeds: expected 10 bytes"),
        "{}",
        long.body
    );
    assert_eq!(status_of(&api, &id).await, "queued");
    assert!(store_is_empty(&api));

    // Declared qcow2, raw data: the inspector's 415, as Glance.
    let created = create(
        &api,
        r#"{"name": "r2", "disk_format": "qcow2", "container_format": "bare"}"#,
    )
    .await;
    let qcow2 = created.json()["id"].as_str().unwrap().to_owned();
    let mismatch = put_file(&api, &qcow2, DATA).await;
    assert_eq!(mismatch.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        mismatch
            .message()
            .contains("Image disk_format qcow2 does not match stream data raw"),
        "{}",
        mismatch.body
    );
    assert_eq!(status_of(&api, &qcow2).await, "queued");
    assert!(store_is_empty(&api));
}

#[tokio::test]
async fn chunked_uploads_stream_and_a_client_gone_midway_leaves_the_image_queued() {
    let api = TestApi::new().await;
    // glanceclient: chunked, with the size header.
    let id = queued(&api, "c1").await;
    let chunks: Vec<Result<Bytes, std::io::Error>> = DATA
        .chunks(10)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    let path = format!("/v2/images/{id}/file");
    let uploaded = api
        .send_body(
            Method::PUT,
            &path,
            &[OCTETS, ("x-openstack-image-size", "36")],
            body,
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::NO_CONTENT, "{}", uploaded.body);
    assert_eq!(api.get(&path).await.bytes, DATA);

    // The connection breaks after the first chunk.
    let id = queued(&api, "c2").await;
    let broken: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"0123456789")),
        Err(std::io::Error::other("connection reset by peer")),
    ];
    let body = Body::from_stream(futures_util::stream::iter(broken));
    let gone = api
        .send_body(
            Method::PUT,
            &format!("/v2/images/{id}/file"),
            &[OCTETS, ACCEPT_JSON],
            body,
        )
        .await;
    assert_eq!(gone.status, StatusCode::BAD_REQUEST, "{}", gone.body);
    assert_eq!(status_of(&api, &id).await, "queued");
    let staging = std::fs::read_dir(api.data().join("staging"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| !entry.file_name().to_string_lossy().ends_with(".lock"))
        .count();
    assert_eq!(staging, 0, "nothing staged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_cancels_a_running_upload_and_waits_for_its_rollback() {
    let api = TestApi::new().await;
    let id = queued(&api, "x1").await;
    // One chunk, then the client stalls forever.
    let stalled = futures_util::stream::iter(vec![Ok::<Bytes, std::io::Error>(
        Bytes::from_static(b"0123456789"),
    )])
    .chain(futures_util::stream::pending());
    let request = axum::http::Request::put(format!("/v2/images/{id}/file"))
        .header("content-type", "application/octet-stream")
        .header("accept", "application/json")
        .body(Body::from_stream(stalled))
        .unwrap();
    let upload = {
        let state = api.state.clone();
        tokio::spawn(async move {
            use tower::ServiceExt;
            portcullis::api::app(state).oneshot(request).await.unwrap()
        })
    };
    while status_of(&api, &id).await != "saving" {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    api.state.lifecycle().cancel();
    let response = upload.await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The handler answered only after the rollback: queued, nothing stored.
    assert_eq!(status_of(&api, &id).await, "queued");
    assert!(store_is_empty(&api));
    assert_eq!(api.state.lifecycle().in_flight(), 0);
}

#[tokio::test]
async fn tags_deactivation_and_delete() {
    let api = TestApi::new().await;
    let id = queued(&api, "t1").await;
    let tag = format!("/v2/images/{id}/tags/blue");
    assert_eq!(
        api.send(Method::PUT, &tag, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&format!("/v2/images/{id}")).await.json()["tags"],
        serde_json::json!(["blue"])
    );
    assert_eq!(
        api.send(Method::DELETE, &tag, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    let again = api.send(Method::DELETE, &tag, &[ACCEPT_JSON]).await;
    assert_eq!(
        (again.status, again.message().as_str()),
        (StatusCode::NOT_FOUND, "The resource could not be found.")
    );
    let unknown = api
        .send(
            Method::PUT,
            "/v2/images/ebc5bdb1-f39b-4daf-8363-50a2b24540c7/tags/x",
            &[ACCEPT_JSON],
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.message().as_str()),
        (
            StatusCode::NOT_FOUND,
            "Image ebc5bdb1-f39b-4daf-8363-50a2b24540c7 not found."
        )
    );
    let long = api
        .send(
            Method::PUT,
            &format!("/v2/images/{id}/tags/{}", "x".repeat(256)),
            &[ACCEPT_JSON],
        )
        .await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);
    let get_tag = api.send(Method::GET, &tag, &[]).await;
    assert_eq!(
        (get_tag.status, get_tag.header("allow")),
        (StatusCode::METHOD_NOT_ALLOWED, Some("PUT, DELETE"))
    );

    let deactivate = format!("/v2/images/{id}/actions/deactivate");
    let queued_refusal = api.send(Method::POST, &deactivate, &[ACCEPT_JSON]).await;
    assert_eq!(
        (queued_refusal.status, queued_refusal.message().as_str()),
        (
            StatusCode::FORBIDDEN,
            "Not allowed to deactivate image in status 'queued'"
        )
    );
    assert_eq!(
        put_file(&api, &id, DATA).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.send(Method::POST, &deactivate, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(status_of(&api, &id).await, "deactivated");
    let reactivate = format!("/v2/images/{id}/actions/reactivate");
    assert_eq!(
        api.send(Method::POST, &reactivate, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(status_of(&api, &id).await, "active");

    let image = format!("/v2/images/{id}");
    assert_eq!(
        api.send(Method::DELETE, &image, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    let gone = api.send(Method::DELETE, &image, &[ACCEPT_JSON]).await;
    assert_eq!(
        (gone.status, gone.message()),
        (
            StatusCode::NOT_FOUND,
            format!("Failed to find image {id} to delete")
        )
    );
    assert!(store_is_empty(&api), "the data went with the image");

    let protected = create(&api, r#"{"name": "t2", "protected": true}"#)
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = api
        .send(
            Method::DELETE,
            &format!("/v2/images/{protected}"),
            &[ACCEPT_JSON],
        )
        .await;
    assert_eq!(
        (refused.status, refused.message()),
        (
            StatusCode::FORBIDDEN,
            format!("Image {protected} is protected and cannot be deleted.")
        )
    );
}

#[tokio::test]
async fn data_over_the_size_cap_is_a_413_and_nothing_is_kept() {
    let api = TestApi::with_config(Default::default(), "image_size_cap = 20\n").await;
    let id = queued(&api, "cap").await;
    let refused = put_file(&api, &id, DATA).await;
    assert_eq!(
        (refused.status, refused.message().as_str()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "The incoming image is too large: The provided image is too large."
        )
    );
    assert_eq!(status_of(&api, &id).await, "queued");
    assert!(store_is_empty(&api));
}

/// A 500 says nothing about its cause (here: the stored file is gone).
#[tokio::test]
async fn internal_failures_are_a_500_without_details() {
    let api = TestApi::new().await;
    let id = queued(&api, "lost").await;
    assert_eq!(
        put_file(&api, &id, DATA).await.status,
        StatusCode::NO_CONTENT
    );
    for entry in std::fs::read_dir(api.data().join("images")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let failed = api
        .send(
            Method::GET,
            &format!("/v2/images/{id}/file"),
            &[ACCEPT_JSON],
        )
        .await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        failed.message(),
        "The server has either erred or is incapable of performing the requested operation."
    );
    assert!(
        !failed.body.contains("images/") && !failed.body.contains(&id),
        "{}",
        failed.body
    );
}
