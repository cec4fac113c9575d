//! Queue messages. JSON, small (an SQS message is at most 256 KiB).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One output group. Its store path is its identity: what names it in the store, in batch ids
/// and in every message about it. The fields the archive's profile read from its files' paths
/// (ISMIP6's `ice_sheet`, `institution`, `model` and `experiment`; CMIP6's `source`, `member`,
/// ...) travel beside it as data, for the group's attributes and for filters.
///
/// Read from every schema version: messages of versions 1 to 3 carried ISMIP6's four fields
/// at the top, with `path` only when the profile's template made another one
/// ([`GroupKeyOnWire`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "GroupKeyOnWire")]
pub struct GroupKey {
    /// The store path, e.g. `AWI_PISM1/exp05` or `CESM2/historical/r1i1p1f1/Amon/gn`.
    pub path: String,
    /// The profile's fields of the group's paths, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

/// The fields of an ISMIP6 group in messages of schema versions 1 to 3.
const ISMIP6_FIELDS: [&str; 4] = ["ice_sheet", "institution", "model", "experiment"];

/// A group key as any schema version wrote it: `path` and `fields` (version 4 on), or ISMIP6's
/// four fields at the top level with an optional `path` (versions 1 to 3).
#[derive(Deserialize)]
struct GroupKeyOnWire {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    ice_sheet: Option<String>,
    #[serde(default)]
    institution: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    experiment: Option<String>,
}

impl TryFrom<GroupKeyOnWire> for GroupKey {
    type Error = String;

    fn try_from(wire: GroupKeyOnWire) -> Result<GroupKey, String> {
        let legacy = [
            wire.ice_sheet,
            wire.institution,
            wire.model,
            wire.experiment,
        ];
        if legacy.iter().all(Option::is_none) {
            let path = wire
                .path
                .ok_or("group key without a path (and without the ISMIP6 fields of schema versions 1 to 3)")?;
            return Ok(GroupKey {
                path,
                fields: wire.fields,
            });
        }
        let fields: BTreeMap<String, String> = ISMIP6_FIELDS
            .iter()
            .zip(legacy)
            .map(|(name, value)| (name.to_string(), value.unwrap_or_default()))
            .collect();
        let path = match wire.path {
            Some(path) => path,
            None => format!(
                "{}_{}/{}",
                fields["institution"], fields["model"], fields["experiment"]
            ),
        };
        Ok(GroupKey { path, fields })
    }
}

impl GroupKey {
    /// A group named by its store path, with the profile's fields of its paths.
    pub fn new(path: impl Into<String>, fields: BTreeMap<String, String>) -> GroupKey {
        GroupKey {
            path: path.into(),
            fields,
        }
    }

    /// The store path of the group.
    pub fn group_path(&self) -> String {
        self.path.clone()
    }

    /// The parent group: everything above the last `/` (empty for a top-level group).
    pub fn parent_path(&self) -> String {
        self.path
            .rsplit_once('/')
            .map_or_else(String::new, |(parent, _)| parent.to_string())
    }

