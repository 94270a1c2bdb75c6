//! Helpers shared by the integration tests: paths to testdata and the binary.

use std::path::PathBuf;

/// The repository's `testdata/` directory.
#[allow(dead_code)]
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// A command running the real `portcullis` binary with a clean environment
/// for the variables portcullis reads.
#[allow(dead_code)]
pub fn portcullis() -> assert_cmd::Command {
    let mut cmd =
        assert_cmd::Command::cargo_bin("portcullis").expect("binary is built by cargo test");
    cmd.env_remove("PORTCULLIS_DATA_DIR")
        .env_remove("PORTCULLIS_NOW")
        .env_remove("PORTCULLIS_LOG");
    cmd
}
