//! What runs SQL statements and backslash commands, for the REPL and for scripts (`-c`, `-f`,
//! stdin) alike: the session, how results print, where they go (`\o`).
//!
//! A script runs piece by piece (see [`script`](super::script)) and stops at the first piece
//! that fails, naming its source and line; the REPL reports a failure and goes on.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use super::command::Command;
use super::describe;
use super::exec::{Done, ExecError, one_line, run_sql};
use super::script::{Piece, split};
use crate::print_format::{PrintFormat, PrintOptions, ResultWriter};
use crate::store::ZenStore;

/// Rows a table result shows in the REPL unless `--max-rows` says otherwise.
pub const DEFAULT_MAX_ROWS: usize = 40;

/// Whether to go on after a piece of a script ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `\q`: stop reading.
    Quit,
}

/// Why a script stopped.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// A statement or command failed; `at` says where (`stdin: line 3: `), when that helps.
    #[error("{at}{message}")]
    Failed { at: String, message: String },
    /// The reader of our output went away (`runql ... | head`): stop quietly.
    #[error("broken pipe")]
    BrokenPipe,
    /// Ctrl-C in the REPL.
    #[error("cancelled")]
    Cancelled,
}

/// What a piece failed with, before its place in the script is known.
enum PieceError {
    Message(String, Option<usize>),
    BrokenPipe,
    Cancelled,
}

impl From<ExecError> for PieceError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::BrokenPipe => PieceError::BrokenPipe,
            ExecError::Statement { error, line } => {
                PieceError::Message(one_line(&error), line.map(|l| l as usize))
            }
            other => PieceError::Message(other.to_string(), None),
        }
    }
}

/// Brings what a session reads up to date before a statement (a mirror's sync), in place.
pub type Refresh =
    Box<dyn FnMut(SessionContext) -> futures::future::LocalBoxFuture<'static, Result<(), String>>>;

pub struct Shell {
    ctx: SessionContext,
    /// Run before each statement, when the session reads a mirror that can be brought up to
    /// date.
    refresh: Option<Refresh>,
    /// None for an export folder.
    store: Option<Arc<ZenStore>>,
    /// Where the store is, as `\store` shows it (never a password).
    store_name: String,
    options: PrintOptions,
    queries_dir: Option<PathBuf>,
    /// Elapsed time after each result (stderr).
    timing: bool,
    /// With it, each scan's rows and time in the store, and the rest (`--timing`,
    /// `\timing detail`).
    detail: bool,
    /// The REPL: row counts after each result, Ctrl-C cancels a query, results fit the terminal.
    interactive: bool,
    /// Where results go after `\o FILE`.
    output: Option<(PathBuf, BufWriter<File>)>,
}

impl Shell {
    pub fn new(
        ctx: SessionContext,
        store: Option<Arc<ZenStore>>,
        store_name: String,
        options: PrintOptions,
        queries_dir: Option<PathBuf>,
        interactive: bool,
    ) -> Self {
        Self {
            ctx,
            refresh: None,
            store,
            store_name,
            options,
            queries_dir,
            timing: interactive,
            detail: false,
            interactive,
            output: None,
        }
    }

