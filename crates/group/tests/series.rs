//! Property tests of concatenation along time: a variable's steps split over
//! files in any order and any sizes land, chunk by chunk, at their own instant
//! on the group's axis; a split whose chunks cannot sit on one grid is refused.

use floe_formats::{ChunkRef, Codec, FileManifest, SourceFormat, VariableManifest};
use floe_group::series::{build_series_group, SeriesError};
use floe_group::FileScan;
use floe_wire::{BatchDescriptor, ConcatSpec, GroupKey, SourceFile, SCHEMA_VERSION};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const DAY: f64 = 1.0;

fn little_endian() -> Vec<Codec> {
    vec![Codec::new("bytes", [("endian", Value::from("little"))])]
}

/// One file of `tas` holding global steps `first..first + n` (30-day steps, 360_day
/// calendar), chunked `chunk` steps along time; chunk offsets encode (file, chunk).
fn file(index: usize, first: u64, n: u64, chunk: u64, calendar: &str) -> FileScan {
    let time_attrs: Map<String, Value> =
        json!({"units": "days since 2000-01-01", "calendar": calendar})
            .as_object()
            .cloned()
            .unwrap_or_default();
    let time = VariableManifest {
        variable: "time".into(),
        dtype: "<f8".into(),
        fields: Vec::new(),
        shape: vec![n],
        chunk_shape: vec![n],
        dimensions: vec!["time".into()],
        fill_value: Value::Null,
        codecs: little_endian().into(),
        attributes: time_attrs.into(),
        chunks: vec![],
        inline_data: None,
        layout: "contiguous".into(),
    };
    let data = VariableManifest {
        variable: "tas".into(),
        dtype: "<f4".into(),
        fields: Vec::new(),
        shape: vec![n, 2, 3],
        chunk_shape: vec![chunk, 2, 3],
        dimensions: vec!["time".into(), "lat".into(), "lon".into()],
        fill_value: Value::from("NaN"),
        codecs: little_endian().into(),
        attributes: Map::new().into(),
        chunks: (0..n.div_ceil(chunk))
            .map(|k| ChunkRef {
                index: vec![k, 0, 0],
                offset: index as u64 * 1_000_000 + k,
                length: 24 * chunk,
            })
            .collect(),
        inline_data: None,
        layout: "chunked".into(),
    };
    let url = format!("file:///a/tas_{index:03}.nc");
    FileScan {
        source: SourceFile {
            url,
            size: 1,
            etag: None,
            last_modified: None,
            variable: "tas".into(),
        },
        manifest: FileManifest {
            format: SourceFormat::Hdf5,
            file_size: 1,
            attributes: Map::new().into(),
            variables: vec![time, data],
            problems: vec![],
            unlimited: Vec::new(),
            groups: Default::default(),
        },
        coords: [
            (
                "time".to_string(),
                (first..first + n).map(|s| s as f64 * 30.0 * DAY).collect(),
            ),
            ("lat".to_string(), vec![0.0, 1.0]),
            ("lon".to_string(), vec![0.0, 1.0, 2.0]),
        ]
        .into_iter()
        .collect(),
    }
}

fn batch(scans: &[FileScan]) -> BatchDescriptor {
    BatchDescriptor {
        schema_version: SCHEMA_VERSION,
        batch_id: "b".into(),
        profile: "cmip6@1".into(),
        group: GroupKey::new("M/e", Default::default()),
        files: scans.iter().map(|s| s.source.clone()).collect(),
        concat: None,
        shard: None,
        append: None,
        replaces: None,
    }
}

fn spec() -> ConcatSpec {
    ConcatSpec {
        dimension: "time".into(),
        time_units: Some("days since 1850-01-01".into()),
        file_variables: None,
    }
}

/// File sizes in whole chunks (the last may be partial), in a shuffled order.
fn splits() -> impl Strategy<Value = (u64, Vec<u64>, u64, Vec<usize>)> {
    (prop_oneof![Just(1u64), Just(12u64)], 1usize..6).prop_flat_map(|(chunk, files)| {
        (
            Just(chunk),
            proptest::collection::vec(1u64..4, files),
            0u64..12,
            Just(files),
        )
            .prop_flat_map(|(chunk, whole, tail, files)| {
                let order = Just((0..files).collect::<Vec<usize>>()).prop_shuffle();
                (Just(chunk), Just(whole), Just(tail), order)
            })
    })
}

