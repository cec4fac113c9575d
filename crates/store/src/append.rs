//! Appending new files to a stored group: the fragment holds only the new
//! files, merged alone; it is checked against what the store records about the
//! old ones and written as a resize plus the new chunk references.
//!
//! An append names the state it extends ([`AppendOf::base_batch_id`]) and is
//! applied on that state only: a re-delivered append finds its own batch id
//! and changes nothing; an append whose base is gone (the group was rebuilt
//! meanwhile) is refused, to be planned again. Anything the new files do not
//! share with the stored group (an array's type, codecs, chunk shape,
//! attributes such as packing, units or calendar; the set of arrays; a step at
//! or before the stored axis end) refuses the append by name, and the group is
//! rebuilt instead. Nothing is written before every check has passed.

use bytes::Bytes;
use floe_wire::{AppendOf, ManifestFragment, DIFFERING_ATTRIBUTES};
use icechunk::format::manifest::VirtualChunkLocation;
use icechunk::format::snapshot::NodeData;
use icechunk::format::Path;
use icechunk::Store;
use serde_json::{Map, Value};

use crate::error::{from_session, from_store};
use crate::inputs::{append_inputs, PROVENANCE_GROUP};
use crate::node::{
    chunk_key, group_attributes, group_document, inputs_key, read_key as read, set_refs,
    ApplyOutcome,
};
use crate::{Result, StoreError};

/// How one array of the fragment extends its stored array.
enum Extension {
    /// No axis along the dimension: the stored array stays as it is.
    Unchanged,
    /// Chunk references along the dimension, shifted by this many chunks.
    Shifted { axis: usize, chunks: u32 },
    /// A 1-D coordinate held inline (one chunk, or chunks of
    /// [`crate::coordinate::TIME_CHUNK_STEPS`]): the stored values of chunk
    /// `first` on, then the new ones, rewritten from that chunk.
    Concatenated { tail: Bytes, first: u64 },
}

/// One array's new document and how its chunks extend the stored ones.
struct Planned<'a> {
    array: &'a floe_wire::ArrayFragment,
    document: Value,
    extension: Extension,
}

/// Applies an append fragment (see the module doc).
pub(crate) async fn apply_append(
    store: &Store,
    fragment: &ManifestFragment,
    append: &AppendOf,
    locations: &[VirtualChunkLocation],
) -> Result<ApplyOutcome> {
    let group = fragment.group_path.as_str();
    let refused = |reason: String| Ok(ApplyOutcome::AppendRefused { reason });
    let Some(stored_attrs) = group_attributes(store, group).await? else {
        return refused("the group is not in the store".into());
    };
    let current = stored_attrs
        .get("floe_batch_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if current == fragment.batch_id {
        return Ok(ApplyOutcome::AlreadyCommitted);
    }
    if current != append.base_batch_id {
        return refused(format!(
            "its base {} is gone: the group holds batch {current} (rebuilt meanwhile?)",
            append.base_batch_id
        ));
    }
    let Some(stored_inputs) = crate::inputs::recorded_input_count(store, group).await? else {
        return refused("the store records no identities of the group's inputs".into());
    };
    if stored_inputs != append.base_files as usize {
        return refused(format!(
            "the group records {stored_inputs} inputs, the append expected {}",
            append.base_files
        ));
    }
    let attributes = match merged_attributes(&stored_attrs, fragment) {
        Ok(a) => a,
        Err(reason) => return refused(reason),
    };
    let planned = match plan_arrays(store, fragment, &append.dimension).await? {
        Ok(p) => p,
        Err(reason) => return refused(reason),
    };
    let mut attributes = attributes;
    let subgroup_names = differing_subgroup_attributes(store, fragment).await?;
    if let Some(Value::Array(names)) = attributes.get_mut(DIFFERING_ATTRIBUTES) {
        names.extend(subgroup_names.into_iter().map(Value::from));
        names.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        names.dedup();
    }
    write(store, fragment, attributes, planned, locations).await
}

