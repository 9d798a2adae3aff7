//! Every report in `queries/` runs on the fixture and gives ZenML's answer.

use std::path::PathBuf;

use serde_json::Value;

use crate::common::*;

/// `runql query NAME --param ...` on the fixture, as JSON rows.
fn report(name: &str, params: &[&str]) -> Vec<Value> {
    let mut cmd = runql_fixture();
    cmd.args(["--format", "json", "query", name]);
    for p in params {
        cmd.args(["--param", p]);
    }
    json_rows(&cmd.output().unwrap(), name)
}

/// A seed traversal report with the fixture's pipeline, run and step names.
fn run_query_file(name: &str) -> Vec<Value> {
    let params: &[&str] = match name {
        "pipeline_by_name" | "pipeline_runs" | "latest_run" | "run_steps" | "last_step_output" => {
            &["pipeline=first_pipeline"]
        }
        "run_by_name" | "run_details" => &["run=first-custom"],
        "step_by_name" | "step_outputs" => &["pipeline=first_pipeline", "step=step_1"],
        "step_output" => &["pipeline=first_pipeline", "step=evaluator"],
        _ => &[],
    };
    report(name, params)
}

fn ids(rows: &[Value], field: &str) -> Vec<String> {
    rows.iter()
        .map(|r| r[field].as_str().unwrap_or_default().to_string())
        .collect()
}

fn first_pipeline_runs() -> Vec<Value> {
    let mut runs: Vec<Value> = golden_rows("runs")
        .into_iter()
        .filter(|r| r["pipeline_name"] == "first_pipeline")
        .collect();
    runs.sort_by_key(|r| r["run_index"].as_i64());
    runs
}

fn latest_first_run() -> Value {
    first_pipeline_runs().pop().unwrap()
}

/// ZenML's `run.steps` of the latest first_pipeline run, in ZenML's order.
fn latest_steps() -> Vec<Value> {
    let run = latest_first_run();
    let mut steps: Vec<Value> = golden_rows("steps")
        .into_iter()
        .filter(|s| s["run_id"] == run["run_id"])
        .collect();
    steps.sort_by_key(|s| s["step_index"].as_i64());
    steps
}

fn golden_outputs_of(step: &Value) -> Vec<Value> {
    let mut outputs: Vec<Value> = golden_rows("outputs")
        .into_iter()
        .filter(|o| o["step_id"] == step["step_id"])
        .collect();
    outputs.sort_by(|a, b| a["output_name"].as_str().cmp(&b["output_name"].as_str()));
    outputs
}

#[test]
fn every_query_file_is_tested() {
    let tested = [
        "pipelines",
        "pipeline_by_name",
        "pipeline_runs",
        "latest_run",
        "run_by_name",
        "run_details",
        "run_steps",
        "step_by_name",
        "step_outputs",
        "step_output",
        "last_step_output",
        "failure_rate",
        "slowest_steps",
        "cache_hit_rate",
        "config_changes",
        "lineage",
        "latest_outputs",
        "metric_over_runs",
        "last_step_output_value",
    ];
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("queries");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        assert!(
            tested.contains(&name.as_str()),
            "queries/{name}.sql has no test"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("-- "),
            "queries/{name}.sql must start with a description comment"
        );
        assert!(
            text.contains("-- ZenML: "),
            "queries/{name}.sql must name the ZenML call it mirrors"
        );
    }
}

#[test]
fn pipelines_in_zenml_order() {
    let mut golden = golden_rows("pipelines");
    golden.sort_by_key(|p| p["pipeline_index"].as_i64());
    assert_eq!(
        ids(&run_query_file("pipelines"), "pipeline_id"),
        ids(&golden, "pipeline_id")
    );
}

#[test]
fn pipeline_by_name() {
    let rows = run_query_file("pipeline_by_name");
    let golden: Vec<Value> = golden_rows("pipelines")
        .into_iter()
        .filter(|p| p["pipeline_name"] == "first_pipeline")
        .collect();
    assert_eq!(ids(&rows, "pipeline_id"), ids(&golden, "pipeline_id"));
    assert_eq!(rows[0]["run_count"], golden[0]["run_count"]);
}

#[test]
fn pipeline_runs_in_order() {
    let rows = run_query_file("pipeline_runs");
    assert_eq!(ids(&rows, "run_id"), ids(&first_pipeline_runs(), "run_id"));
    assert_eq!(rows.last().unwrap()["run_rindex"], -1);
}

#[test]
fn latest_run_is_runs_minus_one() {
    let rows = run_query_file("latest_run");
    assert_eq!(
        ids(&rows, "run_id"),
        vec![latest_first_run()["run_id"].as_str().unwrap().to_string()]
    );
}

#[test]
fn run_by_name() {
    let rows = run_query_file("run_by_name");
    let golden: Vec<Value> = golden_rows("runs")
        .into_iter()
        .filter(|r| r["run_name"] == "first-custom")
        .collect();
    assert_eq!(ids(&rows, "run_id"), ids(&golden, "run_id"));
}

