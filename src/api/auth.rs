//! Who is calling: the [`Authenticator`] turns a request's headers into the
//! [`RequestContext`] every handler passes to the facade.
//!
//! Modes (`[server] auth`):
//! - `noauth` (default): Glance without Keystone. A request with none of the
//!   identity headers is an administrator without a project (Glance's
//!   `unauthenticated-context`); one with `X-Project-Id`/`X-Tenant-Id`/
//!   `X-Tenant`, `X-User-Id`/`X-User` or `X-Roles`/`X-Role` acts as they say
//!   (oslo.context's `from_environ`, roles lower-cased as Glance does).
//! - `tokens`: `X-Auth-Token` is looked up in a token file; a missing or
//!   unknown token is a 401 with `WWW-Authenticate: Keystone uri="…"`, as
//!   keystonemiddleware + Glance answer. Identity headers are ignored.
//! - `keystone`: `X-Auth-Token` is validated with Keystone as
//!   keystonemiddleware's auth_token does ([`TokenValidator`]: the service's
//!   own token, a bounded TTL cache); the context is the token's project,
//!   user, roles and domain, and carries the token for Barbican. A missing,
//!   unknown, revoked or expired token is a 401 with `WWW-Authenticate:
//!   Keystone uri="<Keystone>"`; Keystone unavailable is a 503
//!   ([`AuthError::is_unavailable`]), never a default identity. Identity
//!   headers are ignored.
//!
//! This module owns the token file format and the header rules; it must
//! not decide what a caller may do (the repository's policy does), and it
//! never logs a token: only the first 8 hex digits of its SHA-256.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::HeaderMap;
use serde::Deserialize;
use sha2::Digest;

use crate::context::RequestContext;
use crate::openstack::{
    AuthToken, KeystoneUnavailable, Secret, TokenRejected, TokenValidator, ValidateError,
};

use super::options::{AuthMode, ServerOptions};

/// The header clients send their token in.
pub const AUTH_TOKEN_HEADER: &str = "x-auth-token";

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// Identity from headers, administrator by default.
    NoAuth,
    /// Identity from a token file.
    Tokens(TokenTable),
    /// Identity from Keystone's validation of the token.
    Keystone(Arc<TokenValidator>),
}

/// Why a request is not authenticated: 401, or 503 when Keystone could not
/// be asked ([`AuthError::is_unavailable`]).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `X-Auth-Token` header.
    #[error("the request has no X-Auth-Token header")]
    MissingToken,
    /// A token the token file does not hold.
    #[error("token sha256:{fingerprint}… is not in the token file")]
    UnknownToken {
        /// The first 8 hex digits of the token's SHA-256 (never the token).
        fingerprint: String,
    },
    /// Keystone rejected the token (unknown, revoked, expired, malformed).
    #[error("token sha256:{fingerprint}… is not valid")]
    TokenRejected {
        /// The first 8 hex digits of the token's SHA-256 (never the token).
        fingerprint: String,
        /// Why (Keystone's message, scrubbed of the token).
        #[source]
        reason: Box<TokenRejected>,
    },
    /// Keystone could not say whether the token is valid: 503, never a
    /// default identity.
    #[error("cannot validate token sha256:{fingerprint}… with Keystone")]
    KeystoneUnavailable {
        /// The first 8 hex digits of the token's SHA-256 (never the token).
        fingerprint: String,
        /// Why (boxed: errors stay small on the request path).
        #[source]
        reason: Box<KeystoneUnavailable>,
    },
}

impl AuthError {
    /// webob's explanation for 401 (Glance raises a bare `HTTPUnauthorized`),
    /// and keystonemiddleware's for 503.
    pub fn glance_message(&self) -> &'static str {
        match self {
            AuthError::MissingToken
            | AuthError::UnknownToken { .. }
            | AuthError::TokenRejected { .. } => {
                "This server could not verify that you are authorized to\r\naccess the document you requested.  Either you supplied the\r\nwrong credentials (e.g., bad password), or your browser\r\ndoes not understand how to supply the credentials required.\r\n"
            }
            AuthError::KeystoneUnavailable { .. } => {
                "The server is currently unavailable. Please try again at a later time."
            }
        }
    }

    /// Whether the identity service could not be asked (503) rather than
    /// the token being no good (401).
    pub fn is_unavailable(&self) -> bool {
        match self {
            AuthError::MissingToken
            | AuthError::UnknownToken { .. }
            | AuthError::TokenRejected { .. } => false,
            AuthError::KeystoneUnavailable { .. } => true,
        }
    }

    /// A stable snake_case name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "token_missing",
            AuthError::UnknownToken { .. } => "token_unknown",
            AuthError::TokenRejected { reason, .. } => {
                ValidateError::Rejected((**reason).clone()).kind()
            }
            AuthError::KeystoneUnavailable { .. } => "keystone_unavailable",
        }
    }
}

