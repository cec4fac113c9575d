//! NetCDF3 (CDF-1, CDF-2, CDF-5) variables as byte ranges.
//!
//! The header is parsed by `netcdf-reader`; this module only turns its
//! variable table into references. A fixed-size variable is one contiguous
//! range at its `begin` offset. A record variable is interleaved with the other
//! record variables, so each record is its own range: record `r` starts at
//! `begin + r * stride`, where the stride is the sum of all record variables'
//! padded per-record sizes (unpadded when there is a single record variable).

use netcdf_reader::classic::ClassicFile;
use netcdf_reader::NcVariable;
use serde_json::Value;

use crate::model::{ChunkRef, Codec, VariableManifest, VariableProblem};
use crate::values::{attributes_json, netcdf_element_type, Endian};
use crate::{FormatError, Result};

/// Variables and problems of a classic file of `file_size` bytes.
pub(crate) fn variables(
    file: &ClassicFile,
    file_size: u64,
    limits: &floe_wire::Limits,
) -> Result<(Vec<VariableManifest>, Vec<VariableProblem>)> {
    let root = file.root_group();
    let header = header_floor(file.format(), root);
    let numrecs = file.numrecs();
    let stride = netcdf_reader::classic::data::compute_record_stride(&root.variables)
        .map_err(FormatError::from_netcdf)?;
    // The record count is the header's word: check that the last record lies
    // inside the file before making one reference per record (a damaged header
    // of a few hundred bytes can claim billions of records).
    for var in root
        .variables
        .iter()
        .filter(|v| v.is_record_var && numrecs > 0)
    {
        let holds_data = var.dimensions.iter().skip(1).all(|d| d.size > 0);
        // Records of a variable that holds data take room and do not overlap:
        // with the end check below this bounds the count by the file's size.
        if holds_data && (var.record_size == 0 || stride < var.record_size) {
            return Err(FormatError::Netcdf(format!(
                "variable {}: records of {} bytes at a stride of {stride} bytes",
                var.name, var.record_size
            )));
        }
        let end = (numrecs - 1)
            .checked_mul(stride)
            .and_then(|o| o.checked_add(var.data_offset))
            .and_then(|o| o.checked_add(var.record_size));
        if end.is_none_or(|end| end > file_size) {
            return Err(FormatError::Truncated {
                expected: end.unwrap_or(u64::MAX),
                actual: file_size,
            });
        }
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    // One reference per record: the count is bounded by the file's size above,
    // and by the same per-file budget as an HDF5 file's chunks here.
    let mut references = 0u64;
    for var in &root.variables {
        let holds_data = var.dimensions.iter().all(|d| d.size > 0 || d.is_unlimited);
        let wanted = if var.is_record_var { numrecs } else { 1 };
        if holds_data && references.saturating_add(wanted) > limits.chunks_per_file {
            problems.push(VariableProblem {
                variable: var.name.clone(),
                error: format!(
                    "{wanted} references, which would take the file's to {}, more than the {} floe reads from one file (FLOE_MAX_CHUNKS_PER_FILE)",
                    references.saturating_add(wanted),
                    limits.chunks_per_file
                ),
            });
            continue;
        }
        references = references.saturating_add(wanted);
        if holds_data && var.data_offset < header {
            problems.push(VariableProblem {
                variable: var.name.clone(),
                error: format!(
                    "its data would begin at byte {}, inside the header (at least {header} bytes)",
                    var.data_offset
                ),
            });
            continue;
        }
        match variable(var, numrecs, stride) {
            Ok(v) => out.push(v),
            Err(error) => problems.push(VariableProblem {
                variable: var.name.clone(),
                error,
            }),
        }
    }
    Ok((out, problems))
}

fn variable(var: &NcVariable, numrecs: u64, stride: u64) -> Result<VariableManifest, String> {
    let element = netcdf_element_type(&var.dtype, Endian::Big)
        .ok_or_else(|| format!("unsupported NetCDF3 type {:?}", var.dtype))?;
    let shape: Vec<u64> = var.dimensions.iter().map(|d| d.size).collect();
    let dimensions = var.dimensions.iter().map(|d| d.name.clone()).collect();
    let attributes = attributes_json(&var.attributes);
    let fill_value = match var
        .attribute("_FillValue")
        .map(|a| crate::values::attr_json(&a.value))
    {
        Some(v @ (Value::Number(_) | Value::String(_))) => v,
        _ => element.netcdf_default_fill(),
    };
    let empty = shape.contains(&0);
    let (chunk_shape, chunks, layout) = if var.is_record_var {
        let mut chunk_shape = shape.clone();
        if let Some(first) = chunk_shape.first_mut() {
            *first = 1;
        }
        let zeros = vec![0u64; shape.len().saturating_sub(1)];
        let chunks = if empty {
            Vec::new()
        } else {
            (0..numrecs)
                .map(|r| ChunkRef {
                    index: std::iter::once(r).chain(zeros.iter().copied()).collect(),
                    offset: var.data_offset + r * stride,
                    length: var.record_size,
                })
                .collect()
        };
        (chunk_shape, chunks, "record")
    } else {
        let length = shape
            .iter()
            .try_fold(u64::from(element.size), |acc, d| acc.checked_mul(*d))
            .ok_or_else(|| "variable size overflows".to_string())?;
        let chunks = if empty {
            Vec::new()
        } else {
            vec![ChunkRef {
                index: vec![0; shape.len()],
                offset: var.data_offset,
                length,
            }]
        };
        (shape.clone(), chunks, "contiguous")
    };
    Ok(VariableManifest {
        variable: var.name.clone(),
        dtype: element.typestr(),
        fields: Vec::new(),
        shape,
        chunk_shape,
        dimensions,
        fill_value,
        codecs: vec![bytes_codec(element.size, Endian::Big)].into(),
        attributes: attributes.into(),
        chunks,
        inline_data: None,
        layout: layout.to_string(),
    })
}

/// The Zarr v3 `bytes` codec; single-byte types carry no endianness.
pub(crate) fn bytes_codec(size: u32, endian: Endian) -> Codec {
    if size == 1 {
        Codec::new("bytes", [])
    } else {
        let e = if endian == Endian::Little {
            "little"
        } else {
            "big"
        };
        Codec::new("bytes", [("endian", Value::from(e))])
    }
}

/// The fewest bytes the header of a classic file can take, from what was
/// parsed out of it (CDF-1's 32-bit counts and offsets, 64-bit where CDF-2 and
/// CDF-5 widen them; names and values padded to 4 bytes). A character
/// attribute counts as the text the reader kept, which may be shorter than
/// stored, so this is a floor, never more than the real header: a `begin`
/// below it points into the header, whose bytes would read as data.
pub(crate) fn header_floor(format: netcdf_reader::NcFormat, group: &netcdf_reader::NcGroup) -> u64 {
    use netcdf_reader::{NcAttrValue as A, NcFormat};
    let wide_counts = format == NcFormat::Cdf5;
    let count = if wide_counts { 8 } else { 4 };
    let offset = if format == NcFormat::Classic { 4 } else { 8 };
    let padded = |n: u64| n.div_ceil(4) * 4;
    let name = |s: &str| count + padded(s.len() as u64);
    let list_header = 4 + count;
    let attribute = |a: &netcdf_reader::NcAttribute| {
        let values = match &a.value {
            A::Bytes(v) => v.len() as u64,
            A::UBytes(v) => v.len() as u64,
            A::Chars(s) => s.len() as u64,
            A::Shorts(v) => 2 * v.len() as u64,
            A::UShorts(v) => 2 * v.len() as u64,
            A::Ints(v) => 4 * v.len() as u64,
            A::UInts(v) => 4 * v.len() as u64,
            A::Floats(v) => 4 * v.len() as u64,
            A::Doubles(v) => 8 * v.len() as u64,
            A::Int64s(v) => 8 * v.len() as u64,
            A::UInt64s(v) => 8 * v.len() as u64,
            A::Strings(_) | A::UserDefined { .. } => 0,
        };
        name(&a.name) + 4 + count + padded(values)
    };
    let attributes =
        |list: &[netcdf_reader::NcAttribute]| list_header + list.iter().map(attribute).sum::<u64>();
    let dimensions: u64 = group.dimensions.iter().map(|d| name(&d.name) + count).sum();
    let variables: u64 = group
        .variables
        .iter()
        .map(|v| {
            name(&v.name)
                + count
                + count * v.dimensions.len() as u64
                + attributes(&v.attributes)
                + 4
                + count
                + offset
        })
        .sum();
    4 + count + list_header + dimensions + attributes(&group.attributes) + list_header + variables
}
