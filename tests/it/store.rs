//! The store conformance suite: every test in `conformance` is written once
//! and runs against each backend, the filesystem store on a temporary
//! directory (`store::fs::*`) and the S3 store on a real S3 server
//! (`store::s3::*`: SeaweedFS, started by .ci/run, named by
//! `PORTCULLIS_TEST_S3_URL`). What is left behind is checked independently
//! of the store's own listings: the directories themselves, or the S3 server
//! asked by `curl --aws-sigv4` (ListObjectsV2, ListMultipartUploads,
//! ListParts). Filesystem-only behaviour (the upload lock, disk full, paths)
//! is tested at the end.
//!
//! SeaweedFS 4.48 supports what the S3 store needs (these tests exercise
//! each): CreateMultipartUpload, UploadPart, CompleteMultipartUpload (also
//! with one empty part), AbortMultipartUpload, ListMultipartUploads with a
//! prefix, ListParts, ListObjectsV2, HEAD, ranged GET, DELETE. One
//! difference from AWS: aborting an upload that is already gone answers 204
//! where AWS answers 404 NoSuchUpload; the store takes both as success.

// The suite's helpers are not #[test] functions, so .clippy.toml's
// allow-unwrap-in-tests does not reach them; a failed unwrap here is a
// failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use portcullis::image::{ImageId, Location};
use portcullis::store::{
    BufferBound, ByteRange, Error, S3Config, StagingIntent, Store, StoreConfig,
};
use tokio::io::AsyncReadExt;

const MIB: usize = 1024 * 1024;

/// Deterministic, incompressible-looking bytes (xorshift), different per seed.
pub(crate) fn pattern(n_bytes: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n_bytes + 8);
    while out.len() < n_bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(n_bytes);
    Bytes::from(out)
}

/// `data` cut into chunks of `size` bytes (slices: no copies).
fn chunks(data: &Bytes, size: usize) -> Vec<Bytes> {
    (0..data.len())
        .step_by(size)
        .map(|start| data.slice(start..(start + size).min(data.len())))
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn read_all(store: &Store, location: &Location, range: Option<ByteRange>) -> Vec<u8> {
    let mut reader = store.open(location, range).await.unwrap();
    let mut data = Vec::new();
    reader.read_to_end(&mut data).await.unwrap();
    let selected = reader.range();
    assert_eq!(
        data.len() as u64,
        selected.end - selected.start,
        "{range:?}: the reader's range and its bytes disagree"
    );
    data
}

/// Stages, writes `data` in chunks of `chunk` bytes, commits.
async fn put(store: &Store, id: ImageId, data: &Bytes, chunk: usize) -> Location {
    let mut staged = store.stage(id).await.unwrap();
    for piece in chunks(data, chunk) {
        staged.write(piece).await.unwrap();
    }
    assert_eq!(staged.bytes_written(), data.len() as u64);
    staged.commit().await.unwrap()
}

/// What a store leaves behind, seen without asking the store.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Leftovers {
    /// Committed objects (file names in images/, or S3 keys).
    pub(crate) objects: Vec<String>,
    /// Staging files, or multipart upload ids in progress.
    pub(crate) staging: Vec<String>,
}

/// The S3 server, asked directly with curl (its own SigV4 signing).
pub(crate) struct S3Probe {
    pub(crate) endpoint: String,
    pub(crate) bucket: String,
    pub(crate) region: String,
    pub(crate) prefix: String,
}

