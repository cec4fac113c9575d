//! The virtualizer's subcommands: each module holds its arguments and its body; the
//! rendering lives beside the logic ([`crate::inspect`], [`crate::build_group`]).

pub mod build_group;
pub mod inspect;
pub mod serve;
