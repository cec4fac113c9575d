//! Writing one fragment into an open writable store.
//!
//! Idempotence lives here: every group records the batch id it was built from
//! (`floe_batch_id`) and the newest modification time of its inputs
//! (`floe_inputs_modified`). A fragment whose batch id is already there is a
//! no-op; a fragment from older inputs than the group's is a no-op; a newer one
//! replaces the whole group (the old subtree is deleted first, so no stale
//! array survives). "Newer" is `(inputs_modified, batch_id)`, a total order,
//! so racing committers agree on the winner whatever the delivery order. A
//! rebuild planned over the stored state (`replaces`: a removed file does not
//! make the inputs newer) replaces that state, whatever the order.

use bytes::Bytes;
use floe_wire::ManifestFragment;
use icechunk::format::manifest::VirtualChunkLocation;
use icechunk::format::Path;
use icechunk::Store;
use serde_json::Value;

use crate::error::from_store;
use crate::inputs::write_inputs;
use crate::node::{chunk_key, group_document, set_refs};
use crate::{Result, StoreError};

pub(crate) use crate::node::checksum;
pub use crate::node::{ensure_ancestors, group_attributes, inputs_key, ApplyOutcome};

/// Checks everything that can be checked before the session is touched, so a
/// bad fragment fails alone and leaves the store as it was.
pub async fn validate(
    store: &Store,
    fragment: &ManifestFragment,
    name: &str,
) -> Result<Vec<VirtualChunkLocation>> {
    let bad = |reason: String| StoreError::Fragment {
        fragment: name.to_string(),
        reason,
    };
    // The names a fragment carries are checked here too, not only in the message that pointed
    // at it: `committer apply` reads fragments from files, and a batch id names records.
    floe_wire::check_group_path(&fragment.group_path).map_err(|e| bad(e.to_string()))?;
    floe_wire::check_batch_id(&fragment.batch_id).map_err(|e| bad(e.to_string()))?;
    Path::new(&format!("/{}", fragment.group_path))
        .map_err(|e| bad(format!("invalid group path {:?}: {e}", fragment.group_path)))?;
    let session = store.session();
    let session = session.read().await;
    let mut locations = Vec::with_capacity(fragment.sources.len());
    for source in &fragment.sources {
        let location = VirtualChunkLocation::from_url(&source.url)
            .map_err(|e| bad(format!("source {}: {e}", source.url)))?;
        session
            .validate_virtual_chunk_location(&location)
            .map_err(|_| {
                bad(format!(
                    "source {} is under no virtual chunk container of this store",
                    source.url
                ))
            })?;
        locations.push(location);
    }
    check_arrays(fragment).map_err(bad)?;
    Ok(locations)
}

