//! # floe-formats: NetCDF headers to virtual Zarr references
//!
//! Reads only the metadata of a NetCDF file through a ranged-read
//! [`Storage`](hdf5_reader::Storage) and returns, for every variable, its Zarr
//! v3 description and the byte ranges of its chunks ([`FileManifest`]).
//! No I/O of its own: callers pass a storage (a local file, an object store
//! behind a block cache, bytes in memory), which keeps this crate testable in
//! microseconds and usable from sync and async code alike.
//!
//! ```text
//! Storage ──▶ detect signature ──┬─ CDF-1/2/5 ──▶ netcdf3 (netcdf-reader header)
//!                                └─ HDF5 ───────▶ hdf5 (netcdf-reader names + hdf5-reader index walkers)
//!                                                       ──▶ FileManifest { variables, problems }
//! ```
//!
//! Raw view only: ISMIP6 normalization lives in `floe-group`.

#![warn(missing_docs)]

pub mod checks;
mod compound;
pub mod data;
mod error;
#[cfg(feature = "filters")]
pub mod filters;
mod hdf5;
mod model;
mod netcdf3;
pub mod values;
pub mod zarr_v3;

use std::sync::Arc;

pub use error::{FormatError, Result, CHANGED_SINCE_LISTED, OVER_READ_LIMIT};
pub use hdf5_reader::storage::{BytesStorage, DynStorage, Storage};
pub use model::{
    Attributes, ChunkRef, Codec, FileManifest, SourceFormat, StructField, VariableManifest,
    VariableProblem,
};

const HDF5_MAGIC: [u8; 8] = [0x89, b'H', b'D', b'F', 0x0D, 0x0A, 0x1A, 0x0A];

/// Detects the format from the first bytes; HDF5 may sit behind a user block
/// at 512, 1024, 2048, ... bytes.
pub fn detect_format(storage: &dyn Storage) -> Result<SourceFormat> {
    let len = storage.len();
    if len == 0 {
        return Err(FormatError::Empty);
    }
    let head = storage
        .read_range(0, len.min(8) as usize)
        .map_err(FormatError::from_hdf5)?;
    let head: &[u8] = head.as_ref();
    if head.len() >= 4 && &head[..3] == b"CDF" {
        return match head[3] {
            1 => Ok(SourceFormat::Netcdf3Classic),
            2 => Ok(SourceFormat::Netcdf3Offset64),
            5 => Ok(SourceFormat::Netcdf3Cdf5),
            v => Err(FormatError::Netcdf(format!("unknown CDF version byte {v}"))),
        };
    }
    if head.len() >= 4 && &head[..4] == b"\x89HDF" {
        if head.len() < 8 {
            return Err(FormatError::Truncated {
                expected: 8,
                actual: len,
            });
        }
        return Ok(SourceFormat::Hdf5);
    }
    let mut offset = 512u64;
    while offset.saturating_add(8) <= len {
        let magic = storage
            .read_range(offset, 8)
            .map_err(FormatError::from_hdf5)?;
        if magic.as_ref() == HDF5_MAGIC {
            return Ok(SourceFormat::Hdf5);
        }
        offset = offset.saturating_mul(2);
    }
    Err(FormatError::NotNetcdf)
}

/// Reads the headers of one NetCDF file and lists its variables as virtual
/// Zarr arrays. File-level corruption is an error; a variable that cannot be
/// virtualized is listed in [`FileManifest::problems`] instead.
pub fn read_file(storage: DynStorage) -> Result<FileManifest> {
    read_file_within(storage, floe_wire::limits())
}

/// [`read_file`] under the given limits: what a header may make floe read and
/// allocate. A variable over a limit is listed in [`FileManifest::problems`],
/// naming the limit.
pub fn read_file_within(storage: DynStorage, limits: &floe_wire::Limits) -> Result<FileManifest> {
    let mut manifest = read_unbounded_arrays(storage, limits)?;
    let (kept, over): (Vec<_>, Vec<_>) = std::mem::take(&mut manifest.variables)
        .into_iter()
        .partition(|v| elements(&v.shape) <= u128::from(limits.elements_per_array));
    manifest.variables = kept;
    for v in over {
        manifest.problems.push(VariableProblem {
            error: format!(
                "shape {:?}: {} elements, more than the {} an array may have (FLOE_MAX_ELEMENTS_PER_ARRAY)",
                v.shape,
                elements(&v.shape),
                limits.elements_per_array
            ),
            variable: v.variable,
        });
    }
    Ok(manifest)
}

