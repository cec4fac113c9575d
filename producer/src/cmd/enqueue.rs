//! `producer enqueue`: plan, prepare the store, send one batch descriptor per
//! group to the work queue.

use anyhow::{Context, Result};
use floe_fleet::records::{EnqueuedPlan, Records};
use floe_fleet::sqs::Queue;
use floe_fleet::FleetArgs;
use floe_store::{CloudSettings, CommitPolicy, Committer, StoreLocation};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::archive::{
    parent_groups, plan_archive, restrict_to_one_ice_sheet, skipped_reasons, GroupFilter,
    ProfileArgs,
};

/// Options of `enqueue`.
#[derive(Debug, Clone, clap::Args)]
pub struct EnqueueArgs {
    /// Where the fleet is (config file, stack, environment, flags).
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Every group of the archive.
    #[arg(long, conflicts_with = "filter", required_unless_present = "filter")]
    pub all: bool,
    /// Only these groups (repeatable): a group path with * globs ('CESM2/ssp585/*'); ISMIP6
    /// groups also as INST/MODEL/EXP and shorter forms (AWI, AWI/PISM1, AWI_PISM1, "*/exp05").
    /// Matching nothing is an error.
    #[arg(long)]
    pub filter: Vec<String>,
    /// Show what would be sent; send nothing, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also send groups already committed from the same inputs. The committer still
    /// acknowledges an identical batch id without writing: use this to re-drive groups
    /// whose messages were lost or purged.
    #[arg(long)]
    pub force: bool,
    /// Rebuild every changed group the store holds instead of appending to it. By default a
    /// group whose inputs are its stored ones, unchanged, plus new files travels as an append
    /// of the new files only (docs/appends-and-watch.md); an append the committer refuses lands in the
    /// results DLQ with its reason, and this flag rebuilds that group.
    #[arg(long)]
    pub no_append: bool,
    /// The archive profile and skip list.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Skip the pre-flight checks. They check, before anything is sent or written: that AWS
    /// credentials resolve; that the source lists; that the store takes a probe object (deleted
    /// at once); that the work and results queues exist, send to their dead-letter queues, and
    /// have visibility timeouts at least as long as the function timeouts (when the stack or
    /// floe.toml gives them); and, after the store is opened, that its virtual chunk containers
    /// cover the source.
    #[arg(long)]
    pub skip_checks: bool,
    /// Files per message. A group with more files (or whose descriptor would pass 200 KiB) is
    /// sent as shards of consecutive files, read by as many virtualizers at once; the one that
    /// stores the last shard's scans assembles the group, so it is committed once, as if sent
    /// whole. 0 never shards: one message per group, which SQS refuses past 1 MiB (about
    /// 6,000 files).
    #[arg(long, default_value_t = floe_group::shard::DEFAULT_SHARD_FILES, value_parser = clap::value_parser!(usize))]
    pub shard_files: usize,
}

/// What `enqueue` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnqueueSummary {
    /// Groups planned.
    pub planned: usize,
    /// Groups sent.
    pub enqueued: Vec<String>,
    /// Groups not sent: already committed from the same inputs.
    pub unchanged: Vec<String>,
    /// Objects the plan left out, with the reason.
    pub skipped_files: Vec<(String, String)>,
    /// Nothing was sent.
    pub dry_run: bool,
    /// Messages sent (or that would be): one per group, or one per shard of a large group.
    pub messages: usize,
    /// Groups sent as shards: group path and shard count.
    pub sharded: Vec<(String, usize)>,
    /// Groups sent as appends, with how many files are new.
    pub appended: Vec<(String, usize)>,
    /// Groups the store holds that are sent whole, and why.
    pub rebuilt: Vec<(String, String)>,
}

