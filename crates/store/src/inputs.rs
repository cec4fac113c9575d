//! The record of a group's input files, `{group}/_floe/inputs`: what an
//! append compares the listing with, and what `verify` checks.
//!
//! One JSON object a line (a [`floe_wire::SourceFile`]: URL, size, ETag,
//! modification time), as the UTF-8 bytes of a uint8 array cut into chunks of
//! [`INPUTS_CHUNK_BYTES`], each zstd-compressed. A chunk, not an attribute:
//! attributes live in the repository's snapshot, which every commit rewrites.
//! Chunks of a fixed size, not one: an append writes only the last chunk it
//! extends and the new ones (and, with the manifest split per chunk that
//! the writer configuration sets, only their manifests), so appending a file
//! costs the same bytes at 100 inputs as at 10,000. Records written before
//! appends (one chunk holding a JSON array, of identities or of bare URLs) are
//! still read, and rewritten in this form by the first append.

use bytes::Bytes;
use floe_wire::SourceFile;
use icechunk::Store;
use serde_json::{json, Map, Value};

use crate::error::from_store;
use crate::node::{group_document, read_key};
use crate::{Result, StoreError};

/// The child group, beside a group's arrays, that holds what floe needs about
/// the group and readers do not (`xr.open_zarr(group=…)` shows arrays only).
pub const PROVENANCE_GROUP: &str = "_floe";

/// The array of [`PROVENANCE_GROUP`] that lists the group's input files.
pub const INPUTS_ARRAY: &str = "inputs";

/// Bytes of one chunk of the record (about 200 inputs).
pub const INPUTS_CHUNK_BYTES: usize = 32 * 1024;

fn array_key(group: &str) -> String {
    format!("{group}/{PROVENANCE_GROUP}/{INPUTS_ARRAY}")
}

fn invalid(key: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Icechunk(format!("{key}: {reason}"))
}

