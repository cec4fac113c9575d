//! `producer`: lists the archive, plans batches, runs the pipeline locally or feeds the fleet.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use floe_fleet::FleetArgs;
use floe_producer::cmd;

#[derive(Parser)]
#[command(
    name = "producer",
    version,
    about = "Plan an archive of NetCDF files into groups and run or feed the floe pipeline",
    long_about = "Plan an archive of NetCDF files into groups and run or feed the floe pipeline.\n\n\
Fleet commands (plan, enqueue, status, dlq, config) read their settings from, weakest first: \
./floe.toml or --config FILE; the outputs of the deployed stack (--stack NAME); FLOE_* \
environment variables; flags. AWS access follows the SDK's standard chain (AWS_PROFILE, \
AWS_REGION, AWS_ENDPOINT_URL for LocalStack).\n\n\
The archive's layout is a profile: --profile ismip6 (the default), --profile cmip6 (CMIP6 \
DRS, the files of a variable concatenated along time, exact CF time) or --profile FILE.toml, \
on plan, enqueue, local and verify; `plan --profile …` shows what it makes of an archive."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline in this process: local (or S3) files in, an Icechunk store out.
    ///
    /// Without --source, a small sample archive is generated and used, so this works on a
    /// fresh machine with no data and no cloud account.
    Local(cmd::local::LocalArgs),
    /// Write the sample ISMIP6-like archive to a directory (NetCDF-3 and NetCDF-4/HDF5 files).
    ///
    /// Safe to run again: an identical sample is left untouched, missing files are added, and a
    /// sample that differs (edited files, extra files) is refused rather than overwritten.
    Sample {
        /// Output directory.
        #[arg(long, default_value = "floe-demo/sample-archive")]
        out: std::path::PathBuf,
    },
    /// List the source and print batches, files and bytes per institution/model, the files
    /// left out and why, and the estimated AWS cost of the run.
    Plan(cmd::plan::PlanArgs),
    /// Create the store and parent groups, then send one batch per group to the work queue
    /// (groups already committed from the same inputs are skipped).
    Enqueue(cmd::enqueue::EnqueueArgs),
    /// Queue depths (work, results and their DLQs), groups committed vs planned, recent commits.
    Status(cmd::status::StatusArgs),
    /// Dead-letter queues: list what failed and why; redrive after fixing.
    Dlq {
        #[command(subcommand)]
        command: cmd::dlq::DlqCommand,
    },
    /// Check a finished store against its sources; exit 0 when every group is right, 1 otherwise.
    ///
    /// For every group of the archive (--source, or floe.toml's): it is in the store under the
    /// batch id of its current inputs (else it is listed as missing or stale); every array's chunk
    /// references equal, chunk for chunk, those its sources' headers give now; and --sample chunks
    /// per group (--all: every chunk) read through icechunk equal, byte for byte, a ranged read of
    /// their source range. A source file changed after the run shows as a stale group, with the
    /// chunks that no longer match or that icechunk refuses to serve.
    ///
    /// Each sampled chunk of a numeric array is also decoded on two independent paths and
    /// compared value for value: zarrs reads it from the store through the codecs the store
    /// declares, and the NetCDF readers read the same region of the source through the file's own
    /// filter pipeline (deflate, shuffle, fletcher32, zstd, bzip2, blosc). A codec description
    /// that does not match the bytes passes the byte comparison and fails this one, naming the
    /// array, the chunk and the first value that differs. Boolean and byte-string arrays are
    /// compared as bytes only.
    ///
    /// Requests: the header reads of a virtualizer run (1 to 2 ranged GETs per file), one manifest
    /// per array from the store, and up to 6 GETs per sampled chunk (the chunk through icechunk
    /// twice, its source range twice, and the source file's header, 1 to 2): about 2 x files + 26
    /// + 6 x N per ISMIP6 group, so about 90 per group with the default sample.
    Verify(cmd::verify::VerifyArgs),
    /// Print the resolved configuration as floe.toml (e.g. `producer config --stack floe > floe.toml`).
    Config {
        #[command(flatten)]
        fleet: FleetArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    floe_runtime::run("producer", || run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Local(args) => {
            let json = args.json;
            let summary = cmd::local::run(args).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", cmd::local::render(&summary));
            }
            // 2: the run completed, but some batches failed (listed above);
            // 1: --verify found the store wrong.
            Ok(if summary.verify.as_ref().is_some_and(|v| !v.passed()) {
                ExitCode::FAILURE
            } else if summary.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Sample { out } => {
            let sample = floe_producer::sample::write_archive(&out)?;
            println!("{}", sample.describe(&out));
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(args) => {
            let report = cmd::plan::run(&args).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", cmd::plan::render(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Enqueue(args) => {
            let summary = cmd::enqueue::run(&args).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", cmd::enqueue::render(&summary));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(args) => {
            let status = cmd::status::run(&args).await?;
            if !args.watch || !args.json {
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&status)?);
                } else {
                    print!("{}", cmd::status::render(&status));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq { command } => match command {
            cmd::dlq::DlqCommand::List {
                fleet,
                queue,
                max,
                json,
            } => {
                let config = fleet.resolve().await?;
                let letters = cmd::dlq::list(&config, queue, max).await?;
                if json {
                    for d in &letters {
                        println!("{}", serde_json::to_string(d)?);
                    }
                } else {
                    print!("{}", cmd::dlq::render(&letters));
                }
                Ok(ExitCode::SUCCESS)
            }
            cmd::dlq::DlqCommand::Redrive {
                fleet,
                queue,
                manual,
            } => {
                let config = fleet.resolve().await?;
                let moved = cmd::dlq::redrive(&config, queue, manual).await?;
                println!(
                    "moved {moved} message(s) from the {} dead-letter queue back to its queue",
                    queue.as_str()
                );
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Verify(args) => {
            let report = cmd::verify::run(&args).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", cmd::verify::render(&report));
            }
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Config { fleet } => {
            print!("{}", fleet.resolve().await?.to_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}
