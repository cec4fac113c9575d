//! `virtualizer`: reads NetCDF headers by ranged reads and builds virtual Zarr manifests.
//! The command line is [`floe_virtualizer::cli`], which the Python wheel's `virtualizer` runs too.

use std::process::ExitCode;

/// mimalloc: header scans and merges allocate many small values on many threads, where
/// glibc's malloc spent about a third of the run (perf on 8,000 MUR-shaped files).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The Lambda runtime starts the binary bare: it then serves invocations.
    if floe_fleet::entry::started_by_lambda() {
        floe_virtualizer::cli::run(["virtualizer", "lambda"])
    } else {
        floe_virtualizer::cli::run(std::env::args_os())
    }
}
