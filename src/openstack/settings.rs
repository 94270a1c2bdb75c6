//! Client settings for talking to OpenStack: the three layers users already
//! have from keystoneauth and openstackclient (command-line flags, `OS_*`
//! environment variables, a `clouds.yaml` cloud), merged with their
//! precedence (flag > environment > clouds.yaml) and resolved once into
//! [`ClientSettings`].
//!
//! This module owns the merge, the choice of authentication method and
//! scope, and the checks that a usable combination was given. It must not
//! do network IO, and it must never put a password, secret or token into
//! an error message or a `Debug` string ([`Secret`] fields only).

use std::path::PathBuf;

use super::catalog::Interface;
use super::clouds;
use super::env::Environment;
use super::secret::Secret;

/// One layer of client settings, with keystoneauth's option names
/// (`auth_url`, `username`, `project_domain_name`...); every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSettings {
    /// `auth_type` / `OS_AUTH_TYPE`: `password`, `v3password`, `token`,
    /// `v3token`, `v3applicationcredential` (or `application_credential`).
    pub auth_type: Option<String>,
    /// Keystone's URL (`http://keystone:5000` or `.../v3`).
    pub auth_url: Option<String>,
    /// User name (needs a user domain).
    pub username: Option<String>,
    /// User id.
    pub user_id: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// Domain of the user, by name.
    pub user_domain_name: Option<String>,
    /// Domain of the user, by id.
    pub user_domain_id: Option<String>,
    /// Project scope, by name (needs a project domain).
    pub project_name: Option<String>,
    /// Project scope, by id.
    pub project_id: Option<String>,
    /// Domain of the project, by name.
    pub project_domain_name: Option<String>,
    /// Domain of the project, by id.
    pub project_domain_id: Option<String>,
    /// Domain scope, by name (instead of a project).
    pub domain_name: Option<String>,
    /// Domain scope, by id.
    pub domain_id: Option<String>,
    /// Default for the user and project domains (`OS_DEFAULT_DOMAIN`; keystoneauth's default is `default`).
    pub default_domain: Option<String>,
    /// Application credential id.
    pub application_credential_id: Option<String>,
    /// Application credential name (needs the user).
    pub application_credential_name: Option<String>,
    /// Application credential secret.
    pub application_credential_secret: Option<Secret>,
    /// An existing token (`OS_TOKEN`), exchanged for a scoped one.
    pub token: Option<Secret>,
    /// Region of the endpoints to use.
    pub region_name: Option<String>,
    /// Endpoint interface (`public`, `internal`, `admin`).
    pub interface: Option<String>,
    /// CA bundle (PEM) to trust for HTTPS, instead of the system's roots.
    pub cacert: Option<PathBuf>,
    /// Skip TLS certificate verification.
    pub insecure: Option<bool>,
}

impl RawSettings {
    /// Field by field: `self`'s value where it has one, else `lower`'s.
    pub fn over(self, lower: RawSettings) -> RawSettings {
        RawSettings {
            auth_type: self.auth_type.or(lower.auth_type),
            auth_url: self.auth_url.or(lower.auth_url),
            username: self.username.or(lower.username),
            user_id: self.user_id.or(lower.user_id),
            password: self.password.or(lower.password),
            user_domain_name: self.user_domain_name.or(lower.user_domain_name),
            user_domain_id: self.user_domain_id.or(lower.user_domain_id),
            project_name: self.project_name.or(lower.project_name),
            project_id: self.project_id.or(lower.project_id),
            project_domain_name: self.project_domain_name.or(lower.project_domain_name),
            project_domain_id: self.project_domain_id.or(lower.project_domain_id),
            domain_name: self.domain_name.or(lower.domain_name),
            domain_id: self.domain_id.or(lower.domain_id),
            default_domain: self.default_domain.or(lower.default_domain),
            application_credential_id: self
                .application_credential_id
                .or(lower.application_credential_id),
            application_credential_name: self
                .application_credential_name
                .or(lower.application_credential_name),
            application_credential_secret: self
                .application_credential_secret
                .or(lower.application_credential_secret),
            token: self.token.or(lower.token),
            region_name: self.region_name.or(lower.region_name),
            interface: self.interface.or(lower.interface),
            cacert: self.cacert.or(lower.cacert),
            insecure: self.insecure.or(lower.insecure),
        }
    }

