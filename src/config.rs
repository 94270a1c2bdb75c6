//! Typed settings: the config file (`<data-dir>/portcullis.toml` or
//! `--config FILE`) merged with command-line flags, lowered once into
//! [`Config`].
//!
//! This module owns the file format and the precedence (flag > file >
//! Glance's default). It must not do anything with the settings, and the
//! root [`Config`] has no `Default`: every command says where its data
//! directory is.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::api::ServerOptions;
use crate::hash::HashAlgorithm;
use crate::inspect::policy::FormatPolicy;
use crate::openstack::{BarbicanOptions, Interface};
use crate::repo::RepoOptions;

/// The data directory when neither `--data-dir` nor `PORTCULLIS_DATA_DIR` is given.
pub const DEFAULT_DATA_DIR: &str = "./portcullis-data";

/// The config file looked for inside the data directory.
pub const CONFIG_FILE_NAME: &str = "portcullis.toml";

/// Glance's default `image_size_cap`: 1 TiB.
pub const DEFAULT_IMAGE_SIZE_CAP: u64 = 1 << 40;

/// How signatures are checked (the same two modes as `portcullis verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compat {
    /// portcullis's strict mode (default).
    Strict,
    /// Reproduce cursive exactly.
    Cursive,
}

/// Everything an upload needs to know besides the image and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestSettings {
    /// Largest image accepted, in bytes (Glance's `image_size_cap`).
    pub image_size_cap: u64,
    /// The `os_hash_algo` (Glance's `hashing_algorithm`).
    pub os_hash_algo: HashAlgorithm,
    /// Refuse images without a complete `img_signature*` set.
    pub require_signature: bool,
    /// Where certificates are looked up (`<uuid>.pem`); none: signed images are refused.
    pub cert_dir: Option<PathBuf>,
    /// Which key manager holds the certificates (`key_manager`; default the directory).
    pub key_manager: KeyManagerKind,
    /// Barbican's settings (`[barbican]`), used when `key_manager` is Barbican.
    pub barbican: BarbicanOptions,
    /// Trusted certificate ids: when set (even empty), the signing
    /// certificate's chain must end at one of them.
    pub trusted_certificates: Option<Vec<String>>,
    /// Signature-checking mode.
    pub compat: Compat,
    /// Glance's upload format policy for bare containers (`[image_format]`).
    pub format: FormatPolicy,
}

/// The settings of one command run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The data directory (database, store, locks, config file).
    pub data_dir: PathBuf,
    /// Upload settings.
    pub ingest: IngestSettings,
    /// The repository layers' settings (`[repo]`: policy, property
    /// protection, quotas, notifications).
    pub repo: RepoOptions,
    /// Where metadata and data live, and who this node is (scale-out).
    pub backends: Backends,
    /// `portcullis serve`'s settings (`[server]`), paths resolved against
    /// the config file's directory.
    pub server: ServerOptions,
}

/// The config file, as written. Every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    image_size_cap: Option<u64>,
    hashing_algorithm: Option<String>,
    require_signature: Option<bool>,
    cert_dir: Option<PathBuf>,
    trusted_certificates: Option<Vec<String>>,
    trusted_list: Option<PathBuf>,
    compat: Option<Compat>,
    image_format: Option<FormatPolicy>,
    repo: Option<RepoOptions>,
    key_manager: Option<KeyManagerKind>,
    barbican: Option<BarbicanSection>,
    database: Option<String>,
    store: Option<String>,
    store_credentials: Option<StoreCredentialsSection>,
    node_id: Option<String>,
    upload_lease_seconds: Option<u64>,
    sweep_interval_seconds: Option<u64>,
    sweep_at_open: Option<bool>,
    server: Option<ServerOptions>,
}

// ---- key manager (issue 9): `key_manager = "barbican"` and `[barbican]` ----

/// Where signing certificates come from (`key_manager`, `--key-manager`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyManagerKind {
    /// `cert_dir` / `--cert-dir`: `<uuid>.pem` files (the default).
    #[default]
    Directory,
    /// Barbican, found in the Keystone catalog (service type `key-manager`),
    /// read with the caller's token.
    Barbican,
}

