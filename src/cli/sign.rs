//! `portcullis sign`: sign an image and print the four `img_signature*`
//! properties Glance needs; with `--store-certificate`, first store the
//! signing certificate in Barbican (as `openstack secret store
//! --secret-type certificate` does) and use the new secret's id.
//!
//! This file parses arguments, reads the key and the image, calls
//! [`crate::verify::sign`] and [`crate::openstack::Barbican`], and prints
//! JSON or `glance image-create` arguments. It must not implement signing
//! itself nor print key material or credentials.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::ValueEnum;

use super::openstack::OpenStackArgs;
use super::report::error_chain;
use super::verify::{hash_image, open_image};
use super::{Exit, stdio};
use crate::clock::SystemClock;
use crate::openstack::{Barbican, BarbicanOptions, Caller, Session, StoreError};
use crate::verify::sign::{SigningKey, signature_properties};
use crate::verify::{
    CertificateId, HashMethod, Mode, Prefetched, SignatureParams, Verifier, VerifyOptions,
};

/// How `sign` prints the properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum SignFormat {
    /// A flat JSON object with the four properties (usable as `verify --properties`).
    #[default]
    Json,
    /// `--property k=v` arguments for `glance image-create`.
    GlanceArgs,
}

/// Arguments of `portcullis sign`.
#[derive(Debug, clap::Args)]
pub(crate) struct SignArgs {
    /// The image file, or `-` for standard input.
    image: PathBuf,
    /// Unencrypted PEM private key (PKCS#8, PKCS#1, SEC1 or traditional DSA).
    #[arg(long, value_name = "KEY.pem")]
    key: PathBuf,
    /// Key-manager id of the certificate holding the public key.
    #[arg(
        long,
        value_name = "ID",
        required_unless_present = "store_certificate",
        conflicts_with = "store_certificate"
    )]
    cert_uuid: Option<String>,
    /// Store this certificate (PEM) in Barbican as a certificate secret,
    /// with the OpenStack client settings (OS_CLOUD or OS_*), and use the
    /// new secret's UUID as img_signature_certificate_uuid. The certificate
    /// must hold the public key of --key.
    #[arg(long, value_name = "CERT.pem")]
    store_certificate: Option<PathBuf>,
    /// Name of the Barbican secret made by --store-certificate.
    #[arg(long, value_name = "NAME", requires = "store_certificate")]
    secret_name: Option<String>,
    /// Hash method: SHA-224, SHA-256, SHA-384 or SHA-512.
    #[arg(long, default_value = "SHA-256")]
    hash_method: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: SignFormat,
    #[command(flatten)]
    openstack: OpenStackArgs,
}

/// Why `sign` stopped (always exit 2): a stable kind for JSON and a message.
struct Failure {
    kind: &'static str,
    message: String,
}

/// A failure of `kind`, for `map_err`.
fn failure<M: Into<String>>(kind: &'static str) -> impl FnOnce(M) -> Failure {
    move |message| Failure {
        kind,
        message: message.into(),
    }
}

pub(crate) fn run(args: SignArgs) -> Exit {
    let (exit, printed) = match sign(&args) {
        Ok(properties) => (Exit::Success, print(args.format, &properties)),
        Err(Failure { kind, message }) => {
            // JSON output (the default) promises one document on stdout,
            // failures included.
            let printed = match args.format {
                SignFormat::Json => stdio::json(
                    &serde_json::json!({ "error": { "kind": kind, "message": message } }),
                ),
                SignFormat::GlanceArgs => {
                    stdio::eline(&format!("error: {message}"));
                    Ok(())
                }
            };
            (Exit::Error, printed)
        }
    };
    stdio::settle(exit, printed, None)
}

fn print(
    format: SignFormat,
    properties: &std::collections::BTreeMap<String, String>,
) -> stdio::Printed {
    match format {
        SignFormat::Json => stdio::json(properties),
        SignFormat::GlanceArgs => stdio::line(&glance_args(properties)),
    }
}

