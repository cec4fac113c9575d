//! One module per `producer` subcommand.

pub mod local;
