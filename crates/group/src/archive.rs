//! ISMIP6 archive rules: paths to group identities, skip list, batches, batch ids.
//!
//! The rules are a profile's ([`crate::profile`]); for ISMIP6 (the default),
//! paths look like `Projection-AIS/{INST}/{MODEL}/{EXP}/{var}_AIS_{INST}_{MODEL}_{EXP}.nc`
//! (Greenland: `…-GIS/…/{var}_GIS_…`). Institution, model and experiment come
//! from the directories, never from the file name, whose tokens can differ
//! (`SICOPOLIS1/…/acabf_AIS_ILTS_PIK_SICOPOLIS_hist_std.nc`). The variable is
//! the file name up to the first `_`, minus an experiment prefix that UCIJPL/ISSM
//! puts in front of it (`exp13acabf_…` is `acabf`).

use std::collections::BTreeMap;

use floe_wire::{
    BatchDescriptor, ConcatSpec, GroupKey, SourceFile, VariableSelection, SCHEMA_VERSION,
};

use crate::profile::{Profile, TimePolicy};
use serde::{Deserialize, Serialize};

/// One file's place in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedPath {
    /// The group.
    pub group: GroupKey,
    /// The variable.
    pub variable: String,
}

/// Why a path is not part of any ISMIP6 group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not `….nc`.
    #[error("not a NetCDF file name")]
    NotNetcdf,
    /// Not `{institution}/{model}/{experiment}/{var}_{AIS|GIS}_….nc`.
    #[error("{0}")]
    NotIsmip6(String),
}

/// The built-in ISMIP6 profile, parsed once.
fn ismip6_profile() -> &'static Profile {
    static PROFILE: std::sync::OnceLock<Profile> = std::sync::OnceLock::new();
    PROFILE.get_or_init(|| match Profile::builtin(crate::profile::DEFAULT_PROFILE) {
        Some(Ok(p)) => p,
        // The built-in profile is part of the binary and parsed by the unit tests.
        _ => unreachable!("the built-in ismip6 profile parses"),
    })
}

/// Parses a path relative to the archive root (or any URL ending in one) by the
/// ISMIP6 profile's rules (`data/profiles/ismip6.toml`).
pub fn parse_path(path: &str) -> Result<ParsedPath, PathError> {
    if !path.ends_with(".nc") {
        return Err(PathError::NotNetcdf);
    }
    let m = ismip6_profile()
        .match_path(path)
        .map_err(|e| PathError::NotIsmip6(e.to_string()))?;
    Ok(ParsedPath {
        group: ismip6_group(&m.fields),
        variable: m.variable,
    })
}

/// The group of an ISMIP6 file, from its path fields: `{institution}_{model}/{experiment}`,
/// carrying the ice sheet, institution, model and experiment.
pub fn ismip6_group(fields: &BTreeMap<String, String>) -> GroupKey {
    let fields: BTreeMap<String, String> = ["ice_sheet", "institution", "model", "experiment"]
        .into_iter()
        .map(|name| {
            (
                name.to_string(),
                fields.get(name).cloned().unwrap_or_default(),
            )
        })
        .collect();
    let path = format!(
        "{}_{}/{}",
        fields["institution"], fields["model"], fields["experiment"]
    );
    GroupKey::new(path, fields)
}

pub use crate::skip::SkipList;

/// A listed object: URL, path relative to the archive root, identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// Full URL.
    pub url: String,
    /// Path relative to the archive root.
    pub relative_path: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag.
    pub etag: Option<String>,
    /// Modification time.
    pub last_modified: Option<String>,
}

/// An object left out of the plan, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedObject {
    /// URL.
    pub url: String,
    /// Why.
    pub reason: String,
}

/// Batches (one per group) and what was left out.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// One batch per group, sorted by group.
    pub batches: Vec<BatchDescriptor>,
    /// Objects that are not inputs.
    pub skipped: Vec<SkippedObject>,
    /// Objects that are not NetCDF files (not `.nc`), left out.
    pub not_netcdf: usize,
}

