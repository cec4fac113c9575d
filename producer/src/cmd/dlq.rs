//! `producer dlq list|redrive`: what failed and why; send it back once fixed.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use floe_fleet::records::{failure_key, Records, Stage};
use floe_fleet::sqs::{Queue, Received};
use floe_fleet::{FleetArgs, FleetConfig};
use floe_wire::{decode_message, BatchDescriptor, ResultMessage};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// `dlq` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DlqCommand {
    /// The messages in the dead-letter queues, with group, batch id, receive count and the
    /// recorded failure reason. Messages are only looked at: they stay in the queue.
    List {
        /// Where the fleet is (config file, stack, environment, flags).
        #[command(flatten)]
        fleet: FleetArgs,
        /// Only this queue's DLQ.
        #[arg(long, value_enum)]
        queue: Option<Stage>,
        /// At most this many messages per queue.
        #[arg(long, default_value_t = 1000)]
        max: usize,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Move the messages of a DLQ back to its source queue (SQS StartMessageMoveTask).
    Redrive {
        /// Where the fleet is (config file, stack, environment, flags).
        #[command(flatten)]
        fleet: FleetArgs,
        /// Which queue's DLQ.
        #[arg(long, value_enum, default_value = "work")]
        queue: Stage,
        /// Move messages by receive/send/delete instead of StartMessageMoveTask (for
        /// SQS-compatible services without the API).
        #[arg(long)]
        manual: bool,
    },
}

/// One dead letter.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// work or results.
    pub queue: Stage,
    /// SQS message id.
    pub message_id: String,
    /// Group, when the body names one.
    pub group: Option<String>,
    /// Batch id, when the body carries one.
    pub batch_id: Option<String>,
    /// Deliveries so far.
    pub receive_count: u32,
    /// The recorded reason, or why there is none.
    pub reason: String,
    /// The file at fault, when known.
    pub file: Option<String>,
}

fn dlq_url(config: &FleetConfig, stage: Stage) -> Result<String> {
    Ok(match stage {
        Stage::Work => config.require_work_dlq()?,
        Stage::Results => config.require_results_dlq()?,
        Stage::Events => config.require_events_dlq()?,
    }
    .to_string())
}

/// Receives every message of a queue once (without deleting) and hands them back.
async fn peek(queue: &Queue, max: usize) -> Result<Vec<Received>> {
    let mut seen: BTreeMap<String, Received> = BTreeMap::new();
    let mut held: Vec<Received> = Vec::new();
    let mut empty_polls = 0;
    while seen.len() < max && empty_polls < 2 {
        let got = queue
            .receive(10, Duration::from_secs(1), Duration::from_secs(30))
            .await?;
        if got.is_empty() {
            empty_polls += 1;
        }
        for r in got {
            held.push(r.clone());
            seen.entry(r.message.id.clone()).or_insert(r);
        }
    }
    let refs: Vec<&Received> = held.iter().collect();
    let not_released = queue.set_visibility(&refs, Duration::ZERO).await?;
    if !not_released.is_empty() {
        tracing::warn!(
            ?not_released,
            "dead letters not handed back at once; they reappear after their visibility timeout"
        );
    }
    Ok(seen.into_values().collect())
}

/// Lists dead letters.
pub async fn list(
    config: &FleetConfig,
    only: Option<Stage>,
    max: usize,
) -> Result<Vec<DeadLetter>> {
    let client = floe_fleet::sqs::client().await;
    let options = config.source_options()?;
    let records = config
        .fragments_url
        .as_deref()
        .map(|f| Records::new(f, options.clone()));
    let mut out = Vec::new();
    for stage in [Stage::Work, Stage::Results, Stage::Events] {
        if only.is_some_and(|o| o != stage) {
            continue;
        }
        // A fleet without `producer watch` has no events queue.
        if stage == Stage::Events && only.is_none() && config.events_dlq_url.is_none() {
            continue;
        }
        let queue = Queue::new(client.clone(), dlq_url(config, stage)?);
        for r in peek(&queue, max).await? {
            let (group, batch_id) = match stage {
                Stage::Work => decode_message::<BatchDescriptor>(&r.message.body)
                    .map(|b| (Some(b.group.group_path()), Some(b.batch_id)))
                    .unwrap_or((None, None)),
                Stage::Results => decode_message::<ResultMessage>(&r.message.body)
                    .map(|m| (Some(m.group_path), Some(m.batch_id)))
                    .unwrap_or((None, None)),
                Stage::Events => (None, None),
            };
            let key = failure_key(batch_id.as_deref(), &r.message.id);
            let record = match &records {
                Some(records) => records.failure(stage, &key).await?,
                None => None,
            };
            let (reason, file) = match record {
                Some(rec) => (rec.reason, rec.file),
                None => (
                    "no failure recorded (the consumer may have timed out or crashed)".to_string(),
                    None,
                ),
            };
            out.push(DeadLetter {
                queue: stage,
                message_id: r.message.id,
                group,
                batch_id,
                receive_count: r.message.receive_count,
                reason,
                file,
            });
        }
    }
    Ok(out)
}

