//! # floe-group: from a batch of ISMIP6 files to one merged group
//!
//! Pure logic, no I/O:
//! - [`archive`]: path rules, skip list, one batch per group, deterministic batch ids;
//! - [`time`] and [`grid`]: the normalization rules, each a small function;
//! - [`merge`]: union time axis, per-step splitting, and the [`floe_wire::ManifestFragment`];
//! - [`axis`]: when multi-step chunks sit on the shared time axis exactly;
//! - [`zarr`]: Zarr v3 metadata documents.

#![warn(missing_docs)]

pub mod archive;
pub mod axis;
pub mod grid;
pub mod merge;
pub mod time;
pub mod zarr;

pub use merge::{build_group, FileScan, GroupBuild, GroupError, Warning};
