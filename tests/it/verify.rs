//! `portcullis verify` through the real binary, against fixtures made by
//! the openssl CLI (testdata/generate-verify.sh): every key type × hash,
//! every strict-mode deviation in both modes, chains, exit codes and the
//! JSON output shape.

// Helpers here are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{FIXTURE_NOW, cert_id, portcullis, signature_b64, testdata};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Strict,
    Cursive,
}

const BOTH: [Mode; 2] = [Mode::Strict, Mode::Cursive];

/// One verification to run: the four properties, the data, the options.
#[derive(Clone, Debug)]
struct Case {
    signature: String,
    hash_method: String,
    key_type: String,
    cert_uuid: String,
    data: PathBuf,
    trusted: Option<Vec<String>>,
    extra: Vec<String>,
}

fn case(signature: &str, hash_method: &str, key_type: &str, cert: &str) -> Case {
    Case {
        signature: signature_b64(signature),
        hash_method: hash_method.to_owned(),
        key_type: key_type.to_owned(),
        cert_uuid: cert_id(cert),
        data: testdata().join("signatures/data.bin"),
        trusted: None,
        extra: Vec::new(),
    }
}

/// A chain-leaf case: the shared chain signature, certificate `cert`,
/// trusted list made of the named fixtures.
fn chain_case(cert: &str, trusted: &[&str]) -> Case {
    let mut case = case("chainleaf.sha256", "SHA-256", "RSA-PSS", cert);
    case.trusted = Some(trusted.iter().map(|name| cert_id(name)).collect());
    case
}

/// What one run produced.
#[derive(Debug)]
struct Outcome {
    code: i32,
    json: Value,
}

impl Outcome {
    fn kind(&self) -> &str {
        self.json["error"]["kind"].as_str().unwrap_or("")
    }
    fn message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or("")
    }
    fn warning_kinds(&self) -> Vec<&str> {
        self.json["warnings"]
            .as_array()
            .map(|w| w.iter().filter_map(|w| w["kind"].as_str()).collect())
            .unwrap_or_default()
    }
}

fn run(case: &Case, mode: Mode) -> Outcome {
    let mut cmd = portcullis();
    cmd.env("PORTCULLIS_NOW", FIXTURE_NOW)
        .arg("verify")
        .arg(&case.data)
        .arg("--cert-dir")
        .arg(testdata().join("certs"))
        .args(["--signature", &case.signature])
        .args(["--hash-method", &case.hash_method])
        .args(["--key-type", &case.key_type])
        .args(["--cert-uuid", &case.cert_uuid])
        .args(["--format", "json"]);
    if mode == Mode::Cursive {
        cmd.args(["--compat", "cursive"]);
    }
    let dir = tempfile::tempdir().unwrap();
    if let Some(trusted) = &case.trusted {
        let list = dir.path().join("trusted.txt");
        std::fs::write(&list, trusted.join("\n")).unwrap();
        cmd.arg("--trusted-list").arg(&list);
    }
    cmd.args(&case.extra);
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("stdout is not one JSON document ({err}): {stdout:?}"));
    Outcome {
        code: output.status.code().unwrap_or(-1),
        json,
    }
}

/// Runs `case` in `mode` and checks the outcome: `Ok(())` = verified,
/// `Err(kind)` = rejected with that error kind (exit 1).
fn check(case: &Case, mode: Mode, expect: Result<(), &str>) -> Outcome {
    let outcome = run(case, mode);
    match expect {
        Ok(()) => {
            assert_eq!(outcome.code, 0, "{mode:?} {case:?}: {:#}", outcome.json);
            assert_eq!(outcome.json["verified"], true);
            assert!(outcome.json["error"].is_null());
        }
        Err(kind) => {
            assert_eq!(
                outcome.kind(),
                kind,
                "{mode:?} {case:?}: {:#}",
                outcome.json
            );
            assert_eq!(outcome.code, 1, "{mode:?} {case:?}: {:#}", outcome.json);
            assert_eq!(outcome.json["verified"], false);
            assert!(!outcome.message().is_empty());
        }
    }
    outcome
}

fn check_both(case: &Case, expect: Result<(), &str>) {
    for mode in BOTH {
        check(case, mode, expect);
    }
}

const HASHES: [(&str, &str); 4] = [
    ("sha224", "SHA-224"),
    ("sha256", "SHA-256"),
    ("sha384", "SHA-384"),
    ("sha512", "SHA-512"),
];

