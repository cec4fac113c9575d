//! `floe-commit-bench`: commit throughput of the committer core, in process (what one
//! committer Lambda does per invocation, without SQS). Driven by `bench/commits.py`, which
//! prints the table next to Python icechunk's one-commit-per-group rate on the same fragments.
//!
//! Usage: floe-commit-bench --store URL --container PREFIX --batch-size B --committers N
//!        [--meter] [--manifest-concurrency M] FRAGMENT...
//! Prints one JSON line: groups, commits, seconds, rates, commit attempts, the process's peak
//! RSS, and with `--meter` the storage requests by kind (icechunk's own `MeteringStorage`
//! around the store) in total and, with one committer, per commit with its time.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use floe_store::{
    CloudSettings, CommitItem, CommitPolicy, Committer, StoreLocation, WriterOptions,
};
use icechunk::storage::metering::{MeteringReport, MeteringStorage};

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
    /// Count storage requests by kind with icechunk's `MeteringStorage` (per commit too
    /// with one committer).
    #[arg(long)]
    meter: bool,
    /// Manifests a commit writes at once (floe's default: 64; icechunk's: 1).
    #[arg(long)]
    manifest_concurrency: Option<u16>,
    /// Fragment files.
    #[arg(required = true)]
    fragments: Vec<std::path::PathBuf>,
}

/// Requests and bytes by storage operation, as JSON.
fn metered(report: &MeteringReport) -> serde_json::Value {
    report
        .per_op
        .iter()
        .map(|(op, s)| {
            (
                op.to_string(),
                serde_json::json!({"requests": s.requests, "bytes_written": s.bytes_written, "bytes_read": s.bytes_read}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Requests per operation made between two snapshots of one meter.
fn requests_between(before: &MeteringReport, after: &MeteringReport) -> serde_json::Value {
    after
        .per_op
        .iter()
        .map(|(op, s)| {
            let earlier = before.per_op.get(op).map_or(0, |b| b.requests);
            (op.to_string(), serde_json::json!(s.requests - earlier))
        })
        .filter(|(_, n)| n != &serde_json::json!(0))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The process's peak resident set (VmHWM), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
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
    let s3 = CloudSettings::from_env();
    let containers = [args.container.clone()];
    // One meter for every handle: a clone of the Arc is kept to read it.
    let meters: Arc<Mutex<Vec<Arc<MeteringStorage>>>> = Arc::default();
    let mut options = WriterOptions {
        manifest_write_concurrency: args.manifest_concurrency,
        ..WriterOptions::default()
    };
    if args.meter {
        let meters = meters.clone();
        options.wrap_storage = Some(Arc::new(move |inner| {
            let meter = Arc::new(MeteringStorage::new(inner));
            meters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(meter.clone());
            meter
        }));
    }
    let snapshot = {
        let meters = meters.clone();
        move || {
            let meters = meters.lock().unwrap_or_else(|p| p.into_inner());
            let mut total = MeteringReport::default();
            for m in meters.iter() {
                for (op, s) in m.snapshot().per_op {
                    let t = total.per_op.entry(op).or_default();
                    t.requests += s.requests;
                    t.bytes_written += s.bytes_written;
                    t.bytes_read += s.bytes_read;
                }
            }
            total
        }
    };
    let first = floe_store::open_repository_with(&location, &s3, &containers, &options).await?;
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
        let repo = floe_store::open_repository_with(&location, &s3, &containers, &options).await?;
        committers.push(Committer::new(repo, CommitPolicy::default()));
    }
    let before = snapshot();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (committer, queue) in committers.into_iter().zip(queues) {
        // Per-commit requests are exact only when one committer runs.
        let snapshot = (n == 1).then(|| snapshot.clone());
        tasks.spawn(async move {
            let (mut written, mut commits, mut attempts) = (0usize, 0usize, 0u32);
            let mut per_commit = Vec::new();
            for batch in queue {
                let (at, t0) = (snapshot.as_ref().map(|s| s()), Instant::now());
                let report = committer.commit(batch).await?;
                anyhow::ensure!(report.failed.is_empty(), "failed: {:?}", report.failed);
                let mut record = serde_json::json!({
                    "k": per_commit.len() + 1, "groups": report.written.len(),
                    "seconds": t0.elapsed().as_secs_f64(), "attempts": report.attempts,
                });
                if let (Some(at), Some(s)) = (at, snapshot.as_ref()) {
                    record["requests"] = requests_between(&at, &s());
                }
                per_commit.push(record);
                written += report.written.len();
                commits += usize::from(report.snapshot.is_some());
                attempts += report.attempts;
            }
            anyhow::Ok((written, commits, attempts, per_commit))
        });
    }
    let (mut groups, mut commits, mut attempts, mut per_commit) = (0, 0, 0, Vec::new());
    while let Some(done) = tasks.join_next().await {
        let (w, c, a, p) = done??;
        groups += w;
        commits += c;
        attempts += a;
        per_commit.extend(p);
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut out = serde_json::json!({
        "batch_size": args.batch_size, "committers": n, "groups": groups, "commits": commits,
        "attempts": attempts, "seconds": seconds,
        "groups_per_s": groups as f64 / seconds, "commits_per_s": commits as f64 / seconds,
        "manifest_concurrency": args.manifest_concurrency.unwrap_or(floe_store::MANIFEST_WRITE_CONCURRENCY),
        "peak_rss_mb": peak_rss_mb(), "per_commit": per_commit,
    });
    if args.meter {
        let after = snapshot();
        out["requests"] = requests_between(&before, &after);
        out["storage"] = metered(&after);
    }
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}
