//! The REPL's line editor helper: completion, keyword highlighting, and multi-line input
//! that ends with `;`, checked by the SQL parser before it runs.

use std::borrow::Cow;

use datafusion::sql::parser::DFParserBuilder;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::command::Command;

/// SQL keywords offered by completion and highlighted.
const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "LEFT",
    "RIGHT",
    "FULL",
    "INNER",
    "OUTER",
    "CROSS",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "ILIKE",
    "BETWEEN",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DISTINCT",
    "UNION",
    "ALL",
    "WITH",
    "RECURSIVE",
    "OVER",
    "PARTITION",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "EXPLAIN",
    "DESCRIBE",
    "SHOW",
    "TABLES",
    "COPY",
    "TO",
    "CREATE",
    "VIEW",
    "TRUE",
    "FALSE",
    "CAST",
    "INTERVAL",
    "EXISTS",
    "VALUES",
    "WITHIN",
];

/// Keywords after which a table name comes.
const TABLE_CONTEXT: &[&str] = &["FROM", "JOIN", "DESCRIBE", "TABLE"];

#[derive(Debug, Default)]
pub struct ReplHelper {
    /// `(table, columns)` for completion.
    tables: Vec<(String, Vec<String>)>,
}

impl ReplHelper {
    pub fn new(tables: Vec<(String, Vec<String>)>) -> Self {
        Self { tables }
    }

    /// Completion candidates for `word`, given the text before it.
    pub fn candidates(&self, before: &str, word: &str) -> Vec<String> {
        let upper = word.to_ascii_uppercase();
        let starts = |c: &str| c.to_ascii_uppercase().starts_with(&upper);
        if before.trim().is_empty() && word.starts_with('\\') {
            return Command::HELP
                .iter()
                .map(|(syntax, _)| {
                    syntax
                        .split_whitespace()
                        .next()
                        .unwrap_or(syntax)
                        .to_string()
                })
                .filter(|c| c.starts_with(word))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
        }
        if before.trim_start().starts_with("\\d") {
            return self
                .tables
                .iter()
                .map(|(t, _)| t.clone())
                .filter(|t| starts(t))
                .collect();
        }
        if let Some((table, column)) = word.split_once('.') {
            return self
                .tables
                .iter()
                .filter(|(t, _)| t == table)
                .flat_map(|(t, cols)| cols.iter().map(move |c| format!("{t}.{c}")))
                .filter(|c| {
                    c.split_once('.')
                        .is_some_and(|(_, col)| col.starts_with(column))
                })
                .collect();
        }
        let previous = before
            .split_whitespace()
            .last()
            .unwrap_or("")
            .to_ascii_uppercase();
        if TABLE_CONTEXT.contains(&previous.as_str()) {
            return self
                .tables
                .iter()
                .map(|(t, _)| t.clone())
                .filter(|t| starts(t))
                .collect();
        }
        let mut out: Vec<String> = KEYWORDS
            .iter()
            .filter(|k| starts(k))
            .map(|k| k.to_string())
            .collect();
        out.extend(
            self.tables
                .iter()
                .map(|(t, _)| t.clone())
                .filter(|t| starts(t)),
        );
        let mut columns: Vec<String> = self
            .tables
            .iter()
            .flat_map(|(_, cols)| cols.iter().cloned())
            .filter(|c| starts(c))
            .collect();
        columns.sort();
        columns.dedup();
        out.extend(columns);
        out
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '\\'))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        let candidates = self
            .candidates(&line[..start], word)
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, candidates))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if line.trim_start().starts_with('\\') {
            return Cow::Borrowed(line);
        }
        Cow::Owned(highlight_keywords(line))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        true
    }
}

/// Wraps SQL keywords outside quotes in bold blue.
pub fn highlight_keywords(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let flush = |word: &mut String, out: &mut String| {
        if KEYWORDS.contains(&word.to_ascii_uppercase().as_str()) {
            out.push_str("\x1b[1;34m");
            out.push_str(word);
            out.push_str("\x1b[0m");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in line.chars() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c.is_alphanumeric() || c == '_' => word.push(c),
            None => {
                flush(&mut word, &mut out);
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    flush(&mut word, &mut out);
    out
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        if !is_complete(input) {
            return Ok(ValidationResult::Incomplete);
        }
        Ok(match parse_error(input) {
            // Flag it before it runs, and keep it in the editor to fix.
            Some(error) => ValidationResult::Invalid(Some(format!("\n  cannot parse: {error}"))),
            None => ValidationResult::Valid(None),
        })
    }
}

impl Helper for ReplHelper {}

/// Whether `input` is ready to run: empty, a backslash command, or SQL ending with `;`.
pub fn is_complete(input: &str) -> bool {
    let input = input.trim();
    input.is_empty() || input.starts_with('\\') || input.ends_with(';')
}

/// The parser's complaint about `input`, if any (backslash commands are not SQL).
pub fn parse_error(input: &str) -> Option<String> {
    if input.trim_start().starts_with('\\') {
        return None;
    }
    DFParserBuilder::new(input)
        .with_dialect(&GenericDialect {})
        .build()
        .and_then(|mut p| p.parse_statements())
        .err()
        .map(|e| {
            e.strip_backtrace()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper() -> ReplHelper {
        ReplHelper::new(vec![
            (
                "runs".into(),
                vec!["run_id".into(), "run_name".into(), "status".into()],
            ),
            ("steps".into(), vec!["step_id".into(), "run_id".into()]),
        ])
    }

    #[test]
    fn statements_end_with_semicolons() {
        assert!(is_complete(""));
        assert!(is_complete("\\d runs"));
        assert!(is_complete("SELECT 1;"));
        assert!(!is_complete("SELECT *\nFROM runs"));
        assert!(is_complete("SELECT *\nFROM runs;  "));
    }

    #[test]
    fn completes_by_context() {
        let h = helper();
        assert_eq!(h.candidates("SELECT * FROM ", "r"), ["runs"]);
        assert_eq!(
            h.candidates("SELECT ", "runs.run_"),
            ["runs.run_id", "runs.run_name"]
        );
        assert_eq!(h.candidates("", "\\q"), ["\\q", "\\queries"]);
        assert_eq!(h.candidates("", "\\st"), ["\\store"]);
        assert!(h.candidates("", "SEL").contains(&"SELECT".to_string()));
        assert!(
            h.candidates("SELECT ", "sta")
                .contains(&"status".to_string())
        );
        assert_eq!(h.candidates("\\d ", "st"), ["steps"]);
    }

    #[test]
    fn flags_unparsable_sql() {
        assert!(parse_error("SELECT 1;").is_none());
        assert!(parse_error("SELEC 1;").is_some());
        assert!(parse_error("\\d runs").is_none());
    }

    #[test]
    fn highlights_keywords_not_strings() {
        assert_eq!(
            highlight_keywords("select 'from'"),
            "\x1b[1;34mselect\x1b[0m 'from'"
        );
    }
}
