//! `committer`: writes manifest fragments into an Icechunk store; shows its history.
//! The command line is [`floe_committer::cli`], which the Python wheel's `committer` runs too.

use std::process::ExitCode;

/// mimalloc: header scans and merges allocate many small values on many threads, where
/// glibc's malloc spent about a third of the run (perf on 8,000 MUR-shaped files).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The Lambda runtime starts the binary bare: it then serves invocations.
    if floe_fleet::entry::started_by_lambda() {
        floe_committer::cli::run(["committer", "lambda"])
    } else {
        floe_committer::cli::run(std::env::args_os())
    }
}
