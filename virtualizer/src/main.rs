//! `virtualizer`: reads NetCDF headers by ranged reads and builds virtual Zarr manifests.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use floe_fleet::worker::WorkerSettings;
use floe_fleet::FleetArgs;
use floe_source::SourceOptions;

#[derive(Parser)]
#[command(
    name = "virtualizer",
    version,
    about = "Read NetCDF headers by ranged reads and turn them into virtual Zarr references"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every variable of each file with its chunk references (raw view, no normalization).
    ///
    /// URLs: local paths, file://, s3://bucket/key (AWS_ENDPOINT_URL honoured), gs://bucket/key
    /// (anonymous), https://host/path.
    Inspect {
        /// Files to inspect.
        #[arg(required = true)]
        urls: Vec<String>,
        /// One JSON object per variable per line instead of a summary.
        #[arg(long)]
        json: bool,
        /// Block size of the ranged-read cache, in bytes.
        #[arg(long, default_value_t = floe_source::DEFAULT_BLOCK_SIZE)]
        block_size: usize,
        /// Read s3:// sources without credentials.
        #[arg(long)]
        anonymous: bool,
    },
    /// Merge files of one group (ISMIP6 rules) and print the group as the committer would write it.
    BuildGroup {
        /// Files of the group.
        #[arg(required = true)]
        urls: Vec<String>,
        /// One JSON object per array instead of a summary.
        #[arg(long)]
        json: bool,
        /// Also write the encoded manifest fragment to this file (for `committer apply`).
        #[arg(long)]
        fragment: Option<std::path::PathBuf>,
    },
    /// Consume the work queue: a long-polling SQS loop with Lambda's semantics.
    ///
    /// Needs the work queue, the results queue and the fragments prefix (see the
    /// configuration flags). AWS access follows the SDK chain (AWS_ENDPOINT_URL for LocalStack).
    /// Stops on SIGTERM/Ctrl-C after finishing the batch in hand.
    Worker {
        #[command(flatten)]
        fleet: FleetArgs,
        #[command(flatten)]
        settings: WorkerSettings,
    },
    /// Serve AWS Lambda invocations (SQS event source mapping, ReportBatchItemFailures).
    ///
    /// This is also what the binary does when started by the Lambda runtime
    /// (AWS_LAMBDA_RUNTIME_API set, no arguments). Configuration from FLOE_* variables.
    Lambda {
        #[command(flatten)]
        fleet: FleetArgs,
    },
}

fn main() -> ExitCode {
    let cli = if floe_fleet::entry::started_by_lambda() {
        Cli::parse_from(["virtualizer", "lambda"])
    } else {
        Cli::parse()
    };
    floe_runtime::run("virtualizer", || async move {
        Ok(match cli.command {
            Command::Inspect {
                urls,
                json,
                block_size,
                anonymous,
            } => {
                let options = SourceOptions {
                    block_size: Some(block_size),
                    s3_anonymous: anonymous,
                    ..SourceOptions::from_env()
                };
                inspect_all(urls, json, options).await
            }
            Command::BuildGroup {
                urls,
                json,
                fragment,
            } => build_group(urls, json, fragment).await,
            Command::Worker { fleet, settings } => return serve(fleet, Some(settings)).await,
            Command::Lambda { fleet } => return serve(fleet, None).await,
        })
    })
}

/// The worker (with settings) or the Lambda entry point (without).
async fn serve(fleet: FleetArgs, worker: Option<WorkerSettings>) -> anyhow::Result<ExitCode> {
    use floe_fleet::records::Records;
    use floe_fleet::sqs::Queue;
    use floe_virtualizer::handler::VirtualizerHandler;
    use std::sync::Arc;

    let config = fleet.resolve().await?;
    let options = SourceOptions::from_env();
    let records = Records::new(config.require_fragments()?, options.clone());
    let client = floe_fleet::sqs::client().await;
    let results = Queue::new(client.clone(), config.require_results_queue()?);
    let handler = Arc::new(VirtualizerHandler::new(options, records, results));
    let worker = match worker {
        Some(settings) => Some((Queue::new(client, config.require_work_queue()?), settings)),
        None => None,
    };
    floe_fleet::entry::serve("virtualizer", handler, worker).await?;
    Ok(ExitCode::SUCCESS)
}

async fn build_group(
    urls: Vec<String>,
    json: bool,
    fragment: Option<std::path::PathBuf>,
) -> ExitCode {
    use floe_virtualizer::build_group as bg;
    let options = SourceOptions::from_env();
    match bg::build(&urls, &options).await {
        Ok((_, build)) => {
            if json {
                for a in bg::arrays_json(&build) {
                    println!("{a}");
                }
                println!(
                    "{}",
                    serde_json::json!({"group": build.fragment.group_path, "batch_id": build.fragment.batch_id, "normalizations": build.notes, "warnings": build.warnings})
                );
            } else {
                print!("{}", bg::summary(&build));
            }
            if let Some(path) = fragment {
                let written = build
                    .fragment
                    .encode()
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| std::fs::write(&path, bytes).map_err(|e| e.to_string()));
                if let Err(e) = written {
                    eprintln!("virtualizer: writing {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("virtualizer: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn inspect_all(urls: Vec<String>, json: bool, options: SourceOptions) -> ExitCode {
    let mut failed = false;
    for url in urls {
        match floe_virtualizer::inspect::inspect(&url, &options, None).await {
            Ok(file) => {
                if json {
                    for line in floe_virtualizer::inspect::json_lines(&file) {
                        println!("{line}");
                    }
                } else {
                    print!("{}", floe_virtualizer::inspect::summary(&file));
                }
                for p in &file.manifest.problems {
                    eprintln!(
                        "virtualizer: {}: variable {}: {}",
                        file.info.url, p.variable, p.error
                    );
                }
            }
            Err(e) => {
                eprintln!("virtualizer: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
