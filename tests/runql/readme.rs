//! Every runql command the README shows runs as written, and prints what the README shows.
//!
//! Commands are run by `sh` in a scratch folder that holds `zenml.db` (a copy of the 0.98
//! fixture, for the examples that name a store of their own) with `runql` on the PATH:
//! - ```text blocks: `$ runql ...` (continued over lines by `\` or an open quote), then its
//!   output up to the next `$ ` or the block's end; a line `...` stands for any lines. A bare
//!   `$ runql --demo` is a REPL transcript: its `runql> ` inputs run as a script and the
//!   tables it shows must come out (the banner and `N rows in Xs` lines are stderr).
//! - ```sh blocks: each line that runs runql (`cargo run --release --` counts as runql) must
//!   succeed; ```sql blocks must run on `--demo` and give rows.
//! - inline code that runs `runql --demo` must succeed.
//!
//! The demo's temp folder name carries a hash: it is masked on both sides.

use std::path::Path;
use std::process::Command;

use crate::common::*;

#[derive(Debug)]
enum Example {
    /// A command and the output shown after it (None: nothing shown, it must succeed).
    Command {
        command: String,
        output: Option<Vec<String>>,
    },
    /// A REPL session: its inputs, and what it shows on stdout.
    Repl {
        inputs: Vec<String>,
        output: Vec<String>,
    },
    /// A SQL block, run on --demo.
    Sql(String),
}

fn examples(text: &str) -> Vec<(usize, Example)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let Some(lang) = line.strip_prefix("```") else {
            for command in inline_commands(line) {
                found.push((
                    i + 1,
                    Example::Command {
                        command,
                        output: None,
                    },
                ));
            }
            i += 1;
            continue;
        };
        let start = i + 1;
        let mut end = start;
        while end < lines.len() && !lines[end].starts_with("```") {
            end += 1;
        }
        let block = &lines[start..end];
        match lang.trim() {
            "text" => found.extend(transcripts(block).into_iter().map(|e| (start, e))),
            "sh" => {
                for l in block {
                    let l = l.trim();
                    let command = l
                        .strip_prefix("cargo run --release -- ")
                        .map(|rest| format!("runql {rest}"))
                        .or_else(|| l.starts_with("runql ").then(|| l.to_string()));
                    if let Some(command) = command {
                        found.push((
                            start,
                            Example::Command {
                                command,
                                output: None,
                            },
                        ));
                    }
                }
            }
            "sql" => found.push((start, Example::Sql(block.join("\n")))),
            _ => {}
        }
        i = end + 1;
    }
    found
}

/// `runql --demo ...` in backquotes within a line of prose.
fn inline_commands(line: &str) -> Vec<String> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .filter(|code| code.contains("runql --demo"))
        .map(str::to_string)
        .collect()
}

fn transcripts(block: &[&str]) -> Vec<Example> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < block.len() {
        let Some(first) = block[i].strip_prefix("$ ") else {
            i += 1;
            continue;
        };
        let mut command = first.to_string();
        i += 1;
        while (command.ends_with('\\') || command.matches('"').count() % 2 == 1) && i < block.len()
        {
            command.push('\n');
            command.push_str(block[i]);
            i += 1;
        }
        let mut shown = Vec::new();
        while i < block.len() && !block[i].starts_with("$ ") {
            shown.push(block[i].to_string());
            i += 1;
        }
        if command.trim() == "runql --demo" {
            found.push(repl_session(&shown));
        } else {
            found.push(Example::Command {
                command,
                output: Some(shown),
            });
        }
    }
    found
}

fn repl_session(shown: &[String]) -> Example {
    let mut inputs = Vec::new();
    let mut output = Vec::new();
    let mut lines = shown.iter();
    while let Some(line) = lines.next() {
        if let Some(input) = line.strip_prefix("runql> ") {
            let mut statement = input.to_string();
            // SQL runs when it ends with `;`; a backslash command is one line.
            while !statement.starts_with('\\') && !statement.trim_end().ends_with(';') {
                match lines.next() {
                    Some(more) => {
                        statement.push('\n');
                        statement.push_str(more);
                    }
                    None => break,
                }
            }
            inputs.push(statement);
        } else if !is_stderr_line(line) {
            output.push(line.clone());
        }
    }
    Example::Repl { inputs, output }
}