proptest! {
    #[test]
    fn every_chunk_lands_at_its_own_steps((chunk, whole, tail, order) in splits()) {
        // File i holds whole[i] chunks; the last file may end with a partial chunk.
        let mut sizes: Vec<u64> = whole.iter().map(|w| w * chunk).collect();
        if let Some(last) = sizes.last_mut() {
            *last += tail % chunk;
        }
        let mut firsts = Vec::new();
        let mut at = 0;
        for s in &sizes {
            firsts.push(at);
            at += s;
        }
        let scans: Vec<FileScan> = order
            .iter()
            .map(|&i| file(i, firsts[i], sizes[i], chunk, "360_day"))
            .collect();
        let build = build_series_group(&batch(&scans), &scans, &spec()).expect("builds");
        let tas = build.fragment.arrays.iter().find(|a| a.name == "tas").expect("tas");
        prop_assert_eq!(&tas.zarr_json["shape"], &json!([at, 2, 3]));
        for r in &tas.refs {
            let file_index = (r.offset / 1_000_000) as usize;
            let local_chunk = r.offset % 1_000_000;
            prop_assert_eq!(&build.fragment.sources[r.source as usize].url, &format!("file:///a/tas_{file_index:03}.nc"));
            prop_assert_eq!(u64::from(r.index[0]), firsts[file_index] / chunk + local_chunk);
        }
        prop_assert_eq!(tas.refs.len() as u64, sizes.iter().map(|s| s.div_ceil(chunk)).sum::<u64>());
        let time = build.fragment.arrays.iter().find(|a| a.name == "time").expect("time");
        prop_assert_eq!(&time.zarr_json["attributes"]["calendar"], &json!("360_day"));
    }
}

#[test]
fn a_partial_chunk_before_another_file_and_mixed_calendars_are_refused() {
    let scans = vec![file(0, 0, 18, 12, "noleap"), file(1, 18, 12, 12, "noleap")];
    let e = build_series_group(&batch(&scans), &scans, &spec()).expect_err("padded edge");
    assert!(
        matches!(&e, SeriesError::NothingBuilt { left_out, .. } if left_out[0].variable == "tas")
            && e.to_string().contains("tas_000.nc"),
        "{e}"
    );
    let scans = vec![file(0, 0, 12, 12, "noleap"), file(1, 12, 12, 12, "360_day")];
    let e = build_series_group(&batch(&scans), &scans, &spec()).expect_err("calendars");
    assert!(e.to_string().contains("time calendar"), "{e}");
}

#[test]
fn an_unreadable_file_leaves_out_its_variable_and_keeps_the_others() {
    let mut pr: Vec<FileScan> = (0..2)
        .map(|i| {
            let mut s = file(i, i as u64 * 12, 12, 12, "noleap");
            s.source.variable = "pr".into();
            s.source.url = format!("file:///a/pr_{i:03}.nc");
            let data = &mut s.manifest.variables[1];
            data.variable = "pr".into();
            s
        })
        .collect();
    let mut broken = pr.remove(1).source;
    broken.size = 3;
    pr.push(FileScan::unreadable(
        broken,
        "not an HDF5 or NetCDF-3 file".into(),
    ));
    let mut scans = vec![file(0, 0, 12, 12, "noleap"), file(1, 12, 12, 12, "noleap")];
    scans.extend(pr);
    let build = build_series_group(&batch(&scans), &scans, &spec()).expect("tas is built");
    let names = build.fragment.array_names();
    assert!(
        names.contains(&"tas") && !names.contains(&"pr"),
        "{names:?}"
    );
    let left: Vec<(&str, &str)> = build
        .warnings
        .iter()
        .map(|w| (w.variable.as_str(), w.file.as_str()))
        .collect();
    assert_eq!(left, vec![("pr", "file:///a/pr_001.nc")]);
    assert!(build.warnings[0]
        .reason
        .contains("file cannot be read: not an HDF5 or NetCDF-3 file"));
}

/// `file` with CMIP6's companions: global attributes (a `tracking_id` of its own), a
/// `time_bnds` in `units` (the file's time units too), a scalar `height` named by
/// `tas:coordinates`, and `lat_bnds`.
fn cmip6_file(index: usize, first: u64, n: u64, units: &str, epoch_days: f64) -> FileScan {
    let mut scan = file(index, first, n, 1, "360_day");
    let var =
        |name: &str, dims: &[&str], shape: Vec<u64>, attrs: Value, offset: u64| VariableManifest {
            variable: name.into(),
            dtype: "<f8".into(),
            fields: Vec::new(),
            chunk_shape: shape.clone(),
            chunks: vec![ChunkRef {
                index: vec![0; shape.len()],
                offset,
                length: 8 * shape.iter().product::<u64>().max(1),
            }],
            shape,
            dimensions: dims.iter().map(|d| d.to_string()).collect(),
            fill_value: Value::from("NaN"),
            codecs: little_endian().into(),
            attributes: attrs.as_object().cloned().unwrap_or_default().into(),
            inline_data: None,
            layout: "contiguous".into(),
        };
    let m = &mut scan.manifest;
    m.attributes =
        json!({"source_id": "M", "tracking_id": format!("hdl:{index}"), "Conventions": "CF-1.7"})
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into();
    let time = std::sync::Arc::make_mut(&mut m.variables[0].attributes);
    time.insert("units".into(), Value::from(units));
    time.insert("bounds".into(), Value::from("time_bnds"));
    time.insert("long_name".into(), Value::from("time"));
    std::sync::Arc::make_mut(&mut m.variables[1].attributes)
        .insert("coordinates".into(), Value::from("height"));
    m.variables.push(var(
        "time_bnds",
        &["time", "bnds"],
        vec![n, 2],
        json!({}),
        500,
    ));
    m.variables.push(var(
        "height",
        &[],
        vec![],
        json!({"units": "m", "axis": "Z"}),
        600,
    ));
    m.variables.push(var(
        "lat_bnds",
        &["lat", "bnds"],
        vec![2, 2],
        json!({}),
        700,
    ));
    let shift = |days: f64| days - epoch_days;
    scan.coords.insert(
        "time".into(),
        (first..first + n)
            .map(|s| shift(s as f64 * 30.0 * DAY))
            .collect(),
    );
    scan.coords.insert(
        "time_bnds".into(),
        (first..first + n)
            .flat_map(|s| [shift(s as f64 * 30.0 - 15.0), shift(s as f64 * 30.0 + 15.0)])
            .collect(),
    );
    scan
}

