//! The manifest fragment: one group, ready to commit without touching the sources.
//!
//! Layout on storage (binary envelope around compressed JSON):
//!
//! ```text
//! b"FLOEFRAG" | schema version (u32 LE) | SHA-256 of payload (32 bytes) | zstd(JSON payload)
//! ```
//!
//! The envelope lets a reader reject a foreign object, an unknown version, or a
//! truncated or corrupted upload before it decompresses anything. JSON inside
//! keeps fragments debuggable (`zstd -d`); ~3,000 references compress to a
//! few tens of KiB.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{sha256_hex, SourceFile, WireError};

const MAGIC: &[u8; 8] = b"FLOEFRAG";
const HEADER_LEN: usize = 8 + 4 + 32;

/// The group attribute naming the source's global attributes that differ
/// between the group's files (the group keeps the first file's values, as
/// `xr.open_mfdataset` does).
pub const DIFFERING_ATTRIBUTES: &str = "floe_differing_attributes";

/// A byte range in a source file that is one chunk of an array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualRef {
    /// Chunk grid index.
    pub index: Vec<u32>,
    /// Index into [`ManifestFragment::sources`].
    pub source: u32,
    /// Byte offset.
    pub offset: u64,
    /// Byte length.
    pub length: u64,
}

/// A chunk whose bytes are stored in the repository itself (materialized
/// coordinates, compact HDF5 data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineChunk {
    /// Chunk grid index.
    pub index: Vec<u32>,
    /// Encoded chunk bytes, as the array's codecs expect them.
    #[serde(with = "hex_vec")]
    pub data: Vec<u8>,
}

/// One array of the group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrayFragment {
    /// Name inside the group.
    pub name: String,
    /// The complete Zarr v3 `zarr.json` document of the array.
    pub zarr_json: Value,
    /// Virtual chunks.
    pub refs: Vec<VirtualRef>,
    /// Chunks stored inline.
    pub inline_chunks: Vec<InlineChunk>,
}

/// Everything the committer writes for one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFragment {
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The batch this was built from.
    pub batch_id: String,
    /// Store path of the group.
    pub group_path: String,
    /// Group attributes (provenance, normalizations applied).
    pub group_attributes: Map<String, Value>,
    /// The sub-groups of a NetCDF-4 file's tree inside the group, by path
    /// (`"sub"`, `"sub/inner"`), each with its attributes. An array in one is
    /// named by its path (`"sub/w"`); every ancestor of such an array, and of a
    /// sub-group, is listed here ([`crate::check_member_path`] checks each).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subgroups: BTreeMap<String, Map<String, Value>>,
    /// Source files; references point into this table.
    pub sources: Vec<SourceFile>,
    /// Arrays of the group.
    pub arrays: Vec<ArrayFragment>,
    /// The group's new files only, to extend the stored group (see
    /// [`crate::AppendOf`]); `None`: the whole group, replacing what is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<crate::AppendOf>,
    /// The stored batch this whole group replaces, as planned
    /// ([`crate::BatchDescriptor::replaces`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

impl ManifestFragment {
    /// The arrays' names (paths inside the group), in order.
    pub fn array_names(&self) -> Vec<&str> {
        self.arrays.iter().map(|a| a.name.as_str()).collect()
    }

    /// Number of virtual references.
    pub fn ref_count(&self) -> usize {
        self.arrays.iter().map(|a| a.refs.len()).sum()
    }

    /// Serializes, compresses and checksums the fragment.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        seal(MAGIC, self.schema_version, self)
    }

    /// Checks the envelope and decodes the fragment.
    pub fn decode(bytes: &[u8]) -> Result<ManifestFragment, WireError> {
        let json = open(MAGIC, bytes)?;
        let fragment: ManifestFragment =
            serde_json::from_slice(&json).map_err(|e| WireError::Corrupt(e.to_string()))?;
        crate::check_version(fragment.schema_version)?;
        for array in &fragment.arrays {
            if let Some(bad) = array
                .refs
                .iter()
                .find(|r| r.source as usize >= fragment.sources.len())
            {
                return Err(WireError::Corrupt(format!(
                    "array {}: reference to source #{} of {}",
                    array.name,
                    bad.source,
                    fragment.sources.len()
                )));
            }
        }
        Ok(fragment)
    }

    /// SHA-256 of encoded bytes, as carried in [`crate::ResultMessage`].
    pub fn digest_of(encoded: &[u8]) -> String {
        sha256_hex(encoded)
    }
}

