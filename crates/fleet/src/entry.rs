//! What both queue consumers' `main` does: serve a handler as a Lambda function or as a worker.

use std::sync::Arc;

use crate::handler::BatchHandler;
use crate::sqs::Queue;
use crate::worker::{self, WorkerSettings};

/// Whether the Lambda service started this process: the runtime API is set and
/// no arguments were given (a `provided.al2023` bootstrap is started bare).
pub fn started_by_lambda() -> bool {
    std::env::args_os().len() == 1 && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Serves Lambda invocations (`worker` is `None`) or runs a worker on a queue until
/// SIGTERM or idleness, then reports what it did on stderr.
pub async fn serve<H: BatchHandler>(
    program: &str,
    handler: Arc<H>,
    worker: Option<(Queue, WorkerSettings)>,
) -> anyhow::Result<()> {
    match worker {
        None => crate::lambda::run(handler)
            .await
            .map_err(|e| anyhow::anyhow!("lambda runtime: {e}")),
        Some((queue, settings)) => {
            let stats =
                worker::run(queue, handler, settings, worker::shutdown_on_signals()).await?;
            eprintln!(
                "{program} worker: {} batch(es), {} message(s): {} done, {} failed",
                stats.batches, stats.received, stats.succeeded, stats.failed
            );
            Ok(())
        }
    }
}
