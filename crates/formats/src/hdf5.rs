//! NetCDF-4 / HDF5 variables as byte ranges.
//!
//! `netcdf-reader` gives the NetCDF view (names, dimension names, decoded
//! attributes); `hdf5-reader` parses the HDF5 structures. What neither exposes
//! is written here, on their public low-level API, because no kept library
//! returns chunk *addresses* (they decode chunks instead):
//! - the layout and filter pipeline are read from the object header's messages
//!   (`Dataset` keeps them private);
//! - the chunk index walker is chosen from the layout message, one per index
//!   type (B-tree v1, single chunk, implicit, fixed array, extensible array,
//!   B-tree v2);
//! - old layout versions carry a trailing element-size chunk dimension, dropped;
//! - unfiltered chunks that come back with size 0 get their size computed;
//! - addresses are relative to the superblock, so a user block's base address
//!   is added back;
//! - external raw storage and unknown filters are reported per variable;
//! - every range is bounds-checked against the object size, which catches
//!   truncated files that still open.

use hdf5_reader::btree_v1::BTreeV1Key;
use hdf5_reader::chunk_index::ChunkEntry;
use hdf5_reader::io::Cursor;
use hdf5_reader::messages::layout::{ChunkIndexing, DataLayout};
use hdf5_reader::messages::HdfMessage;
use hdf5_reader::storage::DynStorage;
use hdf5_reader::{Datatype, Hdf5File, OpenOptions};
use netcdf_reader::nc4::groups::build_root_group;
use netcdf_reader::{NcGroup, NcMetadataMode, NcVariable};
use serde_json::{Map, Value};

use crate::checks;
use crate::compound::{field_path, FieldType, Member, Record};
use crate::model::{ChunkRef, Codec, StructField, VariableManifest, VariableProblem};
use crate::netcdf3::bytes_codec;
use crate::values::{
    attr_json, attributes_json, encode_vlen_utf8, ElementType, Endian, Kind, VLEN_STRING_TYPESTR,
};
use crate::{FormatError, Result};
use floe_wire::Limits;

pub(crate) struct Hdf5Variables {
    pub attributes: Map<String, Value>,
    pub variables: Vec<VariableManifest>,
    pub problems: Vec<VariableProblem>,
    pub unlimited: Vec<String>,
    pub groups: std::collections::BTreeMap<String, crate::Attributes>,
}

fn open_options() -> OpenOptions {
    // We never decode chunk data: no chunk cache. Header size stays bounded.
    OpenOptions::default()
        .with_chunk_cache_bytes(0)
        .with_max_object_header_bytes(4 * 1024 * 1024)
}

pub(crate) fn variables(
    storage: DynStorage,
    file_size: u64,
    limits: &Limits,
) -> Result<Hdf5Variables> {
    let h5 = Hdf5File::from_storage_with_options(storage, open_options())
        .map_err(FormatError::from_hdf5)?;
    let sb = h5.superblock();
    // The end-of-file address counts the user block too (checked against files
    // with a 512-byte user block written by HDF5 1.10 and 2.0).
    let expected = sb.eof_address;
    if !Cursor::is_undefined_offset(expected, sb.offset_size) && expected > file_size {
        return Err(FormatError::Truncated {
            expected,
            actual: file_size,
        });
    }
    // The NetCDF view is built on the same parsed HDF5 file (opening an `NcFile`
    // would parse the superblock and object headers a second time). Strict
    // NetCDF-4 first; files written by plain HDF5 tools get netCDF-C's phony
    // dimension names.
    check_group_tree(&h5)?;
    let strict_first = if is_plain_hdf5(&h5) {
        NcMetadataMode::Lossy
    } else {
        NcMetadataMode::Strict
    };
    let root = match build_root_group(&h5, strict_first) {
        Ok(root) => root,
        Err(_) => build_root_group(&h5, NcMetadataMode::Lossy).map_err(FormatError::from_netcdf)?,
    };
    let root = &root;
    let ctx = Ctx {
        h5: &h5,
        base: sb.base_address,
        offset_size: sb.offset_size,
        length_size: sb.length_size,
        file_size,
        limits,
        chunks_read: std::cell::Cell::new(0),
    };
    let mut out = Hdf5Variables {
        attributes: attributes_json(&root.attributes),
        variables: Vec::new(),
        problems: Vec::new(),
        unlimited: crate::unlimited_dimensions(root),
        groups: Default::default(),
    };
    walk_group(&ctx, root, "", &mut out)?;
    name_unlisted_datasets(&h5, &mut out)?;
    // netcdf-reader reads plain HDF5 (no dimension scales) in lossy mode and
    // names every dimension `dim_{size}`; that pattern everywhere marks it.
    let all_phony = out.variables.iter().all(|v| {
        v.dimensions.iter().zip(&v.shape).all(|(d, s)| {
            let plain = format!("dim_{s}");
            *d == plain
                || d.strip_prefix(&format!("{plain}_"))
                    .is_some_and(|k| k.parse::<u32>().is_ok())
        })
    });
    if all_phony {
        name_phony_dimensions(&mut out.variables);
    }
    Ok(out)
}

