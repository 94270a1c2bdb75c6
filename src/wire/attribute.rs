//! Glance's image attributes one at a time: which names a request may set
//! (read-only, reserved, base attribute or custom property), the typed value
//! of each ([`Attribute`]), and the image schema's limits (255 characters,
//! UUIDs, enumerations).
//!
//! Create bodies and patch operations are parsed through [`attribute`], and
//! requests built without JSON (the CLI, library callers) are re-checked
//! with [`check_attribute`] and [`check_property`], so every path that sets
//! an attribute or a property applies the same rules. This module must not
//! decide anything that depends on the stored image (whether a property
//! exists, the image's status, who asks): the application layer does.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::image::{ContainerFormat, DiskFormat, ImageId, Visibility};

use super::{BASE_ATTRIBUTES, Error};

/// Attributes a request may not set (Glance: 403 "Attribute 'x' is read-only.").
const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "created_at",
    "updated_at",
    "direct_url",
    "self",
    "file",
    "schema",
    "stores",
];

/// Names a request may not use at all (Glance: 403 "Attribute 'x' is reserved.").
const RESERVED: &[&str] = &[
    "location",
    "locations",
    "deleted",
    "deleted_at",
    "is_public",
];

/// Glance's reserved property namespace (`os_glance_import_task`, …).
const RESERVED_PREFIX: &str = "os_glance";

/// Longest name, owner, tag or property name Glance stores (its columns are
/// `VARCHAR(255)`; the schema says `maxLength: 255` for name and owner).
pub const MAX_STRING: usize = 255;

/// Longest property value, in bytes. The image schema sets no limit, but
/// Glance stores values in a `TEXT` column, 65,535 bytes on MySQL (its
/// reference database), where a longer value fails with a database error
/// (500) or is cut; refusing it up front says which property is too long.
/// An `img_signature` of an RSA-4096 key is 684 characters.
pub const MAX_PROPERTY_VALUE: usize = 65_535;

/// One image attribute or custom property with a value of the right type,
/// as a create body or a patch operation sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `name` (null: none).
    Name(Option<String>),
    /// `disk_format` (null: unset).
    DiskFormat(Option<DiskFormat>),
    /// `container_format` (null: unset).
    ContainerFormat(Option<ContainerFormat>),
    /// `visibility`.
    Visibility(Visibility),
    /// `protected`.
    Protected(bool),
    /// `os_hidden`.
    OsHidden(bool),
    /// `min_disk` (GiB).
    MinDisk(u32),
    /// `min_ram` (MiB).
    MinRam(u32),
    /// `owner` (null: none); only administrators may change it.
    Owner(Option<String>),
    /// `tags`, as a whole set.
    Tags(BTreeSet<String>),
    /// A custom (additional) property; Glance's schema makes every one a string.
    Property {
        /// The property name.
        name: String,
        /// Its value.
        value: String,
    },
}

impl Attribute {
    /// The attribute's (or property's) name, as Glance spells it.
    pub fn name(&self) -> &str {
        match self {
            Attribute::Name(_) => "name",
            Attribute::DiskFormat(_) => "disk_format",
            Attribute::ContainerFormat(_) => "container_format",
            Attribute::Visibility(_) => "visibility",
            Attribute::Protected(_) => "protected",
            Attribute::OsHidden(_) => "os_hidden",
            Attribute::MinDisk(_) => "min_disk",
            Attribute::MinRam(_) => "min_ram",
            Attribute::Owner(_) => "owner",
            Attribute::Tags(_) => "tags",
            Attribute::Property { name, .. } => name,
        }
    }
}

/// Refuses the names no request may set: read-only attributes (`status`,
/// `checksum`, `size`, …) and reserved names (`locations`, `deleted`,
/// Glance's `os_glance*` namespace).
///
/// Fails with [`Error::ReadOnly`] or [`Error::Reserved`] naming the attribute.
pub fn check_name(name: &str) -> Result<(), Error> {
    if READ_ONLY.contains(&name) {
        return Err(Error::ReadOnly {
            attribute: name.to_owned(),
        });
    }
    if RESERVED.contains(&name) || name.starts_with(RESERVED_PREFIX) {
        return Err(Error::Reserved {
            attribute: name.to_owned(),
        });
    }
    Ok(())
}

/// Checks one custom property: its name may be set ([`check_name`]) and is
/// not a base attribute (a `status` or `owner` property would shadow the
/// real attribute in clients), both fit Glance's columns, and `kernel_id` /
/// `ramdisk_id` are UUIDs as the image schema says.
///
/// Fails with [`Error::ReadOnly`], [`Error::Reserved`],
/// [`Error::NotAProperty`] or [`Error::Schema`], naming the property.
pub fn check_property(name: &str, value: &str) -> Result<(), Error> {
    check_name(name)?;
    if BASE_ATTRIBUTES.contains(&name) {
        return Err(Error::NotAProperty {
            attribute: name.to_owned(),
        });
    }
    if name.is_empty() {
        return Err(schema(name, "a property name must not be empty"));
    }
    if name.chars().count() > MAX_STRING {
        return Err(schema(
            name,
            format!("property names are at most {MAX_STRING} characters"),
        ));
    }
    if value.len() > MAX_PROPERTY_VALUE {
        return Err(schema(
            name,
            format!(
                "the value is {} bytes, longer than the {MAX_PROPERTY_VALUE} bytes Glance stores",
                value.len()
            ),
        ));
    }
    if matches!(name, "kernel_id" | "ramdisk_id") && value.parse::<ImageId>().is_err() {
        return Err(schema(name, format!("{value:?} is not a UUID")));
    }
    Ok(())
}

