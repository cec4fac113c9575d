//! Zarr v3 array metadata documents.

use floe_formats::Codec;
use serde_json::{json, Map, Value};

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

/// The `zarr.json` of an array.
pub fn array_document(
    shape: &[u64],
    chunk_shape: &[u64],
    data_type: &str,
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

/// Little-endian `bytes` codec, for arrays floe materializes itself.
pub fn little_endian() -> Codec {
    Codec::new("bytes", [("endian", Value::from("little"))])
}
