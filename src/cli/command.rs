//! Backslash commands of the REPL.

use std::path::PathBuf;
use std::str::FromStr;

use clap::ValueEnum;

use crate::print_format::PrintFormat;

/// What `\timing` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    Off,
    On,
    Detail,
}

/// A REPL command: a line starting with a backslash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `\q`: leave the REPL.
    Quit,
    /// `\?`: list the commands.
    Help,
    /// `\d`: list the tables.
    ListTables,
    /// `\d NAME`: a table's columns, types and meanings.
    Describe(String),
    /// `\format FORMAT`: how results print from now on.
    Format(PrintFormat),
    /// `\timing [on|off|detail]`: show elapsed time after each result (no argument: toggle);
    /// `detail` adds each scan's rows and time in the store.
    Timing(Option<Timing>),
    /// `\o FILE`: results to a file; `\o` alone: back to the terminal.
    Output(Option<PathBuf>),
    /// `\i FILE`: run the SQL in a file.
    Include(PathBuf),
    /// `\queries`: the named reports.
    Queries,
    /// `\store`: which store is open, its ZenML version and sizes.
    Store,
}

impl Command {
    /// `(syntax, what it does)` for `\?`.
    pub const HELP: &'static [(&'static str, &'static str)] = &[
        ("\\q", "quit (or Ctrl-D)"),
        ("\\?", "list these commands"),
        ("\\d", "list the tables"),
        (
            "\\d TABLE",
            "describe a table: its columns, their types and meanings",
        ),
        (
            "\\format FORMAT",
            "print results as table, csv, tsv, json, ndjson or markdown",
        ),
        (
            "\\timing [on|off|detail]",
            "show the elapsed time after each result; detail: each scan's rows and store time",
        ),
        (
            "\\o [FILE]",
            "send results to FILE; \\o alone sends them back to the terminal",
        ),
        ("\\i FILE", "run the SQL statements in FILE"),
        (
            "\\queries",
            "list the named reports (run them with `runql query NAME`)",
        ),
        (
            "\\store",
            "the open store: path, ZenML schema version, counts",
        ),
    ];
}

impl FromStr for Command {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let line = line.trim().trim_end_matches(';').trim();
        let (name, rest) = match line.split_once(char::is_whitespace) {
            Some((name, rest)) => (name, Some(rest.trim()).filter(|r| !r.is_empty())),
            None => (line, None),
        };
        let one_word = |rest: Option<&str>| -> Result<(), String> {
            match rest {
                Some(r) if r.contains(char::is_whitespace) => {
                    Err(format!("too many arguments to {name}; try \\?"))
                }
                _ => Ok(()),
            }
        };
        let none = |rest: Option<&str>| -> Result<(), String> {
            match rest {
                Some(_) => Err(format!("{name} takes no argument; try \\?")),
                None => Ok(()),
            }
        };
        match name {
            "\\q" | "\\quit" => none(rest).map(|_| Command::Quit),
            "\\?" | "\\h" | "\\help" => none(rest).map(|_| Command::Help),
            "\\d" => {
                one_word(rest)?;
                Ok(rest.map_or(Command::ListTables, |t| Command::Describe(t.to_string())))
            }
            "\\format" => {
                let value = rest
                    .ok_or("\\format takes a format: table, csv, tsv, json, ndjson or markdown")?;
                PrintFormat::from_str(value, true)
                    .map(Command::Format)
                    .map_err(|_| {
                        format!("unknown format {value}: table, csv, tsv, json, ndjson or markdown")
                    })
            }
            "\\timing" => match rest {
                None => Ok(Command::Timing(None)),
                Some("on") => Ok(Command::Timing(Some(Timing::On))),
                Some("off") => Ok(Command::Timing(Some(Timing::Off))),
                Some("detail") => Ok(Command::Timing(Some(Timing::Detail))),
                Some(other) => Err(format!("\\timing takes on, off or detail, not {other}")),
            },
            "\\o" => Ok(Command::Output(rest.map(PathBuf::from))),
            "\\i" => rest
                .map(|f| Command::Include(PathBuf::from(f)))
                .ok_or_else(|| "\\i takes a file".to_string()),
            "\\queries" => none(rest).map(|_| Command::Queries),
            "\\store" => none(rest).map(|_| Command::Store),
            _ => Err(format!("unknown command {name}; try \\?")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!("\\q".parse::<Command>(), Ok(Command::Quit));
        assert_eq!("\\d".parse::<Command>(), Ok(Command::ListTables));
        assert_eq!(
            "\\d runs;".parse::<Command>(),
            Ok(Command::Describe("runs".into()))
        );
        assert_eq!(
            "\\format JSON".parse::<Command>(),
            Ok(Command::Format(PrintFormat::Json))
        );
        assert_eq!(
            "\\timing off".parse::<Command>(),
            Ok(Command::Timing(Some(Timing::Off)))
        );
        assert_eq!("\\o".parse::<Command>(), Ok(Command::Output(None)));
        assert_eq!(
            "\\o out.csv".parse::<Command>(),
            Ok(Command::Output(Some("out.csv".into())))
        );
        assert_eq!(
            "\\i report.sql".parse::<Command>(),
            Ok(Command::Include("report.sql".into()))
        );
        assert!("\\x".parse::<Command>().is_err());
        assert!("\\d a b".parse::<Command>().is_err());
        assert!("\\format yaml".parse::<Command>().is_err());
        assert!("\\q now".parse::<Command>().is_err());
    }
}
