//! A time axis's cell bounds (`time_bnds`), stored as values.
//!
//! Bounds are times: each file writes them in its own time units, and files of
//! one series may use different epochs ("days since 1850-01-01" in one file,
//! "days since 1900-01-01" in the next), or the same epoch spelled otherwise
//! ("days since 1850-1-1"). Referenced bytes cannot be re-encoded, so bounds
//! that are not all in the stored time's units (compared by meaning, never by
//! text) are decoded exactly like time ([`crate::cftime`]) and written inline
//! in the stored units and calendar: what `xr.open_mfdataset` shows. The same
//! holds where each file holds one variable (CMIP6): every variable's files
//! carry bounds for their steps, which must agree instant by instant.

use std::collections::BTreeMap;

use floe_wire::{ArrayFragment, InlineChunk};
use serde_json::Value;

use crate::cftime::{self, CfCalendar, CfUnits};
use crate::merge::{exact_bytes, f64_bytes};
use crate::{zarr, FileScan};

/// One file's time, as the bounds need it.
pub(crate) struct FileTime<'a> {
    /// The file's index in the batch.
    pub index: usize,
    /// Its time units and calendar.
    pub units: &'a CfUnits,
    /// Its calendar.
    pub calendar: CfCalendar,
    /// Its steps, as exact instants.
    pub instants: &'a [i64],
}

/// Why the bounds cannot be kept, naming the file at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BoundsProblem {
    /// The file.
    pub file: String,
    /// Why.
    pub reason: String,
}

/// The bounds variable `name` of every file in `files`, decoded and placed on
/// `union` (the group's steps), encoded in `out_units`: one inline array of
/// shape `[steps, vertices]`, in the source dtype where every value is exact in
/// it. Every step must have bounds, and files holding the same step must agree.
pub(crate) fn inline_time_bounds(
    name: &str,
    scans: &[FileScan],
    files: &[FileTime],
    union: &[i64],
    out_units: &CfUnits,
) -> Result<ArrayFragment, BoundsProblem> {
    let problem = |scan: &FileScan, reason: String| BoundsProblem {
        file: scan.source.url.clone(),
        reason,
    };
    let mut first: Option<&floe_formats::VariableManifest> = None;
    let mut by_step: BTreeMap<i64, (usize, Vec<i64>)> = BTreeMap::new();
    for file in files {
        let scan = &scans[file.index];
        let Some(var) = scan.manifest.variables.iter().find(|v| v.variable == name) else {
            continue;
        };
        let vertices = var.shape.get(1).copied().unwrap_or(0) as usize;
        let values = scan.coords.get(name).ok_or_else(|| {
            problem(
                scan,
                format!("{name}: its values were not read with the header"),
            )
        })?;
        if vertices == 0 || values.len() != file.instants.len() * vertices {
            return Err(problem(
                scan,
                format!(
                    "{name}: {} values for {} steps of {vertices} bounds",
                    values.len(),
                    file.instants.len()
                ),
            ));
        }
        if let Some(f) = first.filter(|f| f.shape.get(1) != var.shape.get(1)) {
            return Err(problem(
                scan,
                format!(
                    "{name}: {vertices} bounds a step here, {:?} in the first file",
                    f.shape.get(1)
                ),
            ));
        }
        first.get_or_insert(var);
        for (step, row) in file.instants.iter().zip(values.chunks(vertices)) {
            let decoded = row
                .iter()
                .map(|v| cftime::value_instant(*v, file.units, file.calendar))
                .collect::<Result<Vec<i64>, _>>()
                .map_err(|e| problem(scan, format!("{name}: {e}")))?;
            match by_step.get(step) {
                Some((other, held)) if *held != decoded => {
                    return Err(problem(
                        scan,
                        format!(
                        "{name}: its bounds of a step differ from those of {} for the same step",
                        scans[*other].source.url
                    ),
                    ))
                }
                Some(_) => {}
                None => {
                    by_step.insert(*step, (file.index, decoded));
                }
            }
        }
    }
    let Some(first) = first else {
        return Err(BoundsProblem {
            file: String::new(),
            reason: format!("{name}: named by the time coordinate's bounds, held by no file"),
        });
    };
    let calendar = files[0].calendar;
    let mut encoded = Vec::with_capacity(union.len() * 2);
    for step in union {
        let (_, bounds) = by_step.get(step).ok_or_else(|| BoundsProblem {
            file: String::new(),
            reason: format!("{name}: no file holds bounds for every step of the group"),
        })?;
        for b in bounds {
            let value = cftime::encode(*b, out_units, calendar).map_err(|e| BoundsProblem {
                file: String::new(),
                reason: format!("{name}: {e}"),
            })?;
            encoded.push(value);
        }
    }
    Ok(bounds_array(first, union.len() as u64, &encoded))
}

/// The bounds array: the source's attributes and dimensions, the values inline
/// in one chunk.
fn bounds_array(
    source: &floe_formats::VariableManifest,
    steps: u64,
    values: &[f64],
) -> ArrayFragment {
    let vertices = source.shape.get(1).copied().unwrap_or(2);
    let (data_type, bytes) =
        exact_bytes(values, &source.dtype).unwrap_or(("float64", f64_bytes(values)));
    let mut attributes = (*source.attributes).clone();
    attributes.remove("_FillValue");
    // Bounds written with units of their own are stored, like time, in the stored units.
    for key in ["units", "calendar"] {
        attributes.remove(key);
    }
    let fill = if data_type.starts_with("float") {
        Value::from("NaN")
    } else {
        Value::from(0)
    };
    let shape = [steps, vertices];
    let document = zarr::array_document(
        &shape,
        &[steps.max(1), vertices],
        data_type,
        fill,
        &[zarr::little_endian()],
        attributes,
        &source.dimensions,
    );
    ArrayFragment {
        name: source.variable.clone(),
        zarr_json: document,
        refs: Vec::new(),
        inline_chunks: vec![InlineChunk {
            index: vec![0, 0],
            data: bytes,
        }],
    }
}
