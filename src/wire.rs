//! Glance's JSON shapes for images: the image document (glance-wire.md §4–§5),
//! the images list page (§6), the create request body (§4), the PATCH body
//! (§7, [`parse_patch`]), and the notification payload and envelope
//! (glance/notifier.py, oslo.messaging). The rules for one attribute at a
//! time (read-only and reserved names, types, 255-character limits) live in
//! [`attribute`] and are shared by create, patch and requests built without JSON.
//!
//! This is the only place that knows Glance's JSON: the CLI prints with it
//! now, the HTTP server will answer with it later, and the notifier writes
//! with it. Key order follows what Glance serves (custom properties first,
//! then the base fields), which serde_json's map would not keep, so the
//! documents serialize themselves. It must not do IO.

use std::collections::BTreeSet;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::image::{ContainerFormat, DiskFormat, Image, ImageId, Properties, Visibility};

mod attribute;
mod member;
mod patch;
mod served;

pub use attribute::{
    Attribute, MAX_PROPERTY_VALUE, MAX_STRING, attribute, check_attribute, check_name,
    check_property, check_string, check_tag,
};
pub use member::{
    MEMBER_SCHEMA, MEMBERS_SCHEMA, MemberBodyError, MemberJson, MembersJson, parse_add_member,
    parse_member_status,
};
pub use patch::{
    OperationProblem, PATCH_MEDIA_TYPE, PatchOp, PointerProblem, parse_patch, parse_patch_v2_0,
    parse_patch_value,
};
pub use served::{DocumentError, ServedImage, ServedPage, create_body, parse_image, parse_page};

/// The schema URL every image document carries.
pub const IMAGE_SCHEMA: &str = "/v2/schemas/image";
/// The schema URL of the images list page.
pub const IMAGES_SCHEMA: &str = "/v2/schemas/images";

/// Glance image API v2 base attributes: never rendered, accepted or read
/// from a properties file as additional properties.
pub const BASE_ATTRIBUTES: &[&str] = &[
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "size",
    "virtual_size",
    "container_format",
    "disk_format",
    "created_at",
    "updated_at",
    "tags",
    "direct_url",
    "min_ram",
    "min_disk",
    "self",
    "file",
    "stores",
    "schema",
    "locations",
];

/// Glance's timestamp: UTC, second precision, `Z` suffix (`2026-11-27T02:34:06Z`).
pub fn timestamp(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    utc.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    // Only years outside 0..=9999 fail to format; fall back to RFC 3339.
    .unwrap_or_else(|_| utc.to_string())
}

/// An image rendered as Glance's image API v2 does: custom properties first,
/// then the base fields, explicit `null` for unset ones, `self`/`file`/
/// `schema` links, and `stores` only when data is stored. `locations` and
/// `direct_url` never appear (Glance's defaults hide them).
#[derive(Debug, Clone, Copy)]
pub struct ImageJson<'a>(pub &'a Image);

impl Serialize for ImageJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let image = self.0;
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in &image.properties {
            if !BASE_ATTRIBUTES.contains(&name.as_str()) {
                map.serialize_entry(name, value)?;
            }
        }
        map.serialize_entry("name", &image.name)?;
        map.serialize_entry("disk_format", &image.disk_format.map(DiskFormat::as_str))?;
        map.serialize_entry(
            "container_format",
            &image.container_format.map(ContainerFormat::as_str),
        )?;
        map.serialize_entry("visibility", image.visibility.as_str())?;
        map.serialize_entry("size", &image.size)?;
        map.serialize_entry("virtual_size", &image.virtual_size)?;
        map.serialize_entry("status", image.status.as_str())?;
        map.serialize_entry("checksum", &image.checksum)?;
        map.serialize_entry("protected", &image.protected)?;
        map.serialize_entry("min_ram", &image.min_ram)?;
        map.serialize_entry("min_disk", &image.min_disk)?;
        map.serialize_entry("owner", &image.owner)?;
        map.serialize_entry("os_hidden", &image.os_hidden)?;
        map.serialize_entry("os_hash_algo", &image.os_hash_algo)?;
        map.serialize_entry("os_hash_value", &image.os_hash_value)?;
        map.serialize_entry("id", &image.id.to_string())?;
        map.serialize_entry("created_at", &timestamp(image.created_at))?;
        map.serialize_entry("updated_at", &timestamp(image.updated_at))?;
        map.serialize_entry("tags", &image.tags)?;
        map.serialize_entry("self", &image_path(image.id))?;
        map.serialize_entry("file", &format!("{}/file", image_path(image.id)))?;
        map.serialize_entry("schema", IMAGE_SCHEMA)?;
        if let Some(stores) = stores(image) {
            map.serialize_entry("stores", &stores)?;
        }
        map.end()
    }
}

