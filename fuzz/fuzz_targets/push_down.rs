//! The pushdown translator (`src/tables/push_down.rs`): any filter over any table translates
//! without panicking, for SQLite and MySQL, and what SQLite keeps of the pushed SQL is exactly
//! what DataFusion keeps when the translator says Exact, at least that when it says Inexact
//! (also as a hash join's run-time filter). See `runql_fuzz::tables::oracle`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use runql_fuzz::tables::{TABLES, oracle};

thread_local! {
    // Built once: rebuilding SQLite and Arrow per input would be most of the work.
    static BUILT: Vec<oracle::Table> = TABLES.iter().map(oracle::Table::new).collect();
}

fuzz_target!(|data: &[u8]| {
    let mut choices = oracle::Choices::new(data);
    let which = choices.byte() as usize % TABLES.len();
    let filter = choices.filter(&TABLES[which], 0);
    BUILT.with(|tables| tables[which].check(&filter));
});