/// The number of elements of an array of `shape`, without overflow.
fn elements(shape: &[u64]) -> u128 {
    shape
        .iter()
        .fold(1u128, |n, d| n.saturating_mul(u128::from(*d)))
}

fn read_unbounded_arrays(storage: DynStorage, limits: &floe_wire::Limits) -> Result<FileManifest> {
    let file_size = storage.len();
    let format = detect_format(storage.as_ref())?;
    match format {
        SourceFormat::Hdf5 => {
            let h = hdf5::variables(storage, file_size, limits)?;
            Ok(FileManifest {
                format,
                file_size,
                attributes: h.attributes.into(),
                variables: h.variables,
                problems: h.problems,
                unlimited: h.unlimited,
                groups: h.groups,
            })
        }
        _ => {
            let nc_format = match format {
                SourceFormat::Netcdf3Classic => netcdf_reader::NcFormat::Classic,
                SourceFormat::Netcdf3Offset64 => netcdf_reader::NcFormat::Offset64,
                _ => netcdf_reader::NcFormat::Cdf5,
            };
            let file = netcdf_reader::classic::ClassicFile::from_storage(storage, nc_format)
                .map_err(FormatError::from_netcdf)?;
            let (variables, problems) = netcdf3::variables(&file, file_size, limits)?;
            for v in &variables {
                for c in &v.chunks {
                    if c.offset
                        .checked_add(c.length)
                        .is_none_or(|end| end > file_size)
                    {
                        return Err(FormatError::Truncated {
                            expected: c.offset.saturating_add(c.length),
                            actual: file_size,
                        });
                    }
                }
            }
            let attributes = values::attributes_json(&file.root_group().attributes);
            Ok(FileManifest {
                format,
                file_size,
                attributes: attributes.into(),
                variables,
                problems,
                unlimited: unlimited_dimensions(file.root_group()),
                groups: Default::default(),
            })
        }
    }
}

/// The names of a group's unlimited (record) dimensions.
pub(crate) fn unlimited_dimensions(group: &netcdf_reader::NcGroup) -> Vec<String> {
    group
        .dimensions
        .iter()
        .filter(|d| d.is_unlimited)
        .map(|d| d.name.clone())
        .collect()
}

/// Convenience for tests and benches: reads a manifest from bytes in memory.
pub fn read_bytes(bytes: Vec<u8>) -> Result<FileManifest> {
    read_file(Arc::new(BytesStorage::new(bytes)))
}

/// Reads the values of small coordinate variables (time, x, y) and of their bounds
/// (`time_bnds`, flattened row by row) as `f64`.
/// Through the same cached storage as [`read_file`], this usually costs no
/// extra request. Missing names are absent from the result; a variable that
/// exists but cannot be read is an error naming it.
pub fn read_coordinate_values(
    storage: DynStorage,
    names: &[&str],
) -> Result<std::collections::BTreeMap<String, Vec<f64>>> {
    let file = netcdf_reader::NcFile::from_storage(storage).map_err(FormatError::from_netcdf)?;
    let mut out = std::collections::BTreeMap::new();
    for name in names {
        let Ok(var) = file.variable(name) else {
            continue;
        };
        // Bounded: coordinates are 1-D and small, their bounds 2-D (`time_bnds`: steps × 2).
        if var.ndim() > 2 || var.num_elements().unwrap_or(u64::MAX) > 10_000_000 {
            continue;
        }
        let values = file
            .read_variable_as_f64(name)
            .map_err(|e| FormatError::Netcdf(format!("cannot read coordinate {name}: {e}")))?;
        out.insert((*name).to_string(), values.iter().copied().collect());
    }
    Ok(out)
}