/// Key fixtures with a Glance key type, pure Rust and binary curves.
const PURE_RUST_KEYS: [(&str, &str); 4] = [
    ("rsa2048", "RSA-PSS"),
    ("p384", "ECC_SECP384R1"),
    ("p521", "ECC_SECP521R1"),
    ("dsa2048", "DSA"),
];
const BINARY_CURVE_KEYS: [(&str, &str); 4] = [
    ("sect409k1", "ECC_SECT409K1"),
    ("sect409r1", "ECC_SECT409R1"),
    ("sect571k1", "ECC_SECT571K1"),
    ("sect571r1", "ECC_SECT571R1"),
];

/// The signature of `key` over data.bin with `hash`, checked against its own certificate.
fn own_case(key: &str, hash: &str, method: &str, key_type: &str) -> Case {
    case(
        &format!("{key}.{hash}"),
        method,
        key_type,
        &format!("cert-{key}"),
    )
}

#[test]
fn every_pure_rust_key_type_and_hash_verifies_in_both_modes() {
    for (hash, method) in HASHES {
        for (key, key_type) in PURE_RUST_KEYS {
            check_both(&own_case(key, hash, method, key_type), Ok(()));
        }
    }
}

#[cfg(feature = "binary-curves")]
#[test]
fn every_binary_curve_and_hash_verifies_in_both_modes() {
    for (hash, method) in HASHES {
        for (key, key_type) in BINARY_CURVE_KEYS {
            check_both(&own_case(key, hash, method, key_type), Ok(()));
        }
    }
}

#[cfg(feature = "binary-curves")]
#[test]
fn binary_curve_under_another_ecc_name_only_in_cursive_mode() {
    let case = case(
        "sect571k1.sha256",
        "SHA-256",
        "ECC_SECP521R1",
        "cert-sect571k1",
    );
    check(&case, Mode::Strict, Err("key_type_mismatch"));
    check(&case, Mode::Cursive, Ok(()));
}

#[cfg(not(feature = "binary-curves"))]
#[test]
fn binary_curves_are_not_supported_by_this_build() {
    for (key, key_type) in BINARY_CURVE_KEYS {
        let case = own_case(key, "sha256", "SHA-256", key_type);
        for mode in BOTH {
            let outcome = check(&case, mode, Err("unsupported_by_build"));
            assert!(
                outcome.message().contains("binary-curves"),
                "{}",
                outcome.message()
            );
        }
    }
    // A binary-curve certificate under a prime-curve name reaches the key check.
    let case = case(
        "sect571k1.sha256",
        "SHA-256",
        "ECC_SECP521R1",
        "cert-sect571k1",
    );
    check(&case, Mode::Cursive, Err("unsupported_by_build"));
    check(&case, Mode::Strict, Err("key_type_mismatch"));
}

#[test]
fn key_sizes_and_odd_rsa_keys() {
    for key in ["rsa4096", "rsa2049", "rsa2048e3", "rsapss2048"] {
        check_both(
            &case(
                &format!("{key}.sha256"),
                "SHA-256",
                "RSA-PSS",
                &format!("cert-{key}"),
            ),
            Ok(()),
        );
    }
    check_both(
        &case("dsa3072.sha256", "SHA-256", "DSA", "cert-dsa3072"),
        Ok(()),
    );
    // Strict mode's 2048-bit floor; cursive has none.
    for (key, key_type) in [
        ("rsa1024", "RSA-PSS"),
        ("rsa512", "RSA-PSS"),
        ("dsa1024", "DSA"),
    ] {
        let case = case(
            &format!("{key}.sha256"),
            "SHA-256",
            key_type,
            &format!("cert-{key}"),
        );
        let outcome = check(&case, Mode::Strict, Err("weak_key"));
        assert!(outcome.message().contains("2048"), "{}", outcome.message());
        check(&case, Mode::Cursive, Ok(()));
    }
}

#[test]
fn curve_must_match_key_type_only_in_strict_mode() {
    for (sig, key_type, cert) in [
        ("p256.sha256", "ECC_SECP384R1", "cert-p256"),
        ("p384.sha256", "ECC_SECP521R1", "cert-p384"),
        ("p521.sha256", "ECC_SECP384R1", "cert-p521"),
    ] {
        let case = case(sig, "SHA-256", key_type, cert);
        check(&case, Mode::Strict, Err("key_type_mismatch"));
        check(&case, Mode::Cursive, Ok(()));
    }
}

