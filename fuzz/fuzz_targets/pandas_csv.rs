//! pandas' CSV (`PandasMaterializer` without pyarrow): any bytes give rows or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = runql_fuzz::artifacts::csv::to_batch(data);
});
