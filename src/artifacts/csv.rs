//! pandas' CSV, as ZenML's `PandasMaterializer` writes it when pyarrow is missing.

use std::sync::Arc;

use super::arrow::compute::concat_batches;
use super::arrow::csv::{ReaderBuilder, reader::Format};
use super::arrow::datatypes::{DataType, Field, Schema};
use super::arrow::error::ArrowError;
use super::arrow::record_batch::RecordBatch;

/// A DataFrame ZenML saved with `df.to_csv(index=True)` and loads with
/// `pd.read_csv(index_col=0)`: the first column is the index and is dropped. Columns are
/// typed as pandas infers them (integers, floats, booleans); anything else, dates included
/// (pandas parses only the index as dates), stays text.
pub fn to_batch(bytes: &[u8]) -> Result<RecordBatch, ArrowError> {
    let format = Format::default().with_header(true);
    let (inferred, _) = format.infer_schema(std::io::Cursor::new(bytes), None)?;
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Int64 | DataType::Float64 | DataType::Boolean => f.as_ref().clone(),
            _ => Field::new(f.name(), DataType::Utf8, true),
        })
        .collect();
    if fields.is_empty() {
        return Err(ArrowError::CsvError("no header row".into()));
    }
    let schema = Arc::new(Schema::new(fields));
    let reader = ReaderBuilder::new(Arc::clone(&schema))
        .with_format(format)
        .build(std::io::Cursor::new(bytes))?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    let all = concat_batches(&schema, &batches)?;
    let without_index: Vec<usize> = (1..schema.fields().len()).collect();
    all.project(&without_index)
}
