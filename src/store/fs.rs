//! The filesystem store: `<root>/images/<id>` for committed data,
//! `<root>/staging/<id>.<random>.part` for writes in progress (and, left by
//! versions that locked glance-direct stages with a file, stale
//! `<root>/staging/<id>.lock` files for a sweeper).
//!
//! It owns the commit protocol on a local filesystem (write the staging file,
//! fsync it, rename it into `images/`, fsync the directory), aborting staged
//! writes by their intent (the staging file's name), and listing both
//! directories for a sweeper. Writes go through `std::fs` on tokio's blocking
//! pool straight from the caller's `Bytes` (tokio::fs would copy every chunk
//! into a buffer of its own first): benches/store.sh-style pairs measured the
//! same throughput for 0.82 instead of 0.88 core-seconds per GiB (README.md,
//! Benchmarks). It must not touch paths outside its root:
//! every location and intent it is given is checked to name a file directly
//! inside `images/` or `staging/`.

use std::fs::TryLockError;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::task::JoinHandle;

use super::intent::Target;
use super::{
    ByteRange, Error, FS_STORE_ID, Reader, ReaderBackend, StagedData, StagingIntent, StaleLock,
    StoredObject,
};
use crate::image::{ImageId, Location, Properties};

const IMAGES_DIR: &str = "images";
const STAGING_DIR: &str = "staging";
const STAGED_SUFFIX: &str = ".part";
const LOCK_SUFFIX: &str = ".lock";

/// A store in a local directory.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
    images: PathBuf,
    staging: PathBuf,
}

impl FsStore {
    /// Opens (creating when missing) the store rooted at `root`.
    ///
    /// Fails when the directories cannot be created or `root` cannot be
    /// resolved to an absolute path.
    pub fn open(root: PathBuf) -> Result<FsStore, Error> {
        for dir in [root.join(IMAGES_DIR), root.join(STAGING_DIR)] {
            std::fs::create_dir_all(&dir).map_err(|source| io_error("create", &dir, source))?;
        }
        // Locations are absolute file:// URLs, so the root must be absolute;
        // canonical also makes the "is this inside images/" check exact.
        let root =
            std::fs::canonicalize(&root).map_err(|source| io_error("resolve", &root, source))?;
        Ok(FsStore {
            images: root.join(IMAGES_DIR),
            staging: root.join(STAGING_DIR),
            root,
        })
    }

    /// The absolute root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding committed data.
    pub fn images_dir(&self) -> &Path {
        &self.images
    }

    /// The directory holding staged data (and old lock files).
    pub fn staging_dir(&self) -> &Path {
        &self.staging
    }

    pub(super) async fn check(&self) -> Result<(), Error> {
        for dir in [&self.images, &self.staging] {
            let metadata = tokio::fs::metadata(dir)
                .await
                .map_err(|source| io_error("stat", dir, source))?;
            if !metadata.is_dir() {
                return Err(io_error(
                    "use",
                    dir,
                    io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
                ));
            }
        }
        Ok(())
    }

