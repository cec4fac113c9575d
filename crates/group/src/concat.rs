//! Concatenation along time: the files of one variable, with consecutive time
//! ranges (`tas_…_201501-204912.nc`, `tas_…_205001-210012.nc`), checked before
//! they become one array.
//!
//! Concatenating files that differ in how their bytes decode gives wrong values
//! silently (VirtualiZarr issues 1004 and 1059: a different `scale_factor` in one
//! file). So every property that decides how a stored byte becomes a value, or
//! where it sits, must agree across the files, or the batch fails with an error
//! naming both files and the property: dtype, codecs, chunk shape, `scale_factor`,
//! `add_offset`, `_FillValue`, `missing_value`, `units`, the time calendar, the
//! dimensions and the shape apart from time. Time must increase within each
//! file and the files must not overlap. Each file's block of steps must then sit
//! on the group's time axis by the chunk-grid rule of [`crate::axis`]: a gap
//! between files is allowed (it reads as the fill value) only where the chunk
//! grid stays exact.

use serde_json::Value;

use floe_formats::VariableManifest;

use crate::axis::{shared_axis_offset, AxisMisfit};

/// The attributes that change how stored values decode; they must agree.
pub const DECODING_ATTRIBUTES: &[&str] = &[
    "scale_factor",
    "add_offset",
    "_FillValue",
    "missing_value",
    "units",
];

/// One file's part of a variable.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    /// The file's URL, for messages.
    pub file: &'a str,
    /// The caller's index of the file (its source in the fragment), carried through ordering.
    pub index: usize,
    /// The variable as the file holds it.
    pub variable: &'a VariableManifest,
    /// The calendar of the file's time coordinate, as written.
    pub calendar: &'a str,
    /// Exact instants of its steps ([`crate::cftime::value_instant`]), in the file's order.
    pub instants: &'a [i64],
}

/// A property that differs between two files of one variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {property} differs between {first} ({first_value}) and {second} ({second_value}); files concatenated along {dimension} must agree on it")]
pub struct PropertyMismatch {
    /// The variable.
    pub variable: String,
    /// The property (dtype, codecs, an attribute…).
    pub property: String,
    /// The first file.
    pub first: String,
    /// Its value.
    pub first_value: String,
    /// The other file.
    pub second: String,
    /// Its value.
    pub second_value: String,
    /// The concatenation dimension.
    pub dimension: String,
}

/// Why the files of a variable cannot become one array.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConcatError {
    /// A property that must agree differs.
    #[error(transparent)]
    Mismatch(Box<PropertyMismatch>),
    /// The variable has no concatenation dimension.
    #[error("{variable} in {file} has no {dimension} dimension to concatenate along (dimensions: {dimensions})")]
    NoDimension {
        /// The variable.
        variable: String,
        /// The file.
        file: String,
        /// The concatenation dimension.
        dimension: String,
        /// Its dimensions.
        dimensions: String,
    },
    /// The time steps of a file do not increase.
    #[error("{variable}: time in {file} does not increase at step {index}")]
    NotIncreasing {
        /// The variable.
        variable: String,
        /// The file.
        file: String,
        /// The first step that is not later than the one before.
        index: usize,
    },
    /// The number of time values differs from the variable's length along time.
    #[error("{variable}: {file} has {values} time values for {steps} steps")]
    StepCount {
        /// The variable.
        variable: String,
        /// The file.
        file: String,
        /// Time values.
        values: usize,
        /// Steps of the variable.
        steps: u64,
    },
    /// Two files cover the same time.
    #[error("{variable}: the time ranges of {first} and {second} overlap (the second starts before the first ends); floe does not pick one")]
    Overlap {
        /// The variable.
        variable: String,
        /// The earlier file.
        first: String,
        /// The file that starts inside it.
        second: String,
    },
    /// A file's chunks cannot sit on one regular chunk grid with the others.
    #[error("{variable}: {file} cannot join one regular chunk grid along time: {misfit}")]
    ChunkGrid {
        /// The variable.
        variable: String,
        /// The file.
        file: String,
        /// The chunk-grid rule it breaks.
        misfit: AxisMisfit,
    },
    /// A step is not on the group's time axis (the caller built the axis without it).
    #[error("{variable}: a time step of {file} is not on the group's time axis")]
    OffAxis {
        /// The variable.
        variable: String,
        /// The file.
        file: String,
    },
}

