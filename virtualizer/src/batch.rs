//! One batch descriptor → one group fragment: read every file's headers and
//! coordinates (concurrently), then merge with `floe-group`.

use floe_group::{FileScan, GroupBuild};
use floe_source::{ObjectInfo, Source, SourceOptions};
use floe_wire::{BatchDescriptor, SourceFile, EVERY_VARIABLE};
use futures::StreamExt;

use crate::inspect::{read, InspectError};

/// Files of one batch read at the same time.
pub const FILE_CONCURRENCY: usize = 8;

/// Why a batch failed: the file at fault (when there is one) and the reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{reason}", file.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct BatchError {
    /// The file at fault.
    pub file: Option<String>,
    /// What is wrong.
    pub reason: String,
    /// Whether a retry may succeed (network), as opposed to a bad input.
    pub retryable: bool,
}

impl From<InspectError> for BatchError {
    fn from(e: InspectError) -> Self {
        let retryable = e.is_retryable();
        let (file, reason) = match &e {
            InspectError::Format { url, source } => (Some(url.clone()), source.to_string()),
            InspectError::Task { url, reason } => (Some(url.clone()), reason.clone()),
            InspectError::Source(s) => (None, s.to_string()),
        };
        BatchError {
            file,
            reason,
            retryable,
        }
    }
}

/// What reading a batch's files cost: requests and bytes per file, in batch order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReadCost {
    /// Ranged GETs per file (headers and coordinate values).
    pub requests: Vec<u64>,
    /// Bytes read per file.
    pub bytes_read: Vec<u64>,
}

impl ReadCost {
    /// Requests over all files.
    pub fn total_requests(&self) -> u64 {
        self.requests.iter().sum()
    }

    /// Bytes over all files.
    pub fn total_bytes(&self) -> u64 {
        self.bytes_read.iter().sum()
    }
}

/// Reads one input file: manifest plus coordinate values.
pub async fn scan_file(file: &SourceFile, options: &SourceOptions) -> Result<FileScan, BatchError> {
    Ok(scan_file_counted(file, options).await?.0)
}

/// [`scan_file`], with the requests and bytes it cost.
async fn scan_file_counted(
    file: &SourceFile,
    options: &SourceOptions,
) -> Result<(FileScan, u64, u64), BatchError> {
    let source = Source::resolve(&file.url, options).map_err(InspectError::from)?;
    let info = ObjectInfo {
        url: source.url().to_string(),
        size: file.size,
        etag: file.etag.clone(),
        last_modified: file.last_modified.clone().unwrap_or_default(),
    };
    let (inspected, coords) = read(source, info, options, true).await?;
    let scan = FileScan {
        source: file.clone(),
        manifest: inspected.manifest,
        coords,
    };
    Ok((scan, inspected.requests, inspected.bytes_read))
}

/// Virtualizes a whole batch into one group.
///
/// When a file cannot be read as described, the inputs are looked at again
/// (one HEAD per file): if a file changed since the batch was planned (the
/// operator fixed it, then redrove the message), the batch is rebuilt from the
/// files as they are now, under the batch id those inputs give. The happy path
/// costs no extra request.
pub async fn virtualize_batch(
    batch: &BatchDescriptor,
    options: &SourceOptions,
) -> Result<GroupBuild, BatchError> {
    Ok(virtualize_batch_counted(batch, options).await?.0)
}

/// [`virtualize_batch`], with what reading the files cost (the scan that
/// succeeded; files read again after the merge refused them are not counted).
pub async fn virtualize_batch_counted(
    batch: &BatchDescriptor,
    options: &SourceOptions,
) -> Result<(GroupBuild, ReadCost), BatchError> {
    let (build, cost, _) = virtualize_batch_scanned(batch, options).await?;
    Ok((build, cost))
}

/// [`virtualize_batch_counted`], with the files' scans (their parsed headers),
/// for callers that go on to read the same files (`producer verify`).
pub async fn virtualize_batch_scanned(
    batch: &BatchDescriptor,
    options: &SourceOptions,
) -> Result<(GroupBuild, ReadCost, Vec<FileScan>), BatchError> {
    let (current, mut scans, cost) = scan_current_files(batch, options).await?;
    let build = build_from_current_scans(current, &mut scans, options).await?;
    Ok((build, cost, scans))
}

