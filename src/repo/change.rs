//! Typed writes: what every write layer is handed instead of re-reading.
//!
//! A [`Change`] names its kind ([`ChangeKind`]), the record it was computed
//! from (`before`) and the record it produces (`after`). The outermost layer
//! reads the stored record once, checks that `before` is still that record
//! (else [`super::Error::Conflict`]) and hands the change down with `before`
//! replaced by the stored record, so no layer below reads the image again and
//! every layer judges the same version. The SQL backend then writes it as a
//! compare-and-swap on `before`'s revision: a change computed from a stale
//! read writes nothing.
//!
//! **Revision.** An image's revision is its `updated_at`, which the SQL
//! backend makes strictly increase with every write of the record (at least
//! one microsecond past the previous value, whatever the clock says), so two
//! reads with equal `updated_at` (and `status`) saw the same version.
//!
//! **Write sets.** Each kind may change only its own attributes: an
//! [`ChangeKind::Update`] never `status`, the upload's data fields (`size`,
//! `virtual_size`, `checksum`, `os_hash_algo`, `os_hash_value`) or
//! `locations`; a status transition only `status`, plus the data fields and
//! `locations` for an upload's commit and rollback.
//! [`Change::stray_attribute`] names anything outside the write set.
//!
//! Also here: [`NewImage`] and [`NewMember`] (the inputs of the two inserts)
//! and [`QuotaCheck`], which the quota layer attaches to a write and the SQL
//! backend evaluates inside the transaction that records it.
//!
//! This module owns these types and the write-set rules; it must not do IO
//! nor decide who may make a change.

use crate::image::{Image, ImageId, Location, Status};

use super::{Error, LeaseCheck, QuotaResource};

/// Whether `stored` is the version of the record `read` was read as: the
/// same id, `updated_at` (to the stored microsecond) and `status`.
fn same_revision(stored: &Image, read: &Image) -> bool {
    let micros = |image: &Image| image.updated_at.unix_timestamp_nanos() / 1000;
    stored.id == read.id && stored.status == read.status && micros(stored) == micros(read)
}

/// Fails with [`Error::Conflict`] unless `stored` is the version `read` was
/// read as: a change computed from `read` would overwrite a newer record.
pub(crate) fn require_current(stored: &Image, read: &Image) -> Result<(), Error> {
    if same_revision(stored, read) {
        Ok(())
    } else {
        Err(Error::Conflict {
            id: stored.id,
            expected: read.status,
            actual: stored.status,
        })
    }
}

/// What kind of change a [`Change`] is: it decides the policy rule, the
/// notification, the quota checks and which attributes may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Attributes, properties and tags (Glance's `PATCH`): never the status,
    /// the upload's data fields or the locations.
    Update,
    /// `queued → saving`: an upload claims the image.
    ClaimUpload,
    /// `saving → active`: the upload's size, hashes, virtual size and
    /// location are recorded.
    CommitUpload,
    /// `saving → queued`: the upload failed; its data fields and locations
    /// are cleared.
    RollbackUpload,
    /// `active → deactivated`.
    Deactivate,
    /// `deactivated → active`.
    Reactivate,
    /// `queued → uploading`: data was staged for an interoperable import
    /// (`glance-direct`); nothing of the data is recorded yet.
    Stage,
    /// `uploading → queued`: the staged data is about to be imported (the
    /// import's one pass then claims the image as an upload does) or the
    /// stage failed.
    Unstage,
}

impl ChangeKind {
    /// The status transition this kind makes, or `None` for an update.
    pub fn transition(self) -> Option<(Status, Status)> {
        match self {
            ChangeKind::Update => None,
            ChangeKind::ClaimUpload => Some((Status::Queued, Status::Saving)),
            ChangeKind::CommitUpload => Some((Status::Saving, Status::Active)),
            ChangeKind::RollbackUpload => Some((Status::Saving, Status::Queued)),
            ChangeKind::Deactivate => Some((Status::Active, Status::Deactivated)),
            ChangeKind::Reactivate => Some((Status::Deactivated, Status::Active)),
            ChangeKind::Stage => Some((Status::Queued, Status::Uploading)),
            ChangeKind::Unstage => Some((Status::Uploading, Status::Queued)),
        }
    }

