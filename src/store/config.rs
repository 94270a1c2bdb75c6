//! Which store to open: [`StoreConfig`], parsed from a `--store` URL
//! (`file://DIR`, a plain path, or `s3://BUCKET[/PREFIX]?endpoint=…&region=…`),
//! and the S3 settings and credentials it carries.
//!
//! It owns the URL grammar, its validation and the S3 memory figures (part
//! size, parts in flight). It must not open anything nor read the
//! environment (the S3 backend does, when it connects), and it must never
//! print a secret: credentials have a redacting `Debug` and are refused in
//! URLs, which end up in logs.

use std::fmt;
use std::path::PathBuf;

/// S3's smallest part (every part but the last must be at least this).
pub(super) const S3_MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's largest part.
pub(super) const S3_MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// S3's part count limit per multipart upload.
pub(super) const S3_MAX_PARTS: u64 = 10_000;

/// Default part size: 8 MiB. Above S3's 5 MiB minimum with room for a
/// server that rounds, and large enough that 10,000 parts hold 78 GiB; small
/// enough that [`DEFAULT_PARTS_IN_FLIGHT`] parts stay far below the 64 MiB
/// per-node budget. Measured with benches/store.sh on SeaweedFS over
/// loopback (see README.md, Benchmarks): 16 MiB parts were no faster.
pub const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
/// Default parts held per upload: 2, so one part uploads while the next
/// fills (8 MiB × 2 = 16 MiB per upload at most). A third part in flight
/// did not raise the loopback figure (benches/store.sh) and would cost
/// another 8 MiB per upload.
pub const DEFAULT_PARTS_IN_FLIGHT: usize = 2;
/// Largest accepted `parts_in_flight`.
pub(super) const MAX_PARTS_IN_FLIGHT: usize = 64;

/// Where image data lives, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// A local directory (`images/` and `staging/` beneath it).
    Fs {
        /// The store's root directory.
        root: PathBuf,
    },
    /// An S3 bucket (and key prefix).
    S3(S3Config),
}

/// How requests name the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `http://endpoint/BUCKET/KEY`: works with any endpoint, including
    /// `127.0.0.1` (the default).
    Path,
    /// `https://BUCKET.endpoint/KEY`.
    VirtualHosted,
}

/// An S3 store's settings.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// The bucket (it must exist).
    pub bucket: String,
    /// Key prefix without leading or trailing `/` (empty: the bucket's root).
    /// Objects are `PREFIX/<image id>`.
    pub prefix: String,
    /// The endpoint URL (`http://127.0.0.1:8333`); `None`: AWS for the region
    /// (or `AWS_ENDPOINT_URL` from the environment). An `http://` endpoint
    /// allows plain HTTP, and only then.
    pub endpoint: Option<String>,
    /// The region (signing needs one); `None`: `AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Path-style (default) or virtual-hosted-style requests.
    pub addressing: Addressing,
    /// Bytes per multipart part (every part but the last).
    pub part_size: u64,
    /// Parts an upload holds at most (uploading, or being filled): the
    /// upload's memory bound is `part_size × parts_in_flight`.
    pub parts_in_flight: usize,
    /// Explicit credentials (from the config file); `None`: the environment.
    pub credentials: Option<S3Credentials>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("addressing", &self.addressing)
            .field("part_size", &self.part_size)
            .field("parts_in_flight", &self.parts_in_flight)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl S3Config {
    /// The most memory one staged upload holds: `part_size × parts_in_flight`.
    pub fn upload_memory_bound(&self) -> u64 {
        self.part_size.saturating_mul(self.parts_in_flight as u64)
    }
}

/// Static S3 credentials. `Debug` shows the access key id only.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    /// `AWS_ACCESS_KEY_ID`'s value (an identifier, not a secret).
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`'s value.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN`'s value, for temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A `--store` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not a `file://` or `s3://` URL nor a path.
    #[error(
        "store {url:?} is not supported (use file://DIR, a directory path, or s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION)"
    )]
    Scheme {
        /// The value as given (credentials cannot be in it: see `Credentials`).
        url: String,
    },
    /// The URL does not parse, or a part of it is malformed.
    #[error("store {url:?}: {problem}")]
    Invalid {
        /// The value as given.
        url: String,
        /// What is wrong and what to do.
        problem: String,
    },
    /// Credentials were put in the URL.
    #[error(
        "store url for bucket {bucket:?} carries credentials: remove them from the url (urls end up in logs) and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the config file's credentials, instead"
    )]
    Credentials {
        /// The bucket named (the URL itself is not repeated: it holds a secret).
        bucket: String,
    },
}