impl ConcatError {
    /// The file at fault: the later of two that disagree.
    pub fn file(&self) -> &str {
        match self {
            ConcatError::Mismatch(m) => &m.second,
            ConcatError::Overlap { second, .. } => second,
            ConcatError::NoDimension { file, .. }
            | ConcatError::NotIncreasing { file, .. }
            | ConcatError::StepCount { file, .. }
            | ConcatError::ChunkGrid { file, .. }
            | ConcatError::OffAxis { file, .. } => file,
        }
    }
}

/// JSON numbers compare by value (`1` and `1.0` agree), everything else exactly.
fn same_value(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(Some(p), Some(q)))
        }
        (a, b) => a == b,
    }
}

fn shown(v: Option<&Value>) -> String {
    v.map_or_else(|| "absent".to_string(), Value::to_string)
}

/// The position of the concatenation dimension in a variable.
fn axis_of(piece: &Piece, dimension: &str) -> Result<usize, ConcatError> {
    piece
        .variable
        .dimensions
        .iter()
        .position(|d| d == dimension)
        .ok_or_else(|| ConcatError::NoDimension {
            variable: piece.variable.variable.clone(),
            file: piece.file.to_string(),
            dimension: dimension.to_string(),
            dimensions: piece.variable.dimensions.join(", "),
        })
}

/// Checks the pieces against each other and returns them in time order.
pub fn order_pieces<'a>(
    dimension: &str,
    pieces: &[Piece<'a>],
) -> Result<Vec<Piece<'a>>, ConcatError> {
    let Some(first) = pieces.first() else {
        return Ok(Vec::new());
    };
    let name = &first.variable.variable;
    let axis = axis_of(first, dimension)?;
    for piece in pieces {
        let a = axis_of(piece, dimension)?;
        let steps = piece.variable.shape.get(a).copied().unwrap_or(0);
        if piece.instants.len() as u64 != steps {
            return Err(ConcatError::StepCount {
                variable: name.clone(),
                file: piece.file.to_string(),
                values: piece.instants.len(),
                steps,
            });
        }
        if let Some(index) = piece.instants.windows(2).position(|w| w[1] <= w[0]) {
            return Err(ConcatError::NotIncreasing {
                variable: name.clone(),
                file: piece.file.to_string(),
                index: index + 1,
            });
        }
    }
    for other in &pieces[1..] {
        agree(first, other, axis, dimension)?;
    }
    let mut ordered = pieces.to_vec();
    ordered.sort_by_key(|p| p.instants.first().copied().unwrap_or(i64::MIN));
    for pair in ordered.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if let (Some(end), Some(start)) = (a.instants.last(), b.instants.first()) {
            if start <= end {
                return Err(ConcatError::Overlap {
                    variable: name.clone(),
                    first: a.file.to_string(),
                    second: b.file.to_string(),
                });
            }
        }
    }
    Ok(ordered)
}