/// Names each HDF5 dataset that the NetCDF view does not list (netcdf-reader
/// skips types it cannot represent, such as object references) as a problem,
/// so that no dataset of the file vanishes without a word. Dimension scales
/// that are only a netCDF dimension are not data. The group tree was checked
/// by [`check_group_tree`] (no cycle, bounded), so this walk ends.
fn name_unlisted_datasets(h5: &Hdf5File, out: &mut Hdf5Variables) -> Result<()> {
    let listed: std::collections::HashSet<String> = out
        .variables
        .iter()
        .map(|v| v.variable.clone())
        .chain(out.problems.iter().map(|p| p.variable.clone()))
        .collect();
    let mut stack = vec![(
        h5.root_group().map_err(FormatError::from_hdf5)?,
        String::new(),
    )];
    while let Some((group, prefix)) = stack.pop() {
        let (groups, datasets) = group.members().map_err(FormatError::from_hdf5)?;
        for dataset in datasets {
            let path = format!("{prefix}{}", dataset.name());
            if listed.contains(&path) || is_dimension_only(&dataset) {
                continue;
            }
            // netcdf-reader leaves out records with a reference field: say what is wrong.
            let why = match Elements::of(dataset.dtype()) {
                Err(reason) if matches!(dataset.dtype(), Datatype::Compound { .. }) => {
                    format!(": {reason}")
                }
                _ => String::new(),
            };
            out.problems.push(VariableProblem {
                variable: path,
                error: format!(
                    "an HDF5 dataset that is not a NetCDF variable ({} data), which floe cannot reference{why}",
                    type_class(dataset.dtype())
                ),
            });
        }
        for sub in groups {
            let prefix = format!("{prefix}{}/", sub.name());
            stack.push((sub, prefix));
        }
    }
    Ok(())
}

/// A dimension scale that netCDF-C wrote for a dimension with no coordinate
/// variable: its `NAME` says so.
fn is_dimension_only(dataset: &hdf5_reader::Dataset) -> bool {
    dataset
        .attribute("NAME")
        .and_then(|a| a.read_string())
        .is_ok_and(|name| name.starts_with("This is a netCDF dimension but not a netCDF variable"))
}

/// The kind of an HDF5 type, in a word or two, for a message.
fn type_class(dtype: &Datatype) -> &'static str {
    match dtype {
        Datatype::Reference { .. } => "object or region reference",
        Datatype::Compound { .. } => "compound",
        Datatype::VarLen { .. } => "variable-length",
        Datatype::Opaque { .. } => "opaque",
        Datatype::Array { .. } => "array-typed",
        Datatype::Enum { .. } => "enumerated",
        Datatype::String { .. } => "string",
        _ => "numeric",
    }
}

/// Deepest group nesting accepted; netCDF-C files nest a few levels at most.
const MAX_GROUP_DEPTH: usize = 32;

/// Most groups visited: a file's groups, counted once per path to them.
const MAX_GROUPS: usize = 10_000;

/// Rejects a group tree with a cycle (a group linked below itself) or absurd
/// depth before `netcdf-reader` walks it: its metadata walk recurses without a
/// visited set and overflows the stack on such a file (found by the fuzz
/// target, `crates/formats/tests/corpus/fuzz_group_cycle.h5`).
fn check_group_tree(h5: &Hdf5File) -> Result<()> {
    let root = h5.root_group().map_err(FormatError::from_hdf5)?;
    // Ancestors of the group being visited; a depth-first stack keeps them valid.
    let mut ancestors: Vec<u64> = Vec::new();
    let mut stack = vec![(root, 0usize)];
    let mut visited = 0usize;
    while let Some((group, depth)) = stack.pop() {
        visited += 1;
        if visited > MAX_GROUPS {
            return Err(FormatError::Hdf5(format!(
                "more than {MAX_GROUPS} groups (hard links repeating a subtree?)"
            )));
        }
        ancestors.truncate(depth);
        ancestors.push(group.address());
        for child in group.groups().map_err(FormatError::from_hdf5)? {
            if ancestors.contains(&child.address()) {
                return Err(FormatError::Hdf5(format!(
                    "group {:?} contains itself (a cycle in the group tree)",
                    child.name()
                )));
            }
            if depth + 1 >= MAX_GROUP_DEPTH {
                return Err(FormatError::Hdf5(format!(
                    "groups nest deeper than {MAX_GROUP_DEPTH} levels at {:?}",
                    child.name()
                )));
            }
            stack.push((child, depth + 1));
        }
    }
    Ok(())
}

/// True when an HDF5 file carries none of NetCDF-4's markers (no `_NCProperties`
/// root attribute, no dimension-scale dataset in the root group): the rule
/// `netcdf-reader` applies when it opens a file itself (private there).
fn is_plain_hdf5(h5: &Hdf5File) -> bool {
    let Ok(root) = h5.root_group() else {
        return false;
    };
    if root.attribute("_NCProperties").is_ok() {
        return false;
    }
    let Ok(datasets) = root.datasets() else {
        return false;
    };
    !datasets.iter().any(|ds| {
        ds.attribute("CLASS")
            .ok()
            .and_then(|a| a.read_string().ok())
            .is_some_and(|c| c == "DIMENSION_SCALE")
    })
}