/// Every array of a fragment checked against itself and its sources, before it
/// touches a session: a plain name, a regular chunk grid, each reference and
/// inline chunk inside that grid, each reference non-empty and inside its
/// source's known size. What icechunk would refuse mid-commit (a zero-length
/// reference, an index outside the grid) fails this fragment alone, by name.
pub fn check_arrays(fragment: &ManifestFragment) -> std::result::Result<(), String> {
    let limits = floe_wire::limits();
    // icechunk 2.3 takes at most 50 M references a commit, and a fragment is one group of it.
    if fragment.ref_count() as u64 > limits.references_per_fragment {
        return Err(format!(
            "{} references, more than the {} a fragment may hold (FLOE_MAX_REFERENCES_PER_FRAGMENT)",
            fragment.ref_count(),
            limits.references_per_fragment
        ));
    }
    let oversized = |owner: &str, attributes: Option<&serde_json::Map<String, Value>>| {
        match attributes
            .map(floe_wire::oversized_attributes)
            .unwrap_or_default()
            .first()
        {
            Some((key, size)) => Err(format!(
                "{owner}attribute {:?} of {size} bytes, more than the {} an attribute may take (FLOE_MAX_ATTRIBUTE_BYTES)",
                floe_wire::bounded(key, 100),
                limits.attribute_bytes
            )),
            None => Ok(()),
        }
    };
    oversized("group ", Some(&fragment.group_attributes))?;
    // Each sub-group is a group document of its own: its path, its attributes
    // and the document around them, counted before anything walks the tree.
    let metadata = Value::Object(fragment.group_attributes.clone())
        .to_string()
        .len()
        + fragment
            .subgroups
            .iter()
            .map(|(path, a)| {
                path.len() + GROUP_DOCUMENT_BYTES + Value::Object(a.clone()).to_string().len()
            })
            .sum::<usize>()
        + fragment
            .arrays
            .iter()
            .map(|a| a.zarr_json.to_string().len())
            .sum::<usize>();
    if metadata as u64 > limits.group_metadata_bytes {
        return Err(format!(
            "{metadata} bytes of metadata, more than the {} a group's may take (FLOE_MAX_GROUP_METADATA_BYTES)",
            limits.group_metadata_bytes
        ));
    }
    check_subgroups(fragment)?;
    for (path, attributes) in &fragment.subgroups {
        oversized(
            &format!("sub-group {}: ", floe_wire::bounded(path, 100)),
            Some(attributes),
        )?;
    }
    for array in &fragment.arrays {
        let name = &array.name;
        oversized(
            &format!("array {}: ", floe_wire::bounded(name, 100)),
            array.zarr_json.get("attributes").and_then(Value::as_object),
        )?;
        check_member(fragment, "array", name)?;
        let (grid, elements) =
            chunk_grid(&array.zarr_json).map_err(|e| format!("array {name}: {e}"))?;
        if elements > u128::from(limits.elements_per_array) {
            return Err(format!(
                "array {name}: {elements} elements, more than the {} an array may have (FLOE_MAX_ELEMENTS_PER_ARRAY)",
                limits.elements_per_array
            ));
        }
        let inline = array.inline_chunks.iter().map(|c| &c.index);
        for index in array.refs.iter().map(|r| &r.index).chain(inline) {
            if index.len() != grid.len()
                || index.iter().zip(&grid).any(|(i, n)| u64::from(*i) >= *n)
            {
                return Err(format!(
                    "array {name}: chunk index {index:?} is outside its grid of {grid:?} chunks"
                ));
            }
        }
        for r in &array.refs {
            if r.length == 0 {
                return Err(format!(
                    "array {name}: chunk {:?} is a reference of zero bytes",
                    r.index
                ));
            }
            let size = fragment
                .sources
                .get(r.source as usize)
                .map_or(0, |s| s.size);
            let end = r.offset.checked_add(r.length);
            if size > 0 && end.is_none_or(|end| end > size) {
                return Err(format!(
                    "array {name}: chunk {:?} reads bytes {}..{} of a source of {size} bytes",
                    r.index,
                    r.offset,
                    r.offset.saturating_add(r.length)
                ));
            }
        }
    }
    Ok(())
}

/// A name inside the group (`kind`: an array or a sub-group) checked by
/// [`floe_wire::check_member_path`], with its parent among the listed
/// sub-groups: the tree has no gap to fill with a guessed group.
fn check_member(
    fragment: &ManifestFragment,
    kind: &str,
    path: &str,
) -> std::result::Result<(), String> {
    floe_wire::check_member_path(path).map_err(|e| format!("{kind} {e}"))?;
    match path.rsplit_once('/') {
        Some((parent, _)) if !fragment.subgroups.contains_key(parent) => Err(format!(
            "{kind} {:?} is in sub-group {:?}, which the fragment does not list",
            floe_wire::bounded(path, 100),
            floe_wire::bounded(parent, 100)
        )),
        _ => Ok(()),
    }
}

/// The bytes of a group document around its attributes
/// (`{"zarr_format":3,"node_type":"group","attributes":…}`).
const GROUP_DOCUMENT_BYTES: usize = 50;

/// Each sub-group's path is a plain name inside the group, its parent is
/// listed too (the tree has no gap to fill with a guessed group), and no array
/// has its name.
fn check_subgroups(fragment: &ManifestFragment) -> std::result::Result<(), String> {
    let arrays: std::collections::HashSet<&str> =
        fragment.arrays.iter().map(|a| a.name.as_str()).collect();
    for path in fragment.subgroups.keys() {
        check_member(fragment, "sub-group", path)?;
        if arrays.contains(path.as_str()) {
            return Err(format!(
                "{:?} is both a sub-group and an array",
                floe_wire::bounded(path, 100)
            ));
        }
    }
    Ok(())
}

