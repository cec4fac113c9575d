//! Errors of the format readers. A file-level error stops the whole file; a
//! variable-level problem is a value ([`crate::VariableProblem`]) so that the
//! file's other variables are still listed.

/// What went wrong while reading one file's headers.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The object has no bytes at all (ISMIP6 has such a file).
    #[error("file is empty (0 bytes)")]
    Empty,
    /// Neither a CDF nor an HDF5 signature was found.
    #[error("not a NetCDF file: no CDF or HDF5 signature in the first bytes")]
    NotNetcdf,
    /// The file ends before the data its header describes.
    #[error("file is truncated: header says {expected} bytes, object has {actual}")]
    Truncated {
        /// Size the header implies.
        expected: u64,
        /// Size of the object.
        actual: u64,
    },
    /// A chunk reference points outside the object.
    #[error("variable {variable}: chunk at offset {offset} length {length} lies past the end of the file ({file_size} bytes)")]
    ChunkOutOfBounds {
        /// Variable holding the reference.
        variable: String,
        /// Byte offset of the chunk.
        offset: u64,
        /// Length of the chunk.
        length: u64,
        /// Size of the object.
        file_size: u64,
    },
    /// The HDF5 structure could not be parsed.
    #[error("invalid HDF5 structure: {0}")]
    Hdf5(String),
    /// The NetCDF header could not be parsed.
    #[error("invalid NetCDF header: {0}")]
    Netcdf(String),
    /// Reading bytes from the source failed.
    #[error("read failed: {0}")]
    Io(String),
    /// The object answered as another object than the one listed (its size or
    /// ETag changed since): never retried as it is; the batch is stale.
    #[error("{0}")]
    Changed(String),
    /// Reading the file's header would pass a limit (the bytes read for one
    /// header): the file is refused, never retried as it is.
    #[error("{0}")]
    OverLimit(String),
}

/// The I/O error kind a storage gives when the object it reads is no longer
/// the one it was opened for (a file replaced since it was listed).
pub const CHANGED_SINCE_LISTED: std::io::ErrorKind = std::io::ErrorKind::StaleNetworkFileHandle;

/// The I/O error kind a storage gives when a read would pass one of floe's
/// limits ([`floe_wire::Limits::header_bytes_per_file`]).
pub const OVER_READ_LIMIT: std::io::ErrorKind = std::io::ErrorKind::FileTooLarge;

fn from_io(e: &std::io::Error) -> FormatError {
    if e.kind() == CHANGED_SINCE_LISTED {
        FormatError::Changed(e.to_string())
    } else if e.kind() == OVER_READ_LIMIT {
        FormatError::OverLimit(e.to_string())
    } else {
        FormatError::Io(e.to_string())
    }
}

impl FormatError {
    /// Maps a reader error, keeping I/O failures apart from corrupt structure:
    /// the first may be retried, the second never.
    pub(crate) fn from_hdf5(err: hdf5_reader::error::Error) -> Self {
        use hdf5_reader::error::Error as E;
        match err {
            E::Io(e) => from_io(&e),
            E::UnexpectedEof { .. } => {
                FormatError::Hdf5(format!("structure points past the end of the file ({err})"))
            }
            // A virtual dataset (layout class 3): hdf5-reader cannot parse its object header,
            // so the group walk stops there and the whole file with it. Said in those words.
            E::Context { path, source } if matches!(*source, E::UnsupportedLayoutClass(3)) => {
                FormatError::Hdf5(format!(
                    "{path} is an HDF5 virtual dataset (its data lives in other datasets, which cannot be referenced); the HDF5 reader cannot step past it, so the whole file is refused"
                ))
            }
            other => FormatError::Hdf5(other.to_string()),
        }
    }

    pub(crate) fn from_netcdf(err: netcdf_reader::Error) -> Self {
        use netcdf_reader::Error as E;
        match err {
            E::Io(e) => from_io(&e),
            E::InvalidMagic => FormatError::NotNetcdf,
            E::Hdf5(e) => FormatError::from_hdf5(e),
            other => FormatError::Netcdf(other.to_string()),
        }
    }

    /// Whether trying again might succeed (I/O), as opposed to a bad file.
    pub fn is_retryable(&self) -> bool {
        matches!(self, FormatError::Io(_))
    }
}

/// Result alias of this crate.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_changed_since_listed_is_not_retried_as_io() {
        let changed = std::io::Error::new(CHANGED_SINCE_LISTED, "s3://b/f.nc: its ETag is x");
        let err = FormatError::from_hdf5(hdf5_reader::error::Error::Io(changed));
        assert!(
            matches!(err, FormatError::Changed(_)) && !err.is_retryable(),
            "{err}"
        );
        let over = std::io::Error::new(OVER_READ_LIMIT, "s3://b/f.nc: header over 32 MiB");
        let err = FormatError::from_hdf5(hdf5_reader::error::Error::Io(over));
        assert!(
            matches!(err, FormatError::OverLimit(_)) && !err.is_retryable(),
            "{err}"
        );
        let network = std::io::Error::other("connection reset");
        let err = FormatError::from_hdf5(hdf5_reader::error::Error::Io(network));
        assert!(err.is_retryable(), "{err}");
    }
}
