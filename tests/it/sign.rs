//! `portcullis sign` through the real binary: every key type signs, the
//! result verifies with `portcullis verify`, and `openssl dgst -verify`
//! accepts the RSA-PSS and ECDSA signatures.

// Helpers here are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{FIXTURE_NOW, cert_id, portcullis, testdata};

fn sign(key: &str, hash_method: &str, cert: &str, data: &Path) -> Value {
    let output = portcullis()
        .arg("sign")
        .arg(data)
        .arg("--key")
        .arg(testdata().join(format!("keys/{key}.pem")))
        .args(["--cert-uuid", &cert_id(cert), "--hash-method", hash_method])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{key}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn verify(properties: &Value, data: &Path, compat: bool) -> i32 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("props.json");
    std::fs::write(&path, properties.to_string()).unwrap();
    let mut cmd = portcullis();
    cmd.env("PORTCULLIS_NOW", FIXTURE_NOW)
        .arg("verify")
        .arg(data)
        .arg("--properties")
        .arg(&path)
        .arg("--cert-dir")
        .arg(testdata().join("certs"));
    if compat {
        cmd.args(["--compat", "cursive"]);
    }
    cmd.output().unwrap().status.code().unwrap_or(-1)
}

fn keys() -> Vec<(&'static str, &'static str)> {
    let mut keys = vec![
        ("rsa2048", "RSA-PSS"),
        ("rsa4096", "RSA-PSS"),
        ("rsapss2048", "RSA-PSS"),
        ("p384", "ECC_SECP384R1"),
        ("p521", "ECC_SECP521R1"),
        ("dsa2048", "DSA"),
        ("dsa3072", "DSA"),
    ];
    if cfg!(feature = "binary-curves") {
        keys.extend([
            ("sect409k1", "ECC_SECT409K1"),
            ("sect409r1", "ECC_SECT409R1"),
            ("sect571k1", "ECC_SECT571K1"),
            ("sect571r1", "ECC_SECT571R1"),
        ]);
    }
    keys
}

#[test]
fn sign_then_verify_round_trips_for_every_key_type_and_hash() {
    let data = testdata().join("signatures/data.bin");
    for (key, key_type) in keys() {
        for hash_method in ["SHA-224", "SHA-256", "SHA-384", "SHA-512"] {
            let properties = sign(key, hash_method, &format!("cert-{key}"), &data);
            assert_eq!(properties["img_signature_key_type"], key_type);
            assert_eq!(properties["img_signature_hash_method"], hash_method);
            assert_eq!(verify(&properties, &data, false), 0, "{key} {hash_method}");
            assert_eq!(verify(&properties, &data, true), 0, "{key} {hash_method}");
        }
    }
    // Tampered data does not verify.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.bin");
    std::fs::write(&other, b"other data").unwrap();
    let properties = sign("rsa2048", "SHA-256", "cert-rsa2048", &data);
    assert_eq!(verify(&properties, &other, false), 1);
}

#[test]
fn openssl_accepts_rsa_pss_and_ecdsa_signatures() {
    let data = testdata().join("signatures/data.bin");
    let dir = tempfile::tempdir().unwrap();
    for (key, sigopts) in [
        (
            "rsa2048",
            &[
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:max",
            ][..],
        ),
        ("p384", &[][..]),
        ("p521", &[][..]),
    ] {
        for (hash_method, digest) in [("SHA-256", "-sha256"), ("SHA-512", "-sha512")] {
            let properties = sign(key, hash_method, &format!("cert-{key}"), &data);
            let signature = portcullis::verify::base64::decode_strict(
                properties["img_signature"].as_str().unwrap(),
            )
            .unwrap();
            let sig_path = dir.path().join("sig.bin");
            std::fs::write(&sig_path, signature).unwrap();
            let public = dir.path().join("pub.pem");
            let status = Command::new("openssl")
                .args(["pkey", "-pubout", "-in"])
                .arg(testdata().join(format!("keys/{key}.pem")))
                .arg("-out")
                .arg(&public)
                .status()
                .unwrap();
            assert!(status.success());
            let output = Command::new("openssl")
                .args(["dgst", digest, "-verify"])
                .arg(&public)
                .args(sigopts)
                .arg("-signature")
                .arg(&sig_path)
                .arg(&data)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "openssl rejected the {key} {hash_method} signature: {}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
    }
}

#[test]
fn rsa_signatures_use_the_maximum_salt() {
    // Legacy cursive (cryptography <= 41) accepts only max-salt PSS: openssl
    // verifying with an explicit max salt length proves that is what we emit.
    let data = testdata().join("signatures/data.bin");
    let properties = sign("rsa2048", "SHA-256", "cert-rsa2048", &data);
    let dir = tempfile::tempdir().unwrap();
    let sig_path = dir.path().join("sig.bin");
    std::fs::write(
        &sig_path,
        portcullis::verify::base64::decode_strict(properties["img_signature"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let verify_with_salt = |salt: &str| {
        Command::new("openssl")
            .args(["dgst", "-sha256", "-prverify"])
            .arg(testdata().join("keys/rsa2048.pem"))
            .args(["-sigopt", "rsa_padding_mode:pss", "-sigopt"])
            .arg(format!("rsa_pss_saltlen:{salt}"))
            .arg("-signature")
            .arg(&sig_path)
            .arg(&data)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(verify_with_salt("222"));
    assert!(!verify_with_salt("32"));
}

#[test]
fn glance_args_format() {
    let data = testdata().join("signatures/data.bin");
    portcullis()
        .arg("sign")
        .arg(&data)
        .arg("--key")
        .arg(testdata().join("keys/p384.pem"))
        .args([
            "--cert-uuid",
            &cert_id("cert-p384"),
            "--format",
            "glance-args",
        ])
        .assert()
        .code(0)
        .stdout(predicates::str::contains(
            "--property img_signature_key_type=ECC_SECP384R1",
        ))
        .stdout(predicates::str::contains("--property img_signature="));
}

#[test]
fn keys_without_a_glance_key_type_and_bad_arguments() {
    let data = testdata().join("signatures/data.bin");
    let id = cert_id("cert-rsa2048");
    let mut cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("p256", vec![], "P-256"),
        ("ed25519", vec![], "Ed25519"),
        (
            "rsa2048",
            vec!["--hash-method".into(), "sha256".into()],
            "--hash-method",
        ),
        ("missing", vec![], "cannot read key"),
    ];
    if !cfg!(feature = "binary-curves") {
        cases.push(("sect571k1", vec![], "binary-curves"));
    }
    for (key, extra, message) in cases {
        // JSON is sign's default format: the failure is one JSON document on stdout.
        portcullis()
            .arg("sign")
            .arg(&data)
            .arg("--key")
            .arg(testdata().join(format!("keys/{key}.pem")))
            .args(["--cert-uuid", &id])
            .args(&extra)
            .assert()
            .code(2)
            .stdout(predicates::str::contains(message))
            .stdout(predicates::str::contains("\"error\""));
        // glance-args: text on stderr.
        portcullis()
            .arg("sign")
            .arg(&data)
            .arg("--key")
            .arg(testdata().join(format!("keys/{key}.pem")))
            .args(["--cert-uuid", &id, "--format", "glance-args"])
            .args(&extra)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(message));
    }
    portcullis()
        .arg("sign")
        .arg(&data)
        .arg("--key")
        .arg(testdata().join("keys/rsa2048.pem"))
        .args(["--cert-uuid", "not-a-uuid"])
        .assert()
        .code(2);
}
