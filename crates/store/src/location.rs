//! Where the store lives and which source prefixes its virtual chunks may point into.

use std::path::PathBuf;
use std::sync::Arc;

use floe_source::{GcsAuth, GcsSettings, RetryPolicy};
use icechunk::config::GcsStaticCredentials;
use icechunk::config::{Credentials, GcsCredentials, S3Credentials, S3Options};
use icechunk::virtual_chunks::VirtualChunkContainer;
use icechunk::{ObjectStoreConfig, Storage};
use tracing::instrument::WithSubscriber;

use crate::{Result, StoreError};

/// Cloud settings shared by the store and the virtual chunk containers: where S3
/// and GCS requests go, with which credentials, and how they are retried.
#[derive(Debug, Clone, Default)]
pub struct CloudSettings {
    /// Custom S3 endpoint (LocalStack, MinIO); `AWS_ENDPOINT_URL` by default.
    pub endpoint: Option<String>,
    /// S3 region; `AWS_REGION` by default, else `us-east-1`.
    pub region: Option<String>,
    /// GCS endpoint and credentials (`gs://` containers).
    pub gcs: GcsSettings,
    /// Retries of the store's requests.
    pub retry: RetryPolicy,
}

impl CloudSettings {
    /// From the standard AWS environment variables, and the GCS and retry settings
    /// of `floe_source` ([`GcsSettings::from_env`], [`RetryPolicy::from_env`]).
    pub fn from_env() -> Self {
        CloudSettings {
            endpoint: std::env::var("AWS_ENDPOINT_URL_S3")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .ok(),
            region: std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .ok(),
            gcs: GcsSettings::from_env(),
            retry: RetryPolicy::from_env_or_default(),
        }
    }

    /// The environment's settings with a source's GCS and retry settings (those of
    /// a config file or flags): the store's `gs://` container then reads chunks from
    /// where the source's headers were read.
    pub fn for_source(options: &floe_source::SourceOptions) -> Self {
        CloudSettings {
            gcs: options.gcs.clone(),
            retry: options.retry,
            ..CloudSettings::from_env()
        }
    }

    /// icechunk's storage settings for this process: the retry policy. Never
    /// persisted (readers keep their own).
    pub fn storage_settings(&self) -> icechunk::storage::Settings {
        let ms = |d: std::time::Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        icechunk::storage::Settings {
            retries: Some(icechunk::storage::RetriesSettings {
                max_tries: std::num::NonZeroU16::new(
                    u16::try_from(self.retry.attempts).unwrap_or(u16::MAX),
                ),
                initial_backoff_ms: Some(ms(floe_source::retry::INITIAL_BACKOFF)),
                max_backoff_ms: Some(ms(floe_source::retry::MAX_BACKOFF)),
            }),
            ..Default::default()
        }
    }

    fn options(&self) -> S3Options {
        let mut o = S3Options::default();
        o.region = Some(self.region.clone().unwrap_or_else(|| "us-east-1".into()));
        if let Some(endpoint) = &self.endpoint {
            o.endpoint_url = Some(endpoint.clone());
            o.allow_http = endpoint.starts_with("http://");
            o.force_path_style = true;
        }
        o
    }
}

/// A repository location: a local directory or an S3 prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// Local filesystem. Safe for one committer only (see DESIGN.md).
    Local(PathBuf),
    /// `s3://bucket/prefix`.
    S3 {
        /// Bucket.
        bucket: String,
        /// Key prefix.
        prefix: String,
    },
}

