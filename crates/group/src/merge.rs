//! Merging the files of one batch into one group.
//!
//! Decisions (also in docs/profiles.md):
//! - **Union time axis by calendar year.** State variables are snapshots near
//!   Jan 1, flux variables averages near Jul 1; both are binned to their year,
//!   as the original pipeline did. The stored coordinate is Jan 1 of each year,
//!   in `days since 2000-01-01` (proleptic Gregorian). A variable without a
//!   step for a year has no chunk there: it reads as NaN.
//! - **Contiguous uncompressed (time, …) arrays are split** into one reference
//!   per step (exact, since the bytes are the array's bytes); compressed data
//!   is never split.
//! - **Chunks spanning several steps join the shared axis where that is exact**
//!   ([`crate::axis`]: chunk boundaries on the union's, consecutive steps, and
//!   no edge-chunk padding where the group has data). Otherwise the variable
//!   keeps its own axis (`time_{var}`, with its own coordinate), and the reason
//!   is recorded in `floe_warnings`.
//! - **Failures.** A file that cannot be read fails the whole batch (a redrive
//!   after fixing the file rebuilds the group). A variable whose grid does not
//!   match the group's, or whose times cannot be decoded even after the fixes, is
//!   left out with a warning recorded in the group attributes
//!   (`floe_warnings`): a redrive cannot fix the archive, and the rest of the
//!   group is still useful.

use std::collections::{BTreeMap, BTreeSet};

use floe_formats::{ChunkRef, FileManifest, VariableManifest};
use floe_wire::{
    ArrayFragment, BatchDescriptor, InlineChunk, ManifestFragment, SourceFile, VirtualRef,
    DIFFERING_ATTRIBUTES, SCHEMA_VERSION,
};
use serde_json::{json, Map, Value};

use crate::build::{FilesRead, Ordered, Rule, State};
use crate::cftime::{CfCalendar, CfUnits};
use crate::concat::{ConcatError, Piece};
use crate::series::{ScanTime, SeriesError};
use crate::time::{days_since_2000, decode_time, CivilDate, OUTPUT_CALENDAR, OUTPUT_UNITS};
use crate::{grid, zarr};

/// One file of a batch, read by the virtualizer (stored as JSON in a large
/// group's shard scans, [`crate::shard`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FileScan {
    /// The input as planned.
    pub source: SourceFile,
    /// Its raw manifest.
    pub manifest: FileManifest,
    /// Values of its coordinate variables (time, x, y, …).
    #[serde(with = "crate::shard::exact_values")]
    pub coords: BTreeMap<String, Vec<f64>>,
}

impl FileScan {
    /// A file that could not be read at all, standing in the group for its variable (the one
    /// its path names), which the builders then leave out with `reason`.
    pub fn unreadable(source: SourceFile, reason: String) -> FileScan {
        FileScan {
            manifest: floe_formats::FileManifest::unreadable(&source.variable, source.size, reason),
            source,
            coords: BTreeMap::new(),
        }
    }

    /// Shares this file's attributes and codecs with `earlier`'s where they are equal
    /// ([`FileManifest::share_metadata_with`]): a group's scans then hold each distinct
    /// attribute map once, not once a file.
    pub fn share_metadata_with(&mut self, earlier: &FileScan) {
        self.manifest.share_metadata_with(&earlier.manifest);
    }
}

/// [`FileScan::share_metadata_with`] along a series: each scan with the one before it.
pub fn share_metadata(scans: &mut [FileScan]) {
    for i in 1..scans.len() {
        let (before, rest) = scans.split_at_mut(i);
        rest[0].share_metadata_with(&before[i - 1]);
    }
}

/// A variable left out of the group, or kept on its own time axis, and why
/// (the wire type: the store's readers show it too).
pub use floe_wire::VariableWarning as Warning;

/// Why a batch cannot become a group.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GroupError {
    /// No variable of the batch could be used.
    #[error("group {group}: no variable could be merged ({} warnings: {})", warnings.len(), warnings.iter().map(|w| format!("{}: {}: {}", w.file, w.variable, w.reason)).collect::<Vec<_>>().join("; "))]
    Empty {
        /// The group.
        group: String,
        /// Why each variable was left out.
        warnings: Vec<Warning>,
    },
}