impl S3Probe {
    fn curl(&self, path_and_query: &str) -> (u16, String) {
        let credentials = format!(
            "{}:{}",
            std::env::var("AWS_ACCESS_KEY_ID").unwrap(),
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap()
        );
        let output = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "--aws-sigv4"])
            .arg(format!("aws:amz:{}:s3", self.region))
            .arg("-u")
            .arg(credentials)
            .arg(format!("{}/{}{path_and_query}", self.endpoint, self.bucket))
            .output()
            .expect("curl runs (.ci/run installs it)");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.trim().parse().unwrap(), body.to_owned())
    }

    fn values_of<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        xml.split(&open)
            .skip(1)
            .map(|rest| rest.split(&close).next().unwrap())
            .collect()
    }

    pub(crate) fn leftovers(&self) -> Leftovers {
        let prefix = format!("{}%2F", self.prefix.replace('/', "%2F"));
        let (status, objects) = self.curl(&format!("?list-type=2&prefix={prefix}"));
        assert_eq!(status, 200, "ListObjectsV2: {objects}");
        let (status, uploads) = self.curl(&format!("?prefix={prefix}&uploads="));
        assert_eq!(status, 200, "ListMultipartUploads: {uploads}");
        Leftovers {
            objects: Self::values_of(&objects, "Key")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            staging: Self::values_of(&uploads, "UploadId")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }

    /// Whether the server still knows the multipart upload (ListParts).
    fn upload_exists(&self, key: &str, upload_id: &str) -> bool {
        let (status, body) = self.curl(&format!("/{key}?uploadId={upload_id}"));
        match status {
            200 => true,
            404 => {
                assert!(body.contains("NoSuchUpload"), "{body}");
                false
            }
            other => panic!("ListParts answered {other}: {body}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Fs,
    S3,
}

/// One backend, in a place of its own (a temporary directory, or a fresh
/// prefix in the test bucket), and a way to open it again as "another node".
struct Harness {
    backend: Backend,
    config: StoreConfig,
    store: Store,
    _dir: Option<tempfile::TempDir>,
    probe: Option<S3Probe>,
}

/// The S3 test URL, or `None` (skipped, said on stderr) when the developer
/// opted out; without either, the test fails saying how to start a server.
pub(crate) fn s3_test_url() -> Option<String> {
    match std::env::var("PORTCULLIS_TEST_S3_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("PORTCULLIS_SKIP_SERVER_TESTS").as_deref() == Ok("1") => {
            eprintln!("skipped: PORTCULLIS_SKIP_SERVER_TESTS=1 and no PORTCULLIS_TEST_S3_URL");
            None
        }
        _ => panic!(
            "PORTCULLIS_TEST_S3_URL is not set: the S3 store tests need a real S3 server. \
             Run .ci/run, or start SeaweedFS with \
             `source .ci/seaweedfs.sh && seaweedfs_install && seaweedfs_start` \
             (it exports PORTCULLIS_TEST_S3_URL and the AWS_* credentials), \
             or set PORTCULLIS_SKIP_SERVER_TESTS=1 to skip the server tests"
        ),
    }
}

impl Harness {
    /// `None` when S3 tests are skipped by the developer's explicit opt-out.
    fn new(backend: Backend) -> Option<Harness> {
        match backend {
            Backend::Fs => {
                let dir = tempfile::tempdir().unwrap();
                let config = StoreConfig::Fs {
                    root: dir.path().to_path_buf(),
                };
                Some(Harness {
                    backend,
                    store: Store::from_config(&config).unwrap(),
                    config,
                    _dir: Some(dir),
                    probe: None,
                })
            }
            Backend::S3 => Some(Harness::s3(s3_test_url()?, |_| {})),
        }
    }

    /// An S3 harness in a fresh prefix, with `tune` applied to the settings.
    fn s3(url: String, tune: impl FnOnce(&mut S3Config)) -> Harness {
        let StoreConfig::S3(mut s3) = url.parse::<StoreConfig>().unwrap() else {
            panic!("PORTCULLIS_TEST_S3_URL {url:?} is not an s3:// url");
        };
        let unique = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        s3.prefix = match s3.prefix.as_str() {
            "" => unique,
            prefix => format!("{prefix}/{unique}"),
        };
        tune(&mut s3);
        let probe = S3Probe {
            endpoint: s3
                .endpoint
                .clone()
                .expect("the test url names its endpoint"),
            bucket: s3.bucket.clone(),
            region: s3.region.clone().unwrap_or_else(|| "us-east-1".to_owned()),
            prefix: s3.prefix.clone(),
        };
        let config = StoreConfig::S3(s3);
        Harness {
            backend: Backend::S3,
            store: Store::from_config(&config).unwrap(),
            config,
            _dir: None,
            probe: Some(probe),
        }
    }

    /// The same store opened again, sharing nothing with `self.store`: what
    /// another process or node would open.
    fn another_node(&self) -> Store {
        Store::from_config(&self.config).unwrap()
    }

    fn leftovers(&self) -> Leftovers {
        match (&self.store, &self.probe) {
            (_, Some(probe)) => probe.leftovers(),
            (Store::Fs(fs), None) => Leftovers {
                objects: files_in(fs.images_dir()),
                staging: files_in(fs.staging_dir())
                    .into_iter()
                    .filter(|name| !name.ends_with(".lock"))
                    .collect(),
            },
            (Store::S3(_), None) => unreachable!("an S3 harness has a probe"),
        }
    }

    /// Whether the staged data an intent names still exists (staging file,
    /// or multipart upload known to the server).
    fn staging_exists(&self, intent: &StagingIntent) -> bool {
        let json: serde_json::Value = serde_json::from_str(&intent.to_string()).unwrap();
        match &self.probe {
            Some(probe) => probe.upload_exists(
                json["key"].as_str().unwrap(),
                json["upload_id"].as_str().unwrap(),
            ),
            None => {
                let Store::Fs(fs) = &self.store else {
                    unreachable!()
                };
                fs.staging_dir()
                    .join(json["file"].as_str().unwrap())
                    .exists()
            }
        }
    }

    /// A payload spanning several S3 parts (and as much on the filesystem).
    fn multi_part_len(&self) -> usize {
        20 * MIB + 123
    }
}

mod conformance {
    use super::*;

    pub(super) async fn put_then_get_whole_and_by_ranges(h: Harness) {
        let id = ImageId::new_random();
        let data = h.multi_part_len();
        let data = pattern(data, 1);
        // Uneven chunks, so part boundaries fall inside chunks.
        let location = put(&h.store, id, &data, MIB - 3).await;
        assert_eq!(location, h.store.location_of(id));
        assert!(h.store.owns(&location));
        assert_eq!(
            location.metadata.get("store").map(String::as_str),
            Some(h.store.id())
        );
        match h.backend {
            Backend::Fs => assert!(location.url.starts_with("file:///"), "{}", location.url),
            Backend::S3 => {
                let probe = h.probe.as_ref().unwrap();
                assert_eq!(
                    location.url,
                    format!("s3://{}/{}/{id}", probe.bucket, probe.prefix)
                );
            }
        }

        let whole = read_all(&h.store, &location, None).await;
        assert!(whole == data, "the data read back differs");
        let reader = h.store.open(&location, None).await.unwrap();
        assert_eq!(reader.len(), data.len() as u64);
        assert_eq!(reader.range(), 0..data.len() as u64);

        let len = data.len() as u64;
        let boundary = 8 * MIB as u64;
        for (range, expected) in [
            (ByteRange::FromTo { first: 0, last: 9 }, 0..10),
            (ByteRange::FromTo { first: 0, last: 0 }, 0..1),
            (
                ByteRange::FromTo {
                    first: boundary - 5,
                    last: boundary + 5,
                },
                boundary - 5..boundary + 6,
            ),
            (ByteRange::From(len - 1), len - 1..len),
            (ByteRange::From(12_345), 12_345..len),
            (ByteRange::Suffix(100), len - 100..len),
            (ByteRange::Suffix(len + 100), 0..len),
            (
                ByteRange::FromTo {
                    first: len - 10,
                    last: len + 1000,
                },
                len - 10..len,
            ),
        ] {
            let reader = h.store.open(&location, Some(range)).await.unwrap();
            assert_eq!(reader.len(), len, "{range:?}");
            assert_eq!(reader.range(), expected, "{range:?}");
            let bytes = read_all(&h.store, &location, Some(range)).await;
            let want = &data[expected.start as usize..expected.end as usize];
            assert!(bytes == want, "{range:?}: wrong bytes");
        }
        for range in [
            ByteRange::From(len),
            ByteRange::From(len + 1),
            ByteRange::FromTo {
                first: len,
                last: len + 10,
            },
            ByteRange::FromTo { first: 5, last: 4 },
            ByteRange::Suffix(0),
        ] {
            match h.store.open(&location, Some(range)).await {
                Err(err @ Error::RangeNotSatisfiable { .. }) => {
                    assert_eq!(err.kind(), "range_not_satisfiable");
                    let Error::RangeNotSatisfiable { len: stored, .. } = err else {
                        unreachable!()
                    };
                    assert_eq!(stored, len, "{range:?}");
                }
                other => panic!("{range:?}: expected range_not_satisfiable, got {other:?}"),
            }
        }
        assert_eq!(
            h.leftovers(),
            Leftovers {
                objects: vec![match h.backend {
                    Backend::Fs => id.to_string(),
                    Backend::S3 => format!("{}/{id}", h.probe.as_ref().unwrap().prefix),
                }],
                staging: vec![],
            }
        );
    }

    pub(super) async fn empty_data_commits_too(h: Harness) {
        let id = ImageId::new_random();
        let location = h.store.stage(id).await.unwrap().commit().await.unwrap();
        let reader = h.store.open(&location, None).await.unwrap();
        assert!(reader.is_empty());
        assert!(read_all(&h.store, &location, None).await.is_empty());
        assert!(matches!(
            h.store
                .open(&location, Some(ByteRange::FromTo { first: 0, last: 0 }))
                .await,
            Err(Error::RangeNotSatisfiable { len: 0, .. })
        ));
        assert_eq!(h.leftovers().objects.len(), 1);
        assert!(h.leftovers().staging.is_empty());
    }

    pub(super) async fn a_staged_upload_is_invisible_until_commit(h: Harness) {
        let id = ImageId::new_random();
        let data = pattern(h.multi_part_len(), 2);
        let mut staged = h.store.stage(id).await.unwrap();
        let intent = staged.intent().clone();
        assert_eq!(intent.image_id(), id);
        assert_eq!(intent.store_id(), h.store.id());
        for piece in chunks(&data, 256 * 1024) {
            staged.write(piece).await.unwrap();
        }
        let location = h.store.location_of(id);
        assert!(matches!(
            h.store.open(&location, None).await,
            Err(Error::Missing { .. })
        ));
        assert!(h.store.list_objects().await.unwrap().is_empty());
        assert!(h.leftovers().objects.is_empty());
        let staging = h.store.list_staged().await.unwrap();
        assert_eq!(staging.len(), 1, "{staging:?}");
        assert_eq!(staging[0].intent, intent);
        assert_eq!(staging[0].image_id, id);
        let age = staging[0].age(time::OffsetDateTime::now_utc());
        assert!(age < Duration::from_secs(600), "{age:?}");

        assert_eq!(staged.commit().await.unwrap(), location);
        assert!(read_all(&h.store, &location, None).await == data);
        assert!(h.store.list_staged().await.unwrap().is_empty());
        assert_eq!(h.leftovers().staging, Vec::<String>::new());
        assert!(!h.staging_exists(&intent));
        // Aborting the intent of a committed write keeps the data.
        h.store.abort(&intent).await.unwrap();
        assert!(read_all(&h.store, &location, None).await == data);
    }

    pub(super) async fn abort_leaves_nothing(h: Harness) {
        let id = ImageId::new_random();
        let data = pattern(h.multi_part_len(), 3);
        let mut staged = h.store.stage(id).await.unwrap();
        let intent = staged.intent().clone();
        for piece in chunks(&data, MIB) {
            staged.write(piece).await.unwrap();
        }
        assert!(h.staging_exists(&intent));
        staged.abort().await.unwrap();
        assert_eq!(h.leftovers(), Leftovers::default());
        assert!(!h.staging_exists(&intent));
        // Idempotent: already gone is success.
        h.store.abort(&intent).await.unwrap();
        assert!(h.store.list_staged().await.unwrap().is_empty());
        assert!(matches!(
            h.store.open(&h.store.location_of(id), None).await,
            Err(Error::Missing { .. })
        ));
    }

    pub(super) async fn abort_by_intent_from_another_node(h: Harness) {
        let id = ImageId::new_random();
        let data = pattern(h.multi_part_len(), 4);
        let recorded = {
            let mut staged = h.store.stage(id).await.unwrap();
            // What the owner records (in the database) before writing.
            let recorded = staged.intent().to_string();
            for piece in chunks(&data, MIB) {
                staged.write(piece).await.unwrap();
            }
            recorded
            // Dropped without commit or abort: a dead node. Drop does no I/O.
        };
        let intent: StagingIntent = recorded.parse().unwrap();
        assert!(h.staging_exists(&intent), "Drop must not clean up");

        let other = h.another_node();
        let listed = other.list_staged().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].intent, intent);
        other.abort(&intent).await.unwrap();
        assert!(!h.staging_exists(&intent));
        assert_eq!(h.leftovers(), Leftovers::default());
        other.abort(&intent).await.unwrap();
        assert!(other.list_staged().await.unwrap().is_empty());
    }

    pub(super) async fn an_aborted_intent_cannot_be_committed(h: Harness) {
        // A lease expired: another node aborted the upload while its owner,
        // stalled rather than dead, still writes. The owner's commit must
        // fail and publish nothing.
        let id = ImageId::new_random();
        let data = pattern(h.multi_part_len(), 5);
        let mut staged = h.store.stage(id).await.unwrap();
        let pieces = chunks(&data, MIB);
        let (first, rest) = pieces.split_at(pieces.len() / 2);
        for piece in first {
            staged.write(piece.clone()).await.unwrap();
        }
        h.another_node().abort(staged.intent()).await.unwrap();
        let mut failed = None;
        for piece in rest {
            if let Err(err) = staged.write(piece.clone()).await {
                failed = Some(err);
                break;
            }
        }
        let err = match failed {
            Some(err) => err,
            None => staged.commit().await.unwrap_err(),
        };
        assert!(
            matches!(err, Error::Io { .. } | Error::S3 { .. }),
            "{err:?}"
        );
        assert!(matches!(
            h.store.open(&h.store.location_of(id), None).await,
            Err(Error::Missing { .. })
        ));
        assert_eq!(h.leftovers(), Leftovers::default());
    }

    pub(super) async fn concurrent_uploads_of_different_images(h: Harness) {
        let mut tasks = Vec::new();
        for seed in 0..4u64 {
            let store = h.store.clone();
            let len = 9 * MIB + seed as usize * 1000;
            tasks.push(tokio::spawn(async move {
                let id = ImageId::new_random();
                let data = pattern(len, 100 + seed);
                let location = put(&store, id, &data, 256 * 1024).await;
                (id, location, data)
            }));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        for (id, location, data) in &results {
            assert_eq!(*location, h.store.location_of(*id));
            assert!(read_all(&h.store, location, None).await == *data, "{id}");
        }
        let mut listed: Vec<ImageId> = h
            .store
            .list_objects()
            .await
            .unwrap()
            .into_iter()
            .map(|object| object.image_id)
            .collect();
        let mut expected: Vec<ImageId> = results.iter().map(|(id, ..)| *id).collect();
        listed.sort();
        expected.sort();
        assert_eq!(listed, expected);
        assert!(h.leftovers().staging.is_empty());
    }

    pub(super) async fn delete_is_idempotent_and_foreign_names_are_refused(h: Harness) {
        let id = ImageId::new_random();
        let location = put(&h.store, id, &pattern(1000, 6), 100).await;
        h.store.delete(&location).await.unwrap();
        assert_eq!(h.leftovers(), Leftovers::default());
        h.store.delete(&location).await.unwrap();
        assert!(matches!(
            h.store.open(&location, None).await,
            Err(Error::Missing { .. })
        ));

        let own = h.store.location_of(id).url;
        let mut foreign = vec![
            format!("{own}?x=1"),
            format!("{own}#x"),
            own.to_uppercase(),
            own.replace(&id.to_string(), "not-an-id"),
            format!("{}/x", own),
            "not a url".to_owned(),
            "file:///etc/passwd".to_owned(),
            format!("http://example.com/{id}"),
        ];
        match h.backend {
            Backend::Fs => foreign.push(format!("s3://bucket/{id}")),
            Backend::S3 => {
                let probe = h.probe.as_ref().unwrap();
                foreign.extend([
                    format!("s3://other-bucket/{}/{id}", probe.prefix),
                    format!("s3://{}/{id}", probe.bucket),
                    format!("s3://{}/{}/../{id}", probe.bucket, probe.prefix),
                    format!("s3://{}/{}/x/{id}", probe.bucket, probe.prefix),
                    format!("file:///{}/{id}", probe.prefix),
                ]);
            }
        }
        for url in foreign {
            let location = Location {
                url: url.clone(),
                metadata: Default::default(),
            };
            assert!(!h.store.owns(&location), "{url}");
            let err = h.store.delete(&location).await.unwrap_err();
            assert!(matches!(err, Error::ForeignLocation { .. }), "{url}: {err}");
            assert_eq!(err.kind(), "foreign_location");
            assert!(matches!(
                h.store.open(&location, None).await,
                Err(Error::ForeignLocation { .. })
            ));
        }

        // An intent of another kind of store is refused too.
        let other_kind = match h.backend {
            Backend::Fs => {
                format!(r#"{{"store":"s3","image_id":"{id}","key":"p/{id}","upload_id":"u"}}"#)
            }
            Backend::S3 => format!(r#"{{"store":"fs","image_id":"{id}","file":"{id}.0123.part"}}"#),
        };
        let traversal = match h.backend {
            Backend::Fs => format!(r#"{{"store":"fs","image_id":"{id}","file":"../images/{id}"}}"#),
            Backend::S3 => format!(
                r#"{{"store":"s3","image_id":"{id}","key":"elsewhere/{id}","upload_id":"u"}}"#
            ),
        };
        for text in [other_kind, traversal] {
            let intent: StagingIntent = text.parse().unwrap();
            let err = h.store.abort(&intent).await.unwrap_err();
            assert!(matches!(err, Error::ForeignIntent { .. }), "{text}: {err}");
            assert_eq!(err.kind(), "foreign_intent");
        }
    }

    pub(super) async fn listing_finds_committed_objects_and_staging(h: Harness) {
        let committed: Vec<ImageId> = vec![ImageId::new_random(), ImageId::new_random()];
        for (n, id) in committed.iter().enumerate() {
            put(&h.store, *id, &pattern(1000 * (n + 1), n as u64), 333).await;
        }
        let live = ImageId::new_random();
        let mut staged = h.store.stage(live).await.unwrap();
        staged.write(pattern(4096, 9)).await.unwrap();
        let dead = ImageId::new_random();
        let mut dead_staged = h.store.stage(dead).await.unwrap();
        dead_staged.write(pattern(10, 10)).await.unwrap();
        let dead_intent = dead_staged.into_intent();

        let mut objects = h.store.list_objects().await.unwrap();
        objects.sort_by_key(|object| object.image_id);
        let mut expected = committed.clone();
        expected.sort();
        assert_eq!(
            objects.iter().map(|o| o.image_id).collect::<Vec<_>>(),
            expected
        );
        for object in &objects {
            let n = committed
                .iter()
                .position(|id| *id == object.image_id)
                .unwrap();
            assert_eq!(object.len, 1000 * (n as u64 + 1));
            assert_eq!(object.location, h.store.location_of(object.image_id));
            let age = time::OffsetDateTime::now_utc() - object.modified;
            assert!(age.whole_seconds().abs() < 600, "{age}");
        }
        let mut staging = h.store.list_staged().await.unwrap();
        staging.sort_by_key(|data| data.image_id);
        let mut staged_ids = vec![live, dead];
        staged_ids.sort();
        assert_eq!(
            staging.iter().map(|s| s.image_id).collect::<Vec<_>>(),
            staged_ids
        );
        assert!(staging.iter().any(|s| s.intent == dead_intent));
        if h.backend == Backend::Fs {
            // Sizes are known on the filesystem once the writes landed.
            staged.commit().await.unwrap();
            let left = h.store.list_staged().await.unwrap();
            assert_eq!(left.len(), 1);
            assert_eq!(left[0].len, Some(10));
        } else {
            staged.commit().await.unwrap();
        }
        // Per image, as recovery does it.
        let removed = h.store.remove_staged(dead).await.unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].intent, dead_intent);
        assert!(h.store.remove_staged(dead).await.unwrap().is_empty());
        assert!(h.store.list_staged().await.unwrap().is_empty());
        assert_eq!(h.leftovers().objects.len(), 3);
        assert!(h.leftovers().staging.is_empty());
    }

    pub(super) async fn large_upload_memory_stays_bounded(h: Harness) {
        // 40 MiB from a producer far faster than the store: without
        // backpressure the store would hold most of it.
        let id = ImageId::new_random();
        let chunk = 256 * 1024;
        let data = pattern(40 * MIB, 11);
        let mut staged = h.store.stage(id).await.unwrap();
        for piece in chunks(&data, chunk) {
            staged.write(piece).await.unwrap();
            assert!(
                staged.peak_held_bytes() <= h.store.buffer_bound().bytes(chunk as u64),
                "held {} bytes, bound {:?}",
                staged.peak_held_bytes(),
                h.store.buffer_bound()
            );
        }
        let peak = staged.peak_held_bytes();
        match h.store.buffer_bound() {
            BufferBound::OneChunk => assert_eq!(peak, chunk as u64),
            BufferBound::Parts {
                parts_in_flight,
                part_size,
            } => {
                assert_eq!((parts_in_flight, part_size), (2, 8 * MIB as u64));
                // The bound was reached (parts really were buffered) and held.
                assert_eq!(peak, 16 * MIB as u64);
            }
        }
        let location = staged.commit().await.unwrap();
        assert!(read_all(&h.store, &location, None).await == data);
    }
}

/// Runs each conformance test against both backends:
/// `store::fs::<name>` and `store::s3::<name>`.
macro_rules! conformance_suite {
    ($($name:ident),* $(,)?) => {
        mod fs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let harness = super::Harness::new(super::Backend::Fs).unwrap();
                    super::conformance::$name(harness).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(harness) = super::Harness::new(super::Backend::S3) {
                        super::conformance::$name(harness).await;
                    }
                }
            )*
        }
    };
}

