//! Zarr v3 array metadata documents.

use floe_formats::{Codec, FileManifest, StructField, VariableManifest, VariableProblem};
use serde_json::{Map, Value};

/// Moves a file's records (HDF5 compound types, `fields` set) from its variables to its
/// problems, each with the reason: floe's readers describe them as Zarr `struct` arrays (for
/// `virtualizer inspect` and the Python parser), but the pipeline writes its arrays with
/// zarrs, which has no struct data type. Done once, where a group's files are read, so that
/// everything after (coordinates, the builders, companions) sees an ordinary problem.
pub fn set_aside_records(manifest: &mut FileManifest) {
    let (records, others): (Vec<VariableManifest>, Vec<VariableManifest>) =
        std::mem::take(&mut manifest.variables)
            .into_iter()
            .partition(|v| !v.fields.is_empty());
    manifest.variables = others;
    for record in records {
        let fields: Vec<String> = record.fields.iter().map(StructField::summary).collect();
        manifest.problems.push(VariableProblem {
            error: format!(
                "compound data type ({}): floe writes its arrays with zarrs, which has no struct data type; `virtualizer inspect` and the Python parser describe it",
                fields.join(", ")
            ),
            variable: record.variable,
        });
    }
}

/// Zarr v3 `data_type` of a numpy typestr, if Zarr has one.
pub fn data_type(typestr: &str) -> Option<&'static str> {
    Some(match typestr.get(1..)? {
        "i1" => "int8",
        "i2" => "int16",
        "i4" => "int32",
        "i8" => "int64",
        "u1" => "uint8",
        "u2" => "uint16",
        "u4" => "uint32",
        "u8" => "uint64",
        "f4" => "float32",
        "f8" => "float64",
        "b1" => "bool",
        // Variable-length strings, stored inline with the `vlen-utf8` codec.
        "O" => "string",
        _ => return None,
    })
}

/// The `zarr.json` of an array ([`floe_formats::zarr_v3::array_document`], with a data type by
/// name).
pub fn array_document(
    shape: &[u64],
    chunk_shape: &[u64],
    data_type: &str,
    fill_value: Value,
    codecs: &[Codec],
    attributes: Map<String, Value>,
    dimension_names: &[String],
) -> Value {
    floe_formats::zarr_v3::array_document(
        shape,
        chunk_shape,
        Value::from(data_type),
        fill_value,
        codecs,
        attributes,
        dimension_names,
    )
}

/// Little-endian `bytes` codec, for arrays floe materializes itself.
pub fn little_endian() -> Codec {
    Codec::new("bytes", [("endian", Value::from("little"))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_formats::SourceFormat;

    fn variable(name: &str, fields: &[(&str, &str)]) -> VariableManifest {
        VariableManifest {
            variable: name.into(),
            dtype: if fields.is_empty() { "<f4" } else { "|V5" }.into(),
            fields: fields
                .iter()
                .map(|(name, dtype)| StructField::value(*name, *dtype))
                .collect(),
            shape: vec![2],
            chunk_shape: vec![2],
            dimensions: vec!["n".into()],
            fill_value: Value::from(0),
            codecs: vec![little_endian()].into(),
            attributes: Default::default(),
            chunks: Vec::new(),
            inline_data: None,
            layout: "contiguous".into(),
        }
    }

    #[test]
    fn records_become_problems_named_once_and_other_variables_stay() {
        let mut manifest = FileManifest {
            format: SourceFormat::Hdf5,
            file_size: 1,
            attributes: Default::default(),
            variables: vec![
                variable("lithk", &[]),
                variable("stations", &[("id", "<i4"), ("ok", "|b1")]),
            ],
            problems: vec![VariableProblem {
                variable: "names".into(),
                error: "variable-length strings".into(),
            }],
            unlimited: Vec::new(),
            groups: Default::default(),
        };
        set_aside_records(&mut manifest);
        assert_eq!(manifest.variables, vec![variable("lithk", &[])]);
        assert_eq!(manifest.problems.len(), 2);
        let problem = &manifest.problems[1];
        assert_eq!(problem.variable, "stations");
        assert!(
            problem
                .error
                .starts_with("compound data type (id <i4, ok |b1): floe writes its arrays with zarrs, which has no struct data type"),
            "{}",
            problem.error
        );
        // Again: nothing left to move, nothing named twice.
        set_aside_records(&mut manifest);
        assert_eq!(manifest.problems.len(), 2);
    }

    #[test]
    fn nested_records_are_listed_with_their_fields_in_braces() {
        let mut record = variable("stations", &[("id", "<i4")]);
        record.fields.push(StructField {
            name: "inner".into(),
            dtype: "|V8".into(),
            fields: vec![
                StructField::value("x", "<f4"),
                StructField::value("y", "<f4"),
            ],
        });
        let mut manifest = FileManifest {
            format: SourceFormat::Hdf5,
            file_size: 1,
            attributes: Default::default(),
            variables: vec![record],
            problems: Vec::new(),
            unlimited: Vec::new(),
            groups: Default::default(),
        };
        set_aside_records(&mut manifest);
        assert!(
            manifest.problems[0]
                .error
                .starts_with("compound data type (id <i4, inner {x <f4, y <f4}): "),
            "{}",
            manifest.problems[0].error
        );
    }
}