#[test]
fn key_class_mismatch_is_rejected_in_both_modes() {
    for (key_type, cert) in [
        ("DSA", "cert-rsa2048"),
        ("ECC_SECP384R1", "cert-rsa2048"),
        ("RSA-PSS", "cert-dsa2048"),
        ("DSA", "cert-p384"),
        ("RSA-PSS", "cert-ed25519"),
    ] {
        let case = case("rsa2048.sha256", "SHA-256", key_type, cert);
        for mode in BOTH {
            let outcome = check(&case, mode, Err("key_type_mismatch"));
            if mode == Mode::Cursive {
                assert_eq!(
                    outcome.json["error"]["cursive_message"],
                    format!(
                        "Signature verification for the image failed: Invalid public key type for signature key type: {key_type}."
                    )
                );
            }
        }
    }
}

#[test]
fn pss_salt_lengths_and_padding() {
    for salt in [0, 1, 20, 32, 221] {
        check_both(
            &case(
                &format!("rsa2048.sha256.salt{salt}"),
                "SHA-256",
                "RSA-PSS",
                "cert-rsa2048",
            ),
            Ok(()),
        );
    }
    for bad in ["rsa2048.sha256.mgf1sha1", "rsa2048.sha256.pkcs1"] {
        check_both(
            &case(bad, "SHA-256", "RSA-PSS", "cert-rsa2048"),
            Err("bad_signature"),
        );
    }
    // Signed with SHA-256, checked as SHA-512: bad signature.
    check_both(
        &case("rsa2048.sha256", "SHA-512", "RSA-PSS", "cert-rsa2048"),
        Err("bad_signature"),
    );
}

fn decode(text: &str) -> Vec<u8> {
    portcullis::verify::base64::decode_strict(text).unwrap()
}

fn encode(bytes: &[u8]) -> String {
    portcullis::verify::base64::encode(bytes)
}

#[test]
fn short_rsa_signatures_verify_and_long_ones_do_not() {
    let mut case = case(
        "rsa2048.sha256.leadingzero",
        "SHA-256",
        "RSA-PSS",
        "cert-rsa2048",
    );
    let full = decode(&case.signature);
    assert_eq!((full.len(), full[0]), (256, 0));
    check_both(&case, Ok(()));
    case.signature = encode(&full[1..]);
    check_both(&case, Ok(()));
    let mut long = vec![0u8];
    long.extend_from_slice(&full);
    case.signature = encode(&long);
    check_both(&case, Err("bad_signature"));
}

#[test]
fn tampered_data_and_non_der_signatures_are_rejected() {
    let mut case = case("p384.sha256", "SHA-256", "ECC_SECP384R1", "cert-p384");
    let dir = tempfile::tempdir().unwrap();
    let mut data = std::fs::read(&case.data).unwrap();
    data[1000] ^= 1;
    let tampered = dir.path().join("tampered.bin");
    std::fs::write(&tampered, &data).unwrap();
    let original = case.clone();
    case.data = tampered;
    check_both(&case, Err("bad_signature"));

    let der = decode(&original.signature);
    let mut trailing = der.clone();
    trailing.push(0);
    let sig = portcullis::verify::dersig::parse(&der).unwrap();
    let mut raw = vec![0u8; 96];
    raw[48 - sig.r.len()..48].copy_from_slice(sig.r);
    raw[96 - sig.s.len()..].copy_from_slice(sig.s);
    for bad in [trailing, raw] {
        let mut case = original.clone();
        case.signature = encode(&bad);
        check_both(&case, Err("bad_signature"));
    }
}

#[test]
fn base64_strictness() {
    let base = case("rsa2048.sha256", "SHA-256", "RSA-PSS", "cert-rsa2048");
    // Wrapped base64 is fine in both modes.
    let mut wrapped = base.clone();
    wrapped.signature = base
        .signature
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n");
    check_both(&wrapped, Ok(()));
    // Garbage characters and data after the padding: strict rejects, cursive skips/ignores.
    assert!(base.signature.ends_with("=="));
    for text in [
        format!("{}!{}", &base.signature[..10], &base.signature[10..]),
        format!("{}AAAA", base.signature),
        format!("{}=", base.signature),
    ] {
        let mut case = base.clone();
        case.signature = text;
        let outcome = check(&case, Mode::Strict, Err("bad_encoding"));
        assert!(
            outcome.message().contains("offset"),
            "{}",
            outcome.message()
        );
        check(&case, Mode::Cursive, Ok(()));
    }
    // Non-ASCII is an error in both modes (cursive crashes).
    let mut case = base.clone();
    case.signature = format!("{}é", base.signature);
    check_both(&case, Err("bad_encoding"));
    // A missing padding character is an error in both.
    let mut case = base.clone();
    case.signature = base.signature[..base.signature.len() - 1].to_owned();
    check_both(&case, Err("bad_encoding"));
}

