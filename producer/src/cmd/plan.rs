//! `producer plan`: what a run would do, and what it would cost.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use floe_fleet::FleetArgs;
use floe_group::archive::Plan;
use floe_source::SourceOptions;
use serde::Serialize;

use crate::archive::{
    load_skip_list, plan_archive, restrict_to_one_ice_sheet, skipped_reasons, GroupFilter,
};
use crate::cost::{estimate, CostAssumptions, CostEstimate};

/// Options of `plan`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// Where the fleet is (config file, stack, environment, flags).
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Only these groups (repeatable): INST/MODEL/EXP or the group path INST_MODEL/EXP, with *
    /// globs and shorter forms (AWI, AWI/PISM1, AWI_PISM1, "*/exp05"). Matching nothing is an error.
    #[arg(long)]
    pub filter: Vec<String>,
    /// Skip list file (default: the built-in one).
    #[arg(long)]
    pub skip_list: Option<PathBuf>,
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

/// The plan, summarized.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// The archive.
    pub source: String,
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
}

/// Summarizes a plan.
pub fn report(source: &str, plan: &Plan) -> PlanReport {
    let mut by_model: BTreeMap<String, PlanRow> = BTreeMap::new();
    let mut total = PlanRow::default();
    for b in &plan.batches {
        let row = by_model.entry(b.group.parent_path()).or_default();
        let bytes: u64 = b.files.iter().map(|f| f.size).sum();
        for r in [&mut *row, &mut total] {
            r.batches += 1;
            r.files += b.files.len();
            r.bytes += bytes;
        }
    }
    PlanReport {
        source: source.to_string(),
        cost: estimate(total.batches, total.files, &CostAssumptions::default()),
        total,
        by_model,
        skipped: skipped_reasons(plan),
        checks: Vec::new(),
    }
}

/// Lists and plans.
pub async fn run(args: &PlanArgs) -> Result<PlanReport> {
    use crate::preflight::{self, Intent};
    let config = args.fleet.resolve().await?;
    let source = config.require_source()?;
    let options = SourceOptions::from_env();
    let checks = if args.skip_checks {
        Vec::new()
    } else {
        let checks = preflight::run(&config, Intent::Plan, &options).await;
        preflight::into_result(&checks)?;
        checks
    };
    let skip = load_skip_list(args.skip_list.as_deref())?;
    let filter = GroupFilter::new(&args.filter)?;
    let mut plan = plan_archive(source, &options, &skip, &filter).await?;
    restrict_to_one_ice_sheet(&mut plan, config.ice_sheet.as_deref())?;
    Ok(PlanReport {
        checks,
        ..report(source, &plan)
    })
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
    let _ = writeln!(s, "plan of {}", r.source);
    if !r.checks.is_empty() {
        let _ = writeln!(s, "pre-flight:");
        s.push_str(&crate::preflight::render(&r.checks));
    }
    let _ = writeln!(
        s,
        "{:<32} {:>8} {:>8} {:>12}",
        "institution_model", "batches", "files", "bytes"
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
    if !r.skipped.is_empty() {
        let _ = writeln!(s, "\nskipped {} object(s):", r.skipped.len());
        for (url, why) in &r.skipped {
            let _ = writeln!(s, "  {url}: {why}");
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
