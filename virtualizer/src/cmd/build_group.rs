//! `virtualizer build-group`: the merged group of some files, as the committer would write it.

use std::path::PathBuf;
use std::process::ExitCode;

use floe_source::SourceOptions;

/// Arguments of `build-group`.
#[derive(Debug, Clone, clap::Args)]
pub struct BuildGroupArgs {
    /// Files of one group (files of several groups are refused, naming each group).
    #[arg(required = true)]
    pub urls: Vec<String>,
    /// One JSON object per array instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Also write the encoded manifest fragment to this file (for `committer apply`).
    #[arg(long)]
    pub fragment: Option<PathBuf>,
}

/// Runs `build-group`.
pub async fn run(args: BuildGroupArgs) -> ExitCode {
    use crate::build_group as bg;
    let options = SourceOptions::from_env();
    let (build, cost) = match bg::build(&args.urls, &options).await {
        Ok((_, build, cost)) => (build, cost),
        Err(e) => {
            eprintln!("virtualizer: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        for a in bg::arrays_json(&build) {
            println!("{a}");
        }
        println!(
            "{}",
            serde_json::json!({"group": build.fragment.group_path, "batch_id": build.fragment.batch_id, "normalizations": build.notes, "warnings": build.warnings, "requests_per_file": cost.requests, "bytes_read_per_file": cost.bytes_read})
        );
    } else {
        print!("{}", bg::summary(&build));
        println!(
            "read {} file(s) with {} request(s) ({} bytes)",
            cost.requests.len(),
            cost.total_requests(),
            cost.total_bytes()
        );
    }
    if let Some(path) = args.fragment {
        let written = build
            .fragment
            .encode()
            .map_err(|e| e.to_string())
            .and_then(|bytes| std::fs::write(&path, bytes).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("virtualizer: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
