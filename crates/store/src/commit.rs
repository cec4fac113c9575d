//! Coalesced commits: many fragments, one writable session, one commit; on
//! contention, rebase with `ConflictDetector`, and if that fails, start over
//! from a fresh session after a jittered exponential backoff (`backon`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use floe_wire::ManifestFragment;
use icechunk::conflicts::detector::ConflictDetector;
use icechunk::repository::VersionInfo;
use icechunk::{Repository, Store};
use serde_json::Value;
use tokio::sync::RwLock;

use crate::error::{from_repo, from_session};
use crate::write::{apply_fragment, ensure_ancestors, inputs_key, ApplyOutcome};
use crate::{Result, StoreError};

/// Branch floe writes to.
pub const BRANCH: &str = "main";

/// One fragment to commit, named by its message id (or file name).
#[derive(Debug, Clone)]
pub struct CommitItem {
    /// Message id; failures are reported against it.
    pub id: String,
    /// The fragment.
    pub fragment: ManifestFragment,
}

/// What happened to each item of a batch.
#[derive(Debug, Clone, Default)]
pub struct CommitReport {
    /// Snapshot id of the commit, when one was made.
    pub snapshot: Option<String>,
    /// Items whose group was written in that commit.
    pub written: Vec<String>,
    /// Items acknowledged without writing, and why (already committed, stale).
    pub skipped: Vec<(String, String)>,
    /// Items that failed permanently, with the reason. Only these and
    /// [`Self::refused`] are not acknowledged.
    pub failed: Vec<(String, String)>,
    /// Appends that do not extend their stored group, with the reason: nothing of
    /// them was written; the group is to be rebuilt (`producer local` does so at once).
    pub refused: Vec<(String, String)>,
    /// Commit attempts (1 = no contention).
    pub attempts: u32,
    /// Virtual references written.
    pub refs: usize,
}

/// Store errors (not conflicts) after which a commit of several groups is
/// split in two ([`Committer::commit`]).
pub const STORE_FAILURES_BEFORE_SPLIT: u32 = 3;

/// Retry and rebase settings.
#[derive(Debug, Clone)]
pub struct CommitPolicy {
    /// Rebase attempts inside one commit call.
    pub rebase_attempts: u16,
    /// Fresh-session retries after a failed rebase.
    pub max_retries: usize,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Largest backoff delay.
    pub max_delay: Duration,
}

