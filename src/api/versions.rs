//! Version discovery and Glance's version negotiation
//! (glance/api/versions.py, glance/api/middleware/version_negotiation.py).
//!
//! - `/versions` (and anything below it) → 200 with the versions document,
//!   whatever the method;
//! - a first path segment naming a supported version (`v2`, `v2.0` …
//!   `v2.13`, `v2.15`, `v2.17`) is served as `/v2/…`; `Accept:
//!   application/vnd.openstack.images-v2…` does the same for an unversioned path;
//! - any other path → 300 with the same document (openstacksdk's `GET /`).
//!
//! hrefs are `<scheme>://<Host>/v2/` from the request ([`BaseUrl`]), or
//! `<public_endpoint>/v2/` when configured. This module owns the versions
//! list and the URL base; it must not route below `/v2`.

use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::options::ServerOptions;

/// Glance 33's versions (multi-store enabled, no image cache), in the order
/// it lists them: (id, status).
const VERSIONS: &[(&str, &str)] = &[
    ("v2.15", "SUPPORTED"),
    ("v2.13", "SUPPORTED"),
    ("v2.12", "SUPPORTED"),
    ("v2.11", "SUPPORTED"),
    ("v2.10", "SUPPORTED"),
    ("v2.9", "SUPPORTED"),
    ("v2.8", "SUPPORTED"),
    ("v2.17", "CURRENT"),
    ("v2.7", "SUPPORTED"),
    ("v2.6", "SUPPORTED"),
    ("v2.5", "SUPPORTED"),
    ("v2.4", "SUPPORTED"),
    ("v2.3", "SUPPORTED"),
    ("v2.2", "SUPPORTED"),
    ("v2.1", "SUPPORTED"),
    ("v2.0", "SUPPORTED"),
];

/// The media-type prefix of Accept-header versioning.
const VND_MIME_TYPE: &str = "application/vnd.openstack.images-";

/// The scheme and authority a client used to reach this server: what every
/// absolute URL in a response (version hrefs, `Location`) starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// `http://<Host>` from the request; with `trust_forwarded_headers`,
    /// `X-Forwarded-Proto` and `X-Forwarded-Host` (first value) win. Without a
    /// `Host` (HTTP/1.0), the address the server listens on.
    pub fn from_request(headers: &HeaderMap, options: &ServerOptions) -> BaseUrl {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(|value| value.split(',').next().unwrap_or("").trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let forwarded = |name: &str| header(name).filter(|_| options.trust_forwarded_headers);
        let scheme = forwarded("x-forwarded-proto")
            .filter(|scheme| scheme == "http" || scheme == "https")
            .unwrap_or_else(|| "http".to_owned());
        let host = forwarded("x-forwarded-host")
            .or_else(|| header(HOST.as_str()))
            .filter(|host| is_authority(host))
            .unwrap_or_else(|| options.bind.to_string());
        BaseUrl(format!("{scheme}://{host}"))
    }

    /// `<base><path>`.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

/// Whether `host` can be put into a URL as it is (no spaces, no path, no
/// user info): a host name or address with an optional port.
fn is_authority(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b".-_:[]".contains(&byte))
}

/// The versions document, with hrefs for this request.
pub(crate) fn document(headers: &HeaderMap, options: &ServerOptions) -> String {
    let href = match &options.public_endpoint {
        // Glance: urljoin(public_endpoint.rstrip('/') + '/', 'v2') + '/'.
        Some(endpoint) => format!("{}/v2/", endpoint.trim_end_matches('/')),
        None => BaseUrl::from_request(headers, options).join("/v2/"),
    };
    let href = super::render::python_json_string(&href);
    let entries: Vec<String> = VERSIONS
        .iter()
        .map(|(id, status)| {
            format!(
                "{{\"id\": \"{id}\", \"status\": \"{status}\", \"links\": [{{\"rel\": \"self\", \"href\": {href}}}]}}"
            )
        })
        .collect();
    format!("{{\"versions\": [{}]}}", entries.join(", "))
}

/// The versions response: 200 when asked for explicitly, 300 otherwise.
pub(crate) fn response(
    status: StatusCode,
    headers: &HeaderMap,
    options: &ServerOptions,
) -> Response {
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        document(headers, options),
    )
        .into_response()
}

/// What version negotiation decided for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Negotiated {
    /// `/versions…`: the document, 200.
    Explicit,
    /// Serve this `/v2…` path (query kept).
    V2(Uri),
    /// No version: the document, 300.
    Choices,
}