    /// Whether this layer says anything about authentication; an
    /// environment without any `OS_*` auth setting lets a lone cloud in
    /// clouds.yaml be the default, as openstacksdk does.
    pub(crate) fn has_auth(&self) -> bool {
        self.auth_url.is_some()
            || self.username.is_some()
            || self.user_id.is_some()
            || self.password.is_some()
            || self.token.is_some()
            || self.application_credential_id.is_some()
            || self.application_credential_secret.is_some()
    }
}

/// A domain, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    /// `{"id": ...}`.
    Id(String),
    /// `{"name": ...}`.
    Name(String),
}

/// A user, by id or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// `{"id": ...}`.
    Id(String),
    /// `{"name": ..., "domain": ...}`.
    Name {
        /// The user name.
        name: String,
        /// Its domain.
        domain: DomainRef,
    },
}

/// A project, by id or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    /// `{"id": ...}`.
    Id(String),
    /// `{"name": ..., "domain": ...}`.
    Name {
        /// The project name.
        name: String,
        /// Its domain.
        domain: DomainRef,
    },
}

/// How the client proves who it is (Keystone v3 auth methods).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Method `password`.
    Password {
        /// The user.
        user: UserRef,
        /// The password.
        password: Secret,
    },
    /// Method `application_credential`: carries its own scope.
    ApplicationCredential {
        /// The credential by id, or by name for a user.
        id: Option<String>,
        /// Its name (with `user`), when no id is given.
        name: Option<String>,
        /// The owner, needed with a name.
        user: Option<UserRef>,
        /// The secret.
        secret: Secret,
    },
    /// Method `token`: an existing token exchanged for a scoped one.
    Token {
        /// The token.
        token: Secret,
    },
}

/// What the token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// No scope (no catalog, no roles): enough for nothing but Keystone itself.
    Unscoped,
    /// A project.
    Project(ProjectRef),
    /// A domain.
    Domain(DomainRef),
}

/// How HTTPS connections are checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM bundle of CA certificates to trust in addition to the system's roots.
    pub cacert: Option<PathBuf>,
    /// Accept any server certificate (`--insecure`, `OS_INSECURE`, `verify: false`).
    pub insecure: bool,
}

/// Resolved, usable client settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// Keystone's v3 root, without a trailing slash (`https://keystone:5000/v3`).
    pub auth_url: String,
    /// How to authenticate.
    pub credentials: Credentials,
    /// What to scope the token to.
    pub scope: Scope,
    /// Region of the endpoints to pick from the catalog.
    pub region_name: Option<String>,
    /// Interface of the endpoints to pick from the catalog.
    pub interface: Interface,
    /// TLS checks.
    pub tls: TlsSettings,
    /// Where the settings came from, for error messages (`cloud "alice" in ./clouds.yaml`, `OS_* environment`).
    pub origin: String,
}

