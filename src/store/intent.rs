//! What a staged write leaves for others to find: the [`StagingIntent`] a
//! caller records before the first byte is written, and the listing entries a
//! sweeper works from ([`StagedData`] for uploads in progress,
//! [`StoredObject`] for committed data).
//!
//! It owns the intent's serialised form (one JSON object, stable, so it can
//! sit in a database column and be read back by another process or node). It
//! must not do I/O: aborting an intent is the backend's job.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use time::OffsetDateTime;

use crate::image::{ImageId, Location};

/// A staged write as its owner records it, so that whoever finds the upload
/// dead (an expired lease, a crash) can abort it with [`super::Store::abort`]
/// from any process or node.
///
/// Filesystem: the staging file's name inside the store's `staging/`
/// directory. S3: the object key and the multipart upload id. The string form
/// ([`fmt::Display`], parsed back by [`FromStr`]) is one JSON object, for
/// example `{"store":"s3","image_id":"…","key":"images/…","upload_id":"…"}`;
/// it names no credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StagingIntent {
    image_id: ImageId,
    target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Target {
    /// The file name (not a path) inside `staging/`.
    Fs { file: String },
    /// The object key (prefix included) and the multipart upload id.
    S3 { key: String, upload_id: String },
}

impl StagingIntent {
    pub(super) fn fs(image_id: ImageId, file: String) -> StagingIntent {
        StagingIntent {
            image_id,
            target: Target::Fs { file },
        }
    }

    pub(super) fn s3(image_id: ImageId, key: String, upload_id: String) -> StagingIntent {
        StagingIntent {
            image_id,
            target: Target::S3 { key, upload_id },
        }
    }

    /// The image whose data is being staged.
    pub fn image_id(&self) -> ImageId {
        self.image_id
    }

    /// The id of the store kind that can abort it (`fs`, `s3`).
    pub fn store_id(&self) -> &'static str {
        match &self.target {
            Target::Fs { .. } => super::FS_STORE_ID,
            Target::S3 { .. } => super::S3_STORE_ID,
        }
    }

    pub(super) fn target(&self) -> &Target {
        &self.target
    }
}

/// The serialised form: field names are part of the database format.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "store", deny_unknown_fields)]
enum Wire {
    #[serde(rename = "fs")]
    Fs { image_id: String, file: String },
    #[serde(rename = "s3")]
    S3 {
        image_id: String,
        key: String,
        upload_id: String,
    },
}

impl fmt::Display for StagingIntent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wire = match &self.target {
            Target::Fs { file } => Wire::Fs {
                image_id: self.image_id.to_string(),
                file: file.clone(),
            },
            Target::S3 { key, upload_id } => Wire::S3 {
                image_id: self.image_id.to_string(),
                key: key.clone(),
                upload_id: upload_id.clone(),
            },
        };
        let json = serde_json::to_string(&wire).map_err(|_| fmt::Error)?;
        f.write_str(&json)
    }
}

/// A recorded intent that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error(
    "staging intent {text:?} is not one this version wrote (expected a JSON object with store fs or s3)"
)]
pub struct BadIntent {
    text: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl FromStr for StagingIntent {
    type Err = BadIntent;

    fn from_str(text: &str) -> Result<StagingIntent, BadIntent> {
        let bad = |source: Option<Box<dyn std::error::Error + Send + Sync>>| BadIntent {
            text: text.to_owned(),
            source,
        };
        let wire: Wire = serde_json::from_str(text).map_err(|err| bad(Some(Box::new(err))))?;
        let (image_id, target) = match wire {
            Wire::Fs { image_id, file } => (image_id, Target::Fs { file }),
            Wire::S3 {
                image_id,
                key,
                upload_id,
            } => (image_id, Target::S3 { key, upload_id }),
        };
        let image_id = image_id
            .parse::<ImageId>()
            .map_err(|err| bad(Some(Box::new(err))))?;
        Ok(StagingIntent { image_id, target })
    }
}

impl serde::Serialize for StagingIntent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for StagingIntent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One staged (uncommitted) write found in the store: an upload in progress,
/// or the leftover of one that died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedData {
    /// How to abort it ([`super::Store::abort`]).
    pub intent: StagingIntent,
    /// The image it belongs to.
    pub image_id: ImageId,
    /// Filesystem: the staging file's last modification (a live upload keeps
    /// moving it); S3: when the multipart upload was initiated.
    pub since: OffsetDateTime,
    /// Bytes staged so far, when the backend's listing says (filesystem);
    /// `None` for S3, whose multipart listing does not.
    pub len: Option<u64>,
}

impl StagedData {
    /// How long ago `since` was, at `now` (zero when `since` is in the future).
    pub fn age(&self, now: OffsetDateTime) -> Duration {
        (now - self.since).try_into().unwrap_or(Duration::ZERO)
    }
}

/// A lock file (`staging/<id>.lock`, filesystem only) that nobody holds and
/// that is older than a sweep's grace period: what a glance-direct stage or
/// import of a version before the stage's upload lease left when killed
/// while holding its `flock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleLock {
    /// The image it locked.
    pub image_id: ImageId,
    /// How old the file was when found.
    pub age: Duration,
}

/// One committed object found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The image the object is named after.
    pub image_id: ImageId,
    /// Its location (what a committed image records).
    pub location: Location,
    /// Its length in bytes.
    pub len: u64,
    /// When it was last written (committed).
    pub modified: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_round_trip_through_their_string_form() {
        let id = ImageId::new_random();
        for intent in [
            StagingIntent::fs(id, format!("{id}.0123abcd.part")),
            StagingIntent::s3(id, format!("p/{id}"), "a:b/c+d=".to_owned()),
        ] {
            let text = intent.to_string();
            assert!(
                text.starts_with('{') && text.contains(&id.to_string()),
                "{text}"
            );
            assert_eq!(text.parse::<StagingIntent>().unwrap(), intent);
            let json = serde_json::to_string(&intent).unwrap();
            assert_eq!(
                serde_json::from_str::<StagingIntent>(&json).unwrap(),
                intent
            );
        }
    }

    #[test]
    fn malformed_intents_are_errors() {
        for text in [
            "",
            "fs:abc",
            r#"{"store":"gcs","image_id":"x"}"#,
            r#"{"store":"fs","image_id":"not-a-uuid","file":"x"}"#,
            r#"{"store":"fs","image_id":"6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55","file":"x","extra":1}"#,
        ] {
            let err = text.parse::<StagingIntent>().unwrap_err();
            assert!(err.to_string().contains("staging intent"), "{err}");
        }
    }
}
