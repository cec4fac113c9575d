//! # floe-store: manifest fragments into Icechunk
//!
//! The committer's core, usable from the Lambda, the worker and the local run:
//! - [`location`]: local or S3 repositories, virtual chunk containers for source prefixes;
//! - [`open_repository`]: open or create a repository with its containers declared;
//! - [`write`]: one fragment into an open session, idempotent by batch id;
//! - [`commit`]: many fragments per commit, rebase on contention, bounded jittered retries;
//! - [`gc`]: deleting what failed commit attempts left behind;
//! - [`verify`]: reading a finished store back (`producer verify`).
//!
//! ```text
//! fragments ─▶ Committer::commit ─▶ writable session ─▶ apply_fragment × N ─▶ commit
//!                     ▲                                                         │ conflict
//!                     └──────── backoff, fresh session ◀── rebase failed ◀──────┘
//! ```

#![warn(missing_docs)]

mod append;
pub mod commit;
mod coordinate;
mod error;
pub mod gc;
pub mod inputs;
pub mod location;
mod node;
pub mod verify;
pub mod write;

use std::collections::HashMap;
use std::sync::Arc;

pub use commit::{CommitItem, CommitPolicy, CommitReport, Committer, LogEntry};
pub use error::{Result, StoreError};
pub use gc::{collect_garbage, GcReport};
pub use icechunk::Repository;
use icechunk::RepositoryConfig;
pub use location::{CloudSettings, StoreLocation};

/// Opens the repository at `location`, creating it if needed, with a virtual
/// chunk container (and read authorization) for each source prefix. When the
/// persisted config lacks one of the containers, it is added and saved, so
/// that readers such as Python icechunk find it.
pub async fn open_repository(
    location: &StoreLocation,
    cloud: &CloudSettings,
    source_prefixes: &[String],
) -> Result<Repository> {
    open_repository_with(location, cloud, source_prefixes, &WriterOptions::default()).await
}

/// How a writer opens the repository, for benchmarks: a wrapper around the
/// storage (icechunk's `MeteringStorage` or `LatencyStorage`), and the number of
/// manifests a commit writes at once. Neither changes what readers see.
#[derive(Clone, Default)]
pub struct WriterOptions {
    /// Wraps the storage before the repository is opened on it.
    pub wrap_storage: Option<StorageWrapper>,
    /// Manifests written at once per commit (default [`MANIFEST_WRITE_CONCURRENCY`]).
    pub manifest_write_concurrency: Option<u16>,
    /// Steps of the time dimension per manifest split (default: `FLOE_MANIFEST_SPLIT_STEPS`,
    /// else [`MANIFEST_SPLIT_STEPS`]; 0 splits nothing).
    pub manifest_split_steps: Option<u32>,
}

/// A function that wraps a repository's storage.
pub type StorageWrapper = Arc<dyn Fn(DynStorage) -> DynStorage + Send + Sync>;

/// icechunk's storage trait object.
pub type DynStorage = Arc<dyn icechunk::Storage + Send + Sync>;

/// [`open_repository`] with [`WriterOptions`].
pub async fn open_repository_with(
    location: &StoreLocation,
    cloud: &CloudSettings,
    source_prefixes: &[String],
    options: &WriterOptions,
) -> Result<Repository> {
    use backon::{ExponentialBuilder, Retryable};
    // Several committers may create the same repository at once: the losers
    // see the winner's repository on the next attempt. Each attempt already
    // retries its requests (the retry policy), so an unreachable store is not
    // retried for long here: at most the policy's budget in all.
    (|| open_once(location, cloud, source_prefixes, options))
        .retry(
            ExponentialBuilder::default()
                .with_max_times(4)
                .with_total_delay(Some(cloud.retry.budget))
                .with_jitter(),
        )
        .when(|e| !matches!(e, StoreError::NotADirectory(_)))
        .notify(|e, delay| tracing::info!(error = %e, ?delay, "opening the repository raced with another writer, retrying"))
        .await
}

/// Opens the repository at `location` for reading, or `None` when there is none
/// yet: for commands that only look (`producer status`, `committer log`) and must
/// not create a store as a side effect.
pub async fn open_existing(
    location: &StoreLocation,
    cloud: &CloudSettings,
) -> Result<Option<Repository>> {
    if existing_storage(location, cloud).await?.is_none() {
        return Ok(None);
    }
    open_repository(location, cloud, &[]).await.map(Some)
}

/// The storage of the repository at `location`, or `None` when there is no
/// repository there (a local directory is not created to find out).
async fn existing_storage(
    location: &StoreLocation,
    cloud: &CloudSettings,
) -> Result<Option<std::sync::Arc<dyn icechunk::Storage + Send + Sync>>> {
    if !location.local_directory_exists()? {
        return Ok(None);
    }
    let storage = location.storage(cloud).await?;
    let exists = Repository::exists(
        storage.clone(),
        process_only_config(location, cloud).storage,
    )
    .await
    .map_err(|e| located(location, cloud, &e))?;
    Ok(exists.then_some(storage))
}