#[test]
fn properties_names_and_order() {
    let base = case("rsa2048.sha256", "SHA-256", "RSA-PSS", "cert-rsa2048");
    for (hash_method, kind) in [
        ("sha256", "unsupported_hash_method"),
        ("SHA-1", "unsupported_hash_method"),
    ] {
        let mut case = base.clone();
        case.hash_method = hash_method.to_owned();
        check_both(&case, Err(kind));
    }
    for key_type in ["RSA", "rsa-pss", "ECC_SECP256R1", "RSA-PSS "] {
        let mut case = base.clone();
        case.key_type = key_type.to_owned();
        check_both(&case, Err("unsupported_key_type"));
    }
    // Bad base64 is reported before a bad hash method (cursive's order).
    let mut case = base.clone();
    case.signature = "QUJD!".to_owned();
    case.hash_method = "md5".to_owned();
    check(&case, Mode::Strict, Err("bad_encoding"));
    check(&case, Mode::Cursive, Err("unsupported_hash_method"));
    // An empty signature is reported after the certificate is fetched.
    let mut case = base.clone();
    for empty in ["", " \r\n\t "] {
        case.signature = empty.to_owned();
        check_both(&case, Err("empty_signature"));
    }
    // "====" is misplaced padding to the strict decoder, nothing at all to cursive's.
    case.signature = "====".to_owned();
    check(&case, Mode::Strict, Err("bad_encoding"));
    let outcome = check(&case, Mode::Cursive, Err("empty_signature"));
    assert_eq!(
        outcome.json["error"]["cursive_message"],
        "Signature verification for the image failed: Error occurred while creating the verifier."
    );
    case.signature = String::new();
    case.cert_uuid = "00000000-0000-4000-8000-000000000000".to_owned();
    check_both(&case, Err("certificate_not_found"));
}

#[test]
fn certificate_store_semantics() {
    let base = case("rsa2048.sha256", "SHA-256", "RSA-PSS", "cert-rsa2048");
    let id = cert_id("cert-rsa2048");
    // Barbican ids: upper case, braces, urn:uuid: and hrefs name the same certificate.
    for alias in [
        id.to_uppercase(),
        format!("{{{id}}}"),
        format!("urn:uuid:{id}"),
        format!("https://kms.example:9311/v1/secrets/{id}"),
    ] {
        let mut case = base.clone();
        case.cert_uuid = alias;
        check_both(&case, Ok(()));
    }
    // Leading text, bundles (first certificate counts) and DER files are fine.
    for name in ["store-leading-text", "store-bundle", "store-der"] {
        let mut case = base.clone();
        case.cert_uuid = cert_id(name);
        check_both(&case, Ok(()));
    }
    for (name, format) in [
        ("store-private-key", Some("PKCS8")),
        ("store-public-key", Some("SubjectPublicKeyInfo")),
        ("store-ec-params", Some("Opaque")),
        ("store-garbage", None),
        ("store-text", None),
    ] {
        let mut case = base.clone();
        case.cert_uuid = cert_id(name);
        let outcome = check(&case, Mode::Cursive, Err("invalid_certificate"));
        if let Some(format) = format {
            let expected = format!(
                "Signature verification for the image failed: Invalid certificate format: {format}."
            );
            assert_eq!(outcome.json["error"]["cursive_message"], expected);
        }
        check(&case, Mode::Strict, Err("invalid_certificate"));
    }
    for (bad, kind) in [
        ("not-a-uuid", "invalid_certificate_id"),
        ("", "invalid_certificate_id"),
        (
            "00000000-0000-4000-8000-000000000000",
            "certificate_not_found",
        ),
    ] {
        let mut case = base.clone();
        case.cert_uuid = bad.to_owned();
        check_both(&case, Err(kind));
    }
}

#[test]
fn dates_only_warn_without_chain_validation() {
    for (cert, warning) in [
        ("cert-rsa2048-expired", "certificate_expired"),
        ("cert-rsa2048-future", "certificate_not_yet_valid"),
    ] {
        let case = case("rsa2048.sha256", "SHA-256", "RSA-PSS", cert);
        for mode in BOTH {
            let outcome = check(&case, mode, Ok(()));
            assert_eq!(outcome.warning_kinds(), vec![warning]);
        }
    }
}

