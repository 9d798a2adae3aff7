//! The interactive shell: multi-line SQL, completion, persistent history, backslash
//! commands; Ctrl-C cancels the running query, not the shell.

use std::path::PathBuf;

use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor};

use super::helper::ReplHelper;
use super::shell::{Flow, Shell, ShellError};

pub struct Repl {
    shell: Shell,
    history: Option<PathBuf>,
}

impl Repl {
    /// A REPL over `shell` (made interactive), keeping history in `history`.
    pub fn new(shell: Shell, history: Option<PathBuf>) -> Self {
        Self { shell, history }
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
                    let width = editor.dimensions().map(|(w, _)| w as usize);
                    match self.shell.run_text(None, input, width).await {
                        Ok(Flow::Continue) | Err(ShellError::BrokenPipe) => {}
                        Ok(Flow::Quit) => break,
                        Err(ShellError::Cancelled) => eprintln!("cancelled"),
                        Err(e) => eprintln!("error: {e}"),
                    }
                }
                // Ctrl-C at the prompt drops the line being typed, as in psql.
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            }
        }
        self.shell.finish()?;
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
}
