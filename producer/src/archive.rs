//! Listing a source archive and planning batches from it.

use anyhow::{Context, Result};
use floe_group::archive::{plan, ListedObject, Plan, SkipList};
use floe_group::profile::{self, Profile};
use floe_source::SourceOptions;

/// Lists every object under `source` (a directory, `s3://bucket/prefix`).
pub async fn list_archive(source: &str, options: &SourceOptions) -> Result<Vec<ListedObject>> {
    let root = format!(
        "{}/",
        floe_source::normalize_url(source).trim_end_matches('/')
    );
    let infos = floe_source::list(source, options)
        .await
        .with_context(|| format!("listing {source}"))?;
    Ok(infos
        .into_iter()
        .filter_map(|i| {
            let relative_path = i.url.strip_prefix(&root)?.to_string();
            Some(ListedObject {
                url: i.url,
                relative_path,
                size: i.size,
                etag: i.etag,
                last_modified: Some(i.last_modified),
            })
        })
        .collect())
}

/// Group filters: glob patterns in either spelling of a group, `INST/MODEL/EXP`
/// (`AWI/*/exp0*`, `*/*/ctrl_proj`, `AWI`) or the group path every output
/// prints, `INST_MODEL/EXP` (`AWI_PISM1/exp05`, `AWI_PISM1`).
#[derive(Debug, Clone, Default)]
pub struct GroupFilter {
    given: Vec<String>,
    /// Matched against `INST/MODEL/EXP`.
    by_parts: Vec<glob::Pattern>,
    /// Matched against the group path `INST_MODEL/EXP`.
    by_group_path: Vec<glob::Pattern>,
    /// For profiles whose groups are named by a path template (CMIP6's
    /// `{source}/{experiment}/…`): matched against the path or a folder above it.
    by_path: Vec<glob::Pattern>,
}

impl GroupFilter {
    /// Parses patterns for the groups `profile` makes: ISMIP6-shaped groups take
    /// [`GroupFilter::new`]'s spellings, path-named groups (CMIP6's and other
    /// templates) any path of theirs, at any depth (`CESM2`, `CESM2/ssp585`,
    /// `*/ssp585/*/Amon/*`).
    pub fn for_profile(patterns: &[String], profile: &Profile) -> Result<GroupFilter> {
        if floe_group::archive::makes_ismip6_groups(profile) {
            return GroupFilter::new(patterns);
        }
        let mut by_path = Vec::new();
        for p in patterns {
            let p = p.trim_matches('/');
            for full in [p.to_string(), format!("{p}/*")] {
                by_path
                    .push(glob::Pattern::new(&full).with_context(|| format!("bad filter {p:?}"))?);
            }
        }
        Ok(GroupFilter {
            given: patterns.to_vec(),
            by_path,
            ..Default::default()
        })
    }

    /// Parses patterns; none means everything.
    pub fn new(patterns: &[String]) -> Result<GroupFilter> {
        let mut filter = GroupFilter {
            given: patterns.to_vec(),
            ..Default::default()
        };
        for p in patterns {
            let p = p.trim_matches('/');
            let compile = |full: String| {
                glob::Pattern::new(&full).with_context(|| format!("bad filter {p:?}"))
            };
            let slashes = p.matches('/').count();
            anyhow::ensure!(
                slashes <= 2,
                "bad filter {p:?}: a group is INST/MODEL/EXP or INST_MODEL/EXP (e.g. AWI/PISM1/exp05 or AWI_PISM1/exp05)"
            );
            filter.by_parts.push(compile(match slashes {
                0 => format!("{p}/*/*"),
                1 => format!("{p}/*"),
                _ => p.to_string(),
            })?);
            if slashes <= 1 {
                filter.by_group_path.push(compile(if slashes == 0 {
                    format!("{p}/*")
                } else {
                    p.to_string()
                })?);
            }
        }
        Ok(filter)
    }

    /// Whether no pattern was given (everything passes).
    pub fn is_empty(&self) -> bool {
        self.given.is_empty()
    }

    /// Whether a group passes.
    pub fn matches(&self, group: &floe_wire::GroupKey) -> bool {
        if self.is_empty() {
            return true;
        }
        if !self.by_path.is_empty() {
            return self.matches_path(&group.path);
        }
        let field = |name| group.field(name);
        let parts = format!(
            "{}/{}/{}",
            field("institution"),
            field("model"),
            field("experiment")
        );
        let path = group.group_path();
        self.by_parts.iter().any(|p| p.matches(&parts))
            || self.by_group_path.iter().any(|p| p.matches(&path))
    }