/// Client settings that cannot be used; every message says what to set.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// `OS_CLOUD`/`--os-cloud` names a cloud but no clouds.yaml exists.
    #[error(
        "OS_CLOUD/--os-cloud names cloud {cloud:?} but no clouds.yaml was found (looked for {}); set OS_CLIENT_CONFIG_FILE or create one",
        .searched.join(", ")
    )]
    NoCloudsFile {
        /// The cloud asked for.
        cloud: String,
        /// The files looked for.
        searched: Vec<String>,
    },
    /// The cloud is not in the file.
    #[error("cloud {cloud:?} is not in {path} (clouds there: {})", .available.join(", "))]
    CloudNotFound {
        /// The cloud asked for.
        cloud: String,
        /// The file read.
        path: PathBuf,
        /// The clouds the file has.
        available: Vec<String>,
    },
    /// A clouds.yaml or secure.yaml cannot be read.
    #[error("cannot read {path}")]
    CloudsFileRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A clouds.yaml or secure.yaml is not the expected YAML shape.
    #[error("{path} is not a valid clouds.yaml: {reason}")]
    CloudsFileInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (never a value).
        reason: String,
    },
    /// A boolean setting has another value.
    #[error("{name}={value:?} is not a boolean (use true or false)")]
    NotABoolean {
        /// The setting (`OS_INSECURE`, `verify`).
        name: String,
        /// The value given.
        value: String,
    },
    /// No Keystone URL anywhere.
    #[error(
        "no Keystone URL: set OS_AUTH_URL (or --os-auth-url), or OS_CLOUD with a clouds.yaml whose cloud has auth.auth_url"
    )]
    MissingAuthUrl,
    /// The Keystone URL is not an http(s) URL or names identity v2.
    #[error("auth_url {url:?} {reason}")]
    BadAuthUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// `auth_type` names a method portcullis does not implement.
    #[error(
        "auth_type {value:?} is not supported (use password, token or v3applicationcredential)"
    )]
    UnsupportedAuthType {
        /// The value given.
        value: String,
    },
    /// The chosen method lacks a value.
    #[error("{method} authentication needs {what} ({from}): {hint}")]
    Incomplete {
        /// The method (`password`, `token`, `application credential`).
        method: &'static str,
        /// What is missing.
        what: &'static str,
        /// Where the settings came from.
        from: String,
        /// What to set.
        hint: &'static str,
    },
    /// No credentials at all.
    #[error(
        "no OpenStack credentials ({from}): set OS_USERNAME and OS_PASSWORD, OS_APPLICATION_CREDENTIAL_ID and OS_APPLICATION_CREDENTIAL_SECRET, or OS_TOKEN (or OS_CLOUD with a clouds.yaml)"
    )]
    NoCredentials {
        /// Where the settings came from.
        from: String,
    },
    /// `interface` is not public, internal or admin.
    #[error("interface {value:?} is not one of public, internal, admin")]
    BadInterface {
        /// The value given.
        value: String,
    },
    /// The CA bundle cannot be read or holds no certificate.
    #[error("cannot use CA bundle {path}: {reason}")]
    CaCert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTPS client")]
    HttpClient {
        /// The client library's error.
        #[source]
        source: reqwest::Error,
    },
}

/// keystoneauth's default user and project domain when none is given.
const DEFAULT_DOMAIN_ID: &str = "default";

impl ClientSettings {
    /// Loads the settings a command line gives: `flags` (already parsed
    /// `--os-*` options), `cloud` (`--os-cloud`), then the environment
    /// (`OS_*`), then clouds.yaml (the cloud named by `--os-cloud` or
    /// `OS_CLOUD`, or the only cloud in the file when nothing else names
    /// credentials), in that order of precedence.
    ///
    /// Fails when a named cloud or its file is missing, a file is invalid,
    /// or the merged settings lack what the chosen method needs.
    pub fn load(
        flags: RawSettings,
        cloud: Option<&str>,
        env: &Environment,
    ) -> Result<ClientSettings, SettingsError> {
        let from_env = env.raw_settings()?;
        let cloud_name = cloud.map(str::to_owned).or_else(|| env.var("OS_CLOUD"));
        let explicit = flags.clone().over(from_env.clone());
        let (from_cloud, origin) = match cloud_name {
            Some(name) => {
                let (raw, path) = clouds::load_cloud(&name, env)?;
                (raw, format!("cloud {name:?} in {}", path.display()))
            }
            None if !explicit.has_auth() => match clouds::load_only_cloud(env)? {
                Some((name, raw, path)) => (raw, format!("cloud {name:?} in {}", path.display())),
                None => (RawSettings::default(), "no OS_* settings".to_owned()),
            },
            None => (
                RawSettings::default(),
                "OS_* environment and flags".to_owned(),
            ),
        };
        ClientSettings::resolve(explicit.over(from_cloud), origin)
    }