/// `/v2/images/<id>`.
pub fn image_path(id: ImageId) -> String {
    format!("/v2/images/{id}")
}

/// Glance's `stores`: the comma-separated store ids of the image's
/// locations, or `None` when no data is stored.
fn stores(image: &Image) -> Option<String> {
    let mut ids: Vec<&str> = Vec::new();
    for location in &image.locations {
        if let Some(store) = location.metadata.get("store")
            && !ids.contains(&store.as_str())
        {
            ids.push(store);
        }
    }
    (!ids.is_empty()).then(|| ids.join(","))
}

/// One page of `GET /v2/images`: `images`, `first`, `schema`, and `next`
/// while the page is full.
#[derive(Debug, Clone)]
pub struct ImagesPage<'a> {
    images: &'a [Image],
    first: String,
    next: Option<String>,
}

impl<'a> ImagesPage<'a> {
    /// The page for `images`, answering a request with query `params` (in
    /// the order sent) and the effective `limit`. As Glance: `first` repeats
    /// the query without `marker`; `next` adds `marker=<last id>` and is
    /// present whenever the page is full (so a full last page still has one).
    pub fn new(images: &'a [Image], params: &[(String, String)], limit: u32) -> ImagesPage<'a> {
        let kept: Vec<&(String, String)> =
            params.iter().filter(|(key, _)| key != "marker").collect();
        let query = urlencode(kept.iter().copied());
        let first = if query.is_empty() {
            "/v2/images".to_owned()
        } else {
            format!("/v2/images?{query}")
        };
        let full =
            !images.is_empty() && images.len() == usize::try_from(limit).unwrap_or(usize::MAX);
        let next = images.last().filter(|_| full).map(|last| {
            let marker = ("marker".to_owned(), last.id.to_string());
            format!(
                "/v2/images?{}",
                urlencode(kept.iter().copied().chain(std::iter::once(&marker)))
            )
        });
        ImagesPage {
            images,
            first,
            next,
        }
    }

    /// The `next` link, if the page was full.
    pub fn next(&self) -> Option<&str> {
        self.next.as_deref()
    }
}

impl Serialize for ImagesPage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let images: Vec<ImageJson<'_>> = self.images.iter().map(ImageJson).collect();
        map.serialize_entry("images", &images)?;
        map.serialize_entry("first", &self.first)?;
        map.serialize_entry("schema", IMAGES_SCHEMA)?;
        if let Some(next) = &self.next {
            map.serialize_entry("next", next)?;
        }
        map.end()
    }
}

