//! The raw, per-file view of a NetCDF file: what `virtualizer inspect` prints
//! and what the group builder normalizes. Serializable so that it is also the
//! JSON contract of `inspect --json`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Attributes of a file or variable. Shared: the files of a series mostly carry the same
/// attributes, and a group of 20,000 files holds every file's manifest until the merge (see
/// [`FileManifest::share_metadata_with`]).
pub type Attributes = Arc<Map<String, Value>>;

/// On-disk flavour of a NetCDF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// CDF-1 (classic).
    Netcdf3Classic,
    /// CDF-2 (64-bit offset).
    Netcdf3Offset64,
    /// CDF-5 (64-bit data).
    Netcdf3Cdf5,
    /// NetCDF-4 / HDF5.
    Hdf5,
    /// Not read: the file could not be read at all ([`FileManifest::unreadable`]).
    Unreadable,
}

/// One byte range in the source file that holds one chunk of a variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// Position in the chunk grid (chunk coordinates, not element offsets).
    pub index: Vec<u64>,
    /// Absolute byte offset in the file.
    pub offset: u64,
    /// Length in bytes as stored (after compression).
    pub length: u64,
}

/// A Zarr v3 codec as it appears in array metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Codec {
    /// Registered codec name, e.g. `bytes`, `numcodecs.zlib`.
    pub name: String,
    /// Codec configuration.
    #[serde(default)]
    pub configuration: Map<String, Value>,
}

impl Codec {
    /// Builds a codec from a name and key/value pairs.
    pub fn new(name: &str, configuration: impl IntoIterator<Item = (&'static str, Value)>) -> Self {
        Codec {
            name: name.to_string(),
            configuration: configuration
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }
}

/// One field of a record (an HDF5 compound type), as Zarr's `struct` data type lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StructField {
    /// Field name.
    pub name: String,
    /// numpy typestr of the field, e.g. `<i4`, `|S3`, `|b1`; `|V{size}` for a nested record,
    /// whose fields are in `fields`.
    pub dtype: String,
    /// The fields of a nested record (a compound member that is itself a compound), packed in
    /// this order like the outer record's; empty for other fields, and then left out of the
    /// JSON, so flat records are written as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<StructField>,
}

impl StructField {
    /// A field with a single value (not a nested record).
    pub fn value(name: impl Into<String>, dtype: impl Into<String>) -> Self {
        StructField {
            name: name.into(),
            dtype: dtype.into(),
            fields: Vec::new(),
        }
    }

    /// The field in a few words, for a message: `x <f4`, or a nested record's fields in
    /// braces, `inner {x <f4, y <f4}`.
    pub fn summary(&self) -> String {
        if self.fields.is_empty() {
            format!("{} {}", self.name, self.dtype)
        } else {
            let inner: Vec<String> = self.fields.iter().map(StructField::summary).collect();
            format!("{} {{{}}}", self.name, inner.join(", "))
        }
    }
}

/// Everything needed to describe one variable as a virtual Zarr array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariableManifest {
    /// Variable name (path for variables in sub-groups).
    pub variable: String,
    /// numpy typestr with byte order, e.g. `<f4`, `>f8`, `|S1`; `|V{size}` for records,
    /// whose fields are in `fields`.
    pub dtype: String,
    /// The fields of a record (an HDF5 compound type), end to end in this order with no
    /// padding, as Zarr's packed `struct` data type lays them out; empty for other types.
    /// Left out of the JSON when empty, so manifests and fragments written before read alike.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<StructField>,
    /// Array shape.
    pub shape: Vec<u64>,
    /// Chunk shape (the array's shape for contiguous data).
    pub chunk_shape: Vec<u64>,
    /// Dimension names.
    pub dimensions: Vec<String>,
    /// Value that unwritten chunks read as (JSON number, `"NaN"`, or null); for a record, an
    /// object of its fields' values as Zarr v3 writes a `struct` fill value (byte strings in
    /// base64, a nested record's value an object inside).
    pub fill_value: Value,
    /// Zarr v3 codec pipeline, `bytes` first (shared like the attributes).
    pub codecs: Arc<Vec<Codec>>,
    /// CF attributes of the variable.
    pub attributes: Attributes,
    /// Byte ranges of the allocated chunks; unallocated chunks are absent.
    pub chunks: Vec<ChunkRef>,
    /// Data with no byte range to point at, as one chunk's encoded bytes: HDF5
    /// compact layout (raw bytes in the file's byte order) or variable-length
    /// strings (`vlen-utf8`). When present, `chunks` is empty by design.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_bytes")]
    pub inline_data: Option<Vec<u8>>,
    /// Storage layout in the source: `contiguous`, `chunked`, `compact`, `record`,
    /// `strings` (variable-length strings, read and kept inline).
    pub layout: String,
}

impl VariableManifest {
    /// Size in bytes of one element.
    pub fn item_size(&self) -> Option<u64> {
        self.dtype.get(2..).and_then(|s| s.parse().ok())
    }

    /// Whether the stored bytes are exactly the array's bytes (no compression
    /// or other filter), which makes contiguous data splittable.
    pub fn is_uncompressed(&self) -> bool {
        self.codecs.iter().all(|c| c.name == "bytes")
    }
}