    pub(super) async fn stage(&self, id: ImageId) -> Result<FsStaged, Error> {
        let file_name = format!("{id}.{}{STAGED_SUFFIX}", uuid::Uuid::new_v4().simple());
        let staging_path = self.staging.join(&file_name);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging_path)
            .await
            .map_err(|source| classify("create", &staging_path, source))?
            .into_std()
            .await;
        Ok(FsStaged {
            intent: StagingIntent::fs(id, file_name),
            final_path: self.images.join(id.to_string()),
            images_dir: self.images.clone(),
            staging_path,
            file: Some(file),
            in_flight: None,
            n_bytes: 0,
            peak_held: 0,
            state: StagedState::Open,
        })
    }

    /// The staging file an intent names, if it is one of ours.
    fn staging_path_of(&self, intent: &StagingIntent) -> Result<PathBuf, Error> {
        let foreign = || Error::ForeignIntent {
            intent: intent.to_string(),
            expected: format!(
                "a file <image id>.<random>{STAGED_SUFFIX} in {}",
                self.staging.display()
            ),
        };
        match intent.target() {
            Target::Fs { file }
                if !file.contains('/') && staged_image_id(file) == Some(intent.image_id()) =>
            {
                Ok(self.staging.join(file))
            }
            Target::Fs { .. } | Target::S3 { .. } => Err(foreign()),
        }
    }

    pub(super) async fn abort(&self, intent: &StagingIntent) -> Result<(), Error> {
        let path = self.staging_path_of(intent)?;
        remove_if_present(&path).await
    }

    pub(super) fn location_of(&self, id: ImageId) -> Location {
        location_for(&self.images.join(id.to_string()))
    }

    /// The file a location names, if it is one of ours.
    pub(super) fn path_of(&self, location: &Location) -> Result<PathBuf, Error> {
        let foreign = || Error::ForeignLocation {
            url: location.url.clone(),
            expected: format!("a file:// url under {}", self.images.display()),
        };
        let url = url::Url::parse(&location.url).map_err(|_| foreign())?;
        if url.scheme() != "file" || url.query().is_some() || url.fragment().is_some() {
            return Err(foreign());
        }
        let path = url.to_file_path().map_err(|()| foreign())?;
        let name_is_an_id = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.parse::<ImageId>().is_ok());
        if path.parent() != Some(self.images.as_path()) || !name_is_an_id {
            return Err(foreign());
        }
        Ok(path)
    }

    pub(super) async fn open_data(
        &self,
        location: &Location,
        range: Option<ByteRange>,
    ) -> Result<Reader, Error> {
        let path = self.path_of(location)?;
        let mut file = tokio::fs::File::open(&path).await.map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                Error::Missing {
                    url: location.url.clone(),
                }
            } else {
                io_error("open", &path, source)
            }
        })?;
        let len = file
            .metadata()
            .await
            .map_err(|source| io_error("stat", &path, source))?
            .len();
        let selected = match range {
            None => 0..len,
            Some(range) => range.resolve(len).ok_or(Error::RangeNotSatisfiable {
                url: location.url.clone(),
                range,
                len,
            })?,
        };
        if selected.start > 0 {
            file.seek(io::SeekFrom::Start(selected.start))
                .await
                .map_err(|source| io_error("seek", &path, source))?;
        }
        Ok(Reader {
            len,
            inner: ReaderBackend::Fs(file.take(selected.end - selected.start)),
            range: selected,
        })
    }

    pub(super) async fn delete(&self, location: &Location) -> Result<(), Error> {
        let path = self.path_of(location)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => sync_dir(&self.images).await,
            Err(source) if source.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(io_error("remove", &path, source)),
        }
    }

    /// The entries of `dir` whose names `parse` accepts, with their metadata;
    /// entries removed while listing are skipped.
    async fn list_dir<T>(
        dir: &Path,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<(T, String, std::fs::Metadata)>, Error> {
        let mut entries = tokio::fs::read_dir(dir)
            .await
            .map_err(|source| io_error("read directory", dir, source))?;
        let mut found = Vec::new();
        loop {
            let entry = match entries.next_entry().await {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(source) => return Err(io_error("read directory", dir, source)),
            };
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some(parsed) = parse(&name) else {
                continue;
            };
            match entry.metadata().await {
                Ok(metadata) => found.push((parsed, name, metadata)),
                // Removed between listing and stat: an upload finished or aborted.
                Err(source) if source.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(io_error("stat", &entry.path(), source)),
            }
        }
        found.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(found)
    }

    pub(super) async fn list_objects(&self) -> Result<Vec<StoredObject>, Error> {
        let found = Self::list_dir(&self.images, |name| name.parse::<ImageId>().ok()).await?;
        Ok(found
            .into_iter()
            .map(|(image_id, _name, metadata)| StoredObject {
                image_id,
                location: self.location_of(image_id),
                len: metadata.len(),
                modified: modified(&metadata),
            })
            .collect())
    }

    pub(super) async fn list_staged(
        &self,
        only: Option<ImageId>,
    ) -> Result<Vec<StagedData>, Error> {
        let found = Self::list_dir(&self.staging, |name| {
            staged_image_id(name).filter(|id| only.is_none_or(|wanted| wanted == *id))
        })
        .await?;
        Ok(found
            .into_iter()
            .map(|(image_id, name, metadata)| StagedData {
                intent: StagingIntent::fs(image_id, name),
                image_id,
                since: modified(&metadata),
                len: Some(metadata.len()),
            })
            .collect())
    }

    pub(super) async fn collect_stale_locks(
        &self,
        older_than: std::time::Duration,
        limit: usize,
        dry_run: bool,
    ) -> Result<Vec<StaleLock>, Error> {
        let found = Self::list_dir(&self.staging, |name| {
            name.strip_suffix(LOCK_SUFFIX)?.parse::<ImageId>().ok()
        })
        .await?;
        let now = OffsetDateTime::now_utc();
        let mut old: Vec<StaleLock> = found
            .into_iter()
            .map(|(image_id, _name, metadata)| StaleLock {
                image_id,
                age: (now - modified(&metadata))
                    .try_into()
                    .unwrap_or(std::time::Duration::ZERO),
            })
            .filter(|lock| lock.age >= older_than)
            .collect();
        old.sort_by_key(|lock| std::cmp::Reverse(lock.age));
        let mut stale = Vec::new();
        for lock in old {
            if stale.len() == limit {
                break;
            }
            let path = self.staging.join(format!("{}{LOCK_SUFFIX}", lock.image_id));
            if remove_unheld_lock(&path, dry_run)? {
                stale.push(lock);
            }
        }
        Ok(stale)
    }
}