impl Authenticator {
    /// The authenticator `options` configure: `noauth`, or `tokens` with its
    /// token file read and checked now.
    ///
    /// `keystone` is the validator `auth = "keystone"` uses (built from the
    /// server's own client settings by the caller); other modes ignore it.
    ///
    /// Fails when the token file cannot be read or is invalid, or Keystone
    /// mode has no validator (so the server never starts with an
    /// authenticator that lets nobody, or anybody, in).
    pub fn from_options(
        options: &ServerOptions,
        keystone: Option<TokenValidator>,
    ) -> Result<Authenticator, TokenFileError> {
        match (options.auth, &options.token_file) {
            (AuthMode::Noauth, _) => Ok(Authenticator::NoAuth),
            (AuthMode::Tokens, Some(path)) => TokenTable::load(path).map(Authenticator::Tokens),
            (AuthMode::Tokens, None) => Err(TokenFileError::NotConfigured),
            (AuthMode::Keystone, _) => keystone
                .map(|validator| Authenticator::Keystone(Arc::new(validator)))
                .ok_or(TokenFileError::NoServiceIdentity),
        }
    }

    /// The mode's name, for logs.
    pub fn mode(&self) -> &'static str {
        match self {
            Authenticator::NoAuth => "noauth",
            Authenticator::Tokens(_) => "tokens",
            Authenticator::Keystone(_) => "keystone",
        }
    }

    /// Where a 401 sends clients to authenticate, when the mode knows it
    /// (Keystone's URL without `/v3`, as keystonemiddleware's
    /// `www_authenticate_uri`).
    pub fn www_authenticate_uri(&self) -> Option<String> {
        match self {
            Authenticator::NoAuth | Authenticator::Tokens(_) => None,
            Authenticator::Keystone(validator) => Some(validator.keystone_uri()),
        }
    }

    /// The caller of a request with these headers.
    ///
    /// Fails when the token is missing or unknown (tokens mode), rejected
    /// by Keystone, or Keystone cannot be asked (keystone mode; 503).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<RequestContext, AuthError> {
        match self {
            Authenticator::NoAuth => Ok(context_from_headers(headers)),
            Authenticator::Tokens(table) => table.lookup(token_of(headers)?),
            Authenticator::Keystone(validator) => {
                let token = token_of(headers)?;
                let fingerprint = || hex::encode(&sha256(token)[..4]);
                // A header that is not text cannot be a token: refused by
                // the validator's shape check, without asking Keystone.
                let text = std::str::from_utf8(token).unwrap_or("\u{0}");
                match validator.validate(text).await {
                    Ok(identity) => {
                        let token = Arc::new(AuthToken::new(Secret::new(text), identity));
                        Ok(token.request_context())
                    }
                    Err(ValidateError::Rejected(reason)) => Err(AuthError::TokenRejected {
                        fingerprint: fingerprint(),
                        reason: Box::new(reason),
                    }),
                    Err(ValidateError::Unavailable(reason)) => {
                        Err(AuthError::KeystoneUnavailable {
                            fingerprint: fingerprint(),
                            reason: Box::new(reason),
                        })
                    }
                }
            }
        }
    }
}

/// The `X-Auth-Token` header's bytes, or [`AuthError::MissingToken`].
fn token_of(headers: &HeaderMap) -> Result<&[u8], AuthError> {
    headers
        .get(AUTH_TOKEN_HEADER)
        .map(|value| value.as_bytes())
        .filter(|token| !token.is_empty())
        .ok_or(AuthError::MissingToken)
}

