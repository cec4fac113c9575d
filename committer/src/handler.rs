//! The committer's message handler, shared by the worker and the Lambda entry
//! point: result messages → fragments fetched and verified → one coalesced
//! commit. A bad message or fragment fails alone (reason recorded under
//! `failures/results/`); a store that cannot be written fails the whole batch
//! for redelivery, and nothing is acknowledged before the commit is durable.

use floe_fleet::records::{failure_key, failure_record, message_key, Records, Stage};
use floe_fleet::{BatchHandler, BatchOutcome, Message, MessageFailure};
use floe_source::{Source, SourceError, SourceOptions};
use floe_store::Committer;
use floe_wire::{decode_message, ResultMessage};
use futures::StreamExt;

use crate::{apply, FragmentInput};

/// Fragments fetched at the same time.
pub const FETCH_CONCURRENCY: usize = 16;

/// The committer's handler.
pub struct CommitterHandler {
    committer: Committer,
    options: SourceOptions,
    records: Option<Records>,
    replan: Option<floe_fleet::sqs::Queue>,
}

enum Fetched {
    Ready(FragmentInput, ResultMessage),
    Failed(MessageFailure, String, String),
}

impl CommitterHandler {
    /// Commits through `committer`, reads fragments with `options`, records
    /// failure reasons in `records` when given.
    pub fn new(committer: Committer, options: SourceOptions, records: Option<Records>) -> Self {
        CommitterHandler {
            committer,
            options,
            records,
            replan: None,
        }
    }

    /// Asks the planner (`producer watch`, on `events`) to plan a group again
    /// when its append is refused: the refusal is recorded first, so the
    /// planner rebuilds the group instead of waiting for the next notification,
    /// and the refused result is acknowledged rather than dead-lettered.
    pub fn with_replan(mut self, events: Option<floe_fleet::sqs::Queue>) -> Self {
        self.replan = events;
        self
    }

    async fn record(&self, key: &str, group: &str, reason: &str, retryable: bool) {
        if let Some(records) = &self.records {
            let record = failure_record(key, group, None, reason, retryable);
            if let Err(e) = records.put_failure(Stage::Results, &record).await {
                tracing::warn!(error = %e, batch = key, "could not record the failure reason");
            }
        }
    }

    /// Asks the planner to plan `group` again; whether it was asked (an events
    /// queue is configured, the reason could be recorded, and the request was sent).
    async fn ask_to_replan(&self, group: &str, reason: &str) -> bool {
        let (Some(events), Some(_)) = (&self.replan, &self.records) else {
            return false;
        };
        let body = floe_fleet::events::replan_body(group, reason);
        match events.send_all(&[body], |_| {}).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, group, "could not ask the planner to plan the group again");
                false
            }
        }
    }

    /// Whether a result message may be used: valid names and digest, and (with a
    /// fragments prefix configured) the one fragment URL its batch and digest give.
    fn check(&self, result: &ResultMessage) -> Result<(), String> {
        result.validate()?;
        let Some(records) = &self.records else {
            return Ok(());
        };
        let expected = records
            .fragment_url(&result.batch_id, &result.fragment_sha256)
            .map_err(|e| e.to_string())?;
        if result.fragment_url != expected {
            return Err(format!(
                "fragment_url {} is not where this fleet keeps the fragment of batch {} ({expected})",
                floe_wire::bounded(&result.fragment_url, 200),
                result.batch_id
            ));
        }
        Ok(())
    }

    async fn fetch(&self, message: &Message) -> Fetched {
        let failed = |reason: String, permanent: bool, key: String, group: String| {
            Fetched::Failed(
                MessageFailure {
                    id: message.id.clone(),
                    reason,
                    permanent,
                },
                key,
                group,
            )
        };
        let result: ResultMessage = match decode_message(&message.body) {
            Ok(r) => r,
            Err(e) => {
                return failed(
                    format!("malformed result message: {e}"),
                    true,
                    message_key(&message.id),
                    String::new(),
                )
            }
        };
        // Nothing a message names is used before it is checked: its names by floe's
        // rules, and its fragment where this fleet's virtualizers write fragments.
        if let Err(reason) = self.check(&result) {
            return failed(
                format!("refused result message: {reason}"),
                true,
                failure_key(Some(&result.batch_id), &message.id),
                String::new(),
            );
        }
        let bytes = match Source::resolve(&result.fragment_url, &self.options) {
            Err(e) => Err((e.to_string(), true)),
            Ok(source) => source.read_all().await.map_err(|e| {
                let permanent = matches!(e, SourceError::NotFound { .. });
                (e.to_string(), permanent)
            }),
        };
        match bytes {
            Ok(bytes) => Fetched::Ready(
                FragmentInput {
                    id: message.id.clone(),
                    bytes: Ok(bytes.to_vec()),
                    sha256: Some(result.fragment_sha256.clone()),
                },
                result,
            ),
            // A fragment that is gone stays gone: permanent, named.
            Err((reason, true)) => Fetched::Ready(
                FragmentInput {
                    id: message.id.clone(),
                    bytes: Err(reason),
                    sha256: None,
                },
                result,
            ),
            Err((reason, false)) => failed(
                format!("fetching fragment {}: {reason}", result.fragment_url),
                false,
                result.batch_id.clone(),
                result.group_path.clone(),
            ),
        }
    }
}

