//! Glance's PATCH body: `application/openstack-images-v2.1-json-patch`, a
//! JSON list of `{"op": "add"|"replace"|"remove", "path": "/<name>",
//! "value": …}` (glance-wire.md §7), parsed into typed [`PatchOp`]s.
//!
//! glanceclient sends `add` for properties the image lacks and `replace`
//! for the others; openstackclient sends `add` for everything, attributes
//! included, and `tags` as one whole list: both parse the same way here.
//! As Glance's request deserializer: the JSON-pointer syntax (`~0`, `~1`)
//! and depth, read-only and reserved names (also for `remove`), and every
//! value against the image schema are checked here. Whether a property
//! exists, whether an attribute may be removed, and who may change what
//! depend on the stored image and the caller: the application applies
//! those rules (`app::App::update`). This module must not do IO.

use serde_json::Value;

use super::Error;
use super::attribute::{Attribute, attribute, check_name};

/// The media type of a PATCH body (Glance also accepts the v2.0 variant,
/// which uses another operation syntax).
pub const PATCH_MEDIA_TYPE: &str = "application/openstack-images-v2.1-json-patch";

/// One operation of a PATCH body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchOp {
    /// `add`: set an attribute, or a property whether it exists or not.
    Add(Attribute),
    /// `replace`: set an attribute, or a property that must already exist.
    Replace(Attribute),
    /// `remove`: delete a custom property, which must exist (base
    /// attributes cannot be removed).
    Remove(String),
}

impl PatchOp {
    /// The attribute or property the operation changes.
    pub fn name(&self) -> &str {
        match self {
            PatchOp::Add(attribute) | PatchOp::Replace(attribute) => attribute.name(),
            PatchOp::Remove(name) => name,
        }
    }
}

/// What is wrong with one operation object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationProblem {
    /// The list item is not a JSON object.
    NotAnObject,
    /// A required key (`op`, `path`, `value`) is missing or not a string.
    Missing(&'static str),
    /// `op` is not add, remove or replace.
    UnknownOp(String),
    /// A v2.0 (draft-04) operation without exactly one of the members
    /// `add`, `remove`, `replace` (whose value is the path).
    NotOneOperation,
}

impl std::fmt::Display for OperationProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OperationProblem::NotAnObject => f.write_str("must be a JSON object"),
            OperationProblem::Missing(key) => write!(f, "has no {key:?}"),
            OperationProblem::UnknownOp(op) => write!(
                f,
                "op {op:?} is not one of add, remove, replace (test, move and copy are not supported)"
            ),
            OperationProblem::NotOneOperation => f.write_str(
                "must have exactly one member named add, remove or replace (v2.0 json-patch)",
            ),
        }
    }
}

impl OperationProblem {
    /// Glance's message for the same problem.
    pub(super) fn glance_message(&self) -> String {
        match self {
            OperationProblem::NotAnObject => "Operations must be JSON objects.".to_owned(),
            OperationProblem::Missing(key) => {
                format!("Unable to find '{key}' in JSON Schema change")
            }
            OperationProblem::UnknownOp(op) => format!(
                "Invalid operation: `{op}`. It must be one of the following: add, remove, replace."
            ),
            OperationProblem::NotOneOperation => "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".".to_owned(),
        }
    }
}

/// What is wrong with a `path` (a JSON pointer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerProblem {
    /// It does not start with `/`.
    NoLeadingSlash,
    /// Two `/` in a row.
    AdjacentSlashes,
    /// It ends with `/`.
    TrailingSlash,
    /// A `~` not followed by `0` or `1`.
    BadEscape,
    /// Deeper than one level, or empty: images have no nested attributes
    /// that can be patched (`/locations/N` is not supported).
    NotAnAttribute,
}

impl PointerProblem {
    fn text(self) -> &'static str {
        match self {
            PointerProblem::NoLeadingSlash => "does not start with \"/\"",
            PointerProblem::AdjacentSlashes => "contains adjacent \"/\"",
            PointerProblem::TrailingSlash => "ends with \"/\"",
            PointerProblem::BadEscape => "contains \"~\" not part of an escape (~0 or ~1)",
            PointerProblem::NotAnAttribute => {
                "does not name one attribute or property (use /name, /tags, /<property>)"
            }
        }
    }

    /// Glance's message for the same problem.
    pub(super) fn glance_message(self, pointer: &str) -> String {
        match self {
            PointerProblem::NoLeadingSlash => {
                format!("Pointer `{pointer}` does not start with \"/\".")
            }
            PointerProblem::AdjacentSlashes => {
                format!("Pointer `{pointer}` contains adjacent \"/\".")
            }
            PointerProblem::TrailingSlash => format!("Pointer `{pointer}` end with \"/\"."),
            PointerProblem::BadEscape => {
                format!(
                    "Pointer `{pointer}` contains \"~\" not part of a recognized escape sequence."
                )
            }
            PointerProblem::NotAnAttribute => {
                format!("Invalid JSON pointer for this resource: '{pointer}'")
            }
        }
    }
}

