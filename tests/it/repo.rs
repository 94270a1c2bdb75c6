//! The repository conformance suite, run unchanged against every backend
//! (SQLite on a real file in a temporary directory; PostgreSQL in a fresh
//! database on the server `PORTCULLIS_TEST_POSTGRES_URL` names, which
//! `.ci/run` starts), plus SQLite-specific checks on the raw rows and the
//! assembled stack opened from a data directory.
//!
//! PostgreSQL tests need the server: without `PORTCULLIS_TEST_POSTGRES_URL`
//! they fail with instructions, unless `PORTCULLIS_SKIP_SERVER_TESTS=1`
//! says to skip them (they then print that they skipped).

// The suite's helpers are not #[test] functions, so .clippy.toml's
// allow-unwrap-in-tests does not reach them; a failed unwrap here is a
// failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use portcullis::clock::{Clock, FixedClock};
use portcullis::context::RequestContext;
use portcullis::image::{
    ContainerFormat, DiskFormat, Image, ImageId, Location, MemberStatus, Status, Visibility,
};
use portcullis::repo::{
    AnyOf, Change, Comparison, Error, ImageRepo, Limit, ListQuery, ListScope, MemberRepo,
    MemberStatusFilter, NewImage, NewMember, ProjectLimits, QuotaOptions, QuotaRepo, RepoOptions,
    SortBy, SortDir, SortKey, SqlRepo, TimeFilter, UploadedData, VisibilityFilter,
};
use time::OffsetDateTime;

/// A clock that moves one second forward on every reading, so that
/// `created_at` orders images and `updated_at` visibly changes.
struct SteppingClock(AtomicI64);

impl Clock for SteppingClock {
    fn now(&self) -> OffsetDateTime {
        let seconds = self.0.fetch_add(1, Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }
}

fn stepping_clock() -> Arc<SteppingClock> {
    Arc::new(SteppingClock(AtomicI64::new(1_790_000_000)))
}

/// Where a backend under test keeps its data, and how to open a second,
/// independent handle (its own connection pool, as another process or node
/// would have) on the same database.
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(TestDatabase),
}

/// A backend under test and what keeps it alive.
pub(crate) struct Fixture {
    repo: SqlRepo,
    clock: Arc<SteppingClock>,
    backend: Backend,
}

impl Fixture {
    /// Another handle on the same database, with its own pool.
    async fn reopen(&self) -> SqlRepo {
        match &self.backend {
            Backend::Sqlite(dir) => {
                SqlRepo::open_sqlite(&dir.path().join("portcullis.db"), self.clock.clone())
                    .await
                    .unwrap()
            }
            Backend::Postgres(db) => SqlRepo::open(&db.url, self.clock.clone()).await.unwrap(),
        }
    }
}

async fn sqlite() -> Option<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let clock = stepping_clock();
    let repo = SqlRepo::open(
        &format!("sqlite://{}", dir.path().join("portcullis.db").display()),
        clock.clone(),
    )
    .await
    .unwrap();
    Some(Fixture {
        repo,
        clock,
        backend: Backend::Sqlite(dir),
    })
}

/// The PostgreSQL server the tests use, or `None` when the developer opted
/// out of server tests.
fn postgres_server() -> Option<String> {
    if let Ok(url) = std::env::var("PORTCULLIS_TEST_POSTGRES_URL")
        && !url.is_empty()
    {
        return Some(url);
    }
    if std::env::var("PORTCULLIS_SKIP_SERVER_TESTS").as_deref() == Ok("1") {
        eprintln!(
            "skipped: a PostgreSQL test (PORTCULLIS_SKIP_SERVER_TESTS=1 and no PORTCULLIS_TEST_POSTGRES_URL)"
        );
        return None;
    }
    panic!(
        "PORTCULLIS_TEST_POSTGRES_URL is not set. Run .ci/run (it starts PostgreSQL 15 on 127.0.0.1 and sets it), \
         or point it at a server whose role may CREATE DATABASE \
         (PORTCULLIS_TEST_POSTGRES_URL=postgres://USER@127.0.0.1:PORT/postgres cargo test), \
         or skip these tests explicitly with PORTCULLIS_SKIP_SERVER_TESTS=1"
    );
}

/// A database of its own on the test server, dropped when the test ends.
pub(crate) struct TestDatabase {
    server: String,
    name: String,
    /// The database's URL.
    pub(crate) url: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best effort, on a thread of its own: Drop cannot await, and the
        // test's runtime may be shutting down.
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&server).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .ok()
            })
        });
        let _ = dropped.join();
    }
}

/// A fresh database on the test server (dropped with the value), or `None`
/// when the developer opted out of server tests. Also used by tests/it/scale.rs.
pub(crate) async fn test_database() -> Option<TestDatabase> {
    use sqlx::Connection;
    let server = postgres_server()?;
    let name = format!("portcullis_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&server)
        .await
        .unwrap_or_else(|err| panic!("cannot connect to PORTCULLIS_TEST_POSTGRES_URL: {err}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let mut url = url::Url::parse(&server).unwrap();
    url.set_path(&format!("/{name}"));
    Some(TestDatabase {
        server,
        name,
        url: url.to_string(),
    })
}

async fn postgres() -> Option<Fixture> {
    let db = test_database().await?;
    let clock = stepping_clock();
    let repo = SqlRepo::open(&db.url, clock.clone()).await.unwrap();
    Some(Fixture {
        repo,
        clock,
        backend: Backend::Postgres(db),
    })
}

fn ctx() -> RequestContext {
    RequestContext::local_admin()
}

fn uploaded(id: ImageId, size: u64) -> UploadedData {
    UploadedData {
        size,
        virtual_size: Some(size),
        checksum: format!("{size:032x}"),
        os_hash_algo: "sha512".to_owned(),
        os_hash_value: format!("{size:0128x}"),
        location: Location {
            url: format!("file:///data/images/{id}"),
            metadata: [("store".to_owned(), "fs".to_owned())].into(),
        },
    }
}

impl Fixture {
    fn new_image(&self, name: Option<&str>, owner: Option<&str>) -> Image {
        let mut image = Image::new_queued(
            ImageId::new_random(),
            owner.map(str::to_owned),
            self.clock.now(),
        );
        image.name = name.map(str::to_owned);
        image
    }

    async fn add(&self, image: &Image) -> Image {
        self.repo
            .add(&ctx(), &NewImage::new(image.clone()))
            .await
            .unwrap()
    }

    /// `image` (as stored) through `saving` to `active` with `size` bytes.
    async fn activate(&self, image: &Image, size: u64) -> Image {
        let saving = self
            .repo
            .save(&ctx(), &Change::claim_upload(image.clone()))
            .await
            .unwrap();
        self.repo
            .save(
                &ctx(),
                &Change::commit_upload(saving, uploaded(image.id, size)),
            )
            .await
            .unwrap()
    }

    async fn update(&self, read: &Image, edit: impl FnOnce(&mut Image)) -> Image {
        let mut edited = read.clone();
        edit(&mut edited);
        self.repo
            .save(&ctx(), &Change::update(read.clone(), edited))
            .await
            .unwrap()
    }
}

/// Declares the suite for one backend: every test below, run on `$open`.
macro_rules! conformance {
    ($backend:ident, $open:path) => {
        mod $backend {
            conformance!(@tests $open,
                add_then_get_round_trips_every_field,
                add_refuses_duplicates_and_non_queued_images,
                unknown_and_deleted_images_are_not_found,
                save_is_a_compare_and_swap_on_the_record_read,
                every_write_moves_the_revision_even_with_a_pinned_clock,
                transitions_follow_the_state_machine,
                only_one_of_many_racing_claims_wins,
                racing_claims_from_two_handles_lose_with_conflict,
                update_writes_only_its_attributes,
                remove_marks_deleted_and_respects_protected,
                list_filters_like_glance,
                list_time_and_size_filters,
                list_pages_cover_every_sort_without_gaps_or_overlap,
                list_pages_with_identical_timestamps_fall_back_to_ids,
                list_scope_limits_what_a_project_sees,
                list_shows_shared_images_by_member_status,
                prepare_upload_only_for_queued_images,
                members_are_stored_per_image,
                quota_races_across_two_handles_let_exactly_the_limit_through,
                upload_quota_races_across_two_handles_hold,
            );
        }
    };
    (@tests $open:path, $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                if let Some(fixture) = $open().await {
                    super::$test(fixture).await;
                }
            }
        )+
    };
}

conformance!(sqlite_backend, super::sqlite);
conformance!(postgres_backend, super::postgres);

async fn add_then_get_round_trips_every_field(f: Fixture) {
    let mut image = f.new_image(Some("cirros"), Some("p1"));
    image.visibility = Visibility::Community;
    image.protected = true;
    image.os_hidden = true;
    image.disk_format = Some(DiskFormat::Qcow2);
    image.container_format = Some(ContainerFormat::Bare);
    image.min_disk = 7;
    image.min_ram = 512;
    image.tags = ["a", "b b", "ü", "Z"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    image
        .properties
        .insert("img_signature".into(), "c2ln".into());
    image.properties.insert("os_distro".into(), "cirros".into());
    image.properties.insert("empty".into(), String::new());
    image
        .properties
        .insert("ünïcode".into(), "✓ 'quoted' \"x\"".into());
    let stored = f.add(&image).await;
    assert_eq!(stored, image);
    assert_eq!(f.repo.get(&ctx(), image.id).await.unwrap(), image);
}

async fn add_refuses_duplicates_and_non_queued_images(f: Fixture) {
    let image = f.add(&f.new_image(Some("x"), None)).await;
    assert!(matches!(
        f.repo.add(&ctx(), &NewImage::new(image.clone())).await,
        Err(Error::AlreadyExists { id }) if id == image.id
    ));
    let mut active = f.new_image(Some("y"), None);
    active.status = Status::Active;
    assert!(matches!(
        f.repo.add(&ctx(), &NewImage::new(active)).await,
        Err(Error::NotQueued {
            status: Status::Active,
            ..
        })
    ));
    // A deleted image's id is never reused.
    f.repo.remove(&ctx(), &image).await.unwrap();
    assert!(matches!(
        f.repo.add(&ctx(), &NewImage::new(image)).await,
        Err(Error::AlreadyExists { .. })
    ));
}

async fn unknown_and_deleted_images_are_not_found(f: Fixture) {
    let id = ImageId::new_random();
    let err = f.repo.get(&ctx(), id).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { id: missing } if missing == id));
    assert_eq!(err.to_string(), format!("no image found with id {id}"));
    let image = f.add(&f.new_image(None, None)).await;
    f.repo.remove(&ctx(), &image).await.unwrap();
    assert!(matches!(
        f.repo.get(&ctx(), image.id).await,
        Err(Error::NotFound { .. })
    ));
    let mut renamed = image.clone();
    renamed.name = Some("ghost".into());
    for change in [
        Change::update(image.clone(), renamed),
        Change::claim_upload(image.clone()),
    ] {
        assert!(matches!(
            f.repo.save(&ctx(), &change).await,
            Err(Error::NotFound { .. })
        ));
    }
}

