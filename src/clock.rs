//! Time as an injected dependency.
//!
//! Verification never reads the system clock itself: certificate validity
//! and chain checks take a [`Clock`], so tests can pin the time
//! ([`FixedClock`]) and users can ask "was this valid at T?".

use time::OffsetDateTime;

/// A source of "now".
pub trait Clock: Send + Sync {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock stopped at one instant (tests, `--at`, `PORTCULLIS_NOW`).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

/// Parses an RFC 3339 timestamp such as `2026-01-01T00:00:00Z`.
///
/// Fails with the parser's message when the text is not RFC 3339.
pub fn parse_rfc3339(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_returns_its_instant() {
        let at = parse_rfc3339("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(FixedClock(at).now(), at);
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
