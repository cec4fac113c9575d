//! Time normalization: every ISMIP6 time quirk as a small pure function.
//!
//! Input: a file's raw time values and attributes. Output: one civil date per
//! step ([`TimeAxis`]) plus notes naming every fix applied. The group stores
//! time as `days since 2000-01-01` in the proleptic Gregorian calendar
//! ([`days_since_2000`]), as the original pipeline did.

use serde_json::{Map, Value};

/// Units of the stored time coordinate.
pub const OUTPUT_UNITS: &str = "days since 2000-01-01";
/// Calendar of the stored time coordinate.
pub const OUTPUT_CALENDAR: &str = "proleptic_gregorian";

/// Model years accepted when time has no units (ISMIP6.md).
const PLAIN_YEARS: std::ops::RangeInclusive<f64> = 1850.0..=2200.0;
/// First year of ISMIP6 projections: the epoch of unitless offsets.
const PROJECTION_START_YEAR: i32 = 2015;

/// A calendar date with a fraction of a day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CivilDate {
    /// Year.
    pub year: i32,
    /// Month, 1–12.
    pub month: u32,
    /// Day, 1–31.
    pub day: u32,
}

/// CF calendars seen in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calendar {
    /// `standard`, `gregorian`, `proleptic_gregorian` (treated as proleptic).
    Gregorian,
    /// `noleap`, `365_day`.
    NoLeap,
    /// `all_leap`, `366_day`.
    AllLeap,
    /// `360_day`.
    Day360,
}

/// A decoded time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeAxis {
    /// One date per step, in the source calendar.
    pub dates: Vec<CivilDate>,
    /// The fixes that were applied, for the group's provenance attributes.
    pub notes: Vec<String>,
}

/// Why a time axis could not be decoded even after the fixes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimeError {
    /// Units that no rule understands.
    #[error("cannot decode time units {0:?}")]
    Units(String),
    /// Unitless values outside the accepted year range.
    #[error(
        "time has no units and values {0}..{1} are neither years 1850-2200 nor projection offsets"
    )]
    UnitlessOutOfRange(f64, f64),
    /// Too few valid values to repair garbage.
    #[error("time values are garbage and fewer than two valid values remain to repair them")]
    Garbage,
    /// A calendar no rule understands.
    #[error("unsupported calendar {0:?}")]
    Calendar(String),
    /// A value so far from its reference that no year could hold it.
    #[error("time value {value} ({units}) is more than a million years from its reference: not a date floe can place")]
    OutOfRange {
        /// The value as stored.
        value: f64,
        /// Its units.
        units: String,
    },
}

/// Days from a reference beyond which a value is refused: a million years, far
/// inside the `i32` years and `i64` days of the calendar arithmetic (an
/// overflow there would wrap to a wrong date in a release build).
const MAX_DAYS: f64 = 365.25e6;

/// The first value (times `scale`, the days per stored unit) beyond [`MAX_DAYS`].
fn beyond_range(values: &[f64], scale: f64, units: &str) -> Result<(), TimeError> {
    match values.iter().find(|v| (**v * scale).abs() > MAX_DAYS) {
        Some(&value) => Err(TimeError::OutOfRange {
            value,
            units: units.to_string(),
        }),
        None => Ok(()),
    }
}

fn attr_str<'a>(attrs: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    attrs.get(key).and_then(Value::as_str).map(str::trim)
}

