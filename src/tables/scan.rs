//! One scan of a runql table: the SQL query it runs and the stream of batches it yields.
//!
//! What a scan sees: each scan opens its own read-only connection and reads in one read
//! transaction (SQLite's, or MySQL's `WITH CONSISTENT SNAPSHOT`), so it sees one consistent
//! snapshot of the store, taken when it starts. Two tables scanned in one query (a join) may
//! see snapshots a ZenML write apart.
//!
//! The query is written in SQLite's dialect; a MySQL store translates it (`store::mysql`).
//! Batches are built on a blocking thread and handed over a channel of two, so a scan holds
//! at most a few batches in memory however large the store; dropping the stream (LIMIT
//! reached, Ctrl-C) stops SQLite at its next row or progress callback, and has MySQL kill
//! the query.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::{Column, DynamicFilterPhysicalExpr};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation, PushedDown,
};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet, Time,
};
use datafusion::physical_plan::stream::{RecordBatchReceiverStream, RecordBatchStreamAdapter};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SortOrderPushdownResult,
};
use futures::TryStreamExt;
use rusqlite::types::Value;

use super::convert::ColumnBuilder;
use super::push_down::{self, Pushed, SortKey};
use super::{Kind, TableDef};
use crate::store::mysql::MysqlStore;
use crate::store::schema::TableSql;
use crate::store::{Backend, SqliteFile, ZenStore};

