//! The virtualizer's message handler, shared by the worker and the Lambda
//! entry point: batch descriptor → group fragment in object storage → result
//! message on the results queue. A batch fails alone, with its reason recorded
//! under `failures/work/` for `producer dlq list`.

use floe_fleet::records::{failure_key, failure_record, Records, Stage};
use floe_fleet::sqs::Queue;
use floe_fleet::{BatchHandler, BatchOutcome, Message, MessageFailure};
use floe_source::SourceOptions;
use floe_wire::{decode_message, BatchDescriptor, ResultMessage, SCHEMA_VERSION};
use futures::StreamExt;
use tracing::Instrument;

use crate::batch::virtualize_batch_counted;
use crate::shard::{virtualize_shard, ShardOutcome};

/// Batches of one SQS batch virtualized at the same time.
pub const BATCH_CONCURRENCY: usize = 4;

/// The virtualizer's handler.
pub struct VirtualizerHandler {
    options: SourceOptions,
    records: Records,
    results: Queue,
    /// The source this fleet indexes: a batch naming a file outside it is
    /// refused before anything is opened. `None`: none configured, any URL.
    source: Option<String>,
}

impl VirtualizerHandler {
    /// Reads sources with `options`, writes fragments and failure records to
    /// `records`, posts result messages on `results`.
    /// Reads only under `source` when one is given ([`floe_source::within`]).
    pub fn new(
        options: SourceOptions,
        records: Records,
        results: Queue,
        source: Option<String>,
    ) -> Self {
        VirtualizerHandler {
            options,
            records,
            results,
            source,
        }
    }

    async fn fail(
        &self,
        message: &Message,
        key: &str,
        group: &str,
        file: Option<String>,
        reason: String,
        retryable: bool,
    ) -> MessageFailure {
        let record = failure_record(key, group, file, &reason, retryable);
        if let Err(e) = self.records.put_failure(Stage::Work, &record).await {
            tracing::warn!(error = %e, batch = key, "could not record the failure reason");
        }
        MessageFailure {
            id: message.id.clone(),
            reason,
            permanent: !retryable,
        }
    }

    /// One message to the body of its result message; `None` for a shard
    /// stored while other shards of its group are not yet.
    async fn virtualize(&self, message: &Message) -> Result<Option<String>, MessageFailure> {
        let decoded = decode_message::<BatchDescriptor>(&message.body);
        let claimed = decoded.as_ref().ok().map(|b| b.batch_id.clone());
        let batch: BatchDescriptor = match decoded
            .map_err(|e| e.to_string())
            .and_then(|b| b.validate().map(|()| b))
        {
            Ok(b) => b,
            Err(e) => {
                let key = failure_key(claimed.as_deref(), &message.id);
                return Err(self
                    .fail(
                        message,
                        &key,
                        "",
                        None,
                        format!("malformed batch descriptor: {e}"),
                        false,
                    )
                    .await);
            }
        };
        // Instrumented, not entered: a guard held across awaits would tag the
        // log lines of other batches polled on this thread with this group.
        let span = tracing::info_span!("batch", batch = %batch.batch_id, group = %batch.group.group_path());
        self.virtualize_batch(message, batch).instrument(span).await
    }

