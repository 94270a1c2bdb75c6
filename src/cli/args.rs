//! The argument groups `ingest` and `images` share, and their lowering to
//! library types: where the repository is and who is asking
//! ([`RepoArgs`] → `Overrides`, `RequestContext`), an upload's settings
//! ([`UploadArgs`]), and a new image's fields ([`ImageFields`] →
//! `wire::CreateRequest`, which `app::App::create` validates as Glance
//! validates a create request).
//!
//! This module owns argument syntax only; it must not open anything but
//! the properties file it is pointed at, nor decide about images.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::config::{Compat, Overrides};
use crate::context::RequestContext;
use crate::image::{ContainerFormat, DiskFormat, Properties, Visibility};
use crate::wire::CreateRequest;

use super::report::{CliError, error_chain};

/// Where the repository is and who is asking.
#[derive(Debug, Clone, Args)]
pub(crate) struct RepoArgs {
    /// The data directory (SQLite database, image store, locks, portcullis.toml).
    #[arg(long, global = true, env = "PORTCULLIS_DATA_DIR", default_value = crate::config::DEFAULT_DATA_DIR)]
    pub(crate) data_dir: PathBuf,
    /// Config file (default: <data-dir>/portcullis.toml when it exists).
    #[arg(long, global = true)]
    pub(crate) config: Option<PathBuf>,
    /// Act as this project instead of the local administrator.
    #[arg(long, global = true)]
    pub(crate) project: Option<String>,
    /// Roles of the caller, comma separated (default with --project: member).
    #[arg(long, global = true, value_delimiter = ',')]
    pub(crate) roles: Vec<String>,
    /// The metadata database: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB
    /// (default: <data-dir>/portcullis.db; config `database`).
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub(crate) database: Option<String>,
    /// The image store: file:///DIR or s3://BUCKET[/PREFIX]?endpoint=URL&region=R
    /// (default: the data directory; config `store`; S3 credentials from AWS_* or `[store_credentials]`).
    #[arg(long, global = true, env = "PORTCULLIS_STORE_URL", value_name = "URL")]
    pub(crate) store: Option<String>,
    /// This node's id in upload leases (default: config `node_id`, else host name + machine id).
    #[arg(long, global = true, env = "PORTCULLIS_NODE_ID", value_name = "ID")]
    pub(crate) node_id: Option<String>,
}

impl RepoArgs {
    /// The backend flags as config overrides.
    pub(crate) fn apply_backends(&self, overrides: &mut Overrides) {
        overrides.database = self.database.clone();
        overrides.store = self.store.clone();
        overrides.node_id = self.node_id.clone();
    }
}

impl RepoArgs {
    /// The caller: the local administrator, or `--project` with its roles
    /// (`member,reader` unless `--roles` says otherwise).
    ///
    /// Fails when `--project` is empty (an empty id would become a project
    /// of its own that owns images).
    pub(crate) fn context(&self) -> Result<RequestContext, String> {
        match &self.project {
            Some(project) if project.trim().is_empty() => Err(
                "--project must name a project id (it is empty); omit it to act as the local administrator"
                    .to_owned(),
            ),
            Some(project) => {
                let roles: Vec<&str> = if self.roles.is_empty() {
                    vec!["member", "reader"]
                } else {
                    self.roles.iter().map(String::as_str).collect()
                };
                Ok(RequestContext::for_project(project.clone(), &roles))
            }
            None if self.roles.is_empty() => Ok(RequestContext::local_admin()),
            None => Ok(RequestContext {
                roles: self
                    .roles
                    .iter()
                    .map(|role| role.to_ascii_lowercase())
                    .collect(),
                ..RequestContext::default()
            }),
        }
    }
}

/// `--compat` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CompatArg {
    /// portcullis's strict checks (default).
    Strict,
    /// Reproduce OpenStack cursive exactly.
    Cursive,
}

/// Settings of an upload.
#[derive(Debug, Clone, Args)]
pub(crate) struct UploadArgs {
    /// Directory of signing certificates (`<uuid>.pem` or DER), as Barbican would serve them.
    #[arg(long)]
    pub(crate) cert_dir: Option<PathBuf>,
    /// File of trusted certificate ids, one per line: validates the signer's chain.
    #[arg(long)]
    pub(crate) trusted_list: Option<PathBuf>,
    /// Refuse images without a complete img_signature* property set.
    #[arg(long)]
    pub(crate) require_signature: bool,
    /// Largest image accepted, in bytes (default 1 TiB, config image_size_cap).
    #[arg(long, value_name = "BYTES")]
    pub(crate) size_cap: Option<u64>,
    /// Signature-checking mode.
    #[arg(long, value_enum)]
    pub(crate) compat: Option<CompatArg>,
    /// The size the data must have, in bytes (as `x-openstack-image-size`);
    /// a file's own length otherwise.
    #[arg(long, value_name = "BYTES")]
    pub(crate) size: Option<u64>,
    /// Where signing certificates come from: barbican reads them with the token of the OpenStack client settings (OS_CLOUD or OS_*).
    #[arg(long, value_enum)]
    pub(crate) key_manager: Option<super::openstack::KeyManagerArg>,
    /// Boxed: the many `--os-*` options would make every command enum large.
    #[command(flatten)]
    pub(crate) openstack: Box<super::openstack::OpenStackArgs>,
}

