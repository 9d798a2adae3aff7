//! Built-in values (`data.json` of ZenML's built-in materializers) as rows that fit their
//! shape: a scalar is one `value`; a list is `index`, `value`; a dict is `key`, `value`.
//! Values are typed when they agree (all integers, all numbers, all strings, all booleans),
//! and JSON text otherwise.

use std::sync::Arc;

use super::arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use super::arrow::datatypes::{Field, Schema};
use super::arrow::record_batch::RecordBatch;
use serde_json::Value;

pub fn to_batch(value: &Value) -> Result<RecordBatch, String> {
    let (label, labels, values): (&str, ArrayRef, Vec<&Value>) = match value {
        Value::Array(items) => (
            "index",
            Arc::new(Int64Array::from_iter_values(0..items.len() as i64)),
            items.iter().collect(),
        ),
        Value::Object(map) => (
            "key",
            Arc::new(StringArray::from_iter_values(map.keys())),
            map.values().collect(),
        ),
        scalar => {
            let column = typed(&[scalar]);
            let schema = Schema::new(vec![Field::new("value", column.data_type().clone(), true)]);
            return RecordBatch::try_new(Arc::new(schema), vec![column]).map_err(|e| e.to_string());
        }
    };
    let column = typed(&values);
    let schema = Schema::new(vec![
        Field::new(label, labels.data_type().clone(), false),
        Field::new("value", column.data_type().clone(), true),
    ]);
    RecordBatch::try_new(Arc::new(schema), vec![labels, column]).map_err(|e| e.to_string())
}

fn typed(values: &[&Value]) -> ArrayRef {
    let present = || values.iter().filter(|v| !v.is_null());
    if values.is_empty() || present().next().is_none() {
        return Arc::new(StringArray::from(
            values.iter().map(|_| None::<&str>).collect::<Vec<_>>(),
        ));
    }
    if present().all(|v| v.is_i64()) {
        return Arc::new(values.iter().map(|v| v.as_i64()).collect::<Int64Array>());
    }
    if present().all(|v| v.is_number()) {
        return Arc::new(values.iter().map(|v| v.as_f64()).collect::<Float64Array>());
    }
    if present().all(|v| v.is_string()) {
        return Arc::new(values.iter().map(|v| v.as_str()).collect::<StringArray>());
    }
    if present().all(|v| v.is_boolean()) {
        return Arc::new(values.iter().map(|v| v.as_bool()).collect::<BooleanArray>());
    }
    Arc::new(
        values
            .iter()
            .map(|v| (!v.is_null()).then(|| v.to_string()))
            .collect::<StringArray>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        let b = to_batch(&json!(0.5)).unwrap();
        assert_eq!(b.num_rows(), 1);
        assert_eq!(b.schema().field(0).name(), "value");
        let b = to_batch(&json!({"a": 1, "b": 2.5})).unwrap();
        assert_eq!(b.schema().field(0).name(), "key");
        assert!(
            b.column(1)
                .as_any()
                .downcast_ref::<Float64Array>()
                .is_some()
        );
        let b = to_batch(&json!(["x", "y"])).unwrap();
        assert_eq!(
            b.column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .value(1),
            "y"
        );
        let b = to_batch(&json!([1, "mixed"])).unwrap();
        assert_eq!(
            b.column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .value(1),
            "\"mixed\""
        );
    }
}
