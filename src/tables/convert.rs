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
    if let Some(micros) = plain_datetime(text.as_bytes()) {
        return Ok(micros);
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .map(|dt| dt.and_utc().timestamp_micros())
        .map_err(|_| {
            DataFusionError::Execution(format!("column {column}: cannot read datetime {text:?}"))
        })
}

/// `YYYY-MM-DD HH:MM:SS[.f…]` (1 to 9 fraction digits), the form every ZenML release
/// stores, as microseconds since the epoch; `None` for anything else, which chrono then
/// reads (or refuses). A scan converts four datetimes a row, and chrono's parser reads its
/// format string again for each: this is about ten times faster, with chrono's answer
/// (a unit test compares the two).
fn plain_datetime(b: &[u8]) -> Option<i64> {
    if !(b.len() == 19 || (21..=29).contains(&b.len()) && b[19] == b'.') {
        return None;
    }
    if b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| {
        b[range].iter().try_fold(0i64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    // A leap second (`:60`) is left to chrono, which has its own reading of it.
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut micros = 0;
    if b.len() > 19 {
        let digits = &b[20..];
        micros = number(20..b.len())? * 10i64.pow(9 - digits.len() as u32) / 1000;
    }
    // Days from 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's
    // days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some((days * 86_400 + hour * 3_600 + minute * 60 + second) * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written reader gives chrono's answer on every form it takes, and leaves
    /// every other text to chrono.
    #[test]
    fn plain_datetimes_read_as_chrono_reads_them() {
        let chrono = |t: &str| {
            NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(|dt| dt.and_utc().timestamp_micros())
        };
        let mut texts = vec![
            "1970-01-01 00:00:00".to_string(),
            "1969-12-31 23:59:59.999999".into(),
            "0000-01-01 00:00:00".into(),
            "0000-02-29 12:00:00".into(),
            "9999-12-31 23:59:59.999999999".into(),
            "2024-02-29 00:00:00.5".into(),
            "2023-02-29 00:00:00".into(),
            "1900-02-29 00:00:00".into(),
            "2000-02-29 00:00:00".into(),
            "2026-12-08 01:02:03.".into(),
            "2026-12-08 01:02:03.1234567890".into(),
            "2026-12-08 24:00:00".into(),
            "2026-12-08 23:59:60".into(),
            "2026-13-01 00:00:00".into(),
            "2026-00-10 00:00:00".into(),
            "2026-12-00 00:00:00".into(),
            "2026-12-08T01:02:03".into(),
            "2026-12-08 1:02:03.000".into(),
            "+202-12-08 01:02:03".into(),
            "2026-12-08 01:02:0x".into(),
        ];
        // Every day of four centuries, at times and fractions that vary with the day.
        for days in (-800_000i64..800_000).step_by(97) {
            let at = chrono::DateTime::from_timestamp(days * 86_400 + days.rem_euclid(86_400), 0)
                .unwrap()
                .naive_utc();
            let digits = (days.rem_euclid(9) + 1) as usize;
            let fraction = format!("{:09}", days.rem_euclid(1_000_000_000));
            texts.push(format!("{}", at.format("%Y-%m-%d %H:%M:%S")));
            texts.push(format!(
                "{}.{}",
                at.format("%Y-%m-%d %H:%M:%S"),
                &fraction[..digits]
            ));
        }
        for text in &texts {
            let ours = plain_datetime(text.as_bytes());
            if ours.is_some() {
                assert_eq!(ours, chrono(text), "{text}");
            }
            let read = parse_datetime(text, "t").ok();
            assert_eq!(
                read,
                chrono(text).or_else(|| NaiveDateTime::parse_from_str(
                    text,
                    "%Y-%m-%dT%H:%M:%S%.f"
                )
                .ok()
                .map(|dt| dt.and_utc().timestamp_micros())),
                "{text}"
            );
        }
        assert!(plain_datetime(b"2026-12-08 01:02:03.25").is_some());
    }

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