/// The `[barbican]` table, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BarbicanSection {
    /// Barbican's URL instead of the catalog's.
    endpoint: Option<String>,
    /// Catalog interface (public, internal, admin).
    interface: Option<String>,
    /// Catalog region.
    region_name: Option<String>,
    /// Seconds a fetched certificate is reused per user and project.
    cache_ttl: Option<u64>,
    /// Certificates kept in the cache (0: no cache).
    cache_capacity: Option<usize>,
}

fn barbican_options(
    section: Option<&BarbicanSection>,
    path: &Path,
) -> Result<BarbicanOptions, Error> {
    let defaults = BarbicanOptions::default();
    let Some(section) = section else {
        return Ok(defaults);
    };
    let interface = match &section.interface {
        Some(text) => Some(Interface::parse(text).ok_or_else(|| Error::Barbican {
            path: path.to_owned(),
            reason: format!("interface {text:?} is not one of public, internal, admin"),
        })?),
        None => None,
    };
    Ok(BarbicanOptions {
        endpoint: section.endpoint.clone(),
        interface,
        region_name: section.region_name.clone(),
        cache_ttl: section
            .cache_ttl
            .map(std::time::Duration::from_secs)
            .unwrap_or(defaults.cache_ttl),
        cache_capacity: section.cache_capacity.unwrap_or(defaults.cache_capacity),
        ..defaults
    })
}

// ---- end of the key-manager section ----

// ---- backends (issue 7): `database`, `store`, `node_id`, upload leases ----

/// The default upload lease: 30 s. A node killed mid-upload leaves its image
/// `saving` for at most this long (plus the next sweep) before another node
/// returns it to `queued`; a live upload renews it every third of it
/// ([`Backends::heartbeat`], 10 s), so two missed renewals in a row (a
/// database failover, a stalled node) still do not lose it. A slow client
/// does not matter: the heartbeat is a task of its own that runs however
/// long the client takes to send the next byte, so only a dead process (or
/// one that cannot reach the database for 30 s) loses its lease.
pub const DEFAULT_UPLOAD_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// Where metadata and image data live, and this node's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backends {
    /// `--database` / `database` / `PORTCULLIS_DATABASE_URL`: `sqlite://PATH`
    /// or `postgres://…`; `None`: `<data-dir>/portcullis.db`.
    pub database: Option<String>,
    /// `--store` / `store`: `file://DIR` or `s3://BUCKET[/PREFIX]?…` (with
    /// `[store_credentials]` when given); `None`: the data directory.
    pub store: Option<crate::store::StoreConfig>,
    /// This node's id in upload leases (`node_id`, `--node-id`); see
    /// [`default_node_id`].
    pub node_id: String,
    /// How long an upload lease lasts without renewal.
    pub upload_lease: std::time::Duration,
    /// How often `serve` sweeps the store (`sweep_interval_seconds`,
    /// default [`DEFAULT_SWEEP_INTERVAL`]); dead uploads are recovered every
    /// half lease regardless.
    pub sweep_interval: std::time::Duration,
    /// Whether every opener collects a bounded amount of leftovers
    /// (`sweep_at_open`, default true; see `ingest::sweep::sweep_at_open`).
    /// Off for `gc`, which sweeps everything itself, and for a node whose
    /// store another process sweeps.
    pub sweep_at_open: bool,
}

/// The default full sweep interval of `serve`: 5 minutes. A sweep lists the
/// whole store (one listing per 1,000 objects on S3), so it runs rarely;
/// nothing it collects is in anyone's way meanwhile (dead uploads, which
/// are, are recovered every half lease).
pub const DEFAULT_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

impl Backends {
    /// How often a live upload renews its lease: a third of its length.
    pub fn heartbeat(&self) -> std::time::Duration {
        self.upload_lease / 3
    }
}

/// The `[store_credentials]` table: S3 credentials instead of `AWS_*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreCredentialsSection {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

/// The node id when none is configured: the host name and the first 8 hex
/// digits of the SHA-256 of `/etc/machine-id` (`web1-3fa4c2d1`), stable
/// across restarts (so a restarted node recovers its own dead uploads at
/// once) and distinct for two machines (or containers) that share a host
/// name. Without a machine id, the host name alone; without either,
/// `localhost`.
pub fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    match std::fs::read_to_string("/etc/machine-id") {
        Ok(id) if !id.trim().is_empty() => {
            let mut hasher = crate::hash::HashAlgorithm::Sha256.hasher();
            hasher.update(id.trim().as_bytes());
            format!("{host}-{}", &hasher.finish().to_hex()[..8])
        }
        Ok(_) | Err(_) => host,
    }
}

