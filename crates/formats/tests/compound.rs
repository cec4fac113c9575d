//! HDF5 compound (record) datasets written by h5py, read as Zarr `struct` arrays: the files
//! in `tests/compound` are written by tests/fixtures/make_fixtures.py (`compound_files`, HDF5
//! 1.10.8), with h5py's own view of the readable ones (`get_chunk_info`, `get_offset`, fill
//! value bytes) beside them in `h5_1_10_8_compound.json`.

use std::path::PathBuf;

use floe_formats::{FileManifest, StructField, VariableManifest};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compound")
        .join(name)
}

fn read(name: &str) -> FileManifest {
    let bytes = std::fs::read(fixture(name)).expect("fixture");
    floe_formats::read_bytes(bytes).expect("readable file")
}

fn variable<'a>(manifest: &'a FileManifest, name: &str) -> &'a VariableManifest {
    manifest
        .variables
        .iter()
        .find(|v| v.variable == name)
        .unwrap_or_else(|| panic!("{name} not read: {:?}", manifest.problems))
}

fn fields(pairs: &[(&str, &str)]) -> Vec<StructField> {
    pairs
        .iter()
        .map(|(name, dtype)| StructField::value(*name, *dtype))
        .collect()
}

/// h5py's fields as make_fixtures.py writes them: `[name, typestr]`, or for a nested record
/// `[name, "|V{size}", [its fields]]`.
fn h5py_fields(listed: &Value) -> Vec<StructField> {
    listed
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| StructField {
            name: f[0].as_str().expect("name").into(),
            dtype: f[1].as_str().expect("dtype").into(),
            fields: f.get(2).map(h5py_fields).unwrap_or_default(),
        })
        .collect()
}

#[test]
fn packed_records_match_what_h5py_says_of_them() {
    let manifest = read("h5_1_10_8_compound.h5");
    let text = std::fs::read_to_string(fixture("h5_1_10_8_compound.json")).expect("h5py's view");
    let h5py: serde_json::Map<String, Value> = serde_json::from_str(&text).expect("json");
    assert_eq!(
        manifest.variables.len(),
        h5py.len(),
        "{:?}",
        manifest.problems
    );
    for (name, expected) in &h5py {
        let v = variable(&manifest, name);
        assert_eq!(v.dtype, expected["dtype"], "{name}");
        assert_eq!(v.item_size(), v.dtype[2..].parse().ok(), "{name}");
        assert_eq!(v.fields, h5py_fields(&expected["fields"]), "{name}");
        assert_eq!(json!(v.shape), expected["shape"], "{name}");
        assert_eq!(json!(v.chunk_shape), expected["chunk_shape"], "{name}");
        let refs: Vec<Value> = v
            .chunks
            .iter()
            .map(|c| json!([c.index, c.offset, c.length]))
            .collect();
        assert_eq!(Value::from(refs), expected["chunks"], "{name}");
    }
    // Compact data has no range to point at: it is kept inline, one record per element.
    let compact = variable(&manifest, "compact");
    assert_eq!(compact.layout, "compact");
    assert_eq!(compact.inline_data.as_ref().map(Vec::len), Some(2 * 16));
}

#[test]
fn codecs_carry_the_members_byte_order_and_the_filters_the_record_size() {
    let manifest = read("h5_1_10_8_compound.h5");
    let codecs =
        |name: &str| serde_json::to_value(&*variable(&manifest, name).codecs).expect("json");
    assert_eq!(
        codecs("records"),
        json!([
            {"name": "bytes", "configuration": {"endian": "little"}},
            {"name": "numcodecs.shuffle", "configuration": {"elementsize": 16}},
            {"name": "numcodecs.zlib", "configuration": {"level": 4}},
        ])
    );
    assert_eq!(
        codecs("big_endian"),
        json!([{"name": "bytes", "configuration": {"endian": "big"}}])
    );
    // Only one-byte members (bool, an enum over i1, u1): no byte order to give.
    assert_eq!(
        codecs("one_byte"),
        json!([{"name": "bytes", "configuration": {}}])
    );
    assert_eq!(
        variable(&manifest, "one_byte").fields,
        fields(&[("ok", "|b1"), ("level", "|i1"), ("n", "|u1")])
    );
}

#[test]
fn fill_values_are_struct_objects_decoded_from_the_hdf5_fill_value() {
    let manifest = read("h5_1_10_8_compound.h5");
    // h5py's fillvalue=(-1, nan, b"ab", 7); byte strings in base64, as Zarr v3 writes them.
    assert_eq!(
        variable(&manifest, "records").fill_value,
        json!({"a": -1, "b": "NaN", "s": "YWI=", "u": 7})
    );
    assert_eq!(
        variable(&manifest, "grid").fill_value,
        json!({"a": 0, "b": 0.0, "s": "", "u": 0})
    );
    assert_eq!(
        variable(&manifest, "big_endian").fill_value,
        json!({"t": 0, "v": 0.0, "c": "", "ok": false})
    );
}