/// The envelope around a document: `magic | version | SHA-256 | zstd(JSON)`.
/// Fragments and shard scans share it; the magic tells them apart.
pub fn seal<T: Serialize>(magic: &[u8; 8], version: u32, value: &T) -> Result<Vec<u8>, WireError> {
    let json = serde_json::to_vec(value).map_err(|e| WireError::Corrupt(e.to_string()))?;
    let payload =
        zstd::encode_all(json.as_slice(), 9).map_err(|e| WireError::Corrupt(e.to_string()))?;
    let digest = sha2_digest(&payload);
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&digest);
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Checks a [`seal`]ed envelope (magic, known version, checksum) and returns
/// its JSON, decompressed.
pub fn open(magic: &[u8; 8], bytes: &[u8]) -> Result<Vec<u8>, WireError> {
    if bytes.len() < magic.len() || &bytes[..magic.len()] != magic {
        return Err(WireError::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(WireError::Truncated(bytes.len()));
    }
    let mut version = [0u8; 4];
    version.copy_from_slice(&bytes[8..12]);
    crate::check_version(u32::from_le_bytes(version))?;
    let expected = &bytes[12..HEADER_LEN];
    let payload = &bytes[HEADER_LEN..];
    let actual = sha2_digest(payload);
    if expected != actual.as_slice() {
        return Err(WireError::ChecksumMismatch {
            expected: hex::encode(expected),
            actual: hex::encode(actual),
        });
    }
    // Bounded: a document never legitimately inflates past 1 GiB.
    let decoder =
        zstd::stream::read::Decoder::new(payload).map_err(|e| WireError::Corrupt(e.to_string()))?;
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(decoder, 1 << 30), &mut json)
        .map_err(|e| WireError::Corrupt(format!("decompression failed: {e}")))?;
    Ok(json)
}

fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SCHEMA_VERSION;

    fn sample() -> ManifestFragment {
        ManifestFragment {
            schema_version: SCHEMA_VERSION,
            batch_id: "b1".into(),
            group_path: "AWI_PISM1/exp05".into(),
            group_attributes: Map::new(),
            subgroups: BTreeMap::new(),
            sources: vec![SourceFile {
                url: "file:///a.nc".into(),
                size: 10,
                etag: None,
                last_modified: None,
                variable: "lithk".into(),
            }],
            arrays: vec![ArrayFragment {
                name: "lithk".into(),
                zarr_json: serde_json::json!({"zarr_format": 3}),
                refs: (0..3000)
                    .map(|t| VirtualRef {
                        index: vec![t, 0, 0],
                        source: 0,
                        offset: 1000 + u64::from(t) * 4,
                        length: 4,
                    })
                    .collect(),
                inline_chunks: vec![InlineChunk {
                    index: vec![0],
                    data: vec![1, 2, 3],
                }],
            }],
            append: None,
            replaces: None,
        }
    }

    #[test]
    fn round_trips_and_compresses() {
        let f = sample();
        let bytes = f.encode().expect("encode");
        assert!(bytes.len() < 40_000, "3000 refs took {} bytes", bytes.len());
        assert_eq!(ManifestFragment::decode(&bytes).expect("decode"), f);
    }

    #[test]
    fn subgroups_round_trip_and_a_fragment_without_them_reads_as_flat() {
        let mut f = sample();
        let mut purpose = Map::new();
        purpose.insert("purpose".into(), Value::from("instrument"));
        f.subgroups.insert("sub".into(), purpose);
        f.subgroups.insert("sub/inner".into(), Map::new());
        let bytes = f.encode().expect("encode");
        assert_eq!(ManifestFragment::decode(&bytes).expect("decode"), f);
        // Fragments written before sub-groups were carried have no such field.
        let flat = serde_json::to_value(sample()).expect("json");
        assert!(flat.get("subgroups").is_none());
        let read: ManifestFragment = serde_json::from_value(flat).expect("reads");
        assert!(read.subgroups.is_empty());
    }

    #[test]
    fn rejects_foreign_truncated_corrupt_and_future_fragments() {
        let bytes = sample().encode().expect("encode");
        assert!(matches!(
            ManifestFragment::decode(b"{\"json\": 1}"),
            Err(WireError::BadMagic)
        ));
        assert!(matches!(
            ManifestFragment::decode(&bytes[..20]),
            Err(WireError::Truncated(20))
        ));
        let cut = &bytes[..bytes.len() - 5];
        assert!(matches!(
            ManifestFragment::decode(cut),
            Err(WireError::ChecksumMismatch { .. })
        ));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(matches!(
            ManifestFragment::decode(&flipped),
            Err(WireError::ChecksumMismatch { .. })
        ));
        let mut future = bytes;
        future[8] = 99;
        assert!(matches!(
            ManifestFragment::decode(&future),
            Err(WireError::UnknownVersion { found: 99, .. })
        ));
    }

    #[test]
    fn rejects_reference_to_missing_source() {
        let mut f = sample();
        f.arrays[0].refs[0].source = 7;
        let bytes = f.encode().expect("encode");
        assert!(matches!(
            ManifestFragment::decode(&bytes),
            Err(WireError::Corrupt(_))
        ));
    }

    #[test]
    fn messages_check_their_version_first() {
        let body = r#"{"schema_version": 99, "batch_id": "x"}"#;
        let err = crate::decode_message::<crate::ResultMessage>(body).expect_err("must fail");
        assert!(
            err.to_string().contains("unknown schema version 99"),
            "{err}"
        );
        // A version 1 descriptor (before profiles) is read with the ISMIP6 defaults.
        let v1 = r#"{"schema_version": 1, "batch_id": "b", "group": {"ice_sheet": "AIS", "institution": "I", "model": "M", "experiment": "e"}, "files": []}"#;
        let d: crate::BatchDescriptor = crate::decode_message(v1).expect("v1 reads");
        assert_eq!((d.profile.as_str(), d.concat.is_none()), ("ismip6@1", true));
        assert_eq!(d.group.group_path(), "I_M/e");
        let err = crate::decode_message::<crate::ResultMessage>("garbage").expect_err("must fail");
        assert!(err.to_string().contains("not a floe message"));
    }
}