/// The merged group.
#[derive(Debug, Clone)]
pub struct GroupBuild {
    /// What the committer writes.
    pub fragment: ManifestFragment,
    /// Variables left out.
    pub warnings: Vec<Warning>,
    /// Normalizations applied.
    pub notes: Vec<String>,
}

/// The group's x/y grid: the first file's, or regenerated where unusable.
pub(crate) struct Grid {
    x: Vec<f64>,
    y: Vec<f64>,
    x_attrs: Map<String, Value>,
    y_attrs: Map<String, Value>,
}

fn is_time_name(name: &str) -> bool {
    matches!(name.to_ascii_lowercase().as_str(), "time" | "t" | "times")
}

/// Merges the scanned files of a batch into one ISMIP6 group: the one builder
/// ([`crate::build`]) under the rule [`Rule::Ismip6Years`].
pub fn build_group(batch: &BatchDescriptor, scans: &[FileScan]) -> Result<GroupBuild, GroupError> {
    crate::build::build(batch, scans, Rule::Ismip6Years).map_err(|e| match e {
        SeriesError::NothingBuilt { group, left_out } => GroupError::Empty {
            group,
            warnings: left_out,
        },
        other => GroupError::Empty {
            group: batch.group.group_path(),
            warnings: vec![Warning::left_out("", "", other.to_string())],
        },
    })
}

/// The ISMIP6 steps of a file: its one data variable, on the group's grid,
/// with its time binned to years by the archive's quirk rules. A variable
/// without a time dimension makes its file fixed; one that cannot be used is
/// left out, named.
pub(crate) fn read_files<'a>(scans: &'a [FileScan], state: &mut State) -> FilesRead<'a> {
    let mut files = FilesRead {
        per_scan: vec![Vec::new(); scans.len()],
        times: Vec::with_capacity(scans.len()),
        fixed: Vec::new(),
    };
    for (i, scan) in scans.iter().enumerate() {
        let read = read_file(scan, state);
        files.times.push(None);
        match read {
            Ok((var, None)) => {
                files.per_scan[i] = vec![var];
                files.fixed.push(i);
            }
            Ok((var, Some(time))) => {
                files.per_scan[i] = vec![var];
                files.times[i] = Some(time);
            }
            Err((variable, reason)) => state.left_out.add(&variable, &scan.source.url, reason),
        }
    }
    files
}

/// One file's data variable and its steps (`None`: no time dimension), or the
/// variable left out and why.
fn read_file<'a>(
    scan: &'a FileScan,
    state: &mut State,
) -> Result<(&'a VariableManifest, Option<ScanTime>), (String, String)> {
    let var =
        data_variable(scan).ok_or_else(|| (scan.source.variable.clone(), missing_reason(scan)))?;
    let fail = |reason: String| (var.variable.clone(), reason);
    crate::build::zarr_type(var).map_err(fail)?;
    if let Some((ydim, xdim)) = spatial_dims(var) {
        check_grid(scan, var, &ydim, &xdim, &mut state.grid, &mut state.notes).map_err(fail)?;
    }
    let Some(time_dim) = var.dimensions.first().filter(|d| is_time_name(d)) else {
        return Ok((var, None));
    };
    let values = scan.coords.get(time_dim).cloned().unwrap_or_default();
    if values.len() as u64 != var.shape[0] {
        return Err(fail(format!(
            "time coordinate has {} values for {} steps",
            values.len(),
            var.shape[0]
        )));
    }
    let attrs = scan
        .manifest
        .variables
        .iter()
        .find(|v| &v.variable == time_dim)
        .map(|v| (*v.attributes).clone())
        .unwrap_or_default();
    let axis = decode_time(&values, &attrs).map_err(|e| fail(e.to_string()))?;
    for n in &axis.notes {
        state.notes.insert(format!("{}: {n}", scan.source.variable));
    }
    let years: Vec<i32> = axis.dates.iter().map(|d| d.year).collect();
    if years.windows(2).any(|w| w[1] <= w[0]) {
        return Err(fail("time steps are not one per year in increasing order (sub-annual or unsorted time is not supported)".into()));
    }
    Ok((var, Some(year_steps(&years))))
}

