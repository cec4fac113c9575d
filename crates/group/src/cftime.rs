//! Exact CF time: `{unit} since {reference}` values decoded to calendar dates and
//! times to the second, in the CF calendars `standard`/`gregorian` (Julian
//! before 1582-10-15), `proleptic_gregorian`, `julian`, `noleap`/`365_day`,
//! `all_leap`/`366_day` and `360_day`.
//!
//! This is the time policy of profiles with `time = "cf-exact"` (monthly, daily,
//! 6-hourly steps). ISMIP6's year binning and its quirk rules stay in
//! [`crate::time`]. Nothing is rounded: a value that is not a whole number of
//! seconds, a date that does not exist in its calendar (Feb 30 in `noleap`, the
//! ten days the Gregorian reform removed) or a year before 1 in a real-world
//! calendar is a [`CfTimeError`], never a nearby date. Written by hand because
//! the Rust date crates (chrono, time) know only the proleptic Gregorian
//! calendar; the arithmetic is checked against cftime's in the tests.

/// A CF calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CfCalendar {
    /// `standard`, `gregorian`: Julian before 1582-10-15, Gregorian from then on.
    Standard,
    /// `proleptic_gregorian`.
    ProlepticGregorian,
    /// `julian`.
    Julian,
    /// `noleap`, `365_day`.
    NoLeap,
    /// `all_leap`, `366_day`.
    AllLeap,
    /// `360_day`: twelve months of 30 days.
    Day360,
}

impl CfCalendar {
    /// The calendar of a `calendar` attribute; CF's default when there is none is `standard`.
    pub fn parse(attribute: Option<&str>) -> Result<CfCalendar, CfTimeError> {
        let Some(name) = attribute else {
            return Ok(CfCalendar::Standard);
        };
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "standard" | "gregorian" => CfCalendar::Standard,
            "proleptic_gregorian" => CfCalendar::ProlepticGregorian,
            "julian" => CfCalendar::Julian,
            "noleap" | "365_day" => CfCalendar::NoLeap,
            "all_leap" | "366_day" => CfCalendar::AllLeap,
            "360_day" => CfCalendar::Day360,
            _ => return Err(CfTimeError::Calendar(floe_wire::bounded(name, 80))),
        })
    }

    /// The CF name, as stored.
    pub fn name(self) -> &'static str {
        match self {
            CfCalendar::Standard => "standard",
            CfCalendar::ProlepticGregorian => "proleptic_gregorian",
            CfCalendar::Julian => "julian",
            CfCalendar::NoLeap => "noleap",
            CfCalendar::AllLeap => "all_leap",
            CfCalendar::Day360 => "360_day",
        }
    }

    /// Whether the calendar has a year 0 (cftime's `has_year_zero` default):
    /// the idealized ones do, the real-world ones start at year 1.
    fn has_year_zero(self) -> bool {
        matches!(
            self,
            CfCalendar::NoLeap | CfCalendar::AllLeap | CfCalendar::Day360
        )
    }
}

/// A date and time of day in some calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// Year.
    pub year: i32,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month, from 1.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
    /// Second, 0–59.
    pub second: u32,
}

impl std::fmt::Display for DateTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Parsed `{unit} since {reference}` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CfUnits {
    /// Seconds per unit.
    pub unit_seconds: i64,
    /// The reference date and time.
    pub reference: DateTime,
}

/// Why a time value cannot be decoded exactly.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CfTimeError {
    /// Not `{unit} since {date}`, or a unit of variable length (months, years).
    #[error("time units {0:?}: {1}")]
    Units(String, &'static str),
    /// A calendar CF does not define.
    #[error("unsupported calendar {0:?} (CF calendars: standard, gregorian, proleptic_gregorian, julian, noleap, 365_day, all_leap, 366_day, 360_day)")]
    Calendar(String),
    /// A value that is not a whole number of seconds.
    #[error("time value {value} {unit_seconds}-second units is not a whole number of seconds; floe does not round time")]
    NotExact {
        /// The value.
        value: f64,
        /// Seconds per unit.
        unit_seconds: i64,
    },
    /// A date that does not exist in the calendar.
    #[error("{date} does not exist in the {calendar} calendar")]
    NoSuchDate {
        /// The date.
        date: DateTime,
        /// The calendar's name.
        calendar: &'static str,
    },
}

