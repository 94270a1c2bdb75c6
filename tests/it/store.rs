//! The filesystem store on real directories: the commit protocol, cleanup of
//! everything uncommitted, upload locks across processes, and disk full on a
//! real (small) tmpfs.

// The suite's helpers are not #[test] functions, so .clippy.toml's
// allow-unwrap-in-tests does not reach them; a failed unwrap here is a
// failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use portcullis::image::{ImageId, Location};
use portcullis::store::{Error, Store};
use tokio::io::AsyncReadExt;

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::filesystem(dir.path()).unwrap();
        Fixture { dir, store }
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

async fn read_all(store: &Store, location: &Location) -> Vec<u8> {
    let mut reader = store.open(location).await.unwrap();
    let mut data = Vec::new();
    reader.read_to_end(&mut data).await.unwrap();
    assert_eq!(reader.len(), data.len() as u64);
    data
}

#[tokio::test]
async fn commit_makes_the_data_appear_at_once_under_its_final_name() {
    let f = Fixture::new();
    let id = ImageId::new_random();
    let mut staged = f.store.stage(id).await.unwrap();
    assert_eq!(staged.image_id(), id);
    let chunk: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    for _ in 0..5 {
        staged.write(&chunk).await.unwrap();
    }
    assert_eq!(staged.bytes_written(), 500_000);
    // Before the commit: only a staging file, nothing under images/.
    assert!(files_in(&f.images()).is_empty());
    let staged_files = files_in(&f.staging());
    assert_eq!(staged_files.len(), 1);
    assert!(staged_files[0].starts_with(&id.to_string()) && staged_files[0].ends_with(".part"));

    let location = staged.commit().await.unwrap();
    assert_eq!(
        location.url,
        format!("file://{}/{id}", f.images().display())
    );
    assert_eq!(
        location.metadata.get("store").map(String::as_str),
        Some("fs")
    );
    assert_eq!(location, f.store.location_of(id));
    assert!(f.store.owns(&location));
    assert_eq!(files_in(&f.images()), [id.to_string()]);
    assert!(files_in(&f.staging()).is_empty());
    let data = read_all(&f.store, &location).await;
    assert_eq!(data.len(), 500_000);
    assert!(data.chunks(100_000).all(|part| part == chunk.as_slice()));
}

#[tokio::test]
async fn empty_data_commits_too() {
    let f = Fixture::new();
    let id = ImageId::new_random();
    let location = f.store.stage(id).await.unwrap().commit().await.unwrap();
    let reader = f.store.open(&location).await.unwrap();
    assert!(reader.is_empty());
}

#[tokio::test]
async fn abort_drop_and_cancellation_leave_nothing_behind() {
    let f = Fixture::new();
    let id = ImageId::new_random();

    let mut staged = f.store.stage(id).await.unwrap();
    staged.write(b"aborted").await.unwrap();
    staged.abort().await.unwrap();
    assert!(files_in(&f.staging()).is_empty());

    // An early return drops the staged write.
    async fn early_return(store: &Store, id: ImageId) -> Result<(), String> {
        let mut staged = store.stage(id).await.map_err(|e| e.to_string())?;
        staged.write(b"dropped").await.map_err(|e| e.to_string())?;
        Err("client went away".to_owned())
    }
    assert!(early_return(&f.store, id).await.is_err());
    assert!(files_in(&f.staging()).is_empty());

    // A cancelled task drops it too.
    let store = f.store.clone();
    let (written_tx, written_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut staged = store.stage(id).await.unwrap();
        staged.write(&[7; 4096]).await.unwrap();
        written_tx.send(()).unwrap();
        std::future::pending::<()>().await;
        staged.commit().await
    });
    written_rx.await.unwrap();
    assert_eq!(files_in(&f.staging()).len(), 1);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(files_in(&f.staging()).is_empty());
    assert!(files_in(&f.images()).is_empty());
}

#[tokio::test]
async fn delete_is_idempotent_and_never_leaves_the_store() {
    let f = Fixture::new();
    let id = ImageId::new_random();
    let mut staged = f.store.stage(id).await.unwrap();
    staged.write(b"x").await.unwrap();
    let location = staged.commit().await.unwrap();
    f.store.delete(&location).await.unwrap();
    assert!(files_in(&f.images()).is_empty());
    f.store.delete(&location).await.unwrap();
    assert!(matches!(
        f.store.open(&location).await,
        Err(Error::Missing { .. })
    ));

    // Files outside images/ are never touched.
    let outside = f.dir.path().join("precious");
    std::fs::write(&outside, b"keep").unwrap();
    let other_id = ImageId::new_random();
    let staged_path = f.staging().join(format!("{other_id}.x.part"));
    std::fs::write(&staged_path, b"keep").unwrap();
    for url in [
        format!("file://{}", outside.display()),
        format!("file://{}", staged_path.display()),
        format!("file://{}/../precious", f.images().display()),
        "s3://bucket/key".to_owned(),
        "not a url".to_owned(),
    ] {
        let foreign = Location {
            url: url.clone(),
            metadata: Default::default(),
        };
        let err = f.store.delete(&foreign).await.unwrap_err();
        assert!(matches!(err, Error::ForeignLocation { .. }), "{url}: {err}");
        assert_eq!(err.kind(), "foreign_location");
        assert!(!f.store.owns(&foreign));
        assert!(matches!(
            f.store.open(&foreign).await,
            Err(Error::ForeignLocation { .. })
        ));
    }
    assert!(outside.exists() && staged_path.exists());
}

