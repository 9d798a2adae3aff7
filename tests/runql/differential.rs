//! Differential testing of everything runql pushes into the store (filters, LIMIT, a hash
//! join's keys): random queries over real fixture stores, answered twice, once with pushdown
//! and once with DataFusion evaluating everything (`PushDown::Off`, the `--no-pushdown`
//! flag). The two must give the same multiset of rows; and, ternary logic partitioning
//! (SQLancer's TLP), for every predicate `p`: `count(*)` = rows where `p` + where `NOT p` +
//! where `p IS NULL`. A third oracle compares each store with its `runql export`, the
//! Parquet folder every mirror is made of.
//!
//! Literals stress what translation gets wrong: quotes, `%`, `_`, `\`, empty strings,
//! trailing spaces, mixed case, unicode, ids in other spellings, timestamps one microsecond
//! and one second off, NaN and infinities, long IN lists. A fixed seed makes `cargo test`
//! repeatable; `RUNQL_DIFF_QUERIES=N RUNQL_DIFF_SEED=S cargo test --release differential`
//! runs a longer search (see `bench/differential.sh`).

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use runql::artifacts::ArtifactRoot;
use runql::store::ZenStore;
use runql::tables::{Kind, PushDown, TABLES, TableDef};

/// SplitMix64: small, seeded, good enough to pick queries.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Values to compare a column with: what the store holds, and spellings that stress the
/// translation into SQLite.
struct Column {
    name: &'static str,
    kind: Kind,
    /// Literal SQL.
    literals: Vec<String>,
    /// Text the store holds (for LIKE patterns).
    texts: Vec<String>,
    /// Keys of the JSON objects the store holds (for `json_get_*`).
    keys: Vec<String>,
}

const STRESS_TEXT: &[&str] = &[
    "", "'", "%", "_", "\\", "a%b", "a_b", "x\\%", "é", "ÄÖ", "🙂", " ", "null", "{}",
];

