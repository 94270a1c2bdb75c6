//! Scale-out (issue 7): several nodes over one database and one store.
//!
//! The lease suite runs unchanged on two backend pairs: SQLite + a
//! filesystem store shared by two `App`s (two nodes on one machine), and
//! PostgreSQL + SeaweedFS (S3), the servers .ci/run starts
//! (`PORTCULLIS_TEST_POSTGRES_URL`, `PORTCULLIS_TEST_S3_URL`): one upload at
//! a time per image across nodes (the other node gets `conflict`), an
//! expired lease recovered by another node (staging aborted, nothing left
//! in the bucket), a node recovering its own dead upload at once, a stalled
//! owner unable to commit after its lease expired, a database refusing a
//! store it does not belong to. Then the sweeper (`portcullis gc`) on the
//! filesystem and on S3, and a real `kill -9` of an ingest against
//! PostgreSQL + S3 recovered by another node once the lease expired.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use portcullis::app::{App, CreateRequest, RequestContext, UploadData};
use portcullis::clock::{Clock, SystemClock};
use portcullis::config::{Config, Overrides};
use portcullis::image::{ContainerFormat, DiskFormat, ImageId, Status};
use portcullis::repo::{Change, ImageRepo, LeaseCheck, LeaseHolder, NewLease, ProcessId, SqlRepo};
use portcullis::store::{Store, StoreConfig};

use super::repo::{TestDatabase, test_database};
use super::store::{S3Probe, pattern, s3_test_url};

/// One database and one store, shared by the nodes of a test.
struct Shared {
    dir: tempfile::TempDir,
    database: String,
    store: String,
    probe: Option<S3Probe>,
    _db: Option<TestDatabase>,
}

#[derive(Debug, Clone, Copy)]
enum Backends {
    SqliteFs,
    PostgresS3,
}

impl Shared {
    /// `None` when the developer opted out of server tests.
    async fn new(backends: Backends) -> Option<Shared> {
        let dir = tempfile::tempdir().unwrap();
        match backends {
            Backends::SqliteFs => Some(Shared {
                database: format!("sqlite://{}", dir.path().join("shared.db").display()),
                store: format!("file://{}", dir.path().join("store").display()),
                dir,
                probe: None,
                _db: None,
            }),
            Backends::PostgresS3 => {
                let db = test_database().await?;
                let url = s3_test_url()?;
                let StoreConfig::S3(mut s3) = url.parse::<StoreConfig>().unwrap() else {
                    panic!("PORTCULLIS_TEST_S3_URL {url:?} is not an s3:// url");
                };
                let unique = format!("scale{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                s3.prefix = match s3.prefix.as_str() {
                    "" => unique,
                    prefix => format!("{prefix}/{unique}"),
                };
                let probe = S3Probe {
                    endpoint: s3.endpoint.clone().unwrap(),
                    bucket: s3.bucket.clone(),
                    region: s3.region.clone().unwrap_or_else(|| "us-east-1".to_owned()),
                    prefix: s3.prefix.clone(),
                };
                Some(Shared {
                    database: db.url.clone(),
                    store: StoreConfig::S3(s3).to_string(),
                    dir,
                    probe: Some(probe),
                    _db: Some(db),
                })
            }
        }
    }

    fn config(&self, node: &str, lease: Duration) -> Config {
        let overrides = Overrides {
            database: Some(self.database.clone()),
            store: Some(self.store.clone()),
            node_id: Some(node.to_owned()),
            upload_lease: Some(lease),
            ..Overrides::default()
        };
        Config::load(&self.dir.path().join(node), &overrides).unwrap()
    }