impl std::str::FromStr for StoreConfig {
    type Err = ConfigError;

    /// Parses a `--store` value. Recognised S3 query parameters: `endpoint`,
    /// `region`, `addressing` (`path` or `virtual`), `part_size` (bytes, or
    /// with a `KiB`/`MiB`/`GiB` suffix; 5 MiB to 5 GiB), `parts_in_flight`
    /// (1 to 64). Anything else is an error, so a misspelt setting is never
    /// silently ignored.
    fn from_str(text: &str) -> Result<StoreConfig, ConfigError> {
        if let Some(rest) = text.strip_prefix("s3://") {
            return parse_s3(text, rest).map(StoreConfig::S3);
        }
        if text.starts_with("file:") {
            let invalid = |problem: &str| ConfigError::Invalid {
                url: text.to_owned(),
                problem: problem.to_owned(),
            };
            let url = url::Url::parse(text).map_err(|_| invalid("not a valid file:// url"))?;
            if url.query().is_some() || url.fragment().is_some() {
                return Err(invalid("a file:// store takes no query or fragment"));
            }
            let root = url.to_file_path().map_err(|()| {
                invalid("a file:// store needs an absolute local path (file:///DIR)")
            })?;
            return Ok(StoreConfig::Fs { root });
        }
        if text.is_empty() || text.contains("://") {
            return Err(ConfigError::Scheme {
                url: text.to_owned(),
            });
        }
        Ok(StoreConfig::Fs {
            root: PathBuf::from(text),
        })
    }
}

impl fmt::Display for StoreConfig {
    /// The URL form (never with credentials).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfig::Fs { root } => match url::Url::from_file_path(root) {
                Ok(url) => write!(f, "{url}"),
                Err(()) => write!(f, "{}", root.display()),
            },
            StoreConfig::S3(s3) => {
                write!(f, "s3://{}", s3.bucket)?;
                if !s3.prefix.is_empty() {
                    write!(f, "/{}", s3.prefix)?;
                }
                let mut query = url::form_urlencoded::Serializer::new(String::new());
                if let Some(endpoint) = &s3.endpoint {
                    query.append_pair("endpoint", endpoint);
                }
                if let Some(region) = &s3.region {
                    query.append_pair("region", region);
                }
                if s3.addressing == Addressing::VirtualHosted {
                    query.append_pair("addressing", "virtual");
                }
                if s3.part_size != DEFAULT_PART_SIZE {
                    query.append_pair("part_size", &s3.part_size.to_string());
                }
                if s3.parts_in_flight != DEFAULT_PARTS_IN_FLIGHT {
                    query.append_pair("parts_in_flight", &s3.parts_in_flight.to_string());
                }
                let query = query.finish();
                if !query.is_empty() {
                    write!(f, "?{query}")?;
                }
                Ok(())
            }
        }
    }
}

