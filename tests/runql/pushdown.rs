//! Projection, filters and LIMIT reach SQLite: EXPLAIN shows what was pushed.

use crate::common::*;

/// `(plan_type, plan)` rows of `EXPLAIN <sql>`.
fn explain(sql: &str) -> Vec<(String, String)> {
    query_json(&format!("EXPLAIN {sql}"))
        .into_iter()
        .map(|row| {
            (
                row["plan_type"].as_str().unwrap().to_string(),
                row["plan"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn physical_plan(sql: &str) -> String {
    explain(sql)
        .into_iter()
        .find(|(kind, _)| kind == "physical_plan")
        .expect("EXPLAIN has a physical plan")
        .1
}

/// The SQL SQLite runs for `sql`, from EXPLAIN VERBOSE.
fn scan_sql(sql: &str) -> String {
    explain(&format!("VERBOSE {sql}"))
        .into_iter()
        .find(|(kind, _)| kind == "initial_physical_plan")
        .expect("EXPLAIN VERBOSE has the initial physical plan")
        .1
}

#[test]
fn equality_filter_and_projection_are_pushed() {
    let plan = physical_plan("SELECT run_name FROM runs WHERE status = 'failed'");
    assert!(
        plan.contains(
            r#"ZenScanExec: table=runs, columns=[run_name], pushed_filters=["status" = 'failed']"#
        ),
        "{plan}"
    );
    assert!(
        !plan.contains("FilterExec"),
        "an exact filter is not applied twice: {plan}"
    );
}

#[test]
fn limit_is_pushed_when_filters_are_exact() {
    let plan = physical_plan("SELECT run_id FROM runs WHERE run_index >= 1 LIMIT 2");
    assert!(
        plan.contains("pushed_filters=[\"run_index\" >= 1], limit=2"),
        "{plan}"
    );
}

#[test]
fn in_range_like_and_ids_are_pushed() {
    let plan = physical_plan(
        "SELECT step_name FROM steps WHERE status IN ('cached', 'failed', 'completed', 'running') AND start_time >= '2020-01-01T00:00:00Z' \
         AND step_name LIKE 'step%' AND run_id = '4a37d064-f167-4efa-b898-926992f19e19'",
    );
    for pushed in [
        r#""status" IN ('cached', 'failed', 'completed', 'running')"#,
        r#""start_time" >= '2020-01-01 00:00:00.000000'"#,
        r#"(instr("step_name", char(0)) > 0 OR "step_name" LIKE 'step%' ESCAPE '\')"#,
        r#""run_id" = '4a37d064f1674efab898926992f19e19'"#,
    ] {
        assert!(plan.contains(pushed), "{pushed} not in {plan}");
    }
    // A LIKE is a superset on SQLite (rows holding a NUL are left to DataFusion): DataFusion
    // checks it again, and nothing else.
    let filters: Vec<&str> = plan.lines().filter(|l| l.contains("FilterExec")).collect();
    assert_eq!(filters.len(), 1, "{plan}");
    assert!(
        filters[0].contains("LIKE step%") && !filters[0].contains("status"),
        "{plan}"
    );
}

#[test]
fn unsupported_filters_stay_in_datafusion() {
    let plan = physical_plan(
        "SELECT run_name FROM runs WHERE lower(run_name) = 'first-custom' AND status = 'completed'",
    );
    assert!(plan.contains("FilterExec"), "{plan}");
    assert!(
        plan.contains(r#"pushed_filters=["status" = 'completed']"#),
        "{plan}"
    );
    // The function's column is read; the pushed filter's column is not projected.
    assert!(plan.contains("columns=[run_name]"), "{plan}");
}

#[test]
fn inexact_filters_are_pushed_and_rechecked() {
    // A prefix of a real run id, dashed as users see it: the store keeps it without dashes.
    let runs = golden_rows("runs");
    let prefix = &runs[0]["run_id"].as_str().unwrap()[..13];
    let sql = format!("SELECT run_id FROM runs WHERE run_id LIKE '{prefix}%'");
    let plan = physical_plan(&sql);
    let stored = prefix.replace('-', "");
    assert!(
        plan.contains(&format!(r#"pushed_filters=["run_id" LIKE '{stored}%'"#)),
        "{plan}"
    );
    assert!(
        plan.contains("FilterExec"),
        "inexact filters are checked again: {plan}"
    );
    let rows = query_json(&sql);
    let expected = runs
        .iter()
        .filter(|r| r["run_id"].as_str().unwrap().starts_with(prefix))
        .count();
    assert!(expected >= 1);
    assert_eq!(rows.len(), expected);
}

#[test]
fn large_json_is_read_only_when_projected() {
    let plan = physical_plan("SELECT run_name, status FROM runs");
    assert!(plan.contains("columns=[run_name, status]"), "{plan}");
    let sql = scan_sql("SELECT run_name FROM runs");
    assert!(
        sql.contains(
            "SELECT \"run_name\" FROM (SELECT r.name AS \"run_name\" FROM pipeline_run r)"
        ),
        "{sql}"
    );
    assert!(
        !sql.contains("pipeline_configuration") && !sql.contains("JOIN"),
        "nothing else is read: {sql}"
    );
}

#[test]
fn pushed_results_equal_unpushed_results() {
    // The same question asked with pushable and unpushable filters gives the same rows.
    for (pushed, kept) in [
        ("status = 'cached'", "concat(status, '') = 'cached'"),
        ("duration_s > 0.5", "duration_s + 0 > 0.5"),
        (
            "step_name IN ('step_1', 'evaluator')",
            "concat(step_name, '') IN ('step_1', 'evaluator')",
        ),
        (
            "start_time >= '2000-01-01T00:00:00Z' AND NOT is_cached",
            "date_part('year', start_time) >= 2000 AND is_cached = concat('f', 'alse')::boolean",
        ),
        (
            "step_name LIKE '%stats%' OR step_rindex = -1",
            "concat(step_name, '') LIKE '%stats%' OR step_rindex + 0 = -1",
        ),
        (
            "original_step_id IS NOT NULL",
            "concat(original_step_id, '') <> ''",
        ),
    ] {
        let a = query_json(&format!(
            "SELECT step_id FROM steps WHERE {pushed} ORDER BY step_id"
        ));
        let b = query_json(&format!(
            "SELECT step_id FROM steps WHERE {kept} ORDER BY step_id"
        ));
        assert_eq!(a, b, "{pushed} vs {kept}");
        assert!(!a.is_empty(), "{pushed} selects rows");
    }
}

#[test]
fn values_are_bound_not_spliced() {
    // A quote in a value is data, not SQL: nothing matches, nothing breaks.
    let rows = query_json("SELECT run_id FROM runs WHERE run_name = 'x'' OR 1=1 --'");
    assert!(rows.is_empty());
    let sql = scan_sql("SELECT run_id FROM runs WHERE run_name = 'first-custom'");
    assert!(sql.contains(r#"WHERE ("run_name" = ?)"#), "{sql}");
    assert!(!sql.contains("first-custom"), "{sql}");
}

#[test]
fn count_star_reads_no_columns() {
    let rows = query_json("SELECT count(*) AS n FROM steps");
    assert_eq!(rows[0]["n"], golden_rows("steps").len());
}

/// `output_rows` of each ZenScanExec in `EXPLAIN ANALYZE <sql>` run with `partitions`
/// target partitions, by table.
fn rows_read(sql: &str, partitions: usize) -> Vec<(String, usize)> {
    let script =
        format!("SET datafusion.execution.target_partitions = {partitions}; EXPLAIN ANALYZE {sql}");
    let out = stdout_ok(runql_fixture().args(["--format", "csv", "-c", &script]));
    out.split("ZenScanExec: table=")
        .skip(1)
        .map(|scan| {
            let table = scan.split(',').next().unwrap().to_string();
            let rows = scan
                .split("output_rows=")
                .nth(1)
                .and_then(|r| r.split([',', ']']).next())
                .unwrap_or_else(|| panic!("no output_rows in {scan}"));
            (table, rows.parse().unwrap())
        })
        .collect()
}

#[test]
fn join_keys_reach_the_probe_side_scan() {
    // A hash join hands its build side's keys to the other scan once it has them, so
    // `runs[-1]`-style lookups read one run's outputs, not every output in the store.
    let runs = golden_rows("runs");
    let outputs = golden_rows("outputs");
    let run = runs
        .iter()
        .find(|r| r["run_name"] == "first-custom")
        .expect("fixture run");
    let expected = outputs
        .iter()
        .filter(|o| o["run_id"] == run["run_id"])
        .count();
    assert!(expected >= 1 && expected < outputs.len());
    let sql = "SELECT o.output_name FROM runs r JOIN outputs o ON o.run_id = r.run_id \
               WHERE r.run_name = 'first-custom'";
    // Partitioned (a CASE over hash partitions) and collect-left (an IN list or a hash
    // table with min/max bounds) joins build different filters: both must reach SQLite.
    for partitions in [1, 2] {
        let read = rows_read(sql, partitions);
        assert_eq!(
            read,
            vec![("runs".to_string(), 1), ("outputs".to_string(), expected)],
            "target_partitions={partitions}"
        );
    }
    // And the answer is the join's, filter or not.
    let rows = query_json(sql);
    assert_eq!(rows.len(), expected);
}

#[test]
fn sort_and_limit_are_pushed_and_wide_columns_computed_last() {
    // "The latest runs with every column": SQLite sorts and stops at 3 rows, and computes
    // tags, configs and run counts for those 3 only.
    let sql = "SELECT * FROM runs ORDER BY start_time DESC LIMIT 3";
    let plan = physical_plan(sql);
    assert!(
        plan.contains(r#"order=["start_time" DESC NULLS FIRST], limit=3"#),
        "{plan}"
    );
    assert!(
        !plan.contains("SortExec"),
        "DataFusion does not sort again: {plan}"
    );
    let verbose = explain(&format!("VERBOSE {sql}"));
    let executed = &verbose
        .iter()
        .find(|(kind, _)| kind == "physical_plan")
        .unwrap()
        .1;
    assert!(
        executed.contains(r#"(SELECT "__key0" FROM (SELECT r.id AS "__key0""#),
        "{executed}"
    );
    // The runs' positions from the end count their pipelines' runs for those rows alone
    // (an index lookup each), not as an aggregate over every run.
    assert!(
        executed.contains(
            "(SELECT COUNT(*) FROM pipeline_run pr WHERE pr.pipeline_id = r.pipeline_id)"
        ),
        "{executed}"
    );
    // The answer is the one DataFusion gives sorting by itself.
    let ours = query_json(sql);
    let plain = query_json_on_with(&fixture_store(), sql, &["--no-pushdown"]);
    assert_eq!(ours, plain);
    assert_eq!(ours.len(), 3);
    // Every pipeline's runs, counted either way.
    let every = "SELECT pipeline_name, run_id, run_index, run_rindex FROM runs \
                 ORDER BY start_time DESC, run_id LIMIT 1000";
    let ours = query_json(every);
    assert_eq!(
        ours,
        query_json_on_with(&fixture_store(), every, &["--no-pushdown"])
    );
    assert!(ours.iter().any(|r| r["run_rindex"] == -1) && ours.len() > 3);

    // A sort on an expression, or a list column, stays in DataFusion.
    let plan = physical_plan("SELECT run_name FROM runs ORDER BY lower(run_name) LIMIT 2");
    assert!(plan.contains("SortExec"), "{plan}");
    assert!(!plan.contains("order=["), "{plan}");
}

#[test]
fn no_pushdown_leaves_everything_to_datafusion() {
    let sql = "SELECT run_name FROM runs WHERE status = 'completed' ORDER BY run_name LIMIT 2";
    let output = runql_fixture()
        .args(["--no-pushdown", "--format", "json", "-c"])
        .arg(format!("EXPLAIN {sql}"))
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&output.stdout);
    assert!(plan.contains("ZenScanExec: table=runs"), "{plan}");
    assert!(
        !plan.contains("pushed_filters") && !plan.contains("limit="),
        "{plan}"
    );
    assert_eq!(
        query_json(sql),
        query_json_on_with(&fixture_store(), sql, &["--no-pushdown"])
    );
}

#[test]
fn timing_shows_each_scan() {
    let output = runql_fixture()
        .args(["--timing", "--format", "csv", "-c"])
        .arg("SELECT count(*) FROM runs r JOIN steps s ON s.run_id = r.run_id")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let runs = golden_rows("runs").len();
    assert!(
        stderr.contains(&format!("scan runs: {runs} rows from the store in ")),
        "{stderr}"
    );
    assert!(stderr.contains("scan steps: "), "{stderr}");
    assert!(stderr.contains("in DataFusion and printing"), "{stderr}");
    // stdout holds the result alone.
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 2);
}

/// Found by the differential tests: an id in another spelling (upper case, no dashes) equals
/// no `run_id` in DataFusion, so pushdown must not make it match.
#[test]
fn other_spellings_of_an_id_match_nothing_as_in_datafusion() {
    let id = golden_rows("runs")[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    for spelling in [id.to_uppercase(), id.replace('-', "")] {
        let sql = format!("SELECT run_id FROM runs WHERE run_id = '{spelling}'");
        assert!(query_json(&sql).is_empty(), "{sql}");
        let plan = physical_plan(&sql);
        assert!(
            plan.contains("FilterExec"),
            "only narrowed in the store: {plan}"
        );
        let sql = format!("SELECT count(*) AS n FROM runs WHERE run_id <> '{spelling}'");
        assert_eq!(
            query_json(&sql)[0]["n"].as_u64().unwrap() as usize,
            golden_rows("runs").len(),
            "{sql}"
        );
    }
    let sql = format!("SELECT run_id FROM runs WHERE run_id = '{id}'");
    assert_eq!(query_json(&sql).len(), 1);
}

/// Found by the long differential run: a metadata value linked to a step and to its run has
/// one `run_metadata.id` for two rows, and joining the first rows' keys to the wide query
/// returned such rows twice.
#[test]
fn first_rows_by_a_repeating_key_are_not_doubled() {
    for release in ["0.85.0", "0.98.0"] {
        let store = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/zenml-{release}/zenml.db"));
        let sql = "SELECT * FROM metadata WHERE publisher_step_id IS NOT NULL \
                   ORDER BY resource_type, resource_id, key, value, value_type, publisher_step_id, created LIMIT 5";
        assert_eq!(
            query_json_on(&store, sql),
            query_json_on_with(&store, sql, &["--no-pushdown"]),
            "{release}"
        );
    }
}

/// Found by the long differential run (MariaDB, ZenML 0.84.3, seed 106): one `run_metadata`
/// value linked to two steps is two rows under one `run_metadata.id`; with that id as the
/// row key, a sorted, limited scan filtered on one step's id joined the other step's row
/// back in, unfiltered. The key is now the link's own id.
#[test]
fn first_rows_by_key_keep_only_the_filtered_rows() {
    for release in ["0.84.3", "0.85.0", "0.98.0"] {
        let store = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/zenml-{release}/zenml.db"));
        // A step whose metadata value is linked to another resource too.
        let db = rusqlite::Connection::open_with_flags(
            &store,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let step: String = db
            .query_row(
                "SELECT resource_id FROM run_metadata_resource WHERE resource_type = 'step_run' \
                 AND run_metadata_id IN (SELECT run_metadata_id FROM run_metadata_resource \
                 GROUP BY run_metadata_id HAVING count(DISTINCT resource_id) > 1) \
                 ORDER BY resource_id LIMIT 1",
                [],
                |row| row.get(0),
            )
            .unwrap_or_else(|e| panic!("{release}: no shared metadata value: {e}"));
        let step = runql::tables::dashed_id(&step).unwrap();
        for filter in [
            format!("resource_id = '{step}'"),
            format!("NOT (resource_id <> '{step}')"),
        ] {
            let sql = format!(
                "SELECT * FROM metadata WHERE {filter} ORDER BY resource_type, resource_id, key, \
                 value, value_type, publisher_step_id, created LIMIT 5"
            );
            let rows = query_json_on(&store, &sql);
            assert_eq!(
                rows,
                query_json_on_with(&store, &sql, &["--no-pushdown"]),
                "{release}: {sql}"
            );
            assert!(!rows.is_empty(), "{release}: {sql}");
            for row in &rows {
                assert_eq!(row["resource_id"], step.as_str(), "{release}: {sql}");
            }
        }
    }
}
