//! `producer`: lists the archive, plans batches, runs the pipeline locally or feeds the fleet.

use std::process::ExitCode;

use clap::Parser;
use floe_producer::cmd;

/// mimalloc: header scans and merges allocate many small values on many threads, where
/// glibc's malloc spent about a third of the run (perf on 8,000 MUR-shaped files).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    command: cmd::Command,
}

fn main() -> ExitCode {
    // The Lambda runtime starts the binary bare: it is then the planner behind the events queue.
    let cli = if floe_fleet::entry::started_by_lambda() {
        Cli::parse_from(["producer", "watch", "--lambda"])
    } else {
        Cli::parse()
    };
    cmd::main(cli.command)
}
