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
    /// The archive profile that groups the files: a built-in id (ismip6, cmip6, files)
    /// or a TOML file. Without it, ISMIP6's path rules and year binning.
    #[arg(long, env = "FLOE_PROFILE")]
    pub profile: Option<String>,
}

/// The profile named by `--profile`: a built-in id, else a TOML file.
fn load_profile(name: &str) -> Result<floe_group::profile::Profile, String> {
    let text = if floe_group::profile::Profile::is_builtin(name) {
        None
    } else {
        Some(std::fs::read_to_string(name).map_err(|e| {
            format!(
                "--profile {name}: not a built-in profile ({}) and not a readable file: {e}",
                floe_group::profile::Profile::builtin_ids()
            )
        })?)
    };
    floe_group::profile::resolve(name, text.as_deref()).map_err(|e| e.to_string())
}

/// Runs `build-group`.
pub async fn run(args: BuildGroupArgs) -> ExitCode {
    use crate::build_group as bg;
    let options = SourceOptions::from_env();
    let profile = match args.profile.as_deref().map(load_profile).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("virtualizer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (build, cost) = match bg::build(&args.urls, &options, profile.as_ref()).await {
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
