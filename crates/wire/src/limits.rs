//! The limits that bound what outside input (a header, a message, a fragment)
//! may make floe allocate, read or store: one table, named and configurable.
//!
//! Every limit has a default that real archives stay far below, and an
//! environment variable that sets it for one process (`FLOE_MAX_…`, the same in
//! every binary and in Lambda). A binary reads them once at start
//! (`floe_runtime::run` calls [`install_from_env`]): an unparsable or zero value
//! stops it with the variable named, before it does any work. Code reads them
//! with [`limits`]; a library used without a binary gets the defaults.
//!
//! `producer limits` prints the table with the values in force and where each
//! came from.

use std::sync::OnceLock;

macro_rules! limits_table {
    ($( $(#[doc = $doc:literal])* $field:ident: $env:literal = $default:expr, $unit:literal; )*) => {
        /// Every limit, one field each (see the module doc).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct Limits {
            $( $(#[doc = $doc])* pub $field: u64, )*
        }

        impl Limits {
            /// The defaults.
            pub const DEFAULT: Limits = Limits { $( $field: $default, )* };

            /// Every limit: its field, environment variable, unit and what it bounds.
            pub const TABLE: &'static [LimitSpec] = &[
                $( LimitSpec {
                    field: stringify!($field),
                    env: $env,
                    unit: $unit,
                    what: concat!($($doc),*),
                    default: $default,
                }, )*
            ];

            /// The value of the limit named `field`.
            pub fn get(&self, field: &str) -> Option<u64> {
                match field {
                    $( stringify!($field) => Some(self.$field), )*
                    _ => None,
                }
            }

            fn set(&mut self, field: &str, value: u64) {
                match field {
                    $( stringify!($field) => self.$field = value, )*
                    _ => {}
                }
            }
        }
    };
}

limits_table! {
    /// Chunk references read from one file, all its variables together. Each
    /// costs about 230 bytes while its index is walked.
    chunks_per_file: "FLOE_MAX_CHUNKS_PER_FILE" = 1 << 20, "references";
    /// Bytes read from one file for its header and coordinate values; an
    /// index over it is refused before it is walked further.
    header_bytes_per_file: "FLOE_MAX_HEADER_BYTES_PER_FILE" = 32 << 20, "bytes";
    /// Header bytes each file reads on its own. Beyond them, a file waits for
    /// the process's one large-header turn, so that only one large header at
    /// a time is in memory, however many files are read at once.
    header_bytes_unshared: "FLOE_MAX_HEADER_BYTES_UNSHARED" = 2 << 20, "bytes";
    /// Elements of one array (the product of its shape).
    elements_per_array: "FLOE_MAX_ELEMENTS_PER_ARRAY" = 1 << 50, "elements";
    /// Virtual references in one fragment, counted as a batch's files are read (icechunk
    /// 2.3 takes at most 50 M a commit). In AWS Lambda, unless set, a quarter of the
    /// function's memory at 256 bytes each (512 MB: 524,288).
    references_per_fragment: "FLOE_MAX_REFERENCES_PER_FRAGMENT" = 50_000_000, "references";
    /// Bytes of one attribute's value, as JSON.
    attribute_bytes: "FLOE_MAX_ATTRIBUTE_BYTES" = 1 << 20, "bytes";
    /// Bytes of a group's metadata: its attributes and every array's zarr.json.
    group_metadata_bytes: "FLOE_MAX_GROUP_METADATA_BYTES" = 64 << 20, "bytes";
    /// Levels of a group path.
    group_depth: "FLOE_MAX_GROUP_DEPTH" = 32, "levels";
    /// Bytes of a group path.
    group_path_bytes: "FLOE_MAX_GROUP_PATH_BYTES" = 1024, "bytes";
    /// Points of a regular grid axis that floe regenerates and checks.
    axis_points: "FLOE_MAX_AXIS_POINTS" = 100_000, "points";
    /// Steps a contiguous variable is split into, one reference each.
    split_steps: "FLOE_MAX_SPLIT_STEPS" = 1_000_000, "steps";
    /// Variable-length strings of one variable, stored inline.
    inline_strings: "FLOE_MAX_INLINE_STRINGS" = 1 << 16, "strings";
    /// Bytes of one variable's variable-length strings, stored inline.
    inline_string_bytes: "FLOE_MAX_INLINE_STRING_BYTES" = 4 << 20, "bytes";
    /// Characters of an error a binary prints.
    error_chars: "FLOE_MAX_ERROR_CHARS" = 4_000, "characters";
    /// Characters of a failure's reason kept in its record (and `dlq list`).
    reason_chars: "FLOE_MAX_REASON_CHARS" = 2_000, "characters";
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// One row of [`Limits::TABLE`].
#[derive(Debug, Clone, Copy)]
pub struct LimitSpec {
    /// The field of [`Limits`].
    pub field: &'static str,
    /// The environment variable that sets it.
    pub env: &'static str,
    /// What it counts.
    pub unit: &'static str,
    /// What it bounds.
    pub what: &'static str,
    /// Its default.
    pub default: u64,
}

/// A limit's value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{env}={value:?}: {reason}")]
pub struct LimitError {
    /// The environment variable.
    pub env: String,
    /// Its value, cut to a readable length.
    pub value: String,
    /// Why it cannot be used.
    pub reason: String,
}

impl Limits {
    /// The defaults, with each limit that `lookup` gives a value for (by its
    /// environment variable's name) set to it. A value is a whole number
    /// above zero: digits, `_` between them allowed, optionally followed by
    /// `KiB`, `MiB` or `GiB`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Limits, LimitError> {
        let mut limits = Limits::DEFAULT;
        for spec in Limits::TABLE {
            if let Some(raw) = lookup(spec.env) {
                let value = parse_value(&raw).map_err(|reason| LimitError {
                    env: spec.env.to_string(),
                    value: crate::bounded(&raw, 40),
                    reason,
                })?;
                limits.set(spec.field, value);
            }
        }
        // In AWS Lambda, unless set: a fragment's references fitted to a quarter of the
        // function's memory, so that a batch's references, the one large header being read
        // and the files read beside it stay under it together (bench/hostile.py).
        let set = lookup("FLOE_MAX_REFERENCES_PER_FRAGMENT").is_some();
        let lambda_mb =
            lookup("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|m| m.trim().parse::<u64>().ok());
        if let (false, Some(mb)) = (set, lambda_mb) {
            let fitted = (mb << 20) / 4 / BYTES_PER_REFERENCE;
            limits.references_per_fragment = limits.references_per_fragment.min(fitted.max(1));
        }
        Ok(limits)
    }

    /// [`Limits::from_lookup`] of this process's environment.
    pub fn from_env() -> Result<Limits, LimitError> {
        Limits::from_lookup(|name| std::env::var(name).ok())
    }
}

fn parse_value(raw: &str) -> Result<u64, String> {
    let text = raw.trim();
    let (digits, scale) = [("KiB", 1u64 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)]
        .iter()
        .find_map(|(suffix, scale)| text.strip_suffix(suffix).map(|d| (d.trim_end(), *scale)))
        .unwrap_or((text, 1));
    let plain = digits.replace('_', "");
    if plain.is_empty() || !plain.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('_') {
        return Err(
            "not a whole number (digits, `_` between them, optionally KiB, MiB or GiB)".into(),
        );
    }
    let value = plain
        .parse::<u64>()
        .ok()
        .and_then(|v| v.checked_mul(scale))
        .ok_or_else(|| "too large".to_string())?;
    if value == 0 {
        return Err("a limit of zero would refuse everything".into());
    }
    Ok(value)
}

/// Memory a chunk reference takes at its peak in a virtualizer, in bytes: one
/// file of 1,000,000 one-byte chunks is read, checked and built into a
/// fragment at a peak of 244 MB (`bench/hostile.py`).
pub const BYTES_PER_REFERENCE: u64 = 256;

static INSTALLED: OnceLock<Limits> = OnceLock::new();

/// The limits in force: those installed at start, else the defaults.
pub fn limits() -> &'static Limits {
    INSTALLED.get_or_init(Limits::default)
}

/// Reads the limits from the environment and puts them in force for this
/// process. Called once, before any work; a later call changes nothing and
/// returns the limits already in force.
pub fn install_from_env() -> Result<&'static Limits, LimitError> {
    let limits = Limits::from_env()?;
    Ok(INSTALLED.get_or_init(|| limits))
}

/// The table of limits in force, for `producer limits`: one entry each, its
/// variable, value, unit and origin, then what it bounds.
pub fn describe(limits: &Limits) -> Vec<String> {
    Limits::TABLE
        .iter()
        .map(|spec| {
            let value = limits.get(spec.field).unwrap_or(spec.default);
            let origin = if value == spec.default {
                "default".to_string()
            } else {
                format!("set; default {}", spec.default)
            };
            format!(
                "{:<34} {:>17} {:<10}  {origin}\n    {}",
                spec.env,
                value,
                spec.unit,
                spec.what.trim()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Limits, LimitError> {
        Limits::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn nothing_set_gives_the_defaults() {
        assert_eq!(from(&[]).expect("defaults"), Limits::DEFAULT);
        assert_eq!(Limits::DEFAULT.attribute_bytes, 1 << 20);
    }

    #[test]
    fn each_variable_sets_its_own_limit_with_units() {
        let limits = from(&[
            ("FLOE_MAX_ATTRIBUTE_BYTES", "4MiB"),
            ("FLOE_MAX_CHUNKS_PER_FILE", "4_000_000"),
            ("FLOE_MAX_GROUP_DEPTH", " 8 "),
        ])
        .expect("usable values");
        assert_eq!(limits.attribute_bytes, 4 << 20);
        assert_eq!(limits.chunks_per_file, 4_000_000);
        assert_eq!(limits.group_depth, 8);
        assert_eq!(limits.reason_chars, Limits::DEFAULT.reason_chars);
    }

    #[test]
    fn unusable_values_are_refused_naming_the_variable() {
        for bad in [
            "",
            "0",
            "-1",
            "1.5",
            "12 MB",
            "_1",
            "99999999999999999999",
            "20000000000GiB",
        ] {
            let e = from(&[("FLOE_MAX_SPLIT_STEPS", bad)]).expect_err(bad);
            assert_eq!(e.env, "FLOE_MAX_SPLIT_STEPS", "{bad:?}");
            assert!(e.to_string().starts_with("FLOE_MAX_SPLIT_STEPS="), "{e}");
        }
    }

    #[test]
    fn in_lambda_a_fragments_references_fit_a_quarter_of_its_memory_unless_set() {
        let lambda = from(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")]).expect("512 MB");
        assert_eq!(lambda.references_per_fragment, (512 << 20) / 4 / 256);
        let set = from(&[
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
            ("FLOE_MAX_REFERENCES_PER_FRAGMENT", "3000000"),
        ])
        .expect("set");
        assert_eq!(set.references_per_fragment, 3_000_000);
        let large = from(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1000000")]).expect("1 TB");
        assert_eq!(large.references_per_fragment, 50_000_000);
    }

    #[test]
    fn every_limit_has_its_own_variable_and_a_description() {
        let mut envs: Vec<&str> = Limits::TABLE.iter().map(|s| s.env).collect();
        envs.sort_unstable();
        envs.dedup();
        assert_eq!(envs.len(), Limits::TABLE.len());
        for spec in Limits::TABLE {
            assert!(spec.env.starts_with("FLOE_MAX_"), "{}", spec.env);
            assert!(spec.what.len() > 20, "{}", spec.field);
            assert_eq!(Limits::DEFAULT.get(spec.field), Some(spec.default));
        }
        let described = describe(&from(&[("FLOE_MAX_GROUP_DEPTH", "8")]).expect("8 levels"));
        assert!(described
            .iter()
            .any(|l| l.contains("FLOE_MAX_GROUP_DEPTH") && l.contains("set; default 32")));
    }
}
