//! The steps of the one group builder ([`crate::build`]) under exact CF time
//! (profiles with `concat` and `time = "cf-exact"`: CMIP6, MUR, `files`): the
//! files of each variable become one array on the group's axis.
//!
//! - Time is decoded exactly in each file's calendar ([`crate::cftime`]); every
//!   file of the group must share one calendar, and the stored coordinate keeps
//!   it, in the units the profile chooses (else the first file's).
//! - The group's time axis is the union of every variable's steps, by exact
//!   instant. A variable without a step reads as its fill value there.
//! - The files of a variable are checked against each other before anything is
//!   built ([`crate::concat::order_pieces`]): a mismatch fails the batch, naming
//!   both files and the property. So does a file whose chunks cannot sit on one
//!   regular chunk grid ([`crate::concat::place_pieces`]).
//! - Contiguous uncompressed data is split per step, as in [`crate::merge`];
//!   compressed data is referenced chunk by chunk, never split.
//! - Coordinates other than time (lat, lon, …) come from the first file, and
//!   must hold the same values in every file of the group.

use std::collections::{BTreeMap, BTreeSet};

use floe_formats::VariableManifest;
use floe_wire::{ArrayFragment, BatchDescriptor, ConcatSpec, VariableSelection};
use serde_json::Value;

use crate::bounds::{inline_time_bounds, BoundsProblem, FileTime};
use crate::build::{FilesRead, Ordered, Rule, State};
use crate::cftime::{self, CfCalendar, CfUnits};
use crate::concat::{ConcatError, PropertyMismatch};
use crate::merge::{
    data_array, data_variable, finish, missing_reason, own_axis_refs, typed_coordinate_array,
};
use crate::{FileScan, GroupBuild, Warning};

