//! Splitting a script (`-c`, `-f`, stdin, `\i`) into what runs one after another: SQL
//! statements and backslash commands, each with the line it starts on.
//!
//! Scripts run piece by piece, as psql, sqlite3 and the DuckDB CLI run them: a statement that
//! does not parse stops the script where it stands, after everything before it ran. So the
//! split cannot use the SQL parser (which rejects the whole text for one typo); it only needs
//! to know where a statement ends: at a `;` outside quotes and comments. A line that starts
//! with `\` where no statement is under way is a command, as in psql.

/// One piece of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A statement's text, without its `;`.
    Sql { text: String, line: usize },
    /// A backslash command line.
    Command { text: String, line: usize },
}

impl Piece {
    /// The 1-based line of the script the piece starts on.
    pub fn line(&self) -> usize {
        match self {
            Piece::Sql { line, .. } | Piece::Command { line, .. } => *line,
        }
    }
}

/// Where the splitter is inside the text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    /// In a quoted string or identifier closed by this character (doubled, it is escaped).
    Quoted(char),
    LineComment,
    BlockComment,
}

/// Splits `script` into statements and commands, in order. Blank statements (`;;`, comments
/// alone) are left out; an unterminated last statement is kept, so it reaches the parser and
/// fails there with the parser's own message.
pub fn split(script: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    // The line the current statement's first non-blank character is on.
    let mut start: Option<usize> = None;
    let mut line = 1;
    let mut state = State::Code;
    let mut chars = script.chars().peekable();
    let mut at_line_start = true;

    while let Some(c) = chars.next() {
        if state == State::Code && at_line_start && start.is_none() {
            // No statement is under way (comments at most): a command may start here.
            if c == '\\' {
                let mut text = String::from('\\');
                for next in chars.by_ref() {
                    if next == '\n' {
                        break;
                    }
                    text.push(next);
                }
                pieces.push(Piece::Command {
                    text: text.trim_end().to_string(),
                    line,
                });
                current.clear();
                line += 1;
                at_line_start = true;
                continue;
            }
            if c == ' ' || c == '\t' || c == '\r' {
                current.push(c);
                continue;
            }
        }
        at_line_start = c == '\n';
        match state {
            State::Code => match c {
                ';' => {
                    push_sql(&mut pieces, &mut current, start.take());
                    continue;
                }
                '\'' | '"' | '`' => state = State::Quoted(c),
                '-' if chars.peek() == Some(&'-') => state = State::LineComment,
                '/' if chars.peek() == Some(&'*') => {
                    current.push(c);
                    current.push(chars.next().unwrap_or('*'));
                    state = State::BlockComment;
                    continue;
                }
                _ => {}
            },
            State::Quoted(close) => {
                if c == close {
                    if chars.peek() == Some(&close) {
                        // A doubled quote is an escaped one: still inside.
                        current.push(c);
                        current.push(chars.next().unwrap_or(close));
                        continue;
                    }
                    state = State::Code;
                }
            }
            State::LineComment => {
                if c == '\n' {
                    state = State::Code;
                }
            }
            State::BlockComment => {
                if c == '*' && chars.peek() == Some(&'/') {
                    current.push(c);
                    current.push(chars.next().unwrap_or('/'));
                    state = State::Code;
                    continue;
                }
            }
        }
        if start.is_none()
            && !c.is_whitespace()
            && !matches!(state, State::LineComment | State::BlockComment)
        {
            start = Some(line);
        }
        if c == '\n' {
            line += 1;
        }
        current.push(c);
    }
    push_sql(&mut pieces, &mut current, start);
    pieces
}

/// Ends the statement under way; one with no code (blank, or comments alone) is dropped.
fn push_sql(pieces: &mut Vec<Piece>, current: &mut String, start: Option<usize>) {
    let text = std::mem::take(current);
    if let Some(line) = start
        && has_code(&text)
    {
        // From the first code on, so that lines within the text count from `line`.
        pieces.push(Piece::Sql {
            text: without_leading_comments(&text).trim_end().to_string(),
            line,
        });
    }
}

/// `text` from its first character that is neither white space nor in a comment.
fn without_leading_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("--") {
            text = rest.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(rest) = text.strip_prefix("/*") {
            text = rest.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return text;
        }
    }
}

/// Whether `text` has anything but white space and comments.
fn has_code(text: &str) -> bool {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for next in chars.by_ref() {
                    if next == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                for next in chars.by_ref() {
                    if previous == '*' && next == '/' {
                        break;
                    }
                    previous = next;
                }
            }
            c if c.is_whitespace() => {}
            _ => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(text: &str, line: usize) -> Piece {
        Piece::Sql {
            text: text.to_string(),
            line,
        }
    }

    fn command(text: &str, line: usize) -> Piece {
        Piece::Command {
            text: text.to_string(),
            line,
        }
    }

    #[test]
    fn statements_end_at_semicolons_outside_quotes_and_comments() {
        assert_eq!(
            split("SELECT 1 AS x; SELEC 2;"),
            vec![sql("SELECT 1 AS x", 1), sql("SELEC 2", 1)]
        );
        assert_eq!(
            split("SELECT ';' AS \"a;b\", 'it''s;' -- no; end\n;\nSELECT 2"),
            vec![
                sql("SELECT ';' AS \"a;b\", 'it''s;' -- no; end", 1),
                sql("SELECT 2", 3)
            ]
        );
        assert_eq!(
            split("/* a; b */ SELECT 1;\n\n-- only a comment;\n;;"),
            vec![sql("SELECT 1", 1)]
        );
        // An unterminated string runs to the end: the parser reports it.
        assert_eq!(split("SELECT 'open;"), vec![sql("SELECT 'open;", 1)]);
    }

    #[test]
    fn lines_are_where_statements_start() {
        assert_eq!(
            split("\n\n  SELECT 1;\n-- note\nSELECT\n 2;"),
            vec![sql("SELECT 1", 3), sql("SELECT\n 2", 5)]
        );
    }

    #[test]
    fn backslash_lines_are_commands_between_statements() {
        assert_eq!(
            split("\\d\nSELECT 1;\n  \\d runs  \nSELECT '\\x'\n\\q"),
            vec![
                command("\\d", 1),
                sql("SELECT 1", 2),
                command("\\d runs", 3),
                sql("SELECT '\\x'\n\\q", 4),
            ]
        );
        assert_eq!(split("\\format csv"), vec![command("\\format csv", 1)]);
        assert_eq!(split("-- list them\n\\d\n"), vec![command("\\d", 2)]);
    }
}
