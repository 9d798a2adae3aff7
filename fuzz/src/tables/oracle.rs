//! The pushdown oracle: one table's rows as a ZenML store holds them (in SQLite) and as runql
//! reads them (an Arrow batch built by runql's own `convert`), a filter decoded from fuzz
//! input, and a check that what `push_down` sends to the store keeps exactly the rows
//! DataFusion keeps when it says Exact, and at least those when it says Inexact.
//!
//! The SQLite table's columns have no declared type (no affinity), so values compare as
//! stored; the real mappings' affinities are the differential tests' part
//! (tests/runql/differential.rs), over real stores.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDateTime;
use datafusion::arrow::array::{Array, BooleanArray, RecordBatch};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::logical_expr::execution_props::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Like, Operator, expr::InList};
use datafusion::physical_expr::{PhysicalExpr, create_physical_expr};
use rusqlite::Connection;
use rusqlite::types::Value;

use super::convert::{ColumnBuilder, dashed_id};
use super::push_down::{self, Dialect, Pushed};
use super::{Kind, TableDef};

/// Rows per table: every value of every pool appears, in varying company.
const ROWS: usize = 24;

const IDS: [&str; 4] = [
    "4a37d064f1674efab898926992f19e19",
    "00000000000000000000000000000000",
    "ffffffffffffffffffffffffffffffff",
    "0123456789abcdef0123456789abcdef",
];
const TEXTS: [&str; 17] = [
    "",
    " ",
    "a",
    "A",
    "a ",
    "ab",
    "a_b",
    "a%b",
    "a\\b",
    "it's",
    "é",
    "É",
    "日本",
    "first_pipeline",
    "FIRST_PIPELINE",
    "x\u{1f}y",
    "a\0b",
];
const JSONS: [&str; 7] = ["{}", "{\"a\": 1}", "null", "1.5", "\"x\"", "[1, 2]", "NaN"];
const INTS: [i64; 8] = [0, 1, -1, 2, i64::MAX, i64::MIN, 9_007_199_254_740_993, 42];
const FLOATS: [f64; 8] = [0.0, -0.0, 1.5, -2.25, 1e300, 5e-324, 2.0, -1e-300];
/// As ZenML's SQLAlchemy writes datetimes to SQLite: always six fraction digits.
const DATETIMES: [&str; 6] = [
    "2026-01-02 03:04:05.123456",
    "2026-01-02 03:04:05.000000",
    "2026-01-02 03:04:05.000001",
    "1970-01-01 00:00:00.000000",
    "2026-12-31 23:59:59.999999",
    "1969-12-31 23:59:59.999999",
];
const LISTS: [&str; 3] = ["a\u{1f}b", "", "x"];

/// The values a column of `kind` holds in the store (NULL included).
fn store_values(kind: Kind) -> Vec<Value> {
    let text = |values: &[&str]| values.iter().map(|v| Value::Text(v.to_string())).collect();
    let mut values: Vec<Value> = match kind {
        Kind::Id => text(&IDS),
        Kind::Text => text(&TEXTS),
        Kind::Json => text(&JSONS),
        Kind::Int => INTS.iter().map(|&i| Value::Integer(i)).collect(),
        Kind::Float => FLOATS.iter().map(|&f| Value::Real(f)).collect(),
        Kind::Bool => vec![Value::Integer(0), Value::Integer(1)],
        Kind::Timestamp => text(&DATETIMES),
        Kind::TextList => text(&LISTS),
    };
    values.push(Value::Null);
    values
}

fn micros(datetime: &str) -> i64 {
    NaiveDateTime::parse_from_str(datetime, "%Y-%m-%d %H:%M:%S%.f")
        .expect("a pool datetime")
        .and_utc()
        .timestamp_micros()
}

/// One table's rows, in the store and in Arrow.
pub struct Table {
    def: &'static TableDef,
    store: Connection,
    batch: RecordBatch,
    schema: DFSchema,
}

