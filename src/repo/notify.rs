//! The notifier layer: Glance's image notifications (image.create,
//! image.prepare, image.upload, image.activate, image.update, image.delete,
//! image.member.create, image.member.update, image.member.delete) written as
//! JSON lines to a configurable sink file.
//!
//! It owns when each event is emitted (after the operation succeeded; an
//! upload commit emits image.upload then image.activate, as Glance; a rolled
//! back upload emits image.upload at ERROR priority with a message payload,
//! as Glance does for failed uploads) and the sink. The JSON shapes are
//! `wire`'s. A notifier failure is logged and never fails the operation: it
//! must not turn a completed change into an error.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use time::OffsetDateTime;

use super::options::NotificationOptions;
use super::{
    Change, ChangeKind, Error, ImageRepo, ListQuery, MemberRepo, NewImage, NewMember,
    UploadAllowance, delegate_stored,
};
use crate::clock::Clock;
use crate::context::RequestContext;
use crate::image::{Image, ImageId, Member, MemberStatus};
use crate::wire::{MemberNotificationPayload, Notification, NotificationPayload, Priority};

/// Writes notifications to the sink.
#[derive(Clone)]
pub struct Notifier {
    sink: Option<PathBuf>,
    publisher_id: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("sink", &self.sink)
            .field("publisher_id", &self.publisher_id)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier for `options`; `clock` stamps each message.
    pub fn new(options: &NotificationOptions, clock: Arc<dyn Clock>) -> Notifier {
        Notifier {
            sink: options.sink.clone(),
            publisher_id: options.publisher_id.clone(),
            clock,
        }
    }

    /// Appends one notification with an image payload. Never fails: a sink
    /// that cannot be written is logged.
    pub async fn image_event(
        &self,
        event_type: &str,
        image: &Image,
        deleted_at: Option<OffsetDateTime>,
    ) {
        self.emit(
            event_type,
            Priority::Info,
            NotificationPayload { image, deleted_at },
        )
        .await;
    }

    /// Appends one notification with an image-member payload. Never fails.
    pub async fn member_event(
        &self,
        event_type: &str,
        member: &Member,
        deleted_at: Option<OffsetDateTime>,
    ) {
        self.emit(
            event_type,
            Priority::Info,
            MemberNotificationPayload { member, deleted_at },
        )
        .await;
    }

    /// Appends one notification with a message payload at ERROR priority.
    pub async fn error_event(&self, event_type: &str, message: &str) {
        self.emit(event_type, Priority::Error, message).await;
    }

    async fn emit<P: serde::Serialize>(&self, event_type: &str, priority: Priority, payload: P) {
        let Some(sink) = &self.sink else {
            return;
        };
        let notification = Notification {
            message_id: uuid::Uuid::new_v4(),
            publisher_id: &self.publisher_id,
            event_type,
            priority,
            payload,
            timestamp: self.clock.now(),
        };
        let mut line = match serde_json::to_vec(&notification) {
            Ok(line) => line,
            Err(err) => {
                tracing::warn!(event_type, error = %err, "could not encode a notification");
                return;
            }
        };
        line.push(b'\n');
        let path = sink.clone();
        // One write of the whole line to a file opened for appending, so
        // lines from several processes do not interleave.
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            file.write_all(&line)
        })
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join)));
        if let Err(err) = written {
            tracing::warn!(
                event_type,
                sink = %sink.display(),
                error = %err,
                "could not write a notification; the operation itself succeeded"
            );
        }
    }
}

/// The notifier layer.
#[derive(Debug, Clone)]
pub struct NotifyRepo<R> {
    inner: R,
    notifier: Notifier,
}

impl<R> NotifyRepo<R> {
    /// Wraps `inner`, notifying through `options`' sink; `clock` stamps messages.
    pub fn new(inner: R, options: &NotificationOptions, clock: Arc<dyn Clock>) -> NotifyRepo<R> {
        NotifyRepo {
            inner,
            notifier: Notifier::new(options, clock),
        }
    }