/// Why a profile's plan cannot run through the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotRunnable {
    /// Concatenation with ISMIP6's year binning: binning cannot place several files' steps.
    #[error("profile {profile} concatenates files along {dimension} with time = \"ismip6-years\"; concatenation needs time = \"cf-exact\"")]
    ConcatWithYearBins {
        /// The profile's tag.
        profile: String,
        /// The dimension.
        dimension: String,
    },
    /// One file per variable, but not ISMIP6-shaped groups.
    #[error("profile {profile}: without `concat`, the pipeline builds ISMIP6 groups ({{institution}}_{{model}}/{{experiment}} from fields ice_sheet, institution, model and experiment, time = \"ismip6-years\"); this profile makes {group_path} with time = \"{time}\". Add concat = \"time\" and time = \"cf-exact\" for one group per dataset")]
    GroupShape {
        /// The profile's tag.
        profile: String,
        /// Its group path template.
        group_path: String,
        /// Its time policy.
        time: String,
    },
}

/// The ISMIP6-shaped group template the year-binning builder runs.
const RUNNABLE_GROUP_PATH: &str = "{institution}_{model}/{experiment}";

/// Whether the profile makes ISMIP6-shaped groups (`{institution}_{model}/{experiment}`,
/// one file per variable, year binning); other profiles' groups are named by their path.
pub fn makes_ismip6_groups(profile: &Profile) -> bool {
    profile.concat.is_none()
        && profile.time == TimePolicy::Ismip6Years
        && profile.group_path == RUNNABLE_GROUP_PATH
}

/// Whether the pipeline can build this profile's groups: ISMIP6-shaped groups
/// with year binning, or files concatenated along a dimension with exact CF time.
pub fn runnable(profile: &Profile) -> Result<(), NotRunnable> {
    match (&profile.concat, profile.time) {
        // Any dimension whose coordinate is a CF time: `time`, NEMO's `time_counter`,
        // ERA5's `valid_time`.
        (Some(_), TimePolicy::CfExact) => Ok(()),
        (Some(dimension), TimePolicy::Ismip6Years) => Err(NotRunnable::ConcatWithYearBins {
            profile: profile.tag(),
            dimension: dimension.clone(),
        }),
        (None, _) if makes_ismip6_groups(profile) => Ok(()),
        (None, time) => Err(NotRunnable::GroupShape {
            profile: profile.tag(),
            group_path: profile.group_path.clone(),
            time: time.name().to_string(),
        }),
    }
}

/// One group as a profile sees it, whether or not the pipeline can build it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SurveyedGroup {
    /// Store path.
    pub group_path: String,
    /// Files per variable, sorted by URL (more than one: concatenated along the profile's dimension).
    pub variables: BTreeMap<String, Vec<SourceFile>>,
    /// The path fields every file of the group agrees on (a file's own, such as a date or a
    /// time range, drop out).
    #[serde(skip)]
    pub fields: BTreeMap<String, String>,
}

/// What a profile made of an archive.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Survey {
    /// Groups, sorted by path.
    pub groups: Vec<SurveyedGroup>,
    /// NetCDF files the profile's path rule does not match, with the reason.
    pub unmatched: Vec<SkippedObject>,
    /// Files on the skip list.
    pub skipped: Vec<SkippedObject>,
    /// Objects that are not NetCDF files (not `.nc`), left out.
    pub not_netcdf: usize,
}

/// Sorts listed objects into the profile's groups and variables. Zero-byte files
/// are kept: the virtualizer leaves their variable out of the group naming the
/// file (or, in files of several variables, fails the batch by name) instead of
/// silently shrinking the group.
pub fn survey(objects: &[ListedObject], profile: &Profile, skip: &SkipList) -> Survey {
    let mut groups: BTreeMap<String, SurveyedGroup> = BTreeMap::new();
    let mut out = Survey::default();
    for o in objects {
        if !o.relative_path.to_ascii_lowercase().ends_with(".nc") {
            out.not_netcdf += 1;
            continue;
        }
        if let Some(reason) = skip.reason(&o.relative_path) {
            out.skipped.push(SkippedObject {
                url: o.url.clone(),
                reason: format!("skip list: {reason}"),
            });
            continue;
        }
        match profile.match_path(&o.relative_path) {
            Ok(m) => {
                let group = groups
                    .entry(m.group_path.clone())
                    .or_insert_with(|| SurveyedGroup {
                        group_path: m.group_path.clone(),
                        variables: BTreeMap::new(),
                        fields: m.fields.clone(),
                    });
                group
                    .fields
                    .retain(|name, value| m.fields.get(name) == Some(value));
                group
                    .variables
                    .entry(m.variable.clone())
                    .or_default()
                    .push(SourceFile {
                        url: o.url.clone(),
                        size: o.size,
                        etag: o.etag.clone(),
                        last_modified: o.last_modified.clone(),
                        variable: m.variable,
                    });
            }
            Err(e) => out.unmatched.push(SkippedObject {
                url: o.url.clone(),
                reason: e.to_string(),
            }),
        }
    }
    out.groups = groups
        .into_values()
        .map(|mut g| {
            for files in g.variables.values_mut() {
                files.sort_by(|a, b| a.url.cmp(&b.url));
            }
            g
        })
        .collect();
    out
}

