//! Where each of runql's columns lives in a ZenML schema: one mapping per schema era.
//!
//! A mapping says, for every runql table, which ZenML table a row comes from, which joins
//! its columns need, and the SQLite expression of each column. The table providers only
//! ever see this description, so supporting another ZenML era means adding a file here.

/// A run is cached when it has steps and every one of them is cached. `$scope` is the tenant
/// column (`project_id`, `workspace_id` before 0.80) that ZenML's `step_run` index leads with
/// (from 0.95): repeating it lets SQLite use that index.
macro_rules! run_is_cached {
    ($scope:literal) => {
        concat!(
            "(EXISTS (SELECT 1 FROM step_run s WHERE s.",
            $scope,
            " = r.",
            $scope,
            " AND s.pipeline_run_id = r.id) AND NOT EXISTS (SELECT 1 FROM step_run s WHERE s.",
            $scope,
            " = r.",
            $scope,
            " AND s.pipeline_run_id = r.id AND s.status <> 'cached'))"
        )
    };
}

/// ZenML's metadata resource types as runql names them (`run`, `step`, `output`), from the
/// `resource_type` column of the table aliased `$alias`.
macro_rules! resource_type {
    ($alias:literal) => {
        concat!(
            "CASE ",
            $alias,
            ".resource_type WHEN 'pipeline_run' THEN 'run' WHEN 'step_run' THEN 'step' ",
            "WHEN 'artifact_version' THEN 'output' ELSE ",
            $alias,
            ".resource_type END"
        )
    };
}

/// Run columns every era computes the same way (the same tag tables). The tags are sorted by
/// the aggregate itself, not by a sorted subquery: MariaDB allows no outer column in a
/// derived table.
pub(crate) const RUN_TAGS: &str = "(SELECT group_concat(t.name, char(31) ORDER BY t.name) FROM tag_resource tr \
     JOIN tag t ON t.id = tr.tag_id WHERE tr.resource_id = r.id \
     AND tr.resource_type = 'pipeline_run')";
pub(crate) const RUN_PARAMETERS: &str = "COALESCE(json_extract(COALESCE(sn.pipeline_configuration, r.pipeline_configuration), '$.parameters'), '{}')";
pub(crate) const RUN_CONFIG: &str = "COALESCE(sn.pipeline_configuration, r.pipeline_configuration)";

// Shared by every era's SQL (defined before the era modules, which use them).
/// Seconds between two SQLAlchemy datetime texts, exact to the microsecond (as Python's
/// `timedelta.total_seconds()`): whole seconds from `unixepoch`, microseconds from the text.
macro_rules! duration_s {
    ($start:literal, $end:literal) => {
        concat!(
            "((unixepoch(",
            $end,
            ") - unixepoch(",
            $start,
            ")) * 1000000 + (CAST(substr(",
            $end,
            ", 21, 6) AS INTEGER) - CAST(substr(",
            $start,
            ", 21, 6) AS INTEGER))) / 1000000.0"
        )
    };
}

/// A `Source` JSON object as ZenML's `Source.import_path`: `module.attribute`.
macro_rules! import_path {
    ($json:literal) => {
        concat!(
            "(json_extract(",
            $json,
            ", '$.module') || COALESCE('.' || json_extract(",
            $json,
            ", '$.attribute'), ''))"
        )
    };
}