/// Whether nobody holds the `flock` on the lock file at `path`; unless
/// `dry_run`, the file is then unlinked while this process holds the lock
/// (as its holders did on release), and only when `path` still names the
/// inode locked.
fn remove_unheld_lock(path: &Path, dry_run: bool) -> Result<bool, Error> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(source) if source.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(io_error("open lock", path, source)),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(false),
        Err(TryLockError::Error(source)) => return Err(io_error("lock", path, source)),
    }
    if dry_run {
        return Ok(true);
    }
    let held = file
        .metadata()
        .map_err(|source| io_error("stat", path, source))?;
    match std::fs::metadata(path) {
        Ok(current) if current.dev() == held.dev() && current.ino() == held.ino() => {
            remove_file_sync(path)?;
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(source) if source.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(io_error("stat", path, source)),
    }
}

/// The image id of a staging file name `<id>.<random>.part`.
fn staged_image_id(name: &str) -> Option<ImageId> {
    let stem = name.strip_suffix(STAGED_SUFFIX)?;
    let (id, _random) = stem.split_once('.')?;
    id.parse().ok()
}

fn location_for(path: &Path) -> Location {
    // `from_file_path` only fails on relative paths; the root is canonical.
    let url = url::Url::from_file_path(path)
        .map(String::from)
        .unwrap_or_else(|()| format!("file://{}", path.display()));
    let mut metadata = Properties::new();
    metadata.insert("store".to_owned(), FS_STORE_ID.to_owned());
    Location { url, metadata }
}