/// The first property that decides how bytes decode or where they sit on
/// which two pieces of one variable differ, as a named error.
fn agree(first: &Piece, other: &Piece, axis: usize, dimension: &str) -> Result<(), ConcatError> {
    let name = &first.variable.variable;
    let mismatch = |property: &str, a: String, b: String| {
        ConcatError::Mismatch(Box::new(PropertyMismatch {
            variable: name.clone(),
            property: property.to_string(),
            first: first.file.to_string(),
            first_value: a,
            second: other.file.to_string(),
            second_value: b,
            dimension: dimension.to_string(),
        }))
    };
    let (v, w) = (first.variable, other.variable);
    if v.dtype != w.dtype {
        return Err(mismatch("dtype", v.dtype.clone(), w.dtype.clone()));
    }
    let codecs = |m: &VariableManifest| serde_json::to_string(&m.codecs).unwrap_or_default();
    if codecs(v) != codecs(w) {
        return Err(mismatch("codecs", codecs(v), codecs(w)));
    }
    if v.dimensions != w.dimensions {
        return Err(mismatch(
            "dimensions",
            v.dimensions.join(", "),
            w.dimensions.join(", "),
        ));
    }
    let without_time = |s: &[u64]| -> Vec<u64> {
        s.iter()
            .enumerate()
            .filter(|(i, _)| *i != axis)
            .map(|(_, n)| *n)
            .collect()
    };
    if without_time(&v.shape) != without_time(&w.shape) {
        return Err(mismatch(
            "shape apart from time",
            format!("{:?}", without_time(&v.shape)),
            format!("{:?}", without_time(&w.shape)),
        ));
    }
    // Contiguous data is split per step, so its one "chunk" is the whole file.
    let per_step = |m: &VariableManifest| m.layout != "chunked" && m.is_uncompressed();
    if v.chunk_shape != w.chunk_shape && !(per_step(v) && per_step(w)) {
        return Err(mismatch(
            "chunk shape",
            format!("{:?}", v.chunk_shape),
            format!("{:?}", w.chunk_shape),
        ));
    }
    if !same_value(Some(&v.fill_value), Some(&w.fill_value)) {
        return Err(mismatch(
            "fill value",
            v.fill_value.to_string(),
            w.fill_value.to_string(),
        ));
    }
    for attribute in DECODING_ATTRIBUTES {
        let (a, b) = (v.attributes.get(*attribute), w.attributes.get(*attribute));
        if !same_value(a, b) {
            return Err(mismatch(attribute, shown(a), shown(b)));
        }
    }
    // By meaning: `standard` and `gregorian` are one calendar, so are `noleap` and `365_day`.
    let calendar =
        |c: &str| crate::cftime::CfCalendar::parse(Some(c)).map_err(|_| c.to_ascii_lowercase());
    if calendar(first.calendar) != calendar(other.calendar) {
        return Err(mismatch(
            "time calendar",
            first.calendar.to_string(),
            other.calendar.to_string(),
        ));
    }
    Ok(())
}

