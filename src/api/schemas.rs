//! The schema documents glanceclient fetches (`/v2/schemas/image`,
//! `images`, `member`, `members`, `metadefs/namespace`,
//! `metadefs/resource_type`), built here as Glance 33 builds them
//! (glance/api/v2/images.py `get_base_properties` plus the
//! `schema-image.json` every deployment installs, image_members.py,
//! metadef_namespaces.py, metadef_resource_types.py, glance/schema.py).
//!
//! This module owns the documents. It must not validate requests against
//! them (`wire` applies Glance's rules). A test compares each, as JSON, with
//! the documents recorded from real Glance in ../shared/reference/glance-schemas/.

use std::sync::LazyLock;

use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Glance's UUID pattern for `id`, `image_id`, `kernel_id`, `ramdisk_id`.
const UUID_PATTERN: &str =
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";

const PROPERTY_KEYS_DOC: &str =
    "https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html";

/// Glance's base image properties.
fn base_image_properties() -> serde_json::Map<String, Value> {
    let mut properties = serde_json::Map::new();
    properties.insert("id".to_owned(), json!({"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN}));
    properties.insert("name".to_owned(), json!({"type": ["null", "string"], "description": "Descriptive name for the image", "maxLength": 255}));
    properties.insert("status".to_owned(), json!({
            "type": "string", "readOnly": true, "description": "Status of the image",
            "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"]
        }));
    properties.insert("visibility".to_owned(), json!({"type": "string", "description": "Scope of image accessibility", "enum": ["community", "public", "private", "shared"]}));
    properties.insert(
        "protected".to_owned(),
        json!({"type": "boolean", "description": "If true, image will not be deletable."}),
    );
    properties.insert("os_hidden".to_owned(), json!({"type": "boolean", "description": "If true, image will not appear in default image list response."}));
    properties.insert("checksum".to_owned(), json!({"type": ["null", "string"], "readOnly": true, "description": "md5 hash of image contents.", "maxLength": 32}));
    properties.insert("os_hash_algo".to_owned(), json!({"type": ["null", "string"], "readOnly": true, "description": "Algorithm to calculate the os_hash_value", "maxLength": 64}));
    properties.insert("os_hash_value".to_owned(), json!({
            "type": ["null", "string"], "readOnly": true,
            "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo", "maxLength": 128
        }));
    properties.insert(
        "owner".to_owned(),
        json!({"type": ["null", "string"], "description": "Owner of the image", "maxLength": 255}),
    );
    properties.insert("size".to_owned(), json!({"type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes"}));
    properties.insert("virtual_size".to_owned(), json!({"type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes"}));
    properties.insert(
        "container_format".to_owned(),
        json!({
            "type": ["null", "string"], "description": "Format of the container",
            "enum": [null, "ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]
        }),
    );
    properties.insert("disk_format".to_owned(), json!({
            "type": ["null", "string"], "description": "Format of the disk",
            "enum": [null, "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]
        }));
    properties.insert("created_at".to_owned(), json!({"type": "string", "readOnly": true, "description": "Date and time of image registration"}));
    properties.insert("updated_at".to_owned(), json!({"type": "string", "readOnly": true, "description": "Date and time of the last image modification"}));
    properties.insert("tags".to_owned(), json!({"type": "array", "description": "List of strings related to the image", "items": {"type": "string", "maxLength": 255}}));
    properties.insert("direct_url".to_owned(), json!({"type": "string", "readOnly": true, "description": "URL to access the image file kept in external store"}));
    properties.insert(
        "min_ram".to_owned(),
        json!({"type": "integer", "description": "Amount of ram (in MB) required to boot image."}),
    );
    properties.insert("min_disk".to_owned(), json!({"type": "integer", "description": "Amount of disk space (in GB) required to boot image."}));
    properties.insert(
        "self".to_owned(),
        json!({"type": "string", "readOnly": true, "description": "An image self url"}),
    );
    properties.insert(
        "file".to_owned(),
        json!({"type": "string", "readOnly": true, "description": "An image file url"}),
    );
    properties.insert("stores".to_owned(), json!({
            "type": "string", "readOnly": true,
            "description": "Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers."
        }));
    properties.insert(
        "schema".to_owned(),
        json!({"type": "string", "readOnly": true, "description": "An image schema url"}),
    );
    properties.insert("locations".to_owned(), json!({
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": 255},
                    "metadata": {"type": "object"},
                    "validation_data": {
                        "description": "Values to be used to populate the corresponding image properties. If the image status is not 'queued', values must exactly match those already contained in the image properties.",
                        "type": "object",
                        "writeOnly": true,
                        "additionalProperties": false,
                        "properties": {
                            "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                            "os_hash_algo": {"type": "string", "maxLength": 64},
                            "os_hash_value": {"type": "string", "maxLength": 128}
                        },
                        "required": ["os_hash_algo", "os_hash_value"]
                    }
                },
                "required": ["url", "metadata"]
            },
            "description": "A set of URLs to access the image file kept in external store"
        }));
    properties
}

/// The custom properties of Glance's shipped `etc/schema-image.json`
/// (`is_base: false`): what deployments serve, and what glanceclient
/// validates `--property` values against.
fn custom_image_properties() -> serde_json::Map<String, Value> {
    let value = json!({
        "kernel_id": {
            "type": ["null", "string"], "pattern": UUID_PATTERN,
            "description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.",
            "is_base": false
        },
        "ramdisk_id": {
            "type": ["null", "string"], "pattern": UUID_PATTERN,
            "description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.",
            "is_base": false
        },
        "instance_uuid": {
            "type": "string",
            "description": "Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)",
            "is_base": false
        },
        "architecture": {
            "description": format!("Operating system architecture as specified in {PROPERTY_KEYS_DOC}"),
            "type": "string", "is_base": false
        },
        "os_distro": {
            "description": format!("Common name of operating system distribution as specified in {PROPERTY_KEYS_DOC}"),
            "type": "string", "is_base": false
        },
        "os_version": {"description": "Operating system version as specified by the distributor.", "type": "string", "is_base": false},
        "description": {"description": "A human-readable string describing this image.", "type": "string", "is_base": false},
        "cinder_encryption_key_id": {
            "description": "Identifier in the OpenStack Key Management Service for the encryption key for the Block Storage Service to use when mounting a volume created from this image",
            "type": "string", "is_base": false
        },
        "cinder_encryption_key_deletion_policy": {
            "description": "States the condition under which the Image Service will delete the object associated with the 'cinder_encryption_key_id' image property.  If this property is missing, the Image Service will take no action",
            "type": "string", "enum": ["on_image_deletion", "do_not_delete"], "is_base": false
        }
    });
    object(value)
}

fn object(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("the schema literals are objects"),
    }
}

/// `GET /v2/schemas/image`.
pub(crate) fn image() -> Value {
    let mut properties = base_image_properties();
    properties.extend(custom_image_properties());
    json!({
        "name": "image",
        "properties": properties,
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"}
        ]
    })
}

