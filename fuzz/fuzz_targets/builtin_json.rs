//! `data.json` of `BuiltInMaterializer`: any JSON value gives rows or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = runql_fuzz::artifacts::builtin::to_batch(&value);
    }
});
