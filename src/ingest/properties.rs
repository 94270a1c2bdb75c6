//! Image properties from a JSON file, in the shapes `portcullis verify
//! --properties` accepts: a flat object of string properties, or the output
//! of `glance image-show -f json` (custom properties at the top level) or
//! `openstack image show -f json` (custom properties under `properties`).
//!
//! Glance's base attributes (`id`, `name`, `status`, `checksum`, …) are not
//! properties and are skipped, so the output of a show command can be fed
//! back as is. This module must not decide anything about signatures.

use crate::image::Properties;
use crate::wire::BASE_ATTRIBUTES;

/// Reads image properties from `text` with [`crate::verify::properties_from_json`]
/// (the exact shapes and errors of `verify --properties`), then drops
/// Glance's base attributes, which are not properties.
///
/// Fails as `properties_from_json` does: invalid JSON, not an object, a key
/// given twice in one object, an `img_signature*` value that is not a
/// string, or a property given at both levels with different values.
pub fn from_json(text: &str) -> Result<Properties, crate::verify::PropertiesFileError> {
    let mut properties = crate::verify::properties_from_json(text)?;
    properties.retain(|name, _| !BASE_ATTRIBUTES.contains(&name.as_str()));
    Ok(properties)
}

/// Reads a properties file with [`crate::verify::read_properties_file`]
/// (bounded to [`crate::verify::MAX_PROPERTIES_FILE_BYTES`]), then drops
/// Glance's base attributes, as [`from_json`].
///
/// Fails as `read_properties_file` does: unreadable, over the size cap, or
/// any of [`from_json`]'s reasons.
pub fn from_file(path: &std::path::Path) -> Result<Properties, crate::verify::PropertiesFileError> {
    let mut properties = crate::verify::read_properties_file(path)?;
    properties.retain(|name, _| !BASE_ATTRIBUTES.contains(&name.as_str()));
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
        assert!(from_json("[1]").is_err());
        assert!(from_json("{").is_err());
        let err = from_json(r#"{"img_signature": 5}"#).unwrap_err();
        assert!(err.to_string().contains("img_signature"), "{err}");
    }
}
