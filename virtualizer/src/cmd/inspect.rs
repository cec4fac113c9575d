//! `virtualizer inspect`: every variable of each file with its chunk references.

use std::process::ExitCode;

use floe_source::SourceOptions;

/// Arguments of `inspect`.
#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// Files to inspect.
    #[arg(required = true)]
    pub urls: Vec<String>,
    /// One JSON object per variable per line instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Block size of the ranged-read cache, in bytes.
    #[arg(long, default_value_t = floe_source::DEFAULT_BLOCK_SIZE)]
    pub block_size: usize,
    /// Read s3:// sources without credentials.
    #[arg(long)]
    pub anonymous: bool,
}

/// Runs `inspect`: exit 1 when any file could not be read (the others are still shown).
pub async fn run(args: InspectArgs) -> ExitCode {
    let options = SourceOptions {
        block_size: Some(args.block_size),
        s3_anonymous: args.anonymous,
        ..SourceOptions::from_env()
    };
    let mut failed = false;
    for url in args.urls {
        match crate::inspect::inspect(&url, &options, None).await {
            Ok(file) => {
                if args.json {
                    for line in crate::inspect::json_lines(&file) {
                        println!("{line}");
                    }
                } else {
                    print!("{}", crate::inspect::summary(&file));
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