/// Steps binned to calendar years: each at the instant of its year's January 1
/// (proleptic Gregorian seconds since 2000-01-01), so that the shared
/// placement orders and places them like any instant.
fn year_steps(years: &[i32]) -> ScanTime {
    let instants = years
        .iter()
        .map(|&year| (january_first(year) * 86_400.0) as i64)
        .collect();
    ScanTime {
        calendar_name: OUTPUT_CALENDAR.to_string(),
        calendar: CfCalendar::ProlepticGregorian,
        units: CfUnits {
            unit_seconds: 86_400,
            reference: crate::cftime::DateTime {
                year: 2000,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
            },
        },
        units_text: OUTPUT_UNITS.to_string(),
        instants,
    }
}

fn january_first(year: i32) -> f64 {
    days_since_2000(CivilDate {
        year,
        month: 1,
        day: 1,
    })
}

/// An ISMIP6 variable's dimensions on the group: `time`, then the grid's `y`, `x`.
pub(crate) fn grid_dimensions(var: &VariableManifest) -> Vec<String> {
    let mut dims = vec!["time".to_string()];
    if spatial_dims(var).is_some() {
        dims.extend(["y".to_string(), "x".to_string()]);
    }
    dims
}

/// A variable whose chunks cannot sit on the shared axis keeps an axis of its
/// own, `time_{var}` (ISMIP6), with the reason among the group's warnings.
pub(crate) fn own_axis(
    piece: &Piece,
    dims: &[String],
    misfit: SeriesError,
    state: &mut State,
) -> Vec<ArrayFragment> {
    let var = piece.variable;
    let reason = match misfit {
        SeriesError::Concat(ConcatError::ChunkGrid { misfit, .. }) => misfit.to_string(),
        other => other.to_string(),
    };
    state.apart.push(Warning {
        kept_apart: true,
        ..Warning::left_out(
            piece.file,
            &var.variable,
            format!("kept on its own time axis time_{}: {reason}", var.variable),
        )
    });
    let axis_name = format!("time_{}", var.variable);
    let mut dims = dims.to_vec();
    dims[0] = axis_name.clone();
    let years: Vec<f64> = piece
        .instants
        .iter()
        .map(|t| (*t / 86_400) as f64)
        .collect();
    state.notes.insert(format!(
        "{}: chunks span {} time steps; kept on its own axis {axis_name}",
        var.variable,
        var.chunk_shape.first().copied().unwrap_or(1)
    ));
    vec![
        time_array(&axis_name, &years),
        data_array(
            var,
            &var.shape,
            &var.chunk_shape,
            &dims,
            own_axis_refs(var, piece.index),
            &mut state.notes,
        ),
    ]
}

/// The year-binned time coordinate (January 1 of each year, days since
/// 2000-01-01) and the x/y grid.
pub(crate) fn coordinates(union: &[i64], arrays: &mut Vec<ArrayFragment>, state: &mut State) {
    if !union.is_empty() {
        let days: Vec<f64> = union.iter().map(|t| (*t / 86_400) as f64).collect();
        arrays.push(time_array("time", &days));
        state
            .notes
            .insert("time: binned to calendar years; the coordinate is Jan 1 of each year".into());
    }
    if let Some(g) = &state.grid {
        arrays.push(coordinate_array("x", &g.x, g.x_attrs.clone()));
        arrays.push(coordinate_array("y", &g.y, g.y_attrs.clone()));
    }
}

