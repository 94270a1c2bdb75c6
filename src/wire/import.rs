//! The body of Glance's `POST /v2/images/{id}/import`:
//! `{"method": {"name": "glance-direct"}}`.
//!
//! This module owns reading the method name and Glance's 400 messages for a
//! body without one. It must not decide which methods run (`app` does).

use serde_json::Value;

/// An import body Glance refuses with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportBodyError {
    /// Not JSON, or not an object.
    #[error("the import request body is not a JSON object ({0})")]
    Malformed(String),
    /// No `method` object.
    #[error(
        "the import request has no method (send {{\"method\": {{\"name\": \"glance-direct\"}}}})"
    )]
    NoMethod,
    /// No `method.name` string.
    #[error(
        "the import request's method has no name (send {{\"method\": {{\"name\": \"glance-direct\"}}}})"
    )]
    NoName,
}

impl ImportBodyError {
    /// Glance's message for this refusal.
    pub fn glance_message(&self) -> String {
        match self {
            ImportBodyError::Malformed(reason) => {
                format!("Malformed JSON in request body. {reason}")
            }
            ImportBodyError::NoMethod => "Import request requires a 'method' field.".to_owned(),
            ImportBodyError::NoName => "Import request requires a 'name' field.".to_owned(),
        }
    }
}

/// The import method a body names.
///
/// Fails when the body is not a JSON object or has no `method.name` string.
pub fn parse_import_method(body: &[u8]) -> Result<String, ImportBodyError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| ImportBodyError::Malformed(err.to_string()))?;
    let object = value
        .as_object()
        .ok_or_else(|| ImportBodyError::Malformed("not an object".to_owned()))?;
    let method = object
        .get("method")
        .and_then(Value::as_object)
        .ok_or(ImportBodyError::NoMethod)?;
    method
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(ImportBodyError::NoName)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_name_is_read_and_its_absence_named() {
        let name = parse_import_method(br#"{"method": {"name": "glance-direct"}}"#);
        assert_eq!(name.as_deref(), Ok("glance-direct"));
        assert_eq!(
            parse_import_method(br#"{"stores": []}"#),
            Err(ImportBodyError::NoMethod)
        );
        assert_eq!(
            parse_import_method(br#"{"method": {"uri": "x"}}"#),
            Err(ImportBodyError::NoName)
        );
        assert!(matches!(
            parse_import_method(b"{"),
            Err(ImportBodyError::Malformed(_))
        ));
    }
}