async fn save_is_a_compare_and_swap_on_the_record_read(f: Fixture) {
    let read = f.add(&f.new_image(Some("cas"), Some("p1"))).await;
    // Someone renames it after our read...
    let theirs = f
        .update(&read, |image| image.name = Some("theirs".into()))
        .await;
    // ...so every change computed from our read loses, with Conflict, and
    // writes nothing: an edit, a claim, a delete, an upload's preparation.
    let mut ours = read.clone();
    ours.min_ram = 64;
    let errors = [
        f.repo
            .save(&ctx(), &Change::update(read.clone(), ours))
            .await
            .unwrap_err(),
        f.repo
            .save(&ctx(), &Change::claim_upload(read.clone()))
            .await
            .unwrap_err(),
        f.repo.remove(&ctx(), &read).await.unwrap_err(),
        f.repo.prepare_upload(&ctx(), &read).await.unwrap_err(),
    ];
    for err in errors {
        assert!(
            matches!(
                err,
                Error::Conflict {
                    expected: Status::Queued,
                    actual: Status::Queued,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("not allowed"), "{err}");
    }
    assert_eq!(f.repo.get(&ctx(), read.id).await.unwrap(), theirs);

    // The same claim twice: the second read is stale.
    let saving = f
        .repo
        .save(&ctx(), &Change::claim_upload(theirs.clone()))
        .await
        .unwrap();
    let err = f
        .repo
        .save(&ctx(), &Change::claim_upload(theirs.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: Status::Queued,
                actual: Status::Saving,
                ..
            }
        ),
        "{err}"
    );
    // Claiming an image another upload owns, even from a current read, is
    // a conflict too (Glance: 409), never "saving to saving is not allowed".
    let err = f
        .repo
        .save(&ctx(), &Change::claim_upload(saving.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "conflict", "{err}");
    assert_eq!(f.repo.get(&ctx(), read.id).await.unwrap(), saving);
}

async fn every_write_moves_the_revision_even_with_a_pinned_clock(f: Fixture) {
    // A pinned clock (PORTCULLIS_NOW) stamps every write with the same time;
    // the revision must still change, or a stale read would pass the CAS.
    let pinned: Arc<dyn Clock> = Arc::new(FixedClock(f.clock.now()));
    let repo = match &f.backend {
        Backend::Sqlite(dir) => SqlRepo::open_sqlite(&dir.path().join("portcullis.db"), pinned)
            .await
            .unwrap(),
        Backend::Postgres(db) => SqlRepo::open(&db.url, pinned).await.unwrap(),
    };
    let first = repo
        .add(&ctx(), &NewImage::new(f.new_image(Some("pinned"), None)))
        .await
        .unwrap();
    let mut reads = vec![first.clone()];
    let mut current = first;
    for round in 0..3 {
        let mut edited = current.clone();
        edited.min_disk = round + 1;
        current = repo
            .save(&ctx(), &Change::update(current.clone(), edited))
            .await
            .unwrap();
        reads.push(current.clone());
    }
    for pair in reads.windows(2) {
        assert!(pair[1].updated_at > pair[0].updated_at, "{pair:?}");
    }
    // Every older read is stale.
    for stale in &reads[..reads.len() - 1] {
        let mut edited = stale.clone();
        edited.name = Some("late".into());
        assert_eq!(
            repo.save(&ctx(), &Change::update(stale.clone(), edited))
                .await
                .unwrap_err()
                .kind(),
            "conflict"
        );
    }
    repo.close().await;
}

async fn transitions_follow_the_state_machine(f: Fixture) {
    let image = f.add(&f.new_image(Some("states"), None)).await;
    // From a current read, an impossible transition is InvalidTransition,
    // and its message says what the image can become.
    let err = f
        .repo
        .save(&ctx(), &Change::deactivate(image.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidTransition {
                from: Status::Queued,
                to: Status::Deactivated,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("can become: saving, deleted"),
        "{err}"
    );
    for change in [
        Change::commit_upload(image.clone(), uploaded(image.id, 1)),
        Change::rollback_upload(image.clone()),
        Change::reactivate(image.clone()),
    ] {
        assert_eq!(
            f.repo.save(&ctx(), &change).await.unwrap_err().kind(),
            "invalid_transition"
        );
    }
    let active = f.activate(&image, 3).await;
    assert_eq!(active.size, Some(3));
    assert_eq!(active.locations.len(), 1);
    let deactivated = f
        .repo
        .save(&ctx(), &Change::deactivate(active.clone()))
        .await
        .unwrap();
    assert_eq!(deactivated.status, Status::Deactivated);
    assert_eq!(
        f.repo
            .save(&ctx(), &Change::deactivate(deactivated.clone()))
            .await
            .unwrap_err()
            .kind(),
        "invalid_transition"
    );
    let active = f
        .repo
        .save(&ctx(), &Change::reactivate(deactivated))
        .await
        .unwrap();
    assert_eq!(active.status, Status::Active);
    assert_eq!(active.checksum.as_deref(), Some(&*format!("{:032x}", 3)));
    // A rollback clears what a commit set.
    let other = f.add(&f.new_image(Some("rolled back"), None)).await;
    let saving = f
        .repo
        .save(&ctx(), &Change::claim_upload(other))
        .await
        .unwrap();
    let queued = f
        .repo
        .save(&ctx(), &Change::rollback_upload(saving))
        .await
        .unwrap();
    assert_eq!(queued.status, Status::Queued);
    assert_eq!((queued.size, queued.checksum.as_deref()), (None, None));
    // A change that strays outside its kind's write set is refused.
    let mut sneaky = Change::claim_upload(queued.clone());
    sneaky.after.owner = Some("p9".into());
    assert!(matches!(
        f.repo.save(&ctx(), &sneaky).await,
        Err(Error::ReadOnly { attribute, .. }) if attribute == "owner"
    ));
    let mut forged = queued.clone();
    forged.status = Status::Active;
    assert!(matches!(
        f.repo.save(&ctx(), &Change::update(queued.clone(), forged)).await,
        Err(Error::ReadOnly { attribute, .. }) if attribute == "status"
    ));
}

/// Claims of one image from one read, all at once: exactly one wins, every
/// other gets Conflict (issue 8, item 10: the loser used to get
/// "status transition from saving to saving is not allowed").
async fn only_one_of_many_racing_claims_wins(f: Fixture) {
    let image = f.add(&f.new_image(Some("race"), None)).await;
    let repo = Arc::new(f.repo.clone());
    let mut claims = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (repo, claim) = (repo.clone(), Change::claim_upload(image.clone()));
        claims.spawn(async move { repo.save(&ctx(), &claim).await });
    }
    let (mut won, mut lost) = (0, 0);
    while let Some(result) = claims.join_next().await {
        match result.unwrap() {
            Ok(saved) => {
                assert_eq!(saved.status, Status::Saving);
                won += 1;
            }
            Err(Error::Conflict {
                actual: Status::Saving,
                ..
            }) => lost += 1,
            Err(other) => panic!("a lost race must be a conflict, got: {other}"),
        }
    }
    assert_eq!((won, lost), (1, 7));
}

/// The same race between two handles (two pools: two processes, or two
/// nodes on PostgreSQL), many times, each loser reading then claiming as an
/// upload does: the loser is always Conflict, never InvalidTransition.
async fn racing_claims_from_two_handles_lose_with_conflict(f: Fixture) {
    let other = f.reopen().await;
    for round in 0..25 {
        let image = f
            .add(&f.new_image(Some(&format!("race {round}")), None))
            .await;
        let claim = |repo: SqlRepo, id: ImageId| async move {
            let read = repo.get(&ctx(), id).await?;
            repo.prepare_upload(&ctx(), &read).await?;
            repo.save(&ctx(), &Change::claim_upload(read)).await
        };
        let (a, b) = tokio::join!(
            claim(f.repo.clone(), image.id),
            claim(other.clone(), image.id)
        );
        let outcomes = [&a, &b];
        let won = outcomes.iter().filter(|result| result.is_ok()).count();
        assert!(won <= 1, "round {round}: both claimed: {a:?} / {b:?}");
        for result in outcomes {
            if let Err(err) = result {
                assert_eq!(err.kind(), "conflict", "round {round}: {err}");
            }
        }
        // A loser that read late may see `saving` already: also a conflict
        // for a claim, checked above; and someone always wins.
        assert_eq!(won, 1, "round {round}: {a:?} / {b:?}");
    }
    other.close().await;
}

async fn update_writes_only_its_attributes(f: Fixture) {
    let mut image = f.new_image(Some("before"), Some("p1"));
    image.tags = ["old".to_owned()].into();
    image.properties.insert("keep".into(), "1".into());
    image.properties.insert("drop".into(), "1".into());
    let stored = f.add(&image).await;

    let mut changed = stored.clone();
    changed.name = None;
    changed.owner = Some("p2".into());
    changed.visibility = Visibility::Private;
    changed.disk_format = Some(DiskFormat::Raw);
    changed.min_ram = 64;
    changed.protected = true;
    changed.os_hidden = true;
    changed.tags = ["new".to_owned(), "newer".to_owned()].into();
    changed.properties.remove("drop");
    changed.properties.insert("keep".into(), "2".into());
    changed.properties.insert("added".into(), "3".into());
    // created_at is immutable, whatever the caller sends.
    changed.created_at = OffsetDateTime::UNIX_EPOCH;
    let saved = f
        .repo
        .save(&ctx(), &Change::update(stored.clone(), changed.clone()))
        .await
        .unwrap();
    assert!(saved.updated_at > stored.updated_at, "{saved:?}");
    assert_eq!(saved.created_at, stored.created_at);
    let mut expected = changed;
    expected.created_at = stored.created_at;
    expected.updated_at = saved.updated_at;
    assert_eq!(saved, expected);
    assert_eq!(f.repo.get(&ctx(), image.id).await.unwrap(), expected);
}

async fn remove_marks_deleted_and_respects_protected(f: Fixture) {
    let mut protected = f.new_image(Some("keep me"), None);
    protected.protected = true;
    let protected = f.add(&protected).await;
    let err = f.repo.remove(&ctx(), &protected).await.unwrap_err();
    assert!(matches!(err, Error::Protected { .. }), "{err}");
    assert!(err.to_string().contains("protected"), "{err}");
    assert!(f.repo.get(&ctx(), protected.id).await.is_ok());

    let image = f.add(&f.new_image(Some("gone"), None)).await;
    let active = f.activate(&image, 1).await;
    f.repo
        .add_member(&ctx(), &NewMember::new(active.clone(), "p2"))
        .await
        .unwrap();
    let removed = f.repo.remove(&ctx(), &active).await.unwrap();
    assert_eq!(removed.status, Status::Deleted);
    // The removed record still names its data, for the location layer.
    assert_eq!(removed.locations, active.locations);
    assert!(matches!(
        f.repo.remove(&ctx(), &active).await,
        Err(Error::NotFound { .. })
    ));
    // Its memberships went with it.
    assert!(
        f.repo
            .list(
                &ctx(),
                &ListQuery {
                    scope: ListScope::VisibleTo {
                        project: Some("p2".into())
                    },
                    member_status: MemberStatusFilter::All,
                    visibility: Some(VisibilityFilter::All),
                    ..ListQuery::default()
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
    let listed = f.repo.list(&ctx(), &ListQuery::default()).await.unwrap();
    assert_eq!(
        listed.iter().map(|i| i.id).collect::<Vec<_>>(),
        [protected.id]
    );
    // Even an explicit status filter never shows deleted images.
    let query = ListQuery {
        status: Some(AnyOf::one("deleted")),
        ..ListQuery::default()
    };
    assert!(f.repo.list(&ctx(), &query).await.unwrap().is_empty());
}

fn ids(images: Vec<Image>) -> BTreeSet<ImageId> {
    images.into_iter().map(|i| i.id).collect()
}

fn set(images: &[&Image]) -> BTreeSet<ImageId> {
    images.iter().map(|i| i.id).collect()
}

async fn list_filters_like_glance(f: Fixture) {
    let mut a = f.new_image(Some("alpha"), Some("p1"));
    a.tags = ["t1".to_owned(), "t2".to_owned()].into();
    a.properties.insert("os_distro".into(), "cirros".into());
    a.disk_format = Some(DiskFormat::Qcow2);
    a.protected = true;
    let a = f.add(&a).await;
    let mut b = f.new_image(Some("beta"), Some("p2"));
    b.tags = ["t1".to_owned()].into();
    b.visibility = Visibility::Public;
    b.properties.insert("os_distro".into(), "ubuntu".into());
    let b = f.add(&b).await;
    let mut hidden = f.new_image(Some("alpha"), Some("p1"));
    hidden.os_hidden = true;
    let hidden = f.add(&hidden).await;
    let mut community = f.new_image(Some("a:b"), Some("p3"));
    community.visibility = Visibility::Community;
    let community = f.add(&community).await;
    let b = f.repo.save(&ctx(), &Change::claim_upload(b)).await.unwrap();
    let f = &f;

    let run = |query: ListQuery| async move { ids(f.repo.list(&ctx(), &query).await.unwrap()) };
    let q = |edit: &dyn Fn(&mut ListQuery)| {
        let mut query = ListQuery::default();
        edit(&mut query);
        query
    };
    let any = |text: &str| Some(AnyOf::parse(text).unwrap());

    // Default: hidden images and other projects' community images are left
    // out, for an administrator too (Glance 33).
    assert_eq!(run(ListQuery::default()).await, set(&[&a, &b]));
    let all = || Some(VisibilityFilter::All);
    assert_eq!(
        run(q(&|q| q.visibility = all())).await,
        set(&[&a, &b, &community])
    );
    assert_eq!(run(q(&|q| q.os_hidden = Some(true))).await, set(&[&hidden]));
    assert_eq!(run(q(&|q| q.name = any("alpha"))).await, set(&[&a]));
    assert_eq!(
        run(q(&|q| {
            q.name = any(r#"in:beta,"a:b""#);
            q.visibility = all();
        }))
        .await,
        set(&[&b, &community])
    );
    assert_eq!(run(q(&|q| q.name = any("in:"))).await, set(&[]));
    assert_eq!(
        run(q(
            &|q| q.id = Some(AnyOf(vec![a.id.to_string(), "nonsense".into()]))
        ))
        .await,
        set(&[&a])
    );
    assert_eq!(run(q(&|q| q.owner = Some("p2".into()))).await, set(&[&b]));
    assert_eq!(run(q(&|q| q.status = any("saving"))).await, set(&[&b]));
    assert_eq!(
        run(q(&|q| q.status = any("in:saving,queued"))).await,
        set(&[&a, &b])
    );
    // An unknown status matches nothing (Glance: 200, empty), as does an
    // unknown disk format.
    assert_eq!(run(q(&|q| q.status = any("bogus"))).await, set(&[]));
    assert_eq!(run(q(&|q| q.disk_format = any("qcow3"))).await, set(&[]));
    assert_eq!(run(q(&|q| q.disk_format = any("qcow2"))).await, set(&[&a]));
    assert_eq!(
        run(q(&|q| q.container_format = any("bare"))).await,
        set(&[])
    );
    assert_eq!(
        run(q(
            &|q| q.visibility = Some(VisibilityFilter::Only(Visibility::Public))
        ))
        .await,
        set(&[&b])
    );
    assert_eq!(
        run(q(
            &|q| q.visibility = Some(VisibilityFilter::Only(Visibility::Community))
        ))
        .await,
        set(&[&community])
    );
    assert_eq!(
        run(q(&|q| q.tags = vec!["t1".into()])).await,
        set(&[&a, &b])
    );
    assert_eq!(
        run(q(&|q| q.tags = vec!["t1".into(), "t2".into()])).await,
        set(&[&a])
    );
    assert_eq!(run(q(&|q| q.tags = vec!["t3".into()])).await, set(&[]));
    assert_eq!(
        run(q(&|q| {
            q.properties.insert("os_distro".into(), "cirros".into());
        }))
        .await,
        set(&[&a])
    );
    assert_eq!(run(q(&|q| q.protected = Some(true))).await, set(&[&a]));
    assert_eq!(run(q(&|q| q.protected = Some(false))).await, set(&[&b]));
    // Filters combine.
    assert_eq!(
        run(q(&|q| {
            q.tags = vec!["t1".into()];
            q.owner = Some("p1".into());
        }))
        .await,
        set(&[&a])
    );
}

async fn list_time_and_size_filters(f: Fixture) {
    // The stepping clock gives each image its own second.
    let small = f.add(&f.new_image(Some("small"), None)).await;
    let big = f.add(&f.new_image(Some("big"), None)).await;
    let empty = f.add(&f.new_image(Some("no data"), None)).await;
    let small = f.activate(&small, 10).await;
    let big = f.activate(&big, 5000).await;
    let f = &f;
    let run = |query: ListQuery| async move { ids(f.repo.list(&ctx(), &query).await.unwrap()) };
    let sized = |min: Option<u64>, max: Option<u64>| ListQuery {
        size_min: min,
        size_max: max,
        ..ListQuery::default()
    };
    // Inclusive bounds; images without data never match.
    assert_eq!(run(sized(Some(0), None)).await, set(&[&small, &big]));
    assert_eq!(run(sized(Some(10), Some(10))).await, set(&[&small]));
    assert_eq!(run(sized(Some(11), None)).await, set(&[&big]));
    assert_eq!(run(sized(None, Some(4999))).await, set(&[&small]));
    assert_eq!(run(sized(Some(u64::MAX), None)).await, set(&[]));
    assert_eq!(run(sized(None, Some(u64::MAX))).await, set(&[&small, &big]));

    let created = |op: Comparison, image: &Image| ListQuery {
        created_at: Some(TimeFilter {
            op,
            at: image.created_at,
        }),
        ..ListQuery::default()
    };
    assert_eq!(run(created(Comparison::Eq, &big)).await, set(&[&big]));
    assert_eq!(
        run(created(Comparison::Neq, &big)).await,
        set(&[&small, &empty])
    );
    assert_eq!(run(created(Comparison::Gt, &big)).await, set(&[&empty]));
    assert_eq!(
        run(created(Comparison::Gte, &big)).await,
        set(&[&big, &empty])
    );
    assert_eq!(run(created(Comparison::Lt, &big)).await, set(&[&small]));
    assert_eq!(
        run(created(Comparison::Lte, &big)).await,
        set(&[&small, &big])
    );
    // Whole seconds, as the API shows them: a time half a second into
    // `big`'s second still equals it.
    let half = TimeFilter {
        op: Comparison::Eq,
        at: big.created_at + time::Duration::milliseconds(500),
    };
    assert_eq!(
        run(ListQuery {
            created_at: Some(half),
            ..ListQuery::default()
        })
        .await,
        set(&[&big])
    );
    // updated_at moved with the uploads: `big` was written last.
    let updated = ListQuery {
        updated_at: Some(TimeFilter {
            op: Comparison::Gte,
            at: big.updated_at,
        }),
        ..ListQuery::default()
    };
    assert_eq!(run(updated).await, set(&[&big]));
    let parsed = ListQuery {
        updated_at: Some("lt:2000-01-01T00:00:00Z".parse().unwrap()),
        ..ListQuery::default()
    };
    assert_eq!(run(parsed).await, set(&[]));
    // Hash filters.
    let by_checksum = ListQuery {
        checksum: big.checksum.clone(),
        ..ListQuery::default()
    };
    assert_eq!(run(by_checksum).await, set(&[&big]));
    let by_hash = ListQuery {
        os_hash_value: small.os_hash_value.clone(),
        ..ListQuery::default()
    };
    assert_eq!(run(by_hash).await, set(&[&small]));
}

/// Every image of `images` in the order the repository must return them,
/// computed independently: null before any value ascending, after descending.
fn expected_order(images: &[Image], sort: &[SortBy], tie_break: SortDir) -> Vec<ImageId> {
    use std::cmp::Ordering;
    fn key(image: &Image, key: SortKey) -> (Option<String>, Option<i64>) {
        let text = |s: Option<&str>| (s.map(str::to_owned), None);
        let int = |v: Option<i64>| (None, v);
        match key {
            SortKey::Name => text(image.name.as_deref()),
            SortKey::Status => text(Some(image.status.as_str())),
            SortKey::ContainerFormat => text(image.container_format.map(|f| f.as_str())),
            SortKey::DiskFormat => text(image.disk_format.map(|f| f.as_str())),
            SortKey::Size => int(image.size.map(|v| v as i64)),
            SortKey::Id => text(Some(&image.id.to_string())),
            SortKey::CreatedAt => int(Some(
                (image.created_at.unix_timestamp_nanos() / 1000) as i64,
            )),
            SortKey::UpdatedAt => int(Some(
                (image.updated_at.unix_timestamp_nanos() / 1000) as i64,
            )),
        }
    }
    let mut full: Vec<SortBy> = sort.to_vec();
    for k in [SortKey::CreatedAt, SortKey::Id] {
        if !full.iter().any(|b| b.key == k) {
            full.push(SortBy {
                key: k,
                dir: tie_break,
            });
        }
    }
    let mut sorted: Vec<&Image> = images.iter().collect();
    sorted.sort_by(|x, y| {
        for by in &full {
            let ordering = key(x, by.key).cmp(&key(y, by.key));
            let ordering = match by.dir {
                SortDir::Asc => ordering,
                SortDir::Desc => ordering.reverse(),
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    });
    sorted.into_iter().map(|i| i.id).collect()
}

async fn list_pages_cover_every_sort_without_gaps_or_overlap(f: Fixture) {
    // Duplicated names (with case and non-ASCII, which must sort byte-wise
    // on both engines), missing names, equal and missing sizes.
    let names = [
        Some("b"),
        None,
        Some("a"),
        Some("b"),
        None,
        Some("C"),
        Some("a"),
        Some("é"),
    ];
    let sizes = [
        Some(10),
        None,
        Some(10),
        Some(5),
        None,
        Some(7),
        None,
        Some(5),
    ];
    let mut all = Vec::new();
    for (index, (name, size)) in names.iter().zip(sizes).enumerate() {
        let mut image = f.new_image(*name, Some(if index % 2 == 0 { "p1" } else { "p2" }));
        if index % 3 == 0 {
            image.disk_format = Some(DiskFormat::Raw);
        }
        let mut image = f.add(&image).await;
        if let Some(size) = size {
            image = f.activate(&image, size).await;
        }
        all.push(image);
    }
    let by = |key, dir| SortBy { key, dir };
    let sorts: Vec<(Vec<SortBy>, SortDir)> = vec![
        (vec![], SortDir::Desc),
        (vec![by(SortKey::Name, SortDir::Asc)], SortDir::Asc),
        (vec![by(SortKey::Name, SortDir::Desc)], SortDir::Desc),
        (
            vec![
                by(SortKey::Size, SortDir::Asc),
                by(SortKey::Name, SortDir::Desc),
            ],
            SortDir::Desc,
        ),
        (vec![by(SortKey::Size, SortDir::Desc)], SortDir::Desc),
        (
            vec![
                by(SortKey::DiskFormat, SortDir::Asc),
                by(SortKey::Status, SortDir::Desc),
            ],
            SortDir::Asc,
        ),
        (
            vec![
                by(SortKey::Status, SortDir::Asc),
                by(SortKey::Id, SortDir::Asc),
            ],
            SortDir::Desc,
        ),
        (vec![by(SortKey::UpdatedAt, SortDir::Asc)], SortDir::Asc),
        (
            vec![by(SortKey::ContainerFormat, SortDir::Desc)],
            SortDir::Asc,
        ),
    ];
    for (sort, tie_break) in sorts {
        let expected = expected_order(&all, &sort, tie_break);
        let query = ListQuery {
            sort: sort.clone(),
            tie_break_dir: tie_break,
            ..ListQuery::default()
        };
        let whole: Vec<ImageId> = f
            .repo
            .list(&ctx(), &query)
            .await
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(whole, expected, "one page, sort {sort:?}");
        for limit in [1, 2, 3] {
            let mut walked = Vec::new();
            let mut marker = None;
            loop {
                let query = ListQuery {
                    sort: sort.clone(),
                    tie_break_dir: tie_break,
                    limit: Some(limit),
                    marker,
                    ..ListQuery::default()
                };
                let page = f.repo.list(&ctx(), &query).await.unwrap();
                assert!(page.len() <= limit as usize);
                let Some(last) = page.last() else { break };
                marker = Some(last.id);
                walked.extend(page.iter().map(|i| i.id));
                assert!(
                    walked.len() <= all.len(),
                    "paging does not end for {sort:?}"
                );
            }
            assert_eq!(walked, expected, "limit {limit}, sort {sort:?}");
        }
    }
    let query = ListQuery {
        marker: Some(ImageId::new_random()),
        ..ListQuery::default()
    };
    assert!(matches!(
        f.repo.list(&ctx(), &query).await,
        Err(Error::MarkerNotFound { .. })
    ));
}

async fn list_pages_with_identical_timestamps_fall_back_to_ids(f: Fixture) {
    // A pinned clock (PORTCULLIS_NOW) gives every image the same created_at.
    let at = f.clock.now();
    let mut all = Vec::new();
    for _ in 0..7 {
        let mut image = f.new_image(Some("same"), None);
        image.created_at = at;
        image.updated_at = at;
        all.push(f.add(&image).await);
    }
    let mut expected: Vec<ImageId> = all.iter().map(|i| i.id).collect();
    expected.sort_by_key(|id| std::cmp::Reverse(id.to_string()));
    let mut walked = Vec::new();
    let mut marker = None;
    loop {
        let query = ListQuery {
            limit: Some(3),
            marker,
            ..ListQuery::default()
        };
        let page = f.repo.list(&ctx(), &query).await.unwrap();
        let Some(last) = page.last() else { break };
        marker = Some(last.id);
        walked.extend(page.iter().map(|i| i.id));
        assert!(walked.len() <= all.len());
    }
    assert_eq!(walked, expected);
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(o, v)| (o.to_string(), v.to_string()))
        .collect()
}

async fn seen(f: &Fixture, query: ListQuery) -> Vec<(String, String)> {
    let mut seen: Vec<(String, String)> = f
        .repo
        .list(&ctx(), &query)
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.owner.unwrap(), i.visibility.to_string()))
        .collect();
    seen.sort();
    seen
}

async fn list_scope_limits_what_a_project_sees(f: Fixture) {
    let mut images = Vec::new();
    for owner in ["p1", "p2"] {
        for visibility in Visibility::ALL {
            let mut image = f.new_image(Some(visibility.as_str()), Some(owner));
            image.visibility = *visibility;
            images.push(f.add(&image).await);
        }
    }
    let scoped = |visibility| ListQuery {
        scope: ListScope::VisibleTo {
            project: Some("p1".into()),
        },
        visibility,
        ..ListQuery::default()
    };
    assert_eq!(
        seen(&f, scoped(None)).await,
        pairs(&[
            ("p1", "community"),
            ("p1", "private"),
            ("p1", "public"),
            ("p1", "shared"),
            ("p2", "public")
        ])
    );
    assert_eq!(
        seen(&f, scoped(Some(VisibilityFilter::All))).await,
        pairs(&[
            ("p1", "community"),
            ("p1", "private"),
            ("p1", "public"),
            ("p1", "shared"),
            ("p2", "community"),
            ("p2", "public")
        ])
    );
    assert_eq!(
        seen(
            &f,
            scoped(Some(VisibilityFilter::Only(Visibility::Community)))
        )
        .await,
        pairs(&[("p1", "community"), ("p2", "community")])
    );
    let anonymous = ListQuery {
        scope: ListScope::VisibleTo { project: None },
        ..ListQuery::default()
    };
    assert_eq!(
        seen(&f, anonymous).await,
        pairs(&[("p1", "public"), ("p2", "public")])
    );
    // An administrator of p1 sees everything but p2's community image by
    // default, as Glance.
    let admin_of_p1 = ListQuery {
        scope: ListScope::Everything {
            project: Some("p1".into()),
        },
        ..ListQuery::default()
    };
    assert_eq!(seen(&f, admin_of_p1).await.len(), 7);
    assert_eq!(images.len(), 8);
}

async fn list_shows_shared_images_by_member_status(f: Fixture) {
    let mut shared = Vec::new();
    for status in [
        None,
        Some(MemberStatus::Pending),
        Some(MemberStatus::Accepted),
        Some(MemberStatus::Rejected),
    ] {
        let mut image = f.new_image(Some("shared"), Some("p1"));
        image.visibility = Visibility::Shared;
        let image = f.add(&image).await;
        if let Some(status) = status {
            f.repo
                .add_member(&ctx(), &NewMember::new(image.clone(), "p2"))
                .await
                .unwrap();
            f.repo
                .update_member(&ctx(), &image, "p2", status)
                .await
                .unwrap();
        }
        shared.push(image);
    }
    // Membership of a private image shows nothing (only shared images have members).
    let mut private = f.new_image(Some("private"), Some("p1"));
    private.visibility = Visibility::Private;
    let private = f.add(&private).await;
    f.repo
        .add_member(&ctx(), &NewMember::new(private.clone(), "p2"))
        .await
        .unwrap();
    f.repo
        .update_member(&ctx(), &private, "p2", MemberStatus::Accepted)
        .await
        .unwrap();
    let [_, pending, accepted, rejected] = &shared[..] else {
        unreachable!()
    };
    let as_p2 =
        |member_status: MemberStatusFilter, visibility: Option<VisibilityFilter>| ListQuery {
            scope: ListScope::VisibleTo {
                project: Some("p2".into()),
            },
            member_status,
            visibility,
            ..ListQuery::default()
        };
    let only = MemberStatusFilter::Only;
    let run = |query: ListQuery| {
        let f = &f;
        async move { ids(f.repo.list(&ctx(), &query).await.unwrap()) }
    };
    assert_eq!(
        run(as_p2(MemberStatusFilter::default(), None)).await,
        set(&[accepted])
    );
    assert_eq!(
        run(as_p2(only(MemberStatus::Pending), None)).await,
        set(&[pending])
    );
    assert_eq!(
        run(as_p2(only(MemberStatus::Rejected), None)).await,
        set(&[rejected])
    );
    assert_eq!(
        run(as_p2(MemberStatusFilter::All, None)).await,
        set(&[pending, accepted, rejected])
    );
    assert_eq!(
        run(as_p2(
            MemberStatusFilter::default(),
            Some(VisibilityFilter::Only(Visibility::Shared))
        ))
        .await,
        set(&[accepted])
    );
    // The owner's own shared images are listed whatever the memberships.
    let as_p1 = ListQuery {
        scope: ListScope::VisibleTo {
            project: Some("p1".into()),
        },
        visibility: Some(VisibilityFilter::Only(Visibility::Shared)),
        ..ListQuery::default()
    };
    assert_eq!(run(as_p1).await.len(), 4);
    // A marker may be any image the caller can see, in any member status.
    let after_pending = ListQuery {
        marker: Some(pending.id),
        ..as_p2(MemberStatusFilter::default(), None)
    };
    assert!(f.repo.list(&ctx(), &after_pending).await.is_ok());
    let after_private = ListQuery {
        marker: Some(private.id),
        ..as_p2(MemberStatusFilter::All, None)
    };
    assert!(matches!(
        f.repo.list(&ctx(), &after_private).await,
        Err(Error::MarkerNotFound { .. })
    ));
}

async fn prepare_upload_only_for_queued_images(f: Fixture) {
    let image = f.add(&f.new_image(Some("up"), None)).await;
    let allowance = f.repo.prepare_upload(&ctx(), &image).await.unwrap();
    assert_eq!(allowance.max_bytes, None);
    let saving = f
        .repo
        .save(&ctx(), &Change::claim_upload(image.clone()))
        .await
        .unwrap();
    // Another upload owns it: a conflict.
    assert_eq!(
        f.repo
            .prepare_upload(&ctx(), &saving)
            .await
            .unwrap_err()
            .kind(),
        "conflict"
    );
    let active = f
        .repo
        .save(
            &ctx(),
            &Change::commit_upload(saving, uploaded(image.id, 1)),
        )
        .await
        .unwrap();
    let err = f.repo.prepare_upload(&ctx(), &active).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidTransition {
                from: Status::Active,
                to: Status::Saving,
                ..
            }
        ),
        "{err}"
    );
    let unknown = f.new_image(None, None);
    assert!(matches!(
        f.repo.prepare_upload(&ctx(), &unknown).await,
        Err(Error::NotFound { .. })
    ));
}

async fn members_are_stored_per_image(f: Fixture) {
    let mut image = f.new_image(Some("shared"), Some("p1"));
    image.visibility = Visibility::Shared;
    let image = f.add(&image).await;
    let other = f.add(&f.new_image(Some("other"), Some("p1"))).await;
    for project in ["p3", "p2"] {
        let member = f
            .repo
            .add_member(&ctx(), &NewMember::new(image.clone(), project))
            .await
            .unwrap();
        assert_eq!(member.status, MemberStatus::Pending);
        assert_eq!(member.image_id, image.id);
        assert_eq!(member.created_at, member.updated_at);
    }
    assert!(matches!(
        f.repo
            .add_member(&ctx(), &NewMember::new(image.clone(), "p2"))
            .await,
        Err(Error::MemberExists { member_id, .. }) if member_id == "p2"
    ));
    for bad in ["", "\nforged", &"x".repeat(256)] {
        assert_eq!(
            f.repo
                .add_member(&ctx(), &NewMember::new(image.clone(), bad))
                .await
                .unwrap_err()
                .kind(),
            "invalid_member",
            "{bad:?}"
        );
    }
    // Oldest first.
    let members = f.repo.members(&ctx(), &image).await.unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| m.member_id.as_str())
            .collect::<Vec<_>>(),
        ["p3", "p2"]
    );
    assert!(f.repo.members(&ctx(), &other).await.unwrap().is_empty());
    let accepted = f
        .repo
        .update_member(&ctx(), &image, "p2", MemberStatus::Accepted)
        .await
        .unwrap();
    assert_eq!(accepted.status, MemberStatus::Accepted);
    assert!(accepted.updated_at > accepted.created_at);
    assert_eq!(f.repo.member(&ctx(), &image, "p2").await.unwrap(), accepted);
    for result in [
        f.repo.member(&ctx(), &other, "p2").await,
        f.repo
            .update_member(&ctx(), &other, "p2", MemberStatus::Accepted)
            .await,
        f.repo.remove_member(&ctx(), &other, "p2").await,
    ] {
        assert_eq!(result.unwrap_err().kind(), "member_not_found");
    }
    assert_eq!(
        f.repo.remove_member(&ctx(), &image, "p2").await.unwrap(),
        accepted
    );
    // Re-adding starts over, pending.
    let again = f
        .repo
        .add_member(&ctx(), &NewMember::new(image.clone(), "p2"))
        .await
        .unwrap();
    assert_eq!(again.status, MemberStatus::Pending);
    // Members of a deleted image are gone with it.
    f.repo.remove(&ctx(), &image).await.unwrap();
    assert_eq!(
        f.repo.members(&ctx(), &image).await.unwrap_err().kind(),
        "not_found"
    );
}

fn quota(count: i64, size_mib: i64, uploading: i64) -> QuotaOptions {
    QuotaOptions {
        default: ProjectLimits {
            image_count_total: Some(Limit::try_from(count).unwrap()),
            image_size_total: Some(Limit::try_from(size_mib).unwrap()),
            image_count_uploading: Some(Limit::try_from(uploading).unwrap()),
        },
        ..QuotaOptions::default()
    }
}

/// Two handles (two pools, as two processes or two nodes would have), each
/// with its own quota layer, race to create images of one project: the
/// count check runs in the inserting transaction, so exactly the limit
/// passes, round after round.
async fn quota_races_across_two_handles_let_exactly_the_limit_through(f: Fixture) {
    const LIMIT: usize = 3;
    const ATTEMPTS: usize = 8;
    let other = f.reopen().await;
    let layers = [
        QuotaRepo::new(f.repo.clone(), quota(LIMIT as i64, -1, -1), f.repo.clone()),
        QuotaRepo::new(other.clone(), quota(LIMIT as i64, -1, -1), other.clone()),
    ];
    let p1 = RequestContext::for_project("p1", &["member"]);
    for round in 0..10 {
        let project = format!("race{round}");
        let attempts = (0..ATTEMPTS).map(|attempt| {
            let layer = &layers[attempt % 2];
            let image = f.new_image(Some("quota"), Some(&project));
            let p1 = p1.clone();
            async move { layer.add(&p1, &NewImage::new(image)).await }
        });
        let results = futures_util::future::join_all(attempts).await;
        let passed = results.iter().filter(|result| result.is_ok()).count();
        for result in &results {
            if let Err(err) = result {
                assert_eq!(err.kind(), "quota_exceeded", "round {round}: {err}");
            }
        }
        assert_eq!(passed, LIMIT, "round {round}: {results:?}");
        assert_eq!(
            f.repo.usage(&project).await.unwrap().image_count,
            LIMIT as u64
        );
    }
    other.close().await;
}

/// The same across two handles for uploads: `image_count_uploading` at the
/// claim and `image_size_total` at the commit.
async fn upload_quota_races_across_two_handles_hold(f: Fixture) {
    const MIB: u64 = 1024 * 1024;
    let other = f.reopen().await;
    let layers = [
        QuotaRepo::new(f.repo.clone(), quota(-1, 1, 1), f.repo.clone()),
        QuotaRepo::new(other.clone(), quota(-1, 1, 1), other.clone()),
    ];
    let p1 = RequestContext::for_project("p1", &["member"]);
    for round in 0..10 {
        let project = format!("uploads{round}");
        let mut images = Vec::new();
        for _ in 0..4 {
            images.push(f.add(&f.new_image(Some("up"), Some(&project))).await);
        }
        // Four claims at once, one uploading at a time allowed.
        let claims = images.iter().enumerate().map(|(index, image)| {
            let layer = &layers[index % 2];
            let (p1, claim) = (p1.clone(), Change::claim_upload(image.clone()));
            async move { layer.save(&p1, &claim).await }
        });
        let claimed: Vec<Image> = futures_util::future::join_all(claims)
            .await
            .into_iter()
            .filter_map(|result| match result {
                Ok(image) => Some(image),
                Err(err) => {
                    assert_eq!(err.kind(), "quota_exceeded", "round {round}: {err}");
                    None
                }
            })
            .collect();
        assert_eq!(claimed.len(), 1, "round {round}");
        // Commit the winner with 600 KiB of the 1 MiB; start two more
        // uploads (through a layer without the uploading limit) and race
        // their commits from both handles: each fits alone (300 KiB), not
        // both.
        let first = layers[0]
            .save(
                &p1,
                &Change::commit_upload(claimed[0].clone(), uploaded(claimed[0].id, 600 * 1024)),
            )
            .await
            .unwrap();
        assert_eq!(first.status, Status::Active);
        let rest: Vec<&Image> = images.iter().filter(|image| image.id != first.id).collect();
        let unlimited_uploads = QuotaRepo::new(f.repo.clone(), quota(-1, -1, -1), f.repo.clone());
        let mut saving = Vec::new();
        for image in rest.iter().take(2) {
            saving.push(
                unlimited_uploads
                    .save(&p1, &Change::claim_upload((*image).clone()))
                    .await
                    .unwrap(),
            );
        }
        let commits = saving.iter().enumerate().map(|(index, image)| {
            let layer = &layers[index % 2];
            let commit = Change::commit_upload(image.clone(), uploaded(image.id, 300 * 1024));
            let p1 = p1.clone();
            async move { layer.save(&p1, &commit).await }
        });
        let results = futures_util::future::join_all(commits).await;
        let committed = results.iter().filter(|result| result.is_ok()).count();
        assert_eq!(committed, 1, "round {round}: {results:?}");
        let usage = f.repo.usage(&project).await.unwrap();
        assert_eq!(usage.stored_bytes, 900 * 1024, "round {round}");
        assert!(usage.stored_bytes <= MIB);
    }
    other.close().await;
}

// SQLite-specific: the database file itself.

async fn raw(path: &std::path::Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

fn sqlite_path(f: &Fixture) -> std::path::PathBuf {
    match &f.backend {
        Backend::Sqlite(dir) => dir.path().join("portcullis.db"),
        Backend::Postgres(_) => unreachable!("an SQLite fixture"),
    }
}

#[tokio::test]
async fn sqlite_uses_wal_foreign_keys_and_keeps_deleted_rows() {
    let f = sqlite().await.unwrap();
    let path = sqlite_path(&f);
    let image = f.add(&f.new_image(Some("rows"), Some("p1"))).await;
    let active = f.activate(&image, 1).await;
    let pool = raw(&path).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let locations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM image_locations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(locations, 1);

    f.repo.remove(&ctx(), &active).await.unwrap();
    let (status, deleted_at): (String, Option<i64>) =
        sqlx::query_as("SELECT status, deleted_at FROM images WHERE id = $1")
            .bind(image.id.to_string())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "deleted");
    assert!(deleted_at.is_some());
    let locations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM image_locations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(locations, 0);
    // The schema refuses rows the domain could not read back.
    let err = sqlx::query("UPDATE images SET status = 'bogus' WHERE id = $1")
        .bind(image.id.to_string())
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("CHECK"), "{err}");
}

#[tokio::test]
async fn recovery_finds_every_image_in_a_status_hidden_or_not() {
    let f = sqlite().await.unwrap();
    let mut hidden = f.new_image(Some("hidden"), Some("p1"));
    hidden.os_hidden = true;
    hidden.visibility = Visibility::Private;
    let hidden = f.add(&hidden).await;
    let plain = f.add(&f.new_image(None, None)).await;
    let idle = f.add(&f.new_image(Some("idle"), None)).await;
    let hidden = f
        .repo
        .save(&ctx(), &Change::claim_upload(hidden))
        .await
        .unwrap();
    let plain = f
        .repo
        .save(&ctx(), &Change::claim_upload(plain))
        .await
        .unwrap();
    let stuck = f.repo.images_with_status(Status::Saving).await.unwrap();
    assert_eq!(stuck, vec![hidden, plain]);
    let queued = f.repo.images_with_status(Status::Queued).await.unwrap();
    assert_eq!(queued, vec![idle]);
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_not_a_panic() {
    let f = sqlite().await.unwrap();
    let image = f.add(&f.new_image(Some("corrupt"), None)).await;
    let pool = raw(&sqlite_path(&f)).await;
    sqlx::query("UPDATE images SET disk_format = 'qcow3' WHERE id = $1")
        .bind(image.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    let err = f.repo.get(&ctx(), image.id).await.unwrap_err();
    assert_eq!(err.kind(), "corrupt_record");
    assert!(err.to_string().contains("disk_format"), "{err}");
}

#[tokio::test]
async fn two_handles_on_one_file_behave_like_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.db");
    // Both open (and migrate) a fresh database at the same time.
    let (a, b) = tokio::join!(
        SqlRepo::open_sqlite(&path, stepping_clock()),
        SqlRepo::open_sqlite(&path, stepping_clock())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let fa = Fixture {
        repo: a,
        clock: stepping_clock(),
        backend: Backend::Sqlite(dir),
    };
    // Many writes from both handles interleave without "database is locked".
    let writes = (0..20).map(|i| {
        let repo = if i % 2 == 0 { &fa.repo } else { &b };
        let image = fa.new_image(Some(&format!("img{i}")), Some("p1"));
        async move { repo.add(&ctx(), &NewImage::new(image)).await }
    });
    let results = futures_util::future::join_all(writes).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let from_a = fa.repo.list(&ctx(), &ListQuery::default()).await.unwrap();
    let from_b = b.list(&ctx(), &ListQuery::default()).await.unwrap();
    assert_eq!(from_a.len(), 20);
    assert_eq!(from_a, from_b);
    // A compare-and-swap won through one handle is lost through the other.
    let target = &from_a[0];
    fa.repo
        .save(&ctx(), &Change::claim_upload(target.clone()))
        .await
        .unwrap();
    assert!(matches!(
        b.save(&ctx(), &Change::claim_upload(target.clone())).await,
        Err(Error::Conflict { .. })
    ));
    // Reopening an up-to-date database migrates nothing and loses nothing.
    drop(b);
    let reopened = SqlRepo::open_sqlite(&path, stepping_clock()).await.unwrap();
    assert_eq!(
        reopened
            .list(&ctx(), &ListQuery::default())
            .await
            .unwrap()
            .len(),
        20
    );
    let usage = reopened.usage("p1").await.unwrap();
    assert_eq!(
        (usage.image_count, usage.uploading, usage.stored_bytes),
        (20, 1, 0)
    );
}

#[tokio::test]
async fn opening_an_unusable_database_path_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the database file should be.
    let path = dir.path().join("portcullis.db");
    std::fs::create_dir(&path).unwrap();
    let err = SqlRepo::open_sqlite(&path, stepping_clock())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "database", "{err}");
}

#[tokio::test]
async fn an_unreachable_postgres_server_fails_clearly_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let started = std::time::Instant::now();
    let err = SqlRepo::open(
        "postgres://portcullis:s3cret@127.0.0.1:1/images",
        stepping_clock(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), "database", "{err}");
    assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
    assert!(started.elapsed().as_secs() < 60);
}

