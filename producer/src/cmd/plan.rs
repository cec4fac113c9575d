//! `producer plan`: what a run would do, and what it would cost.

use std::collections::BTreeMap;

use anyhow::Result;
use floe_fleet::FleetArgs;
use floe_group::archive::Plan;
use floe_wire::SourceFile;
use serde::Serialize;

use floe_group::archive::{NotRunnable, Survey};
use floe_group::profile::Profile;

use crate::archive::{
    list_source, plan_archive, restrict_to_one_ice_sheet, skipped_reasons, GroupFilter, ProfileArgs,
};
use crate::cost::{estimate, CostAssumptions, CostEstimate};

/// Options of `plan`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// Where the fleet is (config file, stack, environment, flags).
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Only these groups (repeatable): a group path with * globs ('CESM2/ssp585/*'); ISMIP6
    /// groups also as INST/MODEL/EXP and shorter forms (AWI, AWI/PISM1, AWI_PISM1, "*/exp05").
    /// Matching nothing is an error.
    #[arg(long)]
    pub filter: Vec<String>,
    /// The archive profile and skip list.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Skip the pre-flight checks (credentials, source, store, container; see `enqueue --help`).
    #[arg(long)]
    pub skip_checks: bool,
}

/// Counts of one institution/model.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanRow {
    /// Batches (groups).
    pub batches: usize,
    /// Input files.
    pub files: usize,
    /// Input bytes.
    pub bytes: u64,
}

/// One group of a profile the pipeline cannot run yet, as the profile sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SurveyedGroupRow {
    /// Store path.
    pub group_path: String,
    /// Files per variable (more than one: concatenated along the profile's dimension).
    pub variables: BTreeMap<String, usize>,
}

/// The groups a profile made, with their variables (shown for concatenating
/// profiles and for profiles the pipeline cannot run).
#[derive(Debug, Clone, Serialize)]
pub struct SurveyReport {
    /// Why the pipeline cannot run this profile; `None`: it can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_runnable: Option<String>,
    /// Its groups.
    pub groups: Vec<SurveyedGroupRow>,
}

/// The plan, summarized.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// The archive.
    pub source: String,
    /// The profile, `id@version`.
    pub profile: String,
    /// Objects that are not NetCDF files, left out (counted by profile surveys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_netcdf: Option<usize>,
    /// For a profile the pipeline cannot run yet: its groups, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survey: Option<SurveyReport>,
    /// Totals.
    pub total: PlanRow,
    /// Per `{institution}_{model}`.
    pub by_model: BTreeMap<String, PlanRow>,
    /// Objects left out, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Estimated cost of running it on the AWS stack.
    pub cost: CostEstimate,
    /// The pre-flight checks that ran (all passed, or the plan would have failed).
    pub checks: Vec<crate::preflight::Check>,
    /// What `enqueue` would do against the store, when one is configured and exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub against_store: Option<StoreDelta>,
}

/// The plan against the store: what `enqueue` would send, and how.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreDelta {
    /// Groups the store holds from the same inputs.
    pub unchanged: usize,
    /// Groups the store does not hold yet.
    pub new_groups: usize,
    /// Groups that would travel as appends, with how many files are new.
    pub appended: Vec<(String, usize)>,
    /// Stored groups that would be rebuilt, and why.
    pub rebuilt: Vec<(String, String)>,
}

/// What `enqueue` would do with `plan` against the configured store (`None`: no store yet).
async fn against_store(
    config: &floe_fleet::FleetConfig,
    options: &floe_source::SourceOptions,
    plan: &Plan,
) -> Result<Option<StoreDelta>> {
    let Some(store) = config.store_url.as_deref() else {
        return Ok(None);
    };
    let location = floe_store::StoreLocation::parse(store)?;
    let cloud = floe_store::CloudSettings::for_source(options);
    let Some(repo) = floe_store::open_existing(&location, &cloud).await? else {
        return Ok(None);
    };
    let prepared = crate::dispatch::prepare(
        Some(&repo),
        plan.batches.clone(),
        false,
        None,
        &floe_group::shard::ShardLimits::default(),
    )
    .await?;
    Ok(Some(StoreDelta {
        unchanged: prepared.unchanged.len(),
        new_groups: prepared
            .outgoing
            .iter()
            .filter(|o| o.kind == "build")
            .count(),
        appended: prepared.appended,
        rebuilt: prepared.rebuilt,
    }))
}

