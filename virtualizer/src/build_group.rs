//! `virtualizer build-group`: the merged group as the committer would write it.

use std::collections::BTreeMap;

use floe_group::archive::{parse_path, ListedObject};
use floe_group::profile::Profile;
use floe_group::GroupBuild;
use floe_source::{ObjectInfo, Source, SourceOptions};
use floe_wire::{BatchDescriptor, GroupKey, SourceFile, SCHEMA_VERSION};
use serde_json::{json, Value};

use crate::batch::{virtualize_batch_counted, BatchError, ReadCost};

/// An object's identity (URL, size, ETag, modification time) from one HEAD.
async fn identify(url: &str, options: &SourceOptions) -> Result<ObjectInfo, BatchError> {
    let failed = |reason: String, retryable: bool| BatchError {
        file: Some(url.to_string()),
        reason,
        retryable,
    };
    let source = Source::resolve(url, options).map_err(|e| failed(e.to_string(), false))?;
    source.info().await.map_err(|e| failed(e.to_string(), true))
}

/// Builds a batch from URLs: the group comes from the ISMIP6 path rules of the
/// files that follow them, which must all name the same group (a fragment
/// replaces its whole group, so mixing groups would drop the real group's
/// variables); each file's identity from one HEAD.
pub async fn batch_from_urls(
    urls: &[String],
    options: &SourceOptions,
) -> Result<BatchDescriptor, BatchError> {
    let mut files = Vec::new();
    let mut groups: std::collections::BTreeMap<GroupKey, Vec<String>> = Default::default();
    for url in urls {
        let info = identify(url, options).await?;
        let parsed = parse_path(&info.url).ok();
        let variable = parsed
            .as_ref()
            .map(|p| p.variable.clone())
            .unwrap_or_else(|| {
                info.url
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .split(['_', '.'])
                    .next()
                    .unwrap_or_default()
                    .to_string()
            });
        if let Some(p) = parsed {
            groups.entry(p.group).or_default().push(info.url.clone());
        }
        files.push(SourceFile {
            url: info.url,
            size: info.size,
            etag: info.etag,
            last_modified: Some(info.last_modified),
            variable,
        });
    }
    files.sort_by(|a, b| a.url.cmp(&b.url));
    if groups.len() > 1 {
        let listed: Vec<String> = groups
            .iter()
            .map(|(g, urls)| {
                let names: Vec<&str> = urls
                    .iter()
                    .map(|u| u.rsplit('/').next().unwrap_or(u))
                    .collect();
                format!("{} ({})", g.group_path(), names.join(", "))
            })
            .collect();
        return Err(BatchError {
            file: None,
            reason: format!(
                "the files belong to {} groups: {}; build-group builds one group at a time: give it the files of one group",
                groups.len(),
                listed.join("; ")
            ),
            retryable: false,
        });
    }
    let group = groups.into_keys().next().unwrap_or_else(|| {
        let unknown = |name: &str, value: &str| (name.to_string(), value.to_string());
        floe_group::archive::ismip6_group(&BTreeMap::from([
            unknown("ice_sheet", "AIS"),
            unknown("institution", "unknown"),
            unknown("model", "unknown"),
            unknown("experiment", "unknown"),
        ]))
    });
    let profile = floe_wire::default_profile();
    let batch_id = floe_group::archive::batch_id(&profile, &group, None, &files);
    Ok(BatchDescriptor {
        schema_version: SCHEMA_VERSION,
        batch_id,
        profile,
        group,
        files,
        concat: None,
        shard: None,
        append: None,
        replaces: None,
    })
}