impl std::fmt::Display for PointerProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

/// Parses a PATCH body (`application/openstack-images-v2.1-json-patch`).
///
/// Fails on malformed JSON, a body that is not a list, an operation that is
/// not an object or lacks `op`, `path` or (for add and replace) `value`, an
/// unknown `op`, a bad or nested JSON pointer, a read-only or reserved name
/// (whatever the op), and a value the image schema refuses; the first
/// problem in list order wins, as in Glance.
pub fn parse_patch(body: &[u8]) -> Result<Vec<PatchOp>, Error> {
    let value: Value = serde_json::from_slice(body).map_err(Error::Json)?;
    parse_patch_value(&value)
}

/// Parses a PATCH body in Glance's older dialect
/// (`application/openstack-images-v2.0-json-patch`, JSON-patch draft 04):
/// each operation names its op by its one member, whose value is the path
/// (`{"replace": "/name", "value": "x"}`); otherwise as [`parse_patch`].
///
/// Fails as [`parse_patch`] does, and when an operation has none or several
/// of the members `add`, `remove`, `replace`.
pub fn parse_patch_v2_0(body: &[u8]) -> Result<Vec<PatchOp>, Error> {
    let value: Value = serde_json::from_slice(body).map_err(Error::Json)?;
    let Value::Array(items) = value else {
        return Err(Error::NotAList);
    };
    let mut rewritten = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let problem = |problem| Error::BadOperation { index, problem };
        let Value::Object(mut object) = item else {
            return Err(problem(OperationProblem::NotAnObject));
        };
        let ops: Vec<&str> = ["add", "remove", "replace"]
            .into_iter()
            .filter(|op| object.contains_key(*op))
            .collect();
        let [op] = ops.as_slice() else {
            return Err(problem(OperationProblem::NotOneOperation));
        };
        let op = (*op).to_owned();
        let path = object.remove(&op).unwrap_or(Value::Null);
        object.insert("op".to_owned(), Value::String(op));
        object.insert("path".to_owned(), path);
        rewritten.push(Value::Object(object));
    }
    parse_patch_value(&Value::Array(rewritten))
}

/// [`parse_patch`] on an already-parsed JSON value.
///
/// Fails as [`parse_patch`] does.
pub fn parse_patch_value(value: &Value) -> Result<Vec<PatchOp>, Error> {
    let Value::Array(items) = value else {
        return Err(Error::NotAList);
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_operation(index, item))
        .collect()
}

fn parse_operation(index: usize, item: &Value) -> Result<PatchOp, Error> {
    let problem = |problem| Error::BadOperation { index, problem };
    let Value::Object(object) = item else {
        return Err(problem(OperationProblem::NotAnObject));
    };
    let op = object
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| problem(OperationProblem::Missing("op")))?;
    if !matches!(op, "add" | "replace" | "remove") {
        return Err(problem(OperationProblem::UnknownOp(op.to_owned())));
    }
    let pointer = object
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| problem(OperationProblem::Missing("path")))?;
    let name = decode_pointer(pointer)?;
    // Read-only and reserved names are refused whatever the op (Glance:
    // `remove /status` is "Attribute 'status' is read-only.").
    check_name(&name)?;
    if op == "remove" {
        return Ok(PatchOp::Remove(name));
    }
    let value = object
        .get("value")
        .ok_or_else(|| problem(OperationProblem::Missing("value")))?;
    let attribute = attribute(&name, value)?.ok_or_else(|| Error::Schema {
        attribute: name.clone(),
        reason: "null cannot be set in a patch (remove the property instead)".to_owned(),
    })?;
    Ok(match op {
        "add" => PatchOp::Add(attribute),
        _ => PatchOp::Replace(attribute),
    })
}