#[test]
fn json_output_shape() {
    let case = chain_case("chain-leaf", &["root-ca", "inter-ca"]);
    let outcome = check(&case, Mode::Strict, Ok(()));
    let json = &outcome.json;
    for field in [
        "verified",
        "mode",
        "image",
        "image_size",
        "hash_method",
        "key_type",
        "digest",
        "signer",
        "chain",
        "warnings",
        "error",
    ] {
        assert!(json.get(field).is_some(), "missing {field}: {json:#}");
    }
    assert_eq!(json["mode"], "strict");
    assert_eq!(json["image_size"], 200_000);
    assert_eq!(json["hash_method"], "SHA-256");
    assert_eq!(json["key_type"], "RSA-PSS");
    assert_eq!(json["digest"].as_str().unwrap().len(), 64);
    let signer = &json["signer"];
    assert_eq!(signer["id"], cert_id("chain-leaf"));
    assert_eq!(signer["subject"], "O=portcullis tests,CN=chain leaf");
    assert_eq!(
        signer["issuer"],
        "O=portcullis tests,CN=Test Intermediate CA"
    );
    assert_eq!(signer["not_before"], "2025-01-01T00:00:00Z");
    assert_eq!(signer["not_after"], "2035-01-01T00:00:00Z");
    assert_eq!(signer["sha256_fingerprint"].as_str().unwrap().len(), 64);
    assert!(!signer["serial"].as_str().unwrap().is_empty());
    let chain: Vec<&str> = json["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        chain,
        vec![
            cert_id("chain-leaf"),
            cert_id("inter-ca"),
            cert_id("root-ca")
        ]
    );

    // The digest is the SHA-256 of the file.
    let expected = {
        let mut hasher = portcullis::hash::HashAlgorithm::Sha256.hasher();
        hasher.update(&std::fs::read(&case.data).unwrap());
        hasher.finish().to_hex()
    };
    assert_eq!(json["digest"], expected);

    let mut bad = case.clone();
    bad.signature = signature_b64("rsa2048.sha256");
    let outcome = check(&bad, Mode::Cursive, Err("bad_signature"));
    assert_eq!(outcome.json["mode"], "cursive");
    assert_eq!(
        outcome.json["error"]["cursive_message"],
        "Signature verification failed"
    );
    assert!(outcome.json["signer"].is_object());
}

#[test]
fn chains_in_both_modes() {
    check_both(&chain_case("chain-leaf", &["root-ca", "inter-ca"]), Ok(()));
    check_both(&chain_case("chain-leaf", &["inter-ca", "root-ca"]), Ok(()));
    check_both(&chain_case("chain-leaf-direct", &["root-ca"]), Ok(()));
    check_both(&chain_case("chain-leaf-ec", &["root-ec"]), Ok(()));
    // A trusted intermediate alone is not an anchor.
    check_both(
        &chain_case("chain-leaf", &["inter-ca"]),
        Err("untrusted_chain"),
    );
    // Nothing trusted.
    check_both(&chain_case("chain-leaf", &[]), Err("untrusted_chain"));
    // Dates are enforced for the signer and for issuers.
    check_both(
        &chain_case("chain-leaf-expired", &["root-ca"]),
        Err("certificate_expired"),
    );
    check_both(
        &chain_case("chain-leaf-future", &["root-ca"]),
        Err("certificate_not_yet_valid"),
    );
    check_both(
        &chain_case("chain-leaf-under-expired", &["root-ca", "inter-expired"]),
        Err("untrusted_chain"),
    );
    // Names: the string type (UTF8 vs Printable) is ignored, case is not.
    check_both(
        &chain_case("chain-leaf-direct", &["root-ca-printable"]),
        Ok(()),
    );
    check_both(
        &chain_case("chain-leaf-direct", &["root-ca-lowercase"]),
        Err("untrusted_chain"),
    );
    // pathLen 0 on the root, an intermediate below it.
    check_both(
        &chain_case("chain-leaf-pl", &["root-pl0", "inter-pl"]),
        Err("path_length_exceeded"),
    );
    // A CA with keyUsage but no keyCertSign may not issue.
    check_both(
        &chain_case("chain-leaf-nocertsign", &["root-nocertsign"]),
        Err("untrusted_chain"),
    );
    // A self-signed anchor with CA + keyCertSign validates alone; a self-signed leaf does not.
    check_both(
        &chain_case("chain-selfsigned-ca", &["chain-selfsigned-ca"]),
        Ok(()),
    );
    let mut leaf = case("rsa2048.sha256", "SHA-256", "RSA-PSS", "cert-rsa2048");
    leaf.trusted = Some(vec![cert_id("cert-rsa2048")]);
    check_both(&leaf, Err("untrusted_chain"));
}

#[test]
fn chain_loops_are_rejected_not_followed() {
    let outcome = check(
        &chain_case("chain-leaf-loop", &["loop-a", "loop-b"]),
        Mode::Cursive,
        Err("chain_loop"),
    );
    assert!(outcome.message().contains("loop"), "{}", outcome.message());
    check(
        &chain_case("chain-leaf-loop", &["loop-a", "loop-b"]),
        Mode::Strict,
        Err("chain_loop"),
    );
}

