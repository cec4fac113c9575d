//! The producer's subcommands: one module each, and the dispatch from the
//! parsed command line.
//!
//! The async runtime is entered here, in the library, rather than in `main.rs`:
//! the state machines of every subcommand are then compiled once, in this
//! crate, with its parallel code generation units. Entered from the binary,
//! they were instantiated again in the binary's crate, which took 71 s of a
//! 2-core cold build's critical path on its own.

use std::process::ExitCode;

use clap::Subcommand;
use floe_fleet::FleetArgs;

pub mod dlq;
pub mod enqueue;
pub mod local;
pub mod plan;
pub mod status;
pub mod verify;
pub mod watch;

/// A producer subcommand, as parsed from the command line.
#[derive(Subcommand)]
pub enum Command {
    /// Run the whole pipeline in this process: local (or S3) files in, an Icechunk store out.
    ///
    /// Without --source, a small sample archive is generated and used, so this works on a
    /// fresh machine with no data and no cloud account.
    Local(local::LocalArgs),
    /// Write the sample ISMIP6-like archive to a directory (NetCDF-3 and NetCDF-4/HDF5 files).
    ///
    /// Safe to run again: an identical sample is left untouched, missing files are added, and a
    /// sample that differs (edited files, extra files) is refused rather than overwritten.
    Sample {
        /// Output directory.
        #[arg(long, default_value = "floe-demo/sample-archive")]
        out: std::path::PathBuf,
    },
    /// List the source and print batches, files and bytes per parent of the groups (ISMIP6's
    /// institution_model), the groups the profile makes, the files left out and why, and the
    /// estimated AWS cost of the run.
    Plan(plan::PlanArgs),
    /// Create the store and parent groups, then send one batch per group to the work queue
    /// (groups already committed from the same inputs are skipped).
    Enqueue(enqueue::EnqueueArgs),
    /// Keep the store current from object notifications: plan each burst of S3 events (straight
    /// or through SNS) on the events queue into appends or rebuilds, and send them on.
    ///
    /// Each key is mapped through the profile to its group (keys outside the source or matching
    /// no profile are counted and ignored); the source is listed again and the touched groups
    /// are planned exactly as `enqueue` plans them, so duplicate, late and out-of-order
    /// notifications change nothing. A group with a batch still on its way is not planned over
    /// it: the planner waits for the store to hold it. A notification that cannot be read
    /// reaches the events DLQ with its reason (`producer dlq list --queue events`). Runs as a
    /// worker, or with --lambda (or when the Lambda runtime starts the binary bare) as the
    /// function behind the events queue's event source mapping. See docs/appends-and-watch.md,
    /// "Continuous indexing".
    Watch(watch::WatchArgs),
    /// Queue depths (work, results and their DLQs), groups committed vs planned, recent commits.
    Status(status::StatusArgs),
    /// Dead-letter queues: list what failed and why; redrive after fixing.
    Dlq {
        /// `list` or `redrive`.
        #[command(subcommand)]
        command: dlq::DlqCommand,
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
    Verify(verify::VerifyArgs),
    /// Print the limits on outside input in force: each one's environment variable, value (set or
    /// default), unit and what it bounds.
    ///
    /// The three binaries (producer, virtualizer, committer) read the same FLOE_MAX_* variables
    /// when they start; a value that cannot be used (not a whole number above zero; KiB, MiB and
    /// GiB are allowed) stops them with exit code 2, naming the variable. In Lambda, set them in
    /// the function's environment. What each limit refuses, and how the refusal reads: see
    /// docs/limits-and-security.md.
    Limits,
    /// Print the resolved configuration as floe.toml (e.g. `producer config --stack floe > floe.toml`).
    Config {
        /// Where the settings come from.
        #[command(flatten)]
        fleet: FleetArgs,
    },
}

/// Runs one subcommand to its exit code (tracing and the async runtime set up
/// by [`floe_runtime::run`]).
#[inline(never)]
pub fn main(command: Command) -> ExitCode {
    floe_runtime::run("producer", || dispatch(command))
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Local(args) => {
            let json = args.json;
            let summary = local::run(args).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", local::render(&summary));
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
        Command::Limits => {
            for line in floe_wire::limits::describe(floe_wire::limits()) {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sample { out } => {
            let sample = crate::sample::write_archive(&out)?;
            println!("{}", sample.describe(&out));
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(args) => {
            let report = plan::run(&args).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", plan::render(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Enqueue(args) => {
            let summary = enqueue::run(&args).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", enqueue::render(&summary));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(args) => {
            let status = status::run(&args).await?;
            if !args.watch || !args.json {
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&status)?);
                } else {
                    print!("{}", status::render(&status));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq { command } => match command {
            dlq::DlqCommand::List {
                fleet,
                queue,
                max,
                json,
            } => {
                let config = fleet.resolve().await?;
                let letters = dlq::list(&config, queue, max).await?;
                if json {
                    for d in &letters {
                        println!("{}", serde_json::to_string(d)?);
                    }
                } else {
                    print!("{}", dlq::render(&letters));
                    // Partial groups never reach a DLQ (what could be built was
                    // written), but what was left out is a failure to fix too.
                    match status::snapshot(&config, 0).await {
                        Ok(s) => print!("{}", dlq::render_partial(&s.partial)),
                        Err(e) => println!("partial groups not checked: {e:#}"),
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            dlq::DlqCommand::Redrive {
                fleet,
                queue,
                manual,
            } => {
                let config = fleet.resolve().await?;
                let moved = dlq::redrive(&config, queue, manual).await?;
                println!(
                    "moved {moved} message(s) from the {} dead-letter queue back to its queue",
                    queue.as_str()
                );
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Verify(args) => {
            let report = verify::run(&args).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", verify::render(&report, args.verbose));
            }
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Watch(args) => {
            watch::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { fleet } => {
            print!("{}", fleet.resolve().await?.to_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}