/// The batch with each file's current identity, when any file changed.
pub(crate) async fn refreshed(
    batch: &BatchDescriptor,
    options: &SourceOptions,
) -> Option<BatchDescriptor> {
    if batch.append.is_some() {
        // Its id covers stored files this batch does not list: a changed new file is re-planned.
        return None;
    }
    let mut current = batch.clone();
    let mut changed = false;
    for file in &mut current.files {
        let Ok(info) = Source::resolve(&file.url, options) else {
            continue;
        };
        let Ok(info) = info.info().await else {
            continue;
        };
        if info.size != file.size
            || (info.etag.is_some()
                && !floe_source::same_etag(info.etag.as_deref(), file.etag.as_deref()))
        {
            file.size = info.size;
            file.etag = info.etag;
            file.last_modified = Some(info.last_modified);
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    current.batch_id = floe_group::archive::batch_id(
        &current.profile,
        &current.group,
        current
            .concat
            .as_ref()
            .and_then(|c| c.file_variables.as_ref()),
        &current.files,
    );
    tracing::info!(
        planned = %batch.batch_id,
        current = %current.batch_id,
        "inputs changed since planning; building from the current files"
    );
    Some(current)
}

/// Reads files concurrently, in order, with what each cost.
pub(crate) async fn scan_files(
    files: &[SourceFile],
    options: &SourceOptions,
) -> Result<(Vec<FileScan>, ReadCost), BatchError> {
    // Each file is its own task: a file small enough for one read is parsed where it lands
    // (no blocking hand-off), and as tasks those parses run on every runtime thread instead
    // of one after another inside this stream (8,000 MUR-shaped files: 1.1 of 2 cores busy).
    let mut scanned = futures::stream::iter(files.to_vec())
        .map(|f| {
            let options = options.clone();
            let url = f.url.clone();
            let task = tokio::spawn(async move {
                let scanned = scan_file_counted(&f, &options).await;
                (f, scanned)
            });
            async move {
                task.await.map_err(|e| BatchError {
                    file: Some(url),
                    reason: format!("reading the file stopped: {e}"),
                    retryable: false,
                })
            }
        })
        .buffered(FILE_CONCURRENCY);
    let mut cost = ReadCost::default();
    let mut scans: Vec<FileScan> = Vec::with_capacity(files.len());
    let mut references = 0u64;
    while let Some(joined) = scanned.next().await {
        let (file, next) = joined?;
        let (mut scan, requests, bytes) = match next {
            Ok(scanned) => scanned,
            // A file of one variable that cannot be read costs its group that variable only.
            // In files of several variables it would cost every one: the batch fails, naming it.
            Err(e) if !e.retryable && file.variable != EVERY_VARIABLE => {
                tracing::warn!(file = %file.url, variable = %file.variable, reason = %e.reason,
                    "file cannot be read; its variable is left out of the group");
                (FileScan::unreadable(file, e.reason), 0, 0) // a failed read is not counted
            }
            Err(e) => return Err(e),
        };
        // Counted as they arrive: a batch holds its files' references until its fragment is
        // written, so their number bounds its memory.
        references += scan
            .manifest
            .variables
            .iter()
            .map(|v| v.chunks.len() as u64)
            .sum::<u64>();
        let limit = floe_wire::limits().references_per_fragment;
        if references > limit {
            return Err(BatchError {
                file: Some(scan.source.url.clone()),
                reason: format!(
                    "with this file the batch holds {references} chunk references, more than the {limit} a fragment may (FLOE_MAX_REFERENCES_PER_FRAGMENT): plan the group in smaller shards, or raise the limit with the memory"
                ),
                retryable: false,
            });
        }
        // As they arrive, so a large group never holds every file's attributes at once.
        if let Some(previous) = scans.last() {
            scan.share_metadata_with(previous);
        }
        cost.requests.push(requests);
        cost.bytes_read.push(bytes);
        scans.push(scan);
    }
    Ok((scans, cost))
}

/// [`scan_files`] of a batch's files; when one cannot be read as described
/// and a file changed since planning (the operator fixed it, then redrove the
/// message), the files as they are now. Returns the batch as scanned: the
/// current identities and the batch id they give.
pub(crate) async fn scan_current_files(
    batch: &BatchDescriptor,
    options: &SourceOptions,
) -> Result<(BatchDescriptor, Vec<FileScan>, ReadCost), BatchError> {
    let (mut scans, cost) = match scan_files(&batch.files, options).await {
        Ok(scanned) => scanned,
        Err(e) if !e.retryable => match refreshed(batch, options).await {
            Some(current) => {
                let (scans, cost) = scan_files(&current.files, options).await?;
                return Ok((current, scans, cost));
            }
            None => return Err(e),
        },
        Err(e) => return Err(e),
    };
    if !scans.iter().any(|s| s.manifest.is_unreadable()) {
        return Ok((batch.clone(), scans, cost));
    }
    let current = rescan_changed(batch, &mut scans, options).await?;
    Ok((current.unwrap_or_else(|| batch.clone()), scans, cost))
}

/// When a file changed since `batch` was planned (fixed, then redriven or re-enqueued), reads
/// the changed files again into `scans` and returns the batch of the current files; `None`
/// when nothing changed.
async fn rescan_changed(
    batch: &BatchDescriptor,
    scans: &mut [FileScan],
    options: &SourceOptions,
) -> Result<Option<BatchDescriptor>, BatchError> {
    let Some(current) = refreshed(batch, options).await else {
        return Ok(None);
    };
    let changed: Vec<usize> = (0..scans.len())
        .filter(|&i| current.files[i] != batch.files[i])
        .collect();
    let files: Vec<SourceFile> = changed.iter().map(|&i| current.files[i].clone()).collect();
    let (rescanned, _) = scan_files(&files, options).await?;
    for (i, scan) in changed.into_iter().zip(rescanned) {
        scans[i] = scan;
    }
    Ok(Some(current))
}

/// The group of a batch's scans, by its profile's merge rules.
pub(crate) fn build_from_scans(
    batch: &BatchDescriptor,
    scans: &[FileScan],
) -> Result<GroupBuild, BatchError> {
    floe_group::build(batch, scans, floe_group::Rule::of(batch))
        .map_err(|e| e.to_string())
        .map_err(|reason| BatchError {
            file: None,
            reason,
            retryable: false,
        })
}

/// [`build_from_scans`]; when the merge refuses the inputs and a file changed
/// since it was scanned (fixed, then redriven), the changed files are read
/// again and the group is built from the files as they are now.
pub(crate) async fn build_from_current_scans(
    batch: BatchDescriptor,
    scans: &mut [FileScan],
    options: &SourceOptions,
) -> Result<GroupBuild, BatchError> {
    let err = match build_from_scans(&batch, scans) {
        Ok(build) => return within_reference_limit(build),
        Err(e) => e,
    };
    let Some(current) = rescan_changed(&batch, scans, options).await? else {
        return Err(err);
    };
    within_reference_limit(build_from_scans(&current, scans)?)
}

/// The built group, or why its fragment holds too many references. The files' references
/// were counted as they were read ([`scan_files`]); building can add more (contiguous data
/// split one reference per step), so the fragment is counted again before it is written.
fn within_reference_limit(build: GroupBuild) -> Result<GroupBuild, BatchError> {
    let references = build.fragment.ref_count() as u64;
    let limit = floe_wire::limits().references_per_fragment;
    if references > limit {
        return Err(BatchError {
            file: None,
            reason: format!(
                "group {}: its fragment holds {references} chunk references, more than the {limit} a fragment may (FLOE_MAX_REFERENCES_PER_FRAGMENT): plan the group in smaller shards, or raise the limit with the memory",
                build.fragment.group_path
            ),
            retryable: false,
        });
    }
    Ok(build)
}