fn check_node_id(node_id: &str) -> Result<(), String> {
    let valid = !node_id.is_empty()
        && node_id.len() <= 255
        && node_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "node_id {node_id:?} must be 1-255 letters, digits, '.', '-', '_' or ':'"
        ))
    }
}

fn backends(file: &ConfigFile, overrides: &Overrides, path: &Path) -> Result<Backends, Error> {
    let bad = |reason: String| Error::Backends {
        path: path.to_owned(),
        reason,
    };
    let database = overrides
        .database
        .clone()
        .or_else(|| file.database.clone())
        .filter(|url| !url.is_empty());
    let store = match overrides.store.as_ref().or(file.store.as_ref()) {
        Some(text) => {
            let mut config: crate::store::StoreConfig = text
                .parse()
                .map_err(|err: crate::store::ConfigError| bad(err.to_string()))?;
            if let (crate::store::StoreConfig::S3(s3), Some(credentials)) =
                (&mut config, &file.store_credentials)
            {
                s3.credentials = Some(crate::store::S3Credentials {
                    access_key_id: credentials.access_key_id.clone(),
                    secret_access_key: credentials.secret_access_key.clone(),
                    session_token: credentials.session_token.clone(),
                });
            }
            Some(config)
        }
        None => None,
    };
    let node_id = match overrides.node_id.as_ref().or(file.node_id.as_ref()) {
        Some(id) => id.clone(),
        None => default_node_id(),
    };
    check_node_id(&node_id).map_err(bad)?;
    let upload_lease = match file.upload_lease_seconds {
        Some(seconds @ 1..=3600) => std::time::Duration::from_secs(seconds),
        Some(seconds) => {
            return Err(bad(format!(
                "upload_lease_seconds = {seconds} must be from 1 to 3600"
            )));
        }
        None => DEFAULT_UPLOAD_LEASE,
    };
    let sweep_interval = match file.sweep_interval_seconds {
        Some(seconds @ 1..=86_400) => std::time::Duration::from_secs(seconds),
        Some(seconds) => {
            return Err(bad(format!(
                "sweep_interval_seconds = {seconds} must be from 1 to 86400"
            )));
        }
        None => DEFAULT_SWEEP_INTERVAL,
    };
    Ok(Backends {
        database,
        store,
        node_id,
        upload_lease: overrides.upload_lease.unwrap_or(upload_lease),
        sweep_interval,
        sweep_at_open: overrides
            .sweep_at_open
            .or(file.sweep_at_open)
            .unwrap_or(true),
    })
}

// ---- end of the backends section ----

/// Settings given on the command line; `None` leaves the file's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--config FILE`: must exist when given.
    pub config_file: Option<PathBuf>,
    /// `--size-cap BYTES`.
    pub image_size_cap: Option<u64>,
    /// `--require-signature` (can only switch the check on).
    pub require_signature: bool,
    /// `--cert-dir DIR`.
    pub cert_dir: Option<PathBuf>,
    /// `--trusted-list FILE`.
    pub trusted_list: Option<PathBuf>,
    /// `--compat cursive`.
    pub compat: Option<Compat>,
    /// `--key-manager`.
    pub key_manager: Option<KeyManagerKind>,
    /// `--database URL` (or `PORTCULLIS_DATABASE_URL`).
    pub database: Option<String>,
    /// `--store URL`.
    pub store: Option<String>,
    /// `--node-id ID`.
    pub node_id: Option<String>,
    /// An upload lease length (library callers and tests; the file's
    /// `upload_lease_seconds` otherwise).
    pub upload_lease: Option<std::time::Duration>,
    /// Whether opening collects leftovers (`gc` turns it off: it sweeps
    /// everything itself, and a dry run must remove nothing).
    pub sweep_at_open: Option<bool>,
}