/// The stored group's attributes with the new batch id, the newer inputs'
/// time and the new files' notes; refused when the new files leave out a
/// variable or were built by another profile.
fn merged_attributes(
    stored: &Map<String, Value>,
    fragment: &ManifestFragment,
) -> std::result::Result<Map<String, Value>, String> {
    let new = &fragment.group_attributes;
    if let Some(Value::Array(warnings)) = new.get("floe_warnings") {
        if let Some(first) = warnings.first() {
            return Err(format!("the new files leave a variable out: {first}"));
        }
    }
    if stored.get("floe_profile") != new.get("floe_profile") {
        return Err(format!(
            "the group was built by profile {}, the new files by {}",
            stored.get("floe_profile").unwrap_or(&Value::Null),
            new.get("floe_profile").unwrap_or(&Value::Null)
        ));
    }
    let mut attributes = stored.clone();
    attributes.insert(
        DIFFERING_ATTRIBUTES.into(),
        differing_attributes(stored, new)?,
    );
    attributes.insert(
        "floe_batch_id".into(),
        Value::from(fragment.batch_id.clone()),
    );
    let (modified, _) = inputs_key(fragment);
    let stored_modified = stored
        .get("floe_inputs_modified")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if modified.as_str() > stored_modified {
        attributes.insert("floe_inputs_modified".into(), Value::from(modified));
    }
    let notes: std::collections::BTreeSet<&str> = [stored, new]
        .iter()
        .filter_map(|a| a.get("floe_normalizations").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    attributes.insert(
        "floe_normalizations".into(),
        Value::from(notes.into_iter().collect::<Vec<_>>()),
    );
    Ok(attributes)
}

/// The names of the source's global attributes that differ between the
/// group's files, old and new: the stored group keeps its first file's
/// values, and names every attribute the new files hold otherwise. A group
/// stored before floe kept global attributes has no such record, and is
/// rebuilt rather than extended without them.
fn differing_attributes(
    stored: &Map<String, Value>,
    new: &Map<String, Value>,
) -> std::result::Result<Value, String> {
    let listed = |attrs: &Map<String, Value>| -> Option<Vec<String>> {
        attrs
            .get(DIFFERING_ATTRIBUTES)?
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let (Some(mut names), Some(new_names)) = (listed(stored), listed(new)) else {
        return Err(format!(
            "the stored group has no {DIFFERING_ATTRIBUTES}: it was written before floe kept the source's global attributes"
        ));
    };
    names.extend(new_names);
    let source = |attrs: &Map<String, Value>| -> Vec<String> {
        attrs
            .keys()
            .filter(|k| !k.starts_with("floe_"))
            .cloned()
            .collect()
    };
    for name in source(stored).into_iter().chain(source(new)) {
        if stored.get(&name) != new.get(&name) {
            names.push(name);
        }
    }
    names.sort_unstable();
    names.dedup();
    Ok(Value::from(names))
}

/// Every array of the fragment against its stored array, and the stored
/// arrays against the fragment's. The outer error is the store's; the inner
/// one why the append is refused.
async fn plan_arrays<'a>(
    store: &Store,
    fragment: &'a ManifestFragment,
    dimension: &str,
) -> Result<std::result::Result<Vec<Planned<'a>>, String>> {
    let group = fragment.group_path.as_str();
    let (stored_names, stored_subgroups) = stored_tree(store, group).await?;
    let mut new_names: Vec<&str> = fragment.array_names();
    new_names.sort_unstable();
    if stored_names
        .iter()
        .map(String::as_str)
        .ne(new_names.iter().copied())
    {
        return Ok(Err(format!(
            "the new files hold arrays {new_names:?}, the stored group {stored_names:?}"
        )));
    }
    let new_subgroups: Vec<&String> = fragment.subgroups.keys().collect();
    if stored_subgroups.iter().ne(new_subgroups.iter().copied()) {
        return Ok(Err(format!(
            "the new files hold sub-groups {new_subgroups:?}, the stored group {stored_subgroups:?}"
        )));
    }
    let mut planned = Vec::with_capacity(fragment.arrays.len());
    for array in &fragment.arrays {
        let key = format!("{group}/{}/zarr.json", array.name);
        let Some(bytes) = read(store, &key).await? else {
            return Ok(Err(format!(
                "array {} is not in the stored group",
                array.name
            )));
        };
        let stored: Value = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Icechunk(format!("{key}: {e}")))?;
        let extension = match extension(array, &stored, dimension) {
            Ok(e) => e,
            Err(reason) => return Ok(Err(format!("array {}: {reason}", array.name))),
        };
        let extension = match extension {
            Extension::Concatenated { .. } => {
                let (tail, first) = match stored_tail(store, group, array, &stored).await? {
                    Ok(t) => t,
                    Err(reason) => return Ok(Err(format!("array {}: {reason}", array.name))),
                };
                if array.name == dimension {
                    if let Err(reason) = check_after(&tail, array) {
                        return Ok(Err(reason));
                    }
                }
                Extension::Concatenated { tail, first }
            }
            Extension::Unchanged => {
                if let Err(reason) = same_inline_chunks(store, group, array).await? {
                    return Ok(Err(format!("array {}: {reason}", array.name)));
                }
                Extension::Unchanged
            }
            // Steps held as references cannot be compared with the stored end: never a guess.
            Extension::Shifted { .. } if array.name == dimension => {
                return Ok(Err(format!(
                    "array {}: its steps are not stored inline, so they cannot be checked against the stored axis",
                    array.name
                )));
            }
            shifted => shifted,
        };
        let document = extended_document(&stored, array, &extension);
        planned.push(Planned {
            array,
            document,
            extension,
        });
    }
    Ok(Ok(planned))
}

