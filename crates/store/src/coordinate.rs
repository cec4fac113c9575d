//! A long time coordinate in chunks of [`TIME_CHUNK_STEPS`] values, all
//! inline in its manifest.
//!
//! A time coordinate is held as values (inline chunks), not references, so an
//! append can check its new steps against the stored end. In one chunk it
//! would be rewritten whole by every append (4 or 8 bytes a step: 80 KB at
//! 10,000 daily steps, the one part of an append growing with the series).
//! Past [`TIME_CHUNK_STEPS`] values it is cut into chunks of that many, which
//! line up with the manifest splits along `time`, so an append rewrites only
//! the last chunk and adds new ones. Shorter coordinates keep their one chunk.

use serde_json::Value;

/// Values per chunk of a long time coordinate (as many as a manifest split's steps).
pub const TIME_CHUNK_STEPS: u64 = 1000;

/// Bytes of one value of a Zarr data type, for the types coordinates use.
pub(crate) fn value_width(dtype: &str) -> Option<usize> {
    match dtype {
        "int8" | "uint8" => Some(1),
        "int16" | "uint16" => Some(2),
        "int32" | "uint32" | "float32" => Some(4),
        "int64" | "uint64" | "float64" => Some(8),
        _ => None,
    }
}

/// The chunk length of a coordinate of `total` values: one chunk up to
/// [`TIME_CHUNK_STEPS`], chunks of that many beyond.
pub(crate) fn chunk_length(total: u64) -> u64 {
    if total <= TIME_CHUNK_STEPS {
        total.max(1)
    } else {
        TIME_CHUNK_STEPS
    }
}

/// Cuts `values` (the coordinate's values from chunk `first` on, `width`
/// bytes each) into chunks of `chunk` values, the last padded with zeros (a
/// regular grid's chunks all have the chunk's size; readers stop at the shape).
pub(crate) fn chunks(values: &[u8], width: usize, chunk: u64, first: u64) -> Vec<(u64, Vec<u8>)> {
    let bytes = width * chunk as usize;
    values
        .chunks(bytes.max(1))
        .enumerate()
        .map(|(i, part)| {
            let mut full = part.to_vec();
            full.resize(bytes, 0);
            (first + i as u64, full)
        })
        .collect()
}

/// Whether an array document is a 1-D coordinate along `time`.
pub(crate) fn is_time_coordinate(document: &Value) -> bool {
    document["dimension_names"]
        .as_array()
        .is_some_and(|d| d.len() == 1 && d[0].as_str() == Some("time"))
}

/// Inline chunks to write: chunk index and bytes.
pub(crate) type InlineChunks = Vec<(Vec<u32>, Vec<u8>)>;

/// A whole build's long time coordinate (more than [`TIME_CHUNK_STEPS`]
/// values, inline in one chunk) as the store keeps it: its document with
/// chunks of [`TIME_CHUNK_STEPS`], and those chunks. `None` for any other array.
pub(crate) fn cut_long_time_coordinate(
    array: &floe_wire::ArrayFragment,
) -> Option<(Value, InlineChunks)> {
    let doc = &array.zarr_json;
    let total = doc["shape"].as_array().filter(|s| s.len() == 1)?[0].as_u64()?;
    let width = value_width(doc["data_type"].as_str()?)?;
    if total <= TIME_CHUNK_STEPS
        || !is_time_coordinate(doc)
        || !array.refs.is_empty()
        || array.inline_chunks.len() != 1
        || array.inline_chunks[0].index != [0]
    {
        return None;
    }
    let mut document = doc.clone();
    document["chunk_grid"]["configuration"]["chunk_shape"] = serde_json::json!([TIME_CHUNK_STEPS]);
    let cut = chunks(&array.inline_chunks[0].data, width, TIME_CHUNK_STEPS, 0)
        .into_iter()
        .map(|(i, c)| (vec![i as u32], c))
        .collect();
    Some((document, cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_coordinates_keep_one_chunk_and_long_ones_are_cut() {
        assert_eq!(chunk_length(86), 86);
        assert_eq!(chunk_length(1000), 1000);
        assert_eq!(chunk_length(1001), 1000);
        let values: Vec<u8> = (0..2500u32).flat_map(|v| v.to_le_bytes()).collect();
        let cut = chunks(&values, 4, 1000, 0);
        assert_eq!(cut.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(cut.iter().all(|(_, c)| c.len() == 4000));
        assert_eq!(&cut[2].1[..4], &2000u32.to_le_bytes());
        assert_eq!(&cut[2].1[2000..], &[0u8; 2000][..]);
        // From the last stored chunk on: only it and the new ones.
        let tail: Vec<u8> = (2000..2001u32).flat_map(|v| v.to_le_bytes()).collect();
        let again = chunks(&tail, 4, 1000, 2);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].0, 2);
        // A coordinate of one chunk is its values, unpadded.
        assert_eq!(
            chunks(&values[..400], 4, 100, 0),
            vec![(0, values[..400].to_vec())]
        );
    }
}
