//! The `virtualizer` command line as a library function: the binary and the Python wheel's
//! `virtualizer` script (floe-python) both run it, so the two parse and behave alike.

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
    name = "virtualizer",
    version,
    about = "Read NetCDF headers by ranged reads and turn them into virtual Zarr references"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[allow(missing_docs)]
#[derive(Subcommand)]
pub enum Command {
    /// Print every variable of each file with its chunk references (raw view, no normalization).
    ///
    /// URLs: local paths, file://, s3://bucket/key (AWS_ENDPOINT_URL honoured), gs://bucket/key
    /// (anonymous), https://host/path.
    Inspect(cmd::inspect::InspectArgs),
    /// Merge files of one group and print the group as the committer would write it.
    ///
    /// The files are grouped by `--profile` (ismip6, cmip6, files, or a TOML file), as
    /// `producer local` groups them; without it by ISMIP6's path rules.
    BuildGroup(cmd::build_group::BuildGroupArgs),
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
    floe_runtime::run("virtualizer", || async move {
        match cli.command {
            Command::Inspect(args) => Ok(cmd::inspect::run(args).await),
            Command::BuildGroup(args) => Ok(cmd::build_group::run(args).await),
            Command::Worker { fleet, settings } => {
                // One message a receive, four loops: a worker takes a batch only when it
                // has room for it, so the shards of a large group spread over the workers.
                let settings = settings.or_defaults(1, crate::handler::BATCH_CONCURRENCY);
                cmd::serve::run(fleet, Some(settings)).await
            }
            Command::Lambda { fleet } => cmd::serve::run(fleet, None).await,
        }
    })
}