/// Groups listed objects into one batch per group, by the profile's rules
/// (which [`runnable`] must accept).
pub fn plan(
    objects: &[ListedObject],
    profile: &Profile,
    skip: &SkipList,
) -> Result<Plan, NotRunnable> {
    runnable(profile)?;
    let surveyed = survey(objects, profile, skip);
    let mut skipped = surveyed.skipped;
    skipped.extend(surveyed.unmatched);
    let batches = surveyed
        .groups
        .iter()
        .map(|g| {
            let concat = profile.concat.as_ref().map(|dimension| ConcatSpec {
                dimension: dimension.clone(),
                time_units: profile.time_units.clone(),
                file_variables: profile.file_variables.clone(),
            });
            let group = GroupKey::new(g.group_path.clone(), g.fields.clone());
            let mut files: Vec<SourceFile> = g.variables.values().flatten().cloned().collect();
            files.sort_by(|a, b| a.url.cmp(&b.url));
            let profile = profile.tag();
            BatchDescriptor {
                schema_version: SCHEMA_VERSION,
                batch_id: batch_id(
                    &profile,
                    &group,
                    concat.as_ref().and_then(|c| c.file_variables.as_ref()),
                    &files,
                ),
                profile,
                group,
                files,
                concat,
                shard: None,
                append: None,
                replaces: None,
            }
        })
        .collect();
    Ok(Plan {
        batches,
        skipped,
        not_netcdf: surveyed.not_netcdf,
    })
}