/// Parses CF time units, e.g. `days since 1850-01-01`, `hours since 2015-1-1 00:00:00`,
/// `seconds since 1970-01-01T00:00:00Z`. Months and years are refused: CF defines
/// them as fractions of a tropical year, which no model calendar steps by.
pub fn parse_units(text: &str) -> Result<CfUnits, CfTimeError> {
    let bad = |why| CfTimeError::Units(floe_wire::bounded(text, 120), why);
    let lower = text.trim().to_ascii_lowercase();
    let (unit, reference) = lower
        .split_once(" since ")
        .ok_or_else(|| bad("not `{unit} since {date}`"))?;
    let unit_seconds = match unit.trim() {
        "days" | "day" | "d" => 86_400,
        "hours" | "hour" | "hrs" | "hr" | "h" => 3_600,
        "minutes" | "minute" | "mins" | "min" => 60,
        "seconds" | "second" | "secs" | "sec" | "s" => 1,
        "months" | "month" | "years" | "year" | "yr" => {
            return Err(bad(
                "months and years are not fixed lengths of time; floe decodes days, hours, minutes and seconds",
            ))
        }
        _ => return Err(bad("unknown unit")),
    };
    let reference = parse_reference(reference).ok_or_else(|| bad("unreadable reference date"))?;
    Ok(CfUnits {
        unit_seconds,
        reference,
    })
}

/// `YYYY-M-D`, optionally followed by ` ` or `T` and `h:m[:s[.0…]]`, optionally `Z`/`UTC`.
fn parse_reference(text: &str) -> Option<DateTime> {
    let text = text.trim().trim_end_matches(" utc").trim_end_matches('z');
    let (date, time) = match text.split_once([' ', 'T', 't']) {
        Some((d, t)) => (d, t.trim()),
        None => (text, ""),
    };
    let (neg, date) = match date.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, date),
    };
    let mut parts = date.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next().map_or(Some(1), |d| d.parse().ok())?;
    let (mut hour, mut minute, mut second) = (0, 0, 0);
    if !time.is_empty() {
        let mut hms = time.split(':');
        hour = hms.next()?.parse().ok()?;
        minute = hms.next().map_or(Some(0), |m| m.parse().ok())?;
        let s = hms.next().unwrap_or("0");
        let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
        second = whole.parse().ok()?;
        if fraction.chars().any(|c| c != '0') {
            return None;
        }
    }
    Some(DateTime {
        year: if neg { -year } else { year },
        month,
        day,
        hour,
        minute,
        second,
    })
}

