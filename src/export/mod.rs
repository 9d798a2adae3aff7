//! `runql export`: every table to Parquet (zstd), one folder per table, and reading such a
//! folder back as the same tables (`runql --store DIR`).
//!
//! An export is atomic: tables are written under `DIR/.runql-staging-<pid>/` and renamed into
//! place only when all of them are complete, the manifest last; a failed or killed export
//! leaves DIR as it was (a stale staging folder is removed by the next export). Rows stream
//! from the store through DataFusion's Parquet writer, so memory stays bounded.
//!
//! Exporting again to the same folder reads only the runs that changed. An export other tools
//! read (pyarrow, DuckDB) is then rewritten, table by table, so each table's folder holds
//! exactly its rows. A mirror (runql's own copy of a store, read only by runql) appends the
//! changed runs' rows as a change set (`DIR/changes/<n>/<table>/`) instead: a change set's
//! rows of a run replace every earlier part's rows of that run (`ChangeSet`), and the
//! manifest, renamed into place last, names the parts a reader sees. Change sets are merged
//! into one past `MAX_CHANGE_SETS`, and the folder is rewritten whole when they hold more
//! than a tenth of the runs, when a run was deleted, or when the export is partitioned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::config::{ParquetColumnOptions, TableParquetOptions};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::datasource::file_format::parquet::transform_schema_to_view;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde::{Deserialize, Serialize};

use crate::store::ZenStore;
use crate::tables::{TABLES, table_def};

/// Rows per Parquet row group: what the writer holds in memory at most, per table, and what
/// a reader decodes at least. Steps and runs carry kilobytes of configuration each, which
/// compress a hundredfold: a `LIMIT 10` over row groups of 16k steps decoded 390 MB and
/// took 0.7 s at 100k runs, over groups of 1k it takes 0.09 s.
fn row_group_rows(table: &str) -> usize {
    match table {
        "steps" | "runs" => 1024,
        _ => 16 * 1024,
    }
}

/// Columns rows are looked up and joined by, which get a Parquet bloom filter per row group:
/// ids are random (and run names as good as), so row groups' min/max cannot skip any, and
/// without one a lookup of a few runs (a user's, or a sync's count of the rows it replaces)
/// decodes the whole column. An export of a 100k-run store takes 85 MB with them, 82 MB
/// without.
fn lookup_columns(table: &str) -> &'static [&'static str] {
    match table {
        "runs" => &["run_id", "run_name"],
        "inputs" => &["run_id", "step_id"],
        "steps" => &["run_id", "step_id", "run_name"],
        "outputs" => &["run_id", "output_id", "step_id", "run_name"],
        "metadata" => &["resource_id"],
        _ => &[],
    }
}

/// A lookup of a few ids reads about this share of the row groups that lack them.
const LOOKUP_FPP: f64 = 0.01;

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
    /// Append changed runs as change sets (a mirror, read only by runql) rather than
    /// rewriting the tables other tools read.
    pub change_sets: bool,
    /// The store's change mark (`ZenStore::change_mark`) read before the export started.
    pub source_mark: Option<String>,
    /// The store's pipelines count their runs by id over the `runs` rows
    /// (`SchemaMapping::pipelines_count_runs_by_id`): an incremental export of every run
    /// counts them over its own runs (a scan of the store's every run otherwise).
    pub pipelines_from_runs: bool,
}

/// Pipelines with the counts, first starts and numbers of the runs in `__merged_runs`, over
/// the pipelines' own columns in `__store_pipelines`: as the SQL mappings count and number
/// them (`v0_98::PIPELINES`), for a folder that holds every run.
pub(crate) const PIPELINES_FROM_RUNS: &str = "SELECT p.pipeline_id, p.pipeline_name, p.created, \
     COALESCE(s.n, 0) AS run_count, s.first_start AS first_run_start, \
     CAST(ROW_NUMBER() OVER (ORDER BY s.first_start IS NULL, s.first_start, p.created, p.pipeline_id) - 1 AS BIGINT) AS pipeline_index, \
     p.description \
     FROM __store_pipelines p LEFT JOIN (SELECT pipeline_id, COUNT(*) AS n, \
     MIN(start_time) AS first_start FROM __merged_runs GROUP BY pipeline_id) s \
     ON s.pipeline_id = p.pipeline_id";

