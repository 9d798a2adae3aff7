//! `runql export`: every table to Parquet (zstd), one folder per table, and reading such a
//! folder back as the same tables (`runql --store DIR`).
//!
//! An export is atomic: tables are written under `DIR/.runql-staging-<pid>/` and renamed into
//! place only when all of them are complete, the manifest last; a failed or killed export
//! leaves DIR as it was (a stale staging folder is removed by the next export). Rows stream
//! from the store through DataFusion's Parquet writer, so memory stays bounded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::TableParquetOptions;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde::{Deserialize, Serialize};

use crate::store::ZenStore;
use crate::tables::{TABLES, table_def};

/// The file in an export folder that says what it holds.
pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PartitionBy {
    /// Hive partitions `pipeline_name=...` (tables that have the column)
    #[value(name = "pipeline_name", alias = "pipeline-name")]
    PipelineName,
    /// Hive partitions `date=YYYY-MM-DD` of each row's time (tables that have one)
    Date,
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub to: PathBuf,
    pub tables: Vec<String>,
    /// Only runs created at or after this time, with their steps, outputs, inputs and
    /// metadata (pipelines are always whole).
    pub since: Option<String>,
    pub partition_by: Option<PartitionBy>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub runql_version: String,
    pub store: String,
    pub zenml_version: String,
    pub exported_at: String,
    pub since: Option<String>,
    pub partition_by: Option<PartitionBy>,
    /// The latest `runs.updated` this export has seen: the next export reads only runs
    /// changed at or after it (and runs it does not hold yet).
    pub watermark: Option<String>,
    /// Runs this export read from the store (all of them the first time, the changed ones
    /// after that).
    pub runs_read: u64,
    pub tables: Vec<TableSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableSummary {
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
    /// The partition column this table was split on, if any.
    pub partition: Option<String>,
}

/// The column a table is split on for `by`, if the table has one.
fn partition_column(table: &str, by: Option<PartitionBy>) -> Option<(&'static str, String)> {
    let def = table_def(table)?;
    match by? {
        PartitionBy::PipelineName => def
            .column("pipeline_name")
            .map(|_| ("pipeline_name", "pipeline_name".to_string())),
        PartitionBy::Date => ["start_time", "created"]
            .into_iter()
            .find(|c| def.column(c).is_some())
            .map(|c| {
                (
                    "date",
                    format!("COALESCE(to_char({c}, '%Y-%m-%d'), 'unknown') AS date"),
                )
            }),
    }
}

/// Which runs an export reads from the store, as SQL over `runs` (and the previous export's
/// tables, registered as `__prev_<table>`, when there is one).
fn changed_runs(since: Option<&str>, previous: Option<&Manifest>) -> String {
    let mut conditions = Vec::new();
    if let Some(since) = since {
        conditions.push(format!(
            "created >= CAST('{}' AS TIMESTAMP)",
            since.replace('\'', "''")
        ));
    }
    if let Some(previous) = previous {
        let mut changed = "run_id NOT IN (SELECT run_id FROM __prev_runs)".to_string();
        if let Some(mark) = &previous.watermark {
            changed = format!(
                "({changed} OR updated >= CAST('{}' AS TIMESTAMP))",
                mark.replace('\'', "''")
            );
        }
        conditions.push(changed);
    }
    if conditions.is_empty() {
        conditions.push("true".to_string());
    }
    format!("SELECT run_id FROM runs WHERE {}", conditions.join(" AND "))
}

/// The rows of `table` to write: fresh rows of the changed runs from the store, plus the
/// previous export's rows of runs that did not change and still exist. Each row belongs to
/// one run, so no row is written twice.
fn table_query(table: &str, changed: &str, previous: bool) -> String {
    let fresh_ids = |column: &str| -> String {
        match table {
            "metadata" => format!(
                "{column} IN (SELECT run_id FROM ({changed}) UNION ALL SELECT step_id FROM steps WHERE run_id IN ({changed}) \
                 UNION ALL SELECT output_id FROM outputs WHERE run_id IN ({changed}))"
            ),
            _ => format!("{column} IN ({changed})"),
        }
    };
    let key = match table {
        "pipelines" => return "SELECT * FROM pipelines".to_string(),
        "metadata" => "resource_id",
        _ => "run_id",
    };
    let fresh = format!("SELECT * FROM {table} WHERE {}", fresh_ids(key));
    if !previous {
        return fresh;
    }
    // Keep the previous export's rows of unchanged runs that the store still has.
    let live = match table {
        "metadata" => "resource_id IN (SELECT run_id FROM runs UNION ALL SELECT step_id FROM steps UNION ALL SELECT output_id FROM outputs)".to_string(),
        _ => "run_id IN (SELECT run_id FROM runs)".to_string(),
    };
    format!(
        "{fresh} UNION ALL SELECT * FROM __prev_{table} WHERE NOT ({}) AND {live}",
        fresh_ids(key)
    )
}

/// Writes the export; `progress` hears of each table as it starts.
pub async fn export(
    ctx: &SessionContext,
    store: &ZenStore,
    options: &ExportOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Manifest> {
    let tables: Vec<&str> = if options.tables.is_empty() {
        TABLES.iter().map(|t| t.name).collect()
    } else {
        options.tables.iter().map(String::as_str).collect()
    };
    for t in &tables {
        if table_def(t).is_none() {
            let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
            return Err(DataFusionError::Plan(format!(
                "no table {t} to export; tables: {}",
                names.join(", ")
            )));
        }
    }
    std::fs::create_dir_all(&options.to)?;
    remove_stale_staging(&options.to)?;
    let previous = read_manifest(&options.to)?;
    if let Some(previous) = &previous {
        let this = store.path().display().to_string();
        if previous.store != this {
            return Err(DataFusionError::Plan(format!(
                "{} holds an export of another store ({}); export {this} to another folder",
                options.to.display(),
                previous.store
            )));
        }
        register_tables(ctx, &options.to, previous, "__prev_").await?;
    }
    let previous_tables: Vec<String> = previous
        .iter()
        .flat_map(|p| p.tables.iter().map(|t| t.table.clone()))
        .collect();
    // Change detection needs the previous export's runs.
    let previous = previous.filter(|_| previous_tables.iter().any(|t| t == "runs"));
    // A --since given once stays the export's lower bound.
    let since = options
        .since
        .clone()
        .or_else(|| previous.as_ref().and_then(|p| p.since.clone()));
    let changed = changed_runs(since.as_deref(), previous.as_ref());
    let watermark = first_value(ctx, "SELECT CAST(max(updated) AS VARCHAR) FROM runs").await?;
    let runs_read = first_value(
        ctx,
        &format!("SELECT CAST(count(*) AS VARCHAR) FROM ({changed})"),
    )
    .await?
    .and_then(|n| n.parse().ok())
    .unwrap_or(0);
    let staging = options
        .to
        .join(format!(".runql-staging-{}", std::process::id()));
    std::fs::create_dir_all(&staging)?;
    let result = write_tables(
        ctx,
        &tables,
        options,
        &changed,
        &previous_tables,
        &staging,
        progress,
    )
    .await;
    let summaries = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let manifest = Manifest {
        runql_version: env!("CARGO_PKG_VERSION").to_string(),
        store: store.path().display().to_string(),
        zenml_version: store.version().to_string(),
        exported_at: chrono::Utc::now().to_rfc3339(),
        since,
        partition_by: options.partition_by,
        watermark,
        runs_read,
        tables: summaries,
    };
    // Everything is complete: swap each table in, then the manifest.
    for summary in &manifest.tables {
        let target = options.to.join(&summary.table);
        let old = staging.join(format!("{}.old", summary.table));
        if target.exists() {
            std::fs::rename(&target, &old)?;
        }
        std::fs::rename(staging.join(&summary.table), &target)?;
    }
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let tmp = staging.join(MANIFEST);
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, options.to.join(MANIFEST))?;
    std::fs::remove_dir_all(&staging)?;
    Ok(manifest)
}

async fn write_tables(
    ctx: &SessionContext,
    tables: &[&str],
    options: &ExportOptions,
    changed: &str,
    previous_tables: &[String],
    staging: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<TableSummary>> {
    let mut summaries = Vec::new();
    for table in tables {
        progress(table);
        let def = table_def(table).expect("checked");
        let partition = partition_column(table, options.partition_by);
        let mut select = "*".to_string();
        let mut partition_by = Vec::new();
        if let Some((name, expr)) = &partition {
            if *name == "date" {
                select = format!("*, {expr}");
            }
            partition_by.push(name.to_string());
        }
        let rows = table_query(table, changed, previous_tables.iter().any(|t| t == table));
        let df = ctx
            .sql(&format!("SELECT {select} FROM ({rows}) AS t"))
            .await?;
        let mut parquet = TableParquetOptions::default();
        parquet.global.compression = Some("zstd(3)".to_string());
        parquet.key_value_metadata.insert(
            "runql.table".into(),
            Some(format!("{table}: {}", def.summary())),
        );
        for column in def.contract_columns() {
            parquet.key_value_metadata.insert(
                format!("runql.column.{}", column.name),
                Some(column.meaning),
            );
        }
        let dir = staging.join(table);
        std::fs::create_dir_all(&dir)?;
        let written = df
            .write_parquet(
                &format!("{}/", dir.display()),
                DataFrameWriteOptions::new().with_partition_by(partition_by),
                Some(parquet),
            )
            .await?;
        let rows = written
            .first()
            .and_then(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::UInt64Array>()
                    .map(|a| a.value(0))
            })
            .unwrap_or(0);
        summaries.push(TableSummary {
            table: table.to_string(),
            rows,
            bytes: dir_size(&dir)?,
            partition: partition.map(|(name, _)| name.to_string()),
        });
    }
    Ok(summaries)
}

fn remove_stale_staging(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(".runql-staging-")
        {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// Whether `path` is an export folder rather than a ZenML store.
pub fn is_export(path: &Path) -> bool {
    path.is_dir() && path.join(MANIFEST).is_file()
}

fn read_manifest(dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join(MANIFEST);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        DataFusionError::Plan(format!(
            "{}: not a runql export manifest: {e}",
            path.display()
        ))
    })
}

async fn first_value(ctx: &SessionContext, sql: &str) -> Result<Option<String>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let column = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
    let strings = column
        .as_any()
        .downcast_ref::<datafusion::arrow::array::StringArray>()
        .expect("cast to Utf8");
    Ok(strings.is_valid(0).then(|| strings.value(0).to_string()))
}