    /// A stable snake_case name (logs, messages).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Update => "update",
            ChangeKind::ClaimUpload => "claim_upload",
            ChangeKind::CommitUpload => "commit_upload",
            ChangeKind::RollbackUpload => "rollback_upload",
            ChangeKind::Deactivate => "deactivate",
            ChangeKind::Reactivate => "reactivate",
            ChangeKind::Stage => "stage",
            ChangeKind::Unstage => "unstage",
        }
    }

    /// Whether a change of this kind computed from an older record may be
    /// re-applied to a newer one in the same status instead of failing with
    /// a conflict: an upload's commit and rollback. Their write set is
    /// disjoint from an update's, everything they were decided on is frozen
    /// while the image is `saving` (the signature properties, `disk_format`,
    /// `container_format`), and the upload owns the `saving` status, so a
    /// rename during a long upload must not throw the upload away. Every
    /// layer still judges the newer record.
    ///
    /// Sound only while no other upload can own the same `saving` status:
    /// the upload's lease guarantees it (the SQL backend writes a commit or
    /// rollback carrying [`LeaseCheck::Held`] only while the stored lease is
    /// still this upload's and unexpired).
    ///
    /// `Unstage` rebases for the same reasons: the stage or import that
    /// writes it holds the image's lease, and everything an import is decided
    /// on is frozen while the image is `uploading` (not `queued`).
    pub fn rebases(self) -> bool {
        match self {
            ChangeKind::CommitUpload | ChangeKind::RollbackUpload | ChangeKind::Unstage => true,
            ChangeKind::Update
            | ChangeKind::ClaimUpload
            | ChangeKind::Deactivate
            | ChangeKind::Reactivate
            | ChangeKind::Stage => false,
        }
    }

    /// Whether this kind writes the upload's data fields and `locations`.
    fn writes_data(self) -> bool {
        match self {
            ChangeKind::CommitUpload | ChangeKind::RollbackUpload => true,
            ChangeKind::Update
            | ChangeKind::ClaimUpload
            | ChangeKind::Deactivate
            | ChangeKind::Reactivate
            | ChangeKind::Stage
            | ChangeKind::Unstage => false,
        }
    }
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an upload's commit records, computed in its one pass over the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedData {
    /// Bytes stored.
    pub size: u64,
    /// From the format inspector, when it knows.
    pub virtual_size: Option<u64>,
    /// md5, lower-case hex.
    pub checksum: String,
    /// The multihash algorithm's name (`sha512`).
    pub os_hash_algo: String,
    /// The multihash, lower-case hex.
    pub os_hash_value: String,
    /// Where the committed data is.
    pub location: Location,
}

/// One write of an existing image record, as every write layer sees it.
///
/// Build it with the constructor for its kind from the record you read
/// ([`super::ImageRepo::get`], or the record an earlier write returned):
/// `Change::update(read.clone(), edited)`, `Change::claim_upload(read)`,
/// `Change::commit_upload(saving, data)`, `Change::rollback_upload(saving)`,
/// `Change::deactivate(read)`, `Change::reactivate(read)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The record the change was computed from. Below the outermost layer,
    /// the stored record itself.
    pub before: Image,
    /// The record the change produces (`updated_at` is set by the backend).
    pub after: Image,
    /// What kind of change it is.
    pub kind: ChangeKind,
    /// Limits the SQL backend checks inside the transaction that writes the
    /// change; the quota layer adds them, callers leave it empty.
    pub quota: Vec<QuotaCheck>,
    /// What the upload's lease must be, checked and applied in the same
    /// transaction (claim, commit, rollback, recovery); `None` for every
    /// other change. Layers pass it down unchanged.
    pub lease: Option<LeaseCheck>,
}

impl Change {
    /// An attribute edit of `before` into `after` (name, visibility,
    /// protected, os_hidden, owner, formats, min_disk, min_ram, tags,
    /// properties).
    pub fn update(before: Image, after: Image) -> Change {
        Change {
            before,
            after,
            kind: ChangeKind::Update,
            quota: Vec::new(),
            lease: None,
        }
    }

