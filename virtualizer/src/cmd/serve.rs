//! `virtualizer worker` and `virtualizer lambda`: the work queue into fragments and results.

use std::process::ExitCode;
use std::sync::Arc;

use floe_fleet::records::Records;
use floe_fleet::sqs::Queue;
use floe_fleet::worker::WorkerSettings;
use floe_fleet::FleetArgs;

use crate::handler::VirtualizerHandler;

/// The worker (with settings) or the Lambda entry point (without).
pub async fn run(fleet: FleetArgs, worker: Option<WorkerSettings>) -> anyhow::Result<ExitCode> {
    let config = fleet.resolve().await?;
    let options = config.source_options()?;
    let records = Records::new(config.require_fragments()?, options.clone());
    let client = floe_fleet::sqs::client().await;
    let results = Queue::new(client.clone(), config.require_results_queue()?);
    if config.source_url.is_none() {
        tracing::warn!("no source configured (FLOE_SOURCE_URL, floe.toml's source_url): this virtualizer reads any URL a work message names");
    }
    let handler = Arc::new(VirtualizerHandler::new(
        options,
        records,
        results,
        config.source_url.clone(),
    ));
    let worker = match worker {
        Some(settings) => Some((Queue::new(client, config.require_work_queue()?), settings)),
        None => None,
    };
    floe_fleet::entry::serve("virtualizer", handler, worker).await?;
    Ok(ExitCode::SUCCESS)
}