// The assembled stack, opened from a data directory.

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The layers over a real SQLite file and filesystem store in `data_dir`,
/// assembled as `app::App::open` assembles them (without crash recovery,
/// which these tests do not need).
async fn assemble(
    data_dir: &std::path::Path,
    options: &RepoOptions,
    clock: Arc<dyn Clock>,
) -> Result<(Arc<portcullis::repo::Stack>, portcullis::store::Store), Error> {
    let store = portcullis::store::Store::filesystem(data_dir).map_err(Error::Store)?;
    let database = data_dir.join(portcullis::repo::DATABASE_FILE);
    let sql = SqlRepo::open_sqlite(&database, clock.clone()).await?;
    let stack = portcullis::repo::stack(sql, store.clone(), options, clock)?;
    Ok((Arc::new(stack), store))
}

#[tokio::test]
async fn the_embedded_stack_runs_every_layer() {
    let config = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("portcullis-data");
    let sink = config.path().join("notifications.jsonl");
    let policy = write(
        config.path(),
        "policy.json",
        r#"{"delete_image": "role:admin"}"#,
    );
    let protections = write(
        config.path(),
        "property-protections.conf",
        "[^x_.*]\ncreate = admin,member\nread = @\nupdate = admin,member\ndelete = admin\n[.*]\ncreate = @\nread = @\nupdate = @\ndelete = @\n",
    );
    let options: RepoOptions = toml::from_str(&format!(
        r#"
        property_protection_file = {protections:?}
        [policy]
        file = {policy:?}
        [quota]
        image_member_quota = 1
        [quota.default]
        image_count_total = 2
        image_size_total = 1
        [notifications]
        sink = {sink:?}
        "#
    ))
    .unwrap();
    let clock = stepping_clock();
    let (stack, store) = assemble(&data_dir, &options, clock.clone()).await.unwrap();
    assert!(data_dir.join("portcullis.db").is_file());
    assert!(data_dir.join("images").is_dir() && data_dir.join("staging").is_dir());
    // Through the Arc, as a server or ingest would share it.
    let repo = &stack;
    fn shared<R: MemberRepo>(repo: &R) -> &R {
        repo
    }
    let repo = shared(repo);
    let p1 = RequestContext::for_project("p1", &["member"]);
    let p2 = RequestContext::for_project("p2", &["member"]);

    // Create (authz: own project; policy: member; property protection: x_ may be created).
    let mut image = Image::new_queued(ImageId::new_random(), Some("p1".into()), clock.now());
    image.properties.insert("x_team".into(), "blue".into());
    let image = repo.add(&p1, &NewImage::new(image)).await.unwrap();
    // Upload: allowance from the 1 MiB quota, data through the store, commit.
    let allowance = repo.prepare_upload(&p1, &image).await.unwrap();
    assert_eq!(allowance.max_bytes, Some(1024 * 1024));
    let saving = repo
        .save(&p1, &Change::claim_upload(image.clone()))
        .await
        .unwrap();
    let mut staged = store.stage(image.id).await.unwrap();
    staged
        .write(bytes::Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    let location = staged.commit().await.unwrap();
    let active = repo
        .save(
            &p1,
            &Change::commit_upload(
                saving,
                UploadedData {
                    size: 10,
                    virtual_size: Some(10),
                    checksum: "781e5e245d69b566979b86e28d23f2c7".into(),
                    os_hash_algo: "sha512".into(),
                    os_hash_value: "bb96c2fc40d2d54617d6f276febe571f623a8dadf0b734855299b0e107fda32cf6b69f2da32b36445d73690b93cbd0f7bfc20e0f7f28553d2a4428f23b716e90".into(),
                    location: location.clone(),
                },
            ),
        )
        .await
        .unwrap();
    assert_eq!(active.status, Status::Active);
    let download = repo.prepare_download(&p1, image.id).await.unwrap();
    assert_eq!(download.locations, vec![location.clone()]);

    // Policy from the file: only admins delete now.
    assert_eq!(
        repo.remove(&p1, &active).await.unwrap_err().kind(),
        "forbidden"
    );
    // Quota: two images per project.
    repo.add(
        &p1,
        &NewImage::new(Image::new_queued(
            ImageId::new_random(),
            Some("p1".into()),
            clock.now(),
        )),
    )
    .await
    .unwrap();
    let third = Image::new_queued(ImageId::new_random(), Some("p1".into()), clock.now());
    assert_eq!(
        repo.add(&p1, &NewImage::new(third))
            .await
            .unwrap_err()
            .kind(),
        "quota_exceeded"
    );
    // Property protection: members may not delete x_ properties.
    let read = repo.get(&p1, image.id).await.unwrap();
    let mut stripped = read.clone();
    stripped.properties.remove("x_team");
    assert_eq!(
        repo.save(&p1, &Change::update(read.clone(), stripped))
            .await
            .unwrap_err()
            .kind(),
        "forbidden"
    );
    // Other projects do not see it (shared, no member yet)...
    assert_eq!(
        repo.get(&p2, image.id).await.unwrap_err().kind(),
        "not_found"
    );
    // ...until the owner shares it; then p2 sees it and may download it,
    // and the member quota (1) refuses a second member.
    let member = repo
        .add_member(&p1, &NewMember::new(read.clone(), "p2"))
        .await
        .unwrap();
    assert_eq!(member.status, MemberStatus::Pending);
    assert_eq!(
        repo.add_member(&p1, &NewMember::new(read.clone(), "p3"))
            .await
            .unwrap_err()
            .kind(),
        "member_limit"
    );
    let seen = repo.get(&p2, image.id).await.unwrap();
    assert!(repo.prepare_download(&p2, image.id).await.is_ok());
    assert_eq!(
        repo.update_member(&p2, &seen, "p2", MemberStatus::Accepted)
            .await
            .unwrap()
            .status,
        MemberStatus::Accepted
    );
    assert_eq!(
        repo.list(&p2, &ListQuery::default())
            .await
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect::<Vec<_>>(),
        [image.id]
    );

    // The admin deletes it: the data goes too.
    let path = std::fs::canonicalize(&data_dir)
        .unwrap()
        .join("images")
        .join(image.id.to_string());
    assert!(path.is_file());
    let read = repo.get(&ctx(), image.id).await.unwrap();
    repo.remove(&ctx(), &read).await.unwrap();
    assert!(!path.exists());

    let events: Vec<String> = std::fs::read_to_string(&sink)
        .unwrap()
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["event_type"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        events,
        [
            "image.create",
            "image.prepare",
            "image.upload",
            "image.activate",
            "image.create",
            "image.member.create",
            "image.member.update",
            "image.delete"
        ]
    );
}

#[tokio::test]
async fn a_broken_rule_file_stops_the_stack() {
    let config = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    for (options, expect) in [
        (
            format!(
                r#"[policy]
file = {:?}"#,
                write(config.path(), "bad.json", r#"{"get_image": "role:"}"#)
            ),
            "policy rule \"get_image\"",
        ),
        (
            format!(
                r#"[policy]
file = {:?}"#,
                write(config.path(), "policy.yaml", "get_image: role:admin\n")
            ),
            "not a JSON object",
        ),
        (
            format!(
                "property_protection_file = {:?}",
                write(config.path(), "pp.conf", "[(]\nread = @\n")
            ),
            "property protection file",
        ),
        (
            format!(
                "property_protection_file = {:?}",
                config.path().join("missing.conf")
            ),
            "cannot read the property protection file",
        ),
    ] {
        let options: RepoOptions = toml::from_str(&options).unwrap();
        let err = assemble(data.path(), &options, stepping_clock())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "options", "{err}");
        assert!(err.to_string().contains(expect), "{err}");
    }
}