/// The arrays of a stored group by their paths inside it, sorted, and its
/// sub-groups (floe's provenance group apart): a NetCDF-4 file's sub-groups
/// hold arrays too (`sub/w`). One walk of the session's nodes under the group.
async fn stored_tree(store: &Store, group: &str) -> Result<(Vec<String>, Vec<String>)> {
    let root = Path::new(&format!("/{group}"))
        .map_err(|e| StoreError::Icechunk(format!("group {group}: {e}")))?;
    let session = store.session();
    let session = session.read().await;
    let prefix = format!("/{group}/");
    let (mut arrays, mut subgroups) = (Vec::new(), Vec::new());
    let nodes = session.list_nodes(&root).await.map_err(from_session)?;
    for node in nodes {
        let node = node.map_err(from_session)?;
        let path = node.path.to_string();
        let Some(inside) = path.strip_prefix(&prefix) else {
            continue; // the group itself (or a sibling whose name it begins)
        };
        if inside == PROVENANCE_GROUP || inside.starts_with(&format!("{PROVENANCE_GROUP}/")) {
            continue;
        }
        match node.node_data {
            NodeData::Array { .. } => arrays.push(inside.to_string()),
            NodeData::Group => subgroups.push(inside.to_string()),
        }
    }
    arrays.sort_unstable();
    subgroups.sort_unstable();
    Ok((arrays, subgroups))
}

/// The sub-group attributes the new files hold otherwise than the stored
/// sub-groups, each named `sub-group/attribute` (the stored keep their first
/// file's values, as the group's global attributes do).
async fn differing_subgroup_attributes(
    store: &Store,
    fragment: &ManifestFragment,
) -> Result<Vec<String>> {
    let group = fragment.group_path.as_str();
    let mut names = Vec::new();
    for (path, new) in &fragment.subgroups {
        let stored = group_attributes(store, &format!("{group}/{path}"))
            .await?
            .unwrap_or_default();
        for name in stored.keys().chain(new.keys()) {
            if stored.get(name) != new.get(name) {
                names.push(format!("{path}/{name}"));
            }
        }
    }
    Ok(names)
}

