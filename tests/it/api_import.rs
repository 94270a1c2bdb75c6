//! HTTP tests of interoperable import (`glance-direct`): `PUT …/stage` then
//! `POST …/import` through `oneshot` on `api::app()` over a real data
//! directory, with the signed sample image and its tampered twin, and
//! Glance 33's statuses and messages for the refusals.

use axum::body::Body;
use axum::http::{Method, StatusCode};

use super::api::{Answer, TestApi};
use super::ingest::{md5_hex, sha512_hex, store_files_in};
use super::scenario::Data;
use super::support::testdata;
use portcullis::api::ServerOptions;

const JSON: (&str, &str) = ("content-type", "application/json");
const ACCEPT_JSON: (&str, &str) = ("accept", "application/json");
const OCTETS: (&str, &str) = ("content-type", "application/octet-stream");
const GLANCE_DIRECT: &str = r#"{"method": {"name": "glance-direct"}}"#;

/// A server that verifies signatures with the test certificates.
async fn signing_api() -> TestApi {
    let config = format!(
        "cert_dir = {:?}\n",
        testdata().join("certs").display().to_string()
    );
    TestApi::with_config(ServerOptions::default(), &config).await
}

/// A queued qcow2/bare image carrying the sample's signature properties.
async fn signed_image(api: &TestApi, name: &str) -> String {
    let mut body: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(testdata().join("sample/properties.json")).expect("properties"),
    )
    .expect("a JSON object");
    body.insert("name".into(), name.into());
    body.insert("disk_format".into(), "qcow2".into());
    body.insert("container_format".into(), "bare".into());
    let created = api
        .send_body(
            Method::POST,
            "/v2/images",
            &[JSON, ACCEPT_JSON],
            Body::from(serde_json::Value::Object(body).to_string()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.header("openstack-image-import-methods"),
        Some("glance-direct")
    );
    created.json()["id"].as_str().expect("an id").to_owned()
}

async fn stage(api: &TestApi, id: &str, data: Vec<u8>) -> Answer {
    api.send_body(
        Method::PUT,
        &format!("/v2/images/{id}/stage"),
        &[OCTETS, ACCEPT_JSON],
        Body::from(data),
    )
    .await
}

async fn import(api: &TestApi, id: &str, body: &str) -> Answer {
    api.send_body(
        Method::POST,
        &format!("/v2/images/{id}/import"),
        &[JSON, ACCEPT_JSON],
        Body::from(body.to_owned()),
    )
    .await
}

async fn image(api: &TestApi, id: &str) -> serde_json::Value {
    api.get(&format!("/v2/images/{id}")).await.json()
}

/// The files under the store's `staging/` and `images/` (lock files aside).
fn stored_files(api: &TestApi) -> Vec<String> {
    store_files_in(&api.data())
}

#[tokio::test]
async fn a_staged_signed_image_imports_to_active_with_its_checksums() {
    let api = signing_api().await;
    let id = signed_image(&api, "import-signed").await;
    let data = Data::Signed.bytes();

    let staged = stage(&api, &id, data.clone()).await;
    assert_eq!(staged.status, StatusCode::NO_CONTENT, "{}", staged.body);
    let uploading = image(&api, &id).await;
    assert_eq!(uploading["status"], "uploading");
    assert_eq!(uploading["checksum"], serde_json::Value::Null);
    // The staged data waits in the store, and is not the image's data yet.
    assert_eq!(stored_files(&api).len(), 1, "{:?}", stored_files(&api));
    let no_data = api.get(&format!("/v2/images/{id}/file")).await;
    assert_eq!(no_data.status, StatusCode::NO_CONTENT);

    let imported = import(&api, &id, GLANCE_DIRECT).await;
    assert_eq!(imported.status, StatusCode::ACCEPTED, "{}", imported.body);
    let active = image(&api, &id).await;
    assert_eq!(active["status"], "active");
    assert_eq!(active["size"], data.len());
    assert_eq!(active["checksum"], md5_hex(&data));
    assert_eq!(active["os_hash_value"], sha512_hex(&data));
    assert_eq!(active["virtual_size"], 64 * 1024 * 1024);
    // Only the image's data is left: the staged object went.
    assert_eq!(stored_files(&api), vec![format!("images/{id}")]);
    let download = api.get(&format!("/v2/images/{id}/file")).await;
    assert_eq!(download.status, StatusCode::OK);
    assert!(
        download.bytes == data,
        "the downloaded bytes are the staged ones"
    );
}

