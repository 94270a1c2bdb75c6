//! `portcullis images`: manage images in the local repository (create,
//! upload, list, show, update, download, delete, deactivate, reactivate),
//! and the argument groups `ingest` shares with it.
//!
//! Thin: parses, builds the settings and the request context, calls the
//! library, prints (text or Glance's JSON). It must not decide anything.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::ingest::IngestArgs;
use super::{Exit, OutputFormat};

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

/// Arguments of `portcullis images`.
#[derive(Debug, Args)]
pub(crate) struct ImagesArgs {
    #[command(subcommand)]
    command: ImagesCommand,
    #[command(flatten)]
    repo: RepoArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t, global = true)]
    format: OutputFormat,
}

#[derive(Debug, Subcommand)]
enum ImagesCommand {
    /// Create a queued image (no data).
    Create(ImageFields),
    /// Upload data to a queued image (one pass, verified before it becomes active).
    Upload {
        /// Image id.
        id: String,
        /// The data: a file, or `-` for standard input.
        file: PathBuf,
        #[command(flatten)]
        upload: UploadArgs,
    },
    /// List images.
    List {
        /// Only images with this status.
        #[arg(long)]
        status: Option<String>,
        /// Only images with this name.
        #[arg(long)]
        name: Option<String>,
        /// Only images owned by this project.
        #[arg(long)]
        owner: Option<String>,
        /// Only images with this visibility.
        #[arg(long)]
        visibility: Option<String>,
        /// Only images with this tag (repeatable: all must match).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// At most this many images.
        #[arg(long)]
        limit: Option<u32>,
        /// Start after this image id (the last id of the previous page).
        #[arg(long)]
        marker: Option<String>,
    },
    /// Show one image.
    Show {
        /// Image id.
        id: String,
    },
    /// Change an image's name or properties.
    Update {
        /// Image id.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// Set a property K=V (repeatable).
        #[arg(long = "property", value_name = "K=V")]
        properties: Vec<String>,
        /// Remove a property (repeatable).
        #[arg(long = "remove-property", value_name = "K")]
        remove_properties: Vec<String>,
    },
    /// Write an image's data to a file, re-checking checksum and os_hash.
    Download {
        /// Image id.
        id: String,
        /// Output file (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Delete an image and its data.
    Delete {
        /// Image id.
        id: String,
    },
    /// Refuse downloads of an active image until reactivated.
    Deactivate {
        /// Image id.
        id: String,
    },
    /// Make a deactivated image active again.
    Reactivate {
        /// Image id.
        id: String,
    },
}

pub(crate) fn run(args: ImagesArgs) -> Exit {
    let _ = (&args.command, &args.repo, args.format);
    eprintln!("error: portcullis images is being wired to the repository");
    Exit::Error
}

pub(crate) fn run_ingest(args: IngestArgs) -> Exit {
    let _ = (
        &args.file,
        &args.fields,
        &args.upload,
        &args.repo,
        args.format,
    );
    eprintln!("error: portcullis ingest is being wired to the repository");
    Exit::Error
}
