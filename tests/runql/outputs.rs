//! Reading step outputs: `read_output` and `output_value` give what ZenML's own
//! `artifact.load()` gives, for every kind the fixture holds; broken files fail cleanly.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

fn artifacts_dir() -> PathBuf {
    fixture_dir().join("artifacts")
}

fn golden_artifacts() -> Vec<(String, Value)> {
    golden()["artifacts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn read_output_on(root: &Path, sql: &str) -> std::process::Output {
    runql_fixture()
        .arg("--artifact-root")
        .arg(root)
        .args(["--format", "json", "-c", sql])
        .output()
        .unwrap()
}

fn rows_of(output: &std::process::Output) -> Vec<Value> {
    json_rows(output, "runql")
}

/// ZenML's loaded value as the rows runql promises for it.
fn expected_rows(artifact: &Value) -> Vec<Value> {
    match artifact["kind"].as_str().unwrap() {
        "dataframe" => artifact["records"].as_array().unwrap().clone(),
        "ndarray" => {
            let values = artifact["values"].as_array().unwrap();
            match artifact["shape"].as_array().unwrap().len() {
                1 => values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| serde_json::json!({"index": i, "value": v}))
                    .collect(),
                2 => values
                    .iter()
                    .enumerate()
                    .map(|(i, row)| {
                        let mut obj = serde_json::Map::new();
                        obj.insert("row".into(), i.into());
                        for (j, v) in row.as_array().unwrap().iter().enumerate() {
                            obj.insert(format!("c{j}"), v.clone());
                        }
                        Value::Object(obj)
                    })
                    .collect(),
                n => panic!("fixture has a {n}-D array"),
            }
        }
        "builtin" => match &artifact["value"] {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| serde_json::json!({"index": i, "value": v}))
                .collect(),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
                .collect(),
            scalar => vec![serde_json::json!({ "value": scalar })],
        },
        other => panic!("no rows for {other}"),
    }
}

#[test]
fn every_readable_output_equals_zenml_load() {
    // Every fixture release, each against its own ZenML's `load()`: materializers changed too
    // (0.60 saved DataFrames as CSV where pyarrow did not load).
    for dir in all_fixture_dirs() {
        let golden = golden_of(&dir);
        let root = dir.join("artifacts").display().to_string();
        let kinds = outputs_equal_zenml_load(&dir, &golden, &root, &[]);
        if dir == fixture_dir() {
            assert_fixture_covers(&kinds);
        }
    }
}

/// Reads every output of the fixture in `dir` that ZenML could load as data, with its files
/// under `root` (a folder or a URL) and `env` set, and compares; returns the kinds seen.
fn outputs_equal_zenml_load(
    dir: &Path,
    golden: &Value,
    root: &str,
    env: &[(&str, String)],
) -> std::collections::BTreeSet<String> {
    let mut kinds = std::collections::BTreeSet::new();
    let name = dir.file_name().unwrap().to_string_lossy();
    for (id, artifact) in golden["artifacts"].as_object().unwrap() {
        let kind = artifact["kind"].as_str().unwrap();
        // What ZenML pickled (an SVC anywhere; arrays too where its numpy materializer did
        // not load) is not data runql reads: `pickled_models_are_a_clear_error` covers it.
        let recorded = golden_output(golden, id);
        if kind == "other" || recorded["materializer"].as_str().unwrap().contains("ickle") {
            continue;
        }
        let output = runql()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("--store")
            .arg(dir.join("zenml.db"))
            .args(["--artifact-root", root])
            .args(["--format", "json", "-c"])
            .arg(format!("SELECT * FROM read_output('{id}')"))
            .output()
            .unwrap();
        let rows = rows_of(&output);
        let expected = expected_rows(artifact);
        assert_eq!(rows.len(), expected.len(), "{name} {id} ({kind})");
        for (got, want) in rows.iter().zip(&expected) {
            // pandas' default CSV float parser (xstrtod) keeps about 15 significant digits:
            // ZenML's load of a CSV-saved DataFrame can be off in the 16th digit of what ZenML
            // wrote, which runql reads exactly. Parquet frames and the rest compare exactly.
            let csv = kind == "dataframe" && has_csv(dir, recorded["uri"].as_str().unwrap());
            assert!(
                same_value(got, want) || (csv && same_to_15_digits(got, want)),
                "{name} {id} ({kind}): runql {got}, ZenML {want}"
            );
        }
        kinds.insert(match kind {
            "ndarray" => format!(
                "ndarray-{}d-fortran={}",
                artifact["shape"].as_array().unwrap().len(),
                artifact["fortran_order"]
            ),
            _ => format!(
                "{kind}-{}",
                artifact["value"]
                    .as_object()
                    .map_or(artifact["value"].is_array().to_string(), |_| "dict".into())
            ),
        });
    }
    kinds
}