/// Chunks along each dimension of an array document's regular grid, and the
/// array's number of elements.
fn chunk_grid(document: &Value) -> std::result::Result<(Vec<u64>, u128), String> {
    let numbers = |key: &str, v: Option<&Value>| -> std::result::Result<Vec<u64>, String> {
        v.and_then(Value::as_array)
            .ok_or(format!("no {key}"))?
            .iter()
            .map(|n| n.as_u64().ok_or(format!("{key} holds {n}, not a size")))
            .collect()
    };
    let shape = numbers("shape", document.get("shape"))?;
    let chunks = numbers(
        "chunk shape",
        document.pointer("/chunk_grid/configuration/chunk_shape"),
    )?;
    if shape.len() != chunks.len() {
        return Err(format!(
            "shape {shape:?} and chunk shape {chunks:?} differ in rank"
        ));
    }
    let elements = shape
        .iter()
        .fold(1u128, |n, d| n.saturating_mul(u128::from(*d)));
    let grid = shape
        .iter()
        .zip(&chunks)
        .map(|(n, c)| {
            if *c == 0 {
                Err(format!("a chunk of 0 elements in chunk shape {chunks:?}"))
            } else {
                Ok(n.div_ceil(*c))
            }
        })
        .collect::<std::result::Result<Vec<u64>, String>>()?;
    Ok((grid, elements))
}

/// Writes one fragment (see the module doc for the idempotence rules).
pub async fn apply_fragment(
    store: &Store,
    fragment: &ManifestFragment,
    name: &str,
) -> Result<ApplyOutcome> {
    let locations = validate(store, fragment, name).await?;
    if let Some(append) = &fragment.append {
        return crate::append::apply_append(store, fragment, append, &locations).await;
    }
    let group = fragment.group_path.as_str();
    let (modified, batch_id) = inputs_key(fragment);
    if let Some(attrs) = group_attributes(store, group).await? {
        let current = attrs
            .get("floe_batch_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if current == batch_id {
            return Ok(ApplyOutcome::AlreadyCommitted);
        }
        let current_modified = attrs
            .get("floe_inputs_modified")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let planned_over_current = fragment.replaces.as_deref() == Some(current.as_str());
        if !current.is_empty()
            && !planned_over_current
            && (current_modified.clone(), current.clone()) > (modified.clone(), batch_id.clone())
        {
            return Ok(ApplyOutcome::Superseded { current });
        }
        store.delete_dir(group).await.map_err(from_store)?;
    }
    ensure_ancestors(store, group).await?;
    let mut attributes = fragment.group_attributes.clone();
    attributes.insert("floe_batch_id".into(), Value::from(batch_id));
    attributes.insert("floe_inputs_modified".into(), Value::from(modified));
    store
        .set(&format!("{group}/zarr.json"), group_document(attributes))
        .await
        .map_err(from_store)?;
    // Parents before children: a path sorts after its parent's.
    for (path, attributes) in &fragment.subgroups {
        store
            .set(
                &format!("{group}/{path}/zarr.json"),
                group_document(attributes.clone()),
            )
            .await
            .map_err(from_store)?;
    }
    let mut written = 0;
    for array in &fragment.arrays {
        let array_key = format!("{group}/{}", array.name);
        let (document, inline) = match crate::coordinate::cut_long_time_coordinate(array) {
            Some(cut) => cut,
            None => (
                array.zarr_json.clone(),
                array
                    .inline_chunks
                    .iter()
                    .map(|c| (c.index.clone(), c.data.clone()))
                    .collect(),
            ),
        };
        store
            .set(
                &format!("{array_key}/zarr.json"),
                Bytes::from(document.to_string()),
            )
            .await
            .map_err(|e| StoreError::Fragment {
                fragment: name.to_string(),
                reason: format!("array {}: {e}", array.name),
            })?;
        written += set_refs(store, fragment, &locations, &array_key, &array.refs, None).await?;
        for (index, data) in inline {
            store
                .set(&chunk_key(&array_key, &index), Bytes::from(data))
                .await
                .map_err(from_store)?;
        }
    }
    write_inputs(store, group, &fragment.sources).await?;
    Ok(ApplyOutcome::Written { refs: written })
}

pub use crate::inputs::{recorded_input_urls, recorded_inputs, INPUTS_ARRAY, PROVENANCE_GROUP};