async fn columns(ctx: &SessionContext, def: &'static TableDef) -> Vec<Column> {
    let mut out = Vec::new();
    for column in def.columns {
        let values = distinct_values(ctx, def.name, column.name).await;
        let mut literals = Vec::new();
        let mut texts = Vec::new();
        for v in &values {
            match column.kind {
                Kind::Id => {
                    literals.push(quote(v));
                    literals.push(quote(&v.to_uppercase()));
                    literals.push(quote(&v.replace('-', "")));
                    texts.push(v.clone());
                }
                Kind::Text | Kind::Json => {
                    literals.push(quote(v));
                    literals.push(quote(&v.to_uppercase()));
                    literals.push(quote(&format!("{v} ")));
                    let cut: String = v.chars().take(v.chars().count() / 2).collect();
                    literals.push(quote(&cut));
                    texts.push(v.clone());
                }
                Kind::Int => {
                    let n: i64 = v.parse().unwrap();
                    for m in [n, n - 1, n + 1] {
                        literals.push(m.to_string());
                    }
                }
                Kind::Float => {
                    literals.push(v.clone());
                    literals.push(format!("{v} + 0.000001"));
                    literals.push(format!("CAST({v} AS BIGINT)"));
                }
                Kind::Bool => {}
                Kind::Timestamp => {
                    let t = quote(v);
                    literals.push(format!("TIMESTAMP {t}"));
                    literals.push(t.clone());
                    literals.push(format!("TIMESTAMP {t} + INTERVAL '1 microsecond'"));
                    literals.push(format!("TIMESTAMP {t} - INTERVAL '1 microsecond'"));
                    literals.push(format!("date_trunc('second', TIMESTAMP {t})"));
                    literals.push(format!("TIMESTAMP {t} + INTERVAL '1 nanosecond'"));
                    literals.push(format!(
                        "arrow_cast(TIMESTAMP {t}, 'Timestamp(Second, None)')"
                    ));
                }
                Kind::TextList => texts.push(v.clone()),
            }
        }
        match column.kind {
            Kind::Id => {
                literals.extend(
                    [
                        "'not-an-id'",
                        "''",
                        "'00000000-0000-0000-0000-000000000000'",
                    ]
                    .map(String::from),
                );
            }
            Kind::Text | Kind::Json => literals.extend(STRESS_TEXT.iter().map(|s| quote(s))),
            Kind::Int => {
                literals.extend(["0", "-1", "9223372036854775807", "2.5"].map(String::from))
            }
            Kind::Float => literals.extend(
                [
                    "0",
                    "0.0",
                    "-1",
                    "1e308",
                    "CAST('NaN' AS DOUBLE)",
                    "CAST('inf' AS DOUBLE)",
                    "CAST('-inf' AS DOUBLE)",
                ]
                .map(String::from),
            ),
            Kind::Bool => literals.extend(["true", "false"].map(String::from)),
            Kind::Timestamp => literals.extend(
                [
                    "TIMESTAMP '1970-01-01T00:00:00Z'",
                    "TIMESTAMP '2100-01-01T00:00:00Z'",
                    "now()",
                ]
                .map(String::from),
            ),
            Kind::TextList => texts.extend(STRESS_TEXT.iter().map(|s| s.to_string())),
        }
        let mut keys: Vec<String> = values
            .iter()
            .filter_map(|v| serde_json::from_str::<serde_json::Value>(v).ok())
            .filter_map(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
            .flatten()
            .collect();
        keys.sort();
        keys.dedup();
        out.push(Column {
            name: column.name,
            kind: column.kind,
            literals,
            texts,
            keys,
        });
    }
    out
}

async fn distinct_values(ctx: &SessionContext, table: &str, column: &str) -> Vec<String> {
    let sql = format!(
        "SELECT DISTINCT CAST({expr} AS VARCHAR) FROM {table} LIMIT 12",
        expr = match table_kind(table, column) {
            Kind::TextList => format!("unnest(\"{column}\")"),
            Kind::Timestamp => format!("to_char(\"{column}\", '%Y-%m-%dT%H:%M:%S%.6fZ')"),
            _ => format!("\"{column}\""),
        }
    );
    let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    rows_of(&batches)
        .into_iter()
        .filter(|v| v != "\u{0}")
        .collect()
}

fn table_kind(table: &str, column: &str) -> Kind {
    runql::tables::table_def(table)
        .and_then(|d| d.column(column))
        .map(|c| c.kind)
        .unwrap()
}

/// A random predicate over `columns` (qualified by `alias` when given).
fn predicate(rng: &mut Rng, columns: &[Column], alias: &str, depth: usize) -> String {
    if depth > 0 && rng.chance(35) {
        let l = predicate(rng, columns, alias, depth - 1);
        return match rng.below(3) {
            0 => format!("({l}) AND ({})", predicate(rng, columns, alias, depth - 1)),
            1 => format!("({l}) OR ({})", predicate(rng, columns, alias, depth - 1)),
            _ => format!("NOT ({l})"),
        };
    }
    let c = rng.pick(columns);
    let col = format!("{alias}\"{}\"", c.name);
    let lit = |rng: &mut Rng| -> String {
        if c.literals.is_empty() {
            "NULL".to_string()
        } else {
            rng.pick(&c.literals).clone()
        }
    };
    let ops = ["=", "<>", "<", "<=", ">", ">="];
    match c.kind {
        Kind::Bool => match rng.below(5) {
            0 => col,
            1 => format!("NOT {col}"),
            2 => format!("{col} = {}", lit(rng)),
            3 => format!("{col} IS NULL"),
            _ => format!("{col} IS NOT TRUE"),
        },
        Kind::TextList => {
            let t = if c.texts.is_empty() {
                String::new()
            } else {
                rng.pick(&c.texts).clone()
            };
            match rng.below(3) {
                0 => format!("array_has({col}, {})", quote(&t)),
                1 => format!("cardinality({col}) > {}", rng.below(3)),
                _ => format!("{col} IS NULL"),
            }
        }
        _ => match rng.below(10) {
            0..=3 => {
                let op = rng.pick(&ops);
                if rng.chance(20) {
                    format!("{} {op} {col}", lit(rng))
                } else {
                    format!("{col} {op} {}", lit(rng))
                }
            }
            4 => {
                let n = if rng.chance(5) {
                    5000
                } else {
                    1 + rng.below(5)
                };
                let items: Vec<String> = (0..n).map(|_| lit(rng)).collect();
                let not = if rng.chance(30) { " NOT" } else { "" };
                format!("{col}{not} IN ({})", items.join(", "))
            }
            5 => {
                let not = if rng.chance(30) { " NOT" } else { "" };
                format!("{col}{not} BETWEEN {} AND {}", lit(rng), lit(rng))
            }
            6 if matches!(c.kind, Kind::Id | Kind::Text | Kind::Json) => {
                let pattern = like_pattern(rng, &c.texts);
                let op = *rng.pick(&["LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"]);
                let escape = if rng.chance(20) { " ESCAPE '\\'" } else { "" };
                format!("{col} {op} {}{escape}", quote(&pattern))
            }
            7 => format!("{col} IS NULL"),
            8 => format!("{col} IS NOT NULL"),
            // A value inside the JSON text, which stays in DataFusion beside what is
            // pushed, compared with NaN, the infinities and the key's own neighbours.
            9 if c.kind == Kind::Json && !c.keys.is_empty() => {
                let key: &String = rng.pick(&c.keys);
                let key = quote(key);
                let number = *rng.pick(&[
                    "CAST('NaN' AS DOUBLE)",
                    "CAST('inf' AS DOUBLE)",
                    "CAST('-inf' AS DOUBLE)",
                    "0",
                    "0.1",
                    "1e308",
                ]);
                match rng.below(3) {
                    0 => format!("json_get_float({col}, {key}) {} {number}", rng.pick(&ops)),
                    1 => format!("json_get_str({col}, {key}) = {}", lit(rng)),
                    _ => format!("json_get({col}, {key}) IS NULL"),
                }
            }
            _ => format!("{col} = {}", lit(rng)),
        },
    }
}

fn like_pattern(rng: &mut Rng, texts: &[String]) -> String {
    let text = if texts.is_empty() || rng.chance(15) {
        rng.pick(STRESS_TEXT).to_string()
    } else {
        rng.pick(texts).clone()
    };
    let chars: Vec<char> = text.chars().collect();
    let cut = rng.below(chars.len() + 1);
    let (head, tail): (String, String) =
        (chars[..cut].iter().collect(), chars[cut..].iter().collect());
    match rng.below(6) {
        0 => format!("{head}%"),
        1 => format!("%{tail}"),
        2 => format!("%{}%", head.chars().rev().take(3).collect::<String>()),
        3 => text.replacen(|c: char| c.is_alphanumeric(), "_", 1),
        4 => text.to_uppercase(),
        _ => text,
    }
}

/// Rows as sorted text, so two answers compare as multisets.
fn rows_of(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("\u{0}");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for i in 0..batch.num_rows() {
            let cells: Vec<String> = formatters.iter().map(|f| f.value(i).to_string()).collect();
            rows.push(cells.join("\u{1}"));
        }
    }
    rows.sort();
    rows
}

