//! `runql export`: Parquet that any engine reads, atomic, and readable back as the same tables.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

/// The same rows, in any order, each as often.
fn same_rows(a: Vec<Value>, b: Vec<Value>) -> bool {
    let key = |rows: Vec<Value>| {
        let mut keys: Vec<String> = rows.iter().map(Value::to_string).collect();
        keys.sort();
        keys
    };
    key(a) == key(b)
}

fn export(dir: &Path, extra: &[&str]) -> std::process::Output {
    runql_fixture()
        .arg("export")
        .arg("--to")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

/// A fresh export of the fixture store, in a folder of its own.
fn exported(extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path(), extra);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

#[test]
fn every_report_gives_the_same_answer_on_the_export() {
    let dir = exported(&[]);
    let output_id = golden_rows("outputs")[0]["output_id"]
        .as_str()
        .unwrap()
        .to_string();
    let values = [
        ("pipeline", "first_pipeline"),
        ("run", "first-custom"),
        ("step", "step_1"),
        ("since", "2000-01-01T00:00:00Z"),
        ("until", "2100-01-01T00:00:00Z"),
        ("output", "output"),
        ("output_id", output_id.as_str()),
    ];
    for report in runql::reports::all(None).unwrap() {
        if report.sql.contains("output_value") {
            continue; // reads artifact files, which an export does not carry
        }
        let run = |store: &Path| {
            let mut cmd = runql();
            cmd.arg("--store")
                .arg(store)
                .args(["--format", "json", "query", &report.name]);
            for param in report.parameters() {
                let (_, value) = values
                    .iter()
                    .find(|(k, _)| *k == param)
                    .expect("a value for every parameter");
                cmd.args(["--param", &format!("{param}={value}")]);
            }
            stdout_ok(&mut cmd)
        };
        let from_store = run(&fixture_store());
        let from_export = run(dir.path());
        assert_eq!(
            from_store, from_export,
            "report {} differs on the export",
            report.name
        );
        assert!(
            from_store.len() > 3,
            "report {} returned nothing",
            report.name
        );
    }
    // And whole tables, column for column.
    for table in TABLES {
        let sql = format!("SELECT * FROM {table}");
        assert!(
            same_rows(query_json(&sql), query_json_on(dir.path(), &sql)),
            "{table} differs on the export"
        );
    }
}

#[test]
fn pyarrow_reads_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path(), &["--partition-by", "pipeline_name"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python = python_with("pyarrow", "pyarrow");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export_check.py");
    let output = std::process::Command::new(&python)
        .arg(script)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "pyarrow could not read the export (set RUNQL_PYTHON to a python with pyarrow; .ci/run does): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let found: Value = serde_json::from_slice(&output.stdout).unwrap();
    for table in TABLES {
        assert_eq!(
            found[table]["rows"],
            golden_rows(table).len(),
            "{table} rows"
        );
    }
    assert_eq!(
        found["runs"]["columns"]["start_time"],
        "timestamp[us, tz=UTC]"
    );
    assert_eq!(found["runs"]["columns"]["tags"], "list<item: string>");
    assert_eq!(
        found["runs"]["columns"]["pipeline_name"], "string",
        "the Hive partition column"
    );
    assert!(
        found["runs"]["metadata"]["runql.column.run_rindex"]
            .as_str()
            .unwrap()
            .contains("-1 is the latest run")
    );
}

#[test]
fn since_exports_only_newer_runs_and_their_children() {
    let runs = golden_rows("runs");
    let mut starts: Vec<&str> = runs
        .iter()
        .map(|r| r["start_time"].as_str().unwrap())
        .collect();
    starts.sort();
    let cut = starts[starts.len() / 2];
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path(), &["--since", cut]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported = query_json_on(dir.path(), "SELECT count(*) AS n FROM runs");
    let expected = query_json(&format!(
        "SELECT count(*) AS n FROM runs WHERE created >= '{cut}'"
    ));
    assert_eq!(exported, expected);
    let orphans = query_json_on(
        dir.path(),
        "SELECT count(*) AS n FROM steps WHERE run_id NOT IN (SELECT run_id FROM runs)",
    );
    assert_eq!(orphans[0]["n"], 0);
}

#[test]
fn a_failed_export_leaves_the_folder_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    assert!(export(dir.path(), &[]).status.success());
    let before = std::fs::read_to_string(dir.path().join("manifest.json")).unwrap();
    let out = export(dir.path(), &["--tables", "runs,nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no table nope"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("manifest.json")).unwrap(),
        before
    );
    // Killed mid-way, at several points: the tables stay whole and readable.
    for delay_ms in [5, 20, 50, 100, 200] {
        let mut child = runql_fixture()
            .arg("export")
            .arg("--to")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        for table in ["runs", "steps", "metadata"] {
            let sql = format!("SELECT count(*) AS n FROM {table}");
            assert_eq!(
                query_json_on(dir.path(), &sql),
                query_json(&sql),
                "{table} after a kill at {delay_ms} ms"
            );
        }
    }
    // The next export cleans up after the killed one.
    assert!(export(dir.path(), &[]).status.success());
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".runql-staging")
    }));
}