impl StoreLocation {
    /// Parses `s3://bucket/prefix`, `file:///dir` or a plain directory path.
    pub fn parse(url: &str) -> Result<StoreLocation> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StoreError::Location(format!("{url}: no bucket")));
            }
            return Ok(StoreLocation::S3 {
                bucket: bucket.into(),
                prefix: prefix.trim_matches('/').into(),
            });
        }
        if url.contains("://") && !url.starts_with("file://") {
            return Err(StoreError::Location(format!(
                "{url}: a store is a local path, file:// or s3:// URL"
            )));
        }
        let path = PathBuf::from(url.strip_prefix("file://").unwrap_or(url));
        Ok(StoreLocation::Local(
            std::path::absolute(&path).unwrap_or(path),
        ))
    }

    /// Whether a local store directory exists; for S3, always `true` (the
    /// repository itself is looked for by [`crate::open_existing`]). A path that
    /// exists but is not a directory is an error that says so.
    pub fn local_directory_exists(&self) -> Result<bool> {
        match self {
            StoreLocation::Local(path) => match std::fs::metadata(path) {
                Ok(meta) if meta.is_dir() => Ok(true),
                Ok(_) => Err(StoreError::NotADirectory(path.clone())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(StoreError::Location(format!("{}: {e}", path.display()))),
            },
            StoreLocation::S3 { .. } => Ok(true),
        }
    }

    /// The icechunk storage for this location. A local directory is created
    /// when missing: only writers call this for a location that may not exist
    /// ([`crate::open_existing`] checks first, so looking never creates).
    pub async fn storage(&self, cloud: &CloudSettings) -> Result<Arc<dyn Storage + Send + Sync>> {
        match self {
            StoreLocation::Local(path) => {
                if !self.local_directory_exists()? {
                    std::fs::create_dir_all(path)
                        .map_err(|e| StoreError::Location(format!("{}: {e}", path.display())))?;
                }
                // icechunk warns, on every open, that a local store is unsafe for
                // concurrent commits. floe commits to a local store from one process
                // at a time (`producer local`; the committer worker refuses
                // --concurrency > 1 there), and read-only commands never commit, so
                // the warning is a false alarm in every path floe has: keep it out
                // of this call only, not out of the rest of icechunk's logging.
                icechunk::storage::new_local_filesystem_storage(path)
                    .with_subscriber(tracing::subscriber::NoSubscriber::default())
                    .await
                    .map_err(|e| StoreError::Location(format!("{}: {e}", path.display())))
            }
            // icechunk's object_store S3 storage, not its AWS SDK client: the SDK
            // retries under a process-wide quota (a token bucket icechunk gives no
            // setting for) that a sustained error rate drains for good, after which
            // no request is retried; object_store retries each request on its own.
            StoreLocation::S3 { bucket, prefix } => icechunk::storage::new_s3_object_store_storage(
                cloud.options(),
                bucket.clone(),
                (!prefix.is_empty()).then(|| prefix.clone()),
                Some(S3Credentials::FromEnv),
                Vec::new(),
                Vec::new(),
            )
            .await
            .map_err(|e| StoreError::Location(format!("s3://{bucket}/{prefix}: {e}"))),
        }
    }
}

impl StoreLocation {
    /// The location and, on S3, where its requests go: what an error message names.
    pub fn describe(&self, cloud: &CloudSettings) -> String {
        match (self, &cloud.endpoint) {
            (StoreLocation::S3 { .. }, Some(endpoint)) => format!("{self} at {endpoint}"),
            _ => self.to_string(),
        }
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Local(p) => write!(f, "{}", p.display()),
            StoreLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Normalizes a source prefix URL to end with `/` (containers match by prefix).
pub fn container_prefix(url: &str) -> String {
    let url = if url.contains("://") {
        url.to_string()
    } else {
        let p = std::path::Path::new(url);
        format!(
            "file://{}",
            std::path::absolute(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
        )
    };
    if url.ends_with('/') {
        url
    } else {
        format!("{url}/")
    }
}

/// The virtual chunk container for a source prefix (`gs://ismip6/`,
/// `s3://bucket/prefix/`, `file:///dir/`), and the credentials a reader passes.
/// A `gs://` container carries the GCS endpoint (an emulator's, say), so that
/// icechunk reads chunks from where the headers came from.
pub fn container(
    prefix_url: &str,
    cloud: &CloudSettings,
) -> Result<(VirtualChunkContainer, Option<Credentials>)> {
    let prefix = container_prefix(prefix_url);
    let (store, credentials) = if let Some(path) = prefix.strip_prefix("file://") {
        (
            ObjectStoreConfig::LocalFileSystem(PathBuf::from(path)),
            Some(Credentials::LocalFileSystemAccess),
        )
    } else if prefix.starts_with("s3://") {
        let config = if cloud.endpoint.is_some() {
            ObjectStoreConfig::S3Compatible(cloud.options())
        } else {
            ObjectStoreConfig::S3(cloud.options())
        };
        (config, Some(Credentials::S3(S3Credentials::FromEnv)))
    } else if prefix.starts_with("gs://") {
        (
            ObjectStoreConfig::Gcs(cloud.gcs.container_options()),
            Some(Credentials::Gcs(gcs_credentials(&cloud.gcs.auth))),
        )
    } else if prefix.starts_with("https://") || prefix.starts_with("http://") {
        (
            ObjectStoreConfig::Http(Default::default()),
            Some(Credentials::HttpAccess),
        )
    } else {
        return Err(StoreError::Location(format!(
            "{prefix_url}: no virtual chunk container for this kind of URL"
        )));
    };
    let container = VirtualChunkContainer::new(prefix.clone(), store)
        .map_err(|e| StoreError::Location(format!("{prefix}: {e}")))?;
    Ok((container, credentials))
}

/// icechunk's form of floe's GCS credentials.
pub fn gcs_credentials(auth: &GcsAuth) -> GcsCredentials {
    match auth {
        GcsAuth::Anonymous => GcsCredentials::Anonymous,
        GcsAuth::ApplicationDefault => GcsCredentials::FromEnv,
        GcsAuth::KeyFile(path) => {
            GcsCredentials::Static(GcsStaticCredentials::ApplicationCredentials(path.clone()))
        }
    }
}