/// Plain HDF5 files have no dimension names. netCDF-C calls them
/// `phony_dim_N`, numbered in order of first use, one per distinct size;
/// `netcdf-reader` calls them `dim_{size}`. Readers users compare against
/// (netCDF4, xarray) use netCDF-C's names, so we do too.
fn name_phony_dimensions(variables: &mut [VariableManifest]) {
    let mut names: Vec<String> = Vec::new();
    // netCDF-C visits datasets in HDF5 link-name order.
    let mut order: Vec<usize> = (0..variables.len()).collect();
    order.sort_by(|&a, &b| variables[a].variable.cmp(&variables[b].variable));
    for i in order {
        let v = &mut variables[i];
        for d in v.dimensions.iter_mut() {
            let k = match names.iter().position(|n| n == d) {
                Some(k) => k,
                None => {
                    names.push(d.clone());
                    names.len() - 1
                }
            };
            *d = format!("phony_dim_{k}");
        }
    }
}

struct Ctx<'a> {
    h5: &'a Hdf5File,
    base: u64,
    offset_size: u8,
    length_size: u8,
    file_size: u64,
    limits: &'a Limits,
    /// Chunk references read so far from this file ([`Limits::chunks_per_file`]).
    chunks_read: std::cell::Cell<u64>,
}

fn walk_group(ctx: &Ctx<'_>, group: &NcGroup, prefix: &str, out: &mut Hdf5Variables) -> Result<()> {
    for var in &group.variables {
        let path = format!("{prefix}{}", var.name);
        match variable(ctx, &path, var) {
            Ok(Ok(v)) => out.variables.push(v),
            Ok(Err(error)) => out.problems.push(VariableProblem {
                variable: path,
                error,
            }),
            Err(file_error) => return Err(file_error),
        }
    }
    for sub in &group.groups {
        let path = format!("{prefix}{}", sub.name);
        out.groups
            .insert(path.clone(), attributes_json(&sub.attributes).into());
        walk_group(ctx, sub, &format!("{path}/"), out)?;
    }
    Ok(())
}

/// Outer error: the file is bad. Inner error: only this variable is.
fn variable(
    ctx: &Ctx<'_>,
    path: &str,
    var: &NcVariable,
) -> Result<Result<VariableManifest, String>> {
    let dataset = match ctx.h5.dataset(path) {
        Ok(d) => d,
        Err(e) => return Ok(Err(format!("cannot open dataset: {e}"))),
    };
    let header = match ctx.h5.get_or_parse_header(dataset.address()) {
        Ok(h) => h,
        Err(e) => return Ok(Err(format!("cannot parse object header: {e}"))),
    };
    let mut layout = None;
    let mut filters = Vec::new();
    for msg in &header.messages {
        match msg {
            HdfMessage::DataLayout(l) => layout = Some(l.layout.clone()),
            HdfMessage::FilterPipeline(p) => filters = p.filters.clone(),
            HdfMessage::ExternalFiles(_) => {
                return Ok(Err("data lives in external raw files (HDF5 external storage), which cannot be referenced".into()))
            }
            _ => {}
        }
    }
    let Some(layout) = layout else {
        return Ok(Err(
            "no data layout message (virtual or unsupported layout)".into(),
        ));
    };
    if is_vlen_string(dataset.dtype()) {
        return Ok(vlen_strings(path, var, &dataset, ctx.limits));
    }
    let element = match Elements::of(dataset.dtype()) {
        Ok(e) => e,
        Err(reason) => return Ok(Err(reason)),
    };
    let mut codecs = vec![element.bytes_codec()];
    for f in &filters {
        match filter_codec(f.id, &f.client_data, element.size()) {
            Ok(c) => codecs.push(c),
            Err(reason) => return Ok(Err(reason)),
        }
    }
    let shape = dataset.shape().to_vec();
    if let Err(reason) = checks::dimensions_within_maximum(&shape, dataset.max_dims()) {
        return Ok(Err(reason));
    }
    let fill_value = match element.fill_value(&dataset, var) {
        Ok(fill) => fill,
        Err(reason) => return Ok(Err(reason)),
    };
    let mut manifest = VariableManifest {
        variable: path.to_string(),
        dtype: element.typestr(),
        fields: element.fields(),
        shape: shape.clone(),
        chunk_shape: shape.clone(),
        dimensions: var.dimensions.iter().map(|d| d.name.clone()).collect(),
        fill_value,
        codecs: codecs.into(),
        attributes: Default::default(),
        chunks: Vec::new(),
        inline_data: None,
        layout: String::new(),
    };
    let mut attributes = attributes_json(&var.attributes);
    if let Some(flags) = enum_attributes(dataset.dtype()) {
        for (k, v) in flags {
            attributes.entry(k).or_insert(v);
        }
    }
    manifest.attributes = attributes.into();
    let empty = shape.contains(&0);
    match layout {
        DataLayout::Compact { data } => {
            manifest.layout = "compact".into();
            if filters.is_empty() {
                let stored = data.len() as u64;
                if let Err(reason) = checks::exact_size("compact", &shape, element.size(), stored) {
                    return Ok(Err(reason));
                }
            }
            manifest.inline_data = Some(data);
        }
        DataLayout::Contiguous { address, size } => {
            manifest.layout = "contiguous".into();
            if !empty && size > 0 && !Cursor::is_undefined_offset(address, ctx.offset_size) {
                if let Err(reason) = checks::exact_size("contiguous", &shape, element.size(), size)
                {
                    return Ok(Err(reason));
                }
                manifest
                    .chunks
                    .push(ctx.checked_ref(path, vec![0; shape.len()], address, size)?);
            }
        }
        DataLayout::Chunked {
            address,
            dims,
            chunk_indexing,
            ..
        } => {
            manifest.layout = "chunked".into();
            let ndim = shape.len();
            if dims.len() < ndim {
                return Ok(Err(format!(
                    "chunk dimensions {dims:?} do not match rank {ndim}"
                )));
            }
            let chunk_dims: Vec<u32> = dims[..ndim].to_vec();
            if chunk_dims.contains(&0) {
                return Ok(Err("chunk dimension of size 0".into()));
            }
            manifest.chunk_shape = chunk_dims.iter().map(|&d| u64::from(d)).collect();
            if !empty && !Cursor::is_undefined_offset(address, ctx.offset_size) {
                // Index walks that list every cell of the grid (implicit, fixed
                // array) are bounded by the grid before they allocate anything.
                let per_cell = matches!(
                    chunk_indexing,
                    Some(ChunkIndexing::Implicit | ChunkIndexing::FixedArray { .. })
                );
                if per_cell {
                    let cells = checks::grid_cells(&shape, &chunk_dims);
                    if let Err(reason) = ctx.budget(cells) {
                        return Ok(Err(reason));
                    }
                }
                let entries = match ctx.chunk_entries(
                    address,
                    &shape,
                    dataset.max_dims(),
                    &chunk_dims,
                    chunk_indexing.as_ref(),
                    element.size(),
                ) {
                    Ok(e) => e,
                    Err(e) => return Err(FormatError::from_hdf5(e)),
                };
                if !per_cell {
                    if let Err(reason) = ctx.budget(entries.len() as u64) {
                        return Ok(Err(reason));
                    }
                }
                let full_chunk = chunk_dims.iter().fold(u64::from(element.size()), |a, &d| {
                    a.saturating_mul(u64::from(d))
                });
                for entry in entries {
                    if entry.offsets.iter().zip(&shape).any(|(o, s)| o >= s) {
                        continue; // stale chunk beyond a shrunk extent
                    }
                    if entry.filter_mask != 0 && !filters.is_empty() {
                        return Ok(Err(format!(
                            "chunk at {:?} skips filters (mask {:#x}); a Zarr codec pipeline cannot express that",
                            entry.offsets, entry.filter_mask
                        )));
                    }
                    let size = if entry.size == 0 && filters.is_empty() {
                        full_chunk
                    } else {
                        entry.size
                    };
                    if filters.is_empty() && size != full_chunk {
                        return Ok(Err(format!(
                            "unfiltered chunk at {:?} of {size} bytes, where a chunk of {chunk_dims:?} needs {full_chunk}",
                            entry.offsets
                        )));
                    }
                    let index = match checks::chunk_position(&entry.offsets, &chunk_dims) {
                        Ok(index) => index,
                        Err(reason) => return Ok(Err(reason)),
                    };
                    manifest
                        .chunks
                        .push(ctx.checked_ref(path, index, entry.address, size)?);
                }
                if let Err(reason) = checks::distinct_chunks(&manifest.chunks) {
                    return Ok(Err(reason));
                }
                manifest.chunks.sort_by(|a, b| a.index.cmp(&b.index));
            }
        }
    }
    Ok(Ok(manifest))
}