#[test]
fn strict_chain_deviations() {
    // 4a. CA without keyUsage: RFC 5280 lets it issue; cursive requires keyCertSign.
    let case = chain_case("chain-leaf-noku", &["root-noku"]);
    check(&case, Mode::Strict, Ok(()));
    check(&case, Mode::Cursive, Err("untrusted_chain"));
    // 4b. Signing certificate with keyUsage but no digitalSignature.
    let case = chain_case("chain-leaf-keyenc", &["root-ca"]);
    check(&case, Mode::Strict, Err("invalid_key_usage"));
    check(&case, Mode::Cursive, Ok(()));
    // 4c. SHA-1-signed certificates.
    let case = chain_case("chain-leaf-sha1", &["root-ca"]);
    let outcome = check(&case, Mode::Strict, Err("untrusted_chain"));
    assert!(outcome.message().contains("SHA-1"), "{}", outcome.message());
    check(&case, Mode::Cursive, Ok(()));
    // 4d. RSA-PSS-signed issuers: cursive checks PKCS#1 v1.5 only.
    let case = chain_case("chain-leaf-pss", &["root-pss"]);
    check(&case, Mode::Strict, Ok(()));
    let outcome = check(&case, Mode::Cursive, Err("untrusted_chain"));
    assert_eq!(
        outcome.json["error"]["cursive_message"],
        "Certificate chain building failed. Could not locate the signing certificate for the base certificate in the set of trusted certificates."
    );
    // 4e. Ed25519 issuers: cursive crashes; portcullis rejects in compat mode.
    let case = chain_case("chain-leaf-ed25519", &["root-ed25519"]);
    check(&case, Mode::Strict, Ok(()));
    check(&case, Mode::Cursive, Err("unsupported_chain_algorithm"));
    // 4f. Backtracking over candidate issuers.
    let case = chain_case("chain-leaf-bt", &["inter-bt-orphan", "inter-bt", "root-bt"]);
    let outcome = check(&case, Mode::Strict, Ok(()));
    assert_eq!(outcome.json["chain"].as_array().unwrap().len(), 3);
    let outcome = check(&case, Mode::Cursive, Err("untrusted_chain"));
    assert_eq!(
        outcome.json["error"]["cursive_message"],
        format!("certificate '{}'", cert_id("inter-bt-orphan"))
    );
}

#[test]
fn unreadable_trusted_entries() {
    let good = [cert_id("root-ca"), cert_id("inter-ca")];
    for (entry, cursive) in [
        ("not-a-uuid".to_owned(), Err("invalid_trusted_certificate")),
        (cert_id("store-garbage"), Err("invalid_trusted_certificate")),
        ("00000000-0000-4000-8000-000000000000".to_owned(), Ok(())),
        (cert_id("store-private-key"), Ok(())),
    ] {
        let mut case = chain_case("chain-leaf", &[]);
        case.trusted = Some(vec![good[0].clone(), entry.clone(), good[1].clone()]);
        let outcome = check(&case, Mode::Strict, Ok(()));
        assert_eq!(
            outcome.warning_kinds(),
            vec!["trusted_certificate_skipped"],
            "{entry}"
        );
        let outcome = check(&case, Mode::Cursive, cursive);
        assert!(outcome.warning_kinds().is_empty());
    }
    // --trusted-cert adds ids and also switches validation on.
    let mut case = chain_case("chain-leaf", &[]);
    case.trusted = None;
    case.extra = vec![
        "--trusted-cert".into(),
        good[0].clone(),
        "--trusted-cert".into(),
        good[1].clone(),
    ];
    check_both(&case, Ok(()));
    case.extra.truncate(2);
    check_both(&case, Err("untrusted_chain"));
}

// --- the CLI surface: properties files, stdin, exit codes -------------------

fn sample_cmd() -> assert_cmd::Command {
    let mut cmd = portcullis();
    cmd.current_dir(testdata()).arg("verify");
    cmd
}

#[test]
fn readme_first_command_verifies_the_sample_at_real_time() {
    sample_cmd()
        .args([
            "sample/sample.qcow2",
            "--properties",
            "sample/properties.json",
            "--cert-dir",
            "certs",
        ])
        .assert()
        .code(0)
        .stdout(predicates::str::starts_with(
            "verified: sample/sample.qcow2 (RSA-PSS, SHA-256)",
        ));
}

