//! The command-line contract: formats, exit codes, one-line errors, script modes.

use serde_json::Value;

use crate::common::*;

fn stdout_of(args: &[&str]) -> String {
    let output = runql_fixture().args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A failure: the exit code, and stderr is one `error: ...` line without panics.
fn assert_one_line_error(output: &std::process::Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn json_types_are_json() {
    let rows = query_json(
        "SELECT run_name, run_index, duration_s, is_cached, git_sha, tags, start_time FROM runs WHERE run_name = 'data-nightly-001'",
    );
    let golden = golden_rows("runs")
        .into_iter()
        .find(|r| r["run_name"] == "data-nightly-001")
        .unwrap();
    let row = &rows[0];
    assert!(row["run_index"].is_i64());
    assert!(row["duration_s"].is_f64());
    assert!(row["is_cached"].is_boolean());
    assert!(row["git_sha"].is_null(), "NULL is null");
    assert_eq!(row["tags"], golden["tags"]);
    let start = row["start_time"].as_str().unwrap();
    assert!(
        start.ends_with('Z') && start.contains('T'),
        "ISO-8601 UTC: {start}"
    );
    assert_eq!(row["start_time"], golden["start_time"]);
}

#[test]
fn ndjson_is_one_object_per_line() {
    let out = stdout_of(&[
        "--format",
        "ndjson",
        "-c",
        "SELECT pipeline_name, run_count FROM pipelines ORDER BY pipeline_index",
    ]);
    let golden = golden_rows("pipelines");
    assert_eq!(out.lines().count(), golden.len());
    for line in out.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        assert!(row["run_count"].is_i64());
    }
}

#[test]
fn csv_and_tsv_have_headers() {
    let out = stdout_of(&[
        "--format",
        "csv",
        "-c",
        "SELECT pipeline_name, run_count FROM pipelines ORDER BY pipeline_index",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("pipeline_name,run_count"));
    assert_eq!(lines.count(), golden_rows("pipelines").len());
    let out = stdout_of(&[
        "--format",
        "tsv",
        "-c",
        "SELECT run_name, tags FROM runs WHERE run_name = 'data-nightly-001'",
    ]);
    assert_eq!(out.lines().next(), Some("run_name\ttags"));
    assert!(out.contains("data-nightly-001\t[etl, nightly]"), "{out}");
    let out = stdout_of(&["--format", "csv", "--no-header", "-c", "SELECT 1 AS one"]);
    assert_eq!(out, "1\n");
    let out = stdout_of(&[
        "--format",
        "csv",
        "-c",
        "SELECT run_name FROM runs WHERE false",
    ]);
    assert_eq!(out, "run_name\n", "an empty result still has its header");
}

#[test]
fn empty_json_result_is_an_empty_array() {
    assert_eq!(
        stdout_of(&[
            "--format",
            "json",
            "-c",
            "SELECT run_name FROM runs WHERE false"
        ]),
        "[]\n"
    );
}

#[test]
fn table_and_markdown_formats() {
    let table = stdout_of(&[
        "-c",
        "SELECT pipeline_name FROM pipelines ORDER BY pipeline_index",
    ]);
    assert!(table.contains("| pipeline_name  |"), "{table}");
    assert!(table.contains("| first_pipeline |"), "{table}");
    let md = stdout_of(&[
        "--format",
        "markdown",
        "-c",
        "SELECT pipeline_name, run_count FROM pipelines WHERE pipeline_name = 'flaky_pipeline'",
    ]);
    assert_eq!(
        md,
        "| pipeline_name | run_count |\n|---|---|\n| flaky_pipeline | 1 |\n"
    );
}

#[test]
fn statements_run_in_order_and_stop_at_first_failure() {
    let output = runql_fixture()
        .args([
            "--format",
            "csv",
            "--no-header",
            "-c",
            "SELECT 1; SELECT 2",
            "-c",
            "SELECT nope FROM runs",
            "-c",
            "SELECT 3",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "1\n2\n");
    assert_one_line_error(&output, 1, "nope");
}

#[test]
fn file_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("report.sql");
    std::fs::write(
        &script,
        "SELECT 1;\n\nSELECT\n  missing_column FROM runs;\n",
    )
    .unwrap();
    let output = runql_fixture()
        .args(["--format", "csv", "-f"])
        .arg(&script)
        .output()
        .unwrap();
    assert_one_line_error(&output, 1, "report.sql: line 3: ");
}

#[test]
fn stdin_is_read_when_not_a_terminal() {
    let output = output_with_stdin(
        runql().args(["--demo", "--format", "csv", "--no-header"]),
        "SELECT count(*) FROM pipelines;\n",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{}\n", golden_rows("pipelines").len())
    );
}

#[test]
fn demo_store_is_the_real_fixture() {
    let out = runql()
        .args([
            "--demo",
            "--format",
            "csv",
            "--no-header",
            "-c",
            "SELECT count(*) FROM runs",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        golden_rows("runs").len().to_string()
    );
}

#[test]
fn bad_sql_is_one_line_exit_1() {
    let output = runql_fixture()
        .args(["-c", "SELEC * FROM runs"])
        .output()
        .unwrap();
    assert_one_line_error(&output, 1, "SELEC");
    let output = runql_fixture()
        .args(["-c", "SELECT * FROM no_such_table"])
        .output()
        .unwrap();
    assert_one_line_error(&output, 1, "no_such_table");
}

#[test]
fn bad_flags_are_usage_errors() {
    let output = runql().args(["--frobnicate"]).output().unwrap();
    assert_one_line_error(&output, 2, "--frobnicate");
    let output = runql()
        .args(["--demo", "--format", "yaml", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert_one_line_error(&output, 2, "yaml");
    assert!(stdout_ok(runql().arg("--help")).contains("--store"));
}

#[test]
fn broken_pipe_exits_quietly() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_runql"))
        .args(["--demo", "--format", "csv", "-c"])
        .arg("SELECT a.step_id FROM steps a, steps b, steps c, steps d")
        .env("HOME", std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout); // the reader goes away, like `| head -c 64`
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "status {status}, stderr {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn stdin_runs_statement_by_statement_and_stops_at_a_parse_error() {
    // psql -v ON_ERROR_STOP=1, sqlite3 and DuckDB run what precedes a typo, then stop.
    let output = output_with_stdin(
        runql_fixture().args(["--format", "csv"]),
        "SELECT 1 AS x; SELEC 2;\nSELECT 3 AS y;\n",
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "x\n1\n");
    assert_one_line_error(&output, 1, "stdin: line 1: ");

    let output = output_with_stdin(
        runql_fixture().args(["--format", "csv", "--no-header"]),
        "SELECT 1;\n-- a comment; with a semicolon\nSELECT ';'\n  AS semi;\n\nSELECT 2 FROM;\n",
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "1\n;\n");
    assert_one_line_error(&output, 1, "stdin: line 6: ");
}

#[test]
fn several_commands_stop_at_the_one_that_does_not_parse() {
    let output = runql_fixture()
        .args([
            "--format",
            "csv",
            "-c",
            "SELECT 1 AS x",
            "-c",
            "SELEC 2",
            "-c",
            "SELECT 3",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "x\n1\n");
    assert_one_line_error(&output, 1, "SELEC");
}

#[test]
fn backslash_commands_run_in_scripts() {
    // `\d` from -c lists the tables, as psql runs its commands from -c.
    let listed: Value =
        serde_json::from_str(&stdout_of(&["--format", "json", "-c", "\\d"])).unwrap();
    let tables: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert_eq!(
        tables,
        [
            "pipelines",
            "runs",
            "steps",
            "outputs",
            "inputs",
            "metadata"
        ]
    );
    // `\d runs` follows --format: the table's contract as JSON.
    let contract: Value =
        serde_json::from_str(&stdout_of(&["--format", "json", "-c", "\\d runs"])).unwrap();
    let columns: Vec<&str> = contract
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["column"].as_str().unwrap())
        .collect();
    assert_eq!(columns[..2], ["run_id", "run_name"]);
    assert!(columns.contains(&"pipeline_version"));
    // Commands and SQL mix in a script; \format changes what follows; \q stops it.
    let output = output_with_stdin(
        runql_fixture().args(["--format", "csv"]),
        "SELECT 1 AS a;\n\\format json\nSELECT 2 AS b;\n\\q\nSELECT 3 AS c;\n",
    );
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "a\n1\n[\n{\"b\":2}\n]\n"
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // An unknown command stops the script like a failing statement.
    let output = output_with_stdin(
        runql_fixture().args(["--format", "csv"]),
        "SELECT 1 AS a;\n\\nope\nSELECT 2;\n",
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "a\n1\n");
    assert_one_line_error(&output, 1, "stdin: line 2: unknown command \\nope");
}

#[test]
fn reports_are_listed_without_a_store() {
    // No --store, no RUNQL_STORE, no ZenML config: listing and help need none.
    let out = stdout_ok(runql().args(["query", "--list"]));
    assert!(
        out.lines().any(|l| l.starts_with("slowest_steps ")),
        "{out}"
    );
    let help = stdout_ok(runql().args(["query", "slowest_steps", "--help"]));
    assert!(help.contains("--param pipeline=VALUE"), "{help}");
    assert!(help.contains("FROM steps"), "the report's SQL: {help}");
    let usage = stdout_ok(runql().args(["query", "--help"]));
    assert!(usage.contains("--param"), "{usage}");
    // Running SQL still asks for a store.
    let output = runql().args(["-c", "SELECT 1"]).output().unwrap();
    assert_one_line_error(&output, 1, "no ZenML store found");
}
