//! # floe-virtualizer: NetCDF headers to manifest fragments
//!
//! - [`inspect`]: one file's raw view (`virtualizer inspect`).
//!
//! The virtualizer reads only headers, by ranged reads through
//! [`floe_source`], and parses them with [`floe_formats`].

#![warn(missing_docs)]

pub mod inspect;
