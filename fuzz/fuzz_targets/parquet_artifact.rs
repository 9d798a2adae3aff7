//! `df.parquet.gzip` of `PandasMaterializer`: any bytes give rows or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = runql_fuzz::artifacts::parquet_file::to_batch(data.to_vec());
});
