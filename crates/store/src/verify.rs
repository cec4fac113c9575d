//! Reading a finished store back for `producer verify`: the chunk references
//! an array holds, and the bytes icechunk serves for one chunk (fetched from the
//! source through the virtual chunk container, with the recorded ETag or
//! modification time checked), and the values a Zarr reader (`zarrs`) decodes
//! from those bytes with the codec pipeline the store's `zarr.json` declares.
//! zarrs reads the two documents from a memory store holding just them: the
//! bytes come through icechunk either way, and an adapter crate between zarrs
//! and icechunk cost the cold build more than half a minute on its critical path. [`compare_refs`] and [`compare_values`] are the pure comparisons
//! with what a fresh read of the sources gives.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use icechunk::format::manifest::{Checksum, ChunkPayload};
use icechunk::format::snapshot::NodeData;
use icechunk::format::{ByteRange, Path};
use icechunk::repository::VersionInfo;
use icechunk::{Repository, Store};
use tokio::sync::RwLock;

use crate::commit::BRANCH;
use crate::error::{from_repo, from_session, from_store};
use crate::{Result, StoreError};

/// What the store holds for one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredChunk {
    /// A virtual reference.
    Virtual {
        /// Source URL.
        url: String,
        /// Byte offset in the source.
        offset: u64,
        /// Length in bytes.
        length: u64,
    },
    /// Bytes kept inside the manifest (floe's materialized coordinates).
    Inline,
    /// A chunk object of the store itself.
    Native,
}

impl std::fmt::Display for StoredChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredChunk::Virtual {
                url,
                offset,
                length,
            } => write!(f, "{url} at {offset}+{length}"),
            StoredChunk::Inline => write!(f, "an inline chunk"),
            StoredChunk::Native => write!(f, "a chunk object of its own"),
        }
    }
}

/// A read-only view of the tip of `main`.
pub struct StoreReader {
    store: Store,
}

impl StoreReader {
    /// The tip of `main` of an open repository.
    pub async fn open(repo: &Repository) -> Result<StoreReader> {
        let session = repo
            .readonly_session(&VersionInfo::BranchTipRef(BRANCH.into()))
            .await
            .map_err(from_repo)?;
        let session = Arc::new(RwLock::new(session));
        Ok(StoreReader {
            store: Store::from_session(session).await,
        })
    }

    /// Every chunk an array (`group/array`) references, by chunk index.
    pub async fn chunks(&self, array_path: &str) -> Result<BTreeMap<Vec<u32>, StoredChunk>> {
        let path = Path::new(&format!("/{array_path}"))
            .map_err(|e| StoreError::Icechunk(format!("{array_path}: {e}")))?;
        let session = self.store.session();
        let session = session.read().await;
        let infos: Vec<_> = session
            .array_chunk_iterator(&path)
            .await
            .try_collect()
            .await
            .map_err(from_session)?;
        Ok(infos
            .into_iter()
            .map(|info| {
                let chunk = match info.payload {
                    ChunkPayload::Virtual(v) => StoredChunk::Virtual {
                        url: v.location.url().to_string(),
                        offset: v.offset,
                        length: v.length,
                    },
                    ChunkPayload::Inline(_) => StoredChunk::Inline,
                    _ => StoredChunk::Native,
                };
                (info.coord.0, chunk)
            })
            .collect())
    }

    /// The bytes icechunk serves for one chunk of `group/array`.
    pub async fn chunk_bytes(&self, array_path: &str, index: &[u32]) -> Result<Bytes> {
        self.store
            .get(&chunk_key(array_path, index), &ByteRange::From(0))
            .await
            .map_err(from_store)
    }

    /// [`Self::chunk_bytes`], or `None` when the store holds no such chunk.
    async fn chunk_bytes_if_present(
        &self,
        array_path: &str,
        index: &[u32],
    ) -> Result<Option<Bytes>> {
        match self
            .store
            .get(&chunk_key(array_path, index), &ByteRange::From(0))
            .await
        {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if matches!(e.kind, icechunk::store::StoreErrorKind::NotFound(_)) => Ok(None),
            Err(e) => Err(from_store(e)),
        }
    }
}

