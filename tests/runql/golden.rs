//! Every table equals ZenML's own Client answers, on the fixture store of every ZenML release
//! in `tests/fixtures/`: the SQLite files, and the MariaDB stores loaded into the tests' own
//! MariaDB server (`mariadb.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::common::*;

/// Compares runql's rows with the golden rows on `fields`, keyed by `key`; `json_fields` hold
/// JSON text in runql and parsed JSON in the golden file.
fn assert_table_matches(
    table: &str,
    sql: &str,
    key: &[&str],
    fields: &[&str],
    json_fields: &[&str],
) {
    let stores = all_fixture_stores();
    assert!(
        stores.len() >= 2,
        "fixtures of several ZenML releases: {stores:?}"
    );
    for (dir, store) in stores {
        let golden = golden_of(&dir)["tables"][table]
            .as_array()
            .expect("golden table")
            .clone();
        let ours = query_json_on(Path::new(&store), sql);
        let name = format!("{} {table}", dir.file_name().unwrap().to_string_lossy());
        assert_rows_match(&name, &golden, &ours, key, fields, json_fields);
    }
}

pub fn assert_rows_match(
    table: &str,
    golden: &[Value],
    ours: &[Value],
    key: &[&str],
    fields: &[&str],
    json_fields: &[&str],
) {
    assert!(!golden.is_empty(), "golden {table} is empty");
    assert_eq!(
        ours.len(),
        golden.len(),
        "{table}: row count differs from ZenML's client"
    );
    let key_of = |row: &Value| {
        key.iter()
            .map(|k| row[*k].to_string())
            .collect::<Vec<_>>()
            .join("|")
    };
    let ours: BTreeMap<String, &Value> = ours.iter().map(|r| (key_of(r), r)).collect();
    assert_eq!(
        ours.len(),
        golden.len(),
        "{table}: key {key:?} is not unique in runql's rows"
    );
    for expected in golden {
        let k = key_of(expected);
        let row = ours
            .get(&k)
            .unwrap_or_else(|| panic!("{table}: ZenML has {k}, runql does not"));
        for field in fields {
            let mut got = row[*field].clone();
            if json_fields.contains(field) {
                got = json_text(&got);
            }
            assert!(
                same_value(&got, &expected[*field]),
                "{table} {k} {field}: runql {got}, ZenML {}",
                expected[*field]
            );
        }
    }
}

const PIPELINE_FIELDS: &[&str] = &[
    "pipeline_id",
    "pipeline_name",
    "created",
    "run_count",
    "first_run_start",
    "pipeline_index",
];
const RUN_FIELDS: &[&str] = &[
    "run_id",
    "run_name",
    "pipeline_id",
    "pipeline_name",
    "status",
    "status_reason",
    "start_time",
    "end_time",
    "duration_s",
    "run_index",
    "run_rindex",
    "is_cached",
    "git_sha",
    "tags",
    "parameters",
    "config_name",
    // Only 0.60 to 0.62 have versions; later golden files have no such key (null).
    "pipeline_version",
];
const STEP_FIELDS: &[&str] = &[
    "step_id",
    "step_name",
    "entrypoint",
    "run_id",
    "run_name",
    "pipeline_name",
    "status",
    "is_cached",
    "original_step_id",
    "start_time",
    "end_time",
    "duration_s",
    "step_index",
    "step_rindex",
    "parameters",
];
const OUTPUT_FIELDS: &[&str] = &[
    "output_id",
    "output_name",
    "step_id",
    "step_name",
    "run_id",
    "run_name",
    "pipeline_name",
    "artifact_name",
    "artifact_version",
    "artifact_type",
    "data_type",
    "materializer",
    "uri",
];
const INPUT_FIELDS: &[&str] = &["step_id", "step_name", "run_id", "input_name", "output_id"];
const METADATA_FIELDS: &[&str] = &["resource_type", "resource_id", "key", "value"];

/// Per table: the key of its rows and the columns ZenML's client answers (`golden.py`).
pub const GOLDEN_COLUMNS: &[(&str, &[&str], &[&str])] = &[
    ("pipelines", &["pipeline_id"], PIPELINE_FIELDS),
    ("runs", &["run_id"], RUN_FIELDS),
    ("steps", &["step_id"], STEP_FIELDS),
    (
        "outputs",
        &["step_id", "output_name", "output_id"],
        OUTPUT_FIELDS,
    ),
    (
        "inputs",
        &["step_id", "input_name", "output_id"],
        INPUT_FIELDS,
    ),
    (
        "metadata",
        &["resource_type", "resource_id", "key"],
        METADATA_FIELDS,
    ),
];

#[test]
fn pipelines_match_zenml() {
    assert_table_matches(
        "pipelines",
        "SELECT * FROM pipelines",
        &["pipeline_id"],
        PIPELINE_FIELDS,
        &[],
    );
}

#[test]
fn runs_match_zenml() {
    assert_table_matches(
        "runs",
        "SELECT *, json_get_str(config, 'name') AS config_name FROM runs",
        &["run_id"],
        RUN_FIELDS,
        &["parameters"],
    );
}

#[test]
fn steps_match_zenml() {
    assert_table_matches(
        "steps",
        "SELECT * FROM steps",
        &["step_id"],
        STEP_FIELDS,
        &["parameters"],
    );
}

