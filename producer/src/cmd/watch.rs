//! `producer watch`: the planner on the events queue, as a worker or a Lambda function.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use floe_fleet::records::Records;
use floe_fleet::sqs::Queue;
use floe_fleet::worker::WorkerSettings;
use floe_fleet::FleetArgs;
use floe_store::{CloudSettings, CommitPolicy, Committer, StoreLocation};

use crate::archive::ProfileArgs;
use crate::watch::{WatchHandler, WatchPolicy};

/// Options of `watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Where the fleet is (config file, stack, environment, flags); needs the events queue.
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// The archive profile and skip list (the same as `enqueue`'s: batch ids depend on it).
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Seconds to gather notifications after the first one, so that a burst (a day's four
    /// files, a thousand uploads) becomes one batch per group (Lambda's batching window).
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub gather: u64,
    /// Most notifications planned together (Lambda's batch size).
    #[arg(long, default_value_t = 1000)]
    pub max_events: usize,
    /// Longest wait, per batch of notifications, for a group's previous batch to reach the
    /// store before planning it again; past it the notifications come back later.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub wait_in_flight: Duration,
    /// A batch sent and not in the store after this long (and not recorded as failed) is
    /// taken as lost, and its group is planned again.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub in_flight_timeout: Duration,
    /// Rebuild changed groups instead of appending to them.
    #[arg(long)]
    pub no_append: bool,
    /// Files per message before a group is sent in shards (as `enqueue --shard-files`).
    #[arg(long, default_value_t = floe_group::shard::DEFAULT_SHARD_FILES)]
    pub shard_files: usize,
    /// Seconds a notification stays invisible while it is planned (the events queue's
    /// visibility timeout, extended while planning lasts).
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub visibility_timeout: u64,
    /// Exit after this many seconds without a notification (default: run until SIGTERM).
    #[arg(long, value_name = "SECONDS")]
    pub exit_when_idle: Option<u64>,
    /// Serve Lambda invocations (the events queue's event source mapping) instead of polling.
    /// What the binary does when the Lambda runtime starts it bare.
    #[arg(long)]
    pub lambda: bool,
}

/// Runs the planner until SIGTERM, idleness, or the Lambda runtime's end.
pub async fn run(args: WatchArgs) -> Result<()> {
    let config = args.fleet.resolve().await?;
    let source = config.require_source()?.to_string();
    let location = StoreLocation::parse(config.require_store()?)?;
    let options = config.source_options()?;
    let records = Records::new(config.require_fragments()?, options.clone());
    let client = floe_fleet::sqs::client().await;
    let work = Queue::new(client.clone(), config.require_work_queue()?);
    let events = Queue::new(client, config.require_events_queue()?);
    let prefix = floe_store::location::container_prefix(&floe_source::normalize_url(&source));
    let repo =
        floe_store::open_repository(&location, &CloudSettings::for_source(&options), &[prefix])
            .await?;
    let handler = Arc::new(WatchHandler::new(
        source,
        options,
        args.profile.load()?,
        config.ice_sheet.clone(),
        Committer::new(repo, CommitPolicy::default()),
        records,
        work,
        WatchPolicy {
            wait_in_flight: args.wait_in_flight,
            in_flight_timeout: args.in_flight_timeout,
            appends: !args.no_append,
            shard_limits: floe_group::shard::ShardLimits {
                max_files: args.shard_files,
                ..Default::default()
            },
        },
    ));
    let worker = (!args.lambda).then(|| {
        let settings = WorkerSettings {
            batch_size: Some(args.max_events),
            batching_window: args.gather,
            visibility_timeout: args.visibility_timeout,
            exit_when_idle: args.exit_when_idle,
            concurrency: Some(1),
            ..WorkerSettings::default()
        };
        (events, settings)
    });
    floe_fleet::entry::serve("producer watch", handler, worker).await
}
