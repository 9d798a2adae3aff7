//! runql's table definitions, store-value conversion and pushdown translator, from
//! `src/tables/`, with the oracle the `push_down` target checks them by.

#[path = "../../../src/tables/convert.rs"]
mod convert;
#[path = "../../../src/tables/defs.rs"]
mod defs;
pub mod oracle;
#[path = "../../../src/tables/push_down.rs"]
pub mod push_down;

pub use defs::*;
