//! The `ImageRepo` conformance suite, run against every backend (SQLite on a
//! real file in a temporary directory now; PostgreSQL joins by adding one
//! `conformance!` line), plus SQLite-specific checks on the raw rows and the
//! assembled stack opened from a data directory.

// The suite's helpers are not #[test] functions, so .clippy.toml's
// allow-unwrap-in-tests does not reach them; a failed unwrap here is a
// failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use portcullis::clock::Clock;
use portcullis::context::RequestContext;
use portcullis::image::{
    ContainerFormat, DiskFormat, Image, ImageId, Location, Status, Visibility,
};
use portcullis::repo::{
    Error, ImageRepo, ListQuery, ListScope, RepoOptions, SortBy, SortDir, SortKey, SqlRepo,
    VisibilityFilter,
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

/// A backend under test and what keeps it alive.
pub(crate) struct Fixture<R> {
    repo: R,
    clock: Arc<SteppingClock>,
    dir: tempfile::TempDir,
}

async fn sqlite() -> Fixture<SqlRepo> {
    let dir = tempfile::tempdir().unwrap();
    let clock = stepping_clock();
    let repo = SqlRepo::open_sqlite(&dir.path().join("portcullis.db"), clock.clone())
        .await
        .unwrap();
    Fixture { repo, clock, dir }
}

fn ctx() -> RequestContext {
    RequestContext::local_admin()
}

impl<R: ImageRepo> Fixture<R> {
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
        self.repo.add(&ctx(), image).await.unwrap()
    }

    async fn transition(&self, image: &Image, to: Status) -> Image {
        let mut next = image.clone();
        next.status = to;
        if to == Status::Active && image.status == Status::Saving {
            next.size = Some(next.size.unwrap_or(1));
            next.locations = vec![Location {
                url: format!("file:///data/images/{}", image.id),
                metadata: [("store".to_owned(), "fs".to_owned())].into(),
            }];
        }
        self.repo
            .save(&ctx(), &next, Some(image.status))
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
                save_is_a_compare_and_swap_on_status,
                only_one_of_many_racing_transitions_wins,
                save_replaces_the_whole_record,
                remove_marks_deleted_and_respects_protected,
                list_filters_like_glance,
                list_pages_cover_every_sort_without_gaps_or_overlap,
                list_pages_with_identical_timestamps_fall_back_to_ids,
                list_scope_limits_what_a_project_sees,
                prepare_upload_only_for_queued_images,
            );
        }
    };
    (@tests $open:path, $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                super::$test($open().await).await;
            }
        )+
    };
}

conformance!(sqlite_backend, super::sqlite);

async fn add_then_get_round_trips_every_field<R: ImageRepo>(f: Fixture<R>) {
    let mut image = f.new_image(Some("cirros"), Some("p1"));
    image.visibility = Visibility::Community;
    image.protected = true;
    image.os_hidden = true;
    image.disk_format = Some(DiskFormat::Qcow2);
    image.container_format = Some(ContainerFormat::Bare);
    image.min_disk = 7;
    image.min_ram = 512;
    image.tags = ["a", "b b", "ü"].into_iter().map(str::to_owned).collect();
    image
        .properties
        .insert("img_signature".into(), "c2ln".into());
    image.properties.insert("os_distro".into(), "cirros".into());
    image.properties.insert("empty".into(), String::new());
    let stored = f.add(&image).await;
    assert_eq!(stored, image);
    assert_eq!(f.repo.get(&ctx(), image.id).await.unwrap(), image);
}

async fn add_refuses_duplicates_and_non_queued_images<R: ImageRepo>(f: Fixture<R>) {
    let image = f.add(&f.new_image(Some("x"), None)).await;
    assert!(matches!(
        f.repo.add(&ctx(), &image).await,
        Err(Error::AlreadyExists { id }) if id == image.id
    ));
    let mut active = f.new_image(Some("y"), None);
    active.status = Status::Active;
    assert!(matches!(
        f.repo.add(&ctx(), &active).await,
        Err(Error::NotQueued {
            status: Status::Active,
            ..
        })
    ));
    // A deleted image's id is never reused.
    f.repo.remove(&ctx(), image.id).await.unwrap();
    assert!(matches!(
        f.repo.add(&ctx(), &image).await,
        Err(Error::AlreadyExists { .. })
    ));
}