    async fn node(&self, node: &str, lease: Duration) -> Arc<App> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Arc::new(App::open(&self.config(node, lease), clock).await.unwrap())
    }

    /// The shared repository and store, opened directly (no lease holder):
    /// what a node that dies would have left, built by hand.
    async fn raw(&self) -> (SqlRepo, Store) {
        let repo = SqlRepo::open(&self.database, Arc::new(SystemClock))
            .await
            .unwrap();
        let store = Store::open_url(&self.store).unwrap();
        (repo, store)
    }

    /// Objects and staging in the store, seen without asking portcullis.
    fn leftovers(&self) -> (Vec<String>, Vec<String>) {
        match &self.probe {
            Some(probe) => {
                let found = probe.leftovers();
                (found.objects, found.staging)
            }
            None => {
                let root = self.dir.path().join("store");
                (files(&root.join("images")), files(&root.join("staging")))
            }
        }
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn raw_request(name: &str) -> CreateRequest {
    CreateRequest {
        name: Some(name.to_owned()),
        disk_format: Some(DiskFormat::Raw),
        container_format: Some(ContainerFormat::Bare),
        ..CreateRequest::default()
    }
}

type Chunk = Result<Bytes, std::io::Error>;

/// A stream fed by the test, chunk by chunk (a slow client).
fn fed_stream() -> (
    tokio::sync::mpsc::Sender<Chunk>,
    std::pin::Pin<Box<dyn futures_core::Stream<Item = Chunk> + Send>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(1);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (tx, Box::pin(stream))
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A lease held by a process that exists nowhere (a made-up pid of this boot).
fn dead_process() -> ProcessId {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    ProcessId::from_stored(format!("boot:{}/pid:4194304/start:1", boot.trim()))
}

/// Claims `id` for a node that then dies mid-upload: lease taken, staging
/// created and recorded, data written (past one S3 part), never renewed,
/// never aborted. Returns the lease.
async fn die_mid_upload(
    shared: &Shared,
    id: ImageId,
    holder: LeaseHolder,
    ttl: Duration,
) -> NewLease {
    let (repo, store) = shared.raw().await;
    let ctx = RequestContext::local_admin();
    let queued = repo.get(&ctx, id).await.unwrap();
    let lease = NewLease {
        token: uuid::Uuid::new_v4().simple().to_string(),
        holder,
        ttl,
    };
    repo.save(
        &ctx,
        &Change::claim_upload(queued).with_lease(LeaseCheck::Take(lease.clone())),
    )
    .await
    .unwrap();
    let mut staged = store.stage(id).await.unwrap();
    assert!(
        repo.record_intent(id, &lease.token, staged.intent())
            .await
            .unwrap(),
        "the fresh lease takes the intent"
    );
    let data = pattern(9 * 1024 * 1024, 3);
    for piece in data.chunks(1024 * 1024) {
        staged.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    // Dies: no abort, no rollback, no renewal.
    let _intent = staged.into_intent();
    repo.close().await;
    lease
}

mod leases {
    use super::*;

    async fn one_upload_at_a_time_across_nodes(backends: Backends) {
        let Some(shared) = Shared::new(backends).await else {
            return;
        };
        let lease = Duration::from_secs(30);
        let a = shared.node("node-a", lease).await;
        let b = shared.node("node-b", lease).await;
        let ctx = RequestContext::local_admin();
        let image = a.create(&ctx, raw_request("shared")).await.unwrap();
        let id = image.id;
        let data = pattern(3 * 1024 * 1024 + 17, 1);

        // Node A uploads slowly ...
        let (tx, stream) = fed_stream();
        let uploader = {
            let a = a.clone();
            let ctx = ctx.clone();
            let declared = data.len() as u64;
            tokio::spawn(async move {
                let mut progress = |_: u64| {};
                a.upload(
                    &ctx,
                    id,
                    UploadData {
                        stream,
                        declared_size: Some(declared),
                    },
                    &mut progress,
                )
                .await
            })
        };
        tx.send(Ok(Bytes::copy_from_slice(&data[..1024 * 1024])))
            .await
            .unwrap();
        wait_until("node A's upload to be saving", || async {
            b.show(&ctx, id).await.unwrap().status == Status::Saving
        })
        .await;

        // ... so node B's upload of the same image is a conflict (409).
        let (_tx_b, stream_b) = fed_stream();
        let mut progress = |_: u64| {};
        let err = b
            .upload(
                &ctx,
                id,
                UploadData {
                    stream: stream_b,
                    declared_size: None,
                },
                &mut progress,
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "conflict", "{err}");
        // Node B's sweep sees a live upload: nothing to collect.
        assert!(b.sweep(true).await.unwrap().is_empty());

        // A finishes (after more than one heartbeat of a slow client would
        // take is irrelevant here: the lease is 30 s); B serves the data.
        for piece in data[1024 * 1024..].chunks(512 * 1024) {
            tx.send(Ok(Bytes::copy_from_slice(piece))).await.unwrap();
        }
        drop(tx);
        let active = uploader.await.unwrap().unwrap();
        assert_eq!(active.status, Status::Active);
        let download = b.download(&ctx, id, None).await.unwrap();
        let mut stream = download.stream;
        let mut read = Vec::new();
        while let Some(chunk) = stream.next().await {
            read.extend_from_slice(&chunk.unwrap());
        }
        assert!(
            read == data,
            "node B read back other bytes than node A stored"
        );
        // The commit released the lease; nothing stale anywhere.
        let report = a.sweep(true).await.unwrap();
        assert!(report.is_empty(), "{report:?}");
        let (objects, staging) = shared.leftovers();
        assert_eq!(objects.len(), 1, "{objects:?}");
        assert!(staging.is_empty(), "{staging:?}");
    }

    /// `node` stages `stream` for image `id` on a task of its own.
    fn spawn_stage(
        node: &Arc<App>,
        id: ImageId,
        stream: std::pin::Pin<Box<dyn futures_core::Stream<Item = Chunk> + Send>>,
        declared_size: Option<u64>,
    ) -> tokio::task::JoinHandle<Result<portcullis::image::Image, portcullis::app::Error>> {
        let node = node.clone();
        tokio::spawn(async move {
            let data = UploadData {
                stream,
                declared_size,
            };
            node.stage(&RequestContext::local_admin(), id, data).await
        })
    }

    /// glance-direct on any store: node A stages (slowly), node B's import
    /// meanwhile is a conflict and its sweep leaves the live stage alone;
    /// once staged, node B imports it. A stage node A dies in is recovered
    /// by node B once its lease expired, its multipart upload or staging
    /// file aborted.
    async fn a_stage_on_one_node_imports_on_the_other(backends: Backends) {
        let Some(shared) = Shared::new(backends).await else {
            return;
        };
        let a = shared.node("node-a", Duration::from_secs(2)).await;
        let b = shared.node("node-b", Duration::from_secs(30)).await;
        let ctx = RequestContext::local_admin();
        let id = a.create(&ctx, raw_request("staged")).await.unwrap().id;
        let data = pattern(9 * 1024 * 1024 + 5, 4);
        let (tx, stream) = fed_stream();
        let stage = spawn_stage(&a, id, stream, Some(data.len() as u64));
        tx.send(Ok(data.slice(..1024 * 1024))).await.unwrap();
        wait_until("node A's stage to be uploading", || async {
            b.show(&ctx, id).await.unwrap().status == Status::Uploading
        })
        .await;
        let err = b.import(&ctx, id, "glance-direct").await.unwrap_err();
        assert_eq!(err.kind(), "conflict", "{err}");
        assert!(b.sweep(true).await.unwrap().is_empty());
        // Longer than node A's lease: its heartbeat keeps the stage alive.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        for piece in data[1024 * 1024..].chunks(1024 * 1024) {
            tx.send(Ok(Bytes::copy_from_slice(piece))).await.unwrap();
        }
        drop(tx);
        assert_eq!(stage.await.unwrap().unwrap().status, Status::Uploading);
        let active = b.import(&ctx, id, "glance-direct").await.unwrap();
        assert_eq!(active.status, Status::Active);
        assert_eq!(active.size, Some(data.len() as u64));
        let download = a.download(&ctx, id, None).await.unwrap();
        let mut stream = download.stream;
        let mut read = Vec::new();
        while let Some(chunk) = stream.next().await {
            read.extend_from_slice(&chunk.unwrap());
        }
        assert!(read == data, "the imported data differs from the staged");
        let (objects, staging) = shared.leftovers();
        assert_eq!(objects.len(), 1, "only the image's data: {objects:?}");
        assert!(staging.is_empty(), "{staging:?}");

        // A stage node A dies in (its future dropped: no cleanup runs).
        let dead = a.create(&ctx, raw_request("dead stage")).await.unwrap().id;
        let (tx, stream) = fed_stream();
        let stage = spawn_stage(&a, dead, stream, None);
        tx.send(Ok(pattern(9 * 1024 * 1024, 5))).await.unwrap();
        wait_until("the dead stage's staging", || async {
            b.show(&ctx, dead).await.unwrap().status == Status::Uploading
                && !shared.leftovers().1.is_empty()
        })
        .await;
        stage.abort();
        let _ = stage.await;
        assert_eq!(b.recover().await.unwrap(), Vec::<ImageId>::new());
        tokio::time::sleep(Duration::from_millis(2300)).await;
        assert_eq!(b.recover().await.unwrap(), vec![dead]);
        assert_eq!(b.show(&ctx, dead).await.unwrap().status, Status::Queued);
        let (objects, staging) = shared.leftovers();
        assert_eq!(objects.len(), 1, "{objects:?}");
        assert!(staging.is_empty(), "the dead stage's staging: {staging:?}");
    }

    async fn an_expired_lease_is_recovered_by_another_node(backends: Backends) {
        let Some(shared) = Shared::new(backends).await else {
            return;
        };
        let b = shared.node("node-b", Duration::from_secs(30)).await;
        let ctx = RequestContext::local_admin();
        let id = b.create(&ctx, raw_request("doomed")).await.unwrap().id;
        let ttl = Duration::from_secs(2);
        let holder = LeaseHolder {
            node_id: "node-a".to_owned(),
            // Alive, on purpose: only expiry may free another node's lease.
            process: ProcessId::current(),
        };
        let dead = die_mid_upload(&shared, id, holder, ttl).await;
        let (_, staging) = shared.leftovers();
        assert_eq!(
            staging.len(),
            1,
            "the dead upload's staging exists: {staging:?}"
        );

        // Before expiry: another node leaves it alone.
        assert_eq!(b.recover().await.unwrap(), Vec::<ImageId>::new());
        assert_eq!(b.show(&ctx, id).await.unwrap().status, Status::Saving);

        // After expiry the owner can neither renew nor commit ...
        tokio::time::sleep(ttl + Duration::from_millis(300)).await;
        let (repo, _) = shared.raw().await;
        assert!(!repo.renew_lease(id, &dead.token, ttl).await.unwrap());
        let saving = repo.get(&ctx, id).await.unwrap();
        let mut late = Change::rollback_upload(saving);
        late.lease = Some(LeaseCheck::Held {
            token: dead.token.clone(),
        });
        assert_eq!(repo.save(&ctx, &late).await.unwrap_err().kind(), "conflict");
        repo.close().await;

        // ... and node B recovers it: queued, staging aborted, nothing left.
        assert_eq!(b.recover().await.unwrap(), vec![id]);
        let image = b.show(&ctx, id).await.unwrap();
        assert_eq!(image.status, Status::Queued);
        assert_eq!(shared.leftovers(), (vec![], vec![]));
        assert!(b.sweep(true).await.unwrap().is_empty());
        // The image can be uploaded again, through either node.
        let data = pattern(100_000, 2);
        let mut progress = |_: u64| {};
        let items: Vec<Chunk> = vec![Ok(data.clone())];
        let active = b
            .upload(
                &ctx,
                id,
                UploadData {
                    stream: futures_util::stream::iter(items),
                    declared_size: Some(data.len() as u64),
                },
                &mut progress,
            )
            .await
            .unwrap();
        assert_eq!(active.status, Status::Active);
    }

    async fn a_node_recovers_its_own_dead_upload_at_once(backends: Backends) {
        let Some(shared) = Shared::new(backends).await else {
            return;
        };
        let first = shared.node("node-b", Duration::from_secs(30)).await;
        let ctx = RequestContext::local_admin();
        let id = first
            .create(&ctx, raw_request("restarted"))
            .await
            .unwrap()
            .id;
        let holder = LeaseHolder {
            node_id: "node-b".to_owned(),
            process: dead_process(),
        };
        // A long lease: only the process's death can free it early.
        die_mid_upload(&shared, id, holder, Duration::from_secs(3600)).await;
        // Another node must wait for the hour ...
        let other = shared.node("node-c", Duration::from_secs(30)).await;
        assert_eq!(other.show(&ctx, id).await.unwrap().status, Status::Saving);
        // ... node-b, restarted, recovers it while opening.
        let restarted = shared.node("node-b", Duration::from_secs(30)).await;
        assert_eq!(
            restarted.show(&ctx, id).await.unwrap().status,
            Status::Queued
        );
        assert_eq!(shared.leftovers(), (vec![], vec![]));
    }

    async fn a_database_refuses_a_store_it_does_not_belong_to(backends: Backends) {
        let Some(shared) = Shared::new(backends).await else {
            return;
        };
        let app = shared.node("node-a", Duration::from_secs(30)).await;
        drop(app);
        let other_store = match backends {
            Backends::SqliteFs => {
                format!("file://{}", shared.dir.path().join("elsewhere").display())
            }
            Backends::PostgresS3 => shared.store.replacen("/scale", "/other", 1),
        };
        assert_ne!(other_store, shared.store);
        let overrides = Overrides {
            database: Some(shared.database.clone()),
            store: Some(other_store),
            node_id: Some("node-a".to_owned()),
            ..Overrides::default()
        };
        let config = Config::load(&shared.dir.path().join("node-a"), &overrides).unwrap();
        let err = App::open(&config, Arc::new(SystemClock)).await.unwrap_err();
        assert_eq!(err.kind(), "foreign_store", "{err}");
        let message = err.to_string();
        assert!(message.contains("belongs to the store"), "{message}");
    }

    /// One `#[tokio::test]` per suite function, run on `$backends`.
    macro_rules! suite_on {
        ($backends:expr) => {
            use super::*;
            suite_on!(@tests $backends,
                one_upload_at_a_time_across_nodes,
                a_stage_on_one_node_imports_on_the_other,
                an_expired_lease_is_recovered_by_another_node,
                a_node_recovers_its_own_dead_upload_at_once,
                a_database_refuses_a_store_it_does_not_belong_to);
        };
        (@tests $backends:expr, $($name:ident),*) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($backends).await;
                }
            )*
        };
    }

    mod sqlite_fs {
        suite_on!(Backends::SqliteFs);
    }

    mod postgres_s3 {
        suite_on!(Backends::PostgresS3);
    }
}