/// The Zarr key of a chunk (the default chunk key encoding, `/`-separated, as
/// floe writes every array).
fn chunk_key(array_path: &str, index: &[u32]) -> String {
    if index.is_empty() {
        format!("{array_path}/c")
    } else {
        let parts: Vec<String> = index.iter().map(u32::to_string).collect();
        format!("{array_path}/c/{}", parts.join("/"))
    }
}

/// What the store records of a group's inputs: every file it was built from (the
/// group's `_floe/inputs` array) and, for each file a chunk points into, the
/// identity (ETag or modification time) its references carry, which icechunk checks
/// on every read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedInputs {
    /// The files, by URL.
    pub files: Vec<String>,
    /// The identity recorded in the references into each file.
    pub identities: BTreeMap<String, Checksum>,
}

impl StoreReader {
    /// What the store records of `group_path`'s inputs (see [`RecordedInputs`]):
    /// its attributes and the references of every array in it, whatever a chunk
    /// sample would hit.
    pub async fn recorded_inputs(&self, group_path: &str) -> Result<RecordedInputs> {
        let mut recorded = RecordedInputs::default();
        if let Some(urls) = crate::write::recorded_input_urls(&self.store, group_path).await? {
            recorded.files = urls;
        } else if let Some(attrs) = crate::write::group_attributes(&self.store, group_path).await? {
            // Stores written before the list moved to its own array.
            recorded.files = attrs
                .get("floe_source_files")
                .and_then(serde_json::Value::as_array)
                .map(|files| {
                    files
                        .iter()
                        .filter_map(|f| f.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
        }
        let group = Path::new(&format!("/{group_path}"))
            .map_err(|e| StoreError::Icechunk(format!("{group_path}: {e}")))?;
        let session = self.store.session();
        let session = session.read().await;
        let arrays: Vec<Path> = session
            .list_nodes(&group)
            .await
            .map_err(from_session)?
            .filter_map(|node| node.ok())
            .filter(|node| matches!(node.node_data, NodeData::Array { .. }))
            .map(|node| node.path)
            .collect();
        for array in arrays {
            let chunks: Vec<_> = session
                .array_chunk_iterator(&array)
                .await
                .try_collect()
                .await
                .map_err(from_session)?;
            for info in chunks {
                if let ChunkPayload::Virtual(v) = info.payload {
                    if let Some(checksum) = v.checksum {
                        recorded
                            .identities
                            .entry(v.location.url().to_string())
                            .or_insert(checksum);
                    }
                }
            }
        }
        Ok(recorded)
    }
}

/// How the current inputs of a group differ from what the store records of the ones
/// it was built from, one sentence per file: files added, files gone, and files whose
/// identity (ETag, or modification time for local files) is not the recorded one.
/// Empty when nothing the store records differs (a changed profile, say).
pub fn changed_inputs(recorded: &RecordedInputs, current: &[floe_wire::SourceFile]) -> Vec<String> {
    let mut changes = Vec::new();
    let before: std::collections::BTreeSet<&str> =
        recorded.files.iter().map(String::as_str).collect();
    let now: std::collections::BTreeSet<&str> = current.iter().map(|f| f.url.as_str()).collect();
    for file in current {
        if !recorded.files.is_empty() && !before.contains(file.url.as_str()) {
            changes.push(format!("added: {}", file.url));
            continue;
        }
        let Some(was) = recorded.identities.get(&file.url) else {
            continue;
        };
        match crate::write::checksum(file) {
            Some(is) if &is == was => {}
            is => changes.push(format!(
                "changed: {} ({} when the group was built, {} now; size now {} bytes)",
                file.url,
                describe_checksum(Some(was)),
                describe_checksum(is.as_ref()),
                file.size
            )),
        }
    }
    for url in before.difference(&now) {
        changes.push(format!("gone: {url}"));
    }
    changes
}

fn describe_checksum(checksum: Option<&Checksum>) -> String {
    match checksum {
        Some(Checksum::ETag(etag)) => format!("ETag {}", etag.0),
        Some(Checksum::LastModified(seconds)) => {
            let time = chrono::DateTime::from_timestamp(i64::from(seconds.0), 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| seconds.0.to_string());
            format!("modified by {time}")
        }
        None => "no identity".to_string(),
    }
}

/// The Zarr data types whose values `decoded_chunk` compares.
const NUMERIC_TYPES: [&str; 10] = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64",
];

/// A chunk decoded by zarrs through the codec pipeline the store declares.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedChunk {
    /// The chunk's shape (the full grid cell, edge chunks included).
    pub shape: Vec<u64>,
    /// Its values in C order, as `f64` (exact for every type up to 32 bits,
    /// and for 64-bit integers up to 2^53).
    pub values: Vec<f64>,
}

impl StoreReader {
    /// One chunk of `group/array` decoded by zarrs. `None` for data types whose
    /// values are not numbers (bool, fixed-length bytes): their bytes are
    /// compared, their values are not.
    pub async fn decoded_chunk(
        &self,
        array_path: &str,
        index: &[u32],
    ) -> Result<Option<DecodedChunk>> {
        use zarrs::array::Array;
        use zarrs::storage::store::MemoryStore;
        use zarrs::storage::{StoreKey, WritableStorageTraits};
        let zarr_err = |e: &dyn std::fmt::Display| StoreError::Zarr(format!("{array_path}: {e}"));
        // The data type from the metadata itself: zarrs need not know every
        // type the store holds (byte strings) to decode the numeric ones.
        let metadata = self
            .store
            .get(&format!("{array_path}/zarr.json"), &ByteRange::From(0))
            .await
            .map_err(from_store)?;
        let parsed: serde_json::Value =
            serde_json::from_slice(&metadata).map_err(|e| zarr_err(&e))?;
        let data_type = parsed["data_type"].as_str().unwrap_or_default().to_string();
        if !NUMERIC_TYPES.contains(&data_type.as_str()) {
            return Ok(None);
        }
        let memory = MemoryStore::new();
        let key = |k: &str| StoreKey::new(k).map_err(|e| zarr_err(&e));
        memory
            .set(&key(&format!("{array_path}/zarr.json"))?, metadata)
            .map_err(|e| zarr_err(&e))?;
        // A chunk the store does not hold reads as the fill value, as zarrs
        // would read it from the store itself.
        if let Some(bytes) = self.chunk_bytes_if_present(array_path, index).await? {
            memory
                .set(&key(&chunk_key(array_path, index))?, bytes)
                .map_err(|e| zarr_err(&e))?;
        }
        let array =
            Array::open(Arc::new(memory), &format!("/{array_path}")).map_err(|e| zarr_err(&e))?;
        let index: Vec<u64> = index.iter().map(|i| u64::from(*i)).collect();
        let shape: Vec<u64> = array
            .chunk_shape(&index)
            .map_err(|e| zarr_err(&e))?
            .iter()
            .map(|n| n.get())
            .collect();
        macro_rules! decode {
            ($t:ty) => {
                array
                    .retrieve_chunk::<Vec<$t>>(&index)
                    .map_err(|e| zarr_err(&e))?
                    .into_iter()
                    .map(|v| v as f64)
                    .collect::<Vec<f64>>()
            };
        }
        let values = match data_type.as_str() {
            "int8" => decode!(i8),
            "int16" => decode!(i16),
            "int32" => decode!(i32),
            "int64" => decode!(i64),
            "uint8" => decode!(u8),
            "uint16" => decode!(u16),
            "uint32" => decode!(u32),
            "uint64" => decode!(u64),
            "float32" => decode!(f32),
            "float64" => decode!(f64),
            other => return Err(zarr_err(&format!("no decoder for data type {other}"))),
        };
        Ok(Some(DecodedChunk { shape, values }))
    }
}

/// Differences between a chunk as zarrs decodes it and the values the source
/// readers give for the same region (`extent`, C order; the chunk may be
/// larger: an edge chunk's padding, or leading dimensions of length 1 the
/// store adds), one sentence, or `None` when they agree. NaN equals NaN.
pub fn compare_values(chunk: &DecodedChunk, extent: &[u64], source: &[f64]) -> Option<String> {
    let rank = chunk.shape.len();
    if extent.len() > rank || chunk.shape[..rank - extent.len()].iter().any(|n| *n != 1) {
        return Some(format!(
            "a chunk of shape {:?} cannot hold a source region of shape {extent:?}",
            chunk.shape
        ));
    }
    let shape = &chunk.shape[rank - extent.len()..];
    if extent.iter().zip(shape).any(|(e, s)| e > s)
        || source.len() as u64 != extent.iter().product::<u64>()
        || chunk.values.len() as u64 != shape.iter().product::<u64>()
    {
        return Some(format!(
            "the source region {extent:?} ({} values) does not fit the decoded chunk {:?} ({} values)",
            source.len(),
            chunk.shape,
            chunk.values.len()
        ));
    }
    let mut differ = 0usize;
    let mut first = None;
    let mut position = vec![0u64; extent.len()];
    for (k, expected) in source.iter().enumerate() {
        // C-order position in the region → offset in the chunk.
        let mut rest = k as u64;
        for d in (0..extent.len()).rev() {
            position[d] = rest % extent[d];
            rest /= extent[d];
        }
        let offset = position
            .iter()
            .zip(shape)
            .fold(0u64, |acc, (p, s)| acc * s + p) as usize;
        let actual = chunk.values[offset];
        let same = actual == *expected || (actual.is_nan() && expected.is_nan());
        if !same {
            differ += 1;
            first.get_or_insert((position.clone(), actual, *expected));
        }
    }
    first.map(|(at, actual, expected)| {
        format!(
            "{differ} of {} decoded value(s) differ from the source's; first at {at:?}: the store decodes {actual}, the source reads {expected}",
            source.len()
        )
    })
}

/// Differences between the references a fresh read of the sources gives
/// (`expected`: chunk index → (URL, offset, length)) and what the store holds,
/// one sentence each, naming the chunk.
pub fn compare_refs(
    expected: &BTreeMap<Vec<u32>, (String, u64, u64)>,
    stored: &BTreeMap<Vec<u32>, StoredChunk>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let stored_virtual = stored
        .values()
        .filter(|c| matches!(c, StoredChunk::Virtual { .. }))
        .count();
    if stored_virtual != expected.len() {
        problems.push(format!(
            "{stored_virtual} chunk reference(s) in the store, {} allocated in the sources",
            expected.len()
        ));
    }
    for (index, (url, offset, length)) in expected {
        match stored.get(index) {
            None => problems.push(format!("chunk {index:?}: missing from the store")),
            Some(StoredChunk::Virtual {
                url: u,
                offset: o,
                length: l,
            }) if (u, o, l) == (url, offset, length) => {}
            Some(other) => problems.push(format!(
                "chunk {index:?}: the store points at {other}, the source's header at {url} at {offset}+{length}"
            )),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn virtual_chunk(url: &str, offset: u64, length: u64) -> StoredChunk {
        StoredChunk::Virtual {
            url: url.into(),
            offset,
            length,
        }
    }

    #[test]
    fn decoded_values_are_compared_inside_the_source_region() {
        // A (1, 2, 3) chunk whose source region is its first row (2 x 2 of it).
        let chunk = DecodedChunk {
            shape: vec![1, 2, 3],
            values: vec![1.0, 2.0, f64::NAN, 4.0, 5.0, 6.0],
        };
        assert_eq!(compare_values(&chunk, &[2, 2], &[1.0, 2.0, 4.0, 5.0]), None);
        assert_eq!(
            compare_values(&chunk, &[1, 2, 3], &[1.0, 2.0, f64::NAN, 4.0, 5.0, 6.0]),
            None
        );
        let wrong = compare_values(&chunk, &[2, 2], &[1.0, 2.0, 4.0, 7.0]).expect("differs");
        assert!(
            wrong.starts_with("1 of 4 decoded value(s) differ") && wrong.contains("[1, 1]"),
            "{wrong}"
        );
        assert!(compare_values(&chunk, &[2, 4], &[0.0; 8])
            .expect("differs")
            .contains("does not fit"));
        assert!(compare_values(&chunk, &[2, 2, 2, 2], &[0.0; 16])
            .expect("differs")
            .contains("cannot hold"));
    }

    fn input(url: &str, etag: &str) -> floe_wire::SourceFile {
        floe_wire::SourceFile {
            url: url.into(),
            size: 10,
            etag: Some(etag.into()),
            last_modified: Some("2026-01-02T03:04:05Z".into()),
            variable: "v".into(),
        }
    }

    #[test]
    fn changed_added_and_gone_inputs_are_named() {
        let recorded = RecordedInputs {
            files: vec![
                "s3://b/a.nc".into(),
                "s3://b/b.nc".into(),
                "s3://b/c.nc".into(),
            ],
            identities: [
                (
                    "s3://b/a.nc".to_string(),
                    Checksum::ETag(icechunk_types::ETag("\"1\"".into())),
                ),
                (
                    "s3://b/b.nc".to_string(),
                    Checksum::ETag(icechunk_types::ETag("\"2\"".into())),
                ),
            ]
            .into(),
        };
        let same = [
            input("s3://b/a.nc", "\"1\""),
            input("s3://b/b.nc", "\"2\""),
            input("s3://b/c.nc", "\"3\""),
        ];
        assert!(changed_inputs(&recorded, &same).is_empty());
        let now = [
            input("s3://b/a.nc", "\"1\""),
            input("s3://b/b.nc", "\"9\""),
            input("s3://b/d.nc", "\"4\""),
        ];
        let changes = changed_inputs(&recorded, &now);
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(
            changes[0].starts_with(
                "changed: s3://b/b.nc (ETag \"2\" when the group was built, ETag \"9\" now"
            ),
            "{changes:?}"
        );
        assert_eq!(changes[1], "added: s3://b/d.nc");
        assert_eq!(changes[2], "gone: s3://b/c.nc");
    }

    #[test]
    fn local_files_compare_by_modification_time() {
        let mut file = input("file:///a.nc", "ignored");
        let recorded = RecordedInputs {
            files: vec![file.url.clone()],
            identities: [(
                file.url.clone(),
                crate::write::checksum(&file).expect("mtime"),
            )]
            .into(),
        };
        assert!(changed_inputs(&recorded, std::slice::from_ref(&file)).is_empty());
        file.last_modified = Some("2026-01-02T03:04:09Z".into());
        let changes = changed_inputs(&recorded, &[file]);
        assert!(changes[0].contains("modified by 2026-01-02T03:04:05+00:00 when the group was built, modified by 2026-01-02T03:04:09+00:00 now"), "{changes:?}");
    }

    #[test]
    fn every_difference_names_its_chunk() {
        let expected: BTreeMap<Vec<u32>, (String, u64, u64)> = [
            (vec![0, 0], ("file:///a.nc".to_string(), 100, 50)),
            (vec![1, 0], ("file:///a.nc".to_string(), 150, 50)),
        ]
        .into();
        let same: BTreeMap<Vec<u32>, StoredChunk> = [
            (vec![0, 0], virtual_chunk("file:///a.nc", 100, 50)),
            (vec![1, 0], virtual_chunk("file:///a.nc", 150, 50)),
        ]
        .into();
        assert!(compare_refs(&expected, &same).is_empty());
        let mut moved = same.clone();
        moved.insert(vec![1, 0], virtual_chunk("file:///a.nc", 160, 50));
        let problems = compare_refs(&expected, &moved);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("chunk [1, 0]") && problems[0].contains("150+50"));
        let mut short = same;
        short.remove(&vec![0, 0]);
        let problems = compare_refs(&expected, &short);
        assert!(problems[0].contains("1 chunk reference(s) in the store, 2 allocated"));
        assert!(problems[1].contains("chunk [0, 0]: missing"));
    }
}