async fn unknown_and_deleted_images_are_not_found<R: ImageRepo>(f: Fixture<R>) {
    let id = ImageId::new_random();
    let err = f.repo.get(&ctx(), id).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { id: missing } if missing == id));
    assert_eq!(err.to_string(), format!("no image found with id {id}"));
    let image = f.add(&f.new_image(None, None)).await;
    f.repo.remove(&ctx(), image.id).await.unwrap();
    assert!(matches!(
        f.repo.get(&ctx(), image.id).await,
        Err(Error::NotFound { .. })
    ));
    let mut renamed = image.clone();
    renamed.name = Some("ghost".into());
    assert!(matches!(
        f.repo.save(&ctx(), &renamed, None).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        f.repo.save(&ctx(), &renamed, Some(Status::Queued)).await,
        Err(Error::NotFound { .. })
    ));
}

async fn save_is_a_compare_and_swap_on_status<R: ImageRepo>(f: Fixture<R>) {
    let image = f.add(&f.new_image(Some("cas"), None)).await;
    let saving = f.transition(&image, Status::Saving).await;
    assert_eq!(saving.status, Status::Saving);

    // The same claim again loses: the image is no longer queued.
    let mut claim = image.clone();
    claim.status = Status::Saving;
    let err = f
        .repo
        .save(&ctx(), &claim, Some(Status::Queued))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: Status::Queued,
                actual: Status::Saving,
                wanted: Status::Saving,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("status transition from saving to saving is not allowed"),
        "{err}"
    );
    // Nothing was written by the losing save.
    assert_eq!(f.repo.get(&ctx(), image.id).await.unwrap(), saving);

    // Illegal transitions, with or without a guard.
    for (from, to) in [
        (Some(Status::Saving), Status::Deactivated),
        (None, Status::Deactivated),
        (Some(Status::Saving), Status::Deleted),
    ] {
        let mut next = saving.clone();
        next.status = to;
        let err = f.repo.save(&ctx(), &next, from).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidTransition { from: Status::Saving, to: t, .. } if t == to),
            "{from:?} -> {to}: {err}"
        );
    }

    let active = f.transition(&saving, Status::Active).await;
    let deactivated = f.transition(&active, Status::Deactivated).await;
    let active = f.transition(&deactivated, Status::Active).await;
    let mut back = active.clone();
    back.status = Status::Saving;
    assert!(matches!(
        f.repo.save(&ctx(), &back, Some(Status::Active)).await,
        Err(Error::InvalidTransition {
            from: Status::Active,
            to: Status::Saving,
            ..
        })
    ));
    // A guard on the current status with no status change is a plain
    // conditional update.
    let mut renamed = active.clone();
    renamed.name = Some("guarded".into());
    let saved = f
        .repo
        .save(&ctx(), &renamed, Some(Status::Active))
        .await
        .unwrap();
    assert_eq!(saved.name.as_deref(), Some("guarded"));
    assert!(matches!(
        f.repo.save(&ctx(), &renamed, Some(Status::Queued)).await,
        Err(Error::Conflict {
            expected: Status::Queued,
            actual: Status::Active,
            ..
        })
    ));
}

async fn only_one_of_many_racing_transitions_wins<R: ImageRepo + 'static>(f: Fixture<R>) {
    let image = f.add(&f.new_image(Some("race"), None)).await;
    // Keep the directory (and so the database file) alive while tasks run.
    let Fixture {
        repo, dir: _dir, ..
    } = f;
    let repo = Arc::new(repo);
    let mut claims = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let repo = repo.clone();
        let mut claim = image.clone();
        claim.status = Status::Saving;
        claims.spawn(async move { repo.save(&ctx(), &claim, Some(Status::Queued)).await });
    }
    let mut won = 0;
    let mut lost = 0;
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
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!((won, lost), (1, 7));
}

