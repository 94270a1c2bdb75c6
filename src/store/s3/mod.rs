//! The S3 store: committed data is the object `PREFIX/<id>`; a staged write
//! is a multipart upload on that same key, invisible until it is completed.
//!
//! It owns the client setup (object_store's AWS client: SigV4, retries,
//! path-style addressing and plain HTTP for a local endpoint), the mapping
//! between image ids, keys and `s3://bucket/PREFIX/<id>` locations, ranged
//! reads, and the listings. It must not touch keys outside its prefix that
//! are not named `<prefix>/<image id>`, never logs credentials, and never
//! copies image data to a local file.

use std::io;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::multipart::MultipartStore;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;

use super::config::{Addressing, S3Config};
use super::intent::Target;
use super::{
    BufferBound, ByteRange, Error, Reader, ReaderBackend, S3_STORE_ID, StagedData, StagingIntent,
    StoredObject,
};
use crate::image::{ImageId, Location, Properties};

mod upload;
mod uploads;

pub(crate) use upload::S3Staged;

/// A ranged object body as an `AsyncRead`.
pub(super) type ObjectReader = tokio::io::Take<
    tokio_util::io::StreamReader<
        futures_util::stream::BoxStream<'static, io::Result<bytes::Bytes>>,
        bytes::Bytes,
    >,
>;

/// A store in an S3 bucket. Cheap to clone (the client is shared).
#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

struct Inner {
    client: Arc<AmazonS3>,
    /// Settings as configured (credentials, if explicit, stay in here and
    /// in the client only; `Debug` redacts them).
    config: S3Config,
    /// `https://s3.REGION.amazonaws.com/BUCKET` or the endpoint's equivalent:
    /// where ListMultipartUploads goes.
    bucket_url: String,
    region: String,
    /// For the one request object_store does not wrap (ListMultipartUploads).
    http: object_store::client::HttpClient,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("config", &self.inner.config)
            .field("bucket_url", &self.inner.bucket_url)
            .field("region", &self.inner.region)
            .finish_non_exhaustive()
    }
}