/// The variables without time (on the grid), the grid mappings the data
/// variables name (from the first file that has each), and a note naming every
/// other variable of the files, which ISMIP6 groups do not carry.
pub(crate) fn companions(
    scans: &[FileScan],
    files: &FilesRead,
    ordered: &Ordered,
    arrays: &mut Vec<ArrayFragment>,
    state: &mut State,
) {
    for &i in &files.fixed {
        for var in &files.per_scan[i] {
            let dims: Vec<String> = if spatial_dims(var).is_some() {
                vec!["y".into(), "x".into()]
            } else {
                var.dimensions.clone()
            };
            let refs = own_axis_refs(var, i);
            arrays.push(data_array(
                var,
                &var.shape,
                &var.chunk_shape,
                &dims,
                refs,
                &mut state.notes,
            ));
        }
    }
    let mut mappings: BTreeSet<String> = BTreeSet::new();
    for piece in ordered.values().flatten() {
        if let Some(Value::String(m)) = piece.variable.attributes.get("grid_mapping") {
            if mappings.insert(m.clone()) {
                let mapping = scans[piece.index]
                    .manifest
                    .variables
                    .iter()
                    .find(|v| &v.variable == m && v.shape.is_empty());
                if let Some(mv) = mapping {
                    arrays.push(mapping_array(mv, piece.index));
                }
            }
        }
    }
    name_not_carried(scans, arrays, state);
}

/// The built ISMIP6 group, named by its identity; a group of coordinates alone
/// is no group.
pub(crate) fn finish_ismip6(
    batch: &BatchDescriptor,
    scans: &[FileScan],
    arrays: Vec<ArrayFragment>,
    state: State,
) -> Result<GroupBuild, SeriesError> {
    let mut warnings = state.left_out.into_warnings();
    warnings.extend(state.apart);
    warnings.extend(state.not_carried);
    if arrays
        .iter()
        .all(|a| a.name == "time" || a.name == "x" || a.name == "y")
    {
        return Err(SeriesError::NothingBuilt {
            group: batch.group.group_path(),
            left_out: warnings,
        });
    }
    let field = |name| batch.group.field(name);
    let identity = json!({"ice_sheet": field("ice_sheet"), "institution": field("institution"),
                          "model": field("model"), "experiment": field("experiment")});
    Ok(finish(
        batch,
        scans,
        arrays,
        state.notes,
        warnings,
        ("floe_group", identity),
    ))
}

/// ISMIP6 groups hold each file's data variable on a year-binned axis and one
/// x/y grid, as the original pipeline did: the files' other variables (time and
/// grid bounds, 2-D lat/lon) are not carried. Each is a warning in the group's
/// `floe_warnings` and the run's summary, naming the first file that holds it
/// and how many do; never dropped without a word. The group is not partial: no
/// data variable is missing.
fn name_not_carried(scans: &[FileScan], arrays: &[ArrayFragment], state: &mut State) {
    let kept: BTreeSet<&str> = arrays.iter().map(|a| a.name.as_str()).collect();
    let warned: BTreeSet<String> = (state.left_out.0.values().chain(&state.apart))
        .map(|w| w.variable.clone())
        .collect();
    let mut files: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
    for scan in scans {
        for var in &scan.manifest.variables {
            let name = var.variable.as_str();
            if !kept.contains(name) && !warned.contains(name) && !is_time_name(name) {
                files.entry(name).or_insert((&scan.source.url, 0)).1 += 1;
            }
        }
    }
    for (name, (first, count)) in files {
        state.not_carried.push(Warning::not_carried(
            first,
            name,
            format!(
                "not carried ({count} file(s) hold it): ISMIP6 groups hold each file's data variable on the year-binned time axis and the x/y grid"
            ),
        ));
    }
}