/// How `array` extends `stored`, or why it cannot: every field of the two
/// documents but the shape (and, for an inline coordinate, its one chunk's
/// shape) must be equal.
fn extension(
    array: &floe_wire::ArrayFragment,
    stored: &Value,
    dimension: &str,
) -> std::result::Result<Extension, String> {
    let new = &array.zarr_json;
    let axis = new
        .get("dimension_names")
        .and_then(Value::as_array)
        .and_then(|d| d.iter().position(|n| n.as_str() == Some(dimension)));
    let Some(axis) = axis else {
        return if new == stored {
            Ok(Extension::Unchanged)
        } else {
            Err(format!(
                "differs from the stored array: {}",
                first_difference(stored, new)
            ))
        };
    };
    let (new_shape, stored_shape) = (shape(new, "shape")?, shape(stored, "shape")?);
    let (new_chunks, stored_chunks) = (chunk_shape(new)?, chunk_shape(stored)?);
    let inline = !array.inline_chunks.is_empty();
    if inline && (new_shape.len() != 1 || !array.refs.is_empty() || new_chunks != new_shape) {
        return Err("inline chunks beside references cannot be extended".into());
    }
    let data_type = new
        .get("data_type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if inline && crate::coordinate::value_width(data_type).is_none() {
        // Variable-length strings are one encoded chunk, not values to append.
        return Err(format!(
            "values of type {data_type} are kept inline as one chunk, which an append does not extend"
        ));
    }
    let (mut a, mut b) = (stored.clone(), new.clone());
    for doc in [&mut a, &mut b] {
        doc["shape"] = Value::Null;
        if inline {
            doc["chunk_grid"] = Value::Null;
        }
    }
    if a != b {
        return Err(format!(
            "differs from the stored array: {}",
            first_difference(&a, &b)
        ));
    }
    if new_shape.len() != stored_shape.len()
        || new_shape
            .iter()
            .zip(&stored_shape)
            .enumerate()
            .any(|(i, (n, s))| i != axis && n != s)
    {
        return Err(format!(
            "shape {new_shape:?} does not extend the stored {stored_shape:?}"
        ));
    }
    if inline {
        return Ok(Extension::Concatenated {
            tail: Bytes::new(),
            first: 0,
        });
    }
    let chunk = stored_chunks[axis].max(1);
    if stored_shape[axis] % chunk != 0 {
        return Err(format!(
            "the stored {dimension} axis ({} steps) ends inside a chunk of {chunk}",
            stored_shape[axis]
        ));
    }
    let chunks = u32::try_from(stored_shape[axis] / chunk).map_err(|e| e.to_string())?;
    Ok(Extension::Shifted { axis, chunks })
}

fn shape(doc: &Value, key: &str) -> std::result::Result<Vec<u64>, String> {
    doc.get(key)
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_u64).collect())
        .ok_or_else(|| format!("no {key} in its zarr.json"))
}

fn chunk_shape(doc: &Value) -> std::result::Result<Vec<u64>, String> {
    doc.pointer("/chunk_grid/configuration/chunk_shape")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_u64).collect())
        .ok_or_else(|| "no regular chunk grid in its zarr.json".to_string())
}

/// The first top-level field (or attribute) where two documents differ, both values shown.
fn first_difference(stored: &Value, new: &Value) -> String {
    let (Some(a), Some(b)) = (stored.as_object(), new.as_object()) else {
        return "not a document".into();
    };
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let (x, y) = (a.get(key), b.get(key));
        if x == y {
            continue;
        }
        if key == "attributes" {
            if let (Some(Value::Object(x)), Some(Value::Object(y))) = (x, y) {
                let names: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                if let Some(name) = names.into_iter().find(|n| x.get(*n) != y.get(*n)) {
                    return format!(
                        "attribute {name} is {} in the store, {} in the new files",
                        x.get(name).unwrap_or(&Value::Null),
                        y.get(name).unwrap_or(&Value::Null)
                    );
                }
            }
        }
        return format!(
            "{key} is {} in the store, {} in the new files",
            x.unwrap_or(&Value::Null),
            y.unwrap_or(&Value::Null)
        );
    }
    "no difference".into()
}