/// Why a batch cannot become a concatenated group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeriesError {
    /// The files of a variable do not fit together.
    #[error(transparent)]
    Concat(#[from] ConcatError),
    /// A file's variable or time cannot be used.
    #[error("{file}: {reason}")]
    File {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// Nothing to build.
    #[error("group {0}: no file holds its variable")]
    Empty(String),
    /// Every variable was left out.
    #[error("group {group}: no variable could be built ({})", left_out.iter().map(named).collect::<Vec<_>>().join("; "))]
    NothingBuilt {
        /// The group.
        group: String,
        /// Each variable, the file at fault and why.
        left_out: Vec<Warning>,
    },
    /// A variable some files of the group hold and others do not.
    #[error("{variable} is in {present} but not in {absent}: every file of a group must hold the same variables (a profile's exclude_variables can leave it out)")]
    Uneven {
        /// The variable.
        variable: String,
        /// A file that holds it.
        present: String,
        /// A file that does not.
        absent: String,
    },
}

/// A variable left out, with the file at fault when there is one.
fn named(w: &Warning) -> String {
    if w.file.is_empty() {
        format!("{}: {}", w.variable, w.reason)
    } else {
        format!("{}: {}: {}", w.file, w.variable, w.reason)
    }
}

fn file_error(scan: &FileScan, reason: impl Into<String>) -> SeriesError {
    SeriesError::File {
        file: scan.source.url.clone(),
        reason: reason.into(),
    }
}

/// One file's steps along the group's axis.
pub(crate) struct ScanTime {
    /// The calendar, as written.
    pub calendar_name: String,
    /// The calendar.
    pub calendar: CfCalendar,
    /// The time units.
    pub units: CfUnits,
    /// The units, as written.
    pub units_text: String,
    /// Each step's exact instant (ISMIP6: the instant of January 1 of its year).
    pub instants: Vec<i64>,
}

/// The file's time coordinate, decoded exactly.
fn scan_time(scan: &FileScan, dimension: &str) -> Result<ScanTime, SeriesError> {
    if scan.manifest.is_unreadable() {
        return Err(file_error(scan, crate::merge::missing_reason(scan)));
    }
    let time_var = scan
        .manifest
        .variables
        .iter()
        .find(|v| v.variable == dimension)
        .ok_or_else(|| file_error(scan, format!("no {dimension} coordinate variable")))?;
    if time_var.dimensions.as_slice() != [dimension] {
        let shape = if time_var.dimensions.is_empty() {
            "is a scalar".to_string()
        } else {
            format!("has dimensions ({})", time_var.dimensions.join(", "))
        };
        return Err(file_error(
            scan,
            format!("{dimension} {shape}, not a 1-D coordinate along {dimension}: the file's steps cannot be told"),
        ));
    }
    let values = scan
        .coords
        .get(dimension)
        .ok_or_else(|| file_error(scan, format!("{dimension} values could not be read")))?;
    let attr = |k: &str| time_var.attributes.get(k).and_then(Value::as_str);
    let units_text = attr("units").unwrap_or_default().to_string();
    let units = cftime::parse_units(&units_text)
        .map_err(|e| file_error(scan, format!("{dimension}: {e}")))?;
    let calendar_name = attr("calendar").unwrap_or("standard").to_string();
    let calendar = CfCalendar::parse(Some(&calendar_name))
        .map_err(|e| file_error(scan, format!("{dimension}: {e}")))?;
    let instants = values
        .iter()
        .map(|v| cftime::value_instant(*v, &units, calendar))
        .collect::<Result<Vec<i64>, _>>()
        .map_err(|e| file_error(scan, format!("{dimension}: {e}")))?;
    Ok(ScanTime {
        calendar_name,
        calendar,
        units,
        units_text,
        instants,
    })
}

/// The variables left out of a group so far, by name, each with its first reason.
#[derive(Default)]
pub(crate) struct LeftOut(pub BTreeMap<String, Warning>);

impl LeftOut {
    /// Leaves `variable` out for `reason`, unless it already is.
    pub fn add(&mut self, variable: &str, file: &str, reason: String) {
        self.0
            .entry(variable.to_string())
            .or_insert_with(|| Warning::left_out(file, variable, reason));
    }

    /// Whether `variable` is left out.
    pub fn has(&self, variable: &str) -> bool {
        self.0.contains_key(variable)
    }

    /// Every variable left out, by name.
    pub fn into_warnings(self) -> Vec<Warning> {
        self.0.into_values().collect()
    }
}

/// The data variables a file gives the group: the one its path names, or, with
/// a selection, every variable along the dimension that the selection takes. A
/// variable that cannot be used in this file is left out of the group.
fn file_variables<'a>(
    scan: &'a FileScan,
    dimension: &str,
    selection: Option<&VariableSelection>,
    left_out: &mut LeftOut,
) -> Vec<&'a VariableManifest> {
    let url = scan.source.url.as_str();
    let along = |v: &VariableManifest| v.dimensions.first().map(String::as_str) == Some(dimension);
    let Some(selection) = selection else {
        let Some(var) = data_variable(scan) else {
            left_out.add(&scan.source.variable, url, missing_reason(scan));
            return Vec::new();
        };
        if !along(var) {
            let reason = format!(
                "{dimension} must be the first dimension to concatenate along it (dimensions: {})",
                var.dimensions.join(", ")
            );
            left_out.add(&var.variable, url, reason);
            return Vec::new();
        }
        return vec![var];
    };
    for p in &scan.manifest.problems {
        if selection.takes(&p.variable) {
            left_out.add(&p.variable, url, p.error.clone());
        }
    }
    let held = |name: &str| scan.manifest.variables.iter().any(|v| v.variable == name);
    for name in selection.include.iter().filter(|n| !held(n)) {
        left_out.add(
            name,
            url,
            "named in the profile's variables, not in this file".into(),
        );
    }
    scan.manifest
        .variables
        .iter()
        .filter(|v| v.variable != dimension && along(v) && selection.takes(&v.variable))
        .collect()
}

/// Every file must hold the same variables: one that some files lack would
/// read as fill values there, silently. It is left out, naming a file with it
/// and a file without it.
fn check_presence(scans: &[&FileScan], names: &[BTreeSet<&str>], left_out: &mut LeftOut) {
    let every: BTreeSet<&str> = names.iter().flatten().copied().collect();
    for variable in every {
        let with = names.iter().position(|n| n.contains(variable));
        let without = names.iter().position(|n| !n.contains(variable));
        if let (Some(with), Some(without)) = (with, without) {
            let reason = SeriesError::Uneven {
                variable: variable.to_string(),
                present: scans[with].source.url.clone(),
                absent: scans[without].source.url.clone(),
            }
            .to_string();
            left_out.add(variable, &scans[without].source.url, reason);
        }
    }
}

