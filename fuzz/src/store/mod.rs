//! runql's `store` module as far as the fuzzed files need it: the dialect a pushed filter is
//! written in, and the reading of ZenML's config files (`locate`) with the addresses and
//! credentials it makes, all from `src/store/`.

#[path = "../../../src/store/dialect.rs"]
mod dialect;
#[path = "../../../src/store/locate.rs"]
pub mod locate;
// What hands a secret to a server is unused here.
#[allow(dead_code)]
#[path = "../../../src/store/secret.rs"]
pub mod secret;

pub use dialect::{Dialect, SQLITE_SETTINGS};

pub mod config_check;

pub mod mysql;
pub mod rest;