    /// This change with the upload's lease condition (see [`LeaseCheck`]).
    pub fn with_lease(mut self, lease: LeaseCheck) -> Change {
        self.lease = Some(lease);
        self
    }

    /// `queued → saving`: an upload claims `before`.
    pub fn claim_upload(before: Image) -> Change {
        Change::transition(before, ChangeKind::ClaimUpload, None)
    }

    /// `saving → active` with the upload's `data`.
    pub fn commit_upload(before: Image, data: UploadedData) -> Change {
        Change::transition(before, ChangeKind::CommitUpload, Some(data))
    }

    /// `saving → queued`, clearing the upload's data fields and locations.
    pub fn rollback_upload(before: Image) -> Change {
        Change::transition(before, ChangeKind::RollbackUpload, None)
    }

    /// `active → deactivated`.
    pub fn deactivate(before: Image) -> Change {
        Change::transition(before, ChangeKind::Deactivate, None)
    }

    /// `deactivated → active`.
    pub fn reactivate(before: Image) -> Change {
        Change::transition(before, ChangeKind::Reactivate, None)
    }

    /// `queued → uploading`: data for `before` was staged.
    pub fn stage(before: Image) -> Change {
        Change::transition(before, ChangeKind::Stage, None)
    }

    /// `uploading → queued`: the staged data is being imported or was dropped.
    pub fn unstage(before: Image) -> Change {
        Change::transition(before, ChangeKind::Unstage, None)
    }

    /// The image changed.
    pub fn id(&self) -> ImageId {
        self.before.id
    }

    fn transition(before: Image, kind: ChangeKind, data: Option<UploadedData>) -> Change {
        let mut after = before.clone();
        apply(&mut after, kind, data);
        Change {
            before,
            after,
            kind,
            quota: Vec::new(),
            lease: None,
        }
    }

    /// This change as computed from `stored` (a newer or the same version of
    /// the record): `before` becomes `stored`; a status transition's `after`
    /// is rebuilt from `stored` (keeping only the commit's data), so a caller
    /// cannot slip anything else into it; an update keeps its `after` (the
    /// property-protection layer merges what the caller could not see).
    pub fn on(&self, stored: Image) -> Change {
        let after = match self.kind {
            ChangeKind::Update => self.after.clone(),
            kind => {
                let mut after = stored.clone();
                apply(&mut after, kind, uploaded_data(&self.after));
                after
            }
        };
        Change {
            before: stored,
            after,
            kind: self.kind,
            quota: self.quota.clone(),
            lease: self.lease.clone(),
        }
    }

    /// The first attribute (or `properties.<name>`) this change alters
    /// outside its kind's write set, if any. `created_at` and `updated_at`
    /// are not the caller's to set and are ignored here (the backend keeps
    /// `created_at` and sets `updated_at`).
    pub fn stray_attribute(&self) -> Option<String> {
        let (before, after) = (&self.before, &self.after);
        if let Some((_, to)) = self.kind.transition()
            && after.status != to
        {
            return Some("status".to_owned());
        }
        if self.kind == ChangeKind::RollbackUpload
            && let Some(name) = data_fields(after)
                .into_iter()
                .find(|(_, value)| value.is_some())
                .map(|(name, _)| name)
        {
            return Some(name.to_owned());
        }
        for (name, changed) in [
            ("id", before.id != after.id),
            (
                "status",
                self.kind == ChangeKind::Update && before.status != after.status,
            ),
            (
                "locations",
                !self.kind.writes_data() && before.locations != after.locations,
            ),
        ] {
            if changed {
                return Some(name.to_owned());
            }
        }
        if !self.kind.writes_data()
            && let Some((name, _)) = data_fields(before)
                .into_iter()
                .zip(data_fields(after))
                .find(|((_, old), (_, new))| old != new)
                .map(|(old, _)| old)
        {
            return Some(name.to_owned());
        }
        if self.kind != ChangeKind::Update {
            return attribute_edit(before, after);
        }
        None
    }
}