fn modified(metadata: &std::fs::Metadata) -> OffsetDateTime {
    metadata
        .modified()
        .map(OffsetDateTime::from)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StagedState {
    Open,
    Failed,
    Done,
}

/// One chunk being written on the blocking pool; it hands the file back.
/// The chunk comes back too, so it is freed on the thread that made it.
type InFlight = JoinHandle<(std::fs::File, io::Result<()>, Bytes)>;

/// A staged write on the filesystem (see [`super::Staged`]).
#[derive(Debug)]
pub(crate) struct FsStaged {
    intent: StagingIntent,
    staging_path: PathBuf,
    final_path: PathBuf,
    images_dir: PathBuf,
    /// The staging file, while no write is in flight.
    file: Option<std::fs::File>,
    /// The previous chunk's write: at most one, so the caller hashes the
    /// next chunk while this one reaches the file.
    in_flight: Option<InFlight>,
    n_bytes: u64,
    peak_held: u64,
    state: StagedState,
}

impl FsStaged {
    pub(crate) fn intent(&self) -> &StagingIntent {
        &self.intent
    }

    pub(crate) fn bytes_written(&self) -> u64 {
        self.n_bytes
    }

    pub(crate) fn peak_held_bytes(&self) -> u64 {
        self.peak_held
    }

    fn id(&self) -> ImageId {
        self.intent.image_id()
    }

    pub(crate) async fn write(&mut self, data: Bytes) -> Result<(), Error> {
        if self.state != StagedState::Open {
            return Err(Error::Failed { id: self.id() });
        }
        self.settle().await?;
        let Some(mut file) = self.file.take() else {
            return Err(Error::Failed { id: self.id() });
        };
        let len = data.len() as u64;
        self.peak_held = self.peak_held.max(len);
        // std::fs writes straight from the caller's buffer. The chunk comes
        // back with the file and is released at the next write, on the
        // caller's side rather than on the blocking thread.
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let result = file.write_all(&data);
            (file, result, data)
        }));
        self.n_bytes += len;
        Ok(())
    }

    /// Waits for the write in flight; on failure the staged data is removed.
    ///
    /// Cancel-safe: the write stays in flight until its task finished.
    async fn settle(&mut self) -> Result<(), Error> {
        let Some(in_flight) = self.in_flight.as_mut() else {
            return Ok(());
        };
        let result = in_flight.await;
        self.in_flight = None;
        match result {
            Ok((file, Ok(()), _chunk)) => {
                self.file = Some(file);
                Ok(())
            }
            Ok((_file, Err(source), _chunk)) => Err(self.fail("write", source).await),
            Err(join) => Err(self.fail("write", io::Error::other(join)).await),
        }
    }

    pub(crate) async fn commit(&mut self) -> Result<Location, Error> {
        if self.state != StagedState::Open {
            return Err(Error::Failed { id: self.id() });
        }
        self.settle().await?;
        let Some(file) = self.file.take() else {
            return Err(Error::Failed { id: self.id() });
        };
        // 1. Everything written reaches the disk before the name changes, so
        //    the final name never shows partial data.
        let synced = tokio::task::spawn_blocking(move || file.sync_all())
            .await
            .unwrap_or_else(|join| Err(io::Error::other(join)));
        if let Err(source) = synced {
            return Err(self.fail("sync", source).await);
        }
        // 2. The rename is the commit point.
        if let Err(source) = tokio::fs::rename(&self.staging_path, &self.final_path).await {
            return Err(self.fail("rename", source).await);
        }
        // 3. The directory entry must be durable too; if it cannot be made
        //    so, undo the commit rather than report data that may vanish.
        if let Err(err) = sync_dir(&self.images_dir).await {
            self.state = StagedState::Failed;
            if let Err(cleanup) = remove_if_present(&self.final_path).await {
                tracing::warn!(error = %cleanup, "could not remove data after a failed commit");
            }
            return Err(err);
        }
        self.state = StagedState::Done;
        Ok(location_for(&self.final_path))
    }

    pub(crate) async fn abort(&mut self) -> Result<(), Error> {
        self.state = StagedState::Done;
        // The chunk in flight lands first, so nothing is written after the
        // file is gone (it would only reach the unlinked inode, but wait all
        // the same: its buffer is the caller's).
        if let Some(in_flight) = self.in_flight.take() {
            let _ = in_flight.await;
        }
        drop(self.file.take());
        remove_if_present(&self.staging_path).await
    }

    /// Marks the write failed, removes the staged data and classifies `source`.
    async fn fail(&mut self, operation: &'static str, source: io::Error) -> Error {
        self.state = StagedState::Failed;
        drop(self.file.take());
        if let Err(cleanup) = remove_if_present(&self.staging_path).await {
            tracing::warn!(error = %cleanup, "could not remove staged data after a failed {operation}");
        }
        classify(operation, &self.staging_path, source)
    }
}

