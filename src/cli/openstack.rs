//! The `--os-*` options every command that talks to OpenStack shares, named
//! as openstackclient names them, and the key-manager choice.
//!
//! This file only parses and lowers to [`crate::openstack::RawSettings`];
//! the precedence (flag > `OS_*` > clouds.yaml) lives in the library. It
//! must not print option values: passwords, secrets and tokens are
//! [`Secret`]s from the moment clap parses them.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::config::KeyManagerKind;
use crate::openstack::{ClientSettings, Environment, RawSettings, Secret, SettingsError};

/// `--key-manager` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyManagerArg {
    /// `--cert-dir`: `<uuid>.pem` files in a directory (the default).
    Directory,
    /// Barbican from the Keystone catalog, with the OpenStack client settings.
    Barbican,
}

impl From<KeyManagerArg> for KeyManagerKind {
    fn from(arg: KeyManagerArg) -> KeyManagerKind {
        match arg {
            KeyManagerArg::Directory => KeyManagerKind::Directory,
            KeyManagerArg::Barbican => KeyManagerKind::Barbican,
        }
    }
}

/// OpenStack client settings on the command line (each overrides its `OS_*`
/// variable, which overrides clouds.yaml).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "OpenStack client settings (default: OS_* variables, clouds.yaml)")]
pub(crate) struct OpenStackArgs {
    /// Cloud in clouds.yaml [env: OS_CLOUD].
    #[arg(long, value_name = "NAME")]
    os_cloud: Option<String>,
    /// Keystone URL [env: OS_AUTH_URL].
    #[arg(long, value_name = "URL")]
    os_auth_url: Option<String>,
    /// Authentication method: password, token, v3applicationcredential [env: OS_AUTH_TYPE].
    #[arg(long, value_name = "TYPE")]
    os_auth_type: Option<String>,
    /// User name [env: OS_USERNAME].
    #[arg(long, value_name = "NAME")]
    os_username: Option<String>,
    /// User id [env: OS_USER_ID].
    #[arg(long, value_name = "ID")]
    os_user_id: Option<String>,
    /// Password; prefer OS_PASSWORD or clouds.yaml, which other users cannot see in the process list [env: OS_PASSWORD].
    #[arg(long, value_name = "PASSWORD")]
    os_password: Option<Secret>,
    /// Project name [env: OS_PROJECT_NAME].
    #[arg(long, value_name = "NAME")]
    os_project_name: Option<String>,
    /// Project id [env: OS_PROJECT_ID].
    #[arg(long, value_name = "ID")]
    os_project_id: Option<String>,
    /// User's domain name [env: OS_USER_DOMAIN_NAME].
    #[arg(long, value_name = "NAME")]
    os_user_domain_name: Option<String>,
    /// User's domain id [env: OS_USER_DOMAIN_ID].
    #[arg(long, value_name = "ID")]
    os_user_domain_id: Option<String>,
    /// Project's domain name [env: OS_PROJECT_DOMAIN_NAME].
    #[arg(long, value_name = "NAME")]
    os_project_domain_name: Option<String>,
    /// Project's domain id [env: OS_PROJECT_DOMAIN_ID].
    #[arg(long, value_name = "ID")]
    os_project_domain_id: Option<String>,
    /// Application credential id [env: OS_APPLICATION_CREDENTIAL_ID].
    #[arg(long, value_name = "ID")]
    os_application_credential_id: Option<String>,
    /// Application credential name [env: OS_APPLICATION_CREDENTIAL_NAME].
    #[arg(long, value_name = "NAME")]
    os_application_credential_name: Option<String>,
    /// Application credential secret [env: OS_APPLICATION_CREDENTIAL_SECRET].
    #[arg(long, value_name = "SECRET")]
    os_application_credential_secret: Option<Secret>,
    /// An existing Keystone token [env: OS_TOKEN].
    #[arg(long, value_name = "TOKEN")]
    os_token: Option<Secret>,
    /// Region of the endpoints [env: OS_REGION_NAME].
    #[arg(long, value_name = "REGION")]
    os_region_name: Option<String>,
    /// Endpoint interface: public, internal, admin [env: OS_INTERFACE].
    #[arg(long, value_name = "INTERFACE")]
    os_interface: Option<String>,
    /// CA bundle (PEM) for HTTPS [env: OS_CACERT].
    #[arg(long, value_name = "FILE")]
    os_cacert: Option<PathBuf>,
    /// Do not verify HTTPS certificates [env: OS_INSECURE].
    #[arg(long)]
    insecure: bool,
}

impl OpenStackArgs {
    /// `--os-cloud`.
    pub(crate) fn cloud(&self) -> Option<&str> {
        self.os_cloud.as_deref()
    }

    /// The flags as the top settings layer.
    pub(crate) fn raw(&self) -> RawSettings {
        RawSettings {
            auth_type: self.os_auth_type.clone(),
            auth_url: self.os_auth_url.clone(),
            username: self.os_username.clone(),
            user_id: self.os_user_id.clone(),
            password: self.os_password.clone(),
            user_domain_name: self.os_user_domain_name.clone(),
            user_domain_id: self.os_user_domain_id.clone(),
            project_name: self.os_project_name.clone(),
            project_id: self.os_project_id.clone(),
            project_domain_name: self.os_project_domain_name.clone(),
            project_domain_id: self.os_project_domain_id.clone(),
            domain_name: None,
            domain_id: None,
            default_domain: None,
            application_credential_id: self.os_application_credential_id.clone(),
            application_credential_name: self.os_application_credential_name.clone(),
            application_credential_secret: self.os_application_credential_secret.clone(),
            token: self.os_token.clone(),
            region_name: self.os_region_name.clone(),
            interface: self.os_interface.clone(),
            cacert: self.os_cacert.clone(),
            insecure: self.insecure.then_some(true),
        }
    }

    /// The client settings of this process: these flags, then `OS_*`, then clouds.yaml.
    ///
    /// Fails when the settings are incomplete or a file is invalid.
    pub(crate) fn settings(&self) -> Result<ClientSettings, SettingsError> {
        ClientSettings::load(
            self.raw(),
            self.os_cloud.as_deref(),
            &Environment::from_process(),
        )
    }
}