/// `GET /v2/schemas/images` (glance.schema.CollectionSchema).
pub(crate) fn images() -> Value {
    json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image()},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"}
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"}
        ]
    })
}

/// `GET /v2/schemas/member`.
pub(crate) fn member() -> Value {
    json!({
        "name": "member",
        "properties": {
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "image_id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
            "status": {"type": "string", "description": "The status of this image member", "enum": ["pending", "accepted", "rejected"]},
            "schema": {"readOnly": true, "type": "string"}
        }
    })
}

/// `GET /v2/schemas/members`.
pub(crate) fn members() -> Value {
    json!({
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member()},
            "schema": {"type": "string"}
        },
        "links": [{"rel": "describedby", "href": "{schema}"}]
    })
}

/// `GET /v2/schemas/metadefs/namespace`.
pub(crate) fn metadefs_namespace() -> Value {
    let type_names = json!([
        "array", "boolean", "integer", "number", "object", "string", null
    ]);
    json!({
        "name": "namespace",
        "properties": {
            "namespace": {"type": "string", "description": "The unique namespace text.", "maxLength": 80},
            "display_name": {"type": "string", "description": "The user friendly name for the namespace. Used by UI if available.", "maxLength": 80},
            "description": {"type": "string", "description": "Provides a user friendly description of the namespace.", "maxLength": 500},
            "visibility": {"type": "string", "description": "Scope of namespace accessibility.", "enum": ["public", "private"]},
            "protected": {"type": "boolean", "description": "If true, namespace will not be deletable."},
            "owner": {"type": "string", "description": "Owner of the namespace.", "maxLength": 255},
            "created_at": {"type": "string", "readOnly": true, "description": "Date and time of namespace creation", "format": "date-time"},
            "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last namespace modification", "format": "date-time"},
            "schema": {"readOnly": true, "type": "string"},
            "self": {"readOnly": true, "type": "string"},
            "resource_type_associations": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "prefix": {"type": "string"}, "properties_target": {"type": "string"}}}
            },
            "properties": {"$ref": "#/definitions/property"},
            "objects": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "required": {"$ref": "#/definitions/stringArray"},
                        "properties": {"$ref": "#/definitions/property"}
                    }
                }
            },
            "tags": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}
        },
        "additionalProperties": false,
        "definitions": {
            "positiveInteger": {"type": "integer", "minimum": 0},
            "positiveIntegerDefault0": {"allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]},
            "stringArray": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
            "property": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["title", "type"],
                    "properties": {
                        "name": {"type": "string", "maxLength": 80},
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "operators": {"type": "array", "items": {"type": "string"}},
                        "type": {"type": "string", "enum": type_names},
                        "required": {"$ref": "#/definitions/stringArray"},
                        "minimum": {"type": "number"},
                        "maximum": {"type": "number"},
                        "maxLength": {"$ref": "#/definitions/positiveInteger"},
                        "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
                        "pattern": {"type": "string", "format": "regex"},
                        "enum": {"type": "array"},
                        "readonly": {"type": "boolean"},
                        "default": {},
                        "items": {
                            "type": "object",
                            "properties": {"type": {"type": "string", "enum": type_names}, "enum": {"type": "array"}}
                        },
                        "maxItems": {"$ref": "#/definitions/positiveInteger"},
                        "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
                        "uniqueItems": {"type": "boolean", "default": false},
                        "additionalItems": {"type": "boolean"}
                    }
                }
            }
        },
        "required": ["namespace"]
    })
}

