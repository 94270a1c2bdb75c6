//! OpenStack identity and key manager: client-side authentication with
//! Keystone v3 (the settings users already have from openstackclient:
//! flags, `OS_*`, clouds.yaml), Keystone token validation for a service (as
//! keystonemiddleware does), and Barbican as the certificate store cursive
//! reads through castellan.
//!
//! - [`ClientSettings::load`] merges `--os-*` flags > `OS_*` > clouds.yaml.
//! - [`Session`] authenticates (`POST /v3/auth/tokens`) and re-authenticates
//!   before expiry; its token's [`Identity`] carries roles and the catalog.
//! - [`TokenValidator::validate`] turns a user's token into an [`Identity`],
//!   or says whether it was rejected (401) or Keystone was unavailable (503).
//! - [`Barbican::fetch_certificates`] reads certificates with a caller's
//!   token into a [`crate::verify::MemorySource`] for the synchronous verifier;
//!   [`Barbican::store_certificate`] stores one.
//!
//! This module owns every HTTP exchange with Keystone and Barbican. It must
//! not verify signatures or decide policy, and no password, secret or
//! token leaves it in a log line, a `Debug` string or an error message
//! ([`Secret`]).

mod barbican;
mod cache;
mod catalog;
mod clouds;
mod env;
mod http;
mod keystone;
mod secret;
mod settings;
mod validator;

pub use barbican::{
    Barbican, BarbicanError, BarbicanOptions, Caller, FetchError, SERVICE_TYPE, StoreError,
    StoredSecret,
};
pub use catalog::{Catalog, CatalogError, Interface, barbican_v1};
pub use env::Environment;
pub use keystone::{AuthError, AuthToken, Identity, Session};
pub use secret::Secret;
pub use settings::{
    ClientSettings, Credentials, DomainRef, ProjectRef, RawSettings, Scope, SettingsError,
    TlsSettings, UserRef,
};
pub use validator::{
    KeystoneUnavailable, TokenRejected, TokenValidator, ValidateError, ValidatorOptions,
};
