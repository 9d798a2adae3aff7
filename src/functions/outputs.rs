//! `read_output(output_id)` and `output_value(output_id)`: what a step produced, in SQL.
//!
//! `read_output` is a table function: `SELECT * FROM read_output('<output id>')` gives the
//! artifact's rows (see `crate::artifacts` for each kind's shape). `output_value` is a scalar
//! function giving a built-in value as JSON text, so one query can follow a metric across
//! runs; it reads each distinct output once per session, the files of a batch in parallel.

use std::collections::{HashMap, HashSet};
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

/// Where outputs' files are and which materializer wrote them: a ZenML store, or the
/// `outputs` table of an export folder or a server's mirror.
pub trait OutputIndex: std::fmt::Debug + Send + Sync {
    fn output_files(&self, output_id: &str) -> Result<OutputFiles>;

    /// The files of every output in `ids` (an error names the first one missing).
    fn outputs_files(&self, ids: &[&str]) -> Result<Vec<OutputFiles>> {
        ids.iter().map(|id| self.output_files(id)).collect()
    }
}

impl OutputIndex for ZenStore {
    fn output_files(&self, output_id: &str) -> Result<OutputFiles> {
        store_output_files(self, output_id)
    }
}

fn not_an_id(output_id: &str) -> DataFusionError {
    DataFusionError::Plan(format!("{output_id:?} is not an output id (a ZenML UUID)"))
}

/// The `outputs` Parquet files of an export folder (or a mirror), read for the few columns
/// an output's files need, when a query first asks.
#[derive(Debug)]
pub struct ExportOutputs {
    dir: std::path::PathBuf,
}

impl ExportOutputs {
    pub fn new(export_dir: &std::path::Path) -> Self {
        Self {
            dir: export_dir.to_path_buf(),
        }
    }

    /// The folders of `outputs` rows as the export reads now, newest first, each with the
    /// runs whose rows in it later change sets replaced (see `export::ChangeSet`).
    fn parts(&self) -> Result<Vec<(std::path::PathBuf, HashSet<String>)>> {
        let manifest = crate::export::read_manifest(&self.dir)?;
        let changes = manifest.map(|m| m.changes).unwrap_or_default();
        let mut parts = Vec::with_capacity(changes.len() + 1);
        let mut replaced: HashSet<String> = HashSet::new();
        for change in changes.iter().rev() {
            parts.push((self.dir.join(&change.dir).join("outputs"), replaced.clone()));
            replaced.extend(change.runs.iter().cloned());
        }
        parts.push((self.dir.join("outputs"), replaced));
        Ok(parts)
    }
}

fn parquet_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            parquet_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    Ok(())
}

impl OutputIndex for ExportOutputs {
    fn output_files(&self, output_id: &str) -> Result<OutputFiles> {
        Ok(self.outputs_files(&[output_id])?.remove(0))
    }

    /// One pass over the `outputs` files for all of `ids`, whatever their number (an
    /// `output_value` over many runs asks for thousands at once).
    fn outputs_files(&self, ids: &[&str]) -> Result<Vec<OutputFiles>> {
        use datafusion::parquet::arrow::ProjectionMask;
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        // Ids are compared in the form the tables hold them (dashed lowercase), whatever
        // form they were asked in.
        let mut wanted_ids: HashMap<String, &str> = HashMap::new();
        for id in ids {
            let hex = store_id(id).ok_or_else(|| not_an_id(id))?;
            let dashed = crate::tables::dashed_id(&hex).ok_or_else(|| not_an_id(id))?;
            wanted_ids.insert(dashed, id);
        }
        let mut found: HashMap<&str, OutputFiles> = HashMap::new();
        let mut files = Vec::new();
        for (dir, replaced) in self.parts()? {
            let mut in_part = Vec::new();
            if dir.is_dir() {
                parquet_files(&dir, &mut in_part)?;
            }
            files.extend(in_part.into_iter().map(|f| (f, replaced.clone())));
        }
        let columns = ["output_id", "run_id", "uri", "materializer", "data_type"];
        for (file, replaced) in files {
            let builder = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file)?)?;
            let schema = builder.parquet_schema();
            let leaves: Vec<usize> = columns
                .iter()
                .filter_map(|name| schema.columns().iter().position(|c| c.name() == *name))
                .collect();
            if leaves.len() != columns.len() {
                continue;
            }
            let mask = ProjectionMask::leaves(schema, leaves);
            for batch in builder.with_projection(mask).build()? {
                let batch = batch?;
                let column = |name: &str| -> Result<StringArray> {
                    let array = batch.column_by_name(name).ok_or_else(|| {
                        DataFusionError::Internal(format!("outputs has no {name}"))
                    })?;
                    let array = cast(array, &DataType::Utf8)?;
                    Ok(array
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .expect("cast to Utf8")
                        .clone())
                };
                let (output_ids, run_ids, uris, materializers, data_types) = (
                    column("output_id")?,
                    column("run_id")?,
                    column("uri")?,
                    column("materializer")?,
                    column("data_type")?,
                );
                let text = |a: &StringArray, row: usize| {
                    if a.is_valid(row) {
                        a.value(row).to_string()
                    } else {
                        String::new()
                    }
                };
                for row in 0..output_ids.len() {
                    // A row a later change set replaced is not the output as it is now.
                    if !output_ids.is_valid(row)
                        || (run_ids.is_valid(row) && replaced.contains(run_ids.value(row)))
                    {
                        continue;
                    }
                    if let Some(asked) = wanted_ids.get(output_ids.value(row)) {
                        found.entry(asked).or_insert_with(|| OutputFiles {
                            output_id: asked.to_string(),
                            uri: text(&uris, row),
                            materializer: text(&materializers, row),
                            data_type: text(&data_types, row),
                        });
                    }
                }
            }
        }
        ids.iter()
            .map(|id| {
                found
                    .get(id)
                    .cloned()
                    .ok_or_else(|| DataFusionError::Plan(format!("no output {id} in the store")))
            })
            .collect()
    }
}

/// Where an output's files are and which materializer wrote them.
fn store_output_files(store: &ZenStore, output_id: &str) -> Result<OutputFiles> {
    let id = store_id(output_id).ok_or_else(|| not_an_id(output_id))?;
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
    store: Arc<dyn OutputIndex>,
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
        let files = self.store.output_files(id)?;
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
fn output_value(store: Arc<dyn OutputIndex>, root: ArtifactRoot) -> ScalarUDF {
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
        cache.extend(read_values(store.as_ref(), &root, &missing)?);
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

/// Finds the outputs `ids` (one lookup for all), then reads them on up to as many threads
/// as the machine has cores.
fn read_values(
    store: &dyn OutputIndex,
    root: &ArtifactRoot,
    ids: &[&str],
) -> Result<HashMap<String, String>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(ids.len())
        .max(1);
    let chunk = ids.len().div_ceil(threads).max(1);
    let located = store.outputs_files(ids)?;
    let results: Vec<Result<Vec<(String, String)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = located
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|files| {
                            let value = read_json_value(files, root)
                                .map_err(|e| DataFusionError::External(Box::new(e)))?;
                            Ok((files.output_id.clone(), value))
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
    store: &Arc<dyn OutputIndex>,
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