/// Environment variables that let object_store find credentials without
/// static keys (web identity, ECS/EKS container credentials).
const INDIRECT_CREDENTIAL_VARIABLES: [&str; 3] = [
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

impl S3Store {
    pub(super) fn connect(config: S3Config) -> Result<S3Store, Error> {
        let setup = |problem: String, source: Option<object_store::Error>| Error::S3Setup {
            bucket: config.bucket.clone(),
            problem,
            source: source.map(Box::new),
        };
        // Explicit credentials replace the environment's entirely (a session
        // token from the environment must not be paired with other keys).
        let mut builder = match &config.credentials {
            Some(credentials) => {
                let mut builder = AmazonS3Builder::new()
                    .with_access_key_id(&credentials.access_key_id)
                    .with_secret_access_key(&credentials.secret_access_key);
                if let Some(token) = &credentials.session_token {
                    builder = builder.with_token(token);
                }
                for (variable, key) in [
                    ("AWS_REGION", AmazonS3ConfigKey::Region),
                    ("AWS_DEFAULT_REGION", AmazonS3ConfigKey::DefaultRegion),
                    ("AWS_ENDPOINT_URL", AmazonS3ConfigKey::Endpoint),
                ] {
                    if let Ok(value) = std::env::var(variable) {
                        builder = builder.with_config(key, value);
                    }
                }
                builder
            }
            None => AmazonS3Builder::from_env(),
        };
        let has_static_key = builder
            .get_config_value(&AmazonS3ConfigKey::AccessKeyId)
            .is_some_and(|key| !key.is_empty());
        let has_secret = builder
            .get_config_value(&AmazonS3ConfigKey::SecretAccessKey)
            .is_some_and(|secret| !secret.is_empty());
        let has_indirect = INDIRECT_CREDENTIAL_VARIABLES
            .iter()
            .any(|variable| std::env::var_os(variable).is_some());
        match (has_static_key, has_secret) {
            (true, true) => {}
            (true, false) | (false, true) => {
                return Err(setup(
                    "only half of the static credentials is set: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or both in the config file)".to_owned(),
                    None,
                ));
            }
            // Without any credentials object_store would ask the EC2
            // instance metadata service, a network call far from
            // 127.0.0.1 that hangs elsewhere: refuse instead, clearly.
            (false, false) if has_indirect => {}
            (false, false) => {
                return Err(setup(
                    "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), AWS_WEB_IDENTITY_TOKEN_FILE, or the config file's credentials".to_owned(),
                    None,
                ));
            }
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        let region = builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::DefaultRegion))
            .filter(|region| !region.is_empty())
            .unwrap_or_else(|| "us-east-1".to_owned());
        builder = builder.with_region(&region);
        let endpoint = config
            .endpoint
            .clone()
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint))
            .map(|endpoint| endpoint.trim_end_matches('/').to_owned());
        let bucket = &config.bucket;
        let bucket_url = match (&endpoint, config.addressing) {
            (Some(endpoint), Addressing::Path) => format!("{endpoint}/{bucket}"),
            (Some(endpoint), Addressing::VirtualHosted) => match endpoint.split_once("://") {
                Some((scheme, host)) => format!("{scheme}://{bucket}.{host}"),
                None => return Err(setup(format!("endpoint {endpoint:?} has no scheme"), None)),
            },
            (None, Addressing::Path) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
            (None, Addressing::VirtualHosted) => {
                format!("https://{bucket}.s3.{region}.amazonaws.com")
            }
        };
        let allow_http = bucket_url.starts_with("http://");
        builder = builder
            .with_bucket_name(bucket)
            .with_allow_http(allow_http)
            .with_virtual_hosted_style_request(config.addressing == Addressing::VirtualHosted)
            // No SHA-256 over every part: the image's md5 and os_hash are
            // computed on upload and verified on download, and TLS protects
            // the bytes in transit to a remote endpoint. SHA-256 runs at
            // ~1.75 GB/s per core on these machines (shared/README.md), so a
            // signed payload would cost ~0.6 core-seconds per GiB on two
            // cores the upload's own hashes already need.
            .with_unsigned_payload(true);
        if let Some(endpoint) = &endpoint {
            // object_store wants the bucket in a virtual-hosted endpoint.
            let endpoint = match config.addressing {
                Addressing::Path => endpoint.clone(),
                Addressing::VirtualHosted => bucket_url.clone(),
            };
            builder = builder.with_endpoint(endpoint);
        }
        let client = builder.build().map_err(|source| {
            setup(
                "the S3 client cannot be built from this configuration".to_owned(),
                Some(source),
            )
        })?;
        let http = object_store::client::HttpConnector::connect(
            &object_store::client::ReqwestConnector::default(),
            &object_store::ClientOptions::new().with_allow_http(allow_http),
        )
        .map_err(|source| setup("the HTTP client cannot be built".to_owned(), Some(source)))?;
        Ok(S3Store {
            inner: Arc::new(Inner {
                client: Arc::new(client),
                config,
                bucket_url,
                region,
                http,
            }),
        })
    }

    /// The settings this store was opened with.
    pub fn config(&self) -> &S3Config {
        &self.inner.config
    }

    pub(super) fn buffer_bound(&self) -> BufferBound {
        BufferBound::Parts {
            parts_in_flight: self.inner.config.parts_in_flight,
            part_size: self.inner.config.part_size,
        }
    }

    /// `PREFIX/<id>` (or `<id>` without a prefix).
    fn key_of(&self, id: ImageId) -> String {
        match self.inner.config.prefix.as_str() {
            "" => id.to_string(),
            prefix => format!("{prefix}/{id}"),
        }
    }

    /// The image a key names, if it is `PREFIX/<id>` exactly.
    fn id_of_key(&self, key: &str) -> Option<ImageId> {
        let name = match self.inner.config.prefix.as_str() {
            "" => key,
            prefix => key.strip_prefix(prefix)?.strip_prefix('/')?,
        };
        let id = name.parse::<ImageId>().ok()?;
        // Only the canonical spelling: the key must be the one we write.
        (self.key_of(id) == key).then_some(id)
    }

    fn object_path(key: &str) -> ObjectPath {
        // Keys are prefix segments of [A-Za-z0-9._-] and a UUID: nothing
        // object_store would escape.
        ObjectPath::from(key)
    }

    fn url_of_key(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.inner.config.bucket)
    }

    pub(super) fn location_of(&self, id: ImageId) -> Location {
        let mut metadata = Properties::new();
        metadata.insert("store".to_owned(), S3_STORE_ID.to_owned());
        Location {
            url: self.url_of_key(&self.key_of(id)),
            metadata,
        }
    }

    /// The key a location names, if it is one of ours.
    pub(super) fn key_of_location(&self, location: &Location) -> Result<String, Error> {
        let foreign = || Error::ForeignLocation {
            url: location.url.clone(),
            expected: format!("{}<image id>", self.url_of_key(&self.key_of_prefix())),
        };
        let key = location
            .url
            .strip_prefix("s3://")
            .and_then(|rest| rest.strip_prefix(self.inner.config.bucket.as_str()))
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(foreign)?;
        match self.id_of_key(key) {
            Some(_) => Ok(key.to_owned()),
            None => Err(foreign()),
        }
    }

    /// `PREFIX/` (empty without a prefix): what every key starts with.
    fn key_of_prefix(&self) -> String {
        match self.inner.config.prefix.as_str() {
            "" => String::new(),
            prefix => format!("{prefix}/"),
        }
    }

    fn s3_error(&self, operation: &'static str, key: &str, source: object_store::Error) -> Error {
        Error::S3 {
            operation,
            target: self.url_of_key(key),
            source: Box::new(source),
        }
    }

    pub(super) async fn check(&self) -> Result<(), Error> {
        let prefix = self.inner.config.prefix.as_str();
        let prefix_path = (!prefix.is_empty()).then(|| Self::object_path(prefix));
        self.inner
            .client
            .list_with_delimiter(prefix_path.as_ref())
            .await
            .map(|_| ())
            .map_err(|source| self.s3_error("list", prefix, source))
    }

    pub(super) async fn stage(&self, id: ImageId) -> Result<S3Staged, Error> {
        let key = self.key_of(id);
        let path = Self::object_path(&key);
        let upload_id = self
            .inner
            .client
            .create_multipart(&path)
            .await
            .map_err(|source| self.s3_error("create multipart upload", &key, source))?;
        Ok(S3Staged::new(
            self.inner.client.clone(),
            StagingIntent::s3(id, key.clone(), upload_id.clone()),
            path,
            upload_id,
            self.url_of_key(&key),
            self.location_of(id),
            &self.inner.config,
        ))
    }

    pub(super) async fn abort(&self, intent: &StagingIntent) -> Result<(), Error> {
        let (key, upload_id) = match intent.target() {
            Target::S3 { key, upload_id }
                if self.id_of_key(key) == Some(intent.image_id()) && !upload_id.is_empty() =>
            {
                (key, upload_id)
            }
            Target::S3 { .. } | Target::Fs { .. } => {
                return Err(Error::ForeignIntent {
                    intent: intent.to_string(),
                    expected: format!(
                        "a multipart upload of {}<image id>",
                        self.url_of_key(&self.key_of_prefix())
                    ),
                });
            }
        };
        upload::abort_upload(&self.inner.client, &Self::object_path(key), upload_id)
            .await
            .map_err(|source| self.s3_error("abort multipart upload", key, source))
    }

    pub(super) async fn open_data(
        &self,
        location: &Location,
        range: Option<ByteRange>,
    ) -> Result<Reader, Error> {
        let key = self.key_of_location(location)?;
        let path = Self::object_path(&key);
        let missing = || Error::Missing {
            url: location.url.clone(),
        };
        // A range is resolved against the stored length first (one HEAD), so
        // "unsatisfiable" is decided here exactly as for the filesystem,
        // whatever the server's own 416 rules.
        let options = match range {
            None => GetOptions::default(),
            Some(range) => {
                let meta = match self.inner.client.head(&path).await {
                    Ok(meta) => meta,
                    Err(object_store::Error::NotFound { .. }) => return Err(missing()),
                    Err(source) => return Err(self.s3_error("head", &key, source)),
                };
                let selected = range.resolve(meta.size).ok_or(Error::RangeNotSatisfiable {
                    url: location.url.clone(),
                    range,
                    len: meta.size,
                })?;
                GetOptions {
                    range: Some(GetRange::Bounded(selected)),
                    // The same object the length came from.
                    if_match: meta.e_tag,
                    ..GetOptions::default()
                }
            }
        };
        let result = match self.inner.client.get_opts(&path, options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Err(missing()),
            Err(source) => return Err(self.s3_error("get", &key, source)),
        };
        let len = result.meta.size;
        let selected = result.range.clone();
        let stream = result.into_stream().map_err(io::Error::other).boxed();
        let reader = tokio_util::io::StreamReader::new(stream).take(selected.end - selected.start);
        Ok(Reader {
            len,
            range: selected,
            inner: ReaderBackend::S3(reader),
        })
    }

    pub(super) async fn delete(&self, location: &Location) -> Result<(), Error> {
        let key = self.key_of_location(location)?;
        match self.inner.client.delete(&Self::object_path(&key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(self.s3_error("delete", &key, source)),
        }
    }

    pub(super) async fn list_objects(&self) -> Result<Vec<StoredObject>, Error> {
        let prefix = self.inner.config.prefix.as_str();
        let prefix_path = (!prefix.is_empty()).then(|| Self::object_path(prefix));
        let mut listing = self.inner.client.list(prefix_path.as_ref());
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|source| self.s3_error("list", prefix, source))?;
            let Some(image_id) = self.id_of_key(meta.location.as_ref()) else {
                continue;
            };
            found.push(StoredObject {
                image_id,
                location: self.location_of(image_id),
                len: meta.size,
                modified: OffsetDateTime::from_unix_timestamp(meta.last_modified.timestamp())
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            });
        }
        found.sort_by_key(|object| object.image_id);
        Ok(found)
    }

    pub(super) async fn list_staged(
        &self,
        only: Option<ImageId>,
    ) -> Result<Vec<StagedData>, Error> {
        let listing_prefix = match only {
            Some(id) => self.key_of(id),
            None => self.key_of_prefix(),
        };
        let uploads = uploads::list(
            &self.inner.http,
            &self.inner.client,
            &self.inner.bucket_url,
            &self.inner.region,
            &listing_prefix,
        )
        .await
        .map_err(|source| self.s3_error("list multipart uploads", &listing_prefix, source))?;
        let mut found = Vec::new();
        for upload in uploads {
            let Some(image_id) = self.id_of_key(&upload.key) else {
                continue;
            };
            if only.is_some_and(|wanted| wanted != image_id) {
                continue;
            }
            found.push(StagedData {
                intent: StagingIntent::s3(image_id, upload.key, upload.upload_id),
                image_id,
                since: upload.initiated,
                len: None,
            });
        }
        Ok(found)
    }
}
