//! A DataFrame in Parquet, as ZenML's `PandasMaterializer` writes it with pyarrow.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Once};

use super::arrow::compute::concat_batches;
use super::arrow::datatypes::Schema;
use super::arrow::record_batch::{RecordBatch, RecordBatchReader};
use super::parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use super::parquet::errors::ParquetError;

/// The file's rows as one batch.
///
/// arrow-ipc 59 panics (`unimplemented!`) on some Arrow schemas a file may embed in its
/// metadata (found by `fuzz/`'s parquet_artifact target). Such a file is read again with
/// Parquet's own schema, and a panic in that read too is an error: a file in a bucket is
/// untrusted input, and it must not end the process.
pub fn to_batch(bytes: Vec<u8>) -> Result<RecordBatch, ParquetError> {
    let bytes = bytes::Bytes::from(bytes);
    let attempt = |skip_arrow_schema: bool| {
        let bytes = bytes.clone();
        quietly(move || read(bytes, skip_arrow_schema))
    };
    attempt(false)
        .or_else(|| attempt(true))
        .unwrap_or_else(|| Err(ParquetError::General("the Parquet file is damaged".into())))
}

fn read(bytes: bytes::Bytes, skip_arrow_schema: bool) -> Result<RecordBatch, ParquetError> {
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(skip_arrow_schema);
    let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)?.build()?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    // pandas writes its index and dtypes as schema metadata; the rows are what matter here.
    let schema = Arc::new(Schema::new(schema.fields().clone()));
    let batches: Vec<RecordBatch> = batches
        .into_iter()
        .map(|b| b.with_schema(Arc::clone(&schema)))
        .collect::<Result<_, _>>()?;
    Ok(concat_batches(&schema, &batches)?)
}

thread_local! {
    /// Set while this thread decodes under [`quietly`]: its panics are caught, not reported.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// `f`'s result, or `None` when it panicked, with the panic's message kept off stderr (the
/// process-wide hook stays as it was for every other panic).
fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info)
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let out = catch_unwind(AssertUnwindSafe(f)).ok();
    QUIET.with(|q| q.set(was));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzz/'s parquet_artifact target: an embedded Arrow schema with a field of type
    /// NONE made arrow-ipc panic. Parquet's own schema reads the file, or it is an error.
    #[test]
    fn fuzz_found_arrow_schema_of_type_none() {
        let file =
            include_bytes!("../../tests/fixtures/fuzz/parquet-arrow-schema-type-none.parquet");
        match to_batch(file.to_vec()) {
            Ok(batch) => assert!(batch.num_columns() > 0),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}
