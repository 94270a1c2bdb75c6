//! The two input files `verify` (and `ingest`) read next to an image: a
//! properties JSON file and a trusted-certificate list.
//!
//! The properties file is either a flat JSON object of image properties or
//! the output of `glance image-show --os-image-api-version 2 -f json` /
//! `openstack image show -f json`, where custom properties may sit under a
//! `properties` object. It is read only through [`read_properties_file`],
//! which bounds the read, and parsed so that a key given twice anywhere is
//! an error (serde_json keeps the last one silently, which would make the
//! `img_signature*` values that are verified a matter of key order). This
//! module must not interpret the properties (that is
//! [`super::SignatureParams`]).

use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::image::Properties;

/// The largest properties file read, in bytes (1 MiB).
///
/// Glance allows 128 custom properties per image (`image_property_quota`),
/// names of at most 255 bytes, and the longest value Glance itself writes
/// into one of them is an RSA-4096 `img_signature` (684 base64 characters):
/// the four signature properties take under 1 KiB (testdata/sample's file is
/// 527 bytes), a whole `image show -f json` document a few KiB, and 1 MiB
/// holds 128 properties of 8 KiB each. The cap bounds
/// the memory a hostile or mistaken file can take: a 150 MB file used to
/// take 470 MB, about three times its size, before it was refused or used.
pub const MAX_PROPERTIES_FILE_BYTES: u64 = 1 << 20;

/// Why a properties file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PropertiesFileError {
    /// The file cannot be opened or read.
    #[error("the properties file cannot be read")]
    Read(#[source] std::io::Error),
    /// The file is larger than [`MAX_PROPERTIES_FILE_BYTES`].
    #[error(
        "the properties file is {}, more than the {cap}-byte limit for properties files; give only the image's properties (glance image-show -f json output is a few KiB)",
        describe_size(*.size, *.cap)
    )]
    TooLarge {
        /// The file's size, when it is a regular file.
        size: Option<u64>,
        /// The limit.
        cap: u64,
    },
    /// Not JSON.
    #[error("the properties file is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// JSON, but not an object.
    #[error("the properties file must hold a JSON object of image properties, found {0}")]
    NotAnObject(&'static str),
    /// A key appears twice in one object (serde_json would keep the last).
    #[error(
        "key {key:?} appears more than once in {}; a property given twice is ambiguous (which value would be verified?): keep one",
        .location
    )]
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Where: `the top-level object`, `"properties"`, or a JSON path.
        location: String,
    },
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

fn describe_size(size: Option<u64>, cap: u64) -> String {
    match size {
        Some(size) => format!("{size} bytes"),
        None => format!("more than {cap} bytes"),
    }
}