fn attributes(fragment: &floe_wire::ArrayFragment) -> &Map<String, Value> {
    fragment.zarr_json["attributes"]
        .as_object()
        .expect("attributes")
}

#[test]
fn global_attributes_bounds_and_companions_are_kept_and_time_bounds_decoded_across_epochs() {
    // The second file's epoch is 1900-01-01 (36,000 days later in 360_day), the third
    // spells the first's epoch otherwise: all three decode to one series.
    let scans = vec![
        cmip6_file(0, 0, 3, "days since 2000-01-01", 0.0),
        cmip6_file(1, 3, 3, "days since 2100-01-01", 36_000.0),
        cmip6_file(2, 6, 3, "days since 2000-1-1 00:00:00", 0.0),
    ];
    let built = build_series_group(&batch(&scans), &scans, &spec()).expect("built");
    assert!(built.warnings.is_empty(), "{:?}", built.warnings);
    let fragment = &built.fragment;
    let group = &fragment.group_attributes;
    assert_eq!(group["source_id"], "M");
    assert_eq!(
        group["tracking_id"], "hdl:0",
        "the first file's, as xarray keeps it"
    );
    assert_eq!(group["floe_differing_attributes"], json!(["tracking_id"]));
    let names = fragment.array_names();
    for name in [
        "height",
        "lat",
        "lat_bnds",
        "lon",
        "tas",
        "time",
        "time_bnds",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let array = |name: &str| fragment.arrays.iter().find(|a| a.name == name).expect(name);
    assert_eq!(attributes(array("time"))["bounds"], "time_bnds");
    assert_eq!(attributes(array("time"))["long_name"], "time");
    assert_eq!(attributes(array("time"))["units"], "days since 1850-01-01");
    assert_eq!(attributes(array("tas"))["coordinates"], "height");
    assert_eq!(array("height").zarr_json["shape"], json!([]));
    assert_eq!(array("height").refs.len(), 1);
    // Bounds as values, in the stored units: 150 years of 360 days after 1850 is 2000.
    let bounds = array("time_bnds");
    assert_eq!(bounds.zarr_json["shape"], json!([9, 2]));
    let values: Vec<f64> = bounds.inline_chunks[0]
        .data
        .chunks(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    let expected: Vec<f64> = (0..9u32)
        .flat_map(|s| {
            [
                54_000.0 + f64::from(s) * 30.0 - 15.0,
                54_000.0 + f64::from(s) * 30.0 + 15.0,
            ]
        })
        .collect();
    assert_eq!(values, expected);
}

#[test]
fn time_bounds_that_disagree_or_are_missing_are_left_out_by_name() {
    let mut scans = vec![
        cmip6_file(0, 0, 3, "days since 2000-01-01", 0.0),
        cmip6_file(1, 3, 3, "days since 2000-01-01", 0.0),
    ];
    scans[1].coords.remove("time_bnds");
    let built = build_series_group(&batch(&scans), &scans, &spec()).expect("built");
    let warning = built
        .warnings
        .iter()
        .find(|w| w.variable == "time_bnds")
        .expect("warned");
    assert_eq!(warning.file, scans[1].source.url);
    assert!(warning.reason.contains("not read"), "{}", warning.reason);
    assert!(!built.fragment.array_names().contains(&"time_bnds"));
}

#[test]
fn a_companion_some_files_of_its_variable_lack_is_left_out_naming_both() {
    let mut scans = vec![
        cmip6_file(0, 0, 3, "days since 2000-01-01", 0.0),
        cmip6_file(1, 3, 3, "days since 2000-01-01", 0.0),
    ];
    scans[1]
        .manifest
        .variables
        .retain(|v| v.variable != "height");
    let built = build_series_group(&batch(&scans), &scans, &spec()).expect("built");
    let warning = built
        .warnings
        .iter()
        .find(|w| w.variable == "height")
        .expect("warned");
    assert!(
        warning.reason.contains(&scans[0].source.url),
        "{}",
        warning.reason
    );
    assert_eq!(warning.file, scans[1].source.url);
}
