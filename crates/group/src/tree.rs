//! A NetCDF-4 file's sub-groups inside a floe group.
//!
//! The reader names a variable of a sub-group by its path (`sub/w`) and lists
//! every sub-group with its attributes ([`floe_formats::FileManifest::groups`]).
//! The builders treat such a variable like any other; here the group's tree is
//! gathered for the fragment, as the files hold it: each sub-group with the
//! attributes of the first file that has it (the global attributes are the
//! first file's too, as `xr.open_mfdataset` keeps them). What the store cannot
//! hold is left out by name, never renamed: a sub-group or array whose path
//! breaks [`floe_wire::check_member_path`] (a segment `_floe` or `__x`), and an
//! array whose sub-group no file recorded.

use std::collections::{BTreeMap, BTreeSet};

use floe_wire::ArrayFragment;
use serde_json::{Map, Value};

use crate::{FileScan, Warning};

/// The group's sub-groups, each with the first file's attributes.
pub(crate) struct Subgroups {
    /// By path inside the group.
    pub tree: BTreeMap<String, Map<String, Value>>,
    /// The sub-group attributes that differ between the files holding the
    /// sub-group, named `sub-group/attribute`: the group's
    /// `floe_differing_attributes` lists them beside the global ones.
    pub differing: BTreeSet<String>,
}