/// The same SQL for a test to run over a store's own tables.
#[doc(hidden)]
pub fn pipelines_from_runs_over(pipelines: &str, runs: &str) -> String {
    PIPELINES_FROM_RUNS
        .replace("__store_pipelines", &format!("({pipelines})"))
        .replace("__merged_runs", &format!("({runs}) AS r"))
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
    /// Each table's rows as the folder reads now (its base files and change sets).
    pub tables: Vec<TableSummary>,
    /// Change sets appended since the tables were last written whole, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeSet>,
    /// The store's change mark when this export started reading it: while the store's mark
    /// is the same, nothing was written to it since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_mark: Option<String>,
}

impl Manifest {
    /// The rows `table` holds now, or `None` when the folder has no such table.
    pub fn rows(&self, table: &str) -> Option<u64> {
        self.tables
            .iter()
            .find(|t| t.table == table)
            .map(|t| t.rows)
    }
}

/// Rows of some runs, appended to an export: they replace every earlier part's rows of those
/// runs (and, for `metadata`, of those resources); `pipelines` in a change set are all of
/// them and replace the earlier ones. A run listed but without rows here was deleted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeSet {
    /// Its folder, relative to the export (`changes/<n>`).
    pub dir: String,
    pub runs: Vec<String>,
    /// Runs, steps and outputs whose metadata this change set holds.
    pub resources: Vec<String>,
    /// Rows written per table.
    pub tables: Vec<TableSummary>,
}

/// Change sets an export holds at most before they are merged into one: each is a part every
/// query reads.
const MAX_CHANGE_SETS: usize = 16;

/// Runs the change sets may list together before the folder is rewritten whole: at least
/// this many, or a tenth of the runs.
const MIN_CHANGED_RUNS: usize = 1_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableSummary {
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
    /// The partition column this table was split on, if any.
    pub partition: Option<String>,
    /// The columns its files hold, each `[name, Arrow type]`, so a reader knows the table's
    /// schema without opening every file's footer (folders written before runql recorded
    /// them have none: their footers are read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<(String, String)>,
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
    let since = since.map(|since| {
        format!(
            "r.created >= CAST('{}' AS TIMESTAMP)",
            since.replace('\'', "''")
        )
    });
    let Some(previous) = previous else {
        return match since {
            Some(since) => format!("SELECT r.run_id FROM runs r WHERE {since}"),
            None => ALL_RUNS.to_string(),
        };
    };
    // New runs, and runs the previous export saw unfinished (a running run's steps change
    // without its own `updated` moving): the runs it does not hold finished. One join, so
    // the store's runs are read once (a `NOT IN` beside an `OR` was evaluated row by row).
    let mut changed = "p.run_id IS NULL".to_string();
    if let Some(mark) = &previous.watermark {
        changed = format!(
            "({changed} OR r.updated >= CAST('{}' AS TIMESTAMP))",
            mark.replace('\'', "''")
        );
    }
    let conditions: Vec<String> = since.into_iter().chain([changed]).collect();
    format!(
        "SELECT r.run_id FROM runs r LEFT JOIN \
         (SELECT run_id FROM __prev_runs WHERE status IN ({FINISHED})) p ON p.run_id = r.run_id \
         WHERE {}",
        conditions.join(" AND ")
    )
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
/// Whether any run was deleted is said too: then the folder is rewritten whole.
///
/// `known_runs` is how many runs the previous export holds, when it holds every run of the
/// store it had (no `--since`): then deletions are counted before they are looked for, since
/// the store's runs are the previous ones less the deleted plus the new.
async fn select(
    ctx: &SessionContext,
    changed: &str,
    previous: &[String],
    known_runs: Option<u64>,
) -> Result<Selected> {
    if changed == ALL_RUNS && previous.is_empty() {
        return Ok(Selected {
            selection: Selection::All,
            in_previous: Vec::new(),
            deleted: false,
            changed: None,
        });
    }
    let has = |t: &str| previous.iter().any(|p| p == t);
    let mut runs = strings(ctx, changed).await?;
    let changed_ids = runs.clone();
    let mut deleted = false;
    // The listed runs the previous export holds: only they have rows there.
    let mut in_previous = if has("runs") {
        held(ctx, &runs).await?
    } else {
        Vec::new()
    };
    let maybe_deleted = match known_runs {
        Some(known) if has("runs") => {
            let new = (runs.len() - in_previous.len()) as u64;
            count(ctx, "SELECT count(*) FROM runs").await? != known + new
        }
        _ => has("runs"),
    };
    if maybe_deleted {
        let gone = strings(
            ctx,
            "SELECT run_id FROM __prev_runs EXCEPT SELECT run_id FROM runs",
        )
        .await?;
        deleted = !gone.is_empty();
        runs.extend(gone.iter().cloned());
        in_previous.extend(gone);
    }
    in_previous.sort();
    in_previous.dedup();
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
        resources.extend(previous_resources(ctx, previous, &in_previous).await?);
    }
    resources.sort();
    resources.dedup();
    Ok(Selected {
        selection: Selection::Listed { runs, resources },
        in_previous,
        deleted,
        changed: (changed != ALL_RUNS).then_some(changed_ids),
    })
}

