//! runql's decoders of untrusted bytes, its pushdown translator and its reading of ZenML's
//! config files, compiled from runql's own source files (not copies), for the fuzz targets.

pub mod artifacts;
#[path = "../../src/error.rs"]
pub mod error;
pub mod store;
pub mod tables;

#[path = "../../src/cli/script.rs"]
pub mod script;