conformance_suite!(
    put_then_get_whole_and_by_ranges,
    empty_data_commits_too,
    a_staged_upload_is_invisible_until_commit,
    abort_leaves_nothing,
    abort_by_intent_from_another_node,
    an_aborted_intent_cannot_be_committed,
    concurrent_uploads_of_different_images,
    delete_is_idempotent_and_foreign_names_are_refused,
    listing_finds_committed_objects_and_staging,
    large_upload_memory_stays_bounded,
);

// ---- S3 only -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_settings_change_the_part_bound_and_check_reaches_the_bucket() {
    let Some(url) = s3_test_url() else { return };
    let h = Harness::s3(url.clone(), |s3| {
        s3.part_size = 5 * MIB as u64;
        s3.parts_in_flight = 3;
    });
    h.store.check().await.unwrap();
    assert_eq!(
        h.store.buffer_bound(),
        BufferBound::Parts {
            parts_in_flight: 3,
            part_size: 5 * MIB as u64
        }
    );
    let id = ImageId::new_random();
    let data = pattern(23 * MIB, 12);
    let mut staged = h.store.stage(id).await.unwrap();
    for piece in chunks(&data, 3 * MIB) {
        staged.write(piece).await.unwrap();
    }
    assert_eq!(staged.peak_held_bytes(), 15 * MIB as u64);
    let location = staged.commit().await.unwrap();
    assert!(read_all(&h.store, &location, None).await == data);

    // A bucket that does not exist is a clear error at check time.
    let missing = Harness::s3(url, |s3| s3.bucket = "portcullis-no-such-bucket".to_owned());
    let err = missing.store.check().await.unwrap_err();
    assert_eq!(err.kind(), "s3", "{err:?}");
    assert!(
        err.to_string().contains("portcullis-no-such-bucket"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_has_no_lock_files_and_refuses_wrong_credentials() {
    let Some(url) = s3_test_url() else { return };
    let h = Harness::s3(url.clone(), |_| {});
    assert!(
        h.store
            .collect_stale_locks(Duration::ZERO, 16, false)
            .await
            .unwrap()
            .is_empty()
    );

    let wrong = Harness::s3(url, |s3| {
        s3.credentials = Some(portcullis::store::S3Credentials {
            access_key_id: "portcullis-wrong".to_owned(),
            secret_access_key: "not-the-secret-xyz".to_owned(),
            session_token: None,
        });
    });
    let err = wrong.store.stage(ImageId::new_random()).await.unwrap_err();
    let shown = format!("{err} {err:?} {:?}", wrong.store);
    assert!(!shown.contains("not-the-secret-xyz"), "{shown}");
    assert_eq!(err.kind(), "s3");
}

// ---- filesystem only ------------------------------------------------------

struct FsFixture {
    dir: tempfile::TempDir,
    store: Store,
}

impl FsFixture {
    fn new() -> FsFixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::filesystem(dir.path()).unwrap();
        FsFixture { dir, store }
    }

    fn images(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path())
            .unwrap()
            .join("images")
    }

    fn staging(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path())
            .unwrap()
            .join("staging")
    }
}

