//! # floe-runtime: the one way floe's binaries start
//!
//! Tracing to stderr (filtered by `RUST_LOG`, JSON inside AWS Lambda), a
//! multi-threaded tokio runtime, and one place that turns an error into a
//! message naming the program and a non-zero exit code.

#![warn(missing_docs)]

use std::future::Future;
use std::process::ExitCode;

/// Runs a binary's async main: sets up tracing and the runtime, prints
/// `NAME: error` with its causes on failure.
pub fn run<Fut>(name: &str, main: impl FnOnce() -> Fut) -> ExitCode
where
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::from_default_env();
    // Colours only on a terminal: a log captured to a file or a pipe stays plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // Lambda ships logs to CloudWatch: structured JSON there, readable text elsewhere.
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        builder.json().init();
    } else {
        builder.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