impl UploadArgs {
    /// Puts these flags over the config file's settings.
    pub(crate) fn apply_to(&self, overrides: &mut Overrides) {
        overrides.image_size_cap = self.size_cap;
        overrides.require_signature = self.require_signature;
        overrides.cert_dir = self.cert_dir.clone();
        overrides.trusted_list = self.trusted_list.clone();
        overrides.key_manager = self.key_manager.map(Into::into);
        overrides.compat = self.compat.map(|compat| match compat {
            CompatArg::Strict => Compat::Strict,
            CompatArg::Cursive => Compat::Cursive,
        });
    }
}

/// The fields of a new image.
#[derive(Debug, Clone, Args)]
pub(crate) struct ImageFields {
    /// Image name.
    #[arg(long)]
    pub(crate) name: String,
    /// Disk format (ami, ari, aki, vhd, vhdx, vmdk, raw, qcow2, vdi, iso, ploop).
    #[arg(long)]
    pub(crate) disk_format: String,
    /// Container format (ami, ari, aki, bare, ovf, ova, docker, compressed).
    #[arg(long)]
    pub(crate) container_format: String,
    /// An extra property K=V (repeatable); overrides --properties.
    #[arg(long = "property", value_name = "K=V")]
    pub(crate) properties: Vec<String>,
    /// Properties from a JSON file: a flat object or `glance image-show -f json` output.
    #[arg(long = "properties", value_name = "FILE.json")]
    pub(crate) properties_file: Option<PathBuf>,
    /// Visibility (public, private, shared, community; default shared).
    #[arg(long)]
    pub(crate) visibility: Option<String>,
    /// A tag (repeatable).
    #[arg(long = "tag")]
    pub(crate) tags: Vec<String>,
    /// Minimum disk in GiB.
    #[arg(long)]
    pub(crate) min_disk: Option<u32>,
    /// Minimum RAM in MiB.
    #[arg(long)]
    pub(crate) min_ram: Option<u32>,
    /// Protect the image from deletion.
    #[arg(long)]
    pub(crate) protected: bool,
}

impl ImageFields {
    /// The create request these fields describe. The library validates it
    /// as Glance validates a create request (read-only, reserved and base
    /// attribute names among the properties, lengths).
    ///
    /// Fails (usage) when a format or the visibility is not a Glance name,
    /// the properties file cannot be read or parsed, or a `--property` is not `K=V`.
    pub(crate) fn request(&self) -> Result<CreateRequest, CliError> {
        let mut request = CreateRequest {
            name: Some(self.name.clone()),
            disk_format: Some(self.disk_format.parse::<DiskFormat>().map_err(usage)?),
            container_format: Some(
                self.container_format
                    .parse::<ContainerFormat>()
                    .map_err(usage)?,
            ),
            visibility: self
                .visibility
                .as_deref()
                .map(str::parse::<Visibility>)
                .transpose()
                .map_err(usage)?,
            protected: Some(self.protected),
            os_hidden: None,
            min_disk: self.min_disk,
            min_ram: self.min_ram,
            owner: None,
            tags: self.tags.iter().cloned().collect(),
            properties: Properties::new(),
        };
        if let Some(path) = &self.properties_file {
            request.properties = read_properties_file(path)?;
        }
        for (key, value) in parse_key_values(&self.properties)? {
            request.properties.insert(key, value);
        }
        Ok(request)
    }
}

fn read_properties_file(path: &Path) -> Result<Properties, CliError> {
    // Bounded read and duplicate keys refused (issue 8): ingest::properties::from_file.
    crate::ingest::properties::from_file(path).map_err(|err| match err {
        crate::verify::PropertiesFileError::Read(err) => CliError::Usage(format!(
            "cannot read properties file {}: {err}",
            path.display()
        )),
        other => CliError::Usage(format!(
            "properties file {}: {}",
            path.display(),
            error_chain(&other)
        )),
    })
}

/// `K=V` pairs of repeated `--property` flags.
///
/// Fails (usage) on a pair without `=` or with an empty key.
pub(crate) fn parse_key_values(pairs: &[String]) -> Result<Vec<(String, String)>, CliError> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(CliError::Usage(format!("--property {pair:?} is not K=V"))),
        })
        .collect()
}

/// A usage error from a parse failure.
pub(crate) fn usage(err: impl std::error::Error) -> CliError {
    CliError::Usage(error_chain(&err))
}
