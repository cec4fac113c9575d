//! `producer`: lists the archive, plans batches, runs the pipeline locally or feeds the fleet.
//! The command line is [`floe_producer::cli`], which the Python wheel's `producer` runs too.

use std::process::ExitCode;

/// mimalloc: header scans and merges allocate many small values on many threads, where
/// glibc's malloc spent about a third of the run (perf on 8,000 MUR-shaped files).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The Lambda runtime starts the binary bare: it is then the planner behind the events queue.
    if floe_fleet::entry::started_by_lambda() {
        floe_producer::cli::run(["producer", "watch", "--lambda"])
    } else {
        floe_producer::cli::run(std::env::args_os())
    }
}
