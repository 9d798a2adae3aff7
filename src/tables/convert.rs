//! Store values to Arrow arrays, one builder per projected column.
//!
//! Values arrive as SQLite's (a MySQL store's are handed over in the same form by
//! `store::mysql`). SQLite is dynamically typed, so each builder accepts the storage classes
//! ZenML's SQLAlchemy models can leave in its column and rejects the rest with the column's
//! name.

use std::sync::Arc;

use chrono::NaiveDateTime;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::error::{DataFusionError, Result};
use rusqlite::types::ValueRef;

use super::Kind;

pub(super) enum ColumnBuilder {
    Text(StringBuilder),
    Id(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    TextList(ListBuilder<StringBuilder>),
}

impl ColumnBuilder {
    pub(super) fn new(kind: Kind, capacity: usize) -> Self {
        match kind {
            Kind::Text | Kind::Json => {
                ColumnBuilder::Text(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            Kind::Id => ColumnBuilder::Id(StringBuilder::with_capacity(capacity, capacity * 36)),
            Kind::Int => ColumnBuilder::Int(Int64Builder::with_capacity(capacity)),
            Kind::Float => ColumnBuilder::Float(Float64Builder::with_capacity(capacity)),
            Kind::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(capacity)),
            Kind::Timestamp => ColumnBuilder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            Kind::TextList => ColumnBuilder::TextList(ListBuilder::new(StringBuilder::new())),
        }
    }

    pub(super) fn append(&mut self, value: ValueRef<'_>, column: &str) -> Result<()> {
        match self {
            ColumnBuilder::Text(b) => match value {
                ValueRef::Null => b.append_null(),
                ValueRef::Text(t) | ValueRef::Blob(t) => b.append_value(utf8(t, column)?),
                ValueRef::Integer(i) => b.append_value(i.to_string()),
                ValueRef::Real(f) => b.append_value(f.to_string()),
            },
            ColumnBuilder::Id(b) => match value {
                ValueRef::Null => b.append_null(),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    let hex = utf8(t, column)?;
                    match dashed(hex) {
                        Some(id) => b.append_value(std::str::from_utf8(&id).expect("ascii")),
                        None => b.append_value(hex),
                    }
                }
                other => return Err(unexpected(column, "an id", other)),
            },
            ColumnBuilder::Int(b) => match value {
                ValueRef::Null => b.append_null(),
                ValueRef::Integer(i) => b.append_value(i),
                ValueRef::Real(f) if f.fract() == 0.0 => b.append_value(f as i64),
                other => return Err(unexpected(column, "an integer", other)),
            },
            ColumnBuilder::Float(b) => match value {
                ValueRef::Null => b.append_null(),
                ValueRef::Real(f) => b.append_value(f),
                ValueRef::Integer(i) => b.append_value(i as f64),
                // MySQL's DECIMAL arithmetic (a duration) arrives as its text.
                ValueRef::Text(t) => match utf8(t, column)?.parse::<f64>() {
                    Ok(f) => b.append_value(f),
                    Err(_) => return Err(unexpected(column, "a number", value)),
                },
                other => return Err(unexpected(column, "a number", other)),
            },
            ColumnBuilder::Bool(b) => match value {
                ValueRef::Null => b.append_null(),
                ValueRef::Integer(i) => b.append_value(i != 0),
                other => return Err(unexpected(column, "a boolean", other)),
            },
            ColumnBuilder::Timestamp(b) => match value {
                ValueRef::Null => b.append_null(),
                ValueRef::Text(t) => b.append_value(parse_datetime(utf8(t, column)?, column)?),
                other => return Err(unexpected(column, "a datetime", other)),
            },
            ColumnBuilder::TextList(b) => {
                match value {
                    // No elements: an empty list, as ZenML's client gives (`run.tags == []`).
                    ValueRef::Null => {}
                    ValueRef::Text(t) => {
                        for item in utf8(t, column)?.split('\u{1f}') {
                            b.values().append_value(item);
                        }
                    }
                    other => return Err(unexpected(column, "a list", other)),
                }
                b.append(true);
            }
        }
        Ok(())
    }

    pub(super) fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Text(b) | ColumnBuilder::Id(b) => Arc::new(b.finish()),
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Float(b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
            ColumnBuilder::TextList(b) => Arc::new(b.finish()),
        }
    }
}

fn utf8<'a>(bytes: &'a [u8], column: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|_| {
        DataFusionError::Execution(format!(
            "column {column}: the store holds text that is not UTF-8"
        ))
    })
}

fn unexpected(column: &str, wanted: &str, got: ValueRef<'_>) -> DataFusionError {
    DataFusionError::Execution(format!(
        "column {column}: expected {wanted} in the store, found {:?}",
        got.data_type()
    ))
}

/// `4a37d064f1674efab898926992f19e19` → `4a37d064-f167-4efa-b898-926992f19e19`, the form
/// runql's tables show ids in.
pub fn dashed_id(hex: &str) -> Option<String> {
    dashed(hex).map(|d| String::from_utf8_lossy(&d).into_owned())
}

/// [`dashed_id`] in place, for the conversion of every id a scan reads.
fn dashed(hex: &str) -> Option<[u8; 36]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut out = [b'-'; 36];
    let mut j = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            j += 1;
        }
        if !b.is_ascii_hexdigit() {
            return None;
        }
        out[j] = b.to_ascii_lowercase();
        j += 1;
    }
    Some(out)
}

/// ZenML's naive-UTC datetime text as microseconds since the epoch.
fn parse_datetime(text: &str, column: &str) -> Result<i64> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .map(|dt| dt.and_utc().timestamp_micros())
        .map_err(|_| {
            DataFusionError::Execution(format!("column {column}: cannot read datetime {text:?}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_get_dashes() {
        let id = dashed("4A37D064f1674efab898926992f19e19").unwrap();
        assert_eq!(
            std::str::from_utf8(&id).unwrap(),
            "4a37d064-f167-4efa-b898-926992f19e19"
        );
        assert!(dashed("xyz").is_none());
    }

    #[test]
    fn datetimes_are_utc_micros() {
        assert_eq!(
            parse_datetime("1970-01-01 00:00:01.000002", "t").unwrap(),
            1_000_002
        );
        assert_eq!(
            parse_datetime("1970-01-01 00:00:01", "t").unwrap(),
            1_000_000
        );
        assert!(parse_datetime("yesterday", "t").is_err());
    }
}
