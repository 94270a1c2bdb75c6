//! The facade on a real data directory (SQLite file, filesystem store):
//! the use cases end to end, and the properties a server relies on (the
//! futures are `Send`, the app is shared).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;

use super::*;
use crate::clock::FixedClock;
use crate::config::{Config, Overrides};
use crate::image::{ContainerFormat, DiskFormat, ImageId, Status};

fn assert_send<T: Send>(_: &T) {}

/// Never run: it only has to compile. A server spawns these futures on a
/// multi-threaded runtime, which needs them `Send`; the app itself is shared.
#[allow(dead_code)]
fn futures_are_send(app: &App, ctx: &RequestContext, id: ImageId) {
    fn shared<T: Send + Sync>() {}
    shared::<App>();
    let stream = futures_util::stream::iter(Vec::<Result<Bytes, std::io::Error>>::new());
    let data = UploadData {
        stream,
        declared_size: None,
    };
    let mut progress = |_: u64| {};
    assert_send(&app.upload(ctx, id, data, &mut progress));
    assert_send(&app.download(ctx, id, None));
    assert_send(&app.create(ctx, CreateRequest::default()));
    assert_send(&app.update(ctx, id, &[]));
    assert_send(&app.list(ctx, ListQuery::default()));
    assert_send(&app.deactivate(ctx, id));
    assert_send(&app.add_tag(ctx, id, "t"));
}

async fn open(dir: &std::path::Path) -> App {
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(FixedClock(
        crate::clock::parse_rfc3339("2026-06-01T00:00:00Z").unwrap(),
    ));
    let config = Config::load(&dir.join("data"), &Overrides::default()).unwrap();
    App::open(&config, clock).await.unwrap()
}

fn raw_request(name: &str) -> CreateRequest {
    CreateRequest {
        name: Some(name.to_owned()),
        disk_format: Some(DiskFormat::Raw),
        container_format: Some(ContainerFormat::Bare),
        ..CreateRequest::default()
    }
}

fn chunks(
    data: &[u8],
) -> UploadData<impl futures_core::Stream<Item = Result<Bytes, std::io::Error>> + Unpin> {
    let items: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(100_000)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    UploadData {
        stream: futures_util::stream::iter(items),
        declared_size: Some(data.len() as u64),
    }
}

