//! One image's life, written as data ([`scenario`]: steps and the records
//! expected after each) and driven through a front end by a [`Driver`]:
//! create a signed image, refuse a create with a read-only property, refuse
//! a tampered upload (image back to `queued`, nothing stored), upload the
//! signed data, update it, refuse a read-only change, download and compare
//! bytes, deactivate (twice: a no-op the second time), reactivate, delete.
//!
//! [`CliDriver`] runs the real `portcullis` binary. The HTTP server's tests
//! run the same [`scenario`] through `portcullis serve` with an HTTP driver
//! and must see the same records: the expectations are Glance image
//! documents (`images show --format json` prints exactly what
//! `GET /v2/images/<id>` serves), never CLI text.

// Helpers here are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::ingest::{md5_hex, sha512_hex, store_files_in};
use crate::support::{FIXTURE_NOW, portcullis, testdata};

/// The image data a step uploads or expects back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Data {
    /// testdata/sample/sample.qcow2, which its committed properties sign.
    Signed,
    /// The same bytes with the last one changed: the signature no longer matches.
    Tampered,
}

impl Data {
    pub(crate) fn bytes(self) -> Vec<u8> {
        let mut bytes = std::fs::read(testdata().join("sample/sample.qcow2")).unwrap();
        if self == Data::Tampered {
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
        }
        bytes
    }
}

/// What a step asks the front end to do to the scenario's image.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Create an image (the scenario's image, when it succeeds).
    Create {
        name: &'static str,
        disk_format: &'static str,
        container_format: &'static str,
        properties: Vec<(String, String)>,
    },
    /// Upload data to the image.
    Upload(Data),
    /// Change the name and properties (glanceclient's image-update).
    Update {
        name: Option<&'static str>,
        set: Vec<(&'static str, &'static str)>,
        remove: Vec<&'static str>,
    },
    /// Download the data; it must equal `Data`'s bytes.
    Download(Data),
    /// Deactivate the image.
    Deactivate,
    /// Reactivate the image.
    Reactivate,
    /// Delete the image.
    Delete,
}

/// How a step must end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done.
    Ok,
    /// Refused, with this error kind (CLI exit 1; an HTTP 4xx).
    Rejected(String),
}

/// One step and what must hold after it.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) what: &'static str,
    pub(crate) action: Action,
    pub(crate) outcome: Outcome,
    /// The image's record afterwards (`None`: not found), as fields of
    /// Glance's image document; `Some(None)` for a field means "absent".
    pub(crate) record: Option<Vec<(&'static str, Option<Value>)>>,
    /// How many images the caller can list afterwards.
    pub(crate) n_images: usize,
    /// Whether the store holds the image's data afterwards (nothing staged, ever).
    pub(crate) stored: bool,
}

