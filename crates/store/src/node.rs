//! The store's nodes as floe writes them: group documents and attributes, whole
//! keys, chunk keys and virtual references. Below [`crate::write`] (whole groups),
//! [`crate::append`] and [`crate::inputs`], which all build on it.

use bytes::Bytes;
use floe_wire::ManifestFragment;
use icechunk::format::manifest::{
    Checksum, SecondsSinceEpoch, VirtualChunkLocation, VirtualChunkRef,
};
use icechunk::format::{ByteRange, ChunkIndices, Path};
use icechunk::Store;
use serde_json::{json, Map, Value};

use crate::error::from_store;
use crate::{Result, StoreError};

/// What applying a fragment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The group was written (or rewritten).
    Written {
        /// Virtual references written.
        refs: usize,
    },
    /// The group already holds this batch id.
    AlreadyCommitted,
    /// The group holds a newer batch; this one is stale.
    Superseded {
        /// The batch id in the store.
        current: String,
    },
    /// An append that does not extend the stored group (its base is gone, or
    /// the new files do not match the stored ones): nothing was written, and
    /// the group is to be planned again or rebuilt.
    AppendRefused {
        /// Why, naming the array, attribute or step at fault.
        reason: String,
    },
}

/// The ordering key of a fragment's inputs.
pub fn inputs_key(fragment: &ManifestFragment) -> (String, String) {
    let newest = fragment
        .sources
        .iter()
        .filter_map(|s| s.last_modified.clone())
        .max()
        .unwrap_or_default();
    (newest, fragment.batch_id.clone())
}

/// Attributes of a group, if the group exists.
pub async fn group_attributes(
    store: &Store,
    group_path: &str,
) -> Result<Option<Map<String, Value>>> {
    let key = if group_path.is_empty() {
        "zarr.json".to_string()
    } else {
        format!("{group_path}/zarr.json")
    };
    let Some(bytes) = read_key(store, &key).await? else {
        return Ok(None);
    };
    let doc: Value =
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Icechunk(format!("{key}: {e}")))?;
    Ok(Some(
        doc.get("attributes")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    ))
}

/// The whole value of a key, or `None` when the store has none.
pub(crate) async fn read_key(store: &Store, key: &str) -> Result<Option<Bytes>> {
    if !store.exists(key).await.map_err(from_store)? {
        return Ok(None);
    }
    store
        .get(key, &ByteRange::From(0))
        .await
        .map(Some)
        .map_err(from_store)
}

pub(crate) fn group_document(attributes: Map<String, Value>) -> Bytes {
    Bytes::from(
        json!({"zarr_format": 3, "node_type": "group", "attributes": attributes}).to_string(),
    )
}

/// Creates the root and every ancestor group of `group_path` that is missing.
pub async fn ensure_ancestors(store: &Store, group_path: &str) -> Result<()> {
    let parts: Vec<&str> = group_path.split('/').filter(|p| !p.is_empty()).collect();
    let mut prefixes = vec![String::new()];
    for i in 1..parts.len() {
        prefixes.push(parts[..i].join("/"));
    }
    for prefix in prefixes {
        if group_attributes(store, &prefix).await?.is_none() {
            let key = if prefix.is_empty() {
                "zarr.json".to_string()
            } else {
                format!("{prefix}/zarr.json")
            };
            store
                .set(&key, group_document(Map::new()))
                .await
                .map_err(from_store)?;
        }
    }
    Ok(())
}

/// The identity a reference into `source` records, which icechunk checks on every
/// read: its ETag, or for local files its modification time.
pub(crate) fn checksum(source: &floe_wire::SourceFile) -> Option<Checksum> {
    // Local files have no stable ETag across object_store versions; their
    // modification time is the identity. Object stores carry an ETag.
    if !source.url.starts_with("file://") {
        if let Some(etag) = &source.etag {
            return Some(Checksum::ETag(icechunk_types::ETag(etag.clone())));
        }
    }
    let modified = source.last_modified.as_deref()?;
    // Icechunk asks "unmodified since T": T must not be before the sub-second
    // modification time, so round up.
    let time = chrono::DateTime::parse_from_rfc3339(modified).ok()?;
    let seconds = time.timestamp() + i64::from(time.timestamp_subsec_nanos() > 0);
    u32::try_from(seconds)
        .ok()
        .map(|s| Checksum::LastModified(SecondsSinceEpoch(s)))
}

/// Writes `refs` of the array at `array_key` as virtual chunk references into
/// `fragment`'s sources, each index shifted by `shift` (axis, chunks) when
/// given (an append); returns how many.
pub(crate) async fn set_refs(
    store: &Store,
    fragment: &ManifestFragment,
    locations: &[VirtualChunkLocation],
    array_key: &str,
    refs: &[floe_wire::VirtualRef],
    shift: Option<(usize, u32)>,
) -> Result<usize> {
    let refs: Vec<(ChunkIndices, VirtualChunkRef)> = refs
        .iter()
        .map(|r| {
            let mut index = r.index.clone();
            if let Some((axis, chunks)) = shift {
                index[axis] += chunks;
            }
            let reference = VirtualChunkRef {
                location: locations[r.source as usize].clone(),
                offset: r.offset,
                length: r.length,
                checksum: checksum(&fragment.sources[r.source as usize]),
            };
            (ChunkIndices(index), reference)
        })
        .collect();
    let count = refs.len();
    if count > 0 {
        let path =
            Path::new(&format!("/{array_key}")).map_err(|e| StoreError::Icechunk(e.to_string()))?;
        store
            .set_virtual_refs(&path, false, refs)
            .await
            .map_err(from_store)?;
    }
    Ok(count)
}

/// The key of an array's chunk (`c/i/j/...`; `c` for a scalar).
pub(crate) fn chunk_key(array_key: &str, index: &[u32]) -> String {
    if index.is_empty() {
        return format!("{array_key}/c");
    }
    let parts: Vec<String> = index.iter().map(u32::to_string).collect();
    format!("{array_key}/c/{}", parts.join("/"))
}
