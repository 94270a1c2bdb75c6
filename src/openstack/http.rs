//! The HTTP client every OpenStack call goes through (reqwest with rustls,
//! never OpenSSL for TLS), and the helpers that read responses safely.
//!
//! This module owns TLS trust (`OS_CACERT`, `--insecure`), timeouts, the
//! no-redirect rule and bounded body reads. It must not log headers or
//! bodies: they carry tokens.

use std::time::Duration;

use super::secret::{Secret, scrub};
use super::settings::{SettingsError, TlsSettings};

/// A connection that cannot be made in this long is "unreachable".
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// No Keystone or Barbican call should take longer; a hung server must not
/// hang an upload forever (keystoneauth has no default timeout).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds the client for `tls`: the system's CA roots plus `cacert`'s, or no
/// checks at all with `insecure`. Redirects are not followed, so a token
/// header never travels to a host it was not meant for.
///
/// Fails when the CA bundle cannot be read or holds no certificate.
pub(crate) fn client(tls: &TlsSettings) -> Result<reqwest::Client, SettingsError> {
    builder(tls)?
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|source| SettingsError::HttpClient { source })
}

/// [`client`]'s settings without the whole-request timeout, for clients
/// whose requests may rightly last long (image downloads and uploads,
/// which set their own read timeout): rustls with the system's roots plus
/// `cacert`'s (or no checks with `insecure`), the connect timeout, no
/// redirects.
///
/// Fails when the CA bundle cannot be read or holds no certificate.
pub(crate) fn builder(tls: &TlsSettings) -> Result<reqwest::ClientBuilder, SettingsError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &tls.cacert {
        let ca_error = |reason: String| SettingsError::CaCert {
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|err| ca_error(err.to_string()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|err| ca_error(format!("not a PEM bundle ({err})")))?;
        if certificates.is_empty() {
            return Err(ca_error("it holds no PEM certificate".to_owned()));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if tls.insecure {
        tracing::warn!("TLS certificate verification is off (--insecure / OS_INSECURE)");
        builder = builder.danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

/// A response body larger than the limit.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// The transfer failed.
    #[error(transparent)]
    Transfer(#[from] reqwest::Error),
    /// More bytes than expected.
    #[error("the response is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

/// Reads a whole body, refusing more than `limit` bytes (a certificate or
/// a token document is a few KiB; a server must not make us hold more).
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The human part of an OpenStack error body, scrubbed of `secrets`:
/// Keystone's (and keystonemiddleware's) `{"error": {"message"}}`,
/// Barbican's `{"description"}` or `{"title"}`, else the text itself.
pub(crate) fn error_message(body: &[u8], secrets: &[&Secret]) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => json
            .pointer("/error/message")
            .or_else(|| json.get("description"))
            .or_else(|| json.get("title"))
            .and_then(|value| value.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let clean = scrub(&text, secrets);
    if clean.is_empty() {
        "no message".to_owned()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_either_error_shape() {
        let keystone = br#"{"error":{"code":404,"message":"Could not recognize Fernet token","title":"Not Found"}}"#;
        assert_eq!(
            error_message(keystone, &[]),
            "Could not recognize Fernet token"
        );
        let barbican = br#"{"code":403,"title":"Forbidden","description":"Secret retrieval attempt not allowed"}"#;
        assert_eq!(
            error_message(barbican, &[]),
            "Secret retrieval attempt not allowed"
        );
        let secret = Secret::new("tok-123456");
        assert_eq!(
            error_message(b"bad token tok-123456", &[&secret]),
            "bad token <redacted>"
        );
        assert_eq!(error_message(b"", &[]), "no message");
    }

    #[test]
    fn a_ca_bundle_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let tls = TlsSettings {
            cacert: Some(empty),
            insecure: false,
        };
        let err = client(&tls).unwrap_err();
        assert!(err.to_string().contains("empty.pem"), "{err}");
        let missing = TlsSettings {
            cacert: Some(dir.path().join("missing.pem")),
            insecure: false,
        };
        assert!(matches!(
            client(&missing),
            Err(SettingsError::CaCert { .. })
        ));
        // root-ca in testdata/certs/INDEX.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/certs/8baee3d3-7d2f-4653-aa53-e6f63d52506b.pem");
        let good = TlsSettings {
            cacert: Some(root),
            insecure: false,
        };
        assert!(client(&good).is_ok());
    }
}