fn is_gregorian_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32, calendar: CfCalendar) -> u32 {
    const DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let base = DAYS[(month.clamp(1, 12) - 1) as usize];
    let february = month == 2;
    match calendar {
        CfCalendar::Day360 => 30,
        CfCalendar::NoLeap => base,
        CfCalendar::AllLeap => base + u32::from(february),
        CfCalendar::ProlepticGregorian => base + u32::from(february && is_gregorian_leap(year)),
        CfCalendar::Julian => base + u32::from(february && year % 4 == 0),
        CfCalendar::Standard if year < 1582 || (year == 1582 && month < 10) => {
            base + u32::from(february && year % 4 == 0)
        }
        CfCalendar::Standard => base + u32::from(february && is_gregorian_leap(year)),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn gregorian_days(y: i64, m: u32, d: u32) -> i64 {
    let y = y - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

pub(crate) fn gregorian_date(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Days since 1970-01-01 (the same day numbering as [`gregorian_days`]) of a Julian date.
fn julian_days(y: i64, m: u32, d: u32) -> i64 {
    // Julian day number (Fliegel/Van Flandern), then shifted to the Unix epoch.
    let a = (14 - i64::from(m)) / 12;
    let yy = y + 4800 - a;
    let mm = i64::from(m) + 12 * a - 3;
    let jdn = i64::from(d) + (153 * mm + 2) / 5 + 365 * yy + yy.div_euclid(4) - 32_083;
    jdn - 2_440_588
}

fn julian_date(days: i64) -> (i64, u32, u32) {
    let c = days + 2_440_588 + 32_082;
    let d = (4 * c + 3).div_euclid(1461);
    let e = c - (1461 * d).div_euclid(4);
    let m = (5 * e + 2) / 153;
    let day = (e - (153 * m + 2) / 5 + 1) as u32;
    let month = (m + 3 - 12 * (m / 10)) as u32;
    (d - 4800 + m / 10, month, day)
}

/// The first Gregorian day of the `standard` calendar, 1582-10-15.
const REFORM_DAY: i64 = -141_427;

fn fixed_year_length(calendar: CfCalendar) -> Option<i64> {
    match calendar {
        CfCalendar::NoLeap => Some(365),
        CfCalendar::AllLeap => Some(366),
        CfCalendar::Day360 => Some(360),
        _ => None,
    }
}

/// Day number of a date in its calendar (consecutive days get consecutive numbers).
fn day_number(date: &DateTime, calendar: CfCalendar) -> Result<i64, CfTimeError> {
    let no_such = || CfTimeError::NoSuchDate {
        date: *date,
        calendar: calendar.name(),
    };
    let year = i64::from(date.year);
    if date.month == 0
        || date.month > 12
        || date.day == 0
        || date.day > days_in_month(year, date.month, calendar)
        || date.hour > 23
        || date.minute > 59
        || date.second > 59
        || (!calendar.has_year_zero() && year < 1)
    {
        return Err(no_such());
    }
    if let Some(length) = fixed_year_length(calendar) {
        let before: i64 = (1..date.month)
            .map(|m| i64::from(days_in_month(year, m, calendar)))
            .sum();
        return Ok(year * length + before + i64::from(date.day) - 1);
    }
    Ok(match calendar {
        CfCalendar::ProlepticGregorian => gregorian_days(year, date.month, date.day),
        CfCalendar::Julian => julian_days(year, date.month, date.day),
        _ => {
            let gregorian = gregorian_days(year, date.month, date.day);
            if gregorian >= REFORM_DAY {
                gregorian
            } else {
                let julian = julian_days(year, date.month, date.day);
                if julian >= REFORM_DAY {
                    return Err(no_such()); // 1582-10-05 … 1582-10-14
                }
                julian
            }
        }
    })
}

fn date_of_day(day: i64, calendar: CfCalendar) -> (i64, u32, u32) {
    if let Some(length) = fixed_year_length(calendar) {
        let year = day.div_euclid(length);
        let mut left = day.rem_euclid(length);
        let mut month = 1;
        while left >= i64::from(days_in_month(year, month, calendar)) {
            left -= i64::from(days_in_month(year, month, calendar));
            month += 1;
        }
        return (year, month, left as u32 + 1);
    }
    match calendar {
        CfCalendar::ProlepticGregorian => gregorian_date(day),
        CfCalendar::Julian => julian_date(day),
        _ if day >= REFORM_DAY => gregorian_date(day),
        _ => julian_date(day),
    }
}

/// Seconds of a date and time from its calendar's day 0 (an exact instant:
/// instants of one calendar compare and subtract as integers).
pub fn instant(date: &DateTime, calendar: CfCalendar) -> Result<i64, CfTimeError> {
    Ok(day_number(date, calendar)? * 86_400
        + i64::from(date.hour) * 3_600
        + i64::from(date.minute) * 60
        + i64::from(date.second))
}

/// The date and time of an instant.
pub fn date_time(instant: i64, calendar: CfCalendar) -> Result<DateTime, CfTimeError> {
    let (year, month, day) = date_of_day(instant.div_euclid(86_400), calendar);
    let seconds = instant.rem_euclid(86_400);
    let date = DateTime {
        year: i32::try_from(year).unwrap_or(i32::MAX),
        month,
        day,
        hour: (seconds / 3_600) as u32,
        minute: (seconds % 3_600 / 60) as u32,
        second: (seconds % 60) as u32,
    };
    if !calendar.has_year_zero() && year < 1 {
        return Err(CfTimeError::NoSuchDate {
            date,
            calendar: calendar.name(),
        });
    }
    Ok(date)
}

/// The exact instant of a value in some units: the value times the unit must be
/// a whole number of seconds.
pub fn value_instant(
    value: f64,
    units: &CfUnits,
    calendar: CfCalendar,
) -> Result<i64, CfTimeError> {
    let seconds = value * units.unit_seconds as f64;
    let not_exact = || CfTimeError::NotExact {
        value,
        unit_seconds: units.unit_seconds,
    };
    if !seconds.is_finite() || seconds.fract() != 0.0 || seconds.abs() > 9.0e15 {
        return Err(not_exact());
    }
    Ok(instant(&units.reference, calendar)? + seconds as i64)
}

/// Decodes one value.
pub fn decode(value: f64, units: &CfUnits, calendar: CfCalendar) -> Result<DateTime, CfTimeError> {
    date_time(value_instant(value, units, calendar)?, calendar)
}

/// Encodes an instant in other units of the same calendar (how a group's stored
/// coordinate is written); exact whenever the instant is a whole number of units
/// from the new reference, else a fraction as near as `f64` holds it.
pub fn encode(
    instant_seconds: i64,
    units: &CfUnits,
    calendar: CfCalendar,
) -> Result<f64, CfTimeError> {
    let from = instant(&units.reference, calendar)?;
    Ok((instant_seconds - from) as f64 / units.unit_seconds as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(year: i32, month: u32, day: u32, hour: u32) -> DateTime {
        DateTime {
            year,
            month,
            day,
            hour,
            minute: 0,
            second: 0,
        }
    }

    /// Reference values computed with cftime 1.6.6 (`cftime.num2date(value, units, calendar)`).
    #[test]
    fn decodes_as_cftime_does() {
        let cases: &[(f64, &str, &str, DateTime)] = &[
            (0.0, "days since 1850-01-01", "noleap", dt(1850, 1, 1, 0)),
            (59.0, "days since 2015-01-01", "noleap", dt(2015, 3, 1, 0)),
            (365.0, "days since 2015-01-01", "noleap", dt(2016, 1, 1, 0)),
            (
                59.0,
                "days since 2016-01-01",
                "standard",
                dt(2016, 2, 29, 0),
            ),
            (
                59.0,
                "days since 2016-01-01",
                "all_leap",
                dt(2016, 2, 29, 0),
            ),
            (
                59.0,
                "days since 2015-01-01",
                "all_leap",
                dt(2015, 2, 29, 0),
            ),
            (45.0, "days since 2015-01-01", "360_day", dt(2015, 2, 16, 0)),
            (
                359.5,
                "days since 2015-01-01",
                "360_day",
                dt(2015, 12, 30, 12),
            ),
            (15.5, "days since 2015-01-01", "noleap", dt(2015, 1, 16, 12)),
            (
                6.0,
                "hours since 2000-02-28 18:00:00",
                "noleap",
                dt(2000, 3, 1, 0),
            ),
            (
                6.0,
                "hours since 2000-02-28 18:00:00",
                "proleptic_gregorian",
                dt(2000, 2, 29, 0),
            ),
            (
                1.0,
                "days since 1582-10-04",
                "standard",
                dt(1582, 10, 15, 0),
            ),
            (
                1.0,
                "days since 1582-10-04",
                "proleptic_gregorian",
                dt(1582, 10, 5, 0),
            ),
            (1.0, "days since 1900-02-28", "julian", dt(1900, 2, 29, 0)),
            (1.0, "days since 1900-02-28", "standard", dt(1900, 3, 1, 0)),
            (
                -1.0,
                "days since 1500-03-01",
                "standard",
                dt(1500, 2, 29, 0),
            ),
            (
                674885.0,
                "days since 0001-01-01",
                "standard",
                dt(1848, 10, 8, 0),
            ),
            (
                86400.0 * 365.0,
                "seconds since 1970-01-01T00:00:00Z",
                "standard",
                dt(1971, 1, 1, 0),
            ),
            (
                1440.0,
                "minutes since 2015-12-30",
                "360_day",
                dt(2016, 1, 1, 0),
            ),
            (0.0, "days since 0000-01-01", "360_day", dt(0, 1, 1, 0)),
        ];
        for (value, units, calendar, expected) in cases {
            let cal = CfCalendar::parse(Some(calendar)).expect("calendar");
            let got = decode(*value, &parse_units(units).expect("units"), cal)
                .unwrap_or_else(|e| panic!("{value} {units} {calendar}: {e}"));
            assert_eq!(got, *expected, "{value} {units} {calendar}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_decode_exactly() {
        let units = parse_units("days since 2015-01-01").expect("units");
        assert!(matches!(
            decode(0.00001, &units, CfCalendar::NoLeap),
            Err(CfTimeError::NotExact { .. })
        ));
        assert!(matches!(
            parse_units("months since 2015-01-01"),
            Err(CfTimeError::Units(..))
        ));
        assert!(parse_units("days after 2015-01-01").is_err());
        assert!(matches!(
            CfCalendar::parse(Some("lunar")),
            Err(CfTimeError::Calendar(_))
        ));
        // A hostile calendar name is not echoed whole.
        let huge = "x".repeat(100_000);
        let e = CfCalendar::parse(Some(&huge))
            .expect_err("unknown")
            .to_string();
        assert!(
            e.len() < 500 && e.contains("more characters"),
            "{} bytes",
            e.len()
        );
        let feb30 = parse_units("days since 2015-02-30").expect("parses");
        assert!(matches!(
            decode(0.0, &feb30, CfCalendar::NoLeap),
            Err(CfTimeError::NoSuchDate { .. })
        ));
        assert!(decode(0.0, &feb30, CfCalendar::Day360).is_ok());
        let reform = parse_units("days since 1582-10-10").expect("parses");
        assert!(decode(0.0, &reform, CfCalendar::Standard).is_err());
        assert!(decode(0.0, &reform, CfCalendar::Julian).is_ok());
        let year0 = parse_units("days since 0000-06-01").expect("parses");
        assert!(decode(0.0, &year0, CfCalendar::ProlepticGregorian).is_err());
    }

    #[test]
    fn every_day_round_trips_in_every_calendar() {
        for calendar in [
            CfCalendar::Standard,
            CfCalendar::ProlepticGregorian,
            CfCalendar::Julian,
            CfCalendar::NoLeap,
            CfCalendar::AllLeap,
            CfCalendar::Day360,
        ] {
            let start = instant(&dt(1500, 1, 1, 0), calendar)
                .expect("start")
                .div_euclid(86_400);
            let mut previous: Option<DateTime> = None;
            for day in start..start + 366 * 200 {
                let d = date_time(day * 86_400 + 3_600 * 6, calendar).expect("date");
                assert_eq!(
                    instant(&d, calendar).expect("instant").div_euclid(86_400),
                    day,
                    "{d}"
                );
                if let Some(p) = previous {
                    assert!(d > p, "{calendar:?}: {p} then {d}");
                }
                previous = Some(d);
            }
        }
    }

    #[test]
    fn encodes_in_other_units() {
        let source = parse_units("hours since 2015-01-01").expect("units");
        let target = parse_units("days since 1850-01-01").expect("units");
        let t = value_instant(36.0, &source, CfCalendar::NoLeap).expect("instant");
        assert_eq!(
            encode(t, &target, CfCalendar::NoLeap).expect("encode"),
            165.0 * 365.0 + 1.5
        );
    }
}
