//! Values of a variable read by the readers' own data path, for `producer
//! verify`'s decoded comparison.
//!
//! floe never decodes chunks to virtualize a file. To prove that the codec
//! pipeline floe *describes* for an array decodes to the right values, verify
//! compares what a Zarr reader makes of a stored chunk with what the NetCDF
//! readers make of the same region: `netcdf-reader` for NetCDF-3, and
//! `hdf5-reader`'s own chunk index walk and filter pipeline for NetCDF-4. Those
//! paths share nothing with floe's header code but the file.
//!
//! [`region_of_range`] is the pure half: which region of which variable a
//! referenced byte range holds. [`read_region`] reads that region's values.

use hdf5_reader::messages::datatype::Datatype;
use hdf5_reader::ByteOrder;
use netcdf_reader::{NcFile, NcSliceInfo, NcSliceInfoElem};

use crate::model::{FileManifest, VariableManifest};
use crate::{DynStorage, FormatError, Result};

pub use hdf5_reader::FilterRegistry;

/// A hyperslab of one variable of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Variable name (path for variables in sub-groups).
    pub variable: String,
    /// First element, per dimension.
    pub origin: Vec<u64>,
    /// Elements per dimension, clipped to the variable's shape.
    pub extent: Vec<u64>,
}

/// The region of a variable whose stored bytes are exactly `offset..offset + length`
/// of the file: one of its chunks, or one piece of an uncompressed chunk split
/// along its leading dimensions (floe splits contiguous data per time step).
/// Variable `prefer` is tried first (the array's name), so that a file whose
/// variables share ranges still resolves to the right one. `None` when no
/// variable's chunk holds the range as a hyperslab.
pub fn region_of_range(
    manifest: &FileManifest,
    offset: u64,
    length: u64,
    prefer: &str,
) -> Option<Region> {
    let (first, rest): (Vec<_>, Vec<_>) = manifest
        .variables
        .iter()
        .partition(|v| v.variable == prefer);
    first
        .into_iter()
        .chain(rest)
        .find_map(|v| region_in_variable(v, offset, length))
}

fn region_in_variable(v: &VariableManifest, offset: u64, length: u64) -> Option<Region> {
    let rank = v.shape.len();
    if v.chunk_shape.len() != rank || v.chunk_shape.contains(&0) {
        return None;
    }
    let chunk = v.chunks.iter().find(|c| {
        c.offset <= offset
            && c.offset
                .checked_add(c.length)
                .zip(offset.checked_add(length))
                .is_some_and(|(chunk_end, end)| end <= chunk_end)
    })?;
    let chunk_origin: Vec<u64> = chunk
        .index
        .iter()
        .zip(&v.chunk_shape)
        .map(|(i, c)| i.saturating_mul(*c))
        .collect();
    let clip = |origin: &[u64], extent: &[u64]| -> Vec<u64> {
        origin
            .iter()
            .zip(extent)
            .zip(&v.shape)
            .map(|((o, e), s)| (*e).min(s.saturating_sub(*o)))
            .collect()
    };
    if chunk.offset == offset && chunk.length == length {
        return Some(Region {
            variable: v.variable.clone(),
            extent: clip(&chunk_origin, &v.chunk_shape),
            origin: chunk_origin,
        });
    }
    // A piece of a chunk: only uncompressed bytes can be split, and the piece
    // must be whole elements forming a hyperslab of the chunk.
    if !v.is_uncompressed() {
        return None;
    }
    let item = v.item_size().filter(|s| *s > 0)?;
    let (skip, count) = (offset - chunk.offset, length);
    if !skip.is_multiple_of(item) || !count.is_multiple_of(item) {
        return None;
    }
    let (first, count) = (skip / item, count / item);
    let (piece_origin, piece_extent) = hyperslab_of_run(&v.chunk_shape, first, count)?;
    let origin: Vec<u64> = chunk_origin
        .iter()
        .zip(&piece_origin)
        .map(|(c, p)| c + p)
        .collect();
    Some(Region {
        variable: v.variable.clone(),
        extent: clip(&origin, &piece_extent),
        origin,
    })
}