#[test]
fn run_details() {
    let rows = run_query_file("run_details");
    let golden = golden_rows("runs")
        .into_iter()
        .find(|r| r["run_name"] == "first-custom")
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], golden["status"]);
    assert_eq!(rows[0]["git_sha"], golden["git_sha"]);
    assert!(same_value(
        &json_text(&rows[0]["parameters"]),
        &golden["parameters"]
    ));
    assert_eq!(json_text(&rows[0]["config"])["name"], golden["config_name"]);
}

#[test]
fn run_steps_in_order() {
    assert_eq!(
        ids(&run_query_file("run_steps"), "step_id"),
        ids(&latest_steps(), "step_id")
    );
}

#[test]
fn step_by_name() {
    let rows = run_query_file("step_by_name");
    let golden: Vec<Value> = latest_steps()
        .into_iter()
        .filter(|s| s["step_name"] == "step_1")
        .collect();
    assert_eq!(ids(&rows, "step_id"), ids(&golden, "step_id"));
    assert_eq!(rows[0]["entrypoint"], "digits_loader");
}

#[test]
fn step_outputs_by_name() {
    let step = latest_steps()
        .into_iter()
        .find(|s| s["step_name"] == "step_1")
        .unwrap();
    let rows = run_query_file("step_outputs");
    let golden = golden_outputs_of(&step);
    assert!(golden.len() > 1, "step_1 has several named outputs");
    assert_eq!(ids(&rows, "output_name"), ids(&golden, "output_name"));
    assert_eq!(ids(&rows, "output_id"), ids(&golden, "output_id"));
}

#[test]
fn step_single_output() {
    let step = latest_steps()
        .into_iter()
        .find(|s| s["step_name"] == "evaluator")
        .unwrap();
    let rows = run_query_file("step_output");
    let golden = golden_outputs_of(&step);
    assert_eq!(golden.len(), 1);
    assert_eq!(ids(&rows, "output_id"), ids(&golden, "output_id"));
    assert_eq!(rows[0]["output_name"], "output");
}

#[test]
fn closing_example_last_step_output() {
    let last = latest_steps().pop().unwrap();
    let rows = run_query_file("last_step_output");
    assert_eq!(
        ids(&rows, "output_id"),
        ids(&golden_outputs_of(&last), "output_id")
    );
    assert_eq!(rows[0]["step_name"], last["step_name"]);
}

#[test]
fn reports_are_the_files_of_queries_dir() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("queries");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .to_string()
        })
        .collect();
    files.sort();
    let mut built_in: Vec<String> = runql::reports::BUILT_IN
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    built_in.sort();
    assert_eq!(files, built_in, "every queries/ file is compiled in");
}

