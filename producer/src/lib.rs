//! # floe-producer: plans the archive, feeds the fleet, runs it locally
//!
//! - [`archive`]: list a source prefix, filter groups, plan batches;
//! - [`dispatch`]: planned batches to work-queue messages (appends, rebuilds, shards), for `enqueue` and `watch`;
//! - [`watch`]: the planner behind `producer watch`: object notifications to batches;
//! - [`sample`]: a small generated ISMIP6-like archive for the embedded run;
//! - [`cmd`]: one module per subcommand (`local`, …);
//! - [`cli`]: the command line, parsed and run (the binary and the Python wheel).

#![warn(missing_docs)]

pub mod archive;
pub mod cli;
pub mod cmd;
pub mod cost;
pub mod dispatch;
pub mod preflight;
pub mod sample;
pub mod watch;
