//! Printing query results: one `PrintFormat` per output style, generic over `W: Write`.
//!
//! Machine formats (csv, tsv, json, ndjson) stream batch by batch; the human formats (table,
//! markdown) need every row to size their columns, so they collect first. Timestamps print
//! as ISO-8601 UTC (`2026-11-26T10:35:04.365897Z`) everywhere.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::{csv, json};

/// `chrono` format of timestamps with a time zone (all of runql's are UTC).
const TIMESTAMP_TZ_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";
const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrintFormat {
    /// Aligned columns for people
    Table,
    /// Comma-separated values with a header row
    Csv,
    /// Tab-separated values with a header row
    Tsv,
    /// One JSON array of row objects
    Json,
    /// One JSON object per line
    Ndjson,
    /// A Markdown table
    Markdown,
}

impl std::fmt::Display for PrintFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum;
        let value = self.to_possible_value().expect("no skipped variants");
        f.write_str(value.get_name())
    }
}

/// Options that shape printed results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrintOptions {
    pub format: PrintFormat,
    /// Print the header row (csv, tsv).
    pub header: bool,
    /// Show at most this many rows in table format, then say how many were left out.
    pub max_rows: Option<usize>,
    /// Fit table format into this many columns, truncating long cells with `…`.
    pub max_width: Option<usize>,
}

impl Default for PrintOptions {
    fn default() -> Self {
        Self {
            format: PrintFormat::Table,
            header: true,
            max_rows: None,
            max_width: None,
        }
    }
}

/// Writes one result set incrementally: `write` each batch as it arrives, then `finish`.
pub struct ResultWriter<'w, W: Write> {
    out: &'w mut W,
    options: PrintOptions,
    schema: SchemaRef,
    /// Batches held back by the human formats until `finish`.
    held: Vec<RecordBatch>,
    rows: usize,
    /// Whether any row was written (csv/tsv: the header is out; json: `[` is out).
    started: bool,
}

impl<'w, W: Write> ResultWriter<'w, W> {
    pub fn new(out: &'w mut W, schema: SchemaRef, options: PrintOptions) -> Self {
        Self {
            out,
            options,
            schema,
            held: Vec::new(),
            rows: 0,
            started: false,
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        let held_rows: usize = self.held.iter().map(|b| b.num_rows()).sum();
        self.rows += batch.num_rows();
        match self.options.format {
            // Only the rows that will be shown are kept; the rest are counted.
            PrintFormat::Table if self.options.max_rows.is_some_and(|m| held_rows >= m) => {}
            PrintFormat::Table | PrintFormat::Markdown => self.held.push(batch.clone()),
            PrintFormat::Csv | PrintFormat::Tsv => {
                if batch.num_rows() > 0 {
                    let header = self.options.header && !self.started;
                    write_delimited(
                        self.out,
                        &flatten_nested(batch)?,
                        self.options.format,
                        header,
                    )?;
                    self.started = true;
                }
            }
            PrintFormat::Ndjson => write_ndjson(self.out, batch)?,
            PrintFormat::Json => {
                // One array of objects, one object per line: each batch is written as
                // NDJSON and its lines joined into the array as they stream out.
                let mut lines = Vec::new();
                write_ndjson(&mut lines, batch)?;
                for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    self.out
                        .write_all(if self.started { b",\n" } else { b"[\n" })?;
                    self.out.write_all(line)?;
                    self.started = true;
                }
            }
        }
        Ok(())
    }

    /// Ends the result set; returns how many rows it had.
    pub fn finish(mut self) -> Result<usize, ArrowError> {
        match self.options.format {
            PrintFormat::Table => {
                let batches = std::mem::take(&mut self.held);
                write_table(self.out, &self.schema, &batches, self.rows, self.options)?;
            }
            PrintFormat::Markdown => {
                let batches = std::mem::take(&mut self.held);
                write_markdown(self.out, &self.schema, &batches)?;
            }
            PrintFormat::Csv | PrintFormat::Tsv => {
                if !self.started && self.options.header {
                    let empty = RecordBatch::new_empty(flat_schema(&self.schema));
                    write_delimited(self.out, &empty, self.options.format, true)?;
                }
            }
            PrintFormat::Ndjson => {}
            PrintFormat::Json if self.started => self.out.write_all(b"\n]\n")?,
            PrintFormat::Json => self.out.write_all(b"[]\n")?,
        }
        self.out.flush()?;
        Ok(self.rows)
    }
}