impl Default for CommitPolicy {
    fn default() -> Self {
        CommitPolicy {
            rebase_attempts: 10,
            max_retries: 20,
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Commits batches of fragments into one repository.
pub struct Committer {
    repo: Repository,
    policy: CommitPolicy,
}

impl Committer {
    /// A committer over an open repository.
    pub fn new(repo: Repository, policy: CommitPolicy) -> Self {
        Committer { repo, policy }
    }

    /// The repository.
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// Jittered exponential backoff between fresh-session attempts.
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.policy.min_delay)
            .with_max_delay(self.policy.max_delay)
            .with_max_times(self.policy.max_retries)
            .with_jitter()
    }

    /// A store over a new writable session on [`BRANCH`].
    async fn writable_store(&self) -> Result<Store> {
        let session = self
            .repo
            .writable_session(BRANCH)
            .await
            .map_err(from_repo)?;
        Ok(Store::from_session(Arc::new(RwLock::new(session))).await)
    }

    /// Writes every fragment in one commit. Never fails as a whole for a bad
    /// fragment: bad ones are in [`CommitReport::failed`]. Fails as a whole only
    /// when the store itself cannot be written (then nothing is acknowledged).
    pub async fn commit(&self, items: Vec<CommitItem>) -> Result<CommitReport> {
        let mut report = CommitReport::default();
        // Within one batch, one fragment per group: the newest inputs win.
        let mut by_group: BTreeMap<String, CommitItem> = BTreeMap::new();
        for item in items {
            let group = item.fragment.group_path.clone();
            match by_group.remove(&group) {
                None => {
                    by_group.insert(group, item);
                }
                Some(other) => {
                    let (keep, drop) = if inputs_key(&item.fragment) >= inputs_key(&other.fragment)
                    {
                        (item, other)
                    } else {
                        (other, item)
                    };
                    let why = if keep.fragment.batch_id == drop.fragment.batch_id {
                        "duplicate in this batch"
                    } else {
                        "superseded by newer inputs in this batch"
                    };
                    report.skipped.push((drop.id, why.to_string()));
                    by_group.insert(group, keep);
                }
            }
        }
        let pending: Vec<CommitItem> = by_group.into_values().collect();
        self.commit_in_parts(pending, &mut report).await?;
        Ok(report)
    }

    /// Commits `pending` in one commit. When the store itself keeps failing it
    /// (not a conflict) and it holds more than one group, it is committed in two
    /// halves instead, each its own commit, and so on down to one group: under a
    /// sustained error rate a commit of fewer objects is likelier to get every
    /// request through (each request has its own retry budget). Exactly once still
    /// holds: a half that did land before its answer was lost is found committed.
    fn commit_in_parts<'a>(
        &'a self,
        pending: Vec<CommitItem>,
        report: &'a mut CommitReport,
    ) -> futures::future::BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let splittable = pending.len() > 1;
            match self.commit_once(&pending, splittable).await {
                Ok(part) => {
                    report.attempts += part.attempts;
                    report.refs += part.refs;
                    report.snapshot = part.snapshot.or(report.snapshot.take());
                    report.written.extend(part.written);
                    report.skipped.extend(part.skipped);
                    report.failed.extend(part.failed);
                    report.refused.extend(part.refused);
                    Ok(())
                }
                // What icechunk refuses at commit time, it refuses on every try: the
                // halves find the group at fault at once, and it fails alone.
                Err(StoreError::Refused(e)) if splittable => {
                    tracing::warn!(groups = pending.len(), error = %e, "icechunk refuses this commit: committing its groups in two halves to find the one at fault");
                    self.commit_halves(pending, report).await
                }
                Err(StoreError::Refused(e)) => {
                    if let [item] = pending.as_slice() {
                        report
                            .failed
                            .push((item.id.clone(), format!("icechunk refuses it: {e}")));
                    }
                    Ok(())
                }
                Err(StoreError::Icechunk(e)) if splittable => {
                    tracing::warn!(groups = pending.len(), error = %e, "the store keeps failing a commit of this size: committing its groups in two halves");
                    self.commit_halves(pending, report).await
                }
                Err(e) => Err(e),
            }
        })
    }

    /// [`Self::commit_in_parts`] of each half of `pending`, one after the other.
    async fn commit_halves(
        &self,
        mut pending: Vec<CommitItem>,
        report: &mut CommitReport,
    ) -> Result<()> {
        let second = pending.split_off(pending.len() / 2);
        self.commit_in_parts(pending, report).await?;
        self.commit_in_parts(second, report).await
    }

    /// One commit of `pending`, retried from fresh sessions on conflicts and
    /// store errors; with `splittable`, store errors give up after
    /// [`STORE_FAILURES_BEFORE_SPLIT`] tries so that the caller can split.
    async fn commit_once(&self, pending: &[CommitItem], splittable: bool) -> Result<CommitReport> {
        let mut report = CommitReport::default();
        let failed: Arc<std::sync::Mutex<HashMap<String, String>>> = Arc::default();
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let store_failures = std::sync::atomic::AtomicU32::new(0);
        let backoff = self.backoff();
        let outcome = (|| async {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let result = self.attempt(pending, &failed).await;
            if matches!(result, Err(StoreError::Icechunk(_))) {
                store_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            result
        })
        .retry(backoff)
        .when(|e: &StoreError| {
            let give_up = splittable
                && store_failures.load(std::sync::atomic::Ordering::Relaxed)
                    >= STORE_FAILURES_BEFORE_SPLIT;
            e.is_retryable() && !give_up
        })
        .notify(|e, delay| tracing::info!(error = %e, ?delay, "commit contention, retrying from a fresh session"))
        .await?;
        report.attempts = attempts.into_inner();
        report.snapshot = outcome.snapshot;
        report.refs = outcome.refs;
        report.written.extend(outcome.written);
        report.skipped.extend(outcome.skipped);
        report.refused.extend(outcome.refused);
        let failed = failed.lock().map(|f| f.clone()).unwrap_or_default();
        report.failed.extend(failed);
        Ok(report)
    }

    async fn attempt(
        &self,
        pending: &[CommitItem],
        failed: &std::sync::Mutex<HashMap<String, String>>,
    ) -> Result<AttemptOutcome> {
        'session: loop {
            let started = std::time::Instant::now();
            let store = self.writable_store().await?;
            let opened = started.elapsed();
            let mut out = AttemptOutcome::default();
            for item in pending {
                if failed
                    .lock()
                    .map(|f| f.contains_key(&item.id))
                    .unwrap_or(false)
                {
                    continue;
                }
                match apply_fragment(&store, &item.fragment, &item.id).await {
                    Ok(ApplyOutcome::Written { refs }) => {
                        out.refs += refs;
                        out.written.push(item.id.clone());
                    }
                    Ok(ApplyOutcome::AlreadyCommitted) => out
                        .skipped
                        .push((item.id.clone(), "already committed".into())),
                    Ok(ApplyOutcome::Superseded { current }) => out.skipped.push((
                        item.id.clone(),
                        format!("stale: the store holds newer batch {current}"),
                    )),
                    Ok(ApplyOutcome::AppendRefused { reason }) => {
                        out.refused.push((item.id.clone(), reason))
                    }
                    Err(e @ (StoreError::Fragment { .. } | StoreError::Refused(_))) => {
                        // The session may hold part of this fragment: drop it and start over without it.
                        if let Ok(mut f) = failed.lock() {
                            f.insert(item.id.clone(), e.to_string());
                        }
                        continue 'session;
                    }
                    Err(e) => return Err(e),
                }
            }
            if out.written.is_empty() {
                return Ok(out);
            }
            let (groups, batch_ids): (Vec<Value>, Vec<Value>) = pending
                .iter()
                .filter(|i| out.written.contains(&i.id))
                .map(|i| {
                    (
                        Value::from(i.fragment.group_path.clone()),
                        Value::from(i.fragment.batch_id.clone()),
                    )
                })
                .unzip();
            let mut properties = BTreeMap::new();
            properties.insert("floe_groups".to_string(), Value::from(groups.clone()));
            properties.insert("floe_batch_ids".to_string(), Value::from(batch_ids));
            let message = format!("floe: {} group(s)", groups.len());
            let applied = started.elapsed();
            // The crash drills kill the committer just after this line, mid-commit.
            tracing::info!(groups = groups.len(), "writing the commit");
            let session = store.session();
            let mut session = session.write().await;
            let snapshot = session
                .commit(message)
                .properties(properties)
                .rebase(&ConflictDetector, self.policy.rebase_attempts)
                .execute()
                .await
                .map_err(from_session)?;
            tracing::debug!(
                groups = groups.len(),
                session_ms = opened.as_millis() as u64,
                apply_ms = (applied - opened).as_millis() as u64,
                commit_ms = (started.elapsed() - applied).as_millis() as u64,
                "committed"
            );
            out.snapshot = Some(snapshot.to_string());
            return Ok(out);
        }
    }

    /// Creates the root group and the given groups (parents such as
    /// `AWI_PISM1`) that are missing, in one commit. Idempotent; returns the
    /// snapshot id when it had to commit.
    pub async fn ensure_groups(&self, groups: &[String]) -> Result<Option<String>> {
        let backoff = self.backoff();
        (|| async {
            let store = self.writable_store().await?;
            ensure_ancestors(&store, "").await?;
            for g in groups {
                ensure_ancestors(&store, &format!("{g}/_")).await?;
            }
            let session = store.session();
            let mut session = session.write().await;
            if !session.has_uncommitted_changes() {
                return Ok(None);
            }
            let id = session
                .commit("floe: create parent groups")
                .rebase(&ConflictDetector, self.policy.rebase_attempts)
                .execute()
                .await
                .map_err(from_session)?;
            Ok(Some(id.to_string()))
        })
        .retry(backoff)
        .when(|e: &StoreError| e.is_retryable())
        .await
    }
}