/// The one attribute name a pointer names, with `~1` → `/` and `~0` → `~`
/// decoded in that order (RFC 6901), and each token's surrounding
/// whitespace stripped as Glance does.
///
/// Fails with [`Error::BadPointer`].
fn decode_pointer(pointer: &str) -> Result<String, Error> {
    let bad = |problem| Error::BadPointer {
        pointer: pointer.to_owned(),
        problem,
    };
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(bad(PointerProblem::NoLeadingSlash));
    };
    let tokens: Vec<&str> = rest.split('/').collect();
    if tokens.len() > 1
        && tokens[..tokens.len() - 1]
            .iter()
            .any(|t| t.trim().is_empty())
    {
        return Err(bad(PointerProblem::AdjacentSlashes));
    }
    if tokens.len() > 1 && tokens.last().is_some_and(|t| t.is_empty()) {
        return Err(bad(PointerProblem::TrailingSlash));
    }
    let mut chars = pointer.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(bad(PointerProblem::BadEscape));
        }
    }
    let [token] = tokens.as_slice() else {
        return Err(bad(PointerProblem::NotAnAttribute));
    };
    let name = token
        .replace("~1", "/")
        .replace("~0", "~")
        .trim()
        .to_owned();
    if name.is_empty() {
        return Err(bad(PointerProblem::NotAnAttribute));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Visibility;

    /// Parses `body`; `Ok(debug)` must be the ops' Debug text, `Err(kind)` the error kind.
    fn check(body: &str, expect: Result<&str, &str>) {
        match (parse_patch(body.as_bytes()), expect) {
            (Ok(ops), Ok(debug)) => assert_eq!(format!("{ops:?}"), debug, "{body}"),
            (Err(err), Err(kind)) => {
                assert_eq!(err.kind(), kind, "{body}: {err}");
                assert!(!err.glance_message().is_empty());
            }
            (got, expect) => panic!("{body}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn the_v2_0_dialect_names_the_op_by_its_member() {
        let ops = parse_patch_v2_0(
            br#"[{"replace": "/name", "value": "x"}, {"add": "/foo", "value": "bar"}, {"remove": "/foo"}]"#,
        )
        .unwrap();
        assert_eq!(
            format!("{ops:?}"),
            r#"[Replace(Name(Some("x"))), Add(Property { name: "foo", value: "bar" }), Remove("foo")]"#
        );
        for body in [
            r#"[{"value": 1}]"#,
            r#"[{"add": "/a", "remove": "/a", "value": "b"}]"#,
        ] {
            let err = parse_patch_v2_0(body.as_bytes()).unwrap_err();
            assert_eq!(
                err.glance_message(),
                "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\"."
            );
        }
        // The same read-only rules as v2.1.
        let err = parse_patch_v2_0(br#"[{"replace": "/status", "value": "active"}]"#).unwrap_err();
        assert_eq!(err.glance_message(), "Attribute 'status' is read-only.");
    }

    #[test]
    fn glanceclient_and_openstackclient_bodies_parse_alike() {
        // glanceclient image-update --name N --property os_distro=cirros --min-disk 1 (glance-wire.md §7)
        check(
            r#"[{"op":"add","path":"/os_distro","value":"cirros"},{"op":"replace","path":"/name","value":"wire-g-renamed"},{"op":"replace","path":"/min_disk","value":1}]"#,
            Ok(
                r#"[Add(Property { name: "os_distro", value: "cirros" }), Replace(Name(Some("wire-g-renamed"))), Replace(MinDisk(1))]"#,
            ),
        );
        // openstackclient image set: add on existing attributes, tags as a whole list.
        check(
            r#"[{"op":"add","path":"/min_disk","value":1},{"op":"add","path":"/name","value":"wire-o2"},{"op":"add","path":"/tags","value":["t1"]}]"#,
            Ok(r#"[Add(MinDisk(1)), Add(Name(Some("wire-o2"))), Add(Tags({"t1"}))]"#),
        );
        check(
            r#"[{"op":"remove","path":"/foo"}]"#,
            Ok(r#"[Remove("foo")]"#),
        );
        check("[]", Ok("[]"));
        let ops =
            parse_patch(br#"[{"op":"replace","path":"/visibility","value":"community"}]"#).unwrap();
        assert_eq!(
            ops,
            [PatchOp::Replace(Attribute::Visibility(
                Visibility::Community
            ))]
        );
    }

    #[test]
    fn json_pointer_escapes_decode_in_rfc_order() {
        check(
            r#"[{"op":"add","path":"/a~1b~0c","value":"v"}]"#,
            Ok(r#"[Add(Property { name: "a/b~c", value: "v" })]"#),
        );
        // "~01" is "~1" (not "/"): ~1 is decoded first, then ~0.
        check(
            r#"[{"op":"add","path":"/x~01","value":"v"}]"#,
            Ok(r#"[Add(Property { name: "x~1", value: "v" })]"#),
        );
        check(
            r#"[{"op":"add","path":"/ name ","value":"v"}]"#,
            Ok(r#"[Add(Name(Some("v")))]"#),
        );
    }

    #[test]
    fn malformed_bodies_and_pointers_are_refused_as_glance_does() {
        check("{", Err("malformed_json"));
        check(r#"{"op":"add"}"#, Err("invalid_patch"));
        check(r#"["add"]"#, Err("invalid_patch"));
        check(r#"[{"path":"/name","value":"x"}]"#, Err("invalid_patch"));
        check(
            r#"[{"op":"move","path":"/name","from":"/x"}]"#,
            Err("invalid_patch"),
        );
        check(r#"[{"op":"add","value":"x"}]"#, Err("invalid_patch"));
        check(r#"[{"op":"add","path":"/name"}]"#, Err("invalid_patch"));
        check(
            r#"[{"op":"add","path":"name","value":"x"}]"#,
            Err("invalid_patch"),
        );
        check(
            r#"[{"op":"add","path":"/a//b","value":"x"}]"#,
            Err("invalid_patch"),
        );
        check(
            r#"[{"op":"add","path":"/a/","value":"x"}]"#,
            Err("invalid_patch"),
        );
        check(
            r#"[{"op":"add","path":"/a~2","value":"x"}]"#,
            Err("invalid_patch"),
        );
        check(
            r#"[{"op":"add","path":"/a~","value":"x"}]"#,
            Err("invalid_patch"),
        );
        check(
            r#"[{"op":"add","path":"/tags/-","value":"x"}]"#,
            Err("invalid_patch"),
        );
        check(
            r#"[{"op":"add","path":"/","value":"x"}]"#,
            Err("invalid_patch"),
        );
        check(
            r#"[{"op":"add","path":"/locations/0","value":{}}]"#,
            Err("invalid_patch"),
        );
        let err = parse_patch(br#"[{"op":"add","path":"/a~2","value":"x"}]"#).unwrap_err();
        assert_eq!(
            err.glance_message(),
            "Pointer `/a~2` contains \"~\" not part of a recognized escape sequence."
        );
        let err = parse_patch(br#"[{"op":"copy","path":"/a"}]"#).unwrap_err();
        assert_eq!(
            err.glance_message(),
            "Invalid operation: `copy`. It must be one of the following: add, remove, replace."
        );
        assert_eq!(
            parse_patch(b"{}").unwrap_err().glance_message(),
            "Request body must be a JSON array of operation objects."
        );
    }

    #[test]
    fn read_only_reserved_and_schema_rules_apply_to_every_op() {
        check(
            r#"[{"op":"replace","path":"/status","value":"active"}]"#,
            Err("read_only"),
        );
        check(r#"[{"op":"remove","path":"/status"}]"#, Err("read_only"));
        check(
            r#"[{"op":"add","path":"/checksum","value":"x"}]"#,
            Err("read_only"),
        );
        check(
            r#"[{"op":"add","path":"/id","value":"x"}]"#,
            Err("read_only"),
        );
        check(
            r#"[{"op":"add","path":"/os_glance_import_task","value":"x"}]"#,
            Err("reserved"),
        );
        check(
            r#"[{"op":"remove","path":"/os_glance_x"}]"#,
            Err("reserved"),
        );
        check(
            r#"[{"op":"add","path":"/locations","value":[]}]"#,
            Err("reserved"),
        );
        check(
            r#"[{"op":"add","path":"/deleted","value":"x"}]"#,
            Err("reserved"),
        );
        check(
            r#"[{"op":"add","path":"/min_disk","value":"1"}]"#,
            Err("schema"),
        );
        check(r#"[{"op":"add","path":"/foo","value":1}]"#, Err("schema"));
        check(
            r#"[{"op":"add","path":"/foo","value":null}]"#,
            Err("schema"),
        );
        check(
            r#"[{"op":"add","path":"/kernel_id","value":null}]"#,
            Err("schema"),
        );
        check(
            r#"[{"op":"add","path":"/tags","value":"t1"}]"#,
            Err("schema"),
        );
        let long = format!(
            r#"[{{"op":"add","path":"/name","value":"{}"}}]"#,
            "n".repeat(256)
        );
        check(&long, Err("schema"));
        let long = format!(
            r#"[{{"op":"add","path":"/{}","value":"v"}}]"#,
            "k".repeat(256)
        );
        check(&long, Err("schema"));
        // The first bad operation wins, in list order.
        let err = parse_patch(
            br#"[{"op":"add","path":"/foo","value":"ok"},{"op":"add","path":"/size","value":1},{"op":"bad"}]"#,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), r#"attribute "size" is read-only"#);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic_the_patch_parser(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96)
        ) {
            let _ = parse_patch(&bytes);
        }

        #[test]
        fn any_pointer_decodes_or_fails_cleanly(pointer in "[/~01a-z ]{0,12}") {
            let body = serde_json::json!([{"op": "add", "path": pointer, "value": "v"}]);
            let _ = parse_patch_value(&body);
        }
    }
}
