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

/// Rows per Parquet row group: what the writer holds in memory at most, per table.
const ROW_GROUP_ROWS: usize = 16 * 1024;

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

/// What an export is of: the store as `--info` names it (never with a password), and its
/// ZenML version.
#[derive(Debug, Clone)]
pub struct Source {
    pub store: String,
    pub zenml_version: String,
}

impl Source {
    pub fn of(store: &ZenStore) -> Self {
        Self {
            store: store.describe(),
            zenml_version: store.version().to_string(),
        }
    }
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
        // New runs, and runs the previous export saw unfinished: a running run's steps
        // change without its own `updated` moving.
        let mut changed =
            format!("run_id NOT IN (SELECT run_id FROM __prev_runs WHERE status IN ({FINISHED}))");
        if let Some(mark) = &previous.watermark {
            changed = format!(
                "({changed} OR updated >= CAST('{}' AS TIMESTAMP))",
                mark.replace('\'', "''")
            );
        }
        conditions.push(changed);
    }
    if conditions.is_empty() {
        return ALL_RUNS.to_string();
    }
    format!("SELECT run_id FROM runs WHERE {}", conditions.join(" AND "))
}

/// Run statuses ZenML does not change again (a finished run's steps are final too).
pub(crate) const FINISHED: &str = "'completed', 'failed', 'cached', 'stopped'";

/// `changed_runs` when every run is to be read: then no table needs filtering on it (a
/// semi-join on every run would hold a whole table in a hash table).
const ALL_RUNS: &str = "SELECT run_id FROM runs";

/// What an export reads: every run, or the listed runs (changed since the previous export,
/// or gone from the store) and the ids of everything attached to them.
///
/// The lists are computed once, up front, and spelled out in each table's query: a filter
/// on a literal list reaches SQLite (or streams through DataFusion), where a semi-join
/// against a subquery would hold a whole table in a hash table.
pub(crate) enum Selection {
    All,
    Listed {
        runs: Vec<String>,
        resources: Vec<String>,
    },
}

/// Ids as a SQL list of string literals.
pub(crate) fn id_list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("'{}'", id.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn in_list(column: &str, ids: &[String]) -> String {
    if ids.is_empty() {
        "false".to_string()
    } else {
        format!("{column} IN ({})", id_list(ids))
    }
}

/// The rows of `table` to write: fresh rows of the listed runs from the store, plus the
/// previous export's rows of the runs not listed. Each row belongs to one run, so no row is
/// written twice, and a run the store no longer has (listed, but not in the store) is gone.
pub(crate) fn table_query(table: &str, selection: &Selection, previous: bool) -> String {
    let (runs, resources) = match selection {
        Selection::All => return format!("SELECT * FROM {table}"),
        Selection::Listed { runs, resources } => (runs, resources),
    };
    let listed = match table {
        "pipelines" => return "SELECT * FROM pipelines".to_string(),
        "metadata" => in_list("resource_id", resources),
        _ => in_list("run_id", runs),
    };
    let fresh = format!("SELECT * FROM {table} WHERE {listed}");
    if previous {
        format!("{fresh} UNION ALL SELECT * FROM __prev_{table} WHERE NOT ({listed})")
    } else {
        fresh
    }
}

/// The first column of `sql`'s rows, as text (NULLs left out).
pub(crate) async fn strings(ctx: &SessionContext, sql: &str) -> Result<Vec<String>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut out = Vec::new();
    for batch in batches {
        let column = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
        let column = column
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>()
            .expect("cast to Utf8");
        out.extend(column.iter().flatten().map(str::to_string));
    }
    Ok(out)
}

/// Lists the runs `changed` selects, the previous export's runs the store lost, and the
/// steps and outputs of both.
async fn select(ctx: &SessionContext, changed: &str, previous: &[String]) -> Result<Selection> {
    if changed == ALL_RUNS && previous.is_empty() {
        return Ok(Selection::All);
    }
    let has = |t: &str| previous.iter().any(|p| p == t);
    let mut runs = strings(ctx, changed).await?;
    if has("runs") {
        runs.extend(
            strings(
                ctx,
                "SELECT run_id FROM __prev_runs EXCEPT SELECT run_id FROM runs",
            )
            .await?,
        );
    }
    runs.sort();
    runs.dedup();
    let mut resources = runs.clone();
    if !runs.is_empty() {
        let list = id_list(&runs);
        resources.extend(
            strings(
                ctx,
                &format!("SELECT step_id FROM steps WHERE run_id IN ({list})"),
            )
            .await?,
        );
        resources.extend(
            strings(
                ctx,
                &format!("SELECT output_id FROM outputs WHERE run_id IN ({list})"),
            )
            .await?,
        );
        for (table, id) in [("steps", "step_id"), ("outputs", "output_id")] {
            if has(table) {
                resources.extend(
                    strings(
                        ctx,
                        &format!("SELECT {id} FROM __prev_{table} WHERE run_id IN ({list})"),
                    )
                    .await?,
                );
            }
        }
    }
    resources.sort();
    resources.dedup();
    Ok(Selection::Listed { runs, resources })
}