/// Output `id`'s row in the fixture's golden `outputs` table (ZenML's own reading of it):
/// materializer and uri, without asking runql.
fn golden_output<'a>(golden: &'a Value, id: &str) -> &'a Value {
    golden["tables"]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["output_id"] == id)
        .unwrap_or_else(|| panic!("no golden output {id}"))
}

/// Whether an output ZenML recorded at `uri` was saved as `df.csv` in the fixture in `dir`.
fn has_csv(dir: &Path, uri: &str) -> bool {
    let tail = uri.split("/local_stores/").nth(1).unwrap();
    let local = dir.join("artifacts").join(tail.split_once('/').unwrap().1);
    local.join("df.csv").exists()
}

/// Objects whose numbers agree to 15 significant digits.
fn same_to_15_digits(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_to_15_digits(v, w)))
        }
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-15 * x.abs().max(y.abs()) * 10.0
        }
        _ => a == b,
    }
}

fn assert_fixture_covers(kinds: &std::collections::BTreeSet<String>) {
    // The fixture covers a DataFrame, 1-D and 2-D arrays (C and Fortran order), and
    // built-in scalars, lists and dicts.
    for needed in [
        "dataframe-false",
        "ndarray-1d-fortran=false",
        "ndarray-2d-fortran=false",
        "ndarray-2d-fortran=true",
        "builtin-false",
        "builtin-true",
        "builtin-dict",
    ] {
        assert!(kinds.contains(needed), "fixture lacks {needed}: {kinds:?}");
    }
}

#[test]
fn output_value_is_the_builtin_value() {
    assert_output_values(&fixture_store());
}

/// An export folder (and so a server's mirror, which is one) finds outputs' files in its
/// own `outputs` table, all of a query's ids in one pass: the same values, the same rows.
#[test]
fn outputs_read_from_an_export_as_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    let out = export_store(&fixture_store(), &export);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_output_values(&export);
    let (id, _) = golden_artifacts()
        .into_iter()
        .find(|(_, a)| a["kind"] == "ndarray")
        .expect("an ndarray output");
    let rows = |store: &Path| {
        rows_of(
            &runql()
                .arg("--store")
                .arg(store)
                .args(["--artifact-root"])
                .arg(artifacts_dir())
                .args(["--format", "json", "-c"])
                .arg(format!(
                    "SELECT * FROM read_output('{}')",
                    id.to_uppercase()
                ))
                .output()
                .unwrap(),
        )
    };
    let from_export = rows(&export);
    assert!(!from_export.is_empty());
    assert_eq!(from_export, rows(&fixture_store()));
}

/// `output_value` over every built-in output of the fixture, read through `store`.
fn assert_output_values(store: &Path) {
    let builtins: Vec<(String, Value)> = golden_artifacts()
        .into_iter()
        .filter(|(_, a)| a["kind"] == "builtin")
        .collect();
    let ids: Vec<String> = builtins.iter().map(|(id, _)| format!("'{id}'")).collect();
    let output = runql()
        .arg("--store")
        .arg(store)
        .arg("--artifact-root")
        .arg(artifacts_dir())
        .args(["--format", "json", "-c"])
        .arg(format!(
            "SELECT output_id, output_value(output_id) AS v FROM (SELECT DISTINCT output_id FROM outputs WHERE output_id IN ({}))",
            ids.join(", ")
        ))
        .output()
        .unwrap();
    let rows = rows_of(&output);
    assert_eq!(rows.len(), builtins.len());
    for row in rows {
        let (_, artifact) = builtins
            .iter()
            .find(|(id, _)| row["output_id"] == id.as_str())
            .unwrap();
        assert!(
            same_value(&json_text(&row["v"]), &artifact["value"]),
            "{row}"
        );
    }
}