#[test]
fn nested_records_nest_their_fields_codecs_and_fill_values() {
    let manifest = read("h5_1_10_8_compound.h5");
    let nested = variable(&manifest, "nested");
    assert_eq!(nested.dtype, "|V12");
    assert_eq!(
        serde_json::to_value(&nested.fields).expect("json"),
        json!([
            {"name": "a", "dtype": "<i4"},
            {"name": "inner", "dtype": "|V8", "fields": [
                {"name": "x", "dtype": "<f4"},
                {"name": "y", "dtype": "<f4"},
            ]},
        ])
    );
    // No fill value set: HDF5's zero bytes, nested as Zarr's default.
    assert_eq!(
        nested.fill_value,
        json!({"a": 0, "inner": {"x": 0.0, "y": 0.0}})
    );
    assert_eq!(
        serde_json::to_value(&*nested.codecs).expect("json"),
        json!([{"name": "bytes", "configuration": {"endian": "little"}}])
    );
    let deep = variable(&manifest, "nested_big_endian");
    assert_eq!(deep.dtype, "|V19");
    // h5py's fillvalue=(-9, (inf, (b"zz", True, -0.5))), big-endian bytes.
    assert_eq!(
        deep.fill_value,
        json!({"t": -9, "inner": {"x": "Infinity", "deep": {"s": "eno=", "ok": true, "d": -0.5}}})
    );
    assert_eq!(
        serde_json::to_value(&*deep.codecs).expect("json"),
        json!([{"name": "bytes", "configuration": {"endian": "big"}}])
    );
    let metadata = floe_formats::zarr_v3::array_metadata(deep)
        .expect("zarr metadata")
        .metadata;
    assert_eq!(
        metadata["data_type"],
        json!({"name": "struct", "configuration": {"fields": [
            {"name": "t", "data_type": "int32"},
            {"name": "inner", "data_type": {"name": "struct", "configuration": {"fields": [
                {"name": "x", "data_type": "float32"},
                {"name": "deep", "data_type": {"name": "struct", "configuration": {"fields": [
                    {"name": "s", "data_type": {"name": "null_terminated_bytes", "configuration": {"length_bytes": 2}}},
                    {"name": "ok", "data_type": "bool"},
                    {"name": "d", "data_type": "float64"},
                ]}}},
            ]}}},
        ]}})
    );
    assert_eq!(metadata["fill_value"], deep.fill_value);
}

#[test]
fn records_zarr_cannot_describe_are_refused_by_name_with_the_reason() {
    let manifest = read("h5_1_10_8_compound_refused.h5");
    let expected = [
        (
            "padded",
            "compound type with padding (fields at offsets [0, 8], record of 16 bytes): Zarr's struct data type is packed, so its bytes cannot be referenced as they are",
        ),
        (
            "trailing_padding",
            "compound type with padding (fields at offsets [0, 4], record of 8 bytes)",
        ),
        ("out_of_order", "out of declared order"),
        ("array_member", "array-typed field \"v\""),
        (
            "vlen_member",
            "variable-length field \"name\": variable-length data cannot be referenced as fixed-size chunks",
        ),
        ("reference_member", "reference field \"r\""),
        ("mixed_order", "mixed byte order (\"a\" little-endian, \"b\" big-endian)"),
        // Inside a nested record, the same reasons, naming the nested field's path.
        (
            "nested_padded",
            "compound type with padding (nested record \"inner\": fields at offsets [0, 8], record of 16 bytes)",
        ),
        ("nested_array_member", "array-typed field \"inner.v\" (shape [2])"),
        (
            "nested_mixed_order",
            "mixed byte order (\"a\" little-endian, \"inner.x\" big-endian)",
        ),
    ];
    assert!(manifest.variables.is_empty(), "{:?}", manifest.variables);
    for (name, reason) in expected {
        let problem = manifest
            .problems
            .iter()
            .find(|p| p.variable == name)
            .unwrap_or_else(|| panic!("{name} not named: {:?}", manifest.problems));
        assert!(problem.error.contains(reason), "{name}: {}", problem.error);
    }
    assert_eq!(
        manifest.problems.len(),
        expected.len(),
        "{:?}",
        manifest.problems
    );
}

#[test]
fn fields_are_in_the_json_only_for_records() {
    let manifest = read("h5_1_10_8_compound.h5");
    let record = serde_json::to_value(variable(&manifest, "big_endian")).expect("json");
    assert_eq!(
        record["fields"],
        json!([
            {"name": "t", "dtype": ">i4"},
            {"name": "v", "dtype": ">f8"},
            {"name": "c", "dtype": "|S2"},
            {"name": "ok", "dtype": "|b1"},
        ])
    );
    let mut plain = variable(&manifest, "big_endian").clone();
    plain.fields.clear();
    let written = serde_json::to_value(&plain).expect("json");
    assert!(written.get("fields").is_none(), "{written}");
    // A manifest written before records existed reads back with no fields.
    let back: VariableManifest = serde_json::from_value(written).expect("reads back");
    assert_eq!(back, plain);
}