async fn answer(ctx: &SessionContext, sql: &str) -> Result<Vec<String>, String> {
    let df = ctx.sql(sql).await.map_err(|e| e.to_string())?;
    let batches = df.collect().await.map_err(|e| e.to_string())?;
    Ok(rows_of(&batches))
}

async fn count(ctx: &SessionContext, sql: &str) -> Result<i64, String> {
    let rows = answer(ctx, sql).await?;
    rows.first()
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| format!("no count: {rows:?}"))
}

/// A random query over the fixture's tables.
fn query(rng: &mut Rng, tables: &[(&'static TableDef, Vec<Column>)]) -> String {
    let (def, columns) = rng.pick(tables);
    let name = def.name;
    let shown = |alias: &str, def: &TableDef, columns: &[Column]| {
        if columns.len() == def.columns.len() {
            format!("{alias}*")
        } else {
            let names: Vec<String> = columns
                .iter()
                .map(|c| format!("{alias}\"{}\"", c.name))
                .collect();
            names.join(", ")
        }
    };
    match rng.below(8) {
        0..=2 => format!(
            "SELECT {} FROM {name} WHERE {}",
            shown("", def, columns),
            predicate(rng, columns, "", 2)
        ),
        3 => {
            // Ordered by every column shown: the first n rows are one multiset whatever the
            // plan.
            let all: Vec<String> = columns.iter().map(|c| format!("\"{}\"", c.name)).collect();
            format!(
                "SELECT {} FROM {name} WHERE {} ORDER BY {} LIMIT {}",
                shown("", def, columns),
                predicate(rng, columns, "", 1),
                all.join(", "),
                rng.below(6)
            )
        }
        4 => format!(
            "SELECT count(*) FROM (SELECT * FROM {name} WHERE {} LIMIT {})",
            predicate(rng, columns, "", 1),
            rng.below(8)
        ),
        _ => {
            // The hierarchy's joins, with a predicate on each side.
            let joins = [
                ("runs", "steps", "run_id", "run_id"),
                ("steps", "outputs", "step_id", "step_id"),
                ("outputs", "inputs", "output_id", "output_id"),
                ("pipelines", "runs", "pipeline_id", "pipeline_id"),
                ("steps", "metadata", "step_id", "resource_id"),
            ];
            let (left, right, lkey, rkey) = *rng.pick(&joins);
            let of = |t: &str| tables.iter().find(|(d, _)| d.name == t).unwrap();
            let ((ldef, lcols), (rdef, rcols)) = (of(left), of(right));
            format!(
                "SELECT {}, {} FROM {left} a JOIN {right} b ON b.\"{rkey}\" = a.\"{lkey}\" WHERE ({}) AND ({})",
                shown("a.", ldef, lcols),
                shown("b.", rdef, rcols),
                predicate(rng, lcols, "a.", 1),
                predicate(rng, rcols, "b.", 1),
            )
        }
    }
}

async fn run_differential(release: &str, queries: usize, seed: u64) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/zenml-{release}"));
    let store = Arc::new(ZenStore::open(dir.join("zenml.db")).unwrap());
    differential_on(store, release, queries, seed).await
}

async fn differential_on(
    store: Arc<ZenStore>,
    release: &str,
    queries: usize,
    seed: u64,
) -> Vec<String> {
    let on =
        runql::session_with(Arc::clone(&store), ArtifactRoot::default(), PushDown::On).unwrap();
    let off = runql::session_with(store, ArtifactRoot::default(), PushDown::Off).unwrap();
    sessions_agree(
        (&off, "pushdown off"),
        (&on, "pushdown on"),
        release,
        queries,
        seed,
        &|_, _| true,
    )
    .await
}

/// The store and its export agree: each generated query gives the same rows on the store
/// (pushdown on) and on a `runql export` of it, the Parquet folder a server's mirror and a
/// store's `--mirror` are made of, read through DataFusion's Parquet scan and its own
/// filter pushdown; and TLP holds on the export too.
async fn export_agrees(release: &str, queries: usize, seed: u64) -> Vec<String> {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/zenml-{release}/zenml.db"));
    let store = Arc::new(ZenStore::open(&fixture).unwrap());
    let label = format!("{release} export");
    export_of_agrees(fixture.to_str().unwrap(), store, &label, queries, seed).await
}

/// [`export_agrees`] for the store at `address` (a path or a MySQL URL), opened as `store`.
async fn export_of_agrees(
    address: &str,
    store: Arc<ZenStore>,
    label: &str,
    queries: usize,
    seed: u64,
) -> Vec<String> {
    let folder = tempfile::tempdir().unwrap();
    let out = crate::common::runql()
        .args(["--store", address, "export", "--to"])
        .arg(folder.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = runql::session_with(store, ArtifactRoot::default(), PushDown::On).unwrap();
    let (exported, _) = runql::export_session(folder.path(), ArtifactRoot::default())
        .await
        .unwrap();
    sessions_agree(
        (&live, "store"),
        (&exported, "export"),
        label,
        queries,
        seed,
        &|_, _| true,
    )
    .await
}

/// Generated queries over the columns `compared` keeps, answered by two sessions over the
/// same runs, must give the same rows: `reference` (whose values seed the literals; a store,
/// or pushdown off) and `tested` (pushdown on, an export, a server's mirror), on which TLP
/// must hold too. One line per difference; a search where most queries fail in planning on
/// both sides proves nothing, so that is a failure too.
pub async fn sessions_agree(
    reference: (&SessionContext, &str),
    tested: (&SessionContext, &str),
    label: &str,
    queries: usize,
    seed: u64,
    compared: &dyn Fn(&str, &str) -> bool,
) -> Vec<String> {
    let mut tables = Vec::new();
    for def in TABLES {
        let kept = columns(reference.0, def)
            .await
            .into_iter()
            .filter(|c| compared(def.name, c.name))
            .collect();
        tables.push((def, kept));
    }
    let mut rng = Rng(seed);
    let mut failures = Vec::new();
    let mut answered = 0;
    for _ in 0..queries {
        let sql = query(&mut rng, &tables);
        let (a, b) = (
            answer(reference.0, &sql).await,
            answer(tested.0, &sql).await,
        );
        match (&a, &b) {
            (Ok(x), Ok(y)) if x == y => answered += 1,
            // The same query fails the same way in planning either way (a type mismatch).
            (Err(_), Err(_)) => continue,
            _ => {
                failures.push(format!(
                    "{label}: {sql}\n  {}: {}\n  {}: {}",
                    reference.1,
                    summary(&a),
                    tested.1,
                    summary(&b)
                ));
                continue;
            }
        }
        // Ternary logic partitioning, on single-table predicates.
        if let Some(failure) = partitions_add_up(tested.0, &sql).await {
            failures.push(format!("{label}: {failure}"));
        }
    }
    if answered * 2 < queries {
        failures.push(format!(
            "{label}: only {answered} of {queries} queries were answered"
        ));
    }
    failures
}

/// Fails the test with the first of `failures`, out of `asked` queries.
pub fn assert_none_differ(failures: &[String], asked: usize) {
    assert!(
        failures.is_empty(),
        "{} of {asked} queries differ:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A runtime for the async searches of a synchronous test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// TLP: for `SELECT * FROM t WHERE p`, the rows where `p`, where `NOT p` and where `p IS
/// NULL` are all of `t`'s rows. None when they are (or the query is of another form).
async fn partitions_add_up(ctx: &SessionContext, sql: &str) -> Option<String> {
    let (_, rest) = sql.strip_prefix("SELECT ")?.split_once(" FROM ")?;
    let (table, p) = rest.split_once(" WHERE ")?;
    if table.contains(' ') {
        return None; // a join
    }
    if p.contains(" ORDER BY ") {
        return None;
    }
    let all = count(ctx, &format!("SELECT count(*) FROM {table}")).await;
    let mut sum = 0;
    for part in [
        format!("SELECT count(*) FROM {table} WHERE {p}"),
        format!("SELECT count(*) FROM {table} WHERE NOT ({p})"),
        format!("SELECT count(*) FROM {table} WHERE ({p}) IS NULL"),
    ] {
        match count(ctx, &part).await {
            Ok(n) => sum += n,
            Err(e) => return Some(format!("TLP {part}: {e}")),
        }
    }
    (Ok(sum) != all)
        .then(|| format!("TLP: {table} has {all:?} rows, partitions by {p} sum to {sum}"))
}

fn summary(answer: &Result<Vec<String>, String>) -> String {
    match answer {
        Ok(rows) => {
            let first: Vec<String> = rows
                .iter()
                .take(2)
                .map(|r| r.chars().take(160).collect())
                .collect();
            format!("{} rows {first:?}", rows.len())
        }
        Err(e) => format!("error {e}"),
    }
}

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fixed-seed search on three eras' stores (window-numbered runs and pipelines merged by
/// name on 0.60, step configs in their own table on 0.85, run indexes on 0.98).
#[test]
fn pushdown_gives_datafusions_answer() {
    let queries = env_number("RUNQL_DIFF_QUERIES", 600) as usize;
    let seed = env_number("RUNQL_DIFF_SEED", 20261127);
    let runtime = runtime();
    let mut failures = Vec::new();
    for (i, release) in ["0.60.0", "0.85.0", "0.98.0"].iter().enumerate() {
        failures.extend(runtime.block_on(run_differential(release, queries, seed + i as u64)));
    }
    assert_none_differ(&failures, queries * 3);
}

/// The search again between each store and its export (the mirror's format).
#[test]
fn export_gives_the_stores_answer() {
    let queries = env_number("RUNQL_DIFF_QUERIES", 300) as usize;
    let seed = env_number("RUNQL_DIFF_SEED", 20261127);
    let runtime = runtime();
    let mut failures = Vec::new();
    for (i, release) in ["0.60.0", "0.85.0", "0.98.0"].iter().enumerate() {
        failures.extend(runtime.block_on(export_agrees(release, queries, seed + 7 + i as u64)));
    }
    assert_none_differ(&failures, queries * 3);
}

/// The same search on the MariaDB stores, where pushdown must also undo MySQL's
/// case-insensitive, pad-space collation and its own JSON and time functions.
#[test]
fn pushdown_gives_datafusions_answer_on_mariadb() {
    let queries = env_number("RUNQL_DIFF_QUERIES", 300) as usize;
    let seed = env_number("RUNQL_DIFF_SEED", 20261127);
    let server = crate::mariadb::mariadb();
    let runtime = runtime();
    let mut failures = Vec::new();
    for (i, (_, database)) in server.stores.iter().enumerate() {
        let location = runql::store::locate::parse_store(&server.url(database)).unwrap();
        let store = runtime
            .block_on(ZenStore::open_location(&location))
            .unwrap();
        let store = Arc::new(store);
        failures.extend(runtime.block_on(differential_on(
            Arc::clone(&store),
            database,
            queries,
            seed + i as u64,
        )));
        // And the store against its export: a MySQL store's `--mirror`.
        failures.extend(runtime.block_on(export_of_agrees(
            &server.url(database),
            store,
            &format!("{database} export"),
            queries / 3,
            seed + 17 + i as u64,
        )));
    }
    assert_none_differ(&failures, (queries + queries / 3) * server.stores.len());
}
