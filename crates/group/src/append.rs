//! Planning an append: whether a planned group extends the group the store
//! holds (its stored inputs, unchanged, plus new files), and if so the batch
//! that reads only the new files. Pure: the caller reads the store.
//!
//! Whether the new files' steps lie after the stored axis end is known only
//! once they are read: the committer checks it, with every other property the
//! store records (`floe_store`'s append), and refuses the append by name.

use std::collections::BTreeMap;

use floe_wire::{AppendOf, BatchDescriptor, SourceFile};

/// Why a planned group is rebuilt instead of appended to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebuildReason {
    /// The profile concatenates nothing (ISMIP6: a file per variable).
    #[error("the profile concatenates no files")]
    NotASeries,
    /// The store records its inputs without identities (written before appends).
    #[error("the store records the group's inputs without their identities")]
    NoIdentities,
    /// The stored group lacks a variable a rebuild may now add.
    #[error("the stored group is partial (left out: {0}); rebuilding may add it")]
    Partial(String),
    /// A stored input has another identity now.
    #[error("{0} was replaced (its size, ETag or modification time changed)")]
    Replaced(String),
    /// A stored input is no longer listed.
    #[error("{0} was removed")]
    Removed(String),
    /// No file is new: the inputs are the same, the profile or selection is not.
    #[error("no new file (the profile or its variable selection changed)")]
    NothingNew,
}

/// The append batch of `planned` onto a stored group built from `stored`
/// (batch `base_batch_id`): only the new files, the planned batch id (every
/// input's), the stored time units; or why the group is rebuilt.
pub fn plan_append(
    planned: &BatchDescriptor,
    base_batch_id: &str,
    stored: Option<&[SourceFile]>,
    stored_units: Option<&str>,
    left_out: &[String],
) -> Result<BatchDescriptor, RebuildReason> {
    let Some(concat) = &planned.concat else {
        return Err(RebuildReason::NotASeries);
    };
    let Some(stored) = stored else {
        return Err(RebuildReason::NoIdentities);
    };
    if !left_out.is_empty() {
        return Err(RebuildReason::Partial(left_out.join(", ")));
    }
    let planned_by_url: BTreeMap<&str, &SourceFile> =
        planned.files.iter().map(|f| (f.url.as_str(), f)).collect();
    for old in stored {
        match planned_by_url.get(old.url.as_str()) {
            None => return Err(RebuildReason::Removed(old.url.clone())),
            Some(now) if !same_identity(old, now) => {
                return Err(RebuildReason::Replaced(old.url.clone()))
            }
            Some(_) => {}
        }
    }
    let stored_urls: std::collections::BTreeSet<&str> =
        stored.iter().map(|f| f.url.as_str()).collect();
    let new: Vec<SourceFile> = planned
        .files
        .iter()
        .filter(|f| !stored_urls.contains(f.url.as_str()))
        .cloned()
        .collect();
    if new.is_empty() {
        return Err(RebuildReason::NothingNew);
    }
    let mut batch = planned.clone();
    batch.files = new;
    let mut concat = concat.clone();
    if concat.time_units.is_none() {
        // The new steps are stored in the units of the stored ones.
        concat.time_units = stored_units.map(str::to_string);
    }
    batch.append = Some(AppendOf {
        base_batch_id: base_batch_id.to_string(),
        base_files: u32::try_from(stored.len()).unwrap_or(u32::MAX),
        dimension: concat.dimension.clone(),
    });
    batch.concat = Some(concat);
    Ok(batch)
}

/// Same size, ETag (quotes aside) and modification time.
fn same_identity(a: &SourceFile, b: &SourceFile) -> bool {
    let etag = |f: &SourceFile| f.etag.as_deref().map(|e| e.trim_matches('"').to_string());
    a.size == b.size && etag(a) == etag(b) && a.last_modified == b.last_modified
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_wire::{ConcatSpec, GroupKey, SCHEMA_VERSION};

    fn file(day: u32, etag: &str) -> SourceFile {
        SourceFile {
            url: format!("s3://b/mur/{day:04}.nc"),
            size: 100,
            etag: Some(etag.into()),
            last_modified: Some(format!("2026-01-01T00:00:{:02}+00:00", day % 60)),
            variable: "*".into(),
        }
    }

    fn planned(days: std::ops::Range<u32>) -> BatchDescriptor {
        BatchDescriptor {
            schema_version: SCHEMA_VERSION,
            batch_id: "full".into(),
            profile: "mur@1".into(),
            group: GroupKey {
                path: "MUR".into(),
                fields: Default::default(),
            },
            files: days.map(|d| file(d, "e")).collect(),
            concat: Some(ConcatSpec {
                dimension: "time".into(),
                time_units: None,
                file_variables: None,
            }),
            shard: None,
            append: None,
            replaces: None,
        }
    }

    #[test]
    fn new_files_after_unchanged_ones_are_an_append_of_the_new_files_only() {
        let stored = planned(0..600).files;
        let batch = plan_append(
            &planned(0..610),
            "base",
            Some(&stored),
            Some("seconds since 1981-01-01"),
            &[],
        )
        .expect("an append");
        assert_eq!(batch.files, planned(600..610).files);
        assert_eq!(batch.batch_id, "full");
        let of = batch.append.expect("append");
        assert_eq!(
            (
                of.base_batch_id.as_str(),
                of.base_files,
                of.dimension.as_str()
            ),
            ("base", 600, "time")
        );
        assert_eq!(
            batch.concat.and_then(|c| c.time_units).as_deref(),
            Some("seconds since 1981-01-01")
        );
    }

    #[test]
    fn a_replaced_or_removed_file_rebuilds_the_group_naming_it() {
        let mut stored = planned(0..600).files;
        stored[7].etag = Some("\"other\"".into());
        let err =
            plan_append(&planned(0..610), "b", Some(&stored), None, &[]).expect_err("a rebuild");
        assert_eq!(err, RebuildReason::Replaced(stored[7].url.clone()));
        let stored = planned(0..600).files;
        let err =
            plan_append(&planned(1..610), "b", Some(&stored), None, &[]).expect_err("a rebuild");
        assert_eq!(err, RebuildReason::Removed(stored[0].url.clone()));
    }

    #[test]
    fn quotes_around_an_etag_are_not_a_change() {
        let mut stored = planned(0..3).files;
        stored[1].etag = Some("\"e\"".into());
        assert!(plan_append(&planned(0..4), "b", Some(&stored), None, &[]).is_ok());
    }

    #[test]
    fn no_new_file_no_identities_partial_or_no_series_rebuild() {
        let stored = planned(0..3).files;
        assert_eq!(
            plan_append(&planned(0..3), "b", Some(&stored), None, &[]).expect_err("a rebuild"),
            RebuildReason::NothingNew
        );
        assert_eq!(
            plan_append(&planned(0..4), "b", None, None, &[]).expect_err("a rebuild"),
            RebuildReason::NoIdentities
        );
        assert!(matches!(
            plan_append(&planned(0..4), "b", Some(&stored), None, &["mask".into()])
                .expect_err("a rebuild"),
            RebuildReason::Partial(_)
        ));
        let mut ismip6 = planned(0..4);
        ismip6.concat = None;
        assert_eq!(
            plan_append(&ismip6, "b", Some(&stored), None, &[]).expect_err("a rebuild"),
            RebuildReason::NotASeries
        );
    }
}