#[tokio::test]
async fn a_tampered_signed_import_is_refused_with_the_reason_and_nothing_left() {
    let api = signing_api().await;
    let id = signed_image(&api, "import-tampered").await;
    let staged = stage(&api, &id, Data::Tampered.bytes()).await;
    assert_eq!(staged.status, StatusCode::NO_CONTENT, "{}", staged.body);

    let refused = import(&api, &id, GLANCE_DIRECT).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused
            .message()
            .starts_with(&format!("Signature verification failed for image {id}")),
        "{}",
        refused.body
    );
    let queued = image(&api, &id).await;
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["checksum"], serde_json::Value::Null);
    assert!(stored_files(&api).is_empty(), "{:?}", stored_files(&api));
    // Nothing staged any more: a second import needs a new stage.
    let again = import(&api, &id, GLANCE_DIRECT).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn deleting_a_staged_image_removes_its_staged_data() {
    let api = signing_api().await;
    let id = signed_image(&api, "stage-deleted").await;
    let staged = stage(&api, &id, Data::Signed.bytes()).await;
    assert_eq!(staged.status, StatusCode::NO_CONTENT, "{}", staged.body);
    assert_eq!(stored_files(&api).len(), 1);
    let deleted = api
        .send(Method::DELETE, &format!("/v2/images/{id}"), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(stored_files(&api).is_empty(), "{:?}", stored_files(&api));
}

#[tokio::test]
async fn import_without_a_stage_is_glances_409() {
    let api = signing_api().await;
    let id = signed_image(&api, "import-unstaged").await;
    let refused = import(&api, &id, GLANCE_DIRECT).await;
    assert_eq!(
        (refused.status, refused.message().as_str()),
        (
            StatusCode::CONFLICT,
            "Image needs to be staged before 'glance-direct' method can be used"
        )
    );
    assert_eq!(image(&api, &id).await["status"], "queued");
}

#[tokio::test]
async fn staging_needs_a_queued_image() {
    let api = signing_api().await;
    let id = signed_image(&api, "stage-twice").await;
    let first = stage(&api, &id, Data::Signed.bytes()).await;
    assert_eq!(first.status, StatusCode::NO_CONTENT, "{}", first.body);
    let second = stage(&api, &id, Data::Signed.bytes()).await;
    assert_eq!(
        (second.status, second.message().as_str()),
        (
            StatusCode::CONFLICT,
            "Image status transition from uploading to uploading is not allowed"
        )
    );
    // An upload to a staged image is refused as well.
    let upload = api
        .send_body(
            Method::PUT,
            &format!("/v2/images/{id}/file"),
            &[OCTETS, ACCEPT_JSON],
            Body::from(Data::Signed.bytes()),
        )
        .await;
    assert_eq!(upload.status, StatusCode::CONFLICT, "{}", upload.body);
    assert_eq!(image(&api, &id).await["status"], "uploading");
    let imported = import(&api, &id, GLANCE_DIRECT).await;
    assert_eq!(imported.status, StatusCode::ACCEPTED, "{}", imported.body);
    let active = stage(&api, &id, Data::Signed.bytes()).await;
    assert_eq!(
        (active.status, active.message().as_str()),
        (
            StatusCode::CONFLICT,
            "Image status transition from active to uploading is not allowed"
        )
    );
}

#[tokio::test]
async fn a_failed_stage_leaves_the_image_queued_with_nothing_staged() {
    let api = signing_api().await;
    let id = signed_image(&api, "stage-short").await;
    let short = api
        .send_body(
            Method::PUT,
            &format!("/v2/images/{id}/stage"),
            &[OCTETS, ("x-openstack-image-size", "100000000"), ACCEPT_JSON],
            Body::from(Data::Signed.bytes()),
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST, "{}", short.body);
    assert!(
        short.message().starts_with("Size mismatch"),
        "{}",
        short.body
    );
    assert_eq!(image(&api, &id).await["status"], "queued");
    assert!(stored_files(&api).is_empty(), "{:?}", stored_files(&api));
}

#[tokio::test]
async fn other_import_methods_and_bodies_are_glances_400() {
    let api = signing_api().await;
    let id = signed_image(&api, "import-methods").await;
    for method in ["web-download", "copy-image", "glance-download", "bogus"] {
        let refused = import(
            &api,
            &id,
            &format!(r#"{{"method": {{"name": "{method}"}}}}"#),
        )
        .await;
        assert_eq!(
            (refused.status, refused.message()),
            (
                StatusCode::BAD_REQUEST,
                format!("Unknown import method name '{method}'.")
            )
        );
    }
    let no_method = import(&api, &id, r#"{"stores": ["fs"]}"#).await;
    assert_eq!(
        (no_method.status, no_method.message().as_str()),
        (
            StatusCode::BAD_REQUEST,
            "Import request requires a 'method' field."
        )
    );
    let no_name = import(&api, &id, r#"{"method": {}}"#).await;
    assert_eq!(
        (no_name.status, no_name.message().as_str()),
        (
            StatusCode::BAD_REQUEST,
            "Import request requires a 'name' field."
        )
    );
    let info = api.get("/v2/info/import").await;
    assert_eq!(
        info.json()["import-methods"]["value"],
        serde_json::json!(["glance-direct"])
    );
    let unknown = import(&api, "not-an-id", GLANCE_DIRECT).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}