/// Registers an export folder's tables in `ctx` with the store tables' names and column
/// order, so queries and reports run unchanged.
pub async fn register_export(ctx: &SessionContext, dir: &Path) -> Result<Manifest> {
    let manifest = read_manifest(dir)?.ok_or_else(|| {
        DataFusionError::Plan(format!(
            "{} has no {MANIFEST}: not a runql export",
            dir.display()
        ))
    })?;
    register_tables(ctx, dir, &manifest, "").await?;
    Ok(manifest)
}

/// Registers each table of the export in `dir` as the view `<prefix><table>`.
async fn register_tables(
    ctx: &SessionContext,
    dir: &Path,
    manifest: &Manifest,
    prefix: &str,
) -> Result<()> {
    let partitions: HashMap<&str, Option<&str>> = manifest
        .tables
        .iter()
        .map(|t| (t.table.as_str(), t.partition.as_deref()))
        .collect();
    for def in TABLES {
        let Some(partition) = partitions.get(def.name) else {
            continue;
        };
        let files = format!("{}/", dir.join(def.name).display());
        let raw = format!("__files_{prefix}{}", def.name);
        let mut read = ParquetReadOptions::default();
        if let Some(col) = partition {
            read = read.table_partition_cols(vec![(col.to_string(), DataType::Utf8)]);
        }
        ctx.register_parquet(&raw, &files, read).await?;
        let columns: Vec<String> = def
            .columns
            .iter()
            .map(|c| format!("\"{}\"", c.name))
            .collect();
        ctx.sql(&format!(
            "CREATE VIEW {prefix}{} AS SELECT {} FROM {raw}",
            def.name,
            columns.join(", ")
        ))
        .await?;
    }
    Ok(())
}