/// Builds a group whose variables are concatenated along `spec.dimension`: the
/// one builder ([`crate::build`]) under the rule [`Rule::CfExact`].
pub fn build_series_group(
    batch: &BatchDescriptor,
    scans: &[FileScan],
    spec: &ConcatSpec,
) -> Result<GroupBuild, SeriesError> {
    crate::build::build(batch, scans, Rule::CfExact(spec))
}

/// What concerns every variable: one calendar for the group; in files of
/// several variables, every file holds the same ones.
pub(crate) fn check_files(
    scans: &[FileScan],
    files: &FilesRead,
    spec: &ConcatSpec,
    left_out: &mut LeftOut,
) -> Result<(), SeriesError> {
    check_calendar(scans, &files.times, &files.per_scan, &spec.dimension)?;
    if spec.file_variables.is_some() {
        let timed = files.timed();
        let with_time: Vec<&FileScan> = timed.iter().map(|&i| &scans[i]).collect();
        let names: Vec<BTreeSet<&str>> = timed
            .iter()
            .map(|&i| {
                files.per_scan[i]
                    .iter()
                    .map(|v| v.variable.as_str())
                    .collect()
            })
            .collect();
        check_presence(&with_time, &names, left_out);
    }
    Ok(())
}

/// The stored time's units: the profile's, else the first timed file's.
fn stored_units(spec: &ConcatSpec, files: &FilesRead) -> String {
    match (&spec.time_units, files.times.iter().flatten().next()) {
        (Some(text), _) => text.clone(),
        (None, Some(t)) => t.units_text.clone(),
        (None, None) => String::new(),
    }
}

/// What the coordinates step needs of the steps before it.
pub(crate) struct Timeline<'a> {
    /// The files read.
    pub files: &'a FilesRead<'a>,
    /// The variables placed, with their pieces.
    pub ordered: &'a Ordered<'a>,
    /// The union of their steps.
    pub union: &'a [i64],
    /// How the time bounds are kept, if the files have any.
    pub bounds: Option<TimeBounds>,
}

/// The time coordinate in the source calendar, in the stored units; the time
/// bounds; the other coordinates from the first file (every file must agree).
pub(crate) fn coordinates(
    scans: &[FileScan],
    spec: &ConcatSpec,
    timeline: &Timeline,
    arrays: &mut Vec<ArrayFragment>,
    state: &mut State,
) -> Result<(), SeriesError> {
    let files = timeline.files;
    let first = files.timed()[0];
    let units_text = stored_units(spec, files);
    let time = time_coordinate(
        spec,
        &scans[first],
        files.times[first].as_ref(),
        &units_text,
        timeline.union,
        &mut state.notes,
    )?;
    arrays.push(time);
    if let Some(TimeBounds::Inline(name)) = &timeline.bounds {
        inline_bounds(scans, spec, timeline, name, arrays, state);
    }
    let kept: Vec<Vec<&VariableManifest>> = (0..scans.len())
        .map(|i| match files.times[i] {
            Some(_) => files.per_scan[i]
                .iter()
                .copied()
                .filter(|v| timeline.ordered.contains_key(v.variable.as_str()))
                .collect(),
            None => Vec::new(),
        })
        .collect();
    coordinate_arrays(scans, &kept, &spec.dimension, arrays)
}

/// The time bounds decoded from every timed file and written as values.
fn inline_bounds(
    scans: &[FileScan],
    spec: &ConcatSpec,
    timeline: &Timeline,
    name: &str,
    arrays: &mut Vec<ArrayFragment>,
    state: &mut State,
) {
    let units_text = stored_units(spec, timeline.files);
    let Ok(out_units) = cftime::parse_units(&units_text) else {
        return;
    };
    let files: Vec<FileTime> = timeline
        .files
        .timed()
        .into_iter()
        .filter_map(|i| {
            let t = timeline.files.times[i].as_ref()?;
            Some(FileTime {
                index: i,
                units: &t.units,
                calendar: t.calendar,
                instants: &t.instants,
            })
        })
        .collect();
    match inline_time_bounds(name, scans, &files, timeline.union, &out_units) {
        Ok(array) => {
            state.notes.insert(format!(
                "{name}: decoded like {} and stored as values in {units_text}",
                spec.dimension
            ));
            arrays.push(array);
        }
        Err(BoundsProblem { file, reason }) => state.left_out.add(name, &file, reason),
    }
}

