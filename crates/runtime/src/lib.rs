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
    quiet_broken_pipe();
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
    // Before any work: a limit that cannot be used stops the binary, named.
    if let Err(e) = floe_wire::limits::install_from_env() {
        eprintln!("{name}: {e}");
        return ExitCode::from(2);
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
            // Bounded: an error quoting its input does not grow with it.
            let line = error_chain(e.as_ref());
            let max = floe_wire::limits().error_chars as usize;
            eprintln!("{name}: {}", floe_wire::bounded(&line, max));
            ExitCode::FAILURE
        }
    }
}

/// What a command line that clap refused (or answered: `--help`, `--version`) exits with:
/// the message printed as clap prints it (help on stdout, errors on stderr) and clap's code
/// (2 for a usage error, 0 for help). Unlike `clap::Error::exit` it returns rather than ending
/// the process, so a command line run from Python hands its code back to the interpreter.
pub fn parse_failed(error: &clap::Error) -> ExitCode {
    use std::io::Write;
    // Nowhere left to report a failed print: the exit code still says what happened.
    let _ = error.print();
    let _ = std::io::stdout().flush();
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(1))
}

/// The number behind an [`ExitCode`] (which the standard library does not expose), for a
/// caller that needs it as a value, such as a Python `sys.exit`.
pub fn exit_code_value(code: ExitCode) -> u8 {
    (0..=u8::MAX)
        .find(|n| ExitCode::from(*n) == code)
        .unwrap_or(1)
}

/// The exit code of a command whose reader went away (128 + SIGPIPE, as a C
/// tool killed by the signal reports).
pub const BROKEN_PIPE_EXIT: i32 = 141;

/// `producer plan | head -1`: once the reader is gone, `println!` panics on the
/// broken pipe. That ends the command quietly with [`BROKEN_PIPE_EXIT`] instead
/// of a panic message. (Restoring SIGPIPE's default would also kill a worker
/// writing to a socket its peer closed; this touches printing alone.)
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        default(info);
    }));
}

/// An error and its causes on one line, `outer: cause: root cause`, each cause once.
///
/// Many errors repeat their cause in their own message (object_store's and the AWS
/// SDK's do, and so does a `"{url}: {source}"` error that also returns the source),
/// so printing the whole chain as is shows the same text several times. A cause
/// whose text the line already holds is left out. Of each message only its first
/// paragraph is kept: icechunk's errors append a blank line and a span trace.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let first_paragraph = |text: String| -> String {
        text.split("\n\n")
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let mut line = first_paragraph(error.to_string());
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = first_paragraph(c.to_string());
        let text = text.as_str();
        if !text.is_empty() && !line.contains(text) {
            line.push_str(": ");
            line.push_str(text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_read_back() {
        for n in [0u8, 1, 2, 141, 255] {
            assert_eq!(exit_code_value(ExitCode::from(n)), n);
        }
        assert_eq!(exit_code_value(ExitCode::SUCCESS), 0);
        assert_eq!(exit_code_value(ExitCode::FAILURE), 1);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("listing s3://b/archive: {inner}")]
    struct Listing {
        #[source]
        inner: Generic,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("Generic S3 error: {inner}")]
    struct Generic {
        #[source]
        inner: std::io::Error,
    }

    #[test]
    fn each_cause_is_printed_once() {
        let e = Listing {
            inner: Generic {
                inner: std::io::Error::other("connection closed before message completed"),
            },
        };
        let wrapped = anyhow::Error::new(e).context("planning the archive");
        let line = error_chain(wrapped.as_ref());
        assert_eq!(
            line,
            "planning the archive: listing s3://b/archive: Generic S3 error: connection closed before message completed"
        );
        assert_eq!(line.matches("connection closed").count(), 1);
        // anyhow's own alternate form repeats it: the reason this function exists.
        assert!(format!("{wrapped:#}").matches("connection closed").count() > 1);
    }

    #[test]
    fn trailing_paragraphs_are_dropped() {
        let e = anyhow::anyhow!("object store error service error\n\ncontext:\n   0: span")
            .context("store");
        assert_eq!(
            error_chain(e.as_ref()),
            "store: object store error service error"
        );
    }

    #[test]
    fn distinct_causes_are_all_kept() {
        let e = anyhow::anyhow!("root").context("middle").context("outer");
        assert_eq!(error_chain(e.as_ref()), "outer: middle: root");
    }
}
