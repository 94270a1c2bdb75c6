//! `portcullis sign`: sign an image and print the four `img_signature*`
//! properties Glance needs.
//!
//! This file parses arguments, reads the key and the image, calls
//! [`crate::verify::sign`], and prints JSON or `glance image-create`
//! arguments. It must not implement signing itself nor print key material.

use std::path::PathBuf;

use clap::ValueEnum;

use super::Exit;
use super::verify::{hash_image, open_image};
use crate::verify::sign::{SigningKey, signature_properties};
use crate::verify::{CertificateId, HashMethod};

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
    #[arg(long, value_name = "ID")]
    cert_uuid: String,
    /// Hash method: SHA-224, SHA-256, SHA-384 or SHA-512.
    #[arg(long, default_value = "SHA-256")]
    hash_method: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: SignFormat,
}

pub(crate) fn run(args: SignArgs) -> Exit {
    match sign(&args) {
        Ok(()) => Exit::Success,
        Err(message) => {
            eprintln!("error: {message}");
            Exit::Error
        }
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

fn sign(args: &SignArgs) -> Result<(), String> {
    let hash_method = HashMethod::from_name(&args.hash_method).ok_or_else(|| {
        format!(
            "--hash-method {:?} is not supported (expected exactly one of SHA-224, SHA-256, SHA-384, SHA-512)",
            args.hash_method
        )
    })?;
    CertificateId::parse(&args.cert_uuid).map_err(|err| format!("--cert-uuid: {err}"))?;
    let pem = std::fs::read_to_string(&args.key)
        .map_err(|err| format!("cannot read key {}: {err}", args.key.display()))?;
    let key = SigningKey::from_pem(&pem).map_err(|err| format!("{}: {err}", args.key.display()))?;
    let mut image = open_image(&args.image)?;
    let (digest, _) = hash_image(&mut image, hash_method.algorithm(), &args.image)?;
    let signature = key.sign_digest(&digest).map_err(|err| err.to_string())?;
    let properties = signature_properties(&signature, hash_method, key.key_type(), &args.cert_uuid);
    match args.format {
        SignFormat::Json => {
            let text = serde_json::to_string_pretty(&properties)
                .map_err(|err| format!("cannot render JSON: {err}"))?;
            println!("{text}");
        }
        SignFormat::GlanceArgs => println!("{}", glance_args(&properties)),
    }
    Ok(())
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