    /// [`Self::virtualize`] of a decoded, valid descriptor.
    async fn virtualize_batch(
        &self,
        message: &Message,
        batch: BatchDescriptor,
    ) -> Result<Option<String>, MessageFailure> {
        let group = batch.group.group_path();
        if let Some(root) = &self.source {
            if let Some(file) = batch
                .files
                .iter()
                .find(|f| !floe_source::within(root, &f.url))
            {
                let reason = format!(
                    "file {} is outside this fleet's source {root} (FLOE_SOURCE_URL): a virtualizer reads only under its source",
                    floe_wire::bounded(&file.url, 300)
                );
                return Err(self
                    .fail(message, &batch.batch_id, &group, None, reason, false)
                    .await);
            }
        }
        let read = match &batch.shard {
            None => virtualize_batch_counted(&batch, &self.options).await,
            Some(of) => match virtualize_shard(&batch, of, &self.options, &self.records).await {
                Ok((ShardOutcome::Assembled(build), cost)) => Ok((*build, cost)),
                Ok((ShardOutcome::Stored { stored }, cost)) => {
                    tracing::info!(
                        shard = of.index,
                        shards = of.count,
                        stored,
                        files = cost.requests.len(),
                        requests = cost.total_requests(),
                        "stored the shard's scans; the group is assembled when every shard is"
                    );
                    self.clear_failures(&[&batch.batch_id]).await;
                    return Ok(None);
                }
                Err(e) => Err(e),
            },
        };
        let build = match read {
            Ok((build, cost)) => {
                tracing::info!(
                    files = cost.requests.len(),
                    requests = cost.total_requests(),
                    bytes_read = cost.total_bytes(),
                    "read the batch's headers"
                );
                build
            }
            Err(e) => {
                let reason = format!("group {group}: {e}");
                return Err(self
                    .fail(
                        message,
                        &batch.batch_id,
                        &group,
                        e.file.clone(),
                        reason,
                        e.retryable,
                    )
                    .await);
            }
        };
        for w in &build.warnings {
            if w.kept_apart {
                tracing::info!(file = %w.file, variable = %w.variable, reason = %w.reason, "variable kept on its own time axis");
            } else if w.not_carried {
                tracing::info!(file = %w.file, variable = %w.variable, reason = %w.reason, "variable not carried");
            } else {
                tracing::warn!(file = %w.file, variable = %w.variable, reason = %w.reason, "variable left out");
            }
        }
        let bytes = match build.fragment.encode() {
            Ok(b) => b,
            Err(e) => {
                let reason = format!("group {group}: encoding the fragment: {e}");
                return Err(self
                    .fail(message, &batch.batch_id, &group, None, reason, false)
                    .await);
            }
        };
        // The fragment's batch id differs from the message's when the inputs were
        // fixed after planning (see `virtualize_batch`).
        let batch_id = build.fragment.batch_id.clone();
        let (fragment_url, fragment_sha256) =
            match self.records.put_fragment(&batch_id, bytes).await {
                Ok(v) => v,
                Err(e) => {
                    let reason = format!("group {group}: writing the fragment: {e}");
                    return Err(self
                        .fail(message, &batch.batch_id, &group, None, reason, true)
                        .await);
                }
            };
        self.clear_failures(&[&batch.batch_id, &batch_id]).await;
        let result = ResultMessage {
            schema_version: SCHEMA_VERSION,
            batch_id,
            group_path: group,
            fragment_url,
            fragment_sha256,
        };
        serde_json::to_string(&result)
            .map(Some)
            .map_err(|e| MessageFailure {
                id: message.id.clone(),
                reason: e.to_string(),
                permanent: true,
            })
    }

    /// Forgets earlier failures of batches that have now succeeded.
    async fn clear_failures(&self, batch_ids: &[&str]) {
        for id in batch_ids {
            if let Err(e) = self.records.clear_failure(Stage::Work, id).await {
                tracing::warn!(error = %e, "could not clear an earlier failure record");
            }
        }
    }
}

impl BatchHandler for VirtualizerHandler {
    async fn handle(&self, messages: Vec<Message>) -> BatchOutcome {
        let done: Vec<(String, Result<Option<String>, MessageFailure>)> =
            futures::stream::iter(messages)
                .map(|m| async move { (m.id.clone(), self.virtualize(&m).await) })
                .buffer_unordered(BATCH_CONCURRENCY)
                .collect()
                .await;
        let mut outcome = BatchOutcome::default();
        let mut ready_ids = Vec::new();
        let mut bodies = Vec::new();
        for (id, result) in done {
            match result {
                Ok(Some(body)) => {
                    ready_ids.push(id);
                    bodies.push(body);
                }
                Ok(None) => {}
                Err(f) => outcome.failures.push(f),
            }
        }
        // A message is done only once its result is on the results queue.
        if let Err(e) = self.results.send_all(&bodies, |_| {}).await {
            for id in ready_ids {
                outcome.failures.push(MessageFailure {
                    id,
                    reason: format!("posting the result: {e}"),
                    permanent: false,
                });
            }
        }
        outcome
    }
}
