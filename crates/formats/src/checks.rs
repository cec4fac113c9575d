//! What a header declares, checked against itself before floe uses it: libhdf5
//! and netCDF-C refuse what they cannot prove, and a reference built on a
//! header that does not hold would read wrong bytes without a word. Each check
//! returns the reason a variable cannot be referenced, and the reader leaves
//! that variable out by name. Pure: no I/O, tested in microseconds.

use crate::model::ChunkRef;

/// HDF5's `H5S_UNLIMITED` as a maximum dimension.
const UNLIMITED: u64 = u64::MAX;

/// Every dimension within its declared maximum (libhdf5 refuses to open a
/// dataspace whose size exceeds its maximum).
pub fn dimensions_within_maximum(shape: &[u64], max_dims: Option<&[u64]>) -> Result<(), String> {
    let Some(max) = max_dims else {
        return Ok(());
    };
    if max.len() != shape.len() {
        return Err(format!(
            "the dataspace declares {} dimensions and {} maximum dimensions",
            shape.len(),
            max.len()
        ));
    }
    for (axis, (&size, &limit)) in shape.iter().zip(max).enumerate() {
        if limit != UNLIMITED && size > limit {
            return Err(format!(
                "dimension {axis} has {size} elements, above its declared maximum {limit}"
            ));
        }
    }
    Ok(())
}

/// A chunk's element offsets, which a chunk index gives, on the chunk grid:
/// each a multiple of the chunk's size along its axis.
pub fn chunk_position(offsets: &[u64], chunk_dims: &[u32]) -> Result<Vec<u64>, String> {
    offsets
        .iter()
        .zip(chunk_dims)
        .map(|(&offset, &chunk)| {
            let chunk = u64::from(chunk);
            if offset % chunk == 0 {
                Ok(offset / chunk)
            } else {
                Err(format!(
                    "a chunk starts at element offsets {offsets:?}, not on the chunk grid {chunk_dims:?}"
                ))
            }
        })
        .collect()
}

/// A variable's chunks as its index listed them: no chunk listed twice, and
/// no two chunks sharing bytes (a crafted or corrupted index can point two
/// grid cells at one range, and both would read the same values).
pub fn distinct_chunks(chunks: &[ChunkRef]) -> Result<(), String> {
    let mut by_index: Vec<&ChunkRef> = chunks.iter().collect();
    by_index.sort_by(|a, b| a.index.cmp(&b.index));
    if let Some(pair) = by_index.windows(2).find(|w| w[0].index == w[1].index) {
        return Err(format!(
            "the chunk index lists chunk {:?} twice",
            pair[0].index
        ));
    }
    let mut by_offset: Vec<&ChunkRef> = chunks.iter().filter(|c| c.length > 0).collect();
    by_offset.sort_by_key(|c| c.offset);
    if let Some(pair) = by_offset
        .windows(2)
        .find(|w| w[0].offset.saturating_add(w[0].length) > w[1].offset)
    {
        return Err(format!(
            "chunks {:?} and {:?} overlap in the file (bytes {}..{} and {}..{})",
            pair[0].index,
            pair[1].index,
            pair[0].offset,
            pair[0].offset.saturating_add(pair[0].length),
            pair[1].offset,
            pair[1].offset.saturating_add(pair[1].length),
        ));
    }
    Ok(())
}

/// Uncompressed data (contiguous or compact) holds exactly its shape's bytes:
/// fewer would read past the variable, more means the header is not what the
/// data is.
pub fn exact_size(
    layout: &str,
    shape: &[u64],
    element_size: u32,
    stored: u64,
) -> Result<(), String> {
    let needed = shape
        .iter()
        .try_fold(u64::from(element_size), |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} overflows a byte count"))?;
    if stored != needed {
        return Err(format!(
            "{layout} data of {stored} bytes, where shape {shape:?} of {element_size}-byte elements needs {needed}"
        ));
    }
    Ok(())
}

/// Cells of the chunk grid of `shape` in chunks of `chunk_dims` (saturating:
/// a declared grid too large to count is too large).
pub fn grid_cells(shape: &[u64], chunk_dims: &[u32]) -> u64 {
    shape
        .iter()
        .zip(chunk_dims)
        .map(|(&size, &chunk)| size.div_ceil(u64::from(chunk.max(1))))
        .fold(1u64, u64::saturating_mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(index: &[u64], offset: u64, length: u64) -> ChunkRef {
        ChunkRef {
            index: index.to_vec(),
            offset,
            length,
        }
    }

    #[test]
    fn grid_cells_count_partial_chunks_and_saturate() {
        assert_eq!(grid_cells(&[10, 7], &[5, 3]), 2 * 3);
        assert_eq!(grid_cells(&[], &[]), 1);
        assert_eq!(grid_cells(&[u64::MAX, u64::MAX], &[1, 1]), u64::MAX);
    }

    #[test]
    fn a_dimension_above_its_maximum_is_named() {
        assert!(dimensions_within_maximum(&[10, 4], Some(&[UNLIMITED, 4])).is_ok());
        assert!(dimensions_within_maximum(&[10], None).is_ok());
        let err = dimensions_within_maximum(&[10, 5], Some(&[UNLIMITED, 4])).expect_err("above");
        assert!(
            err.contains("dimension 1 has 5 elements, above its declared maximum 4"),
            "{err}"
        );
        assert!(dimensions_within_maximum(&[1], Some(&[1, 1])).is_err());
    }

    #[test]
    fn chunk_offsets_off_the_grid_are_named() {
        assert_eq!(chunk_position(&[20, 0], &[10, 4]), Ok(vec![2, 0]));
        let err = chunk_position(&[15, 0], &[10, 4]).expect_err("off grid");
        assert!(err.contains("not on the chunk grid"), "{err}");
    }

    #[test]
    fn a_chunk_listed_twice_or_sharing_bytes_is_named() {
        let good = [
            chunk(&[0], 100, 50),
            chunk(&[1], 150, 50),
            chunk(&[2], 0, 0),
        ];
        assert!(distinct_chunks(&good).is_ok());
        let twice = [chunk(&[0], 100, 50), chunk(&[0], 300, 50)];
        assert!(distinct_chunks(&twice)
            .expect_err("twice")
            .contains("[0] twice"));
        let overlap = [chunk(&[0], 100, 50), chunk(&[1], 149, 50)];
        let err = distinct_chunks(&overlap).expect_err("overlap");
        assert!(
            err.contains("overlap in the file (bytes 100..150 and 149..199)"),
            "{err}"
        );
    }

    #[test]
    fn uncompressed_data_must_hold_its_shape_exactly() {
        assert!(exact_size("contiguous", &[3, 4], 4, 48).is_ok());
        assert!(exact_size("compact", &[], 8, 8).is_ok());
        let err = exact_size("compact", &[3, 4], 4, 40).expect_err("short");
        assert!(
            err.contains(
                "compact data of 40 bytes, where shape [3, 4] of 4-byte elements needs 48"
            ),
            "{err}"
        );
        assert!(exact_size("contiguous", &[u64::MAX, 2], 8, 0).is_err());
    }
}
