//! ZenML's REST models as runql's rows: the REST API's mapping, as `store::schema` holds
//! the SQL stores' mappings per era.
//!
//! Each function reads one hydrated item of a list (`/runs`, `/steps`, `/pipelines`,
//! `/artifact_versions`) as ZenML's own client would (`golden.py` in the fixtures asks the
//! client the same questions), and gives JSON objects keyed by runql's column names, turned
//! into Arrow batches by [`batch`]. Fields moved between releases; each is looked up where
//! the releases runql reads keep it, newest first.
//!
//! Columns that need other rows (a step's position in its run, whether every step of a run
//! was cached, a pipeline's run count) are left to the mirror's SQL, which sees all of them;
//! the hidden columns it needs start with `__`.
//!
//! What the API does not say: a metadata value's type, publisher and time (`value_type`,
//! `publisher_step_id`, `created` are NULL), a step's `step_config_overrides` (`config` holds
//! its `spec` and `config`), and JSON text keeps its values but not its key order.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use serde_json::{Value, json};

use crate::tables::table_def;

/// The first of `pointers` (JSON pointers into `item`) that holds a value.
fn pick<'v>(item: &'v Value, pointers: &[&str]) -> &'v Value {
    pointers
        .iter()
        .filter_map(|p| item.pointer(p))
        .find(|v| !v.is_null())
        .unwrap_or(&Value::Null)
}

/// A datetime as ZenML's API writes it (naive UTC, ISO) marked UTC for Arrow.
fn ts(value: &Value) -> Value {
    match value.as_str() {
        Some(s) if s.ends_with('Z') || s[s.len().saturating_sub(6)..].contains(['+', '-']) => {
            json!(s)
        }
        Some(s) => json!(format!("{s}Z")),
        None => Value::Null,
    }
}

fn micros(value: &Value) -> Option<i64> {
    let s = value.as_str()?;
    let s = s.trim_end_matches('Z');
    let s = s.strip_suffix("+00:00").unwrap_or(s);
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_micros())
}

/// Seconds between two API datetimes, exact to the microsecond.
fn duration_s(start: &Value, end: &Value) -> Value {
    match (micros(start), micros(end)) {
        (Some(s), Some(e)) => json!((e - s) as f64 / 1_000_000.0),
        _ => Value::Null,
    }
}

/// JSON text of a value, NULL for null.
fn json_text(value: &Value) -> Value {
    if value.is_null() {
        Value::Null
    } else {
        json!(value.to_string())
    }
}

fn string(value: &Value) -> Value {
    match value {
        Value::String(_) => value.clone(),
        Value::Null => Value::Null,
        other => json!(other.to_string()),
    }
}

