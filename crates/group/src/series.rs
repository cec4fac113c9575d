//! Groups whose variables are split over several files along time (profiles
//! with `concat = "time"` and `time = "cf-exact"`, such as CMIP6): the files of
//! each variable become one array on the group's time axis.
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
use floe_wire::{ArrayFragment, BatchDescriptor, ConcatSpec, VariableSelection, VirtualRef};
use serde_json::{Map, Value};

use crate::cftime::{self, CfCalendar, CfUnits};
use crate::concat::{order_pieces, place_pieces, ConcatError, Piece, PropertyMismatch};
use crate::merge::{
    data_array, data_variable, finish, missing_reason, split_contiguous, typed_coordinate_array,
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

fn file_error(scan: &FileScan, reason: impl Into<String>) -> SeriesError {
    SeriesError::File {
        file: scan.source.url.clone(),
        reason: reason.into(),
    }
}

/// One file's decoded time.
struct ScanTime {
    calendar_name: String,
    calendar: CfCalendar,
    units: CfUnits,
    units_text: String,
    instants: Vec<i64>,
}

/// The file's time coordinate, decoded exactly.
fn scan_time(scan: &FileScan, dimension: &str) -> Result<ScanTime, SeriesError> {
    let time_var = scan
        .manifest
        .variables
        .iter()
        .find(|v| v.variable == dimension)
        .ok_or_else(|| file_error(scan, format!("no {dimension} coordinate variable")))?;
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

/// The data variables a file gives the group: the one its path names, or, with
/// a selection, every variable along the dimension that the selection takes. A
/// selected variable the reader could not describe fails the file by name.
fn file_variables<'a>(
    scan: &'a FileScan,
    dimension: &str,
    selection: Option<&VariableSelection>,
) -> Result<Vec<&'a VariableManifest>, SeriesError> {
    let along = |v: &VariableManifest| v.dimensions.first().map(String::as_str) == Some(dimension);
    let Some(selection) = selection else {
        let var = data_variable(scan).ok_or_else(|| {
            file_error(
                scan,
                format!("{}: {}", scan.source.variable, missing_reason(scan)),
            )
        })?;
        if !along(var) {
            return Err(file_error(
                scan,
                format!(
                    "{}: {dimension} must be the first dimension to concatenate along it (dimensions: {})",
                    var.variable,
                    var.dimensions.join(", ")
                ),
            ));
        }
        return Ok(vec![var]);
    };
    let problem = scan
        .manifest
        .problems
        .iter()
        .find(|p| selection.takes(&p.variable));
    if let Some(p) = problem {
        return Err(file_error(
            scan,
            format!(
                "{}: {} (a profile's exclude_variables can leave it out)",
                p.variable, p.error
            ),
        ));
    }
    let held = |name: &str| scan.manifest.variables.iter().any(|v| v.variable == name);
    if let Some(name) = selection.include.iter().find(|n| !held(n)) {
        return Err(file_error(
            scan,
            format!("{name}: named in the profile's variables, but not in the file"),
        ));
    }
    let vars: Vec<&VariableManifest> = scan
        .manifest
        .variables
        .iter()
        .filter(|v| v.variable != dimension && along(v) && selection.takes(&v.variable))
        .collect();
    if vars.is_empty() {
        return Err(file_error(
            scan,
            format!(
                "no data variable along {dimension} ({})",
                selection.describe()
            ),
        ));
    }
    Ok(vars)
}

/// Every file must hold the same variables: one that some files lack would
/// read as fill values there, silently. Names the variable, a file with it and
/// a file without it.
fn check_presence(scans: &[FileScan], names: &[BTreeSet<&str>]) -> Result<(), SeriesError> {
    let every: BTreeSet<&str> = names.iter().flatten().copied().collect();
    for variable in every {
        let with = names.iter().position(|n| n.contains(variable));
        let without = names.iter().position(|n| !n.contains(variable));
        if let (Some(with), Some(without)) = (with, without) {
            return Err(SeriesError::Uneven {
                variable: variable.to_string(),
                present: scans[with].source.url.clone(),
                absent: scans[without].source.url.clone(),
            });
        }
    }
    Ok(())
}