/// Sets what `kind` writes on `image`: the target status, and the data
/// fields and location of a commit (from `data`) or their clearing.
fn apply(image: &mut Image, kind: ChangeKind, data: Option<UploadedData>) {
    if let Some((_, to)) = kind.transition() {
        image.status = to;
    }
    match kind {
        ChangeKind::CommitUpload => {
            if let Some(data) = data {
                image.size = Some(data.size);
                image.virtual_size = data.virtual_size;
                image.checksum = Some(data.checksum);
                image.os_hash_algo = Some(data.os_hash_algo);
                image.os_hash_value = Some(data.os_hash_value);
                image.locations = vec![data.location];
            }
        }
        ChangeKind::RollbackUpload => {
            image.size = None;
            image.virtual_size = None;
            image.checksum = None;
            image.os_hash_algo = None;
            image.os_hash_value = None;
            image.locations = Vec::new();
        }
        ChangeKind::Update
        | ChangeKind::ClaimUpload
        | ChangeKind::Deactivate
        | ChangeKind::Reactivate
        | ChangeKind::Stage
        | ChangeKind::Unstage => {}
    }
}

/// The commit's data as `after` carries it (to rebuild `after` on a newer
/// record); `None` when it carries none.
fn uploaded_data(after: &Image) -> Option<UploadedData> {
    Some(UploadedData {
        size: after.size?,
        virtual_size: after.virtual_size,
        checksum: after.checksum.clone()?,
        os_hash_algo: after.os_hash_algo.clone()?,
        os_hash_value: after.os_hash_value.clone()?,
        location: after.locations.first()?.clone(),
    })
}

/// The data fields an upload sets, with their values.
pub(crate) fn data_fields(image: &Image) -> [(&'static str, Option<String>); 5] {
    [
        ("size", image.size.map(|value| value.to_string())),
        (
            "virtual_size",
            image.virtual_size.map(|value| value.to_string()),
        ),
        ("checksum", image.checksum.clone()),
        ("os_hash_algo", image.os_hash_algo.clone()),
        ("os_hash_value", image.os_hash_value.clone()),
    ]
}

/// The first attribute an update may change that differs between the records.
fn attribute_edit(before: &Image, after: &Image) -> Option<String> {
    let checks = [
        ("name", before.name != after.name),
        ("visibility", before.visibility != after.visibility),
        ("protected", before.protected != after.protected),
        ("os_hidden", before.os_hidden != after.os_hidden),
        ("owner", before.owner != after.owner),
        ("disk_format", before.disk_format != after.disk_format),
        (
            "container_format",
            before.container_format != after.container_format,
        ),
        ("min_disk", before.min_disk != after.min_disk),
        ("min_ram", before.min_ram != after.min_ram),
        ("tags", before.tags != after.tags),
    ];
    if let Some((name, _)) = checks.iter().find(|(_, changed)| *changed) {
        return Some((*name).to_owned());
    }
    before
        .properties
        .keys()
        .chain(after.properties.keys())
        .find(|name| before.properties.get(*name) != after.properties.get(*name))
        .map(|name| format!("properties.{name}"))
}

/// A new image for [`super::ImageRepo::add`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImage {
    /// The record to insert (`queued`, no data).
    pub image: Image,
    /// Limits checked inside the inserting transaction; the quota layer adds
    /// them, callers leave it empty.
    pub quota: Vec<QuotaCheck>,
}

impl NewImage {
    /// `image`, with no quota checks yet.
    pub fn new(image: Image) -> NewImage {
        NewImage {
            image,
            quota: Vec::new(),
        }
    }
}

impl From<Image> for NewImage {
    fn from(image: Image) -> NewImage {
        NewImage::new(image)
    }
}

/// A new member of a shared image for [`super::MemberRepo::add_member`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMember {
    /// The image as the caller read it (the outermost layer replaces it
    /// with the stored record).
    pub image: Image,
    /// The project to share it with.
    pub member_id: String,
    /// Limits checked inside the inserting transaction; the quota layer adds
    /// them, callers leave it empty.
    pub quota: Vec<QuotaCheck>,
}

impl NewMember {
    /// Shares `image` with `member_id`, with no quota checks yet.
    pub fn new(image: Image, member_id: impl Into<String>) -> NewMember {
        NewMember {
            image,
            member_id: member_id.into(),
            quota: Vec::new(),
        }
    }
}

