//! `committer worker` and `committer lambda`: the results queue into commits.

use std::process::ExitCode;
use std::sync::Arc;

use floe_fleet::records::Records;
use floe_fleet::worker::WorkerSettings;
use floe_fleet::FleetArgs;
use floe_store::{CloudSettings, CommitPolicy, Committer, StoreLocation};

use crate::handler::CommitterHandler;

/// The worker (with settings) or the Lambda entry point (without).
pub async fn run(fleet: FleetArgs, worker: Option<WorkerSettings>) -> anyhow::Result<ExitCode> {
    let config = fleet.resolve().await?;
    let location = StoreLocation::parse(config.require_store()?)?;
    if let Some(settings) = &worker {
        anyhow::ensure!(
            settings.concurrency.unwrap_or(1) <= 1 || !matches!(location, StoreLocation::Local(_)),
            "--concurrency {} on a local-filesystem store: concurrent commits are only safe on object storage; use --concurrency 1",
            settings.concurrency.unwrap_or(1)
        );
    }
    let options = config.source_options()?;
    let prefix = floe_store::location::container_prefix(&floe_source::normalize_url(
        config.require_source()?,
    ));
    let repo =
        floe_store::open_repository(&location, &CloudSettings::for_source(&options), &[prefix])
            .await?;
    let records = config
        .fragments_url
        .as_deref()
        .map(|f| Records::new(f, options.clone()));
    let client = floe_fleet::sqs::client().await;
    let replan = config
        .events_queue_url
        .clone()
        .map(|url| floe_fleet::sqs::Queue::new(client.clone(), url));
    let handler = Arc::new(
        CommitterHandler::new(
            Committer::new(repo, CommitPolicy::default()),
            options,
            records,
        )
        .with_replan(replan),
    );
    let worker = match worker {
        Some(mut settings) => {
            // Idle only when the virtualizers have nothing left either.
            settings
                .upstream_queues
                .extend(config.work_queue_url.clone());
            let results = floe_fleet::sqs::Queue::new(client, config.require_results_queue()?);
            Some((results, settings))
        }
        None => None,
    };
    floe_fleet::entry::serve("committer", handler, worker).await?;
    Ok(ExitCode::SUCCESS)
}