/// The SQLite query behind a scan, with its parameters.
#[derive(Debug, Clone)]
pub struct ScanQuery {
    pub sql: String,
    pub params: Vec<Value>,
    /// Projected columns, in output order.
    pub columns: Vec<(&'static str, Kind)>,
    /// The pushed filters, for EXPLAIN.
    pub filters: Vec<String>,
    /// The pushed sort, for EXPLAIN.
    pub order: Vec<String>,
    pub limit: Option<usize>,
}

impl ScanQuery {
    /// `SELECT <projection> FROM (SELECT <needed columns> FROM <ZenML tables>) WHERE <pushed>
    /// ORDER BY <order> LIMIT n`.
    ///
    /// The inner query computes each needed column once under its runql name, so pushed
    /// filters never depend on ZenML's schema; SQLite flattens it away unless a window
    /// column (computed over all rows, before filters) is needed.
    ///
    /// A sort with a LIMIT is materialized late when the table has a row key: SQLite first
    /// finds the keys of the first rows from the filter and sort columns alone, then computes
    /// the wide columns (tags, configs, source code, counts) for those rows only, rather than
    /// for every row it sorts (`SELECT * FROM runs ORDER BY start_time DESC LIMIT 3`). The
    /// outer query sorts and limits again, so a key that repeats still gives the first rows.
    pub fn build(
        def: &TableDef,
        sql: &TableSql,
        projection: &[usize],
        pushed: &[Pushed],
        order: &[SortKey],
        limit: Option<usize>,
    ) -> Self {
        let columns: Vec<(&'static str, Kind)> = projection
            .iter()
            .map(|&i| (def.columns[i].name, def.columns[i].kind))
            .collect();
        let mut needed: Vec<&'static str> = columns.iter().map(|(n, _)| *n).collect();
        let mut narrow: Vec<&'static str> = Vec::new();
        for c in pushed
            .iter()
            .flat_map(|p| p.columns.iter().copied())
            .chain(order.iter().map(|k| k.column))
        {
            for list in [&mut needed, &mut narrow] {
                if !list.contains(&c) {
                    list.push(c);
                }
            }
        }
        let outer_columns = if columns.is_empty() {
            "NULL".to_string()
        } else {
            columns
                .iter()
                .map(|(n, _)| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let filters: Vec<String> = pushed.iter().map(|p| format!("({})", p.sql)).collect();
        let mut tail = String::new();
        if !filters.is_empty() {
            tail.push_str(" WHERE ");
            tail.push_str(&filters.join(" AND "));
        }
        let mut sort = String::new();
        if !order.is_empty() {
            let keys: Vec<String> = order.iter().map(SortKey::sql).collect();
            sort = format!(" ORDER BY {}", keys.join(", "));
        }
        if let Some(n) = limit {
            sort.push_str(&format!(" LIMIT {n}"));
        }
        let params: Vec<Value> = pushed
            .iter()
            .flat_map(|p| p.params.iter().cloned())
            .collect();

        let query = if !sql.key.is_empty() && !order.is_empty() && limit.is_some() {
            let wide = inner_select(sql, &needed, sql.key, Rows::Few);
            let first = inner_select(sql, &narrow, sql.key, Rows::All);
            let keys: Vec<String> = (0..sql.key.len())
                .map(|i| format!("\"__key{i}\""))
                .collect();
            let on: Vec<String> = keys.iter().map(|k| format!("t.{k} = f.{k}")).collect();
            // The first rows' keys, a few rows SQLite materializes, drive the join: each
            // wide row is then found through the key's index. The key picks out one row
            // (`TableSql::key`), so no row the filters left out joins; DISTINCT keeps each
            // wide row once, and the outer sort and limit pick the first rows again.
            let keys = keys.join(", ");
            format!(
                "SELECT {outer_columns} FROM (SELECT DISTINCT {keys} FROM \
                 (SELECT {keys} FROM ({first}) AS k{tail}{sort}) AS d) AS f \
                 JOIN ({wide}) AS t ON {}{sort}",
                on.join(" AND ")
            )
        } else {
            let inner = inner_select(sql, &needed, &[], Rows::All);
            format!("SELECT {outer_columns} FROM ({inner}) AS t{tail}{sort}")
        };
        Self {
            sql: query,
            params,
            columns,
            filters: pushed.iter().map(describe).collect(),
            order: order.iter().map(SortKey::sql).collect(),
            limit,
        }
    }
}

/// How many rows an inner select computes its columns for: all, or the few a sorted,
/// limited scan keeps (joined to their keys), where columns use their per-row form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    All,
    Few,
}

/// `SELECT <columns under their runql names> FROM <ZenML tables and the joins they need>`,
/// with the row key's columns as `__key0`, `__key1`, ...
fn inner_select(sql: &TableSql, names: &[&'static str], key: &[&str], rows: Rows) -> String {
    let mut joins: Vec<&str> = Vec::new();
    let mut inner_columns = Vec::with_capacity(names.len() + key.len());
    for (i, column) in key.iter().enumerate() {
        inner_columns.push(format!("{column} AS \"__key{i}\""));
    }
    for name in names {
        match sql.column(name) {
            Some(c) => {
                let (expr, needs) = match (rows, c.per_row) {
                    (Rows::Few, Some(per_row)) => per_row,
                    _ => (c.expr, c.joins),
                };
                for j in needs {
                    add_join(sql, j, &mut joins);
                }
                inner_columns.push(format!("{expr} AS \"{name}\""));
            }
            // This ZenML era does not record the column: NULL, never made up.
            None => inner_columns.push(format!("NULL AS \"{name}\"")),
        }
    }
    if inner_columns.is_empty() {
        inner_columns.push("1 AS \"__row\"".to_string());
    }
    let mut inner = format!("SELECT {} FROM {}", inner_columns.join(", "), sql.from);
    for join in sql.joins.iter().filter(|j| joins.contains(&j.alias)) {
        inner.push(' ');
        inner.push_str(join.sql);
    }
    if let Some(filter) = sql.filter {
        inner.push_str(" WHERE ");
        inner.push_str(filter);
    }
    inner
}

/// A pushed filter with its parameters shown in place, for EXPLAIN (display only).
fn describe(p: &Pushed) -> String {
    let mut out = String::new();
    let mut params = p.params.iter();
    for ch in p.sql.chars() {
        if ch == '?' {
            match params.next() {
                Some(Value::Text(s)) => out.push_str(&format!("'{}'", s.replace('\'', "''"))),
                Some(Value::Integer(i)) => out.push_str(&i.to_string()),
                Some(Value::Real(f)) => out.push_str(&f.to_string()),
                Some(other) => out.push_str(&format!("{other:?}")),
                None => out.push('?'),
            }
        } else {
            out.push(ch);
        }
    }
    out
}

fn add_join<'a>(sql: &'a TableSql, alias: &'a str, joins: &mut Vec<&'a str>) {
    if joins.contains(&alias) {
        return;
    }
    if let Some(join) = sql.joins.iter().find(|j| j.alias == alias) {
        for need in join.needs {
            add_join(sql, need, joins);
        }
        joins.push(join.alias);
    }
}

/// What a scan reads, before run-time filters: enough to build its SQL again with them.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    pub def: &'static TableDef,
    pub sql: &'static TableSql,
    pub projection: Vec<usize>,
    pub pushed: Vec<Pushed>,
    /// A sort the store does (DataFusion dropped its own), with `limit` applied after it.
    pub order: Vec<SortKey>,
    pub limit: Option<usize>,
    /// Off: run-time filters, sorts and fetches are refused too.
    pub push_down: super::PushDown,
}

/// Streams one runql table's rows out of the store.
#[derive(Debug)]
pub struct ZenScanExec {
    store: Arc<ZenStore>,
    plan: ScanPlan,
    query: ScanQuery,
    /// Filters a hash join offered this scan (see `push_down::push_down_runtime`), read
    /// when the scan starts: the join polls its probe side only once its build side is in.
    runtime_filters: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    /// `output_rows`: the rows SQLite returned, shown by EXPLAIN ANALYZE.
    metrics: ExecutionPlanMetricsSet,
}

impl ZenScanExec {
    pub fn new(store: Arc<ZenStore>, plan: ScanPlan, schema: SchemaRef) -> Self {
        // A sort the store does is an ordering parents may rely on.
        let ordering: Vec<PhysicalSortExpr> = plan
            .order
            .iter()
            .filter_map(|key| {
                let index = schema.index_of(key.column).ok()?;
                Some(PhysicalSortExpr::new(
                    Arc::new(Column::new(key.column, index)),
                    SortOptions {
                        descending: key.descending,
                        nulls_first: key.nulls_first,
                    },
                ))
            })
            .collect();
        let equivalences = if ordering.is_empty() {
            EquivalenceProperties::new(Arc::clone(&schema))
        } else {
            EquivalenceProperties::new_with_orderings(Arc::clone(&schema), [ordering])
        };
        let properties = PlanProperties::new(
            equivalences,
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        let query = ScanQuery::build(
            plan.def,
            plan.sql,
            &plan.projection,
            &plan.pushed,
            &plan.order,
            plan.limit,
        );
        Self {
            store,
            plan,
            query,
            runtime_filters: Vec::new(),
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The query with what the run-time filters allow pushed as well, as they stand now.
    fn query_now(&self) -> ScanQuery {
        let extra: Vec<Pushed> = self
            .runtime_filters
            .iter()
            .filter_map(|f| push_down::push_down_runtime(self.plan.def, f, self.store.dialect()))
            .collect();
        if extra.is_empty() {
            return self.query.clone();
        }
        let mut pushed = self.plan.pushed.clone();
        pushed.extend(extra);
        ScanQuery::build(
            self.plan.def,
            self.plan.sql,
            &self.plan.projection,
            &pushed,
            &self.plan.order,
            self.plan.limit,
        )
    }
}

impl DisplayAs for ZenScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let columns: Vec<&str> = self.query.columns.iter().map(|(n, _)| *n).collect();
        match t {
            DisplayFormatType::Default | DisplayFormatType::TreeRender => {
                write!(
                    f,
                    "ZenScanExec: table={}, columns=[{}]",
                    self.plan.def.name,
                    columns.join(", ")
                )?;
                if !self.query.filters.is_empty() {
                    write!(f, ", pushed_filters=[{}]", self.query.filters.join(", "))?;
                }
                if !self.query.order.is_empty() {
                    write!(f, ", order=[{}]", self.query.order.join(", "))?;
                }
                if let Some(n) = self.query.limit {
                    write!(f, ", limit={n}")?;
                }
                if !self.runtime_filters.is_empty() {
                    let filters: Vec<String> =
                        self.runtime_filters.iter().map(|e| e.to_string()).collect();
                    write!(f, ", runtime_filters=[{}]", filters.join(", "))?;
                }
                Ok(())
            }
            DisplayFormatType::Verbose => {
                // The SQL the store runs: on MySQL, as translated.
                let sql = match self.store.backend() {
                    Backend::Mysql(db) => db
                        .translate(&self.query.sql)
                        .unwrap_or_else(|e| e.to_string()),
                    Backend::Sqlite(_) => self.query.sql.clone(),
                };
                write!(f, "ZenScanExec: table={}, sql={sql}", self.plan.def.name)
            }
        }
    }
}

impl ExecutionPlan for ZenScanExec {
    fn name(&self) -> &'static str {
        "ZenScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    /// The run-time filters, so a hash join sees that its filter has a consumer and fills it.
    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for filter in &self.runtime_filters {
            if f(filter)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    /// Keeps the filters a parent offers after planning (a hash join's dynamic filter) to
    /// push what it can when the scan starts. It reports none as handled: the rows it
    /// returns are a superset, and its parents filter them as before. A scan with a LIMIT
    /// takes none, so its first rows stay the same.
    fn handle_child_pushdown_result(
        &self,
        phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        let offered: Vec<Arc<dyn PhysicalExpr>> = child_pushdown_result
            .parent_filters
            .into_iter()
            .map(|f| f.filter)
            .collect();
        let no = vec![PushedDown::No; offered.len()];
        let useful: Vec<Arc<dyn PhysicalExpr>> = offered.into_iter().filter(is_dynamic).collect();
        if phase != FilterPushdownPhase::Post
            || self.plan.limit.is_some()
            || self.plan.push_down == super::PushDown::Off
            || useful.is_empty()
        {
            return Ok(FilterPushdownPropagation::with_parent_pushdown_result(no));
        }
        let mut scan = Self::new(
            Arc::clone(&self.store),
            self.plan.clone(),
            Arc::clone(&self.schema),
        );
        scan.runtime_filters = useful;
        Ok(FilterPushdownPropagation::with_parent_pushdown_result(no)
            .with_updated_node(Arc::new(scan) as Arc<dyn ExecutionPlan>))
    }

    /// Takes a sort over plain columns the store orders as DataFusion does (see
    /// `push_down::push_down_sort`): SQLite sorts (through an index when it has one) and
    /// DataFusion's SortExec goes; with the LIMIT above it, only the first rows are read.
    fn try_pushdown_sort(
        &self,
        order: &[PhysicalSortExpr],
    ) -> Result<SortOrderPushdownResult<Arc<dyn ExecutionPlan>>> {
        if self.plan.push_down == super::PushDown::Off
            || self.plan.limit.is_some()
            || !self.runtime_filters.is_empty()
        {
            return Ok(SortOrderPushdownResult::Unsupported);
        }
        let mut keys = Vec::with_capacity(order.len());
        for sort in order {
            let Some(column) = sort.expr.downcast_ref::<Column>() else {
                return Ok(SortOrderPushdownResult::Unsupported);
            };
            keys.push((
                column.name(),
                sort.options.descending,
                sort.options.nulls_first,
            ));
        }
        let Some(order) = push_down::push_down_sort(self.plan.def, &keys, self.store.dialect())
        else {
            return Ok(SortOrderPushdownResult::Unsupported);
        };
        let plan = ScanPlan {
            order,
            ..self.plan.clone()
        };
        let scan = Self::new(Arc::clone(&self.store), plan, Arc::clone(&self.schema));
        Ok(SortOrderPushdownResult::Exact {
            inner: Arc::new(scan),
        })
    }

    /// A LIMIT above the scan (or above the sort it took) is read by SQLite. A scan that
    /// narrows its rows by a join's keys takes none: its first rows would be other rows.
    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        if self.plan.push_down == super::PushDown::Off || !self.runtime_filters.is_empty() {
            return None;
        }
        let limit = match (self.plan.limit, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let plan = ScanPlan {
            limit,
            ..self.plan.clone()
        };
        Some(Arc::new(Self::new(
            Arc::clone(&self.store),
            plan,
            Arc::clone(&self.schema),
        )))
    }

    fn fetch(&self) -> Option<usize> {
        self.plan.limit
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "ZenScanExec has one partition, asked for {partition}"
            )));
        }
        let batch_size = context.session_config().batch_size();
        let rows = MetricBuilder::new(&self.metrics).output_rows(partition);
        let store_time = MetricBuilder::new(&self.metrics).subset_time(STORE_TIME, partition);
        let meters = (rows, store_time);
        if self.runtime_filters.is_empty() {
            let query = self.query.clone();
            return Ok(stream(&self.store, query, &self.schema, batch_size, meters));
        }
        // Start SQLite at the first poll, not now: by then the join has filled its filter.
        let scan = Self {
            store: Arc::clone(&self.store),
            plan: self.plan.clone(),
            query: self.query.clone(),
            runtime_filters: self.runtime_filters.clone(),
            schema: Arc::clone(&self.schema),
            properties: Arc::clone(&self.properties),
            metrics: self.metrics.clone(),
        };
        let schema = Arc::clone(&self.schema);
        let deferred = futures::stream::once(async move {
            let query = scan.query_now();
            Ok::<_, DataFusionError>(stream(&scan.store, query, &scan.schema, batch_size, meters))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, deferred)))
    }
}

