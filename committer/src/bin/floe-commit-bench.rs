//! `floe-commit-bench`: commit throughput of the committer core, in process (what one
//! committer Lambda does per invocation, without SQS). Driven by `bench/commits.py`, which
//! prints the table next to Python icechunk's one-commit-per-group rate on the same fragments.
//!
//! Usage: floe-commit-bench --store URL --container PREFIX --batch-size B --committers N FRAGMENT...
//! Prints one JSON line: groups, commits, seconds, rates, commit attempts.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use floe_store::{CommitItem, CommitPolicy, Committer, S3Settings, StoreLocation};

#[derive(Parser)]
struct Args {
    /// Store (a directory or s3://bucket/prefix); should not exist yet.
    #[arg(long)]
    store: String,
    /// Source prefix the fragments' references point into.
    #[arg(long)]
    container: String,
    /// Groups per commit.
    #[arg(long)]
    batch_size: usize,
    /// Committers working at the same time, each with its own repository handle.
    #[arg(long)]
    committers: usize,
    /// Fragment files.
    #[arg(required = true)]
    fragments: Vec<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    floe_runtime::run("floe-commit-bench", || run(args))
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut items = Vec::new();
    for path in &args.fragments {
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        let fragment = floe_wire::ManifestFragment::decode(&bytes)
            .with_context(|| path.display().to_string())?;
        items.push(CommitItem {
            id: path.display().to_string(),
            fragment,
        });
    }
    let location = StoreLocation::parse(&args.store)?;
    let s3 = S3Settings::from_env();
    let containers = [args.container.clone()];
    let first = floe_store::open_repository(&location, &s3, &containers).await?;
    let parents: std::collections::BTreeSet<String> = items
        .iter()
        .filter_map(|i| {
            i.fragment
                .group_path
                .split_once('/')
                .map(|(p, _)| p.to_string())
        })
        .collect();
    Committer::new(first, CommitPolicy::default())
        .ensure_groups(&parents.into_iter().collect::<Vec<_>>())
        .await?;

    let batches: Vec<Vec<CommitItem>> = items
        .chunks(args.batch_size.max(1))
        .map(<[CommitItem]>::to_vec)
        .collect();
    let n = args.committers.max(1);
    let mut queues: Vec<Vec<Vec<CommitItem>>> = vec![Vec::new(); n];
    for (i, b) in batches.into_iter().enumerate() {
        queues[i % n].push(b);
    }
    let mut committers = Vec::new();
    for _ in 0..n {
        let repo = floe_store::open_repository(&location, &s3, &containers).await?;
        committers.push(Committer::new(repo, CommitPolicy::default()));
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (committer, queue) in committers.into_iter().zip(queues) {
        tasks.spawn(async move {
            let (mut written, mut commits, mut attempts) = (0usize, 0usize, 0u32);
            for batch in queue {
                let report = committer.commit(batch).await?;
                anyhow::ensure!(report.failed.is_empty(), "failed: {:?}", report.failed);
                written += report.written.len();
                commits += usize::from(report.snapshot.is_some());
                attempts += report.attempts;
            }
            anyhow::Ok((written, commits, attempts))
        });
    }
    let (mut groups, mut commits, mut attempts) = (0, 0, 0);
    while let Some(done) = tasks.join_next().await {
        let (w, c, a) = done??;
        groups += w;
        commits += c;
        attempts += a;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "batch_size": args.batch_size, "committers": n, "groups": groups, "commits": commits,
            "attempts": attempts, "seconds": seconds,
            "groups_per_s": groups as f64 / seconds, "commits_per_s": commits as f64 / seconds,
        })
    );
    Ok(ExitCode::SUCCESS)
}