/// The new time steps must all come after the stored axis end (same units and
/// type: equal documents were checked first).
fn check_after(stored: &[u8], array: &floe_wire::ArrayFragment) -> std::result::Result<(), String> {
    let dtype = array
        .zarr_json
        .get("data_type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let new = array
        .inline_chunks
        .first()
        .map(|c| c.data.as_slice())
        .unwrap_or_default();
    let (Some(end), Some(start)) = (last_value(stored, dtype), first_value(new, dtype)) else {
        return Err(format!(
            "{}: values of type {dtype} cannot be compared",
            array.name
        ));
    };
    if start <= end {
        return Err(format!(
            "the new files' first {} step ({start}) is not after the stored axis end ({end})",
            array.name
        ));
    }
    Ok(())
}

use crate::coordinate::value_width;

/// The stored values of a concatenated coordinate from its last chunk on
/// (all of them when it is one chunk), and that chunk's index.
async fn stored_tail(
    store: &Store,
    group: &str,
    array: &floe_wire::ArrayFragment,
    stored: &Value,
) -> Result<std::result::Result<(Bytes, u64), String>> {
    let (Ok(shape), Ok(chunks)) = (shape(stored, "shape"), chunk_shape(stored)) else {
        return Ok(Err("the stored document has no 1-D shape".into()));
    };
    let (Some(&n), Some(&c)) = (shape.first(), chunks.first()) else {
        return Ok(Err("the stored document has no 1-D shape".into()));
    };
    let Some(width) = stored["data_type"].as_str().and_then(value_width) else {
        return Ok(Err("values of its type cannot be concatenated".into()));
    };
    let c = c.max(1);
    if c < n && c != crate::coordinate::TIME_CHUNK_STEPS {
        return Ok(Err(format!(
            "stored in chunks of {c} values, floe extends chunks of {}",
            crate::coordinate::TIME_CHUNK_STEPS
        )));
    }
    let first = if c >= n { 0 } else { (n - 1) / c };
    let key = format!("{group}/{}/c/{first}", array.name);
    let Some(chunk) = read(store, &key).await? else {
        return Ok(Err("no stored values".into()));
    };
    let kept = ((n - first * c) as usize) * width;
    Ok(Ok((chunk.slice(..kept.min(chunk.len())), first)))
}

fn decode_value(bytes: &[u8], dtype: &str) -> Option<f64> {
    let v = match dtype {
        "int16" => f64::from(i16::from_le_bytes(bytes.try_into().ok()?)),
        "uint16" => f64::from(u16::from_le_bytes(bytes.try_into().ok()?)),
        "int32" => f64::from(i32::from_le_bytes(bytes.try_into().ok()?)),
        "uint32" => f64::from(u32::from_le_bytes(bytes.try_into().ok()?)),
        "int64" => i64::from_le_bytes(bytes.try_into().ok()?) as f64,
        "uint64" => u64::from_le_bytes(bytes.try_into().ok()?) as f64,
        "float32" => f64::from(f32::from_le_bytes(bytes.try_into().ok()?)),
        "float64" => f64::from_le_bytes(bytes.try_into().ok()?),
        _ => return None,
    };
    Some(v)
}

fn last_value(bytes: &[u8], dtype: &str) -> Option<f64> {
    let w = value_width(dtype)?;
    let start = bytes.len().checked_sub(w)?;
    decode_value(&bytes[start..], dtype)
}

fn first_value(bytes: &[u8], dtype: &str) -> Option<f64> {
    let w = value_width(dtype)?;
    decode_value(bytes.get(..w)?, dtype)
}

/// The array's document after the append: the new one (equal to the stored
/// one but for the shape), with the stored length added along the dimension.
fn extended_document(
    stored: &Value,
    array: &floe_wire::ArrayFragment,
    extension: &Extension,
) -> Value {
    let mut document = array.zarr_json.clone();
    match extension {
        Extension::Unchanged => stored.clone(),
        Extension::Shifted { axis, .. } => {
            let total = shape(stored, "shape")
                .ok()
                .zip(shape(&document, "shape").ok())
                .map(|(s, n)| s[*axis] + n[*axis]);
            if let Some(total) = total {
                document["shape"][*axis] = Value::from(total);
            }
            document
        }
        Extension::Concatenated { .. } => {
            let total = shape(stored, "shape")
                .ok()
                .zip(shape(&document, "shape").ok())
                .map(|(s, n)| s[0] + n[0]);
            if let Some(total) = total {
                document["shape"][0] = Value::from(total);
                document["chunk_grid"]["configuration"]["chunk_shape"][0] =
                    Value::from(crate::coordinate::chunk_length(total));
            }
            document
        }
    }
}

/// Every chunk stored inline of an array outside the dimension (coordinates)
/// must hold the bytes the new files give it.
async fn same_inline_chunks(
    store: &Store,
    group: &str,
    array: &floe_wire::ArrayFragment,
) -> Result<std::result::Result<(), String>> {
    for chunk in &array.inline_chunks {
        let key = chunk_key(&format!("{group}/{}", array.name), &chunk.index);
        let stored = read(store, &key).await?;
        if stored.as_deref() != Some(chunk.data.as_slice()) {
            return Ok(Err(format!(
                "values differ from the stored ones (chunk {:?})",
                chunk.index
            )));
        }
    }
    Ok(Ok(()))
}

/// Writes the checked append: the group's attributes, each extended array's
/// document and new chunks, and the new inputs after the stored ones.
async fn write(
    store: &Store,
    fragment: &ManifestFragment,
    attributes: Map<String, Value>,
    planned: Vec<Planned<'_>>,
    locations: &[VirtualChunkLocation],
) -> Result<ApplyOutcome> {
    let group = fragment.group_path.as_str();
    store
        .set(&format!("{group}/zarr.json"), group_document(attributes))
        .await
        .map_err(from_store)?;
    let mut written = 0;
    for Planned {
        array,
        document,
        extension,
    } in planned
    {
        let array_key = format!("{group}/{}", array.name);
        match extension {
            Extension::Unchanged => continue,
            Extension::Concatenated { tail, first } => {
                let mut values = tail.to_vec();
                for chunk in &array.inline_chunks {
                    values.extend_from_slice(&chunk.data);
                }
                set_document(store, &array_key, &document).await?;
                let width = document["data_type"]
                    .as_str()
                    .and_then(value_width)
                    .unwrap_or(1);
                let chunk = chunk_shape(&document)
                    .ok()
                    .and_then(|c| c.first().copied())
                    .unwrap_or(1);
                for (i, data) in crate::coordinate::chunks(&values, width, chunk, first) {
                    store
                        .set(&format!("{array_key}/c/{i}"), Bytes::from(data))
                        .await
                        .map_err(from_store)?;
                }
            }
            Extension::Shifted { axis, chunks } => {
                set_document(store, &array_key, &document).await?;
                let shift = Some((axis, chunks));
                written +=
                    set_refs(store, fragment, locations, &array_key, &array.refs, shift).await?;
            }
        }
    }
    append_inputs(store, group, &fragment.sources).await?;
    Ok(ApplyOutcome::Written { refs: written })
}

async fn set_document(store: &Store, array_key: &str, document: &Value) -> Result<()> {
    store
        .set(
            &format!("{array_key}/zarr.json"),
            Bytes::from(document.to_string()),
        )
        .await
        .map_err(from_store)
}