fn lines(files: &[SourceFile]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for f in files {
        serde_json::to_writer(&mut out, f).map_err(|e| StoreError::Icechunk(e.to_string()))?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Writes the provenance group's document, with the number of inputs (what
/// an append checks its base against without reading the record).
async fn write_provenance(store: &Store, group: &str, count: usize) -> Result<()> {
    let mut attributes = Map::new();
    attributes.insert(
        "description".into(),
        Value::from("floe's record of how the parent group was built (not data)"),
    );
    attributes.insert(COUNT_ATTRIBUTE.into(), Value::from(count));
    store
        .set(
            &format!("{group}/{PROVENANCE_GROUP}/zarr.json"),
            group_document(attributes),
        )
        .await
        .map_err(from_store)
}

/// The attribute of the provenance group that counts the recorded inputs.
const COUNT_ATTRIBUTE: &str = "inputs";

/// How many inputs a group records: the provenance group's count, else (a
/// store written before it was kept) the record's length.
pub(crate) async fn recorded_input_count(store: &Store, group: &str) -> Result<Option<usize>> {
    let key = format!("{group}/{PROVENANCE_GROUP}/zarr.json");
    if let Some(doc) = read_key(store, &key).await? {
        let doc: Value = serde_json::from_slice(&doc).map_err(|e| invalid(&key, e))?;
        if let Some(n) = doc["attributes"][COUNT_ATTRIBUTE].as_u64() {
            return Ok(Some(n as usize));
        }
    }
    Ok(recorded_inputs(store, group).await?.map(|f| f.len()))
}

/// Writes the record of a group built whole (its subtree was deleted first).
pub(crate) async fn write_inputs(store: &Store, group: &str, files: &[SourceFile]) -> Result<()> {
    write_provenance(store, group, files.len()).await?;
    write_from(store, group, &lines(files)?, 0, 0).await
}

/// Adds `files` to a group's record, writing only the chunks from the one the
/// record ends in.
pub(crate) async fn append_inputs(store: &Store, group: &str, files: &[SourceFile]) -> Result<()> {
    let key = array_key(group);
    let (length, chunk) = match read_key(store, &format!("{key}/zarr.json")).await? {
        Some(doc) => shape_of(&key, &doc)?,
        None => (0, INPUTS_CHUNK_BYTES),
    };
    let old_form = chunk != INPUTS_CHUNK_BYTES
        || read_key(store, &format!("{key}/c/0"))
            .await?
            .is_some_and(|c| decode(&key, &c).is_ok_and(|b| b.first() == Some(&b'[')));
    if old_form {
        let mut all = recorded_inputs(store, group)
            .await?
            .ok_or_else(|| invalid(&key, "a record of URLs only cannot be appended to"))?;
        all.extend(files.iter().cloned());
        return write_inputs(store, group, &all).await;
    }
    let count = recorded_input_count(store, group)
        .await?
        .ok_or_else(|| invalid(&key, "no record to append to"))?;
    write_provenance(store, group, count + files.len()).await?;
    let first = length / chunk;
    let kept = length % chunk;
    let mut bytes = if kept == 0 {
        Vec::new()
    } else {
        let stored = read_key(store, &format!("{key}/c/{first}"))
            .await?
            .ok_or_else(|| invalid(&key, format!("chunk {first} is missing")))?;
        let mut tail = decode(&key, &stored)?;
        tail.truncate(kept);
        tail
    };
    bytes.extend(lines(files)?);
    write_from(store, group, &bytes, first, length - kept).await
}

/// Writes the record's array document for `start + bytes.len()` bytes and the
/// chunks from `first_chunk` (which begins at byte `start`).
async fn write_from(
    store: &Store,
    group: &str,
    bytes: &[u8],
    first_chunk: usize,
    start: usize,
) -> Result<()> {
    let key = array_key(group);
    let length = start + bytes.len();
    let array = json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": [length],
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [INPUTS_CHUNK_BYTES]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "bytes"}, {"name": "zstd", "configuration": {"level": 3, "checksum": false}}],
        "dimension_names": ["json_byte"],
        "attributes": {"description": "the group's input files: one JSON object {url, size, etag, last_modified, variable} a line, as UTF-8 bytes"},
    });
    store
        .set(&format!("{key}/zarr.json"), Bytes::from(array.to_string()))
        .await
        .map_err(from_store)?;
    for (i, part) in bytes.chunks(INPUTS_CHUNK_BYTES).enumerate() {
        // Every chunk of a regular grid has the chunk's full size; the last is padded.
        let mut full = part.to_vec();
        full.resize(INPUTS_CHUNK_BYTES, 0);
        let encoded =
            zstd::encode_all(full.as_slice(), 3).map_err(|e| invalid(&key, e.to_string()))?;
        store
            .set(
                &format!("{key}/c/{}", first_chunk + i),
                Bytes::from(encoded),
            )
            .await
            .map_err(from_store)?;
    }
    Ok(())
}

fn shape_of(key: &str, doc: &[u8]) -> Result<(usize, usize)> {
    let doc: Value = serde_json::from_slice(doc).map_err(|e| invalid(key, e))?;
    let length = doc["shape"][0].as_u64();
    let chunk = doc["chunk_grid"]["configuration"]["chunk_shape"][0].as_u64();
    match (length, chunk) {
        (Some(l), Some(c)) if c > 0 => Ok((l as usize, c as usize)),
        _ => Err(invalid(key, "not a 1-D array document")),
    }
}

fn decode(key: &str, chunk: &[u8]) -> Result<Vec<u8>> {
    zstd::decode_all(chunk).map_err(|e| invalid(key, e))
}

/// The record's bytes, every chunk in order, cut to the array's length.
async fn record_bytes(store: &Store, group: &str) -> Result<Option<Vec<u8>>> {
    let key = array_key(group);
    let Some(doc) = read_key(store, &format!("{key}/zarr.json")).await? else {
        return Ok(None);
    };
    let (length, chunk) = shape_of(&key, &doc)?;
    let mut out = Vec::with_capacity(length);
    for i in 0..length.div_ceil(chunk) {
        let stored = read_key(store, &format!("{key}/c/{i}"))
            .await?
            .ok_or_else(|| invalid(&key, format!("chunk {i} is missing")))?;
        out.extend(decode(&key, &stored)?);
    }
    out.truncate(length);
    Ok(Some(out))
}