fn write_ndjson<W: Write>(out: &mut W, batch: &RecordBatch) -> Result<(), ArrowError> {
    let mut writer = json_builder().build::<_, json::writer::LineDelimited>(out);
    writer.write(batch)?;
    writer.finish()
}

fn json_builder() -> json::WriterBuilder {
    json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_timestamp_tz_format(TIMESTAMP_TZ_FORMAT.to_string())
        .with_timestamp_format(TIMESTAMP_FORMAT.to_string())
}

fn write_delimited<W: Write>(
    out: &mut W,
    batch: &RecordBatch,
    format: PrintFormat,
    header: bool,
) -> Result<(), ArrowError> {
    let delimiter = if format == PrintFormat::Tsv {
        b'\t'
    } else {
        b','
    };
    let mut writer = csv::WriterBuilder::new()
        .with_header(header)
        .with_delimiter(delimiter)
        .with_timestamp_tz_format(TIMESTAMP_TZ_FORMAT.to_string())
        .with_timestamp_format(TIMESTAMP_FORMAT.to_string())
        .with_null(String::new())
        .build(out);
    writer.write(batch)
}

fn is_nested(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(_, _)
            | DataType::Struct(_)
            | DataType::Map(_, _)
    )
}

fn flat_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if is_nested(f.data_type()) {
                Field::new(f.name(), DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// CSV cannot hold lists or structs: they print as their display text (`[a, b]`).
fn flatten_nested(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| is_nested(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let options = FormatOptions::default();
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|array| {
            if !is_nested(array.data_type()) {
                return Ok(Arc::clone(array));
            }
            let formatter = ArrayFormatter::try_new(array.as_ref(), &options)?;
            let values: StringArray = (0..array.len())
                .map(|i| array.is_valid(i).then(|| formatter.value(i).to_string()))
                .collect();
            Ok(Arc::new(values) as ArrayRef)
        })
        .collect::<Result<_, ArrowError>>()?;
    RecordBatch::try_new(flat_schema(&batch.schema()), columns)
}

fn write_markdown<W: Write>(
    out: &mut W,
    schema: &Schema,
    batches: &[RecordBatch],
) -> Result<(), ArrowError> {
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| escape_markdown(f.name()))
        .collect();
    writeln!(out, "| {} |", names.join(" | "))?;
    writeln!(out, "|{}", "---|".repeat(names.len()))?;
    let options = FormatOptions::default()
        .with_timestamp_tz_format(Some(TIMESTAMP_TZ_FORMAT))
        .with_timestamp_format(Some(TIMESTAMP_FORMAT));
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| escape_markdown(&f.value(row).to_string()))
                .collect();
            writeln!(out, "| {} |", cells.join(" | "))?;
        }
    }
    Ok(())
}

fn escape_markdown(cell: &str) -> String {
    cell.replace('|', "\\|").replace('\n', " ")
}

/// The narrowest a column is squeezed to when fitting a table into the terminal.
const MIN_COLUMN_WIDTH: usize = 6;

