//! `ServerOptions`: the `[server]` table of the config file, as `config`
//! embeds it, with Glance's defaults.
//!
//! This module owns the option names, their defaults and their checks; it
//! must not act on them (the server loop, the authenticator and the request
//! parsers do) and reads no file itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Where `portcullis serve` listens when neither `--bind` nor `[server] bind` says.
pub const DEFAULT_BIND: &str = "127.0.0.1:9292";

/// Glance's `limit_param_default`: images per page when the request names no `limit`.
pub const DEFAULT_LIMIT_PARAM: u32 = 25;

/// Glance's `api_limit_max`: the most images one page returns, whatever `limit` says.
pub const DEFAULT_API_LIMIT_MAX: u32 = 1000;

/// The largest JSON request body (create, PATCH): oslo.middleware's
/// `max_request_body_size` default, 112 KiB. Image data is never limited by this.
pub const DEFAULT_MAX_JSON_BODY_SIZE: u64 = 114_688;

/// How long a graceful shutdown lets running uploads finish before it cancels them.
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 30;

/// keystonemiddleware's `token_cache_time` default, seconds.
pub const DEFAULT_TOKEN_CACHE_TIME: u64 = 300;

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Glance without Keystone: every request is an administrator unless the
    /// `X-Project-Id`/`X-Tenant-Id`, `X-User-Id` and `X-Roles` headers say otherwise.
    #[default]
    Noauth,
    /// `X-Auth-Token` looked up in a token file.
    Tokens,
    /// `X-Auth-Token` validated by Keystone (keystonemiddleware's
    /// auth_token), as the service user of the server's OpenStack client
    /// settings (`OS_CLOUD` or `OS_*`).
    Keystone,
}

/// The `[server]` table. Every key is optional; unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerOptions {
    /// The listening address (`--bind` wins).
    pub bind: SocketAddr,
    /// The authentication mode.
    pub auth: AuthMode,
    /// The token file for `auth = "tokens"` (TOML, or JSON when it ends in
    /// `.json`); relative to the config file's directory.
    pub token_file: Option<PathBuf>,
    /// The `uri` of `WWW-Authenticate: Keystone uri="…"` on a 401; unset:
    /// Keystone's URL with `auth = "keystone"`, else this server's own URL,
    /// as the request reached it.
    pub www_authenticate_uri: Option<String>,
    /// Seconds a Keystone token validation is reused (`auth = "keystone"`;
    /// keystonemiddleware's `token_cache_time`, 300): a revoked token keeps
    /// working here for at most this long; 0 asks Keystone every time.
    pub token_cache_time: u64,
    /// Seconds a shutdown lets running uploads finish before cancelling them.
    pub shutdown_timeout: u64,
    /// The largest JSON request body in bytes (create, PATCH).
    pub max_json_body_size: u64,
    /// Glance's `limit_param_default`.
    pub limit_param_default: u32,
    /// Glance's `api_limit_max`.
    pub api_limit_max: u32,
    /// Glance's `public_endpoint`: the base of the version-discovery hrefs
    /// (`<public_endpoint>/v2/`) instead of the request's `Host`.
    pub public_endpoint: Option<String>,
    /// Take the scheme and host of built URLs from `X-Forwarded-Proto` and
    /// `X-Forwarded-Host` (Glance's `enable_proxy_headers_parsing`); only
    /// behind a proxy that sets them.
    pub trust_forwarded_headers: bool,
    /// While this file exists, `/healthcheck` answers 503 `DISABLED BY FILE`
    /// (oslo.middleware's `disable_by_file`), to drain a node.
    pub healthcheck_disable_file: Option<PathBuf>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            bind: DEFAULT_BIND
                .parse()
                .expect("the default bind address parses"),
            auth: AuthMode::Noauth,
            token_file: None,
            www_authenticate_uri: None,
            token_cache_time: DEFAULT_TOKEN_CACHE_TIME,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT_SECS,
            max_json_body_size: DEFAULT_MAX_JSON_BODY_SIZE,
            limit_param_default: DEFAULT_LIMIT_PARAM,
            api_limit_max: DEFAULT_API_LIMIT_MAX,
            public_endpoint: None,
            trust_forwarded_headers: false,
            healthcheck_disable_file: None,
        }
    }
}

