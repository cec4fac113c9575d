//! `producer local`: the whole pipeline in one process, no queues, no cloud.
//! Same library code as the fleet: plan → virtualize each batch → commit
//! fragments in coalesced commits (one committer: a local-filesystem
//! repository is not safe for concurrent committers).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use floe_source::SourceOptions;
use floe_store::{CloudSettings, CommitItem, CommitPolicy, Committer, StoreLocation};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::archive::{
    parent_groups, plan_archive, restrict_to_one_ice_sheet, skipped_reasons, GroupFilter,
    ProfileArgs,
};

/// Options of the local run.
#[derive(Debug, Clone, clap::Args)]
pub struct LocalArgs {
    /// Archive root: a directory or s3://bucket/prefix. Without it, a small sample
    /// archive is generated under the store's parent directory and used.
    #[arg(long)]
    pub source: Option<String>,
    /// Icechunk repository to write (a directory or s3://bucket/prefix).
    #[arg(long, default_value = "floe-demo/store")]
    pub store: String,
    /// Only these groups (repeatable): a group path with * globs ('CESM2/ssp585/*'); ISMIP6
    /// groups also as INST/MODEL/EXP and shorter forms (AWI, AWI/PISM1, AWI_PISM1, "*/exp05").
    /// Matching nothing is an error.
    #[arg(long)]
    pub filter: Vec<String>,
    /// Groups per commit.
    #[arg(long, default_value_t = 50)]
    pub commit_every: usize,
    /// Batches virtualized at the same time.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// The archive profile and skip list.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Only this ice sheet (AIS or GIS). Group paths do not name the ice sheet, so one
    /// store holds one ice sheet: an archive with both needs one run (and store) per sheet.
    #[arg(long)]
    pub ice_sheet: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Where gs:// requests go and with which credentials.
    #[command(flatten)]
    pub gcs: floe_fleet::GcsArgs,
    /// Rebuild every changed group instead of appending to it: by default a group the store
    /// holds whose inputs are its stored ones, unchanged, plus new files is extended by reading
    /// only the new files (see docs/appends-and-watch.md).
    #[arg(long)]
    pub no_append: bool,
    /// After writing, check every group the run wrote or found unchanged against its sources
    /// (`producer verify` with its default sample of 2 chunks per group).
    #[arg(long)]
    pub verify: bool,
}

/// What the run did.
#[derive(Debug, Default, serde::Serialize)]
pub struct LocalSummary {
    /// Archive root used.
    pub source: String,
    /// Store written.
    pub store: String,
    /// Groups planned.
    pub planned: usize,
    /// Groups written.
    pub written: usize,
    /// Groups already committed from the same inputs.
    pub unchanged: usize,
    /// The groups written, by group path.
    pub written_groups: Vec<String>,
    /// The groups already committed from the same inputs, by group path.
    pub unchanged_groups: Vec<String>,
    /// Groups extended by their new files only, with how many files were new.
    pub appended: Vec<(String, usize)>,
    /// Groups in the store rebuilt from every input, and why (a replaced or
    /// removed file, an append the store refused, ...).
    pub rebuilt: Vec<(String, String)>,
    /// Failed batches: group and reason.
    pub failed: Vec<(String, String)>,
    /// Files skipped by the plan, with reasons.
    pub skipped_files: Vec<(String, String)>,
    /// Variables left out of groups or kept on their own time axis, with reasons.
    pub warnings: Vec<String>,
    /// Groups written without some of their variables, with the variables left out.
    pub partial_groups: std::collections::BTreeMap<String, Vec<String>>,
    /// Commits made: the one creating parent groups (first run only) and the
    /// data commits.
    pub commits: usize,
    /// Of them, the one creating parent groups (first run only).
    pub setup_commits: usize,
    /// Virtual references written.
    pub refs: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Of it, the data commits' (writing the fragments into the store), seconds.
    pub commit_seconds: f64,
    /// The verdict of `--verify`.
    pub verify: Option<super::verify::VerifyReport>,
    /// How `gs://` sources were read (the snippet authorizes readers the same way).
    #[serde(skip)]
    pub gcs_auth: floe_source::GcsAuth,
}

