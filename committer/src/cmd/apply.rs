//! `committer apply`: fragments from files or URLs into a store, in one commit.

use std::process::ExitCode;

use floe_store::{CloudSettings, CommitPolicy, CommitReport, Committer, StoreLocation};

use crate::{apply, common_source_prefix, decode, FragmentInput};

/// Arguments of `apply`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApplyArgs {
    /// Fragment files (local paths or s3:// URLs).
    #[arg(required = true)]
    pub fragments: Vec<String>,
    /// Store: a directory or s3://bucket/prefix (AWS_ENDPOINT_URL honoured).
    #[arg(long)]
    pub store: String,
    /// Source prefix the virtual references point into (repeatable). Default: the longest
    /// common directory of the fragments' sources.
    #[arg(long = "container")]
    pub containers: Vec<String>,
}

async fn read(path: &str) -> Result<Vec<u8>, String> {
    let options = floe_source::SourceOptions::from_env();
    let source = floe_source::Source::resolve(path, &options).map_err(|e| e.to_string())?;
    source
        .read_all()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string())
}

/// Runs `apply`: exit 0 when every fragment was written or skipped, 2 when some failed or
/// (appends) were refused.
pub async fn run(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let mut inputs = Vec::new();
    for f in &args.fragments {
        inputs.push(FragmentInput {
            id: f.clone(),
            bytes: read(f).await,
            sha256: None,
        });
    }
    let mut containers = args.containers;
    if containers.is_empty() {
        let decoded: Vec<_> = inputs.iter().filter_map(|i| decode(i).ok()).collect();
        containers.extend(common_source_prefix(&decoded));
    }
    let location = StoreLocation::parse(&args.store)?;
    let repo =
        floe_store::open_repository(&location, &CloudSettings::from_env(), &containers).await?;
    let report = apply(&Committer::new(repo, CommitPolicy::default()), inputs).await?;
    for (_, why) in &report.failed {
        eprintln!("committer: {why}");
    }
    for (id, why) in &report.refused {
        eprintln!("committer: {id}: append refused: {why}");
    }
    print!("{}", render(&report));
    Ok(if report.failed.is_empty() && report.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// One line per fragment written or skipped, then the totals.
pub fn render(report: &CommitReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for id in &report.written {
        let _ = writeln!(out, "written  {id}");
    }
    for (id, why) in &report.skipped {
        let _ = writeln!(out, "skipped  {id}: {why}");
    }
    for (id, why) in &report.refused {
        let _ = writeln!(out, "refused  {id}: append refused: {why}");
    }
    let _ = writeln!(
        out,
        "{} written, {} skipped, {} failed; commit {} after {} attempt(s)",
        report.written.len(),
        report.skipped.len(),
        report.failed.len(),
        report.snapshot.as_deref().unwrap_or("(none)"),
        report.attempts
    );
    out
}