/// Plans the given files with `profile`, as `producer local --profile` would: they
/// must all map to one group. A file's path is matched from its URL's path (the
/// pattern matches its last parts; a `regex` sees the whole path).
pub async fn batch_with_profile(
    urls: &[String],
    options: &SourceOptions,
    profile: &Profile,
) -> Result<BatchDescriptor, BatchError> {
    let mut objects = Vec::new();
    for url in urls {
        let info = identify(url, options).await?;
        objects.push(ListedObject {
            relative_path: url_path(&info.url),
            url: info.url,
            size: info.size,
            etag: info.etag,
            last_modified: Some(info.last_modified),
        });
    }
    let refused = |reason: String| BatchError {
        file: None,
        reason,
        retryable: false,
    };
    let plan = floe_group::archive::plan(&objects, profile, &profile.skip_list())
        .map_err(|e| refused(e.to_string()))?;
    if let Some(skipped) = plan.skipped.first() {
        return Err(BatchError {
            file: Some(skipped.url.clone()),
            reason: skipped.reason.clone(),
            retryable: false,
        });
    }
    match <[BatchDescriptor; 1]>::try_from(plan.batches) {
        Ok([batch]) => Ok(batch),
        Err(batches) => {
            let groups: Vec<String> = batches.iter().map(|b| b.group.group_path()).collect();
            Err(refused(format!(
                "the files make {} groups under profile {} ({}); build-group builds one group at a time: give it the files of one group",
                groups.len(),
                profile.tag(),
                groups.join(", ")
            )))
        }
    }
}

/// The path part of a URL (`s3://bucket/a/b.nc` → `a/b.nc`, `file:///x/b.nc` → `x/b.nc`).
fn url_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = if url.starts_with("file://") {
        after_scheme
    } else {
        after_scheme.split_once('/').map_or("", |(_, p)| p)
    };
    path.trim_start_matches('/').to_string()
}

/// Builds the group of the given files: by the profile's rules, or without one by
/// ISMIP6's path rules ([`batch_from_urls`]).
pub async fn build(
    urls: &[String],
    options: &SourceOptions,
    profile: Option<&Profile>,
) -> Result<(BatchDescriptor, GroupBuild, ReadCost), BatchError> {
    let batch = match profile {
        Some(profile) => batch_with_profile(urls, options, profile).await?,
        None => batch_from_urls(urls, options).await?,
    };
    let (build, cost) = virtualize_batch_counted(&batch, options).await?;
    Ok((batch, build, cost))
}

/// One JSON object per array, as the committer would write it.
pub fn arrays_json(build: &GroupBuild) -> Vec<Value> {
    build
        .fragment
        .arrays
        .iter()
        .map(|a| {
            let z = &a.zarr_json;
            json!({
                "group": build.fragment.group_path,
                "array": a.name,
                "dtype": z["data_type"],
                "shape": z["shape"],
                "chunk_shape": z["chunk_grid"]["configuration"]["chunk_shape"],
                "dimensions": z["dimension_names"],
                "fill_value": z["fill_value"],
                "codecs": z["codecs"].as_array().map(|c| c.iter().map(|x| x["name"].clone()).collect::<Vec<_>>()),
                "references": a.refs.len(),
                "inline_chunks": a.inline_chunks.len(),
            })
        })
        .collect()
}

/// A readable summary of the group.
pub fn summary(build: &GroupBuild) -> String {
    use std::fmt::Write;
    let f = &build.fragment;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "group {} (batch {}, {} files, {} references)",
        f.group_path,
        f.batch_id,
        f.sources.len(),
        f.ref_count()
    );
    for a in arrays_json(build) {
        let _ = writeln!(
            s,
            "  {:<12} {:<8} shape {} chunks {} dims {} fill {} refs {} inline {}",
            a["array"].as_str().unwrap_or_default(),
            a["dtype"].as_str().unwrap_or_default(),
            a["shape"],
            a["chunk_shape"],
            a["dimensions"],
            a["fill_value"],
            a["references"],
            a["inline_chunks"]
        );
    }
    for n in &build.notes {
        let _ = writeln!(s, "  normalization: {n}");
    }
    for w in &build.warnings {
        let what = if w.kept_apart {
            "KEPT APART"
        } else if w.not_carried {
            "NOT CARRIED"
        } else {
            "LEFT OUT"
        };
        let _ = writeln!(s, "  {what} {} ({}): {}", w.variable, w.file, w.reason);
    }
    s
}