/// Decodes a time axis, applying every quirk rule that matches.
pub fn decode_time(values: &[f64], attrs: &Map<String, Value>) -> Result<TimeAxis, TimeError> {
    let mut notes = Vec::new();
    let units = match (attr_str(attrs, "units"), attr_str(attrs, "unit")) {
        (Some(u), _) => u.to_string(),
        (None, Some(u)) => {
            notes.push("time: attribute `unit` read as `units`".to_string());
            u.to_string()
        }
        (None, None) => String::new(),
    };
    let mut calendar = match attr_str(attrs, "calendar") {
        Some(c) => parse_calendar(c)?,
        None => {
            notes.push("time: no calendar attribute, treated as 365_day".to_string());
            Calendar::NoLeap
        }
    };
    let values = repair_garbage(values, &mut notes)?;
    let lower = units.to_ascii_lowercase();

    if lower.contains("%y%m%d") {
        return decode_packed(&values, &units, notes);
    }
    let Some((unit, reference)) = lower.split_once(" since ") else {
        return decode_unitless(&values, &lower, notes);
    };
    let step_days = match unit.trim() {
        "days" | "day" | "d" => 1.0,
        "hours" | "hour" | "hrs" | "h" => 1.0 / 24.0,
        "minutes" | "minute" | "min" => 1.0 / 1440.0,
        "seconds" | "second" | "secs" | "s" => 1.0 / 86400.0,
        "years" | "year" | "yr" | "a" => {
            beyond_range(&values, 365.25, &units)?;
            let reference = parse_reference(reference, &mut notes)
                .ok_or_else(|| TimeError::Units(units.clone()))?;
            let dates = values
                .iter()
                .map(|v| CivilDate {
                    year: reference.year + v.floor() as i32,
                    month: reference.month,
                    day: reference.day,
                })
                .collect();
            return Ok(TimeAxis { dates, notes });
        }
        _ => return Err(TimeError::Units(units.clone())),
    };
    let reference =
        parse_reference(reference, &mut notes).ok_or_else(|| TimeError::Units(units.clone()))?;
    beyond_range(&values, step_days, &units)?;
    let days: Vec<f64> = values.iter().map(|v| v * step_days).collect();
    if calendar == Calendar::Gregorian && constant_365_day_steps(&days) {
        notes.push(
            "time: calendar says gregorian but steps are exactly 365 days, treated as 365_day"
                .to_string(),
        );
        calendar = Calendar::NoLeap;
    }
    let dates = days
        .iter()
        .map(|d| add_days(reference, d.floor() as i64, calendar))
        .collect();
    Ok(TimeAxis { dates, notes })
}

fn parse_calendar(name: &str) -> Result<Calendar, TimeError> {
    match name.to_ascii_lowercase().as_str() {
        "standard" | "gregorian" | "proleptic_gregorian" | "julian" => Ok(Calendar::Gregorian),
        "noleap" | "365_day" | "no_leap" => Ok(Calendar::NoLeap),
        "all_leap" | "366_day" => Ok(Calendar::AllLeap),
        "360_day" => Ok(Calendar::Day360),
        other => Err(TimeError::Calendar(other.to_string())),
    }
}

/// Garbage values (2.31e-310, 1.71e+219, NaN) are replaced by extrapolating
/// the regular step of the valid values.
fn repair_garbage(values: &[f64], notes: &mut Vec<String>) -> Result<Vec<f64>, TimeError> {
    let is_garbage = |v: f64| !v.is_finite() || v.abs() > 1e9 || (v != 0.0 && v.abs() < 1e-30);
    let good: Vec<usize> = (0..values.len())
        .filter(|&i| !is_garbage(values[i]))
        .collect();
    if good.len() == values.len() {
        return Ok(values.to_vec());
    }
    if good.len() < 2 {
        return Err(TimeError::Garbage);
    }
    let (first, last) = (good[0], good[good.len() - 1]);
    let step = (values[last] - values[first]) / (last - first) as f64;
    let repaired: Vec<f64> = (0..values.len())
        .map(|i| {
            if is_garbage(values[i]) {
                values[first] + (i as f64 - first as f64) * step
            } else {
                values[i]
            }
        })
        .collect();
    notes.push(format!(
        "time: {} garbage value(s) replaced by the regular step {step} of the valid values",
        values.len() - good.len()
    ));
    Ok(repaired)
}

fn decode_unitless(
    values: &[f64],
    units: &str,
    mut notes: Vec<String>,
) -> Result<TimeAxis, TimeError> {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if values.is_empty() {
        return Ok(TimeAxis {
            dates: Vec::new(),
            notes,
        });
    }
    let year_of = if PLAIN_YEARS.contains(&lo) && PLAIN_YEARS.contains(&hi) {
        notes.push(format!(
            "time: units {units:?} without epoch, values read as calendar years"
        ));
        0
    } else if lo >= 0.0 && hi <= 2200.0 - f64::from(PROJECTION_START_YEAR) {
        notes.push(format!(
            "time: units {units:?} without epoch, values read as years since {PROJECTION_START_YEAR}"
        ));
        PROJECTION_START_YEAR
    } else {
        return Err(TimeError::UnitlessOutOfRange(lo, hi));
    };
    let dates = values
        .iter()
        .map(|v| CivilDate {
            year: year_of + v.floor() as i32,
            month: 1,
            day: 1,
        })
        .collect();
    Ok(TimeAxis { dates, notes })
}

