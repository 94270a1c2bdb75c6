//! Glance's image documents as a client reads them from any Glance image
//! API v2 (the real Glance or `portcullis serve`), and the create body a
//! client sends (glance-wire.md §4–§6): one image (`GET /v2/images/{id}`,
//! the answer to a create), a list page (`images` and `next`), and
//! `POST /v2/images`'s flat object of base attributes and string properties.
//!
//! This file owns reading served JSON: lenient where Glances differ (absent
//! or `null` fields, keys it does not know) and strict where a check
//! depends on the value (numbers, the `img_signature*` strings). It must not
//! do IO nor judge the image.

use serde_json::{Map, Value};

use super::BASE_ATTRIBUTES;
use crate::image::Properties;
use crate::verify;

/// An image as a Glance served it: the base fields a check needs and every
/// additional (string) property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedImage {
    /// The image id (as served; Glance ids are UUIDs).
    pub id: String,
    /// The name, if any.
    pub name: Option<String>,
    /// The status (`active`, `queued`, ...).
    pub status: String,
    /// `public`, `private`, `shared` or `community`.
    pub visibility: Option<String>,
    /// The owning project.
    pub owner: Option<String>,
    /// The declared disk format.
    pub disk_format: Option<String>,
    /// The declared container format.
    pub container_format: Option<String>,
    /// The recorded data size in bytes.
    pub size: Option<u64>,
    /// The recorded virtual size.
    pub virtual_size: Option<u64>,
    /// The md5 hex of the data (Glance's `checksum`).
    pub checksum: Option<String>,
    /// The algorithm of `os_hash_value` (a hashlib name, `sha512` by default).
    pub os_hash_algo: Option<String>,
    /// The os_hash hex of the data.
    pub os_hash_value: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Additional properties (the `img_signature*` ones among them).
    pub properties: Properties,
}

/// One page of `GET /v2/images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedPage {
    /// The images of the page.
    pub images: Vec<ServedImage>,
    /// The `next` link (`/v2/images?…&marker=<id>`), present while pages follow.
    pub next: Option<String>,
}

/// A served document that is not what Glance sends.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not JSON at all.
    #[error("the answer is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not an image document; says which field is wrong.
    #[error("the answer is not a Glance image document: {0}")]
    NotAnImage(String),
    /// JSON, but not an images page.
    #[error("the answer is not a Glance images page: {0}")]
    NotAPage(String),
}

/// Parses one image document (`GET /v2/images/{id}`, a create's answer).
///
/// Fails when the body is not JSON, has no string `id` and `status`, a
/// number field holds something else, or an `img_signature*` property is
/// not a string (which would otherwise read as "unsigned").
pub fn parse_image(body: &[u8]) -> Result<ServedImage, DocumentError> {
    let value: Value = serde_json::from_slice(body).map_err(DocumentError::NotJson)?;
    image_from_value(&value).map_err(DocumentError::NotAnImage)
}

/// Parses one page of `GET /v2/images`.
///
/// Fails as [`parse_image`] for any image of the page, or when `images`
/// is not a list or `next` not a string.
pub fn parse_page(body: &[u8]) -> Result<ServedPage, DocumentError> {
    let value: Value = serde_json::from_slice(body).map_err(DocumentError::NotJson)?;
    let images = value
        .get("images")
        .and_then(Value::as_array)
        .ok_or_else(|| DocumentError::NotAPage("no `images` list".to_owned()))?;
    let images = images
        .iter()
        .enumerate()
        .map(|(index, image)| {
            image_from_value(image)
                .map_err(|reason| DocumentError::NotAPage(format!("images[{index}]: {reason}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let next = match value.get("next") {
        None | Some(Value::Null) => None,
        Some(Value::String(next)) => Some(next.clone()),
        Some(_) => return Err(DocumentError::NotAPage("`next` is not a string".to_owned())),
    };
    Ok(ServedPage { images, next })
}

fn image_from_value(value: &Value) -> Result<ServedImage, String> {
    let object = value.as_object().ok_or("not a JSON object")?;
    let required = |name: &str| -> Result<String, String> {
        object
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("no string `{name}`"))
    };
    let text = |name: &str| -> Result<Option<String>, String> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(format!("`{name}` is not a string")),
        }
    };
    let number = |name: &str| -> Result<Option<u64>, String> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("`{name}` is not a non-negative integer")),
        }
    };
    let tags = match object.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(tags)) => tags
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => return Err("`tags` is not a list".to_owned()),
    };
    let mut properties = Properties::new();
    for (name, value) in object {
        if BASE_ATTRIBUTES.contains(&name.as_str()) {
            continue;
        }
        match value {
            Value::String(text) => {
                properties.insert(name.clone(), text.clone());
            }
            // A signature property that is not a string must not read as
            // absent (an image would pass as unsigned).
            _ if verify::PROPERTIES.contains(&name.as_str()) => {
                return Err(format!("property `{name}` is not a string"));
            }
            // Glance's additional properties are strings; anything else is
            // another Glance's extension and nothing a check reads.
            _ => {}
        }
    }
    Ok(ServedImage {
        id: required("id")?,
        name: text("name")?,
        status: required("status")?,
        visibility: text("visibility")?,
        owner: text("owner")?,
        disk_format: text("disk_format")?,
        container_format: text("container_format")?,
        size: number("size")?,
        virtual_size: number("virtual_size")?,
        checksum: text("checksum")?,
        os_hash_algo: text("os_hash_algo")?,
        os_hash_value: text("os_hash_value")?,
        tags,
        properties,
    })
}