/// Which of `runs` the previous export (registered as `__prev_runs`) holds: looked up by
/// id, which the run ids' bloom filters answer without reading every run. Only those have
/// rows there to replace; a new run's are not looked for.
pub(crate) async fn held(ctx: &SessionContext, runs: &[String]) -> Result<Vec<String>> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    strings(
        ctx,
        &format!(
            "SELECT run_id FROM __prev_runs WHERE run_id IN ({})",
            id_list(runs)
        ),
    )
    .await
}

/// The ids of the steps and outputs of `runs` in the previous export (`__prev_steps`,
/// `__prev_outputs`, those of `tables` it has).
pub(crate) async fn previous_resources(
    ctx: &SessionContext,
    tables: &[String],
    runs: &[String],
) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    if runs.is_empty() {
        return Ok(ids);
    }
    let list = id_list(runs);
    for (table, id) in [("steps", "step_id"), ("outputs", "output_id")] {
        if tables.iter().any(|t| t == table) {
            ids.extend(
                strings(
                    ctx,
                    &format!("SELECT {id} FROM __prev_{table} WHERE run_id IN ({list})"),
                )
                .await?,
            );
        }
    }
    Ok(ids)
}

/// What `select` found.
struct Selected {
    selection: Selection,
    /// The listed runs the previous export holds.
    in_previous: Vec<String>,
    /// Whether a run the previous export holds is gone from the store.
    deleted: bool,
    /// The changed runs' ids, when only some runs are read.
    changed: Option<Vec<String>>,
}