/// The input files a group records, each with the identity (size, ETag,
/// modification time) it was built from; `None` when it records none, or
/// only their URLs (written before appends: such a group is rebuilt).
pub async fn recorded_inputs(store: &Store, group: &str) -> Result<Option<Vec<SourceFile>>> {
    let Some(bytes) = record_bytes(store, group).await? else {
        return Ok(None);
    };
    if bytes.first() == Some(&b'[') {
        return Ok(serde_json::from_slice(&bytes).ok());
    }
    let mut files = Vec::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        files.push(serde_json::from_slice(line).map_err(|e| invalid(&array_key(group), e))?);
    }
    Ok(Some(files))
}

/// The URLs of a group's input files ([`recorded_inputs`], or the bare URL
/// list of stores written before appends).
pub async fn recorded_input_urls(store: &Store, group: &str) -> Result<Option<Vec<String>>> {
    if let Some(files) = recorded_inputs(store, group).await? {
        return Ok(Some(files.into_iter().map(|f| f.url).collect()));
    }
    let Some(bytes) = record_bytes(store, group).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| invalid(&array_key(group), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::sync::RwLock;

    fn file(i: usize) -> SourceFile {
        SourceFile {
            url: format!("s3://bucket/archive/MUR/{i:06}-a-long-enough-name-for-a-daily-file.nc"),
            size: 1000 + i as u64,
            etag: Some(format!("\"{i:032x}\"")),
            last_modified: Some("2026-12-04T10:00:00+00:00".into()),
            variable: "*".into(),
        }
    }

    async fn store(dir: &std::path::Path) -> Store {
        let location = crate::StoreLocation::parse(&dir.display().to_string()).expect("location");
        let repo = crate::open_repository(&location, &crate::CloudSettings::default(), &[])
            .await
            .expect("repository");
        let session = repo.writable_session("main").await.expect("session");
        Store::from_session(Arc::new(RwLock::new(session))).await
    }

    #[tokio::test]
    async fn appends_write_from_the_last_chunk_and_read_back_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path()).await;
        let all: Vec<SourceFile> = (0..700).map(file).collect();
        write_inputs(&store, "MUR", &all[..150])
            .await
            .expect("build");
        for part in [&all[150..151], &all[151..400], &all[400..700]] {
            append_inputs(&store, "MUR", part).await.expect("append");
        }
        assert_eq!(
            recorded_inputs(&store, "MUR").await.expect("read"),
            Some(all.clone())
        );
        let count = recorded_input_count(&store, "MUR").await.expect("count");
        assert_eq!(count, Some(700));
        let doc = read_key(&store, "MUR/_floe/inputs/zarr.json")
            .await
            .expect("read")
            .expect("document");
        let (length, chunk) = shape_of("x", &doc).expect("shape");
        assert_eq!(chunk, INPUTS_CHUNK_BYTES);
        assert_eq!(length, lines(&all).expect("lines").len());
        assert!(
            length > 3 * INPUTS_CHUNK_BYTES,
            "the record spans several chunks"
        );
        let urls = recorded_input_urls(&store, "MUR").await.expect("urls");
        assert_eq!(urls.map(|u| u.len()), Some(700));
    }

    #[tokio::test]
    async fn a_record_written_before_appends_is_read_and_rewritten_by_the_first_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path()).await;
        let old: Vec<SourceFile> = (0..3).map(file).collect();
        let json = serde_json::to_vec(&old).expect("json");
        let doc = json!({"zarr_format": 3, "node_type": "array", "shape": [json.len()],
            "data_type": "uint8",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [json.len()]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0, "codecs": [{"name": "bytes"}, {"name": "zstd", "configuration": {"level": 3, "checksum": false}}]});
        store
            .set("MUR/_floe/inputs/zarr.json", Bytes::from(doc.to_string()))
            .await
            .expect("doc");
        let chunk = zstd::encode_all(json.as_slice(), 3).expect("zstd");
        store
            .set("MUR/_floe/inputs/c/0", Bytes::from(chunk))
            .await
            .expect("chunk");
        assert_eq!(
            recorded_inputs(&store, "MUR").await.expect("read"),
            Some(old.clone())
        );
        append_inputs(&store, "MUR", &[file(3)])
            .await
            .expect("append");
        let mut all = old;
        all.push(file(3));
        assert_eq!(
            recorded_inputs(&store, "MUR").await.expect("read"),
            Some(all)
        );
    }
}
