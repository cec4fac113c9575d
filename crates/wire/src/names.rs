//! Names that arrive from outside (a message, a fragment, a planned path),
//! checked the same way by every binary before they name anything in a store.
//!
//! A group path is a Zarr v3 node path plus floe's own rules:
//! - each `/`-separated segment is a plain name: not empty, not `.` or `..`,
//!   not starting with `__` (Zarr v3 reserves those), and not `_floe` (the
//!   segment where floe keeps a group's own records);
//! - no control characters (NUL among them), no `\`, no `%` (a percent-encoded
//!   `/` or `..` would become one further on), and no character that imitates
//!   `/` (U+FF0F fullwidth solidus, U+2215 division slash, U+2044 fraction slash,
//!   U+29F8 big solidus, U+1735, U+2571, U+27CB, U+3033);
//! - Unicode in normalization form C, so that one name has one spelling;
//! - at most [`Limits::group_depth`](crate::Limits::group_depth) segments and
//!   [`Limits::group_path_bytes`](crate::Limits::group_path_bytes) bytes.
//!
//! A batch id is the producer's own format: 32 lowercase hexadecimal digits
//! (a SHA-256 prefix), and a shard's adds `-s` and its index.

/// The segment where floe keeps a group's own records (`_floe/inputs`).
pub const RESERVED_SEGMENT: &str = "_floe";

/// Characters that a reader may take for `/`.
const SLASH_LOOKALIKES: [char; 8] = [
    '\u{FF0F}', '\u{2215}', '\u{2044}', '\u{29F8}', '\u{1735}', '\u{2571}', '\u{27CB}', '\u{3033}',
];

/// Why a name from outside is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A group path that breaks a rule of the module doc.
    #[error("group path {path:?}: {reason}")]
    GroupPath {
        /// The path, cut to a readable length.
        path: String,
        /// The rule it breaks.
        reason: String,
    },
    /// An array or sub-group name inside a group that breaks a rule of
    /// [`check_member_path`].
    #[error("name {path:?} inside the group: {reason}")]
    MemberPath {
        /// The name, cut to a readable length.
        path: String,
        /// The rule it breaks.
        reason: String,
    },
    /// A batch id not in the producer's format.
    #[error("batch id {0:?} is not floe's (32 lowercase hexadecimal digits, a shard's with -s and its index)")]
    BatchId(String),
}

