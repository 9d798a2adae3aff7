//! `store::mysql` as `locate` sees it: a MySQL store's address.

// Only the parsing is fuzzed; what connects is unused here.
#[allow(dead_code)]
#[path = "../../../../src/store/mysql/address.rs"]
pub mod address;