/// Writes the export; `progress` hears of each table as it starts.
pub async fn export(
    ctx: &SessionContext,
    source: &Source,
    options: &ExportOptions,
    progress: &mut (dyn FnMut(&str) + Send),
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
    let known_runs = previous
        .as_ref()
        .filter(|p| p.since.is_none() && since.is_none())
        .and_then(|p| p.rows("runs"));
    let Selected {
        selection,
        in_previous,
        deleted,
        changed: changed_ids,
    } = select(ctx, &changed, &previous_tables, known_runs).await?;
    // The newest `updated` is the previous one or among the changed runs (every run updated
    // at or after the previous mark is one): no need to scan every run for it.
    let (watermark, runs_read) = match (&changed_ids, &previous) {
        (Some(ids), Some(previous)) => {
            let newest = if ids.is_empty() {
                None
            } else {
                first_value(
                    ctx,
                    &format!(
                        "SELECT CAST(max(updated) AS VARCHAR) FROM runs WHERE run_id IN ({})",
                        id_list(ids)
                    ),
                )
                .await?
            };
            (later(newest, previous.watermark.clone()), ids.len() as u64)
        }
        _ => (
            first_value(ctx, "SELECT CAST(max(updated) AS VARCHAR) FROM runs").await?,
            count(ctx, &format!("SELECT count(*) FROM ({changed})")).await?,
        ),
    };
    let made = Manifest {
        runql_version: env!("CARGO_PKG_VERSION").to_string(),
        store: source.store.clone(),
        zenml_version: source.zenml_version.clone(),
        exported_at: chrono::Utc::now().to_rfc3339(),
        since,
        partition_by: options.partition_by,
        watermark,
        runs_read,
        tables: Vec::new(),
        changes: Vec::new(),
        source_mark: options.source_mark.clone(),
    };
    if let (Some(previous), Selection::Listed { runs, resources }) = (&previous, &selection)
        && !deleted
        && options.change_sets
        && options.partition_by.is_none()
    {
        // Only a folder of every run (what `known_runs` says) can count them.
        let counted = options.pipelines_from_runs && known_runs.is_some();
        if counted {
            ctx.sql(
                "CREATE VIEW __store_pipelines AS \
                 SELECT pipeline_id, pipeline_name, created, description FROM pipelines",
            )
            .await?;
            let merged = table_query("runs", &selection, true);
            ctx.sql(&format!("CREATE VIEW __merged_runs AS {merged}"))
                .await?;
            ctx.sql(&format!(
                "CREATE VIEW __pipelines_from_runs AS {PIPELINES_FROM_RUNS}"
            ))
            .await?;
        }
        let appended = append_changes(
            ctx,
            &options.to,
            previous,
            &tables,
            Listed {
                runs,
                resources,
                in_previous: Some(&in_previous),
            },
            &|table| match table {
                "pipelines" if counted => "__pipelines_from_runs".to_string(),
                other => other.to_string(),
            },
            progress,
            &made,
        )
        .await?;
        if let Some(manifest) = appended {
            return Ok(manifest);
        }
    }
    let rows = |table: &str| {
        table_query(
            table,
            &selection,
            previous_tables.iter().any(|t| t == table),
        )
    };
    write_folder(
        ctx,
        &options.to,
        &tables,
        options.partition_by,
        &rows,
        progress,
        |tables| Manifest { tables, ..made },
    )
    .await
}