/// The scenario: every step, with the records expected after each.
pub(crate) fn scenario() -> Vec<Step> {
    let signed = Data::Signed.bytes();
    let signature: serde_json::Map<String, Value> = serde_json::from_str(
        &std::fs::read_to_string(testdata().join("sample/properties.json")).unwrap(),
    )
    .unwrap();
    let mut properties: Vec<(String, String)> = signature
        .iter()
        .map(|(key, value)| (key.clone(), value.as_str().unwrap().to_owned()))
        .collect();
    properties.push(("os_distro".to_owned(), "cirros".to_owned()));
    let certificate = signature["img_signature_certificate_uuid"].clone();

    let queued = vec![
        ("name", Some(json!("scenario"))),
        ("status", Some(json!("queued"))),
        ("disk_format", Some(json!("qcow2"))),
        ("container_format", Some(json!("bare"))),
        ("size", Some(Value::Null)),
        ("virtual_size", Some(Value::Null)),
        ("checksum", Some(Value::Null)),
        ("os_hash_value", Some(Value::Null)),
        ("img_signature_certificate_uuid", Some(certificate.clone())),
        ("os_distro", Some(json!("cirros"))),
        ("stores", None),
    ];
    let active = vec![
        ("name", Some(json!("scenario"))),
        ("status", Some(json!("active"))),
        ("size", Some(json!(signed.len()))),
        ("virtual_size", Some(json!(64 * 1024 * 1024))),
        ("checksum", Some(json!(md5_hex(&signed)))),
        ("os_hash_algo", Some(json!("sha512"))),
        ("os_hash_value", Some(json!(sha512_hex(&signed)))),
        ("img_signature_certificate_uuid", Some(certificate)),
        ("os_distro", Some(json!("cirros"))),
        ("stores", Some(json!("fs"))),
    ];
    let with = |base: &Vec<(&'static str, Option<Value>)>,
                changes: &[(&'static str, Option<Value>)]| {
        let mut record: Vec<(&'static str, Option<Value>)> = base
            .iter()
            .filter(|(key, _)| !changes.iter().any(|(changed, _)| changed == key))
            .cloned()
            .collect();
        record.extend(changes.iter().cloned());
        record
    };
    let updated = with(
        &active,
        &[
            ("name", Some(json!("renamed"))),
            ("os_version", Some(json!("0.6"))),
            ("os_distro", None),
        ],
    );

    vec![
        Step {
            what: "create a signed image",
            action: Action::Create {
                name: "scenario",
                disk_format: "qcow2",
                container_format: "bare",
                properties: properties.clone(),
            },
            outcome: Outcome::Ok,
            record: Some(queued.clone()),
            n_images: 1,
            stored: false,
        },
        Step {
            what: "a create with a read-only property is refused and creates nothing",
            action: Action::Create {
                name: "refused",
                disk_format: "raw",
                container_format: "bare",
                properties: vec![("status".to_owned(), "active".to_owned())],
            },
            outcome: Outcome::Rejected("read_only".to_owned()),
            record: Some(queued.clone()),
            n_images: 1,
            stored: false,
        },
        Step {
            what: "a tampered upload is refused: queued, nothing stored",
            action: Action::Upload(Data::Tampered),
            outcome: Outcome::Rejected("bad_signature".to_owned()),
            record: Some(queued),
            n_images: 1,
            stored: false,
        },
        Step {
            what: "the signed upload makes the image active",
            action: Action::Upload(Data::Signed),
            outcome: Outcome::Ok,
            record: Some(active.clone()),
            n_images: 1,
            stored: true,
        },
        Step {
            what: "update: rename, add and remove properties",
            action: Action::Update {
                name: Some("renamed"),
                set: vec![("os_version", "0.6")],
                remove: vec!["os_distro"],
            },
            outcome: Outcome::Ok,
            record: Some(updated.clone()),
            n_images: 1,
            stored: true,
        },
        Step {
            what: "update of a read-only attribute is refused and changes nothing",
            action: Action::Update {
                name: Some("not-applied"),
                set: vec![("checksum", "deadbeef")],
                remove: vec![],
            },
            outcome: Outcome::Rejected("read_only".to_owned()),
            record: Some(updated.clone()),
            n_images: 1,
            stored: true,
        },
        Step {
            what: "download returns the signed bytes",
            action: Action::Download(Data::Signed),
            outcome: Outcome::Ok,
            record: Some(updated.clone()),
            n_images: 1,
            stored: true,
        },
        Step {
            what: "deactivate",
            action: Action::Deactivate,
            outcome: Outcome::Ok,
            record: Some(with(&updated, &[("status", Some(json!("deactivated")))])),
            n_images: 1,
            stored: true,
        },
        Step {
            what: "deactivate again is a no-op, as in Glance",
            action: Action::Deactivate,
            outcome: Outcome::Ok,
            record: Some(with(&updated, &[("status", Some(json!("deactivated")))])),
            n_images: 1,
            stored: true,
        },
        Step {
            what: "reactivate",
            action: Action::Reactivate,
            outcome: Outcome::Ok,
            record: Some(updated),
            n_images: 1,
            stored: true,
        },
        Step {
            what: "delete removes the record and the data",
            action: Action::Delete,
            outcome: Outcome::Ok,
            record: None,
            n_images: 0,
            stored: false,
        },
    ]
}

/// A front end the scenario runs through.
pub(crate) trait Driver {
    /// Runs `action` on the scenario's image (`id`, once created); returns
    /// the outcome and, for a successful create, the new image's id.
    fn run(&mut self, id: Option<&str>, action: &Action) -> (Outcome, Option<String>);
    /// The image's record as Glance's image document; `None` when not found.
    fn show(&mut self, id: &str) -> Option<Value>;
    /// How many images the caller can list.
    fn count(&mut self) -> usize;
    /// Files in the store: committed data and staged leftovers.
    fn store_files(&mut self) -> Vec<String>;
}

/// Runs the scenario through `driver`, asserting every step.
pub(crate) fn run_scenario(driver: &mut dyn Driver) {
    let mut id: Option<String> = None;
    for step in scenario() {
        let what = step.what;
        let (outcome, created) = driver.run(id.as_deref(), &step.action);
        assert_eq!(outcome, step.outcome, "{what}");
        if id.is_none() {
            id = created;
        }
        let id = id
            .as_deref()
            .unwrap_or_else(|| panic!("{what}: no image yet"));
        match (&step.record, driver.show(id)) {
            (None, None) => {}
            (None, Some(record)) => panic!("{what}: the image should be gone: {record}"),
            (Some(_), None) => panic!("{what}: the image is gone"),
            (Some(expected), Some(record)) => {
                for (field, value) in expected {
                    assert_eq!(
                        record.get(*field),
                        value.as_ref(),
                        "{what}: {field} in {record}"
                    );
                }
            }
        }
        assert_eq!(driver.count(), step.n_images, "{what}: images listed");
        let files = driver.store_files();
        let expected: Vec<String> = if step.stored {
            vec![format!("images/{id}")]
        } else {
            Vec::new()
        };
        assert_eq!(files, expected, "{what}: store contents");
    }
}

/// The scenario through the real `portcullis` binary.
pub(crate) struct CliDriver {
    dir: tempfile::TempDir,
}

impl CliDriver {
    pub(crate) fn new() -> CliDriver {
        CliDriver {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `portcullis images ARGS --format json`: exit code and the JSON document.
    fn images(&self, args: &[&str]) -> (i32, Value) {
        let output = portcullis()
            .env("PORTCULLIS_DATA_DIR", self.data_dir())
            .env("PORTCULLIS_NOW", FIXTURE_NOW)
            .arg("images")
            .args(args)
            .args(["--format", "json"])
            .output()
            .unwrap();
        let code = output.status.code().unwrap();
        let document = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        (code, document)
    }

    fn outcome(code: i32, document: &Value) -> Outcome {
        match code {
            0 => Outcome::Ok,
            1 => Outcome::Rejected(document["error"]["kind"].as_str().unwrap_or("?").to_owned()),
            _ => panic!("exit {code}: {document}"),
        }
    }
}

impl Driver for CliDriver {
    fn run(&mut self, id: Option<&str>, action: &Action) -> (Outcome, Option<String>) {
        let id = || id.expect("the image exists").to_owned();
        let (code, document) = match action {
            Action::Create {
                name,
                disk_format,
                container_format,
                properties,
            } => {
                let mut args: Vec<String> =
                    ["create", "--name", name, "--disk-format", disk_format]
                        .iter()
                        .map(|arg| (*arg).to_owned())
                        .collect();
                args.extend([
                    "--container-format".to_owned(),
                    (*container_format).to_owned(),
                ]);
                for (key, value) in properties {
                    args.push("--property".to_owned());
                    args.push(format!("{key}={value}"));
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let (code, document) = self.images(&args);
                let created = (code == 0).then(|| document["id"].as_str().unwrap().to_owned());
                return (CliDriver::outcome(code, &document), created);
            }
            Action::Upload(data) => {
                let file = self.dir.path().join("upload.qcow2");
                std::fs::write(&file, data.bytes()).unwrap();
                let certs = testdata().join("certs");
                self.images(&[
                    "upload",
                    &id(),
                    file.to_str().unwrap(),
                    "--cert-dir",
                    certs.to_str().unwrap(),
                ])
            }
            Action::Update { name, set, remove } => {
                let id = id();
                let mut args = vec!["update".to_owned(), id];
                if let Some(name) = name {
                    args.extend(["--name".to_owned(), (*name).to_owned()]);
                }
                for (key, value) in set {
                    args.extend(["--property".to_owned(), format!("{key}={value}")]);
                }
                for key in remove {
                    args.extend(["--remove-property".to_owned(), (*key).to_owned()]);
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                self.images(&args)
            }
            Action::Download(expected) => {
                let target = self.dir.path().join("downloaded.qcow2");
                let (code, document) =
                    self.images(&["download", &id(), "-o", target.to_str().unwrap()]);
                if code == 0 {
                    assert!(
                        std::fs::read(&target).unwrap() == expected.bytes(),
                        "the downloaded bytes differ"
                    );
                    std::fs::remove_file(&target).unwrap();
                }
                (code, document)
            }
            Action::Deactivate => self.images(&["deactivate", &id()]),
            Action::Reactivate => self.images(&["reactivate", &id()]),
            Action::Delete => self.images(&["delete", &id()]),
        };
        (CliDriver::outcome(code, &document), None)
    }

    fn show(&mut self, id: &str) -> Option<Value> {
        let (code, document) = self.images(&["show", id]);
        match code {
            0 => Some(document),
            1 if document["error"]["kind"] == "not_found" => None,
            _ => panic!("show {id}: exit {code}: {document}"),
        }
    }

    fn count(&mut self) -> usize {
        let (code, document) = self.images(&["list"]);
        assert_eq!(code, 0, "{document}");
        document["images"].as_array().unwrap().len()
    }

    fn store_files(&mut self) -> Vec<String> {
        store_files_in(&self.data_dir())
    }
}

#[test]
fn the_scenario_through_the_cli() {
    run_scenario(&mut CliDriver::new());
}
