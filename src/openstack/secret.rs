//! [`Secret`]: a password, application-credential secret or token, which
//! never shows in `Debug`, `Display`, logs or error messages.
//!
//! This module owns the redaction rule. It must not persist secrets nor
//! hand them out except through [`Secret::expose`], which the HTTP code
//! calls when it writes a request header or body.

use std::fmt;

use sha2::Digest as _;

/// What a redacted secret prints as.
pub(crate) const REDACTED: &str = "<redacted>";

/// A credential that must not be printed: `Debug` and `Display` show
/// `<redacted>`, whatever the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it (a header or a request body).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the value: the key under which caches remember a token
    /// without holding the token itself.
    pub(crate) fn digest(&self) -> [u8; 32] {
        sha2::Sha256::digest(self.0.as_bytes()).into()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Secret, Self::Err> {
        Ok(Secret::new(text))
    }
}

/// Server-supplied text (an error message from Keystone or Barbican) made
/// safe to show: every secret the request carried is replaced by
/// `<redacted>` (a schema error may echo a field's value), control
/// characters are dropped and the text is cut at 300 characters.
pub(crate) fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut clean = text.to_owned();
    for secret in secrets {
        // Short values would blank out ordinary words; no credential is this short.
        if secret.0.len() >= 4 {
            clean = clean.replace(secret.expose(), REDACTED);
        }
    }
    let mut out: String = clean
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    if clean.chars().count() > 300 {
        out.push('…');
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(<redacted>))");
        assert_eq!(secret.expose(), "hunter2-very-secret");
        assert_ne!(secret.digest(), Secret::new("other").digest());
    }

    #[test]
    fn scrub_removes_secrets_controls_and_length() {
        let secret = Secret::new("pa55word");
        let text = "Invalid input for field 'password': 'pa55word' is too short\n\x1b[31m";
        let clean = scrub(text, &[&secret]);
        assert!(!clean.contains("pa55word"), "{clean}");
        assert!(clean.contains("<redacted>"), "{clean}");
        assert!(!clean.contains('\x1b'));
        let long = "x".repeat(1000);
        assert_eq!(scrub(&long, &[]).chars().count(), 301);
    }
}
