//! What the describing commands print, in the REPL and in scripts: `\d`, `\d TABLE`
//! (meanings from `schemas/`), `\queries` and `\store`.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

use crate::reports;
use crate::store::ZenStore;
use crate::tables::{TABLES, table_def};

/// One row per table: runql's tables with what a row is, then any views the user made.
pub async fn list_tables(ctx: &SessionContext) -> Result<RecordBatch> {
    let mut names: Vec<String> = Vec::new();
    let mut about: Vec<String> = Vec::new();
    for def in TABLES {
        names.push(def.name.to_string());
        about.push(def.summary().to_string());
    }
    let catalog = ctx.state().config().options().catalog.clone();
    if let Some(schema) = ctx
        .catalog(&catalog.default_catalog)
        .and_then(|c| c.schema(&catalog.default_schema))
    {
        let mut extra: Vec<String> = schema
            .table_names()
            .into_iter()
            .filter(|n| table_def(n).is_none() && !n.starts_with("__"))
            .collect();
        extra.sort();
        for name in extra {
            names.push(name);
            about.push("created in this session".to_string());
        }
    }
    text_batch(&[("table", names), ("description", about)])
}

/// One row per column of `table`: name, type and meaning.
pub async fn describe_table(ctx: &SessionContext, table: &str) -> Result<RecordBatch> {
    let provider = ctx
        .table_provider(table)
        .await
        .map_err(|_| DataFusionError::Plan(format!("no table {table}; \\d lists the tables")))?;
    let def = table_def(table);
    let schema = provider.schema();
    let mut names = Vec::new();
    let mut types = Vec::new();
    let mut meanings = Vec::new();
    for field in schema.fields() {
        let column = def.and_then(|d| d.column(field.name()));
        names.push(field.name().clone());
        types.push(match column {
            Some(c) => c.kind.name().to_string(),
            None => type_name(field.data_type()),
        });
        meanings.push(
            def.and_then(|d| d.meaning(field.name()))
                .unwrap_or_default(),
        );
    }
    text_batch(&[("column", names), ("type", types), ("meaning", meanings)])
}

fn type_name(data_type: &DataType) -> String {
    data_type.to_string()
}

fn text_batch(columns: &[(&str, Vec<String>)]) -> Result<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, _)| Field::new(*name, DataType::Utf8, false))
        .collect();
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|(_, values)| Arc::new(StringArray::from(values.clone())) as ArrayRef)
        .collect();
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// One row per named report: name, parameters, description.
pub fn list_reports(dir: Option<&std::path::Path>) -> Result<RecordBatch> {
    let reports = reports::all(dir)
        .map_err(|e| DataFusionError::Execution(format!("reading reports: {e}")))?;
    let mut names = Vec::new();
    let mut params = Vec::new();
    let mut about = Vec::new();
    for r in &reports {
        names.push(r.name.clone());
        params.push(
            r.parameters()
                .into_iter()
                .map(|p| format!("{p}="))
                .collect::<Vec<_>>()
                .join(" "),
        );
        about.push(r.description().to_string());
    }
    text_batch(&[
        ("report", names),
        ("params", params),
        ("description", about),
    ])
}

/// The open store: its path, ZenML schema version, mapping, and row counts.
pub async fn store_info(
    ctx: &SessionContext,
    store: Option<&ZenStore>,
    store_name: &str,
) -> Result<RecordBatch> {
    let mut keys = vec!["store".to_string()];
    let mut values = vec![store_name.to_string()];
    match store {
        Some(store) => {
            keys.extend(["zenml schema version".to_string(), "mapping".to_string()]);
            values.extend([
                store.version().to_string(),
                store.mapping().name.to_string(),
            ]);
        }
        None => {
            keys.push("kind".to_string());
            // A server's store name is its URL (the mirror's folder is an export folder).
            let server = crate::store::rest::is_server_url(store_name);
            values.push(
                if server {
                    "ZenML server, answered from runql's mirror (Parquet)"
                } else {
                    "runql export (Parquet)"
                }
                .to_string(),
            );
        }
    }
    for table in ["pipelines", "runs", "steps", "outputs"] {
        let batches = ctx
            .sql(&format!("SELECT count(*) FROM {table}"))
            .await?
            .collect()
            .await?;
        let count = batches
            .first()
            .and_then(|b| {
                datafusion::arrow::array::as_primitive_array::<
                    datafusion::arrow::datatypes::Int64Type,
                >(b.column(0))
                .values()
                .first()
                .copied()
            })
            .unwrap_or(0);
        keys.push(table.to_string());
        values.push(count.to_string());
    }
    text_batch(&[("property", keys), ("value", values)])
}

/// One row per exported table: rows, bytes, partition column.
pub fn export_summary(manifest: &crate::export::Manifest) -> Result<RecordBatch> {
    let mut tables = Vec::new();
    let mut rows = Vec::new();
    let mut bytes = Vec::new();
    let mut partitions = Vec::new();
    for t in &manifest.tables {
        tables.push(t.table.clone());
        rows.push(t.rows.to_string());
        bytes.push(t.bytes.to_string());
        partitions.push(t.partition.clone().unwrap_or_default());
    }
    text_batch(&[
        ("table", tables),
        ("rows", rows),
        ("bytes", bytes),
        ("partitioned_by", partitions),
    ])
}