#[test]
fn outputs_match_zenml() {
    assert_table_matches(
        "outputs",
        "SELECT * FROM outputs",
        &["step_id", "output_name", "output_id"],
        OUTPUT_FIELDS,
        &[],
    );
}

#[test]
fn inputs_match_zenml() {
    assert_table_matches(
        "inputs",
        "SELECT * FROM inputs",
        &["step_id", "input_name", "output_id"],
        INPUT_FIELDS,
        &[],
    );
}

#[test]
fn metadata_matches_zenml() {
    assert_table_matches(
        "metadata",
        "SELECT * FROM metadata",
        &["resource_type", "resource_id", "key"],
        METADATA_FIELDS,
        &["value"],
    );
}

#[test]
fn hierarchy_joins_on_ids() {
    // Every step's run, every output's step and every input's producer exist.
    let orphans = query_json(
        "SELECT
           (SELECT count(*) FROM steps s LEFT JOIN runs r ON r.run_id = s.run_id WHERE r.run_id IS NULL) AS steps_without_run,
           (SELECT count(*) FROM outputs o LEFT JOIN steps s ON s.step_id = o.step_id WHERE s.step_id IS NULL) AS outputs_without_step,
           (SELECT count(*) FROM inputs i LEFT JOIN outputs o ON o.output_id = i.output_id WHERE o.output_id IS NULL) AS inputs_without_producer,
           (SELECT count(*) FROM runs r LEFT JOIN pipelines p ON p.pipeline_id = r.pipeline_id WHERE p.pipeline_id IS NULL) AS runs_without_pipeline",
    );
    let row = &orphans[0];
    for field in [
        "steps_without_run",
        "outputs_without_step",
        "inputs_without_producer",
        "runs_without_pipeline",
    ] {
        assert_eq!(row[field], 0, "{field}");
    }
}

#[test]
fn json_functions_read_parameters() {
    let rows = query_json(
        "SELECT run_id, json_get_float(parameters, 'gamma') AS gamma FROM runs WHERE pipeline_name = 'first_pipeline'",
    );
    let golden = golden_rows("runs");
    assert!(!rows.is_empty());
    for row in rows {
        let expected = golden
            .iter()
            .find(|g| g["run_id"] == row["run_id"])
            .unwrap();
        assert!(
            same_value(&row["gamma"], &expected["parameters"]["gamma"]),
            "{row}"
        );
    }
}

/// `get_pipeline(name).runs[-1].steps[-1].output` names one run and one output on every
/// release, as on ZenML's client once a store is upgraded: before 0.63 a pipeline's versions
/// count as one pipeline.
#[test]
fn one_pipeline_per_name_and_one_latest_run_on_every_release() {
    for (dir, store) in all_fixture_stores() {
        let store = Path::new(&store);
        let release = dir.file_name().unwrap().to_string_lossy().to_string();
        let counts = query_json_on(
            store,
            "SELECT count(*) AS n, count(DISTINCT pipeline_name) AS names FROM pipelines",
        );
        assert_eq!(counts[0]["n"], counts[0]["names"], "{release}: {counts:?}");
        let numbering = query_json_on(
            store,
            "SELECT pipeline_name, count(*) AS runs, min(run_index) AS first, max(run_index) AS last, \
                    sum(CASE WHEN run_rindex = -1 THEN 1 ELSE 0 END) AS latest \
             FROM runs GROUP BY pipeline_name",
        );
        assert_eq!(
            numbering.len() as i64,
            counts[0]["names"].as_i64().unwrap(),
            "{release}: runs of every pipeline"
        );
        for row in &numbering {
            assert_eq!(row["latest"], 1, "{release}: one runs[-1]: {row}");
            assert_eq!(row["first"], 0, "{release}: {row}");
            assert_eq!(
                row["last"].as_i64().unwrap() + 1,
                row["runs"].as_i64().unwrap(),
                "{release}: runs numbered 0..n: {row}"
            );
        }

        // The seed query, against what ZenML's client answers for the same traversal.
        let golden = golden_of(&dir);
        let rows = |table: &str| golden["tables"][table].as_array().unwrap().clone();
        let latest: Vec<Value> = rows("runs")
            .into_iter()
            .filter(|r| r["pipeline_name"] == "first_pipeline" && r["run_rindex"] == -1)
            .collect();
        assert_eq!(latest.len(), 1, "{release}: golden runs[-1]");
        let last_step: Vec<Value> = rows("steps")
            .into_iter()
            .filter(|s| s["run_id"] == latest[0]["run_id"] && s["step_rindex"] == -1)
            .collect();
        assert_eq!(last_step.len(), 1, "{release}: golden steps[-1]");
        let mut expected: Vec<String> = rows("outputs")
            .into_iter()
            .filter(|o| o["step_id"] == last_step[0]["step_id"])
            .map(|o| o["output_id"].as_str().unwrap().to_string())
            .collect();
        let mut ours: Vec<String> = query_json_on(
            store,
            "SELECT o.output_id FROM runs r JOIN steps s ON s.run_id = r.run_id \
             JOIN outputs o ON o.step_id = s.step_id \
             WHERE r.pipeline_name = 'first_pipeline' AND r.run_rindex = -1 AND s.step_rindex = -1",
        )
        .iter()
        .map(|o| o["output_id"].as_str().unwrap().to_string())
        .collect();
        expected.sort();
        ours.sort();
        assert_eq!(ours.len(), 1, "{release}: one output");
        assert_eq!(ours, expected, "{release}: the seed query");
    }
}
