//! The committer's subcommands: each module holds its arguments, its body and its rendering.

pub mod apply;
pub mod gc;
pub mod log;
pub mod serve;
