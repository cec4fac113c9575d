//! The `producer` command line as a library function: the binary and the Python wheel's
//! `producer` script (floe-python) both run it, so the two parse and behave alike.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::cmd;

// Doc comments here would become clap's help text: the items are named in the module doc.
#[allow(missing_docs)]
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
pub struct Cli {
    #[command(subcommand)]
    pub command: cmd::Command,
}

/// Parses `args` (the program name first) and runs the command to its exit code. A parse
/// error, `--help` and `--version` print as clap prints them and exit with clap's code (2 for
/// a bad flag, 0 for help), without ending the process: the caller may be Python.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => cmd::main(cli.command),
        Err(e) => floe_runtime::parse_failed(&e),
    }
}