/// `GET /v2/schemas/metadefs/resource_type`.
pub(crate) fn metadefs_resource_type() -> Value {
    json!({
        "name": "resource_type_association",
        "properties": {
            "name": {
                "type": "string",
                "description": "Resource type names should be aligned with Heat resource types whenever possible: https://docs.openstack.org/heat/latest/template_guide/openstack.html",
                "maxLength": 80
            },
            "prefix": {
                "type": "string",
                "description": "Specifies the prefix to use for the given resource type. Any properties in the namespace should be prefixed with this prefix when being applied to the specified resource type. Must include prefix separator (e.g. a colon :).",
                "maxLength": 80
            },
            "properties_target": {
                "type": "string",
                "description": "Some resource types allow more than one key / value pair per instance.  For example, Cinder allows user and image metadata on volumes. Only the image properties metadata is evaluated by Nova (scheduling or drivers). This property allows a namespace target to remove the ambiguity.",
                "maxLength": 80
            },
            "created_at": {"type": "string", "readOnly": true, "description": "Date and time of resource type association", "format": "date-time"},
            "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last resource type association modification", "format": "date-time"}
        },
        "additionalProperties": false,
        "required": ["name"]
    })
}

/// A function building one document.
type Build = fn() -> Value;

/// Every served schema by its path below `/v2/schemas/`, serialized once.
static DOCUMENTS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    let documents: [(&str, Build); 6] = [
        ("image", image),
        ("images", images),
        ("member", member),
        ("members", members),
        ("metadefs/namespace", metadefs_namespace),
        ("metadefs/resource_type", metadefs_resource_type),
    ];
    documents
        .into_iter()
        .map(|(name, build)| (name, build().to_string()))
        .collect()
});

/// The paths below `/v2/schemas/` that have a document.
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    DOCUMENTS.iter().map(|(name, _)| *name)
}

/// The response for one schema document (`name` from [`names`]).
pub(crate) fn response(name: &str) -> Response {
    let body = DOCUMENTS
        .iter()
        .find(|(candidate, _)| *candidate == name)
        .map_or_else(String::new, |(_, body)| body.clone());
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}