fn remove_file_sync(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(source) if source.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io_error("remove", path, source)),
    }
}

async fn remove_if_present(path: &Path) -> Result<(), Error> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(source) if source.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io_error("remove", path, source)),
    }
}

async fn sync_dir(dir: &Path) -> Result<(), Error> {
    let owned = dir.to_path_buf();
    let result = tokio::task::spawn_blocking(move || std::fs::File::open(&owned)?.sync_all())
        .await
        .unwrap_or_else(|join| Err(io::Error::other(join)));
    result.map_err(|source| classify("sync directory", dir, source))
}

fn is_disk_full(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

fn classify(operation: &'static str, path: &Path, source: io::Error) -> Error {
    if is_disk_full(&source) {
        Error::DiskFull {
            path: path.to_path_buf(),
            source,
        }
    } else {
        io_error(operation, path, source)
    }
}

fn io_error(operation: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_names_parse_back_to_their_image() {
        let id: ImageId = "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55".parse().unwrap();
        assert_eq!(
            staged_image_id(&format!("{id}.0123abcd{STAGED_SUFFIX}")),
            Some(id)
        );
        assert_eq!(staged_image_id(&format!("{id}{LOCK_SUFFIX}")), None);
        assert_eq!(staged_image_id("junk.1.part"), None);
    }

    #[test]
    fn locations_outside_images_are_foreign() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path().to_path_buf()).unwrap();
        let id = ImageId::new_random();
        let own = store.location_of(id);
        assert!(own.url.starts_with("file:///"), "{}", own.url);
        assert_eq!(
            store.path_of(&own).unwrap(),
            store.images_dir().join(id.to_string())
        );
        for url in [
            format!("file://{}/../{id}", store.images_dir().display()),
            format!("file://{}/{id}", store.staging_dir().display()),
            format!("file://{}/not-an-id", store.images_dir().display()),
            format!("http://example.com/{id}"),
            format!("{}?x=1", own.url),
            "file:///etc/passwd".to_owned(),
        ] {
            let location = Location {
                url,
                metadata: Properties::new(),
            };
            assert!(
                matches!(store.path_of(&location), Err(Error::ForeignLocation { .. })),
                "{location:?}"
            );
        }
    }

    #[tokio::test]
    async fn intents_cannot_name_files_outside_staging() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path().to_path_buf()).unwrap();
        let id = ImageId::new_random();
        let victim = store.images_dir().join(id.to_string());
        std::fs::write(&victim, b"committed").unwrap();
        for file in [
            format!("../images/{id}"),
            format!("{id}"),
            format!("{id}.x.part/../../images/{id}"),
            format!("{}.x.part", ImageId::new_random()),
        ] {
            let intent = StagingIntent::fs(id, file.clone());
            assert!(
                matches!(store.abort(&intent).await, Err(Error::ForeignIntent { .. })),
                "{file}"
            );
        }
        assert!(victim.exists());
        let own = StagingIntent::fs(id, format!("{id}.abc{STAGED_SUFFIX}"));
        assert_eq!(
            store.staging_path_of(&own).unwrap(),
            store.staging_dir().join(format!("{id}.abc{STAGED_SUFFIX}"))
        );
        store.abort(&own).await.unwrap();
    }
}
