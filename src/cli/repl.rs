//! The interactive shell: multi-line SQL, completion, persistent history, backslash
//! commands; Ctrl-C cancels the running query, not the shell.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor};

use super::command::Command;
use super::describe;
use super::exec::{Done, ExecError, one_line, run_sql};
use super::helper::ReplHelper;
use crate::print_format::{PrintFormat, PrintOptions, ResultWriter};
use crate::store::ZenStore;

/// Rows a table result shows in the REPL unless `--max-rows` says otherwise.
pub const DEFAULT_MAX_ROWS: usize = 40;

pub struct Repl {
    ctx: SessionContext,
    /// None for an export folder.
    store: Option<Arc<ZenStore>>,
    path: PathBuf,
    options: PrintOptions,
    history: Option<PathBuf>,
    queries_dir: Option<PathBuf>,
    timing: bool,
    /// Where results go after `\o FILE`.
    output: Option<(PathBuf, BufWriter<File>)>,
}

impl Repl {
    pub fn new(
        ctx: SessionContext,
        store: Option<Arc<ZenStore>>,
        path: PathBuf,
        options: PrintOptions,
        history: Option<PathBuf>,
        queries_dir: Option<PathBuf>,
    ) -> Self {
        Self {
            ctx,
            store,
            path,
            options,
            history,
            queries_dir,
            timing: true,
            output: None,
        }
    }

    pub async fn run(mut self) -> anyhow::Result<()> {
        let config = Config::builder()
            .auto_add_history(false)
            .completion_type(rustyline::CompletionType::List)
            .build();
        let mut editor: Editor<ReplHelper, FileHistory> = Editor::with_config(config)?;
        editor.set_helper(Some(ReplHelper::new(self.completion_tables())));
        if let Some(path) = &self.history {
            // A missing history file is a first session, not an error.
            let _ = editor.load_history(path);
        }
        eprintln!(
            "runql {}: SQL over ZenML run history. \\d lists tables, \\? commands, \\q quits.",
            env!("CARGO_PKG_VERSION")
        );
        loop {
            match editor.readline("runql> ") {
                Ok(line) => {
                    let input = line.trim();
                    if input.is_empty() {
                        continue;
                    }
                    editor.add_history_entry(input)?;
                    if let Some(path) = &self.history {
                        // Append as we go, so concurrent sessions share one history.
                        if let Err(e) = editor.append_history(path) {
                            eprintln!("warning: cannot write history {}: {e}", path.display());
                        }
                    }
                    if input.starts_with('\\') {
                        match input.parse::<Command>() {
                            Ok(Command::Quit) => break,
                            Ok(command) => {
                                let width = editor.dimensions().map(|(w, _)| w as usize);
                                self.command(command, width).await
                            }
                            Err(e) => eprintln!("error: {e}"),
                        }
                    } else {
                        let width = editor.dimensions().map(|(w, _)| w as usize);
                        self.sql(input, width).await;
                    }
                }
                // Ctrl-C at the prompt drops the line being typed, as in psql.
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Table and column names for completion.
    fn completion_tables(&self) -> Vec<(String, Vec<String>)> {
        let mut tables = Vec::new();
        for def in crate::tables::TABLES {
            tables.push((
                def.name.to_string(),
                def.columns.iter().map(|c| c.name.to_string()).collect(),
            ));
        }
        tables
    }

    fn print_options(&self, width: Option<usize>) -> PrintOptions {
        PrintOptions {
            max_rows: self.options.max_rows.or(Some(DEFAULT_MAX_ROWS)),
            // A file gets whole cells; the terminal gets what fits.
            max_width: if self.output.is_some() { None } else { width },
            ..self.options
        }
    }

    async fn sql(&mut self, sql: &str, width: Option<usize>) {
        let options = self.print_options(width);
        let timing = self.timing;
        let mut report = |done: Done| {
            let rows = match done.rows {
                Some(1) => "1 row".to_string(),
                Some(n) => format!("{n} rows"),
                None => "done".to_string(),
            };
            if timing {
                eprintln!("{rows} in {:.3}s", done.elapsed.as_secs_f64());
            } else {
                eprintln!("{rows}");
            }
        };
        let ctx = self.ctx.clone();
        let result = match &mut self.output {
            Some((_, file)) => {
                let run = run_sql(&ctx, sql, file, options, &mut report);
                cancellable(run).await.inspect(|_| {
                    let _ = file.flush();
                })
            }
            None => {
                let mut out = std::io::stdout();
                cancellable(run_sql(&ctx, sql, &mut out, options, &mut report)).await
            }
        };
        match result {
            None => eprintln!("cancelled"),
            Some(Ok(()) | Err(ExecError::BrokenPipe)) => {}
            Some(Err(e)) => eprintln!("error: {e}"),
        }
    }

    async fn command(&mut self, command: Command, width: Option<usize>) {
        let batch = match command {
            Command::Quit => return,
            Command::Help => {
                for (syntax, about) in Command::HELP {
                    println!("{syntax:<18} {about}");
                }
                return;
            }
            Command::Format(format) => {
                self.options.format = format;
                eprintln!("format: {format}");
                return;
            }
            Command::Timing(on) => {
                self.timing = on.unwrap_or(!self.timing);
                eprintln!("timing {}", if self.timing { "on" } else { "off" });
                return;
            }
            Command::Output(None) => {
                if let Some((path, mut file)) = self.output.take() {
                    let _ = file.flush();
                    eprintln!("results to the terminal again ({} written)", path.display());
                }
                return;
            }
            Command::Output(Some(path)) => {
                match File::create(&path) {
                    Ok(file) => {
                        eprintln!("results to {}", path.display());
                        self.output = Some((path, BufWriter::new(file)));
                    }
                    Err(e) => eprintln!("error: cannot write {}: {e}", path.display()),
                }
                return;
            }
            Command::Include(path) => {
                match std::fs::read_to_string(&path) {
                    Ok(sql) => self.sql(&sql, width).await,
                    Err(e) => eprintln!("error: cannot read {}: {e}", path.display()),
                }
                return;
            }
            Command::ListTables => describe::list_tables(&self.ctx).await,
            Command::Describe(table) => describe::describe_table(&self.ctx, &table).await,
            Command::Queries => describe::list_reports(self.queries_dir.as_deref()),
            Command::Store => {
                describe::store_info(&self.ctx, self.store.as_deref(), &self.path).await
            }
        };
        match batch {
            Ok(batch) => self.print_batch(&batch, width),
            Err(e) => eprintln!("error: {}", one_line(&e)),
        }
    }

    fn print_batch(&self, batch: &RecordBatch, width: Option<usize>) {
        let mut options = self.print_options(width);
        options.max_rows = None;
        if options.format == PrintFormat::Table {
            options.max_width = width;
        }
        let mut out = std::io::stdout().lock();
        let mut writer = ResultWriter::new(&mut out, batch.schema(), options);
        let result = writer
            .write(batch)
            .and_then(|_| writer.finish().map(|_| ()));
        if let Err(e) = result {
            eprintln!("error: {e}");
        }
        let _ = out.flush();
    }
}

/// Runs `work` until it ends or Ctrl-C is pressed (then `None`: dropping the query stops
/// its scans, and SQLite's progress handler stops SQLite).
async fn cancellable<T>(work: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        result = work => Some(result),
        _ = tokio::signal::ctrl_c() => None,
    }
}