#[test]
fn a_metric_across_runs() {
    let rows = rows_of(
        &runql_fixture()
            .arg("--artifact-root")
            .arg(artifacts_dir())
            .args([
                "--format",
                "json",
                "query",
                "metric_over_runs",
                "--param",
                "pipeline=first_pipeline",
                "--param",
                "step=evaluator",
                "--param",
                "output=output",
            ])
            .output()
            .unwrap(),
    );
    let outputs = golden_rows("outputs");
    let artifacts = golden()["artifacts"].clone();
    let runs: Vec<Value> = golden_rows("runs")
        .into_iter()
        .filter(|r| r["pipeline_name"] == "first_pipeline")
        .collect();
    assert_eq!(rows.len(), runs.len());
    for row in rows {
        let run = runs
            .iter()
            .find(|r| r["run_name"] == row["run_name"])
            .unwrap();
        let output = outputs
            .iter()
            .find(|o| o["run_id"] == run["run_id"] && o["step_name"] == "evaluator")
            .unwrap();
        let loaded = &artifacts[output["output_id"].as_str().unwrap()]["value"];
        assert!(same_value(&row["value"], loaded), "{row}");
        assert!(
            same_value(&row["gamma"], &run["parameters"]["gamma"]),
            "{row}"
        );
    }
}

