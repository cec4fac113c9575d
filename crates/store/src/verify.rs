//! Reading a finished store back for `producer verify`: the chunk references
//! an array holds, and the bytes icechunk serves for one chunk (fetched from the
//! source through the virtual chunk container, with the recorded ETag or
//! modification time checked). [`compare_refs`] is the pure comparison with the
//! references a fresh read of the sources gives.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use icechunk::format::manifest::ChunkPayload;
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
        Ok(StoreReader {
            store: Store::from_session(Arc::new(RwLock::new(session))).await,
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
        let key = if index.is_empty() {
            format!("{array_path}/c")
        } else {
            let parts: Vec<String> = index.iter().map(u32::to_string).collect();
            format!("{array_path}/c/{}", parts.join("/"))
        };
        self.store
            .get(&key, &ByteRange::From(0))
            .await
            .map_err(from_store)
    }
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