/// Python's `urllib.parse.urlencode` (quote_plus): what Glance builds its
/// `first`/`next` links with.
pub(crate) fn urlencode<'p>(pairs: impl Iterator<Item = &'p (String, String)>) -> String {
    fn quote_plus(text: &str, out: &mut String) {
        for byte in text.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                    out.push(char::from(byte));
                }
                b' ' => out.push('+'),
                other => out.push_str(&format!("%{other:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (index, (key, value)) in pairs.enumerate() {
        if index > 0 {
            out.push('&');
        }
        quote_plus(key, &mut out);
        out.push('=');
        quote_plus(value, &mut out);
    }
    out
}

/// A parsed `POST /v2/images` body: base attributes and additional
/// properties, validated against Glance's image schema.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateRequest {
    /// `name` (null or absent: none).
    pub name: Option<String>,
    /// `disk_format`.
    pub disk_format: Option<DiskFormat>,
    /// `container_format`.
    pub container_format: Option<ContainerFormat>,
    /// `visibility` (absent: Glance's default, `shared`).
    pub visibility: Option<Visibility>,
    /// `protected`.
    pub protected: Option<bool>,
    /// `os_hidden`.
    pub os_hidden: Option<bool>,
    /// `min_disk` (GiB).
    pub min_disk: Option<u32>,
    /// `min_ram` (MiB).
    pub min_ram: Option<u32>,
    /// `owner` (authorization decides whether the caller may set it).
    pub owner: Option<String>,
    /// `tags`.
    pub tags: BTreeSet<String>,
    /// Additional properties (string values), the `img_signature*` set among them.
    pub properties: Properties,
}

impl CreateRequest {
    /// The new `queued` image this request describes, with id `id`, created
    /// at `now`, owned by the requested owner or else `default_owner` (the
    /// caller's project).
    pub fn into_image(
        self,
        id: ImageId,
        default_owner: Option<String>,
        now: OffsetDateTime,
    ) -> Image {
        let mut image = Image::new_queued(id, self.owner.or(default_owner), now);
        image.name = self.name;
        image.disk_format = self.disk_format;
        image.container_format = self.container_format;
        if let Some(visibility) = self.visibility {
            image.visibility = visibility;
        }
        image.protected = self.protected.unwrap_or(false);
        image.os_hidden = self.os_hidden.unwrap_or(false);
        image.min_disk = self.min_disk.unwrap_or(0);
        image.min_ram = self.min_ram.unwrap_or(0);
        image.tags = self.tags;
        image.properties = self.properties;
        image
    }

    /// Checks a request built without [`parse_create`] (the CLI, library
    /// callers) against the same rules: 255-character name, owner and tags,
    /// and every property name and value ([`check_property`]: no read-only,
    /// reserved or base-attribute names, `os_glance*` included).
    ///
    /// Fails with the error [`parse_create`] would give for the same body.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(name) = &self.name {
            check_string("name", name)?;
        }
        if let Some(owner) = &self.owner {
            check_string("owner", owner)?;
        }
        self.tags.iter().try_for_each(|tag| check_tag(tag))?;
        self.properties
            .iter()
            .try_for_each(|(name, value)| check_property(name, value))
    }
}

/// A request body Glance would refuse (create or patch).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not JSON.
    #[error("request body is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("request body must be a JSON object of image attributes")]
    NotAnObject,
    /// A read-only attribute (Glance: 403).
    #[error("attribute {attribute:?} is read-only")]
    ReadOnly {
        /// The attribute.
        attribute: String,
    },
    /// A reserved attribute or property name (Glance: 403).
    #[error("attribute {attribute:?} is reserved")]
    Reserved {
        /// The attribute.
        attribute: String,
    },
    /// A base attribute given as a custom property (`--property owner=p2`):
    /// stored as a property it would shadow the real attribute in clients.
    #[error(
        "attribute {attribute:?} is a base attribute of an image, not a custom property (set it with its own option or field)"
    )]
    NotAProperty {
        /// The attribute.
        attribute: String,
    },
    /// A value that does not match the image schema (Glance: 400).
    #[error("attribute {attribute:?}: {reason}")]
    Schema {
        /// The attribute.
        attribute: String,
        /// What is wrong.
        reason: String,
    },
    /// A PATCH body that is not a JSON list (Glance: 400).
    #[error("request body must be a JSON array of patch operations")]
    NotAList,
    /// A PATCH operation that is malformed (Glance: 400).
    #[error("patch operation {index} {problem}")]
    BadOperation {
        /// Its position in the list, from 0.
        index: usize,
        /// What is wrong.
        problem: OperationProblem,
    },
    /// A PATCH `path` that is not a usable JSON pointer (Glance: 400).
    #[error("patch path {pointer:?} {problem}")]
    BadPointer {
        /// The pointer as sent.
        pointer: String,
        /// What is wrong.
        problem: PointerProblem,
    },
}