/// `--property k=v` words for a shell command line; a value with anything
/// but plainly safe characters is single-quoted, so that pasting the line
/// (a Barbican href may hold `&` or `;`) runs nothing but glance.
fn glance_args(properties: &std::collections::BTreeMap<String, String>) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "+/=-_.:@,%".contains(c);
    let words: Vec<String> = properties
        .iter()
        .map(|(name, value)| {
            let word = format!("{name}={value}");
            if word.chars().all(safe) {
                format!("--property {word}")
            } else {
                format!("--property '{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect();
    words.join(" ")
}

/// A placeholder id for checking the key against the certificate file
/// before anything is stored.
const LOCAL_CERTIFICATE_ID: &str = "00000000-0000-4000-8000-000000000000";

/// The certificate to store: its DER, and the settings to store it with.
struct ToStore {
    path: PathBuf,
    der: Vec<u8>,
    session: Session,
    barbican: Barbican,
}

fn prepare_store(args: &SignArgs, path: &Path) -> Result<ToStore, Failure> {
    let bytes = std::fs::read(path).map_err(|err| {
        failure("io_error")(format!("cannot read certificate {}: {err}", path.display()))
    })?;
    let placeholder = CertificateId::parse(LOCAL_CERTIFICATE_ID)
        .map_err(|err| failure("invalid_certificate_id")(err.to_string()))?;
    // Barbican and castellan read certificate secrets as PEM: take the
    // certificate block (only it is stored, never a key in the same file).
    let der = crate::verify::castellan_certificate(&placeholder, &bytes).map_err(|_| {
        failure("invalid_certificate")(format!("{} holds no PEM CERTIFICATE block", path.display()))
    })?;
    let settings_error =
        |err: &dyn std::error::Error| failure("openstack_settings")(error_chain(err));
    let settings = args
        .openstack
        .settings()
        .map_err(|err| settings_error(&err))?;
    let barbican = Barbican::new(
        &settings.tls,
        BarbicanOptions::default(),
        Arc::new(SystemClock),
    )
    .map_err(|err| settings_error(&err))?;
    let session = Session::new(settings).map_err(|err| settings_error(&err))?;
    Ok(ToStore {
        path: path.to_owned(),
        der,
        session,
        barbican,
    })
}

/// Checks that `signature` verifies with the certificate about to be
/// stored, so that a key/certificate mismatch is found before a secret is
/// created that no image signed with this key would verify against.
fn check_pair(
    store: &ToStore,
    signature: &[u8],
    hash_method: HashMethod,
    key: &SigningKey,
    digest: &crate::hash::Digest,
    key_path: &Path,
) -> Result<(), Failure> {
    let placeholder = CertificateId::parse(LOCAL_CERTIFICATE_ID)
        .map_err(|err| failure("invalid_certificate_id")(err.to_string()))?;
    let mut source = Prefetched::new();
    source.insert(&placeholder, Ok(store.der.clone()));
    let properties =
        signature_properties(signature, hash_method, key.key_type(), LOCAL_CERTIFICATE_ID);
    let mismatch = |reason: String| {
        failure("key_mismatch")(format!(
            "the certificate in {} does not fit the key {}: {reason}",
            store.path.display(),
            key_path.display()
        ))
    };
    let params =
        SignatureParams::from_properties(&properties.into_iter().collect(), Mode::CompatCursive)
            .map_err(|err| mismatch(err.to_string()))?
            .ok_or_else(|| mismatch("no signature properties".to_owned()))?;
    let options = VerifyOptions {
        mode: Mode::CompatCursive,
        trusted_certificate_ids: None,
        clock: &SystemClock,
    };
    Verifier::new(&params, &source, &options)
        .and_then(|verifier| verifier.finish_with_digest(digest))
        .map(|_| ())
        .map_err(|err| mismatch(err.to_string()))
}

/// Signs the image; returns the four properties.
fn sign(args: &SignArgs) -> Result<std::collections::BTreeMap<String, String>, Failure> {
    let hash_method = HashMethod::from_name(&args.hash_method).ok_or_else(|| {
        failure("unsupported_hash_method")(format!(
            "--hash-method {:?} is not supported (expected exactly one of SHA-224, SHA-256, SHA-384, SHA-512)",
            args.hash_method
        ))
    })?;
    if let Some(id) = &args.cert_uuid {
        CertificateId::parse(id)
            .map_err(|err| failure("invalid_certificate_id")(format!("--cert-uuid: {err}")))?;
    }
    let pem = std::fs::read_to_string(&args.key).map_err(|err| {
        failure("io_error")(format!("cannot read key {}: {err}", args.key.display()))
    })?;
    let key = SigningKey::from_pem(&pem)
        .map_err(|err| failure("invalid_key")(format!("{}: {err}", args.key.display())))?;
    // Settings and the certificate file are checked before the image is read.
    let to_store = match &args.store_certificate {
        Some(path) => Some(prepare_store(args, path)?),
        None => None,
    };
    let mut image = open_image(&args.image).map_err(failure("io_error"))?;
    let (digest, _) = hash_image(&mut image, hash_method.algorithm(), &args.image)
        .map_err(failure("io_error"))?;
    let signature = key
        .sign_digest(&digest)
        .map_err(|err| failure("signing_failed")(err.to_string()))?;
    let certificate_id = match (&to_store, &args.cert_uuid) {
        (Some(store), _) => {
            check_pair(store, &signature, hash_method, &key, &digest, &args.key)?;
            let name = args
                .secret_name
                .clone()
                .unwrap_or_else(|| "portcullis signing certificate".to_owned());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| {
                    failure("io_error")(format!("cannot start the async runtime: {err}"))
                })?;
            let stored = runtime
                .block_on(store.barbican.store_certificate(
                    &Caller::Session(&store.session),
                    &name,
                    &store.der,
                ))
                .map_err(|err| failure(store_error_kind(&err))(error_chain(&err)))?;
            stdio::eline(&format!(
                "stored certificate {} in Barbican as secret {}",
                store.path.display(),
                stored.href
            ));
            stored.uuid.hyphenated().to_string()
        }
        (None, Some(id)) => id.clone(),
        (None, None) => {
            return Err(failure("usage")(
                "--cert-uuid ID or --store-certificate CERT.pem is required",
            ));
        }
    };
    Ok(signature_properties(
        &signature,
        hash_method,
        key.key_type(),
        &certificate_id,
    ))
}

/// The kind of a failed certificate store, as `verify` names Keystone and
/// Barbican failures.
fn store_error_kind(err: &StoreError) -> &'static str {
    match err {
        StoreError::Auth(error) if error.is_unavailable() => "keystone_unavailable",
        StoreError::Auth(_) => "keystone_auth_failed",
        StoreError::Catalog(_) => "key_manager_not_in_catalog",
        StoreError::Forbidden { .. } => "certificate_store_forbidden",
        StoreError::Barbican(_) => "certificate_store_failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glance_args_quote_what_a_shell_would_interpret() {
        let properties = std::collections::BTreeMap::from([
            ("img_signature".to_owned(), "QUJD+/8=".to_owned()),
            (
                "img_signature_certificate_uuid".to_owned(),
                "https://kms/v1/secrets;touch x&'y'/6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55"
                    .to_owned(),
            ),
        ]);
        assert_eq!(
            glance_args(&properties),
            "--property img_signature=QUJD+/8= \
             --property 'img_signature_certificate_uuid=https://kms/v1/secrets;touch x&'\\''y'\\''/6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55'"
        );
    }
}
