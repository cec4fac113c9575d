//! `committer`: writes manifest fragments into an Icechunk store; shows its history.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use floe_committer::{apply, common_source_prefix, decode, FragmentInput};
use floe_store::{CommitPolicy, Committer, S3Settings, StoreLocation};

#[derive(Parser)]
#[command(
    name = "committer",
    version,
    about = "Commit floe manifest fragments into an Icechunk store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write fragments (local paths or s3:// URLs) into a store, all in one commit.
    ///
    /// A fragment that is missing, corrupt, of an unknown version, or that references sources
    /// no virtual chunk container covers fails alone, with its name and the reason.
    Apply {
        /// Fragment files.
        #[arg(required = true)]
        fragments: Vec<String>,
        /// Store: a directory or s3://bucket/prefix (AWS_ENDPOINT_URL honoured).
        #[arg(long)]
        store: String,
        /// Source prefix the virtual references point into (repeatable). Default: the longest
        /// common directory of the fragments' sources.
        #[arg(long = "container")]
        containers: Vec<String>,
    },
    /// Recent commits of `main` with the groups and batch ids they wrote.
    Log {
        /// Store.
        #[arg(long)]
        store: String,
        /// How many commits.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    floe_runtime::run("committer", || run(cli))
}

async fn read(path: &str) -> Result<Vec<u8>, String> {
    let options = floe_source::SourceOptions::from_env();
    let source = floe_source::Source::resolve(path, &options).map_err(|e| e.to_string())?;
    source
        .read_all()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let s3 = S3Settings::from_env();
    match cli.command {
        Command::Apply {
            fragments,
            store,
            mut containers,
        } => {
            let mut inputs = Vec::new();
            for f in &fragments {
                inputs.push(FragmentInput {
                    id: f.clone(),
                    bytes: read(f).await,
                    sha256: None,
                });
            }
            if containers.is_empty() {
                let decoded: Vec<_> = inputs.iter().filter_map(|i| decode(i).ok()).collect();
                containers.extend(common_source_prefix(&decoded));
            }
            let location = StoreLocation::parse(&store)?;
            let repo = floe_store::open_repository(&location, &s3, &containers).await?;
            let report = apply(&Committer::new(repo, CommitPolicy::default()), inputs).await?;
            for id in &report.written {
                println!("written  {id}");
            }
            for (id, why) in &report.skipped {
                println!("skipped  {id}: {why}");
            }
            for (_, why) in &report.failed {
                eprintln!("committer: {why}");
            }
            println!(
                "{} written, {} skipped, {} failed; commit {} after {} attempt(s)",
                report.written.len(),
                report.skipped.len(),
                report.failed.len(),
                report.snapshot.as_deref().unwrap_or("(none)"),
                report.attempts
            );
            Ok(if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Log { store, limit, json } => {
            let location = StoreLocation::parse(&store)?;
            let repo = floe_store::open_repository(&location, &s3, &[]).await?;
            for entry in floe_store::commit::log(&repo, limit).await? {
                if json {
                    println!("{}", serde_json::to_string(&entry)?);
                } else {
                    println!(
                        "{}  {}  {}  {}",
                        entry.id,
                        entry.at,
                        entry.message,
                        entry.groups.join(",")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
