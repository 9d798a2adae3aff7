//! `runql serve` against real PostgreSQL clients: psql (Debian's postgresql-client),
//! psycopg 3, SQLAlchemy with pandas, node-postgres and pgjdbc (Metabase's and DBeaver's
//! driver), each answering as `runql -c` does on the same store; the introspection queries
//! Grafana, Metabase and DBeaver send, replayed; and the server's security, limits and
//! robustness (refused writes, SCRAM, TLS, timeouts, cancel, memory, connection limits,
//! garbage and silent peers, shutdown).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

/// A `runql serve` the test started, on a free loopback port.
struct Served {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
}

impl Served {
    /// `runql <before> serve --listen 127.0.0.1:<port> <after>` on the demo store unless
    /// `before` names another.
    fn start(before: &[&str], after: &[&str]) -> Served {
        Self::start_with(before, after, &[])
    }

    fn start_with(before: &[&str], after: &[&str], env: &[(&str, &str)]) -> Served {
        // A test that names where to listen names its port too.
        let listen = after
            .iter()
            .position(|a| *a == "--listen")
            .map(|i| after[i + 1]);
        let port = listen
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(free_port);
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = runql();
        if !before.contains(&"--store") {
            cmd.arg("--demo");
        }
        cmd.args(before).arg("serve").args(after);
        if listen.is_none() {
            cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
        }
        cmd.env("RUNQL_CACHE_DIR", dir.path().join("cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("runql serve starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let listening = line.contains("listening on");
                    log.lock().unwrap().push_str(&format!("{line}\n"));
                    if listening {
                        let _ = tx.send(());
                    }
                }
            });
        }
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            panic!("runql serve did not start: {}", log.lock().unwrap());
        }
        Served {
            child,
            port,
            log,
            dir,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// A libpq connection string.
    fn dsn(&self, user: &str, password: Option<&str>) -> String {
        let mut dsn = format!(
            "host=127.0.0.1 port={} user={user} dbname=runql sslmode=disable connect_timeout=10",
            self.port
        );
        if let Some(p) = password {
            dsn.push_str(&format!(" password={p}"));
        }
        dsn
    }

    /// psql with `args` (`-c` commands), unaligned, tuples only.
    fn psql(&self, dsn: &str, commands: &[&str]) -> Output {
        let mut cmd = Command::new(psql());
        cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn]);
        for c in commands {
            cmd.args(["-c", c]);
        }
        cmd.env_remove("PGPASSWORD").output().expect("psql runs")
    }

    fn psql_ok(&self, commands: &[&str]) -> String {
        let out = self.psql(&self.dsn("runql", None), commands);
        assert!(
            out.status.success(),
            "psql {commands:?}: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Sends SIGTERM and waits for the process to end; its exit and log.
    fn stop(mut self) -> (std::process::ExitStatus, String, Duration) {
        let started = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "serve ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // The log thread drains what is left.
        std::thread::sleep(Duration::from_millis(100));
        (status, self.log(), started.elapsed())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Open file descriptors of the server process.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn psql() -> &'static str {
    let found = Command::new("psql")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "psql is missing: .ci/run installs Debian's postgresql-client"
    );
    "psql"
}

/// The rows of `sql` as `runql --demo -c` gives them, values made comparable.
fn runql_rows(sql: &str) -> Vec<Value> {
    let out = runql()
        .args(["--demo", "--format", "json", "-c", sql])
        .output()
        .unwrap();
    json_rows(&out, sql).iter().map(comparable).collect()
}

/// A value as the client scripts print it: timestamps as microseconds since the epoch
/// (`ts:<n>`), numbers as floats.
fn comparable(v: &Value) -> Value {
    match v {
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) if s.contains('T') => Value::String(format!("ts:{}", t.timestamp_micros())),
            _ => v.clone(),
        },
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.iter().map(comparable).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), comparable(v))).collect())
        }
        other => other.clone(),
    }
}

/// Timestamps cut to milliseconds, as a JavaScript Date keeps them.
fn to_millis(v: &Value) -> Value {
    match v {
        Value::String(s) if s.starts_with("ts:") => {
            let micros: i64 = s[3..].parse().unwrap();
            Value::String(format!("tsms:{}", micros.div_euclid(1000)))
        }
        Value::Array(items) => Value::Array(items.iter().map(to_millis).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), to_millis(v))).collect())
        }
        other => other.clone(),
    }
}