/// The hyperslab (origin, extent) of a box of `shape` that elements
/// `first..first + count` fill in C order, if they fill one: whole rows of
/// the trailing dimensions, `m` consecutive along one dimension.
fn hyperslab_of_run(shape: &[u64], first: u64, count: u64) -> Option<(Vec<u64>, Vec<u64>)> {
    if count == 0 {
        return None;
    }
    let rank = shape.len();
    for k in (0..rank).rev() {
        let tail: u64 = shape[k + 1..].iter().product();
        if !count.is_multiple_of(tail) || !first.is_multiple_of(tail) {
            continue;
        }
        let m = count / tail;
        let start_k = (first / tail) % shape[k];
        if start_k + m > shape[k] {
            continue;
        }
        let mut origin = vec![0; rank];
        let mut rest = first / tail;
        for d in (0..=k).rev() {
            origin[d] = rest % shape[d];
            rest /= shape[d];
        }
        if rest != 0 {
            return None;
        }
        let mut extent = vec![1; rank];
        extent[k] = m;
        extent[k + 1..].copy_from_slice(&shape[k + 1..]);
        return Some((origin, extent));
    }
    None
}

/// Reads one region's values as `f64`, in C order, through the readers' own
/// data path (no unpacking or masking: the stored numbers): `hdf5-reader`'s
/// chunk index walk and filter pipeline for NetCDF-4, `netcdf-reader` for
/// NetCDF-3. `filters` adds HDF5 filter implementations to the reader's
/// built-in deflate, shuffle and fletcher32. Enums read as their base integers.
pub fn read_region(
    storage: DynStorage,
    region: &Region,
    filters: Option<FilterRegistry>,
) -> Result<Vec<f64>> {
    let ranges = || {
        region
            .origin
            .iter()
            .zip(&region.extent)
            .map(|(o, e)| (*o, o + e))
    };
    let failed =
        |e: &dyn std::fmt::Display| FormatError::Netcdf(format!("{}: {e}", region.variable));
    if crate::detect_format(storage.as_ref())? == crate::SourceFormat::Hdf5 {
        let mut options = hdf5_reader::OpenOptions::default();
        if let Some(filters) = filters {
            options = options.with_filter_registry(filters);
        }
        let file = hdf5_reader::Hdf5File::from_storage_with_options(storage, options)
            .map_err(FormatError::from_hdf5)?;
        let dataset = file.dataset(&region.variable).map_err(|e| failed(&e))?;
        let selection = hdf5_reader::SliceInfo {
            selections: ranges()
                .map(|(start, end)| hdf5_reader::SliceInfoElem::Slice {
                    start,
                    end,
                    step: 1,
                })
                .collect(),
        };
        let values = dataset
            .read_slice::<Number>(&selection)
            .map_err(|e| failed(&e))?;
        return Ok(values.iter().map(|n| n.0).collect());
    }
    let file = NcFile::from_storage(storage).map_err(FormatError::from_netcdf)?;
    let selection = NcSliceInfo {
        selections: ranges()
            .map(|(start, end)| NcSliceInfoElem::Slice {
                start,
                end,
                step: 1,
            })
            .collect(),
    };
    let values = file
        .read_variable_slice_as_f64(&region.variable, &selection)
        .map_err(|e| failed(&e))?;
    Ok(values.iter().copied().collect())
}

/// One HDF5 number of any integer or float type, or of an enum over one, as
/// `f64` (exact up to 32 bits, and for 64-bit integers up to 2^53).
#[derive(Debug, Clone, Copy)]
struct Number(f64);

impl hdf5_reader::H5Type for Number {
    fn hdf5_type() -> Datatype {
        Datatype::FloatingPoint {
            size: 8,
            byte_order: ByteOrder::LittleEndian,
        }
    }

