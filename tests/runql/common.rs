//! Small helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

pub const ZENML_VERSION: &str = "0.98.0";

/// runql's tables, in the order `\d` lists them.
pub const TABLES: [&str; 6] = [
    "pipelines",
    "runs",
    "steps",
    "outputs",
    "inputs",
    "metadata",
];

/// `runql --store STORE export --to DIR`.
pub fn export_store(store: &Path, dir: &Path) -> Output {
    runql()
        .arg("--store")
        .arg(store)
        .arg("export")
        .arg("--to")
        .arg(dir)
        .output()
        .expect("runql runs")
}

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/zenml-{ZENML_VERSION}"))
}

pub fn fixture_store() -> PathBuf {
    fixture_dir().join("zenml.db")
}

/// The golden answers ZenML's Client gave for the fixture store.
pub fn golden() -> Value {
    golden_of(&fixture_dir())
}

pub fn golden_of(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("golden.json")).expect("golden.json");
    serde_json::from_str(&text).expect("golden.json is JSON")
}

/// Every fixture store, one per ZenML release (`tests/fixtures/zenml-<version>/`).
pub fn all_fixture_dirs() -> Vec<PathBuf> {
    fixture_dirs_holding("zenml.db")
}

/// The fixture dirs with golden answers and a store in `file` (`zenml.db`, or `zenml.sql`
/// for the MariaDB dumps), sorted by name.
pub fn fixture_dirs_holding(file: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("tests/fixtures")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("golden.json").is_file() && p.join(file).is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Every fixture store as (its fixture dir, what `--store` takes): the SQLite files, then the
/// MariaDB stores in the tests' MariaDB server.
pub fn all_fixture_stores() -> Vec<(PathBuf, String)> {
    let mut stores: Vec<(PathBuf, String)> = all_fixture_dirs()
        .into_iter()
        .map(|d| {
            let store = d.join("zenml.db").display().to_string();
            (d, store)
        })
        .collect();
    let server = crate::mariadb::mariadb();
    assert!(
        server.stores.len() >= 3,
        "MariaDB fixtures of three ZenML releases: {:?}",
        server.stores
    );
    for (dir, database) in &server.stores {
        stores.push((dir.clone(), server.url(database)));
    }
    stores
}

pub fn golden_rows(table: &str) -> Vec<Value> {
    golden()["tables"][table]
        .as_array()
        .expect("golden table")
        .clone()
}

/// `runql` with no store chosen by the environment: tests choose explicitly.
pub fn runql() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runql"));
    cmd.env_remove("RUNQL_STORE")
        .env("ZENML_CONFIG_PATH", "/nonexistent/zenml-config")
        .env("HOME", std::env::temp_dir());
    cmd
}

/// `runql --store <fixture>`.
pub fn runql_fixture() -> Command {
    let mut cmd = runql();
    cmd.arg("--store").arg(fixture_store());
    cmd
}

/// Rows of `sql` on the fixture, as JSON objects.
pub fn query_json(sql: &str) -> Vec<Value> {
    query_json_on(&fixture_store(), sql)
}

pub fn query_json_on(store: &Path, sql: &str) -> Vec<Value> {
    query_json_on_with(store, sql, &[])
}

/// Rows of `sql` on `store`, with more of runql's flags.
pub fn query_json_on_with(store: &Path, sql: &str, flags: &[&str]) -> Vec<Value> {
    let output = runql()
        .arg("--store")
        .arg(store)
        .args(flags)
        .args(["--format", "json", "-c", sql])
        .output()
        .expect("runql runs");
    assert!(
        output.status.success(),
        "runql failed on {sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    value.as_array().expect("a JSON array").clone()
}

/// JSON values equal as ZenML means them: numbers by value (1 == 1.0), JSON text parsed.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

/// Parses a JSON-text cell.
pub fn json_text(value: &Value) -> Value {
    match value {
        Value::String(s) => {
            serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON text ({e}): {s}"))
        }
        Value::Null => Value::Null,
        other => panic!("expected JSON text, got {other}"),
    }
}

/// A copy of the fixture store in a fresh temp dir.
pub fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("zenml.db");
    std::fs::copy(fixture_store(), &path).expect("copy fixture");
    (dir, path)
}

/// Runs `cmd` with `input` on its stdin.
pub fn output_with_stdin(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runql starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `cmd`, asserts it succeeded, returns its stdout.
pub fn stdout_ok(cmd: &mut Command) -> String {
    let output = cmd.output().expect("runql runs");
    assert!(
        output.status.success(),
        "runql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// A Python that can import `module`: `$RUNQL_PYTHON` (set by .ci/run), python3, or the venv
/// .ci/run makes under ~/.cache/runql, into which `package` is installed if need be, so
/// `cargo test` alone works on a fresh machine that reaches PyPI.
pub fn python_with(module: &str, package: &str) -> String {
    let imports = |python: &str| {
        Command::new(python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let home = std::env::var("HOME").expect("HOME");
    let venv = Path::new(&home).join(".cache/runql/venvs/ci");
    let venv_python = venv.join("bin/python").display().to_string();
    let candidates = [
        std::env::var("RUNQL_PYTHON").ok(),
        Some("python3".to_string()),
        Some(venv_python.clone()),
    ];
    if let Some(python) = candidates.into_iter().flatten().find(|p| imports(p)) {
        return python;
    }
    if !Path::new(&venv_python).exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(made.success(), "cannot make a venv at {}", venv.display());
    }
    let installed = Command::new(&venv_python)
        .args(["-m", "pip", "install", "--quiet", package])
        .status()
        .unwrap();
    assert!(installed.success(), "cannot pip install {package}");
    venv_python
}

/// The rows of a successful `--format json` run; `what` names it if it failed.
pub fn json_rows(output: &Output, what: &str) -> Vec<Value> {
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Value>(&output.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// A TCP port on loopback that nothing listens on (for the servers the tests start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Rewrites an export folder's manifest as a runql that did not record each part's columns
/// wrote it: a reader then infers every table's schema from the files' footers.
pub fn forget_recorded_columns(folder: &Path) {
    let path = folder.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut forgot = 0;
    let mut forget = |tables: &mut Value| {
        for table in tables.as_array_mut().unwrap() {
            if table.as_object_mut().unwrap().remove("columns").is_some() {
                forgot += 1;
            }
        }
    };
    forget(&mut manifest["tables"]);
    if let Some(changes) = manifest.get_mut("changes").and_then(Value::as_array_mut) {
        for change in changes {
            forget(&mut change["tables"]);
        }
    }
    assert!(forgot >= 6, "the manifest recorded no columns: {manifest}");
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
}