impl Table {
    pub fn new(def: &'static TableDef) -> Self {
        let store = Connection::open_in_memory().expect("in-memory SQLite");
        let columns: Vec<String> = def
            .columns
            .iter()
            .map(|c| format!("\"{}\"", c.name))
            .collect();
        store
            .execute(&format!("CREATE TABLE t ({})", columns.join(", ")), [])
            .expect("create");
        let pools: Vec<Vec<Value>> = def.columns.iter().map(|c| store_values(c.kind)).collect();
        let marks = vec!["?"; columns.len()].join(", ");
        for row in 0..ROWS {
            // Each column walks its pool at its own stride, so values meet in many pairs.
            let values: Vec<Value> = pools
                .iter()
                .enumerate()
                .map(|(k, pool)| pool[(row * (k + 1) + k) % pool.len()].clone())
                .collect();
            store
                .execute(
                    &format!("INSERT INTO t VALUES ({marks})"),
                    rusqlite::params_from_iter(values),
                )
                .expect("insert");
        }
        // Set as runql sets its store connections (the inserts above come first: read-only).
        store
            .execute_batch(crate::store::SQLITE_SETTINGS)
            .expect("settings");
        let mut builders: Vec<ColumnBuilder> = def
            .columns
            .iter()
            .map(|c| ColumnBuilder::new(c.kind, ROWS))
            .collect();
        {
            let mut read = store
                .prepare(&format!(
                    "SELECT {} FROM t ORDER BY rowid",
                    columns.join(", ")
                ))
                .expect("select");
            let mut rows = read.query([]).expect("query");
            while let Some(row) = rows.next().expect("row") {
                for (i, (builder, column)) in builders.iter_mut().zip(def.columns).enumerate() {
                    builder
                        .append(row.get_ref(i).expect("value"), column.name)
                        .expect("every pool value converts");
                }
            }
        }
        let arrays = builders.iter_mut().map(ColumnBuilder::finish).collect();
        let batch = RecordBatch::try_new(def.schema(), arrays).expect("batch");
        let schema = DFSchema::try_from(def.schema()).expect("schema");
        Self {
            def,
            store,
            batch,
            schema,
        }
    }

    /// Runs `filter` through the translator for both dialects (it must never panic) and
    /// checks what SQLite keeps of the pushed SQL against what DataFusion keeps.
    pub fn check(&self, filter: &Expr) {
        let _ = push_down::push_down(self.def, filter, Dialect::Mysql);
        let pushed = push_down::push_down(self.def, filter, Dialect::Sqlite);
        // DataFusion refuses ill-typed filters (the analyzer would have cast them first, or
        // failed the query): the translator only had to survive them.
        if !self.is_predicate(filter) {
            return;
        }
        let Ok(physical) = create_physical_expr(
            filter,
            &self.schema,
            &ExecutionProps::new(),
            &PhysicalPlanningContext::default(),
        ) else {
            return;
        };
        let Some(kept) = self.kept_by_datafusion(&physical) else {
            return;
        };
        if let Some(pushed) = pushed {
            let store = self.kept_by_store(&pushed);
            if pushed.exact {
                assert_eq!(
                    store, kept,
                    "Exact, yet the store keeps other rows than DataFusion\n filter: {filter}\n sql: {}\n params: {:?}",
                    pushed.sql, pushed.params
                );
            } else {
                assert!(
                    store.is_superset(&kept),
                    "Inexact, yet the store drops rows DataFusion keeps\n filter: {filter}\n sql: {}\n params: {:?}",
                    pushed.sql,
                    pushed.params
                );
            }
        }
        // The same filter as a hash join's run-time filter: always a superset, never exact.
        let _ = push_down::push_down_runtime(self.def, &physical, Dialect::Mysql);
        if let Some(runtime) = push_down::push_down_runtime(self.def, &physical, Dialect::Sqlite) {
            assert!(!runtime.exact, "a run-time filter is never exact: {filter}");
            let store = self.kept_by_store(&runtime);
            assert!(
                store.is_superset(&kept),
                "the run-time filter drops rows DataFusion keeps\n filter: {filter}\n sql: {}\n params: {:?}",
                runtime.sql,
                runtime.params
            );
        }
    }