/// Queries every client runs, with their parameters (psycopg's `%s` style), and the SQL
/// `runql -c` answers them with.
fn shared_queries() -> Vec<(Value, String)> {
    let q = |name: &str, sql: &str, params: Value, literal: &str| {
        (
            json!({"name": name, "sql": sql, "params": params}),
            literal.to_string(),
        )
    };
    vec![
        q(
            "runs",
            "SELECT run_id, run_name, pipeline_name, status, start_time, duration_s, run_index, run_rindex, is_cached, tags FROM runs ORDER BY start_time, run_id",
            Value::Null,
            "SELECT run_id, run_name, pipeline_name, status, start_time, duration_s, run_index, run_rindex, is_cached, tags FROM runs ORDER BY start_time, run_id",
        ),
        q(
            "steps of a pipeline",
            "SELECT step_name, status, duration_s, start_time FROM steps WHERE pipeline_name = %s ORDER BY start_time, step_id",
            json!(["first_pipeline"]),
            "SELECT step_name, status, duration_s, start_time FROM steps WHERE pipeline_name = 'first_pipeline' ORDER BY start_time, step_id",
        ),
        q(
            "runs since",
            "SELECT run_name FROM runs WHERE start_time >= %s AND run_index >= %s ORDER BY run_name",
            json!(["2000-01-01T00:00:00Z", 1]),
            "SELECT run_name FROM runs WHERE start_time >= '2000-01-01T00:00:00Z' AND run_index >= 1 ORDER BY run_name",
        ),
        q(
            "report failure_rate",
            "SELECT * FROM failure_rate(%s, %s)",
            json!(["2000-01-01", "2100-01-01"]),
            "SELECT * FROM failure_rate('2000-01-01', '2100-01-01')",
        ),
        q(
            "report run_steps",
            "SELECT * FROM run_steps(%s)",
            json!(["first_pipeline"]),
            "SELECT * FROM run_steps('first_pipeline')",
        ),
        q(
            "report slowest_steps",
            "SELECT * FROM slowest_steps(%s)",
            json!(["first_pipeline"]),
            "",
        ),
        q(
            "report cache_hit_rate",
            "SELECT * FROM cache_hit_rate()",
            Value::Null,
            "",
        ),
        q(
            "pipelines",
            "SELECT pipeline_name, run_count, created FROM pipelines ORDER BY pipeline_name",
            Value::Null,
            "SELECT pipeline_name, run_count, created FROM pipelines ORDER BY pipeline_name",
        ),
        q(
            "aggregate",
            "SELECT pipeline_name, count(*) AS runs, avg(duration_s) AS avg_s FROM runs GROUP BY pipeline_name ORDER BY pipeline_name",
            Value::Null,
            "SELECT pipeline_name, count(*) AS runs, avg(duration_s) AS avg_s FROM runs GROUP BY pipeline_name ORDER BY pipeline_name",
        ),
    ]
}

/// The report functions register in the CLI's sessions too? No: `runql -c` runs them
/// through `runql query`. The expected answers of the `report ...` queries come from that.
fn expected(name: &str, literal: &str) -> Vec<Value> {
    match name {
        "report failure_rate" => report_rows(
            "failure_rate",
            &["since=2000-01-01T00:00:00Z", "until=2100-01-01T00:00:00Z"],
        ),
        "report run_steps" => report_rows("run_steps", &["pipeline=first_pipeline"]),
        "report slowest_steps" => report_rows("slowest_steps", &["pipeline=first_pipeline"]),
        "report cache_hit_rate" => report_rows("cache_hit_rate", &[]),
        _ => runql_rows(literal),
    }
}

fn report_rows(report: &str, params: &[&str]) -> Vec<Value> {
    let mut cmd = runql();
    cmd.args(["--demo", "--format", "json", "query", report]);
    for p in params {
        cmd.args(["--param", p]);
    }
    json_rows(&cmd.output().unwrap(), report)
        .iter()
        .map(comparable)
        .collect()
}