/// Version negotiation for one request.
pub(crate) fn negotiate(uri: &Uri, headers: &HeaderMap) -> Negotiated {
    let path = uri.path();
    let trimmed = path.trim_start_matches('/');
    let (first, rest) = match trimmed.find('/') {
        Some(slash) => (&trimmed[..slash], &trimmed[slash..]),
        None => (trimmed, ""),
    };
    if first == "versions" {
        return Negotiated::Explicit;
    }
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let (version, rest) = match accept.strip_prefix(VND_MIME_TYPE) {
        Some(version) => (version, path),
        None => (first, rest),
    };
    if !is_supported(version) {
        return Negotiated::Choices;
    }
    let mut rewritten = format!("/v2{rest}");
    if let Some(query) = uri.query() {
        rewritten.push('?');
        rewritten.push_str(query);
    }
    match rewritten.parse() {
        Ok(uri) => Negotiated::V2(uri),
        Err(_) => Negotiated::Choices,
    }
}

/// The version names Glance 33 routes to v2 (multi-store, no cache).
fn is_supported(version: &str) -> bool {
    version == "v2" || VERSIONS.iter().any(|(id, _)| *id == version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::test_support::headers;

    #[test]
    fn negotiation_follows_glance() {
        let none = HeaderMap::new();
        let at = |path: &str| negotiate(&path.parse().unwrap(), &none);
        assert_eq!(at("/versions"), Negotiated::Explicit);
        assert_eq!(at("/versions/anything"), Negotiated::Explicit);
        for path in [
            "/",
            "/v1",
            "/v1/",
            "/v3",
            "/foo",
            "/v2.14/images",
            "/v2.16",
            "/V2/images",
        ] {
            assert_eq!(at(path), Negotiated::Choices, "{path}");
        }
        assert_eq!(at("/v2"), Negotiated::V2("/v2".parse().unwrap()));
        assert_eq!(at("/v2/"), Negotiated::V2("/v2/".parse().unwrap()));
        assert_eq!(
            at("/v2.17/images?limit=1"),
            Negotiated::V2("/v2/images?limit=1".parse().unwrap())
        );
        assert_eq!(
            at("/v2.0/schemas/image"),
            Negotiated::V2("/v2/schemas/image".parse().unwrap())
        );
        let vnd = headers(&[("accept", "application/vnd.openstack.images-v2")]);
        assert_eq!(
            negotiate(&"/images".parse().unwrap(), &vnd),
            Negotiated::V2("/v2/images".parse().unwrap())
        );
    }

    #[test]
    fn hrefs_come_from_host_or_the_public_endpoint() {
        let options = ServerOptions::default();
        let request = headers(&[("host", "glance.example:9393")]);
        let parsed: serde_json::Value =
            serde_json::from_str(&document(&request, &options)).unwrap();
        let versions = parsed["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 16);
        assert_eq!(versions[7]["id"], "v2.17");
        assert_eq!(versions[7]["status"], "CURRENT");
        assert_eq!(
            versions[0]["links"][0]["href"],
            "http://glance.example:9393/v2/"
        );

        let public = ServerOptions {
            public_endpoint: Some("https://images.example.com/glance/".to_owned()),
            ..ServerOptions::default()
        };
        let parsed: serde_json::Value = serde_json::from_str(&document(&request, &public)).unwrap();
        assert_eq!(
            parsed["versions"][3]["links"][0]["href"],
            "https://images.example.com/glance/v2/"
        );
    }

    #[test]
    fn forwarded_headers_only_when_trusted() {
        let request = headers(&[
            ("host", "127.0.0.1:9292"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "images.example.com, proxy2"),
        ]);
        let options = ServerOptions::default();
        assert_eq!(
            BaseUrl::from_request(&request, &options).join("/v2/"),
            "http://127.0.0.1:9292/v2/"
        );
        let trusting = ServerOptions {
            trust_forwarded_headers: true,
            ..ServerOptions::default()
        };
        assert_eq!(
            BaseUrl::from_request(&request, &trusting).join("/v2/"),
            "https://images.example.com/v2/"
        );
        // A Host that is not an authority falls back to the listening address.
        let odd = headers(&[("host", "a b/c")]);
        assert_eq!(
            BaseUrl::from_request(&odd, &options).join(""),
            "http://127.0.0.1:9292"
        );
    }
}
