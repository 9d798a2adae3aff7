//! A ZenML server's local mirror: the six tables of the server's runs, kept in an export
//! folder (`crate::export`'s format and writer) and brought up to date before each use.
//!
//! What a query sees is the mirror as the last sync left it: a sync reads the server's
//! runs changed since the previous one (`updated >= watermark`, whole seconds, a few
//! seconds early and de-duplicated by id), every run the previous sync saw unfinished (a
//! running run's steps change while the run's own `updated` may not), the steps, outputs,
//! inputs and metadata of those runs, and all pipelines. Runs deleted on the server are
//! found exactly: when the server's run count differs from the mirror's, the server's run
//! ids are listed and compared. The changed runs' rows are appended as a change set
//! (`crate::export::ChangeSet`; the folder is written whole again after a deletion), and the
//! manifest, renamed into place last, makes the sync visible, so an interrupted sync (Ctrl-C,
//! a dropped connection, a server error) leaves the previous mirror as it was. One sync at a
//! time per mirror: a lock file serialises them. `local` gives SQLite and MySQL stores the
//! same mirror.
//!
//! Columns that depend on other rows are computed here in SQL over all the mirror's runs
//! (run counts, positions, whether a run was all cached); `runs.run_rindex` is computed
//! when the folder is read (see `export::register_tables`).

pub mod local;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde_json::Value;

use crate::error::StoreError;
use crate::export::{
    FINISHED, Listed, Manifest, PIPELINES_FROM_RUNS, Selection, append_changes, held, id_list,
    previous_resources, read_manifest, register_tables, remove_stale_staging, strings, table_query,
    write_folder, write_manifest,
};
use crate::store::rest::{RestClient, ServerAddress, rows};
use crate::tables::TABLES;

/// The oldest ZenML server release runql reads, and the ones its tests read.
pub const OLDEST_SERVER: (u32, u32, u32) = (0, 84, 0);
pub const VERIFIED_SERVERS: &[&str] = &["0.84.3", "0.93.2", "0.98.0"];

/// Whether runql's tests read servers of this release.
pub fn verified(version: &str) -> bool {
    VERIFIED_SERVERS.contains(&version)
}

/// Items per page: hydrated steps carry their source code and configuration, so pages of
/// them are kept to a few megabytes; a hydrated artifact version costs the server most (a
/// page of 1,000 took over two minutes on a 10k-run server), so its pages are small.
const RUNS_PAGE: u64 = 500;
const STEPS_PAGE: u64 = 500;
const ARTIFACTS_PAGE: u64 = 200;
const PIPELINES_PAGE: u64 = 1000;
/// Non-hydrated lists (ids only are used): the API's largest page.
const IDS_PAGE: u64 = 10_000;
/// How far before the newest `updated` the next sync starts: the API filters on whole
/// seconds, and a change committed just after a read may carry an earlier time.
const WATERMARK_SLACK_S: i64 = 2;

/// What a sync is doing, for a progress display.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    pub what: &'a str,
    pub done: u64,
    /// 0 when not known.
    pub total: u64,
}

/// The folder a server's mirror lives in: `<cache>/mirrors/<host>_<port>`.
pub fn default_dir(server: &ServerAddress) -> PathBuf {
    // A path below the host keeps two servers on one host apart.
    let mut name = server.host_port();
    let url = server.to_string();
    if let Some(path) = url.splitn(4, '/').nth(3).filter(|p| !p.is_empty()) {
        name.push('_');
        name.push_str(&path.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
    }
    mirrors_dir().join(name)
}

/// Where mirrors live: `$RUNQL_CACHE_DIR/mirrors`, with `RUNQL_CACHE_DIR` defaulting to
/// `$XDG_CACHE_HOME/runql`, then `~/.cache/runql`.
fn mirrors_dir() -> PathBuf {
    let base = std::env::var_os("RUNQL_CACHE_DIR")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .filter(|s| !s.is_empty())
                .map(|d| PathBuf::from(d).join("runql"))
        })
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|s| !s.is_empty())
                .map(|h| PathBuf::from(h).join(".cache").join("runql"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("runql"));
    base.join("mirrors")
}

/// The mirror's manifest, if it has one (for `--info` and `--offline`).
pub fn last_sync(dir: &Path) -> Result<Option<Manifest>> {
    read_manifest(dir)
}

