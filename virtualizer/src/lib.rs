//! # floe-virtualizer: NetCDF headers to manifest fragments
//!
//! - [`inspect`]: one file's raw view (`virtualizer inspect`);
//! - [`batch`]: one batch descriptor to one group fragment (the handler's core);
//! - [`shard`]: one shard of a group too large for one message, and the
//!   group's assembly from its shards;
//! - [`build_group`]: the merged group of some files (`virtualizer build-group`);
//! - [`handler`]: the queue handler (`virtualizer worker`, `virtualizer lambda`);
//! - [`cmd`]: the subcommands' arguments and bodies (the binary's `main` only dispatches).
//!
//! The virtualizer reads only headers, by ranged reads through
//! [`floe_source`], parses them with [`floe_formats`], and merges each group
//! with [`floe_group`].

#![warn(missing_docs)]

pub mod batch;
pub mod build_group;
pub mod cli;
pub mod cmd;
pub mod handler;
pub mod inspect;
pub mod shard;

pub use batch::{
    virtualize_batch, virtualize_batch_counted, virtualize_batch_scanned, BatchError, ReadCost,
};