/// A `[server]` setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// `auth = "tokens"` without a token file.
    #[error(
        "[server] auth = \"tokens\" needs token_file = \"<path>\" (see README, portcullis serve)"
    )]
    TokensWithoutFile,
    /// A page limit of zero.
    #[error("[server] {key} must be at least 1")]
    ZeroLimit {
        /// `limit_param_default` or `api_limit_max`.
        key: &'static str,
    },
    /// `public_endpoint` is not an http(s) URL.
    #[error("[server] public_endpoint {value:?} is not an http:// or https:// URL")]
    PublicEndpoint {
        /// The value.
        value: String,
    },
}

impl ServerOptions {
    /// Makes the relative paths in these options relative to `base` (the
    /// config file's directory), as `config` does for `cert_dir`.
    pub fn resolve_paths(&mut self, base: &Path) {
        for path in [&mut self.token_file, &mut self.healthcheck_disable_file]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Checks the combinations a type cannot.
    ///
    /// Fails on `auth = "tokens"` without a token file, a zero page limit, or
    /// a `public_endpoint` that is not an http(s) URL.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.auth == AuthMode::Tokens && self.token_file.is_none() {
            return Err(OptionsError::TokensWithoutFile);
        }
        if self.limit_param_default == 0 {
            return Err(OptionsError::ZeroLimit {
                key: "limit_param_default",
            });
        }
        if self.api_limit_max == 0 {
            return Err(OptionsError::ZeroLimit {
                key: "api_limit_max",
            });
        }
        if let Some(endpoint) = &self.public_endpoint {
            let parsed = url::Url::parse(endpoint).ok();
            if !parsed.is_some_and(|url| matches!(url.scheme(), "http" | "https")) {
                return Err(OptionsError::PublicEndpoint {
                    value: endpoint.clone(),
                });
            }
        }
        Ok(())
    }

    /// The shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_glances() {
        let options: ServerOptions = toml::from_str("").unwrap();
        assert_eq!(options, ServerOptions::default());
        assert_eq!(options.bind.to_string(), "127.0.0.1:9292");
        assert_eq!(options.limit_param_default, 25);
        assert_eq!(options.api_limit_max, 1000);
        assert_eq!(options.auth, AuthMode::Noauth);
        options.validate().unwrap();
    }

    #[test]
    fn checks_name_the_key() {
        let options: ServerOptions = toml::from_str("auth = \"tokens\"\n").unwrap();
        assert_eq!(
            options.validate().unwrap_err(),
            OptionsError::TokensWithoutFile
        );
        let options: ServerOptions = toml::from_str("api_limit_max = 0\n").unwrap();
        assert!(
            options
                .validate()
                .unwrap_err()
                .to_string()
                .contains("api_limit_max")
        );
        let options: ServerOptions = toml::from_str("public_endpoint = \"ftp://x\"\n").unwrap();
        assert!(matches!(
            options.validate().unwrap_err(),
            OptionsError::PublicEndpoint { .. }
        ));
        let err = toml::from_str::<ServerOptions>("bind = \"nowhere\"\n").unwrap_err();
        assert!(err.to_string().contains("bind"), "{err}");
        let err = toml::from_str::<ServerOptions>("auth = \"kerberos\"\n").unwrap_err();
        assert!(err.to_string().contains("auth"), "{err}");
        let options: ServerOptions = toml::from_str("auth = \"keystone\"\n").unwrap();
        assert_eq!(options.auth, AuthMode::Keystone);
        let err = toml::from_str::<ServerOptions>("bnid = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("bnid"), "{err}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let mut options: ServerOptions =
            toml::from_str("auth = \"tokens\"\ntoken_file = \"tokens.toml\"\n").unwrap();
        options.resolve_paths(Path::new("/etc/portcullis"));
        assert_eq!(
            options.token_file.as_deref(),
            Some(Path::new("/etc/portcullis/tokens.toml"))
        );
        let mut options: ServerOptions = toml::from_str("token_file = \"/abs/t.json\"\n").unwrap();
        options.resolve_paths(Path::new("/etc/portcullis"));
        assert_eq!(
            options.token_file.as_deref(),
            Some(Path::new("/abs/t.json"))
        );
    }
}