/// The real binary running `command` with the shared backends, this
/// test's environment and its config file.
fn portcullis(shared: &Shared, node: &str, command: &[&str]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("portcullis"));
    cmd.env_remove("PORTCULLIS_LOG")
        .env_remove("PORTCULLIS_NOW")
        .env("PORTCULLIS_DATA_DIR", shared.dir.path().join(node))
        .env("PORTCULLIS_DATABASE_URL", &shared.database)
        .env("PORTCULLIS_STORE_URL", &shared.store)
        .env("PORTCULLIS_NODE_ID", node)
        .args(command)
        .arg("--config")
        .arg(config_file(shared));
    cmd
}

/// A config file with short leases (and so a short sweep grace).
fn config_file(shared: &Shared) -> PathBuf {
    let path = shared.dir.path().join("portcullis.toml");
    if !path.exists() {
        std::fs::write(&path, "upload_lease_seconds = 2\n").unwrap();
    }
    path
}

fn json_of(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {output:?}"))
}

fn ingest(shared: &Shared, node: &str, name: &str, data: &[u8]) -> String {
    use std::io::Write;
    let mut child = portcullis(shared, node, &["ingest", "-", "--name", name])
        .args(["--disk-format", "raw"])
        .args(["--container-format", "bare", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    json_of(&output)["id"].as_str().unwrap().to_owned()
}

fn gc(shared: &Shared, node: &str, dry_run: bool) -> serde_json::Value {
    let mut cmd = portcullis(shared, node, &["gc", "--format", "json"]);
    if dry_run {
        cmd.arg("--dry-run");
    }
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    json_of(&output)
}

fn ids(report: &serde_json::Value, field: &str) -> Vec<String> {
    let mut found: Vec<String> = report[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| match entry {
            serde_json::Value::String(id) => id.clone(),
            object => object["image_id"].as_str().unwrap().to_owned(),
        })
        .collect();
    found.sort();
    found
}

mod gc {
    use super::*;

    /// Collects an object no record names, the data of a deleted image
    /// (a delete that died before removing it), and staging no upload owns;
    /// keeps an active image's data; `--dry-run` only reports.
    async fn collects_only_what_nothing_references(backends: Backends) {
        let Some(shared) = Shared::new(backends).await else {
            return;
        };
        let kept = ingest(&shared, "node-a", "kept", &pattern(200_000, 5));
        let deleted = ingest(&shared, "node-a", "deleted", &pattern(150_000, 6));
        // Keep a copy of the deleted image's data, then put it back after
        // the delete: what a delete killed between its two steps leaves.
        let (repo, store) = shared.raw().await;
        let ctx = RequestContext::local_admin();
        let deleted_id: ImageId = deleted.parse().unwrap();
        let saved = {
            let image = repo.get(&ctx, deleted_id).await.unwrap();
            let mut reader = store.open(&image.locations[0], None).await.unwrap();
            let mut bytes = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut bytes)
                .await
                .unwrap();
            bytes
        };
        let output = portcullis(&shared, "node-a", &["images", "delete", &deleted])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        let mut again = store.stage(deleted_id).await.unwrap();
        again.write(Bytes::from(saved)).await.unwrap();
        again.commit().await.unwrap();
        // Data for an id no record has, and staging nobody owns.
        let orphan = ImageId::new_random();
        let mut staged = store.stage(orphan).await.unwrap();
        staged.write(pattern(1000, 7)).await.unwrap();
        staged.commit().await.unwrap();
        let stray = ImageId::new_random();
        let mut staged = store.stage(stray).await.unwrap();
        staged.write(pattern(1000, 8)).await.unwrap();
        let _intent = staged.into_intent();
        repo.close().await;
        let (objects, staging) = shared.leftovers();
        assert_eq!(
            (objects.len(), staging.len()),
            (3, 1),
            "{objects:?} {staging:?}"
        );

        // Young data is never collected (an upload may be between steps).
        let report = gc(&shared, "node-a", true);
        assert_eq!(ids(&report, "objects"), Vec::<String>::new(), "{report}");
        tokio::time::sleep(Duration::from_millis(2300)).await;

        let mut expected = vec![deleted.clone(), orphan.to_string()];
        expected.sort();
        let report = gc(&shared, "node-a", true);
        assert_eq!(report["dry_run"], true);
        assert_eq!(ids(&report, "objects"), expected, "{report}");
        assert_eq!(ids(&report, "staging"), vec![stray.to_string()], "{report}");
        assert_eq!(shared.leftovers().0.len(), 3, "a dry run removed something");

        let report = gc(&shared, "node-b", false);
        assert_eq!(report["dry_run"], false);
        assert_eq!(ids(&report, "objects"), expected, "{report}");
        assert_eq!(ids(&report, "staging"), vec![stray.to_string()], "{report}");
        let reasons: Vec<&str> = report["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|object| object["reason"].as_str().unwrap())
            .collect();
        assert!(
            reasons.contains(&"deleted_image") && reasons.contains(&"no_such_image"),
            "{report}"
        );
        let (objects, staging) = shared.leftovers();
        assert_eq!(objects.len(), 1, "{objects:?}");
        assert!(objects[0].ends_with(&kept), "{objects:?}");
        assert!(staging.is_empty(), "{staging:?}");
        // The kept image still downloads, verified.
        let target = shared.dir.path().join("kept.raw").display().to_string();
        let output = portcullis(
            &shared,
            "node-b",
            &["images", "download", &kept, "-o", &target],
        )
        .output()
        .unwrap();
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        assert!(
            gc(&shared, "node-b", false)["objects"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn collects_only_what_nothing_references_on_the_filesystem() {
        collects_only_what_nothing_references(Backends::SqliteFs).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn collects_only_what_nothing_references_on_s3() {
        collects_only_what_nothing_references(Backends::PostgresS3).await;
    }
}

/// kill -9 of an ingest streaming into PostgreSQL + S3: another node leaves
/// it alone while the lease lives, then recovers it (queued, multipart
/// upload aborted, nothing in the bucket).
#[test]
fn a_killed_node_is_recovered_by_another_once_its_lease_expired() {
    use std::io::Write;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(shared) = runtime.block_on(Shared::new(Backends::PostgresS3)) else {
        return;
    };
    let mut child = portcullis(&shared, "node-a", &["ingest", "-", "--name", "killed"])
        .args(["--disk-format", "raw"])
        .args(["--container-format", "bare", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&pattern(9 * 1024 * 1024, 9)).unwrap();
    stdin.flush().unwrap();
    let (repo, _) = runtime.block_on(shared.raw());
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let saving = runtime
            .block_on(repo.images_with_status(Status::Saving))
            .unwrap();
        if let Some(image) = saving.first()
            && !shared.leftovers().1.is_empty()
        {
            break image.id;
        }
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(stdin);

    // Node B, at once: the lease (2 s) still runs; node B may not know
    // whether node A is alive, so it leaves the upload alone.
    let report = gc(&shared, "node-b", false);
    assert_eq!(
        ids(&report, "recovered_at_open"),
        Vec::<String>::new(),
        "{report}"
    );
    assert_eq!(ids(&report, "recovered"), Vec::<String>::new(), "{report}");
    let image = runtime
        .block_on(repo.get(&RequestContext::local_admin(), id))
        .unwrap();
    assert_eq!(image.status, Status::Saving);
    std::thread::sleep(Duration::from_millis(2500));
    // Opening recovers it (every command does); gc reports it apart.
    let report = gc(&shared, "node-b", true);
    assert_eq!(
        ids(&report, "recovered_at_open"),
        vec![id.to_string()],
        "{report}"
    );
    assert_eq!(ids(&report, "recovered"), Vec::<String>::new(), "{report}");
    let image = runtime
        .block_on(repo.get(&RequestContext::local_admin(), id))
        .unwrap();
    assert_eq!(image.status, Status::Queued);
    assert_eq!(shared.leftovers(), (vec![], vec![]));
    runtime.block_on(repo.close());
}

/// Two real `portcullis serve` processes on different ports sharing
/// PostgreSQL and SeaweedFS (leases of 2 s, so recovery shows quickly).
mod serve_nodes {
    use super::*;
    use crate::serve::Server;

    struct Nodes {
        shared: Shared,
        a: Option<Server>,
        b: Server,
        http: reqwest::Client,
    }

    fn start(shared: &Shared, node: &str) -> Server {
        let config = config_file(shared);
        Server::start(
            &shared.dir.path().join(node),
            &[
                "--database",
                &shared.database,
                "--store",
                &shared.store,
                "--node-id",
                node,
                "--config",
                &config.display().to_string(),
            ],
        )
    }

    /// `request` as a member of `project` (noauth headers), or as the admin.
    fn as_project(
        request: reqwest::RequestBuilder,
        project: Option<&str>,
    ) -> reqwest::RequestBuilder {
        match project {
            Some(project) => request
                .header("x-project-id", project)
                .header("x-roles", "member"),
            None => request,
        }
    }

    impl Nodes {
        async fn new(quota_mib: Option<u64>) -> Option<Nodes> {
            let shared = Shared::new(Backends::PostgresS3).await?;
            let mut config = "upload_lease_seconds = 2\n".to_owned();
            if let Some(mib) = quota_mib {
                config.push_str(&format!("[repo.quota.default]\nimage_size_total = {mib}\n"));
            }
            std::fs::write(shared.dir.path().join("portcullis.toml"), config).unwrap();
            let a = start(&shared, "node-a");
            let b = start(&shared, "node-b");
            Some(Nodes {
                shared,
                a: Some(a),
                b,
                http: reqwest::Client::new(),
            })
        }

        fn a(&self) -> &str {
            &self.a.as_ref().unwrap().url
        }

        async fn create(&self, url: &str, name: &str, project: Option<&str>) -> String {
            let request = self
                .http
                .post(format!("{url}/v2/images"))
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"name": "{name}", "disk_format": "raw", "container_format": "bare"}}"#
                ));
            let response = as_project(request, project).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 201);
            let body: serde_json::Value = response.json().await.unwrap();
            body["id"].as_str().unwrap().to_owned()
        }

        fn upload(
            &self,
            url: &str,
            id: &str,
            body: reqwest::Body,
            project: Option<&str>,
        ) -> reqwest::RequestBuilder {
            let request = self
                .http
                .put(format!("{url}/v2/images/{id}/file"))
                .header("content-type", "application/octet-stream")
                .body(body);
            as_project(request, project)
        }

        async fn status(&self, url: &str, id: &str) -> String {
            let body: serde_json::Value = self
                .http
                .get(format!("{url}/v2/images/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["status"].as_str().unwrap().to_owned()
        }

        async fn download(&self, url: &str, id: &str) -> Vec<u8> {
            let response = self
                .http
                .get(format!("{url}/v2/images/{id}/file"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
            response.bytes().await.unwrap().to_vec()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn any_node_serves_any_request_and_one_upload_wins() {
        let Some(nodes) = Nodes::new(None).await else {
            return;
        };
        let b = nodes.b.url.clone();
        // Uploads through both nodes at once.
        let one = nodes.create(nodes.a(), "one", None).await;
        let two = nodes.create(&b, "two", None).await;
        let (data_one, data_two) = (
            pattern(12 * 1024 * 1024 + 5, 11),
            pattern(3 * 1024 * 1024, 12),
        );
        let (first, second) = tokio::join!(
            nodes
                .upload(nodes.a(), &one, data_one.clone().into(), None)
                .send(),
            nodes.upload(&b, &two, data_two.clone().into(), None).send(),
        );
        assert_eq!(first.unwrap().status().as_u16(), 204);
        assert_eq!(second.unwrap().status().as_u16(), 204);
        // Uploaded through one, downloaded through the other.
        assert!(nodes.download(&b, &one).await == data_one);
        assert!(nodes.download(nodes.a(), &two).await == data_two);

        // The same image from both nodes: one 409.
        let same = nodes.create(nodes.a(), "same", None).await;
        let (tx, stream) = fed_stream();
        let slow = tokio::spawn(
            nodes
                .upload(nodes.a(), &same, reqwest::Body::wrap_stream(stream), None)
                .send(),
        );
        tx.send(Ok(pattern(1024 * 1024, 13))).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while nodes.status(&b, &same).await != "saving" {
            assert!(
                Instant::now() < deadline,
                "the upload through node A never started"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let rival = nodes
            .upload(&b, &same, pattern(1000, 14).into(), None)
            .send()
            .await
            .unwrap();
        assert_eq!(rival.status().as_u16(), 409);
        // Longer than the lease: the heartbeat keeps a slow client's upload alive.
        tokio::time::sleep(Duration::from_millis(3000)).await;
        tx.send(Ok(pattern(1024 * 1024, 15))).await.unwrap();
        drop(tx);
        assert_eq!(slow.await.unwrap().unwrap().status().as_u16(), 204);
        assert_eq!(nodes.status(&b, &same).await, "active");
        let (objects, staging) = nodes.shared.leftovers();
        assert_eq!(
            (objects.len(), staging.len()),
            (3, 0),
            "{objects:?} {staging:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_killed_mid_upload_is_recovered_by_the_other() {
        let Some(mut nodes) = Nodes::new(None).await else {
            return;
        };
        let b = nodes.b.url.clone();
        let id = nodes.create(nodes.a(), "killed", None).await;
        let (tx, stream) = fed_stream();
        let upload = tokio::spawn(
            nodes
                .upload(nodes.a(), &id, reqwest::Body::wrap_stream(stream), None)
                .send(),
        );
        // Past one 8 MiB part, so the multipart upload holds data.
        for _ in 0..10 {
            tx.send(Ok(pattern(1024 * 1024, 16))).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while nodes.status(&b, &id).await != "saving" || nodes.shared.leftovers().1.is_empty() {
            assert!(
                Instant::now() < deadline,
                "the upload never reached the store"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // kill -9 (Server's drop sends SIGKILL).
        drop(nodes.a.take());
        drop(tx);
        let _ = upload.await;
        // Node B's sweeper recovers it once the 2 s lease expired.
        let deadline = Instant::now() + Duration::from_secs(20);
        while nodes.status(&b, &id).await != "queued" {
            assert!(
                Instant::now() < deadline,
                "node B never recovered the image"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(
            nodes.shared.leftovers(),
            (vec![], vec![]),
            "parts or objects left"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quota_race_across_nodes_lets_exactly_one_through() {
        let Some(nodes) = Nodes::new(Some(1)).await else {
            return;
        };
        let b = nodes.b.url.clone();
        let first = nodes.create(nodes.a(), "first", Some("p1")).await;
        let second = nodes.create(&b, "second", Some("p1")).await;
        // 700 KiB each under a 1 MiB quota: each fits alone, both do not.
        let data = pattern(700 * 1024, 17);
        let (one, two) = tokio::join!(
            nodes
                .upload(nodes.a(), &first, data.clone().into(), Some("p1"))
                .send(),
            nodes
                .upload(&b, &second, data.clone().into(), Some("p1"))
                .send(),
        );
        let mut codes = [
            one.unwrap().status().as_u16(),
            two.unwrap().status().as_u16(),
        ];
        codes.sort_unstable();
        assert_eq!(codes[0], 204, "{codes:?}");
        assert!(codes[1] == 413 || codes[1] == 409, "{codes:?}");
        let statuses = [
            nodes.status(&b, &first).await,
            nodes.status(nodes.a(), &second).await,
        ];
        assert_eq!(
            statuses.iter().filter(|status| *status == "active").count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|status| *status == "queued").count(),
            1
        );
        let (objects, staging) = nodes.shared.leftovers();
        assert_eq!(
            (objects.len(), staging.len()),
            (1, 0),
            "{objects:?} {staging:?}"
        );
    }
}
