//! Garbage collection of the objects failed commit attempts leave behind.
//!
//! A commit writes its manifests and snapshot before it moves the branch; an
//! attempt that loses a conflict, or a committer killed mid-commit, leaves
//! those objects unreferenced. Icechunk's own collector
//! (`icechunk::ops::gc`) deletes everything no branch or tag reaches; the age
//! guard keeps the objects of commits still in flight (a committer's fresh
//! manifests are unreferenced until its commit lands), so it must exceed the
//! longest commit (the committer Lambda's timeout).

use std::num::{NonZeroU16, NonZeroUsize};
use std::time::Duration;

use icechunk::ops::gc::{garbage_collect as icechunk_gc, GCConfig};
use icechunk::Repository;
use serde::Serialize;

use crate::{Result, StoreError};

/// What a collection deleted (or, in a dry run, would delete).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Dry run: nothing was deleted.
    pub dry_run: bool,
    /// Only objects created before this time were candidates (RFC 3339).
    pub cutoff: String,
    /// Snapshots.
    pub snapshots: u64,
    /// Transaction logs.
    pub transaction_logs: u64,
    /// Manifests.
    pub manifests: u64,
    /// Materialized chunks.
    pub chunks: u64,
    /// Bytes of all of them.
    pub bytes: u64,
    /// Objects whose delete failed; they are collected by the next run.
    pub failed: u64,
}

fn non_zero(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

/// Deletes (or with `dry_run`, counts) the objects of `repo` that no branch or
/// tag reaches and that are older than `older_than`.
pub async fn collect_garbage(
    repo: &Repository,
    older_than: Duration,
    dry_run: bool,
) -> Result<GcReport> {
    let age = chrono::TimeDelta::from_std(older_than)
        .map_err(|e| StoreError::Icechunk(format!("age {older_than:?}: {e}")))?;
    let cutoff = chrono::Utc::now() - age;
    let config = GCConfig::clean_all(
        cutoff,
        cutoff,
        None,
        non_zero(50),
        NonZeroUsize::new(512 << 20).unwrap_or(NonZeroUsize::MIN),
        NonZeroUsize::new(2 << 30).unwrap_or(NonZeroUsize::MIN),
        non_zero(64),
        non_zero(64),
        non_zero(10),
        None,
        dry_run,
    );
    let summary = icechunk_gc(
        std::sync::Arc::clone(repo.asset_manager()),
        &config,
        Some(repo.config().repo_update_retries()),
        repo.config().num_updates_per_repo_info_file(),
    )
    .await
    .map_err(|e| StoreError::Icechunk(format!("garbage collection: {e}")))?;
    Ok(GcReport {
        dry_run,
        cutoff: cutoff.to_rfc3339(),
        snapshots: summary.snapshots_deleted,
        transaction_logs: summary.transaction_logs_deleted,
        manifests: summary.manifests_deleted,
        chunks: summary.chunks_deleted,
        bytes: summary.bytes_deleted,
        failed: summary.objects_failed_to_delete,
    })
}