    /// The wrapped repository.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

delegate_stored!(NotifyRepo);

impl<R: ImageRepo> ImageRepo for NotifyRepo<R> {
    async fn get(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        self.inner.get(ctx, id).await
    }

    async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> Result<Vec<Image>, Error> {
        self.inner.list(ctx, query).await
    }

    async fn add(&self, ctx: &RequestContext, new: &NewImage) -> Result<Image, Error> {
        let stored = self.inner.add(ctx, new).await?;
        self.notifier
            .image_event("image.create", &stored, None)
            .await;
        Ok(stored)
    }

    async fn save(&self, ctx: &RequestContext, change: &Change) -> Result<Image, Error> {
        let saved = self.inner.save(ctx, change).await?;
        match change.kind {
            ChangeKind::CommitUpload => {
                self.notifier
                    .image_event("image.upload", &saved, None)
                    .await;
                self.notifier
                    .image_event("image.activate", &saved, None)
                    .await;
            }
            ChangeKind::RollbackUpload => {
                let message = format!(
                    "Failed to upload image data for image {}; the image is queued again",
                    saved.id
                );
                self.notifier.error_event("image.upload", &message).await;
            }
            // The upload claiming the image: image.prepare already said so.
            // Staging is not an event in Glance (the import task's
            // notifications are not emitted here); an import's upload is.
            ChangeKind::ClaimUpload | ChangeKind::Stage | ChangeKind::Unstage => {}
            ChangeKind::Update | ChangeKind::Deactivate | ChangeKind::Reactivate => {
                self.notifier
                    .image_event("image.update", &saved, None)
                    .await
            }
        }
        Ok(saved)
    }

    async fn remove(&self, ctx: &RequestContext, image: &Image) -> Result<Image, Error> {
        let removed = self.inner.remove(ctx, image).await?;
        self.notifier
            .image_event("image.delete", &removed, Some(removed.updated_at))
            .await;
        Ok(removed)
    }

    async fn prepare_upload(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> Result<UploadAllowance, Error> {
        let allowance = self.inner.prepare_upload(ctx, image).await?;
        self.notifier
            .image_event("image.prepare", image, None)
            .await;
        Ok(allowance)
    }

    async fn prepare_download(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        self.inner.prepare_download(ctx, id).await
    }
}

impl<R: MemberRepo> MemberRepo for NotifyRepo<R> {
    async fn members(&self, ctx: &RequestContext, image: &Image) -> Result<Vec<Member>, Error> {
        self.inner.members(ctx, image).await
    }

    async fn member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
    ) -> Result<Member, Error> {
        self.inner.member(ctx, image, member_id).await
    }

    async fn add_member(&self, ctx: &RequestContext, new: &NewMember) -> Result<Member, Error> {
        let member = self.inner.add_member(ctx, new).await?;
        self.notifier
            .member_event("image.member.create", &member, None)
            .await;
        Ok(member)
    }

    async fn update_member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
        status: MemberStatus,
    ) -> Result<Member, Error> {
        let member = self
            .inner
            .update_member(ctx, image, member_id, status)
            .await?;
        self.notifier
            .member_event("image.member.update", &member, None)
            .await;
        Ok(member)
    }