/// Opens the repository at `location` to read its chunks, with read access to the
/// containers of `source_prefixes`; `None` when there is none. Reads only: the
/// persisted configuration is not touched.
pub async fn open_for_reading(
    location: &StoreLocation,
    cloud: &CloudSettings,
    source_prefixes: &[String],
) -> Result<Option<Repository>> {
    let Some(storage) = existing_storage(location, cloud).await? else {
        return Ok(None);
    };
    let mut authorize = HashMap::new();
    let mut containers = Vec::new();
    for prefix in source_prefixes {
        let (container, credentials) = location::container(prefix, cloud)?;
        authorize.insert(container.url_prefix().to_string(), credentials);
        containers.push(container);
    }
    let repo = Repository::open(storage)
        .config(process_only_config(location, cloud))
        .authorize_virtual_chunk_access(authorize)
        .execute()
        .await
        .map_err(|e| located(location, cloud, &e))?;
    // Chunks are read through this process's settings (the GCS endpoint it reads
    // headers from, say), not the ones persisted when the store was written: a
    // container in the process config replaces the persisted one of its prefix.
    let mut config = process_only_config(location, cloud);
    for persisted in repo.config().virtual_chunk_containers() {
        if !containers
            .iter()
            .any(|c| c.url_prefix() == persisted.url_prefix())
        {
            config
                .set_virtual_chunk_container(persisted.clone())
                .map_err(StoreError::Location)?;
        }
    }
    for container in containers {
        config
            .set_virtual_chunk_container(container)
            .map_err(StoreError::Location)?;
    }
    repo.reopen(Some(config), None)
        .await
        .map(Some)
        .map_err(|e| StoreError::Icechunk(format!("reopening {location}: {e}")))
}

/// Whether the repository at `location` has a virtual chunk container whose
/// prefix covers `source_prefix`: `None` when there is no repository yet (it
/// gets one when it is created), `Some(containers)` listing its prefixes when
/// none covers it. Creates nothing.
pub async fn uncovered_source(
    location: &StoreLocation,
    cloud: &CloudSettings,
    source_prefix: &str,
) -> Result<Option<Vec<String>>> {
    let Some(storage) = existing_storage(location, cloud).await? else {
        return Ok(None);
    };
    // Opened (with this process's retry policy) rather than fetched: the repository's
    // configuration is the persisted one, as no container is passed.
    let repo = Repository::open(storage)
        .config(process_only_config(location, cloud))
        .execute()
        .await
        .map_err(|e| located(location, cloud, &e))?;
    let prefix = location::container_prefix(source_prefix);
    let prefixes: Vec<String> = repo
        .config()
        .virtual_chunk_containers()
        .map(|c| c.url_prefix().to_string())
        .collect();
    if prefixes.iter().any(|p| prefix.starts_with(p.as_str())) {
        Ok(None)
    } else {
        Ok(Some(prefixes))
    }
}

/// Manifests written at once during a commit. Icechunk writes one manifest per
/// new array and by default one at a time; a commit of a hundred groups has
/// hundreds of them, so the commit time was their sum.
pub const MANIFEST_WRITE_CONCURRENCY: u16 = 64;

/// Chunks up to this size live inside their manifest instead of in an object of
/// their own. Materialized coordinates (x, y of a 1 km ISMIP6 grid: 6081 × f8 =
/// 48 KB) then cost no request of their own, at write or at read time; they are
/// the only chunks floe writes, so manifests stay small.
pub const INLINE_CHUNK_THRESHOLD_BYTES: u16 = u16::MAX;

/// Steps of the dimension named `time` per manifest split, by default. An
/// append rewrites only the split its new chunks fall in (and starts the next),
/// so its bytes are bounded by one split whatever the series' length. The rule
/// (docs/appends-and-watch.md, "Manifest splitting"): a split should hold about 1,000 to 30,000
/// chunk references (dynamical.org's reformatters found ≥ 1,000 references and
/// ≤ 3 MiB a manifest best; icechunk#2381 shows the cost of hundreds of
/// thousands of manifests). 1,000 steps suits arrays of one to thirty chunks a
/// step (ISMIP6, CMIP6, daily products at coarse chunking); set
/// `FLOE_MANIFEST_SPLIT_STEPS` to 30,000 / (chunks per step) for finer ones.
pub const MANIFEST_SPLIT_STEPS: u32 = 1000;

