//! `committer`: writes manifest fragments into an Icechunk store; shows its history.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use floe_committer::{apply, common_source_prefix, decode, FragmentInput};
use floe_fleet::worker::WorkerSettings;
use floe_fleet::FleetArgs;
use floe_store::{CommitPolicy, Committer, S3Settings, StoreLocation};

#[derive(Parser)]
#[command(
    name = "committer",
    version,
    about = "Commit floe manifest fragments into an Icechunk store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write fragments (local paths or s3:// URLs) into a store, all in one commit.
    ///
    /// A fragment that is missing, corrupt, of an unknown version, or that references sources
    /// no virtual chunk container covers fails alone, with its name and the reason.
    Apply {
        /// Fragment files.
        #[arg(required = true)]
        fragments: Vec<String>,
        /// Store: a directory or s3://bucket/prefix (AWS_ENDPOINT_URL honoured).
        #[arg(long)]
        store: String,
        /// Source prefix the virtual references point into (repeatable). Default: the longest
        /// common directory of the fragments' sources.
        #[arg(long = "container")]
        containers: Vec<String>,
    },
    /// Recent commits of `main` with the groups and batch ids they wrote.
    Log {
        /// Store.
        #[arg(long)]
        store: String,
        /// How many commits.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Delete what failed commit attempts left behind: manifests, snapshots, transaction logs
    /// and chunks that no branch or tag reaches.
    ///
    /// Only objects older than --older-than are candidates, so commits in flight keep theirs;
    /// keep it above the committer's longest commit (its Lambda timeout). Without --delete this
    /// is a dry run that reports what would go.
    Gc {
        /// Store.
        #[arg(long)]
        store: String,
        /// Minimum age of a deleted object: a number with s, m, h or d.
        #[arg(long, default_value = "1h", value_parser = parse_age)]
        older_than: std::time::Duration,
        /// Delete (default: dry run).
        #[arg(long)]
        delete: bool,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Consume the results queue: a long-polling SQS loop with Lambda's semantics.
    ///
    /// Each batch of result messages becomes one commit. Recommended for throughput:
    /// --batch-size 100 --batching-window 5. --concurrency N runs N committers that rebase
    /// on contention (object-storage stores only: a local-filesystem store is not safe
    /// for concurrent commits). Stops on SIGTERM/Ctrl-C after committing the batch in hand.
    Worker {
        #[command(flatten)]
        fleet: FleetArgs,
        #[command(flatten)]
        settings: WorkerSettings,
    },
    /// Serve AWS Lambda invocations (SQS event source mapping, ReportBatchItemFailures).
    ///
    /// Also what the binary does when started by the Lambda runtime (AWS_LAMBDA_RUNTIME_API
    /// set, no arguments). Configuration from FLOE_* variables.
    Lambda {
        #[command(flatten)]
        fleet: FleetArgs,
    },
}

fn main() -> ExitCode {
    let cli = if floe_fleet::entry::started_by_lambda() {
        Cli::parse_from(["committer", "lambda"])
    } else {
        Cli::parse()
    };
    floe_runtime::run("committer", || run(cli))
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

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let s3 = S3Settings::from_env();
    match cli.command {
        Command::Apply {
            fragments,
            store,
            mut containers,
        } => {
            let mut inputs = Vec::new();
            for f in &fragments {
                inputs.push(FragmentInput {
                    id: f.clone(),
                    bytes: read(f).await,
                    sha256: None,
                });
            }
            if containers.is_empty() {
                let decoded: Vec<_> = inputs.iter().filter_map(|i| decode(i).ok()).collect();
                containers.extend(common_source_prefix(&decoded));
            }
            let location = StoreLocation::parse(&store)?;
            let repo = floe_store::open_repository(&location, &s3, &containers).await?;
            let report = apply(&Committer::new(repo, CommitPolicy::default()), inputs).await?;
            for id in &report.written {
                println!("written  {id}");
            }
            for (id, why) in &report.skipped {
                println!("skipped  {id}: {why}");
            }
            for (_, why) in &report.failed {
                eprintln!("committer: {why}");
            }
            println!(
                "{} written, {} skipped, {} failed; commit {} after {} attempt(s)",
                report.written.len(),
                report.skipped.len(),
                report.failed.len(),
                report.snapshot.as_deref().unwrap_or("(none)"),
                report.attempts
            );
            Ok(if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Log { store, limit, json } => {
            let location = StoreLocation::parse(&store)?;
            let repo = floe_store::open_existing(&location, &s3)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no Icechunk repository at {location}"))?;
            for entry in floe_store::commit::log(&repo, limit).await? {
                if json {
                    println!("{}", serde_json::to_string(&entry)?);
                } else {
                    println!(
                        "{}  {}  {}  {}",
                        entry.id,
                        entry.at,
                        entry.message,
                        entry.groups.join(",")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Gc {
            store,
            older_than,
            delete,
            json,
        } => {
            let location = StoreLocation::parse(&store)?;
            let repo = floe_store::open_existing(&location, &s3)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no Icechunk repository at {location}"))?;
            let report = floe_store::collect_garbage(&repo, older_than, !delete).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                let verb = if report.dry_run {
                    "would delete"
                } else {
                    "deleted"
                };
                println!(
                    "{verb} {} snapshot(s), {} transaction log(s), {} manifest(s), {} chunk(s), {} bytes (unreferenced, created before {}){}",
                    report.snapshots,
                    report.transaction_logs,
                    report.manifests,
                    report.chunks,
                    report.bytes,
                    report.cutoff,
                    if report.dry_run { "; dry run, pass --delete to delete" } else { "" }
                );
            }
            Ok(if report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "committer: {} object(s) could not be deleted; the next run retries them",
                    report.failed
                );
                ExitCode::from(2)
            })
        }
        Command::Worker { fleet, settings } => serve(fleet, Some(settings)).await,
        Command::Lambda { fleet } => serve(fleet, None).await,
    }
}

/// `90s`, `15m`, `1h`, `2d`.
fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit: s, m, h or d (e.g. 1h)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number followed by s, m, h or d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; use s, m, h or d"
            ))
        }
    };
    Ok(std::time::Duration::from_secs(
        number.saturating_mul(seconds),
    ))
}