/// `day as %Y%m%d.%f`: real packed dates are decoded; values too small to be
/// dates are day offsets from the projection start (ISMIP6.md).
fn decode_packed(
    values: &[f64],
    units: &str,
    mut notes: Vec<String>,
) -> Result<TimeAxis, TimeError> {
    if values.iter().all(|v| *v >= 10_000_101.0) {
        // %Y%m%d: a year is a factor 10,000 of the value.
        beyond_range(values, 365.25 / 10_000.0, units)?;
        notes.push("time: packed %Y%m%d values decoded as calendar dates".to_string());
        let dates = values
            .iter()
            .map(|v| {
                let n = v.floor() as i64;
                normalize_date((n / 10_000) as i32, (n / 100) % 100, n % 100, &mut notes)
            })
            .collect();
        return Ok(TimeAxis { dates, notes });
    }
    beyond_range(values, 1.0, units)?;
    notes.push(format!(
        "time: packed %Y%m%d units but values are day offsets; read as days since {PROJECTION_START_YEAR}-01-01 (365_day)"
    ));
    let start = CivilDate {
        year: PROJECTION_START_YEAR,
        month: 1,
        day: 1,
    };
    Ok(TimeAxis {
        dates: values
            .iter()
            .map(|d| add_days(start, d.floor() as i64, Calendar::NoLeap))
            .collect(),
        notes,
    })
}

fn constant_365_day_steps(days: &[f64]) -> bool {
    days.len() >= 5 && days.windows(2).all(|w| (w[1] - w[0] - 365.0).abs() < 1e-6)
}

/// Parses `YYYY-MM-DD[ HH:MM:SS]` and `MM-DD-YYYY`, fixing impossible parts.
fn parse_reference(text: &str, notes: &mut Vec<String>) -> Option<CivilDate> {
    let date = text.trim().split([' ', 'T']).next()?;
    let parts: Vec<&str> = date.split('-').collect();
    if parts.len() != 3 {
        return None;
    }
    let nums: Vec<i64> = parts
        .iter()
        .map(|p| p.trim().parse::<i64>().ok())
        .collect::<Option<_>>()?;
    let (y, m, d) = if parts[0].len() <= 2 && parts[2].len() == 4 {
        notes.push(format!("time: reference date {date:?} read as MM-DD-YYYY"));
        (nums[2], nums[0], nums[1])
    } else {
        (nums[0], nums[1], nums[2])
    };
    // A reference a million years out, or a month past a thousand years of
    // roll-over, is not a date: refused rather than wrapped in the arithmetic.
    if y.abs() > 1_000_000 || m.abs() > 12_000 {
        return None;
    }
    Some(normalize_date(i32::try_from(y).ok()?, m, d, notes))
}

