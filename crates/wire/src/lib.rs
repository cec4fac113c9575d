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
mod messages;

pub use fragment::{ArrayFragment, InlineChunk, ManifestFragment, VirtualRef};
pub use messages::{
    default_profile, BatchDescriptor, ConcatSpec, FailureRecord, GroupKey, ResultMessage,
    SourceFile, DEFAULT_PROFILE_TAG,
};

/// Version of every wire document this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Errors decoding wire documents.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// A document of a schema version this build does not know.
    #[error("unknown schema version {found} (this build reads version {expected})")]
    UnknownVersion {
        /// Version in the document.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// Not a fragment at all.
    #[error("not a floe manifest fragment (bad magic bytes)")]
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
    if probe.schema_version != SCHEMA_VERSION {
        return Err(WireError::UnknownVersion {
            found: probe.schema_version,
            expected: SCHEMA_VERSION,
        });
    }
    serde_json::from_str(body).map_err(|e| WireError::Corrupt(e.to_string()))
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