/// A ZenML `Source` (an object with `module` and `attribute`, or already a path) as its
/// import path `module.attribute`.
fn import_path(source: &Value) -> Value {
    match source {
        Value::String(_) => source.clone(),
        Value::Object(o) => match o.get("module").and_then(Value::as_str) {
            Some(module) => match o.get("attribute").and_then(Value::as_str) {
                Some(attribute) => json!(format!("{module}.{attribute}")),
                None => json!(module),
            },
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

/// The parameters of a configuration: `{}` when it has none.
fn parameters(config: &Value) -> Value {
    match config.get("parameters") {
        Some(p) if !p.is_null() => json_text(p),
        _ => json!("{}"),
    }
}

/// A pipeline of `/pipelines?hydrate=true`: its own columns (the counts come from runs).
pub fn pipeline(item: &Value) -> Value {
    json!({
        "pipeline_id": item["id"],
        "pipeline_name": item["name"],
        "created": ts(pick(item, &["/body/created"])),
        "description": pick(item, &["/metadata/description", "/body/description"]),
    })
}

/// A run of `/runs?hydrate=true`. `__index` is ZenML's run number (from 0.93; NULL before,
/// when the mirror numbers runs by creation as the SQL mappings do).
pub fn run(item: &Value) -> Value {
    let start = pick(item, &["/metadata/start_time", "/body/start_time"]);
    let end = pick(item, &["/metadata/end_time", "/body/end_time"]);
    let config = pick(item, &["/metadata/config", "/body/config"]);
    let mut tags: Vec<String> = pick(item, &["/resources/tags", "/body/tags", "/metadata/tags"])
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| t["name"].as_str().or(t.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    json!({
        "run_id": item["id"],
        "run_name": item["name"],
        "pipeline_id": pick(item, &["/body/pipeline_id", "/resources/pipeline/id", "/body/pipeline/id", "/metadata/pipeline/id"]),
        "pipeline_name": pick(item, &["/resources/pipeline/name", "/body/pipeline/name", "/metadata/pipeline/name"]),
        "status": pick(item, &["/body/status"]),
        "status_reason": pick(item, &["/body/status_reason", "/metadata/status_reason"]),
        "start_time": ts(start),
        "end_time": ts(end),
        "duration_s": duration_s(start, end),
        "git_sha": pick(item, &["/resources/code_reference/body/commit", "/metadata/code_reference/body/commit", "/body/code_reference/body/commit"]),
        "tags": tags,
        "parameters": parameters(config),
        "config": json_text(config),
        "created": ts(pick(item, &["/body/created"])),
        "updated": ts(pick(item, &["/body/updated"])),
        "exception": json_text(pick(item, &["/metadata/exception_info", "/body/exception_info"])),
        "pipeline_version": Value::Null,
        "__index": pick(item, &["/body/index", "/metadata/index"]),
    })
}

/// A step of `/steps?hydrate=true` (its position in the run is counted by the mirror, which
/// reads a run's steps in ZenML's order).
pub fn step(item: &Value) -> Value {
    let start = pick(item, &["/body/start_time", "/metadata/start_time"]);
    let end = pick(item, &["/body/end_time", "/metadata/end_time"]);
    let config = pick(item, &["/metadata/config", "/body/config"]);
    let spec = pick(item, &["/metadata/spec", "/body/spec"]);
    let status = pick(item, &["/body/status"]);
    json!({
        "step_id": item["id"],
        "step_name": item["name"],
        "entrypoint": pick(spec, &["/source/attribute"]),
        "run_id": pick(item, STEP_RUN_ID),
        "status": status,
        "is_cached": status.as_str().map(|s| s == "cached"),
        "original_step_id": pick(item, &["/metadata/original_step_run_id", "/body/original_step_run_id"]),
        "start_time": ts(start),
        "end_time": ts(end),
        "duration_s": duration_s(start, end),
        "parameters": parameters(config),
        "config": json_text(&json!({"spec": spec, "config": config})),
        "cache_key": pick(item, &["/metadata/cache_key", "/body/cache_key"]),
        "code_hash": pick(item, &["/metadata/code_hash", "/body/code_hash"]),
        "docstring": pick(item, &["/metadata/docstring", "/body/docstring"]),
        "source_code": pick(item, &["/metadata/source_code", "/body/source_code"]),
        "exception": json_text(pick(item, &["/metadata/exception_info", "/body/exception_info"])),
    })
}

/// Where a step names its run.
const STEP_RUN_ID: &[&str] = &["/metadata/pipeline_run_id", "/body/pipeline_run_id"];

/// A step's `inputs` or `outputs`: `name → [artifact version]` (or one artifact version per
/// name, as older releases say), wherever the release keeps them.
fn step_artifacts<'v>(step: &'v Value, which: &str) -> Vec<(&'v str, &'v Value)> {
    let pointers = ["resources", "body", "metadata"].map(|part| format!("/{part}/{which}"));
    let pointers: Vec<&str> = pointers.iter().map(String::as_str).collect();
    artifacts_by_name(pick(step, &pointers))
}

fn artifacts_by_name(map: &Value) -> Vec<(&str, &Value)> {
    let mut out = Vec::new();
    if let Some(map) = map.as_object() {
        for (name, versions) in map {
            match versions {
                Value::Array(list) => out.extend(list.iter().map(|av| (name.as_str(), av))),
                Value::Object(_) => out.push((name.as_str(), versions)),
                _ => {}
            }
        }
    }
    out
}

/// The outputs a step lists (`step.outputs`), with the step's own columns.
pub fn outputs(step: &Value) -> Vec<Value> {
    let run_id = pick(step, STEP_RUN_ID);
    step_artifacts(step, "outputs")
        .into_iter()
        .map(|(name, av)| {
            json!({
                "output_id": av["id"],
                "output_name": name,
                "step_id": step["id"],
                "step_name": step["name"],
                "run_id": run_id,
                "artifact_name": pick(av, &["/body/artifact/name", "/resources/artifact/name", "/metadata/artifact/name"]),
                "artifact_version": string(pick(av, &["/body/version"])),
                "artifact_type": pick(av, &["/body/type"]),
                "data_type": import_path(pick(av, &["/body/data_type"])),
                "materializer": import_path(pick(av, &["/body/materializer"])),
                "uri": pick(av, &["/body/uri"]),
                "content_hash": pick(av, &["/body/content_hash", "/metadata/content_hash"]),
                "created": ts(pick(av, &["/body/created"])),
            })
        })
        .collect()
}

/// The inputs a step lists (`step.inputs`).
pub fn inputs(step: &Value) -> Vec<Value> {
    let run_id = pick(step, STEP_RUN_ID);
    step_artifacts(step, "inputs")
        .into_iter()
        .map(|(name, av)| {
            json!({
                "step_id": step["id"],
                "step_name": step["name"],
                "run_id": run_id,
                "input_name": name,
                "output_id": av["id"],
                "input_type": pick(av, &["/input_type", "/body/input_type"]),
            })
        })
        .collect()
}

/// The metadata of a hydrated run, step or artifact version: the latest value per key, as
/// the API gives it (`metadata.run_metadata`). Releases before 0.6x give whole metadata
/// responses per key; their value and type are read out of them.
pub fn metadata(resource_type: &str, item: &Value) -> Vec<Value> {
    let Some(map) = pick(item, &["/metadata/run_metadata", "/body/run_metadata"]).as_object()
    else {
        return Vec::new();
    };
    map.iter()
        .map(|(key, value)| {
            let (value, value_type) = match value {
                Value::Object(o)
                    if o.get("body").is_some_and(|b| b.get("value").is_some())
                        && o.contains_key("id") =>
                {
                    (&value["body"]["value"], value["body"]["type"].clone())
                }
                _ => (value, Value::Null),
            };
            json!({
                "resource_type": resource_type,
                "resource_id": item["id"],
                "key": key,
                "value": value.to_string(),
                "value_type": value_type,
                "publisher_step_id": Value::Null,
                "created": Value::Null,
            })
        })
        .collect()
}

/// The schema rows of `table` are turned into: the table's columns, and for runs ZenML's
/// run number (`__index`).
pub fn schema(table: &str) -> SchemaRef {
    let def = table_def(table).expect("a runql table");
    let mut fields: Vec<Field> = def
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    if table == "runs" {
        fields.push(Field::new("__index", DataType::Int64, true));
    }
    Arc::new(Schema::new(fields))
}

/// Pipelines as the API gives them (the mirror adds their run counts and positions).
pub fn pipelines_batch(rows: &[Value]) -> Result<RecordBatch> {
    let def = table_def("pipelines").expect("pipelines");
    let fields: Vec<Field> = ["pipeline_id", "pipeline_name", "created", "description"]
        .iter()
        .map(|c| {
            def.schema()
                .field_with_name(c)
                .expect("a pipelines column")
                .clone()
        })
        .collect();
    decode(Arc::new(Schema::new(fields)), rows)
}

/// Rows (JSON objects keyed by column name; missing keys are NULL) as one Arrow batch.
pub fn batch(table: &str, rows: &[Value]) -> Result<RecordBatch> {
    decode(schema(table), rows)
}

fn decode(schema: SchemaRef, rows: &[Value]) -> Result<RecordBatch> {
    let mut decoder = ReaderBuilder::new(Arc::clone(&schema))
        .with_batch_size(rows.len().max(1))
        .build_decoder()?;
    decoder.serialize(rows)?;
    Ok(decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(schema)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_and_durations() {
        assert_eq!(
            ts(&json!("2026-11-26T11:51:23.054087")),
            json!("2026-11-26T11:51:23.054087Z")
        );
        assert_eq!(
            duration_s(
                &json!("2026-11-26T11:51:23.054087"),
                &json!("2026-11-26T11:51:27.354556")
            ),
            json!(4.300469)
        );
        assert_eq!(
            duration_s(&json!("2026-11-26T11:51:23"), &Value::Null),
            Value::Null
        );
    }

    #[test]
    fn rows_become_batches() {
        let row = run(&json!({
            "id": "b9a36212-fdf5-469f-8bf7-013235e424ae", "name": "r",
            "body": {"status": "completed", "index": 2, "created": "2026-11-26T11:51:23",
                     "pipeline_id": "50f2d99f-da8f-40e6-9f96-3ec2272041eb"},
            "metadata": {"config": {"parameters": {"g": 1}}, "start_time": "2026-11-26T11:51:23"},
            "resources": {"tags": [{"name": "b"}, {"name": "a"}], "pipeline": {"name": "p"}}
        }));
        let b = batch("runs", &[row]).unwrap();
        assert_eq!(b.num_rows(), 1);
        assert_eq!(b.schema().field(b.num_columns() - 1).name(), "__index");
        let s = datafusion::arrow::util::pretty::pretty_format_batches(&[b])
            .unwrap()
            .to_string();
        assert!(s.contains("[a, b]") && s.contains("{\"g\":1}"), "{s}");
    }
}
