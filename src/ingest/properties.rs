//! Image properties from a JSON file, in the shapes `portcullis verify
//! --properties` accepts: a flat object of string properties, or the output
//! of `glance image-show -f json` (custom properties at the top level) or
//! `openstack image show -f json` (custom properties under `properties`).
//!
//! Glance's base attributes (`id`, `name`, `status`, `checksum`, …) are not
//! properties and are skipped, so the output of a show command can be fed
//! back as is. This module must not decide anything about signatures.

use crate::image::Properties;

/// Glance image API v2 base attributes: never taken as extra properties.
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
    "schema",
    "locations",
    "stores",
];

/// A properties file that is not one of the accepted shapes.
#[derive(Debug, thiserror::Error)]
pub enum PropertiesError {
    /// Not JSON.
    #[error("not valid JSON")]
    Json(#[source] serde_json::Error),
    /// JSON, but not an object.
    #[error("expected a JSON object of image properties")]
    NotAnObject,
    /// A custom property whose value is not a string (Glance's schema allows only strings).
    #[error("property {name:?} is not a string (Glance image properties are strings)")]
    NotAString {
        /// The property.
        name: String,
    },
}

/// Reads image properties from `text` (see the module documentation for the shapes).
///
/// Fails on invalid JSON, a non-object document, or a custom property whose
/// value is not a string.
pub fn from_json(text: &str) -> Result<Properties, PropertiesError> {
    let document: serde_json::Value = serde_json::from_str(text).map_err(PropertiesError::Json)?;
    let object = document.as_object().ok_or(PropertiesError::NotAnObject)?;
    let mut properties = Properties::new();
    let mut take = |name: &str, value: &serde_json::Value| -> Result<(), PropertiesError> {
        if BASE_ATTRIBUTES.contains(&name) {
            return Ok(());
        }
        match value {
            serde_json::Value::String(text) => {
                properties.insert(name.to_owned(), text.clone());
                Ok(())
            }
            _ => Err(PropertiesError::NotAString {
                name: name.to_owned(),
            }),
        }
    };
    for (name, value) in object {
        if name == "properties" && value.is_object() {
            continue;
        }
        take(name, value)?;
    }
    // openstackclient nests custom properties; they win over the top level.
    if let Some(nested) = object
        .get("properties")
        .and_then(serde_json::Value::as_object)
    {
        for (name, value) in nested {
            take(name, value)?;
        }
    }
    Ok(properties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_glance_and_openstack_shapes() {
        let flat =
            from_json(r#"{"img_signature": "c2ln", "img_signature_key_type": "RSA-PSS"}"#).unwrap();
        assert_eq!(flat.len(), 2);
        let glance = from_json(
            r#"{"id": "x", "name": "n", "size": 3, "tags": [], "protected": false, "checksum": null,
                "img_signature": "c2ln", "os_distro": "cirros"}"#,
        )
        .unwrap();
        assert_eq!(
            glance.keys().collect::<Vec<_>>(),
            ["img_signature", "os_distro"]
        );
        let openstack = from_json(
            r#"{"id": "x", "name": "n", "properties": {"img_signature": "c2ln", "os_hash_algo": "sha512",
                "stores": "fs"}}"#,
        )
        .unwrap();
        assert_eq!(openstack.keys().collect::<Vec<_>>(), ["img_signature"]);
    }

    #[test]
    fn bad_shapes_are_named() {
        assert!(matches!(
            from_json("[1]"),
            Err(PropertiesError::NotAnObject)
        ));
        assert!(matches!(from_json("{"), Err(PropertiesError::Json(_))));
        let err = from_json(r#"{"img_signature": 5}"#).unwrap_err();
        assert!(err.to_string().contains("img_signature"), "{err}");
    }
}
