//! Files that hold several variables (MUR SST-shaped: `analysed_sst`, `mask`, …
//! in one file a day): every data variable along time is concatenated, the
//! variables not along time come from the first file, coordinates keep their
//! source dtype, and files that disagree on which variables they hold are
//! refused by name.

use floe_formats::{
    ChunkRef, Codec, FileManifest, SourceFormat, VariableManifest, VariableProblem,
};
use floe_group::series::{build_series_group, SeriesError};
use floe_group::{FileScan, GroupBuild};
use floe_wire::{
    ArrayFragment, BatchDescriptor, ConcatSpec, GroupKey, SourceFile, VariableSelection,
    EVERY_VARIABLE, SCHEMA_VERSION,
};
use serde_json::{json, Map, Value};

fn codecs() -> Vec<Codec> {
    vec![Codec::new("bytes", [("endian", Value::from("little"))])]
}

fn attrs(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn variable(name: &str, dtype: &str, dims: &[&str], shape: &[u64], a: Value) -> VariableManifest {
    VariableManifest {
        variable: name.into(),
        dtype: dtype.into(),
        fields: Vec::new(),
        shape: shape.to_vec(),
        chunk_shape: shape.to_vec(),
        dimensions: dims.iter().map(|d| d.to_string()).collect(),
        fill_value: Value::from(0),
        codecs: codecs().into(),
        attributes: attrs(a).into(),
        chunks: vec![ChunkRef {
            index: vec![0; shape.len()],
            offset: 4096,
            length: shape.iter().product::<u64>() * 2,
        }],
        inline_data: None,
        layout: "chunked".into(),
    }
}

/// Day `day` of a MUR-shaped archive: one step, int32 seconds since 1981.
fn day(day: u64, time_units: &str) -> FileScan {
    let vars = vec![
        variable(
            "time",
            "<i4",
            &["time"],
            &[1],
            json!({"units": time_units, "calendar": "standard", "bounds": "time_bnds"}),
        ),
        variable(
            "lat",
            "<f4",
            &["lat"],
            &[2],
            json!({"units": "degrees_north"}),
        ),
        variable(
            "lon",
            "<f4",
            &["lon"],
            &[3],
            json!({"units": "degrees_east"}),
        ),
        variable(
            "analysed_sst",
            "<i2",
            &["time", "lat", "lon"],
            &[1, 2, 3],
            json!({"scale_factor": 0.001, "add_offset": 298.15, "_FillValue": -32768}),
        ),
        variable(
            "mask",
            "|i1",
            &["time", "lat", "lon"],
            &[1, 2, 3],
            json!({"flag_masks": [1, 2, 4], "flag_meanings": "water land lake", "_FillValue": -128}),
        ),
        variable("time_bnds", "<i4", &["time", "nv"], &[1, 2], json!({})),
        variable(
            "crs",
            "<i4",
            &[],
            &[],
            json!({"grid_mapping_name": "latitude_longitude"}),
        ),
    ];
    let seconds = if time_units.starts_with("seconds") {
        86_400.0
    } else {
        1.0
    };
    FileScan {
        source: SourceFile {
            url: format!("file:///mur/{day:04}-JPL-L4_GHRSST-SSTfnd-MUR-GLOB-v02.0-fv04.1.nc"),
            size: 8192,
            etag: None,
            last_modified: None,
            variable: EVERY_VARIABLE.into(),
        },
        manifest: FileManifest {
            format: SourceFormat::Hdf5,
            file_size: 8192,
            attributes: Map::new().into(),
            variables: vars,
            problems: vec![],
            unlimited: Vec::new(),
            groups: Default::default(),
        },
        coords: [
            ("time".to_string(), vec![day as f64 * seconds]),
            (
                "time_bnds".to_string(),
                vec![day as f64 * seconds, (day + 1) as f64 * seconds],
            ),
            ("lat".to_string(), vec![-0.5, 0.25]),
            ("lon".to_string(), vec![0.0, 0.125, 0.375]),
        ]
        .into_iter()
        .collect(),
    }
}

fn days(n: u64) -> Vec<FileScan> {
    (0..n)
        .map(|d| day(d, "seconds since 1981-01-01 00:00:00"))
        .collect()
}

fn build(scans: &[FileScan], selection: VariableSelection) -> Result<GroupBuild, SeriesError> {
    let batch = BatchDescriptor {
        schema_version: SCHEMA_VERSION,
        batch_id: "b".into(),
        profile: "mur@1".into(),
        group: GroupKey::new("MUR-GLOB", Default::default()),
        files: scans.iter().map(|s| s.source.clone()).collect(),
        concat: None,
        shard: None,
        append: None,
        replaces: None,
    };
    let spec = ConcatSpec {
        dimension: "time".into(),
        time_units: None,
        file_variables: Some(selection),
    };
    build_series_group(&batch, scans, &spec)
}

fn every() -> VariableSelection {
    VariableSelection::default()
}

fn array<'a>(b: &'a GroupBuild, name: &str) -> &'a ArrayFragment {
    b.fragment
        .arrays
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no array {name}"))
}