/// Fixes month 0/13+, day 0 and days past the month's end.
fn normalize_date(mut year: i32, month: i64, day: i64, notes: &mut Vec<String>) -> CivilDate {
    let mut m = month;
    if !(1..=12).contains(&m) {
        let shifted = m - 1;
        year += shifted.div_euclid(12) as i32;
        m = shifted.rem_euclid(12) + 1;
        notes.push(format!(
            "time: impossible month {month} rolled over to {year}-{m:02}"
        ));
    }
    let month = m as u32;
    let max = days_in_month(year, month, Calendar::Gregorian) as i64;
    let day = if day < 1 {
        notes.push(format!("time: day {day} of a reference date read as day 1"));
        1
    } else if day > max {
        notes.push(format!(
            "time: impossible date {year}-{month:02}-{day:02} clamped to day {max}"
        ));
        max
    } else {
        day
    };
    CivilDate {
        year,
        month,
        day: day as u32,
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32, calendar: Calendar) -> u32 {
    const DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let m = (month.clamp(1, 12) - 1) as usize;
    match calendar {
        Calendar::Day360 => 30,
        Calendar::AllLeap if m == 1 => 29,
        Calendar::Gregorian if m == 1 && is_leap(year) => 29,
        _ => DAYS[m],
    }
}

fn days_in_year(year: i32, calendar: Calendar) -> i64 {
    match calendar {
        Calendar::NoLeap => 365,
        Calendar::AllLeap => 366,
        Calendar::Day360 => 360,
        Calendar::Gregorian => 365 + i64::from(is_leap(year)),
    }
}

/// Adds whole days to a date in a calendar.
pub fn add_days(date: CivilDate, days: i64, calendar: Calendar) -> CivilDate {
    if calendar == Calendar::Gregorian {
        return civil_from_days(days_from_civil(date) + days);
    }
    let mut year = date.year;
    let mut doy: i64 = (1..date.month)
        .map(|m| i64::from(days_in_month(year, m, calendar)))
        .sum::<i64>()
        + i64::from(date.day.min(days_in_month(year, date.month, calendar)))
        - 1
        + days;
    let len = days_in_year(year, calendar);
    year += doy.div_euclid(len) as i32;
    doy = doy.rem_euclid(len);
    let mut month = 1;
    while doy >= i64::from(days_in_month(year, month, calendar)) {
        doy -= i64::from(days_in_month(year, month, calendar));
        month += 1;
    }
    CivilDate {
        year,
        month,
        day: doy as u32 + 1,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date ([`crate::cftime`]'s arithmetic).
fn days_from_civil(d: CivilDate) -> i64 {
    crate::cftime::gregorian_days(i64::from(d.year), d.month, d.day)
}

fn civil_from_days(z: i64) -> CivilDate {
    let (year, month, day) = crate::cftime::gregorian_date(z);
    CivilDate {
        year: year as i32,
        month,
        day,
    }
}

/// Days since 2000-01-01 (proleptic Gregorian) of a date; a day that does not
/// exist in that calendar (Feb 30 of a 360-day model) is clamped to the month's end.
pub fn days_since_2000(date: CivilDate) -> f64 {
    let day = date
        .day
        .min(days_in_month(date.year, date.month, Calendar::Gregorian));
    (days_from_civil(CivilDate { day, ..date })
        - days_from_civil(CivilDate {
            year: 2000,
            month: 1,
            day: 1,
        })) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_too_far_from_their_reference_are_refused_not_wrapped() {
        // Found by the time_units fuzz target: "years since 2015-1-1" with values
        // extrapolated past 2^31 years overflowed the year (a wrong date in a release
        // build). Values past 1e9 are garbage, repaired first.
        for (units, value) in [
            ("years since 2015-1-1", 9.9e8),
            ("years since 2015-1-1", -5e8),
            ("days since 2000-01-01", -4e8),
        ] {
            let mut attrs = Map::new();
            attrs.insert("units".into(), Value::from(units));
            attrs.insert("calendar".into(), Value::from("noleap"));
            let e = decode_time(&[0.0, value], &attrs).expect_err(units);
            assert!(matches!(e, TimeError::OutOfRange { .. }), "{units}: {e}");
        }
        let mut attrs = Map::new();
        attrs.insert("units".into(), Value::from("days since 2000000000-1-1"));
        assert!(matches!(
            decode_time(&[0.0], &attrs),
            Err(TimeError::Units(_))
        ));
    }
    use serde_json::json;

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn years(axis: &TimeAxis) -> Vec<i32> {
        axis.dates.iter().map(|d| d.year).collect()
    }

    #[test]
    fn standard_units_in_noleap() {
        let a = decode_time(
            &[0.0, 365.0, 730.0],
            &attrs(json!({"units": "days since 2015-01-01", "calendar": "365_day"})),
        )
        .expect("decode");
        assert_eq!(years(&a), vec![2015, 2016, 2017]);
        assert!(a.notes.is_empty());
    }

    #[test]
    fn unit_instead_of_units_and_missing_calendar() {
        let a =
            decode_time(&[181.0], &attrs(json!({"unit": "days since 2015-1-1"}))).expect("decode");
        assert_eq!(
            a.dates[0],
            CivilDate {
                year: 2015,
                month: 7,
                day: 1
            }
        );
        assert_eq!(a.notes.len(), 2);
    }

    #[test]
    fn mm_dd_yyyy_reference_and_day_zero() {
        let a = decode_time(
            &[0.0],
            &attrs(json!({"units": "days since 01-01-2015", "calendar": "noleap"})),
        )
        .expect("decode");
        assert_eq!(a.dates[0].year, 2015);
        assert!(a.notes[0].contains("MM-DD-YYYY"));
        let b = decode_time(
            &[0.0],
            &attrs(json!({"units": "days since 2015-01-00", "calendar": "noleap"})),
        )
        .expect("decode");
        assert_eq!(
            b.dates[0],
            CivilDate {
                year: 2015,
                month: 1,
                day: 1
            }
        );
    }

    #[test]
    fn impossible_dates_are_fixed() {
        let a = decode_time(
            &[0.0],
            &attrs(json!({"units": "days since 2015-14-01", "calendar": "noleap"})),
        )
        .expect("decode");
        assert_eq!((a.dates[0].year, a.dates[0].month), (2016, 2));
        let b = decode_time(
            &[0.0],
            &attrs(json!({"units": "days since 2015-02-30", "calendar": "360_day"})),
        )
        .expect("decode");
        assert_eq!(b.dates[0].day, 28);
    }

    #[test]
    fn unitless_years_and_offsets() {
        let a = decode_time(&[2015.0, 2016.0], &attrs(json!({}))).expect("decode");
        assert_eq!(years(&a), vec![2015, 2016]);
        let b = decode_time(&[0.0, 1.0, 85.0], &attrs(json!({"units": "years"}))).expect("decode");
        assert_eq!(years(&b), vec![2015, 2016, 2100]);
        assert!(matches!(
            decode_time(&[-5000.0], &attrs(json!({}))),
            Err(TimeError::UnitlessOutOfRange(..))
        ));
    }

    #[test]
    fn packed_dates_and_packed_offsets() {
        let u = json!({"units": "day as %Y%m%d.%f"});
        let a = decode_time(&[20150101.0, 20160701.5], &attrs(u.clone())).expect("decode");
        assert_eq!(
            a.dates[1],
            CivilDate {
                year: 2016,
                month: 7,
                day: 1
            }
        );
        let b = decode_time(&[0.0, 365.0], &attrs(u)).expect("decode");
        assert_eq!(years(&b), vec![2015, 2016]);
    }

    #[test]
    fn garbage_values_are_repaired_from_the_regular_step() {
        let a = decode_time(
            &[2.31e-310, 365.0, 730.0, 1.71e219],
            &attrs(json!({"units": "days since 2015-01-01", "calendar": "365_day"})),
        )
        .expect("decode");
        assert_eq!(years(&a), vec![2015, 2016, 2017, 2018]);
        assert!(matches!(
            decode_time(
                &[f64::NAN, 1e300],
                &attrs(json!({"units": "days since 2015-01-01"}))
            ),
            Err(TimeError::Garbage)
        ));
    }

    #[test]
    fn gregorian_with_365_day_steps_is_noleap() {
        let v: Vec<f64> = (0..10).map(|i| f64::from(i) * 365.0).collect();
        let a = decode_time(
            &v,
            &attrs(json!({"units": "days since 2015-01-01", "calendar": "gregorian"})),
        )
        .expect("decode");
        assert!(
            a.dates.iter().all(|d| d.month == 1 && d.day == 1),
            "{:?}",
            a.dates
        );
        assert!(a.notes.iter().any(|n| n.contains("365_day")));
    }

    #[test]
    fn output_encoding() {
        assert_eq!(
            days_since_2000(CivilDate {
                year: 2000,
                month: 1,
                day: 1
            }),
            0.0
        );
        assert_eq!(
            days_since_2000(CivilDate {
                year: 2001,
                month: 1,
                day: 1
            }),
            366.0
        );
        assert_eq!(
            days_since_2000(CivilDate {
                year: 1999,
                month: 12,
                day: 31
            }),
            -1.0
        );
        let d = civil_from_days(days_from_civil(CivilDate {
            year: 2100,
            month: 3,
            day: 1,
        }));
        assert_eq!(
            d,
            CivilDate {
                year: 2100,
                month: 3,
                day: 1
            }
        );
    }
}