fn parse_s3(text: &str, rest: &str) -> Result<S3Config, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        url: text.to_owned(),
        problem,
    };
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (rest, None),
    };
    if location.contains('#') || query.is_some_and(|query| query.contains('#')) {
        return Err(invalid("an s3:// store takes no fragment".to_owned()));
    }
    let (authority, prefix) = match location.split_once('/') {
        Some((authority, prefix)) => (authority, prefix.trim_end_matches('/')),
        None => (location, ""),
    };
    if let Some((_userinfo, bucket)) = authority.rsplit_once('@') {
        return Err(ConfigError::Credentials {
            bucket: bucket.to_owned(),
        });
    }
    let bucket = authority;
    // Credentials anywhere in the URL are refused before any other check,
    // so no error message below can repeat one.
    let pairs: Vec<_> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).collect();
    if pairs.iter().any(|(key, value)| {
        matches!(
            key.as_ref(),
            "access_key_id" | "secret_access_key" | "session_token" | "token"
        ) || (key == "endpoint" && value.contains('@'))
    }) {
        return Err(ConfigError::Credentials {
            bucket: bucket.to_owned(),
        });
    }
    check_bucket(bucket).map_err(invalid)?;
    check_prefix(prefix).map_err(invalid)?;
    let mut config = S3Config {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        endpoint: None,
        region: None,
        addressing: Addressing::Path,
        part_size: DEFAULT_PART_SIZE,
        parts_in_flight: DEFAULT_PARTS_IN_FLIGHT,
        credentials: None,
    };
    let mut seen = Vec::new();
    for (key, value) in pairs {
        if seen.contains(&key) {
            return Err(invalid(format!("query parameter {key:?} is given twice")));
        }
        seen.push(key.clone());
        match key.as_ref() {
            "endpoint" => {
                let endpoint = url::Url::parse(&value).map_err(|_| {
                    invalid(format!(
                        "endpoint {value:?} is not a url (http://HOST:PORT)"
                    ))
                })?;
                if !matches!(endpoint.scheme(), "http" | "https")
                    || endpoint.host_str().is_none()
                    || !endpoint.username().is_empty()
                    || endpoint.password().is_some()
                    || endpoint.query().is_some()
                {
                    return Err(invalid(format!(
                        "endpoint {value:?} must be http(s)://HOST[:PORT] without credentials or query"
                    )));
                }
                config.endpoint = Some(value.trim_end_matches('/').to_owned());
            }
            "region" => {
                if value.is_empty()
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(invalid(format!("region {value:?} is not a region name")));
                }
                config.region = Some(value.into_owned());
            }
            "addressing" => {
                config.addressing = match value.as_ref() {
                    "path" => Addressing::Path,
                    "virtual" => Addressing::VirtualHosted,
                    _ => {
                        return Err(invalid(format!(
                            "addressing {value:?} must be path or virtual"
                        )));
                    }
                }
            }
            "part_size" => {
                let size = parse_size(&value).ok_or_else(|| {
                    invalid(format!(
                        "part_size {value:?} is not a byte count (e.g. 8388608 or 8MiB)"
                    ))
                })?;
                if !(S3_MIN_PART_SIZE..=S3_MAX_PART_SIZE).contains(&size) {
                    return Err(invalid(format!(
                        "part_size {size} is outside S3's limits (5 MiB to 5 GiB)"
                    )));
                }
                config.part_size = size;
            }
            "parts_in_flight" => {
                config.parts_in_flight = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PARTS_IN_FLIGHT).contains(n))
                    .ok_or_else(|| {
                        invalid(format!(
                            "parts_in_flight {value:?} must be a number from 1 to {MAX_PARTS_IN_FLIGHT}"
                        ))
                    })?;
            }
            _ => {
                return Err(invalid(format!(
                    "unknown query parameter {key:?} (known: endpoint, region, addressing, part_size, parts_in_flight)"
                )));
            }
        }
    }
    Ok(config)
}

/// S3's bucket naming rules (the DNS-compatible ones every S3 server takes).
fn check_bucket(bucket: &str) -> Result<(), String> {
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !bucket.contains("..");
    if valid {
        Ok(())
    } else {
        Err(format!(
            "bucket {bucket:?} is not a valid bucket name (3-63 lower-case letters, digits, '.' and '-')"
        ))
    }
}

