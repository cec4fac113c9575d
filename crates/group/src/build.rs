//! The group builder: one path from a batch's files to its group, for every
//! profile.
//!
//! ```text
//! files ──▶ variables and steps ──▶ pieces ──▶ placed on the axis ──▶ coordinates ──▶ companions
//!           (a file's variables     (a variable's  (every step at its   (the axis's own,  (bounds, scalars,
//!            along the dimension,    files, checked  index of the union  the grid or the   static fields, or
//!            decoded by the rule;    and in order)   of steps; chunks of other coordinates) what is not carried,
//!            fixed files apart)                      several steps by                      named)
//!                                                    the chunk-grid rule)
//! ```
//!
//! What differs between archives is the profile's time rule ([`Rule`]), data
//! that each step consults, never a builder of its own:
//! - [`Rule::CfExact`] (CMIP6, MUR, `files`, any `concat` dimension): time
//!   decoded exactly in each file's calendar ([`crate::series`] holds the
//!   steps); a variable whose chunks cannot sit on the axis is left out; other
//!   coordinates come from the files; every other variable is kept.
//! - [`Rule::Ismip6Years`] (ISMIP6): one file per variable, steps binned to
//!   calendar years with the archive's quirk rules, one x/y grid regenerated
//!   where needed ([`crate::merge`] holds the steps); a variable whose chunks
//!   cannot sit on the axis keeps an axis of its own.
//!
//! Placement is shared: data whose steps are referenced one by one (split
//! contiguous data, NetCDF-3 records, chunks of one step) lands step by step at
//! its own index of the union; chunks of several steps join where the
//! chunk-grid rule of [`crate::axis`] says they sit exactly.

use std::collections::{BTreeMap, BTreeSet};

use floe_formats::VariableManifest;
use floe_wire::{
    ArrayFragment, BatchDescriptor, ConcatSpec, VariableSelection, VirtualRef,
    CONCAT_DIMENSION_ATTRIBUTE, UNLIMITED_DIMENSION,
};

use crate::concat::{order_pieces, place_pieces, Piece};
use crate::merge::{data_array, split_contiguous, Grid};
use crate::series::{LeftOut, ScanTime, SeriesError};
use crate::{FileScan, GroupBuild, Warning};

/// How a profile places its files' steps: its time rule, as data.
#[derive(Debug, Clone, Copy)]
pub enum Rule<'a> {
    /// ISMIP6: one file per variable, steps binned to calendar years, one x/y grid.
    Ismip6Years,
    /// Exact CF time along the spec's dimension.
    CfExact(&'a ConcatSpec),
}

impl<'a> Rule<'a> {
    /// The rule of a batch: its concatenation spec, else ISMIP6's.
    pub fn of(batch: &'a BatchDescriptor) -> Rule<'a> {
        batch
            .concat
            .as_ref()
            .map_or(Rule::Ismip6Years, Rule::CfExact)
    }

    /// The dimension the group's axis runs along.
    pub fn dimension(&self) -> &str {
        match self {
            Rule::Ismip6Years => "time",
            Rule::CfExact(spec) => &spec.dimension,
        }
    }

    /// The profile's choice among the variables of files that hold several.
    pub fn selection(&self) -> Option<&'a VariableSelection> {
        match self {
            Rule::Ismip6Years => None,
            Rule::CfExact(spec) => spec.file_variables.as_ref(),
        }
    }
}

/// What the steps gather on the way: notes, variables left out or kept
/// apart, and (ISMIP6) the group's grid.
#[derive(Default)]
pub(crate) struct State {
    /// Normalizations applied.
    pub notes: BTreeSet<String>,
    /// Variables left out, each with its first reason.
    pub left_out: LeftOut,
    /// Variables kept on an axis of their own, and why.
    pub apart: Vec<Warning>,
    /// Companions the layout does not carry (ISMIP6), named.
    pub not_carried: Vec<Warning>,
    /// The group's x/y grid (ISMIP6).
    pub grid: Option<Grid>,
}

/// Each file's variables along the dimension and its steps (`None`: unreadable,
/// or fixed), and the fixed files: those holding nothing along the dimension.
pub(crate) struct FilesRead<'a> {
    /// The variables each file gives the group along the dimension.
    pub per_scan: Vec<Vec<&'a VariableManifest>>,
    /// Each file's steps.
    pub times: Vec<Option<ScanTime>>,
    /// Files with nothing along the dimension.
    pub fixed: Vec<usize>,
}

impl FilesRead<'_> {
    /// The files whose steps were read.
    pub fn timed(&self) -> Vec<usize> {
        (0..self.times.len())
            .filter(|&i| self.times[i].is_some())
            .collect()
    }
}