/// The readable table.
pub fn render(letters: &[DeadLetter]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if letters.is_empty() {
        let _ = writeln!(s, "dead-letter queues are empty");
        return s;
    }
    for d in letters {
        let _ = writeln!(
            s,
            "{:<8} {:<36} batch {:<16} receives {:>3}\n         {}",
            d.queue.as_str(),
            d.group.as_deref().unwrap_or(match d.queue {
                Stage::Events => "(notification)",
                _ => "(unparseable message)",
            }),
            d.batch_id
                .as_deref()
                .map(|b| &b[..b.len().min(16)])
                .unwrap_or(&d.message_id),
            d.receive_count,
            d.reason
        );
    }
    let _ = writeln!(
        s,
        "{} message(s); after fixing the cause: producer dlq redrive --queue work|results|events",
        letters.len()
    );
    s
}

/// The partial groups, as `dlq list` shows them after the dead letters.
pub fn render_partial(partial: &[super::status::PartialGroup]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if partial.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\n{} partial group(s): committed without these variables (not in any DLQ; fix the file, then enqueue again):",
        partial.len()
    );
    for line in super::status::PartialGroup::lines(partial) {
        let _ = writeln!(s, "  {line}");
    }
    s
}

/// Moves a DLQ back to its source queue; returns the number of messages moved.
pub async fn redrive(config: &FleetConfig, stage: Stage, manual: bool) -> Result<u64> {
    let client = floe_fleet::sqs::client().await;
    let dlq = Queue::new(client.clone(), dlq_url(config, stage)?);
    let source_url = match stage {
        Stage::Work => config.require_work_queue()?,
        Stage::Results => config.require_results_queue()?,
        Stage::Events => config.require_events_queue()?,
    };
    let source = Queue::new(client.clone(), source_url);
    let bar = ProgressBar::new(dlq.depth().await?.total());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} messages moved",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if manual {
        let mut moved = 0u64;
        loop {
            let got = dlq
                .receive(10, Duration::from_secs(1), Duration::from_secs(60))
                .await?;
            if got.is_empty() {
                break;
            }
            let bodies: Vec<String> = got.iter().map(|r| r.message.body.clone()).collect();
            source.send_all(&bodies, |_| {}).await?;
            let refs: Vec<&Received> = got.iter().collect();
            dlq.delete(&refs).await?;
            moved += got.len() as u64;
            bar.set_position(moved);
        }
        bar.finish_and_clear();
        return Ok(moved);
    }
    let arn = dlq.arn().await?;
    let task = client
        .start_message_move_task()
        .source_arn(&arn)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "StartMessageMoveTask on {arn}: {} (use --manual where the API is missing)",
                floe_fleet::aws::error_text(&e)
            )
        })?;
    tracing::info!(task = ?task.task_handle(), "message move task started");
    loop {
        let tasks = client
            .list_message_move_tasks()
            .source_arn(&arn)
            .max_results(1)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "ListMessageMoveTasks on {arn}: {}",
                    floe_fleet::aws::error_text(&e)
                )
            })?;
        if let Some(t) = tasks.results().first() {
            if let Some(total) = t.approximate_number_of_messages_to_move() {
                bar.set_length(total as u64);
            }
            bar.set_position(t.approximate_number_of_messages_moved() as u64);
            match t.status() {
                Some("COMPLETED") => {
                    bar.finish_and_clear();
                    return Ok(t.approximate_number_of_messages_moved() as u64);
                }
                Some(s @ ("FAILED" | "CANCELLED")) => {
                    anyhow::bail!(
                        "message move task {s}: {}",
                        t.failure_reason().unwrap_or("no reason given")
                    )
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