#[test]
fn exporting_again_adds_only_changed_runs_and_never_duplicates() {
    let (_store_dir, store) = fixture_copy();
    let dir = tempfile::tempdir().unwrap();
    let export_from = |store: &Path| export_store(store, dir.path());
    assert!(export_from(&store).status.success());
    let manifest = |dir: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
    };
    assert_eq!(manifest(dir.path())["runs_read"], golden_rows("runs").len());

    // ZenML changes one run (as when a running run finishes) after the first export.
    let writer = rusqlite::Connection::open(&store).unwrap();
    writer
        .execute(
            "UPDATE pipeline_run SET status = 'failed', updated = '2999-01-01 00:00:00.000000' WHERE name = 'first-custom'",
            [],
        )
        .unwrap();
    drop(writer);
    let out = export_from(&store);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = manifest(dir.path())["runs_read"].as_u64().unwrap();
    assert!(
        read >= 1 && read < golden_rows("runs").len() as u64,
        "read {read} runs, not only the changed one"
    );

    // The export equals the store, table by table: the change is in, nothing twice.
    for table in ["runs", "steps", "outputs", "inputs", "metadata"] {
        let sql = format!("SELECT * FROM {table}");
        assert!(
            same_rows(query_json_on(&store, &sql), query_json_on(dir.path(), &sql)),
            "{table} differs from the store"
        );
    }
    let status = query_json_on(
        dir.path(),
        "SELECT status FROM runs WHERE run_name = 'first-custom'",
    );
    assert_eq!(status, vec![serde_json::json!({"status": "failed"})]);
}

#[test]
fn a_folder_of_another_store_is_refused() {
    let (_store_dir, store) = fixture_copy();
    let dir = tempfile::tempdir().unwrap();
    assert!(export(dir.path(), &[]).status.success());
    let out = runql()
        .arg("--store")
        .arg(&store)
        .arg("export")
        .arg("--to")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds an export of another store"));
}

/// Found by comparing a store with its incremental export: a new run makes every earlier run
/// of its pipeline one further from the end, but their rows were kept as exported, so two
/// runs had `run_rindex = -2`. The export must equal the store after any change.
#[test]
fn an_incremental_export_equals_the_store_after_a_new_run() {
    let (store_dir, store) = fixture_copy();
    let dir = tempfile::tempdir().unwrap();
    let export_from = |store: &Path| export_store(store, dir.path());
    assert!(export_from(&store).status.success());
    // One more run, cloned from a real one with every reference (bench/grow_store.py).
    let runs = golden_rows("runs").len();
    let grown = store_dir.path().join("grown.db");
    let grow = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/grow_store.py"))
        .arg(fixture_store())
        .arg(&grown)
        .arg((runs + 1).to_string())
        .output()
        .unwrap();
    assert!(
        grow.status.success(),
        "{}",
        String::from_utf8_lossy(&grow.stderr)
    );
    std::fs::copy(&grown, &store).unwrap();
    let out = export_from(&store);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for table in TABLES {
        let sql = format!("SELECT * FROM {table}");
        assert!(
            same_rows(query_json_on(&store, &sql), query_json_on(dir.path(), &sql)),
            "{table} differs from the store after a new run"
        );
    }
    let latest = query_json_on(
        dir.path(),
        "SELECT pipeline_name, count(*) AS n FROM runs WHERE run_rindex = -2 GROUP BY pipeline_name",
    );
    assert!(latest.iter().all(|r| r["n"] == 1), "{latest:?}");
}

/// Each table's columns (name and type) and rows (in a stable order) as a folder reads them.
fn tables_as_read(folder: &Path) -> Vec<(Vec<Value>, Vec<String>)> {
    TABLES
        .iter()
        .map(|table| {
            let columns = query_json_on(folder, &format!("DESCRIBE {table}"))
                .into_iter()
                .map(|c| serde_json::json!([c["column_name"], c["data_type"]]))
                .collect();
            let mut rows: Vec<String> = query_json_on(folder, &format!("SELECT * FROM {table}"))
                .iter()
                .map(Value::to_string)
                .collect();
            rows.sort();
            (columns, rows)
        })
        .collect()
}