async fn collect(download: Download) -> Result<Vec<u8>, Error> {
    let mut stream = download.stream;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_use_cases_on_a_real_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let app = open(dir.path()).await;
    assert_eq!(app.settings().store_id, "fs");
    assert!(app.settings().hash_threads >= 1);
    let ctx = RequestContext::local_admin();

    // Create: Glance's rules apply to requests built without JSON too.
    let mut bad = raw_request("bad");
    bad.properties.insert("status".into(), "active".into());
    let err = app.create(&ctx, bad).await.unwrap_err();
    assert_eq!(err.kind(), "read_only");
    assert!(
        app.list(&ctx, ListQuery::default())
            .await
            .unwrap()
            .images
            .is_empty()
    );

    let image = app.create(&ctx, raw_request("one")).await.unwrap();
    assert_eq!(image.status, Status::Queued);

    // A queued image cannot be deactivated, and says why.
    let err = app.deactivate(&ctx, image.id).await.unwrap_err();
    assert_eq!(err.kind(), "status_not_allowed");
    assert!(err.to_string().contains("is queued"), "{err}");

    // Upload, then download whole (verified) and in ranges.
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let active = app
        .upload(&ctx, image.id, chunks(&data), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(active.status, Status::Active);
    let download = app.download(&ctx, image.id, None).await.unwrap();
    assert_eq!(download.len, data.len() as u64);
    assert_eq!(collect(download).await.unwrap(), data);
    for (range, expected) in [
        (ByteRange::FromTo { first: 0, last: 15 }, &data[..16]),
        (ByteRange::From(999_990), &data[999_990..]),
        (ByteRange::Suffix(300_000), &data[700_000..]),
        (
            ByteRange::FromTo {
                first: 262_140,
                last: 262_150,
            },
            &data[262_140..=262_150],
        ),
    ] {
        let download = app.download(&ctx, image.id, Some(range)).await.unwrap();
        let resolved = download.range.unwrap();
        assert_eq!(resolved.len(), expected.len() as u64, "{range}");
        assert_eq!(collect(download).await.unwrap(), expected, "{range}");
    }
    let err = app
        .download(&ctx, image.id, Some(ByteRange::From(1_000_000)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "range_not_satisfiable");

    // Corruption at rest: the stream ends with an error item, after the data.
    let stored = std::fs::canonicalize(dir.path().join("data"))
        .unwrap()
        .join("images")
        .join(image.id.to_string());
    let mut corrupted = data.clone();
    corrupted[500_000] ^= 1;
    std::fs::write(&stored, &corrupted).unwrap();
    let download = app.download(&ctx, image.id, None).await.unwrap();
    let err = collect(download).await.unwrap_err();
    assert_eq!(err.kind(), "corrupted");
    assert_eq!(err.transfer_image(), Some(image.id));
    // Stored data shorter than the record: refused before a byte goes out,
    // whole or ranged (the store reports the stored length with the reader).
    std::fs::write(&stored, &data[..600_000]).unwrap();
    for range in [
        None,
        Some(ByteRange::From(0)),
        Some(ByteRange::From(700_000)),
    ] {
        let err = app.download(&ctx, image.id, range).await.unwrap_err();
        assert_eq!(err.kind(), "corrupted", "{range:?}: {err}");
        assert!(err.to_string().contains("600000"), "{range:?}: {err}");
    }
    std::fs::write(&stored, &data).unwrap();

    // Update: one change set, Glance's rules, one save.
    let patch = crate::wire::parse_patch(
        br#"[{"op":"add","path":"/os_distro","value":"cirros"},{"op":"replace","path":"/name","value":"renamed"}]"#,
    )
    .unwrap();
    let updated = app.update(&ctx, image.id, &patch).await.unwrap();
    assert_eq!(updated.name.as_deref(), Some("renamed"));
    assert_eq!(updated.properties["os_distro"], "cirros");
    let err = app
        .update(&ctx, image.id, &[PatchOp::Remove("nope".into())])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "no_such_property");

    // Tags.
    let tagged = app.add_tag(&ctx, image.id, "t1").await.unwrap();
    assert!(tagged.tags.contains("t1"));
    let untagged = app.remove_tag(&ctx, image.id, "t1").await.unwrap();
    assert!(untagged.tags.is_empty());
    assert_eq!(
        app.remove_tag(&ctx, image.id, "t1")
            .await
            .unwrap_err()
            .kind(),
        "tag_not_found"
    );

    // Deactivate twice is deactivated (Glance: a no-op), reactivate restores.
    let deactivated = app.deactivate(&ctx, image.id).await.unwrap();
    assert_eq!(deactivated.status, Status::Deactivated);
    let again = app.deactivate(&ctx, image.id).await.unwrap();
    assert_eq!(again.status, Status::Deactivated);
    let reactivated = app.reactivate(&ctx, image.id).await.unwrap();
    assert_eq!(reactivated.status, Status::Active);

    // List pages carry the next marker while full.
    let second = app.create(&ctx, raw_request("two")).await.unwrap();
    let page = app
        .list(
            &ctx,
            ListQuery {
                limit: Some(1),
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.images.len(), 1);
    assert_eq!(page.next_marker, Some(page.images[0].id));
    let page = app
        .list(
            &ctx,
            ListQuery {
                limit: Some(5),
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.images.len(), 2);
    assert_eq!(page.next_marker, None);

    // Delete removes the record and the data.
    app.delete(&ctx, image.id).await.unwrap();
    assert!(!stored.exists());
    assert_eq!(
        app.show(&ctx, image.id).await.unwrap_err().kind(),
        "not_found"
    );
    app.delete(&ctx, second.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_refuses_a_signed_image_without_a_key_manager_before_creating_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = open(dir.path()).await;
    let ctx = RequestContext::local_admin();
    let mut request = raw_request("signed");
    for (name, value) in [
        ("img_signature", "c2ln"),
        ("img_signature_hash_method", "SHA-256"),
        ("img_signature_key_type", "RSA-PSS"),
        (
            "img_signature_certificate_uuid",
            "e77879f6-911d-4b90-a2a3-026c00c6ec31",
        ),
    ] {
        request.properties.insert(name.into(), value.into());
    }
    let err = app
        .ingest(&ctx, request, chunks(b"data"), &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "no_cert_dir");
    assert!(!err.is_rejection());
    assert_eq!(err.transfer_image(), None);
    assert!(
        app.list(&ctx, ListQuery::default())
            .await
            .unwrap()
            .images
            .is_empty()
    );
}

type Chunk = Result<Bytes, std::io::Error>;

/// A stream fed chunk by chunk through `tx` (the stage waits for each).
fn fed() -> (
    tokio::sync::mpsc::Sender<Chunk>,
    UploadData<impl futures_core::Stream<Item = Chunk> + Unpin + Send>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        tx,
        UploadData {
            stream: Box::pin(stream),
            declared_size: None,
        },
    )
}

async fn status_of(app: &App, id: ImageId) -> Status {
    app.show(&RequestContext::local_admin(), id)
        .await
        .unwrap()
        .status
}

/// A glance-direct stage owns its image through the upload lease while it
/// writes: an import meanwhile is a conflict; once the stage committed, its
/// lease is gone and the import runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_while_the_stage_still_writes_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(open(dir.path()).await);
    let ctx = RequestContext::local_admin();
    let id = app.create(&ctx, raw_request("staged")).await.unwrap().id;
    let (tx, data) = fed();
    let stage = tokio::spawn({
        let (app, ctx) = (app.clone(), ctx.clone());
        async move { app.stage(&ctx, id, data).await }
    });
    tx.send(Ok(Bytes::from_static(b"first half, ")))
        .await
        .unwrap();
    while status_of(&app, id).await != Status::Uploading {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let err = app.import(&ctx, id, "glance-direct").await.unwrap_err();
    assert_eq!(err.kind(), "conflict", "{err}");
    assert_eq!(status_of(&app, id).await, Status::Uploading);

    tx.send(Ok(Bytes::from_static(b"second half")))
        .await
        .unwrap();
    drop(tx);
    let staged = stage.await.unwrap().unwrap();
    assert_eq!(staged.status, Status::Uploading);
    let sql = &app.uploader.leases.sql;
    assert!(
        sql.leases().await.unwrap().is_empty(),
        "a finished stage holds no lease"
    );
    let active = app.import(&ctx, id, "glance-direct").await.unwrap();
    assert_eq!(active.status, Status::Active);
    assert_eq!(active.size, Some(23));
}

/// A stage that dies mid-write (its future dropped: no cleanup runs, as in
/// a crash) is recovered once its lease expired: `queued`, its staging gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_dead_mid_write_is_recovered_once_its_lease_expired() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(FixedClock(
        crate::clock::parse_rfc3339("2026-06-01T00:00:00Z").unwrap(),
    ));
    let overrides = Overrides {
        upload_lease: Some(std::time::Duration::from_secs(1)),
        ..Overrides::default()
    };
    let config = Config::load(&dir.path().join("data"), &overrides).unwrap();
    let app = Arc::new(App::open(&config, clock).await.unwrap());
    let ctx = RequestContext::local_admin();
    let id = app.create(&ctx, raw_request("staged")).await.unwrap().id;
    let (tx, data) = fed();
    let stage = tokio::spawn({
        let (app, ctx) = (app.clone(), ctx.clone());
        async move { app.stage(&ctx, id, data).await }
    });
    tx.send(Ok(Bytes::from(vec![7u8; 300_000]))).await.unwrap();
    let staging = dir.path().join("data").join("staging");
    let staged_files = || std::fs::read_dir(&staging).unwrap().count();
    while status_of(&app, id).await != Status::Uploading || staged_files() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stage.abort();
    assert!(stage.await.unwrap_err().is_cancelled());
    // While its lease lives, nobody touches it (this process is alive).
    assert_eq!(app.recover().await.unwrap(), vec![]);
    assert_eq!(status_of(&app, id).await, Status::Uploading);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(app.recover().await.unwrap(), vec![id]);
    assert_eq!(status_of(&app, id).await, Status::Queued);
    assert_eq!(staged_files(), 0, "the dead stage's staging is aborted");
    assert!(app.uploader.leases.sql.leases().await.unwrap().is_empty());
    // And it takes a new stage.
    app.stage(&ctx, id, chunks(b"again")).await.unwrap();
    assert_eq!(
        app.import(&ctx, id, "glance-direct").await.unwrap().status,
        Status::Active
    );
}