    /// Turns merged settings into a usable set: the auth method (`auth_type`,
    /// else inferred: a user → password, an application-credential secret →
    /// application credential, a token → token), the scope, the interface.
    ///
    /// Fails naming what is missing and what to set.
    pub fn resolve(raw: RawSettings, origin: String) -> Result<ClientSettings, SettingsError> {
        let auth_url = normalize_auth_url(raw.auth_url.as_deref())?;
        let default_domain = raw
            .default_domain
            .clone()
            .unwrap_or_else(|| DEFAULT_DOMAIN_ID.to_owned());
        let domain = |id: &Option<String>, name: &Option<String>| match (id, name) {
            (Some(id), _) => DomainRef::Id(id.clone()),
            (None, Some(name)) => DomainRef::Name(name.clone()),
            (None, None) => DomainRef::Id(default_domain.clone()),
        };
        let user = match (&raw.user_id, &raw.username) {
            (Some(id), _) => Some(UserRef::Id(id.clone())),
            (None, Some(name)) => Some(UserRef::Name {
                name: name.clone(),
                domain: domain(&raw.user_domain_id, &raw.user_domain_name),
            }),
            (None, None) => None,
        };
        let method = match raw.auth_type.as_deref() {
            Some("password" | "v3password") => Method::Password,
            Some("token" | "v3token") => Method::Token,
            Some(
                "v3applicationcredential"
                | "applicationcredential"
                | "application_credential"
                | "v3_application_credential",
            ) => Method::ApplicationCredential,
            Some(other) => {
                return Err(SettingsError::UnsupportedAuthType {
                    value: other.to_owned(),
                });
            }
            None if user.is_some() && raw.password.is_some() => Method::Password,
            None if raw.application_credential_secret.is_some() => Method::ApplicationCredential,
            None if raw.token.is_some() => Method::Token,
            None if user.is_some() => Method::Password,
            None => return Err(SettingsError::NoCredentials { from: origin }),
        };
        let incomplete = |method, what, hint| SettingsError::Incomplete {
            method,
            what,
            from: origin.clone(),
            hint,
        };
        let credentials = match method {
            Method::Password => Credentials::Password {
                user: user.clone().ok_or_else(|| {
                    incomplete(
                        "password",
                        "a user",
                        "set OS_USERNAME (with OS_USER_DOMAIN_NAME) or OS_USER_ID",
                    )
                })?,
                password: raw
                    .password
                    .clone()
                    .ok_or_else(|| incomplete("password", "a password", "set OS_PASSWORD"))?,
            },
            Method::Token => Credentials::Token {
                token: raw
                    .token
                    .clone()
                    .ok_or_else(|| incomplete("token", "a token", "set OS_TOKEN"))?,
            },
            Method::ApplicationCredential => {
                let secret = raw.application_credential_secret.clone().ok_or_else(|| {
                    incomplete(
                        "application credential",
                        "a secret",
                        "set OS_APPLICATION_CREDENTIAL_SECRET",
                    )
                })?;
                if raw.application_credential_id.is_none()
                    && (raw.application_credential_name.is_none() || user.is_none())
                {
                    return Err(incomplete(
                        "application credential",
                        "an id, or a name and its user",
                        "set OS_APPLICATION_CREDENTIAL_ID, or OS_APPLICATION_CREDENTIAL_NAME with OS_USERNAME",
                    ));
                }
                Credentials::ApplicationCredential {
                    id: raw.application_credential_id.clone(),
                    name: raw.application_credential_name.clone(),
                    user: user.clone(),
                    secret,
                }
            }
        };
        // An application credential carries its own scope; Keystone refuses another.
        let scope = match (&credentials, &raw.project_id, &raw.project_name) {
            (Credentials::ApplicationCredential { .. }, _, _) => Scope::Unscoped,
            (_, Some(id), _) => Scope::Project(ProjectRef::Id(id.clone())),
            (_, None, Some(name)) => Scope::Project(ProjectRef::Name {
                name: name.clone(),
                domain: domain(&raw.project_domain_id, &raw.project_domain_name),
            }),
            (_, None, None) => match (&raw.domain_id, &raw.domain_name) {
                (Some(id), _) => Scope::Domain(DomainRef::Id(id.clone())),
                (None, Some(name)) => Scope::Domain(DomainRef::Name(name.clone())),
                (None, None) => Scope::Unscoped,
            },
        };
        let interface = match raw.interface.as_deref() {
            None => Interface::Public,
            Some(text) => Interface::parse(text).ok_or_else(|| SettingsError::BadInterface {
                value: text.to_owned(),
            })?,
        };
        Ok(ClientSettings {
            auth_url,
            credentials,
            scope,
            region_name: raw.region_name.clone(),
            interface,
            tls: TlsSettings {
                cacert: raw.cacert.clone(),
                insecure: raw.insecure.unwrap_or(false),
            },
            origin,
        })
    }

