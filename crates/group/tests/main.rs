//! Property tests of the merge: any set of per-variable time axes gives a union
//! that contains every input step exactly once, and every reference lands at
//! the index of its own time step.

use std::collections::{BTreeMap, BTreeSet};

use floe_formats::{ChunkRef, Codec, FileManifest, SourceFormat, VariableManifest};
use floe_group::{build_group, FileScan};
use floe_wire::{BatchDescriptor, SourceFile, SCHEMA_VERSION};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn scan(variable: &str, years: &[i32], file_index: usize) -> FileScan {
    let nt = years.len() as u64;
    let attrs: Map<String, Value> =
        json!({"units": "days since 2000-01-01", "calendar": "365_day"})
            .as_object()
            .cloned()
            .unwrap_or_default();
    let time = VariableManifest {
        variable: "time".into(),
        dtype: "<f8".into(),
        fields: Vec::new(),
        shape: vec![nt],
        chunk_shape: vec![nt],
        dimensions: vec!["time".into()],
        fill_value: Value::Null,
        codecs: vec![Codec::new("bytes", [("endian", Value::from("little"))])].into(),
        attributes: attrs.into(),
        chunks: vec![],
        inline_data: None,
        layout: "contiguous".into(),
    };
    let data = VariableManifest {
        variable: variable.into(),
        dtype: "<f4".into(),
        fields: Vec::new(),
        shape: vec![nt, 4, 5],
        chunk_shape: vec![1, 4, 5],
        dimensions: vec!["time".into(), "y".into(), "x".into()],
        fill_value: Value::from("NaN"),
        codecs: vec![Codec::new("bytes", [("endian", Value::from("little"))])].into(),
        attributes: Map::new().into(),
        // the offset encodes (file, step) so the test can tell where each ref came from
        chunks: (0..nt)
            .map(|t| ChunkRef {
                index: vec![t, 0, 0],
                offset: (file_index as u64) * 1_000_000 + t * 80,
                length: 80,
            })
            .collect(),
        inline_data: None,
        layout: "chunked".into(),
    };
    let days: Vec<f64> = years
        .iter()
        .map(|y| {
            f64::from(y - 2000) * 365.0
                + if variable.starts_with('f') {
                    181.0
                } else {
                    0.0
                }
        })
        .collect();
    let axis: Vec<f64> = (0..5).map(|i| f64::from(i) * 16000.0).collect();
    let mut coords = BTreeMap::new();
    coords.insert("time".to_string(), days);
    coords.insert("x".to_string(), axis.clone());
    coords.insert("y".to_string(), axis[..4].to_vec());
    FileScan {
        source: SourceFile {
            url: format!("file:///a/{variable}.nc"),
            size: 10_000_000,
            etag: None,
            last_modified: None,
            variable: variable.into(),
        },
        manifest: FileManifest {
            format: SourceFormat::Hdf5,
            file_size: 10_000_000,
            attributes: Map::new().into(),
            variables: vec![time, data],
            problems: vec![],
            unlimited: Vec::new(),
            groups: Default::default(),
        },
        coords,
    }
}