#[tokio::test]
async fn fs_commit_renames_the_staging_file_into_images() {
    let f = FsFixture::new();
    let id = ImageId::new_random();
    let mut staged = f.store.stage(id).await.unwrap();
    staged.write(pattern(100_000, 1)).await.unwrap();
    // Before the commit: only a staging file, named as its intent says.
    assert!(files_in(&f.images()).is_empty());
    let staged_files = files_in(&f.staging());
    assert_eq!(staged_files.len(), 1);
    assert!(staged_files[0].starts_with(&id.to_string()) && staged_files[0].ends_with(".part"));
    assert!(staged.intent().to_string().contains(&staged_files[0]));
    let location = staged.commit().await.unwrap();
    assert_eq!(
        location.url,
        format!("file://{}/{id}", f.images().display())
    );
    assert_eq!(files_in(&f.images()), [id.to_string()]);
    assert!(files_in(&f.staging()).is_empty());
}

#[tokio::test]
async fn fs_drop_and_cancellation_do_no_io_and_the_intent_cleans_up() {
    let f = FsFixture::new();
    let id = ImageId::new_random();
    // A cancelled task drops its staged write: the file stays (Drop does no
    // I/O) until its intent is aborted.
    let store = f.store.clone();
    let (intent_tx, intent_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut staged = store.stage(id).await.unwrap();
        staged.write(pattern(4096, 2)).await.unwrap();
        intent_tx.send(staged.intent().clone()).unwrap();
        std::future::pending::<()>().await;
        staged.commit().await
    });
    let intent = intent_rx.await.unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(files_in(&f.staging()).len(), 1);
    f.store.abort(&intent).await.unwrap();
    assert!(files_in(&f.staging()).is_empty());
    assert!(files_in(&f.images()).is_empty());
}