// Variable-length strings have no byte range in the file to point at (each
// lives in a global heap), so floe reads them and stores them in the
// repository, bounded by `Limits::inline_strings` and `inline_string_bytes`.
// Real ones are labels (ERA5's `expver`, station names): a few thousand at most.

/// Variable-length strings, as h5py writes them (a string of variable size)
/// and as netCDF-C writes NetCDF-4 `string` (a variable-length sequence of
/// string class).
fn is_vlen_string(dtype: &Datatype) -> bool {
    match dtype {
        Datatype::String {
            size: hdf5_reader::StringSize::Variable,
            ..
        } => true,
        Datatype::VarLen { base, kind, .. } => {
            *kind == hdf5_reader::VarLenKind::String && base.is_vlen_string_base()
        }
        _ => false,
    }
}

/// A variable of variable-length strings, read and kept inline as one
/// `vlen-utf8` chunk (Zarr v3 `string`), or why not.
fn vlen_strings(
    path: &str,
    var: &NcVariable,
    dataset: &hdf5_reader::Dataset,
    limits: &Limits,
) -> Result<VariableManifest, String> {
    let count = dataset
        .num_elements()
        .map_err(|e| format!("variable-length strings: cannot count them: {e}"))?;
    if count > limits.inline_strings {
        return Err(format!(
            "{count} variable-length strings, more than the {} floe stores inline (FLOE_MAX_INLINE_STRINGS)",
            limits.inline_strings
        ));
    }
    let strings = dataset
        .read_strings()
        .map_err(|e| format!("variable-length strings cannot be read: {e}"))?;
    let data = encode_vlen_utf8(&strings);
    if data.len() as u64 > limits.inline_string_bytes {
        return Err(format!(
            "variable-length strings of {} bytes, more than the {} floe stores inline (FLOE_MAX_INLINE_STRING_BYTES)",
            data.len(),
            limits.inline_string_bytes
        ));
    }
    let shape = dataset.shape().to_vec();
    Ok(VariableManifest {
        variable: path.to_string(),
        dtype: VLEN_STRING_TYPESTR.to_string(),
        fields: Vec::new(),
        chunk_shape: shape.clone(),
        shape,
        dimensions: var.dimensions.iter().map(|d| d.name.clone()).collect(),
        fill_value: Value::from(""),
        codecs: vec![Codec::new("vlen-utf8", [])].into(),
        attributes: attributes_json(&var.attributes).into(),
        chunks: Vec::new(),
        inline_data: Some(data),
        layout: "strings".into(),
    })
}