    /// A field the profile read from the group's paths; empty when it has none of that name.
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

/// How a batch's files of one variable are concatenated (profiles with `concat`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcatSpec {
    /// The dimension the files concatenate along (`time`).
    pub dimension: String,
    /// Units of the stored time coordinate (`days since 1850-01-01`); `None`: the first file's.
    #[serde(default)]
    pub time_units: Option<String>,
    /// Which variables of each file the group takes. `None`: the one variable its
    /// path names ([`SourceFile::variable`]); `Some`: every data variable of each
    /// file along the dimension, filtered by the selection (profiles without a
    /// `variable` field: MUR SST, IMERG, ERA5-style files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_variables: Option<VariableSelection>,
}

/// [`ConcatSpec::dimension`] of a profile that concatenates along each file's
/// unlimited (record) dimension, whatever its name (`concat = "@unlimited"`).
/// Not a NetCDF name: those cannot start with `@`.
pub const UNLIMITED_DIMENSION: &str = "@unlimited";

/// The group attribute naming the dimension a group was concatenated along,
/// when its profile said [`UNLIMITED_DIMENSION`].
pub const CONCAT_DIMENSION_ATTRIBUTE: &str = "floe_concat_dimension";

/// The variables taken from files that hold several (a profile's `variables` and
/// `exclude_variables`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableSelection {
    /// Only these, each of which every file must hold; empty: every data variable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Never these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

impl VariableSelection {
    /// Whether a data variable of a file is taken.
    pub fn takes(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|v| v == name))
            && !self.exclude.iter().any(|v| v == name)
    }

    /// The selection as one line, for batch ids and messages: `every variable`,
    /// `only a, b`, `every variable but c`.
    pub fn describe(&self) -> String {
        let list = |v: &[String]| v.join(", ");
        match (self.include.is_empty(), self.exclude.is_empty()) {
            (true, true) => "every variable".to_string(),
            (false, true) => format!("only {}", list(&self.include)),
            (true, false) => format!("every variable but {}", list(&self.exclude)),
            (false, false) => format!(
                "only {}, but not {}",
                list(&self.include),
                list(&self.exclude)
            ),
        }
    }
}

/// [`SourceFile::variable`] of a file whose variables come from the file itself.
pub const EVERY_VARIABLE: &str = "*";

/// One input file and the identity that makes a batch id change when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Where to read it.
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag, if the store has one.
    #[serde(default)]
    pub etag: Option<String>,
    /// Last modification, RFC 3339.
    #[serde(default)]
    pub last_modified: Option<String>,
    /// Variable, from the path rules; [`EVERY_VARIABLE`] when the group takes
    /// each file's variables from the file.
    pub variable: String,
}

/// Producer → virtualizer: build this group from these files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchDescriptor {
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Deterministic id: hash of the profile, the group path and the files' identities.
    pub batch_id: String,
    /// The archive profile that planned it, `id@version` (messages from before
    /// profiles existed were ISMIP6's).
    #[serde(default = "default_profile")]
    pub profile: String,
    /// The group.
    pub group: GroupKey,
    /// Input files, sorted by URL.
    pub files: Vec<SourceFile>,
    /// Concatenation of the files of a variable; `None`: one file per variable
    /// (ISMIP6), with year binning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concat: Option<ConcatSpec>,
    /// This message carries one shard of a larger group: `files` are the
    /// shard's, and the group is assembled once every shard's scans are stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardOf>,
    /// This batch extends a group already in the store: `files` are only the
    /// new ones, `batch_id` is that of every input (old and new), and the
    /// committer applies it only on the stored state it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<AppendOf>,
    /// This whole batch rebuilds a stored group: the batch id the group holds now.
    /// The committer replaces that state even when these inputs are not newer (a
    /// removed file, or an append it refused), and no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// The stored state an append extends (DESIGN.md, "Appends"). The new files
/// are read and merged alone; the committer checks them against what the
/// store records about the old ones, resizes the arrays along the dimension
/// and writes only the new chunk references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOf {
    /// Batch id the group holds now; the append applies on this state only.
    pub base_batch_id: String,
    /// Input files the group holds now.
    pub base_files: u32,
    /// The dimension the files are concatenated along (the profile's `concat`).
    pub dimension: String,
}

/// Which part of a group a sharded batch descriptor is. A group whose files
/// would not fit in one queue message, or would keep one worker busy for long,
/// travels as several descriptors of consecutive files (in URL order); each
/// virtualizer stores its shard's per-file scans, and the one that finds every
/// shard stored assembles the group (DESIGN.md, "Large groups").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardOf {
    /// Batch id of the whole group, as planned: where the shards' scans meet.
    pub group_batch_id: String,
    /// This shard's position, from 0.
    pub index: u32,
    /// How many shards the group has.
    pub count: u32,
}

/// The profile of a descriptor that names none.
pub fn default_profile() -> String {
    DEFAULT_PROFILE_TAG.to_string()
}

