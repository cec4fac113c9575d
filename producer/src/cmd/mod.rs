//! The producer's subcommands.

pub mod dlq;
pub mod enqueue;
pub mod local;
pub mod plan;
pub mod status;
pub mod verify;