impl Ctx<'_> {
    /// Takes `chunks` from the file's budget, or says why not.
    fn budget(&self, chunks: u64) -> Result<(), String> {
        let total = self.chunks_read.get().saturating_add(chunks);
        if total > self.limits.chunks_per_file {
            return Err(format!(
                "{chunks} chunks, which would take the file's chunk references to {total}, more than the {} floe reads from one file (FLOE_MAX_CHUNKS_PER_FILE)",
                self.limits.chunks_per_file
            ));
        }
        self.chunks_read.set(total);
        Ok(())
    }

    fn checked_ref(
        &self,
        variable: &str,
        index: Vec<u64>,
        address: u64,
        length: u64,
    ) -> Result<ChunkRef> {
        let offset = address.saturating_add(self.base);
        if offset
            .checked_add(length)
            .is_none_or(|end| end > self.file_size)
        {
            return Err(FormatError::ChunkOutOfBounds {
                variable: variable.to_string(),
                offset,
                length,
                file_size: self.file_size,
            });
        }
        Ok(ChunkRef {
            index,
            offset,
            length,
        })
    }

    fn chunk_entries(
        &self,
        index_address: u64,
        shape: &[u64],
        max_dims: Option<&[u64]>,
        chunk_dims: &[u32],
        indexing: Option<&ChunkIndexing>,
        element_size: u32,
    ) -> hdf5_reader::error::Result<Vec<ChunkEntry>> {
        let storage = self.h5.storage();
        let ndim = shape.len();
        match indexing {
            None => {
                let leaves = hdf5_reader::btree_v1::collect_btree_v1_leaves_storage(
                    storage,
                    index_address,
                    self.offset_size,
                    self.length_size,
                    Some(ndim as u32),
                    chunk_dims,
                    None,
                )?;
                Ok(leaves
                    .into_iter()
                    .filter_map(|(key, address)| match key {
                        BTreeV1Key::RawData {
                            chunk_size,
                            filter_mask,
                            offsets,
                        } => Some(ChunkEntry {
                            address,
                            size: u64::from(chunk_size),
                            filter_mask,
                            offsets: offsets.into_iter().take(ndim).collect(),
                        }),
                        BTreeV1Key::Group { .. } => None,
                    })
                    .collect())
            }
            Some(ChunkIndexing::SingleChunk {
                filtered_size,
                filters,
            }) => Ok(vec![hdf5_reader::chunk_index::single_chunk_entry(
                index_address,
                *filtered_size,
                *filters,
                ndim,
            )]),
            Some(ChunkIndexing::Implicit) => {
                hdf5_reader::chunk_index::collect_implicit_chunk_entries(
                    index_address,
                    shape,
                    chunk_dims,
                    element_size as usize,
                    None,
                    storage.len(),
                )
            }
            Some(ChunkIndexing::FixedArray { .. }) => {
                hdf5_reader::fixed_array::collect_fixed_array_chunk_entries_storage(
                    storage,
                    index_address,
                    self.offset_size,
                    self.length_size,
                    shape,
                    chunk_dims,
                    None,
                )
            }
            Some(ChunkIndexing::ExtensibleArray { .. }) => {
                hdf5_reader::extensible_array::collect_extensible_array_chunk_entries_storage(
                    storage,
                    index_address,
                    self.offset_size,
                    self.length_size,
                    shape,
                    max_dims,
                    chunk_dims,
                    None,
                )
            }
            Some(ChunkIndexing::BTreeV2) => {
                hdf5_reader::chunk_index::collect_v2_chunk_entries_storage(
                    storage,
                    index_address,
                    self.offset_size,
                    self.length_size,
                    ndim as u32,
                    chunk_dims,
                    None,
                )
            }
        }
    }
}

fn element_type(dtype: &Datatype) -> Result<ElementType, String> {
    let endian = |o: &hdf5_reader::ByteOrder| match o {
        hdf5_reader::ByteOrder::LittleEndian => Endian::Little,
        hdf5_reader::ByteOrder::BigEndian => Endian::Big,
    };
    match dtype {
        Datatype::FixedPoint {
            size,
            signed,
            byte_order,
        } if matches!(size, 1 | 2 | 4 | 8) => Ok(ElementType {
            kind: if *signed { Kind::Int } else { Kind::UInt },
            size: u32::from(*size),
            endian: endian(byte_order),
        }),
        Datatype::FloatingPoint { size, byte_order } if matches!(size, 4 | 8) => Ok(ElementType {
            kind: Kind::Float,
            size: u32::from(*size),
            endian: endian(byte_order),
        }),
        Datatype::String {
            size: hdf5_reader::StringSize::Fixed(n),
            ..
        } if *n > 0 => Ok(ElementType {
            kind: Kind::Bytes,
            size: *n,
            endian: Endian::Little,
        }),
        Datatype::String {
            size: hdf5_reader::StringSize::Variable,
            ..
        } => Err("variable-length strings cannot be referenced as fixed-size chunks".into()),
        Datatype::VarLen { .. } => {
            Err("variable-length data cannot be referenced as fixed-size chunks".into())
        }
        Datatype::Enum { base, members } => {
            let base = element_type(base)?;
            if !matches!(base.kind, Kind::Int | Kind::UInt) {
                return Err("enum over a non-integer base type".into());
            }
            if is_h5py_bool(base, members) {
                return Ok(ElementType {
                    kind: Kind::Bool,
                    ..base
                });
            }
            Ok(base)
        }
        // Records are described by `Elements::of`; a compound here is one inside another type.
        Datatype::Compound { .. } => Err("compound type inside another type".into()),
        other => Err(format!("unsupported data type {other:?}")),
    }
}

