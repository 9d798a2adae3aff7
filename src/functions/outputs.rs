//! `read_output(output_id)` and `output_value(output_id)`: what a step produced, in SQL.
//!
//! `read_output` is a table function: `SELECT * FROM read_output('<output id>')` gives the
//! artifact's rows (see `crate::artifacts` for each kind's shape). `output_value` is a scalar
//! function giving a built-in value as JSON text, so one query can follow a metric across
//! runs; it reads each distinct output once per session, the files of a batch in parallel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::ScalarValue;
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, Expr, ScalarUDF, Volatility, create_udf};
use rusqlite::types::Value;

use crate::artifacts::{ArtifactRoot, OutputFiles, read_json_value, read_table};
use crate::store::ZenStore;
use crate::tables::push_down::{Pushed, store_id};
use crate::tables::{lookup, table_def};

/// Where an output's files are and which materializer wrote them.
fn output_files(store: &ZenStore, output_id: &str) -> Result<OutputFiles> {
    let id = store_id(output_id).ok_or_else(|| {
        DataFusionError::Plan(format!("{output_id:?} is not an output id (a ZenML UUID)"))
    })?;
    let def = table_def("outputs").expect("the outputs table");
    let filter = Pushed {
        sql: "\"output_id\" = ?".to_string(),
        params: vec![Value::Text(id)],
        exact: true,
        columns: vec!["output_id"],
    };
    let rows = lookup(store, def, &["uri", "materializer", "data_type"], &filter)?;
    let row = rows
        .into_iter()
        .next()
        .ok_or_else(|| DataFusionError::Plan(format!("no output {output_id} in the store")))?;
    let text = |v: &Value| match v {
        Value::Text(s) => s.clone(),
        _ => String::new(),
    };
    Ok(OutputFiles {
        output_id: output_id.to_string(),
        uri: text(&row[0]),
        materializer: text(&row[1]),
        data_type: text(&row[2]),
    })
}

#[derive(Debug)]
pub struct ReadOutput {
    store: Arc<ZenStore>,
    root: ArtifactRoot,
}

impl TableFunctionImpl for ReadOutput {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let id = match args.exprs() {
            [
                Expr::Literal(
                    ScalarValue::Utf8(Some(id))
                    | ScalarValue::Utf8View(Some(id))
                    | ScalarValue::LargeUtf8(Some(id)),
                    _,
                ),
            ] => id,
            _ => {
                return Err(DataFusionError::Plan(
                    "read_output takes one output id as a string: read_output('<output_id>')"
                        .to_string(),
                ));
            }
        };
        let files = output_files(&self.store, id)?;
        let batch =
            read_table(&files, &self.root).map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Arc::new(MemTable::try_new(
            batch.schema(),
            vec![vec![batch]],
        )?))
    }
}

/// How many values `output_value` remembers; artifacts never change once written, so a
/// value read once serves every later batch and query of the session.
const VALUE_CACHE: usize = 100_000;

/// `output_value(output_id)`: the built-in value's JSON text.
fn output_value(store: Arc<ZenStore>, root: ArtifactRoot) -> ScalarUDF {
    let cache: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let fun = move |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let ids = cast(&arrays[0], &DataType::Utf8)?;
        let ids = ids
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        let mut cache = cache.lock().expect("output_value cache");
        let mut missing: Vec<&str> = ids
            .iter()
            .flatten()
            .filter(|id| !cache.contains_key(*id))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if cache.len() + missing.len() > VALUE_CACHE {
            cache.clear();
        }
        cache.extend(read_values(&store, &root, &missing)?);
        let out: StringArray = ids
            .iter()
            .map(|id| id.and_then(|id| cache.get(id).map(String::as_str)))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    };
    create_udf(
        "output_value",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(fun),
    )
}

/// Reads the outputs `ids` on up to as many threads as the machine has cores.
fn read_values(
    store: &ZenStore,
    root: &ArtifactRoot,
    ids: &[&str],
) -> Result<HashMap<String, String>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(ids.len())
        .max(1);
    let chunk = ids.len().div_ceil(threads).max(1);
    let results: Vec<Result<Vec<(String, String)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|id| {
                            let files = output_files(store, id)?;
                            let value = read_json_value(&files, root)
                                .map_err(|e| DataFusionError::External(Box::new(e)))?;
                            Ok((id.to_string(), value))
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("reader thread"))
            .collect()
    });
    let mut values = HashMap::new();
    for part in results {
        values.extend(part?);
    }
    Ok(values)
}

pub fn register(
    ctx: &datafusion::prelude::SessionContext,
    store: &Arc<ZenStore>,
    root: &ArtifactRoot,
) {
    ctx.register_udtf(
        "read_output",
        Arc::new(ReadOutput {
            store: Arc::clone(store),
            root: root.clone(),
        }),
    );
    ctx.register_udf(output_value(Arc::clone(store), root.clone()));
}
