//! # floe-source: one way to read source objects by byte range
//!
//! A [`Source`] resolves a URL (`file://` or a plain path, `s3://`, `gs://`,
//! `https://`) to an [`object_store`] backend. [`Source::open`] returns an
//! [`OpenedObject`]: a synchronous, block-cached [`Storage`] for the format
//! readers plus the counters of the requests and bytes that actually went to
//! the backend, so every caller can report what a file cost.
//!
//! The format readers are synchronous (`Fn(offset, len) -> bytes`), the object
//! stores async. The bridge is deliberate: [`Source::open`] is async (one
//! HEAD), while reads block on the runtime handle and must run on a blocking
//! thread (`tokio::task::spawn_blocking`), never on an async worker.

#![warn(missing_docs)]

pub mod gcs;
pub mod retry;

pub use gcs::{GcsAuth, GcsSettings};
pub use retry::RetryPolicy;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hdf5_reader::storage::{BlockCacheStorage, DynStorage, Storage, StorageBuffer};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// Block size of the read cache. Most NetCDF headers fit in the first block;
/// chunk indexes scattered through the file cost one more block each.
pub const DEFAULT_BLOCK_SIZE: usize = 64 * 1024;

/// Errors of source access.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The URL is not one of the supported forms.
    #[error("unsupported source URL {url}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The object does not exist.
    #[error("{url}: not found")]
    NotFound {
        /// The URL.
        url: String,
    },
    /// A local path that is a directory where a file was expected.
    #[error("{url} is a directory, not a file: give NetCDF files (e.g. DIR/*.nc)")]
    IsDirectory {
        /// The URL.
        url: String,
    },
    /// The object is not the one listed: it changed since (size, ETag), or it
    /// answered shorter than asked.
    #[error("{url}: {reason}")]
    Changed {
        /// The URL.
        url: String,
        /// What differs.
        reason: String,
    },
    /// Any other backend failure.
    #[error("{url}: {source}")]
    Store {
        /// The URL.
        url: String,
        /// Backend error.
        #[source]
        source: object_store::Error,
    },
}

impl SourceError {
    fn store(url: &str, source: object_store::Error) -> Self {
        match source {
            // The local backend reports a directory as "not found"; say what it is.
            object_store::Error::NotFound { .. }
                if url
                    .strip_prefix("file://")
                    .is_some_and(|p| std::path::Path::new(p).is_dir()) =>
            {
                SourceError::IsDirectory {
                    url: url.to_string(),
                }
            }
            object_store::Error::NotFound { .. } => SourceError::NotFound {
                url: url.to_string(),
            },
            source => SourceError::Store {
                url: url.to_string(),
                source,
            },
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = SourceError> = std::result::Result<T, E>;

/// Settings that the URL alone does not carry.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// Custom S3 endpoint (LocalStack, MinIO). Defaults to `AWS_ENDPOINT_URL`.
    pub s3_endpoint: Option<String>,
    /// Read S3 without credentials (public buckets).
    pub s3_anonymous: bool,
    /// Block size of the read cache.
    pub block_size: Option<usize>,
    /// Where `gs://` requests go and with which credentials.
    pub gcs: GcsSettings,
    /// Retries of every request.
    pub retry: RetryPolicy,
}

impl SourceOptions {
    /// Options from the standard environment: `AWS_ENDPOINT_URL`, the GCS settings
    /// ([`gcs`]: `STORAGE_EMULATOR_HOST`, `FLOE_GCS_ENDPOINT`, `FLOE_GCS_CREDENTIALS`,
    /// `GOOGLE_APPLICATION_CREDENTIALS`), the retry policy ([`retry`]) and
    /// `FLOE_BLOCK_SIZE` for the cache block size.
    pub fn from_env() -> Self {
        SourceOptions {
            s3_endpoint: std::env::var("AWS_ENDPOINT_URL_S3")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .ok(),
            block_size: std::env::var("FLOE_BLOCK_SIZE")
                .ok()
                .and_then(|v| v.parse().ok()),
            gcs: GcsSettings::from_env(),
            retry: RetryPolicy::from_env_or_default(),
            s3_anonymous: false,
        }
    }
}

/// Whether two ETags name the same object version. Backends quote them unevenly: GCS (and
/// fake-gcs-server) lists an ETag bare that its HEAD answers quoted, so they compare without
/// the quotes.
pub fn same_etag(a: Option<&str>, b: Option<&str>) -> bool {
    a.map(|a| a.trim_matches('"')) == b.map(|b| b.trim_matches('"'))
}

/// Identity of a source object: what makes a batch id change when it changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectInfo {
    /// URL as given.
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag, when the backend has one.
    pub etag: Option<String>,
    /// Last modification time, RFC 3339.
    pub last_modified: String,
}

/// A resolved URL: backend plus path.
#[derive(Clone)]
pub struct Source {
    url: String,
    store: Arc<dyn ObjectStore>,
    path: Path,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("url", &self.url).finish()
    }
}