/// What one element of a variable is: a single value, or a record of named fields (an HDF5
/// compound type, which Zarr calls `struct`). Both are fixed-size, so chunks are referenced
/// alike; they differ in how the type, the byte order and the fill value are written.
enum Elements {
    One(ElementType),
    Record(Record),
}

impl Elements {
    /// The elements of a dataset of `dtype`, or why floe cannot reference them.
    fn of(dtype: &Datatype) -> Result<Elements, String> {
        match dtype {
            Datatype::Compound { size, fields } => {
                compound_record("", 0, *size, fields).map(Elements::Record)
            }
            other => element_type(other).map(Elements::One),
        }
    }

    /// Size of one element (one record) in bytes.
    fn size(&self) -> u32 {
        match self {
            Elements::One(e) => e.size,
            Elements::Record(r) => r.size,
        }
    }

    fn typestr(&self) -> String {
        match self {
            Elements::One(e) => e.typestr(),
            Elements::Record(r) => r.typestr(),
        }
    }

    fn fields(&self) -> Vec<StructField> {
        match self {
            Elements::One(_) => Vec::new(),
            Elements::Record(r) => r.fields(),
        }
    }

    fn bytes_codec(&self) -> Codec {
        match self {
            Elements::One(e) => bytes_codec(e.size, e.endian),
            Elements::Record(r) => r.bytes_codec(),
        }
    }

    /// The dataset's HDF5 fill value, decoded. Absent, a value falls back to the NetCDF
    /// `_FillValue` attribute, then 0; a record to Zarr's default (every field zero), as
    /// HDF5's default fill is zero bytes. A fill value floe cannot carry exactly (a byte
    /// string of more than 8 bytes that is not all zeros; a record's of the wrong size) is the
    /// variable's problem, never replaced by zeros.
    fn fill_value(
        &self,
        dataset: &hdf5_reader::Dataset,
        var: &NcVariable,
    ) -> Result<Value, String> {
        let raw = dataset.fill_value().and_then(|f| f.value.as_deref());
        match self {
            Elements::One(e) if e.kind == Kind::Bytes && e.size > 8 => match raw {
                Some(raw) if raw.iter().any(|b| *b != 0) => Err(format!(
                    "a fill value of {} bytes ({:?}) for byte strings of {}: floe carries a byte string's fill value in 8 bytes at most",
                    raw.len(),
                    String::from_utf8_lossy(raw),
                    e.size
                )),
                Some(_) => Ok(Value::from(0)),
                None => Ok(var
                    .attribute("_FillValue")
                    .map(|a| attr_json(&a.value))
                    .unwrap_or(Value::from(0))),
            },
            Elements::One(e) => Ok(raw
                .and_then(|raw| e.decode(raw))
                .or_else(|| var.attribute("_FillValue").map(|a| attr_json(&a.value)))
                .unwrap_or(Value::from(0))),
            Elements::Record(r) => match raw {
                None => Ok(r.default_fill()),
                Some(raw) if raw.len() as u64 != u64::from(r.size) => Err(format!(
                    "a fill value of {} bytes for records of {}",
                    raw.len(),
                    r.size
                )),
                Some(raw) => r
                    .fill_value(raw)
                    .ok_or_else(|| format!("a fill value of {} bytes that does not decode as the record", raw.len())),
            },
        }
    }
}

/// Deepest nesting of records accepted: a compound's members may be compounds to this many
/// levels below the outermost record.
const MAX_RECORD_DEPTH: usize = 8;

/// A compound type as a packed record, or why not: each member must be a fixed-size value
/// ([`element_type`]) or a record, packed alike, nested at most [`MAX_RECORD_DEPTH`] levels;
/// members that are arrays, variable-length data or references are refused by their path
/// (`inner.x`), as is a layout Zarr's packed struct cannot describe. `path` is the record's
/// own path in the outermost record, `""` for that one, `depth` its level below it.
fn compound_record(
    path: &str,
    depth: usize,
    size: u32,
    fields: &[hdf5_reader::CompoundField],
) -> Result<Record, String> {
    let members = fields
        .iter()
        .map(|field| {
            // numpy renames a field without a name (`f0`), so its values would be read under
            // another name than the file's: refused rather than renamed.
            if field.name.is_empty() {
                return Err(format!(
                    "compound type with a field without a name (at byte {} of record {path:?}): zarr-python and numpy would rename it",
                    field.byte_offset
                ));
            }
            Ok(Member {
                name: field.name.clone(),
                offset: field.byte_offset,
                field: member_type(&field_path(path, &field.name), depth, field)?,
            })
        })
        .collect::<Result<Vec<Member>, String>>()?;
    Record::at(path, size, members)
}

