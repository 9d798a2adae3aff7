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
