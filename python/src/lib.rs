//! # floe-python: the `floe_icechunk._native` extension module
//!
//! One shared library serves the wheel's three console scripts (maturin cannot ship binaries
//! beside a PyO3 module in one wheel): [`run_cli`] runs the same command-line functions as the
//! `producer`, `virtualizer` and `committer` binaries. [`parser`] is the Rust half of
//! `FloeParser`, the VirtualiZarr parser.

#![warn(missing_docs)]

use std::ffi::OsString;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

pub mod parser;

/// The binaries' allocator, for the same reason (header scans and merges allocate many small
/// values on many threads, where glibc's malloc spent about a third of the run).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The exit code of a Rust panic, as a binary's `main` reports it.
const PANIC_EXIT: u8 = 101;

/// Runs one of the three command lines on `argv` (the program path first, as `sys.argv`) and
/// returns its exit code. The GIL is released for the whole run: the command's threads never
/// touch Python, and Ctrl-C is left to the signal disposition the caller set (the shim restores
/// the default, as in the binaries).
#[pyfunction]
fn run_cli(py: Python<'_>, program: &str, argv: Vec<OsString>) -> PyResult<u8> {
    let run: fn(Vec<OsString>) -> std::process::ExitCode = match program {
        "producer" => floe_producer::cli::run,
        "virtualizer" => floe_virtualizer::cli::run,
        "committer" => floe_committer::cli::run,
        other => {
            return Err(PyValueError::new_err(format!(
                "no command line named {other:?} (producer, virtualizer, committer)"
            )))
        }
    };
    let code = py.detach(|| {
        // A panic has printed its message through the hook already; a binary exits 101.
        let code = catch_unwind(AssertUnwindSafe(|| run(argv)))
            .map_or(PANIC_EXIT, floe_runtime::exit_code_value);
        // A binary's stdout is flushed when its main returns; here the process goes on in
        // Python, which knows nothing of Rust's buffer. Nothing is left to report a failure to.
        let _ = std::io::stdout().flush();
        code
    });
    Ok(code)
}

/// The `floe_icechunk._native` module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    m.add_function(wrap_pyfunction!(parser::read_header, m)?)?;
    m.add_class::<parser::NativeStore>()?;
    Ok(())
}