/// The type of one member, at `name` (its path), of a compound `depth` levels below the
/// outermost, or why floe cannot reference it, naming the path.
fn member_type(
    name: &str,
    depth: usize,
    field: &hdf5_reader::CompoundField,
) -> Result<FieldType, String> {
    match &field.datatype {
        Datatype::Compound { size, fields } => {
            if depth >= MAX_RECORD_DEPTH {
                return Err(format!(
                    "compound type with a nested compound field {name:?} more than {MAX_RECORD_DEPTH} levels deep"
                ));
            }
            compound_record(name, depth + 1, *size, fields).map(FieldType::Record)
        }
        Datatype::Array { dims, .. } => Err(format!(
            "compound type with an array-typed field {name:?} (shape {dims:?}): Zarr's struct data type has no subarray fields"
        )),
        Datatype::VarLen { .. }
        | Datatype::String {
            size: hdf5_reader::StringSize::Variable,
            ..
        } => Err(format!(
            "compound type with a variable-length field {name:?}: variable-length data cannot be referenced as fixed-size chunks"
        )),
        Datatype::Reference { .. } => Err(format!(
            "compound type with a reference field {name:?}: object and region references are addresses in the file, not data"
        )),
        other => element_type(other).map(FieldType::Value).map_err(|reason| {
            format!("compound type with field {name:?} of a type floe cannot reference: {reason}")
        }),
    }
}

/// h5py stores numpy's `bool` as a one-byte enum with exactly FALSE = 0, TRUE = 1.
fn is_h5py_bool(base: ElementType, members: &[hdf5_reader::EnumMember]) -> bool {
    let decoded: Vec<(&str, Option<Value>)> = members
        .iter()
        .map(|m| (m.name.as_str(), base.decode(&m.value)))
        .collect();
    base.size == 1
        && decoded.len() == 2
        && decoded.contains(&("FALSE", Some(Value::from(0))))
        && decoded.contains(&("TRUE", Some(Value::from(1))))
}

/// An enum's members as CF flag attributes (`flag_values`, `flag_meanings`), so
/// readers keep the name of each value; `None` for other types and for bools.
fn enum_attributes(dtype: &Datatype) -> Option<Map<String, Value>> {
    let Datatype::Enum { base, members } = dtype else {
        return None;
    };
    let base = element_type(base).ok()?;
    if is_h5py_bool(base, members) {
        return None;
    }
    let values: Vec<Value> = members
        .iter()
        .map(|m| base.decode(&m.value).unwrap_or(Value::Null))
        .collect();
    let meanings: Vec<String> = members.iter().map(|m| m.name.replace(' ', "_")).collect();
    let mut attributes = Map::new();
    attributes.insert("flag_values".into(), Value::from(values));
    attributes.insert("flag_meanings".into(), Value::from(meanings.join(" ")));
    Some(attributes)
}

/// Maps an HDF5 filter to the Zarr v3 codec whose byte format it writes, so that
/// zarr-python (with numcodecs) and zarrs decode the referenced bytes as they are.
///
/// - deflate → `numcodecs.zlib`, shuffle → `numcodecs.shuffle`, fletcher32 →
///   `numcodecs.fletcher32`;
/// - zstd (32015) → core `zstd`: the filter stores one zstd frame;
/// - blosc (32001) → core `blosc`: the filter stores one blosc frame, whose
///   header carries what decoding needs; the configuration repeats the filter's
///   parameters (`cd_values`: typesize at 2, level at 4, shuffle at 5, compressor
///   at 6);
/// - bzip2 (307) → `numcodecs.bz2`: the filter stores one bzip2 stream;
/// - lz4 (32004) and bitshuffle (32008) stay errors: they frame their blocks with
///   big-endian sizes of their own, which no Zarr codec reads (`numcodecs.lz4`
///   expects one little-endian size and one block).
fn filter_codec(id: u16, client_data: &[u32], element_size: u32) -> Result<Codec, String> {
    use hdf5_core::{FILTER_DEFLATE, FILTER_FLETCHER32, FILTER_SHUFFLE};
    let parameter = |i: usize| client_data.get(i).copied();
    match id {
        FILTER_DEFLATE => {
            let level = parameter(0).unwrap_or(6);
            Ok(Codec::new(
                "numcodecs.zlib",
                [("level", Value::from(level))],
            ))
        }
        FILTER_SHUFFLE => {
            let size = parameter(0).unwrap_or(element_size);
            Ok(Codec::new(
                "numcodecs.shuffle",
                [("elementsize", Value::from(size))],
            ))
        }
        FILTER_FLETCHER32 => Ok(Codec::new("numcodecs.fletcher32", [])),
        FILTER_ZSTD => Ok(Codec::new(
            "zstd",
            [
                ("level", Value::from(parameter(0).map_or(3, |l| l as i32))),
                ("checksum", Value::from(false)),
            ],
        )),
        FILTER_BZIP2 => Ok(Codec::new(
            "numcodecs.bz2",
            [("level", Value::from(parameter(0).unwrap_or(9).clamp(1, 9)))],
        )),
        FILTER_BLOSC => blosc_codec(client_data, element_size),
        FILTER_LZ4 | FILTER_BITSHUFFLE => Err(format!(
            "unsupported HDF5 filter {id} ({}): it frames its blocks with big-endian sizes of its own, which no Zarr codec reads (numcodecs.lz4 expects one little-endian size and one block)",
            filter_name(id)
        )),
        other => Err(format!(
            "unsupported HDF5 filter {other} ({})",
            filter_name(other)
        )),
    }
}