/// A config file or flag that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file named by `--config` or found in the data directory cannot be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown key or a wrong type.
    #[error("config file {path} is invalid")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error, naming the key.
        #[source]
        source: toml::de::Error,
    },
    /// `hashing_algorithm` names an algorithm portcullis does not compute.
    #[error("config file {path}: hashing_algorithm")]
    HashingAlgorithm {
        /// The file.
        path: PathBuf,
        /// Which name.
        #[source]
        source: crate::hash::UnknownHashAlgorithm,
    },
    /// A trusted list file cannot be read.
    #[error("cannot read trusted list {path}")]
    TrustedList {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `image_size_cap` is zero.
    #[error("image_size_cap must be at least 1 byte")]
    ZeroSizeCap,
    /// The data directory exists but is not a directory (or a file is in
    /// the way on its path).
    #[error(
        "data directory {path} is not a directory; give --data-dir (or PORTCULLIS_DATA_DIR) a directory, or a path where one can be created"
    )]
    DataDirNotADirectory {
        /// The data directory as given.
        path: PathBuf,
    },
    /// The `[barbican]` table has a value that cannot be used.
    #[error("config file {path}: [barbican] {reason}")]
    Barbican {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `database`, `store`, `node_id` or `upload_lease_seconds` (file or
    /// flag) cannot be used.
    #[error("config file {path} or flags: {reason}")]
    Backends {
        /// The file (it may not exist: the value came from a flag).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The `[server]` table has settings that cannot work together.
    #[error("config file {path}: [server]")]
    Server {
        /// The file.
        path: PathBuf,
        /// Which setting.
        #[source]
        source: crate::api::OptionsError,
    },
}

/// Reads a trusted list: one certificate id per line; blank lines and lines
/// starting with `#` are skipped. An empty file means "validate the chain,
/// trust nothing" (which rejects every signed image).
///
/// Fails when the file cannot be read.
pub fn read_trusted_list(path: &Path) -> Result<Vec<String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::TrustedList {
        path: path.to_owned(),
        source,
    })?;
    Ok(crate::verify::trusted_ids_from_text(&text))
}