/// `id@version` of the default (ISMIP6) profile.
pub const DEFAULT_PROFILE_TAG: &str = "ismip6@1";

impl BatchDescriptor {
    /// Checks what the type system cannot: group path components that are
    /// plain names (a message must not be able to write outside its group),
    /// and at least one file.
    pub fn validate(&self) -> Result<(), String> {
        crate::check_batch_id(&self.batch_id).map_err(|e| e.to_string())?;
        crate::check_group_path(&self.group.path)
            .map_err(|e| format!("batch {}: {e}", self.batch_id))?;
        if self.files.is_empty() {
            return Err(format!("batch {}: no files", self.batch_id));
        }
        if let Some(shard) = &self.shard {
            if shard.index >= shard.count {
                return Err(format!(
                    "batch {}: shard {} of {} does not exist",
                    self.batch_id, shard.index, shard.count
                ));
            }
            crate::check_batch_id(&shard.group_batch_id)
                .map_err(|e| format!("batch {}: its group's {e}", self.batch_id))?;
        }
        Ok(())
    }
}

/// Virtualizer → committer: the fragment for a batch is ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultMessage {
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Batch the fragment was built from.
    pub batch_id: String,
    /// Store path of the group.
    pub group_path: String,
    /// Where the fragment is (`s3://…`, `file://…`).
    pub fragment_url: String,
    /// SHA-256 of the fragment's bytes, checked before use.
    pub fragment_sha256: String,
}

impl ResultMessage {
    /// Checks what the type system cannot: the batch id and group path by floe's
    /// rules ([`crate::names`]), and a SHA-256 that is one.
    pub fn validate(&self) -> Result<(), String> {
        crate::check_batch_id(&self.batch_id).map_err(|e| e.to_string())?;
        crate::check_group_path(&self.group_path)
            .map_err(|e| format!("batch {}: {e}", self.batch_id))?;
        let digest = &self.fragment_sha256;
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "batch {}: fragment_sha256 {:?} is not a SHA-256",
                self.batch_id,
                crate::bounded(digest, 80)
            ));
        }
        Ok(())
    }
}

/// A variable left out of its group, or kept on a time axis of its own, and
/// why. A group's `floe_warnings` attribute holds them: a group with a variable
/// left out is a partial group, which `producer status`, `dlq list` and
/// `verify` name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableWarning {
    /// The file at fault.
    pub file: String,
    /// The variable.
    pub variable: String,
    /// Why it was left out or kept apart.
    pub reason: String,
    /// The variable is in the group, on a time axis of its own (not left out).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kept_apart: bool,
    /// A companion variable (bounds, a 2-D lat/lon) the profile's layout does
    /// not carry: named, not a data variable left out (the group is whole).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_carried: bool,
}

impl VariableWarning {
    /// A variable left out of its group.
    pub fn left_out(file: &str, variable: &str, reason: String) -> VariableWarning {
        VariableWarning {
            file: file.to_string(),
            variable: variable.to_string(),
            reason,
            kept_apart: false,
            not_carried: false,
        }
    }

    /// A companion variable the profile's layout does not carry.
    pub fn not_carried(file: &str, variable: &str, reason: String) -> VariableWarning {
        VariableWarning {
            not_carried: true,
            ..VariableWarning::left_out(file, variable, reason)
        }
    }

    /// A data variable the group is written without (neither kept on an axis
    /// of its own nor a companion the layout does not carry).
    pub fn is_left_out(&self) -> bool {
        !self.kept_apart && !self.not_carried
    }

