//! Time attributes (`units`, `calendar`) and the time values come from the
//! files. Any combination must decode to a time axis or a typed error, and the
//! CF calendar arithmetic must not overflow or panic on extreme values.
//! Input: `units` NUL `calendar` NUL, then little-endian f64 values.
#![no_main]

use floe_group::cftime::{self, CfCalendar};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let units = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let calendar = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let values: Vec<f64> = parts
        .next()
        .unwrap_or_default()
        .chunks_exact(8)
        .take(4096)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();

    let mut attrs = Map::new();
    attrs.insert("units".into(), Value::String(units.clone()));
    if !calendar.is_empty() {
        attrs.insert("calendar".into(), Value::String(calendar.clone()));
    }
    let _ = floe_group::time::decode_time(&values, &attrs);

    if let (Ok(units), Ok(calendar)) = (
        cftime::parse_units(&units),
        CfCalendar::parse((!calendar.is_empty()).then_some(calendar.as_str())),
    ) {
        for value in values.iter().take(64) {
            let _ = cftime::decode(*value, &units, calendar);
        }
    }
});