/// Totals, and rows per parent group, of groups given as (parent, files).
fn tally<'a>(
    groups: impl IntoIterator<Item = (String, Vec<&'a SourceFile>)>,
) -> (PlanRow, BTreeMap<String, PlanRow>) {
    let mut by_model: BTreeMap<String, PlanRow> = BTreeMap::new();
    let mut total = PlanRow::default();
    for (parent, files) in groups {
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        for r in [by_model.entry(parent).or_default(), &mut total] {
            r.batches += 1;
            r.files += files.len();
            r.bytes += bytes;
        }
    }
    (total, by_model)
}

/// Files per variable of one group.
fn group_row<'a>(
    group_path: String,
    files: impl IntoIterator<Item = &'a SourceFile>,
) -> SurveyedGroupRow {
    let mut variables: BTreeMap<String, usize> = BTreeMap::new();
    for f in files {
        *variables.entry(f.variable.clone()).or_default() += 1;
    }
    SurveyedGroupRow {
        group_path,
        variables,
    }
}

/// Summarizes a plan.
pub fn report(source: &str, plan: &Plan) -> PlanReport {
    let (total, by_model) = tally(
        plan.batches
            .iter()
            .map(|b| (b.group.parent_path(), b.files.iter().collect())),
    );
    PlanReport {
        source: source.to_string(),
        profile: floe_wire::DEFAULT_PROFILE_TAG.to_string(),
        not_netcdf: Some(plan.not_netcdf),
        survey: None,
        cost: estimate(total.batches, total.files, &CostAssumptions::default()),
        total,
        by_model,
        skipped: skipped_reasons(plan),
        checks: Vec::new(),
        against_store: None,
    }
}

/// Lists and plans.
pub async fn run(args: &PlanArgs) -> Result<PlanReport> {
    use crate::preflight::{self, Intent};
    let config = args.fleet.resolve().await?;
    let source = config.require_source()?;
    let options = config.source_options()?;
    let checks = if args.skip_checks {
        Vec::new()
    } else {
        let checks = preflight::run(&config, Intent::Plan, &options).await;
        preflight::into_result(&checks)?;
        checks
    };
    let (profile, skip) = args.profile.load()?;
    let filter = GroupFilter::for_profile(&args.filter, &profile)?;
    if let Err(not_runnable) = floe_group::archive::runnable(&profile) {
        let objects = list_source(source, &options).await?;
        let surveyed = floe_group::archive::survey(&objects, &profile, &skip);
        return Ok(PlanReport {
            checks,
            ..survey_report(source, &profile, &surveyed, &filter, &not_runnable)
        });
    }
    let mut plan = plan_archive(source, &options, &profile, &skip, &filter).await?;
    restrict_to_one_ice_sheet(&mut plan, config.ice_sheet.as_deref())?;
    let survey = profile.concat.is_some().then(|| SurveyReport {
        not_runnable: None,
        groups: plan
            .batches
            .iter()
            .map(|b| group_row(b.group.group_path(), &b.files))
            .collect(),
    });
    Ok(PlanReport {
        checks,
        profile: profile.tag(),
        survey,
        against_store: against_store(&config, &options, &plan).await?,
        ..report(source, &plan)
    })
}

/// Summarizes what a profile the pipeline cannot run yet made of the archive:
/// its groups and variables (files per variable), and every file it left out.
pub fn survey_report(
    source: &str,
    profile: &Profile,
    surveyed: &Survey,
    filter: &GroupFilter,
    not_runnable: &NotRunnable,
) -> PlanReport {
    let kept: Vec<_> = surveyed
        .groups
        .iter()
        .filter(|g| filter.matches_path(&g.group_path))
        .collect();
    let (total, by_model) = tally(kept.iter().map(|g| {
        let parent = g
            .group_path
            .rsplit_once('/')
            .map_or(g.group_path.as_str(), |(p, _)| p);
        (parent.to_string(), g.variables.values().flatten().collect())
    }));
    let groups = kept
        .iter()
        .map(|g| group_row(g.group_path.clone(), g.variables.values().flatten()))
        .collect();
    PlanReport {
        source: source.to_string(),
        profile: profile.tag(),
        not_netcdf: Some(surveyed.not_netcdf),
        survey: Some(SurveyReport {
            not_runnable: Some(not_runnable.to_string()),
            groups,
        }),
        cost: estimate(total.batches, total.files, &CostAssumptions::default()),
        total,
        by_model,
        skipped: surveyed
            .skipped
            .iter()
            .chain(&surveyed.unmatched)
            .map(|s| (s.url.clone(), s.reason.clone()))
            .collect(),
        checks: Vec::new(),
        against_store: None,
    }
}

