//! Arrow columns as PostgreSQL values: which PostgreSQL type each Arrow type is sent as, and
//! rows encoded in the text or binary format the client asked for (pgwire does the byte
//! layout; this module only picks the Rust value and type for each cell).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, Float64Array, Int8Array, Int16Array,
    Int32Array, Int64Array, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;

/// The PostgreSQL type a column of `data_type` is sent as. Types PostgreSQL has no match for
/// are sent as text, in Arrow's own rendering.
pub fn pg_type(data_type: &DataType) -> Type {
    match data_type {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        // PostgreSQL's oid is an unsigned 32-bit number: the catalog's oid columns are UInt32.
        DataType::UInt32 => Type::OID,
        DataType::Int64 | DataType::UInt64 => Type::INT8,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Decimal128(..) | DataType::Decimal256(..) => Type::NUMERIC,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Type::TEXT,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        // The element types `encode_list` sends as themselves; any other as text.
        DataType::List(field) | DataType::LargeList(field) => match field.data_type() {
            DataType::Boolean => Type::BOOL_ARRAY,
            DataType::Int16 => Type::INT2_ARRAY,
            DataType::Int32 => Type::INT4_ARRAY,
            DataType::Int64 => Type::INT8_ARRAY,
            DataType::Float32 => Type::FLOAT4_ARRAY,
            DataType::Float64 => Type::FLOAT8_ARRAY,
            _ => Type::TEXT_ARRAY,
        },
        _ => Type::TEXT,
    }
}

/// The row description of `schema`, each column in the format `format` gives it.
pub fn fields(schema: &Schema, format: &Format) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| field(f, format.format_for(i)))
        .collect()
}

fn field(f: &Field, format: FieldFormat) -> FieldInfo {
    let ty = pg_type(f.data_type());
    // A type sent as text stands in for one PostgreSQL lacks: binary would need a layout.
    let format = if ty == Type::TEXT && !is_text(f.data_type()) {
        FieldFormat::Text
    } else {
        format
    };
    let size = match ty {
        Type::BOOL => 1,
        Type::INT2 => 2,
        Type::INT4 | Type::OID | Type::FLOAT4 | Type::DATE => 4,
        Type::INT8 | Type::FLOAT8 | Type::TIMESTAMP | Type::TIMESTAMPTZ => 8,
        _ => -1,
    };
    FieldInfo::new(f.name().clone(), None, None, ty, format).with_type_size(size)
}

fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Encodes the rows of `batch` for a client that expects `fields`.
pub fn rows(batch: &RecordBatch, fields: &Arc<Vec<FieldInfo>>) -> PgWireResult<Vec<DataRow>> {
    let mut encoder = DataRowEncoder::new(Arc::clone(fields));
    let columns: Vec<Column<'_>> = batch
        .columns()
        .iter()
        .map(Column::new)
        .collect::<PgWireResult<_>>()?;
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        for column in &columns {
            column.encode(row, &mut encoder)?;
        }
        out.push(encoder.take_row());
    }
    Ok(out)
}