    /// Every secret these settings hold, for scrubbing server messages.
    pub(crate) fn secrets(&self) -> Vec<&Secret> {
        match &self.credentials {
            Credentials::Password { password, .. } => vec![password],
            Credentials::ApplicationCredential { secret, .. } => vec![secret],
            Credentials::Token { token } => vec![token],
        }
    }

    /// The value of `WWW-Authenticate` a service answers 401 with, as
    /// keystonemiddleware does (`Keystone uri="<Keystone without /v3>"`).
    pub fn www_authenticate(&self) -> String {
        format!("Keystone uri=\"{}\"", self.keystone_uri())
    }

    /// Keystone's URL without `/v3` (keystonemiddleware's `www_authenticate_uri`).
    pub fn keystone_uri(&self) -> &str {
        self.auth_url.strip_suffix("/v3").unwrap_or(&self.auth_url)
    }
}

enum Method {
    Password,
    Token,
    ApplicationCredential,
}

/// Keystone's v3 root from what users write: `http://k:5000`, `http://k:5000/`,
/// `http://k:5000/v3/` all become `http://k:5000/v3` (keystoneauth finds it by
/// discovery; portcullis speaks v3 only).
fn normalize_auth_url(url: Option<&str>) -> Result<String, SettingsError> {
    let text = url.ok_or(SettingsError::MissingAuthUrl)?;
    let bad = |reason: &str| SettingsError::BadAuthUrl {
        url: text.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = url::Url::parse(text).map_err(|_| bad("is not a URL"))?;
    match parsed.scheme() {
        "http" | "https" => {}
        _ => return Err(bad("is not an http or https URL")),
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    let trimmed = text.trim_end_matches('/');
    if trimmed.ends_with("/v2.0") || trimmed.ends_with("/v2") {
        return Err(bad(
            "names Keystone's identity v2 API, which is gone; use the v3 URL",
        ));
    }
    if trimmed.ends_with("/v3") {
        Ok(trimmed.to_owned())
    } else {
        Ok(format!("{trimmed}/v3"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawSettings {
        RawSettings {
            auth_url: Some("http://keystone:5000/".to_owned()),
            username: Some("alice".to_owned()),
            password: Some(Secret::new("s3cret-pass")),
            project_name: Some("demo".to_owned()),
            ..RawSettings::default()
        }
    }

    #[test]
    fn password_with_project_name_defaults_domains_to_default() {
        let settings = ClientSettings::resolve(raw(), "test".to_owned()).unwrap();
        assert_eq!(settings.auth_url, "http://keystone:5000/v3");
        assert_eq!(
            settings.credentials,
            Credentials::Password {
                user: UserRef::Name {
                    name: "alice".to_owned(),
                    domain: DomainRef::Id("default".to_owned())
                },
                password: Secret::new("s3cret-pass"),
            }
        );
        assert_eq!(
            settings.scope,
            Scope::Project(ProjectRef::Name {
                name: "demo".to_owned(),
                domain: DomainRef::Id("default".to_owned())
            })
        );
        assert_eq!(settings.interface, Interface::Public);
        assert_eq!(
            settings.www_authenticate(),
            "Keystone uri=\"http://keystone:5000\""
        );
    }

    #[test]
    fn methods_are_inferred_or_named() {
        let token = RawSettings {
            auth_url: Some("https://k/identity/v3".to_owned()),
            token: Some(Secret::new("gAAAA-token")),
            project_id: Some("p1".to_owned()),
            ..RawSettings::default()
        };
        let settings = ClientSettings::resolve(token, "t".to_owned()).unwrap();
        assert!(matches!(settings.credentials, Credentials::Token { .. }));
        assert_eq!(settings.auth_url, "https://k/identity/v3");
        assert_eq!(settings.scope, Scope::Project(ProjectRef::Id("p1".into())));

        let appcred = RawSettings {
            auth_url: Some("https://k".to_owned()),
            application_credential_id: Some("ac1".to_owned()),
            application_credential_secret: Some(Secret::new("ac-secret")),
            project_name: Some("ignored".to_owned()),
            ..RawSettings::default()
        };
        let settings = ClientSettings::resolve(appcred, "t".to_owned()).unwrap();
        assert!(matches!(
            settings.credentials,
            Credentials::ApplicationCredential { .. }
        ));
        assert_eq!(settings.scope, Scope::Unscoped);

        let named = RawSettings {
            auth_type: Some("v3token".to_owned()),
            ..raw()
        };
        let err = ClientSettings::resolve(named, "t".to_owned()).unwrap_err();
        assert!(err.to_string().contains("OS_TOKEN"), "{err}");

        let unknown = RawSettings {
            auth_type: Some("v3oidcpassword".to_owned()),
            ..raw()
        };
        assert!(matches!(
            ClientSettings::resolve(unknown, "t".to_owned()),
            Err(SettingsError::UnsupportedAuthType { .. })
        ));
    }

    #[test]
    fn missing_pieces_name_what_to_set() {
        let no_url = RawSettings {
            auth_url: None,
            ..raw()
        };
        assert!(matches!(
            ClientSettings::resolve(no_url, "t".into()),
            Err(SettingsError::MissingAuthUrl)
        ));
        let no_password = RawSettings {
            password: None,
            ..raw()
        };
        let err = ClientSettings::resolve(no_password, "t".into()).unwrap_err();
        assert!(err.to_string().contains("OS_PASSWORD"), "{err}");
        let nothing = RawSettings {
            auth_url: Some("http://k".into()),
            ..RawSettings::default()
        };
        assert!(matches!(
            ClientSettings::resolve(nothing, "t".into()),
            Err(SettingsError::NoCredentials { .. })
        ));
        for bad in [
            "ftp://k/v3",
            "not a url",
            "http://k:5000/v2.0",
            "http://k/v3?x=1",
        ] {
            let settings = RawSettings {
                auth_url: Some(bad.into()),
                ..raw()
            };
            assert!(
                matches!(
                    ClientSettings::resolve(settings, "t".into()),
                    Err(SettingsError::BadAuthUrl { .. })
                ),
                "{bad}"
            );
        }
        let interface = RawSettings {
            interface: Some("private".into()),
            ..raw()
        };
        assert!(matches!(
            ClientSettings::resolve(interface, "t".into()),
            Err(SettingsError::BadInterface { .. })
        ));
    }

    #[test]
    fn upper_layers_win_field_by_field() {
        let flags = RawSettings {
            project_name: Some("flag-project".into()),
            ..RawSettings::default()
        };
        let env = RawSettings {
            project_name: Some("env-project".into()),
            region_name: Some("env-region".into()),
            ..RawSettings::default()
        };
        let cloud = RawSettings {
            region_name: Some("cloud-region".into()),
            interface: Some("internal".into()),
            ..raw()
        };
        let merged = flags.over(env).over(cloud);
        assert_eq!(merged.project_name.as_deref(), Some("flag-project"));
        assert_eq!(merged.region_name.as_deref(), Some("env-region"));
        assert_eq!(merged.interface.as_deref(), Some("internal"));
        assert_eq!(merged.username.as_deref(), Some("alice"));
    }
}