#[test]
fn every_variable_along_time_is_concatenated_and_the_static_ones_come_from_the_first_file() {
    let scans = days(3);
    let b = build(&scans, every()).expect("builds");
    let names = b.fragment.array_names();
    assert_eq!(
        names,
        [
            "analysed_sst",
            "crs",
            "lat",
            "lon",
            "mask",
            "time",
            "time_bnds"
        ]
    );
    for name in ["analysed_sst", "mask"] {
        let a = array(&b, name);
        assert_eq!(a.zarr_json["shape"], json!([3, 2, 3]), "{name}");
        let steps: Vec<(u32, &str)> = a
            .refs
            .iter()
            .map(|r| {
                (
                    r.index[0],
                    b.fragment.sources[r.source as usize].url.as_str(),
                )
            })
            .collect();
        assert_eq!(steps.len(), 3, "{name}");
        for (step, url) in steps {
            assert!(
                url.contains(&format!("/{step:04}-")),
                "{name}: step {step} from {url}"
            );
        }
    }
    // Integer data keeps its _FillValue attribute: Zarr v3 readers mask by it.
    assert_eq!(
        array(&b, "analysed_sst").zarr_json["attributes"]["_FillValue"],
        json!(-32768)
    );
    assert_eq!(
        array(&b, "mask").zarr_json["attributes"]["flag_meanings"],
        json!("water land lake")
    );
    // The bounds are concatenated along time too, and the time says so.
    assert_eq!(array(&b, "time_bnds").zarr_json["shape"], json!([3, 2]));
    assert_eq!(
        array(&b, "time").zarr_json["attributes"]["bounds"],
        json!("time_bnds")
    );
    // A scalar (crs) is referenced once, in the first file.
    let crs = array(&b, "crs");
    assert_eq!(crs.zarr_json["shape"], json!([]));
    assert_eq!(crs.refs.len(), 1);
    assert_eq!(crs.refs[0].source, 0);
    assert!(
        b.notes.iter().any(|n| n.starts_with("crs: not along time")),
        "{:?}",
        b.notes
    );
}

#[test]
fn coordinates_keep_their_source_dtype() {
    let b = build(&days(2), every()).expect("builds");
    let lat = array(&b, "lat");
    assert_eq!(lat.zarr_json["data_type"], json!("float32"));
    let bytes = &lat.inline_chunks[0].data;
    assert_eq!(bytes.len(), 8);
    assert_eq!(
        f32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")),
        0.25
    );
    let time = array(&b, "time");
    assert_eq!(time.zarr_json["data_type"], json!("int32"));
    let data = &time.inline_chunks[0].data;
    assert_eq!(
        i32::from_le_bytes(data[4..8].try_into().expect("4 bytes")),
        86_400
    );
}