/// The built group: arrays in name order, the provenance attributes every group
/// carries (batch id, normalizations, warnings; the input files travel as the
/// fragment's sources, and the committer records them beside the group) and one more
/// attribute that names what built it.
pub(crate) fn finish(
    batch: &BatchDescriptor,
    scans: &[FileScan],
    mut arrays: Vec<ArrayFragment>,
    notes: BTreeSet<String>,
    warnings: Vec<Warning>,
    (key, value): (&str, Value),
) -> GroupBuild {
    arrays.sort_by(|a, b| a.name.cmp(&b.name));
    let mut notes = notes;
    let mut attrs = source_attributes(scans, &mut notes);
    let mut warnings = warnings;
    let first = scans
        .first()
        .map(|s| s.source.url.as_str())
        .unwrap_or_default();
    let crate::tree::Subgroups {
        tree: mut subgroups,
        differing,
    } = crate::tree::subgroups(scans, &mut arrays, &mut warnings);
    if let Some(Value::Array(names)) = attrs.get_mut(DIFFERING_ATTRIBUTES) {
        names.extend(differing.into_iter().map(Value::from));
    }
    bound_attributes(
        first,
        &mut attrs,
        &mut subgroups,
        &mut arrays,
        &mut warnings,
    );
    let notes: Vec<String> = notes.into_iter().collect();
    attrs.insert("floe_batch_id".into(), Value::from(batch.batch_id.clone()));
    attrs.insert(key.into(), value);
    attrs.insert("floe_normalizations".into(), Value::from(notes.clone()));
    attrs.insert(
        "floe_warnings".into(),
        serde_json::to_value(&warnings).unwrap_or(Value::Null),
    );
    GroupBuild {
        fragment: ManifestFragment {
            schema_version: SCHEMA_VERSION,
            batch_id: batch.batch_id.clone(),
            group_path: batch.group.group_path(),
            group_attributes: attrs,
            subgroups,
            sources: scans.iter().map(|s| s.source.clone()).collect(),
            arrays,
            append: batch.append.clone(),
            replaces: batch.replaces.clone(),
        },
        warnings,
        notes,
    }
}

/// Source attributes too large to store ([`floe_wire::Limits::attribute_bytes`]),
/// of the group, its sub-groups and each array, taken out and named in the
/// warnings (as not carried: no data is missing), never stored whole or cut.
fn bound_attributes(
    file: &str,
    group: &mut Map<String, Value>,
    subgroups: &mut BTreeMap<String, Map<String, Value>>,
    arrays: &mut [ArrayFragment],
    warnings: &mut Vec<Warning>,
) {
    let mut take = |owner: &str, attributes: &mut Map<String, Value>| {
        for (key, size) in floe_wire::oversized_attributes(attributes) {
            attributes.remove(&key);
            warnings.push(Warning::not_carried(
                file,
                owner,
                format!(
                    "attribute {key}: {size} bytes, more than the {} a stored attribute may take (FLOE_MAX_ATTRIBUTE_BYTES)",
                    floe_wire::limits().attribute_bytes
                ),
            ));
        }
    };
    take("", group);
    for (path, attributes) in subgroups {
        take(path, attributes);
    }
    for array in arrays {
        if let Some(Value::Object(attributes)) = array.zarr_json.get_mut("attributes") {
            take(&array.name, attributes);
        }
    }
}

/// The group attributes of the source, as `xr.open_mfdataset` gives them by
/// default: the first readable file's global attributes. The names of those
/// that differ between the group's files (`tracking_id`, `creation_date`) are
/// kept in `floe_differing_attributes`, so nobody takes the first file's value
/// for the group's. A source attribute named like one of floe's own (`floe_*`)
/// is kept as `floe_source_{name}`, with a note, and never overwritten.
pub(crate) fn source_attributes(
    scans: &[FileScan],
    notes: &mut BTreeSet<String>,
) -> Map<String, Value> {
    let mut readable = scans.iter().filter(|s| !s.manifest.is_unreadable());
    let Some(first) = readable.next() else {
        return Map::new();
    };
    let globals = &first.manifest.attributes;
    let mut differing: BTreeSet<&str> = BTreeSet::new();
    for scan in readable {
        let theirs = &scan.manifest.attributes;
        if std::sync::Arc::ptr_eq(globals, theirs) {
            continue;
        }
        for name in globals.keys().chain(theirs.keys()) {
            if globals.get(name) != theirs.get(name) {
                differing.insert(name);
            }
        }
    }
    let mut attrs = Map::new();
    for (name, value) in globals.iter() {
        if name.starts_with("floe_") {
            notes.insert(format!(
                "global attribute {name}: its name is floe's own; kept as floe_source_{name}"
            ));
            attrs.insert(format!("floe_source_{name}"), value.clone());
        } else {
            attrs.insert(name.clone(), value.clone());
        }
    }
    attrs.insert(
        DIFFERING_ATTRIBUTES.into(),
        Value::from(differing.into_iter().collect::<Vec<_>>()),
    );
    attrs
}

