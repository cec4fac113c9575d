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

/// Classifies a session error: conflicts are values the retry loop handles.
pub(crate) fn from_session(err: icechunk::session::SessionError) -> StoreError {
    use icechunk::session::SessionErrorKind as K;
    match &err.kind {
        K::Conflict { .. } | K::RebaseFailed { .. } => StoreError::Conflict(err.to_string()),
        _ => StoreError::Icechunk(err.to_string()),
    }
}

pub(crate) fn from_store(err: icechunk::store::StoreError) -> StoreError {
    use icechunk::session::SessionErrorKind as S;
    use icechunk::store::StoreErrorKind as K;
    match &err.kind {
        K::SessionError(S::Conflict { .. } | S::RebaseFailed { .. }) => {
            StoreError::Conflict(err.to_string())
        }
        _ => StoreError::Icechunk(err.to_string()),
    }
}

pub(crate) fn from_repo(err: icechunk::repository::RepositoryError) -> StoreError {
    StoreError::Icechunk(err.to_string())
}