/// The metric that says how long a scan spent in the store: SQLite running its query and
/// runql converting its rows, not the time spent waiting for DataFusion to take a batch.
pub const STORE_TIME: &str = "store_time";

/// Rows of `query` as a stream, read on a blocking thread; `meters` count the rows and the
/// time spent in the store.
fn stream(
    store: &Arc<ZenStore>,
    query: ScanQuery,
    schema: &SchemaRef,
    batch_size: usize,
    meters: (Count, Time),
) -> SendableRecordBatchStream {
    let (rows, store_time) = meters;
    let mut builder = RecordBatchReceiverStream::builder(Arc::clone(schema), 2);
    let tx = builder.tx();
    let store = Arc::clone(store);
    let schema = Arc::clone(schema);
    builder.spawn_blocking(move || {
        let watch = tx.clone();
        let cancelled = move || watch.is_closed();
        let started = Instant::now();
        let mut waiting = Duration::ZERO;
        // Hands a batch over, waiting while the channel is full. Inside the runtime's
        // `block_on` (MySQL) tokio forbids its own blocking send; a plain executor waits the
        // same way, and this is a blocking thread either way.
        let emit = |batch: RecordBatch| {
            rows.add(batch.num_rows());
            let handing = Instant::now();
            let taken = futures::executor::block_on(tx.send(Ok(batch))).is_ok();
            waiting += handing.elapsed();
            taken
        };
        let result = match store.backend() {
            Backend::Sqlite(file) => {
                read_batches(file, &store, &query, &schema, batch_size, cancelled, emit)
            }
            // A blocking thread may wait on the runtime's futures: MySQL's rows are read
            // here as SQLite's are, and handed over the same way.
            Backend::Mysql(db) => tokio::runtime::Handle::current()
                .block_on(read_mysql(db, &query, &schema, batch_size, cancelled, emit)),
        };
        store_time.add_duration(started.elapsed().saturating_sub(waiting));
        result
    });
    builder.build()
}

