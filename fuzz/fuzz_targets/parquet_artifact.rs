//! `df.parquet.gzip` of `PandasMaterializer`: any bytes give rows or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

// A budget for the decoded rows well under libFuzzer's 2 GB memory limit: a few bytes may
// stand for billions of rows, and runql's own 2 GiB budget would pass that limit.
fuzz_target!(|data: &[u8]| {
    let _ = runql_fuzz::artifacts::parquet_file::to_batch_within(data.to_vec(), 256 << 20);
});
