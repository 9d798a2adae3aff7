//! `.npy` files as `NumpyMaterializer` artifacts: any bytes give rows or an error, within
//! the memory the file's size allows (libFuzzer's -rss_limit_mb catches a header's claims).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = runql_fuzz::artifacts::npy::to_batch(data) {
        // Rows come from the data, never from the header alone.
        assert!(batch.num_rows() * batch.num_columns().saturating_sub(1) <= data.len().max(1) * 8);
    }
});
