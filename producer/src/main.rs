//! `producer`: lists the archive, plans batches, runs the pipeline locally or feeds the fleet.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use floe_producer::cmd;

#[derive(Parser)]
#[command(
    name = "producer",
    version,
    about = "Plan an archive of NetCDF files into groups and run or feed the floe pipeline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline in this process: local (or S3) files in, an Icechunk store out.
    ///
    /// Without --source, a small sample archive is generated and used, so this works on a
    /// fresh machine with no data and no cloud account.
    Local(cmd::local::LocalArgs),
    /// Write the sample ISMIP6-like archive to a directory.
    Sample {
        /// Output directory.
        #[arg(long, default_value = "floe-demo/sample-archive")]
        out: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    floe_runtime::run("producer", || run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Local(args) => {
            let json = args.json;
            let summary = cmd::local::run(args).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", cmd::local::render(&summary));
            }
            // 2: the run completed, but some batches failed (listed above).
            Ok(if summary.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Sample { out } => {
            let files = floe_producer::sample::write_archive(&out)?;
            println!("wrote {} files under {}", files.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