/// Deterministic batch id: SHA-256 over the profile (`id@version`: other rules,
/// other groups), the group identity and every input's URL, size, ETag and
/// modification time, in URL order, and the variable selection of files that
/// hold several (a group of one variable per file hashes as before it existed).
/// Same profile and inputs, same id.
pub fn batch_id(
    profile: &str,
    group: &GroupKey,
    selection: Option<&VariableSelection>,
    files: &[SourceFile],
) -> String {
    let mut text = format!(
        "floe-batch-v2\n{profile}\n{}\n{}\n",
        group.field("ice_sheet"),
        group.path
    );
    if let Some(selection) = selection {
        text.push_str(&format!("variables: {}\n", selection.describe()));
    }
    let mut sorted: Vec<&SourceFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.url.cmp(&b.url));
    for f in sorted {
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            f.url,
            f.size,
            f.etag.as_deref().unwrap_or(""),
            f.last_modified.as_deref().unwrap_or("")
        ));
    }
    floe_wire::sha256_hex(text.as_bytes())[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_is_runnable() {
        for (id, _) in crate::profile::BUILTIN {
            let p = Profile::builtin(id).expect("built in").expect("valid");
            assert!(runnable(&p).is_ok(), "{id}");
        }
    }

    /// Batch ids are what stores record: a change of the wire's group key must not change them
    /// (or every stored group would be rebuilt). The value is the hash of the documented text.
    #[test]
    fn batch_ids_are_those_of_the_documented_text() {
        let group = parse_path("AWI/PISM1/exp05/lithk_AIS_AWI_PISM1_exp05.nc")
            .expect("parse")
            .group;
        let file = SourceFile {
            url: "s3://a/x.nc".into(),
            size: 1,
            etag: Some("\"e\"".into()),
            last_modified: Some("2026-01-01T00:00:00+00:00".into()),
            variable: "lithk".into(),
        };
        assert_eq!(
            batch_id("ismip6@1", &group, None, &[file]),
            "80be14abcccb722816bf7463cafe9fa1"
        );
    }

    #[test]
    fn directories_win_over_file_name_tokens() {
        let p = parse_path(
            "Projection-AIS/ILTS_PIK/SICOPOLIS1/hist_std/acabf_AIS_ILTS_PIK_SICOPOLIS_hist_std.nc",
        )
        .expect("parse");
        assert_eq!(p.group.group_path(), "ILTS_PIK_SICOPOLIS1/hist_std");
        assert_eq!(p.variable, "acabf");
        assert_eq!(p.group.field("ice_sheet"), "AIS");
    }

    #[test]
    fn experiment_prefixed_variables_are_stripped() {
        let p = parse_path("Projection-AIS/UCIJPL/ISSM/exp13/exp13acabf_AIS_UCIJPL_ISSM_exp13.nc")
            .expect("parse");
        assert_eq!(p.variable, "acabf");
        let q = parse_path("UCIJPL/ISSM/exp13/exp05lithk_AIS_UCIJPL_ISSM_exp13.nc").expect("parse");
        assert_eq!(q.variable, "lithk");
    }

    #[test]
    fn greenland_and_errors() {
        let p = parse_path("Projection-GIS/AWI/ISSM1/exp05/lithk_GIS_AWI_ISSM1_exp05.nc")
            .expect("parse");
        assert_eq!(p.group.field("ice_sheet"), "GIS");
        assert_eq!(parse_path("a/b/c/readme.txt"), Err(PathError::NotNetcdf));
        for path in ["b/c/x_AIS_.nc", "a/b/c/lithk.nc", "a/b/c/lithk_XIS_a.nc"] {
            let e = parse_path(path).expect_err(path);
            assert!(matches!(e, PathError::NotIsmip6(_)), "{path}: {e}");
        }
        let e = parse_path("a/b/c/lithk_XIS_a.nc").expect_err("sheet");
        assert!(e.to_string().contains("AIS, GIS"), "{e}");
    }

    fn ismip6() -> Profile {
        Profile::builtin("ismip6")
            .expect("built in")
            .expect("parses")
    }

    fn obj(rel: &str, size: u64, etag: &str) -> ListedObject {
        ListedObject {
            url: format!("s3://b/{rel}"),
            relative_path: rel.to_string(),
            size,
            etag: Some(etag.into()),
            last_modified: None,
        }
    }

    #[test]
    fn plan_groups_skips_and_ids_are_deterministic() {
        let objects = vec![
            obj("AWI/PISM1/exp05/lithk_AIS_AWI_PISM1_exp05.nc", 10, "a"),
            obj("AWI/PISM1/exp05/acabf_AIS_AWI_PISM1_exp05.nc", 11, "b"),
            obj("AWI/PISM1/exp06/lithk_AIS_AWI_PISM1_exp06.nc", 12, "c"),
            obj("NCAR/CISM/expD12/lithk_AIS_NCAR_CISM_expD12.nc", 13, "d"),
            obj("AWI/PISM1/exp05/notes.txt", 1, "e"),
        ];
        let skip = SkipList::parse("NCAR/CISM/expD12/  # bad experiment");
        let ismip6 = ismip6();
        let plan1 = plan(&objects, &ismip6, &skip).expect("runnable");
        assert_eq!(plan1.batches.len(), 2);
        assert_eq!(plan1.batches[0].files.len(), 2);
        assert_eq!(plan1.skipped.len(), 1);
        assert!(plan1.skipped[0].reason.contains("bad experiment"));
        let mut reordered = objects.clone();
        reordered.reverse();
        let plan2 = plan(&reordered, &ismip6, &skip).expect("runnable");
        assert_eq!(plan1.batches[0].batch_id, plan2.batches[0].batch_id);
        let mut changed = objects;
        changed[0].etag = Some("z".into());
        let plan3 = plan(&changed, &ismip6, &skip).expect("runnable");
        assert_ne!(plan1.batches[0].batch_id, plan3.batches[0].batch_id);
        assert_eq!(plan1.batches[1].batch_id, plan3.batches[1].batch_id);
    }

    #[test]
    fn builtin_skip_list_names_the_known_bad_experiment() {
        let skip = Profile::builtin(crate::profile::DEFAULT_PROFILE)
            .and_then(Result::ok)
            .map(|p| p.skip_list())
            .unwrap_or_default();
        assert!(skip
            .reason("NCAR/CISM/expD12/lithk_AIS_NCAR_CISM_expD12.nc")
            .is_some());
        assert!(skip
            .reason("Projection-AIS/NCAR/CISM/expD12/x.nc")
            .is_some());
        assert!(skip.reason("NCAR/CISM/expD1/x.nc").is_none());
    }
}
