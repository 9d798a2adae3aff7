//! MySQL/MariaDB stores: what differs from SQLite (collation, whole seconds, a password,
//! a server), against the real MariaDB of `mariadb.rs`. The golden tests (`golden.rs`) run on
//! these stores too, table by table, against each release's own Client answers.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::mariadb::{MariaDb, READER_PASSWORD, mariadb};

/// The newest release's MariaDB store: (server, database, URL with the password).
fn newest() -> (&'static MariaDb, String, String) {
    let server = mariadb();
    let (_, database) = server.stores.last().expect("a MariaDB fixture");
    (server, database.clone(), server.url(database))
}

fn json_on(url: &str, sql: &str) -> Vec<Value> {
    query_json_on(Path::new(url), sql)
}

/// One line on stderr, exit 1, nothing on stdout, and never the password.
fn assert_one_line_error(output: &std::process::Output, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(1), "exit 1: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} in {stderr}");
    assert!(
        !stderr.contains(READER_PASSWORD),
        "the password leaked: {stderr}"
    );
    assert!(output.stdout.is_empty(), "nothing on stdout");
    stderr
}

#[test]
fn text_compares_exactly_as_in_sqlite_despite_the_collation() {
    let (_, _, url) = newest();
    let count = |predicate: &str| {
        json_on(
            &url,
            &format!("SELECT count(*) AS n FROM runs WHERE {predicate}"),
        )[0]["n"]
            .as_i64()
            .unwrap()
    };
    let exact = count("pipeline_name = 'first_pipeline'");
    assert!(exact > 0);
    // MySQL's utf8mb4_general_ci says these are equal; SQL and runql on SQLite say not.
    assert_eq!(count("pipeline_name = 'FIRST_PIPELINE'"), 0);
    assert_eq!(count("pipeline_name = 'first_pipeline '"), 0);
    assert_eq!(count("pipeline_name IN ('First_Pipeline', 'x')"), 0);
    assert_eq!(count("pipeline_name LIKE 'FIRST%'"), 0);
    assert_eq!(
        count("pipeline_name LIKE 'first%'"),
        exact + count("pipeline_name LIKE 'first_%' AND pipeline_name <> 'first_pipeline'")
    );
    assert_eq!(count("pipeline_name <> 'FIRST_PIPELINE'"), count("true"));
    // Byte order, as DataFusion's: 'Z' < 'a'.
    assert_eq!(
        count("pipeline_name < 'Z'"),
        0,
        "every pipeline name is lowercase, so none sorts before 'Z' bytewise"
    );
    // The same answers with every filter left to DataFusion.
    for predicate in [
        "pipeline_name = 'FIRST_PIPELINE'",
        "run_name LIKE '%PIPELINE%'",
        "status IN ('FAILED', 'failed')",
    ] {
        let sql = format!("SELECT run_id FROM runs WHERE {predicate} ORDER BY run_id");
        let on = json_on(&url, &sql);
        let off = query_json_on_with(Path::new(&url), &sql, &["--no-pushdown"]);
        assert_eq!(on, off, "{predicate}");
    }
}

/// Differential finding (seed 11): an id `LIKE`/`ILIKE` with an emoji was pushed to MySQL,
/// which refuses to compare a latin1 column with a character latin1 lacks.
#[test]
fn an_id_pattern_latin1_lacks_matches_nothing_instead_of_failing() {
    let server = mariadb();
    for (_, database) in &server.stores {
        for predicate in ["run_id ILIKE '🙂%'", "run_id LIKE '%🙂'"] {
            let rows = json_on(
                &server.url(database),
                &format!("SELECT count(*) AS n FROM runs WHERE {predicate}"),
            );
            assert_eq!(rows[0]["n"], 0, "{database}: {predicate}");
        }
    }
}

#[test]
fn sorted_text_and_limits_agree_with_datafusion() {
    let (_, _, url) = newest();
    for sql in [
        "SELECT run_name FROM runs ORDER BY run_name DESC LIMIT 5",
        "SELECT step_name, run_id FROM steps ORDER BY step_name, step_id LIMIT 7",
        "SELECT * FROM runs ORDER BY start_time DESC, run_id LIMIT 3",
        "SELECT output_id, artifact_name FROM outputs ORDER BY artifact_name NULLS FIRST, output_id LIMIT 4",
    ] {
        let on = json_on(&url, sql);
        let off = query_json_on_with(Path::new(&url), sql, &["--no-pushdown"]);
        assert!(!on.is_empty(), "{sql}");
        assert_eq!(on, off, "{sql}");
    }
}