/// `runs` and `steps` of the releases before ZenML numbered runs (`pipeline_run.index`) and
/// recorded run exceptions: runs are numbered by creation and `exception` is NULL. Eras
/// differ in where configurations live: `sn` is joined for the run's, `scs` for the step's,
/// `$step_config` is the step's configuration JSON read through them and `$step_parameters`
/// its parameters (JSON text, NULL when none); `$scope` is the tenant column (see
/// `run_is_cached`).
macro_rules! runs_and_steps_without_index {
    (
        $scope:literal,
        $run_config_join:literal,
        $step_config_join:literal,
        $step_config:literal,
        $step_parameters:literal
    ) => {
        const RUNS: TableSql = TableSql {
            table: "runs",
            from: "pipeline_run r",
            joins: &[
                JoinSql {
                    alias: "p",
                    sql: "LEFT JOIN pipeline p ON p.id = r.pipeline_id",
                    needs: &[],
                },
                JoinSql {
                    alias: "sn",
                    sql: $run_config_join,
                    needs: &[],
                },
                JoinSql {
                    alias: "cr",
                    sql: "LEFT JOIN code_reference cr ON cr.id = sn.code_reference_id",
                    needs: &["sn"],
                },
            ],
            filter: None,
            missing: &[],
            overrides: &[],
            key: &["r.id"],
            columns: &[
                col("run_id", "r.id"),
                col("run_name", "r.name"),
                col("pipeline_id", "r.pipeline_id"),
                joined("pipeline_name", "p.name", &["p"]),
                col("status", "r.status"),
                col("status_reason", "r.status_reason"),
                col("start_time", "r.start_time"),
                col("end_time", "r.end_time"),
                col("duration_s", duration_s!("r.start_time", "r.end_time")),
                // No `index` column before 0.90: ZenML numbered runs by creation.
                window(
                    "run_index",
                    "ROW_NUMBER() OVER (PARTITION BY r.pipeline_id ORDER BY r.created, r.id) - 1",
                    &[],
                ),
                window(
                    "run_rindex",
                    "-ROW_NUMBER() OVER (PARTITION BY r.pipeline_id ORDER BY r.created DESC, r.id DESC)",
                    &[],
                ),
                col("is_cached", run_is_cached!($scope)),
                joined("git_sha", "cr.\"commit\"", &["cr"]),
                col("tags", $crate::store::schema::RUN_TAGS),
                joined("parameters", $crate::store::schema::RUN_PARAMETERS, &["sn"]),
                joined("config", $crate::store::schema::RUN_CONFIG, &["sn"]),
                col("created", "r.created"),
                col("updated", "r.updated"),
                // `pipeline_run.exception_info` came in 0.90: `exception` is NULL here.
            ],
        };

        const STEPS: TableSql = TableSql {
            table: "steps",
            from: "step_run s",
            joins: &[
                JoinSql {
                    alias: "r",
                    sql: "LEFT JOIN pipeline_run r ON r.id = s.pipeline_run_id",
                    needs: &[],
                },
                JoinSql {
                    alias: "p",
                    sql: "LEFT JOIN pipeline p ON p.id = r.pipeline_id",
                    needs: &["r"],
                },
                JoinSql {
                    alias: "scs",
                    sql: $step_config_join,
                    needs: &[],
                },
            ],
            filter: None,
            missing: &[],
            overrides: &[],
            key: &["s.id"],
            columns: &[
                col("step_id", "s.id"),
                col("step_name", "s.name"),
                joined(
                    "entrypoint",
                    concat!("json_extract(", $step_config, ", '$.spec.source.attribute')"),
                    &["scs"],
                ),
                col("run_id", "s.pipeline_run_id"),
                joined("run_name", "r.name", &["r"]),
                joined("pipeline_name", "p.name", &["p"]),
                col("status", "s.status"),
                col("is_cached", "s.status = 'cached'"),
                col("original_step_id", "s.original_step_run_id"),
                col("start_time", "s.start_time"),
                col("end_time", "s.end_time"),
                col("duration_s", duration_s!("s.start_time", "s.end_time")),
                window(
                    "step_index",
                    "ROW_NUMBER() OVER (PARTITION BY s.pipeline_run_id ORDER BY s.created, s.id) - 1",
                    &[],
                ),
                window(
                    "step_rindex",
                    "-ROW_NUMBER() OVER (PARTITION BY s.pipeline_run_id ORDER BY s.created DESC, s.id DESC)",
                    &[],
                ),
                joined(
                    "parameters",
                    concat!("COALESCE(", $step_parameters, ", '{}')"),
                    &["scs"],
                ),
                joined("config", $step_config, &["scs"]),
                col("cache_key", "s.cache_key"),
                col("code_hash", "s.code_hash"),
                col("docstring", "s.docstring"),
                col("source_code", "s.source_code"),
                col("exception", "s.exception_info"),
            ],
        };
    };
}

mod v0_60;
mod v0_80;
mod v0_85;
mod v0_90;
mod v0_98;

use crate::error::{StoreError, StoreResult};

/// How runql's tables read one era of ZenML's schema.
#[derive(Debug)]
pub struct SchemaMapping {
    /// A short name for `--info`, e.g. `pipeline_snapshot era (0.90+)`.
    pub name: &'static str,
    /// The `alembic_version` values this mapping was verified against (a fixture store of
    /// each, compared with that release's own client).
    pub versions: &'static [&'static str],
    /// The first ZenML release of this era: stores from here up to the next era's first
    /// release are read with this mapping.
    pub since: (u32, u32, u32),
    pub tables: &'static [TableSql],
}

impl SchemaMapping {
    pub fn table(&self, name: &str) -> Option<&TableSql> {
        self.tables.iter().find(|t| t.table == name)
    }

    /// Whether this era's `pipelines` count, date and number each pipeline's runs over the
    /// `runs` table's rows by `pipeline_id` (every era from 0.63; 0.60 to 0.62 count the runs
    /// of every version of a pipeline by its name). Then a mirror counts
    /// them over its own runs (`export::PIPELINES_FROM_RUNS`) instead of asking the store to
    /// aggregate every run again.
    pub fn pipelines_count_runs_by_id(&self) -> bool {
        self.table("pipelines") == Some(&v0_98::PIPELINES)
    }