/// Builds a group whose variables are concatenated along `spec.dimension`.
pub fn build_series_group(
    batch: &BatchDescriptor,
    scans: &[FileScan],
    spec: &ConcatSpec,
) -> Result<GroupBuild, SeriesError> {
    let group_path = batch.group.group_path();
    let dimension = spec.dimension.as_str();
    let selection = spec.file_variables.as_ref();
    let mut notes: BTreeSet<String> = BTreeSet::new();
    let mut warnings = Vec::new();

    // 1. Every file's variables and exact time; one calendar and, for files
    //    holding several, one set of variables for the group.
    let mut per_scan = Vec::with_capacity(scans.len());
    let mut times = Vec::with_capacity(scans.len());
    for scan in scans {
        per_scan.push(file_variables(scan, dimension, selection)?);
        times.push(scan_time(scan, dimension)?);
    }
    if scans.is_empty() {
        return Err(SeriesError::Empty(group_path));
    }
    check_calendar(scans, &times, &per_scan, dimension)?;
    if selection.is_some() {
        let names: Vec<BTreeSet<&str>> = per_scan
            .iter()
            .map(|vars| vars.iter().map(|v| v.variable.as_str()).collect())
            .collect();
        check_presence(scans, &names)?;
    }
    let mut by_variable: BTreeMap<&str, Vec<Piece>> = BTreeMap::new();
    for (i, vars) in per_scan.iter().enumerate() {
        for var in vars {
            by_variable.entry(&var.variable).or_default().push(Piece {
                file: &scans[i].source.url,
                index: i,
                variable: var,
                calendar: &times[i].calendar_name,
                instants: &times[i].instants,
            });
        }
    }

    // 2. Each variable's files checked and ordered; the union axis by instant.
    let mut ordered: BTreeMap<&str, Vec<Piece>> = BTreeMap::new();
    for (name, pieces) in &by_variable {
        ordered.insert(name, order_pieces(dimension, pieces)?);
        if pieces.len() > 1 {
            notes.insert(format!(
                "{name}: {} files concatenated along {dimension}",
                pieces.len()
            ));
        }
    }
    let union: Vec<i64> = times
        .iter()
        .flat_map(|t| t.instants.iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    // 3. The time coordinate, in the source calendar, and its bounds variable
    //    when their values are in the stored time's units in every file.
    let (mut time_array, units_text) = time_coordinate(spec, scans, &times, &union, &mut notes)?;
    if let Some(bounds) = time_bounds(scans, dimension, &times, &units_text, &mut ordered) {
        match bounds {
            Ok(name) => {
                set_attribute(&mut time_array, "bounds", Value::from(name));
            }
            Err(warning) => warnings.push(warning),
        }
    }
    let mut arrays = vec![time_array];

    // 4. Other coordinates from the first file; every file must agree. Then,
    //    for files holding several variables, those not along the dimension.
    coordinate_arrays(scans, &per_scan, dimension, &mut arrays)?;
    if let Some(selection) = selection {
        arrays.extend(static_arrays(scans, dimension, selection, &mut notes)?);
    }

    // 5. Each variable: its files' chunks placed on the union axis.
    for (name, pieces) in &ordered {
        arrays.push(variable_array(name, pieces, &union, &mut notes)?);
    }

    Ok(finish(
        batch,
        scans,
        arrays,
        notes,
        warnings,
        ("floe_profile", Value::from(batch.profile.clone())),
    ))
}

/// Every file of the group must share one calendar.
fn check_calendar(
    scans: &[FileScan],
    times: &[ScanTime],
    per_scan: &[Vec<&VariableManifest>],
    dimension: &str,
) -> Result<(), SeriesError> {
    let first = &times[0];
    match times.iter().position(|t| t.calendar != first.calendar) {
        None => Ok(()),
        Some(i) => Err(ConcatError::Mismatch(Box::new(PropertyMismatch {
            variable: per_scan[i]
                .first()
                .map(|v| v.variable.clone())
                .unwrap_or_default(),
            property: "time calendar".into(),
            first: scans[0].source.url.clone(),
            first_value: first.calendar.name().into(),
            second: scans[i].source.url.clone(),
            second_value: times[i].calendar.name().into(),
            dimension: dimension.into(),
        }))
        .into()),
    }
}

/// The union time axis encoded in the profile's units (else the first file's),
/// stored in the first file's time dtype when every value is exact in it.
fn time_coordinate(
    spec: &ConcatSpec,
    scans: &[FileScan],
    times: &[ScanTime],
    union: &[i64],
    notes: &mut BTreeSet<String>,
) -> Result<(ArrayFragment, String), SeriesError> {
    let dimension = spec.dimension.as_str();
    let profile_units = |e: cftime::CfTimeError| SeriesError::File {
        file: "the profile's time_units".into(),
        reason: e.to_string(),
    };
    let (units_text, out_units) = match &spec.time_units {
        Some(text) => (
            text.clone(),
            cftime::parse_units(text).map_err(profile_units)?,
        ),
        None => (times[0].units_text.clone(), times[0].units),
    };
    let calendar = times[0].calendar;
    let values = union
        .iter()
        .map(|t| cftime::encode(*t, &out_units, calendar))
        .collect::<Result<Vec<f64>, _>>()
        .map_err(profile_units)?;
    let mut attrs = Map::new();
    attrs.insert("units".into(), Value::from(units_text.clone()));
    attrs.insert("calendar".into(), Value::from(calendar.name()));
    attrs.insert("standard_name".into(), Value::from("time"));
    attrs.insert("axis".into(), Value::from("T"));
    notes.insert(format!(
        "{dimension}: decoded exactly in the {} calendar; stored as {units_text}",
        calendar.name()
    ));
    let source_dtype = scans[0]
        .manifest
        .variables
        .iter()
        .find(|v| v.variable == dimension)
        .map(|v| v.dtype.as_str());
    let array = typed_coordinate_array(dimension, &values, source_dtype, attrs, notes);
    Ok((array, units_text))
}

/// The time coordinate's bounds variable (`time_bnds`), among the variables
/// taken: kept when its values are in the stored time's units in every file
/// (`Ok(name)`), else left out with a warning (`Err`), since referenced bytes
/// cannot be re-encoded. `None`: no bounds variable is taken.
fn time_bounds(
    scans: &[FileScan],
    dimension: &str,
    times: &[ScanTime],
    units_text: &str,
    ordered: &mut BTreeMap<&str, Vec<Piece>>,
) -> Option<Result<String, Warning>> {
    let name = scans[0]
        .manifest
        .variables
        .iter()
        .find(|v| v.variable == dimension)?
        .attributes
        .get("bounds")?
        .as_str()?
        .to_string();
    ordered.contains_key(name.as_str()).then_some(())?;
    match times
        .iter()
        .position(|t| t.units_text.trim() != units_text.trim())
    {
        None => Some(Ok(name)),
        Some(i) => {
            ordered.remove(name.as_str());
            Some(Err(Warning {
                file: scans[i].source.url.clone(),
                reason: format!(
                    "left out: its values are in the file's {dimension} units ({}), not the stored {units_text}, and referenced bytes cannot be re-encoded",
                    times[i].units_text
                ),
                variable: name,
            }))
        }
    }
}

fn set_attribute(array: &mut ArrayFragment, key: &str, value: Value) {
    if let Some(attrs) = array
        .zarr_json
        .get_mut("attributes")
        .and_then(Value::as_object_mut)
    {
        attrs.insert(key.into(), value);
    }
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
        let mut attrs = source.map(|v| v.attributes.clone()).unwrap_or_default();
        attrs.remove("_FillValue");
        attrs.remove("bounds");
        let dtype = source.map(|v| v.dtype.as_str());
        arrays.push(typed_coordinate_array(
            dim, values, dtype, attrs, &mut notes,
        ));
    }
    Ok(())
}