#[derive(Debug, Default)]
struct AttemptOutcome {
    snapshot: Option<String>,
    written: Vec<String>,
    skipped: Vec<(String, String)>,
    refused: Vec<(String, String)>,
    refs: usize,
}

/// One commit of the branch history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogEntry {
    /// Snapshot id.
    pub id: String,
    /// When, RFC 3339.
    pub at: String,
    /// Commit message.
    pub message: String,
    /// Batch ids written by the commit.
    pub batch_ids: Vec<String>,
    /// Groups written by the commit.
    pub groups: Vec<String>,
}

/// The most recent commits of `main`, newest first.
pub async fn log(repo: &Repository, limit: usize) -> Result<Vec<LogEntry>> {
    use futures::StreamExt;
    let stream = repo
        .ancestry(&VersionInfo::BranchTipRef(BRANCH.into()))
        .await
        .map_err(from_repo)?;
    let infos: Vec<_> = stream.take(limit).collect().await;
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    infos
        .into_iter()
        .map(|info| {
            let info = info.map_err(from_repo)?;
            Ok(LogEntry {
                id: info.id.to_string(),
                at: info.flushed_at.to_rfc3339(),
                message: info.message.clone(),
                batch_ids: strings(info.metadata.get("floe_batch_ids")),
                groups: strings(info.metadata.get("floe_groups")),
            })
        })
        .collect()
}