/// Appends the rows of `listed` runs and metadata resources (changed or gone) to the export
/// in `to` as a change set, rather than rewriting every table; `None` when the folder is
/// better rewritten whole (see the module doc), and the caller does that. `fresh(table)`
/// names the relation holding a table's fresh rows (the store's table, or a sync's view);
/// the folder's tables as they are now are registered as `__prev_<table>`. With nothing
/// listed and the same pipelines, only the manifest is replaced.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn append_changes(
    ctx: &SessionContext,
    to: &Path,
    previous: &Manifest,
    tables: &[&str],
    listed: Listed<'_>,
    fresh: &(dyn Fn(&str) -> String + Sync),
    progress: &mut (dyn FnMut(&str) + Send),
    made: &Manifest,
) -> Result<Option<Manifest>> {
    let same_tables = previous.tables.len() == tables.len()
        && tables
            .iter()
            .all(|t| previous.tables.iter().any(|p| p.table == *t));
    if previous.partition_by.is_some() || !same_tables {
        return Ok(None);
    }
    let staging = to.join(format!(".runql-staging-{}", std::process::id()));
    std::fs::create_dir_all(&staging)?;
    let result = append_staged(ctx, to, &staging, previous, tables, listed, fresh, progress).await;
    let written = match result {
        Ok(Some(written)) => written,
        Ok(None) => {
            std::fs::remove_dir_all(&staging)?;
            return Ok(None);
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // The change sets a merged one replaces go once the manifest no longer names them.
    let (tables_now, changes, replaced) = match written {
        Appended::Nothing => (previous.tables.clone(), previous.changes.clone(), &[][..]),
        Appended::Set {
            set,
            totals,
            merged,
        } => {
            let (mut changes, replaced) = if merged {
                (Vec::new(), &previous.changes[..])
            } else {
                (previous.changes.clone(), &[][..])
            };
            changes.push(set);
            (totals, changes, replaced)
        }
    };
    let new = Manifest {
        tables: tables_now,
        changes,
        ..made.clone()
    };
    write_manifest(to, &staging, &new)?;
    std::fs::remove_dir_all(&staging)?;
    for old in replaced {
        std::fs::remove_dir_all(to.join(&old.dir))?;
    }
    Ok(Some(new))
}

/// The runs and resources (steps, outputs and runs, by id) a change set replaces.
pub(crate) struct Listed<'a> {
    pub runs: &'a [String],
    pub resources: &'a [String],
    /// Those of `runs` the folder holds, when known: only their rows are looked for there.
    pub in_previous: Option<&'a [String]>,
}

/// What `append_staged` wrote: nothing (nothing changed), or a change set in place, with
/// each table's rows as the folder reads with it.
enum Appended {
    Nothing,
    Set {
        set: ChangeSet,
        totals: Vec<TableSummary>,
        /// It holds the earlier change sets' rows too, and replaces them.
        merged: bool,
    },
}

#[allow(clippy::too_many_arguments)]
async fn append_staged(
    ctx: &SessionContext,
    to: &Path,
    staging: &Path,
    previous: &Manifest,
    tables: &[&str],
    Listed {
        runs,
        resources,
        in_previous,
    }: Listed<'_>,
    fresh: &(dyn Fn(&str) -> String + Sync),
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Option<Appended>> {
    use std::collections::BTreeSet;
    // A store's pipelines count their runs over every run (a second or more on a large
    // store): computed once, then compared and written from memory.
    const PIPELINES: &str = "__fresh_pipelines_now";
    if tables.contains(&"pipelines") {
        let df = ctx
            .sql(&format!("SELECT * FROM {}", fresh("pipelines")))
            .await?;
        let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        let table = datafusion::datasource::MemTable::try_new(schema, vec![batches])?;
        ctx.register_table(PIPELINES, std::sync::Arc::new(table))?;
    }
    if runs.is_empty()
        && (!tables.contains(&"pipelines") || same_rows(ctx, PIPELINES, "__prev_pipelines").await?)
    {
        return Ok(Some(Appended::Nothing));
    }
    // Too many change sets: this one carries the earlier ones' rows and replaces them.
    let merged = previous.changes.len() >= MAX_CHANGE_SETS;
    let earlier = |ids: fn(&ChangeSet) -> &Vec<String>, these: &[String]| -> Vec<String> {
        let these: BTreeSet<&String> = these.iter().collect();
        let all: BTreeSet<&String> = previous.changes.iter().flat_map(ids).collect();
        all.into_iter()
            .filter(|id| !these.contains(id))
            .cloned()
            .collect()
    };
    let carried_runs = earlier(|c| &c.runs, runs);
    let carried_resources = earlier(|c| &c.resources, resources);
    let total_runs = previous.rows("runs").unwrap_or(0) as usize;
    let changed_runs = runs.len() + previous.changes.iter().map(|c| c.runs.len()).sum::<usize>();
    if changed_runs > MIN_CHANGED_RUNS.max(total_runs / 10) {
        return Ok(None);
    }
    let (carried_runs, carried_resources) = if merged {
        (carried_runs, carried_resources)
    } else {
        (Vec::new(), Vec::new())
    };
    let key = |table: &str| {
        if table == "metadata" {
            "resource_id"
        } else {
            "run_id"
        }
    };
    let ids = |table: &str, carried: bool| -> &[String] {
        match (table == "metadata", carried) {
            (true, false) => resources,
            (false, false) => runs,
            (true, true) => &carried_resources,
            (false, true) => &carried_runs,
        }
    };
    let rows = |table: &str| {
        if table == "pipelines" {
            return format!("SELECT * FROM {PIPELINES}");
        }
        let source = fresh(table);
        let mut sql = format!(
            "SELECT * FROM {source} WHERE {}",
            in_list(key(table), ids(table, false))
        );
        if !ids(table, true).is_empty() {
            sql.push_str(&format!(
                " UNION ALL SELECT * FROM __prev_{table} WHERE {}",
                in_list(key(table), ids(table, true))
            ));
        }
        sql
    };
    let written = write_tables(ctx, tables, None, &rows, &staging.join("set"), progress).await?;
    // Each table's rows now: the rows before, less those the change set replaces, plus its own.
    let mut totals = Vec::with_capacity(written.len());
    for summary in &written {
        let base = previous.tables.iter().find(|t| t.table == summary.table);
        let before = base.map_or(0, |t| t.rows);
        let replaced = if summary.table == "pipelines" {
            before
        } else {
            let table = summary.table.as_str();
            // A run's rows are there only if the folder holds the run.
            let mut all: Vec<String> = match (table, in_previous) {
                ("metadata", _) | (_, None) => ids(table, false).to_vec(),
                (_, Some(held)) => held.to_vec(),
            };
            all.extend(ids(table, true).iter().cloned());
            if all.is_empty() {
                0
            } else {
                count(
                    ctx,
                    &format!(
                        "SELECT count(*) FROM __prev_{table} WHERE {}",
                        in_list(key(table), &all)
                    ),
                )
                .await?
            }
        };
        totals.push(TableSummary {
            rows: before.saturating_sub(replaced) + summary.rows,
            bytes: base.map_or(0, |t| t.bytes) + summary.bytes,
            // The table's own files are the ones written before: their columns stay.
            columns: base.map(|t| t.columns.clone()).unwrap_or_default(),
            ..summary.clone()
        });
    }
    let number = previous
        .changes
        .iter()
        .filter_map(|c| c.dir.strip_prefix("changes/")?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let dir = format!("changes/{number}");
    let target = to.join(&dir);
    // A change set written by an export killed before its manifest: nobody reads it.
    if target.exists() {
        std::fs::remove_dir_all(&target)?;
    }
    std::fs::create_dir_all(to.join("changes"))?;
    std::fs::rename(staging.join("set"), &target)?;
    let mut listed_runs = runs.to_vec();
    listed_runs.extend(carried_runs.iter().cloned());
    let mut listed_resources = resources.to_vec();
    listed_resources.extend(carried_resources.iter().cloned());
    Ok(Some(Appended::Set {
        set: ChangeSet {
            dir,
            runs: listed_runs,
            resources: listed_resources,
            tables: written,
        },
        totals,
        merged,
    }))
}

/// The later of two watermarks, as `CAST(timestamp AS VARCHAR)` writes them (RFC 3339; a
/// whole second has no fraction, so they are compared as times, not text).
fn later(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let time = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
            match (time(&a), time(&b)) {
                (Some(x), Some(y)) if y > x => Some(b),
                (Some(_), Some(_)) => Some(a),
                _ => Some(a.max(b)),
            }
        }
        (a, b) => a.or(b),
    }
}

/// Whether two relations hold the same rows (compared as sets; for small tables).
async fn same_rows(ctx: &SessionContext, a: &str, b: &str) -> Result<bool> {
    let differ = count(
        ctx,
        &format!(
            "SELECT count(*) FROM ((SELECT * FROM {a} EXCEPT SELECT * FROM {b}) \
             UNION ALL (SELECT * FROM {b} EXCEPT SELECT * FROM {a}))"
        ),
    )
    .await?;
    Ok(differ == 0)
}

async fn count(ctx: &SessionContext, sql: &str) -> Result<u64> {
    Ok(
        first_value(ctx, &format!("SELECT CAST(({sql}) AS VARCHAR)"))
            .await?
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    )
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
    rows: &(dyn Fn(&str) -> String + Sync),
    progress: &mut (dyn FnMut(&str) + Send),
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
    // The tables were written whole: the change sets are in them.
    let changes = to.join("changes");
    if changes.exists() {
        std::fs::remove_dir_all(&changes)?;
    }
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
    rows: &(dyn Fn(&str) -> String + Sync),
    staging: &Path,
    progress: &mut (dyn FnMut(&str) + Send),
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
        // A partition column is the folders' names, not a column of the files.
        let columns = df
            .schema()
            .fields()
            .iter()
            .filter(|f| !partition_by.contains(f.name()))
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect();
        let mut parquet = TableParquetOptions::default();
        parquet.global.compression = Some("zstd(3)".to_string());
        // The writer holds a row group in memory until it is full; steps carry kilobytes of
        // configuration each, so a default-size row group of them is gigabytes. Small row
        // groups, written one at a time, keep an export's memory bounded.
        parquet.global.max_row_group_size = row_group_rows(table);
        parquet.global.allow_single_file_parallelism = false;
        for column in lookup_columns(table) {
            parquet.column_specific_options.insert(
                (*column).to_string(),
                ParquetColumnOptions {
                    bloom_filter_enabled: Some(true),
                    bloom_filter_fpp: Some(LOOKUP_FPP),
                    bloom_filter_ndv: Some(row_group_rows(table) as u64),
                    ..Default::default()
                },
            );
        }
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
            columns,
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

/// Registers the export in `dir` again in `ctx`, as it is now (a mirror brought up to date
/// while a session reads it): its tables are replaced, the rest of the session stays.
pub async fn reregister_export(ctx: &SessionContext, dir: &Path) -> Result<Manifest> {
    let manifest = read_manifest(dir)?.ok_or_else(|| {
        DataFusionError::Plan(format!(
            "{} has no {MANIFEST}: not a runql export",
            dir.display()
        ))
    })?;
    let mut gone: Vec<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
    if let Some(schema) = ctx
        .catalog(&ctx.state().config().options().catalog.default_catalog)
        .and_then(|c| c.schema(&ctx.state().config().options().catalog.default_schema))
    {
        gone.extend(
            schema
                .table_names()
                .into_iter()
                .filter(|t| t.starts_with("__files_")),
        );
    }
    for table in gone {
        ctx.deregister_table(table.as_str())?;
    }
    register_tables(ctx, dir, &manifest, "").await?;
    Ok(manifest)
}

/// Columns computed when an export is read rather than stored: a run's position counted
/// from the end depends on rows other than its own (a new run makes every earlier run of
/// its pipeline one further from the end), and an incremental export keeps the rows of runs
/// that did not change. Counted from the rows the export holds, it stays exact. The count
/// is a join with the runs per pipeline, not a window over every run: a window made every
/// query on the table decode every row's every column first. (A step's position from the
/// end is stored: a run's steps are always written together.)
fn derived(table: &str, column: &str) -> Option<&'static str> {
    match (table, column) {
        // A run whose pipeline is gone keeps what the store said (eras count those apart).
        ("runs", "run_rindex") => Some(
            "CASE WHEN parts.pipeline_id IS NULL THEN parts.run_rindex \
             ELSE parts.run_index - counted.runs END",
        ),
        _ => None,
    }
}

/// A table's rows (`parts`) with what its derived columns join: `counted`, for runs. The
/// counts (a row per pipeline) come first, as the join's build side: built on the runs,
/// the join held every run with its configuration in memory (170 MB for a `SELECT *` of
/// 100k runs).
fn derived_from(table: &str, parts: &str) -> String {
    match table {
        "runs" => format!(
            "(SELECT pipeline_id, count(*) AS runs FROM ({parts}) AS p GROUP BY pipeline_id) \
             AS counted RIGHT JOIN ({parts}) AS parts ON counted.pipeline_id = parts.pipeline_id"
        ),
        _ => format!("({parts}) AS parts"),
    }
}

/// Registers each table of the export in `dir` as the view `<prefix><table>`: its base
/// files and the change sets holding it, each part without the rows later change sets
/// replace.
pub(crate) async fn register_tables(
    ctx: &SessionContext,
    dir: &Path,
    manifest: &Manifest,
    prefix: &str,
) -> Result<()> {
    let summaries: HashMap<&str, &TableSummary> = manifest
        .tables
        .iter()
        .map(|t| (t.table.as_str(), t))
        .collect();
    for def in TABLES {
        let Some(summary) = summaries.get(def.name) else {
            continue;
        };
        // (files, what the manifest says of them, change sets after this part)
        let mut parts = vec![(dir.join(def.name), *summary, &manifest.changes[..])];
        for (i, change) in manifest.changes.iter().enumerate() {
            let written = change.tables.iter().find(|t| t.table == def.name);
            // A change set without rows of this table still replaces earlier rows.
            if let Some(written) = written.filter(|t| t.rows > 0) {
                parts.push((
                    dir.join(&change.dir).join(def.name),
                    written,
                    &manifest.changes[i + 1..],
                ));
            }
        }
        let mut selects = Vec::with_capacity(parts.len());
        for (i, (files, summary, later)) in parts.into_iter().enumerate() {
            let keep = match kept(def.name, later) {
                Kept::None => continue,
                Kept::All => String::new(),
                Kept::Where(condition) => format!(" WHERE {condition}"),
            };
            let raw = format!("__files_{prefix}{}_{i}", def.name);
            register_part(ctx, &raw, &files, summary).await?;
            // An export written by an older runql lacks the columns added since: they read
            // as NULL, as a ZenML release that does not record a column does.
            let written = ctx.table(raw.as_str()).await?.schema().clone();
            let columns: Vec<String> = def
                .columns
                .iter()
                .map(|c| {
                    if written.has_column_with_unqualified_name(c.name) {
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
            selects.push(format!("SELECT {} FROM {raw}{keep}", columns.join(", ")));
        }
        let columns: Vec<String> = def
            .columns
            .iter()
            .map(|c| match derived(def.name, c.name) {
                Some(expr) => format!("{expr} AS \"{}\"", c.name),
                None => format!("parts.\"{}\" AS \"{}\"", c.name, c.name),
            })
            .collect();
        let parts = selects.join(" UNION ALL ");
        ctx.sql(&format!(
            "CREATE VIEW {prefix}{} AS SELECT {} FROM {}",
            def.name,
            columns.join(", "),
            derived_from(def.name, &parts)
        ))
        .await?;
    }
    Ok(())
}

/// Registers one part of a table (its base files or a change set's) as the table `name`.
/// When the manifest records the part's columns, they are its schema, as DataFusion would
/// infer it from the files (text as views when the session reads Parquet so); otherwise
/// every file's footer is read to infer it. Recorded columns spare a query that does not
/// touch a table the reading of its footers: most of a short query's time on a large mirror.
async fn register_part(
    ctx: &SessionContext,
    name: &str,
    files: &Path,
    summary: &TableSummary,
) -> Result<()> {
    let mut read = ParquetReadOptions::default();
    if let Some(col) = &summary.partition {
        read = read.table_partition_cols(vec![(col.clone(), DataType::Utf8)]);
    }
    let path = format!("{}/", files.display());
    let Some(schema) = recorded_schema(&summary.columns) else {
        return ctx.register_parquet(name, &path, read).await;
    };
    // Read in place: `ctx.state()` would clone the whole session state for every part.
    let views = ctx
        .state_ref()
        .read()
        .config_options()
        .execution
        .parquet
        .schema_force_view_types;
    let schema = if views {
        transform_schema_to_view(&schema)
    } else {
        schema
    };
    let options = read.to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
    ctx.register_listing_table(name, &path, options, Some(Arc::new(schema)), None)
        .await
}

/// The schema a manifest's `columns` record, if it records one runql can read.
fn recorded_schema(columns: &[(String, String)]) -> Option<Schema> {
    if columns.is_empty() {
        return None;
    }
    let fields = columns
        .iter()
        .map(|(name, kind)| Some(Field::new(name, kind.parse::<DataType>().ok()?, true)))
        .collect::<Option<Vec<_>>>()?;
    Some(Schema::new(fields))
}

/// Which rows of a part of `table` a reader sees, given the change sets written after it.
enum Kept {
    All,
    None,
    Where(String),
}

fn kept(table: &str, later: &[ChangeSet]) -> Kept {
    if later.is_empty() {
        return Kept::All;
    }
    if table == "pipelines" {
        return if later
            .iter()
            .any(|c| c.tables.iter().any(|t| t.table == "pipelines"))
        {
            Kept::None
        } else {
            Kept::All
        };
    }
    let (column, ids): (&str, Vec<String>) = if table == "metadata" {
        (
            "resource_id",
            later.iter().flat_map(|c| c.resources.clone()).collect(),
        )
    } else {
        (
            "run_id",
            later.iter().flat_map(|c| c.runs.clone()).collect(),
        )
    };
    if ids.is_empty() {
        return Kept::All;
    }
    Kept::Where(format!(
        "{column} IS NULL OR {column} NOT IN ({})",
        id_list(&ids)
    ))
}

#[cfg(test)]
mod tests {
    use super::later;

    #[test]
    fn watermarks_compare_as_times() {
        let mark = |s: &str| Some(s.to_string());
        assert_eq!(
            later(mark("2026-01-01T00:00:47Z"), mark("2026-01-01T00:00:47.5Z")),
            mark("2026-01-01T00:00:47.5Z")
        );
        assert_eq!(
            later(None, mark("2026-01-01T00:00:01Z")),
            mark("2026-01-01T00:00:01Z")
        );
    }
}
