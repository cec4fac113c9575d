//! The worker: a long-polling SQS loop with the semantics of Lambda's SQS
//! event source mapping, for machines and clusters without Lambda (and for
//! LocalStack, whose Lambda needs Docker).
//!
//! - a batch is up to `batch_size` messages gathered for at most
//!   `batching_window` after the first one arrives;
//! - received messages stay invisible for `visibility_timeout`, extended every
//!   third of the timeout while the handler works, so long batches are not delivered twice;
//! - only messages the handler reports as done are deleted; failed ones come back
//!   after the timeout (at once when the input is bad), and the queue's redrive
//!   policy moves them to the dead-letter queue after its receive count;
//! - SIGTERM or Ctrl-C stops receiving; the batch in hand is finished and acknowledged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::handler::{BatchHandler, Message};
use crate::sqs::{with_retries, Queue, QueueError, Received};

/// How the worker batches and holds messages.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerSettings {
    /// Messages per handler call (Lambda's BatchSize) [default: the program's: the
    /// virtualizer takes 1, so that a group's shards spread over every worker; the
    /// committer 10].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Longest wait, in seconds, to fill a batch once its first message arrived
    /// (Lambda's MaximumBatchingWindowInSeconds).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub batching_window: u64,
    /// Seconds a received message stays invisible to other workers; extended while it is worked on.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub visibility_timeout: u64,
    /// Long-poll wait of each receive, in seconds (at most 20).
    #[arg(long, default_value_t = 20, value_name = "SECONDS")]
    pub poll_wait: u64,
    /// Exit after this many seconds of an idle pipeline (default: run until SIGTERM). Idle
    /// means: no message received, none in flight or delayed on this queue, and (for the
    /// committer) the work queue upstream empty too, so a committer started with the
    /// virtualizers waits for their results instead of leaving before the first one.
    #[arg(long, value_name = "SECONDS")]
    pub exit_when_idle: Option<u64>,
    /// Independent receive-and-handle loops in this process [default: the program's:
    /// the virtualizer runs 4 (each takes a message only when it is free), the committer 1].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Queues upstream of this one that must be empty (nothing visible, in flight or
    /// delayed) for the pipeline to count as idle; set by the program, not a flag.
    #[arg(skip)]
    pub upstream_queues: Vec<String>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            batch_size: None,
            batching_window: 0,
            visibility_timeout: 120,
            poll_wait: 20,
            exit_when_idle: None,
            concurrency: None,
            upstream_queues: Vec::new(),
        }
    }
}

impl WorkerSettings {
    /// The program's defaults where no flag was given.
    pub fn or_defaults(mut self, batch_size: usize, concurrency: usize) -> Self {
        self.batch_size.get_or_insert(batch_size);
        self.concurrency.get_or_insert(concurrency);
        self
    }

    fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(10).max(1)
    }

    fn loops(&self) -> usize {
        self.concurrency.unwrap_or(1).max(1)
    }
}

/// What a worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkerStats {
    /// Batches handled.
    pub batches: u64,
    /// Messages received.
    pub received: u64,
    /// Messages done and deleted.
    pub succeeded: u64,
    /// Messages failed and left for redelivery.
    pub failed: u64,
}

impl std::ops::AddAssign for WorkerStats {
    fn add_assign(&mut self, o: Self) {
        self.batches += o.batches;
        self.received += o.received;
        self.succeeded += o.succeeded;
        self.failed += o.failed;
    }
}

/// A flag that turns true on SIGTERM or Ctrl-C.
pub fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        let _ = tx.send(true);
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested: finishing the batch in hand");
        let _ = tx.send(true);
    });
    rx
}