/// What each scan of an executed plan did: its table, the rows the store returned and the
/// time spent in the store (`--timing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanTiming {
    pub table: &'static str,
    pub rows: usize,
    pub store_time: Duration,
}

/// The scans of `plan`, after it ran, in plan order.
pub fn scan_timings(plan: &Arc<dyn ExecutionPlan>) -> Vec<ScanTiming> {
    let mut found = Vec::new();
    let _ = plan.apply(|node| {
        if let Some(scan) = node.downcast_ref::<ZenScanExec>() {
            let metrics = scan.metrics.clone_inner();
            let nanos = metrics
                .sum_by_name(STORE_TIME)
                .map(|v| v.as_usize())
                .unwrap_or(0);
            found.push(ScanTiming {
                table: scan.plan.def.name,
                rows: metrics.output_rows().unwrap_or(0),
                store_time: Duration::from_nanos(nanos as u64),
            });
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Whether `filter` is (or holds) a dynamic filter, the kind that changes while a query runs.
/// Static filters were offered to the provider at planning already.
fn is_dynamic(filter: &Arc<dyn PhysicalExpr>) -> bool {
    let mut found = false;
    let _ = filter.apply(|e| {
        found = e.downcast_ref::<DynamicFilterPhysicalExpr>().is_some();
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// Runs `query` and hands `emit` batches of up to `batch_size` rows until the rows run out
/// or `emit` returns false (the consumer is gone). `cancelled` is polled while SQLite works
/// between rows (sorting, aggregating), so a dropped query stops there too.
fn read_batches(
    file: &SqliteFile,
    store: &ZenStore,
    query: &ScanQuery,
    schema: &SchemaRef,
    batch_size: usize,
    cancelled: impl Fn() -> bool + Clone + Send + 'static,
    mut emit: impl FnMut(RecordBatch) -> bool,
) -> Result<()> {
    let mut conn = file.connect().map_err(external)?;
    conn.progress_handler(100_000, Some(cancelled.clone()))
        .map_err(sqlite)?;
    let result = read_rows(store, &conn, query, schema, batch_size, &mut emit);
    // A connection that read to the end (or stopped cleanly) serves the next scan.
    if result.is_ok() {
        conn.progress_handler(0, None::<fn() -> bool>)
            .map_err(sqlite)?;
        file.release(conn);
    }
    match result {
        // SQLite was interrupted because nobody waits for the rows any more: not an error.
        Err(_) if cancelled() => Ok(()),
        other => other,
    }
}

fn read_rows(
    store: &ZenStore,
    conn: &rusqlite::Connection,
    query: &ScanQuery,
    schema: &SchemaRef,
    batch_size: usize,
    emit: &mut impl FnMut(RecordBatch) -> bool,
) -> Result<()> {
    let mut stmt = conn
        .prepare(&query.sql)
        .map_err(|e| prepare_error(store, e))?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(query.params.iter()))
        .map_err(sqlite)?;
    let mut batches = Batches::new(query, schema, batch_size);
    while let Some(row) = rows.next().map_err(sqlite)? {
        for i in 0..query.columns.len() {
            batches.append(i, row.get_ref(i).map_err(sqlite)?)?;
        }
        if let Some(batch) = batches.end_row()?
            && !emit(batch)
        {
            return Ok(());
        }
    }
    if let Some(batch) = batches.rest()? {
        emit(batch);
    }
    Ok(())
}

/// A scan's rows gathered into record batches of `size` rows, whichever store they come from.
struct Batches<'a> {
    query: &'a ScanQuery,
    schema: &'a SchemaRef,
    builders: Vec<ColumnBuilder>,
    rows: usize,
    size: usize,
}

impl<'a> Batches<'a> {
    fn new(query: &'a ScanQuery, schema: &'a SchemaRef, size: usize) -> Self {
        let builders = query
            .columns
            .iter()
            .map(|(_, kind)| ColumnBuilder::new(*kind, size))
            .collect();
        Self {
            query,
            schema,
            builders,
            rows: 0,
            size,
        }
    }

    /// The value of column `i` of the current row.
    fn append(&mut self, i: usize, value: rusqlite::types::ValueRef<'_>) -> Result<()> {
        self.builders[i].append(value, self.query.columns[i].0)
    }

    /// Ends the current row; the batch it completes, if it completes one.
    fn end_row(&mut self) -> Result<Option<RecordBatch>> {
        self.rows += 1;
        if self.rows < self.size {
            return Ok(None);
        }
        self.rest()
    }

    /// The rows not yet handed out, as a batch (none when there are none).
    fn rest(&mut self) -> Result<Option<RecordBatch>> {
        if self.rows == 0 {
            return Ok(None);
        }
        let arrays = self.builders.iter_mut().map(|b| b.finish()).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(Arc::clone(self.schema), arrays, &options)
            .map(Some)
            .map_err(Into::into)
    }
}

/// [`read_batches`] for a MySQL store: the same batches from the server's rows.
async fn read_mysql(
    db: &MysqlStore,
    query: &ScanQuery,
    schema: &SchemaRef,
    batch_size: usize,
    cancelled: impl Fn() -> bool,
    mut emit: impl FnMut(RecordBatch) -> bool,
) -> Result<()> {
    let mut batches = Batches::new(query, schema, batch_size);
    let mut wanted = true;
    db.read(
        &query.sql,
        &query.params,
        &cancelled,
        |cells| -> Result<bool> {
            // The projected columns only: a query of none selects a placeholder column.
            for (i, cell) in cells.iter().take(query.columns.len()).enumerate() {
                batches.append(i, *cell)?;
            }
            if let Some(batch) = batches.end_row()? {
                wanted = emit(batch);
            }
            Ok(wanted)
        },
    )
    .await?;
    if wanted && let Some(batch) = batches.rest()? {
        emit(batch);
    }
    Ok(())
}

fn owned(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn sqlite(e: rusqlite::Error) -> DataFusionError {
    external(crate::error::StoreError::Sqlite(e))
}

/// runql's own SQL failing to prepare means the store's schema is not the one its mapping
/// describes (an untested release): say so, without the generated SQL.
fn prepare_error(store: &ZenStore, e: rusqlite::Error) -> DataFusionError {
    match e {
        rusqlite::Error::SqlInputError { msg, .. } => {
            external(crate::error::StoreError::SchemaMismatch {
                version: store.version().to_string(),
                mapping: store.mapping().name.to_string(),
                reason: msg,
            })
        }
        other => sqlite(other),
    }
}

fn external(e: crate::error::StoreError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Reads `columns` of the rows of `def` that `filter` selects, as SQLite values, without
/// DataFusion: for lookups that happen while a query is planned (a table function's
/// arguments) or inside a function.
pub fn lookup(
    store: &ZenStore,
    def: &TableDef,
    columns: &[&str],
    filter: &Pushed,
) -> Result<Vec<Vec<Value>>> {
    let sql = super::table_sql(store, def)?;
    let projection: Vec<usize> = columns
        .iter()
        .map(|c| {
            def.columns
                .iter()
                .position(|d| d.name == *c)
                .ok_or_else(|| DataFusionError::Plan(format!("{} has no column {c}", def.name)))
        })
        .collect::<Result<_>>()?;
    let query = ScanQuery::build(
        def,
        sql,
        &projection,
        std::slice::from_ref(filter),
        &[],
        None,
    );
    let file = match store.backend() {
        Backend::Sqlite(file) => file,
        Backend::Mysql(db) => {
            let mut found = Vec::new();
            let read = db.read(
                &query.sql,
                &query.params,
                || false,
                |cells| -> Result<bool> {
                    found.push(cells.iter().map(|c| owned(*c)).collect());
                    Ok(true)
                },
            );
            crate::store::mysql::block_on(read)?;
            return Ok(found);
        }
    };
    let conn = file.connect().map_err(external)?;
    let found = {
        let mut stmt = conn
            .prepare(&query.sql)
            .map_err(|e| prepare_error(store, e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(query.params.iter()), |row| {
                (0..projection.len())
                    .map(|i| row.get::<_, Value>(i))
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(sqlite)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite)?
    };
    file.release(conn);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sorted, limited scan joins its wide rows back by `TableSql::key` alone, so the key
    /// must pick out one row of the table (all its joins included) in every era's mapping:
    /// checked on every fixture store. `m.id` as metadata's key broke this where a value is
    /// linked to two resources, and the scan returned rows its filter left out.
    #[test]
    fn every_row_key_picks_out_one_row() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut checked = 0;
        for entry in std::fs::read_dir(fixtures).unwrap() {
            let path = entry.unwrap().path().join("zenml.db");
            if !path.exists() {
                continue;
            }
            let mapping = ZenStore::open(&path).unwrap().mapping();
            let db = rusqlite::Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .unwrap();
            for sql in mapping.tables.iter().filter(|t| !t.key.is_empty()) {
                let names: Vec<&'static str> = sql.columns.iter().map(|c| c.name).collect();
                let keys: Vec<String> = (0..sql.key.len())
                    .map(|i| format!("\"__key{i}\""))
                    .collect();
                let repeated: i64 = db
                    .query_row(
                        &format!(
                            "SELECT count(*) FROM (SELECT 1 FROM ({}) GROUP BY {} HAVING count(*) > 1)",
                            inner_select(sql, &names, sql.key, Rows::All),
                            keys.join(", ")
                        ),
                        [],
                        |row| row.get(0),
                    )
                    .unwrap();
                assert_eq!(
                    repeated,
                    0,
                    "{}: {} keyed by {:?}",
                    path.display(),
                    sql.table,
                    sql.key
                );
                checked += 1;
            }
        }
        assert!(checked > 100, "{checked} keyed tables checked");
    }
}