/// Every other variable of the files, timed or fixed ([`static_arrays`]); then
/// `bounds` links to nothing are removed.
pub(crate) fn companions(
    scans: &[FileScan],
    spec: &ConcatSpec,
    files: &FilesRead,
    arrays: &mut Vec<ArrayFragment>,
    state: &mut State,
) {
    let emitted: BTreeSet<String> = arrays.iter().map(|a| a.name.clone()).collect();
    let mut all = files.timed();
    all.extend(&files.fixed);
    all.sort_unstable();
    let others = Others {
        files: &all,
        dimension: &spec.dimension,
        selection: spec.file_variables.as_ref(),
        emitted: &emitted,
    };
    arrays.extend(static_arrays(
        scans,
        &others,
        &mut state.left_out,
        &mut state.notes,
    ));
    drop_dangling_bounds(arrays);
}

/// The built group, named by its profile.
pub(crate) fn finish_series(
    batch: &BatchDescriptor,
    scans: &[FileScan],
    arrays: Vec<ArrayFragment>,
    state: State,
) -> GroupBuild {
    finish(
        batch,
        scans,
        arrays,
        state.notes,
        state.left_out.into_warnings(),
        ("floe_profile", Value::from(batch.profile.clone())),
    )
}

/// Whether a file holds anything along the dimension. One that holds nothing
/// (a grid or a mask file, CMIP6's fixed fields, a file with a scalar time or
/// no time at all) is fixed: its variables are taken as they are. A file that
/// cannot be read is not fixed: it fails as a file of the series.
fn is_fixed(scan: &FileScan, dimension: &str) -> bool {
    !scan.manifest.is_unreadable()
        && !scan
            .manifest
            .variables
            .iter()
            .any(|v| v.dimensions.iter().any(|d| d == dimension))
}

/// Every file's variables and decoded time. A file whose time cannot be read
/// takes its one variable out of the group; in files of several variables it
/// fails the group, since every variable would miss its steps.
pub(crate) fn read_files<'a>(
    scans: &'a [FileScan],
    spec: &ConcatSpec,
    left_out: &mut LeftOut,
) -> Result<FilesRead<'a>, SeriesError> {
    let dimension = spec.dimension.as_str();
    let selection = spec.file_variables.as_ref();
    let mut per_scan = Vec::with_capacity(scans.len());
    let mut times = Vec::with_capacity(scans.len());
    let mut fixed = Vec::new();
    for (i, scan) in scans.iter().enumerate() {
        if is_fixed(scan, dimension) {
            fixed.push(i);
            per_scan.push(Vec::new());
            times.push(None);
            continue;
        }
        let vars = file_variables(scan, dimension, selection, left_out);
        match scan_time(scan, dimension) {
            Ok(t) => times.push(Some(t)),
            Err(e) if selection.is_some() => return Err(e),
            Err(e) => {
                let reason = match &e {
                    SeriesError::File { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                left_out.add(&scan.source.variable, &scan.source.url, reason);
                times.push(None);
            }
        }
        per_scan.push(vars);
    }
    Ok(FilesRead {
        per_scan,
        times,
        fixed,
    })
}

/// A group none of whose files runs along the dimension: each variable
/// referenced as it is, from the first file that holds it ([`static_arrays`]).
pub(crate) fn fixed_group(
    batch: &BatchDescriptor,
    scans: &[FileScan],
    spec: &ConcatSpec,
    fixed: &[usize],
    mut state: State,
) -> Result<GroupBuild, SeriesError> {
    let group = Others {
        files: fixed,
        dimension: &spec.dimension,
        selection: spec.file_variables.as_ref(),
        emitted: &BTreeSet::new(),
    };
    let mut arrays = static_arrays(scans, &group, &mut state.left_out, &mut state.notes);
    if arrays.is_empty() {
        return Err(nothing_built(batch, state.left_out));
    }
    state.notes.insert(format!(
        "no file runs along {}: every variable is referenced as it is",
        spec.dimension
    ));
    drop_dangling_bounds(&mut arrays);
    Ok(finish_series(batch, scans, arrays, state))
}

/// Every variable was left out: the group fails, naming each.
pub(crate) fn nothing_built(batch: &BatchDescriptor, left_out: LeftOut) -> SeriesError {
    SeriesError::NothingBuilt {
        group: batch.group.group_path(),
        left_out: left_out.into_warnings(),
    }
}

/// Every file of the group whose time was read must share one calendar.
fn check_calendar(
    scans: &[FileScan],
    times: &[Option<ScanTime>],
    per_scan: &[Vec<&VariableManifest>],
    dimension: &str,
) -> Result<(), SeriesError> {
    let mut read = times
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Some((i, t.as_ref()?)));
    let Some((first_index, first)) = read.next() else {
        return Ok(());
    };
    match read.find(|(_, t)| t.calendar != first.calendar) {
        None => Ok(()),
        Some((i, time)) => Err(ConcatError::Mismatch(Box::new(PropertyMismatch {
            variable: per_scan[i]
                .first()
                .map(|v| v.variable.clone())
                .unwrap_or_default(),
            property: "time calendar".into(),
            first: scans[first_index].source.url.clone(),
            first_value: first.calendar.name().into(),
            second: scans[i].source.url.clone(),
            second_value: time.calendar.name().into(),
            dimension: dimension.into(),
        }))
        .into()),
    }
}