fn version_tuple(version: &str) -> Option<(u32, u32, u32)> {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// Whether runql reads this server release (whether its tests do is `verified`).
fn check_release(server: &ServerAddress, version: &str) -> Result<()> {
    match version_tuple(version) {
        Some(v) if v >= OLDEST_SERVER => Ok(()),
        _ => Err(StoreError::UnsupportedServer {
            server: server.to_string(),
            version: version.to_string(),
            oldest: format!(
                "{}.{}.{}",
                OLDEST_SERVER.0, OLDEST_SERVER.1, OLDEST_SERVER.2
            ),
            verified: VERIFIED_SERVERS.join(", "),
        }
        .into()),
    }
}

/// Fresh rows read from the server, streamed to Parquet files in a spill folder as the
/// pages arrive (a first fill of a large server does not fit in memory), with the ids a
/// sync needs to know.
struct Fresh {
    spill: Spill,
    run_ids: BTreeSet<String>,
    /// Steps seen (a page boundary that moved can show one twice).
    step_ids: HashSet<u128>,
    /// Each run's steps so far: steps arrive in ZenML's order (creation, then id), so
    /// this count is the next step's position in its run.
    steps_per_run: HashMap<String, i64>,
    /// The outputs the fresh steps list, when their metadata is asked for by id (not on a
    /// first fill, which reads every artifact version's).
    output_ids: Option<BTreeSet<String>>,
    /// Artifact versions whose metadata was read (a page boundary that moved can show one
    /// twice). Runs and steps are told apart by `run_ids` and `step_ids` already: on a
    /// first fill of 100k runs, a set of every resource was 70 MB of the peak.
    versions_seen: HashSet<u128>,
    newest_update: Option<i64>,
    /// The fresh runs' rows, kept in memory by a sync of changes (a few runs) to decide,
    /// before any step is read, whether anything changed at all.
    runs_kept: Option<Vec<RecordBatch>>,
}

/// A ZenML id (a UUID, dashed or not) as a number, for compact sets.
fn id_number(id: &str) -> Option<u128> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    (hex.len() == 32).then(|| u128::from_str_radix(&hex, 16).ok())?
}

impl Fresh {
    fn new(spill_dir: &Path, full: bool) -> Result<Self> {
        Ok(Self {
            spill: Spill::new(spill_dir)?,
            run_ids: BTreeSet::new(),
            step_ids: HashSet::new(),
            steps_per_run: HashMap::new(),
            output_ids: (!full).then(BTreeSet::new),
            versions_seen: HashSet::new(),
            newest_update: None,
            runs_kept: (!full).then(Vec::new),
        })
    }

    fn add_runs(&mut self, items: &[Value]) -> Result<()> {
        let mut rows = Vec::with_capacity(items.len());
        let mut metadata = Vec::new();
        for item in items {
            let Some(id) = item["id"].as_str() else {
                continue;
            };
            // A run seen twice (a page boundary moved, or both change lists hold it): the
            // first copy stands; both are the same run at nearly the same moment.
            if !self.run_ids.insert(id.to_string()) {
                continue;
            }
            let row = rows::run(item);
            if let Some(t) = row["updated"].as_str().and_then(parse_micros) {
                self.newest_update = Some(self.newest_update.map_or(t, |n| n.max(t)));
            }
            rows.push(row);
            metadata.extend(rows::metadata("run", item));
        }
        if let Some(kept) = self.runs_kept.as_mut().filter(|_| !rows.is_empty()) {
            let batch = rows::batch("runs", &rows)?;
            self.spill.write_batch("runs", &batch)?;
            kept.push(batch);
        } else {
            self.spill.write("runs", &rows)?;
        }
        self.spill.write("metadata", &metadata)
    }

    /// Registers the fresh runs read so far as `table` (a sync of changes only).
    fn register_runs(&mut self, ctx: &SessionContext, table: &str) -> Result<()> {
        let batches = self.runs_kept.take().unwrap_or_default();
        ctx.register_table(
            table,
            Arc::new(MemTable::try_new(rows::schema("runs"), vec![batches])?),
        )?;
        Ok(())
    }

    /// Steps of the runs in `self.run_ids`, in ZenML's order.
    fn add_steps(&mut self, items: &[Value]) -> Result<()> {
        let (mut steps, mut outputs, mut inputs, mut metadata) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for item in items {
            let Some(id) = item["id"].as_str().and_then(id_number) else {
                continue;
            };
            let mut row = rows::step(item);
            let run = row["run_id"].as_str().unwrap_or_default().to_string();
            if !self.run_ids.contains(&run) || !self.step_ids.insert(id) {
                continue;
            }
            let position = self.steps_per_run.entry(run).or_insert(0);
            row["step_index"] = Value::from(*position);
            *position += 1;
            steps.push(row);
            for output in rows::outputs(item) {
                if let (Some(ids), Some(id)) =
                    (self.output_ids.as_mut(), output["output_id"].as_str())
                {
                    ids.insert(id.to_string());
                }
                outputs.push(output);
            }
            inputs.extend(rows::inputs(item));
            metadata.extend(rows::metadata("step", item));
        }
        self.spill.write("steps", &steps)?;
        self.spill.write("outputs", &outputs)?;
        self.spill.write("inputs", &inputs)?;
        self.spill.write("metadata", &metadata)
    }