/// Runs the pipeline.
pub async fn run(args: LocalArgs) -> Result<LocalSummary> {
    let started = Instant::now();
    let source = match &args.source {
        Some(s) => s.clone(),
        None => {
            let store_dir = PathBuf::from(&args.store);
            let root = store_dir
                .parent()
                .map(|p| p.join("sample-archive"))
                .unwrap_or_else(|| PathBuf::from("sample-archive"));
            let sample = crate::sample::write_archive(&root)?;
            eprintln!("No --source given: {}", sample.describe(&root));
            root.display().to_string()
        }
    };
    let mut options = SourceOptions::from_env();
    options.gcs = args.gcs.settings()?;
    let (profile, skip) = args.profile.load()?;
    let filter = GroupFilter::for_profile(&args.filter, &profile)?;
    let mut plan = plan_archive(&source, &options, &profile, &skip, &filter).await?;
    restrict_to_one_ice_sheet(&mut plan, args.ice_sheet.as_deref())?;
    let location = StoreLocation::parse(&args.store)?;
    let s3 = CloudSettings::for_source(&options);
    let prefix = floe_store::location::container_prefix(&floe_source::normalize_url(&source));
    let repo = floe_store::open_repository(&location, &s3, std::slice::from_ref(&prefix))
        .await
        .with_context(|| format!("opening store {location}"))?;
    let committer = Committer::new(repo, CommitPolicy::default());
    let parents = parent_groups(&plan);
    let parents_commit = committer.ensure_groups(&parents).await?;

    let mut summary = LocalSummary {
        source: source.clone(),
        store: location.to_string(),
        planned: plan.batches.len(),
        skipped_files: skipped_reasons(&plan),
        commits: usize::from(parents_commit.is_some()),
        setup_commits: usize::from(parents_commit.is_some()),
        gcs_auth: options.gcs.auth.clone(),
        ..Default::default()
    };
    let groups: Vec<String> = plan.batches.iter().map(|b| b.group.group_path()).collect();
    let all_batches = if args.verify {
        plan.batches.clone()
    } else {
        Vec::new()
    };
    let committed = floe_store::commit::committed_batches(committer.repository(), &groups).await?;
    let (todo, done): (Vec<_>, Vec<_>) = plan
        .batches
        .into_iter()
        .partition(|b| committed.get(&b.group.group_path()) != Some(&b.batch_id));
    summary.unchanged = done.len();
    summary.unchanged_groups = done.iter().map(|b| b.group.group_path()).collect();

    let planned = crate::archive::plan_appends(
        committer.repository(),
        todo,
        args.no_append.then_some(crate::dispatch::NO_APPEND),
    )
    .await?;
    summary.appended = planned.appended;
    summary.rebuilt = planned.rebuilt;
    let bar = ProgressBar::new(planned.batches.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} groups {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let refused = build_and_commit(
        planned.batches,
        &options,
        &committer,
        &args,
        &mut summary,
        &bar,
    )
    .await?;
    // An append the store refused (a step inside the stored axis, a changed attribute, its base
    // rebuilt meanwhile): the group is rebuilt from every input, in this run.
    let mut whole = planned.whole;
    let mut again = Vec::new();
    for (group, reason) in refused {
        summary.appended.retain(|(g, _)| *g != group);
        bar.println(format!("rebuilding {group}: append refused: {reason}"));
        summary
            .rebuilt
            .push((group.clone(), format!("append refused: {reason}")));
        again.extend(whole.remove(&group));
    }
    if !again.is_empty() {
        bar.inc_length(again.len() as u64);
        let refused =
            build_and_commit(again, &options, &committer, &args, &mut summary, &bar).await?;
        for (group, reason) in refused {
            summary
                .failed
                .push((group, format!("refused twice: {reason}")));
        }
    }
    bar.finish_and_clear();
    if args.verify {
        let stored: std::collections::BTreeSet<&String> = summary
            .written_groups
            .iter()
            .chain(&summary.unchanged_groups)
            .collect();
        let batches = all_batches
            .into_iter()
            .filter(|b| stored.contains(&b.group.group_path()))
            .collect();
        let store = location.to_string();
        summary.verify = Some(
            super::verify::verify(&source, &store, batches, &options, Some(2), !args.json).await?,
        );
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Virtualizes `batches` and commits their fragments, `--commit-every` groups a
/// commit; returns the appends the store refused, with the reasons.
async fn build_and_commit(
    batches: Vec<floe_wire::BatchDescriptor>,
    options: &SourceOptions,
    committer: &Committer,
    args: &LocalArgs,
    summary: &mut LocalSummary,
    bar: &ProgressBar,
) -> Result<Vec<(String, String)>> {
    let mut refused = Vec::new();
    let mut results = futures::stream::iter(batches)
        .map(|batch| {
            let options = options.clone();
            async move {
                let result = floe_virtualizer::virtualize_batch(&batch, &options).await;
                (batch, result)
            }
        })
        .buffer_unordered(args.concurrency.max(1));
    let mut pending: Vec<CommitItem> = Vec::new();
    while let Some((batch, result)) = results.next().await {
        let group = batch.group.group_path();
        match result {
            Ok(build) => {
                summary.warnings.extend(
                    build
                        .warnings
                        .iter()
                        .map(|w| format!("{group}: {}: {}: {}", w.file, w.variable, w.reason)),
                );
                let left_out: Vec<String> = build
                    .warnings
                    .iter()
                    .filter(|w| w.is_left_out())
                    .map(|w| w.variable.clone())
                    .collect();
                if !left_out.is_empty() {
                    summary.partial_groups.insert(group.clone(), left_out);
                }
                pending.push(CommitItem {
                    id: group.clone(),
                    fragment: build.fragment,
                });
            }
            Err(e) => {
                bar.println(format!("FAILED {group}: {e}"));
                summary.failed.push((group.clone(), e.to_string()));
            }
        }
        bar.inc(1);
        bar.set_message(group);
        if pending.len() >= args.commit_every.max(1) {
            refused.extend(flush(committer, &mut pending, summary, bar).await?);
        }
    }
    refused.extend(flush(committer, &mut pending, summary, bar).await?);
    Ok(refused)
}

async fn flush(
    committer: &Committer,
    pending: &mut Vec<CommitItem>,
    summary: &mut LocalSummary,
    bar: &ProgressBar,
) -> Result<Vec<(String, String)>> {
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let started = std::time::Instant::now();
    let report = committer.commit(std::mem::take(pending)).await?;
    summary.commit_seconds += started.elapsed().as_secs_f64();
    if report.snapshot.is_some() {
        summary.commits += 1;
    }
    summary.written += report.written.len();
    summary
        .written_groups
        .extend(report.written.iter().cloned());
    summary.unchanged += report.skipped.len();
    summary
        .unchanged_groups
        .extend(report.skipped.iter().map(|(id, _)| id.clone()));
    summary.refs += report.refs;
    for (id, reason) in report.failed {
        bar.println(format!("FAILED {id}: {reason}"));
        summary.failed.push((id, reason));
    }
    Ok(report.refused)
}

/// The human-readable summary, with the snippet that opens the result.
pub fn render(summary: &LocalSummary) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "floe local: {} groups planned from {}",
        summary.planned, summary.source
    );
    let data_commits = summary.commits - summary.setup_commits;
    let setup = if summary.setup_commits > 0 {
        " (and one creating the store's parent groups)"
    } else {
        ""
    };
    let _ = writeln!(
        s,
        "  written:   {} groups, {} virtual references, in {data_commits} commit(s){setup}",
        summary.written, summary.refs
    );
    let _ = writeln!(
        s,
        "  unchanged: {} groups (already committed from the same inputs)",
        summary.unchanged
    );
    if !summary.appended.is_empty() {
        let files: usize = summary.appended.iter().map(|(_, n)| n).sum();
        let _ = writeln!(
            s,
            "  appended:  {} groups extended by {files} new files (no old file read)",
            summary.appended.len()
        );
        for (g, n) in summary.appended.iter().take(20) {
            let _ = writeln!(s, "    {g}: {n} new files");
        }
    }
    if !summary.rebuilt.is_empty() {
        let _ = writeln!(
            s,
            "  rebuilt:   {} groups the store held",
            summary.rebuilt.len()
        );
        for (g, r) in summary.rebuilt.iter().take(20) {
            let _ = writeln!(s, "    {g}: {r}");
        }
    }
    let _ = writeln!(s, "  failed:    {}", summary.failed.len());
    for (g, r) in &summary.failed {
        let _ = writeln!(s, "    {g}: {r}");
    }
    if !summary.skipped_files.is_empty() {
        let _ = writeln!(s, "  skipped files: {}", summary.skipped_files.len());
        for (u, r) in summary.skipped_files.iter().take(20) {
            let _ = writeln!(s, "    {u}: {r}");
        }
    }
    if !summary.partial_groups.is_empty() {
        let _ = writeln!(
            s,
            "  partial:   {} groups written without some variables (named below; fix the file and run again to add them)",
            summary.partial_groups.len()
        );
    }
    if !summary.warnings.is_empty() {
        let _ = writeln!(
            s,
            "  warnings (variables left out, kept on their own time axis or not carried): {}",
            summary.warnings.len()
        );
        for w in summary.warnings.iter().take(20) {
            let _ = writeln!(s, "    {w}");
        }
    }
    let _ = writeln!(s, "  time: {:.1} s", summary.seconds);
    if let Some(report) = &summary.verify {
        s.push_str(&super::verify::render(report, false));
    }
    // The snippet opens a group that is really in the store.
    let Some(group) = summary
        .written_groups
        .iter()
        .chain(&summary.unchanged_groups)
        .min()
    else {
        let _ = writeln!(
            s,
            "\nNo group was written, so there is nothing to open yet."
        );
        return s;
    };
    let prefix =
        floe_store::location::container_prefix(&floe_source::normalize_url(&summary.source));
    let _ = writeln!(
        s,
        "\nOpen it with Python (pip install icechunk xarray zarr):\n"
    );
    let storage = if let Some(rest) = summary.store.strip_prefix("s3://") {
        let (bucket, p) = rest.split_once('/').unwrap_or((rest, ""));
        format!("icechunk.s3_storage(bucket={bucket:?}, prefix={p:?}, from_env=True)")
    } else {
        format!("icechunk.local_filesystem_storage({:?})", summary.store)
    };
    let access = if prefix.starts_with("file://") {
        "icechunk.credentials.LocalFileSystemAccess"
    } else if prefix.starts_with("gs://") {
        // The container the store records carries the endpoint. (`None` also
        // means anonymous, but icechunk 2 deprecates it.)
        match summary.gcs_auth {
            floe_source::GcsAuth::Anonymous => "icechunk.gcs_credentials(anonymous=True)",
            _ => "icechunk.gcs_from_env_credentials()",
        }
    } else {
        "icechunk.s3_from_env_credentials()"
    };
    // Cloud credentials are wrapped as icechunk's `Credentials` by containers_credentials.
    let authorized = if prefix.starts_with("file://") {
        format!("{{{prefix:?}: {access}}}")
    } else {
        format!("icechunk.containers_credentials({{{prefix:?}: {access}}})")
    };
    let _ = writeln!(
        s,
        "    import icechunk, xarray as xr\n    repo = icechunk.Repository.open({storage},\n        authorize_virtual_chunk_access={authorized})\n    ds = xr.open_zarr(repo.readonly_session(\"main\").store, group={group:?},\n        zarr_format=3, consolidated=False)"
    );
    s
}