/// A variable that cannot be virtualized, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableProblem {
    /// Variable name.
    pub variable: String,
    /// Human-readable reason.
    pub error: String,
}

/// The virtualizable content of one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileManifest {
    /// On-disk format.
    pub format: SourceFormat,
    /// Size of the object in bytes.
    pub file_size: u64,
    /// Global attributes.
    pub attributes: Attributes,
    /// Every variable that could be virtualized, in file order.
    pub variables: Vec<VariableManifest>,
    /// Variables that could not be virtualized.
    pub problems: Vec<VariableProblem>,
    /// The file's unlimited (record) dimensions, by name: what a profile's
    /// `concat = "@unlimited"` concatenates along.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unlimited: Vec<String>,
    /// Every sub-group of a NetCDF-4 file, by its path from the root (`"a"`, `"a/b"`), with its
    /// own attributes (empty for a group without any): a reader that keeps the file's tree
    /// (`FloeParser`) needs them, and an empty group is still a group.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, Attributes>,
}

impl FileManifest {
    /// The manifest of a file that could not be read at all: no variable, and `variable` (the
    /// one its path names) among the problems with the reason. The group builders leave that
    /// variable out of its group, by name, instead of failing the variables beside it.
    pub fn unreadable(variable: &str, file_size: u64, reason: String) -> FileManifest {
        FileManifest {
            format: SourceFormat::Unreadable,
            file_size,
            attributes: Attributes::default(),
            variables: Vec::new(),
            problems: vec![VariableProblem {
                variable: variable.to_string(),
                error: format!("file cannot be read: {reason}"),
            }],
            unlimited: Vec::new(),
            groups: Default::default(),
        }
    }

    /// Whether this stands for a file that could not be read ([`FileManifest::unreadable`]).
    pub fn is_unreadable(&self) -> bool {
        self.format == SourceFormat::Unreadable
    }

    /// Makes the attributes and codecs that equal those of the same variable in `earlier` (a
    /// file read before, usually the series' previous one) point to `earlier`'s, so that a
    /// group's manifests hold each distinct value once. Values are compared, never assumed: a
    /// file whose attributes differ keeps its own.
    pub fn share_metadata_with(&mut self, earlier: &FileManifest) {
        share(&mut self.attributes, &earlier.attributes);
        for (i, variable) in self.variables.iter_mut().enumerate() {
            let same_place = earlier
                .variables
                .get(i)
                .filter(|e| e.variable == variable.variable);
            let Some(before) = same_place.or_else(|| {
                earlier
                    .variables
                    .iter()
                    .find(|e| e.variable == variable.variable)
            }) else {
                continue;
            };
            share(&mut variable.attributes, &before.attributes);
            share(&mut variable.codecs, &before.codecs);
        }
    }
}

/// Points `mine` to `theirs` when they hold equal values.
fn share<T: PartialEq>(mine: &mut Arc<T>, theirs: &Arc<T>) {
    if !Arc::ptr_eq(mine, theirs) && **mine == **theirs {
        *mine = Arc::clone(theirs);
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&hex::encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| hex::decode(t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variable(name: &str, units: &str) -> VariableManifest {
        VariableManifest {
            variable: name.into(),
            dtype: "<f4".into(),
            fields: Vec::new(),
            shape: vec![1],
            chunk_shape: vec![1],
            dimensions: vec!["time".into()],
            fill_value: Value::Null,
            codecs: vec![Codec::new("bytes", [("endian", Value::from("little"))])].into(),
            attributes: Arc::new(Map::from_iter([("units".to_string(), Value::from(units))])),
            chunks: Vec::new(),
            inline_data: None,
            layout: "contiguous".into(),
        }
    }

    fn file(variables: Vec<VariableManifest>) -> FileManifest {
        FileManifest {
            format: SourceFormat::Hdf5,
            file_size: 1,
            attributes: Arc::new(Map::from_iter([("title".to_string(), Value::from("t"))])),
            variables,
            problems: Vec::new(),
            unlimited: Vec::new(),
            groups: Default::default(),
        }
    }

    #[test]
    fn equal_metadata_is_shared_by_name_and_different_metadata_kept() {
        let earlier = file(vec![variable("sst", "K"), variable("err", "K")]);
        // Other order, and `err` in other units.
        let mut later = file(vec![variable("err", "mK"), variable("sst", "K")]);
        later.share_metadata_with(&earlier);
        assert!(Arc::ptr_eq(&later.attributes, &earlier.attributes));
        assert!(Arc::ptr_eq(
            &later.variables[1].attributes,
            &earlier.variables[0].attributes
        ));
        assert!(Arc::ptr_eq(
            &later.variables[1].codecs,
            &earlier.variables[0].codecs
        ));
        assert!(!Arc::ptr_eq(
            &later.variables[0].attributes,
            &earlier.variables[1].attributes
        ));
        assert_eq!(later.variables[0].attributes["units"], "mK");
        // Sharing changes no value.
        assert_eq!(
            later,
            file(vec![variable("err", "mK"), variable("sst", "K")])
        );
    }
}
