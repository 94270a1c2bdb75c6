//! Glance's JSON for image members (glance/api/v2/image_members.py): the
//! member document, the members list, and the two request bodies
//! (`{"member": "<project>"}` to add, `{"status": "accepted"}` to answer).
//!
//! This module owns those shapes and Glance's 400 messages for bad bodies.
//! It must not decide who may share an image (the repository's
//! authorization layer does) nor do IO.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use crate::image::{Member, MemberStatus};

use super::timestamp;

/// The schema URL every member document carries.
pub const MEMBER_SCHEMA: &str = "/v2/schemas/member";
/// The schema URL of the members list.
pub const MEMBERS_SCHEMA: &str = "/v2/schemas/members";

/// A membership as Glance serves it: `member_id`, `image_id`, `status`,
/// `created_at`, `updated_at`, `schema`, in that order.
#[derive(Debug, Clone, Copy)]
pub struct MemberJson<'a>(pub &'a Member);

impl Serialize for MemberJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let member = self.0;
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("member_id", &member.member_id)?;
        map.serialize_entry("image_id", &member.image_id.to_string())?;
        map.serialize_entry("status", member.status.as_str())?;
        map.serialize_entry("created_at", &timestamp(member.created_at))?;
        map.serialize_entry("updated_at", &timestamp(member.updated_at))?;
        map.serialize_entry("schema", MEMBER_SCHEMA)?;
        map.end()
    }
}

/// `{"members": [...], "schema": "/v2/schemas/members"}`.
#[derive(Debug, Clone, Copy)]
pub struct MembersJson<'a>(pub &'a [Member]);

impl Serialize for MembersJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let members: Vec<MemberJson<'_>> = self.0.iter().map(MemberJson).collect();
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("members", &members)?;
        map.serialize_entry("schema", MEMBERS_SCHEMA)?;
        map.end()
    }
}

/// A member request body Glance refuses (400).
#[derive(Debug, thiserror::Error)]
pub enum MemberBodyError {
    /// No body at all.
    #[error("the request needs a JSON body")]
    Missing,
    /// Not JSON.
    #[error("the request body is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// Not an object, or the value is not a string.
    #[error("expected a JSON object of the form {{\"{field}\": \"<{what}>\"}}")]
    Shape {
        /// `member` or `status`.
        field: &'static str,
        /// What the value names.
        what: &'static str,
    },
    /// The object lacks the field.
    #[error("the request body has no {field:?}")]
    NoField {
        /// `member` or `status`.
        field: &'static str,
    },
    /// `{"member": ""}`.
    #[error("the member id is empty")]
    EmptyMember,
    /// A status other than pending, accepted, rejected.
    #[error("member status {status} is not one of pending, accepted, rejected")]
    BadStatus {
        /// The value sent (JSON).
        status: String,
    },
}

impl MemberBodyError {
    /// Glance's message for it (RequestDeserializer, the domain's status setter).
    pub fn glance_message(&self) -> String {
        match self {
            MemberBodyError::Missing => "Body expected in request.".to_owned(),
            MemberBodyError::Json(_) => "Malformed JSON in request body.".to_owned(),
            MemberBodyError::Shape { field, what } => {
                format!("Expected a {field} in the form: {{\"{field}\": \"{what}\"}}")
            }
            MemberBodyError::NoField { field: "member" } => {
                "Member to be added not specified".to_owned()
            }
            MemberBodyError::NoField { .. } => "Status not specified".to_owned(),
            MemberBodyError::EmptyMember => "Member can't be empty".to_owned(),
            MemberBodyError::BadStatus { .. } => {
                "Incorrect request: Status must be \"pending\", \"accepted\" or \"rejected\"."
                    .to_owned()
            }
        }
    }
}

/// The one field of a member body, as a JSON value.
fn field<'a>(
    body: &[u8],
    value: &'a mut Value,
    name: &'static str,
    what: &'static str,
) -> Result<&'a Value, MemberBodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(MemberBodyError::Missing);
    }
    *value = serde_json::from_slice(body).map_err(MemberBodyError::Json)?;
    let Value::Object(object) = value else {
        return Err(MemberBodyError::Shape { field: name, what });
    };
    object
        .get(name)
        .ok_or(MemberBodyError::NoField { field: name })
}