/// The worker (with settings) or the Lambda entry point (without).
async fn serve(fleet: FleetArgs, worker: Option<WorkerSettings>) -> anyhow::Result<ExitCode> {
    use floe_committer::handler::CommitterHandler;
    use floe_fleet::records::Records;
    use std::sync::Arc;

    let config = fleet.resolve().await?;
    let location = StoreLocation::parse(config.require_store()?)?;
    if let Some(settings) = &worker {
        anyhow::ensure!(
            settings.concurrency <= 1 || !matches!(location, StoreLocation::Local(_)),
            "--concurrency {} on a local-filesystem store: concurrent commits are only safe on object storage; use --concurrency 1",
            settings.concurrency
        );
    }
    let options = floe_source::SourceOptions::from_env();
    let prefix = floe_store::location::container_prefix(&floe_source::normalize_url(
        config.require_source()?,
    ));
    let repo = floe_store::open_repository(&location, &S3Settings::from_env(), &[prefix]).await?;
    let records = config
        .fragments_url
        .as_deref()
        .map(|f| Records::new(f, options.clone()));
    let handler = Arc::new(CommitterHandler::new(
        Committer::new(repo, CommitPolicy::default()),
        options,
        records,
    ));
    let worker = match worker {
        Some(settings) => {
            let client = floe_fleet::sqs::client().await;
            let results = floe_fleet::sqs::Queue::new(client, config.require_results_queue()?);
            Some((results, settings))
        }
        None => None,
    };
    floe_fleet::entry::serve("committer", handler, worker).await?;
    Ok(ExitCode::SUCCESS)
}
