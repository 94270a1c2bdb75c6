//! The image domain: what Glance calls an image and an image member, without
//! any IO or encoding.
//!
//! Names follow Glance verbatim (`disk_format`, `container_format`,
//! `os_hash_algo`, the status names) so that the wire layer ([`crate::wire`])
//! can render an [`Image`] exactly as Glance's image API v2 does. This module
//! must not do IO and must not know JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

/// Free-form image properties (Glance's "additional properties"), including
/// the `img_signature*` set. Values are strings, as in Glance's schema.
pub type Properties = BTreeMap<String, String>;

/// An image's identity: a UUID, rendered in the hyphenated lower-case form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageId(uuid::Uuid);

impl ImageId {
    /// A fresh random (v4) id.
    pub fn new_random() -> ImageId {
        ImageId(uuid::Uuid::new_v4())
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }
}

impl From<uuid::Uuid> for ImageId {
    fn from(value: uuid::Uuid) -> Self {
        ImageId(value)
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// An image id that is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an image id (expected a UUID such as 6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55)")]
pub struct BadImageId(pub String);

impl FromStr for ImageId {
    type Err = BadImageId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::try_parse(s)
            .map(ImageId)
            .map_err(|_| BadImageId(s.to_owned()))
    }
}

/// Declares a closed set of Glance names as an enum with `as_str`, `ALL`,
/// `Display` and `FromStr` (exact, case-sensitive, as Glance's schema).
macro_rules! glance_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in Glance's schema order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Glance's name for this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == s)
                    .ok_or_else(|| UnknownName {
                        what: $what,
                        value: s.to_owned(),
                        expected: $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                    })
            }
        }
    };
}

/// A name outside one of Glance's closed sets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what} (expected one of: {expected})")]
pub struct UnknownName {
    /// Which field ("disk_format", "status", ...).
    pub what: &'static str,
    /// The rejected text.
    pub value: String,
    /// The accepted names, comma separated.
    pub expected: String,
}

glance_enum!(
    /// An image's lifecycle state (Glance's `status`).
    ///
    /// portcullis uses queued → saving → active, active ⇄ deactivated and
    /// any → deleted; the other names exist so that records and filters using
    /// Glance's full schema parse.
    Status, "status", {
        /// Created, no data yet (or an upload failed and was rolled back).
        Queued => "queued",
        /// One upload owns the image and is streaming data.
        Saving => "saving",
        /// Data stored, hashed and (when signed) verified.
        Active => "active",
        /// Glance's legacy failure state; portcullis never sets it.
        Killed => "killed",
        /// Deleted; the record may be kept for audit.
        Deleted => "deleted",
        /// Interoperable import: data staged.
        Uploading => "uploading",
        /// Interoperable import: being imported.
        Importing => "importing",
        /// Delayed delete.
        PendingDelete => "pending_delete",
        /// Downloads are refused until reactivated.
        Deactivated => "deactivated",
    }
);

impl Status {
    /// Whether portcullis allows the transition `self → to`.
    ///
    /// The repository enforces transitions as compare-and-swap updates;
    /// this table says which ones are legal at all.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Queued, Saving)
                | (Saving, Active)
                | (Saving, Queued)
                | (Active, Deactivated)
                | (Deactivated, Active)
                | (Queued, Uploading)
                | (Uploading, Queued)
                | (_, Deleted)
        ) && self != Deleted
    }
}

glance_enum!(
    /// Who can see an image (Glance's `visibility`).
    Visibility, "visibility", {
        /// Everyone.
        Public => "public",
        /// The owner only.
        Private => "private",
        /// The owner and its members (Glance's default).
        Shared => "shared",
        /// Everyone, but not listed by default.
        Community => "community",
    }
);

glance_enum!(
    /// The declared format of the disk data (Glance's `disk_format`).
    DiskFormat, "disk_format", {
        /// Amazon kernel+ramdisk image.
        Ami => "ami",
        /// Amazon ramdisk image.
        Ari => "ari",
        /// Amazon kernel image.
        Aki => "aki",
        /// Virtual PC / Hyper-V.
        Vhd => "vhd",
        /// Hyper-V v2.
        Vhdx => "vhdx",
        /// VMware.
        Vmdk => "vmdk",
        /// Plain bytes.
        Raw => "raw",
        /// QEMU copy-on-write v2/v3.
        Qcow2 => "qcow2",
        /// VirtualBox.
        Vdi => "vdi",
        /// ISO 9660 / UDF optical disc.
        Iso => "iso",
        /// Virtuozzo/Parallels.
        Ploop => "ploop",
    }
);

glance_enum!(
    /// The declared wrapper around the disk data (Glance's `container_format`).
    ContainerFormat, "container_format", {
        /// Amazon image.
        Ami => "ami",
        /// Amazon ramdisk.
        Ari => "ari",
        /// Amazon kernel.
        Aki => "aki",
        /// No container: the data is the disk.
        Bare => "bare",
        /// Open Virtualization Format.
        Ovf => "ovf",
        /// OVF archive.
        Ova => "ova",
        /// Docker tarball.
        Docker => "docker",
        /// Compressed archive.
        Compressed => "compressed",
    }
);