/// Why a file has no usable data variable. A variable the reader could not
/// describe (an unsupported filter or type) is in the file's problems: say why,
/// not just "not found".
pub(crate) fn missing_reason(scan: &FileScan) -> String {
    scan.manifest
        .problems
        .iter()
        .find(|p| p.variable == scan.source.variable)
        .map_or_else(
            || "variable not found in file".to_string(),
            |p| p.error.clone(),
        )
}

/// The file's variable named like its path says, else its only non-coordinate
/// variable with more than a scalar shape.
pub(crate) fn data_variable(scan: &FileScan) -> Option<&VariableManifest> {
    let vars = &scan.manifest.variables;
    vars.iter()
        .find(|v| v.variable == scan.source.variable)
        .or_else(|| {
            let candidates: Vec<&VariableManifest> = vars
                .iter()
                .filter(|v| {
                    let is_coordinate = v.dimensions.len() == 1 && v.dimensions[0] == v.variable;
                    !(v.shape.is_empty() || is_coordinate || v.variable.ends_with("_bnds"))
                })
                .collect();
            (candidates.len() == 1).then(|| candidates[0])
        })
}

/// The (y, x) dimension names of a variable with two trailing spatial dims.
fn spatial_dims(var: &VariableManifest) -> Option<(String, String)> {
    let n = var.dimensions.len();
    let first_is_time = var.dimensions.first().is_some_and(|d| is_time_name(d));
    let spatial = n - usize::from(first_is_time);
    (spatial == 2).then(|| (var.dimensions[n - 2].clone(), var.dimensions[n - 1].clone()))
}

fn check_grid(
    scan: &FileScan,
    var: &VariableManifest,
    ydim: &str,
    xdim: &str,
    grid: &mut Option<Grid>,
    notes: &mut BTreeSet<String>,
) -> Result<(), String> {
    let n = var.shape.len();
    let (ny, nx) = (var.shape[n - 2], var.shape[n - 1]);
    if let Some((axis, points)) = [("y", ny), ("x", nx)]
        .into_iter()
        .find(|(_, p)| *p > floe_wire::limits().axis_points)
    {
        return Err(format!(
            "grid {ny}x{nx}: {axis} has {points} points, more than the {} a grid axis may have (FLOE_MAX_AXIS_POINTS)",
            floe_wire::limits().axis_points
        ));
    }
    let (ny, nx) = (ny as usize, nx as usize);
    if let Some(g) = grid {
        if g.y.len() != ny || g.x.len() != nx {
            return Err(format!(
                "grid {ny}x{nx} does not match the group's {}x{}",
                g.y.len(),
                g.x.len()
            ));
        }
        return Ok(());
    }
    let attrs_of = |name: &str| {
        scan.manifest
            .variables
            .iter()
            .find(|v| v.variable == name)
            .map(|v| (*v.attributes).clone())
            .unwrap_or_default()
    };
    let mut coordinate = |name: &str, len: usize, axis: &str| -> Vec<f64> {
        match scan.coords.get(name) {
            Some(v) if grid::is_usable(v, len) => v.clone(),
            other => {
                let (values, spacing) = grid::regenerate(len);
                let why = if other.is_some() {
                    "unusable (duplicates, gaps or wrong length)"
                } else {
                    "missing"
                };
                notes.insert(format!(
                    "grid: {axis} {why} in {}; regenerated at {} km",
                    scan.source.url,
                    spacing / 1000.0
                ));
                values
            }
        }
    };
    let x = coordinate(xdim, nx, "x");
    let y = coordinate(ydim, ny, "y");
    let with_units = |mut a: Map<String, Value>, axis: &str| {
        a.remove("_FillValue");
        a.entry("units").or_insert(Value::from("m"));
        a.entry("standard_name")
            .or_insert(Value::from(format!("projection_{axis}_coordinate")));
        a
    };
    *grid = Some(Grid {
        x,
        y,
        x_attrs: with_units(attrs_of(xdim), "x"),
        y_attrs: with_units(attrs_of(ydim), "y"),
    });
    Ok(())
}

