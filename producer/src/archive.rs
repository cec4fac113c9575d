//! Listing a source archive and planning batches from it.

use anyhow::{Context, Result};
use floe_group::archive::{plan, ListedObject, Plan, SkipList};
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

/// Group filters: `INST/MODEL/EXP` glob patterns (`AWI/*/exp0*`, `*/*/ctrl_proj`).
#[derive(Debug, Clone, Default)]
pub struct GroupFilter {
    patterns: Vec<glob::Pattern>,
}

impl GroupFilter {
    /// Parses patterns; none means everything.
    pub fn new(patterns: &[String]) -> Result<GroupFilter> {
        let patterns = patterns
            .iter()
            .map(|p| {
                let full = match p.matches('/').count() {
                    0 => format!("{p}/*/*"),
                    1 => format!("{p}/*"),
                    _ => p.clone(),
                };
                glob::Pattern::new(&full).with_context(|| format!("bad filter {p:?}"))
            })
            .collect::<Result<_>>()?;
        Ok(GroupFilter { patterns })
    }

    /// Whether a group passes.
    pub fn matches(&self, group: &floe_wire::GroupKey) -> bool {
        let key = format!("{}/{}/{}", group.institution, group.model, group.experiment);
        self.patterns.is_empty() || self.patterns.iter().any(|p| p.matches(&key))
    }
}

/// Lists and plans, keeping only the groups that pass the filter.
pub async fn plan_archive(
    source: &str,
    options: &SourceOptions,
    skip: &SkipList,
    filter: &GroupFilter,
) -> Result<Plan> {
    let objects = list_archive(source, options).await?;
    let mut p = plan(&objects, skip);
    p.batches.retain(|b| filter.matches(&b.group));
    Ok(p)
}

/// Keeps one ice sheet: `sheet` when given, else the archive must hold only one
/// (group paths do not name the sheet, so one store holds one sheet).
pub fn restrict_to_one_ice_sheet(plan: &mut Plan, sheet: Option<&str>) -> Result<()> {
    if let Some(sheet) = sheet {
        plan.batches
            .retain(|b| b.group.ice_sheet.eq_ignore_ascii_case(sheet));
    }
    let sheets: std::collections::BTreeSet<&str> = plan
        .batches
        .iter()
        .map(|b| b.group.ice_sheet.as_str())
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

/// The skip list from a file, or the built-in one.
pub fn load_skip_list(path: Option<&std::path::Path>) -> Result<SkipList> {
    match path {
        Some(p) => Ok(SkipList::parse(
            &std::fs::read_to_string(p)
                .with_context(|| format!("reading skip list {}", p.display()))?,
        )),
        None => Ok(SkipList::builtin()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: &str, m: &str, e: &str) -> floe_wire::GroupKey {
        floe_wire::GroupKey {
            ice_sheet: "AIS".into(),
            institution: i.into(),
            model: m.into(),
            experiment: e.into(),
        }
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