    /// Whether a path-named group passes (see [`GroupFilter::for_profile`]).
    pub fn matches_path(&self, group_path: &str) -> bool {
        self.is_empty() || self.by_path.iter().any(|p| p.matches(group_path))
    }

    /// The patterns as given, for messages.
    pub fn describe(&self) -> String {
        self.given
            .iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why a plan is refused before anything is written.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The source does not exist.
    #[error("source {source_url} does not exist (--source is the directory or bucket prefix holding the archive's *.nc files)")]
    SourceMissing {
        /// The source as given.
        source_url: String,
    },
    /// The source is a file, not the archive's root.
    #[error("source {source_url} is a file, not a directory: --source is the archive's root directory (its *.nc files under it); to look at one file, use `virtualizer inspect`")]
    SourceNotADirectory {
        /// The source as given.
        source_url: String,
    },
    /// The source exists but holds no NetCDF file.
    #[error("source {source_url} holds no NetCDF file (*.nc): {listed} object(s) listed")]
    NoNetcdf {
        /// The source as given.
        source_url: String,
        /// Objects listed under it.
        listed: usize,
    },
    /// NetCDF files are there, but none maps to a group.
    #[error("source {source_url}: none of its {netcdf} NetCDF file(s) maps to a group of the {profile} profile ({skipped} left out; `producer plan` lists each with its reason). For a layout no profile knows, `--profile files` makes one group of each file")]
    NoGroup {
        /// The source as given.
        source_url: String,
        /// NetCDF files listed.
        netcdf: usize,
        /// Objects left out of the plan.
        skipped: usize,
        /// The profile's id.
        profile: String,
    },
    /// The filter matches none of the archive's groups.
    #[error("--filter {filter} matches none of the {groups} group(s) of {source_url}; a filter is a group path with * globs (ISMIP6 groups also as INST/MODEL/EXP); groups here include: {examples}")]
    FilterMatchesNothing {
        /// The filter patterns.
        filter: String,
        /// The source as given.
        source_url: String,
        /// Groups in the archive.
        groups: usize,
        /// A few group paths.
        examples: String,
    },
}

/// Lists and plans, keeping only the groups that pass the filter. A source that
/// does not exist or holds no NetCDF file, and a filter that matches nothing, are
/// errors ([`PlanError`]): an empty plan would create a store and succeed silently.
pub async fn plan_archive(
    source: &str,
    options: &SourceOptions,
    profile: &Profile,
    skip: &SkipList,
    filter: &GroupFilter,
) -> Result<Plan> {
    floe_group::archive::runnable(profile)?;
    let objects = list_source(source, options).await?;
    let netcdf = netcdf_count(&objects);
    let mut p = plan(&objects, profile, skip)?;
    if p.batches.is_empty() {
        return Err(PlanError::NoGroup {
            source_url: source.to_string(),
            netcdf,
            skipped: p.skipped.len(),
            profile: profile.id.clone(),
        }
        .into());
    }
    let all: Vec<String> = p.batches.iter().map(|b| b.group.group_path()).collect();
    p.batches.retain(|b| filter.matches(&b.group));
    if p.batches.is_empty() {
        return Err(PlanError::FilterMatchesNothing {
            filter: filter.describe(),
            source_url: source.to_string(),
            groups: all.len(),
            examples: all.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
        }
        .into());
    }
    Ok(p)
}

/// Lists a source for planning: it must exist and hold at least one NetCDF file.
pub async fn list_source(source: &str, options: &SourceOptions) -> Result<Vec<ListedObject>> {
    check_local_source(source)?;
    let objects = list_archive(source, options).await?;
    if netcdf_count(&objects) == 0 {
        return Err(PlanError::NoNetcdf {
            source_url: source.to_string(),
            listed: objects.len(),
        }
        .into());
    }
    Ok(objects)
}

fn netcdf_count(objects: &[ListedObject]) -> usize {
    objects
        .iter()
        .filter(|o| o.relative_path.to_ascii_lowercase().ends_with(".nc"))
        .count()
}

/// A local source must be an existing directory. (An object-store prefix
/// "exists" when it lists something: an empty one is [`PlanError::NoNetcdf`].)
fn check_local_source(source: &str) -> Result<(), PlanError> {
    let url = floe_source::normalize_url(source);
    let Some(path) = url.strip_prefix("file://") else {
        return Ok(());
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(PlanError::SourceNotADirectory {
            source_url: source.to_string(),
        }),
        Err(_) => Err(PlanError::SourceMissing {
            source_url: source.to_string(),
        }),
    }
}

/// Keeps one ice sheet: `sheet` when given, else the archive must hold only one
/// (group paths do not name the sheet, so one store holds one sheet).
pub fn restrict_to_one_ice_sheet(plan: &mut Plan, sheet: Option<&str>) -> Result<()> {
    if let Some(sheet) = sheet {
        plan.batches
            .retain(|b| b.group.field("ice_sheet").eq_ignore_ascii_case(sheet));
    }
    let sheets: std::collections::BTreeSet<&str> = plan
        .batches
        .iter()
        .map(|b| b.group.field("ice_sheet"))
        .collect();
    anyhow::ensure!(
        sheets.len() <= 1,
        "the archive holds {} ice sheets ({}); group paths do not name the ice sheet, so write each into its own store with --ice-sheet",
        sheets.len(),
        sheets.into_iter().collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// The objects a plan left out, with the reason, as (URL, reason) pairs.
pub fn skipped_reasons(plan: &Plan) -> Vec<(String, String)> {
    plan.skipped
        .iter()
        .map(|s| (s.url.clone(), s.reason.clone()))
        .collect()
}

/// The distinct parent groups (`{institution}_{model}`) of a plan.
pub fn parent_groups(plan: &Plan) -> Vec<String> {
    plan.batches
        .iter()
        .map(|b| b.group.parent_path())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Which archive profile plans the archive, and its skip list (the same flags
/// on `plan`, `enqueue`, `local` and `verify`: batch ids depend on the profile).
#[derive(Debug, Clone, clap::Args)]
pub struct ProfileArgs {
    /// Archive profile: how file paths map to groups and variables, how time is read. A
    /// built-in one (ismip6, cmip6) or a profile TOML file; see docs/profiles.md.
    #[arg(long, env = "FLOE_PROFILE", default_value = profile::DEFAULT_PROFILE, value_name = "NAME|FILE")]
    pub profile: String,
    /// Skip list file (lines `prefix  # reason`), replacing the profile's own.
    #[arg(long, value_name = "FILE")]
    pub skip_list: Option<std::path::PathBuf>,
}

impl Default for ProfileArgs {
    fn default() -> Self {
        ProfileArgs {
            profile: profile::DEFAULT_PROFILE.to_string(),
            skip_list: None,
        }
    }
}

impl ProfileArgs {
    /// The profile (built in, or read from its file) and the skip list in force.
    pub fn load(&self) -> Result<(Profile, SkipList)> {
        let text = match Profile::is_builtin(&self.profile) {
            true => None,
            false => {
                let path = std::path::Path::new(&self.profile);
                if !path.is_file() {
                    return Err(profile::ProfileError::NotFound {
                        name: self.profile.clone(),
                        builtin: Profile::builtin_ids(),
                    }
                    .into());
                }
                Some(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("reading profile {}", path.display()))?,
                )
            }
        };
        let profile = profile::resolve(&self.profile, text.as_deref())?;
        let skip = match &self.skip_list {
            Some(p) => SkipList::parse(
                &std::fs::read_to_string(p)
                    .with_context(|| format!("reading skip list {}", p.display()))?,
            ),
            None => profile.skip_list(),
        };
        Ok((profile, skip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: &str, m: &str, e: &str) -> floe_wire::GroupKey {
        let fields = [
            ("ice_sheet", "AIS"),
            ("institution", i),
            ("model", m),
            ("experiment", e),
        ];
        floe_group::archive::ismip6_group(
            &fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn filters_accept_the_group_path_spelling() {
        for spelling in [
            "AWI_PISM1/exp05",
            "AWI_PISM1",
            "AWI_*/exp0*",
            "AWI/PISM1/exp05",
        ] {
            let f = GroupFilter::new(&[spelling.into()]).expect("filter");
            assert!(f.matches(&key("AWI", "PISM1", "exp05")), "{spelling}");
            assert!(!f.matches(&key("ULB", "X", "exp05")), "{spelling}");
        }
        let f = GroupFilter::new(&["*/exp05".into()]).expect("filter");
        assert!(f.matches(&key("AWI", "PISM1", "exp05")));
        assert!(!f.matches(&key("AWI", "PISM1", "exp06")));
        assert!(GroupFilter::new(&["a/b/c/d".into()]).is_err());
    }

    #[test]
    fn path_named_groups_filter_at_any_depth() {
        let cmip6 = Profile::builtin("cmip6")
            .expect("built in")
            .expect("parses");
        let f = GroupFilter::for_profile(&["CESM2/ssp585/r1i1p1f1/Amon/gn".into()], &cmip6)
            .expect("deep filter");
        assert!(f.matches_path("CESM2/ssp585/r1i1p1f1/Amon/gn"));
        assert!(!f.matches_path("CESM2/ssp126/r1i1p1f1/Amon/gn"));
        let f = GroupFilter::for_profile(&["*/ssp585".into()], &cmip6).expect("filter");
        assert!(f.matches_path("MIROC6/ssp585/r1i1p1f1/Amon/gn"));
        assert!(!f.matches_path("MIROC6/ssp126/r1i1p1f1/Amon/gn"));
    }

    #[test]
    fn filters_match_institution_model_experiment() {
        let f = GroupFilter::new(&["AWI".into(), "*/*/ctrl_proj".into()]).expect("filter");
        assert!(f.matches(&key("AWI", "PISM1", "exp05")));
        assert!(f.matches(&key("ULB", "X", "ctrl_proj")));
        assert!(!f.matches(&key("ULB", "X", "exp05")));
        assert!(GroupFilter::new(&[])
            .expect("filter")
            .matches(&key("A", "B", "C")));
    }
}

/// Changed groups split into appends and rebuilds (`floe_group::append`).
#[derive(Debug, Default)]
pub struct AppendPlan {
    /// What to virtualize: each append batch (new files only) or the whole group.
    pub batches: Vec<floe_wire::BatchDescriptor>,
    /// Groups appended to, with how many files are new.
    pub appended: Vec<(String, usize)>,
    /// Groups in the store that are rebuilt, and why.
    pub rebuilt: Vec<(String, String)>,
    /// The whole batch of each appended group, for when its append is refused.
    pub whole: std::collections::BTreeMap<String, floe_wire::BatchDescriptor>,
}

/// Plans each changed batch as an append onto its stored group where it
/// extends it, else as a rebuild with the reason; groups not in the store are
/// built as planned. With `appends_off` (the reason), every stored group is rebuilt.
pub async fn plan_appends(
    repo: &floe_store::Repository,
    changed: Vec<floe_wire::BatchDescriptor>,
    appends_off: Option<&str>,
) -> Result<AppendPlan> {
    use floe_group::append::{plan_append, RebuildReason};
    let groups: Vec<String> = changed.iter().map(|b| b.group.group_path()).collect();
    let committed = floe_store::commit::committed(repo, &groups).await?;
    let mut out = AppendPlan::default();
    for mut batch in changed {
        let group = batch.group.group_path();
        let Some(stored) = committed.get(&group) else {
            out.batches.push(batch);
            continue;
        };
        // A rebuild replaces the state it was planned over, even when its inputs are not
        // newer (a file removed).
        batch.replaces = Some(stored.batch_id.clone());
        let Some(concat) = batch.concat.clone() else {
            out.batches.push(batch);
            continue;
        };
        if let Some(why) = appends_off {
            out.rebuilt.push((group, why.to_string()));
            out.batches.push(batch);
            continue;
        }
        let series = floe_store::commit::stored_series(repo, &group, &concat.dimension)
            .await
            .with_context(|| format!("reading the stored state of {group}"))?;
        let left_out: Vec<String> = stored.left_out.iter().map(|w| w.variable.clone()).collect();
        let planned = series
            .as_ref()
            .map_or(Err(RebuildReason::NoIdentities), |s| {
                plan_append(
                    &batch,
                    &s.batch_id,
                    s.inputs.as_deref(),
                    s.units.as_deref(),
                    &left_out,
                )
            });
        match planned {
            Ok(mut append) => {
                append.replaces = None;
                out.appended.push((group.clone(), append.files.len()));
                out.whole.insert(group, batch);
                out.batches.push(append);
            }
            Err(reason) => {
                out.rebuilt.push((group, reason.to_string()));
                out.batches.push(batch);
            }
        }
    }
    Ok(out)
}