/// Runs `enqueue`.
pub async fn run(args: &EnqueueArgs) -> Result<EnqueueSummary> {
    let config = args.fleet.resolve().await?;
    let source = config.require_source()?.to_string();
    let location = StoreLocation::parse(config.require_store()?)?;
    let work = config.require_work_queue()?.to_string();
    let options = config.source_options()?;
    let records = Records::new(config.require_fragments()?, options.clone());
    if !args.skip_checks {
        let checks =
            crate::preflight::run(&config, crate::preflight::Intent::Enqueue, &options).await;
        crate::preflight::into_result(&checks)?;
    }
    let (profile, skip) = args.profile.load()?;
    let filter = GroupFilter::for_profile(&args.filter, &profile)?;
    let mut plan = plan_archive(&source, &options, &profile, &skip, &filter).await?;
    restrict_to_one_ice_sheet(&mut plan, config.ice_sheet.as_deref())?;

    let prefix = floe_store::location::container_prefix(&floe_source::normalize_url(&source));
    let s3 = CloudSettings::for_source(&options);
    // A dry run only looks: it reads the store if there is one and creates nothing.
    let repo = if args.dry_run {
        floe_store::open_existing(&location, &s3)
            .await
            .with_context(|| format!("opening store {location}"))?
    } else {
        Some(
            floe_store::open_repository(&location, &s3, &[prefix])
                .await
                .with_context(|| format!("opening store {location}"))?,
        )
    };
    let limits = floe_group::shard::ShardLimits {
        max_files: args.shard_files,
        ..Default::default()
    };
    let planned_ids: Vec<(String, String)> = plan
        .batches
        .iter()
        .map(|b| (b.group.group_path(), b.batch_id.clone()))
        .collect();
    let prepared = crate::dispatch::prepare(
        repo.as_ref(),
        std::mem::take(&mut plan.batches),
        args.force,
        args.no_append.then_some(crate::dispatch::NO_APPEND),
        &limits,
    )
    .await?;
    let bodies = prepared.bodies;
    let mut summary = EnqueueSummary {
        planned: planned_ids.len(),
        skipped_files: skipped_reasons(&plan),
        dry_run: args.dry_run,
        enqueued: prepared.outgoing.into_iter().map(|o| o.group).collect(),
        unchanged: prepared.unchanged,
        sharded: prepared.sharded,
        appended: prepared.appended,
        rebuilt: prepared.rebuilt,
        ..Default::default()
    };
    summary.messages = bodies.len();
    let Some(repo) = repo.filter(|_| !args.dry_run) else {
        return Ok(summary);
    };
    if !args.skip_checks {
        // Opening added the container if it was missing; a store that did not keep it
        // (a read-only config object, say) would commit groups no reader may read.
        let covered = crate::preflight::container_covers(config.require_store()?, &source).await;
        crate::preflight::into_result(std::slice::from_ref(&covered))?;
    }
    let committer = Committer::new(repo, CommitPolicy::default());
    records
        .put_plan(&EnqueuedPlan {
            at: chrono::Utc::now().to_rfc3339(),
            source: source.clone(),
            store: location.to_string(),
            groups: planned_ids.into_iter().collect(),
        })
        .await?;
    let queue = Queue::new(floe_fleet::sqs::client().await, work);
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(bodies.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} batches sent",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    crate::dispatch::send(&committer, &parent_groups(&plan), &queue, &bodies, |n| {
        bar.inc(n as u64)
    })
    .await?;
    bar.finish_and_clear();
    Ok(summary)
}

/// The readable summary.
pub fn render(s: &EnqueueSummary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let verb = if s.dry_run { "would send" } else { "sent" };
    let _ = writeln!(
        out,
        "{} groups planned; {verb} {}; {} already committed from the same inputs",
        s.planned,
        s.enqueued.len(),
        s.unchanged.len()
    );
    if s.dry_run {
        for g in &s.enqueued {
            let _ = writeln!(out, "  {g}");
        }
    }
    if !s.appended.is_empty() {
        let _ = writeln!(
            out,
            "{} group(s) as appends of their new files only:",
            s.appended.len()
        );
        for (g, n) in s.appended.iter().take(20) {
            let _ = writeln!(out, "  {g}: {n} new files");
        }
    }
    if !s.rebuilt.is_empty() {
        let _ = writeln!(out, "{} stored group(s) rebuilt:", s.rebuilt.len());
        for (g, why) in s.rebuilt.iter().take(20) {
            let _ = writeln!(out, "  {g}: {why}");
        }
    }
    if !s.sharded.is_empty() {
        let _ = writeln!(
            out,
            "{} messages: {} large group(s) in shards, each read by several virtualizers and assembled once:",
            s.messages,
            s.sharded.len()
        );
        for (g, n) in s.sharded.iter().take(20) {
            let _ = writeln!(out, "  {g}: {n} shards");
        }
    }
    if !s.skipped_files.is_empty() {
        let _ = writeln!(out, "skipped {} object(s):", s.skipped_files.len());
        for (u, r) in s.skipped_files.iter().take(20) {
            let _ = writeln!(out, "  {u}: {r}");
        }
    }
    if !s.dry_run && !s.enqueued.is_empty() {
        let _ = writeln!(out, "watch it with: producer status --watch");
    }
    out
}