/// One limit the SQL backend checks inside the transaction that records a
/// write, after serializing with every other write of the same project (so
/// two processes, or two nodes on PostgreSQL, cannot both pass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaCheck {
    /// `project`'s usage of `resource`, not counting the image being
    /// written, plus `requested`, must not pass `limit`.
    Project {
        /// Whose usage.
        project: String,
        /// Which usage.
        resource: QuotaResource,
        /// The most allowed (images, or bytes for `image_size_total`).
        limit: u64,
        /// What the write adds.
        requested: u64,
    },
    /// The members of the image being written, plus the one being added,
    /// must not pass `limit` (Glance's `image_member_quota`).
    Members {
        /// The most members an image may have.
        limit: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{ImageId, Visibility};

    fn image() -> Image {
        Image::new_queued(
            ImageId::new_random(),
            Some("p1".into()),
            time::OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn data() -> UploadedData {
        UploadedData {
            size: 10,
            virtual_size: Some(10),
            checksum: "c".into(),
            os_hash_algo: "sha512".into(),
            os_hash_value: "h".into(),
            location: Location {
                url: "file:///x".into(),
                metadata: Default::default(),
            },
        }
    }

    #[test]
    fn constructors_stay_inside_their_write_sets() {
        let queued = image();
        let claim = Change::claim_upload(queued.clone());
        assert_eq!(claim.after.status, Status::Saving);
        assert_eq!(claim.stray_attribute(), None);
        let commit = Change::commit_upload(claim.after.clone(), data());
        assert_eq!(commit.after.status, Status::Active);
        assert_eq!(commit.after.size, Some(10));
        assert_eq!(commit.stray_attribute(), None);
        let rollback = Change::rollback_upload(commit.after.clone());
        assert_eq!(rollback.after.size, None);
        assert!(rollback.after.locations.is_empty());
        assert_eq!(rollback.stray_attribute(), None);
        let mut renamed = queued.clone();
        renamed.name = Some("new".into());
        renamed.properties.insert("k".into(), "v".into());
        assert_eq!(Change::update(queued, renamed).stray_attribute(), None);
    }

    #[test]
    fn stray_attributes_are_named() {
        let queued = image();
        let mut edited = queued.clone();
        edited.status = Status::Active;
        assert_eq!(
            Change::update(queued.clone(), edited).stray_attribute(),
            Some("status".into())
        );
        let mut edited = queued.clone();
        edited.checksum = Some("forged".into());
        assert_eq!(
            Change::update(queued.clone(), edited).stray_attribute(),
            Some("checksum".into())
        );
        let mut claim = Change::claim_upload(queued.clone());
        claim.after.visibility = Visibility::Public;
        assert_eq!(claim.stray_attribute(), Some("visibility".into()));
        let mut claim = Change::claim_upload(queued.clone());
        claim
            .after
            .properties
            .insert("img_signature".into(), "x".into());
        assert_eq!(
            claim.stray_attribute(),
            Some("properties.img_signature".into())
        );
        let mut claim = Change::claim_upload(queued);
        claim.after.status = Status::Active;
        assert_eq!(claim.stray_attribute(), Some("status".into()));
    }

    #[test]
    fn a_transition_rebuilt_on_a_newer_record_keeps_only_its_own_fields() {
        let saving = Change::claim_upload(image()).after;
        let commit = Change::commit_upload(saving.clone(), data());
        // Someone renamed the image meanwhile.
        let mut newer = saving.clone();
        newer.name = Some("renamed".into());
        newer.updated_at += time::Duration::seconds(1);
        let rebased = commit.on(newer.clone());
        assert_eq!(rebased.before, newer);
        assert_eq!(rebased.after.name.as_deref(), Some("renamed"));
        assert_eq!(rebased.after.size, Some(10));
        assert_eq!(rebased.after.status, Status::Active);
        assert_eq!(rebased.stray_attribute(), None);
        // A caller cannot smuggle an edit into a transition.
        let mut sneaky = Change::deactivate(saving.clone());
        sneaky.after.owner = Some("p2".into());
        assert_eq!(sneaky.on(saving).after.owner.as_deref(), Some("p1"));
    }
}
