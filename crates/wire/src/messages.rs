//! Queue messages. JSON, small (an SQS message is at most 256 KiB).

use serde::{Deserialize, Serialize};

/// Identity of one output group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupKey {
    /// `AIS` or `GIS`.
    pub ice_sheet: String,
    /// Institution directory, e.g. `AWI`.
    pub institution: String,
    /// Model directory, e.g. `PISM1`.
    pub model: String,
    /// Experiment directory, e.g. `exp05`.
    pub experiment: String,
    /// The store path, when the profile's template makes one other than
    /// `{institution}_{model}/{experiment}` (e.g. CMIP6's
    /// `{source}/{experiment}/{member}/{table}/{grid}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl GroupKey {
    /// The store path of the group: `{institution}_{model}/{experiment}`, or the profile's.
    pub fn group_path(&self) -> String {
        match &self.path {
            Some(path) => path.clone(),
            None => format!("{}_{}/{}", self.institution, self.model, self.experiment),
        }
    }

    /// The parent group: `{institution}_{model}`, or everything above the last `/`.
    pub fn parent_path(&self) -> String {
        match &self.path {
            Some(path) => path
                .rsplit_once('/')
                .map_or_else(String::new, |(parent, _)| parent.to_string()),
            None => format!("{}_{}", self.institution, self.model),
        }
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
        let g = &self.group;
        let parts: Vec<(&str, &str)> = match &g.path {
            Some(path) => path
                .split('/')
                .map(|p| ("group path component", p))
                .collect(),
            None => vec![
                ("institution", g.institution.as_str()),
                ("model", g.model.as_str()),
                ("experiment", g.experiment.as_str()),
            ],
        };
        for (what, v) in parts {
            if v.is_empty() || v == "." || v == ".." || v.contains('/') {
                return Err(format!(
                    "batch {}: {what} {v:?} is not a plain name",
                    self.batch_id
                ));
            }
        }
        if !is_plain_id(&self.batch_id) {
            return Err(format!("batch id {:?} is not a plain name", self.batch_id));
        }
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
            if !is_plain_id(&shard.group_batch_id) {
                return Err(format!(
                    "batch {}: group batch id {:?} is not a plain name",
                    self.batch_id, shard.group_batch_id
                ));
            }
        }
        Ok(())
    }
}

/// A batch id that is safe as an object key component.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
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
}

impl VariableWarning {
    /// A variable left out of its group.
    pub fn left_out(file: &str, variable: &str, reason: String) -> VariableWarning {
        VariableWarning {
            file: file.to_string(),
            variable: variable.to_string(),
            reason,
            kept_apart: false,
        }
    }

    /// The variables a group's attributes record as left out (its
    /// `floe_warnings`, without those kept on their own axis). Attributes
    /// floe did not write read as none.
    pub fn left_out_of(
        group_attributes: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<VariableWarning> {
        group_attributes
            .get("floe_warnings")
            .and_then(|w| serde_json::from_value::<Vec<VariableWarning>>(w.clone()).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|w| !w.kept_apart)
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