impl Error {
    /// Glance's message for this error, as its API returns it.
    pub fn glance_message(&self) -> String {
        match self {
            Error::Json(err) => format!("Malformed JSON in request body. {err}"),
            Error::NotAnObject => "Malformed JSON in request body.".to_owned(),
            Error::ReadOnly { attribute } => format!("Attribute '{attribute}' is read-only."),
            Error::Reserved { attribute } => format!("Attribute '{attribute}' is reserved."),
            Error::NotAProperty { attribute } => {
                format!("Attribute '{attribute}' is not a custom property.")
            }
            Error::Schema { attribute, reason } => {
                format!("Provided object does not match schema 'image': {attribute}: {reason}")
            }
            Error::NotAList => "Request body must be a JSON array of operation objects.".to_owned(),
            Error::BadOperation { problem, .. } => problem.glance_message(),
            Error::BadPointer { pointer, problem } => problem.glance_message(pointer),
        }
    }

    /// A stable snake_case name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Json(_) | Error::NotAnObject => "malformed_json",
            Error::ReadOnly { .. } => "read_only",
            Error::Reserved { .. } => "reserved",
            Error::NotAProperty { .. } => "base_attribute",
            Error::Schema { .. } => "schema",
            Error::NotAList | Error::BadOperation { .. } | Error::BadPointer { .. } => {
                "invalid_patch"
            }
        }
    }

    /// Whether Glance answers this with 403 (a name the caller may not
    /// set) rather than 400 (a body that does not parse or fit the schema).
    pub fn is_forbidden(&self) -> bool {
        match self {
            Error::ReadOnly { .. } | Error::Reserved { .. } | Error::NotAProperty { .. } => true,
            Error::Json(_)
            | Error::NotAnObject
            | Error::Schema { .. }
            | Error::NotAList
            | Error::BadOperation { .. }
            | Error::BadPointer { .. } => false,
        }
    }
}

/// Parses a `POST /v2/images` body.
///
/// Fails on malformed JSON, a read-only or reserved attribute, a value of
/// the wrong type or out of range, or a non-string additional property.
pub fn parse_create(body: &[u8]) -> Result<CreateRequest, Error> {
    let value: Value = serde_json::from_slice(body).map_err(Error::Json)?;
    parse_create_value(&value)
}

/// [`parse_create`] on an already-parsed JSON value.
///
/// Fails as [`parse_create`] does.
pub fn parse_create_value(value: &Value) -> Result<CreateRequest, Error> {
    let Value::Object(object) = value else {
        return Err(Error::NotAnObject);
    };
    let mut request = CreateRequest::default();
    for (key, value) in object {
        let Some(attribute) = attribute(key, value)? else {
            continue;
        };
        match attribute {
            Attribute::Name(name) => request.name = name,
            Attribute::Owner(owner) => request.owner = owner,
            Attribute::DiskFormat(format) => request.disk_format = format,
            Attribute::ContainerFormat(format) => request.container_format = format,
            Attribute::Visibility(visibility) => request.visibility = Some(visibility),
            Attribute::Protected(protected) => request.protected = Some(protected),
            Attribute::OsHidden(hidden) => request.os_hidden = Some(hidden),
            Attribute::MinDisk(gib) => request.min_disk = Some(gib),
            Attribute::MinRam(mib) => request.min_ram = Some(mib),
            Attribute::Tags(tags) => request.tags = tags,
            Attribute::Property { name, value } => {
                request.properties.insert(name, value);
            }
        }
    }
    Ok(request)
}

/// Glance's notification payload for an image (notifier.py
/// `format_image_notification`): no locations, which may hold credentials.
#[derive(Debug, Clone, Copy)]
pub struct NotificationPayload<'a> {
    /// The image.
    pub image: &'a Image,
    /// When it was deleted (`image.delete` only).
    pub deleted_at: Option<OffsetDateTime>,
}

