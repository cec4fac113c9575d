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
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("producer: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Local(args) => {
                let json = args.json;
                let summary = cmd::local::run(args).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                } else {
                    print!("{}", cmd::local::render(&summary));
                }
                Ok::<_, anyhow::Error>(if summary.failed.is_empty() {
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
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("producer: {e:#}");
            ExitCode::FAILURE
        }
    }
}