/// A variable's pieces, in order, by name.
pub(crate) type Ordered<'a> = BTreeMap<&'a str, Vec<Piece<'a>>>;

/// Builds the group of `scans` by `rule` (see the module doc). A variable that
/// cannot be built is left out, named with its file and reason, and the
/// variables beside it are written (a partial group); what concerns every
/// variable (the calendar, the coordinates, in files of several variables a
/// file's time) fails the group.
pub fn build(
    batch: &BatchDescriptor,
    scans: &[FileScan],
    rule: Rule,
) -> Result<GroupBuild, SeriesError> {
    let Rule::CfExact(spec) = rule else {
        return build_by(batch, scans, rule);
    };
    if spec.dimension != UNLIMITED_DIMENSION {
        return build_by(batch, scans, rule);
    }
    // Along each file's unlimited dimension: found in the files, then built as
    // if the profile had named it; the group records which it was.
    let resolved = ConcatSpec {
        dimension: unlimited_dimension(scans)?,
        ..spec.clone()
    };
    let mut built = build_by(batch, scans, Rule::CfExact(&resolved))?;
    let fragment = &mut built.fragment;
    fragment.group_attributes.insert(
        CONCAT_DIMENSION_ATTRIBUTE.into(),
        resolved.dimension.clone().into(),
    );
    if let Some(append) = &mut fragment.append {
        append.dimension.clone_from(&resolved.dimension);
    }
    Ok(built)
}

/// The one unlimited dimension of the group's files. A file with several is
/// refused (the profile cannot choose for it), as are files that disagree and
/// a group where no file has one; a file with none holds fixed fields.
fn unlimited_dimension(scans: &[FileScan]) -> Result<String, SeriesError> {
    let mut found: Option<(&str, &str)> = None;
    for scan in scans {
        let file = scan.source.url.as_str();
        let refuse = |reason: String| SeriesError::File {
            file: file.to_string(),
            reason,
        };
        match scan.manifest.unlimited.as_slice() {
            [] => {}
            [name] => match found {
                None => found = Some((name, file)),
                Some((first, _)) if first == name => {}
                Some((first, first_file)) => {
                    return Err(refuse(format!(
                        "its unlimited dimension is {name}, and {first_file}'s is {first}: \
                         files concatenated along their unlimited dimension must share it"
                    )))
                }
            },
            several => {
                return Err(refuse(format!(
                    "several unlimited dimensions ({}): concat = \"{UNLIMITED_DIMENSION}\" cannot \
                     choose; name one in the profile's `concat`",
                    several.join(", ")
                )))
            }
        }
    }
    found
        .map(|(name, _)| name.to_string())
        .ok_or_else(|| SeriesError::File {
            file: scans
                .first()
                .map(|s| s.source.url.clone())
                .unwrap_or_default(),
            reason: format!(
                "no file of the group has an unlimited dimension to concatenate along \
             (concat = \"{UNLIMITED_DIMENSION}\"); name the dimension in the profile's `concat`"
            ),
        })
}

/// [`build`] along a named dimension.
fn build_by(
    batch: &BatchDescriptor,
    scans: &[FileScan],
    rule: Rule,
) -> Result<GroupBuild, SeriesError> {
    let mut state = State::default();
    // 1. Files → their variables and steps along the dimension.
    let files = match rule {
        Rule::Ismip6Years => crate::merge::read_files(scans, &mut state),
        Rule::CfExact(spec) => crate::series::read_files(scans, spec, &mut state.left_out)?,
    };
    if let Rule::CfExact(spec) = rule {
        if files.timed().is_empty() {
            return crate::series::fixed_group(batch, scans, spec, &files.fixed, state);
        }
        crate::series::check_files(scans, &files, spec, &mut state.left_out)?;
    }
    // 2. Variables → their pieces, checked and in order.
    let mut ordered = pieces(scans, &files, rule, &mut state.left_out);
    let bounds = match rule {
        Rule::CfExact(spec) => crate::series::time_bounds(scans, &files, spec, &mut ordered),
        Rule::Ismip6Years => None,
    };
    // 3. Pieces → placed on the union of their steps.
    let (union, mut arrays) = place_variables(&mut ordered, rule, &mut state);
    if let Rule::CfExact(spec) = rule {
        if ordered.is_empty() {
            return Err(crate::series::nothing_built(batch, state.left_out));
        }
        for (name, pieces) in &ordered {
            // No count: an append keeps the notes of the group it extends.
            if pieces.len() > 1 {
                state.notes.insert(format!(
                    "{name}: files concatenated along {}",
                    spec.dimension
                ));
            }
        }
    }
    // 4. The axis's coordinate and the other coordinates; 5. everything else.
    match rule {
        Rule::Ismip6Years => {
            crate::merge::coordinates(&union, &mut arrays, &mut state);
            crate::merge::companions(scans, &files, &ordered, &mut arrays, &mut state);
            crate::merge::finish_ismip6(batch, scans, arrays, state)
        }
        Rule::CfExact(spec) => {
            let timeline = crate::series::Timeline {
                files: &files,
                ordered: &ordered,
                union: &union,
                bounds,
            };
            crate::series::coordinates(scans, spec, &timeline, &mut arrays, &mut state)?;
            crate::series::companions(scans, spec, &files, &mut arrays, &mut state);
            Ok(crate::series::finish_series(batch, scans, arrays, state))
        }
    }
}