impl Serialize for NotificationPayload<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let image = self.image;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &image.id.to_string())?;
        map.serialize_entry("name", &image.name)?;
        map.serialize_entry("status", image.status.as_str())?;
        map.serialize_entry("created_at", &timestamp(image.created_at))?;
        map.serialize_entry("updated_at", &timestamp(image.updated_at))?;
        map.serialize_entry("min_disk", &image.min_disk)?;
        map.serialize_entry("min_ram", &image.min_ram)?;
        map.serialize_entry("protected", &image.protected)?;
        map.serialize_entry("checksum", &image.checksum)?;
        map.serialize_entry("owner", &image.owner)?;
        map.serialize_entry("disk_format", &image.disk_format.map(DiskFormat::as_str))?;
        map.serialize_entry(
            "container_format",
            &image.container_format.map(ContainerFormat::as_str),
        )?;
        map.serialize_entry("size", &image.size)?;
        map.serialize_entry("virtual_size", &image.virtual_size)?;
        map.serialize_entry("is_public", &(image.visibility == Visibility::Public))?;
        map.serialize_entry("visibility", image.visibility.as_str())?;
        map.serialize_entry("properties", &image.properties)?;
        map.serialize_entry("tags", &image.tags)?;
        map.serialize_entry("deleted", &self.deleted_at.is_some())?;
        map.serialize_entry("deleted_at", &self.deleted_at.map(timestamp))?;
        map.end()
    }
}

/// Glance's notification payload for an image member (notifier.py
/// `format_image_member_notification`), for `image.member.create`,
/// `image.member.update` and `image.member.delete`.
#[derive(Debug, Clone, Copy)]
pub struct MemberNotificationPayload<'a> {
    /// The membership.
    pub member: &'a crate::image::Member,
    /// When it was deleted (`image.member.delete` only).
    pub deleted_at: Option<OffsetDateTime>,
}

impl Serialize for MemberNotificationPayload<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let member = self.member;
        let mut map = serializer.serialize_map(Some(7))?;
        map.serialize_entry("image_id", &member.image_id.to_string())?;
        map.serialize_entry("member_id", &member.member_id)?;
        map.serialize_entry("status", member.status.as_str())?;
        map.serialize_entry("created_at", &timestamp(member.created_at))?;
        map.serialize_entry("updated_at", &timestamp(member.updated_at))?;
        map.serialize_entry("deleted", &self.deleted_at.is_some())?;
        map.serialize_entry("deleted_at", &self.deleted_at.map(timestamp))?;
        map.end()
    }
}

/// A notification's priority (oslo.messaging upper-cases it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// `INFO`: an operation succeeded.
    Info,
    /// `ERROR`: an operation failed (payload is a message).
    Error,
}

/// The oslo.messaging notification envelope: `message_id`, `publisher_id`,
/// `event_type`, `priority`, `payload`, `timestamp` (Python's
/// `str(datetime.utcnow())`: `2026-01-02 03:04:05.123456`, microseconds
/// omitted when zero).
#[derive(Debug, Clone, Copy)]
pub struct Notification<'a, P> {
    /// A fresh UUID per message.
    pub message_id: uuid::Uuid,
    /// `image.<host>`.
    pub publisher_id: &'a str,
    /// `image.create`, `image.upload`, ...
    pub event_type: &'a str,
    /// Priority.
    pub priority: Priority,
    /// The payload.
    pub payload: P,
    /// When it was emitted.
    pub timestamp: OffsetDateTime,
}

impl<P: Serialize> Serialize for Notification<'_, P> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("message_id", &self.message_id.hyphenated().to_string())?;
        map.serialize_entry("publisher_id", self.publisher_id)?;
        map.serialize_entry("event_type", self.event_type)?;
        map.serialize_entry(
            "priority",
            match self.priority {
                Priority::Info => "INFO",
                Priority::Error => "ERROR",
            },
        )?;
        map.serialize_entry("payload", &self.payload)?;
        map.serialize_entry("timestamp", &python_timestamp(self.timestamp))?;
        map.end()
    }
}