#[test]
fn glance_image_show_output_and_stdin() {
    let props: Value = serde_json::from_str(
        &std::fs::read_to_string(testdata().join("sample/properties.json")).unwrap(),
    )
    .unwrap();
    let show = serde_json::json!({
        "id": "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55",
        "name": "sample",
        "size": 196616,
        "tags": [],
        "properties": props,
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("show.json");
    std::fs::write(&path, show.to_string()).unwrap();
    let image = std::fs::read(testdata().join("sample/sample.qcow2")).unwrap();
    sample_cmd()
        .args(["-", "--cert-dir", "certs", "--properties"])
        .arg(&path)
        .write_stdin(image)
        .assert()
        .code(0);
}

#[test]
fn flags_override_the_properties_file() {
    sample_cmd()
        .args([
            "sample/sample.qcow2",
            "--properties",
            "sample/properties.json",
            "--cert-dir",
            "certs",
        ])
        .args(["--hash-method", "SHA-512"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("[bad_signature]"));
}

#[test]
fn exit_codes_for_odd_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{not json").unwrap();
    let partial = dir.path().join("partial.json");
    std::fs::write(
        &partial,
        r#"{"img_signature": "QUJD", "img_signature_hash_method": "SHA-256"}"#,
    )
    .unwrap();
    let unsigned = dir.path().join("unsigned.json");
    std::fs::write(&unsigned, r#"{"os_distro": "cirros"}"#).unwrap();
    let props = "sample/properties.json";
    let image = "sample/sample.qcow2";
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![
                image.into(),
                "--properties".into(),
                props.into(),
                "--cert-dir".into(),
                "no-such-dir".into(),
            ],
            2,
            "io_error",
        ),
        (
            vec![
                "no-such-image".into(),
                "--properties".into(),
                props.into(),
                "--cert-dir".into(),
                "certs".into(),
            ],
            2,
            "io_error",
        ),
        (
            vec![
                "sample".into(),
                "--properties".into(),
                props.into(),
                "--cert-dir".into(),
                "certs".into(),
            ],
            2,
            "io_error",
        ),
        (
            vec![
                image.into(),
                "--properties".into(),
                "missing.json".into(),
                "--cert-dir".into(),
                "certs".into(),
            ],
            2,
            "io_error",
        ),
        (
            vec![
                image.into(),
                "--properties".into(),
                garbage.display().to_string(),
                "--cert-dir".into(),
                "certs".into(),
            ],
            2,
            "bad_properties_file",
        ),
        (
            vec![
                image.into(),
                "--properties".into(),
                empty.display().to_string(),
                "--cert-dir".into(),
                "certs".into(),
            ],
            2,
            "bad_properties_file",
        ),
        (
            vec![
                image.into(),
                "--properties".into(),
                partial.display().to_string(),
                "--cert-dir".into(),
                "certs".into(),
            ],
            1,
            "missing_property",
        ),
        (
            vec![
                image.into(),
                "--properties".into(),
                unsigned.display().to_string(),
                "--cert-dir".into(),
                "certs".into(),
            ],
            1,
            "missing_property",
        ),
        (
            vec![
                empty.display().to_string(),
                "--properties".into(),
                props.into(),
                "--cert-dir".into(),
                "certs".into(),
            ],
            1,
            "bad_signature",
        ),
        (
            vec![
                image.into(),
                "--properties".into(),
                props.into(),
                "--cert-dir".into(),
                "certs".into(),
                "--trusted-list".into(),
                "missing.txt".into(),
            ],
            2,
            "io_error",
        ),
        (
            vec![
                image.into(),
                "--properties".into(),
                props.into(),
                "--cert-dir".into(),
                "certs".into(),
                "--trusted-list".into(),
                empty.display().to_string(),
            ],
            1,
            "untrusted_chain",
        ),
    ];
    for (args, code, kind) in cases {
        let output = sample_cmd()
            .args(&args)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(code), "{args:?}");
        let json: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(json["error"]["kind"], kind, "{args:?}: {json:#}");
        assert_eq!(json["verified"], false);
    }
    // cursive names only the first missing property, and the uuid under a wrong name.
    let output = sample_cmd()
        .args([
            image,
            "--cert-dir",
            "certs",
            "--compat",
            "cursive",
            "--format",
            "json",
            "--properties",
        ])
        .arg(&partial)
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json["error"]["cursive_message"],
        "Signature verification for the image failed: Required image properties for signature verification do not exist. Cannot verify signature. Missing property: img_signature_uuid."
    );
    // The partial set names every missing property.
    sample_cmd()
        .args([image, "--cert-dir", "certs", "--properties"])
        .arg(&partial)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "img_signature_certificate_uuid, img_signature_key_type",
        ));
    // A bad PORTCULLIS_NOW and bad arguments are usage errors.
    sample_cmd()
        .env("PORTCULLIS_NOW", "yesterday")
        .args([image, "--properties", props, "--cert-dir", "certs"])
        .assert()
        .code(2);
    sample_cmd()
        .args([image, "--compat", "glance"])
        .assert()
        .code(2);
}

