//! Helpers shared by the integration tests: paths to testdata and the binary.

use std::path::PathBuf;

/// The repository's `testdata/` directory.
#[allow(dead_code)]
pub(crate) fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// A command running the real `portcullis` binary with a clean environment
/// for the variables portcullis reads.
#[allow(dead_code)]
pub(crate) fn portcullis() -> assert_cmd::Command {
    let mut cmd =
        assert_cmd::Command::cargo_bin("portcullis").expect("binary is built by cargo test");
    cmd.env_remove("PORTCULLIS_DATA_DIR")
        .env_remove("PORTCULLIS_NOW")
        .env_remove("PORTCULLIS_LOG");
    cmd
}

/// The id of a certificate fixture, by name (testdata/certs/INDEX).
#[allow(dead_code)]
pub(crate) fn cert_id(name: &str) -> String {
    let index = std::fs::read_to_string(testdata().join("certs/INDEX")).expect("certs/INDEX");
    index
        .lines()
        .find_map(|line| {
            let (fixture, id) = line.split_once(' ')?;
            (fixture == name).then(|| id.to_owned())
        })
        .unwrap_or_else(|| panic!("no certificate fixture named {name}"))
}

/// A base64 signature fixture, by name (testdata/signatures/<name>.b64).
#[allow(dead_code)]
pub(crate) fn signature_b64(name: &str) -> String {
    std::fs::read_to_string(testdata().join(format!("signatures/{name}.b64")))
        .unwrap_or_else(|err| panic!("signature fixture {name}: {err}"))
        .trim()
        .to_owned()
}

/// The time the verification fixtures are checked at.
#[allow(dead_code)]
pub(crate) const FIXTURE_NOW: &str = "2026-06-01T00:00:00Z";