    async fn remove_member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
    ) -> Result<Member, Error> {
        let member = self.inner.remove_member(ctx, image, member_id).await?;
        let now = self.notifier.clock.now();
        self.notifier
            .member_event("image.member.delete", &member, Some(now))
            .await;
        Ok(member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::test_support::*;

    fn events(path: &std::path::Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn the_lifecycle_emits_glance_events_as_json_lines() {
        let repo = temp_repo().await;
        let sink = repo.dir.path().join("notifications.jsonl");
        let options = NotificationOptions {
            sink: Some(sink.clone()),
            publisher_id: "image.test-host".into(),
        };
        let layer = NotifyRepo::new(repo.sql.clone(), &options, clock());
        let ctx = admin();

        let mut shared = queued(Some("p1"));
        shared.visibility = crate::image::Visibility::Shared;
        let image = layer.add(&ctx, &shared.into()).await.unwrap();
        layer.prepare_upload(&ctx, &image).await.unwrap();
        let saving = layer
            .save(&ctx, &Change::claim_upload(image.clone()))
            .await
            .unwrap();
        let back = layer
            .save(&ctx, &Change::rollback_upload(saving))
            .await
            .unwrap();
        let saving = layer.save(&ctx, &Change::claim_upload(back)).await.unwrap();
        let active = layer
            .save(&ctx, &Change::commit_upload(saving, uploaded(image.id, 4)))
            .await
            .unwrap();
        let mut renamed = active.clone();
        renamed.name = Some("renamed".into());
        let renamed = layer
            .save(&ctx, &Change::update(active, renamed))
            .await
            .unwrap();
        layer
            .add_member(&ctx, &NewMember::new(renamed.clone(), "p2"))
            .await
            .unwrap();
        layer
            .update_member(&ctx, &renamed, "p2", MemberStatus::Accepted)
            .await
            .unwrap();
        layer.remove_member(&ctx, &renamed, "p2").await.unwrap();
        layer.remove(&ctx, &renamed).await.unwrap();

        let events = events(&sink);
        let types: Vec<&str> = events
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "image.create",
                "image.prepare",
                "image.upload",
                "image.upload",
                "image.activate",
                "image.update",
                "image.member.create",
                "image.member.update",
                "image.member.delete",
                "image.delete"
            ]
        );
        for event in &events {
            assert_eq!(event["publisher_id"], "image.test-host");
            assert_eq!(event["timestamp"], "2026-01-02 03:04:05");
            assert_eq!(event["message_id"].as_str().unwrap().len(), 36);
        }
        assert_eq!(events[2]["priority"], "ERROR");
        assert!(
            events[2]["payload"]
                .as_str()
                .unwrap()
                .contains(&image.id.to_string())
        );
        assert_eq!(events[3]["priority"], "INFO");
        assert_eq!(events[4]["payload"]["status"], "active");
        assert_eq!(events[4]["payload"]["size"], 4);
        assert_eq!(events[5]["payload"]["name"], "renamed");
        assert_eq!(events[6]["payload"]["member_id"], "p2");
        assert_eq!(events[6]["payload"]["status"], "pending");
        assert_eq!(events[7]["payload"]["status"], "accepted");
        assert_eq!(events[8]["payload"]["deleted"], true);
        assert_eq!(events[9]["payload"]["deleted"], true);
        assert_eq!(events[9]["payload"]["deleted_at"], "2026-01-02T03:04:05Z");
        assert_eq!(events[0]["payload"]["id"], image.id.to_string());
    }

    #[tokio::test]
    async fn a_broken_sink_never_fails_the_operation() {
        let repo = temp_repo().await;
        // A directory cannot be opened for appending.
        let options = NotificationOptions {
            sink: Some(repo.dir.path().to_path_buf()),
            ..NotificationOptions::default()
        };
        let layer = NotifyRepo::new(repo.sql.clone(), &options, clock());
        let image = layer
            .add(&admin(), &queued(Some("p1")).into())
            .await
            .unwrap();
        assert!(layer.remove(&admin(), &image).await.is_ok());
        // Failed operations emit nothing.
        let sink = repo.dir.path().join("events.jsonl");
        let options = NotificationOptions {
            sink: Some(sink.clone()),
            ..NotificationOptions::default()
        };
        let layer = NotifyRepo::new(repo.sql.clone(), &options, clock());
        assert!(layer.remove(&admin(), &image).await.is_err());
        assert!(!sink.exists());
    }
}