impl BatchHandler for CommitterHandler {
    async fn handle(&self, messages: Vec<Message>) -> BatchOutcome {
        let fetched: Vec<Fetched> = futures::stream::iter(messages)
            .map(|m| async move { self.fetch(&m).await })
            .buffered(FETCH_CONCURRENCY)
            .collect()
            .await;
        let mut outcome = BatchOutcome::default();
        let mut inputs = Vec::new();
        let mut results = std::collections::HashMap::new();
        for f in fetched {
            match f {
                Fetched::Ready(input, result) => {
                    results.insert(input.id.clone(), result);
                    inputs.push(input);
                }
                Fetched::Failed(failure, key, group) => {
                    self.record(&key, &group, &failure.reason, !failure.permanent)
                        .await;
                    outcome.failures.push(failure);
                }
            }
        }
        if inputs.is_empty() {
            return outcome;
        }
        let ids: Vec<String> = inputs.iter().map(|i| i.id.clone()).collect();
        match apply(&self.committer, inputs).await {
            Ok(report) => {
                tracing::info!(
                    snapshot = report.snapshot.as_deref().unwrap_or("(none)"),
                    written = report.written.len(),
                    skipped = report.skipped.len(),
                    failed = report.failed.len(),
                    attempts = report.attempts,
                    "committed"
                );
                let refused = report.refused.into_iter().map(|(id, reason)| {
                    (
                        id,
                        format!(
                            "append refused: {reason}; `producer enqueue` plans the group again"
                        ),
                    )
                });
                for (id, reason) in report.failed.into_iter().chain(refused) {
                    let (key, group) = results
                        .get(&id)
                        .map(|r| (r.batch_id.clone(), r.group_path.clone()))
                        .unwrap_or_else(|| (message_key(&id), String::new()));
                    self.record(&key, &group, &reason, false).await;
                    if reason.starts_with("append refused")
                        && self.ask_to_replan(&group, &reason).await
                    {
                        // Not a bad input but a plan gone stale: the planner, told so
                        // (the reason recorded first), rebuilds the group. Acknowledged.
                        tracing::info!(group = %group, %reason, "append refused; the planner plans the group again");
                        continue;
                    }
                    outcome.failures.push(MessageFailure {
                        id,
                        reason,
                        permanent: true,
                    });
                }
                if let Some(records) = &self.records {
                    // One request per group on every commit: sent side by side.
                    let done = report
                        .written
                        .iter()
                        .chain(report.skipped.iter().map(|(id, _)| id))
                        .filter_map(|id| results.get(id));
                    futures::stream::iter(done)
                        .for_each_concurrent(FETCH_CONCURRENCY, |r| async move {
                            if let Err(e) = records.clear_failure(Stage::Results, &r.batch_id).await
                            {
                                tracing::warn!(error = %e, "could not clear an earlier failure record");
                            }
                        })
                        .await;
                }
            }
            Err(e) => {
                // Nothing was committed: every message comes back. The reason is
                // recorded (as retryable) so that a message that dead-letters after
                // repeated store failures is listed with why.
                let reason = format!("commit failed: {e}");
                tracing::warn!(error = %e, messages = ids.len(), "commit failed; the batch will be delivered again");
                let failed = ids.iter().filter_map(|id| results.get(id));
                futures::stream::iter(failed)
                    .for_each_concurrent(FETCH_CONCURRENCY, |r| {
                        self.record(&r.batch_id, &r.group_path, &reason, true)
                    })
                    .await;
                for id in ids {
                    outcome.failures.push(MessageFailure {
                        id,
                        reason: reason.clone(),
                        permanent: false,
                    });
                }
            }
        }
        outcome
    }
}
