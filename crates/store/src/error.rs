//! Errors of the committer core.

/// What went wrong writing to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store location or a container is unusable.
    #[error("store location: {0}")]
    Location(String),
    /// A local store path that exists and is not a directory.
    #[error("{0} is not a directory: a local store is a directory (give a new or an existing store directory)")]
    NotADirectory(std::path::PathBuf),
    /// A fragment cannot be written; only its own message fails.
    #[error("fragment {fragment}: {reason}")]
    Fragment {
        /// Fragment (message id or URL).
        fragment: String,
        /// Why.
        reason: String,
    },
    /// Another committer won the race and rebasing did not resolve it.
    #[error("commit conflict: {0}")]
    Conflict(String),
    /// zarrs cannot open or decode an array as the store describes it.
    #[error("read as Zarr (zarrs): {0}")]
    Zarr(String),
    /// Icechunk refuses what was asked of it, and always will (a zero-length
    /// chunk, an index outside the grid, metadata it cannot read): never
    /// retried; the group that asked for it fails alone.
    #[error("icechunk refuses it: {0}")]
    Refused(String),
    /// Any other icechunk failure (storage, I/O).
    #[error("icechunk: {0}")]
    Icechunk(String),
}

impl StoreError {
    /// Conflicts and storage failures may succeed on retry; a bad fragment never does.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict(_) | StoreError::Icechunk(_))
    }
}

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Classifies a session error: conflicts are values the retry loop handles;
/// what icechunk refuses by rule is permanent ([`StoreError::Refused`]).
pub(crate) fn from_session(err: icechunk::session::SessionError) -> StoreError {
    use icechunk::session::SessionErrorKind as K;
    match &err.kind {
        K::Conflict { .. } | K::RebaseFailed { .. } => StoreError::Conflict(err.to_string()),
        kind if refused_by_rule(kind) => StoreError::Refused(err.to_string()),
        _ => StoreError::Icechunk(err.to_string()),
    }
}

/// Session errors that no retry changes: the request breaks one of
/// icechunk's rules. Storage, I/O and format errors are not among them (a
/// manifest being written can read as missing for a moment), nor virtual
/// reference errors (one of them is a failed fetch).
fn refused_by_rule(kind: &icechunk::session::SessionErrorKind) -> bool {
    use icechunk::session::SessionErrorKind as K;
    matches!(
        kind,
        K::InvalidIndex { .. }
            | K::ZeroLengthChunk { .. }
            | K::InvalidIndexForSplitManifests { .. }
            | K::NotAnArray { .. }
            | K::NotAGroup { .. }
            | K::AlreadyExists { .. }
            | K::AncestorNodeNotFound { .. }
            | K::InvalidByteRange { .. }
            | K::JsonSerializationError(_)
    )
}

pub(crate) fn from_store(err: icechunk::store::StoreError) -> StoreError {
    use icechunk::session::SessionErrorKind as S;
    use icechunk::store::StoreErrorKind as K;
    match &err.kind {
        K::SessionError(S::Conflict { .. } | S::RebaseFailed { .. }) => {
            StoreError::Conflict(err.to_string())
        }
        K::SessionError(kind) if refused_by_rule(kind) => StoreError::Refused(err.to_string()),
        K::InvalidKey { .. }
        | K::InvalidIndex { .. }
        | K::NotAllowed(_)
        | K::BadMetadata(_)
        | K::BadChunkGridMetadata(_)
        | K::BadKeyPrefix { .. } => StoreError::Refused(err.to_string()),
        _ => StoreError::Icechunk(err.to_string()),
    }
}

pub(crate) fn from_repo(err: icechunk::repository::RepositoryError) -> StoreError {
    StoreError::Icechunk(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use icechunk::format::{ChunkIndices, Path};
    use icechunk::session::{SessionError, SessionErrorKind as K};

    fn classified(kind: K) -> StoreError {
        from_session(SessionError::capture(kind))
    }

    #[test]
    fn what_icechunk_refuses_by_rule_is_never_retried_and_contention_is() {
        let path = Path::new("/g/v").expect("path");
        let refused = [
            K::ZeroLengthChunk {
                coords: ChunkIndices(vec![0]),
                path: path.clone(),
            },
            K::InvalidIndex {
                coords: ChunkIndices(vec![9]),
                path: path.clone(),
            },
        ];
        for kind in refused {
            let e = classified(kind);
            assert!(
                matches!(e, StoreError::Refused(_)) && !e.is_retryable(),
                "{e}"
            );
        }
        let conflict = classified(K::Conflict {
            expected_parent: None,
            actual_parent: None,
        });
        assert!(conflict.is_retryable(), "{conflict}");
        let flush = classified(K::OtherFlushError);
        assert!(
            matches!(flush, StoreError::Icechunk(_)) && flush.is_retryable(),
            "{flush}"
        );
    }
}