    fn add_artifact_versions(&mut self, items: &[Value]) -> Result<()> {
        let mut metadata = Vec::new();
        for item in items {
            let Some(id) = item["id"].as_str().and_then(id_number) else {
                continue;
            };
            if self.versions_seen.insert(id) {
                metadata.extend(rows::metadata("output", item));
            }
        }
        self.spill.write("metadata", &metadata)
    }

    /// Frees what only the reading needed, before the tables are written (a first fill
    /// writes 100k runs' tables with them otherwise still held).
    fn done_reading(&mut self) {
        self.versions_seen = HashSet::new();
        self.steps_per_run = HashMap::new();
        if self.output_ids.is_none() {
            // A first fill: the folder is written whole, not listed by id.
            self.step_ids = HashSet::new();
            // Only a whole folder's write is large enough to matter; an incremental sync
            // (every one-shot command's) does not pay for the trim.
            release_freed_memory();
        }
    }

    /// The fresh steps' ids, dashed as the tables show them.
    fn step_id_strings(&self) -> Vec<String> {
        self.step_ids
            .iter()
            .filter_map(|n| crate::tables::dashed_id(&format!("{n:032x}")))
            .collect()
    }
}

/// Hands memory the process has freed back to the system. glibc keeps what one thread
/// frees in that thread's arena, and allocations on another thread do not reuse it: the
/// pages and sets the reading freed stayed resident under the tables' writing, which runs
/// on other threads (a first fill of a 100k-run server peaked at 330 MB at its end).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: glibc's malloc_trim only returns free memory to the system; it takes
        // no pointer and may be called at any time from any thread.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Parquet files of fresh rows, one per table, in a folder removed when the sync ends