/// Lock files older versions left (`staging/<id>.lock`, a `flock` their
/// glance-direct stages held): collected once old and free, never while a
/// process holds the lock; a dry run only finds them; never staged data.
#[tokio::test]
async fn fs_old_lock_files_are_collected_only_when_old_and_free() {
    let f = FsFixture::new();
    let (old, held, young) = (
        ImageId::new_random(),
        ImageId::new_random(),
        ImageId::new_random(),
    );
    let lock_file = |id: ImageId| f.staging().join(format!("{id}.lock"));
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for id in [old, held] {
        let file = std::fs::File::create(lock_file(id)).unwrap();
        file.set_modified(an_hour_ago).unwrap();
    }
    std::fs::File::create(lock_file(young)).unwrap();
    // Lock files are not staged data.
    assert!(f.store.list_staged().await.unwrap().is_empty());

    // Another process holds one (flock(1) takes the same kind of lock; with
    // --no-fork the process killed below is the one holding it).
    let mut holder = Command::new("flock")
        .args(["--exclusive", "--no-fork"])
        .arg(lock_file(held))
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = std::fs::File::open(lock_file(held)).unwrap();
        if matches!(probe.try_lock(), Err(std::fs::TryLockError::WouldBlock)) {
            break;
        }
        assert!(Instant::now() < deadline, "flock(1) did not take the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let grace = Duration::from_secs(60);
    let found = f.store.collect_stale_locks(grace, 16, true).await.unwrap();
    assert_eq!(
        found.iter().map(|lock| lock.image_id).collect::<Vec<_>>(),
        vec![old]
    );
    assert!(lock_file(old).exists(), "a dry run removed a lock file");
    let removed = f.store.collect_stale_locks(grace, 16, false).await.unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].image_id, old);
    assert!(removed[0].age >= Duration::from_secs(3500));
    assert!(!lock_file(old).exists());
    assert!(lock_file(held).exists(), "a held lock file was removed");
    assert!(lock_file(young).exists(), "a young lock file was removed");
    // Killed with SIGKILL, the holder's lock is free: collected.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let removed = f.store.collect_stale_locks(grace, 16, false).await.unwrap();
    assert_eq!(
        removed.iter().map(|lock| lock.image_id).collect::<Vec<_>>(),
        vec![held]
    );
    assert!(lock_file(young).exists());
}