/// A LEFT JOIN along a NOT NULL foreign key that InnoDB enforces is sent as a JOIN (so
/// MariaDB may start from either side); the golden tests show the answers stay the same.
#[test]
fn joins_the_database_guarantees_are_sent_as_inner_joins() {
    let server = mariadb();
    for (fixture, database) in &server.stores {
        let version = fixture.display();
        let plan = json_on(
            &server.url(database),
            "EXPLAIN VERBOSE SELECT run_name, uri FROM outputs",
        );
        let sql = plan
            .iter()
            .filter_map(|row| row["plan"].as_str())
            .find_map(|p| p.split("ZenScanExec: table=outputs, sql=").nth(1))
            .unwrap_or_else(|| panic!("{version}: no outputs scan in {plan:?}"))
            .to_string();
        let inner = sql.matches(" JOIN ").count() - sql.matches(" LEFT JOIN ").count();
        assert!(
            sql.contains("FROM step_run_output_artifact o JOIN ") && inner >= 3,
            "{version}: versions, steps and runs joined inner: {sql}"
        );
    }
}

#[test]
fn durations_are_whole_seconds_on_mysql() {
    let (_, _, url) = newest();
    let rows = json_on(
        &url,
        "SELECT duration_s, start_time, end_time FROM steps WHERE duration_s IS NOT NULL",
    );
    assert!(!rows.is_empty());
    for row in rows {
        let d = row["duration_s"].as_f64().unwrap();
        assert_eq!(d.fract(), 0.0, "whole seconds: {row}");
        assert!(
            row["start_time"].as_str().unwrap().ends_with(".000000Z"),
            "{row}"
        );
    }
}

#[test]
fn the_password_is_never_shown() {
    let (server, database, url) = newest();
    let home = tempfile::tempdir().unwrap();
    let history = home.path().join("history");
    let output = output_with_stdin(
        runql()
            .env("HOME", home.path())
            .args(["--store", &url, "--history-file"])
            .arg(&history),
        "\\store\nEXPLAIN VERBOSE SELECT * FROM runs WHERE run_name = 'x' LIMIT 1;\n",
    );
    assert!(output.status.success(), "{output:?}");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains(&format!(
            "mysql://runql_reader@127.0.0.1:{}/{database}",
            server.port
        )),
        "{text}"
    );
    assert!(
        text.contains("CAST"),
        "EXPLAIN VERBOSE shows the MySQL SQL: {text}"
    );
    assert!(!text.contains(READER_PASSWORD), "{text}");
    let info = runql().args(["--store", &url, "--info"]).output().unwrap();
    let info_text = String::from_utf8_lossy(&info.stdout);
    assert!(info_text.contains("MariaDB"), "{info_text}");
    assert!(!info_text.contains(READER_PASSWORD));
    // The URL is an argument, never a line of history, and a script keeps no history.
    assert!(!history.exists(), "a script wrote {}", history.display());

    // A wrong password: the server's reason, not the password tried.
    let wrong = url.replace(READER_PASSWORD, "not-the-Pw-123");
    let output = runql()
        .args(["--store", &wrong, "-c", "SELECT 1"])
        .output()
        .unwrap();
    let line = assert_one_line_error(&output, "Access denied");
    assert!(!line.contains("not-the-Pw-123"), "{line}");
}

#[test]
fn passwords_from_a_file_from_mysql_pwd_and_from_zenml_config() {
    let (server, database, _) = newest();
    let bare = server.url_without_password(&database);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, format!("{READER_PASSWORD}\n")).unwrap();
    let n = |cmd: &mut std::process::Command| {
        let out = stdout_ok(cmd.args([
            "--format",
            "csv",
            "--no-header",
            "-c",
            "SELECT count(*) FROM runs",
        ]));
        out.trim().parse::<i64>().unwrap()
    };
    let expected = n(runql().args(["--store", &server.url(&database)]));
    assert!(expected > 0);
    assert_eq!(
        n(runql()
            .args(["--store", &bare, "--password-file"])
            .arg(&file)),
        expected
    );
    assert_eq!(
        n(runql()
            .args(["--store", &bare])
            .env("MYSQL_PWD", READER_PASSWORD)),
        expected
    );
    // ZenML's own config for a MySQL store, its login split over keys.
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "store:\n  type: sql\n  driver: mysql\n  url: mysql://127.0.0.1:{}\n  username: runql_reader\n  \
             password: {READER_PASSWORD}\n  database: {database}\n  ssl: false\n",
            server.port
        ),
    )
    .unwrap();
    assert_eq!(n(runql().env("ZENML_CONFIG_PATH", dir.path())), expected);
    // ZenML's environment variables, as a ZenML client would take them.
    assert_eq!(
        n(runql()
            .env(
                "ZENML_STORE_URL",
                format!("mysql://127.0.0.1:{}", server.port)
            )
            .env("ZENML_STORE_USERNAME", "runql_reader")
            .env("ZENML_STORE_PASSWORD", READER_PASSWORD)
            .env("ZENML_STORE_DATABASE", &database)),
        expected
    );
}