    /// Whether `filter` is boolean all the way down: DataFusion's physical `AND` of a text
    /// column panics rather than refusing, and no planned query holds one.
    fn is_predicate(&self, filter: &Expr) -> bool {
        match filter {
            Expr::BinaryExpr(BinaryExpr { left, op, right })
                if matches!(op, Operator::And | Operator::Or) =>
            {
                self.is_predicate(left) && self.is_predicate(right)
            }
            Expr::Not(inner) => self.is_predicate(inner),
            Expr::Column(c) => self.def.column(&c.name).map(|c| c.kind) == Some(Kind::Bool),
            _ => true,
        }
    }

    fn kept_by_datafusion(&self, physical: &Arc<dyn PhysicalExpr>) -> Option<BTreeSet<usize>> {
        let value = physical.evaluate(&self.batch).ok()?;
        let array = value.into_array(ROWS).ok()?;
        let keep = array.as_any().downcast_ref::<BooleanArray>()?;
        Some(
            (0..keep.len())
                .filter(|&i| keep.is_valid(i) && keep.value(i))
                .collect(),
        )
    }

    /// A filter the translator wrote must run: SQLite refusing it is a bug too.
    fn kept_by_store(&self, pushed: &Pushed) -> BTreeSet<usize> {
        let sql = format!("SELECT rowid - 1 FROM t WHERE {}", pushed.sql);
        let mut select = self
            .store
            .prepare(&sql)
            .unwrap_or_else(|e| panic!("SQLite refuses the pushed SQL ({e}): {sql}"));
        select
            .query_map(rusqlite::params_from_iter(pushed.params.iter()), |row| {
                row.get::<_, i64>(0)
            })
            .and_then(|rows| rows.map(|r| r.map(|i| i as usize)).collect())
            .unwrap_or_else(|e| panic!("SQLite fails on the pushed SQL ({e}): {sql}"))
    }
}

/// Fuzz input read as choices; past its end every choice is 0.
pub struct Choices<'a> {
    data: &'a [u8],
}

