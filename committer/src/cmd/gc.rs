//! `committer gc`: delete what failed commit attempts left behind.

use std::process::ExitCode;

use floe_store::GcReport;

/// Arguments of `gc`.
#[derive(Debug, Clone, clap::Args)]
pub struct GcArgs {
    /// Store: a directory or s3://bucket/prefix. It must exist: looking never creates one.
    #[arg(long)]
    pub store: String,
    /// Minimum age of a deleted object: a number with s, m, h or d.
    #[arg(long, default_value = "1h", value_parser = parse_age)]
    pub older_than: std::time::Duration,
    /// Delete (default: dry run).
    #[arg(long)]
    pub delete: bool,
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs `gc`: exit 0, or 2 when some objects could not be deleted.
pub async fn run(args: GcArgs) -> anyhow::Result<ExitCode> {
    let repo = super::log::open_existing(&args.store).await?;
    let report = floe_store::collect_garbage(&repo, args.older_than, !args.delete).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", render(&report));
    }
    Ok(if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "committer: {} object(s) could not be deleted; the next run retries them",
            report.failed
        );
        ExitCode::from(2)
    })
}

/// What was (or would be) deleted.
pub fn render(report: &GcReport) -> String {
    let verb = if report.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    format!(
        "{verb} {} snapshot(s), {} transaction log(s), {} manifest(s), {} chunk(s), {} bytes (unreferenced, created before {}){}",
        report.snapshots,
        report.transaction_logs,
        report.manifests,
        report.chunks,
        report.bytes,
        report.cutoff,
        if report.dry_run { "; dry run, pass --delete to delete" } else { "" }
    )
}

/// `90s`, `15m`, `1h`, `2d`.
pub fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit: s, m, h or d (e.g. 1h)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number followed by s, m, h or d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; use s, m, h or d"
            ))
        }
    };
    Ok(std::time::Duration::from_secs(
        number.saturating_mul(seconds),
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_age;

    #[test]
    fn ages_need_a_known_unit() {
        assert_eq!(parse_age("90s"), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(parse_age("2d"), Ok(std::time::Duration::from_secs(172_800)));
        assert!(parse_age("15").is_err_and(|e| e.contains("give a unit")));
        assert!(parse_age("3w").is_err_and(|e| e.contains("unknown unit")));
    }
}