/// The Python with psycopg 3, SQLAlchemy and pandas: the venv .ci/run makes, into which they
/// are installed if need be (so `cargo test` alone works where PyPI is reachable).
fn client_python() -> String {
    let python = python_with("psycopg", "psycopg[binary]");
    let has = |m: &str| {
        Command::new(&python)
            .args(["-c", &format!("import {m}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    for (module, package) in [("sqlalchemy", "sqlalchemy"), ("pandas", "pandas")] {
        if !has(module) {
            let ok = Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", package])
                .status()
                .unwrap();
            assert!(ok.success(), "cannot pip install {package}");
        }
    }
    python
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/serve")
        .join(name)
}

fn run_json(cmd: &mut Command, what: &str) -> Value {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn write_queries(served: &Served, queries: &[(Value, String)]) -> PathBuf {
    let path = served.dir.path().join("queries.json");
    let list: Vec<&Value> = queries.iter().map(|(q, _)| q).collect();
    std::fs::write(&path, serde_json::to_vec(&list).unwrap()).unwrap();
    path
}

#[test]
fn psql_lists_describes_and_queries() {
    let served = Served::start(&[], &[]);
    let tables = served.psql_ok(&["\\dt"]);
    for table in TABLES {
        assert!(
            tables.contains(&format!("zenml|{table}|table|runql")),
            "\\dt lacks {table}:\n{tables}"
        );
    }
    let runs = served.psql_ok(&["\\d runs"]);
    for column in [
        "run_id|text",
        "start_time|timestamp with time zone",
        "duration_s|double precision",
        "run_index|bigint",
        "is_cached|boolean",
        "tags|text[]",
    ] {
        assert!(runs.contains(column), "\\d runs lacks {column}:\n{runs}");
    }
    let described = served.psql_ok(&["\\dt+ runs"]);
    assert!(
        described.contains("One row per pipeline run"),
        "\\dt+ shows the contract's summary:\n{described}"
    );
    let functions = served.psql_ok(&["\\df"]);
    for f in ["failure_rate", "run_steps", "output_value", "read_output"] {
        assert!(functions.contains(f), "\\df lacks {f}:\n{functions}");
    }
    let databases = served.psql_ok(&["\\l"]);
    assert!(databases.contains("runql"), "\\l: {databases}");
    let count = served.psql_ok(&["SELECT count(*) FROM runs"]);
    let expected = runql_rows("SELECT count(*) AS n FROM runs")[0]["n"]
        .as_f64()
        .unwrap();
    assert_eq!(count.trim().parse::<f64>().unwrap(), expected);
    // Several statements in one query string run in order; a SET is seen by the next.
    let several =
        served.psql_ok(&["SET application_name = 'dash'; SHOW application_name; SELECT 2"]);
    assert_eq!(
        several.lines().collect::<Vec<_>>(),
        ["SET", "dash", "2"],
        "{several}"
    );
    // psql's \copy reads through COPY ... TO STDOUT; plain queries with -F are the way here.
    let log = served.log();
    assert!(log.contains("query pid="), "a line per query: {log}");
    assert!(
        log.contains("connection pid="),
        "a line per connection: {log}"
    );
}

#[test]
fn python_clients_answer_as_runql_does() {
    // Logged in with SCRAM, as a dashboard's service user would be.
    let served = Served::start_with(
        &[],
        &[],
        &[
            ("RUNQL_SERVE_USER", "dash"),
            ("RUNQL_SERVE_PASSWORD", "d@sh pw"),
        ],
    );
    let queries = shared_queries();
    let file = write_queries(&served, &queries);
    let python = client_python();
    let got = run_json(
        Command::new(&python)
            .arg(script("clients.py"))
            .arg("psycopg")
            .arg(served.dsn("dash", Some("'d@sh pw'")))
            .arg(&file),
        "psycopg",
    );
    for (q, literal) in &queries {
        let name = q["name"].as_str().unwrap();
        let want = expected(name, literal);
        assert!(!want.is_empty(), "{name}: no rows to compare");
        let mut variants = vec![name.to_string(), format!("{name} (binary)")];
        if !q["params"].is_null() {
            variants.push(format!("{name} (prepared)"));
        }
        for key in variants {
            let rows: Vec<Value> = got[&key]
                .as_array()
                .unwrap_or_else(|| panic!("{key}: {got}"))
                .clone();
            assert_eq!(rows.len(), want.len(), "{key}");
            for (a, b) in rows.iter().zip(&want) {
                assert!(
                    same_value(&comparable(a), b),
                    "{key}: psycopg {a} vs runql {b}"
                );
            }
        }
    }
    assert_eq!(got["server_version"], 150000);
    assert_eq!(got["parameter TimeZone"], "Etc/UTC");

    let url = format!(
        "postgresql+psycopg://dash:d%40sh%20pw@127.0.0.1:{}/runql",
        served.port
    );
    let got = run_json(
        Command::new(&python)
            .arg(script("clients.py"))
            .arg("sqlalchemy")
            .arg(&url)
            .arg(&file),
        "sqlalchemy",
    );
    let tables: Vec<&str> = got["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let mut want_tables: Vec<&str> = TABLES.to_vec();
    want_tables.sort();
    assert_eq!(tables, want_tables, "SQLAlchemy's table names");
    assert!(got["schemas"].as_array().unwrap().contains(&json!("zenml")));
    assert_eq!(got["has_table runs"], true);
    assert_eq!(got["has_table nope"], false);
    let columns = got["columns of runs"].as_array().unwrap();
    let find = |n: &str| columns.iter().find(|c| c["name"] == n).unwrap()["type"].clone();
    assert_eq!(find("start_time"), "TIMESTAMP");
    assert_eq!(find("duration_s"), "DOUBLE PRECISION");
    assert_eq!(find("tags"), "ARRAY");
    for (q, literal) in &queries {
        let name = q["name"].as_str().unwrap();
        let want = expected(name, literal);
        let rows = got[name].as_array().unwrap();
        assert_eq!(rows.len(), want.len(), "pandas {name}");
        for (a, b) in rows.iter().zip(&want) {
            assert!(
                same_value(&comparable(a), b),
                "pandas {name}: {a} vs runql {b}"
            );
        }
    }
    let pipelines = runql_rows("SELECT count(*) AS n FROM pipelines")[0]["n"]
        .as_f64()
        .unwrap();
    assert_eq!(got["read_sql_table pipelines"].as_f64().unwrap(), pipelines);
}

/// node-postgres, installed from npm into runql's cache when missing.
fn node_pg() -> PathBuf {
    let home = std::env::var("HOME").expect("HOME");
    let dir = Path::new(&home).join(".cache/runql/node");
    if !dir.join("node_modules/pg").exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg("pg@8")
            .status()
            .expect("npm runs (.ci/run has node and npm)");
        assert!(ok.success(), "npm install pg");
    }
    dir.join("node_modules")
}

#[test]
fn node_postgres_answers_as_runql_does() {
    let served = Served::start_with(&[], &[], &[("RUNQL_SERVE_PASSWORD", "node pw")]);
    let queries = shared_queries();
    let file = write_queries(&served, &queries);
    let got = run_json(
        Command::new("node")
            .arg(script("node_client.js"))
            .arg(&file)
            .env("NODE_PATH", node_pg())
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", served.port.to_string())
            .env("PGUSER", "runql")
            .env("PGPASSWORD", "node pw")
            .env("PGDATABASE", "runql"),
        "node",
    );
    // Introspection, as a node dashboard backend lists what it can chart.
    let tables: Vec<&str> = got["introspection"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["table_name"].as_str().unwrap())
        .collect();
    assert_eq!(tables, {
        let mut t = TABLES.to_vec();
        t.sort();
        t
    });
    for (q, literal) in &queries {
        let name = q["name"].as_str().unwrap();
        let want = expected(name, literal);
        let rows = got[name]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {got}"));
        assert_eq!(rows.len(), want.len(), "node {name}");
        for (a, b) in rows.iter().zip(&want) {
            // pg reads bigint as text (JavaScript numbers stop at 2^53) and numeric kinds
            // as JavaScript numbers.
            let a = comparable(&numbers_from_text(a));
            assert!(
                same_value(&a, &to_millis(b)),
                "node {name}: {a} vs runql {b}"
            );
        }
    }
    let prepared = got["prepared"].as_array().unwrap();
    assert_eq!(prepared[0], prepared[1]);
}

/// node-postgres gives int8 as strings: numbers again, for comparing.
fn numbers_from_text(v: &Value) -> Value {
    match v {
        Value::String(s) if s.parse::<i64>().is_ok() => json!(s.parse::<i64>().unwrap()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), numbers_from_text(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// pgjdbc from Debian's libpostgresql-jdbc-java.
fn pgjdbc() -> PathBuf {
    let jar = PathBuf::from("/usr/share/java/postgresql.jar");
    assert!(
        jar.exists(),
        "{} is missing: .ci/run installs Debian's libpostgresql-jdbc-java",
        jar.display()
    );
    jar
}

#[test]
fn pgjdbc_metadata_lists_tables_columns_and_functions() {
    let jar = pgjdbc();
    let served = Served::start_with(&[], &[], &[("RUNQL_SERVE_PASSWORD", "s3cret pass")]);
    let classes = served.dir.path().join("classes");
    let javac = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg("-cp")
        .arg(&jar)
        .arg(script("Jdbc.java"))
        .output()
        .expect("javac runs (.ci/run installs a JDK)");
    assert!(
        javac.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&javac.stderr)
    );
    let out = Command::new("java")
        .arg("-cp")
        .arg(format!("{}:{}", classes.display(), jar.display()))
        .arg("Jdbc")
        .arg(format!("jdbc:postgresql://127.0.0.1:{}/runql", served.port))
        .args(["runql", "s3cret pass"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "pgjdbc: {}\n{text}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        served.log()
    );
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let with = |what: &str| -> Vec<&Vec<&str>> { lines.iter().filter(|l| l[0] == what).collect() };
    assert_eq!(with("product")[0][1], "PostgreSQL");
    assert!(with("schema").iter().any(|l| l[1] == "zenml"));
    for table in TABLES {
        let row = with("table")
            .into_iter()
            .find(|l| l[1] == "zenml" && l[2] == table)
            .unwrap_or_else(|| panic!("getTables lacks {table}:\n{text}"));
        assert_eq!(row[3], "TABLE");
        assert_ne!(
            row[4], "null",
            "{table} has its contract's summary as REMARKS"
        );
    }
    let columns = with("column");
    assert_eq!(
        columns.len(),
        runql::tables::table_def("runs").unwrap().columns.len()
    );
    let col = |n: &str| columns.iter().find(|l| l[1] == n).unwrap();
    assert_eq!(col("start_time")[2], "timestamptz");
    assert_eq!(col("start_time")[3], "93"); // java.sql.Types.TIMESTAMP
    assert_eq!(col("tags")[2], "_text");
    assert_eq!(col("run_id")[4], "1");
    assert_eq!(col("run_id")[5], "the run's id");
    assert_eq!(with("primarykeys")[0][1], "0");
    assert!(with("function").iter().any(|l| l[1] == "failure_rate"));
    let privileges = with("privilege");
    assert!(
        !privileges.is_empty() && privileges.iter().all(|l| l[1] == "SELECT"),
        "{privileges:?}"
    );
    let resulttypes = with("resulttypes");
    assert_eq!(resulttypes[0][1], "text,text,timestamptz,float8,_text,bool");
    let rows = with("row");
    let want = runql_rows(
        "SELECT run_name FROM runs WHERE pipeline_name = 'first_pipeline' ORDER BY start_time",
    );
    assert_eq!(rows.len(), 2 * want.len(), "a PreparedStatement run twice");
    for (row, w) in rows.iter().zip(&want) {
        assert_eq!(row[1], w["run_name"].as_str().unwrap());
    }
    assert!(!with("report").is_empty());
    let write = &with("write")[0];
    assert_eq!(
        write[1], "25006",
        "a write is refused as read-only: {write:?}"
    );
}

#[test]
fn grafana_metabase_and_dbeaver_introspection_is_answered() {
    let served = Served::start(&[], &[]);
    let python = client_python();
    let replay = |file: &str| {
        run_json(
            Command::new(&python)
                .arg(script("clients.py"))
                .arg("replay")
                .arg(served.dsn("runql", None))
                .arg(script(&format!("replay/{file}"))),
            file,
        )
    };
    let mut failures = Vec::new();
    let mut results = serde_json::Map::new();
    for file in ["grafana.sql", "metabase.sql", "dbeaver.sql"] {
        let got = replay(file);
        for (key, value) in got.as_object().unwrap() {
            if value.get("error").is_some() {
                failures.push(format!("{key}: {}\n  {}", value["error"], value["sql"]));
            }
            results.insert(key.clone(), value.clone());
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Grafana's table picker lists runql's tables, unqualified (zenml is on the search path).
    let picker: Vec<&str> = results["grafana.sql #4"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["table"].as_str().unwrap())
        .collect();
    for table in TABLES {
        assert!(
            picker.contains(&table),
            "Grafana's picker lacks {table}: {picker:?}"
        );
    }
    // Its column picker names runql's columns with PostgreSQL's type names.
    let columns = results["grafana.sql #6"].as_array().unwrap();
    assert!(
        columns
            .iter()
            .any(|c| c["column"] == "start_time" && c["type"] == "timestamp with time zone"),
        "{columns:?}"
    );
    // The dashboard panel's runs per hour add up to the runs.
    let runs: f64 = results["grafana.sql #7"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["runs"].as_f64().unwrap())
        .sum();
    assert_eq!(
        runs,
        runql_rows("SELECT count(*) AS n FROM runs")[0]["n"]
            .as_f64()
            .unwrap()
    );
    // Metabase's sync finds the tables and their columns.
    let tables: Vec<&str> = results["metabase.sql #3"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(tables.len(), TABLES.len(), "{tables:?}");
    let fields = results["metabase.sql #5"].as_array().unwrap();
    let total: usize = runql::tables::TABLES.iter().map(|t| t.columns.len()).sum();
    assert_eq!(fields.len(), total, "Metabase's describe-fields");
    // DBeaver's navigator: the schema's tables, the runs table's columns.
    let dbeaver_tables = results["dbeaver.sql #8"].as_array().unwrap();
    assert_eq!(dbeaver_tables.len(), TABLES.len());
    let dbeaver_columns = results["dbeaver.sql #10"].as_array().unwrap();
    assert_eq!(
        dbeaver_columns.len(),
        runql::tables::table_def("runs").unwrap().columns.len()
    );
}

#[test]
fn nothing_can_be_written_or_read_outside_the_tables() {
    let served = Served::start(&[], &[]);
    let dsn = served.dsn("runql", None);
    for sql in [
        "CREATE TABLE x (a int)",
        "DROP TABLE runs",
        "INSERT INTO runs (run_id) VALUES ('x')",
        "DELETE FROM runs",
        "CREATE VIEW v AS SELECT 1",
        "COPY runs TO '/tmp/runql-copy-test.csv'",
        "SET datafusion.execution.batch_size = 1",
        "SET datafusion.catalog.information_schema = true",
    ] {
        let out = served.psql(&dsn, &[sql]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sql} was allowed");
        assert!(err.contains("read-only"), "{sql}: {err}");
    }
    assert!(!Path::new("/tmp/runql-copy-test.csv").exists());
    // No file reads by path, as the command line allows its own user.
    let out = served.psql(&dsn, &["SELECT * FROM '/etc/passwd'"]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("root:"));
    // The server is still serving.
    assert_eq!(served.psql_ok(&["SELECT 1"]).trim(), "1");
}

#[test]
fn trust_is_for_loopback_only() {
    let out = runql()
        .args(["--demo", "serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without authentication") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn users_log_in_with_scram_and_wrong_passwords_fail() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "# dashboards\ngrafana:gr@f pass\nalice:wonder\n").unwrap();
    // A password file others can read is refused.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = runql()
        .args(["--demo", "serve", "--listen", "127.0.0.1:0", "--users"])
        .arg(&users)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("chmod 600") && !err.contains("wonder"),
        "{err}"
    );
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600)).unwrap();

    // With users, any address may be listened on.
    let all = format!("0.0.0.0:{}", free_port());
    let served = Served::start(&[], &["--users", users.to_str().unwrap(), "--listen", &all]);
    let ok = served.psql(
        &served.dsn("alice", Some("wonder")),
        &["SELECT current_user"],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "alice");
    let quoted =
        "host=127.0.0.1 port=PORT user=grafana password='gr@f pass' dbname=runql sslmode=disable"
            .replace("PORT", &served.port.to_string());
    let ok = served.psql(&quoted, &["SELECT 1"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let wrong = served.psql(&served.dsn("alice", Some("nope")), &["SELECT 1"]);
    let unknown = served.psql(&served.dsn("mallory", Some("wonder")), &["SELECT 1"]);
    for out in [&wrong, &unknown] {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("password authentication failed"), "{err}");
    }
    let log = served.log();
    for secret in ["wonder", "gr@f pass", "nope"] {
        assert!(!log.contains(secret), "the log shows a password: {log}");
    }
    assert!(log.contains("refused"), "failed logins are logged: {log}");
}

/// A self-signed certificate for 127.0.0.1, made with the openssl command.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

#[test]
fn tls_is_offered_and_then_required() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let served = Served::start_with(
        &[],
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[("RUNQL_SERVE_PASSWORD", "pw")],
    );
    let verify = format!(
        "host=127.0.0.1 port={} user=runql password=pw dbname=runql sslmode=verify-full sslrootcert={}",
        served.port,
        cert.display()
    );
    let out = served.psql(
        &verify,
        &[
            "SELECT ssl FROM (SELECT true AS ssl)",
            "SELECT count(*) FROM pipelines",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plain = served.psql(&served.dsn("runql", Some("pw")), &["SELECT 1"]);
    assert!(!plain.status.success());
    assert!(String::from_utf8_lossy(&plain.stderr).contains("requires TLS"));
    assert!(served.log().contains("tls=on"));
}

#[test]
fn timeouts_cancels_and_memory_limits_end_the_query_not_the_server() {
    let served = Served::start(
        &[],
        &["--statement-timeout", "2s", "--memory-limit-mib", "32"],
    );
    let python = client_python();
    // Long enough to need the limits: a count over ten billion generated rows.
    let long = "SELECT count(*) FROM generate_series(1, 10000000000)";
    let started = Instant::now();
    let out = served.psql(&served.dsn("runql", None), &[long]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("statement timeout"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // A client's own shorter timeout.
    let out = served.psql(
        &served.dsn("runql", None),
        &["SET statement_timeout = '300ms'", long],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("statement timeout (300 ms)"));
    // A cancel request from psycopg, a second in.
    let cancel = format!(
        "import psycopg, threading\n\
         conn = psycopg.connect({dsn:?}, autocommit=True)\n\
         threading.Timer(0.5, conn.cancel).start()\n\
         try:\n    conn.execute({long:?})\n    print('finished')\n\
         except psycopg.errors.QueryCanceled as e:\n    print('cancelled', e.sqlstate)\n\
         print(conn.execute('SELECT 41 + 1').fetchone()[0])\n",
        dsn = served.dsn("runql", None)
    );
    let out = Command::new(&python)
        .args(["-c", &cancel])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["cancelled 57014", "42"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A sort that needs more than 32 MiB.
    let big = "SELECT v FROM (SELECT repeat('x', 100) || CAST(value AS VARCHAR) AS v FROM generate_series(1, 3000000)) ORDER BY v DESC LIMIT 3000000 OFFSET 2999999";
    let out = served.psql(&served.dsn("runql", None), &[big]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.to_lowercase().contains("resources exhausted") || err.contains("memory"),
        "{err}"
    );
    assert_eq!(served.psql_ok(&["SELECT 1"]).trim(), "1");
}

#[test]
fn the_connection_limit_refuses_the_next_client_clearly() {
    let served = Served::start(&[], &["--max-connections", "2"]);
    let python = client_python();
    let holder = format!(
        "import psycopg, sys, time\n\
         a = psycopg.connect({dsn:?}); b = psycopg.connect({dsn:?})\n\
         print('held', flush=True)\n\
         sys.stdin.readline()\n",
        dsn = served.dsn("runql", None)
    );
    let mut held = Command::new(&python)
        .args(["-c", &holder])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(held.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "held");
    let third = served.psql(&served.dsn("runql", None), &["SELECT 1"]);
    assert!(!third.status.success());
    assert!(String::from_utf8_lossy(&third.stderr).contains("too many clients"));
    drop(held.stdin.take());
    held.wait().unwrap();
    // Places free again once those two close.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if served
            .psql(&served.dsn("runql", None), &["SELECT 1"])
            .status
            .success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the places did not come back");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn garbage_silence_and_hang_ups_disturb_no_one() {
    let served = Served::start(&[], &[]);
    let address = format!("127.0.0.1:{}", served.port);
    let before = served.fds();
    // Bytes that are no PostgreSQL message.
    let mut garbage = TcpStream::connect(&address).unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\x13\x37garbage")
        .unwrap();
    let _ = garbage.set_read_timeout(Some(Duration::from_secs(5)));
    let mut sink = Vec::new();
    let _ = garbage.read_to_end(&mut sink);
    // Connections that never say a word.
    let silent: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    // A client that goes away in the middle of a large result.
    let python = client_python();
    let hang_up = format!(
        "import psycopg\n\
         conn = psycopg.connect({dsn:?})\n\
         for i, row in enumerate(conn.cursor().stream('SELECT value FROM generate_series(1, 50000000)')):\n\
         \x20   if i == 10:\n\
         \x20       import os; os._exit(0)\n",
        dsn = served.dsn("runql", None)
    );
    let status = Command::new(&python)
        .args(["-c", &hang_up])
        .status()
        .unwrap();
    assert!(status.success());
    // Meanwhile everyone else is served.
    for _ in 0..5 {
        assert_eq!(
            served.psql_ok(&["SELECT count(*) > 0 FROM runs"]).trim(),
            "t"
        );
    }
    drop(silent);
    // What they held is given back (the silent ones close by the startup timeout at the
    // latest).
    let deadline = Instant::now() + Duration::from_secs(20);
    while served.fds() > before + 2 {
        assert!(
            Instant::now() < deadline,
            "file descriptors leak: {} then {}",
            before,
            served.fds()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(served.psql_ok(&["SELECT 1"]).trim(), "1");
}

#[test]
fn sigterm_stops_the_server_within_its_grace() {
    let served = Served::start(&[], &["--shutdown-grace", "2s"]);
    let python = client_python();
    // An idle client keeps its connection open: the grace bounds the wait for it.
    let idle = format!(
        "import psycopg, time\nconn = psycopg.connect({dsn:?})\nprint('in', flush=True)\ntime.sleep(30)\n",
        dsn = served.dsn("runql", None)
    );
    let mut client = Command::new(&python)
        .args(["-c", &idle])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(client.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let (status, log, took) = served.stop();
    let _ = client.kill();
    let _ = client.wait();
    assert!(status.success(), "{status:?}: {log}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert!(
        log.contains("stopping; 1 connection(s) open") && log.contains("stopped"),
        "{log}"
    );
}

/// A store read through its mirror: a run real ZenML makes while the server runs is in the
/// next query's answer, as a dashboard expects.
#[test]
fn a_mirror_is_brought_up_to_date_before_each_query() {
    let (dir, store) = fixture_copy();
    let store_arg = store.to_str().unwrap().to_string();
    let served = Served::start(&["--store", &store_arg, "--mirror"], &[]);
    let count = || {
        served
            .psql_ok(&["SELECT count(*) FROM runs"])
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let before = count();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/server_pipeline.py");
    let out = Command::new(crate::zenml_server::venv_python("0.98.0"))
        .arg(&script)
        .args(["1", "served"])
        .env("ZENML_STORE_URL", format!("sqlite:///{}", store.display()))
        .env("ZENML_CONFIG_PATH", dir.path().join("zenml-config"))
        .env("ZENML_ANALYTICS_OPT_IN", "false")
        .env("ZENML_LOGGING_VERBOSITY", "WARN")
        .env("ZENML_ENABLE_RICH_TRACEBACK", "false")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ZenML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        count(),
        before + 1,
        "the mirror missed ZenML's new run: {}",
        served.log()
    );
    let tagged = served.psql_ok(&["SELECT count(*) FROM runs WHERE array_has(tags, 'served')"]);
    assert_eq!(tagged.trim(), "1");
}