// --- the library API ingest uses ---------------------------------------------

#[test]
fn library_streaming_and_shared_digest() {
    use portcullis::clock::{FixedClock, parse_rfc3339};
    use portcullis::image::Properties;
    use portcullis::verify::{
        DirKeyStore, Mode as LibMode, SignatureParams, Verifier, VerifyOptions,
    };

    let store = DirKeyStore::open(testdata().join("certs")).unwrap();
    let clock = FixedClock(parse_rfc3339(FIXTURE_NOW).unwrap());
    let data = std::fs::read(testdata().join("signatures/data.bin")).unwrap();
    let properties: Properties = [
        ("img_signature", signature_b64("p521.sha384")),
        ("img_signature_hash_method", "SHA-384".to_owned()),
        ("img_signature_key_type", "ECC_SECP521R1".to_owned()),
        ("img_signature_certificate_uuid", cert_id("cert-p521")),
        ("os_distro", "cirros".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let params = SignatureParams::try_from(&properties).unwrap();
    for mode in [LibMode::Strict, LibMode::CompatCursive] {
        let options = VerifyOptions {
            mode,
            trusted_certificate_ids: None,
            clock: &clock,
        };
        // Streaming in odd chunk sizes.
        let mut verifier = Verifier::new(&params, &store, &options).unwrap();
        assert_eq!(
            verifier.hash_algorithm(),
            portcullis::hash::HashAlgorithm::Sha384
        );
        for chunk in data.chunks(4093) {
            verifier.update(chunk);
        }
        let verification = verifier.finish().unwrap();
        assert_eq!(verification.signer.id, cert_id("cert-p521"));
        // A digest computed elsewhere, without any update.
        let verifier = Verifier::new(&params, &store, &options).unwrap();
        let digest = {
            let mut hasher = verifier.hash_algorithm().hasher();
            hasher.update(&data);
            hasher.finish()
        };
        assert_eq!(verifier.finish_with_digest(&digest).unwrap().digest, digest);
        // A digest of the wrong algorithm is refused, not checked.
        let verifier = Verifier::new(&params, &store, &options).unwrap();
        let sha512 = {
            let mut hasher = portcullis::hash::HashAlgorithm::Sha512.hasher();
            hasher.update(&data);
            hasher.finish()
        };
        let err = verifier.finish_with_digest(&sha512).unwrap_err();
        assert_eq!(err.kind(), "wrong_digest_algorithm");
        // Streaming tampered data fails.
        let mut verifier = Verifier::new(&params, &store, &options).unwrap();
        verifier.update(&data[1..]);
        assert_eq!(verifier.finish().unwrap_err().kind(), "bad_signature");
    }
    // Unsigned, partial and full sets are told apart before any data.
    let unsigned: Properties = [("os_distro".to_owned(), "x".to_owned())]
        .into_iter()
        .collect();
    assert!(
        SignatureParams::from_properties(&unsigned, LibMode::Strict)
            .unwrap()
            .is_none()
    );
    let mut partial = properties.clone();
    partial.remove("img_signature_key_type");
    partial.remove("img_signature");
    let err = SignatureParams::from_properties(&partial, LibMode::CompatCursive).unwrap_err();
    assert_eq!(err.kind(), "missing_property");
    assert!(
        err.to_string()
            .contains("img_signature, img_signature_key_type"),
        "{err}"
    );
}

#[test]
fn ecdsa_high_s_is_accepted() {
    // cursive (OpenSSL) has no low-S rule: s and n - s both verify.
    let base = case("p384.sha512", "SHA-512", "ECC_SECP384R1", "cert-p384");
    let der = decode(&base.signature);
    let sig = p384::ecdsa::Signature::from_der(&der).unwrap();
    let (r, s) = sig.split_scalars();
    use p384::elliptic_curve::PrimeField as _;
    let flipped = p384::ecdsa::Signature::from_scalars(r.to_repr(), (-s).to_repr()).unwrap();
    let flipped = flipped.to_der().as_bytes().to_vec();
    assert_ne!(flipped, der);
    let mut case = base.clone();
    case.signature = encode(&flipped);
    check_both(&base, Ok(()));
    check_both(&case, Ok(()));
}