/// oslo.context's header rules, with Glance's no-auth default when no
/// identity header is present.
fn context_from_headers(headers: &HeaderMap) -> RequestContext {
    let first = |names: &[&str]| {
        names.iter().find_map(|name| {
            headers
                .get(*name)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).trim().to_owned())
        })
    };
    let project = first(&["x-project-id", "x-tenant-id", "x-tenant"]);
    let user = first(&["x-user-id", "x-user"]);
    let roles = first(&["x-roles", "x-role"]);
    if project.is_none() && user.is_none() && roles.is_none() {
        return RequestContext::local_admin();
    }
    RequestContext {
        project_id: project.filter(|project| !project.is_empty()),
        user_id: user.filter(|user| !user.is_empty()),
        roles: roles
            .iter()
            .flat_map(|roles| roles.split(','))
            .map(|role| role.trim().to_lowercase())
            .filter(|role| !role.is_empty())
            .collect(),
        ..RequestContext::default()
    }
}

/// The tokens of a token file, by the SHA-256 of the token.
#[derive(Clone)]
pub struct TokenTable {
    identities: HashMap<[u8; 32], RequestContext>,
}

impl std::fmt::Debug for TokenTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenTable")
            .field("tokens", &self.identities.len())
            .finish()
    }
}

/// The token file, as written:
///
/// ```toml
/// [[tokens]]
/// token = "s3cret"           # or token_sha256 = "<64 hex digits>"
/// project = "p1"             # optional (an administrator may have none)
/// user = "alice"             # optional
/// roles = ["member", "reader"]
/// ```
///
/// or the same as JSON (`{"tokens": [{"token": …, "roles": […]}]}`) when the
/// file name ends in `.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: Option<String>,
    token_sha256: Option<String>,
    project: Option<String>,
    user: Option<String>,
    roles: Vec<String>,
}

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// `auth = "tokens"` without `token_file`.
    #[error("[server] auth = \"tokens\" needs token_file = \"<path>\"")]
    NotConfigured,
    /// `auth = "keystone"` without the service's own client settings.
    #[error(
        "[server] auth = \"keystone\" needs the service's OpenStack client settings (OS_CLOUD, or OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, ... of a user with the service role)"
    )]
    NoServiceIdentity,
    /// The file cannot be read.
    #[error("cannot read token file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML/JSON of the documented shape.
    #[error("token file {path} is invalid: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key; never a token value).
        reason: String,
    },
    /// An entry has neither or both of `token` and `token_sha256`, an empty
    /// token, or a hash that is not 64 hex digits.
    #[error(
        "token file {path}: entry {index} needs exactly one of token (non-empty) or token_sha256 (64 hex digits)"
    )]
    Entry {
        /// The file.
        path: PathBuf,
        /// The entry's position, from 1.
        index: usize,
    },
    /// Two entries for the same token.
    #[error("token file {path}: entries {first} and {second} have the same token")]
    Duplicate {
        /// The file.
        path: PathBuf,
        /// The earlier entry, from 1.
        first: usize,
        /// The later entry, from 1.
        second: usize,
    },
}

