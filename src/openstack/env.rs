//! The `OS_*` environment variables openstackclient and keystoneauth read,
//! as one settings layer, and the process environment as an injectable
//! value ([`Environment`]) so that tests and the server decide what is read.
//!
//! This module owns the variable names. It must not print variable
//! values: `Environment`'s `Debug` lists names only.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::secret::Secret;
use super::settings::{RawSettings, SettingsError};

/// A snapshot of environment variables and the working directory (where
/// `./clouds.yaml` is looked for).
#[derive(Clone)]
pub struct Environment {
    vars: BTreeMap<String, String>,
    cwd: PathBuf,
    site_config_dir: PathBuf,
}

/// openstacksdk's site-wide config directory.
const SITE_CONFIG_DIR: &str = "/etc/openstack";

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: OS_PASSWORD and OS_TOKEN live here.
        f.debug_struct("Environment")
            .field("names", &self.vars.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .field("site_config_dir", &self.site_config_dir)
            .finish()
    }
}

impl Environment {
    /// The process's environment and working directory.
    pub fn from_process() -> Environment {
        Environment {
            vars: std::env::vars_os()
                .filter_map(|(name, value)| {
                    Some((name.into_string().ok()?, value.into_string().ok()?))
                })
                .collect(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            site_config_dir: PathBuf::from(SITE_CONFIG_DIR),
        }
    }

    /// An environment made of `vars`, with `cwd` as working directory.
    pub fn new<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
        cwd: impl Into<PathBuf>,
    ) -> Environment {
        Environment {
            vars: vars
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
            cwd: cwd.into(),
            site_config_dir: PathBuf::from(SITE_CONFIG_DIR),
        }
    }

    /// The same environment with another site-wide config directory
    /// (instead of `/etc/openstack`), for tests.
    pub fn with_site_config_dir(self, dir: impl Into<PathBuf>) -> Environment {
        Environment {
            site_config_dir: dir.into(),
            ..self
        }
    }

    /// Where site-wide clouds.yaml lives (`/etc/openstack`).
    pub fn site_config_dir(&self) -> &std::path::Path {
        &self.site_config_dir
    }

    /// A variable's value; empty counts as unset, as in openstackclient.
    pub fn var(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .filter(|value| !value.is_empty())
            .cloned()
    }

    /// The working directory.
    pub fn cwd(&self) -> &std::path::Path {
        &self.cwd
    }

    fn secret(&self, name: &str) -> Option<Secret> {
        self.var(name).map(Secret::new)
    }

    fn first(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|name| self.var(name))
    }

    /// The `OS_*` layer (`OS_AUTH_URL`, `OS_USERNAME`, ... `OS_INSECURE`;
    /// the legacy `OS_TENANT_NAME`/`OS_TENANT_ID` and `OS_ENDPOINT_TYPE` too).
    ///
    /// Fails when `OS_INSECURE` is not a boolean.
    pub fn raw_settings(&self) -> Result<RawSettings, SettingsError> {
        Ok(RawSettings {
            auth_type: self.var("OS_AUTH_TYPE"),
            auth_url: self.var("OS_AUTH_URL"),
            username: self.var("OS_USERNAME"),
            user_id: self.var("OS_USER_ID"),
            password: self.secret("OS_PASSWORD"),
            user_domain_name: self.var("OS_USER_DOMAIN_NAME"),
            user_domain_id: self.var("OS_USER_DOMAIN_ID"),
            project_name: self.first(&["OS_PROJECT_NAME", "OS_TENANT_NAME"]),
            project_id: self.first(&["OS_PROJECT_ID", "OS_TENANT_ID"]),
            project_domain_name: self.var("OS_PROJECT_DOMAIN_NAME"),
            project_domain_id: self.var("OS_PROJECT_DOMAIN_ID"),
            domain_name: self.var("OS_DOMAIN_NAME"),
            domain_id: self.var("OS_DOMAIN_ID"),
            default_domain: self.var("OS_DEFAULT_DOMAIN"),
            application_credential_id: self.var("OS_APPLICATION_CREDENTIAL_ID"),
            application_credential_name: self.var("OS_APPLICATION_CREDENTIAL_NAME"),
            application_credential_secret: self.secret("OS_APPLICATION_CREDENTIAL_SECRET"),
            token: self.secret("OS_TOKEN"),
            region_name: self.var("OS_REGION_NAME"),
            interface: self.first(&["OS_INTERFACE", "OS_ENDPOINT_TYPE"]),
            cacert: self.var("OS_CACERT").map(PathBuf::from),
            insecure: match self.var("OS_INSECURE") {
                Some(value) => Some(parse_bool("OS_INSECURE", &value)?),
                None => None,
            },
        })
    }
}

/// oslo's boolean words, strictly: anything else is an error rather than
/// a silent `false` (an `OS_INSECURE=ture` typo must not pass unnoticed).
pub(crate) fn parse_bool(name: &str, value: &str) -> Result<bool, SettingsError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
        _ => Err(SettingsError::NotABoolean {
            name: name.to_owned(),
            value: value.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_os_variables() {
        let env = Environment::new(
            [
                ("OS_AUTH_URL", "http://k:5000/v3"),
                ("OS_USERNAME", "alice"),
                ("OS_PASSWORD", "pw-in-env"),
                ("OS_TENANT_NAME", "legacy"),
                ("OS_PROJECT_DOMAIN_ID", "default"),
                ("OS_USER_DOMAIN_NAME", "Default"),
                ("OS_ENDPOINT_TYPE", "internalURL"),
                ("OS_INSECURE", "True"),
                ("OS_REGION_NAME", ""),
            ],
            "/",
        );
        let raw = env.raw_settings().unwrap();
        assert_eq!(raw.auth_url.as_deref(), Some("http://k:5000/v3"));
        assert_eq!(raw.password, Some(Secret::new("pw-in-env")));
        assert_eq!(raw.project_name.as_deref(), Some("legacy"));
        assert_eq!(raw.interface.as_deref(), Some("internalURL"));
        assert_eq!(raw.insecure, Some(true));
        assert_eq!(raw.region_name, None, "empty means unset");
        let debug = format!("{env:?} {raw:?}");
        assert!(!debug.contains("pw-in-env"), "{debug}");
        assert!(debug.contains("OS_PASSWORD"), "{debug}");
    }

    #[test]
    fn booleans_are_strict() {
        let env = Environment::new([("OS_INSECURE", "ture")], "/");
        let err = env.raw_settings().unwrap_err();
        assert!(err.to_string().contains("OS_INSECURE"), "{err}");
        assert!(!parse_bool("x", "no").unwrap());
    }
}
