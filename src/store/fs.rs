//! The filesystem store: `<root>/images/<id>` for committed data,
//! `<root>/staging/<id>.<random>.part` for writes in progress and
//! `<root>/staging/<id>.lock` for upload locks.
//!
//! It owns the commit protocol on a local filesystem (write the staging file,
//! fsync it, rename it into `images/`, fsync the directory) and the cleanup of
//! everything uncommitted. It must not touch paths outside its root: every
//! location it is given is checked to name a file directly inside `images/`.

use std::fs::TryLockError;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use super::{Error, FS_STORE_ID, Reader, ReaderBackend, StagedData, UploadLock};
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

    /// The directory holding staged data and upload locks.
    pub fn staging_dir(&self) -> &Path {
        &self.staging
    }

    pub(super) async fn stage(&self, id: ImageId) -> Result<FsStaged, Error> {
        let staging_path = self.staging.join(format!(
            "{id}.{}{STAGED_SUFFIX}",
            uuid::Uuid::new_v4().simple()
        ));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging_path)
            .await
            .map_err(|source| classify("create", &staging_path, source))?;
        Ok(FsStaged {
            id,
            final_path: self.images.join(id.to_string()),
            images_dir: self.images.clone(),
            staging_path,
            file: Some(file),
            n_bytes: 0,
            state: StagedState::Open,
            renamed: false,
        })
    }

    pub(super) fn location_of(&self, id: ImageId) -> Location {
        location_for(&self.images.join(id.to_string()))
    }

    /// The file a location names, if it is one of ours.
    pub(super) fn path_of(&self, location: &Location) -> Result<PathBuf, Error> {
        let foreign = || Error::ForeignLocation {
            url: location.url.clone(),
            root: self.images.clone(),
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

    pub(super) async fn open_data(&self, location: &Location) -> Result<Reader, Error> {
        let path = self.path_of(location)?;
        let file = tokio::fs::File::open(&path).await.map_err(|source| {
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
        Ok(Reader {
            len,
            inner: ReaderBackend::Fs(file),
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

    pub(super) async fn list_staged(
        &self,
        only: Option<ImageId>,
    ) -> Result<Vec<StagedData>, Error> {
        let mut entries = tokio::fs::read_dir(&self.staging)
            .await
            .map_err(|source| io_error("read directory", &self.staging, source))?;
        let mut found = Vec::new();
        loop {
            let entry = match entries.next_entry().await {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(source) => return Err(io_error("read directory", &self.staging, source)),
            };
            let Some(image_id) = entry.file_name().to_str().and_then(staged_image_id) else {
                continue;
            };
            if only.is_some_and(|wanted| wanted != image_id) {
                continue;
            }
            let path = entry.path();
            let len = match entry.metadata().await {
                Ok(metadata) => metadata.len(),
                // Removed between listing and stat: an upload finished or aborted.
                Err(source) if source.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(io_error("stat", &path, source)),
            };
            found.push(StagedData {
                image_id,
                name: path.display().to_string(),
                len,
            });
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    pub(super) async fn remove_staged(&self, id: ImageId) -> Result<Vec<StagedData>, Error> {
        let staged = self.list_staged(Some(id)).await?;
        for data in &staged {
            remove_if_present(Path::new(&data.name)).await?;
        }
        Ok(staged)
    }

    pub(super) fn try_lock_upload(&self, id: ImageId) -> Result<Option<UploadLock>, Error> {
        let path = self.staging.join(format!("{id}{LOCK_SUFFIX}"));
        // A holder unlinks the lock file before releasing it, so a file we
        // opened may be an unlinked one by the time we hold its lock: only a
        // lock on the inode still at `path` counts. Each retry means another
        // process released the lock in between; give up (as "held") if that
        // keeps happening.
        for _ in 0..64 {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|source| io_error("create lock", &path, source))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(source)) => return Err(io_error("lock", &path, source)),
            }
            let held = file
                .metadata()
                .map_err(|source| io_error("stat", &path, source))?;
            match std::fs::metadata(&path) {
                Ok(current) if current.dev() == held.dev() && current.ino() == held.ino() => {
                    return Ok(Some(UploadLock {
                        inner: FsUploadLock {
                            id,
                            path,
                            _file: file,
                        },
                    }));
                }
                Ok(_) => continue,
                Err(source) if source.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(io_error("stat", &path, source)),
            }
        }
        Ok(None)
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StagedState {
    Open,
    Failed,
    Done,
}

/// A staged write on the filesystem (see [`super::Staged`]).
#[derive(Debug)]
pub(crate) struct FsStaged {
    id: ImageId,
    staging_path: PathBuf,
    final_path: PathBuf,
    images_dir: PathBuf,
    file: Option<tokio::fs::File>,
    n_bytes: u64,
    state: StagedState,
    /// The data sits under its final name but the commit has not returned
    /// yet: a commit dropped now (a cancelled task) must remove it too.
    renamed: bool,
}

impl FsStaged {
    pub(crate) fn image_id(&self) -> ImageId {
        self.id
    }

    pub(crate) fn bytes_written(&self) -> u64 {
        self.n_bytes
    }

    pub(crate) async fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        let (StagedState::Open, Some(file)) = (self.state, self.file.as_mut()) else {
            return Err(Error::Failed { id: self.id });
        };
        match file.write_all(data).await {
            Ok(()) => {
                self.n_bytes += data.len() as u64;
                Ok(())
            }
            Err(source) => Err(self.fail("write", source).await),
        }
    }

    pub(crate) async fn commit(mut self) -> Result<Location, Error> {
        let (StagedState::Open, Some(mut file)) = (self.state, self.file.take()) else {
            return Err(Error::Failed { id: self.id });
        };
        // 1. Everything written reaches the file and the disk before the
        //    name changes, so the final name never shows partial data.
        if let Err(source) = file.flush().await {
            return Err(self.fail("flush", source).await);
        }
        if let Err(source) = file.sync_all().await {
            return Err(self.fail("sync", source).await);
        }
        drop(file);
        // 2. The rename is the commit point.
        if let Err(source) = tokio::fs::rename(&self.staging_path, &self.final_path).await {
            return Err(self.fail("rename", source).await);
        }
        self.renamed = true;
        // 3. The directory entry must be durable too; if it cannot be made
        //    so, undo the commit rather than report data that may vanish.
        if let Err(err) = sync_dir(&self.images_dir).await {
            self.state = StagedState::Failed;
            self.renamed = false;
            if let Err(cleanup) = remove_if_present(&self.final_path).await {
                tracing::warn!(error = %cleanup, "could not remove data after a failed commit");
            }
            return Err(err);
        }
        self.state = StagedState::Done;
        Ok(location_for(&self.final_path))
    }

    pub(crate) async fn abort(mut self) -> Result<(), Error> {
        self.state = StagedState::Done;
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

impl Drop for FsStaged {
    fn drop(&mut self) {
        if self.state == StagedState::Done {
            return;
        }
        // Synchronous on purpose: Drop cannot await, and a staged file left
        // behind would be a half-written image.
        match std::fs::remove_file(&self.staging_path) {
            Ok(()) => {
                tracing::debug!(path = %self.staging_path.display(), "removed uncommitted staged data")
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(
                path = %self.staging_path.display(),
                error = %err,
                "could not remove uncommitted staged data; crash recovery will"
            ),
        }
        // Dropped between the rename and the end of `commit`: the caller
        // never received the location, so nothing will ever record or
        // delete the data under its final name.
        if self.renamed {
            match std::fs::remove_file(&self.final_path) {
                Ok(()) => tracing::debug!(
                    path = %self.final_path.display(),
                    "removed data of a commit that was dropped before it returned"
                ),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => tracing::warn!(
                    path = %self.final_path.display(),
                    error = %err,
                    "could not remove data of a commit that was dropped before it returned"
                ),
            }
        }
    }
}

/// The upload lock on the filesystem: an exclusive `flock` on
/// `staging/<id>.lock`, released (and the file unlinked) on drop.
#[derive(Debug)]
pub(crate) struct FsUploadLock {
    id: ImageId,
    path: PathBuf,
    _file: std::fs::File,
}

impl FsUploadLock {
    pub(crate) fn image_id(&self) -> ImageId {
        self.id
    }
}

impl Drop for FsUploadLock {
    fn drop(&mut self) {
        // Unlink while still holding the lock (the file closes after this),
        // so nobody can take a lock on a name that is about to disappear.
        if let Err(err) = std::fs::remove_file(&self.path)
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %err, "could not remove upload lock file");
        }
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
    async fn a_commit_dropped_after_its_rename_leaves_nothing_behind() {
        // A cancelled task can drop `commit` while it waits for the
        // directory sync, after the data got its final name: the caller
        // never sees the location, so the data must not stay.
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path().to_path_buf()).unwrap();
        let mut dropped_after_rename = 0;
        for _ in 0..5 {
            let id = ImageId::new_random();
            let final_path = store.images_dir().join(id.to_string());
            let mut staged = store.stage(id).await.unwrap();
            staged.write(b"image data").await.unwrap();
            let mut commit = Box::pin(staged.commit());
            let finished = loop {
                let poll =
                    std::future::poll_fn(|cx| std::task::Poll::Ready(commit.as_mut().poll(cx)))
                        .await;
                match poll {
                    std::task::Poll::Ready(result) => break Some(result),
                    std::task::Poll::Pending if final_path.exists() => break None,
                    std::task::Poll::Pending => {
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    }
                }
            };
            drop(commit);
            match finished {
                None => {
                    dropped_after_rename += 1;
                    assert!(
                        !final_path.exists(),
                        "data left at {}",
                        final_path.display()
                    );
                }
                // The whole commit ran between two polls: a real commit, kept.
                Some(result) => {
                    result.unwrap();
                    assert!(final_path.exists());
                }
            }
            let staging: Vec<_> = std::fs::read_dir(store.staging_dir()).unwrap().collect();
            assert!(staging.is_empty(), "{staging:?}");
        }
        assert!(
            dropped_after_rename > 0,
            "never caught a commit between rename and sync"
        );
    }
}
