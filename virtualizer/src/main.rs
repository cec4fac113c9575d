//! `virtualizer`: reads NetCDF headers by ranged reads and builds virtual Zarr manifests.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use floe_source::SourceOptions;

#[derive(Parser)]
#[command(
    name = "virtualizer",
    version,
    about = "Read NetCDF headers by ranged reads and turn them into virtual Zarr references"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every variable of each file with its chunk references (raw view, no normalization).
    ///
    /// URLs: local paths, file://, s3://bucket/key (AWS_ENDPOINT_URL honoured), gs://bucket/key
    /// (anonymous), https://host/path.
    Inspect {
        /// Files to inspect.
        #[arg(required = true)]
        urls: Vec<String>,
        /// One JSON object per variable per line instead of a summary.
        #[arg(long)]
        json: bool,
        /// Block size of the ranged-read cache, in bytes.
        #[arg(long, default_value_t = floe_source::DEFAULT_BLOCK_SIZE)]
        block_size: usize,
        /// Read s3:// sources without credentials.
        #[arg(long)]
        anonymous: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("virtualizer: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Inspect {
            urls,
            json,
            block_size,
            anonymous,
        } => {
            let options = SourceOptions {
                block_size: Some(block_size),
                s3_anonymous: anonymous,
                ..SourceOptions::from_env()
            };
            runtime.block_on(inspect_all(urls, json, options))
        }
    }
}

async fn inspect_all(urls: Vec<String>, json: bool, options: SourceOptions) -> ExitCode {
    let mut failed = false;
    for url in urls {
        match floe_virtualizer::inspect::inspect(&url, &options, None).await {
            Ok(file) => {
                if json {
                    for line in floe_virtualizer::inspect::json_lines(&file) {
                        println!("{line}");
                    }
                } else {
                    print!("{}", floe_virtualizer::inspect::summary(&file));
                }
                for p in &file.manifest.problems {
                    eprintln!(
                        "virtualizer: {}: variable {}: {}",
                        file.info.url, p.variable, p.error
                    );
                }
            }
            Err(e) => {
                eprintln!("virtualizer: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
