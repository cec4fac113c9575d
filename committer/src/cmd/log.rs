//! `committer log`: the recent commits of `main`, with the groups they wrote.

use std::process::ExitCode;

use floe_store::{CloudSettings, LogEntry, StoreLocation};

/// Arguments of `log`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Store: a directory or s3://bucket/prefix. It must exist: looking never creates one.
    #[arg(long)]
    pub store: String,
    /// How many commits.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub limit: usize,
    /// JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// Runs `log`.
pub async fn run(args: LogArgs) -> anyhow::Result<ExitCode> {
    let repo = open_existing(&args.store).await?;
    for entry in floe_store::commit::log(&repo, args.limit).await? {
        if args.json {
            println!("{}", serde_json::to_string(&entry)?);
        } else {
            println!("{}", render(&entry));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One commit on one line: id, time, message, groups.
pub fn render(entry: &LogEntry) -> String {
    format!(
        "{}  {}  {}  {}",
        entry.id,
        entry.at,
        entry.message,
        entry.groups.join(",")
    )
}

/// The repository at `store`, or an error naming it when there is none (nothing is created).
pub async fn open_existing(store: &str) -> anyhow::Result<floe_store::Repository> {
    let location = StoreLocation::parse(store)?;
    floe_store::open_existing(&location, &CloudSettings::from_env())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no Icechunk repository at {location}"))
}