#[test]
fn failure_rate_over_a_window() {
    let runs = golden_rows("runs");
    let rows = report(
        "failure_rate",
        &["since=2000-01-01T00:00:00Z", "until=2100-01-01T00:00:00Z"],
    );
    for row in &rows {
        let name = &row["pipeline_name"];
        let of: Vec<&Value> = runs
            .iter()
            .filter(|r| &r["pipeline_name"] == name)
            .collect();
        let failed = of.iter().filter(|r| r["status"] == "failed").count();
        assert_eq!(row["runs"], of.len(), "{name}");
        assert_eq!(row["failed"], failed, "{name}");
    }
    assert_eq!(rows.len(), golden_rows("pipelines").len());
    assert_eq!(
        rows[0]["pipeline_name"], "flaky_pipeline",
        "highest failure rate first"
    );
    // A window before any run: nothing.
    assert!(
        report(
            "failure_rate",
            &["since=2000-01-01T00:00:00Z", "until=2000-01-02T00:00:00Z"]
        )
        .is_empty()
    );
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[test]
fn slowest_steps_percentiles() {
    let rows = report("slowest_steps", &["pipeline=first_pipeline"]);
    let steps = golden_rows("steps");
    assert!(!rows.is_empty());
    for row in &rows {
        let mut durations: Vec<f64> = steps
            .iter()
            .filter(|s| {
                s["pipeline_name"] == "first_pipeline"
                    && s["step_name"] == row["step_name"]
                    && s["is_cached"] == false
            })
            .filter_map(|s| s["duration_s"].as_f64())
            .collect();
        durations.sort_by(f64::total_cmp);
        assert_eq!(row["executions"], durations.len());
        for (field, q) in [("p50_s", 0.5), ("p95_s", 0.95)] {
            let got = row[field].as_f64().unwrap();
            // DataFusion interpolates in its own arithmetic: equal to well under a microsecond.
            assert!(
                (got - percentile(&durations, q)).abs() < 1e-6,
                "{field} {row}"
            );
        }
    }
}

#[test]
fn cache_hit_rate_per_pipeline() {
    let steps = golden_rows("steps");
    for row in report("cache_hit_rate", &[]) {
        let of: Vec<&Value> = steps
            .iter()
            .filter(|s| s["pipeline_name"] == row["pipeline_name"])
            .collect();
        let cached = of.iter().filter(|s| s["is_cached"] == true).count();
        assert_eq!(row["step_runs"], of.len());
        assert_eq!(row["cached"], cached);
    }
}

#[test]
fn config_changes_between_runs() {
    let mut expected = Vec::new();
    for pipeline in golden_rows("pipelines") {
        let mut runs: Vec<Value> = golden_rows("runs")
            .into_iter()
            .filter(|r| r["pipeline_id"] == pipeline["pipeline_id"])
            .collect();
        runs.sort_by_key(|r| r["run_index"].as_i64());
        for pair in runs.windows(2) {
            if !same_value(&pair[0]["parameters"], &pair[1]["parameters"]) {
                expected.push(pair[1]["run_name"].as_str().unwrap().to_string());
            }
        }
    }
    expected.sort();
    let mut got: Vec<String> = report("config_changes", &[])
        .iter()
        .map(|r| r["run_name"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
}

#[test]
fn lineage_walks_upstream() {
    // The latest accuracy of first_pipeline: evaluator <- model <- step_1's outputs.
    let evaluator = latest_steps()
        .into_iter()
        .find(|s| s["step_name"] == "evaluator")
        .unwrap();
    let output = golden_outputs_of(&evaluator).pop().unwrap();
    let rows = report(
        "lineage",
        &[&format!(
            "output_id={}",
            output["output_id"].as_str().unwrap()
        )],
    );
    // Expected from ZenML's inputs: walk producers' inputs recursively.
    let inputs = golden_rows("inputs");
    let outputs = golden_rows("outputs");
    let steps = golden_rows("steps");
    let producer = |output_id: &Value| -> Value {
        outputs
            .iter()
            .filter(|o| &o["output_id"] == output_id)
            .map(|o| {
                steps
                    .iter()
                    .find(|s| s["step_id"] == o["step_id"])
                    .unwrap()
                    .clone()
            })
            .find(|s| s["is_cached"] == false)
            .unwrap()
    };
    let mut frontier = vec![output["output_id"].clone()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(id) = frontier.pop() {
        if seen.insert(id.as_str().unwrap().to_string()) {
            let step = producer(&id);
            frontier.extend(
                inputs
                    .iter()
                    .filter(|i| i["step_id"] == step["step_id"])
                    .map(|i| i["output_id"].clone()),
            );
        }
    }
    let got: std::collections::BTreeSet<String> = rows
        .iter()
        .map(|r| r["output_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, seen);
    assert!(
        got.len() >= 4,
        "accuracy <- model, X_test, y_test <- X_train, y_train"
    );
    assert_eq!(rows[0]["depth"], 0);
}

#[test]
fn latest_output_of_each_step() {
    let rows = report("latest_outputs", &["pipeline=data_pipeline"]);
    let mut runs: Vec<Value> = golden_rows("runs")
        .into_iter()
        .filter(|r| r["pipeline_name"] == "data_pipeline")
        .collect();
    runs.sort_by_key(|r| r["run_index"].as_i64());
    let latest = runs.last().unwrap();
    let expected: Vec<Value> = golden_rows("outputs")
        .into_iter()
        .filter(|o| o["run_id"] == latest["run_id"])
        .collect();
    assert_eq!(rows.len(), expected.len());
    for row in &rows {
        assert!(
            expected
                .iter()
                .any(|e| e["output_id"] == row["output_id"] && e["step_name"] == row["step_name"]),
            "{row}"
        );
    }
}

#[test]
fn report_parameter_errors_list_the_parameters() {
    let output = runql_fixture()
        .args(["query", "step_output", "--param", "pipeline=first_pipeline"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("missing parameter step")
            && stderr.contains("--param pipeline=... --param step=..."),
        "{stderr}"
    );
    let output = runql_fixture()
        .args(["query", "cache_hit_rate", "--param", "x=1"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("unknown parameter x: report cache_hit_rate takes no parameters")
    );
    let output = runql_fixture()
        .args([
            "query",
            "failure_rate",
            "--param",
            "since=yesterday",
            "--param",
            "until=2100-01-01T00:00:00Z",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("parameter since"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = runql_fixture().args(["query", "nope"]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("no report named nope"));
}

#[test]
fn own_reports_from_queries_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("by_status.sql"),
        "-- Runs with a status.\nSELECT count(*) AS n FROM runs WHERE status = $status;\n",
    )
    .unwrap();
    let list = stdout_ok(
        runql_fixture()
            .arg("--queries-dir")
            .arg(dir.path())
            .args(["query", "--list"]),
    );
    assert!(
        list.contains("by_status")
            && list.contains("Runs with a status.")
            && list.contains("--param status=..."),
        "{list}"
    );
    let out = stdout_ok(runql_fixture().arg("--queries-dir").arg(dir.path()).args([
        "--format",
        "csv",
        "--no-header",
        "query",
        "by_status",
        "--param",
        "status=failed",
    ]));
    let failed = golden_rows("runs")
        .iter()
        .filter(|r| r["status"] == "failed")
        .count();
    assert_eq!(out.trim(), failed.to_string());
}
