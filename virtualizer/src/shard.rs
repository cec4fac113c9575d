//! One shard of a large group (`floe_group::shard`): read the shard's files,
//! store their scans, and assemble the group when every shard is stored.
//!
//! Exactly once: the scans are stored before the message is done, so a worker
//! killed mid-shard leaves the message to be redelivered; a redelivered shard
//! overwrites its own scans. Each shard stores, then lists, so the last two
//! shards to finish cannot both miss each other (S3 lists what was written
//! before the listing): at least one assembles. Two may assemble; both build
//! the same fragment under the same batch id, which the committer writes once.

use floe_fleet::records::Records;
use floe_group::shard::{assemble, ShardScans};
use floe_group::GroupBuild;
use floe_source::SourceOptions;
use floe_wire::{BatchDescriptor, ShardOf};
use futures::{StreamExt, TryStreamExt};

use crate::batch::{build_from_current_scans, scan_current_files, BatchError, ReadCost};

/// Stored shard scans read at the same time while assembling.
const SHARD_READ_CONCURRENCY: usize = 8;

/// What handling one shard did.
#[derive(Debug)]
pub enum ShardOutcome {
    /// Its scans are stored; other shards of the group are not yet.
    Stored {
        /// Shards of the group stored so far.
        stored: usize,
    },
    /// Every shard was stored: the whole group, built.
    Assembled(Box<GroupBuild>),
}

/// Reads a shard's files, stores their scans, and builds the group when this
/// shard completes it.
pub async fn virtualize_shard(
    batch: &BatchDescriptor,
    of: &ShardOf,
    options: &SourceOptions,
    records: &Records,
) -> Result<(ShardOutcome, ReadCost), BatchError> {
    let (_, scans, cost) = scan_current_files(batch, options).await?;
    let bytes = ShardScans::new(of.clone(), scans)
        .encode()
        .map_err(|e| permanent(format!("encoding shard {} of {}: {e}", of.index, of.count)))?;
    records
        .put_shard_scans(&of.group_batch_id, of.count, of.index, bytes)
        .await
        .map_err(|e| retryable(format!("storing the scans of shard {}: {e}", of.index)))?;
    let urls = records
        .stored_shard_scans(&of.group_batch_id, of.count)
        .await
        .map_err(|e| retryable(format!("listing the group's shard scans: {e}")))?;
    if urls.len() < of.count as usize {
        return Ok((ShardOutcome::Stored { stored: urls.len() }, cost));
    }
    let stored: Vec<ShardScans> = futures::stream::iter(urls)
        .map(|url| async move {
            let bytes = records
                .read(&url)
                .await
                .map_err(|e| retryable(format!("reading {url}: {e}")))?;
            ShardScans::decode(&bytes).map_err(|e| permanent(format!("{url}: {e}")))
        })
        .buffered(SHARD_READ_CONCURRENCY)
        .try_collect()
        .await?;
    let (group, mut scans) = assemble(batch, stored).map_err(|e| permanent(e.to_string()))?;
    tracing::info!(
        shards = of.count,
        files = scans.len(),
        "every shard stored; assembling the group"
    );
    let build = build_from_current_scans(group, &mut scans, options).await?;
    Ok((ShardOutcome::Assembled(Box::new(build)), cost))
}

fn permanent(reason: String) -> BatchError {
    BatchError {
        file: None,
        reason,
        retryable: false,
    }
}

fn retryable(reason: String) -> BatchError {
    BatchError {
        file: None,
        reason,
        retryable: true,
    }
}