    /// The ZenML tables this era's mapping reads (with `alembic_version`, read to find the
    /// era), sorted: what a MySQL reader needs `SELECT` on, and nothing else.
    pub fn tables_read(&self) -> Vec<String> {
        use datafusion::sql::sqlparser::ast::visit_relations;
        use datafusion::sql::sqlparser::dialect::SQLiteDialect;
        use datafusion::sql::sqlparser::parser::Parser;
        let mut found = std::collections::BTreeSet::from(["alembic_version".to_string()]);
        for table in self.tables {
            let columns: Vec<&str> = table
                .columns
                .iter()
                .chain(table.overrides)
                .filter(|c| !table.missing.contains(&c.name))
                .map(|c| c.expr)
                .collect();
            let joins: Vec<&str> = table.joins.iter().map(|j| j.sql).collect();
            let sql = format!(
                "SELECT {} FROM {} {} WHERE {}",
                columns.join(", "),
                table.from,
                joins.join(" "),
                table.filter.unwrap_or("1 = 1")
            );
            let statements = Parser::parse_sql(&SQLiteDialect {}, &sql)
                .unwrap_or_else(|e| panic!("{}'s SQL parses: {e}", table.table));
            let _ = visit_relations(&statements, |relation| {
                found.insert(relation.to_string());
                std::ops::ControlFlow::<()>::Continue(())
            });
        }
        found.into_iter().collect()
    }
}

/// One runql table over ZenML's SQL: `SELECT <columns> FROM <from> <joins> [WHERE <filter>]`.
#[derive(Debug, PartialEq)]
pub struct TableSql {
    pub table: &'static str,
    /// The table (with alias) that gives the rows, e.g. `pipeline_run r`.
    pub from: &'static str,
    /// Joins, included only when a selected column needs them (in this order).
    pub joins: &'static [JoinSql],
    /// A condition every row satisfies, e.g. keeping only the latest value of a metadata key.
    pub filter: Option<&'static str>,
    pub columns: &'static [ColumnSql],
    /// Columns of `columns` this era's stores do not record (they read as NULL), so an era
    /// can reuse a neighbour's table: `without(RUNS, &["status_reason"])`.
    pub missing: &'static [&'static str],
    /// Columns this era computes otherwise than the table it reuses (they take the place of
    /// the column of the same name in `columns`): `replacing(RUNS, &[...])`.
    pub overrides: &'static [ColumnSql],
    /// Columns that pick out a row (a primary key of `from`): a sorted scan with a LIMIT
    /// finds its first rows by them before computing their wide columns. Empty: no such key.
    /// It must pick out one row: the wide rows are joined to the first rows' keys without
    /// the filters, so a row sharing a key with a selected one would come back unfiltered.
    pub key: &'static [&'static str],
}

impl TableSql {
    /// The SQL of column `name`, or `None` when this era does not record it.
    pub fn column(&self, name: &str) -> Option<&ColumnSql> {
        if self.missing.contains(&name) {
            return None;
        }
        self.overrides
            .iter()
            .chain(self.columns)
            .find(|c| c.name == name)
    }
}

/// A join and the joins it relies on.
#[derive(Debug, PartialEq)]
pub struct JoinSql {
    pub alias: &'static str,
    pub sql: &'static str,
    pub needs: &'static [&'static str],
}

/// One column's SQLite expression, the joins it reads, and whether it is a window function
/// (which must be computed over all rows before any filter applies).
#[derive(Debug, PartialEq)]
pub struct ColumnSql {
    pub name: &'static str,
    pub expr: &'static str,
    pub joins: &'static [&'static str],
    pub window: bool,
    /// The same value computed row by row, with the joins that needs: for the few rows a
    /// sorted, limited scan keeps (`tables::scan` computes their wide columns apart), where a
    /// correlated subquery beats `expr`'s aggregate over the whole table. The two must give
    /// the same value for every row.
    pub per_row: Option<(&'static str, &'static [&'static str])>,
}

impl ColumnSql {
    /// This column computed as `expr` (reading `joins`) when only a few rows need it.
    pub(crate) const fn per_row(
        self,
        expr: &'static str,
        joins: &'static [&'static str],
    ) -> ColumnSql {
        ColumnSql {
            per_row: Some((expr, joins)),
            ..self
        }
    }
}

pub(crate) const fn col(name: &'static str, expr: &'static str) -> ColumnSql {
    ColumnSql {
        name,
        expr,
        joins: &[],
        window: false,
        per_row: None,
    }
}

pub(crate) const fn joined(
    name: &'static str,
    expr: &'static str,
    joins: &'static [&'static str],
) -> ColumnSql {
    ColumnSql {
        name,
        expr,
        joins,
        window: false,
        per_row: None,
    }
}

