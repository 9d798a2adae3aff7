//! What each runql table is: its columns, their kinds and the contract in `schemas/`.
//!
//! Arrow types only, no store and no DataFusion session, so the pushdown translator's fuzz
//! target (fuzz/) compiles these definitions as they are.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// What a column holds, which decides its Arrow type and how SQLite values convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A ZenML UUID: 32 hex digits in the store, dashed lowercase in runql.
    Id,
    Text,
    /// UTF-8 JSON text.
    Json,
    Int,
    Float,
    Bool,
    /// ZenML's naive-UTC datetime text, as microseconds since the epoch in UTC.
    Timestamp,
    /// A list of strings, joined in SQLite with the unit separator (`char(31)`).
    TextList,
}

impl Kind {
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Id | Kind::Text | Kind::Json => DataType::Utf8,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::TextList => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
        }
    }

    /// The type's name in `schemas/`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Id => "id",
            Kind::Text => "text",
            Kind::Json => "json",
            Kind::Int => "bigint",
            Kind::Float => "double",
            Kind::Bool => "boolean",
            Kind::Timestamp => "timestamp",
            Kind::TextList => "list<text>",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        ALL_KINDS.iter().copied().find(|k| k.name() == name)
    }
}

const ALL_KINDS: [Kind; 8] = [
    Kind::Id,
    Kind::Text,
    Kind::Json,
    Kind::Int,
    Kind::Float,
    Kind::Bool,
    Kind::Timestamp,
    Kind::TextList,
];

#[derive(Debug)]
pub struct ColumnDef {
    pub name: &'static str,
    pub kind: Kind,
}

const fn c(name: &'static str, kind: Kind) -> ColumnDef {
    ColumnDef { name, kind }
}

/// A runql table: its name, columns and the contract file in `schemas/` that documents it.
#[derive(Debug)]
pub struct TableDef {
    pub name: &'static str,
    pub columns: &'static [ColumnDef],
    /// The table's file in `schemas/`, compiled in for `\d` and export metadata.
    pub contract: &'static str,
}

impl TableDef {
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(c.name, c.kind.data_type(), true))
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// The first paragraph of the table's contract: what one row is.
    pub fn summary(&self) -> &'static str {
        self.contract
            .split("\n\n")
            .nth(1)
            .map(str::trim)
            .unwrap_or("")
    }

    /// `(column, type, meaning)` rows of the table's contract file.
    pub fn contract_columns(&self) -> Vec<ContractColumn> {
        self.contract
            .lines()
            .filter(|line| line.starts_with('|'))
            .skip(2) // header and separator
            .filter_map(|line| {
                let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
                match cells.as_slice() {
                    [name, kind, meaning, source] => Some(ContractColumn {
                        name: name.to_string(),
                        kind: kind.to_string(),
                        meaning: meaning.to_string(),
                        source: source.to_string(),
                    }),
                    _ => None,
                }
            })
            .collect()
    }

    pub fn meaning(&self, column: &str) -> Option<String> {
        self.contract_columns()
            .into_iter()
            .find(|c| c.name == column)
            .map(|c| c.meaning)
    }
}

/// One row of a table's contract in `schemas/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractColumn {
    pub name: String,
    pub kind: String,
    pub meaning: String,
    pub source: String,
}

use Kind::*;

pub static TABLES: &[TableDef] = &[
    TableDef {
        name: "pipelines",
        contract: include_str!("../../schemas/pipelines.md"),
        columns: &[
            c("pipeline_id", Id),
            c("pipeline_name", Text),
            c("created", Timestamp),
            c("run_count", Int),
            c("first_run_start", Timestamp),
            c("pipeline_index", Int),
            c("description", Text),
        ],
    },
    TableDef {
        name: "runs",
        contract: include_str!("../../schemas/runs.md"),
        columns: &[
            c("run_id", Id),
            c("run_name", Text),
            c("pipeline_id", Id),
            c("pipeline_name", Text),
            c("status", Text),
            c("status_reason", Text),
            c("start_time", Timestamp),
            c("end_time", Timestamp),
            c("duration_s", Float),
            c("run_index", Int),
            c("run_rindex", Int),
            c("is_cached", Bool),
            c("git_sha", Text),
            c("tags", TextList),
            c("parameters", Json),
            c("config", Json),
            c("created", Timestamp),
            c("updated", Timestamp),
            c("exception", Json),
            c("pipeline_version", Text),
        ],
    },
    TableDef {
        name: "steps",
        contract: include_str!("../../schemas/steps.md"),
        columns: &[
            c("step_id", Id),
            c("step_name", Text),
            c("entrypoint", Text),
            c("run_id", Id),
            c("run_name", Text),
            c("pipeline_name", Text),
            c("status", Text),
            c("is_cached", Bool),
            c("original_step_id", Id),
            c("start_time", Timestamp),
            c("end_time", Timestamp),
            c("duration_s", Float),
            c("step_index", Int),
            c("step_rindex", Int),
            c("parameters", Json),
            c("config", Json),
            c("cache_key", Text),
            c("code_hash", Text),
            c("docstring", Text),
            c("source_code", Text),
            c("exception", Json),
        ],
    },
    TableDef {
        name: "outputs",
        contract: include_str!("../../schemas/outputs.md"),
        columns: &[
            c("output_id", Id),
            c("output_name", Text),
            c("step_id", Id),
            c("step_name", Text),
            c("run_id", Id),
            c("run_name", Text),
            c("pipeline_name", Text),
            c("artifact_name", Text),
            c("artifact_version", Text),
            c("artifact_type", Text),
            c("data_type", Text),
            c("materializer", Text),
            c("uri", Text),
            c("content_hash", Text),
            c("created", Timestamp),
        ],
    },
    TableDef {
        name: "inputs",
        contract: include_str!("../../schemas/inputs.md"),
        columns: &[
            c("step_id", Id),
            c("step_name", Text),
            c("run_id", Id),
            c("input_name", Text),
            c("output_id", Id),
            c("input_type", Text),
        ],
    },
    TableDef {
        name: "metadata",
        contract: include_str!("../../schemas/metadata.md"),
        columns: &[
            c("resource_type", Text),
            c("resource_id", Id),
            c("key", Text),
            c("value", Json),
            c("value_type", Text),
            c("publisher_step_id", Id),
            c("created", Timestamp),
        ],
    },
];

pub fn table_def(name: &str) -> Option<&'static TableDef> {
    TABLES.iter().find(|t| t.name == name)
}