/// The REPL's banner and row counts go to stderr.
fn is_stderr_line(line: &str) -> bool {
    line.starts_with("runql ") && line.contains("SQL over ZenML run history")
        || line.split_once(" in ").is_some_and(|(rows, time)| {
            (rows.ends_with(" rows") || rows.ends_with(" row")) && time.ends_with('s')
        })
}

/// Masks the demo folder's hash.
fn masked(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("runql-demo-") {
        let (before, after) = rest.split_at(at + "runql-demo-".len());
        out.push_str(before);
        let hex = after.chars().take_while(|c| c.is_ascii_hexdigit()).count();
        out.push_str(&"H".repeat(hex));
        rest = &after[hex..];
    }
    out.push_str(rest);
    out
}

/// Whether `got` is `shown`, where a line `...` in `shown` stands for any lines.
fn matches_shown(shown: &[String], got: &[String]) -> bool {
    match shown.split_first() {
        None => got.is_empty(),
        Some((first, rest)) if first.trim() == "..." => {
            (0..=got.len()).any(|skip| matches_shown(rest, &got[skip..]))
        }
        Some((first, rest)) => {
            got.first()
                .is_some_and(|g| masked(g).trim_end() == masked(first).trim_end())
                && matches_shown(rest, &got[1..])
        }
    }
}

fn shell(dir: &Path, script: &str, stdin: Option<&str>) -> std::process::Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_runql")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("RUNQL_STORE")
        .env_remove("RUNQL_ARTIFACT_ROOT")
        .env("ZENML_CONFIG_PATH", "/nonexistent/zenml-config")
        .env("HOME", dir);
    match stdin {
        Some(input) => output_with_stdin(&mut cmd, input),
        None => cmd.output().unwrap(),
    }
}

fn check(dir: &Path, line: usize, example: &Example) -> Result<(), String> {
    let (what, output, shown) = match example {
        Example::Command { command, output } => {
            (command.clone(), shell(dir, command, None), output.clone())
        }
        Example::Repl { inputs, output } => (
            format!("the REPL session ({} inputs)", inputs.len()),
            shell(dir, "runql --demo", Some(&inputs.join("\n"))),
            Some(output.clone()),
        ),
        Example::Sql(sql) => (
            sql.clone(),
            shell(dir, "runql --demo --format csv --no-header", Some(sql)),
            None,
        ),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        return Err(format!(
            "README.md:{line}: {what}\nfailed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    match shown {
        Some(shown) => {
            let got: Vec<String> = stdout.lines().map(str::to_string).collect();
            if !matches_shown(&shown, &got) {
                return Err(format!(
                    "README.md:{line}: {what}\nREADME shows:\n{}\nrunql prints:\n{stdout}",
                    shown.join("\n")
                ));
            }
        }
        None if matches!(example, Example::Sql(_)) && stdout.trim().is_empty() => {
            return Err(format!("README.md:{line}: {what}\ngave no rows"));
        }
        None => {}
    }
    Ok(())
}

#[test]
fn every_readme_example_runs_as_shown() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let found = examples(&readme);
    let commands = found
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Example::Command {
                    output: Some(_),
                    ..
                }
            )
        })
        .count();
    assert!(commands >= 4, "README transcripts with output: {found:?}");
    assert!(found.iter().any(|(_, e)| matches!(e, Example::Repl { .. })));
    let (dir, _) = fixture_copy();
    let failures: Vec<String> = found
        .iter()
        .filter_map(|(line, example)| check(dir.path(), *line, example).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn shown_output_matching_is_strict_but_for_ellipsis() {
    let lines = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
    assert!(matches_shown(&lines("a\n...\nd"), &lines("a\nb\nc\nd")));
    assert!(!matches_shown(&lines("a\nd"), &lines("a\nb\nd")));
    assert!(!matches_shown(&lines("a"), &lines("a\nb")));
    assert!(matches_shown(
        &lines("/tmp/runql-demo-0123abcd/zenml.db"),
        &lines("/tmp/runql-demo-ffff0000/zenml.db")
    ));
    assert!(is_stderr_line("3 rows in 0.009s"));
    assert!(!is_stderr_line("| 3 rows in table |"));
}