/// Splits `scheme://bucket/key` into bucket and key.
fn bucket_and_key<'a>(url: &'a str, rest: &'a str) -> Result<(&'a str, &'a str)> {
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok((bucket, key)),
        _ => Err(SourceError::BadUrl {
            url: url.to_string(),
            reason: "expected scheme://bucket/key".into(),
        }),
    }
}

/// Normalizes a local path or `file://` URL to an absolute `file://` URL.
pub fn normalize_url(url: &str) -> String {
    if url.contains("://") {
        return url.to_string();
    }
    let path = std::path::Path::new(url);
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    format!("file://{}", abs.display())
}

/// Whether `url` names an object under the source `root` (both as
/// [`normalize_url`] writes them): the same scheme and bucket or host, a path
/// below the root's at a `/` boundary, and no `.`, `..` or empty segment, raw
/// or percent-encoded, that could walk out of it. A worker reads only what
/// this allows: a message naming `/etc/passwd`, another bucket or an https
/// host is refused before anything is opened.
pub fn within(root: &str, url: &str) -> bool {
    let (root, url) = (normalize_url(root), normalize_url(url));
    let root = root.trim_end_matches('/');
    let Some(rest) = url.strip_prefix(root) else {
        return false;
    };
    let Some(below) = rest.strip_prefix('/') else {
        return false;
    };
    // Decoded once, as the object stores decode a URL's path (a doubly encoded `%252e` is a
    // literal key, not a way out).
    !below.is_empty()
        && below.split('/').all(|segment| {
            let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
            !decoded.is_empty()
                && decoded != "."
                && decoded != ".."
                && !decoded.contains(['/', '\\'])
        })
}

impl Source {
    /// Resolves a URL. Plain paths are local files.
    pub fn resolve(url: &str, options: &SourceOptions) -> Result<Source> {
        let url = normalize_url(url);
        let bad = |reason: String| SourceError::BadUrl {
            url: url.clone(),
            reason,
        };
        if let Some(rest) = url.strip_prefix("file://") {
            let store = object_store::local::LocalFileSystem::new();
            let path = Path::from_absolute_path(rest).map_err(|e| bad(e.to_string()))?;
            return Ok(Source {
                url: url.clone(),
                store: Arc::new(store),
                path,
            });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, key) = bucket_and_key(&url, rest)?;
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(options.retry.object_store());
            if let Some(endpoint) = &options.s3_endpoint {
                b = b
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            if options.s3_anonymous {
                b = b.with_skip_signature(true);
            }
            let store = b.build().map_err(|e| bad(e.to_string()))?;
            return Ok(Source {
                url: url.clone(),
                store: Arc::new(store),
                path: Path::from(key),
            });
        }
        if let Some(rest) = url.strip_prefix("gs://") {
            let (bucket, key) = bucket_and_key(&url, rest)?;
            let store = options
                .gcs
                .builder(bucket)
                .with_retry(options.retry.object_store())
                .build()
                .map_err(|e| bad(e.to_string()))?;
            return Ok(Source {
                url: url.clone(),
                store: Arc::new(store),
                path: Path::from(key),
            });
        }
        if url.starts_with("https://") || url.starts_with("http://") {
            let (base, key) = url.rsplit_once('/').ok_or_else(|| bad("no path".into()))?;
            let store = object_store::http::HttpBuilder::new()
                .with_url(base)
                .with_retry(options.retry.object_store())
                .build()
                .map_err(|e| bad(e.to_string()))?;
            return Ok(Source {
                url: url.clone(),
                store: Arc::new(store),
                path: Path::from(key),
            });
        }
        Err(bad("use file://, s3://, gs:// or https://".into()))
    }