    fn from_bytes(bytes: &[u8], dtype: &Datatype) -> hdf5_reader::error::Result<Self> {
        let wrong = || hdf5_reader::error::Error::TypeMismatch {
            expected: "an integer, float or enum type".into(),
            actual: format!("{dtype:?}"),
        };
        let (size, order) = match dtype {
            Datatype::Enum { base, .. } => return Number::from_bytes(bytes, base),
            Datatype::FixedPoint {
                size, byte_order, ..
            }
            | Datatype::FloatingPoint {
                size, byte_order, ..
            } => (*size as usize, *byte_order),
            _ => return Err(wrong()),
        };
        if !matches!(size, 1 | 2 | 4 | 8) || bytes.len() < size {
            return Err(wrong());
        }
        let mut raw = [0u8; 8];
        raw[..size].copy_from_slice(&bytes[..size]);
        if order == ByteOrder::BigEndian {
            raw[..size].reverse();
        }
        let bits = u64::from_le_bytes(raw);
        let shift = 64 - 8 * size as u32;
        Ok(Number(match dtype {
            Datatype::FloatingPoint { size: 4, .. } => f64::from(f32::from_bits(bits as u32)),
            Datatype::FloatingPoint { size: 8, .. } => f64::from_bits(bits),
            Datatype::FixedPoint { signed: true, .. } => (((bits << shift) as i64) >> shift) as f64,
            Datatype::FixedPoint { signed: false, .. } => bits as f64,
            _ => return Err(wrong()),
        }))
    }