/// Runs `settings.concurrency` loops until shutdown or idleness.
pub async fn run<H: BatchHandler>(
    queue: Queue,
    handler: Arc<H>,
    settings: WorkerSettings,
    shutdown: watch::Receiver<bool>,
) -> Result<WorkerStats, QueueError> {
    let mut loops = tokio::task::JoinSet::new();
    for slot in 0..settings.loops() {
        let (queue, handler, settings, shutdown) = (
            queue.clone(),
            handler.clone(),
            settings.clone(),
            shutdown.clone(),
        );
        loops.spawn(async move { run_loop(slot, queue, handler, settings, shutdown).await });
    }
    let mut total = WorkerStats::default();
    let mut first_error = None;
    while let Some(joined) = loops.join_next().await {
        match joined {
            Ok(Ok(stats)) => total += stats,
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => tracing::error!(error = %e, "worker loop panicked"),
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

async fn run_loop<H: BatchHandler>(
    slot: usize,
    queue: Queue,
    handler: Arc<H>,
    settings: WorkerSettings,
    mut shutdown: watch::Receiver<bool>,
) -> Result<WorkerStats, QueueError> {
    let mut stats = WorkerStats::default();
    let mut idle_since = Instant::now();
    let mut receive_errors = 0u32;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let batch = tokio::select! {
            batch = collect(&queue, &settings) => batch,
            _ = shutdown.changed() => break,
        };
        let batch = match batch {
            Ok(b) => {
                receive_errors = 0;
                b
            }
            Err(e) => {
                receive_errors += 1;
                if receive_errors >= 5 {
                    return Err(e);
                }
                tracing::warn!(slot, error = %e, "receive failed, retrying");
                tokio::time::sleep(Duration::from_secs(u64::from(receive_errors))).await;
                continue;
            }
        };
        if batch.is_empty() {
            if let Some(limit) = settings.exit_when_idle {
                if !pipeline_idle(&queue, &settings.upstream_queues).await {
                    idle_since = Instant::now();
                } else if idle_since.elapsed() >= Duration::from_secs(limit) {
                    tracing::info!(slot, "idle, exiting");
                    break;
                }
            }
            continue;
        }
        stats += handle_batch(&queue, handler.as_ref(), &settings, batch).await;
        idle_since = Instant::now();
    }
    Ok(stats)
}

/// Whether nothing is waiting, in flight or delayed on this queue and on every
/// upstream queue. A queue that cannot be read counts as busy: leaving early is
/// the failure this guards against.
async fn pipeline_idle(queue: &Queue, upstream: &[String]) -> bool {
    if !queue.depth().await.is_ok_and(|d| d.total() == 0) {
        return false;
    }
    for url in upstream {
        let upstream = Queue::new(queue.client().clone(), url.clone());
        if !upstream.depth().await.is_ok_and(|d| d.total() == 0) {
            return false;
        }
    }
    true
}

/// Gathers one batch: waits up to the long-poll time for a first message, then
/// fills the batch for at most the batching window.
async fn collect(queue: &Queue, settings: &WorkerSettings) -> Result<Vec<Received>, QueueError> {
    let visibility = Duration::from_secs(settings.visibility_timeout);
    let batch_size = settings.batch_size();
    let first = queue
        .receive(
            batch_size,
            Duration::from_secs(settings.poll_wait.min(20)),
            visibility,
        )
        .await?;
    if first.is_empty() {
        return Ok(first);
    }
    let window_end = Instant::now() + Duration::from_secs(settings.batching_window);
    let mut batch = first;
    while batch.len() < batch_size {
        let left = window_end.saturating_duration_since(Instant::now());
        if left < Duration::from_secs(1) {
            break;
        }
        let more = queue
            .receive(
                batch_size - batch.len(),
                left.min(Duration::from_secs(20)),
                visibility,
            )
            .await?;
        batch.extend(more);
    }
    Ok(batch)
}

async fn handle_batch<H: BatchHandler>(
    queue: &Queue,
    handler: &H,
    settings: &WorkerSettings,
    batch: Vec<Received>,
) -> WorkerStats {
    let visibility = Duration::from_secs(settings.visibility_timeout.max(1));
    tracing::info!(queue = %queue.url(), messages = batch.len(), "received a batch");
    // Keep the batch invisible while it is worked on.
    let heartbeat = tokio::spawn(keep_invisible(queue.clone(), batch.clone(), visibility));
    let messages: Vec<Message> = batch.iter().map(|r| r.message.clone()).collect();
    let outcome = handler.handle(messages).await;
    heartbeat.abort();

    let (done, failed): (Vec<&Received>, Vec<&Received>) =
        batch.iter().partition(|r| outcome.succeeded(&r.message.id));
    for f in &outcome.failures {
        tracing::warn!(message = %f.id, permanent = f.permanent, reason = %f.reason, "message failed");
    }
    match with_retries(|| queue.delete(&done)).await {
        Ok(not_deleted) if !not_deleted.is_empty() => {
            tracing::warn!(
                ?not_deleted,
                "not deleted; they will be delivered again (harmless: handlers are idempotent)"
            )
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "delete failed; the batch will be delivered again (harmless: handlers are idempotent)")
        }
    }
    let permanent: Vec<&Received> = failed
        .iter()
        .copied()
        .filter(|r| {
            outcome
                .failures
                .iter()
                .any(|f| f.id == r.message.id && f.permanent)
        })
        .collect();
    if !permanent.is_empty() {
        warn_unless_changed(
            queue.set_visibility(&permanent, Duration::ZERO).await,
            "could not hand failed messages back early",
        );
    }
    WorkerStats {
        batches: 1,
        received: batch.len() as u64,
        succeeded: done.len() as u64,
        failed: failed.len() as u64,
    }
}

/// Extends the batch's visibility every third of the timeout, on a fixed cadence:
/// each extension is its own task, so a slow call (seconds, on a loaded
/// LocalStack) neither delays the next one nor lets the timeout lapse while it
/// hangs. Two extensions can then fail or lag before a message reappears to
/// another consumer. A refused or failed extension is a warning naming the
/// messages: after it, a message may be delivered twice (harmless, handlers are
/// idempotent, but it counts towards the dead-letter receive count).
async fn keep_invisible(queue: Queue, batch: Vec<Received>, visibility: Duration) {
    const MAX_EXTENSIONS_IN_FLIGHT: usize = 3;
    let period = (visibility / 3).max(Duration::from_secs(1));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let batch = std::sync::Arc::new(batch);
    // Dropped (and its calls aborted) when the handler is done and this task is aborted.
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        ticks.tick().await;
        while in_flight.try_join_next().is_some() {}
        if in_flight.len() >= MAX_EXTENSIONS_IN_FLIGHT {
            // The queue is not answering: more calls would only add to its load.
            tracing::warn!(
                in_flight = in_flight.len(),
                "visibility extensions are not being answered; skipping one"
            );
            continue;
        }
        let (queue, batch) = (queue.clone(), batch.clone());
        in_flight.spawn(async move {
            let refs: Vec<&Received> = batch.iter().collect();
            let started = Instant::now();
            warn_unless_changed(
                queue.set_visibility(&refs, visibility).await,
                "could not extend the visibility timeout; these messages may be delivered again",
            );
            let took = started.elapsed();
            if took > period {
                tracing::warn!(
                    took_ms = took.as_millis() as u64,
                    period_ms = period.as_millis() as u64,
                    "visibility extension slower than its period; raise --visibility-timeout"
                );
            }
        });
    }
}

/// Warns when a visibility change failed, or the queue refused some of its entries
/// (named by message id and the queue's reason).
fn warn_unless_changed(result: Result<Vec<String>, QueueError>, what: &str) {
    match result {
        Ok(refused) if !refused.is_empty() => tracing::warn!(?refused, "{what}"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "{what}"),
    }
}