impl TokenTable {
    /// Reads a token file (JSON when its name ends in `.json`, else TOML).
    ///
    /// Fails when it cannot be read or parsed, or an entry is malformed or
    /// repeats a token. A file readable by everyone while holding plain
    /// tokens is only warned about.
    pub fn load(path: &Path) -> Result<TokenTable, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let table = TokenTable::parse(path, &text)?;
        warn_if_world_readable(path, &text);
        Ok(table)
    }

    fn parse(path: &Path, text: &str) -> Result<TokenTable, TokenFileError> {
        let parse_error = |reason: String| TokenFileError::Parse {
            path: path.to_owned(),
            reason,
        };
        let file: TokenFile = if path.extension().is_some_and(|ext| ext == "json") {
            // serde_json's messages quote no values, only positions and keys.
            serde_json::from_str(text).map_err(|err| parse_error(err.to_string()))?
        } else {
            // toml's messages show the offending line, which may hold a
            // token: keep only the first line of the message.
            toml::from_str(text)
                .map_err(|err: toml::de::Error| parse_error(err.message().to_owned()))?
        };
        let mut identities = HashMap::new();
        let mut positions: HashMap<[u8; 32], usize> = HashMap::new();
        for (offset, entry) in file.tokens.into_iter().enumerate() {
            let index = offset + 1;
            let entry_error = || TokenFileError::Entry {
                path: path.to_owned(),
                index,
            };
            let key = match (&entry.token, &entry.token_sha256) {
                (Some(token), None) if !token.is_empty() => sha256(token.as_bytes()),
                (None, Some(hash)) => {
                    let bytes = hex::decode(hash).map_err(|_| entry_error())?;
                    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| entry_error())?
                }
                _ => return Err(entry_error()),
            };
            if let Some(first) = positions.insert(key, index) {
                return Err(TokenFileError::Duplicate {
                    path: path.to_owned(),
                    first,
                    second: index,
                });
            }
            identities.insert(
                key,
                RequestContext {
                    project_id: entry.project,
                    user_id: entry.user,
                    roles: entry.roles.iter().map(|role| role.to_lowercase()).collect(),
                    ..RequestContext::default()
                },
            );
        }
        Ok(TokenTable { identities })
    }

    /// How many tokens the table holds.
    pub fn len(&self) -> usize {
        self.identities.len()
    }

    /// Whether the table holds no token (then every request is a 401).
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    fn lookup(&self, token: &[u8]) -> Result<RequestContext, AuthError> {
        let key = sha256(token);
        self.identities
            .get(&key)
            .cloned()
            .ok_or_else(|| AuthError::UnknownToken {
                fingerprint: hex::encode(&key[..4]),
            })
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

fn warn_if_world_readable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let holds_plain_tokens = text.contains("token =") || text.contains("\"token\"");
    let world_readable = std::fs::metadata(path)
        .map(|metadata| metadata.permissions().mode() & 0o004 != 0)
        .unwrap_or(false);
    if holds_plain_tokens && world_readable {
        tracing::warn!(
            path = %path.display(),
            "the token file is readable by every user; chmod o-r it, or store token_sha256 instead of token"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::test_support::headers;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn noauth_is_admin_unless_headers_say_otherwise() {
        let auth = Authenticator::NoAuth;
        // glanceclient sends a token even without Keystone: ignored.
        let context = block_on(auth.authenticate(&headers(&[("x-auth-token", "any")]))).unwrap();
        assert_eq!(context, RequestContext::local_admin());
        let context = block_on(auth.authenticate(&headers(&[
            ("X-Tenant-Id", "p-old"),
            ("X-Project-Id", "p1"),
            ("X-User-Id", "alice"),
            ("X-Roles", "Member, reader,"),
        ])))
        .unwrap();
        assert_eq!(context.project_id.as_deref(), Some("p1"));
        assert_eq!(context.user_id.as_deref(), Some("alice"));
        assert_eq!(
            context.roles,
            vec!["member".to_owned(), "reader".to_owned()]
        );
        assert!(!context.is_admin());
        // Any identity header drops the default admin role.
        let context = block_on(auth.authenticate(&headers(&[("x-tenant-id", "p2")]))).unwrap();
        assert_eq!(context.project_id.as_deref(), Some("p2"));
        assert!(context.roles.is_empty());
    }

    #[test]
    fn token_files_in_toml_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("tokens.toml");
        let hash = hex::encode(sha256(b"hashed-token"));
        std::fs::write(
            &toml_path,
            format!(
                "[[tokens]]\ntoken = \"s3cret\"\nproject = \"p1\"\nuser = \"alice\"\nroles = [\"Member\", \"reader\"]\n\n\
                 [[tokens]]\ntoken_sha256 = \"{hash}\"\nroles = [\"admin\"]\n"
            ),
        )
        .unwrap();
        let auth = Authenticator::Tokens(TokenTable::load(&toml_path).unwrap());
        let context = block_on(auth.authenticate(&headers(&[
            ("x-auth-token", "s3cret"),
            ("x-roles", "admin"),
        ])))
        .unwrap();
        assert_eq!(context.project_id.as_deref(), Some("p1"));
        assert_eq!(
            context.roles,
            vec!["member".to_owned(), "reader".to_owned()],
            "headers are ignored"
        );
        let admin =
            block_on(auth.authenticate(&headers(&[("x-auth-token", "hashed-token")]))).unwrap();
        assert!(admin.is_admin());

        let json_path = dir.path().join("tokens.json");
        std::fs::write(
            &json_path,
            r#"{"tokens": [{"token": "t", "project": "p", "roles": []}]}"#,
        )
        .unwrap();
        assert_eq!(TokenTable::load(&json_path).unwrap().len(), 1);
    }

    #[test]
    fn missing_and_unknown_tokens_are_refused_without_revealing_them() {
        let table = TokenTable::parse(
            Path::new("t.toml"),
            "[[tokens]]\ntoken = \"good\"\nroles = []\n",
        )
        .unwrap();
        let auth = Authenticator::Tokens(table);
        assert!(matches!(
            block_on(auth.authenticate(&HeaderMap::new())),
            Err(AuthError::MissingToken)
        ));
        assert!(matches!(
            block_on(auth.authenticate(&headers(&[("x-auth-token", "")]))),
            Err(AuthError::MissingToken)
        ));
        let err = block_on(auth.authenticate(&headers(&[("x-auth-token", "guessed-token")])))
            .unwrap_err();
        assert!(!err.to_string().contains("guessed"), "{err}");
        assert!(matches!(&err, AuthError::UnknownToken { fingerprint } if fingerprint.len() == 8));
    }

    #[test]
    fn keystone_outcomes_are_401_or_503_and_never_show_the_token() {
        let rejected = AuthError::TokenRejected {
            fingerprint: "0123abcd".to_owned(),
            reason: Box::new(TokenRejected::NotRecognized {
                message: "Could not find token".to_owned(),
            }),
        };
        assert!(!rejected.is_unavailable());
        assert_eq!(rejected.kind(), "token_not_recognized");
        let unavailable = AuthError::KeystoneUnavailable {
            fingerprint: "0123abcd".to_owned(),
            reason: Box::new(KeystoneUnavailable::ServerError {
                url: "http://keystone/v3/auth/tokens".to_owned(),
                status: 500,
                message: "boom".to_owned(),
            }),
        };
        assert!(unavailable.is_unavailable());
        assert_eq!(unavailable.kind(), "keystone_unavailable");
        assert!(unavailable.glance_message().contains("unavailable"));
        assert!(rejected.to_string().contains("sha256:0123abcd"));
    }

    #[test]
    fn bad_token_files_are_named() {
        let parse = |text: &str| TokenTable::parse(Path::new("/etc/t.toml"), text).unwrap_err();
        assert!(matches!(
            parse("[[tokens]]\nroles = []\n"),
            TokenFileError::Entry { index: 1, .. }
        ));
        assert!(matches!(
            parse("[[tokens]]\ntoken = \"\"\nroles = []\n"),
            TokenFileError::Entry { .. }
        ));
        assert!(matches!(
            parse("[[tokens]]\ntoken = \"a\"\ntoken_sha256 = \"00\"\nroles = []\n"),
            TokenFileError::Entry { .. }
        ));
        assert!(matches!(
            parse("[[tokens]]\ntoken_sha256 = \"abcd\"\nroles = []\n"),
            TokenFileError::Entry { .. }
        ));
        assert!(matches!(
            parse("[[tokens]]\ntoken = \"a\"\nroles = []\n[[tokens]]\ntoken = \"a\"\nroles = []\n"),
            TokenFileError::Duplicate {
                first: 1,
                second: 2,
                ..
            }
        ));
        // A typo'd key is named; the token on that line is not repeated.
        let err = parse("[[tokens]]\ntoken = \"topsecret\"\nrole = []\n");
        let text = err.to_string();
        assert!(text.contains("role"), "{text}");
        assert!(!text.contains("topsecret"), "{text}");
        assert!(matches!(
            Authenticator::from_options(
                &ServerOptions {
                    auth: AuthMode::Tokens,
                    token_file: Some(PathBuf::from("/nonexistent/tokens.toml")),
                    ..ServerOptions::default()
                },
                None
            ),
            Err(TokenFileError::Read { .. })
        ));
        // Keystone mode without the service's own settings never starts.
        assert!(matches!(
            Authenticator::from_options(
                &ServerOptions {
                    auth: AuthMode::Keystone,
                    ..ServerOptions::default()
                },
                None
            ),
            Err(TokenFileError::NoServiceIdentity)
        ));
    }
}