#[tokio::test]
async fn fs_locations_outside_images_are_never_touched() {
    let f = FsFixture::new();
    let outside = f.dir.path().join("precious");
    std::fs::write(&outside, b"keep").unwrap();
    let other_id = ImageId::new_random();
    let staged_path = f.staging().join(format!("{other_id}.x.part"));
    std::fs::write(&staged_path, b"keep").unwrap();
    for url in [
        format!("file://{}", outside.display()),
        format!("file://{}", staged_path.display()),
        format!("file://{}/../precious", f.images().display()),
        format!("file://{}/{other_id}", f.staging().display()),
    ] {
        let foreign = Location {
            url: url.clone(),
            metadata: Default::default(),
        };
        let err = f.store.delete(&foreign).await.unwrap_err();
        assert!(matches!(err, Error::ForeignLocation { .. }), "{url}: {err}");
        assert!(!f.store.owns(&foreign));
    }
    assert!(outside.exists() && staged_path.exists());
}

#[test]
fn fs_a_relative_root_gives_absolute_locations() {
    let dir = tempfile::tempdir().unwrap();
    let relative = pathdiff(dir.path());
    let store = Store::filesystem(&relative).unwrap();
    let location = store.location_of(ImageId::new_random());
    assert!(location.url.starts_with("file:///"), "{}", location.url);
    assert!(store.owns(&location));
}