/// Each variable's pieces: the files that hold it along the dimension, checked
/// against each other and put in time order ([`order_pieces`]); a variable
/// whose files do not fit together is left out.
fn pieces<'a>(
    scans: &'a [FileScan],
    files: &'a FilesRead<'a>,
    rule: Rule,
    left_out: &mut LeftOut,
) -> Ordered<'a> {
    let mut by_variable: Ordered = BTreeMap::new();
    for i in files.timed() {
        let Some(time) = &files.times[i] else {
            continue;
        };
        for var in files.per_scan[i]
            .iter()
            .filter(|v| !left_out.has(&v.variable))
        {
            by_variable.entry(&var.variable).or_default().push(Piece {
                file: &scans[i].source.url,
                index: i,
                variable: var,
                calendar: &time.calendar_name,
                instants: &time.instants,
            });
        }
    }
    let mut ordered = BTreeMap::new();
    for (name, pieces) in by_variable {
        // ISMIP6 names its time dimension in several ways (time, t, Time).
        let dimension = match rule {
            Rule::Ismip6Years => pieces[0].variable.dimensions[0].clone(),
            Rule::CfExact(spec) => spec.dimension.clone(),
        };
        match order_pieces(&dimension, &pieces) {
            Ok(sorted) => {
                ordered.insert(name, sorted);
            }
            Err(e) => left_out.add(name, e.file(), e.to_string()),
        }
    }
    ordered
}

/// The variables' arrays on the union axis of their steps. A variable whose
/// chunks cannot sit on it keeps an axis of its own (ISMIP6) or is left out,
/// and the axis made again without its steps until every variable kept fits.
fn place_variables(
    ordered: &mut Ordered,
    rule: Rule,
    state: &mut State,
) -> (Vec<i64>, Vec<ArrayFragment>) {
    loop {
        let union: Vec<i64> = ordered
            .values()
            .flatten()
            .flat_map(|p| p.instants.iter().copied())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut arrays = Vec::new();
        let mut failed = Vec::new();
        for (name, pieces) in ordered.iter() {
            let dims = match rule {
                Rule::Ismip6Years => crate::merge::grid_dimensions(pieces[0].variable),
                Rule::CfExact(_) => pieces[0].variable.dimensions.clone(),
            };
            match variable_array(name, pieces, &union, &dims, &mut state.notes) {
                Ok(a) => arrays.push(a),
                Err(e) => match rule {
                    Rule::Ismip6Years => {
                        arrays.extend(crate::merge::own_axis(&pieces[0], &dims, e, state));
                    }
                    Rule::CfExact(_) => failed.push((name.to_string(), e)),
                },
            }
        }
        if failed.is_empty() {
            return (union, arrays);
        }
        for (name, e) in failed {
            let file = match &e {
                SeriesError::Concat(c) => c.file().to_string(),
                SeriesError::File { file, .. } => file.clone(),
                _ => String::new(),
            };
            state.left_out.add(&name, &file, e.to_string());
            ordered.remove(name.as_str());
        }
    }
}

/// A variable's Zarr v3 data type, or why it has none (fixed-length
/// characters and strings are not written as some other type).
pub(crate) fn zarr_type(var: &VariableManifest) -> Result<&'static str, String> {
    crate::zarr::data_type(&var.dtype)
        .ok_or_else(|| format!("data type {} has no Zarr v3 equivalent", var.dtype))
}

/// One variable: its files' chunks placed on the union axis. Steps referenced
/// one by one (split contiguous data, NetCDF-3 records, chunks of one step) land
/// each at its own index; chunks of several steps by the chunk-grid rule, or
/// not at all (the error says which file and why).
fn variable_array(
    name: &str,
    pieces: &[Piece],
    union: &[i64],
    dims: &[String],
    notes: &mut BTreeSet<String>,
) -> Result<ArrayFragment, SeriesError> {
    let first = pieces[0].variable;
    zarr_type(first).map_err(|reason| SeriesError::File {
        file: pieces[0].file.to_string(),
        reason: format!("{name}: {reason}"),
    })?;
    // Data with no byte range to reference (variable-length strings, HDF5
    // compact layout) is kept inline: several files' join into one chunk.
    if pieces.len() > 1 && pieces.iter().any(|p| p.variable.inline_data.is_some()) {
        let (merged, shape) = crate::inline::concat(name, pieces, union)?;
        return Ok(data_array(&merged, &shape, &shape, dims, Vec::new(), notes));
    }
    let (refs, chunk_shape) = if steps_one_by_one(first) {
        place_step_by_step(name, pieces, union, notes)?
    } else {
        place_chunks(name, pieces, union, notes)?
    };
    let mut shape = first.shape.clone();
    shape[0] = union.len() as u64;
    Ok(data_array(first, &shape, &chunk_shape, dims, refs, notes))
}