impl<'a> Choices<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn pick<T: Clone>(&mut self, options: &[T]) -> T {
        options[self.byte() as usize % options.len()].clone()
    }

    fn i64(&mut self) -> i64 {
        let mut bytes = [0u8; 8];
        bytes.iter_mut().for_each(|b| *b = self.byte());
        i64::from_le_bytes(bytes)
    }

    /// A short string straight from the input (lossy UTF-8).
    fn string(&mut self) -> String {
        let len = (self.byte() % 12) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| self.byte()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A filter over `table`'s columns, nested at most a few levels.
    pub fn filter(&mut self, table: &TableDef, depth: u8) -> Expr {
        let choice = if depth >= 3 {
            3 + self.byte() % 6
        } else {
            self.byte() % 9
        };
        match choice {
            0 => self
                .filter(table, depth + 1)
                .and(self.filter(table, depth + 1)),
            1 => self
                .filter(table, depth + 1)
                .or(self.filter(table, depth + 1)),
            2 => Expr::Not(Box::new(self.filter(table, depth + 1))),
            3 => {
                let (column, kind) = self.column(table);
                let op = self.pick(&[
                    Operator::Eq,
                    Operator::NotEq,
                    Operator::Lt,
                    Operator::LtEq,
                    Operator::Gt,
                    Operator::GtEq,
                    Operator::IsDistinctFrom,
                    Operator::IsNotDistinctFrom,
                ]);
                let literal = self.literal(kind);
                // Either side: `5 < x` is asked as often as `x > 5`.
                let (left, right) = if self.byte() % 2 == 0 {
                    (column, literal)
                } else {
                    (literal, column)
                };
                Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right)))
            }
            4 => {
                let (column, kind) = self.column(table);
                let len = self.byte() % 6;
                let list = (0..len).map(|_| self.literal(kind)).collect();
                Expr::InList(InList::new(Box::new(column), list, self.byte() % 2 == 1))
            }
            5 => {
                let (column, kind) = self.column(table);
                let (low, high) = (self.literal(kind), self.literal(kind));
                Expr::Between(Between::new(
                    Box::new(column),
                    self.byte() % 2 == 1,
                    Box::new(low),
                    Box::new(high),
                ))
            }
            6 => {
                let (column, _) = self.column(table);
                let pattern = self.pick(&[
                    "a%",
                    "%b",
                    "a\\_b",
                    "a\\%b",
                    "_",
                    "%",
                    "A%",
                    "%é%",
                    "a_b",
                    "%a ",
                    "4a37%",
                    "4a37d064-%",
                    "%-%",
                    "\\",
                    "a\\",
                    "%\\\\%",
                    "",
                    "_%_",
                ]);
                let pattern = if self.byte() % 4 == 0 {
                    self.string()
                } else {
                    pattern.to_string()
                };
                let escape = self.pick(&[None, None, Some('\\'), Some('#'), Some('%')]);
                Expr::Like(Like::new(
                    self.byte() % 2 == 1,
                    Box::new(column),
                    Box::new(Expr::Literal(ScalarValue::Utf8(Some(pattern)), None)),
                    escape,
                    self.byte() % 3 == 0,
                ))
            }
            7 => {
                let (column, _) = self.column(table);
                if self.byte() % 2 == 0 {
                    column.is_null()
                } else {
                    column.is_not_null()
                }
            }
            _ => self.column(table).0,
        }
    }

    fn column(&mut self, table: &TableDef) -> (Expr, Kind) {
        let column = &table.columns[self.byte() as usize % table.columns.len()];
        (Expr::Column(Column::from_name(column.name)), column.kind)
    }

    /// A literal for a column of `kind`: mostly of the type DataFusion's coercion would give
    /// it, drawn from the stored values and their neighbours, sometimes anything.
    fn literal(&mut self, kind: Kind) -> Expr {
        use ScalarValue as S;
        let value = match (kind, self.byte() % 8) {
            (_, 0) => match self.byte() % 4 {
                0 => S::Utf8(None),
                1 => S::Int64(None),
                2 => S::Utf8(Some(self.string())),
                _ => S::Int64(Some(self.i64())),
            },
            (Kind::Id, n) => {
                let id = self.pick(&IDS);
                let dashed = || dashed_id(id).expect("a pool id");
                S::Utf8(Some(match n {
                    1 => id.to_string(),
                    2 => dashed().to_ascii_uppercase(),
                    3 => id[..8].to_string(),
                    _ => dashed(),
                }))
            }
            (Kind::Text | Kind::Json | Kind::TextList, n) => S::Utf8(Some(match n {
                1 => self.string(),
                2 | 3 => self.pick(&JSONS).to_string(),
                _ => self.pick(&TEXTS).to_string(),
            })),
            (Kind::Int, 1) => S::Int64(Some(self.i64())),
            (Kind::Int, _) => S::Int64(Some(
                self.pick(&INTS).wrapping_add(self.pick(&[0, 0, 1, -1])),
            )),
            (Kind::Float, 1) => S::Float64(Some(f64::from_bits(self.i64() as u64))),
            (Kind::Float, 2) => S::Float64(Some(self.pick(&[
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ]))),
            (Kind::Float, _) => S::Float64(Some(self.pick(&FLOATS))),
            (Kind::Bool, n) => S::Boolean(Some(n % 2 == 1)),
            (Kind::Timestamp, n) => {
                let micros = match n {
                    1 => self.i64() % 400_000_000_000_000_000,
                    _ => micros(self.pick(&DATETIMES)) + self.pick(&[0, 0, 1, -1, 1_000_000]),
                };
                match self.byte() % 4 {
                    0 => S::TimestampNanosecond(
                        micros.checked_mul(1_000).and_then(|n| n.checked_add(1)),
                        Some("UTC".into()),
                    ),
                    1 => S::TimestampMicrosecond(Some(micros), None),
                    _ => S::TimestampMicrosecond(Some(micros), Some("UTC".into())),
                }
            }
        };
        Expr::Literal(value, None)
    }
}