/// The union time axis encoded in `units_text` (the profile's, else the first
/// file's), stored in the first file's time dtype when every value is exact in it.
fn time_coordinate(
    spec: &ConcatSpec,
    first: &FileScan,
    first_time: Option<&ScanTime>,
    units_text: &str,
    union: &[i64],
    notes: &mut BTreeSet<String>,
) -> Result<ArrayFragment, SeriesError> {
    let dimension = spec.dimension.as_str();
    let profile_units = |e: cftime::CfTimeError| SeriesError::File {
        file: "the profile's time_units".into(),
        reason: e.to_string(),
    };
    let Some(first_time) = first_time else {
        return Err(SeriesError::Empty(dimension.to_string()));
    };
    let out_units = match &spec.time_units {
        Some(text) => cftime::parse_units(text).map_err(profile_units)?,
        None => first_time.units,
    };
    let calendar = first_time.calendar;
    let values = union
        .iter()
        .map(|t| cftime::encode(*t, &out_units, calendar))
        .collect::<Result<Vec<f64>, _>>()
        .map_err(profile_units)?;
    let source = first
        .manifest
        .variables
        .iter()
        .find(|v| v.variable == dimension);
    // The source's attributes (long_name, axis, bounds, …), with the units and
    // calendar the values are stored in.
    let mut attrs = source.map(|v| (*v.attributes).clone()).unwrap_or_default();
    attrs.remove("_FillValue");
    attrs.insert("units".into(), Value::from(units_text));
    attrs.insert("calendar".into(), Value::from(calendar.name()));
    notes.insert(format!(
        "{dimension}: decoded exactly in the {} calendar; stored as {units_text}",
        calendar.name()
    ));
    let source_dtype = source.map(|v| v.dtype.as_str());
    Ok(typed_coordinate_array(
        dimension,
        &values,
        source_dtype,
        attrs,
        notes,
    ))
}

/// The time coordinate's bounds variable (`time_bnds`), as the first timed
/// file's time names it, and how it is kept. Among the variables taken (files
/// of several variables) it is concatenated like data when every file's time
/// units are the stored ones by meaning; otherwise, and where each file holds
/// one variable, it is taken out of `ordered` and written as values
/// ([`crate::bounds`]).
pub(crate) fn time_bounds(
    scans: &[FileScan],
    files: &FilesRead,
    spec: &ConcatSpec,
    ordered: &mut Ordered,
) -> Option<TimeBounds> {
    let dimension = spec.dimension.as_str();
    let selection = spec.file_variables.as_ref();
    let times = &files.times;
    let out_units = cftime::parse_units(&stored_units(spec, files)).ok();
    let out_units = out_units.as_ref();
    let first = times.iter().position(Option::is_some)?;
    let name = scans[first]
        .manifest
        .variables
        .iter()
        .find(|v| v.variable == dimension)?
        .attributes
        .get("bounds")?
        .as_str()?
        .to_string();
    if selection.is_some_and(|s| !s.takes(&name)) {
        return None;
    }
    let referenced = ordered.get(name.as_str()).is_some_and(|pieces| {
        pieces
            .iter()
            .all(|p| times[p.index].as_ref().map(|t| Some(&t.units)) == Some(out_units))
    });
    if referenced {
        return Some(TimeBounds::Referenced);
    }
    ordered.remove(name.as_str());
    Some(TimeBounds::Inline(name))
}