/// A JSON value that keeps every key of an object in order, duplicates
/// included, so that duplicates can be refused (serde_json's `Value` keeps
/// only the last). Nesting is bounded by serde_json's recursion limit.
#[derive(Debug)]
enum Json {
    Null,
    Bool,
    Number,
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool => "a boolean",
            Json::Number => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// The first key given twice in one object, anywhere in the document:
    /// the key and where it is.
    fn first_duplicate(&self, location: &str) -> Option<(String, String)> {
        match self {
            Json::Null | Json::Bool | Json::Number | Json::String(_) => None,
            Json::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(index, item)| item.first_duplicate(&format!("{location}[{index}]"))),
            Json::Object(members) => {
                let mut seen = std::collections::HashSet::new();
                if let Some((key, _)) = members.iter().find(|(key, _)| !seen.insert(key.as_str())) {
                    return Some((key.clone(), location.to_owned()));
                }
                members.iter().find_map(|(key, value)| {
                    let inner = if location.is_empty() {
                        format!("{key:?}")
                    } else {
                        format!("{location}.{key:?}")
                    };
                    value.first_duplicate(&inner)
                })
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Json, E> {
        Ok(Json::Bool)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Json, E> {
        Ok(Json::Number)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Json, E> {
        Ok(Json::Number)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Json, E> {
        Ok(Json::Number)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Json, E> {
        Ok(Json::String(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Json, E> {
        Ok(Json::String(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry::<String, Json>()? {
            members.push(member);
        }
        Ok(Json::Object(members))
    }
}

/// Collects string properties of `object` into `out`; non-string values
/// are ignored except for `img_signature*`, which must be strings.
fn collect(object: &[(String, Json)], out: &mut Properties) -> Result<(), PropertiesFileError> {
    for (name, value) in object {
        if name == "properties" {
            // The nested shape, handled by the caller; never a property itself.
            match value {
                Json::Object(_) | Json::Null => continue,
                other => return Err(PropertiesFileError::NestedNotAnObject(other.type_name())),
            }
        }
        let text = match value {
            Json::String(text) => text,
            other if name.starts_with("img_signature") => {
                return Err(PropertiesFileError::NotAString {
                    name: name.clone(),
                    found: other.type_name(),
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

/// Reads and parses a properties file with [`properties_from_json`],
/// reading at most [`MAX_PROPERTIES_FILE_BYTES`] + 1 bytes.
///
/// Fails with [`PropertiesFileError::Read`] when the file cannot be opened
/// or read, [`PropertiesFileError::TooLarge`] when it is over the cap, and
/// as [`properties_from_json`] does otherwise.
pub fn read_properties_file(path: &Path) -> Result<Properties, PropertiesFileError> {
    let file = std::fs::File::open(path).map_err(PropertiesFileError::Read)?;
    let size = file
        .metadata()
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map(|metadata| metadata.len());
    let mut bytes = Vec::new();
    file.take(MAX_PROPERTIES_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(PropertiesFileError::Read)?;
    if bytes.len() as u64 > MAX_PROPERTIES_FILE_BYTES {
        return Err(PropertiesFileError::TooLarge {
            size,
            cap: MAX_PROPERTIES_FILE_BYTES,
        });
    }
    parse(&bytes)
}

/// Parses a properties file: a flat object, or `image show -f json` output
/// (properties at the top level and/or under a `properties` object).
///
/// Fails when the text is not a JSON object, when a key appears twice in
/// any object, when a top-level `properties` is neither an object nor null,
/// when an `img_signature*` value is not a string, or when a property
/// appears at both levels with different values. Other non-string values
/// (sizes, tags, null) are ignored.
pub fn properties_from_json(text: &str) -> Result<Properties, PropertiesFileError> {
    parse(text.as_bytes())
}

fn parse(bytes: &[u8]) -> Result<Properties, PropertiesFileError> {
    let value: Json = serde_json::from_slice(bytes).map_err(PropertiesFileError::Json)?;
    if let Some((key, location)) = value.first_duplicate("") {
        let location = if location.is_empty() {
            "the top-level object".to_owned()
        } else {
            location
        };
        return Err(PropertiesFileError::DuplicateKey { key, location });
    }
    let Json::Object(object) = value else {
        return Err(PropertiesFileError::NotAnObject(value.type_name()));
    };
    let mut properties = Properties::new();
    collect(&object, &mut properties)?;
    if let Some((_, Json::Object(nested))) = object.iter().find(|(name, _)| name == "properties") {
        collect(nested, &mut properties)?;
    }
    Ok(properties)
}

/// Parses a trusted-certificate list: one id per line; blank lines and
/// lines starting with `#` are skipped, surrounding whitespace trimmed.
/// An empty list means "validate the chain, nothing trusted" (which rejects).
/// Repeated ids are kept here: chain validation compares the parsed ids
/// (different spellings of one UUID are one certificate) and drops repeats.
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
    fn a_key_given_twice_anywhere_is_refused() {
        // issue 8: serde_json kept the last img_signature silently.
        for (text, key, location) in [
            (
                r#"{"img_signature": "QUJD", "img_signature": "REVG"}"#,
                "img_signature",
                "the top-level object",
            ),
            (
                r#"{"properties": {"img_signature": "QUJD", "img_signature": "QUJD"}}"#,
                "img_signature",
                r#""properties""#,
            ),
            (r#"{"a": "1", "a": 2}"#, "a", "the top-level object"),
            (
                r#"{"locations": [{"url": "x", "url": "y"}]}"#,
                "url",
                r#""locations"[0]"#,
            ),
        ] {
            match properties_from_json(text) {
                Err(PropertiesFileError::DuplicateKey {
                    key: found,
                    location: at,
                }) => {
                    assert_eq!((found.as_str(), at.as_str()), (key, location), "{text}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        // The same key at two levels is not a duplicate (same value is fine).
        let both = properties_from_json(r#"{"a": "1", "properties": {"a": "1"}}"#).unwrap();
        assert_eq!(both.get("a").map(String::as_str), Some("1"));
    }

    #[test]
    fn files_over_the_cap_are_refused_without_reading_them_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("props.json");
        let mut text = String::from("{\"a\": \"");
        text.push_str(&"x".repeat(MAX_PROPERTIES_FILE_BYTES as usize));
        text.push_str("\"}");
        std::fs::write(&path, &text).unwrap();
        let err = read_properties_file(&path).unwrap_err();
        assert!(
            matches!(err, PropertiesFileError::TooLarge { size: Some(size), cap } if size == text.len() as u64 && cap == MAX_PROPERTIES_FILE_BYTES),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&format!("{} bytes", text.len())),
            "{err}"
        );
        // Exactly at the cap is read.
        let mut fits = String::from("{\"a\": \"");
        fits.push_str(&"x".repeat(MAX_PROPERTIES_FILE_BYTES as usize - 9));
        fits.push_str("\"}");
        assert_eq!(fits.len() as u64, MAX_PROPERTIES_FILE_BYTES);
        std::fs::write(&path, &fits).unwrap();
        assert!(read_properties_file(&path).is_ok());
        // A directory or a missing file is a read error.
        assert!(matches!(
            read_properties_file(dir.path()),
            Err(PropertiesFileError::Read(_))
        ));
        assert!(matches!(
            read_properties_file(&dir.path().join("missing")),
            Err(PropertiesFileError::Read(_))
        ));
    }

    #[test]
    fn trusted_lists() {
        assert!(trusted_ids_from_text("").is_empty());
        assert!(trusted_ids_from_text("\n  \n# comment\n").is_empty());
        assert_eq!(trusted_ids_from_text(" a \r\nb\n"), vec!["a", "b"]);
    }
}