impl Config {
    /// Loads the settings for `data_dir`: the config file (`overrides.config_file`,
    /// else `<data_dir>/portcullis.toml` when it exists), then the flags.
    ///
    /// Relative paths in the config file are relative to the file's directory.
    /// Fails when `data_dir` exists but is not a directory, on an
    /// unreadable or invalid file, an unknown key, an unknown hashing
    /// algorithm, or an unreadable trusted list.
    pub fn load(data_dir: &Path, overrides: &Overrides) -> Result<Config, Error> {
        // A data directory that is a file would otherwise surface as
        // "cannot read config file <dir>/portcullis.toml: Not a directory".
        match std::fs::metadata(data_dir) {
            Ok(metadata) if !metadata.is_dir() => {
                return Err(Error::DataDirNotADirectory {
                    path: data_dir.to_owned(),
                });
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotADirectory => {
                return Err(Error::DataDirNotADirectory {
                    path: data_dir.to_owned(),
                });
            }
            // Missing (created on first use) or a directory; other errors
            // surface where the directory is used, with their cause.
            Ok(_) | Err(_) => {}
        }
        let (file, file_dir) = match &overrides.config_file {
            Some(path) => (read_file(path)?, parent_of(path)),
            None => {
                // Only a config file that is not there at all means "no
                // settings": one that exists but cannot be read (a dangling
                // symlink, a directory, no permission) is an error, so
                // settings such as require_signature are never silently dropped.
                let path = data_dir.join(CONFIG_FILE_NAME);
                match std::fs::symlink_metadata(&path) {
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        (ConfigFile::default(), data_dir.to_owned())
                    }
                    _ => (read_file(&path)?, data_dir.to_owned()),
                }
            }
        };
        let file_path = overrides
            .config_file
            .clone()
            .unwrap_or_else(|| data_dir.join(CONFIG_FILE_NAME));

        let os_hash_algo = match &file.hashing_algorithm {
            Some(name) => name.parse().map_err(|source| Error::HashingAlgorithm {
                path: file_path.clone(),
                source,
            })?,
            None => HashAlgorithm::Sha512,
        };
        let image_size_cap = overrides
            .image_size_cap
            .or(file.image_size_cap)
            .unwrap_or(DEFAULT_IMAGE_SIZE_CAP);
        if image_size_cap == 0 {
            return Err(Error::ZeroSizeCap);
        }
        let trusted_certificates = match (&overrides.trusted_list, &file.trusted_list) {
            (Some(path), _) => Some(read_trusted_list(path)?),
            (None, Some(path)) => {
                let mut ids = read_trusted_list(&file_dir.join(path))?;
                ids.extend(file.trusted_certificates.iter().flatten().cloned());
                Some(ids)
            }
            (None, None) => file.trusted_certificates.clone(),
        };
        let ingest = IngestSettings {
            image_size_cap,
            os_hash_algo,
            require_signature: overrides.require_signature
                || file.require_signature.unwrap_or(false),
            cert_dir: overrides
                .cert_dir
                .clone()
                .or_else(|| file.cert_dir.as_ref().map(|dir| file_dir.join(dir))),
            trusted_certificates,
            key_manager: overrides
                .key_manager
                .or(file.key_manager)
                .unwrap_or_default(),
            barbican: barbican_options(file.barbican.as_ref(), &file_path)?,
            compat: overrides.compat.or(file.compat).unwrap_or(Compat::Strict),
            format: file.image_format.clone().unwrap_or_default(),
        };
        // [server] (portcullis serve): paths relative to the file, then the
        // combinations serde cannot check.
        let mut server = file.server.clone().unwrap_or_default();
        server.resolve_paths(&file_dir);
        server.validate().map_err(|source| Error::Server {
            path: file_path.clone(),
            source,
        })?;
        Ok(Config {
            data_dir: data_dir.to_owned(),
            ingest,
            repo: file.repo.clone().unwrap_or_default(),
            backends: backends(&file, overrides, &file_path)?,
            server,
        })
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn read_file(path: &Path) -> Result<ConfigFile, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| Error::Parse {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(file: &str, overrides: Overrides) -> Result<Config, Error> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE_NAME), file).unwrap();
        std::fs::write(dir.path().join("trusted.txt"), "# roots\nabc\n\n def \n").unwrap();
        let config = Config::load(dir.path(), &overrides);
        config.map(|mut config| {
            // Paths point into the temporary directory; keep only their tails.
            config.ingest.cert_dir = config
                .ingest
                .cert_dir
                .map(|dir| dir.file_name().map(PathBuf::from).unwrap_or_default());
            config
        })
    }

    #[test]
    fn defaults_are_glances() {
        let config = load_with("", Overrides::default()).unwrap();
        assert_eq!(config.ingest.image_size_cap, 1 << 40);
        assert_eq!(config.ingest.os_hash_algo, HashAlgorithm::Sha512);
        assert!(!config.ingest.require_signature);
        assert_eq!(config.ingest.trusted_certificates, None);
        assert_eq!(config.ingest.compat, Compat::Strict);
        assert!(config.ingest.format.require_image_format_match);
    }

    #[test]
    fn image_format_section() {
        let file = "[image_format]\nrequire_image_format_match = false\n";
        let config = load_with(file, Overrides::default()).unwrap();
        assert!(!config.ingest.format.require_image_format_match);
        let err =
            load_with("[image_format]\nrequire_format = 1\n", Overrides::default()).unwrap_err();
        assert!(matches!(err, Error::Parse { .. }));
    }

    #[test]
    fn file_values_then_flags() {
        let file = "image_size_cap = 1000\nhashing_algorithm = \"sha256\"\nrequire_signature = true\n\
                    cert_dir = \"certs\"\ntrusted_list = \"trusted.txt\"\ncompat = \"cursive\"\n";
        let config = load_with(file, Overrides::default()).unwrap();
        assert_eq!(config.ingest.image_size_cap, 1000);
        assert_eq!(config.ingest.os_hash_algo, HashAlgorithm::Sha256);
        assert!(config.ingest.require_signature);
        assert_eq!(config.ingest.cert_dir, Some(PathBuf::from("certs")));
        assert_eq!(
            config.ingest.trusted_certificates,
            Some(vec!["abc".to_owned(), "def".to_owned()])
        );
        assert_eq!(config.ingest.compat, Compat::Cursive);

        let flags = Overrides {
            image_size_cap: Some(5),
            cert_dir: Some(PathBuf::from("/elsewhere/flagcerts")),
            compat: Some(Compat::Strict),
            ..Overrides::default()
        };
        let config = load_with(file, flags).unwrap();
        assert_eq!(config.ingest.image_size_cap, 5);
        assert_eq!(config.ingest.cert_dir, Some(PathBuf::from("flagcerts")));
        assert_eq!(config.ingest.compat, Compat::Strict);
    }

    #[test]
    fn key_manager_section() {
        let config = load_with("", Overrides::default()).unwrap();
        assert_eq!(config.ingest.key_manager, KeyManagerKind::Directory);
        assert_eq!(config.ingest.barbican, BarbicanOptions::default());
        let file = "key_manager = \"barbican\"\n[barbican]\nendpoint = \"https://kms:9311\"\n\
                    interface = \"internal\"\nregion_name = \"R1\"\ncache_ttl = 5\ncache_capacity = 0\n";
        let config = load_with(file, Overrides::default()).unwrap();
        assert_eq!(config.ingest.key_manager, KeyManagerKind::Barbican);
        assert_eq!(
            config.ingest.barbican,
            BarbicanOptions {
                endpoint: Some("https://kms:9311".to_owned()),
                interface: Some(Interface::Internal),
                region_name: Some("R1".to_owned()),
                cache_ttl: std::time::Duration::from_secs(5),
                cache_capacity: 0,
                ..BarbicanOptions::default()
            }
        );
        let flag = Overrides {
            key_manager: Some(KeyManagerKind::Directory),
            ..Overrides::default()
        };
        assert_eq!(
            load_with(file, flag).unwrap().ingest.key_manager,
            KeyManagerKind::Directory
        );
        let err = load_with("key_manager = \"vault\"\n", Overrides::default()).unwrap_err();
        assert!(matches!(err, Error::Parse { .. }), "{err:?}");
        let err = load_with(
            "[barbican]\ninterface = \"private\"\n",
            Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("private"), "{err}");
        let err = load_with("[barbican]\nurl = \"x\"\n", Overrides::default()).unwrap_err();
        assert!(matches!(err, Error::Parse { .. }), "{err:?}");
    }

    #[test]
    fn a_config_file_that_exists_but_cannot_be_read_is_an_error() {
        // A dangling symlink (say, to an unmounted /etc) must not silently
        // mean "defaults": that would drop require_signature and the rest.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("gone.toml"),
            dir.path().join(CONFIG_FILE_NAME),
        )
        .unwrap();
        let err = Config::load(dir.path(), &Overrides::default()).unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err:?}");
        assert!(err.to_string().contains(CONFIG_FILE_NAME), "{err}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(CONFIG_FILE_NAME)).unwrap();
        let err = Config::load(dir.path(), &Overrides::default()).unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err:?}");

        // No file at all is fine.
        let dir = tempfile::tempdir().unwrap();
        assert!(Config::load(dir.path(), &Overrides::default()).is_ok());
    }

    #[test]
    fn a_data_directory_that_is_a_file_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, "").unwrap();
        for path in [file.clone(), file.join("below")] {
            let err = Config::load(&path, &Overrides::default()).unwrap_err();
            assert!(matches!(err, Error::DataDirNotADirectory { .. }), "{err:?}");
            assert!(err.to_string().contains("is not a directory"), "{err}");
        }
        assert!(Config::load(&dir.path().join("new"), &Overrides::default()).is_ok());
    }

    #[test]
    fn bad_files_name_the_problem() {
        let err = load_with("image_size_kap = 3\n", Overrides::default()).unwrap_err();
        assert!(matches!(err, Error::Parse { .. }));
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("image_size_kap"), "{source}");
        let err = load_with("hashing_algorithm = \"sha3\"\n", Overrides::default()).unwrap_err();
        assert!(matches!(err, Error::HashingAlgorithm { .. }), "{err:?}");
        let err = load_with("image_size_cap = 0\n", Overrides::default()).unwrap_err();
        assert!(matches!(err, Error::ZeroSizeCap));
        let missing = Overrides {
            config_file: Some(PathBuf::from("/nonexistent/portcullis.toml")),
            ..Overrides::default()
        };
        assert!(matches!(
            load_with("", missing).unwrap_err(),
            Error::Read { .. }
        ));
    }
}