#[test]
fn bad_stores_each_give_one_clear_line() {
    let (server, _, _) = newest();
    // A database the reader may not see, one that does not exist, one that is not ZenML's.
    server.root_sql(None, "CREATE DATABASE IF NOT EXISTS not_zenml");
    server.root_sql(
        None,
        "GRANT SELECT ON not_zenml.* TO 'runql_reader'@'127.0.0.1'",
    );
    let run = |store: String| {
        runql()
            .args(["--store", &store, "-c", "SELECT 1"])
            .output()
            .unwrap()
    };
    assert_one_line_error(&run(server.url("no_such_db")), "no_such_db");
    assert_one_line_error(&run(server.url("not_zenml")), "is not a ZenML store");
    // Nothing listening there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("mysql://runql_reader:{READER_PASSWORD}@127.0.0.1:{port}/zenml");
    assert_one_line_error(&run(down), "cannot read MySQL store");
    // Not a URL runql reads, and the password in it is not repeated.
    let output = runql()
        .args([
            "--store",
            &format!("postgresql://u:{READER_PASSWORD}@h/db"),
            "-c",
            "SELECT 1",
        ])
        .output()
        .unwrap();
    assert_one_line_error(&output, "unsupported store URL scheme postgresql://");
}

/// A root session holding `LOCK TABLES <table> WRITE` (readers of the table wait on it)
/// until dropped.
struct TableLock(std::process::Child);