/// Checks a group path against the rules of the module doc.
pub fn check_group_path(path: &str) -> Result<(), NameError> {
    let refuse = |reason: String| NameError::GroupPath {
        path: crate::bounded(path, 200),
        reason,
    };
    let limits = crate::limits();
    if path.len() as u64 > limits.group_path_bytes {
        return Err(refuse(format!(
            "{} bytes, more than {} (FLOE_MAX_GROUP_PATH_BYTES)",
            path.len(),
            limits.group_path_bytes
        )));
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() as u64 > limits.group_depth {
        return Err(refuse(format!(
            "{} levels, more than {} (FLOE_MAX_GROUP_DEPTH)",
            segments.len(),
            limits.group_depth
        )));
    }
    for segment in segments {
        check_segment(segment).map_err(refuse)?;
    }
    if let Some(c) = path
        .chars()
        .find(|c| c.is_control() || matches!(c, '\\' | '%') || SLASH_LOOKALIKES.contains(c))
    {
        return Err(refuse(format!(
            "character {c:?} (U+{:04X}) is not allowed",
            c as u32
        )));
    }
    if !icu_normalizer::ComposingNormalizerBorrowed::new_nfc().is_normalized(path) {
        return Err(refuse("not in Unicode normalization form C".into()));
    }
    Ok(())
}

/// Checks the name of an array or sub-group inside a group: a path of one or
/// more `/`-separated segments (`"tas"`, `"sub/inner/w"`, a NetCDF-4 file's
/// sub-groups), each a plain name: not empty, not `.` or `..`, not starting
/// with `__` (Zarr v3 reserves those), and not [`RESERVED_SEGMENT`], where
/// floe keeps the group's own records; at most
/// [`Limits::group_depth`](crate::Limits::group_depth) segments. Other
/// characters are the file's own (a variable may be called `rh%`), and stay.
pub fn check_member_path(path: &str) -> Result<(), NameError> {
    let refuse = |reason: String| NameError::MemberPath {
        path: crate::bounded(path, 100),
        reason,
    };
    let segments: Vec<&str> = path.split('/').collect();
    let depth = crate::limits().group_depth;
    if segments.len() as u64 > depth {
        return Err(refuse(format!(
            "{} levels, more than {depth} (FLOE_MAX_GROUP_DEPTH)",
            segments.len()
        )));
    }
    for segment in segments {
        check_segment(segment).map_err(refuse)?;
    }
    Ok(())
}

/// One `/`-separated segment of a group path or a name inside a group: a plain
/// name (the rules of the module doc), or why not.
fn check_segment(segment: &str) -> Result<(), String> {
    if segment.is_empty() || segment == "." || segment == ".." {
        return Err(format!("segment {segment:?} is not a plain name"));
    }
    if segment.starts_with("__") {
        return Err(format!(
            "segment {segment:?} starts with __, which Zarr v3 reserves"
        ));
    }
    if segment == RESERVED_SEGMENT {
        return Err(format!(
            "segment {RESERVED_SEGMENT} is where floe keeps a group's records"
        ));
    }
    Ok(())
}

/// Checks a batch id against the producer's format.
pub fn check_batch_id(id: &str) -> Result<(), NameError> {
    let (hash, shard) = match id.split_once("-s") {
        Some((hash, index)) => (hash, Some(index)),
        None => (id, None),
    };
    let hex = hash.len() == 32
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let shard_ok = shard
        .is_none_or(|s| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()));
    if hex && shard_ok {
        Ok(())
    } else {
        Err(NameError::BatchId(crate::bounded(id, 100)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_are_plain_names_at_any_depth() {
        for path in ["tas", "rh%", "sub/w", "sub/inner/w", "Météo"] {
            assert!(check_member_path(path).is_ok(), "{path}");
        }
        let deep = vec!["a"; crate::limits().group_depth as usize + 1].join("/");
        let cases: &[(&str, &str)] = &[
            ("", "not a plain name"),
            ("sub/", "not a plain name"),
            ("/w", "not a plain name"),
            ("sub/../w", "not a plain name"),
            (".", "not a plain name"),
            ("__w", "Zarr v3 reserves"),
            ("sub/__w", "Zarr v3 reserves"),
            ("_floe", "floe keeps"),
            ("_floe/inputs", "floe keeps"),
            (&deep, "FLOE_MAX_GROUP_DEPTH"),
        ];
        for (path, reason) in cases {
            let error = check_member_path(path).expect_err(path).to_string();
            assert!(error.contains(reason), "{path:?}: {error}");
        }
    }

    #[test]
    fn plain_group_paths_pass() {
        for path in [
            "AWI_PISM1/exp05",
            "CESM2/historical/r1i1p1f1/Amon/gn",
            "obs/2020/sst.v2",
            "Météo/été",
        ] {
            assert!(check_group_path(path).is_ok(), "{path}");
        }
    }

    #[test]
    fn hostile_group_paths_are_refused_by_rule() {
        let deep = vec!["a"; crate::limits().group_depth as usize + 1].join("/");
        let long = "a".repeat(crate::limits().group_path_bytes as usize + 1);
        let cases: &[(&str, &str)] = &[
            ("a/../b", "not a plain name"),
            ("a//b", "not a plain name"),
            ("/a", "not a plain name"),
            ("a/_floe", "floe keeps"),
            ("a/_floe/inputs", "floe keeps"),
            ("a/__zarr", "Zarr v3 reserves"),
            ("a\u{0}b", "U+0000"),
            ("a\nb", "U+000A"),
            ("a\u{FF0F}b", "U+FF0F"),
            ("a\u{2215}b", "U+2215"),
            ("..%2Fb", "U+0025"),
            ("a\\b", "U+005C"),
            ("e\u{301}te", "normalization form C"),
            (&deep, "levels"),
            (&long, "bytes"),
        ];
        for (path, why) in cases {
            let e = check_group_path(path).expect_err(path);
            assert!(e.to_string().contains(why), "{path:?}: {e}");
        }
        let e = check_group_path(&long).expect_err("long").to_string();
        assert!(e.len() < 400, "the message is bounded: {} bytes", e.len());
    }

    #[test]
    fn batch_ids_are_the_producers() {
        let id = "80be14abcccb722816bf7463cafe9fa1";
        assert!(check_batch_id(id).is_ok());
        assert!(check_batch_id(&format!("{id}-s00003")).is_ok());
        for bad in [
            "a/b/c",
            "b1",
            "",
            &id.to_uppercase(),
            &format!("{id}-s"),
            &format!("{id}-sx"),
        ] {
            assert!(check_batch_id(bad).is_err(), "{bad}");
        }
    }
}
