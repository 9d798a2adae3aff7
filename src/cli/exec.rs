//! Running SQL text: split into statements, plan, execute, print.

use std::cell::Cell;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::error::DataFusionError;
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::ast::Spanned;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use futures::StreamExt;

use crate::print_format::{PrintOptions, ResultWriter};
use crate::tables::{ScanTiming, scan_timings};
use datafusion::physical_plan::execute_stream;

/// Why running SQL stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A statement failed; `line` is its first line within its source, when known.
    #[error("{}{}", line.map(|l| format!("line {l}: ")).unwrap_or_default(), one_line(error))]
    Statement {
        error: DataFusionError,
        line: Option<u64>,
    },
    /// The reader of our output went away (`runql ... | head`): stop quietly.
    #[error("broken pipe")]
    BrokenPipe,
    #[error("writing results failed: {0}")]
    Output(String),
}

/// A DataFusion error as one line, without DataFusion's wrapping of our own errors.
pub fn one_line(error: &DataFusionError) -> String {
    let root = match error {
        DataFusionError::External(e) => e.to_string(),
        DataFusionError::Context(_, inner) => return one_line(inner),
        DataFusionError::ArrowError(e, _) => e.to_string(),
        other => other.strip_backtrace(),
    };
    let root = root
        .strip_prefix("External error: ")
        .unwrap_or(&root)
        .to_string();
    root.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What one statement gave: how many rows it printed (None when it returns none, like DDL),
/// how long it took, and what each scan of the store did.
#[derive(Debug, Clone)]
pub struct Done {
    pub rows: Option<usize>,
    pub elapsed: Duration,
    pub scans: Vec<ScanTiming>,
}

/// What printing a result did.
#[derive(Debug, Clone)]
pub struct Printed {
    /// Rows printed; None when the statement returns no columns (DDL).
    pub rows: Option<usize>,
    pub scans: Vec<ScanTiming>,
}

/// Runs each statement of `sql` in order, printing each result to `out` and reporting each
/// to `done`; stops at the first failure.
pub async fn run_sql<W: Write>(
    ctx: &SessionContext,
    sql: &str,
    out: &mut W,
    options: PrintOptions,
    done: &mut dyn FnMut(Done),
) -> Result<(), ExecError> {
    let statements = DFParserBuilder::new(sql)
        .with_dialect(&GenericDialect {})
        .build()
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|e| ExecError::Statement {
            error: e,
            line: None,
        })?;
    for statement in statements {
        let line = statement_line(&statement);
        let start = Instant::now();
        let printed = run_statement(ctx, statement, out, options)
            .await
            .map_err(|e| match e {
                ExecError::Statement { error, line: None } => ExecError::Statement { error, line },
                other => other,
            })?;
        done(Done {
            rows: printed.rows,
            elapsed: start.elapsed(),
            scans: printed.scans,
        });
    }
    Ok(())
}

fn statement_line(statement: &Statement) -> Option<u64> {
    match statement {
        Statement::Statement(s) => Some(s.span().start.line).filter(|l| *l > 0),
        _ => None,
    }
}

async fn run_statement<W: Write>(
    ctx: &SessionContext,
    statement: Statement,
    out: &mut W,
    options: PrintOptions,
) -> Result<Printed, ExecError> {
    let plan = ctx
        .state()
        .statement_to_plan(statement)
        .await
        .map_err(sql_error)?;
    let df = ctx.execute_logical_plan(plan).await.map_err(sql_error)?;
    print_dataframe(df, out, options).await
}

fn sql_error(error: DataFusionError) -> ExecError {
    ExecError::Statement { error, line: None }
}

/// Executes `df` and prints its rows as they stream; says how many (None when the
/// statement returns no columns at all, as DDL does) and what its scans did.
pub async fn print_dataframe<W: Write>(
    df: DataFrame,
    out: &mut W,
    options: PrintOptions,
) -> Result<Printed, ExecError> {
    let schema = Arc::new(df.schema().as_arrow().clone());
    let task = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await.map_err(sql_error)?;
    let mut stream = execute_stream(Arc::clone(&plan), task).map_err(sql_error)?;
    if schema.fields().is_empty() {
        // DDL and the like: nothing to print, but run it to the end.
        while let Some(batch) = stream.next().await {
            batch.map_err(sql_error)?;
        }
        return Ok(Printed {
            rows: None,
            scans: scan_timings(&plan),
        });
    }
    let mut watched = PipeWatch::new(out);
    let result = async {
        let mut writer = ResultWriter::new(&mut watched, schema, options);
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(sql_error)?;
            writer
                .write(&batch)
                .map_err(|e| ExecError::Output(e.to_string()))?;
        }
        let rows = writer
            .finish()
            .map_err(|e| ExecError::Output(e.to_string()))?;
        Ok(Printed {
            rows: Some(rows),
            scans: scan_timings(&plan),
        })
    }
    .await;
    match result {
        Err(ExecError::Output(_)) if watched.broken() => Err(ExecError::BrokenPipe),
        other => other,
    }
}

/// Remembers whether the reader of our output went away, which Arrow's writers report only
/// as text.
struct PipeWatch<'a, W: Write> {
    inner: &'a mut W,
    broken: Cell<bool>,
}

impl<'a, W: Write> PipeWatch<'a, W> {
    fn new(inner: &'a mut W) -> Self {
        Self {
            inner,
            broken: Cell::new(false),
        }
    }

    fn broken(&self) -> bool {
        self.broken.get()
    }

    fn watch<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            self.broken.set(true);
        }
        result
    }
}

impl<W: Write> Write for PipeWatch<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.inner.write(buf);
        self.watch(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.inner.flush();
        self.watch(result)
    }
}
