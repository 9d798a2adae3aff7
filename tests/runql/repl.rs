//! The REPL, driven through a real pseudo-terminal (`tests/repl/pty_session.py`): multi-line
//! input, completion, `\d`, errors that leave the shell running, Ctrl-C, history, `\q`.

use serde_json::json;

use crate::common::*;

fn session(steps: serde_json::Value, history: &std::path::Path) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/repl/pty_session.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_runql"))
        .arg(steps.to_string())
        .arg("--")
        .arg("--store")
        .arg(fixture_store())
        .arg("--history-file")
        .arg(history)
        .output()
        .expect("python3 runs the pty driver");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "REPL session failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn a_session_at_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let pipelines = golden_rows("pipelines").len();
    session(
        json!([
            {"expect": "runql> "},
            // A statement over two lines runs when it ends with `;`.
            {"send": "SELECT run_name, status\r"},
            {"send": "FROM runs WHERE run_name = 'first-custom';\r"},
            {"expect": "| first-custom | completed |"},
            {"expect": "1 row in "},
            {"expect": "runql> "},
            // Tab completes a table name after FROM.
            {"send": "SELECT count(*) AS n FROM pipel\t;\r"},
            {"expect": format!("| {pipelines} |")},
            {"expect": "runql> "},
            // \d describes a table with meanings from schemas/.
            {"send": "\\d runs\r"},
            {"expect": "| run_rindex "},
            {"expect": "-1 is the latest run"},
            {"expect": "runql> "},
            // An error prints and the shell goes on.
            {"send": "SELECT nope FROM runs;\r"},
            {"expect": "error: "},
            {"expect": "runql> "},
            // Unparsable SQL is flagged before it runs; Ctrl-C drops the line.
            {"send": "SELEC 1;\r"},
            {"expect": "cannot parse"},
            {"send": "\u{3}"},
            {"expect": "runql> "},
            // Ctrl-C cancels a long query, not the shell.
            {"send": "SELECT count(*) FROM steps a, steps b, steps c, steps d, steps e, steps f, steps g;\r"},
            {"sleep": 0.5},
            {"send": "\u{3}"},
            {"expect": "cancelled"},
            {"expect": "runql> "},
            {"send": "\\timing off\r"},
            {"expect": "timing off"},
            {"expect": "runql> "},
            {"send": "SELECT 42 AS answer;\r"},
            {"expect": "| 42 "},
            {"expect": "runql> "},
            {"send": "\\q\r"}
        ]),
        &history,
    );
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(
        saved.contains("FROM runs WHERE run_name = 'first-custom';"),
        "history: {saved}"
    );
    assert!(saved.contains("\\d runs"), "history: {saved}");
}

#[test]
fn history_is_shared_across_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    session(
        json!([{"expect": "runql> "}, {"send": "SELECT 'first session' AS s;\r"}, {"expect": "1 row"}, {"send": "\\q\r"}]),
        &history,
    );
    // Up-arrow (twice: past `\\q`) in a new session brings back the first session's statement.
    session(
        json!([
            {"expect": "runql> "},
            {"send": "\u{1b}[A\u{1b}[A\r"},
            {"expect": "| first session |"},
            {"expect": "runql> "},
            {"send": "\u{4}"}
        ]),
        &history,
    );
}

#[test]
fn results_to_a_file_and_statements_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let script = dir.path().join("script.sql");
    std::fs::write(&script, "SELECT 'from the script' AS s;\n").unwrap();
    session(
        json!([
            {"expect": "runql> "},
            {"send": "\\format csv\r"},
            {"expect": "format: csv"},
            {"expect": "runql> "},
            {"send": format!("\\o {}\r", out.display())},
            {"expect": "results to "},
            {"expect": "runql> "},
            {"send": "SELECT count(*) AS n FROM runs;\r"},
            {"expect": "1 row"},
            {"expect": "runql> "},
            {"send": "\\o\r"},
            {"expect": "results to the terminal again"},
            {"expect": "runql> "},
            {"send": format!("\\i {}\r", script.display())},
            {"expect": "from the script"},
            {"expect": "runql> "},
            {"send": "\\q\r"}
        ]),
        &dir.path().join("history"),
    );
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written, format!("n\n{}\n", golden_rows("runs").len()));
}