/// A `bounds` attribute naming a variable the group does not hold (left out,
/// and named in the warnings, or not taken by the profile) is removed: CF
/// tools would look for it in vain.
fn drop_dangling_bounds(arrays: &mut [ArrayFragment]) {
    let names: BTreeSet<String> = arrays.iter().map(|a| a.name.clone()).collect();
    for array in arrays.iter_mut() {
        let Some(attrs) = array
            .zarr_json
            .get_mut("attributes")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let dangling = attrs
            .get("bounds")
            .and_then(Value::as_str)
            .is_some_and(|b| !names.contains(b));
        if dangling {
            attrs.remove("bounds");
        }
    }
}

/// How the time bounds are kept.
pub(crate) enum TimeBounds {
    /// Concatenated like data: every file's values are in the stored units.
    Referenced,
    /// Decoded and written as values in the stored units.
    Inline(String),
}

/// Coordinates other than the dimension (lat, lon, …), from the first file that
/// has them, in their source dtype; every file must hold the same values.
fn coordinate_arrays(
    scans: &[FileScan],
    per_scan: &[Vec<&VariableManifest>],
    dimension: &str,
    arrays: &mut Vec<ArrayFragment>,
) -> Result<(), SeriesError> {
    let mut coordinates: BTreeMap<String, (usize, Vec<f64>)> = BTreeMap::new();
    for (i, scan) in scans.iter().enumerate() {
        for var in &per_scan[i] {
            for dim in var.dimensions.iter().skip(1) {
                let Some(values) = scan.coords.get(dim) else {
                    continue;
                };
                match coordinates.get(dim) {
                    None => {
                        coordinates.insert(dim.clone(), (i, values.clone()));
                    }
                    Some((first, v)) if v != values => {
                        return Err(ConcatError::Mismatch(Box::new(PropertyMismatch {
                            variable: var.variable.clone(),
                            property: format!("coordinate {dim} values"),
                            first: scans[*first].source.url.clone(),
                            first_value: format!("{} values from {:?}", v.len(), v.first()),
                            second: scan.source.url.clone(),
                            second_value: format!(
                                "{} values from {:?}",
                                values.len(),
                                values.first()
                            ),
                            dimension: dimension.into(),
                        }))
                        .into())
                    }
                    Some(_) => {}
                }
            }
        }
    }
    let mut notes = BTreeSet::new();
    for (dim, (i, values)) in &coordinates {
        let source = scans[*i]
            .manifest
            .variables
            .iter()
            .find(|v| &v.variable == dim);
        let mut attrs = source.map(|v| (*v.attributes).clone()).unwrap_or_default();
        attrs.remove("_FillValue");
        let dtype = source.map(|v| v.dtype.as_str());
        arrays.push(typed_coordinate_array(
            dim, values, dtype, attrs, &mut notes,
        ));
    }
    Ok(())
}

/// What [`static_arrays`] needs to know of the group built so far.
struct Others<'a> {
    /// The files whose time was read, and the fixed ones.
    files: &'a [usize],
    /// The concatenation dimension.
    dimension: &'a str,
    /// The profile's selection (files of several variables), if any.
    selection: Option<&'a VariableSelection>,
    /// The arrays already built.
    emitted: &'a BTreeSet<String>,
}

