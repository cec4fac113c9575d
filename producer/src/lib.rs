//! # floe-producer: plans the archive, feeds the fleet, runs it locally
//!
//! - [`archive`]: list a source prefix, filter groups, plan batches;
//! - [`sample`]: a small generated ISMIP6-like archive for the embedded run;
//! - [`cmd`]: one module per subcommand (`local`, …).

#![warn(missing_docs)]

pub mod archive;
pub mod cmd;
pub mod cost;
pub mod preflight;
pub mod sample;
