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
use floe_wire::{BatchDescriptor, ConcatSpec, VirtualRef};
use serde_json::{Map, Value};

use crate::cftime::{self, CfCalendar, CfUnits};
use crate::concat::{order_pieces, place_pieces, ConcatError, Piece, PropertyMismatch};
use crate::merge::{
    coordinate_array, data_array, data_variable, finish, missing_reason, split_contiguous,
};
use crate::{FileScan, GroupBuild};

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
}

fn file_error(scan: &FileScan, reason: impl Into<String>) -> SeriesError {
    SeriesError::File {
        file: scan.source.url.clone(),
        reason: reason.into(),
    }
}

/// One file's variable with its decoded time.
struct Timed<'a> {
    scan_index: usize,
    var: &'a VariableManifest,
    calendar_name: String,
    instants: Vec<i64>,
}

fn timed<'a>(
    scan_index: usize,
    scan: &'a FileScan,
    dimension: &str,
) -> Result<(Timed<'a>, CfCalendar, CfUnits), SeriesError> {
    let var = data_variable(scan).ok_or_else(|| {
        file_error(
            scan,
            format!("{}: {}", scan.source.variable, missing_reason(scan)),
        )
    })?;
    if var.dimensions.first().map(String::as_str) != Some(dimension) {
        return Err(file_error(
            scan,
            format!(
                "{}: {dimension} must be the first dimension to concatenate along it (dimensions: {})",
                var.variable,
                var.dimensions.join(", ")
            ),
        ));
    }
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
    let units = cftime::parse_units(attr("units").unwrap_or_default())
        .map_err(|e| file_error(scan, format!("{dimension}: {e}")))?;
    let calendar_name = attr("calendar").unwrap_or("standard").to_string();
    let calendar = CfCalendar::parse(Some(&calendar_name))
        .map_err(|e| file_error(scan, format!("{dimension}: {e}")))?;
    let instants = values
        .iter()
        .map(|v| cftime::value_instant(*v, &units, calendar))
        .collect::<Result<Vec<i64>, _>>()
        .map_err(|e| file_error(scan, format!("{dimension}: {e}")))?;
    Ok((
        Timed {
            scan_index,
            var,
            calendar_name,
            instants,
        },
        calendar,
        units,
    ))
}

/// Builds a group whose variables are concatenated along `spec.dimension`.
pub fn build_series_group(
    batch: &BatchDescriptor,
    scans: &[FileScan],
    spec: &ConcatSpec,
) -> Result<GroupBuild, SeriesError> {
    let group_path = batch.group.group_path();
    let dimension = spec.dimension.as_str();
    let mut notes: BTreeSet<String> = BTreeSet::new();

    // 1. Every file's variable and exact time; one calendar for the group.
    let mut by_variable: BTreeMap<String, Vec<Timed>> = BTreeMap::new();
    let mut group_calendar: Option<(CfCalendar, CfUnits, usize)> = None;
    for (i, scan) in scans.iter().enumerate() {
        let (t, calendar, units) = timed(i, scan, dimension)?;
        match &group_calendar {
            None => group_calendar = Some((calendar, units, i)),
            Some((c, _, first)) if *c != calendar => {
                return Err(ConcatError::Mismatch(Box::new(PropertyMismatch {
                    variable: t.var.variable.clone(),
                    property: "time calendar".into(),
                    first: scans[*first].source.url.clone(),
                    first_value: c.name().into(),
                    second: scan.source.url.clone(),
                    second_value: calendar.name().into(),
                    dimension: dimension.into(),
                }))
                .into())
            }
            Some(_) => {}
        }
        by_variable
            .entry(t.var.variable.clone())
            .or_default()
            .push(t);
    }
    let Some((calendar, first_units, _)) = group_calendar else {
        return Err(SeriesError::Empty(group_path));
    };

    // 2. Each variable's files checked and ordered; the union axis by instant.
    let mut ordered: BTreeMap<String, Vec<Piece>> = BTreeMap::new();
    for (name, files) in &by_variable {
        let pieces: Vec<Piece> = files
            .iter()
            .map(|t| Piece {
                file: &scans[t.scan_index].source.url,
                index: t.scan_index,
                variable: t.var,
                calendar: &t.calendar_name,
                instants: &t.instants,
            })
            .collect();
        ordered.insert(name.clone(), order_pieces(dimension, &pieces)?);
        if files.len() > 1 {
            notes.insert(format!(
                "{name}: {} files concatenated along {dimension}",
                files.len()
            ));
        }
    }
    let union: Vec<i64> = by_variable
        .values()
        .flatten()
        .flat_map(|t| t.instants.iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    // 3. The time coordinate, in the source calendar.
    let units_text = spec.time_units.clone().unwrap_or_else(|| {
        scans
            .first()
            .and_then(|s| {
                s.manifest
                    .variables
                    .iter()
                    .find(|v| v.variable == dimension)
            })
            .and_then(|v| v.attributes.get("units"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    });
    let out_units = if spec.time_units.is_some() {
        cftime::parse_units(&units_text).map_err(|e| SeriesError::File {
            file: "the profile's time_units".into(),
            reason: e.to_string(),
        })?
    } else {
        first_units
    };
    let time_values = union
        .iter()
        .map(|t| cftime::encode(*t, &out_units, calendar))
        .collect::<Result<Vec<f64>, _>>()
        .map_err(|e| SeriesError::File {
            file: "the profile's time_units".into(),
            reason: e.to_string(),
        })?;
    let mut time_attrs = Map::new();
    time_attrs.insert("units".into(), Value::from(units_text.clone()));
    time_attrs.insert("calendar".into(), Value::from(calendar.name()));
    time_attrs.insert("standard_name".into(), Value::from("time"));
    time_attrs.insert("axis".into(), Value::from("T"));
    let mut arrays = vec![coordinate_array(dimension, &time_values, time_attrs)];
    notes.insert(format!(
        "{dimension}: decoded exactly in the {} calendar; stored as {units_text}",
        calendar.name()
    ));

    // 4. Other coordinates from the first file; every file must agree.
    let mut coordinates: BTreeMap<String, (usize, Vec<f64>)> = BTreeMap::new();
    for (i, scan) in scans.iter().enumerate() {
        let Some(var) = data_variable(scan) else {
            continue;
        };
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
                        second_value: format!("{} values from {:?}", values.len(), values.first()),
                        dimension: dimension.into(),
                    }))
                    .into())
                }
                Some(_) => {}
            }
        }
    }
    for (dim, (i, values)) in &coordinates {
        let mut attrs = scans[*i]
            .manifest
            .variables
            .iter()
            .find(|v| &v.variable == dim)
            .map(|v| v.attributes.clone())
            .unwrap_or_default();
        attrs.remove("_FillValue");
        attrs.remove("bounds");
        arrays.push(coordinate_array(dim, values, attrs));
    }

    // 5. Each variable: its files' chunks placed on the union axis.
    for (name, pieces) in &ordered {
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
        let offsets = place_pieces(pieces, &union, chunk)?;
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
        arrays.push(data_array(
            &described,
            &shape,
            &chunk_shape,
            &first.dimensions,
            refs,
            &mut notes,
        ));
    }

    Ok(finish(
        batch,
        scans,
        arrays,
        notes,
        Vec::new(),
        ("floe_profile", Value::from(batch.profile.clone())),
    ))
}
