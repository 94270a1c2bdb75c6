//! The two input files `verify` (and `ingest`) read next to an image: a
//! properties JSON file and a trusted-certificate list.
//!
//! The properties file is either a flat JSON object of image properties or
//! the output of `glance image-show --os-image-api-version 2 -f json` /
//! `openstack image show -f json`, where custom properties may sit under a
//! `properties` object. This module must not interpret the properties
//! (that is [`super::SignatureParams`]) nor read files itself.

use crate::image::Properties;

/// Why a properties file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PropertiesFileError {
    /// Not JSON.
    #[error("the properties file is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// JSON, but not an object.
    #[error("the properties file must hold a JSON object of image properties, found {0}")]
    NotAnObject(&'static str),
    /// An `img_signature*` property that is not a string.
    #[error("image property {name} must be a JSON string, found {found}")]
    NotAString {
        /// The property.
        name: String,
        /// What was there.
        found: &'static str,
    },
    /// A top-level `properties` that is not an object: older `openstack image
    /// show` releases print the properties as one text, from which the
    /// signature properties would silently go missing.
    #[error(
        "the properties file's \"properties\" must be a JSON object of image properties, found {0}; give the properties as an object (openstack image show -f json from a current client prints one)"
    )]
    NestedNotAnObject(&'static str),
    /// A property given twice with different values (top level and under `properties`).
    #[error(
        "image property {name} appears both at the top level and under \"properties\" with different values"
    )]
    Conflict {
        /// The property.
        name: String,
    },
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Collects string properties of `object` into `out`; non-string values
/// are ignored except for `img_signature*`, which must be strings.
fn collect(
    object: &serde_json::Map<String, serde_json::Value>,
    out: &mut Properties,
) -> Result<(), PropertiesFileError> {
    for (name, value) in object {
        if name == "properties" {
            // The nested shape, handled by the caller; never a property itself.
            match value {
                serde_json::Value::Object(_) | serde_json::Value::Null => continue,
                other => return Err(PropertiesFileError::NestedNotAnObject(json_type(other))),
            }
        }
        let text = match value {
            serde_json::Value::String(text) => text,
            other if name.starts_with("img_signature") => {
                return Err(PropertiesFileError::NotAString {
                    name: name.clone(),
                    found: json_type(other),
                });
            }
            _ => continue,
        };
        if out.get(name).is_some_and(|existing| existing != text) {
            return Err(PropertiesFileError::Conflict { name: name.clone() });
        }
        out.insert(name.clone(), text.clone());
    }
    Ok(())
}

/// Parses a properties file: a flat object, or `image show -f json` output
/// (properties at the top level and/or under a `properties` object).
///
/// Fails when the text is not a JSON object, when a top-level `properties`
/// is neither an object nor null, when an `img_signature*` value is not a
/// string, or when a property appears at both levels with different values.
/// Other non-string values (sizes, tags, null) are ignored.
pub fn properties_from_json(text: &str) -> Result<Properties, PropertiesFileError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(PropertiesFileError::Json)?;
    let serde_json::Value::Object(object) = value else {
        return Err(PropertiesFileError::NotAnObject(json_type(&value)));
    };
    let mut properties = Properties::new();
    collect(&object, &mut properties)?;
    if let Some(serde_json::Value::Object(nested)) = object.get("properties") {
        collect(nested, &mut properties)?;
    }
    Ok(properties)
}

/// Parses a trusted-certificate list: one id per line; blank lines and
/// lines starting with `#` are skipped, surrounding whitespace trimmed.
/// An empty list means "validate the chain, nothing trusted" (which rejects).
pub fn trusted_ids_from_text(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_nested_shapes() {
        let flat = properties_from_json(r#"{"img_signature": "QUJD", "min_ram": 0}"#).unwrap();
        assert_eq!(flat.get("img_signature").map(String::as_str), Some("QUJD"));
        assert!(!flat.contains_key("min_ram"));
        let nested = properties_from_json(
            r#"{"id": "x", "size": 5, "tags": [], "properties": {"img_signature": "QUJD", "os_hash_algo": "sha512"}}"#,
        )
        .unwrap();
        assert_eq!(
            nested.get("img_signature").map(String::as_str),
            Some("QUJD")
        );
        assert_eq!(nested.get("id").map(String::as_str), Some("x"));
    }

    #[test]
    fn odd_inputs_are_errors() {
        assert!(matches!(
            properties_from_json("garbage"),
            Err(PropertiesFileError::Json(_))
        ));
        assert!(matches!(
            properties_from_json(""),
            Err(PropertiesFileError::Json(_))
        ));
        assert!(matches!(
            properties_from_json("[1]"),
            Err(PropertiesFileError::NotAnObject("an array"))
        ));
        assert!(matches!(
            properties_from_json(r#"{"img_signature": 5}"#),
            Err(PropertiesFileError::NotAString { .. })
        ));
        assert!(matches!(
            properties_from_json(r#"{"a": "1", "properties": {"a": "2"}}"#),
            Err(PropertiesFileError::Conflict { .. })
        ));
    }

    #[test]
    fn properties_as_text_is_an_error_not_an_unsigned_image() {
        // Older openstack clients print `properties` as one string; taking
        // it as a property named "properties" lost the signature silently.
        let old_client = r#"{"id": "x", "properties": "img_signature='QUJD', img_signature_hash_method='SHA-256'"}"#;
        let err = properties_from_json(old_client).unwrap_err();
        assert!(
            matches!(err, PropertiesFileError::NestedNotAnObject("a string")),
            "{err:?}"
        );
        assert!(err.to_string().contains("\"properties\""), "{err}");
        for other in [r#"{"properties": ["a"]}"#, r#"{"properties": 5}"#] {
            assert!(properties_from_json(other).is_err(), "{other}");
        }
        // Null and an object are fine, and neither becomes a property.
        let null = properties_from_json(r#"{"a": "1", "properties": null}"#).unwrap();
        assert_eq!(null.keys().collect::<Vec<_>>(), ["a"]);
        let nested = properties_from_json(r#"{"properties": {"b": "2"}}"#).unwrap();
        assert_eq!(nested.keys().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn trusted_lists() {
        assert!(trusted_ids_from_text("").is_empty());
        assert!(trusted_ids_from_text("\n  \n# comment\n").is_empty());
        assert_eq!(trusted_ids_from_text(" a \r\nb\n"), vec!["a", "b"]);
    }
}