    fn element_size(dtype: &Datatype) -> usize {
        match dtype {
            Datatype::Enum { base, .. } => Number::element_size(base),
            Datatype::FixedPoint { size, .. } | Datatype::FloatingPoint { size, .. } => {
                *size as usize
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChunkRef, SourceFormat};

    fn variable(
        name: &str,
        shape: &[u64],
        chunk: &[u64],
        refs: &[(&[u64], u64, u64)],
    ) -> VariableManifest {
        VariableManifest {
            variable: name.into(),
            dtype: "<f4".into(),
            fields: Vec::new(),
            shape: shape.to_vec(),
            chunk_shape: chunk.to_vec(),
            dimensions: vec![],
            fill_value: serde_json::Value::Null,
            codecs: vec![crate::Codec::new("bytes", [])].into(),
            attributes: Default::default(),
            chunks: refs
                .iter()
                .map(|(i, o, l)| ChunkRef {
                    index: i.to_vec(),
                    offset: *o,
                    length: *l,
                })
                .collect(),
            inline_data: None,
            layout: "chunked".into(),
        }
    }

    fn manifest(variables: Vec<VariableManifest>) -> FileManifest {
        FileManifest {
            format: SourceFormat::Hdf5,
            file_size: 1 << 20,
            attributes: Default::default(),
            variables,
            problems: vec![],
            unlimited: Vec::new(),
            groups: Default::default(),
        }
    }

    #[test]
    fn a_whole_chunk_is_its_grid_box_clipped_at_the_edge() {
        // (5, 4, 4) in (2, 4, 4) chunks: the last chunk holds one step, stored padded.
        let v = variable(
            "lithk",
            &[5, 4, 4],
            &[2, 4, 4],
            &[(&[0, 0, 0], 1000, 128), (&[2, 0, 0], 2000, 128)],
        );
        let m = manifest(vec![v]);
        let r = region_of_range(&m, 2000, 128, "lithk").expect("in test");
        assert_eq!((r.origin, r.extent), (vec![4, 0, 0], vec![1, 4, 4]));
        assert!(
            region_of_range(&m, 1000, 127, "lithk").is_none(),
            "not whole elements"
        );
    }

    #[test]
    fn a_step_of_contiguous_data_is_one_plane() {
        // Contiguous (3, 2, 5) f4 at 4096: step 1 is bytes 4096 + 40 .. + 40.
        let mut v = variable("acabf", &[3, 2, 5], &[3, 2, 5], &[(&[0, 0, 0], 4096, 120)]);
        v.layout = "contiguous".into();
        let m = manifest(vec![v.clone()]);
        let r = region_of_range(&m, 4096 + 40, 40, "acabf").expect("in test");
        assert_eq!((r.origin, r.extent), (vec![1, 0, 0], vec![1, 2, 5]));
        // Half a plane is still a hyperslab (one row); a ragged run is not.
        let r = region_of_range(&m, 4096 + 40, 20, "acabf").expect("in test");
        assert_eq!((r.origin, r.extent), (vec![1, 0, 0], vec![1, 1, 5]));
        assert!(region_of_range(&m, 4096 + 44, 40, "acabf").is_none());
        // Compressed data is never split.
        std::sync::Arc::make_mut(&mut v.codecs).push(crate::Codec::new("numcodecs.zlib", []));
        assert!(region_of_range(&manifest(vec![v]), 4096 + 40, 40, "acabf").is_none());
    }

    #[test]
    fn the_preferred_variable_wins_and_others_are_searched() {
        let a = variable("a", &[4], &[4], &[(&[0], 100, 16)]);
        let b = variable("b", &[4], &[4], &[(&[0], 100, 16)]);
        let m = manifest(vec![a, b]);
        assert_eq!(
            region_of_range(&m, 100, 16, "b").expect("in test").variable,
            "b"
        );
        assert_eq!(
            region_of_range(&m, 100, 16, "c").expect("in test").variable,
            "a"
        );
        assert!(region_of_range(&m, 200, 16, "a").is_none());
    }

    #[test]
    fn numbers_of_every_width_order_and_enum_read_exactly() {
        use hdf5_reader::H5Type;
        let int = |size, signed, byte_order| Datatype::FixedPoint {
            size,
            signed,
            byte_order,
        };
        let read =
            |bytes: &[u8], dtype: &Datatype| Number::from_bytes(bytes, dtype).expect("in test").0;
        assert_eq!(
            read(&[0xff, 0xfe], &int(2, true, ByteOrder::BigEndian)),
            -2.0
        );
        assert_eq!(
            read(&[0xfe, 0xff], &int(2, false, ByteOrder::LittleEndian)),
            65534.0
        );
        assert_eq!(
            read(&[0x80], &int(1, true, ByteOrder::LittleEndian)),
            -128.0
        );
        let float = Datatype::FloatingPoint {
            size: 4,
            byte_order: ByteOrder::BigEndian,
        };
        assert_eq!(read(&1.5f32.to_be_bytes(), &float), 1.5);
        let flags = Datatype::Enum {
            base: Box::new(int(1, true, ByteOrder::LittleEndian)),
            members: vec![],
        };
        assert_eq!((read(&[1], &flags), Number::element_size(&flags)), (1.0, 1));
        let text = Datatype::Opaque {
            size: 4,
            tag: String::new(),
        };
        assert!(Number::from_bytes(&[0; 4], &text).is_err());
    }

    #[test]
    fn runs_that_are_hyperslabs() {
        assert_eq!(
            hyperslab_of_run(&[3, 2, 5], 10, 10),
            Some((vec![1, 0, 0], vec![1, 2, 5]))
        );
        assert_eq!(
            hyperslab_of_run(&[3, 2, 5], 0, 30),
            Some((vec![0, 0, 0], vec![3, 2, 5]))
        );
        assert_eq!(
            hyperslab_of_run(&[3, 2, 5], 12, 3),
            Some((vec![1, 0, 2], vec![1, 1, 3]))
        );
        assert_eq!(hyperslab_of_run(&[3, 2, 5], 13, 3), None);
        assert_eq!(hyperslab_of_run(&[3, 2, 5], 0, 0), None);
    }
}