#[test]
fn recorded_columns_read_as_the_footers_do_and_spare_the_other_tables_files() {
    for partition in [None, Some("date"), Some("pipeline_name")] {
        let extra: Vec<&str> = partition.map_or(vec![], |p| vec!["--partition-by", p]);
        let dir = exported(&extra);
        let recorded = tables_as_read(dir.path());
        assert!(
            recorded
                .iter()
                .all(|(columns, rows)| columns.len() > 3 && !rows.is_empty())
        );

        // With the columns recorded, a query of one table opens no other table's files:
        // the metadata table's files are made unreadable, and runs still answer.
        let copy = tempfile::tempdir().unwrap();
        let copied = copy.path().join("export");
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(dir.path())
            .arg(&copied)
            .status()
            .unwrap();
        assert!(status.success());
        for file in walk_files(&copied.join("metadata")) {
            std::fs::write(file, b"not parquet").unwrap();
        }
        let sql = "SELECT count(*) AS n FROM runs";
        assert_eq!(
            query_json_on(&copied, sql),
            query_json_on(dir.path(), sql),
            "{partition:?}"
        );

        // A folder whose manifest records none (an older runql's) reads the same, from its
        // footers, and then needs every table's files.
        forget_recorded_columns(dir.path());
        assert_eq!(
            tables_as_read(dir.path()),
            recorded,
            "partition {partition:?}"
        );
        forget_recorded_columns(&copied);
        let out = runql()
            .arg("--store")
            .arg(&copied)
            .args(["-c", sql])
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "footers were not read: {partition:?}"
        );
    }
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_lookup_of_an_absent_id_skips_row_groups_by_their_bloom_filters() {
    let dir = exported(&[]);
    for (table, column) in [
        ("runs", "run_id"),
        ("runs", "run_name"),
        ("steps", "run_id"),
        ("steps", "step_id"),
        ("steps", "run_name"),
        ("outputs", "run_id"),
        ("outputs", "output_id"),
        ("outputs", "step_id"),
        ("outputs", "run_name"),
        ("inputs", "run_id"),
        ("inputs", "step_id"),
        ("metadata", "resource_id"),
    ] {
        // A value between the column's smallest and largest: min/max statistics keep its row
        // group, only a bloom filter can tell it is not there.
        let ids: Vec<String> = query_json_on(
            dir.path(),
            &format!(
                "SELECT DISTINCT {column} AS id FROM {table} WHERE {column} IS NOT NULL ORDER BY 1"
            ),
        )
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
        assert!(ids.len() >= 3, "{table}.{column}: {ids:?}");
        let middle = &ids[ids.len() / 2];
        // Just after it: no other value sorts between the two.
        let absent = format!("{middle}\u{1}");
        assert!(!ids.contains(&absent));
        let plan = stdout_ok(runql().arg("--store").arg(dir.path()).args([
            "--format",
            "csv",
            "-c",
            &format!("EXPLAIN ANALYZE SELECT count(*) FROM {table} WHERE {column} = '{absent}'"),
        ]));
        let pruned = plan
            .split("row_groups_pruned_bloom_filter=")
            .skip(1)
            .any(|m| {
                m.split(',')
                    .next()
                    .is_some_and(|m| m.ends_with("total → 0 matched") && !m.starts_with('0'))
            });
        assert!(
            pruned,
            "{table}.{column}: no row group skipped by a bloom filter:\n{plan}"
        );
    }
}

/// Found by `differential::export_gives_the_stores_answer`: DataFusion 55's Parquet row
/// filter, given a null check and a function of a list column in one disjunction, kept
/// every run of the export where the store keeps none. The export is read without row
/// filters; each of these gives the store's answer.
#[test]
fn a_null_check_beside_a_list_function_filters_the_export_as_the_store() {
    let dir = exported(&[]);
    for filter in [
        "(status_reason IS NOT NULL) OR (cardinality(tags) > 2)",
        "(cardinality(tags) > 2) OR (pipeline_version IS NOT NULL)",
        "(status_reason IS NOT NULL) OR (cardinality(tags) = 1)",
        "(status_reason IS NULL) OR (cardinality(tags) > 100)",
    ] {
        let sql = format!("SELECT run_id FROM runs WHERE {filter}");
        let (store, export) = (query_json(&sql), query_json_on(dir.path(), &sql));
        assert!(
            same_rows(store.clone(), export.clone()),
            "{filter}: store {store:?}, export {export:?}"
        );
    }
}
