//! Zarr v3 array metadata (a `zarr.json` document) for a [`VariableManifest`], written as
//! VirtualiZarr's own parsers (`HDFParser`, `NetCDF3Parser`) describe the same variable, so that
//! `FloeParser` gives the same `ManifestStore`: zarr-python's names for the data types, its JSON
//! for fill values, the netCDF bookkeeping attributes left out, `_FillValue` encoded as xarray's
//! Zarr backend encodes it, and a chunk longer than its array along an unlimited dimension
//! trimmed as `HDFParser` trims it.
//!
//! Pure: the Python side builds `ArrayV3Metadata.from_dict` from this JSON (cached by its text:
//! the variables of a series' files mostly share theirs).

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::{Codec, VariableManifest};

/// Attributes of HDF5 and netCDF-4 bookkeeping that VirtualiZarr's `HDFParser` leaves out.
pub const HIDDEN_ATTRIBUTES: [&str; 8] = [
    "REFERENCE_LIST",
    "CLASS",
    "DIMENSION_LIST",
    "NAME",
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_nc3_strict",
    "_NCProperties",
];

/// One array's Zarr v3 metadata and, when its chunk is trimmed to the array, the byte length
/// each of its chunk references must take.
#[derive(Debug, Clone, PartialEq)]
pub struct ZarrArray {
    /// The `zarr.json` document of the array.
    pub metadata: Value,
    /// The length of every chunk reference, when the chunk shape was trimmed (unfiltered data
    /// trimmed along its first axis stays one byte range, shorter than the stored chunk).
    pub trimmed_chunk_bytes: Option<u64>,
}

/// A group's attributes without the bookkeeping ones ([`HIDDEN_ATTRIBUTES`]).
pub fn visible_attributes(attributes: &Map<String, Value>) -> Map<String, Value> {
    attributes
        .iter()
        .filter(|(k, _)| !HIDDEN_ATTRIBUTES.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The Zarr v3 metadata of `v`, or why zarr-python has no data type for it.
pub fn array_metadata(v: &VariableManifest) -> Result<ZarrArray, String> {
    let strings = v.layout == "strings";
    let element = Element::parse(&v.dtype, strings)?;
    let (data_type, fill_value) = if element.kind == Kind::Record {
        record_type(v)?
    } else {
        (element.data_type(), element.fill_value(&v.fill_value)?)
    };
    let (chunk_shape, trimmed_chunk_bytes) = chunk_shape(v, element.size);
    let codecs = if strings {
        // Inlined variable-length strings: zarr-python's vlen-utf8, as for `StringDType`.
        vec![Codec::new("vlen-utf8", [])]
    } else {
        v.codecs.to_vec()
    };
    let mut attributes = visible_attributes(&v.attributes);
    if let Some(fill) = attributes.get_mut("_FillValue") {
        *fill = element.cf_fill_value(fill)?;
    }
    Ok(ZarrArray {
        metadata: array_document(
            &v.shape,
            &chunk_shape,
            data_type,
            fill_value,
            &codecs,
            attributes,
            &v.dimensions,
        ),
        trimmed_chunk_bytes,
    })
}

/// The `zarr.json` document of an array: the one shape of it, for the arrays floe writes to its
/// stores and for those `FloeParser` hands VirtualiZarr.
pub fn array_document(
    shape: &[u64],
    chunk_shape: &[u64],
    data_type: Value,
    fill_value: Value,
    codecs: &[Codec],
    attributes: Map<String, Value>,
    dimension_names: &[String],
) -> Value {
    json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk_shape}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill_value,
        "codecs": codecs,
        "attributes": attributes,
        "dimension_names": dimension_names,
    })
}

/// A record's (an HDF5 compound's) zarr-python `struct` data type, its fields' types in order
/// (a nested record's a `struct` again), and its fill value, which floe's reader gives already
/// in zarr-python's JSON for a struct (an object of each field's JSON scalar, an object inside
/// for a nested record).
fn record_type(v: &VariableManifest) -> Result<(Value, Value), String> {
    let data_type = struct_type("", &v.fields)?;
    if !fill_names_fields(&v.fields, &v.fill_value) {
        return Err(format!(
            "fill value {} does not name each field of the record once",
            v.fill_value
        ));
    }
    Ok((data_type, v.fill_value.clone()))
}