/// Variables of files holding several that do not run along the dimension
/// (`lat_bnds`, a scalar `crs`, a static mask): referenced in the first file.
/// Every file must hold each with the same dtype, shape and stored sizes; the
/// values themselves are not compared, which the group's notes say.
fn static_arrays(
    scans: &[FileScan],
    dimension: &str,
    selection: &VariableSelection,
    notes: &mut BTreeSet<String>,
) -> Result<Vec<ArrayFragment>, SeriesError> {
    let first = &scans[0];
    let statics = first.manifest.variables.iter().filter(|v| {
        let is_coordinate = v.dimensions.len() == 1 && v.dimensions[0] == v.variable;
        !is_coordinate
            && v.variable != dimension
            && !v.dimensions.iter().any(|d| d == dimension)
            && selection.takes(&v.variable)
    });
    let mut arrays = Vec::new();
    for var in statics {
        for scan in &scans[1..] {
            let other = scan
                .manifest
                .variables
                .iter()
                .find(|v| v.variable == var.variable)
                .ok_or_else(|| SeriesError::Uneven {
                    variable: var.variable.clone(),
                    present: first.source.url.clone(),
                    absent: scan.source.url.clone(),
                })?;
            static_mismatch(var, other, first, scan, dimension)?;
        }
        notes.insert(format!(
            "{}: not along {dimension}; referenced in the first file, {} (the other files hold it with the same dtype, shape and stored sizes; values not compared)",
            var.variable, first.source.url
        ));
        let refs = var
            .chunks
            .iter()
            .map(|c| VirtualRef {
                index: c.index.iter().map(|&i| i as u32).collect(),
                source: 0,
                offset: c.offset,
                length: c.length,
            })
            .collect();
        arrays.push(data_array(
            var,
            &var.shape,
            &var.chunk_shape,
            &var.dimensions,
            refs,
            notes,
        ));
    }
    Ok(arrays)
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

/// One variable: its files' chunks placed on the union axis.
fn variable_array(
    name: &str,
    pieces: &[Piece],
    union: &[i64],
    notes: &mut BTreeSet<String>,
) -> Result<ArrayFragment, SeriesError> {
    let first = pieces[0].variable;
    let per_step = first.layout != "chunked" && first.is_uncompressed();
    let chunk = if per_step {
        1
    } else {
        first.chunk_shape.first().copied().unwrap_or(1).max(1)
    };
    // Data stored inside an HDF5 header (compact layout) has no byte range to
    // reference; one file's is inlined, several files' would need one inline
    // chunk each, which is not built: refused by name rather than half-built.
    if pieces.len() > 1 {
        if let Some(p) = pieces.iter().find(|p| p.variable.inline_data.is_some()) {
            return Err(SeriesError::File {
                file: p.file.to_string(),
                reason: format!(
                    "{name}: compact (in-header) storage cannot be concatenated across files"
                ),
            });
        }
    }
    let offsets = place_pieces(pieces, union, chunk)?;
    let mut refs = Vec::new();
    let mut chunk_shape = first.chunk_shape.clone();
    for (piece, offset) in pieces.iter().zip(&offsets) {
        let source = piece.index as u32;
        let chunks = if per_step && piece.variable.shape[0] > 0 {
            let (shape, chunks) = split_contiguous(piece.variable);
            chunk_shape = shape;
            chunks
        } else {
            piece.variable.chunks.clone()
        };
        for c in chunks {
            let mut index: Vec<u32> = c.index.iter().map(|&i| i as u32).collect();
            index[0] += (offset / chunk) as u32;
            refs.push(VirtualRef {
                index,
                source,
                offset: c.offset,
                length: c.length,
            });
        }
    }
    if per_step {
        notes.insert(format!(
            "{name}: contiguous data split into one reference per time step"
        ));
    }
    let mut shape = first.shape.clone();
    shape[0] = union.len() as u64;
    // `coordinates` names scalar coordinates (height) that are not carried.
    let mut described = first.clone();
    described.attributes.remove("coordinates");
    Ok(data_array(
        &described,
        &shape,
        &chunk_shape,
        &first.dimensions,
        refs,
        notes,
    ))
}