async fn save_replaces_the_whole_record<R: ImageRepo>(f: Fixture<R>) {
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
    changed.tags = ["new".to_owned(), "newer".to_owned()].into();
    changed.properties.remove("drop");
    changed.properties.insert("keep".into(), "2".into());
    changed.properties.insert("added".into(), "3".into());
    // created_at is immutable, whatever the caller sends.
    changed.created_at = OffsetDateTime::UNIX_EPOCH;
    let saved = f.repo.save(&ctx(), &changed, None).await.unwrap();
    assert!(saved.updated_at > stored.updated_at, "{saved:?}");
    assert_eq!(saved.created_at, stored.created_at);
    let mut expected = changed.clone();
    expected.created_at = stored.created_at;
    expected.updated_at = saved.updated_at;
    assert_eq!(saved, expected);
    assert_eq!(f.repo.get(&ctx(), image.id).await.unwrap(), expected);
}

async fn remove_marks_deleted_and_respects_protected<R: ImageRepo>(f: Fixture<R>) {
    let mut protected = f.new_image(Some("keep me"), None);
    protected.protected = true;
    let protected = f.add(&protected).await;
    let err = f.repo.remove(&ctx(), protected.id).await.unwrap_err();
    assert!(matches!(err, Error::Protected { .. }), "{err}");
    assert!(err.to_string().contains("protected"), "{err}");
    assert!(f.repo.get(&ctx(), protected.id).await.is_ok());

    let image = f.add(&f.new_image(Some("gone"), None)).await;
    let saving = f.transition(&image, Status::Saving).await;
    let active = f.transition(&saving, Status::Active).await;
    let removed = f.repo.remove(&ctx(), image.id).await.unwrap();
    assert_eq!(removed.status, Status::Deleted);
    // The removed record still names its data, for the location layer.
    assert_eq!(removed.locations, active.locations);
    assert!(matches!(
        f.repo.remove(&ctx(), image.id).await,
        Err(Error::NotFound { .. })
    ));
    let listed = f.repo.list(&ctx(), &ListQuery::default()).await.unwrap();
    assert_eq!(
        listed.iter().map(|i| i.id).collect::<Vec<_>>(),
        [protected.id]
    );
    // Even an explicit status filter never shows deleted images.
    let query = ListQuery {
        status: Some(Status::Deleted),
        ..ListQuery::default()
    };
    assert!(f.repo.list(&ctx(), &query).await.unwrap().is_empty());
}