/// Writes the export; `progress` hears of each table as it starts.
pub async fn export(
    ctx: &SessionContext,
    source: &Source,
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
        let this = source.store.clone();
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
    let selection = select(ctx, &changed, &previous_tables).await?;
    let rows = |table: &str| {
        table_query(
            table,
            &selection,
            previous_tables.iter().any(|t| t == table),
        )
    };
    let since_kept = since.clone();
    write_folder(
        ctx,
        &options.to,
        &tables,
        options.partition_by,
        &rows,
        progress,
        |summaries| Manifest {
            runql_version: env!("CARGO_PKG_VERSION").to_string(),
            store: source.store.clone(),
            zenml_version: source.zenml_version.clone(),
            exported_at: chrono::Utc::now().to_rfc3339(),
            since: since_kept,
            partition_by: options.partition_by,
            watermark,
            runs_read,
            tables: summaries,
        },
    )
    .await
}

/// Writes `tables` (each table's rows are the SQL `rows(table)` gives, over `ctx`) as an
/// export folder in `to`, atomically: everything is written under a staging folder and
/// renamed into place only when complete, the manifest (made by `manifest` from the
/// tables written) last. On any error `to` is left as it was.
pub(crate) async fn write_folder(
    ctx: &SessionContext,
    to: &Path,
    tables: &[&str],
    partition_by: Option<PartitionBy>,
    rows: &dyn Fn(&str) -> String,
    progress: &mut dyn FnMut(&str),
    manifest: impl FnOnce(Vec<TableSummary>) -> Manifest,
) -> Result<Manifest> {
    let staging = to.join(format!(".runql-staging-{}", std::process::id()));
    std::fs::create_dir_all(&staging)?;
    let result = write_tables(ctx, tables, partition_by, rows, &staging, progress).await;
    let summaries = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let manifest = manifest(summaries);
    // Everything is complete: swap each table in, then the manifest.
    for summary in &manifest.tables {
        let target = to.join(&summary.table);
        let old = staging.join(format!("{}.old", summary.table));
        if target.exists() {
            std::fs::rename(&target, &old)?;
        }
        std::fs::rename(staging.join(&summary.table), &target)?;
    }
    write_manifest(to, &staging, &manifest)?;
    std::fs::remove_dir_all(&staging)?;
    Ok(manifest)
}

/// Replaces the manifest of the export in `to` atomically (written in `staging`, then
/// renamed over the old one).
pub(crate) fn write_manifest(to: &Path, staging: &Path, manifest: &Manifest) -> Result<()> {
    let text = serde_json::to_string_pretty(manifest)
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let tmp = staging.join(MANIFEST);
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, to.join(MANIFEST))?;
    Ok(())
}

async fn write_tables(
    ctx: &SessionContext,
    tables: &[&str],
    partition_by: Option<PartitionBy>,
    rows: &dyn Fn(&str) -> String,
    staging: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<TableSummary>> {
    let mut summaries = Vec::new();
    for table in tables {
        progress(table);
        let def = table_def(table).expect("checked");
        let partition = partition_column(table, partition_by);
        let mut select = "*".to_string();
        let mut partition_by = Vec::new();
        if let Some((name, expr)) = &partition {
            if *name == "date" {
                select = format!("*, {expr}");
            }
            partition_by.push(name.to_string());
        }
        let rows = rows(table);
        let df = ctx
            .sql(&format!("SELECT {select} FROM ({rows}) AS t"))
            .await?;
        let mut parquet = TableParquetOptions::default();
        parquet.global.compression = Some("zstd(3)".to_string());
        // The writer holds a row group in memory until it is full; steps carry kilobytes of
        // configuration each, so a default-size row group of them is gigabytes. Small row
        // groups, written one at a time, keep an export's memory bounded.
        parquet.global.max_row_group_size = ROW_GROUP_ROWS;
        parquet.global.allow_single_file_parallelism = false;
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

pub(crate) fn remove_stale_staging(dir: &Path) -> std::io::Result<()> {
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

pub(crate) fn read_manifest(dir: &Path) -> Result<Option<Manifest>> {
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

/// Columns computed when an export is read rather than stored: positions counted from the
/// end depend on rows other than their own (a new run makes every earlier run of its
/// pipeline one further from the end), and an incremental export keeps the rows of runs
/// that did not change. Counted from the rows the export holds, they stay exact.
fn derived(table: &str, column: &str) -> Option<&'static str> {
    match (table, column) {
        // A run whose pipeline is gone keeps what the store said (eras count those apart).
        ("runs", "run_rindex") => Some(
            "CASE WHEN pipeline_id IS NULL THEN run_rindex \
             ELSE run_index - COUNT(*) OVER (PARTITION BY pipeline_id) END",
        ),
        ("steps", "step_rindex") => Some("step_index - COUNT(*) OVER (PARTITION BY run_id)"),
        _ => None,
    }
}

/// Registers each table of the export in `dir` as the view `<prefix><table>`.
pub(crate) async fn register_tables(
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
        // An export written by an older runql lacks the columns added since: they read as
        // NULL, as a ZenML release that does not record a column does.
        let written = ctx.table(raw.as_str()).await?.schema().clone();
        let columns: Vec<String> = def
            .columns
            .iter()
            .map(|c| {
                if let Some(expr) = derived(def.name, c.name) {
                    format!("{expr} AS \"{}\"", c.name)
                } else if written.has_column_with_unqualified_name(c.name) {
                    format!("\"{}\"", c.name)
                } else {
                    format!(
                        "arrow_cast(NULL, '{}') AS \"{}\"",
                        c.kind.data_type(),
                        c.name
                    )
                }
            })
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
