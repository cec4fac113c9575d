//! The `committer` command line as a library function: the binary and the Python wheel's
//! `committer` script (floe-python) both run it, so the two parse and behave alike.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use floe_fleet::worker::WorkerSettings;
use floe_fleet::FleetArgs;

use crate::cmd;

// Doc comments here would become clap's help text: the items are named in the module doc.
#[allow(missing_docs)]
#[derive(Parser)]
#[command(
    name = "committer",
    version,
    about = "Commit floe manifest fragments into an Icechunk store"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[allow(missing_docs)]
#[derive(Subcommand)]
pub enum Command {
    /// Write fragments (local paths or s3:// URLs) into a store, all in one commit.
    ///
    /// A fragment that is missing, corrupt, of an unknown version, or that references sources
    /// no virtual chunk container covers fails alone, with its name and the reason. A fragment
    /// whose group is already committed from the same inputs is skipped.
    Apply(cmd::apply::ApplyArgs),
    /// Recent commits of `main` with the groups and batch ids they wrote.
    Log(cmd::log::LogArgs),
    /// Delete what failed commit attempts left behind: manifests, snapshots, transaction logs
    /// and chunks that no branch or tag reaches.
    ///
    /// Only objects older than --older-than are candidates, so commits in flight keep theirs;
    /// keep it above the committer's longest commit (its Lambda timeout). Without --delete this
    /// is a dry run that reports what would go.
    Gc(cmd::gc::GcArgs),
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

/// Parses `args` (the program name first) and runs the command to its exit code. A parse
/// error, `--help` and `--version` print as clap prints them and exit with clap's code (2 for
/// a bad flag, 0 for help), without ending the process: the caller may be Python.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return floe_runtime::parse_failed(&e),
    };
    floe_runtime::run("committer", || async move {
        match cli.command {
            Command::Apply(args) => cmd::apply::run(args).await,
            Command::Log(args) => cmd::log::run(args).await,
            Command::Gc(args) => cmd::gc::run(args).await,
            Command::Worker { fleet, settings } => {
                cmd::serve::run(fleet, Some(settings.or_defaults(10, 1))).await
            }
            Command::Lambda { fleet } => cmd::serve::run(fleet, None).await,
        }
    })
}