    /// The variables a group's attributes record as left out (its
    /// `floe_warnings`, without those kept on their own axis or not carried). Attributes
    /// floe did not write read as none.
    pub fn left_out_of(
        group_attributes: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<VariableWarning> {
        group_attributes
            .get("floe_warnings")
            .and_then(|w| serde_json::from_value::<Vec<VariableWarning>>(w.clone()).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(VariableWarning::is_left_out)
            .collect()
    }
}

/// Why a batch failed; written next to the fragments so that `producer dlq list`
/// can show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The failed batch.
    pub batch_id: String,
    /// Its group.
    pub group_path: String,
    /// The file at fault, when one is.
    pub file: Option<String>,
    /// What went wrong.
    pub reason: String,
    /// Whether a retry may succeed.
    pub retryable: bool,
    /// When, RFC 3339.
    pub at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(version: u32, group: serde_json::Value) -> String {
        serde_json::json!({
            "schema_version": version, "batch_id": "80be14abcccb722816bf7463cafe9fa1", "group": group,
            "files": [{"url": "s3://a/x.nc", "size": 1, "variable": "lithk"}],
        })
        .to_string()
    }

    #[test]
    fn a_group_is_named_by_its_path_and_carries_its_fields_as_data() {
        let fields = BTreeMap::from([("source".to_string(), "CESM2".to_string())]);
        let group = GroupKey::new("CESM2/historical/r1i1p1f1/Amon/gn", fields);
        let json = serde_json::to_value(&group).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"path": "CESM2/historical/r1i1p1f1/Amon/gn", "fields": {"source": "CESM2"}})
        );
        assert_eq!(
            serde_json::from_value::<GroupKey>(json).expect("reads"),
            group
        );
        assert_eq!(group.parent_path(), "CESM2/historical/r1i1p1f1/Amon");
        assert_eq!(
            (group.field("source"), group.field("ice_sheet")),
            ("CESM2", "")
        );
    }

    #[test]
    fn version_three_group_keys_still_read() {
        let ismip6 = serde_json::json!({"ice_sheet": "AIS", "institution": "AWI", "model": "PISM1", "experiment": "exp05"});
        let batch: BatchDescriptor =
            crate::decode_message(&descriptor(3, ismip6)).expect("a version 3 message reads");
        assert_eq!(batch.group.path, "AWI_PISM1/exp05");
        assert_eq!(batch.group.parent_path(), "AWI_PISM1");
        assert_eq!(
            (
                batch.group.field("ice_sheet"),
                batch.group.field("experiment")
            ),
            ("AIS", "exp05")
        );
        let cmip6 = serde_json::json!({"ice_sheet": "", "institution": "", "model": "", "experiment": "",
                                       "path": "CESM2/historical/r1i1p1f1/Amon/gn"});
        let batch: BatchDescriptor = crate::decode_message(&descriptor(2, cmip6)).expect("reads");
        assert_eq!(batch.group.path, "CESM2/historical/r1i1p1f1/Amon/gn");
        assert!(batch.validate().is_ok());
    }

    #[test]
    fn a_group_key_without_a_path_is_refused_by_name() {
        let err = crate::decode_message::<BatchDescriptor>(&descriptor(
            4,
            serde_json::json!({"fields": {}}),
        ))
        .expect_err("no path");
        assert!(
            err.to_string().contains("group key without a path"),
            "{err}"
        );
        let later = crate::decode_message::<BatchDescriptor>(&descriptor(
            6,
            serde_json::json!({"path": "a/b"}),
        ))
        .expect_err("a later version");
        assert!(
            err.to_string().contains("group key")
                && later.to_string().contains("unknown schema version 6")
        );
    }

    #[test]
    fn a_path_that_leaves_its_group_is_refused() {
        let batch: BatchDescriptor =
            crate::decode_message(&descriptor(4, serde_json::json!({"path": "a/../../b"})))
                .expect("parses");
        assert!(batch
            .validate()
            .expect_err("refused")
            .contains("\"..\" is not a plain name"));
        let named = |path: &str| {
            crate::decode_message::<BatchDescriptor>(&descriptor(
                4,
                serde_json::json!({"path": path}),
            ))
            .expect("parses")
            .validate()
        };
        assert!(named("a/_floe").expect_err("reserved").contains("_floe"));
        assert!(named("a\u{ff0f}b")
            .expect_err("lookalike")
            .contains("U+FF0F"));
    }
}