    /// Runs the statements and commands of `text` in order, stopping at the first failure.
    /// `source` names the text in errors (a file, `stdin`); `width` is the terminal's.
    pub async fn run_text(
        &mut self,
        source: Option<&str>,
        text: &str,
        width: Option<usize>,
    ) -> Result<Flow, ShellError> {
        let pieces = split(text);
        // Lines help when the text has several; a one-line REPL entry needs none.
        let show_line = source.is_some() || text.trim().contains('\n');
        for piece in pieces {
            let result = match &piece {
                Piece::Sql { text, .. } => self.statement(text, width).await,
                Piece::Command { text, .. } => match text.parse::<Command>() {
                    Ok(Command::Quit) => return Ok(Flow::Quit),
                    Ok(command) => self.command(command, width).await,
                    Err(message) => Err(PieceError::Message(message, None)),
                },
            };
            match result {
                Ok(()) => {}
                Err(PieceError::BrokenPipe) => return Err(ShellError::BrokenPipe),
                Err(PieceError::Cancelled) => return Err(ShellError::Cancelled),
                Err(PieceError::Message(message, within)) => {
                    // `within` is the line inside the statement the parser pointed at.
                    let line = piece.line() + within.unwrap_or(1) - 1;
                    let mut at = source.map(|s| format!("{s}: ")).unwrap_or_default();
                    if show_line {
                        at.push_str(&format!("line {line}: "));
                    }
                    return Err(ShellError::Failed { at, message });
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// Brings the session up to date with `refresh` before each statement.
    pub fn set_refresh(&mut self, refresh: Refresh) {
        self.refresh = Some(refresh);
    }

    /// `\timing`: None toggles; `--timing` is `Some(Timing::Detail)`.
    pub fn set_timing(&mut self, on: Option<super::command::Timing>) {
        use super::command::Timing;
        match on {
            None => {
                self.timing = !self.timing;
                self.detail = false;
            }
            Some(Timing::Off) => (self.timing, self.detail) = (false, false),
            Some(Timing::On) => (self.timing, self.detail) = (true, false),
            Some(Timing::Detail) => (self.timing, self.detail) = (true, true),
        }
    }

    /// Flushes a `\o` file, if results go to one.
    pub fn finish(&mut self) -> std::io::Result<()> {
        match &mut self.output {
            Some((_, file)) => file.flush(),
            None => Ok(()),
        }
    }

    fn print_options(&self, width: Option<usize>) -> PrintOptions {
        if !self.interactive {
            return self.options;
        }
        PrintOptions {
            max_rows: self.options.max_rows.or(Some(DEFAULT_MAX_ROWS)),
            // A file gets whole cells; the terminal gets what fits.
            max_width: if self.output.is_some() { None } else { width },
            ..self.options
        }
    }

    async fn statement(&mut self, sql: &str, width: Option<usize>) -> Result<(), PieceError> {
        let options = self.print_options(width);
        let (timing, interactive, detail) = (self.timing, self.interactive, self.detail);
        let mut report = |done: Done| {
            let rows = match done.rows {
                Some(1) => "1 row".to_string(),
                Some(n) => format!("{n} rows"),
                None => "done".to_string(),
            };
            match (interactive, timing) {
                (_, true) => eprintln!("{rows} in {:.3}s", done.elapsed.as_secs_f64()),
                (true, false) => eprintln!("{rows}"),
                (false, false) => {}
            }
            if detail {
                for line in timing_lines(&done) {
                    eprintln!("{line}");
                }
            }
        };
        let ctx = self.ctx.clone();
        if let Some(refresh) = &mut self.refresh {
            refresh(ctx.clone())
                .await
                .map_err(|e| PieceError::Message(e, None))?;
        }
        let result = match &mut self.output {
            Some((_, file)) => {
                let run = run_sql(&ctx, sql, file, options, &mut report);
                let result = self::cancellable(run, interactive).await;
                let _ = file.flush();
                result
            }
            None => {
                let mut out = BufWriter::new(std::io::stdout());
                let run = run_sql(&ctx, sql, &mut out, options, &mut report);
                let result = self::cancellable(run, interactive).await;
                match (result, out.flush()) {
                    (Some(Ok(())), Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        Some(Err(ExecError::BrokenPipe))
                    }
                    (result, _) => result,
                }
            }
        };
        match result {
            None => Err(PieceError::Cancelled),
            Some(result) => result.map_err(PieceError::from),
        }
    }

    async fn command(&mut self, command: Command, width: Option<usize>) -> Result<(), PieceError> {
        let batch = match command {
            Command::Quit => return Ok(()),
            Command::Help => {
                let mut out = std::io::stdout().lock();
                for (syntax, about) in Command::HELP {
                    writeln!(out, "{syntax:<18} {about}").map_err(write_error)?;
                }
                return Ok(());
            }
            Command::Format(format) => {
                self.options.format = format;
                self.note(&format!("format: {format}"));
                return Ok(());
            }
            Command::Timing(on) => {
                self.set_timing(on);
                let state = match (self.timing, self.detail) {
                    (true, true) => "on, with each scan",
                    (true, false) => "on",
                    _ => "off",
                };
                self.note(&format!("timing {state}"));
                return Ok(());
            }
            Command::Output(None) => {
                if let Some((path, mut file)) = self.output.take() {
                    file.flush().map_err(write_error)?;
                    self.note(&format!(
                        "results to the terminal again ({} written)",
                        path.display()
                    ));
                }
                return Ok(());
            }
            Command::Output(Some(path)) => {
                let file = File::create(&path).map_err(|e| {
                    PieceError::Message(format!("cannot write {}: {e}", path.display()), None)
                })?;
                self.note(&format!("results to {}", path.display()));
                if let Some((_, mut previous)) = self.output.replace((path, BufWriter::new(file))) {
                    previous.flush().map_err(write_error)?;
                }
                return Ok(());
            }
            Command::Include(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    PieceError::Message(format!("cannot read {}: {e}", path.display()), None)
                })?;
                let source = path.display().to_string();
                // A file may include another: the future is boxed to be recursive.
                let run = Box::pin(self.run_text(Some(&source), &text, width));
                return match run.await {
                    Ok(_) => Ok(()),
                    Err(ShellError::BrokenPipe) => Err(PieceError::BrokenPipe),
                    Err(ShellError::Cancelled) => Err(PieceError::Cancelled),
                    Err(ShellError::Failed { at, message }) => {
                        Err(PieceError::Message(format!("{at}{message}"), None))
                    }
                };
            }
            Command::ListTables => describe::list_tables(&self.ctx).await,
            Command::Describe(table) => describe::describe_table(&self.ctx, &table).await,
            Command::Queries => describe::list_reports(self.queries_dir.as_deref()),
            Command::Store => {
                describe::store_info(&self.ctx, self.store.as_deref(), &self.store_name).await
            }
        };
        let batch = batch.map_err(|e: DataFusionError| PieceError::Message(one_line(&e), None))?;
        self.print_batch(&batch, width)
    }

    /// A command's answer, printed as results are (all of it: it is never long).
    fn print_batch(&mut self, batch: &RecordBatch, width: Option<usize>) -> Result<(), PieceError> {
        let mut options = self.print_options(width);
        options.max_rows = None;
        if options.format == PrintFormat::Table && self.output.is_none() {
            options.max_width = width;
        }
        let result = match &mut self.output {
            Some((_, file)) => write_batch(file, batch, options),
            None => write_batch(&mut std::io::stdout().lock(), batch, options),
        };
        result.map_err(write_error)
    }

    /// A status message (the REPL's `format: csv`); scripts keep stderr for errors.
    fn note(&self, message: &str) {
        if self.interactive {
            eprintln!("{message}");
        }
    }
}

/// Where a statement's time went: each scan's rows and time in the store, then the rest
/// (DataFusion's work, printing). Scans run concurrently, so store times can add up to more
/// than the whole.
pub fn timing_lines(done: &Done) -> Vec<String> {
    let mut lines: Vec<String> = done
        .scans
        .iter()
        .map(|s| {
            format!(
                "  scan {}: {} rows from the store in {:.3}s",
                s.table,
                s.rows,
                s.store_time.as_secs_f64()
            )
        })
        .collect();
    let store: std::time::Duration = done.scans.iter().map(|s| s.store_time).sum();
    lines.push(format!(
        "  total {:.3}s: {:.3}s in the store, {:.3}s in DataFusion and printing",
        done.elapsed.as_secs_f64(),
        store.as_secs_f64(),
        done.elapsed.saturating_sub(store).as_secs_f64()
    ));
    lines
}

fn write_batch<W: Write>(
    out: &mut W,
    batch: &RecordBatch,
    options: PrintOptions,
) -> std::io::Result<()> {
    let mut writer = ResultWriter::new(out, batch.schema(), options);
    let written = writer.write(batch).and_then(|_| writer.finish());
    written.map_err(|e| match e {
        datafusion::arrow::error::ArrowError::IoError(_, io) => io,
        other => std::io::Error::other(other.to_string()),
    })?;
    out.flush()
}

fn write_error(e: std::io::Error) -> PieceError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        PieceError::BrokenPipe
    } else {
        PieceError::Message(format!("writing results failed: {e}"), None)
    }
}

/// Runs `work` until it ends or, when `interactive`, Ctrl-C is pressed (then `None`: dropping
/// the query stops its scans, and SQLite's progress handler stops SQLite). Scripts leave
/// Ctrl-C to its default, which ends the process.
async fn cancellable<T>(
    work: impl std::future::Future<Output = T>,
    interactive: bool,
) -> Option<T> {
    if !interactive {
        return Some(work.await);
    }
    tokio::select! {
        result = work => Some(result),
        _ = tokio::signal::ctrl_c() => None,
    }
}