/// Checks a string attribute (`name`, `owner`) against the schema's 255 characters.
///
/// Fails with [`Error::Schema`] naming the attribute.
pub fn check_string(name: &str, value: &str) -> Result<(), Error> {
    if value.chars().count() > MAX_STRING {
        return Err(schema(
            name,
            format!("is longer than {MAX_STRING} characters"),
        ));
    }
    Ok(())
}

/// Checks one tag against the 255 characters Glance stores.
///
/// Fails with [`Error::Schema`] naming `tags` and the tag.
pub fn check_tag(tag: &str) -> Result<(), Error> {
    if tag.chars().count() > MAX_STRING {
        return Err(schema(
            "tags",
            format!("tag {tag:?} is longer than {MAX_STRING} characters"),
        ));
    }
    Ok(())
}

/// Checks a typed attribute as [`attribute`] checks a JSON one, for
/// attributes built without JSON.
///
/// Fails as [`check_property`], [`check_string`] and [`check_tag`] do.
pub fn check_attribute(attribute: &Attribute) -> Result<(), Error> {
    match attribute {
        Attribute::Name(Some(text)) | Attribute::Owner(Some(text)) => {
            check_string(attribute.name(), text)
        }
        Attribute::Tags(tags) => tags.iter().try_for_each(|tag| check_tag(tag)),
        Attribute::Property { name, value } => check_property(name, value),
        Attribute::Name(None)
        | Attribute::Owner(None)
        | Attribute::DiskFormat(_)
        | Attribute::ContainerFormat(_)
        | Attribute::Visibility(_)
        | Attribute::Protected(_)
        | Attribute::OsHidden(_)
        | Attribute::MinDisk(_)
        | Attribute::MinRam(_) => Ok(()),
    }
}

/// Parses the JSON `value` of attribute `name` as Glance's image schema
/// types it. `Ok(None)` is a null `kernel_id` / `ramdisk_id`, which the
/// schema allows and which sets nothing.
///
/// Fails with [`Error::ReadOnly`] or [`Error::Reserved`] for names no
/// request may set, and [`Error::Schema`] for a value of the wrong type,
/// out of range, or too long.
pub fn attribute(name: &str, value: &Value) -> Result<Option<Attribute>, Error> {
    check_name(name)?;
    let attribute = match name {
        "name" => Attribute::Name(nullable_string(name, value)?),
        "owner" => Attribute::Owner(nullable_string(name, value)?),
        "disk_format" => Attribute::DiskFormat(
            nullable_string(name, value)?
                .map(|text| text.parse().map_err(|err| schema(name, err)))
                .transpose()?,
        ),
        "container_format" => Attribute::ContainerFormat(
            nullable_string(name, value)?
                .map(|text| text.parse().map_err(|err| schema(name, err)))
                .transpose()?,
        ),
        "visibility" => {
            let text = value
                .as_str()
                .ok_or_else(|| schema(name, format!("{value} is not of type 'string'")))?;
            Attribute::Visibility(text.parse().map_err(|err| schema(name, err))?)
        }
        "protected" => Attribute::Protected(boolean(name, value)?),
        "os_hidden" => Attribute::OsHidden(boolean(name, value)?),
        "min_disk" => Attribute::MinDisk(small_integer(name, value)?),
        "min_ram" => Attribute::MinRam(small_integer(name, value)?),
        "tags" => Attribute::Tags(tags(value)?),
        "kernel_id" | "ramdisk_id" if value.is_null() => return Ok(None),
        _ => {
            let text = value
                .as_str()
                .ok_or_else(|| schema(name, format!("{value} is not of type 'string'")))?;
            check_property(name, text)?;
            Attribute::Property {
                name: name.to_owned(),
                value: text.to_owned(),
            }
        }
    };
    Ok(Some(attribute))
}

fn schema(attribute: &str, reason: impl ToString) -> Error {
    Error::Schema {
        attribute: attribute.to_owned(),
        reason: reason.to_string(),
    }
}

fn nullable_string(key: &str, value: &Value) -> Result<Option<String>, Error> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => {
            check_string(key, text)?;
            Ok(Some(text.clone()))
        }
        other => Err(schema(
            key,
            format!("{other} is not of type 'null', 'string'"),
        )),
    }
}

fn boolean(key: &str, value: &Value) -> Result<bool, Error> {
    value
        .as_bool()
        .ok_or_else(|| schema(key, format!("{value} is not of type 'boolean'")))
}