/// The body of `POST /v2/images` as glanceclient sends it: a flat object of
/// base attributes and additional properties as top-level string keys.
pub fn create_body(
    name: &str,
    disk_format: &str,
    container_format: &str,
    visibility: Option<&str>,
    properties: &Properties,
) -> Value {
    let mut body = Map::new();
    for (key, value) in properties {
        body.insert(key.clone(), Value::String(value.clone()));
    }
    body.insert("name".to_owned(), Value::String(name.to_owned()));
    body.insert(
        "disk_format".to_owned(),
        Value::String(disk_format.to_owned()),
    );
    body.insert(
        "container_format".to_owned(),
        Value::String(container_format.to_owned()),
    );
    if let Some(visibility) = visibility {
        body.insert(
            "visibility".to_owned(),
            Value::String(visibility.to_owned()),
        );
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The active image of glance-wire.md §5, as real Glance 33 serves it.
    const ACTIVE: &str = r#"{"img_signature": "QUJD", "img_signature_hash_method": "SHA-256",
        "img_signature_key_type": "RSA-PSS", "img_signature_certificate_uuid": "ea0e5be0-364d-4cd5-89ba-4e110adfda4f",
        "name": "sig-s01", "disk_format": "raw", "container_format": "bare", "visibility": "shared",
        "size": 8388608, "virtual_size": 8388608, "status": "active",
        "checksum": "d3b9d49fdc44f1706b563486e73a8574", "protected": false, "min_ram": 0, "min_disk": 0,
        "owner": null, "os_hidden": false, "os_hash_algo": "sha512", "os_hash_value": "a1ba",
        "id": "106732fb-1a2b-4c3d-8e9f-0123456789ab", "created_at": "2026-11-27T02:34:48Z",
        "updated_at": "2026-11-27T02:34:49Z", "tags": ["t1"], "self": "/v2/images/106732fb-1a2b-4c3d-8e9f-0123456789ab",
        "file": "/v2/images/106732fb-1a2b-4c3d-8e9f-0123456789ab/file", "schema": "/v2/schemas/image", "stores": "fs"}"#;

    #[test]
    fn an_active_glance_image_reads_with_its_signature_properties() {
        let image = parse_image(ACTIVE.as_bytes()).unwrap();
        assert_eq!(image.id, "106732fb-1a2b-4c3d-8e9f-0123456789ab");
        assert_eq!(image.status, "active");
        assert_eq!(image.size, Some(8_388_608));
        assert_eq!(image.owner, None);
        assert_eq!(image.os_hash_algo.as_deref(), Some("sha512"));
        assert_eq!(image.tags, vec!["t1".to_owned()]);
        assert_eq!(image.properties.len(), 4, "{:?}", image.properties);
        assert_eq!(
            image
                .properties
                .get("img_signature_key_type")
                .map(String::as_str),
            Some("RSA-PSS")
        );
    }

    #[test]
    fn wrong_types_are_named_and_signature_properties_must_be_strings() {
        let err = parse_image(br#"{"id": "x", "status": "active", "size": "12"}"#).unwrap_err();
        assert!(err.to_string().contains("`size`"), "{err}");
        let err =
            parse_image(br#"{"id": "x", "status": "active", "img_signature": 5}"#).unwrap_err();
        assert!(err.to_string().contains("img_signature"), "{err}");
        // Other non-string extensions are not read.
        let image = parse_image(br#"{"id": "x", "status": "queued", "extra": {"a": 1}}"#).unwrap();
        assert!(image.properties.is_empty());
        assert!(matches!(
            parse_image(b"<html>"),
            Err(DocumentError::NotJson(_))
        ));
    }

    #[test]
    fn a_page_has_images_and_a_next_link() {
        let body = format!(
            r#"{{"images": [{ACTIVE}], "first": "/v2/images", "schema": "/v2/schemas/images",
                "next": "/v2/images?marker=106732fb-1a2b-4c3d-8e9f-0123456789ab"}}"#
        );
        let page = parse_page(body.as_bytes()).unwrap();
        assert_eq!(page.images.len(), 1);
        assert_eq!(
            page.next.as_deref(),
            Some("/v2/images?marker=106732fb-1a2b-4c3d-8e9f-0123456789ab")
        );
        let last = parse_page(br#"{"images": [], "first": "/v2/images"}"#).unwrap();
        assert_eq!(last.next, None);
        let err = parse_page(br#"{"images": [{"id": 1}]}"#).unwrap_err();
        assert!(err.to_string().contains("images[0]"), "{err}");
    }

    #[test]
    fn the_create_body_is_flat() {
        let properties = Properties::from([("os_distro".to_owned(), "cirros".to_owned())]);
        let body = create_body("x", "qcow2", "bare", None, &properties);
        assert_eq!(
            body,
            serde_json::json!({"name": "x", "disk_format": "qcow2", "container_format": "bare", "os_distro": "cirros"})
        );
    }
}