    /// An object of a store built elsewhere (the Python parser's, resolved by a VirtualiZarr
    /// registry), read with the same block cache and identity checks as a resolved URL.
    pub fn from_store(url: &str, store: Arc<dyn ObjectStore>, path: Path) -> Source {
        Source {
            url: url.to_string(),
            store,
            path,
        }
    }

    /// The URL, normalized.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One HEAD request: size, ETag and modification time.
    pub async fn info(&self) -> Result<ObjectInfo> {
        let meta = self
            .store
            .head(&self.path)
            .await
            .map_err(|e| SourceError::store(&self.url, e))?;
        Ok(ObjectInfo {
            url: self.url.clone(),
            size: meta.size,
            etag: meta.e_tag,
            last_modified: meta.last_modified.to_rfc3339(),
        })
    }

    /// Opens the object for ranged reads of its data through a block cache.
    /// `size` comes from a listing or [`Source::info`]; no request is made
    /// here. Unlike [`Source::open_listed`], no header limit applies.
    pub fn open(&self, size: u64, options: &SourceOptions) -> OpenedObject {
        self.opened(&Listed { size, etag: None }, options, None)
    }

    /// [`Source::open`] of the object as it was listed: every answer is checked
    /// against that identity ([`Listed::check`]), so an object that changed
    /// since (grew, was replaced) fails by name instead of being read under
    /// its old identity. For reading its header: the bytes read are bounded
    /// by [`floe_wire::Limits::header_bytes_per_file`], and past
    /// [`floe_wire::Limits::header_bytes_unshared`] they wait for the
    /// process's one large-header turn ([`LARGE_HEADER_TURN`]).
    pub fn open_listed(&self, listed: &Listed, options: &SourceOptions) -> OpenedObject {
        self.opened(listed, options, Some(*floe_wire::limits()))
    }

    /// Opens an object nobody listed, for reading its header, with one request when it is
    /// small: a GET of its first block answers with the object's size and ETag too (no HEAD).
    /// A file that fits in that block (never more than
    /// [`floe_wire::Limits::header_bytes_unshared`]) is parsed from memory; a larger one is
    /// read by ranges under the identity that first answer gave, as
    /// [`Source::open_listed`] reads it.
    pub async fn open_header(&self, options: &SourceOptions) -> Result<OpenedHeader> {
        let first = self.first_block(options).await?;
        Ok(self.header_from(first, options))
    }

