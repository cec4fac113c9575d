//! # floe-group: from a batch of ISMIP6 files to one merged group
//!
//! Pure logic, no I/O:
//! - [`archive`]: path rules, skip list, one batch per group, deterministic batch ids;
//! - [`profile`]: archive profiles (TOML): path patterns to groups and variables, time policy;
//! - [`skip`]: skip lists, path prefixes left out with their reasons;
//! - [`time`] and [`grid`]: the normalization rules, each a small function;
//! - [`cftime`]: exact CF time in every CF calendar, for profiles that decode time exactly;
//! - [`build`]: the one group builder: files → variables → pieces → placement → coordinates → companions;
//! - [`concat`]: the files of one variable along time: what must agree, order, chunk-grid placement;
//! - [`merge`]: union time axis, per-step splitting, and the [`floe_wire::ManifestFragment`];
//! - [`series`]: groups whose variables are split over several files along time (exact CF time);
//! - [`axis`]: when multi-step chunks sit on the shared time axis exactly;
//! - [`bounds`]: a time axis's cell bounds, decoded and stored in the group's time units;
//! - `tree`: a NetCDF-4 file's sub-groups inside the group;
//! - [`zarr`]: Zarr v3 metadata documents.

#![warn(missing_docs)]

pub mod append;
pub mod archive;
pub mod axis;
pub mod bounds;
pub mod build;
pub mod cftime;
pub mod concat;
pub mod grid;
mod inline;
pub mod merge;
pub mod profile;
pub mod series;
pub mod shard;
pub mod skip;
pub mod time;
mod tree;
pub mod zarr;

pub use build::{build, Rule};
pub use merge::{build_group, share_metadata, FileScan, GroupBuild, GroupError, Warning};
