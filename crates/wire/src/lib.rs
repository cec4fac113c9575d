//! # floe-wire: the contracts between floe's stages
//!
//! Serde types only, no I/O:
//! - [`BatchDescriptor`]: producer → work queue → virtualizer. One group's input files.
//! - [`ResultMessage`]: virtualizer → results queue → committer. Points at a fragment.
//! - [`ManifestFragment`]: virtualizer → object storage → committer. Everything the
//!   committer writes for one group, self-contained and checksummed ([`fragment`]).
//! - [`FailureRecord`]: why a batch failed, kept where `producer dlq list` finds it.
//!
//! Every message and fragment carries [`SCHEMA_VERSION`]; an unknown version is a
//! permanent, clear error ([`WireError::UnknownVersion`]), never a panic.

#![warn(missing_docs)]

pub mod fragment;
pub mod limits;
mod messages;
pub mod names;

pub use fragment::{
    ArrayFragment, InlineChunk, ManifestFragment, VirtualRef, DIFFERING_ATTRIBUTES,
};
pub use limits::{limits, Limits};
pub use messages::{
    default_profile, AppendOf, BatchDescriptor, ConcatSpec, FailureRecord, GroupKey, ResultMessage,
    ShardOf, SourceFile, VariableSelection, VariableWarning, CONCAT_DIMENSION_ATTRIBUTE,
    DEFAULT_PROFILE_TAG, EVERY_VARIABLE, UNLIMITED_DIMENSION,
};
pub use names::{check_batch_id, check_group_path, check_member_path, NameError};

/// Version of every wire document this build writes. Version 2 added the batch
/// descriptor's `profile` and `concat` and the group key's `path`: a build that
/// reads only version 1 refuses such messages by name instead of building a
/// concatenated group by ISMIP6's rules. Version 3 added the descriptor's
/// `shard`: a version 2 build would build a group from one shard's files, so
/// it must refuse every version 3 message by name. Version 4 names a group by
/// its store path, with the profile's fields beside it (`group: {path,
/// fields}`): a version 3 build would find no ISMIP6 fields, so it refuses the
/// message by name; this build reads the group keys of versions 1 to 3.
/// Version 5 added `append` to descriptors and fragments: a version 4 build
/// would write an append's new files as the whole group, so it must refuse it.
pub const SCHEMA_VERSION: u32 = 5;

/// The oldest version this build still reads (older documents are read with
/// the defaults of the fields later versions added).
pub const OLDEST_READABLE_SCHEMA: u32 = 1;

/// Whether this build reads documents of `version`.
pub fn check_version(version: u32) -> Result<(), WireError> {
    if (OLDEST_READABLE_SCHEMA..=SCHEMA_VERSION).contains(&version) {
        Ok(())
    } else {
        Err(WireError::UnknownVersion {
            found: version,
            expected: SCHEMA_VERSION,
        })
    }
}

/// Errors decoding wire documents.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// A document of a schema version this build does not know.
    #[error("unknown schema version {found} (this build reads versions 1 to {expected})")]
    UnknownVersion {
        /// Version in the document.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// Not a document of the expected kind (a fragment, shard scans) at all.
    #[error("not a floe document of this kind (bad magic bytes)")]
    BadMagic,
    /// Shorter than its header says.
    #[error("fragment is truncated ({0} bytes)")]
    Truncated(usize),
    /// Checksum does not match the payload.
    #[error("fragment checksum mismatch: header {expected}, payload {actual}")]
    ChecksumMismatch {
        /// Checksum in the header.
        expected: String,
        /// Checksum of the payload.
        actual: String,
    },
    /// Payload could not be decompressed or parsed.
    #[error("corrupt document: {0}")]
    Corrupt(String),
}

impl WireError {
    /// Wire errors never heal on retry.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Parses a JSON message, checking its schema version first so that a message
/// from a newer producer fails with a clear error instead of a field mismatch.
pub fn decode_message<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, WireError> {
    #[derive(serde::Deserialize)]
    struct Probe {
        schema_version: u32,
    }
    let probe: Probe = serde_json::from_str(body)
        .map_err(|e| WireError::Corrupt(format!("not a floe message: {e}")))?;
    check_version(probe.schema_version)?;
    serde_json::from_str(body).map_err(|e| WireError::Corrupt(e.to_string()))
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The attributes of `attributes` whose values take more than
/// [`Limits::attribute_bytes`] as JSON, with their sizes. floe's own (`floe_*`)
/// are not counted: the group's warnings grow with what they name.
pub fn oversized_attributes(
    attributes: &serde_json::Map<String, serde_json::Value>,
) -> Vec<(String, usize)> {
    attributes
        .iter()
        .filter(|(key, _)| !key.starts_with("floe_"))
        .map(|(key, value)| (key.clone(), value.to_string().len()))
        .filter(|(_, size)| *size as u64 > limits().attribute_bytes)
        .collect()
}

/// `text` cut to at most `max` characters, saying how many were left out: an
/// error message that quotes its input does not grow with it.
pub fn bounded(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}… ({} more characters)", count - max)
}