    /// The first request of [`Source::open_header`]. Its future needs no runtime of its own
    /// where the store needs none (a local file system reads on the calling thread when no
    /// runtime is current, without a hand-off to a blocking thread).
    pub async fn first_block(&self, options: &SourceOptions) -> Result<FirstBlock> {
        let block = options.block_size.unwrap_or(DEFAULT_BLOCK_SIZE) as u64;
        let first = block.min(floe_wire::limits().header_bytes_unshared).max(1);
        let answer = self
            .store
            .get_opts(
                &self.path,
                object_store::GetOptions {
                    range: Some((0..first).into()),
                    ..Default::default()
                },
            )
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            // An empty object has no byte 0 to start a range at: its HEAD says what it is.
            Err(_) if self.info().await.is_ok_and(|info| info.size == 0) => {
                return Ok(FirstBlock::Whole(self.info().await?, bytes::Bytes::new()));
            }
            Err(e) => return Err(SourceError::store(&self.url, e)),
        };
        let info = ObjectInfo {
            url: self.url.clone(),
            size: answer.meta.size,
            etag: answer.meta.e_tag.clone(),
            last_modified: answer.meta.last_modified.to_rfc3339(),
        };
        if info.size > first {
            return Ok(FirstBlock::Larger(info));
        }
        let bytes = answer
            .bytes()
            .await
            .map_err(|e| SourceError::store(&self.url, e))?;
        if (bytes.len() as u64) != info.size {
            return Err(SourceError::Changed {
                url: self.url.clone(),
                reason: format!(
                    "{} bytes returned of an object of {}: it changed while it was read",
                    bytes.len(),
                    info.size
                ),
            });
        }
        Ok(FirstBlock::Whole(info, bytes))
    }

    /// The header storage after [`Source::first_block`]: in memory, or ranged reads of a larger
    /// object, which take the current runtime's handle (call within one).
    pub fn header_from(&self, first: FirstBlock, options: &SourceOptions) -> OpenedHeader {
        match first {
            FirstBlock::Whole(info, bytes) => OpenedHeader::in_memory(info, bytes),
            FirstBlock::Larger(info) => {
                let opened = self.open_listed(&Listed::from(&info), options);
                // The first request, whose answer told the size, counts too.
                opened.counters.requests.fetch_add(1, Ordering::Relaxed);
                OpenedHeader {
                    info,
                    storage: opened.storage,
                    counters: opened.counters,
                }
            }
        }
    }

    fn opened(
        &self,
        listed: &Listed,
        options: &SourceOptions,
        header_limits: Option<floe_wire::Limits>,
    ) -> OpenedObject {
        let counters = Arc::new(ReadCounters::default());
        let raw = Arc::new(RangeReader {
            url: self.url.clone(),
            store: self.store.clone(),
            path: self.path.clone(),
            listed: listed.clone(),
            handle: tokio::runtime::Handle::current(),
            counters: counters.clone(),
            header_limits,
            large_header_turn: std::sync::Mutex::new(None),
        });
        let block = options.block_size.unwrap_or(DEFAULT_BLOCK_SIZE);
        let cached: DynStorage = Arc::new(BlockCacheStorage::new(raw, block, 4096));
        OpenedObject {
            storage: cached,
            counters,
        }
    }

    /// Writes a whole object (fragments, failure records). Creates local
    /// directories as needed.
    pub async fn put(&self, bytes: bytes::Bytes) -> Result<()> {
        self.store
            .put(&self.path, bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| SourceError::store(&self.url, e))
    }

    /// Deletes an object; deleting an absent object is not an error.
    pub async fn delete(&self) -> Result<()> {
        match self.store.delete(&self.path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(SourceError::store(&self.url, e)),
        }
    }

    /// Reads a whole small object, `None` when it does not exist.
    pub async fn read_if_exists(&self) -> Result<Option<bytes::Bytes>> {
        match self.read_all().await {
            Ok(b) => Ok(Some(b)),
            Err(SourceError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads the first `len` bytes of an object: one ranged GET, whatever the
    /// object has grown to since it was listed (an object now shorter than
    /// `len` is an error or a short read, which the format readers reject).
    pub async fn read_head(&self, len: u64) -> Result<bytes::Bytes> {
        if len == 0 {
            return Ok(bytes::Bytes::new());
        }
        self.store
            .get_range(&self.path, 0..len)
            .await
            .map_err(|e| SourceError::store(&self.url, e))
    }

    /// [`Source::read_head`] of the whole object as it was listed, checked
    /// against that identity ([`Listed::check`]).
    pub async fn read_listed(&self, listed: &Listed) -> Result<bytes::Bytes> {
        if listed.size == 0 {
            return Ok(bytes::Bytes::new());
        }
        get_listed(&*self.store, &self.path, 0..listed.size, listed)
            .await
            .map_err(|e| match e {
                ListedError::Store(e) => SourceError::store(&self.url, e),
                ListedError::Changed(reason) => SourceError::Changed {
                    url: self.url.clone(),
                    reason,
                },
            })
    }

    /// Reads `len` bytes at `offset`: one ranged GET (a chunk, for `producer verify`).
    pub async fn read_range(&self, offset: u64, len: u64) -> Result<bytes::Bytes> {
        if len == 0 {
            return Ok(bytes::Bytes::new());
        }
        self.store
            .get_range(&self.path, offset..offset + len)
            .await
            .map_err(|e| SourceError::store(&self.url, e))
    }

    /// Reads a whole object (small objects only: fragments, test files).
    pub async fn read_all(&self) -> Result<bytes::Bytes> {
        let r = self
            .store
            .get(&self.path)
            .await
            .map_err(|e| SourceError::store(&self.url, e))?;
        r.bytes()
            .await
            .map_err(|e| SourceError::store(&self.url, e))
    }
}

/// Requests and bytes that reached the backend.
#[derive(Debug, Default)]
pub struct ReadCounters {
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl ReadCounters {
    /// Number of ranged GETs made.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// Bytes received.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// A source object opened for the format readers.
pub struct OpenedObject {
    /// Block-cached, synchronous ranged reads.
    pub storage: DynStorage,
    /// What the reads cost.
    pub counters: Arc<ReadCounters>,
}

/// An object opened for its header by [`Source::open_header`].
pub struct OpenedHeader {
    /// What the object is (size and ETag from the first answer).
    pub info: ObjectInfo,
    /// Its bytes in memory, or block-cached ranged reads (which block on the runtime: read
    /// them outside it).
    pub storage: DynStorage,
    /// What the reads cost.
    pub counters: Arc<ReadCounters>,
}

/// What the first request of a header read found: the whole object, or that it is larger than
/// one block.
pub enum FirstBlock {
    /// The whole object, read.
    Whole(ObjectInfo, bytes::Bytes),
    /// An object larger than the first block (nothing kept of the answer).
    Larger(ObjectInfo),
}

impl OpenedHeader {
    fn in_memory(info: ObjectInfo, bytes: bytes::Bytes) -> OpenedHeader {
        let counters = ReadCounters::default();
        counters.requests.store(1, Ordering::Relaxed);
        counters.bytes.store(bytes.len() as u64, Ordering::Relaxed);
        OpenedHeader {
            info,
            storage: Arc::new(hdf5_reader::storage::BytesStorage::new(bytes.to_vec())),
            counters: Arc::new(counters),
        }
    }
}

/// What a listing (or a message, from one) says an object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, when the listing gave one.
    pub etag: Option<String>,
}

impl From<&ObjectInfo> for Listed {
    fn from(info: &ObjectInfo) -> Self {
        Listed {
            size: info.size,
            etag: info.etag.clone(),
        }
    }
}

impl Listed {
    /// Whether an answer's object is the one listed: the same size, and the
    /// same ETag when both have one (quotes aside). The reason, when not.
    pub fn check(&self, size: u64, etag: Option<&str>) -> std::result::Result<(), String> {
        if size != self.size {
            return Err(format!(
                "the object is {size} bytes, not the {} it was listed (or declared) with: it changed since",
                self.size
            ));
        }
        if let (Some(listed), Some(now)) = (self.etag.as_deref(), etag) {
            if !same_etag(Some(listed), Some(now)) {
                return Err(format!(
                    "its ETag is {now}, not the {listed} it was listed with: it changed since"
                ));
            }
        }
        Ok(())
    }
}

/// Why a read of a listed object failed.
enum ListedError {
    /// The backend failed.
    Store(object_store::Error),
    /// The object is not the one listed, or answered short.
    Changed(String),
}

/// One ranged GET, its answer checked against the listed identity and its
/// length against the range asked (a short answer would be sliced past).
async fn get_listed(
    store: &dyn ObjectStore,
    path: &Path,
    range: std::ops::Range<u64>,
    listed: &Listed,
) -> std::result::Result<bytes::Bytes, ListedError> {
    let (start, end) = (range.start, range.end);
    let options = object_store::GetOptions {
        range: Some(range.into()),
        ..Default::default()
    };
    let answer = store
        .get_opts(path, options)
        .await
        .map_err(ListedError::Store)?;
    listed
        .check(answer.meta.size, answer.meta.e_tag.as_deref())
        .map_err(ListedError::Changed)?;
    let fetched = answer.bytes().await.map_err(ListedError::Store)?;
    if (fetched.len() as u64) < end - start {
        return Err(ListedError::Changed(format!(
            "bytes {start}..{end} asked, {} returned: the object is shorter than the {} bytes it was declared to have",
            fetched.len(),
            listed.size
        )));
    }
    Ok(fetched)
}

struct RangeReader {
    url: String,
    store: Arc<dyn ObjectStore>,
    path: Path,
    listed: Listed,
    handle: tokio::runtime::Handle,
    counters: Arc<ReadCounters>,
    /// When it reads a header: the limits on what that may read.
    header_limits: Option<floe_wire::Limits>,
    /// This file's hold on [`LARGE_HEADER_TURN`], once its header passes
    /// [`floe_wire::Limits::header_bytes_unshared`]; released when the file's
    /// reader is dropped (its header parsed).
    large_header_turn: std::sync::Mutex<Option<tokio::sync::SemaphorePermit<'static>>>,
}

/// One file at a time may read a large header. A header's parse holds memory in
/// proportion to the bytes it reads (an HDF5 B-tree of one-byte chunks: about
/// 7 bytes for each byte of index), and a worker reads up to 32 files at once.
/// Each reads [`floe_wire::Limits::header_bytes_unshared`] on its own (real
/// headers: a few hundred kB); past that it waits for this turn, so that at
/// most one header of up to [`floe_wire::Limits::header_bytes_per_file`] is in
/// memory however many files are read. The holder never waits for anything
/// else, so the wait always ends.
static LARGE_HEADER_TURN: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

impl RangeReader {
    /// Refuses a read that would take this file's header past its limit, and
    /// waits for the large-header turn when it passes the unshared part.
    fn admit(&self, len: u64) -> std::io::Result<()> {
        let Some(limits) = &self.header_limits else {
            return Ok(());
        };
        let after = self.counters.bytes().saturating_add(len);
        if after > limits.header_bytes_per_file {
            return Err(std::io::Error::new(
                // A kind of its own, so the readers refuse the file instead of retrying it.
                std::io::ErrorKind::FileTooLarge,
                format!(
                    "{}: its header needs more than the {} bytes floe reads from one file for it (FLOE_MAX_HEADER_BYTES_PER_FILE)",
                    self.url, limits.header_bytes_per_file
                ),
            ));
        }
        if after <= limits.header_bytes_unshared {
            return Ok(());
        }
        let mut turn = self
            .large_header_turn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if turn.is_none() {
            let permit = self
                .handle
                .block_on(LARGE_HEADER_TURN.acquire())
                .map_err(|e| std::io::Error::other(format!("{}: {e}", self.url)))?;
            *turn = Some(permit);
        }
        Ok(())
    }
}

impl Storage for RangeReader {
    fn len(&self) -> u64 {
        self.listed.size
    }

    fn read_range(&self, offset: u64, len: usize) -> hdf5_reader::error::Result<StorageBuffer> {
        let end = offset.saturating_add(len as u64).min(self.listed.size);
        if offset >= end {
            return Ok(StorageBuffer::from_vec(Vec::new()));
        }
        self.admit(end - offset)?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        // The size and ETag a message declares are checked on every answer: an
        // object that changed since is named, never read under its old identity.
        let fetched = self
            .handle
            .block_on(get_listed(
                &*self.store,
                &self.path,
                offset..end,
                &self.listed,
            ))
            .map_err(|e| match e {
                ListedError::Store(e) => std::io::Error::other(format!("{}: {e}", self.url)),
                // A kind of its own, so the readers fail the file as stale, not as I/O.
                ListedError::Changed(reason) => std::io::Error::new(
                    std::io::ErrorKind::StaleNetworkFileHandle,
                    format!("{}: {reason}", self.url),
                ),
            })?;
        self.counters
            .bytes
            .fetch_add(fetched.len() as u64, Ordering::Relaxed);
        Ok(StorageBuffer::from_vec(fetched.to_vec()))
    }
}

/// The backend and object path of a prefix URL.
fn resolve_prefix(prefix_url: &str, options: &SourceOptions) -> Result<(Source, Path)> {
    let probe = format!("{}/_", prefix_url.trim_end_matches('/'));
    let source = Source::resolve(&probe, options)?;
    let parts = source.path.parts().collect::<Vec<_>>();
    let prefix = Path::from_iter(parts[..parts.len().saturating_sub(1)].iter().cloned());
    Ok((source, prefix))
}

/// Whether anything is listed under a prefix URL: the first page of one listing,
/// not the whole archive (pre-flight's "the source lists").
pub async fn lists_anything(prefix_url: &str, options: &SourceOptions) -> Result<bool> {
    use futures::StreamExt;
    let prefix_url = normalize_url(prefix_url);
    let (source, prefix) = resolve_prefix(&prefix_url, options)?;
    match source.store.list(Some(&prefix)).next().await {
        None => Ok(false),
        Some(Ok(_)) => Ok(true),
        Some(Err(e)) => Err(SourceError::store(&prefix_url, e)),
    }
}

/// Lists the objects under a prefix URL (a local directory, `s3://bucket/prefix`).
pub async fn list(prefix_url: &str, options: &SourceOptions) -> Result<Vec<ObjectInfo>> {
    use futures::TryStreamExt;
    let prefix_url = normalize_url(prefix_url);
    let (source, prefix) = resolve_prefix(&prefix_url, options)?;
    let base = prefix_url.trim_end_matches('/').to_string();
    let metas: Vec<_> = source
        .store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| SourceError::store(&prefix_url, e))?;
    let mut out: Vec<ObjectInfo> = metas
        .into_iter()
        .filter_map(|m| {
            let rel = m
                .location
                .as_ref()
                .strip_prefix(prefix.as_ref())?
                .trim_start_matches('/')
                .to_string();
            Some(ObjectInfo {
                url: format!("{base}/{rel}"),
                size: m.size,
                etag: m.e_tag,
                last_modified: m.last_modified.to_rfc3339(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.url.cmp(&b.url));
    Ok(out)
}

#[cfg(test)]
mod etag_tests {
    use super::same_etag;

    #[test]
    fn etags_compare_without_their_quotes() {
        assert!(same_etag(Some("\"abc\""), Some("abc")));
        assert!(!same_etag(Some("abc"), None));
        assert!(!same_etag(Some("\"abc\""), Some("\"abd\"")));
    }
}

#[cfg(test)]
mod declared_size_tests {
    use super::*;

    /// A message that declares an object larger than it is: the first answer's
    /// size names the difference, never a short buffer a parser slices past.
    #[test]
    fn an_object_shorter_than_declared_is_a_named_error() {
        let dir = std::env::temp_dir().join(format!("floe-short-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("short.nc");
        std::fs::write(&path, vec![7u8; 100]).expect("file");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let source = Source::resolve(&path.display().to_string(), &SourceOptions::default())
            .expect("source");
        let opened = {
            let _guard = runtime.enter();
            source.open(10_000, &SourceOptions::default())
        };
        let storage = opened.storage.clone();
        let read = std::thread::spawn(move || storage.read_range(0, 4096).map(|b| b.len()))
            .join()
            .expect("no panic");
        let err = read.expect_err("short").to_string();
        assert!(
            err.contains("the object is 100 bytes, not the 10000 it was listed"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[cfg(test)]
mod within_tests {
    use super::within;

    #[test]
    fn within_a_source_means_below_its_root_with_no_way_out() {
        let root = "s3://archive/ismip6/";
        assert!(within(root, "s3://archive/ismip6/AWI/PISM1/exp05/a.nc"));
        assert!(within("s3://archive/ismip6", "s3://archive/ismip6/a.nc"));
        for outside in [
            "s3://archive/ismip6",
            "s3://archive/ismip6-other/a.nc",
            "s3://other/ismip6/a.nc",
            "https://archive/ismip6/a.nc",
            "/etc/passwd",
            "s3://archive/ismip6/../secret/a.nc",
            "s3://archive/ismip6/%2E%2E/secret/a.nc",
            "s3://archive/ismip6/a/..%2Fb.nc",
            "s3://archive/ismip6//a.nc",
            "s3://archive/ismip6/./a.nc",
            "s3://archive/ismip6/%2e./secret/a.nc",
            "s3://archive/ismip6/a%5C..%5Cb.nc",
            "s3://archive/ismip6/%2F/a.nc",
        ] {
            assert!(!within(root, outside), "{outside}");
        }
        assert!(within("/data/archive", "file:///data/archive/x/y.nc"));
        // Encoded once, as the stores decode: a doubly encoded dot is a literal key.
        assert!(within(root, "s3://archive/ismip6/%252e%252e/a.nc"));
        assert!(within(root, "s3://archive/ismip6/a%20b.nc"));
        assert!(!within(
            "/data/archive",
            "file:///data/archive/../../etc/passwd"
        ));
    }
}

#[cfg(test)]
mod listed_tests {
    use super::Listed;

    #[test]
    fn an_answer_is_the_listed_object_only_with_its_size_and_etag() {
        let listed = Listed {
            size: 100,
            etag: Some("\"abc\"".into()),
        };
        assert!(listed.check(100, Some("abc")).is_ok(), "quotes aside");
        assert!(listed.check(100, None).is_ok(), "no ETag in the answer");
        let grown = listed.check(200, Some("abc")).expect_err("grown");
        assert!(grown.contains("200 bytes, not the 100"), "{grown}");
        let replaced = listed.check(100, Some("\"abd\"")).expect_err("replaced");
        assert!(replaced.contains("ETag"), "{replaced}");
        let unlisted = Listed {
            size: 100,
            etag: None,
        };
        assert!(unlisted.check(100, Some("x")).is_ok());
    }
}