#[tokio::test]
async fn crash_leftovers_are_listed_and_removed_per_image() {
    let f = Fixture::new();
    let crashed = ImageId::new_random();
    let other = ImageId::new_random();
    for (id, data) in [
        (crashed, &b"12345"[..]),
        (crashed, &b"1"[..]),
        (other, &b"99"[..]),
    ] {
        let mut staged = f.store.stage(id).await.unwrap();
        staged.write(data).await.unwrap();
        // Simulates a process killed mid-upload: Drop never runs.
        std::mem::forget(staged);
    }
    // Give the forgotten writes' background IO time to land.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let listed = f.store.list_staged().await.unwrap();
        let total: u64 = listed.iter().map(|s| s.len).sum();
        if total == 8 || Instant::now() > deadline {
            assert_eq!(listed.len(), 3);
            assert_eq!(total, 8);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let removed = f.store.remove_staged(crashed).await.unwrap();
    assert_eq!(removed.len(), 2);
    assert!(removed.iter().all(|data| data.image_id == crashed));
    let left = f.store.list_staged().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].image_id, other);
    // Idempotent.
    assert!(f.store.remove_staged(crashed).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_upload_lock_is_exclusive_and_dies_with_its_process() {
    let f = Fixture::new();
    let id = ImageId::new_random();
    let lock = f.store.try_lock_upload(id).unwrap().expect("free");
    assert_eq!(lock.image_id(), id);
    assert!(f.store.try_lock_upload(id).unwrap().is_none());
    let other = f.store.try_lock_upload(ImageId::new_random()).unwrap();
    assert!(other.is_some());
    drop(lock);
    let lock_file = f.staging().join(format!("{id}.lock"));
    assert!(!lock_file.exists(), "the lock file is removed on release");
    let again = f.store.try_lock_upload(id).unwrap();
    assert!(again.is_some());
    drop(again);
    // Lock files are not staged data.
    assert!(f.store.list_staged().await.unwrap().is_empty());

    // Another process holds it (flock(1) takes the same kind of lock; with
    // --no-fork the process killed below is the one holding it)...
    let mut holder = Command::new("flock")
        .args(["--exclusive", "--no-fork"])
        .arg(&lock_file)
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    // Wait for it without try_lock_upload, whose release unlinks the file
    // flock(1) may just have opened.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = std::fs::File::open(&lock_file);
        if let Ok(probe) = probe
            && matches!(probe.try_lock(), Err(std::fs::TryLockError::WouldBlock))
        {
            break;
        }
        assert!(Instant::now() < deadline, "flock(1) did not take the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(f.store.try_lock_upload(id).unwrap().is_none());
    // ...until it is killed with SIGKILL: then the lock is free again.
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(lock_file.exists(), "a killed holder cannot clean up");
    let recovered = f.store.try_lock_upload(id).unwrap();
    assert!(recovered.is_some(), "a dead process's lock must be free");
}

#[test]
fn a_relative_root_gives_absolute_locations() {
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
async fn disk_full_is_a_clear_error_and_leaves_nothing_half_written() {
    let tmpfs = Tmpfs::new("512k");
    let store = Store::filesystem(&tmpfs.mount).unwrap();
    let images = tmpfs.mount.join("images");
    let staging = tmpfs.mount.join("staging");
    let id = ImageId::new_random();

    let mut staged = store.stage(id).await.unwrap();
    let chunk = vec![0x5a; 64 * 1024];
    let mut failure = None;
    for _ in 0..32 {
        if let Err(err) = staged.write(&chunk).await {
            failure = Some(err);
            break;
        }
    }
    // tokio reports a failed background write on the next write, or at the
    // latest when the commit flushes.
    let err = match failure {
        Some(err) => {
            // After a failure the staged write is unusable.
            assert!(matches!(
                staged.write(b"more").await,
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
    small.write(&[1; 1024]).await.unwrap();
    let location = small.commit().await.unwrap();
    assert_eq!(read_all(&store, &location).await.len(), 1024);
}