/// One reference per time step of a contiguous array: step `t` starts at
/// `offset + t * (product of the other dims) * itemsize`.
pub(crate) fn split_contiguous(var: &VariableManifest) -> (Vec<u64>, Vec<ChunkRef>) {
    let mut chunk_shape = var.shape.clone();
    chunk_shape[0] = 1;
    let Some(whole) = var.chunks.first() else {
        return (chunk_shape, Vec::new());
    };
    let step_bytes = var.shape[1..].iter().product::<u64>() * var.item_size().unwrap_or(0);
    let rest = vec![0u64; var.shape.len() - 1];
    let chunks = (0..var.shape[0])
        .map(|t| ChunkRef {
            index: std::iter::once(t).chain(rest.iter().copied()).collect(),
            offset: whole.offset + t * step_bytes,
            length: step_bytes,
        })
        .collect();
    (chunk_shape, chunks)
}

/// A variable's chunk references as they are in its file `source`.
pub(crate) fn own_axis_refs(var: &VariableManifest, source: usize) -> Vec<VirtualRef> {
    var.chunks
        .iter()
        .map(|c| VirtualRef {
            index: c.index.iter().map(|&i| i as u32).collect(),
            source: source as u32,
            offset: c.offset,
            length: c.length,
        })
        .collect()
}

/// A data variable on the shared `time` axis of `union_len` steps.
pub(crate) fn data_array(
    var: &VariableManifest,
    shape: &[u64],
    chunk_shape: &[u64],
    dims: &[String],
    refs: Vec<VirtualRef>,
    notes: &mut BTreeSet<String>,
) -> ArrayFragment {
    let mut attributes = (*var.attributes).clone();
    let source_fill = attributes.remove("_FillValue");
    let is_float = var.dtype.contains('f');
    let fill_value = if is_float {
        if let Some(f) = source_fill.filter(|f| f.as_f64().is_some()) {
            if !attributes.contains_key("missing_value") {
                notes.insert(format!(
                    "{}: fill value NaN; source _FillValue kept as missing_value",
                    var.variable
                ));
                attributes.insert("missing_value".into(), f);
            }
        }
        Value::from("NaN")
    } else {
        // Readers of Zarr v3 (xarray) mask by the `_FillValue` attribute, not
        // by the array's fill value: an integer variable keeps both, or its
        // masked points would decode as numbers.
        if let Some(f) = source_fill {
            attributes.insert("_FillValue".into(), f);
        }
        var.fill_value.clone()
    };
    let inline_chunks = var
        .inline_data
        .as_ref()
        .map(|d| {
            vec![InlineChunk {
                index: vec![0; shape.len()],
                data: d.clone(),
            }]
        })
        .unwrap_or_default();
    let document = zarr::array_document(
        shape,
        chunk_shape,
        zarr::data_type(&var.dtype).unwrap_or("float32"),
        fill_value,
        &var.codecs,
        attributes,
        dims,
    );
    ArrayFragment {
        name: var.variable.clone(),
        zarr_json: document,
        refs,
        inline_chunks,
    }
}

fn mapping_array(var: &VariableManifest, source: usize) -> ArrayFragment {
    let mut attributes = (*var.attributes).clone();
    attributes.remove("_FillValue");
    let document = zarr::array_document(
        &[],
        &[],
        zarr::data_type(&var.dtype).unwrap_or("int32"),
        var.fill_value.clone(),
        &var.codecs,
        attributes,
        &[],
    );
    ArrayFragment {
        name: var.variable.clone(),
        zarr_json: document,
        refs: own_axis_refs(var, source),
        inline_chunks: var
            .inline_data
            .as_ref()
            .map(|d| {
                vec![InlineChunk {
                    index: vec![],
                    data: d.clone(),
                }]
            })
            .unwrap_or_default(),
    }
}