/// A prefix of plain path segments, so keys need no escaping anywhere.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Ok(());
    }
    let valid = prefix.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "prefix {prefix:?} must be '/'-separated segments of letters, digits, '.', '-' and '_'"
        ))
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let multiplier: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(text: &str) -> S3Config {
        match text.parse::<StoreConfig>().unwrap() {
            StoreConfig::S3(config) => config,
            StoreConfig::Fs { root } => panic!("{text} parsed as fs {root:?}"),
        }
    }

    #[test]
    fn s3_urls_parse_into_typed_settings() {
        let config = s3(
            "s3://images-bucket/portcullis/prod?endpoint=http://127.0.0.1:8333&region=eu-west-1",
        );
        assert_eq!(config.bucket, "images-bucket");
        assert_eq!(config.prefix, "portcullis/prod");
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert_eq!(config.region.as_deref(), Some("eu-west-1"));
        assert_eq!(config.addressing, Addressing::Path);
        assert_eq!(config.part_size, DEFAULT_PART_SIZE);
        assert_eq!(config.parts_in_flight, DEFAULT_PARTS_IN_FLIGHT);
        assert_eq!(config.upload_memory_bound(), 16 << 20);
        assert!(config.credentials.is_none());

        let bare = s3("s3://bucket");
        assert_eq!(
            (bare.prefix.as_str(), bare.endpoint, bare.region),
            ("", None, None)
        );
        assert_eq!(s3("s3://bucket/").prefix, "");
        let tuned = s3("s3://bucket/p/?part_size=16MiB&parts_in_flight=3&addressing=virtual");
        assert_eq!(tuned.prefix, "p");
        assert_eq!(tuned.part_size, 16 << 20);
        assert_eq!(tuned.parts_in_flight, 3);
        assert_eq!(tuned.addressing, Addressing::VirtualHosted);
        // An endpoint with its own escaped query-looking characters.
        let escaped = s3("s3://bucket?endpoint=http%3A%2F%2F127.0.0.1%3A9000%2F");
        assert_eq!(escaped.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    }

    #[test]
    fn the_url_form_round_trips() {
        for text in [
            "s3://bucket",
            "s3://bucket/a/b?endpoint=http%3A%2F%2F127.0.0.1%3A8333&region=us-east-1",
            "s3://bucket/a?addressing=virtual&part_size=16777216&parts_in_flight=4",
            "file:///var/lib/portcullis",
        ] {
            let config: StoreConfig = text.parse().unwrap();
            assert_eq!(config.to_string(), text);
            assert_eq!(config.to_string().parse::<StoreConfig>().unwrap(), config);
        }
    }

    #[test]
    fn file_urls_and_paths_are_filesystem_stores() {
        for (text, root) in [
            ("file:///srv/images", "/srv/images"),
            ("/srv/images", "/srv/images"),
            ("relative/dir", "relative/dir"),
        ] {
            assert_eq!(
                text.parse::<StoreConfig>().unwrap(),
                StoreConfig::Fs {
                    root: PathBuf::from(root)
                }
            );
        }
    }

    #[test]
    fn bad_store_urls_say_what_is_wrong() {
        for (text, needle) in [
            ("", "not supported"),
            ("gs://bucket", "not supported"),
            ("file://host/dir", "absolute local path"),
            ("file:///dir?x=1", "no query"),
            ("s3://Bucket", "not a valid bucket name"),
            ("s3://b", "not a valid bucket name"),
            ("s3://bucket/../x", "prefix"),
            ("s3://bucket/a//b", "prefix"),
            ("s3://bucket/a b", "prefix"),
            ("s3://bucket?endpoint=127.0.0.1:8333", "endpoint"),
            ("s3://bucket?endpoint=ftp://host", "endpoint"),
            ("s3://bucket?region=a/b", "region"),
            ("s3://bucket?part_size=1MiB", "outside S3's limits"),
            ("s3://bucket?part_size=6GiB", "outside S3's limits"),
            ("s3://bucket?part_size=lots", "not a byte count"),
            ("s3://bucket?parts_in_flight=0", "parts_in_flight"),
            ("s3://bucket?parts_in_flight=65", "parts_in_flight"),
            ("s3://bucket?addressing=dns", "addressing"),
            ("s3://bucket?regoin=x", "unknown query parameter \"regoin\""),
            ("s3://bucket?region=a&region=b", "given twice"),
            ("s3://bucket#frag", "fragment"),
        ] {
            let err = text.parse::<StoreConfig>().unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_repeating_them() {
        for text in [
            "s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/prefix",
            "s3://bucket?secret_access_key=wJalrXUtnFEMI",
            "s3://bucket?endpoint=http://AKIAEXAMPLE:wJalrXUtnFEMI@127.0.0.1:1",
        ] {
            let err = text.parse::<StoreConfig>().unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, ConfigError::Credentials { .. }), "{message}");
            assert!(message.contains("AWS_ACCESS_KEY_ID"), "{message}");
            assert!(!message.contains("wJalrXUtnFEMI"), "{message}");
        }
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let mut config = s3("s3://bucket");
        config.credentials = Some(S3Credentials {
            access_key_id: "AKIAEXAMPLE".to_owned(),
            secret_access_key: "wJalrXUtnFEMI".to_owned(),
            session_token: Some("FwoGZXIvYXdzEXAMPLETOKEN".to_owned()),
        });
        let debug = format!("{config:?}");
        assert!(debug.contains("AKIAEXAMPLE"), "{debug}");
        assert!(!debug.contains("wJalrXUtnFEMI"), "{debug}");
        assert!(!debug.contains("EXAMPLETOKEN"), "{debug}");
        assert!(!StoreConfig::S3(config).to_string().contains("wJalr"));
    }
}