/// Where an image's data lives in a store (Glance's `locations` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Store URL, for example `file:///data/images/<id>`.
    pub url: String,
    /// Store-specific metadata (Glance's location `metadata`).
    pub metadata: Properties,
}

/// An image record, field for field as Glance's image API v2 has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The image's UUID.
    pub id: ImageId,
    /// Human name; Glance does not require it to be unique.
    pub name: Option<String>,
    /// Lifecycle state.
    pub status: Status,
    /// Who may see it.
    pub visibility: Visibility,
    /// Protected images cannot be deleted.
    pub protected: bool,
    /// Hidden from default listings.
    pub os_hidden: bool,
    /// The owning project, if any.
    pub owner: Option<String>,
    /// Declared disk format.
    pub disk_format: Option<DiskFormat>,
    /// Declared container format.
    pub container_format: Option<ContainerFormat>,
    /// Minimum disk in GiB.
    pub min_disk: u32,
    /// Minimum RAM in MiB.
    pub min_ram: u32,
    /// Stored bytes, once uploaded.
    pub size: Option<u64>,
    /// Size of the virtual disk, from format inspection.
    pub virtual_size: Option<u64>,
    /// md5 of the data, lower-case hex (Glance's legacy `checksum`).
    pub checksum: Option<String>,
    /// Name of the multihash algorithm (`sha512` by default).
    pub os_hash_algo: Option<String>,
    /// Multihash value, lower-case hex.
    pub os_hash_value: Option<String>,
    /// Tags (a set in Glance).
    pub tags: BTreeSet<String>,
    /// Creation time (UTC).
    pub created_at: OffsetDateTime,
    /// Last change (UTC).
    pub updated_at: OffsetDateTime,
    /// Where the data is stored; internal, never shown by default.
    pub locations: Vec<Location>,
    /// Additional properties, the `img_signature*` set among them.
    pub properties: Properties,
}

impl Image {
    /// A new `queued` image with Glance's defaults (visibility `shared`,
    /// not protected, not hidden, no data), created at `now`.
    pub fn new_queued(id: ImageId, owner: Option<String>, now: OffsetDateTime) -> Image {
        Image {
            id,
            name: None,
            status: Status::Queued,
            visibility: Visibility::Shared,
            protected: false,
            os_hidden: false,
            owner,
            disk_format: None,
            container_format: None,
            min_disk: 0,
            min_ram: 0,
            size: None,
            virtual_size: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            tags: BTreeSet::new(),
            created_at: now,
            updated_at: now,
            locations: Vec::new(),
            properties: Properties::new(),
        }
    }
}

glance_enum!(
    /// Where a project stands on an image shared with it (Glance's image
    /// member `status`).
    MemberStatus, "member status", {
        /// Added by the owner, not yet answered: the image is visible to the
        /// member but not in its default listing.
        Pending => "pending",
        /// The member took the image: it appears in the member's default listing.
        Accepted => "accepted",
        /// The member declined: still visible by id, listed only on request.
        Rejected => "rejected",
    }
);

/// One project's membership of a `shared` image (Glance's image member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The shared image.
    pub image_id: ImageId,
    /// The member project (Glance's `member_id`).
    pub member_id: String,
    /// The member's answer.
    pub status: MemberStatus,
    /// When the owner added the member (UTC).
    pub created_at: OffsetDateTime,
    /// When the membership last changed (UTC).
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for format in DiskFormat::ALL {
            assert_eq!(format.as_str().parse::<DiskFormat>().unwrap(), *format);
        }
        let err = "QCOW2".parse::<DiskFormat>().unwrap_err();
        assert!(err.to_string().contains("qcow2"), "{err}");
        assert_eq!(
            "pending_delete".parse::<Status>().unwrap(),
            Status::PendingDelete
        );
    }

    #[test]
    fn status_transitions() {
        assert!(Status::Queued.can_become(Status::Saving));
        assert!(Status::Saving.can_become(Status::Active));
        assert!(Status::Saving.can_become(Status::Queued));
        assert!(Status::Active.can_become(Status::Deactivated));
        assert!(Status::Deactivated.can_become(Status::Active));
        assert!(Status::Active.can_become(Status::Deleted));
        assert!(!Status::Queued.can_become(Status::Active));
        assert!(!Status::Active.can_become(Status::Saving));
        assert!(!Status::Deleted.can_become(Status::Deleted));
        // Interoperable import: a stage and its undoing, never straight to active.
        assert!(Status::Queued.can_become(Status::Uploading));
        assert!(Status::Uploading.can_become(Status::Queued));
        assert!(!Status::Uploading.can_become(Status::Active));
        assert!(!Status::Active.can_become(Status::Uploading));
    }

    #[test]
    fn image_ids_parse_only_uuids() {
        let id: ImageId = "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55".parse().unwrap();
        assert_eq!(id.to_string(), "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55");
        assert!("not-a-uuid".parse::<ImageId>().is_err());
    }
}