/// Batch ids of the given groups as committed on `main` (absent groups are absent).
pub async fn committed_batches(
    repo: &Repository,
    groups: &[String],
) -> Result<BTreeMap<String, String>> {
    Ok(committed(repo, groups)
        .await?
        .into_iter()
        .map(|(g, c)| (g, c.batch_id))
        .collect())
}

/// A group as the store holds it: the batch it was built from, and the
/// variables left out of it (a partial group when there are any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedGroup {
    /// Its `floe_batch_id`.
    pub batch_id: String,
    /// Its `floe_warnings`, without the variables kept on their own time axis.
    pub left_out: Vec<floe_wire::VariableWarning>,
}

/// [`committed_batches`], with each group's left-out variables.
pub async fn committed(
    repo: &Repository,
    groups: &[String],
) -> Result<BTreeMap<String, CommittedGroup>> {
    let session = repo
        .readonly_session(&VersionInfo::BranchTipRef(BRANCH.into()))
        .await
        .map_err(from_repo)?;
    let store = Store::from_session(Arc::new(RwLock::new(session))).await;
    let mut out = BTreeMap::new();
    for g in groups {
        if let Some(attrs) = crate::write::group_attributes(&store, g).await? {
            if let Some(id) = attrs.get("floe_batch_id").and_then(Value::as_str) {
                let group = CommittedGroup {
                    batch_id: id.to_string(),
                    left_out: floe_wire::VariableWarning::left_out_of(&attrs),
                };
                out.insert(g.clone(), group);
            }
        }
    }
    Ok(out)
}

/// What an append needs of a stored group: the batch it holds, its inputs
/// with their identities, and the units of its coordinate along the dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSeries {
    /// Its `floe_batch_id`.
    pub batch_id: String,
    /// Its recorded inputs (`None`: recorded without identities, before appends).
    pub inputs: Option<Vec<floe_wire::SourceFile>>,
    /// The `units` attribute of its `dimension` array.
    pub units: Option<String>,
}

/// The stored state of `group` on `main`, for planning an append along `dimension`.
pub async fn stored_series(
    repo: &Repository,
    group: &str,
    dimension: &str,
) -> Result<Option<StoredSeries>> {
    let session = repo
        .readonly_session(&VersionInfo::BranchTipRef(BRANCH.into()))
        .await
        .map_err(from_repo)?;
    let store = Store::from_session(Arc::new(RwLock::new(session))).await;
    let Some(attrs) = crate::write::group_attributes(&store, group).await? else {
        return Ok(None);
    };
    let Some(batch_id) = attrs.get("floe_batch_id").and_then(Value::as_str) else {
        return Ok(None);
    };
    // A group concatenated along its files' unlimited dimension names it.
    let dimension = match attrs.get(floe_wire::CONCAT_DIMENSION_ATTRIBUTE) {
        Some(Value::String(named)) if dimension == floe_wire::UNLIMITED_DIMENSION => named.as_str(),
        _ => dimension,
    };
    let units = crate::write::group_attributes(&store, &format!("{group}/{dimension}"))
        .await
        .ok()
        .flatten()
        .and_then(|a| a.get("units").and_then(Value::as_str).map(str::to_string));
    Ok(Some(StoredSeries {
        batch_id: batch_id.to_string(),
        inputs: crate::write::recorded_inputs(&store, group).await?,
        units,
    }))
}