/// An aligned table with `+---+` borders, NULL shown as `NULL`, long cells truncated to fit
/// `max_width`, and at most `max_rows` rows followed by a line saying how many were left out.
fn write_table<W: Write>(
    out: &mut W,
    schema: &Schema,
    batches: &[RecordBatch],
    total_rows: usize,
    options: PrintOptions,
) -> Result<(), ArrowError> {
    let shown = options.max_rows.map_or(total_rows, |m| m.min(total_rows));
    let format = FormatOptions::default()
        .with_null("NULL")
        .with_timestamp_tz_format(Some(TIMESTAMP_TZ_FORMAT))
        .with_timestamp_format(Some(TIMESTAMP_FORMAT));
    let header: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(shown);
    'batches: for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &format))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            if rows.len() == shown {
                break 'batches;
            }
            rows.push(
                formatters
                    .iter()
                    .map(|f| one_line_cell(&f.value(row).to_string()))
                    .collect(),
            );
        }
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    if let Some(limit) = options.max_width {
        fit_widths(&mut widths, limit);
    }
    let border: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+";
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("| {:<w$} ", truncate(cell, *w), w = *w))
            .collect::<String>()
            + "|"
    };
    writeln!(out, "{border}")?;
    writeln!(out, "{}", line(&header))?;
    writeln!(out, "{border}")?;
    for row in &rows {
        writeln!(out, "{}", line(row))?;
    }
    writeln!(out, "{border}")?;
    if shown < total_rows {
        writeln!(
            out,
            "{shown} of {total_rows} rows shown; {} left out (--max-rows)",
            total_rows - shown
        )?;
    }
    Ok(())
}

/// Shrinks the widest columns until the table (with its borders) fits `limit` columns.
fn fit_widths(widths: &mut [usize], limit: usize) {
    let borders = 3 * widths.len() + 1;
    let mut total: usize = widths.iter().sum::<usize>() + borders;
    while total > limit {
        let Some((widest, width)) = widths.iter().copied().enumerate().max_by_key(|(_, w)| *w)
        else {
            return;
        };
        if width <= MIN_COLUMN_WIDTH {
            return;
        }
        // Shrink the widest column to the next widest (or just enough), in one step.
        let next = widths
            .iter()
            .copied()
            .filter(|w| *w < width)
            .max()
            .unwrap_or(MIN_COLUMN_WIDTH);
        let shrink = (width - next.max(MIN_COLUMN_WIDTH))
            .max(1)
            .min(total - limit);
        widths[widest] -= shrink;
        total -= shrink;
    }
}

fn truncate(cell: &str, width: usize) -> String {
    if cell.chars().count() <= width {
        return cell.to_string();
    }
    let mut out: String = cell.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Newlines and tabs would break the table's lines.
fn one_line_cell(cell: &str) -> String {
    if cell.contains(['\n', '\r', '\t']) {
        cell.replace("\r\n", "↵")
            .replace(['\n', '\r'], "↵")
            .replace('\t', " ")
    } else {
        cell.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![
                    Some("a rather long value"),
                    None,
                    Some("x"),
                ])),
                Arc::new(Int64Array::from(vec![1, 2, 3])),
            ],
        )
        .unwrap()
    }

    fn print(options: PrintOptions) -> String {
        let batch = batch();
        let mut out = Vec::new();
        let mut writer = ResultWriter::new(&mut out, batch.schema(), options);
        writer.write(&batch).unwrap();
        assert_eq!(writer.finish().unwrap(), 3);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn table_shows_nulls_and_aligns() {
        let out = print(PrintOptions::default());
        assert_eq!(
            out,
            "+---------------------+---+\n| name                | n |\n+---------------------+---+\n\
             | a rather long value | 1 |\n| NULL                | 2 |\n| x                   | 3 |\n\
             +---------------------+---+\n"
        );
    }

    #[test]
    fn table_fits_width_and_limits_rows() {
        let out = print(PrintOptions {
            max_rows: Some(2),
            max_width: Some(20),
            ..Default::default()
        });
        for line in out.lines().take(6) {
            assert!(line.chars().count() <= 20, "{line:?} is wider than 20");
        }
        assert!(out.contains("| a rather lo… | 1 |"), "{out}");
        assert!(
            out.ends_with("2 of 3 rows shown; 1 left out (--max-rows)\n"),
            "{out}"
        );
    }

    #[test]
    fn json_and_csv() {
        let out = print(PrintOptions {
            format: PrintFormat::Json,
            ..Default::default()
        });
        assert_eq!(
            out,
            "[\n{\"name\":\"a rather long value\",\"n\":1},\n{\"name\":null,\"n\":2},\n{\"name\":\"x\",\"n\":3}\n]\n"
        );
        let out = print(PrintOptions {
            format: PrintFormat::Csv,
            header: false,
            ..Default::default()
        });
        assert_eq!(out, "a rather long value,1\n,2\nx,3\n");
    }
}