/// The group's sub-groups, and `arrays` and `warnings` brought in line with
/// them (see the module doc).
pub(crate) fn subgroups(
    scans: &[FileScan],
    arrays: &mut Vec<ArrayFragment>,
    warnings: &mut Vec<Warning>,
) -> Subgroups {
    let mut tree: BTreeMap<String, (Map<String, Value>, &str)> = BTreeMap::new();
    let mut differing = BTreeSet::new();
    for scan in scans.iter().filter(|s| !s.manifest.is_unreadable()) {
        for (path, attributes) in &scan.manifest.groups {
            let Some((first, _)) = tree.get(path) else {
                tree.insert(
                    path.clone(),
                    (attributes.as_ref().clone(), &scan.source.url),
                );
                continue;
            };
            for name in first.keys().chain(attributes.keys()) {
                if first.get(name) != attributes.get(name) {
                    differing.insert(format!("{path}/{name}"));
                }
            }
        }
    }
    // A sub-group left out takes its descendants with it, and the arrays in them;
    // parents sort before their children, so only the topmost is named.
    let mut refused: Vec<String> = Vec::new();
    for (path, (_, file)) in &tree {
        if refused.iter().any(|r| path.starts_with(&format!("{r}/"))) {
            continue;
        }
        if let Err(error) = floe_wire::check_member_path(path) {
            warnings.push(Warning::left_out(
                file,
                path,
                format!("a sub-group the store cannot hold: {error}"),
            ));
            refused.push(path.clone());
        }
    }
    let under_refused = |path: &str| {
        refused
            .iter()
            .any(|r| path == r || path.starts_with(&format!("{r}/")))
    };
    tree.retain(|path, _| !under_refused(path));
    let first = scans.first().map_or("", |s| s.source.url.as_str());
    arrays.retain(|array| {
        let reason = match array.name.rsplit_once('/') {
            _ if under_refused(&array.name) => return false,
            Some((parent, _)) if under_refused(parent) => return false,
            Some((parent, _)) if !tree.contains_key(parent) => format!(
                "its sub-group {parent} is not among the sub-groups the files' headers list \
                 (a scan from before floe read sub-groups: enqueue the group again)"
            ),
            _ => match floe_wire::check_member_path(&array.name) {
                Ok(()) => return true,
                Err(error) => format!("a name the store cannot hold: {error}"),
            },
        };
        warnings.push(Warning::left_out(first, &array.name, reason));
        false
    });
    differing.retain(|name| {
        name.rsplit_once('/')
            .is_some_and(|(path, _)| tree.contains_key(path))
    });
    Subgroups {
        tree: tree
            .into_iter()
            .map(|(path, (attributes, _))| (path, attributes))
            .collect(),
        differing,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use floe_formats::{FileManifest, SourceFormat};
    use floe_wire::SourceFile;

    use super::*;

    fn scan(url: &str, groups: &[(&str, &str)]) -> FileScan {
        FileScan {
            source: SourceFile {
                url: url.into(),
                size: 1,
                etag: None,
                last_modified: None,
                variable: String::new(),
            },
            manifest: FileManifest {
                format: SourceFormat::Hdf5,
                file_size: 1,
                attributes: Default::default(),
                variables: Vec::new(),
                problems: Vec::new(),
                unlimited: Vec::new(),
                groups: groups
                    .iter()
                    .map(|(path, title)| {
                        let mut attributes = Map::new();
                        attributes.insert("title".into(), Value::from(*title));
                        (path.to_string(), Arc::new(attributes))
                    })
                    .collect(),
            },
            coords: BTreeMap::new(),
        }
    }

    fn array(name: &str) -> ArrayFragment {
        ArrayFragment {
            name: name.into(),
            zarr_json: Value::Null,
            refs: Vec::new(),
            inline_chunks: Vec::new(),
        }
    }

    fn names(arrays: &[ArrayFragment]) -> Vec<&str> {
        arrays.iter().map(|a| a.name.as_str()).collect()
    }

    #[test]
    fn the_first_file_holding_a_subgroup_gives_its_attributes_and_differences_are_named() {
        let scans = [
            scan("a.nc", &[("sub", "first")]),
            scan(
                "b.nc",
                &[("sub", "second"), ("sub/inner", "inner"), ("other", "b")],
            ),
        ];
        let mut arrays = vec![array("tas"), array("sub/w"), array("sub/inner/v")];
        let mut warnings = Vec::new();
        let Subgroups { tree, differing } = subgroups(&scans, &mut arrays, &mut warnings);
        assert_eq!(differing.into_iter().collect::<Vec<_>>(), ["sub/title"]);
        assert_eq!(
            tree.iter()
                .map(|(p, a)| (p.as_str(), a["title"].as_str().unwrap_or_default()))
                .collect::<Vec<_>>(),
            [("other", "b"), ("sub", "first"), ("sub/inner", "inner")]
        );
        assert_eq!(names(&arrays), ["tas", "sub/w", "sub/inner/v"]);
        assert!(warnings.is_empty());
    }

    #[test]
    fn what_the_store_cannot_hold_is_left_out_by_name() {
        let scans = [scan(
            "a.nc",
            &[
                ("_floe", "x"),
                ("_floe/deep", "y"),
                ("ok", "z"),
                ("ok/__x", "w"),
            ],
        )];
        let mut arrays = vec![
            array("tas"),
            array("_floe/v"),
            array("_floe/deep/v"),
            array("ok/w"),
            array("ok/__x/v"),
            array("gone/w"),
            array("__top"),
        ];
        let mut warnings = Vec::new();
        let tree = subgroups(&scans, &mut arrays, &mut warnings).tree;
        assert_eq!(tree.keys().collect::<Vec<_>>(), ["ok"]);
        assert_eq!(names(&arrays), ["tas", "ok/w"]);
        let named: Vec<(&str, &str)> = warnings
            .iter()
            .map(|w| (w.variable.as_str(), w.reason.as_str()))
            .collect();
        assert_eq!(named.len(), 4, "{named:?}");
        assert!(named[0].0 == "_floe" && named[0].1.contains("floe keeps"));
        assert!(named[1].0 == "ok/__x" && named[1].1.contains("Zarr v3 reserves"));
        assert!(named[2].0 == "gone/w" && named[2].1.contains("sub-group gone is not among"));
        assert!(named[3].0 == "__top" && named[3].1.contains("Zarr v3 reserves"));
        assert!(warnings.iter().all(Warning::is_left_out));
    }
}