impl TableLock {
    fn hold(server: &MariaDb, database: &str, table: &str) -> Self {
        let child = std::process::Command::new("mariadb")
            .args(["--no-defaults", "-uroot"])
            .arg(format!("--socket={}", server.socket.display()))
            .arg(database)
            .args([
                "-e",
                &format!("LOCK TABLES {table} WRITE; SELECT SLEEP(60);"),
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Held once the session sleeps.
        wait_for(
            server,
            "SELECT count(*) FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(60)%'",
        );
        Self(child)
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `count_sql` (as root) counts more than zero.
fn wait_for(server: &MariaDb, count_sql: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = server.root_sql(None, count_sql);
        if n.trim() != "0" {
            return;
        }
        assert!(Instant::now() < deadline, "never: {count_sql}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A copy of the newest store in a database of its own, for a test that watches the
/// server's process list or locks a table (no other test's queries there).
fn private_copy(database: &str) -> &'static MariaDb {
    let server = mariadb();
    let (dir, _) = server.stores.last().unwrap();
    server.load(dir, database);
    server.root_sql(
        None,
        &format!("GRANT SELECT ON {database}.* TO 'runql_reader'@'127.0.0.1'"),
    );
    server
}

#[test]
fn a_connection_lost_mid_query_is_one_line() {
    let database = "locked_for_a_lost_connection";
    let server = private_copy(database);
    let lock = TableLock::hold(server, database, "pipeline_run");
    let child = runql()
        .args([
            "--store",
            &server.url(database),
            "-c",
            "SELECT count(*) FROM runs",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The query waits on the server; then its connection goes.
    let waiting = "SELECT count(*) FROM information_schema.processlist \
                   WHERE user = 'runql_reader' AND db = 'locked_for_a_lost_connection' AND command = 'Execute'";
    wait_for(server, waiting);
    let ids = server.root_sql(
        None,
        "SELECT GROUP_CONCAT(id) FROM information_schema.processlist \
         WHERE user = 'runql_reader' AND db = 'locked_for_a_lost_connection'",
    );
    for id in ids.trim().split(',') {
        server.root_sql(None, &format!("KILL CONNECTION {id}"));
    }
    let output = child.wait_with_output().unwrap();
    drop(lock);
    assert_one_line_error(&output, "MySQL store");
}

#[test]
fn a_limit_reached_leaves_no_query_behind() {
    let database = "watched_for_a_limit";
    let server = private_copy(database);
    let url = server.url(database);
    // The filter is not exact on MySQL (a `_` in LIKE), so the LIMIT stays in DataFusion and
    // the scan is dropped once the first row passes.
    let rows = json_on(
        &url,
        "SELECT step_id FROM steps WHERE step_name LIKE '%_%' LIMIT 1",
    );
    assert_eq!(rows.len(), 1);
    std::thread::sleep(Duration::from_millis(300));
    let running = server.root_sql(
        None,
        &format!(
            "SELECT count(*) FROM information_schema.processlist WHERE user = 'runql_reader' \
             AND db = '{database}' AND command IN ('Query', 'Execute')"
        ),
    );
    assert_eq!(running.trim(), "0");
}

/// Rows MariaDB has sent to `user`'s connections (its user statistics, turned on here),
/// once the count stands still: a statement's rows are added as its thread finishes it,
/// which may be just after the client has read them.
fn rows_sent_to(server: &MariaDb, user: &str) -> u64 {
    let read = || {
        let sent = server.root_sql(
            None,
            &format!(
                "SELECT ROWS_SENT FROM information_schema.USER_STATISTICS WHERE USER = '{user}'"
            ),
        );
        sent.trim().parse::<u64>().unwrap_or(0)
    };
    let mut last = read();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = read();
        if now == last {
            return now;
        }
        last = now;
    }
}

#[test]
fn a_limit_reached_stops_the_server_sending_the_rest() {
    let database = "grown_for_a_limit";
    let server = private_copy(database);
    // 110k steps: the fixture's, copied with ids and names of their own (the configuration
    // and exception left out, so the copy is quick; the source code kept, so that a row is
    // hundreds of bytes and the socket's buffers hold a few thousand of them, not the table).
    server.root_sql(
        Some(database),
        "SET FOREIGN_KEY_CHECKS = 0; \
         CREATE TEMPORARY TABLE grown AS SELECT s.*, q.seq AS n FROM step_run s JOIN seq_1_to_5000 q; \
         UPDATE grown SET id = MD5(CONCAT(id, '-', n)), name = CONCAT(name, '-', n), \
           docstring = NULL, step_configuration = NULL, exception_info = NULL; \
         ALTER TABLE grown DROP COLUMN n; \
         INSERT INTO step_run SELECT * FROM grown",
    );
    let steps: u64 = server
        .root_sql(Some(database), "SELECT count(*) FROM step_run")
        .trim()
        .parse()
        .unwrap();
    assert!(steps > 100_000, "{steps}");
    // A reader of its own, so that only this test's queries count.
    let user = "limit_watcher";
    let password = "watcher-Pw-51c";
    server.root_sql(
        None,
        &format!(
            "SET GLOBAL userstat = 1; \
             CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'; \
             GRANT SELECT ON {database}.* TO '{user}'@'127.0.0.1'"
        ),
    );
    let url = format!(
        "mysql://{user}:{password}@127.0.0.1:{}/{database}",
        server.port
    );

    // Reading every step: the counter sees them all (so it measures what runql reads).
    let before = rows_sent_to(server, user);
    let all = json_on(
        &url,
        "SELECT count(step_id) AS n FROM steps WHERE step_name LIKE '%_%'",
    );
    assert_eq!(all[0]["n"], steps);
    let sent_for_all = rows_sent_to(server, user) - before;
    assert!(
        sent_for_all >= steps,
        "{sent_for_all} rows sent for {steps}"
    );

    // The filter is not exact on MySQL (a `_` in LIKE), so the LIMIT stays in DataFusion and
    // the scan is dropped once the first row passes: the server must stop there, not send
    // the rest for runql to read and throw away.
    let before = rows_sent_to(server, user);
    let one = json_on(
        &url,
        "SELECT step_id, source_code FROM steps WHERE step_name LIKE '%_%' LIMIT 1",
    );
    assert_eq!(one.len(), 1);
    let sent_for_one = rows_sent_to(server, user) - before;
    assert!(
        sent_for_one < steps / 3,
        "{sent_for_one} of {steps} rows were sent for a LIMIT 1"
    );
}

#[test]
fn reading_changes_nothing_in_the_store() {
    let (server, database, url) = newest();
    let before = server.checksum(&database);
    let dir = tempfile::tempdir().unwrap();
    for sql in [
        "SELECT * FROM runs",
        "SELECT * FROM steps ORDER BY start_time DESC LIMIT 3",
        "SELECT * FROM metadata",
        "SELECT * FROM inputs",
    ] {
        json_on(&url, sql);
    }
    let out = export_store(Path::new(&url), &dir.path().join("export"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Even a user's SQL that tries to write reaches nothing but DataFusion.
    let _ = runql()
        .args(["--store", &url, "-c", "DROP TABLE runs"])
        .output()
        .unwrap();
    assert_eq!(server.checksum(&database), before);
}

#[test]
fn an_export_of_a_mysql_store_reads_back_the_same() {
    let (_, _, url) = newest();
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    let out = export_store(Path::new(&url), &export);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for table in TABLES {
        let sql = format!("SELECT * FROM {table}");
        // The same rows, in whatever order each gives them.
        let rows = |rows: Vec<Value>| {
            let mut rows: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
            rows.sort();
            rows
        };
        let live = rows(json_on(&url, &sql));
        let exported = rows(query_json_on(&export, &sql));
        assert!(!live.is_empty(), "{table}");
        assert_eq!(live, exported, "{table}");
    }
}

#[test]
fn grants_name_only_what_runql_reads() {
    let (server, database, url) = newest();
    let out = stdout_ok(runql().args(["--store", &url, "--grants"]));
    assert!(
        out.contains(&format!(
            "GRANT SELECT ON `{database}`.`pipeline_run` TO '<user>'@'<host>';"
        )),
        "{out}"
    );
    for secret in ["`secret`", "`api_key`", "`user`"] {
        assert!(!out.contains(secret), "{out}");
    }
    // The reader of these tests has exactly these grants, and reads every table with them.
    let granted = server.root_sql(None, "SHOW GRANTS FOR 'runql_reader'@'127.0.0.1'");
    assert!(!granted.contains("`secret`"), "{granted}");
    for table in TABLES {
        json_on(&url, &format!("SELECT count(*) FROM {table}"));
    }
}

#[test]
fn tls_with_the_ca_and_client_certificate_zenml_names() {
    let (server, database, _) = newest();
    let tls = |user: &str, query: &str| {
        format!(
            "mysql://{user}:{READER_PASSWORD}@127.0.0.1:{}/{database}{query}",
            server.port
        )
    };
    let count = |store: String| {
        runql()
            .args(["--store", &store, "--format", "csv", "--no-header", "-c"])
            .arg("SELECT count(*) FROM runs")
            .output()
            .unwrap()
    };
    let ca = server.tls.join("ca.pem").display().to_string();
    let cert = server.tls.join("client.pem").display().to_string();
    let key = server.tls.join("client.key").display().to_string();
    // The server requires TLS of this reader, and none is offered: one line.
    assert_one_line_error(&count(tls("tls_reader", "")), "Access denied");
    // With ZenML's ssl_ca, checking the certificate names the host.
    for query in [
        format!("?ssl_ca={ca}"),
        format!("?ssl_ca={ca}&ssl_verify_server_cert=true"),
    ] {
        let out = count(tls("tls_reader", &query));
        assert!(
            out.status.success(),
            "{query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A reader that must show a client certificate: with ssl_cert/ssl_key, and without.
    let with_cert = count(tls(
        "x509_reader",
        &format!("?ssl_ca={ca}&ssl_cert={cert}&ssl_key={key}"),
    ));
    assert!(
        with_cert.status.success(),
        "{}",
        String::from_utf8_lossy(&with_cert.stderr)
    );
    assert_one_line_error(
        &count(tls("x509_reader", &format!("?ssl_ca={ca}"))),
        "Access denied",
    );
    // A CA that did not sign the server's certificate: refused, one line.
    let other_ca = server.tls.join("client.pem").display().to_string();
    assert_one_line_error(
        &count(tls("tls_reader", &format!("?ssl_ca={other_ca}"))),
        "cannot read MySQL store",
    );
}

/// `--mirror` on a MySQL store: the same rows as read live, twice (the second sync finds
/// nothing new), and the password in no file of the mirror.
#[test]
fn a_mirror_of_a_mysql_store_answers_the_same_and_keeps_no_password() {
    let (_, _, url) = newest();
    let cache = tempfile::tempdir().unwrap();
    let mirrored = |sql: &str| -> Vec<String> {
        let out = runql()
            .env("RUNQL_CACHE_DIR", cache.path())
            .args(["--store", &url, "--mirror", "--format", "json", "-c", sql])
            .output()
            .unwrap();
        let mut rows: Vec<String> = json_rows(&out, sql).iter().map(Value::to_string).collect();
        rows.sort();
        rows
    };
    for _ in 0..2 {
        for table in TABLES {
            let sql = format!("SELECT * FROM {table}");
            let mut live: Vec<String> = json_on(&url, &sql).iter().map(Value::to_string).collect();
            live.sort();
            assert!(!live.is_empty(), "{table}");
            assert_eq!(mirrored(&sql), live, "{table} through the mirror");
        }
    }
    let mut files = vec![cache.path().to_path_buf()];
    let mut read = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            read += 1;
            assert!(
                !String::from_utf8_lossy(&bytes).contains(READER_PASSWORD),
                "the password is in {}",
                path.display()
            );
        }
    }
    assert!(read > 6, "the mirror holds {read} files");
}