#[test]
fn a_time_that_is_not_exact_in_the_source_dtype_is_stored_as_float64_with_a_note() {
    // Stored in the first file's units (days), the second file's half-day step
    // is not an integer: the int32 time cannot hold it.
    let mut scans = vec![
        day(0, "days since 1981-01-01"),
        day(1, "days since 1981-01-01"),
    ];
    scans[1].coords.insert("time".into(), vec![1.5]);
    let b = build(&scans, every()).expect("builds");
    assert_eq!(array(&b, "time").zarr_json["data_type"], json!("float64"));
    assert!(
        b.notes
            .iter()
            .any(|n| n.contains("time: stored as float64")),
        "{:?}",
        b.notes
    );
}

/// The one variable left out of a partial group: (variable, file, reason).
fn only_left_out(b: &GroupBuild) -> (&str, &str, &str) {
    let [w] = b.warnings.as_slice() else {
        panic!("one variable left out: {:?}", b.warnings)
    };
    let recorded = &b.fragment.group_attributes["floe_warnings"];
    assert_eq!(
        recorded[0]["variable"],
        json!(w.variable),
        "recorded in the group"
    );
    (&w.variable, &w.file, &w.reason)
}

fn names(b: &GroupBuild) -> Vec<&str> {
    b.fragment.array_names()
}

#[test]
fn a_variable_some_files_lack_is_left_out_naming_a_file_of_each_kind() {
    let mut scans = days(3);
    scans[2].manifest.variables.retain(|v| v.variable != "mask");
    let b = build(&scans, every()).expect("a partial group");
    let (variable, file, reason) = only_left_out(&b);
    assert_eq!(variable, "mask");
    assert!(file.contains("/0002-"), "{file}");
    assert!(
        reason.starts_with("mask is in ") && reason.contains("/0000-"),
        "{reason}"
    );
    assert!(!names(&b).contains(&"mask"));
    // The variables beside it are whole: three steps, one per file.
    assert_eq!(array(&b, "analysed_sst").refs.len(), 3);
    // Left out by the profile, the missing variable is no longer a difference.
    let selection = VariableSelection {
        include: vec![],
        exclude: vec!["mask".into()],
    };
    let b = build(&scans, selection).expect("builds without mask");
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
}