fn batch(files: &[FileScan]) -> BatchDescriptor {
    BatchDescriptor {
        schema_version: SCHEMA_VERSION,
        batch_id: "id".into(),
        profile: floe_wire::default_profile(),
        group: floe_group::archive::ismip6_group(
            &[
                ("ice_sheet", "AIS"),
                ("institution", "I"),
                ("model", "M"),
                ("experiment", "e"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ),
        files: files.iter().map(|f| f.source.clone()).collect(),
        concat: None,
        shard: None,
        append: None,
        replaces: None,
    }
}

fn year_of(days_since_2000: f64) -> i32 {
    let mut y = 2000;
    let mut left = days_since_2000 as i64;
    loop {
        let len = if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
            366
        } else {
            365
        };
        if left < len {
            return y;
        }
        left -= len;
        y += 1;
    }
}

fn year_sets() -> impl Strategy<Value = Vec<Vec<i32>>> {
    prop::collection::vec(
        prop::collection::btree_set(2000i32..2030, 1..12).prop_map(|s| s.into_iter().collect()),
        1..5,
    )
}

proptest! {
    #[test]
    fn union_holds_every_step_once_and_refs_land_on_their_year(axes in year_sets()) {
        let names = ["lithk", "flux_a", "orog", "flux_b", "topg"];
        let scans: Vec<FileScan> = axes.iter().enumerate().map(|(i, years)| scan(names[i], years, i)).collect();
        let build = build_group(&batch(&scans), &scans).expect("merge");
        let expected_union: BTreeSet<i32> = axes.iter().flatten().copied().collect();
        let time = build.fragment.arrays.iter().find(|a| a.name == "time").expect("time array");
        let years: Vec<i32> = time.inline_chunks[0].data.chunks(8).map(|b| year_of(f64::from_le_bytes(b.try_into().expect("8 bytes")))).collect();
        prop_assert_eq!(years.iter().copied().collect::<BTreeSet<_>>(), expected_union.clone());
        prop_assert_eq!(years.len(), expected_union.len(), "no year twice");
        for (i, input_years) in axes.iter().enumerate() {
            let array = build.fragment.arrays.iter().find(|a| a.name == names[i]).expect("array");
            prop_assert_eq!(array.zarr_json["shape"][0].as_u64(), Some(expected_union.len() as u64));
            prop_assert_eq!(array.refs.len(), input_years.len());
            for r in &array.refs {
                let step = ((r.offset % 1_000_000) / 80) as usize;
                prop_assert_eq!(r.offset / 1_000_000, i as u64);
                prop_assert_eq!(years[r.index[0] as usize], input_years[step]);
            }
        }
    }
}

#[test]
fn an_unreadable_file_leaves_out_its_variable_only() {
    let good = scan("lithk", &[2015, 2016], 0);
    let broken = FileScan::unreadable(
        SourceFile {
            url: "file:///a/orog.nc".into(),
            size: 5,
            etag: None,
            last_modified: None,
            variable: "orog".into(),
        },
        "file is truncated: 5 bytes of 4096".into(),
    );
    let scans = vec![good, broken];
    let build = build_group(&batch(&scans), &scans).expect("the readable variable is built");
    let names = build.fragment.array_names();
    assert!(
        names.contains(&"lithk") && !names.contains(&"orog"),
        "{names:?}"
    );
    let [warning] = build.warnings.as_slice() else {
        panic!("one warning: {:?}", build.warnings)
    };
    assert_eq!(
        (warning.variable.as_str(), warning.file.as_str()),
        ("orog", "file:///a/orog.nc")
    );
    assert_eq!(
        warning.reason,
        "file cannot be read: file is truncated: 5 bytes of 4096"
    );
    assert!(!warning.kept_apart);
    // Every input stays recorded, the unreadable one too: the plan and the store agree.
    assert_eq!(build.fragment.sources.len(), 2);
    // The unreadable file alone: nothing to build, a named error.
    let alone = vec![scans[1].clone()];
    let err = build_group(&batch(&alone), &alone).expect_err("no variable");
    assert!(
        err.to_string().contains("orog: file cannot be read"),
        "{err}"
    );
}

#[test]
fn global_attributes_are_the_first_files_and_variables_not_carried_are_named() {
    let mut scans = vec![scan("lithk", &[2015, 2016], 0), scan("acabf", &[2015], 1)];
    for (i, s) in scans.iter_mut().enumerate() {
        s.manifest.attributes = json!({"institution": "I", "variable": s.source.variable, "n": i})
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into();
    }
    let mut bounds = scans[0].manifest.variables[0].clone();
    bounds.variable = "time_bnds".into();
    scans[0].manifest.variables.push(bounds);
    let built = build_group(&batch(&scans), &scans).expect("built");
    let group = &built.fragment.group_attributes;
    assert_eq!(group["institution"], "I");
    assert_eq!(group["variable"], "lithk", "the first file's");
    assert_eq!(group["floe_differing_attributes"], json!(["n", "variable"]));
    let named: Vec<_> = built
        .warnings
        .iter()
        .filter(|w| w.variable == "time_bnds")
        .collect();
    assert_eq!(named.len(), 1, "{:?}", built.warnings);
    assert!(named[0].not_carried && !named[0].is_left_out(), "{named:?}");
    assert_eq!(named[0].file, scans[0].source.url);
    assert!(
        named[0]
            .reason
            .starts_with("not carried (1 file(s) hold it)"),
        "{named:?}"
    );
    let stored = &group["floe_warnings"];
    assert_eq!(stored[0]["variable"], "time_bnds", "{stored}");
    assert_eq!(stored[0]["not_carried"], true, "{stored}");
    assert!(
        floe_wire::VariableWarning::left_out_of(group).is_empty(),
        "the group is whole"
    );
}

#[test]
fn a_declared_grid_too_large_to_build_is_refused_before_anything_is_allocated() {
    // A crafted header: 2^40 points along x and no usable x coordinate. Regenerating it
    // would allocate 8.8 TB; the variable is left out by name instead.
    // The crafted file comes first, before any grid is known.
    let mut scans = vec![scan("acabf", &[2015], 0), scan("lithk", &[2015], 1)];
    let var = &mut scans[0].manifest.variables[1];
    var.shape = vec![1, 4, 1 << 40];
    var.chunk_shape = vec![1, 4, 5];
    scans[0].coords.remove("x");
    let built = build_group(&batch(&scans), &scans).expect("the other variable is built");
    let w = built
        .warnings
        .iter()
        .find(|w| w.variable == "acabf")
        .expect("named");
    assert!(
        w.reason
            .contains("points, more than the 100000 a grid axis may have"),
        "{}",
        w.reason
    );
}

#[test]
fn an_attribute_too_large_to_store_is_named_not_stored() {
    let mut scans = vec![scan("lithk", &[2015, 2016], 0)];
    let huge = "x".repeat(floe_wire::limits().attribute_bytes as usize + 1);
    let mut global = (*scans[0].manifest.attributes).clone();
    global.insert("history".into(), json!(huge));
    global.insert("title".into(), json!("kept"));
    scans[0].manifest.attributes = global.into();
    let mut own = (*scans[0].manifest.variables[1].attributes).clone();
    own.insert("comment".into(), json!(huge));
    scans[0].manifest.variables[1].attributes = own.into();
    let built = build_group(&batch(&scans), &scans).expect("built");
    let group = &built.fragment.group_attributes;
    assert!(!group.contains_key("history") && group["title"] == "kept");
    let lithk = built
        .fragment
        .arrays
        .iter()
        .find(|a| a.name == "lithk")
        .expect("lithk");
    assert!(lithk.zarr_json["attributes"].get("comment").is_none());
    let named: Vec<(&str, &str)> = built
        .warnings
        .iter()
        .filter(|w| {
            w.reason
                .contains("more than the 1048576 a stored attribute may take")
        })
        .map(|w| {
            (
                w.variable.as_str(),
                w.reason.split(':').next().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [("", "attribute history"), ("lithk", "attribute comment")]
    );
    assert!(
        built.warnings.iter().all(|w| !w.is_left_out()),
        "{:?}",
        built.warnings
    );
    assert!(floe_store_check_passes(&built.fragment));
}

fn floe_store_check_passes(fragment: &floe_wire::ManifestFragment) -> bool {
    fragment.arrays.iter().all(|a| {
        floe_wire::oversized_attributes(a.zarr_json["attributes"].as_object().expect("attributes"))
            .is_empty()
    }) && floe_wire::oversized_attributes(&fragment.group_attributes).is_empty()
}