/// Every other variable of the files, so that nothing a file holds is dropped
/// without a word: those not along the dimension (`lat_bnds`, a scalar
/// `height` or `crs`, a static mask, a coordinate no data variable uses) are
/// referenced in the first file that holds them. Where each file holds several
/// variables every file must hold each; where each holds one, every file of a
/// variable that holds it. Each holder must hold it with the same dtype, shape
/// and stored sizes, or it is left out, named; the values themselves are not
/// compared, which the group's notes say. Where each file holds one variable,
/// another variable along the dimension, and one the reader cannot describe,
/// is left out by name.
fn static_arrays(
    scans: &[FileScan],
    group: &Others,
    left_out: &mut LeftOut,
    notes: &mut BTreeSet<String>,
) -> Vec<ArrayFragment> {
    let dimension = group.dimension;
    let mut holders: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in group.files {
        let scan = &scans[i];
        let url = scan.source.url.as_str();
        for p in &scan.manifest.problems {
            if group.selection.is_none_or(|s| s.takes(&p.variable)) {
                left_out.add(&p.variable, url, p.error.clone());
            }
        }
        for var in &scan.manifest.variables {
            let name = var.variable.as_str();
            let taken = group.selection.is_none_or(|s| s.takes(name));
            if !taken || group.emitted.contains(name) || left_out.has(name) {
                continue;
            }
            if var.dimensions.iter().any(|d| d == dimension) {
                if group.selection.is_none() {
                    let reason = format!(
                        "runs along {dimension} but is not the variable the file's path names ({}); a profile without a `variable` field takes every variable of a file",
                        scan.source.variable
                    );
                    left_out.add(name, url, reason);
                }
                continue;
            }
            holders.entry(name).or_default().push(i);
        }
    }
    let mut arrays = Vec::new();
    for (name, held_by) in holders {
        if let Err((file, reason)) = check_holders(scans, group, name, &held_by) {
            left_out.add(name, &file, reason);
            continue;
        }
        let first_index = held_by[0];
        let first = &scans[first_index];
        let Some(var) = first.manifest.variables.iter().find(|v| v.variable == name) else {
            continue;
        };
        if let Err(reason) = crate::build::zarr_type(var) {
            left_out.add(name, &first.source.url, reason);
            continue;
        }
        notes.insert(format!(
            "{name}: not along {dimension}; referenced in the first file, {} (the other files hold it with the same dtype, shape and stored sizes; values not compared)",
            first.source.url
        ));
        arrays.push(data_array(
            var,
            &var.shape,
            &var.chunk_shape,
            &var.dimensions,
            own_axis_refs(var, first_index),
            notes,
        ));
    }
    arrays
}

/// Whether the files that hold a static variable are the files that must, and
/// hold it alike (the file at fault and why, if not).
fn check_holders(
    scans: &[FileScan],
    group: &Others,
    name: &str,
    held_by: &[usize],
) -> Result<(), (String, String)> {
    // Where each file holds one variable, only the files of a variable that has it must hold it.
    let must_hold = |i: usize| {
        group.selection.is_some()
            || held_by
                .iter()
                .any(|&h| scans[h].source.variable == scans[i].source.variable)
    };
    if let Some(&absent) = group
        .files
        .iter()
        .find(|&&i| must_hold(i) && !held_by.contains(&i))
    {
        let e = SeriesError::Uneven {
            variable: name.to_string(),
            present: scans[held_by[0]].source.url.clone(),
            absent: scans[absent].source.url.clone(),
        };
        return Err((scans[absent].source.url.clone(), e.to_string()));
    }
    let find = |i: usize| {
        scans[i]
            .manifest
            .variables
            .iter()
            .find(|v| v.variable == name)
    };
    let Some(var) = find(held_by[0]) else {
        return Ok(());
    };
    for &i in &held_by[1..] {
        let Some(other) = find(i) else { continue };
        if let Err(e) = static_mismatch(var, other, &scans[held_by[0]], &scans[i], group.dimension)
        {
            return Err((scans[i].source.url.clone(), e.to_string()));
        }
    }
    Ok(())
}

/// The first property in which two files' copies of a static variable differ.
fn static_mismatch(
    var: &VariableManifest,
    other: &VariableManifest,
    first: &FileScan,
    scan: &FileScan,
    dimension: &str,
) -> Result<(), SeriesError> {
    let sizes = |v: &VariableManifest| v.chunks.iter().map(|c| c.length).collect::<Vec<_>>();
    let differs: Option<(&str, String, String)> = if var.dtype != other.dtype {
        Some(("dtype", var.dtype.clone(), other.dtype.clone()))
    } else if var.shape != other.shape {
        Some((
            "shape",
            format!("{:?}", var.shape),
            format!("{:?}", other.shape),
        ))
    } else if var.inline_data != other.inline_data || sizes(var) != sizes(other) {
        Some((
            "stored bytes",
            format!("{} bytes", sizes(var).iter().sum::<u64>()),
            format!("{} bytes", sizes(other).iter().sum::<u64>()),
        ))
    } else {
        None
    };
    match differs {
        None => Ok(()),
        Some((property, first_value, second_value)) => {
            Err(ConcatError::Mismatch(Box::new(PropertyMismatch {
                variable: var.variable.clone(),
                property: property.into(),
                first: first.source.url.clone(),
                first_value,
                second: scan.source.url.clone(),
                second_value,
                dimension: dimension.into(),
            }))
            .into())
        }
    }
}