/// One column of a batch, downcast once.
enum Column<'a> {
    Bool(&'a BooleanArray),
    I16(Box<dyn Fn(usize) -> i16 + 'a>, &'a dyn Array),
    I32(Box<dyn Fn(usize) -> i32 + 'a>, &'a dyn Array),
    Oid(&'a UInt32Array),
    I64(Box<dyn Fn(usize) -> i64 + 'a>, &'a dyn Array),
    F32(&'a Float32Array),
    /// Half floats, widened.
    F32Owned(ArrayRef),
    F64(&'a Float64Array),
    Text(ArrayRef),
    Binary(ArrayRef),
    Date(ArrayRef),
    /// Microseconds since the epoch, with or without a time zone.
    Timestamp(ArrayRef, bool),
    List(&'a dyn Array),
    /// Anything else: Arrow's own rendering, as text.
    Rendered(ArrayRef),
}

impl<'a> Column<'a> {
    fn new(array: &'a ArrayRef) -> PgWireResult<Self> {
        let cast = |to: &DataType| {
            datafusion::arrow::compute::cast(array, to)
                .map_err(|e| PgWireError::ApiError(Box::new(e)))
        };
        Ok(match array.data_type() {
            DataType::Boolean => Column::Bool(array.as_boolean()),
            DataType::Int8 => {
                let a = array.as_any().downcast_ref::<Int8Array>().expect("int8");
                Column::I16(Box::new(move |i| i16::from(a.value(i))), array.as_ref())
            }
            DataType::UInt8 => {
                let a = array.as_any().downcast_ref::<UInt8Array>().expect("uint8");
                Column::I16(Box::new(move |i| i16::from(a.value(i))), array.as_ref())
            }
            DataType::Int16 => {
                let a = array.as_any().downcast_ref::<Int16Array>().expect("int16");
                Column::I16(Box::new(move |i| a.value(i)), array.as_ref())
            }
            DataType::UInt16 => {
                let a = array
                    .as_any()
                    .downcast_ref::<UInt16Array>()
                    .expect("uint16");
                Column::I32(Box::new(move |i| i32::from(a.value(i))), array.as_ref())
            }
            DataType::Int32 => {
                let a = array.as_any().downcast_ref::<Int32Array>().expect("int32");
                Column::I32(Box::new(move |i| a.value(i)), array.as_ref())
            }
            DataType::UInt32 => Column::Oid(array.as_any().downcast_ref().expect("uint32")),
            DataType::Int64 => {
                let a = array.as_any().downcast_ref::<Int64Array>().expect("int64");
                Column::I64(Box::new(move |i| a.value(i)), array.as_ref())
            }
            DataType::UInt64 => {
                let a = array
                    .as_any()
                    .downcast_ref::<UInt64Array>()
                    .expect("uint64");
                // Beyond i64 a value cannot be sent as int8; none of runql's columns is.
                Column::I64(
                    Box::new(move |i| i64::try_from(a.value(i)).unwrap_or(i64::MAX)),
                    array.as_ref(),
                )
            }
            DataType::Float16 => Column::F32Owned(cast(&DataType::Float32)?),
            DataType::Float32 => Column::F32(array.as_any().downcast_ref().expect("float32")),
            DataType::Float64 => Column::F64(array.as_any().downcast_ref().expect("float64")),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                Column::Text(cast(&DataType::Utf8)?)
            }
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
                Column::Binary(cast(&DataType::Binary)?)
            }
            DataType::Date32 | DataType::Date64 => Column::Date(cast(&DataType::Date32)?),
            DataType::Timestamp(_, tz) => Column::Timestamp(
                cast(&DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))?,
                tz.is_some(),
            ),
            DataType::List(_) | DataType::LargeList(_) => Column::List(array.as_ref()),
            _ => Column::Rendered(cast(&DataType::Utf8)?),
        })
    }

    fn encode(&self, row: usize, encoder: &mut DataRowEncoder) -> PgWireResult<()> {
        match self {
            Column::Bool(a) => encoder.encode_field(&a.is_valid(row).then(|| a.value(row))),
            Column::I16(value, a) => encoder.encode_field(&a.is_valid(row).then(|| value(row))),
            Column::I32(value, a) => encoder.encode_field(&a.is_valid(row).then(|| value(row))),
            Column::Oid(a) => encoder.encode_field(&a.is_valid(row).then(|| a.value(row))),
            Column::I64(value, a) => encoder.encode_field(&a.is_valid(row).then(|| value(row))),
            Column::F32(a) => encoder.encode_field(&a.is_valid(row).then(|| a.value(row))),
            Column::F32Owned(a) => {
                let a = a.as_primitive::<datafusion::arrow::datatypes::Float32Type>();
                encoder.encode_field(&a.is_valid(row).then(|| a.value(row)))
            }
            Column::F64(a) => encoder.encode_field(&a.is_valid(row).then(|| a.value(row))),
            Column::Text(a) | Column::Rendered(a) => {
                let a = a.as_string::<i32>();
                encoder.encode_field(&a.is_valid(row).then(|| a.value(row)))
            }
            Column::Binary(a) => {
                let a = a.as_binary::<i32>();
                encoder.encode_field(&a.is_valid(row).then(|| a.value(row)))
            }
            Column::Date(a) => {
                let a = a.as_primitive::<datafusion::arrow::datatypes::Date32Type>();
                encoder.encode_field(&a.is_valid(row).then(|| date(a.value(row))).flatten())
            }
            Column::Timestamp(a, zoned) => {
                let a = a.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
                let value = a.is_valid(row).then(|| a.value(row));
                if *zoned {
                    encoder.encode_field(&value.and_then(DateTime::<Utc>::from_timestamp_micros))
                } else {
                    encoder.encode_field(&value.and_then(naive))
                }
            }
            Column::List(a) => encode_list(*a, row, encoder),
        }
    }
}

fn date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::days(days.into()))
}

fn naive(micros: i64) -> Option<NaiveDateTime> {
    DateTime::<Utc>::from_timestamp_micros(micros).map(|t| t.naive_utc())
}

/// A list cell as a PostgreSQL array of its element type (`tags` is `text[]`).
fn encode_list(array: &dyn Array, row: usize, encoder: &mut DataRowEncoder) -> PgWireResult<()> {
    if array.is_null(row) {
        return encoder.encode_field(&None::<Vec<Option<String>>>);
    }
    let values = match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().value(row),
        _ => array.as_list::<i64>().value(row),
    };
    macro_rules! typed {
        ($array:ty, $map:expr) => {{
            let a = values
                .as_any()
                .downcast_ref::<$array>()
                .expect("list values");
            let items: Vec<_> = (0..a.len())
                .map(|i| a.is_valid(i).then(|| $map(a.value(i))))
                .collect();
            encoder.encode_field(&items)
        }};
    }
    match values.data_type() {
        DataType::Boolean => typed!(BooleanArray, |v| v),
        DataType::Int16 => typed!(Int16Array, |v| v),
        DataType::Int32 => typed!(Int32Array, |v| v),
        DataType::Int64 => typed!(Int64Array, |v| v),
        DataType::Float32 => typed!(Float32Array, |v| v),
        DataType::Float64 => typed!(Float64Array, |v| v),
        _ => {
            let text = datafusion::arrow::compute::cast(&values, &DataType::Utf8)
                .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
            let a = text.as_string::<i32>();
            let items: Vec<Option<&str>> = (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i)))
                .collect();
            encoder.encode_field(&items)
        }
    }
}