#[test]
fn closing_example_reads_the_last_output() {
    let rows = rows_of(
        &runql_fixture()
            .arg("--artifact-root")
            .arg(artifacts_dir())
            .args([
                "--format",
                "json",
                "query",
                "last_step_output_value",
                "--param",
                "pipeline=first_pipeline",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(rows.len(), 1);
    let artifacts = golden()["artifacts"].clone();
    let loaded =
        artifacts.as_object().unwrap().values().find(|a| {
            a["kind"] == "builtin" && same_value(&a["value"], &json_text(&rows[0]["value"]))
        });
    assert!(
        loaded.is_some(),
        "{:?} is no artifact ZenML loaded",
        rows[0]
    );
}

fn assert_clean_failure(output: &std::process::Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn pickled_models_are_a_clear_error() {
    let (id, artifact) = golden_artifacts()
        .into_iter()
        .find(|(_, a)| a["kind"] == "other")
        .unwrap();
    assert_eq!(artifact["type"], "sklearn.svm._classes.SVC");
    let output = read_output_on(
        &artifacts_dir(),
        &format!("SELECT * FROM read_output('{id}')"),
    );
    assert_clean_failure(
        &output,
        &[
            &id,
            "SklearnMaterializer",
            "sklearn.svm._classes.SVC",
            "cannot read",
        ],
    );
}

/// A copy of the artifacts where `damage` breaks the file of one output of `kind`.
fn damaged(kind: &str, file: &str, damage: impl Fn(&Path)) -> (tempfile::TempDir, String, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&artifacts_dir(), dir.path());
    let (id, _) = golden_artifacts()
        .into_iter()
        .find(|(_, a)| a["kind"] == kind)
        .unwrap();
    let output = golden_rows("outputs")
        .into_iter()
        .find(|o| o["output_id"] == id.as_str())
        .unwrap();
    let uri = output["uri"].as_str().unwrap();
    let relative = uri
        .split("/local_stores/")
        .nth(1)
        .unwrap()
        .split_once('/')
        .unwrap()
        .1;
    let path = dir.path().join(relative).join(file);
    damage(&path);
    (dir, id, path)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn missing_truncated_and_corrupt_files_fail_cleanly() {
    let (dir, id, path) = damaged("ndarray", "data.npy", |p| std::fs::remove_file(p).unwrap());
    let out = read_output_on(dir.path(), &format!("SELECT * FROM read_output('{id}')"));
    assert_clean_failure(&out, &[&id, &path.display().to_string()]);

    let (dir, id, path) = damaged("ndarray", "data.npy", |p| {
        let bytes = std::fs::read(p).unwrap();
        std::fs::write(p, &bytes[..bytes.len() - 9]).unwrap();
    });
    let out = read_output_on(dir.path(), &format!("SELECT * FROM read_output('{id}')"));
    assert_clean_failure(&out, &[&id, &path.display().to_string(), "truncated"]);

    let (dir, id, path) = damaged("dataframe", "df.parquet.gzip", |p| {
        std::fs::write(p, b"not parquet at all").unwrap()
    });
    let out = read_output_on(dir.path(), &format!("SELECT * FROM read_output('{id}')"));
    assert_clean_failure(&out, &[&id, &path.display().to_string()]);

    let (dir, id, _) = damaged("builtin", "data.json", |p| {
        std::fs::write(p, b"{\"cut off\": ").unwrap()
    });
    let out = read_output_on(dir.path(), &format!("SELECT output_value('{id}')"));
    assert_clean_failure(&out, &[&id, "data.json"]);
}

#[test]
fn bad_arguments() {
    let out = read_output_on(&artifacts_dir(), "SELECT * FROM read_output('nope')");
    assert_clean_failure(&out, &["not an output id"]);
    let out = read_output_on(
        &artifacts_dir(),
        "SELECT * FROM read_output('00000000-0000-0000-0000-000000000000')",
    );
    assert_clean_failure(&out, &["no output 00000000-0000-0000-0000-000000000000"]);
    let out = read_output_on(&artifacts_dir(), "SELECT * FROM read_output(1, 2)");
    assert_clean_failure(&out, &["read_output takes one output id"]);
}

/// A real S3-compatible server (moto, from PyPI) on a loopback port, stopped on drop.
struct S3Server {
    child: std::process::Child,
    endpoint: String,
    python: String,
}

impl S3Server {
    fn start() -> Self {
        let python = python_with("moto.server", "moto[server]");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "moto did not listen on {endpoint}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Self {
            child,
            endpoint,
            python,
        }
    }

    /// The environment a user of this server sets: credentials and endpoint.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "runql".into()),
            ("AWS_SECRET_ACCESS_KEY", "runql-secret".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// Uploads the files under `dir` to `s3://bucket/prefix/...` with boto3 (moto's own).
    fn upload(&self, dir: &Path, bucket: &str, prefix: &str) {
        let script = r#"
import os, sys, boto3
dir, bucket, prefix, endpoint = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint)
s3.create_bucket(Bucket=bucket)
for base, _, names in os.walk(dir):
    for name in names:
        path = os.path.join(base, name)
        s3.upload_file(path, bucket, prefix + "/" + os.path.relpath(path, dir))
"#;
        let out = std::process::Command::new(&self.python)
            .envs(self.env())
            .args(["-c", script])
            .arg(dir)
            .args([bucket, prefix, &self.endpoint])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "upload: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn artifacts_in_s3_read_like_local_ones() {
    // The fixture's artifact store, uploaded to a real S3 server on loopback: every output
    // reads back equal to ZenML's load, through object_store and the usual AWS variables.
    let server = S3Server::start();
    server.upload(&artifacts_dir(), "runql-artifacts", "team/zenml");
    let env = server.env();
    let kinds = outputs_equal_zenml_load(
        &fixture_dir(),
        &golden(),
        "s3://runql-artifacts/team/zenml",
        &env,
    );
    assert_fixture_covers(&kinds);

    // output_value over S3 too: the metric across runs, one query.
    let metric = |root: &str| {
        rows_of(
            &runql_fixture()
                .envs(env.iter().map(|(k, v)| (k, v)))
                .args(["--artifact-root", root, "--format", "json", "-c"])
                .arg(
                    "SELECT r.run_name, json_as_float(output_value(o.output_id)) AS accuracy \
                     FROM outputs o JOIN runs r USING (run_id) \
                     WHERE o.step_name = 'evaluator' ORDER BY r.run_name",
                )
                .output()
                .unwrap(),
        )
    };
    let local = metric(&artifacts_dir().display().to_string());
    assert!(!local.is_empty());
    assert_eq!(metric("s3://runql-artifacts/team/zenml"), local);

    // A key that is not there, and a bucket that is not there: one clean line each.
    let (id, _) = golden_artifacts()
        .into_iter()
        .find(|(_, a)| a["kind"] == "builtin")
        .unwrap();
    for root in [
        "s3://runql-artifacts/elsewhere",
        "s3://no-such-bucket/zenml",
    ] {
        let output = runql_fixture()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["--artifact-root", root, "-c"])
            .arg(format!("SELECT * FROM read_output('{id}')"))
            .output()
            .unwrap();
        assert_clean_failure(&output, &[&id, root, "data.json"]);
    }
}