fn python_timestamp(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    let seconds = utc
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_else(|_| utc.to_string());
    match utc.microsecond() {
        0 => seconds,
        micros => format!("{seconds}.{micros:06}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Location, Status};

    fn at(text: &str) -> OffsetDateTime {
        crate::clock::parse_rfc3339(text).unwrap()
    }

    fn sample() -> Image {
        let id: ImageId = "bb859843-9ef0-4915-96f8-0ce46df5cabc".parse().unwrap();
        let mut image = Image::new_queued(id, None, at("2026-11-27T02:34:06.789Z"));
        image.name = Some("wire-g2".into());
        image.disk_format = Some(DiskFormat::Raw);
        image.container_format = Some(ContainerFormat::Bare);
        image.min_disk = 1;
        image.properties.insert("foo".into(), "bar".into());
        image
    }

    #[test]
    fn a_queued_image_renders_exactly_as_glance_serves_it() {
        // glance-wire.md §4, byte for byte (key order included).
        let expected = r#"{"foo":"bar","name":"wire-g2","disk_format":"raw","container_format":"bare","visibility":"shared","size":null,"virtual_size":null,"status":"queued","checksum":null,"protected":false,"min_ram":0,"min_disk":1,"owner":null,"os_hidden":false,"os_hash_algo":null,"os_hash_value":null,"id":"bb859843-9ef0-4915-96f8-0ce46df5cabc","created_at":"2026-11-27T02:34:06Z","updated_at":"2026-11-27T02:34:06Z","tags":[],"self":"/v2/images/bb859843-9ef0-4915-96f8-0ce46df5cabc","file":"/v2/images/bb859843-9ef0-4915-96f8-0ce46df5cabc/file","schema":"/v2/schemas/image"}"#;
        assert_eq!(
            serde_json::to_string(&ImageJson(&sample())).unwrap(),
            expected
        );
    }

    #[test]
    fn an_active_image_has_stores_and_never_locations() {
        let mut image = sample();
        image.status = Status::Active;
        image.size = Some(8_388_608);
        image.checksum = Some("d3b9d49fdc44f1706b563486e73a8574".into());
        image.os_hash_algo = Some("sha512".into());
        image.os_hash_value = Some("a1".into());
        image.tags.insert("t1".into());
        let mut metadata = Properties::new();
        metadata.insert("store".into(), "fs".into());
        image.locations.push(Location {
            url: "file:///secret/images/x".into(),
            metadata,
        });
        let text = serde_json::to_string(&ImageJson(&image)).unwrap();
        assert!(
            text.ends_with(r#""schema":"/v2/schemas/image","stores":"fs"}"#),
            "{text}"
        );
        assert!(text.contains(r#""tags":["t1"]"#), "{text}");
        assert!(!text.contains("file:///secret"), "{text}");
        assert!(!text.contains("locations"), "{text}");
        // A stored property named like a base attribute never shadows it.
        image
            .properties
            .insert("status".into(), "active-ish".into());
        let text = serde_json::to_string(&ImageJson(&image)).unwrap();
        assert_eq!(text.matches(r#""status":"#).count(), 1, "{text}");
        assert!(!text.contains("active-ish"), "{text}");
    }

    #[test]
    fn timestamps_are_utc_seconds_with_z() {
        assert_eq!(
            timestamp(at("2026-01-02T05:04:05.999+02:00")),
            "2026-01-02T03:04:05Z"
        );
        assert_eq!(
            python_timestamp(at("2026-01-02T03:04:05Z")),
            "2026-01-02 03:04:05"
        );
        assert_eq!(
            python_timestamp(at("2026-01-02T03:04:05.000123Z")),
            "2026-01-02 03:04:05.000123"
        );
    }

    #[test]
    fn list_pages_link_first_and_next_like_glance() {
        let images = vec![sample(), sample()];
        let params = vec![
            ("limit".to_owned(), "2".to_owned()),
            ("sort_key".to_owned(), "name".to_owned()),
            ("name".to_owned(), "a b&c".to_owned()),
            ("marker".to_owned(), "old".to_owned()),
        ];
        let page = ImagesPage::new(&images, &params, 2);
        let value: Value = serde_json::to_value(&page).unwrap();
        assert_eq!(
            value["first"],
            "/v2/images?limit=2&sort_key=name&name=a+b%26c"
        );
        assert_eq!(
            value["next"],
            "/v2/images?limit=2&sort_key=name&name=a+b%26c&marker=bb859843-9ef0-4915-96f8-0ce46df5cabc"
        );
        assert_eq!(value["schema"], IMAGES_SCHEMA);
        assert_eq!(value["images"].as_array().unwrap().len(), 2);
        let text = serde_json::to_string(&page).unwrap();
        assert!(text.starts_with(r#"{"images":[{"foo":"bar","#), "{text}");

        // Not full: no next. Empty: no next, bare first.
        let page = ImagesPage::new(&images[..1], &params, 2);
        assert!(page.next().is_none());
        let value = serde_json::to_value(ImagesPage::new(&[], &[], 25)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"images": [], "first": "/v2/images", "schema": IMAGES_SCHEMA})
        );
    }

    fn check_create(body: &str, expect: Result<&str, &str>) {
        match (parse_create(body.as_bytes()), expect) {
            (Ok(request), Ok(debug)) => {
                let text = format!("{request:?}");
                assert!(text.contains(debug), "{body}: {text}");
            }
            (Err(err), Err(message)) => assert_eq!(err.glance_message(), message, "{body}"),
            (got, expect) => panic!("{body}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn create_bodies_parse_as_glance_validates_them() {
        check_create(
            r#"{"disk_format":"qcow2","container_format":"bare","name":"x","min_disk":1,"foo":"bar","tags":["a","a"],"visibility":"private"}"#,
            Ok(
                r#"name: Some("x"), disk_format: Some(Qcow2), container_format: Some(Bare), visibility: Some(Private), protected: None, os_hidden: None, min_disk: Some(1), min_ram: None, owner: None, tags: {"a"}, properties: {"foo": "bar"}"#,
            ),
        );
        check_create(
            r#"{"img_signature":"c2ln","img_signature_hash_method":"SHA-256","img_signature_key_type":"RSA-PSS","img_signature_certificate_uuid":"ea0e5be0-364d-4cd5-89ba-4e110adfda4f","name":null,"disk_format":null}"#,
            Ok(r#"name: None, disk_format: None"#),
        );
        check_create(
            r#"{"status":"active"}"#,
            Err("Attribute 'status' is read-only."),
        );
        check_create(
            r#"{"id":"bb859843-9ef0-4915-96f8-0ce46df5cabc"}"#,
            Err("Attribute 'id' is read-only."),
        );
        check_create(
            r#"{"checksum":"x"}"#,
            Err("Attribute 'checksum' is read-only."),
        );
        check_create(
            r#"{"os_hash_value":"x"}"#,
            Err("Attribute 'os_hash_value' is read-only."),
        );
        check_create(
            r#"{"os_hash_algo":"sha256"}"#,
            Err("Attribute 'os_hash_algo' is read-only."),
        );
        check_create(
            r#"{"locations":[]}"#,
            Err("Attribute 'locations' is reserved."),
        );
        check_create(
            r#"{"os_glance_import_task":"x"}"#,
            Err("Attribute 'os_glance_import_task' is reserved."),
        );
        check_create(
            r#"{"disk_format":"qcow3"}"#,
            Err(
                r#"Provided object does not match schema 'image': disk_format: "qcow3" is not a valid disk_format (expected one of: ami, ari, aki, vhd, vhdx, vmdk, raw, qcow2, vdi, iso, ploop)"#,
            ),
        );
        check_create(
            r#"{"foo":1}"#,
            Err("Provided object does not match schema 'image': foo: 1 is not of type 'string'"),
        );
        check_create(
            r#"{"min_ram":-1}"#,
            Err(&format!(
                "Provided object does not match schema 'image': min_ram: -1 is not between 0 and {}",
                u32::MAX
            )),
        );
        check_create(
            r#"{"protected":"yes"}"#,
            Err(
                r#"Provided object does not match schema 'image': protected: "yes" is not of type 'boolean'"#,
            ),
        );
        check_create(
            r#"{"kernel_id":"nope"}"#,
            Err(
                r#"Provided object does not match schema 'image': kernel_id: "nope" is not a UUID"#,
            ),
        );
        check_create(r#"["x"]"#, Err("Malformed JSON in request body."));
        assert_eq!(parse_create(b"{").unwrap_err().kind(), "malformed_json");
        let long = format!(r#"{{"name":"{}"}}"#, "n".repeat(256));
        assert_eq!(parse_create(long.as_bytes()).unwrap_err().kind(), "schema");
    }

    #[test]
    fn create_requests_become_queued_images_with_glance_defaults() {
        let request = parse_create(br#"{"name":"x","foo":"bar","tags":["t"]}"#).unwrap();
        let id = ImageId::new_random();
        let image = request.into_image(id, Some("p1".into()), at("2026-01-01T00:00:00Z"));
        assert_eq!(image.status, Status::Queued);
        assert_eq!(image.visibility, Visibility::Shared);
        assert_eq!(image.owner.as_deref(), Some("p1"));
        assert_eq!(image.properties.get("foo").map(String::as_str), Some("bar"));
        assert!(image.tags.contains("t"));
        let owned = parse_create(br#"{"owner":"p2"}"#).unwrap();
        assert_eq!(
            owned
                .into_image(id, Some("p1".into()), at("2026-01-01T00:00:00Z"))
                .owner
                .as_deref(),
            Some("p2")
        );
    }

    #[test]
    fn notification_payloads_have_glance_fields_and_no_locations() {
        let mut image = sample();
        image.visibility = Visibility::Public;
        image.locations.push(Location {
            url: "file:///secret".into(),
            metadata: Properties::new(),
        });
        let deleted = at("2026-11-28T00:00:00Z");
        let notification = Notification {
            message_id: uuid::Uuid::nil(),
            publisher_id: "image.localhost",
            event_type: "image.delete",
            priority: Priority::Info,
            payload: NotificationPayload {
                image: &image,
                deleted_at: Some(deleted),
            },
            timestamp: deleted,
        };
        let value = serde_json::to_value(notification).unwrap();
        assert_eq!(value["event_type"], "image.delete");
        assert_eq!(value["priority"], "INFO");
        assert_eq!(value["timestamp"], "2026-11-28 00:00:00");
        assert_eq!(value["message_id"], "00000000-0000-0000-0000-000000000000");
        let payload = value["payload"].as_object().unwrap();
        let mut keys: Vec<&str> = payload.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "checksum",
                "container_format",
                "created_at",
                "deleted",
                "deleted_at",
                "disk_format",
                "id",
                "is_public",
                "min_disk",
                "min_ram",
                "name",
                "owner",
                "properties",
                "protected",
                "size",
                "status",
                "tags",
                "updated_at",
                "virtual_size",
                "visibility"
            ]
        );
        assert_eq!(payload["is_public"], true);
        assert_eq!(payload["deleted"], true);
        assert_eq!(payload["deleted_at"], "2026-11-28T00:00:00Z");
        assert!(!value.to_string().contains("file:///secret"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Create bodies of any shape are accepted or refused with an error.
        #[test]
        fn any_create_body_parses_or_fails_cleanly(
            body in "\\{(\"(name|owner|visibility|protected|os_hidden|min_disk|min_ram|tags|kernel_id|disk_format|container_format|id|status|x)\": ?(null|true|-?[0-9]{1,20}|\"[a-z0-9é-]{0,8}\"|\\[(\"[a-z]{0,3}\",?|1,?){0,3}\\]|\\{\\}),? ?){0,6}\\}"
        ) {
            if let Ok(request) = parse_create(body.as_bytes()) {
                let _ = request.into_image(ImageId::new_random(), None, at("2026-01-01T00:00:00Z"));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_create_parser(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)
        ) {
            let _ = parse_create(&bytes);
        }
    }
}