/// How manifests are split: the input record and the time coordinate one
/// manifest per chunk (an append touches only their last chunks), arrays with a
/// `time` dimension every `steps` chunks of it (steps: their chunks along time
/// hold one step each). icechunk takes the first rule whose condition matches.
fn splitting(steps: u32) -> Option<icechunk::config::ManifestSplittingConfig> {
    use icechunk::config::{
        ManifestSplitCondition, ManifestSplitDim, ManifestSplitDimCondition,
        ManifestSplittingConfig,
    };
    if steps == 0 {
        return None;
    }
    let inputs = format!(".*/{}/{}$", inputs::PROVENANCE_GROUP, inputs::INPUTS_ARRAY);
    Some(ManifestSplittingConfig {
        split_sizes: Some(vec![
            (
                ManifestSplitCondition::PathMatches { regex: inputs },
                vec![ManifestSplitDim {
                    condition: ManifestSplitDimCondition::Any,
                    num_chunks: 1,
                }],
            ),
            // The time coordinate's chunks hold 1,000 values each (`coordinate`):
            // a split per chunk lines it up with the data's splits.
            (
                ManifestSplitCondition::NameMatches {
                    regex: "^time$".into(),
                },
                vec![ManifestSplitDim {
                    condition: ManifestSplitDimCondition::DimensionName("time".into()),
                    num_chunks: 1,
                }],
            ),
            (
                ManifestSplitCondition::AnyArray,
                vec![ManifestSplitDim {
                    condition: ManifestSplitDimCondition::DimensionName("time".into()),
                    num_chunks: steps,
                }],
            ),
        ]),
    })
}

/// Writer-side settings: they change how floe writes, not what readers see.
fn writer_config(options: &WriterOptions) -> RepositoryConfig {
    let split_steps = options
        .manifest_split_steps
        .or_else(|| {
            std::env::var("FLOE_MANIFEST_SPLIT_STEPS")
                .ok()
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(MANIFEST_SPLIT_STEPS);
    RepositoryConfig {
        inline_chunk_threshold_bytes: Some(INLINE_CHUNK_THRESHOLD_BYTES),
        manifest: Some(icechunk::config::ManifestConfig {
            max_concurrent_manifest_fetches_during_commit: Some(
                options
                    .manifest_write_concurrency
                    .unwrap_or(MANIFEST_WRITE_CONCURRENCY),
            ),
            splitting: splitting(split_steps),
            ..Default::default()
        }),
        ..RepositoryConfig::default()
    }
}

async fn open_once(
    location: &StoreLocation,
    cloud: &CloudSettings,
    source_prefixes: &[String],
    options: &WriterOptions,
) -> Result<Repository> {
    let mut storage = location.storage(cloud).await?;
    if let Some(wrap) = &options.wrap_storage {
        storage = wrap(storage);
    }
    let mut config = writer_config(options);
    // The retry policy applies from the first request (a new repository records it
    // with the rest of icechunk's storage settings).
    config.storage = process_only_config(location, cloud).storage;
    let mut authorize = HashMap::new();
    for prefix in source_prefixes {
        let (container, credentials) = location::container(prefix, cloud)?;
        authorize.insert(container.url_prefix().to_string(), credentials);
        config
            .set_virtual_chunk_container(container)
            .map_err(StoreError::Location)?;
    }
    let repo = Repository::open_or_create(storage)
        .config(config.clone())
        .authorize_virtual_chunk_access(authorize)
        .execute()
        .await
        .map_err(|e| located(location, cloud, &e))?;
    let persisted = Repository::fetch_config(repo.storage().clone())
        .await
        .map_err(|e| StoreError::Icechunk(e.to_string()))?;
    let missing = source_prefixes.iter().any(|p| {
        let prefix = location::container_prefix(p);
        persisted
            .as_ref()
            .is_none_or(|(c, _)| c.get_virtual_chunk_container(&prefix).is_none())
    });
    if missing {
        repo.save_config()
            .await
            .map_err(|e| StoreError::Icechunk(format!("saving config: {e}")))?;
    }
    // In this process only (after the config is saved, so readers keep
    // icechunk's defaults): no manifest preloading. A session spawns background
    // fetches of coordinate manifests; floe never reads chunks through its
    // sessions, and a command that ends while they run logs each cancelled
    // fetch as an ERROR on a successful run.
    repo.reopen(Some(process_only_config(location, cloud)), None)
        .await
        .map_err(|e| StoreError::Icechunk(format!("reopening {location}: {e}")))
}

/// An icechunk error at `location`, naming where its requests went and each cause once.
fn located(
    location: &StoreLocation,
    cloud: &CloudSettings,
    e: &(dyn std::error::Error + 'static),
) -> StoreError {
    StoreError::Location(format!(
        "{}: {}",
        location.describe(cloud),
        floe_runtime::error_chain(e)
    ))
}

/// Settings for this process's handle on the repository, never persisted: no
/// manifest preloading, and on object storage this process's retry policy (a local
/// directory keeps icechunk's own settings: one try, no conditional writes).
fn process_only_config(location: &StoreLocation, cloud: &CloudSettings) -> RepositoryConfig {
    RepositoryConfig {
        storage: matches!(location, StoreLocation::S3 { .. }).then(|| cloud.storage_settings()),
        manifest: Some(icechunk::config::ManifestConfig {
            preload: Some(icechunk::config::ManifestPreloadConfig {
                max_total_refs: Some(0),
                preload_if: Some(icechunk::config::ManifestPreloadCondition::False),
                max_arrays_to_scan: None,
            }),
            ..Default::default()
        }),
        ..RepositoryConfig::default()
    }
}