/// `path` relative to the current directory (via enough `..`).
fn pathdiff(path: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap();
    let mut relative = PathBuf::new();
    for _ in cwd.components().skip(1) {
        relative.push("..");
    }
    relative.join(path.strip_prefix("/").unwrap())
}

/// A real tmpfs of a few hundred KiB, unmounted on drop.
struct Tmpfs {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("small");
        std::fs::create_dir(&mount).unwrap();
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "portcullis-test",
            ])
            .arg(&mount)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "mounting a {size} tmpfs for the disk-full test failed: {}\n\
             run the tests as root, or unprivileged under `unshare -rm cargo test`",
            String::from_utf8_lossy(&output.stderr)
        );
        Tmpfs { _dir: dir, mount }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

#[tokio::test]
async fn fs_disk_full_is_a_clear_error_and_leaves_nothing_half_written() {
    let tmpfs = Tmpfs::new("512k");
    let store = Store::filesystem(&tmpfs.mount).unwrap();
    let images = tmpfs.mount.join("images");
    let staging = tmpfs.mount.join("staging");
    let id = ImageId::new_random();

    let mut staged = store.stage(id).await.unwrap();
    let chunk = Bytes::from(vec![0x5a; 64 * 1024]);
    let mut failure = None;
    for _ in 0..32 {
        if let Err(err) = staged.write(chunk.clone()).await {
            failure = Some(err);
            break;
        }
    }
    // A chunk's failure is reported by the next write, or at the latest by
    // the commit.
    let err = match failure {
        Some(err) => {
            // After a failure the staged write is unusable.
            assert!(matches!(
                staged.write(Bytes::from_static(b"more")).await,
                Err(Error::Failed { .. })
            ));
            assert!(matches!(staged.commit().await, Err(Error::Failed { .. })));
            err
        }
        None => staged.commit().await.unwrap_err(),
    };
    assert!(matches!(err, Error::DiskFull { .. }), "{err:?}");
    assert_eq!(err.kind(), "disk_full");
    let message = err.to_string();
    assert!(message.contains("no space left"), "{message}");
    assert!(
        message.contains(&staging.display().to_string()),
        "{message}"
    );
    assert!(files_in(&staging).is_empty(), "{:?}", files_in(&staging));
    assert!(files_in(&images).is_empty(), "{:?}", files_in(&images));

    // The space came back: a small image fits now.
    let mut small = store.stage(id).await.unwrap();
    small.write(Bytes::from(vec![1; 1024])).await.unwrap();
    let location = small.commit().await.unwrap();
    assert_eq!(read_all(&store, &location, None).await.len(), 1024);
}