fn small_integer(key: &str, value: &Value) -> Result<u32, Error> {
    let Some(number) = value.as_i64() else {
        return Err(schema(key, format!("{value} is not of type 'integer'")));
    };
    u32::try_from(number)
        .map_err(|_| schema(key, format!("{number} is not between 0 and {}", u32::MAX)))
}

fn tags(value: &Value) -> Result<BTreeSet<String>, Error> {
    let Value::Array(items) = value else {
        return Err(schema("tags", format!("{value} is not of type 'array'")));
    };
    let mut tags = BTreeSet::new();
    for item in items {
        let Some(tag) = item.as_str() else {
            return Err(schema("tags", format!("{item} is not of type 'string'")));
        };
        check_tag(tag)?;
        tags.insert(tag.to_owned());
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Ok(kind)` of the attribute parsed, or `Err(kind)` of the error.
    fn check(name: &str, value: Value, expect: Result<&str, &str>) {
        let got = attribute(name, &value);
        match (&got, expect) {
            (Ok(Some(attribute)), Ok(expected)) => {
                assert_eq!(attribute.name(), name);
                assert!(
                    format!("{attribute:?}").starts_with(expected),
                    "{name}={value}: {attribute:?}"
                );
                assert!(check_attribute(attribute).is_ok());
            }
            (Ok(None), Ok("none")) => {}
            (Err(err), Err(kind)) => {
                assert_eq!(err.kind(), kind, "{name}={value}: {err}");
                assert!(err.to_string().contains(name), "{err} must name {name}");
            }
            (got, expect) => panic!("{name}={value}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn attributes_are_typed_and_limited_as_the_image_schema_says() {
        use serde_json::json;
        let long = "x".repeat(MAX_STRING + 1);
        check("name", json!("n"), Ok("Name(Some"));
        check("name", json!(null), Ok("Name(None)"));
        check("name", json!(long), Err("schema"));
        check("name", json!("é".repeat(MAX_STRING)), Ok("Name(Some"));
        check("owner", json!(long), Err("schema"));
        check("min_disk", json!(3), Ok("MinDisk(3)"));
        check("min_disk", json!("3"), Err("schema"));
        check("min_ram", json!(-1), Err("schema"));
        check("protected", json!(true), Ok("Protected(true)"));
        check("os_hidden", json!(1), Err("schema"));
        check("visibility", json!("public"), Ok("Visibility(Public)"));
        check("visibility", json!("everyone"), Err("schema"));
        check("disk_format", json!("qcow3"), Err("schema"));
        check("container_format", json!(null), Ok("ContainerFormat(None)"));
        check("tags", json!(["a", "b"]), Ok("Tags("));
        check("tags", json!([long]), Err("schema"));
        check("tags", json!("a"), Err("schema"));
        check("kernel_id", json!(null), Ok("none"));
        check("kernel_id", json!("nope"), Err("schema"));
        check(
            "ramdisk_id",
            json!("6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55"),
            Ok("Property"),
        );
        check("os_distro", json!("cirros"), Ok("Property"));
        check("os_distro", json!(7), Err("schema"));
        check(
            "os_distro",
            json!("v".repeat(MAX_PROPERTY_VALUE)),
            Ok("Property"),
        );
        check(
            "os_distro",
            json!("v".repeat(MAX_PROPERTY_VALUE + 1)),
            Err("schema"),
        );
        check(&"k".repeat(MAX_STRING + 1), json!("v"), Err("schema"));
        for read_only in READ_ONLY {
            check(read_only, json!("x"), Err("read_only"));
        }
        for reserved in [
            "location",
            "locations",
            "deleted",
            "deleted_at",
            "is_public",
            "os_glance_import_task",
            "os_glance",
        ] {
            check(reserved, json!("x"), Err("reserved"));
        }
    }

    #[test]
    fn properties_set_without_json_get_the_same_rules() {
        let cases: &[(&str, &str, Result<(), &str>)] = &[
            ("os_distro", "cirros", Ok(())),
            ("img_signature", "c2ln", Ok(())),
            ("status", "active", Err("read_only")),
            ("checksum", "deadbeef", Err("read_only")),
            ("os_hash_value", "x", Err("read_only")),
            ("owner", "p2", Err("base_attribute")),
            ("visibility", "public", Err("base_attribute")),
            ("name", "x", Err("base_attribute")),
            ("min_disk", "3", Err("base_attribute")),
            ("tags", "a", Err("base_attribute")),
            ("os_glance_staging_store", "x", Err("reserved")),
            ("deleted", "false", Err("reserved")),
            ("", "x", Err("schema")),
            ("kernel_id", "nope", Err("schema")),
        ];
        for (name, value, expect) in cases {
            let got = check_property(name, value).map_err(|err| err.kind());
            assert_eq!(got, *expect, "{name}={value}");
        }
        let long_name = "k".repeat(MAX_STRING + 1);
        assert_eq!(
            check_property(&long_name, "v").unwrap_err().kind(),
            "schema"
        );
        assert!(check_property(&"k".repeat(MAX_STRING), "v").is_ok());
        let err = check_property("os_glance_x", "v").unwrap_err();
        assert_eq!(err.to_string(), r#"attribute "os_glance_x" is reserved"#);
    }
}