/// Where each piece's first step sits on the group's time axis `union` (sorted
/// instants), checked by the chunk-grid rule: `chunk` is the variable's chunk
/// length along time, 1 for data that is split per step.
pub fn place_pieces(pieces: &[Piece], union: &[i64], chunk: u64) -> Result<Vec<u64>, ConcatError> {
    pieces
        .iter()
        .map(|p| {
            let positions = p
                .instants
                .iter()
                .map(|t| union.binary_search(t).map(|i| i as u64))
                .collect::<Result<Vec<u64>, _>>()
                .map_err(|_| ConcatError::OffAxis {
                    variable: p.variable.variable.clone(),
                    file: p.file.to_string(),
                })?;
            shared_axis_offset(&positions, chunk, union.len() as u64).map_err(|misfit| {
                ConcatError::ChunkGrid {
                    variable: p.variable.variable.clone(),
                    file: p.file.to_string(),
                    misfit,
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn var(steps: u64, chunk: u64) -> VariableManifest {
        VariableManifest {
            variable: "tas".into(),
            dtype: "int16".into(),
            fields: Vec::new(),
            shape: vec![steps, 4, 5],
            chunk_shape: vec![chunk, 4, 5],
            dimensions: vec!["time".into(), "lat".into(), "lon".into()],
            fill_value: json!(-32767),
            codecs: vec![floe_formats::Codec::new("zlib", [("level", json!(4))])].into(),
            attributes: serde_json::Map::from_iter([
                ("scale_factor".to_string(), json!(0.01)),
                ("add_offset".to_string(), json!(273.15)),
                ("units".to_string(), json!("K")),
            ])
            .into(),
            chunks: Vec::new(),
            inline_data: None,
            layout: "chunked".into(),
        }
    }

    fn months(first: i64, n: i64) -> Vec<i64> {
        (first..first + n).map(|m| m * 30 * 86_400).collect()
    }

    #[test]
    fn calendars_are_compared_by_meaning() {
        let (a, b) = (var(12, 12), var(12, 12));
        let (ta, tb) = (months(0, 12), months(12, 12));
        let two = |first: &'static str, second: &'static str| {
            let pieces = [
                Piece {
                    file: "a.nc",
                    index: 0,
                    variable: &a,
                    calendar: first,
                    instants: &ta,
                },
                Piece {
                    file: "b.nc",
                    index: 1,
                    variable: &b,
                    calendar: second,
                    instants: &tb,
                },
            ];
            order_pieces("time", &pieces).map(|_| ())
        };
        assert!(two("standard", "gregorian").is_ok());
        assert!(two("noleap", "365_day").is_ok());
        let e = two("noleap", "360_day").expect_err("two calendars");
        assert!(e.to_string().contains("time calendar differs"), "{e}");
    }

    #[test]
    fn consistent_files_are_put_in_time_order() {
        let (a, b) = (var(12, 12), var(12, 12));
        let (ta, tb) = (months(0, 12), months(12, 12));
        let pieces = [
            Piece {
                file: "b.nc",
                index: 0,
                variable: &b,
                calendar: "360_day",
                instants: &tb,
            },
            Piece {
                file: "a.nc",
                index: 0,
                variable: &a,
                calendar: "360_day",
                instants: &ta,
            },
        ];
        let ordered = order_pieces("time", &pieces).expect("consistent");
        assert_eq!(ordered[0].file, "a.nc");
        let union: Vec<i64> = months(0, 24);
        assert_eq!(
            place_pieces(&ordered, &union, 12).expect("aligned"),
            vec![0, 12]
        );
    }

    #[test]
    fn every_decoding_property_must_agree_and_is_named_with_both_files() {
        let t0 = months(0, 12);
        let t1 = months(12, 12);
        let base = var(12, 12);
        type Change = Box<dyn Fn(&mut VariableManifest)>;
        let changes: Vec<(&str, Change)> = vec![
            ("dtype", Box::new(|v| v.dtype = "int32".into())),
            ("codecs", Box::new(|v| Arc::make_mut(&mut v.codecs).clear())),
            ("chunk shape", Box::new(|v| v.chunk_shape = vec![6, 4, 5])),
            ("fill value", Box::new(|v| v.fill_value = json!(-9999))),
            (
                "shape apart from time",
                Box::new(|v| v.shape = vec![12, 4, 6]),
            ),
            ("dimensions", Box::new(|v| v.dimensions[1] = "y".into())),
            (
                "scale_factor",
                Box::new(|v| {
                    Arc::make_mut(&mut v.attributes).insert("scale_factor".into(), json!(0.02));
                }),
            ),
            (
                "add_offset",
                Box::new(|v| {
                    Arc::make_mut(&mut v.attributes).remove("add_offset");
                }),
            ),
            (
                "missing_value",
                Box::new(|v| {
                    Arc::make_mut(&mut v.attributes).insert("missing_value".into(), json!(1e20));
                }),
            ),
            (
                "units",
                Box::new(|v| {
                    Arc::make_mut(&mut v.attributes).insert("units".into(), json!("degC"));
                }),
            ),
        ];
        for (property, change) in changes {
            let mut other = base.clone();
            change(&mut other);
            let pieces = [
                Piece {
                    file: "s3://a/tas_201501-201512.nc",
                    index: 0,
                    variable: &base,
                    calendar: "noleap",
                    instants: &t0,
                },
                Piece {
                    file: "s3://a/tas_201601-201612.nc",
                    index: 0,
                    variable: &other,
                    calendar: "noleap",
                    instants: &t1,
                },
            ];
            let e = order_pieces("time", &pieces).expect_err(property);
            let text = e.to_string();
            assert!(
                matches!(&e, ConcatError::Mismatch(m) if m.property == property),
                "{property}: {text}"
            );
            assert!(
                text.contains("tas_201501-201512.nc") && text.contains("tas_201601-201612.nc"),
                "{text}"
            );
        }
        // 0.01 written as a double and as a float-widened number still agree; 1 and 1.0 agree.
        let mut same = base.clone();
        Arc::make_mut(&mut same.attributes).insert("add_offset".into(), json!(273.15));
        same.fill_value = json!(-32767.0);
        let pieces = [
            Piece {
                file: "a",
                index: 0,
                variable: &base,
                calendar: "noleap",
                instants: &t0,
            },
            Piece {
                file: "b",
                index: 0,
                variable: &same,
                calendar: "noleap",
                instants: &t1,
            },
        ];
        assert!(order_pieces("time", &pieces).is_ok());
        let pieces = [
            Piece {
                file: "a",
                index: 0,
                variable: &base,
                calendar: "noleap",
                instants: &t0,
            },
            Piece {
                file: "b",
                index: 0,
                variable: &same,
                calendar: "360_day",
                instants: &t1,
            },
        ];
        assert!(order_pieces("time", &pieces)
            .expect_err("calendar")
            .to_string()
            .contains("time calendar"));
    }

    #[test]
    fn time_must_increase_and_files_must_not_overlap() {
        let v = var(12, 12);
        let (t0, t1) = (months(0, 12), months(11, 12));
        let overlapping = [
            Piece {
                file: "a.nc",
                index: 0,
                variable: &v,
                calendar: "noleap",
                instants: &t0,
            },
            Piece {
                file: "b.nc",
                index: 0,
                variable: &v,
                calendar: "noleap",
                instants: &t1,
            },
        ];
        assert!(matches!(
            order_pieces("time", &overlapping),
            Err(ConcatError::Overlap { first, second, .. }) if first == "a.nc" && second == "b.nc"
        ));
        let mut backwards = months(0, 12);
        backwards.swap(3, 4);
        let pieces = [Piece {
            file: "a.nc",
            index: 0,
            variable: &v,
            calendar: "noleap",
            instants: &backwards,
        }];
        assert!(matches!(
            order_pieces("time", &pieces),
            Err(ConcatError::NotIncreasing { index: 4, .. })
        ));
        let short = months(0, 11);
        let pieces = [Piece {
            file: "a.nc",
            index: 0,
            variable: &v,
            calendar: "noleap",
            instants: &short,
        }];
        assert!(matches!(
            order_pieces("time", &pieces),
            Err(ConcatError::StepCount { .. })
        ));
    }

    #[test]
    fn gaps_are_allowed_only_where_the_chunk_grid_stays_exact() {
        let v = var(12, 12);
        let (t0, t2) = (months(0, 12), months(24, 12));
        let pieces = [
            Piece {
                file: "a.nc",
                index: 0,
                variable: &v,
                calendar: "noleap",
                instants: &t0,
            },
            Piece {
                file: "c.nc",
                index: 0,
                variable: &v,
                calendar: "noleap",
                instants: &t2,
            },
        ];
        let ordered = order_pieces("time", &pieces).expect("consistent");
        // A missing year of 12 steps keeps 12-step chunks aligned: the gap reads as fill.
        assert_eq!(
            place_pieces(&ordered, &months(0, 36), 12).expect("aligned"),
            vec![0, 24]
        );
        // A union whose steps shift the second file off a chunk boundary: named.
        let mut union = months(0, 12);
        union.extend(months(18, 18));
        let e = place_pieces(&ordered, &union, 12).expect_err("misaligned");
        assert!(
            matches!(&e, ConcatError::ChunkGrid { file, .. } if file == "c.nc"),
            "{e}"
        );
        // Per-step data (chunk 1) joins any gap.
        assert!(place_pieces(&ordered, &union, 1).is_ok());
        // A file whose last chunk is padding, followed by another file: named.
        let (p, q) = (var(10, 12), var(12, 12));
        let (tp, tq) = (months(0, 10), months(10, 12));
        let pieces = [
            Piece {
                file: "p.nc",
                index: 0,
                variable: &p,
                calendar: "noleap",
                instants: &tp,
            },
            Piece {
                file: "q.nc",
                index: 0,
                variable: &q,
                calendar: "noleap",
                instants: &tq,
            },
        ];
        let ordered = order_pieces("time", &pieces).expect("consistent");
        let e = place_pieces(&ordered, &months(0, 22), 12).expect_err("padded edge");
        assert!(
            matches!(&e, ConcatError::ChunkGrid { file, misfit: AxisMisfit::PaddedEdge { .. }, .. } if file == "p.nc"),
            "{e}"
        );
    }
}