/// Whether a variable's steps are referenced one by one: contiguous data split
/// per step, NetCDF-3 record variables (each record is its own range,
/// interleaved with other variables' records), chunks of one step.
fn steps_one_by_one(var: &VariableManifest) -> bool {
    let unfiltered_whole = var.layout != "chunked" && var.is_uncompressed();
    (unfiltered_whole || var.chunk_shape.first() == Some(&1)) && var.inline_data.is_none()
}

// Contiguous data is split into at most `Limits::split_steps` steps: each is one
// reference, held in memory and written to a manifest (a header can declare a
// billion one-byte steps).

/// Every step at its own index of the union (gaps between them read as the fill
/// value): the references and the chunk shape, one step long.
fn place_step_by_step(
    name: &str,
    pieces: &[Piece],
    union: &[i64],
    notes: &mut BTreeSet<String>,
) -> Result<(Vec<VirtualRef>, Vec<u64>), SeriesError> {
    let mut refs = Vec::new();
    let mut chunk_shape = pieces[0].variable.chunk_shape.clone();
    for piece in pieces {
        let var = piece.variable;
        let max_steps = floe_wire::limits().split_steps;
        if var.layout == "contiguous" && var.shape[0] > max_steps {
            return Err(SeriesError::File {
                file: piece.file.to_string(),
                reason: format!(
                    "{name}: {} steps of contiguous data, more than the {max_steps} references floe splits an array into (FLOE_MAX_SPLIT_STEPS)",
                    var.shape[0]
                ),
            });
        }
        let chunks = if var.layout == "contiguous" && var.shape[0] > 1 {
            notes.insert(format!(
                "{name}: contiguous data split into one reference per time step"
            ));
            split_contiguous(var).1
        } else {
            var.chunks.clone()
        };
        for c in chunks {
            let step = c.index.first().copied().unwrap_or(0) as usize;
            let position = step_position(name, piece, step, union)?;
            let mut index: Vec<u32> = c.index.iter().map(|&i| i as u32).collect();
            index[0] = position as u32;
            refs.push(VirtualRef {
                index,
                source: piece.index as u32,
                offset: c.offset,
                length: c.length,
            });
        }
    }
    chunk_shape[0] = 1;
    Ok((refs, chunk_shape))
}

/// Where step `step` of a piece sits on the union of steps, or an error naming
/// the file whose step is not on it.
pub(crate) fn step_position(
    name: &str,
    piece: &Piece,
    step: usize,
    union: &[i64],
) -> Result<usize, SeriesError> {
    piece
        .instants
        .get(step)
        .and_then(|t| union.binary_search(t).ok())
        .ok_or_else(|| {
            SeriesError::Concat(crate::concat::ConcatError::OffAxis {
                variable: name.to_string(),
                file: piece.file.to_string(),
            })
        })
}

/// Chunks of several steps: each file's block placed by the chunk-grid rule.
fn place_chunks(
    name: &str,
    pieces: &[Piece],
    union: &[i64],
    notes: &mut BTreeSet<String>,
) -> Result<(Vec<VirtualRef>, Vec<u64>), SeriesError> {
    let first = pieces[0].variable;
    let chunk = first.chunk_shape.first().copied().unwrap_or(1).max(1);
    let offsets = place_pieces(pieces, union, chunk)?;
    if let ([_], [offset]) = (pieces, offsets.as_slice()) {
        if chunk > 1 && first.inline_data.is_none() {
            notes.insert(format!(
                "{name}: chunks span {chunk} time steps; placed on the shared time axis from index {offset}"
            ));
        }
    }
    let mut refs = Vec::new();
    for (piece, offset) in pieces.iter().zip(&offsets) {
        for c in &piece.variable.chunks {
            let mut index: Vec<u32> = c.index.iter().map(|&i| i as u32).collect();
            index[0] += (offset / chunk) as u32;
            refs.push(VirtualRef {
                index,
                source: piece.index as u32,
                offset: c.offset,
                length: c.length,
            });
        }
    }
    Ok((refs, first.chunk_shape.clone()))
}
