//! runql's decoders of untrusted bytes, compiled from runql's own source files (not copies),
//! for the fuzz targets.

pub mod artifacts;

#[path = "../../src/cli/script.rs"]
pub mod script;