/// (or by the next sync, if this one was killed: the name marks it as staging).
struct Spill {
    dir: PathBuf,
    writers: Vec<(&'static str, ArrowWriter<std::fs::File>)>,
}

/// Rows a spill writer holds before writing them out: five writers hold a row group each
/// while pages arrive, and a step's row is kilobytes.
const SPILL_ROW_GROUP: usize = 1024;

impl Spill {
    fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(SPILL_ROW_GROUP))
            // Read once, whole and in order: a dictionary per column, and the min and max of
            // every page and row group (kept until the file is closed; a step's source code
            // is its own min and max), would only hold memory.
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::None)
            .build();
        let mut writers = Vec::new();
        for table in FRESH_TABLES {
            let file = std::fs::File::create(dir.join(format!("{table}.parquet")))?;
            writers.push((
                table,
                ArrowWriter::try_new(file, rows::schema(table), Some(props.clone()))?,
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            writers,
        })
    }

    fn write(&mut self, table: &str, rows: &[Value]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write_batch(table, &rows::batch(table, rows)?)
    }

    fn write_batch(&mut self, table: &str, batch: &RecordBatch) -> Result<()> {
        let (_, writer) = self
            .writers
            .iter_mut()
            .find(|(t, _)| *t == table)
            .expect("a spilled table");
        writer.write(batch)?;
        Ok(())
    }

    /// Closes the files and registers them as `__fresh_<table>`.
    async fn register(&mut self, ctx: &SessionContext) -> Result<()> {
        for (table, writer) in std::mem::take(&mut self.writers) {
            writer.close()?;
            let path = self.dir.join(format!("{table}.parquet"));
            ctx.register_parquet(
                format!("__fresh_{table}"),
                path.display().to_string(),
                ParquetReadOptions::default(),
            )
            .await?;
        }
        Ok(())
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The tables a sync reads fresh rows of (pipelines are few and read whole).
const FRESH_TABLES: [&str; 5] = ["runs", "steps", "outputs", "inputs", "metadata"];

fn parse_micros(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// How much of the server a sync reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// What changed since the last sync (everything, the first time).
    Changes,
    /// Everything, as a first fill does: also what a sync cannot see change (tags and
    /// metadata attached to a run after it finished).
    Full,
}

/// Brings the mirror in `dir` up to date with the server (filling it the first time) and
/// returns its new manifest. `progress` hears what is being read.
pub async fn sync(
    client: &RestClient,
    dir: &Path,
    how: Sync,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<Manifest> {
    create_private_dir(dir)?;
    let lock = std::fs::File::create(dir.join(".lock"))?;
    lock.lock()?;
    remove_stale_staging(dir)?;

    let server = client.address().to_string();
    let previous = read_manifest(dir)?;
    if let Some(p) = &previous
        && p.store != server
    {
        return Err(DataFusionError::Plan(format!(
            "{} holds a mirror of {}, not {server}",
            dir.display(),
            p.store
        )));
    }
    // A full read starts over; the previous mirror stays until the new one is complete.
    let previous = previous.filter(|_| how == Sync::Changes);
    // A join's build side (held in memory whole) is the side its SQL names first: the
    // queries below put the few narrow rows there and stream the wide ones (steps with
    // their source code). Left to its statistics, DataFusion built on every fresh step of
    // a 100k-run server (1.2 GB at the end of a first fill). One partition and batches of
    // 1,024 rows: a batch of steps is megabytes, and the write is the fill's peak.
    let mut config = datafusion::prelude::SessionConfig::new()
        .with_batch_size(1024)
        .with_target_partitions(1);
    config.options_mut().optimizer.join_reordering = false;
    let ctx = SessionContext::new_with_config(config);
    if let Some(p) = &previous {
        register_tables(&ctx, dir, p, "__prev_").await?;
    }
    let hydrate = ("hydrate", "true".to_string());
    let full = previous.is_none();
    let mut fresh = Fresh::new(
        &dir.join(format!(".runql-staging-fresh-{}", std::process::id())),
        full,
    )?;

    let by_creation = ("sort_by", "asc:created".to_string());
    let hydrated = [hydrate.clone()];
    let hydrated_by_creation = [hydrate.clone(), by_creation.clone()];

    // How many runs the mirror holds (its manifest's count).
    let mirrored = previous.as_ref().and_then(|p| p.rows("runs"));

    // Runs: all of them the first time; after that, the changed and the unfinished.
    let (info, server_total, server_pipelines) = match previous
        .as_ref()
        .and_then(|p| p.watermark.clone())
    {
        None => {
            let info = client.info().await?;
            check_release(client.address(), &info.version)?;
            let all = Items::All { size: RUNS_PAGE };
            read(
                client,
                progress,
                "runs",
                "/runs",
                &hydrated_by_creation,
                all,
                &mut |page| fresh.add_runs(page),
            )
            .await?;
            (info, None, pipelines(client).await?)
        }
        Some(mark) => {
            // Most syncs find little, and their time is round trips, each with the
            // server's own cost (it checks the API key at every request): the
            // release, the changed runs and the server's run count are asked at once.
            // The changed runs are listed by id: `updated` has no index, and MySQL
            // then scans the table in key order (0.16 s at 100k runs) instead of
            // looking every run up through the creation index (0.53 s).
            let changed = [
                hydrate.clone(),
                ("updated", format!("gte:{mark}")),
                ("sort_by", "asc:id".to_string()),
            ];
            let mut add = |page: &[Value]| fresh.add_runs(page);
            let (info, listed, total) = tokio::join!(
                client.info(),
                read(
                    client,
                    progress,
                    "runs",
                    "/runs",
                    &changed,
                    Items::All { size: RUNS_PAGE },
                    &mut add,
                ),
                async {
                    if mirrored.is_none() {
                        return Ok(None);
                    }
                    client.page("/runs", &[], 1, 1).await.map(|p| Some(p.total))
                },
            );
            let info = info?;
            check_release(client.address(), &info.version)?;
            listed?;
            let total = total?;
            let unfinished: Vec<String> = strings(
                    &ctx,
                    &format!(
                        "SELECT run_id FROM __prev_runs WHERE status IS NULL OR status NOT IN ({FINISHED})"
                    ),
                )
                .await?
                .into_iter()
                .filter(|id| !fresh.run_ids.contains(id))
                .collect();
            let these = Items::OneOf {
                field: "id",
                ids: &unfinished,
            };
            let mut add = |page: &[Value]| fresh.add_runs(page);
            let (reread, server_pipelines) = tokio::join!(
                read(
                    client, progress, "runs", "/runs", &hydrated, these, &mut add
                ),
                pipelines(client),
            );
            reread?;
            (info, total, server_pipelines?)
        }
    };
    let pipelines = rows::pipelines_batch(&server_pipelines)?;
    drop(server_pipelines);
    ctx.register_table(
        "__store_pipelines",
        Arc::new(MemTable::try_new(
            pipelines.schema(),
            vec![vec![pipelines]],
        )?),
    )?;

    // Runs the mirror holds that the server lost, and runs it has that the mirror lacks:
    // only looked for when the counts say there are some.
    let mut deleted = Vec::new();
    // The fresh runs the mirror holds, when looked up.
    let mut in_previous: Option<Vec<String>> = None;
    if let (Some(mirrored), Some(server_total)) = (mirrored, server_total) {
        // The runs the mirror and this sync know of: the mirror's count (its manifest's)
        // and the fresh runs it does not hold, looked up by id (bloom filters) rather than
        // reading every run id the mirror holds.
        let fresh_ids: Vec<String> = fresh.run_ids.iter().cloned().collect();
        let held = held(&ctx, &fresh_ids).await?;
        let known = mirrored + (fresh_ids.len() - held.len()) as u64;
        in_previous = Some(held);
        if server_total != known {
            let previous_ids: BTreeSet<String> = strings(&ctx, "SELECT run_id FROM __prev_runs")
                .await?
                .into_iter()
                .collect();
            let mut ids = BTreeSet::new();
            let all = Items::All { size: IDS_PAGE };
            read(
                client,
                progress,
                "run ids",
                "/runs",
                &[],
                all,
                &mut |page| {
                    ids.extend(
                        page.iter()
                            .filter_map(|i| i["id"].as_str().map(str::to_string)),
                    );
                    Ok(())
                },
            )
            .await?;
            deleted = previous_ids.difference(&ids).cloned().collect::<Vec<_>>();
            let mut missing: Vec<String> = ids
                .iter()
                .filter(|id| !previous_ids.contains(*id) && !fresh.run_ids.contains(*id))
                .cloned()
                .collect();
            // Deleting a run changes runs it does not hold: the server forgets the steps a
            // cached step of another run reused (`original_step_id` becomes NULL there),
            // while that run's own `updated` stays. Those runs are read again.
            if !deleted.is_empty() {
                let reusing = strings(
                    &ctx,
                    &format!(
                        "SELECT DISTINCT s.run_id FROM __prev_steps o JOIN __prev_steps s \
                         ON o.step_id = s.original_step_id WHERE o.run_id IN ({})",
                        id_list(&deleted)
                    ),
                )
                .await?;
                missing.extend(
                    reusing
                        .into_iter()
                        .filter(|id| ids.contains(id) && !fresh.run_ids.contains(id)),
                );
            }
            let these = Items::OneOf {
                field: "id",
                ids: &missing,
            };
            read(
                client,
                progress,
                "runs",
                "/runs",
                &hydrated,
                these,
                &mut |page| fresh.add_runs(page),
            )
            .await?;
        }
    }

    // Nothing changed: the tables stay as they are (rewriting them costs seconds on a large
    // mirror, at every start); only the manifest says when the mirror was last checked.
    // Decided from the runs alone, before their steps are read: the runs read again (the
    // watermark's slack reads the newest at every sync) are finished and as the mirror
    // holds them, and a finished run's steps are what the mirror has.
    // Those runs are left out of what follows (their rows stay the mirror's), unless a run
    // was deleted: then runs whose `updated` did not move changed too (see above).
    if let Some(p) = &previous
        && deleted.is_empty()
    {
        fresh.register_runs(&ctx, "__reread_runs")?;
        let unchanged = runs_as_they_were(&ctx).await?;
        if unchanged.len() == fresh.run_ids.len() && same_pipelines(&ctx).await? {
            let checked = Manifest {
                zenml_version: info.version.clone(),
                exported_at: chrono::Utc::now().to_rfc3339(),
                runs_read: 0,
                ..p.clone()
            };
            write_manifest(dir, &fresh.spill.dir, &checked)?;
            return Ok(checked);
        }
        for id in &unchanged {
            fresh.run_ids.remove(id);
        }
    }

    // Steps of those runs, with their outputs and inputs, in ZenML's order.
    let wanted: Vec<String> = fresh.run_ids.iter().cloned().collect();
    let steps = if full {
        Items::All { size: STEPS_PAGE }
    } else {
        Items::OneOf {
            field: "pipeline_run_id",
            ids: &wanted,
        }
    };
    read(
        client,
        progress,
        "steps",
        "/steps",
        &hydrated_by_creation,
        steps,
        &mut |page| fresh.add_steps(page),
    )
    .await?;

    // The outputs' metadata: every artifact version's the first time (as a store lists
    // metadata of versions no step lists), the new outputs' after that.
    let mut asked: Vec<String> = fresh.output_ids.iter().flatten().cloned().collect();
    // A deleted run's artifact versions outlive it on the server, with their metadata
    // (a store lists it as well): ask again for those the mirror drops with the run.
    if !deleted.is_empty() {
        asked.extend(
            strings(
                &ctx,
                &format!(
                    "SELECT DISTINCT output_id FROM __prev_outputs WHERE run_id IN ({})",
                    id_list(&deleted)
                ),
            )
            .await?,
        );
        asked.sort();
        asked.dedup();
    }
    let versions = if full {
        Items::All {
            size: ARTIFACTS_PAGE,
        }
    } else {
        Items::OneOf {
            field: "id",
            ids: &asked,
        }
    };
    read(
        client,
        progress,
        "artifact versions",
        "/artifact_versions",
        &hydrated,
        versions,
        &mut |page| fresh.add_artifact_versions(page),
    )
    .await?;

    fresh.done_reading();
    let runs_read = fresh.run_ids.len() as u64;
    let watermark = fresh
        .newest_update
        .map(|t| {
            let t = t / 1_000_000 - WATERMARK_SLACK_S;
            chrono::DateTime::from_timestamp(t, 0)
                .unwrap_or_default()
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .or_else(|| previous.as_ref().and_then(|p| p.watermark.clone()));
    // ZenML numbers runs from 0.93 (`pipeline_run.index`).
    let has_index = version_tuple(&info.version).is_some_and(|v| v >= (0, 93, 0));
    register_fresh(&ctx, &mut fresh).await?;

    // What the new folder holds: fresh rows of the listed runs, the previous rows of the rest.
    let previous_tables: Vec<String> = previous
        .iter()
        .flat_map(|p| p.tables.iter().map(|t| t.table.clone()))
        .collect();
    // The listed runs the mirror holds: the fresh ones it held (less those left out above)
    // and the deleted. Only their steps and outputs are looked for there.
    let in_previous: Option<Vec<String>> = in_previous.map(|held| {
        held.into_iter()
            .filter(|id| fresh.run_ids.contains(id))
            .chain(deleted.iter().cloned())
            .collect()
    });
    let selection = if full {
        Selection::All
    } else {
        let mut runs: Vec<String> = fresh.run_ids.iter().cloned().collect();
        runs.extend(deleted.iter().cloned());
        runs.sort();
        runs.dedup();
        let mut resources: BTreeSet<String> = runs.iter().cloned().collect();
        resources.extend(fresh.step_id_strings());
        resources.extend(fresh.output_ids.iter().flatten().cloned());
        let held = in_previous.as_deref().unwrap_or(&runs);
        resources.extend(previous_resources(&ctx, &previous_tables, held).await?);
        Selection::Listed {
            runs,
            resources: resources.into_iter().collect(),
        }
    };
    let merged = |table: &str| {
        table_query(
            table,
            &selection,
            previous_tables.iter().any(|t| t == table),
        )
    };
    ctx.sql(&format!("CREATE VIEW __merged_runs AS {}", merged("runs")))
        .await?;
    let numbered = numbered_runs(has_index);
    ctx.sql(&format!("CREATE VIEW __numbered_runs AS {numbered}"))
        .await?;
    ctx.sql(&format!("CREATE VIEW pipelines AS {PIPELINES_FROM_RUNS}"))
        .await?;

    let rows = |table: &str| match table {
        "pipelines" => "SELECT * FROM pipelines".to_string(),
        "runs" => "SELECT * FROM __numbered_runs".to_string(),
        other => merged(other),
    };
    let tables: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    let mut writing = |table: &str| {
        progress(Progress {
            what: table,
            done: 0,
            total: 0,
        })
    };
    let made = Manifest {
        runql_version: env!("CARGO_PKG_VERSION").to_string(),
        store: server.clone(),
        zenml_version: info.version.clone(),
        exported_at: chrono::Utc::now().to_rfc3339(),
        since: None,
        partition_by: None,
        watermark,
        runs_read,
        tables: Vec::new(),
        changes: Vec::new(),
        source_mark: None,
    };
    // Changed runs are appended as a change set; a deleted run renumbers the runs after it
    // (before 0.93 the mirror numbers them), so then every table is written again.
    if let (Some(previous), Selection::Listed { runs, resources }) = (&previous, &selection)
        && deleted.is_empty()
    {
        // Runs the mirror numbers (before 0.93) are numbered among all runs; ZenML's own
        // numbers come with the fresh runs, which are then written without reading the
        // mirror's.
        let fresh = |table: &str| match table {
            "runs" if !has_index => "__numbered_runs".to_string(),
            other => other.to_string(),
        };
        let appended = append_changes(
            &ctx,
            dir,
            previous,
            &tables,
            Listed {
                runs,
                resources,
                in_previous: in_previous.as_deref(),
            },
            &fresh,
            &mut writing,
            &made,
        )
        .await?;
        if let Some(manifest) = appended {
            return Ok(manifest);
        }
    }
    write_folder(&ctx, dir, &tables, None, &rows, &mut writing, |tables| {
        Manifest { tables, ..made }
    })
    .await
}

/// The runs read again (`__reread_runs`) that are finished and as the mirror holds them:
/// the watermark's slack reads the newest runs at every sync, mostly unchanged.
async fn runs_as_they_were(ctx: &SessionContext) -> Result<Vec<String>> {
    strings(
        ctx,
        &format!(
            "SELECT f.run_id FROM __reread_runs f JOIN __prev_runs p \
             ON p.run_id = f.run_id AND p.updated = f.updated AND p.status = f.status \
             WHERE f.status IN ({FINISHED})"
        ),
    )
    .await
}

/// Whether the server's pipelines are the mirror's (their own columns; their counts come
/// from runs, which did not change).
async fn same_pipelines(ctx: &SessionContext) -> Result<bool> {
    let columns = "pipeline_id, pipeline_name, created, description";
    let differing = strings(
        ctx,
        &format!(
            "SELECT CAST(count(*) AS VARCHAR) FROM (\
             (SELECT {columns} FROM __store_pipelines EXCEPT SELECT {columns} FROM __prev_pipelines) \
             UNION ALL \
             (SELECT {columns} FROM __prev_pipelines EXCEPT SELECT {columns} FROM __store_pipelines))"
        ),
    )
    .await?;
    Ok(differing.first().is_some_and(|n| n == "0"))
}

/// The server's pipelines, as rows: few, always read whole (a pipeline can change without
/// a run).
async fn pipelines(client: &RestClient) -> Result<Vec<Value>> {
    let mut rows = Vec::new();
    let all = Items::All {
        size: PIPELINES_PAGE,
    };
    read(
        client,
        &mut |_| {},
        "pipelines",
        "/pipelines",
        &[("hydrate", "true".to_string())],
        all,
        &mut |page| {
            rows.extend(page.iter().map(rows::pipeline));
            Ok(())
        },
    )
    .await?;
    Ok(rows)
}

/// Which items of a list to read.
enum Items<'a> {
    All {
        size: u64,
    },
    /// Those whose `field` is one of `ids`.
    OneOf {
        field: &'static str,
        ids: &'a [String],
    },
}

/// Reads `items` of the list at `path`, handing each page to `on_page` and telling
/// `progress` how many of `what` have been read.
async fn read(
    client: &RestClient,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
    what: &str,
    path: &str,
    query: &[(&str, String)],
    items: Items<'_>,
    on_page: &mut (dyn FnMut(&[Value]) -> Result<()> + Send),
) -> Result<()> {
    let mut seen = 0u64;
    let mut pass = |page: Vec<Value>, total: u64| -> Result<()> {
        seen += page.len() as u64;
        progress(Progress {
            what,
            done: seen,
            total,
        });
        on_page(&page)
    };
    match items {
        Items::All { size } => client.list(path, query, size, &mut pass).await.map(|_| ()),
        Items::OneOf { field, ids } => {
            client
                .list_where_one_of(path, query, field, ids, &mut pass)
                .await
        }
    }
}

/// Registers the fresh rows (`__fresh_<table>`, `__store_pipelines`) and over them the
/// views `runs`, `steps`, `outputs`, `inputs` and `metadata` with the tables' columns.
async fn register_fresh(ctx: &SessionContext, fresh: &mut Fresh) -> Result<()> {
    fresh.spill.register(ctx).await?;
    for (table, sql) in [
        ("runs", FRESH_RUNS),
        ("steps", FRESH_STEPS),
        ("outputs", FRESH_OUTPUTS),
        ("inputs", FRESH_INPUTS),
        ("metadata", FRESH_METADATA),
    ] {
        ctx.sql(&format!("CREATE VIEW {table} AS {sql}")).await?;
    }
    Ok(())
}

/// Fresh runs with the columns their steps decide. `run_index` is ZenML's run number
/// where the server has one; `run_rindex` is recomputed when the folder is read.
const FRESH_RUNS: &str = "SELECT r.run_id, r.run_name, r.pipeline_id, r.pipeline_name, r.status, \
     r.status_reason, r.start_time, r.end_time, r.duration_s, \
     CAST(r.__index - 1 AS BIGINT) AS run_index, CAST(NULL AS BIGINT) AS run_rindex, \
     COALESCE(s.n > 0 AND s.not_cached = 0, false) AS is_cached, r.git_sha, r.tags, \
     r.parameters, r.config, r.created, r.updated, r.exception, r.pipeline_version \
     FROM (SELECT run_id, COUNT(*) AS n, \
     SUM(CASE WHEN status = 'cached' THEN 0 ELSE 1 END) AS not_cached \
     FROM __fresh_steps GROUP BY run_id) s RIGHT JOIN __fresh_runs r ON s.run_id = r.run_id";

/// Fresh steps of fresh runs (numbered as they arrived: in ZenML's order; every step of a
/// fresh run is fresh, so its position from the end is counted here). The count per run is
/// a join with an aggregate, not a window: a window sorts every step with its source code
/// and configuration in memory, which is gigabytes on a first fill of a large server. The
/// runs' names and step counts (a few columns per run) are the join's build side, and the
/// steps stream past them.
const FRESH_STEPS: &str = "SELECT s.step_id, s.step_name, s.entrypoint, s.run_id, rc.run_name, \
     rc.pipeline_name, s.status, s.is_cached, s.original_step_id, s.start_time, s.end_time, \
     s.duration_s, s.step_index, s.step_index - rc.n AS step_rindex, \
     s.parameters, s.config, s.cache_key, s.code_hash, \
     s.docstring, s.source_code, s.exception \
     FROM (SELECT r.run_id, r.run_name, r.pipeline_name, c.n FROM __fresh_runs r \
     JOIN (SELECT run_id, COUNT(*) AS n FROM __fresh_steps GROUP BY run_id) c \
     ON c.run_id = r.run_id) rc JOIN __fresh_steps s ON s.run_id = rc.run_id";

const FRESH_OUTPUTS: &str = "SELECT o.output_id, o.output_name, o.step_id, o.step_name, \
     o.run_id, r.run_name, r.pipeline_name, o.artifact_name, o.artifact_version, \
     o.artifact_type, o.data_type, o.materializer, o.uri, o.content_hash, o.created \
     FROM __fresh_runs r JOIN __fresh_outputs o ON r.run_id = o.run_id";

const FRESH_INPUTS: &str = "SELECT i.step_id, i.step_name, i.run_id, i.input_name, i.output_id, \
     i.input_type FROM __fresh_runs r JOIN __fresh_inputs i ON r.run_id = i.run_id";

const FRESH_METADATA: &str = "SELECT * FROM __fresh_metadata";

/// The runs to write: merged, and numbered by creation when the server has no run
/// numbers (as the SQL mappings of releases before 0.93 number them).
fn numbered_runs(has_index: bool) -> String {
    if has_index {
        return "SELECT * FROM __merged_runs".to_string();
    }
    let columns: Vec<String> = crate::tables::table_def("runs")
        .expect("runs")
        .columns
        .iter()
        .map(|c| match c.name {
            "run_index" => "CAST(ROW_NUMBER() OVER (PARTITION BY pipeline_id ORDER BY created, run_id) - 1 AS BIGINT) AS run_index".to_string(),
            name => format!("\"{name}\""),
        })
        .collect();
    format!("SELECT {} FROM __merged_runs", columns.join(", "))
}

/// The mirror holds what the user's runs say: readable by the user only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Row counts of the mirror's tables, for `--info`.
pub fn table_rows(manifest: &Manifest) -> HashMap<String, u64> {
    manifest
        .tables
        .iter()
        .map(|t| (t.table.clone(), t.rows))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        assert_eq!(version_tuple("0.98.0"), Some((0, 98, 0)));
        assert_eq!(version_tuple("0.94.6rc1"), Some((0, 94, 6)));
        let server = ServerAddress::parse("http://127.0.0.1:1").unwrap();
        assert!(check_release(&server, "0.60.0").is_err());
        assert!(check_release(&server, "0.98.0").is_ok());
        assert!(verified("0.98.0") && !verified("0.99.0"));
    }

    #[test]
    fn mirror_folders_are_per_server() {
        let a = default_dir(&ServerAddress::parse("https://zen.example.com").unwrap());
        let b = default_dir(&ServerAddress::parse("https://zen.example.com/team-b").unwrap());
        assert_ne!(a, b);
        assert!(
            a.ends_with("mirrors/zen.example.com_443"),
            "{}",
            a.display()
        );
    }
}