/// zarr-python's `struct` data type of `fields`, those of the record at `path` (`""` for the
/// outermost, `inner` for a nested one; messages name it).
fn struct_type(path: &str, fields: &[crate::StructField]) -> Result<Value, String> {
    if fields.is_empty() {
        return Err(format!("record {path:?} lists no fields"));
    }
    let fields = fields
        .iter()
        .map(|f| {
            let here = if path.is_empty() {
                f.name.clone()
            } else {
                format!("{path}.{}", f.name)
            };
            let member =
                Element::parse(&f.dtype, false).map_err(|e| format!("field {here:?}: {e}"))?;
            let data_type = if member.kind == Kind::Record {
                struct_type(&here, &f.fields)?
            } else if f.fields.is_empty() {
                member.data_type()
            } else {
                return Err(format!(
                    "field {here:?} of type {:?} lists fields of its own",
                    f.dtype
                ));
            };
            Ok(json!({"name": f.name, "data_type": data_type}))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(json!({"name": "struct", "configuration": {"fields": fields}}))
}

/// Whether a struct fill value is an object naming each of `fields` once, a nested record's
/// an object naming its own.
fn fill_names_fields(fields: &[crate::StructField], fill: &Value) -> bool {
    fill.as_object().is_some_and(|fill| {
        fill.len() == fields.len()
            && fields.iter().all(|f| {
                fill.get(&f.name)
                    .is_some_and(|value| f.fields.is_empty() || fill_names_fields(&f.fields, value))
            })
    })
}

/// The chunk shape to report and, when trimmed, each chunk's length in bytes: an HDF5 chunk
/// longer than its dataset along an unlimited dimension (512 steps holding 4) is trimmed to the
/// array where the in-bounds region stays one byte range (unfiltered data, trimmed along the
/// first axis only); otherwise it is kept (zarr crops it). A zero-length axis has chunks of 1.
fn chunk_shape(v: &VariableManifest, item_size: u64) -> (Vec<u64>, Option<u64>) {
    let stored: Vec<u64> = v.chunk_shape.iter().map(|c| (*c).max(1)).collect();
    let trimmed: Vec<u64> = stored
        .iter()
        .zip(&v.shape)
        .map(|(c, s)| (*c).min((*s).max(1)))
        .collect();
    let trimmable = v.layout == "chunked"
        && v.is_uncompressed()
        && trimmed.get(1..) == stored.get(1..)
        && trimmed != stored;
    if !trimmable {
        return (stored, None);
    }
    let bytes = trimmed.iter().fold(item_size, |n, c| n.saturating_mul(*c));
    (trimmed, Some(bytes))
}

/// The kinds of element zarr-python has a data type for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int,
    UInt,
    Float,
    Bool,
    /// Fixed-length byte strings (`|S4`): zarr-python's `null_terminated_bytes`.
    Bytes,
    /// Variable-length strings, read and inlined: zarr-python's `string`.
    Text,
    /// Records (`|V16` with fields): zarr-python's `struct`.
    Record,
}

#[derive(Debug, Clone, Copy)]
struct Element {
    kind: Kind,
    size: u64,
}

impl Element {
    /// From a numpy type string (`<f4`, `|S3`, `|b1`).
    fn parse(dtype: &str, strings: bool) -> Result<Element, String> {
        if strings {
            return Ok(Element {
                kind: Kind::Text,
                size: 0,
            });
        }
        let unknown = || format!("no Zarr data type for {dtype:?}");
        let code = dtype.get(1..2).ok_or_else(unknown)?;
        let size: u64 = dtype
            .get(2..)
            .and_then(|s| s.parse().ok())
            .ok_or_else(unknown)?;
        let kind = match (code, size) {
            ("i", 1 | 2 | 4 | 8) => Kind::Int,
            ("u", 1 | 2 | 4 | 8) => Kind::UInt,
            ("f", 2 | 4 | 8) => Kind::Float,
            ("b", 1) => Kind::Bool,
            ("S", 1..) => Kind::Bytes,
            ("V", 1..) => Kind::Record,
            _ => return Err(unknown()),
        };
        Ok(Element { kind, size })
    }

    /// zarr-python's name (and configuration) of the data type.
    fn data_type(&self) -> Value {
        let bits = self.size * 8;
        match self.kind {
            Kind::Int => Value::from(format!("int{bits}")),
            Kind::UInt => Value::from(format!("uint{bits}")),
            Kind::Float => Value::from(format!("float{bits}")),
            Kind::Bool => Value::from("bool"),
            Kind::Text => Value::from("string"),
            Kind::Bytes => json!({
                "name": "null_terminated_bytes",
                "configuration": {"length_bytes": self.size},
            }),
            // Named with its fields by `record_type`.
            Kind::Record => Value::Null,
        }
    }

    /// The Zarr fill value in zarr-python's JSON for the type. floe's readers give a number
    /// (a byte string's bytes as a little-endian integer), `"NaN"`/`"Infinity"`/`"-Infinity"`,
    /// a string for variable-length strings, or a bool.
    fn fill_value(&self, fill: &Value) -> Result<Value, String> {
        let bad = || {
            format!(
                "fill value {fill} does not fit the data type {:?}",
                self.kind
            )
        };
        Ok(match self.kind {
            Kind::Int | Kind::UInt if fill.is_i64() || fill.is_u64() => fill.clone(),
            Kind::Float => match fill {
                Value::String(s) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => {
                    fill.clone()
                }
                _ => Value::from(fill.as_f64().ok_or_else(bad)?),
            },
            Kind::Bool => Value::from(truthy(fill).ok_or_else(bad)?),
            Kind::Bytes => {
                let bits = fill.as_u64().ok_or_else(bad)?;
                let bytes = little_endian_bytes(bits, self.size);
                Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            Kind::Text => match fill {
                Value::String(_) => fill.clone(),
                Value::Null => Value::from(""),
                _ => return Err(bad()),
            },
            Kind::Int | Kind::UInt | Kind::Record => return Err(bad()),
        })
    }

    /// A `_FillValue` attribute as xarray's Zarr backend encodes it (`FillValueCoder`):
    /// integers as integers, floats as the base64 of their little-endian `float64` bytes, bools
    /// as bools; left alone on strings, whose attribute xarray keeps as it is.
    fn cf_fill_value(&self, fill: &Value) -> Result<Value, String> {
        let bad = || {
            format!(
                "_FillValue {fill} does not fit the data type {:?}",
                self.kind
            )
        };
        let one = match fill {
            // An attribute of one value may be written as a list of one.
            Value::Array(values) if values.len() == 1 => &values[0],
            other => other,
        };
        Ok(match self.kind {
            Kind::Int | Kind::UInt => match one.as_i64().map(Value::from) {
                Some(v) => v,
                None => Value::from(one.as_u64().ok_or_else(bad)?),
            },
            Kind::Float => {
                let value = match one {
                    Value::String(s) => non_finite(s).ok_or_else(bad)?,
                    other => other.as_f64().ok_or_else(bad)?,
                };
                Value::from(base64::engine::general_purpose::STANDARD.encode(value.to_le_bytes()))
            }
            Kind::Bool => Value::from(truthy(one).ok_or_else(bad)?),
            // xarray encodes no `_FillValue` of these (of a record it refuses one, as
            // HDFParser then does): kept as the file has it.
            Kind::Bytes | Kind::Text | Kind::Record => fill.clone(),
        })
    }
}

fn truthy(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        other => other.as_f64().map(|n| n != 0.0),
    }
}

fn non_finite(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// A byte string's value as numpy holds it: the first `size` bytes of `bits` in little-endian
/// order, without trailing NULs (numpy's `bytes_` drops them, and zarr-python writes what
/// remains).
fn little_endian_bytes(bits: u64, size: u64) -> Vec<u8> {
    let mut bytes = bits.to_le_bytes().to_vec();
    bytes.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Codec;
    use std::sync::Arc;

    fn variable(dtype: &str, shape: &[u64], chunks: &[u64], layout: &str) -> VariableManifest {
        VariableManifest {
            variable: "v".into(),
            dtype: dtype.into(),
            shape: shape.to_vec(),
            chunk_shape: chunks.to_vec(),
            dimensions: (0..shape.len()).map(|i| format!("d{i}")).collect(),
            fill_value: Value::from(0),
            codecs: Arc::new(vec![Codec {
                name: "bytes".into(),
                configuration: Map::from_iter([("endian".to_string(), json!("little"))]),
            }]),
            attributes: Default::default(),
            chunks: Vec::new(),
            inline_data: None,
            layout: layout.into(),
            fields: Vec::new(),
        }
    }

    #[test]
    fn data_types_take_zarr_python_s_names() {
        let name = |dtype: &str| {
            array_metadata(&variable(dtype, &[2], &[2], "contiguous"))
                .map(|a| a.metadata["data_type"].clone())
        };
        assert_eq!(name("<f4"), Ok(json!("float32")));
        assert_eq!(name(">i2"), Ok(json!("int16")));
        assert_eq!(name("|u1"), Ok(json!("uint8")));
        assert_eq!(name("|b1"), Ok(json!("bool")));
        assert_eq!(
            name("|S3"),
            Ok(json!({"name": "null_terminated_bytes", "configuration": {"length_bytes": 3}}))
        );
        assert!(name("<c8")
            .expect_err("refused")
            .contains("no Zarr data type"));
        assert!(name("").is_err());
    }

    #[test]
    fn fill_values_are_zarr_json_of_their_type() {
        let fill = |dtype: &str, value: Value| {
            let mut v = variable(dtype, &[2], &[2], "contiguous");
            v.fill_value = value;
            array_metadata(&v).map(|a| a.metadata["fill_value"].clone())
        };
        assert_eq!(fill("<f8", json!(0)), Ok(json!(0.0)));
        assert_eq!(fill("<f4", json!("NaN")), Ok(json!("NaN")));
        assert_eq!(fill("|b1", json!(1)), Ok(json!(true)));
        assert_eq!(fill("|S1", json!(0)), Ok(json!("")));
        assert_eq!(fill("|S2", json!(0x4241)), Ok(json!("QUI=")));
        assert_eq!(fill("<i4", json!(-7)), Ok(json!(-7)));
        assert!(fill("<i4", json!(1.5)).is_err());
    }

    #[test]
    fn fill_value_attributes_are_encoded_as_xarray_encodes_them() {
        let attribute = |dtype: &str, value: Value| {
            let mut v = variable(dtype, &[2], &[2], "contiguous");
            v.attributes = Arc::new(Map::from_iter([("_FillValue".to_string(), value)]));
            array_metadata(&v).map(|a| a.metadata["attributes"]["_FillValue"].clone())
        };
        // base64 of struct.pack("<d", 9.969209968386869e36), as xarray writes it.
        assert_eq!(
            attribute("<f4", json!(9.969209968386869e36)),
            Ok(json!("AAAAAAAAnkc="))
        );
        assert_eq!(attribute("<f8", json!("NaN")), Ok(json!("AAAAAAAA+H8=")));
        assert_eq!(attribute("<i2", json!([-32767])), Ok(json!(-32767)));
        assert_eq!(attribute("|S1", json!("x")), Ok(json!("x")));
    }

    #[test]
    fn bookkeeping_attributes_are_left_out() {
        let mut v = variable("<f4", &[2], &[2], "contiguous");
        v.attributes = Arc::new(Map::from_iter([
            ("units".to_string(), json!("m")),
            ("DIMENSION_LIST".to_string(), json!([])),
            ("_Netcdf4Dimid".to_string(), json!(0)),
        ]));
        let metadata = array_metadata(&v).expect("metadata").metadata;
        assert_eq!(metadata["attributes"], json!({"units": "m"}));
    }

    #[test]
    fn a_chunk_past_its_array_is_trimmed_only_where_it_stays_one_byte_range() {
        let trim = |shape: &[u64], chunks: &[u64], layout: &str| {
            let a = array_metadata(&variable("<f8", shape, chunks, layout)).expect("metadata");
            (
                a.metadata["chunk_grid"]["configuration"]["chunk_shape"].clone(),
                a.trimmed_chunk_bytes,
            )
        };
        assert_eq!(trim(&[4], &[512], "chunked"), (json!([4]), Some(32)));
        assert_eq!(
            trim(&[4, 3], &[512, 3], "chunked"),
            (json!([4, 3]), Some(96))
        );
        // Trimming a later axis would leave gaps in the chunk's bytes: kept.
        assert_eq!(trim(&[4, 3], &[8, 8], "chunked"), (json!([8, 8]), None));
        assert_eq!(trim(&[4], &[4], "chunked"), (json!([4]), None));
        // A zero-length axis: chunks of one along it.
        assert_eq!(trim(&[0, 3], &[0, 3], "contiguous"), (json!([1, 3]), None));
        let mut filtered = variable("<f8", &[4], &[512], "chunked");
        filtered.codecs = Arc::new(vec![
            filtered.codecs[0].clone(),
            Codec {
                name: "numcodecs.zlib".into(),
                configuration: Map::from_iter([("level".to_string(), json!(4))]),
            },
        ]);
        let a = array_metadata(&filtered).expect("metadata");
        assert_eq!(a.trimmed_chunk_bytes, None);
    }

    #[test]
    fn records_are_zarr_python_structs_of_their_fields() {
        let mut v = variable("|V13", &[4], &[2], "chunked");
        v.fields = vec![
            crate::StructField::value("a", "<i4"),
            crate::StructField::value("b", "<f8"),
            crate::StructField::value("ok", "|b1"),
        ];
        v.fill_value = json!({"a": -1, "b": "NaN", "ok": false});
        let metadata = array_metadata(&v).expect("metadata").metadata;
        assert_eq!(
            metadata["data_type"],
            json!({"name": "struct", "configuration": {"fields": [
                {"name": "a", "data_type": "int32"},
                {"name": "b", "data_type": "float64"},
                {"name": "ok", "data_type": "bool"},
            ]}})
        );
        assert_eq!(
            metadata["fill_value"],
            json!({"a": -1, "b": "NaN", "ok": false})
        );
        v.fill_value = json!({"a": -1});
        assert!(array_metadata(&v)
            .expect_err("a fill value without every field")
            .contains("does not name each field"));
    }

    #[test]
    fn nested_records_are_structs_inside_structs() {
        // zarr-python 3.4's own JSON for numpy's
        // [("a", ">i4"), ("inner", [("x", ">f4"), ("deep", [("s", "S2"), ("b", "?")])])]
        // (the byte order is the bytes codec's).
        let mut v = variable("|V13", &[4], &[2], "chunked");
        v.fields = vec![
            crate::StructField::value("a", ">i4"),
            crate::StructField {
                name: "inner".into(),
                dtype: "|V9".into(),
                fields: vec![
                    crate::StructField::value("x", ">f4"),
                    crate::StructField {
                        name: "deep".into(),
                        dtype: "|V3".into(),
                        fields: vec![
                            crate::StructField::value("s", "|S2"),
                            crate::StructField::value("b", "|b1"),
                        ],
                    },
                ],
            },
        ];
        v.fill_value = json!({"a": 0, "inner": {"x": 0.0, "deep": {"s": "", "b": false}}});
        let metadata = array_metadata(&v).expect("metadata").metadata;
        assert_eq!(
            metadata["data_type"],
            json!({"name": "struct", "configuration": {"fields": [
                {"name": "a", "data_type": "int32"},
                {"name": "inner", "data_type": {"name": "struct", "configuration": {"fields": [
                    {"name": "x", "data_type": "float32"},
                    {"name": "deep", "data_type": {"name": "struct", "configuration": {"fields": [
                        {"name": "s", "data_type": {"name": "null_terminated_bytes", "configuration": {"length_bytes": 2}}},
                        {"name": "b", "data_type": "bool"},
                    ]}}},
                ]}}},
            ]}})
        );
        assert_eq!(
            metadata["fill_value"],
            json!({"a": 0, "inner": {"x": 0.0, "deep": {"s": "", "b": false}}})
        );
        v.fill_value = json!({"a": 0, "inner": {"x": 0.0, "deep": {"s": ""}}});
        assert!(array_metadata(&v)
            .expect_err("a nested fill value without every field")
            .contains("does not name each field"));
        v.fill_value = json!({"a": 0, "inner": {"x": 0.0, "deep": {"s": "", "b": false}}});
        v.fields[1].fields[1].fields.clear();
        assert_eq!(
            array_metadata(&v).expect_err("a nested record without fields"),
            "record \"inner.deep\" lists no fields"
        );
    }

    #[test]
    fn inlined_strings_are_zarr_python_strings() {
        let mut v = variable("|O", &[3], &[3], "strings");
        v.fill_value = json!("");
        let metadata = array_metadata(&v).expect("metadata").metadata;
        assert_eq!(metadata["data_type"], json!("string"));
        assert_eq!(
            metadata["codecs"],
            json!([{"name": "vlen-utf8", "configuration": {}}])
        );
    }
}