pub(crate) fn f64_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(crate) fn coordinate_array(
    name: &str,
    values: &[f64],
    attributes: Map<String, Value>,
) -> ArrayFragment {
    inline_coordinate(
        name,
        values.len(),
        ("float64", Value::from("NaN")),
        f64_bytes(values),
        attributes,
    )
}

/// The values in a numpy dtype (`<f4`, `>i4`, …) as little-endian bytes, with
/// the Zarr data type, when every value is exact in it; `None` otherwise.
pub(crate) fn exact_bytes(values: &[f64], dtype: &str) -> Option<(&'static str, Vec<u8>)> {
    let zarr_type = zarr::data_type(dtype)?;
    let mut out = Vec::with_capacity(values.len() * 8);
    for &v in values {
        let ok = match zarr_type {
            "float64" => {
                out.extend(v.to_le_bytes());
                true
            }
            "float32" => {
                let w = v as f32;
                out.extend(w.to_le_bytes());
                f64::from(w) == v || (v.is_nan() && w.is_nan())
            }
            "int8" | "int16" | "int32" | "int64" | "uint8" | "uint16" | "uint32" | "uint64" => {
                let bits = dtype.get(2..).and_then(|n| n.parse::<u32>().ok())? * 8;
                let signed = zarr_type.starts_with("int");
                let (lo, hi) = if signed {
                    (
                        -(2f64.powi(bits as i32 - 1)),
                        2f64.powi(bits as i32 - 1) - 1.0,
                    )
                } else {
                    (0.0, 2f64.powi(bits as i32) - 1.0)
                };
                let fits = v.fract() == 0.0 && v >= lo && v <= hi;
                let bytes = (v as i64).to_le_bytes();
                out.extend(&bytes[..(bits / 8) as usize]);
                fits
            }
            _ => false,
        };
        if !ok {
            return None;
        }
    }
    Some((zarr_type, out))
}

/// A 1-D coordinate in its source dtype (`lat` stored as float32 stays
/// float32, an int32 time stays int32) when every value is exact in it, else in
/// float64 with a note saying why.
pub(crate) fn typed_coordinate_array(
    name: &str,
    values: &[f64],
    source_dtype: Option<&str>,
    attributes: Map<String, Value>,
    notes: &mut BTreeSet<String>,
) -> ArrayFragment {
    let exact = source_dtype.and_then(|d| exact_bytes(values, d));
    let Some((data_type, bytes)) = exact else {
        if let Some(d) = source_dtype.filter(|d| zarr::data_type(d) != Some("float64")) {
            notes.insert(format!(
                "{name}: stored as float64: its values are not exact in the source's {d}"
            ));
        }
        return coordinate_array(name, values, attributes);
    };
    let fill = if data_type.starts_with("float") {
        Value::from("NaN")
    } else {
        Value::from(0)
    };
    inline_coordinate(name, values.len(), (data_type, fill), bytes, attributes)
}

/// A 1-D coordinate of `n` values held in one inline chunk of `bytes`.
fn inline_coordinate(
    name: &str,
    n: usize,
    (data_type, fill): (&str, Value),
    bytes: Vec<u8>,
    attributes: Map<String, Value>,
) -> ArrayFragment {
    let n = n as u64;
    let document = zarr::array_document(
        &[n],
        &[n.max(1)],
        data_type,
        fill,
        &[zarr::little_endian()],
        attributes,
        &[name.to_string()],
    );
    ArrayFragment {
        name: name.to_string(),
        zarr_json: document,
        refs: Vec::new(),
        inline_chunks: vec![InlineChunk {
            index: vec![0],
            data: bytes,
        }],
    }
}

fn time_array(name: &str, values: &[f64]) -> ArrayFragment {
    let mut attrs = Map::new();
    attrs.insert("units".into(), Value::from(OUTPUT_UNITS));
    attrs.insert("calendar".into(), Value::from(OUTPUT_CALENDAR));
    attrs.insert("standard_name".into(), Value::from("time"));
    attrs.insert("axis".into(), Value::from("T"));
    coordinate_array(name, values, attrs)
}