async fn list_filters_like_glance<R: ImageRepo>(f: Fixture<R>) {
    let mut a = f.new_image(Some("alpha"), Some("p1"));
    a.tags = ["t1".to_owned(), "t2".to_owned()].into();
    a.properties.insert("os_distro".into(), "cirros".into());
    a.disk_format = Some(DiskFormat::Qcow2);
    let a = f.add(&a).await;
    let mut b = f.new_image(Some("beta"), Some("p2"));
    b.tags = ["t1".to_owned()].into();
    b.visibility = Visibility::Public;
    b.properties.insert("os_distro".into(), "ubuntu".into());
    let b = f.add(&b).await;
    let mut hidden = f.new_image(Some("alpha"), Some("p1"));
    hidden.os_hidden = true;
    let hidden = f.add(&hidden).await;
    let mut community = f.new_image(Some("gamma"), Some("p3"));
    community.visibility = Visibility::Community;
    let community = f.add(&community).await;
    let b = f.transition(&b, Status::Saving).await;
    let f = &f;

    let ids = |images: Vec<Image>| images.into_iter().map(|i| i.id).collect::<BTreeSet<_>>();
    let run = |query: ListQuery| async move { ids(f.repo.list(&ctx(), &query).await.unwrap()) };
    let set = |images: &[&Image]| images.iter().map(|i| i.id).collect::<BTreeSet<_>>();

    // Default: hidden images are left out; the admin scope sees community ones.
    assert_eq!(run(ListQuery::default()).await, set(&[&a, &b, &community]));
    let q = |edit: &dyn Fn(&mut ListQuery)| {
        let mut query = ListQuery::default();
        edit(&mut query);
        query
    };
    assert_eq!(run(q(&|q| q.os_hidden = Some(true))).await, set(&[&hidden]));
    assert_eq!(run(q(&|q| q.name = Some("alpha".into()))).await, set(&[&a]));
    assert_eq!(run(q(&|q| q.owner = Some("p2".into()))).await, set(&[&b]));
    assert_eq!(
        run(q(&|q| q.status = Some(Status::Saving))).await,
        set(&[&b])
    );
    assert_eq!(
        run(q(&|q| q.status = Some(Status::Queued))).await,
        set(&[&a, &community])
    );
    assert_eq!(
        run(q(
            &|q| q.visibility = Some(VisibilityFilter::Only(Visibility::Public))
        ))
        .await,
        set(&[&b])
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
    assert_eq!(
        run(q(&|q| q.disk_format = Some(DiskFormat::Qcow2))).await,
        set(&[&a])
    );
    assert_eq!(
        run(q(&|q| q.container_format = Some(ContainerFormat::Bare))).await,
        set(&[])
    );
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

/// Every image of `images` in the order the repository must return them,
/// computed independently: null before any value ascending, after descending.
fn expected_order(images: &[Image], sort: &[SortBy]) -> Vec<ImageId> {
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
            SortKey::VirtualSize => int(image.virtual_size.map(|v| v as i64)),
            SortKey::Id => text(Some(&image.id.to_string())),
            SortKey::CreatedAt => int(Some(image.created_at.unix_timestamp())),
            SortKey::UpdatedAt => int(Some(image.updated_at.unix_timestamp())),
            SortKey::Visibility => text(Some(image.visibility.as_str())),
            SortKey::Owner => text(image.owner.as_deref()),
            SortKey::MinDisk => int(Some(i64::from(image.min_disk))),
            SortKey::MinRam => int(Some(i64::from(image.min_ram))),
        }
    }
    let mut full: Vec<SortBy> = sort.to_vec();
    for k in [SortKey::CreatedAt, SortKey::Id] {
        if !full.iter().any(|b| b.key == k) {
            full.push(SortBy {
                key: k,
                dir: SortDir::Desc,
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

async fn list_pages_cover_every_sort_without_gaps_or_overlap<R: ImageRepo>(f: Fixture<R>) {
    // Duplicated names, missing names, equal and missing sizes.
    let names = [
        Some("b"),
        None,
        Some("a"),
        Some("b"),
        None,
        Some("c"),
        Some("a"),
    ];
    let sizes = [Some(10), None, Some(10), Some(5), None, Some(7), None];
    let mut all = Vec::new();
    for (index, (name, size)) in names.iter().zip(sizes).enumerate() {
        let mut image = f.new_image(*name, Some(if index % 2 == 0 { "p1" } else { "p2" }));
        image.min_ram = (index % 3) as u32;
        let mut image = f.add(&image).await;
        if let Some(size) = size {
            let saving = f.transition(&image, Status::Saving).await;
            let mut with_size = saving.clone();
            with_size.size = Some(size);
            image = f.transition(&with_size, Status::Active).await;
        }
        all.push(image);
    }
    let sorts: Vec<Vec<SortBy>> = vec![
        vec![],
        vec![SortBy {
            key: SortKey::Name,
            dir: SortDir::Asc,
        }],
        vec![SortBy {
            key: SortKey::Name,
            dir: SortDir::Desc,
        }],
        vec![
            SortBy {
                key: SortKey::Size,
                dir: SortDir::Asc,
            },
            SortBy {
                key: SortKey::Name,
                dir: SortDir::Desc,
            },
        ],
        vec![SortBy {
            key: SortKey::Size,
            dir: SortDir::Desc,
        }],
        vec![
            SortBy {
                key: SortKey::Owner,
                dir: SortDir::Asc,
            },
            SortBy {
                key: SortKey::MinRam,
                dir: SortDir::Desc,
            },
        ],
        vec![
            SortBy {
                key: SortKey::Status,
                dir: SortDir::Asc,
            },
            SortBy {
                key: SortKey::Id,
                dir: SortDir::Asc,
            },
        ],
        vec![SortBy {
            key: SortKey::UpdatedAt,
            dir: SortDir::Asc,
        }],
    ];
    for sort in sorts {
        let expected = expected_order(&all, &sort);
        let query = ListQuery {
            sort: sort.clone(),
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

async fn list_pages_with_identical_timestamps_fall_back_to_ids<R: ImageRepo>(f: Fixture<R>) {
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

async fn list_scope_limits_what_a_project_sees<R: ImageRepo>(f: Fixture<R>) {
    let mut images = Vec::new();
    for owner in ["p1", "p2"] {
        for visibility in Visibility::ALL {
            let mut image = f.new_image(Some(visibility.as_str()), Some(owner));
            image.visibility = *visibility;
            images.push(f.add(&image).await);
        }
    }
    let f = &f;
    let seen = |query: ListQuery| async move {
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
    };
    let scoped = |visibility| ListQuery {
        scope: ListScope::VisibleTo {
            project: Some("p1".into()),
        },
        visibility,
        ..ListQuery::default()
    };
    let pairs = |items: &[(&str, &str)]| {
        items
            .iter()
            .map(|(o, v)| (o.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        seen(scoped(None)).await,
        pairs(&[
            ("p1", "community"),
            ("p1", "private"),
            ("p1", "public"),
            ("p1", "shared"),
            ("p2", "public")
        ])
    );
    assert_eq!(
        seen(scoped(Some(VisibilityFilter::All))).await,
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
        seen(scoped(Some(VisibilityFilter::Only(Visibility::Community)))).await,
        pairs(&[("p1", "community"), ("p2", "community")])
    );
    let anonymous = ListQuery {
        scope: ListScope::VisibleTo { project: None },
        ..ListQuery::default()
    };
    assert_eq!(
        seen(anonymous).await,
        pairs(&[("p1", "public"), ("p2", "public")])
    );
    assert_eq!(images.len(), 8);
}

async fn prepare_upload_only_for_queued_images<R: ImageRepo>(f: Fixture<R>) {
    let image = f.add(&f.new_image(Some("up"), None)).await;
    let allowance = f.repo.prepare_upload(&ctx(), &image).await.unwrap();
    assert_eq!(allowance.max_bytes, None);
    let saving = f.transition(&image, Status::Saving).await;
    let err = f.repo.prepare_upload(&ctx(), &saving).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidTransition {
                from: Status::Saving,
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

// SQLite-specific: the database file itself.

async fn raw(path: &std::path::Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn sqlite_uses_wal_foreign_keys_and_keeps_deleted_rows() {
    let f = sqlite().await;
    let path = f.dir.path().join("portcullis.db");
    let image = f.add(&f.new_image(Some("rows"), Some("p1"))).await;
    let saving = f.transition(&image, Status::Saving).await;
    f.transition(&saving, Status::Active).await;
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

    f.repo.remove(&ctx(), image.id).await.unwrap();
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
    let f = sqlite().await;
    let mut hidden = f.new_image(Some("hidden"), Some("p1"));
    hidden.os_hidden = true;
    hidden.visibility = Visibility::Private;
    let hidden = f.add(&hidden).await;
    let plain = f.add(&f.new_image(None, None)).await;
    let idle = f.add(&f.new_image(Some("idle"), None)).await;
    let hidden = f.transition(&hidden, Status::Saving).await;
    let plain = f.transition(&plain, Status::Saving).await;
    let stuck = f.repo.images_with_status(Status::Saving).await.unwrap();
    assert_eq!(stuck, vec![hidden, plain]);
    let queued = f.repo.images_with_status(Status::Queued).await.unwrap();
    assert_eq!(queued, vec![idle]);
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_not_a_panic() {
    let f = sqlite().await;
    let image = f.add(&f.new_image(Some("corrupt"), None)).await;
    let pool = raw(&f.dir.path().join("portcullis.db")).await;
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
        dir,
    };
    // Many writes from both handles interleave without "database is locked".
    let writes = (0..20).map(|i| {
        let repo = if i % 2 == 0 { &fa.repo } else { &b };
        let image = fa.new_image(Some(&format!("img{i}")), Some("p1"));
        async move { repo.add(&ctx(), &image).await }
    });
    let results = futures_util::future::join_all(writes).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let from_a = fa.repo.list(&ctx(), &ListQuery::default()).await.unwrap();
    let from_b = b.list(&ctx(), &ListQuery::default()).await.unwrap();
    assert_eq!(from_a.len(), 20);
    assert_eq!(from_a, from_b);
    // A compare-and-swap won through one handle is lost through the other.
    let target = &from_a[0];
    let mut claim = target.clone();
    claim.status = Status::Saving;
    fa.repo
        .save(&ctx(), &claim, Some(Status::Queued))
        .await
        .unwrap();
    assert!(matches!(
        b.save(&ctx(), &claim, Some(Status::Queued)).await,
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
    fn shared<R: ImageRepo>(repo: &R) -> &R {
        repo
    }
    let repo = shared(repo);
    let p1 = RequestContext::for_project("p1", &["member"]);

    // Create (authz: own project; policy: member; property protection: x_ may be created).
    let mut image = Image::new_queued(ImageId::new_random(), Some("p1".into()), clock.now());
    image.properties.insert("x_team".into(), "blue".into());
    let image = repo.add(&p1, &image).await.unwrap();
    // Upload: allowance from the 1 MiB quota, data through the store, commit.
    let allowance = repo.prepare_upload(&p1, &image).await.unwrap();
    assert_eq!(allowance.max_bytes, Some(1024 * 1024));
    let lock = store.try_lock_upload(image.id).unwrap().unwrap();
    let mut saving = image.clone();
    saving.status = Status::Saving;
    let saving = repo.save(&p1, &saving, Some(Status::Queued)).await.unwrap();
    let mut staged = store.stage(image.id).await.unwrap();
    staged.write(b"0123456789").await.unwrap();
    let location = staged.commit().await.unwrap();
    let mut active = saving.clone();
    active.status = Status::Active;
    active.size = Some(10);
    active.checksum = Some("781e5e245d69b566979b86e28d23f2c7".into());
    active.os_hash_algo = Some("sha512".into());
    active.os_hash_value = Some("bb96c2fc40d2d54617d6f276febe571f623a8dadf0b734855299b0e107fda32cf6b69f2da32b36445d73690b93cbd0f7bfc20e0f7f28553d2a4428f23b716e90".into());
    active.locations = vec![location.clone()];
    let active = repo.save(&p1, &active, Some(Status::Saving)).await.unwrap();
    drop(lock);
    assert_eq!(active.status, Status::Active);
    let download = repo.prepare_download(&p1, image.id).await.unwrap();
    assert_eq!(download.locations, vec![location.clone()]);

    // Policy from the file: only admins delete now.
    assert_eq!(
        repo.remove(&p1, image.id).await.unwrap_err().kind(),
        "forbidden"
    );
    // Quota: two images per project.
    repo.add(
        &p1,
        &Image::new_queued(ImageId::new_random(), Some("p1".into()), clock.now()),
    )
    .await
    .unwrap();
    let third = Image::new_queued(ImageId::new_random(), Some("p1".into()), clock.now());
    assert_eq!(
        repo.add(&p1, &third).await.unwrap_err().kind(),
        "quota_exceeded"
    );
    // Property protection: members may not delete x_ properties.
    let mut stripped = repo.get(&p1, image.id).await.unwrap();
    stripped.properties.remove("x_team");
    assert_eq!(
        repo.save(&p1, &stripped, None).await.unwrap_err().kind(),
        "forbidden"
    );
    // Other projects do not see it.
    let p2 = RequestContext::for_project("p2", &["member"]);
    assert_eq!(
        repo.get(&p2, image.id).await.unwrap_err().kind(),
        "not_found"
    );

    // The admin deletes it: the data goes too.
    let path = std::fs::canonicalize(&data_dir)
        .unwrap()
        .join("images")
        .join(image.id.to_string());
    assert!(path.is_file());
    repo.remove(&ctx(), image.id).await.unwrap();
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
