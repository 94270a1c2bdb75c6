//! Upload liveness: each upload holds an exclusive lock on
//! `<data-dir>/locks/<image-id>.lock` for as long as its image is `saving`.
//!
//! The lock is an OS file lock (`File::try_lock`), so it dies with the
//! process, kill -9 included; that is how recovery tells a dead upload from a
//! live one in another process. Lock files are never removed while the image
//! exists (removing a lock file races with a process that already opened it);
//! `images delete` removes them with the image. This module must not touch
//! the database or the store.
//!
//! A multi-node backend cannot see another node's file locks: there the
//! upload would hold a lease row (image id, node, expiry) renewed while it
//! streams, and recovery would take `saving` images whose lease expired.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use crate::image::ImageId;

/// The directory under the data directory that holds the lock files.
pub const LOCK_DIR: &str = "locks";

/// An exclusive claim on one image's upload; released on drop.
#[derive(Debug)]
pub struct UploadLock {
    // Held for its OS lock; closing the file releases it.
    _file: File,
}

/// Where the lock file of `id` lives.
pub fn lock_path(data_dir: &Path, id: &ImageId) -> PathBuf {
    data_dir.join(LOCK_DIR).join(format!("{id}.lock"))
}

impl UploadLock {
    /// Takes the lock of `id` without waiting.
    ///
    /// Returns `Ok(None)` when another live upload (in this or another
    /// process) holds it; fails when the lock file cannot be created.
    pub fn try_acquire(data_dir: &Path, id: &ImageId) -> io::Result<Option<UploadLock>> {
        let path = lock_path(data_dir, id);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(UploadLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(err)) => Err(err),
        }
    }

    /// Removes the lock file of a deleted image; ok when it is absent.
    ///
    /// Fails on other I/O errors.
    pub fn remove_file(data_dir: &Path, id: &ImageId) -> io::Result<()> {
        match std::fs::remove_file(lock_path(data_dir, id)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let id = ImageId::new_random();
        let first = UploadLock::try_acquire(dir.path(), &id).unwrap();
        assert!(first.is_some());
        assert!(UploadLock::try_acquire(dir.path(), &id).unwrap().is_none());
        let other = ImageId::new_random();
        assert!(
            UploadLock::try_acquire(dir.path(), &other)
                .unwrap()
                .is_some()
        );
        drop(first);
        assert!(UploadLock::try_acquire(dir.path(), &id).unwrap().is_some());
        UploadLock::remove_file(dir.path(), &id).unwrap();
        UploadLock::remove_file(dir.path(), &id).unwrap();
        assert!(!lock_path(dir.path(), &id).exists());
    }
}