/// The project of a `POST /v2/images/{id}/members` body, `{"member": "<project>"}`.
///
/// Fails on an empty or non-JSON body, a body without `member`, an empty
/// or non-string member (Glance's deserializer refuses the same bodies).
pub fn parse_add_member(body: &[u8]) -> Result<String, MemberBodyError> {
    let mut value = Value::Null;
    match field(body, &mut value, "member", "image_id")? {
        Value::String(member) if member.is_empty() => Err(MemberBodyError::EmptyMember),
        Value::String(member) => Ok(member.clone()),
        Value::Null => Err(MemberBodyError::EmptyMember),
        _ => Err(MemberBodyError::Shape {
            field: "member",
            what: "image_id",
        }),
    }
}

/// The status of a `PUT /v2/images/{id}/members/{member}` body, `{"status": "accepted"}`.
///
/// Fails on an empty or non-JSON body, a body without `status`, or a status
/// other than `pending`, `accepted`, `rejected`.
pub fn parse_member_status(body: &[u8]) -> Result<MemberStatus, MemberBodyError> {
    let mut value = Value::Null;
    let status = field(body, &mut value, "status", "status")?;
    status
        .as_str()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| MemberBodyError::BadStatus {
            status: status.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageId;

    #[test]
    fn member_documents_have_glances_keys_in_order() {
        let at = time::macros::datetime!(2026-11-28 10:00:00.5 UTC);
        let member = Member {
            image_id: "bb859843-9ef0-4915-96f8-0ce46df5cabc"
                .parse::<ImageId>()
                .unwrap(),
            member_id: "p2".to_owned(),
            status: MemberStatus::Pending,
            created_at: at,
            updated_at: at,
        };
        assert_eq!(
            serde_json::to_string(&MemberJson(&member)).unwrap(),
            r#"{"member_id":"p2","image_id":"bb859843-9ef0-4915-96f8-0ce46df5cabc","status":"pending","created_at":"2026-11-28T10:00:00Z","updated_at":"2026-11-28T10:00:00Z","schema":"/v2/schemas/member"}"#
        );
        let list = serde_json::to_value(MembersJson(std::slice::from_ref(&member))).unwrap();
        assert_eq!(list["schema"], MEMBERS_SCHEMA);
        assert_eq!(list["members"][0]["member_id"], "p2");
    }

    #[test]
    fn add_bodies_are_refused_with_glances_messages() {
        assert_eq!(parse_add_member(br#"{"member": "p2"}"#).unwrap(), "p2");
        let message = |body: &[u8]| parse_add_member(body).unwrap_err().glance_message();
        assert_eq!(message(b""), "Body expected in request.");
        assert_eq!(message(b"{"), "Malformed JSON in request body.");
        assert_eq!(message(b"{}"), "Member to be added not specified");
        assert_eq!(message(br#"{"member": ""}"#), "Member can't be empty");
        assert_eq!(message(br#"{"member": null}"#), "Member can't be empty");
        assert_eq!(
            message(br#"["p2"]"#),
            r#"Expected a member in the form: {"member": "image_id"}"#
        );
        assert_eq!(
            message(br#"{"member": 7}"#),
            r#"Expected a member in the form: {"member": "image_id"}"#
        );
    }

    #[test]
    fn status_bodies_take_the_three_statuses_only() {
        assert_eq!(
            parse_member_status(br#"{"status": "accepted"}"#).unwrap(),
            MemberStatus::Accepted
        );
        let message = |body: &[u8]| parse_member_status(body).unwrap_err().glance_message();
        assert_eq!(message(b"{}"), "Status not specified");
        assert_eq!(
            message(br#"{"status": "Accepted"}"#),
            r#"Incorrect request: Status must be "pending", "accepted" or "rejected"."#
        );
        assert_eq!(
            message(br#"{"status": 1}"#),
            r#"Incorrect request: Status must be "pending", "accepted" or "rejected"."#
        );
        assert_eq!(
            message(b"[]"),
            r#"Expected a status in the form: {"status": "status"}"#
        );
    }
}