const FILTER_BZIP2: u16 = 307;
const FILTER_BLOSC: u16 = 32001;
const FILTER_LZ4: u16 = 32004;
const FILTER_BITSHUFFLE: u16 = 32008;
const FILTER_ZSTD: u16 = 32015;

/// The core `blosc` codec for the HDF5 blosc filter's parameters.
fn blosc_codec(client_data: &[u32], element_size: u32) -> Result<Codec, String> {
    let parameter = |i: usize| client_data.get(i).copied();
    let typesize = parameter(2).filter(|t| *t > 0).unwrap_or(element_size);
    let clevel = parameter(4).unwrap_or(5).min(9);
    let shuffle = match parameter(5).unwrap_or(1) {
        0 => "noshuffle",
        1 => "shuffle",
        2 => "bitshuffle",
        other => {
            return Err(format!(
                "HDF5 blosc filter with unknown shuffle mode {other}"
            ))
        }
    };
    let cname = match parameter(6).unwrap_or(0) {
        0 => "blosclz",
        1 => "lz4",
        2 => "lz4hc",
        4 => "zlib",
        5 => "zstd",
        3 => return Err("HDF5 blosc filter with the snappy compressor, which Zarr's blosc codec does not decode".into()),
        other => return Err(format!("HDF5 blosc filter with unknown compressor {other}")),
    };
    Ok(Codec::new(
        "blosc",
        [
            ("cname", Value::from(cname)),
            ("clevel", Value::from(clevel)),
            ("shuffle", Value::from(shuffle)),
            ("typesize", Value::from(typesize)),
            ("blocksize", Value::from(0)),
        ],
    ))
}

fn filter_name(id: u16) -> &'static str {
    match id {
        4 => "szip",
        5 => "nbit",
        6 => "scaleoffset",
        307 => "bzip2",
        32000 => "lzf",
        32001 => "blosc",
        32004 => "lz4",
        32008 => "bitshuffle",
        32015 => "zstd",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(codec: &Codec, key: &str) -> Value {
        codec.configuration.get(key).cloned().unwrap_or(Value::Null)
    }

    /// A compound of one `u1` nested `levels` deep below the outermost record.
    fn nested_compound(levels: usize) -> Datatype {
        let mut dtype = Datatype::Compound {
            size: 1,
            fields: vec![hdf5_reader::CompoundField {
                name: "v".into(),
                byte_offset: 0,
                datatype: Datatype::FixedPoint {
                    size: 1,
                    signed: false,
                    byte_order: hdf5_reader::ByteOrder::LittleEndian,
                },
            }],
        };
        for _ in 0..levels {
            dtype = Datatype::Compound {
                size: 1,
                fields: vec![hdf5_reader::CompoundField {
                    name: "r".into(),
                    byte_offset: 0,
                    datatype: dtype,
                }],
            };
        }
        dtype
    }

    #[test]
    fn records_nest_at_most_eight_levels_deep() {
        let Ok(Elements::Record(deepest)) = Elements::of(&nested_compound(MAX_RECORD_DEPTH)) else {
            panic!("eight levels below the outermost record are read");
        };
        assert_eq!(deepest.typestr(), "|V1");
        let Err(reason) = Elements::of(&nested_compound(MAX_RECORD_DEPTH + 1)) else {
            panic!("nine levels are refused");
        };
        assert_eq!(
            reason,
            "compound type with a nested compound field \"r.r.r.r.r.r.r.r.r\" more than 8 levels deep"
        );
    }

    #[test]
    fn compression_filters_map_to_the_codec_of_their_byte_format() {
        let zstd = filter_codec(FILTER_ZSTD, &[7], 4).expect("zstd");
        assert_eq!(
            (zstd.name.as_str(), config(&zstd, "level")),
            ("zstd", Value::from(7))
        );
        let bz2 = filter_codec(FILTER_BZIP2, &[9], 4).expect("bzip2");
        assert_eq!(
            (bz2.name.as_str(), config(&bz2, "level")),
            ("numcodecs.bz2", Value::from(9))
        );
        // netCDF-C's nc_def_var_blosc: version 2, blosc 2, typesize 4, chunk bytes, level 5, shuffle, lz4
        let blosc = filter_codec(FILTER_BLOSC, &[2, 2, 4, 146_004, 5, 1, 1], 4).expect("blosc");
        assert_eq!(blosc.name, "blosc");
        assert_eq!(config(&blosc, "cname"), Value::from("lz4"));
        assert_eq!(config(&blosc, "shuffle"), Value::from("shuffle"));
        assert_eq!(config(&blosc, "typesize"), Value::from(4));
        assert_eq!(config(&blosc, "clevel"), Value::from(5));
    }

    #[test]
    fn filters_whose_framing_no_codec_reads_are_named_errors() {
        for id in [FILTER_LZ4, FILTER_BITSHUFFLE] {
            let error = filter_codec(id, &[], 4).expect_err("no codec");
            assert!(
                error.contains(filter_name(id)) && error.contains("frames its blocks"),
                "{error}"
            );
        }
        let snappy = filter_codec(FILTER_BLOSC, &[2, 2, 4, 0, 5, 1, 3], 4).expect_err("snappy");
        assert!(snappy.contains("snappy"), "{snappy}");
        assert!(filter_codec(4, &[], 4).expect_err("szip").contains("szip"));
    }
}