/// `table` in an era that does not record the columns `missing` (they read as NULL).
pub(crate) const fn without(table: TableSql, missing: &'static [&'static str]) -> TableSql {
    TableSql { missing, ..table }
}

/// `table` in an era that computes the columns `overrides` otherwise.
pub(crate) const fn replacing(table: TableSql, overrides: &'static [ColumnSql]) -> TableSql {
    TableSql { overrides, ..table }
}

pub(crate) const fn window(
    name: &'static str,
    expr: &'static str,
    joins: &'static [&'static str],
) -> ColumnSql {
    ColumnSql {
        name,
        expr,
        joins,
        window: true,
        per_row: None,
    }
}

/// Every mapping runql knows, oldest era first.
pub static MAPPINGS: &[&SchemaMapping] = &[
    &v0_60::MAPPING,
    &v0_60::MAPPING_0_63_0,
    &v0_60::MAPPING_0_71_0,
    &v0_80::MAPPING,
    &v0_85::MAPPING_0_83_1,
    &v0_85::MAPPING_0_84_1,
    &v0_85::MAPPING,
    &v0_90::MAPPING,
    &v0_98::MAPPING,
];

/// How well a mapping is known to fit a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// A release runql was verified against.
    Verified,
    /// A release inside a known era, or newer than any: read with that era's mapping.
    Untested,
}

/// The mapping for a store whose `alembic_version` is `version`: the era it falls in (the
/// newest era for releases newer than any runql knows). Older than the oldest era, or not a
/// release number at all, is an error naming what was found.
pub fn mapping_for(version: &str) -> StoreResult<(&'static SchemaMapping, Fit)> {
    if let Some(m) = MAPPINGS
        .iter()
        .copied()
        .find(|m| m.versions.contains(&version))
    {
        return Ok((m, Fit::Verified));
    }
    let unsupported = || {
        let (major, minor, patch) = MAPPINGS.iter().map(|m| m.since).min().unwrap_or_default();
        StoreError::UnsupportedVersion {
            found: version.to_string(),
            oldest: format!("{major}.{minor}.{patch}"),
            supported: supported_versions().join(", "),
        }
    };
    let release = parse_release(version).ok_or_else(unsupported)?;
    MAPPINGS
        .iter()
        .copied()
        .filter(|m| m.since <= release)
        .max_by_key(|m| m.since)
        .map(|m| (m, Fit::Untested))
        .ok_or_else(unsupported)
}

/// `0.85.0` → (0, 85, 0); alembic revisions that are not release numbers → None.
fn parse_release(version: &str) -> Option<(u32, u32, u32)> {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    let release = (
        parts.next()??,
        parts.next()??,
        parts.next().unwrap_or(Some(0))?,
    );
    parts.next().is_none().then_some(release)
}

pub fn supported_versions() -> Vec<&'static str> {
    MAPPINGS
        .iter()
        .flat_map(|m| m.versions.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_era_says_which_tables_it_reads() {
        for m in MAPPINGS {
            let tables = m.tables_read();
            for t in ["alembic_version", "pipeline", "pipeline_run", "step_run"] {
                assert!(tables.iter().any(|x| x == t), "{}: {tables:?}", m.name);
            }
            // Never the tables holding secrets, keys or passwords.
            for t in ["secret", "api_key", "user", "secret_resource"] {
                assert!(!tables.iter().any(|x| x == t), "{}: {tables:?}", m.name);
            }
        }
    }

    #[test]
    fn eras_by_release() {
        assert_eq!(mapping_for("0.98.0").unwrap().1, Fit::Verified);
        assert_eq!(mapping_for("0.80.0").unwrap().1, Fit::Verified);
        // Each release falls in the era its migrations put it in, untested unless verified.
        for (release, since) in [
            ("0.64.0", (0, 63, 0)),
            ("0.74.0", (0, 71, 0)),
            ("0.80.2", (0, 80, 0)),
            ("0.83.0", (0, 80, 0)),
            ("0.83.2", (0, 83, 1)),
            ("0.84.2", (0, 84, 1)),
            ("0.87.0", (0, 85, 0)),
            ("0.91.2", (0, 90, 0)),
            ("0.94.5", (0, 90, 0)),
            ("0.96.0", (0, 95, 0)),
            ("0.98.1", (0, 95, 0)),
            // Newer than any: the newest era.
            ("1.2.0", (0, 95, 0)),
        ] {
            let (m, fit) = mapping_for(release).unwrap();
            assert_eq!((m.since, fit), (since, Fit::Untested), "{release}");
        }
        assert!(mapping_for("0.12.0").is_err());
        assert!(mapping_for("a1b2c3d4e5f6").is_err());
    }
}