#[test]
fn only_the_named_variables_are_taken_and_each_must_be_in_every_file() {
    let selection = VariableSelection {
        include: vec!["analysed_sst".into(), "mask".into()],
        exclude: vec![],
    };
    let b = build(&days(2), selection.clone()).expect("builds");
    assert_eq!(names(&b), ["analysed_sst", "lat", "lon", "mask", "time"]);
    let mut scans = days(2);
    scans[1].manifest.variables.retain(|v| v.variable != "mask");
    let b = build(&scans, selection).expect("a partial group");
    let (variable, file, reason) = only_left_out(&b);
    assert_eq!(variable, "mask");
    assert!(
        file.contains("/0001-") && reason.contains("named in the profile's variables"),
        "{file}: {reason}"
    );
    // With nothing left to build, the group fails naming every reason.
    let only_mask = VariableSelection {
        include: vec!["mask".into()],
        exclude: vec![],
    };
    let e = build(&scans, only_mask).expect_err("nothing to build");
    assert!(matches!(e, SeriesError::NothingBuilt { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("mask: named in the profile's variables"),
        "{e}"
    );
}

#[test]
fn a_variable_the_reader_could_not_describe_is_left_out_and_named() {
    let mut scans = days(2);
    scans[1].manifest.problems.push(VariableProblem {
        variable: "sst_dtime".into(),
        error: "filter 32015 (zstd) is not supported".into(),
    });
    let b = build(&scans, every()).expect("a partial group");
    let (variable, file, reason) = only_left_out(&b);
    assert_eq!(
        (variable, reason),
        ("sst_dtime", "filter 32015 (zstd) is not supported")
    );
    assert!(file.contains("/0001-"), "{file}");
    assert!(names(&b).contains(&"analysed_sst"));
    let selection = VariableSelection {
        include: vec![],
        exclude: vec!["sst_dtime".into()],
    };
    let b = build(&scans, selection).expect("left out by the profile");
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
}

#[test]
fn a_static_variable_that_differs_between_files_is_left_out() {
    let mut scans = days(2);
    if let Some(crs) = scans[1]
        .manifest
        .variables
        .iter_mut()
        .find(|v| v.variable == "crs")
    {
        crs.dtype = "<i8".into();
    }
    let b = build(&scans, every()).expect("a partial group");
    let (variable, _, reason) = only_left_out(&b);
    assert_eq!(variable, "crs");
    assert!(reason.contains("crs: dtype differs between"), "{reason}");
    assert!(!names(&b).contains(&"crs"));
}

#[test]
fn a_variable_whose_files_disagree_is_left_out_and_its_siblings_are_written() {
    let mut scans = days(3);
    if let Some(sst) = scans[1]
        .manifest
        .variables
        .iter_mut()
        .find(|v| v.variable == "analysed_sst")
    {
        std::sync::Arc::make_mut(&mut sst.attributes).insert("scale_factor".into(), json!(0.01));
    }
    let b = build(&scans, every()).expect("a partial group");
    let (variable, file, reason) = only_left_out(&b);
    assert_eq!(variable, "analysed_sst");
    assert!(
        file.contains("/0001-") && reason.contains("scale_factor differs between"),
        "{reason}"
    );
    assert_eq!(array(&b, "mask").refs.len(), 3);
    assert_eq!(array(&b, "time").zarr_json["shape"], json!([3]));
}

#[test]
fn bounds_in_units_other_than_the_stored_time_are_decoded_and_stored_as_values() {
    // The second file counts from the next day: its bounds cannot be referenced as
    // they are, so both files' are decoded and written in the stored (first file's) units.
    let scans = vec![
        day(0, "seconds since 1981-01-01 00:00:00"),
        day(1, "seconds since 1981-01-02 00:00:00"),
    ];
    let b = build(&scans, every()).expect("builds");
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    let bounds = array(&b, "time_bnds");
    assert!(bounds.refs.is_empty());
    assert_eq!(bounds.zarr_json["shape"], json!([2, 2]));
    assert_eq!(
        bounds.zarr_json["data_type"],
        json!("int32"),
        "exact in the source dtype"
    );
    let values: Vec<i32> = bounds.inline_chunks[0]
        .data
        .chunks(4)
        .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    assert_eq!(values, [0, 86_400, 172_800, 259_200]);
    assert_eq!(
        array(&b, "time").zarr_json["attributes"]["bounds"],
        json!("time_bnds")
    );
    assert!(
        b.notes
            .iter()
            .any(|n| n.contains("time_bnds: decoded like time")),
        "{:?}",
        b.notes
    );
}

#[test]
fn a_file_with_nothing_along_the_dimension_keeps_every_variable_as_it_is() {
    // A grid file with a scalar time: nothing to concatenate, every variable referenced.
    let mut scan = day(0, "seconds since 1981-01-01 00:00:00");
    scan.manifest
        .variables
        .retain(|v| !v.dimensions.iter().any(|d| d == "time"));
    scan.manifest.variables.push(variable(
        "time",
        "<f8",
        &[],
        &[],
        json!({"units": "days since 2000-01-01"}),
    ));
    let b = build(std::slice::from_ref(&scan), every()).expect("builds");
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    assert_eq!(names(&b), ["crs", "lat", "lon", "time"]);
    let time = array(&b, "time");
    assert_eq!(time.zarr_json["shape"], json!([]));
    assert_eq!(
        time.zarr_json["attributes"]["units"],
        json!("days since 2000-01-01")
    );
    assert_eq!(time.refs.len(), 1);
    assert_eq!(
        array(&b, "lat").refs[0].offset,
        4096,
        "referenced in the file"
    );
    assert!(
        b.notes
            .iter()
            .any(|n| n.contains("no file runs along time")),
        "{:?}",
        b.notes
    );
}

#[test]
fn a_scalar_time_beside_data_along_the_dimension_says_it_is_scalar() {
    let mut scans = days(2);
    for v in &mut scans[1].manifest.variables {
        if v.variable == "time" {
            v.dimensions.clear();
            v.shape.clear();
        }
    }
    let e = build(&scans, every()).expect_err("no steps");
    assert!(e.to_string().contains("time is a scalar"), "{e}");
}