fn human_bytes(b: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.1} {}", units[i])
}

/// The readable form.
pub fn render(r: &PlanReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "plan of {} (profile {})", r.source, r.profile);
    if !r.checks.is_empty() {
        let _ = writeln!(s, "pre-flight:");
        s.push_str(&crate::preflight::render(&r.checks));
    }
    // Rows are the groups' parents: ISMIP6's `{institution}_{model}`, another
    // profile's group path less its last part.
    let parent = if r.profile.starts_with("ismip6") {
        "institution_model"
    } else {
        "parent of the groups"
    };
    let _ = writeln!(
        s,
        "{parent:<32} {:>8} {:>8} {:>12}",
        "batches", "files", "bytes"
    );
    for (model, row) in &r.by_model {
        let _ = writeln!(
            s,
            "{model:<32} {:>8} {:>8} {:>12}",
            row.batches,
            row.files,
            human_bytes(row.bytes)
        );
    }
    let _ = writeln!(
        s,
        "{:<32} {:>8} {:>8} {:>12}",
        "total",
        r.total.batches,
        r.total.files,
        human_bytes(r.total.bytes)
    );
    if let Some(survey) = &r.survey {
        let _ = writeln!(s, "\ngroups and their variables (files per variable):");
        for g in &survey.groups {
            let vars: Vec<String> = g
                .variables
                .iter()
                .map(|(v, n)| {
                    if v == floe_wire::EVERY_VARIABLE {
                        format!("every variable of each file, {n} file(s)")
                    } else if *n > 1 {
                        format!("{v} ×{n}")
                    } else {
                        v.clone()
                    }
                })
                .collect();
            let _ = writeln!(s, "  {}: {}", g.group_path, vars.join(", "));
        }
        if let Some(why) = &survey.not_runnable {
            let _ = writeln!(s, "\nnot runnable: {why}");
        }
    }
    if let Some(n) = r.not_netcdf.filter(|n| *n > 0) {
        let _ = writeln!(
            s,
            "\n{n} object(s) are not NetCDF files (.nc) and are left out"
        );
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(
            s,
            "\nleft out {} file(s) (skip list, or not matched by the profile):",
            r.skipped.len()
        );
        for (url, why) in &r.skipped {
            let _ = writeln!(s, "  {url}: {why}");
        }
    }
    if let Some(d) = &r.against_store {
        let _ = writeln!(
            s,
            "\nagainst the store: {} group(s) unchanged, {} new, {} as appends of their new files, {} rebuilt",
            d.unchanged,
            d.new_groups,
            d.appended.len(),
            d.rebuilt.len()
        );
        for (g, n) in d.appended.iter().take(20) {
            let _ = writeln!(s, "  {g}: append of {n} new file(s)");
        }
        for (g, why) in d.rebuilt.iter().take(20) {
            let _ = writeln!(s, "  {g}: rebuilt, {why}");
        }
    }
    let c = &r.cost;
    let a = &c.assumptions;
    let _ = writeln!(
        s,
        "\nestimated AWS cost of the run: ${:.4} (Lambda ${:.4}, SQS ${:.4}, S3 ${:.4}, header egress ${:.4})",
        c.total, c.lambda, c.sqs, c.s3, c.egress
    );
    let _ = writeln!(
        s,
        "  assumes arm64 Lambda at ${}/GB-s; virtualizer {} GB, {:.3} s/file + {} s/batch; committer {} GB, {} groups/commit, {} s/commit;\n  {} GETs and {} bytes read per file; store writes {} objects per group + {} per commit, reads {} per commit\n  (metered); storage of fragments and store not included (kilobytes per group). See infra/COST.md.",
        a.lambda_gb_second,
        a.virtualizer_memory_gb,
        a.virtualizer_seconds_per_file,
        a.virtualizer_seconds_per_batch,
        a.committer_memory_gb,
        a.groups_per_commit,
        a.committer_seconds_per_commit,
        a.source_gets_per_file,
        a.bytes_per_file,
        a.store_puts_per_group,
        a.store_puts_per_commit,
        a.store_gets_per_commit
    );
    s
}
